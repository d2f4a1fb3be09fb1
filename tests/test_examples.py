"""The gallery examples run headless and write their figure."""

import ast
import runpy
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # what sphinx-gallery uses; no display needed

import matplotlib.pyplot as plt
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("plot_*.py"))  # every gallery example


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _run_example(name, tmp_path, monkeypatch, *args):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / name), *args])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an example should not teach code that warns
        return runpy.run_path(str(EXAMPLES / name), run_name="__main__")


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_writes_its_png_in_the_current_directory(name, tmp_path, monkeypatch):
    _run_example(name, tmp_path, monkeypatch)
    png = tmp_path / name.replace(".py", ".png")
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert png.stat().st_size > 20_000
    assert [p.name for p in tmp_path.iterdir()] == [png.name]


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_writes_to_a_given_path(name, tmp_path, monkeypatch):
    _run_example(name, tmp_path, monkeypatch, "custom.png")
    assert (tmp_path / "custom.png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_is_gallery_style(name):
    # sphinx-gallery needs a module docstring whose first line is a title, underlined.
    docstring = ast.get_docstring(ast.parse((EXAMPLES / name).read_text(encoding="utf-8")))
    assert docstring is not None
    title, underline = docstring.splitlines()[:2]
    assert title.strip() and set(underline) == {"="} and len(underline) >= len(title)


def test_examples_are_discovered():
    assert {"plot_iris.py", "plot_em_bound.py", "plot_pruning.py"} <= set(SCRIPTS)
