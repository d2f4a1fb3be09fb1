"""The command line: ``probmix demo``, argument errors, and the adjusted Rand index helper."""

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from probmix import GMM
from probmix.cli import _adjusted_rand_index, main
from probmix.datasets import load_iris

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(argv):
    """main(argv) with stdout and stderr captured: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("demo") / "iris.png"
    code, stdout, stderr = _run(["demo", "--output", str(output), "--seed", "0"])
    return code, stdout, stderr, output


@pytest.fixture(scope="module")
def reference_fit():
    """The fit the demo describes, made independently of the command line."""
    iris = load_iris()
    gmm = GMM(n_components=3, covariance_type="full", random_state=0, n_init=5).fit(iris.data)
    return gmm, iris


# -- adjusted Rand index ---------------------------------------------------------------------
@settings(max_examples=100)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 6)), min_size=1, max_size=80))
def test_ari_matches_scikit_learn(pairs):
    a, b = (np.array(x) for x in zip(*pairs, strict=True))
    assert _adjusted_rand_index(a, b) == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)


@pytest.mark.parametrize("n, k1, k2", [(2, 2, 2), (150, 3, 3), (500, 10, 4), (1000, 2, 50)])
def test_ari_matches_scikit_learn_on_random_labelings(n, k1, k2):
    rng = np.random.default_rng(n + k1 + k2)
    a, b = rng.integers(0, k1, n), rng.integers(0, k2, n)
    assert _adjusted_rand_index(a, b) == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)
    # A noisy copy of a labeling: far from zero, still equal to the reference.
    c = np.where(rng.uniform(size=n) < 0.2, b, a)
    assert _adjusted_rand_index(a, c) == pytest.approx(adjusted_rand_score(a, c), abs=1e-12)


def test_ari_special_cases():
    labels = np.array([0, 0, 1, 1, 2, 2])
    # Renaming the clusters does not matter, and labels need not be integers.
    assert _adjusted_rand_index(labels, (labels + 1) % 3) == 1.0
    assert _adjusted_rand_index(["a", "a", "b"], [7, 7, 3]) == 1.0
    for a, b in [([0], [0]), ([0, 0, 0], [1, 1, 1]), ([0, 1, 2], [2, 0, 1]),
                 ([0, 0, 0, 0], [0, 1, 2, 3])]:
        assert _adjusted_rand_index(a, b) == pytest.approx(adjusted_rand_score(a, b))
    with pytest.raises(ValueError, match="same length"):
        _adjusted_rand_index([0, 1], [0, 1, 1])


# -- demo ------------------------------------------------------------------------------------
def test_demo_exits_zero_and_writes_a_png(demo_run):
    code, _, stderr, output = demo_run
    assert code == 0, stderr
    data = output.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 20_000  # two panels of points, ellipses and curves, not a blank canvas


def test_demo_reports_a_good_clustering(demo_run, reference_fit):
    _, stdout, _, _ = demo_run
    match = re.search(r"adjusted Rand index against the species: ([0-9.]+)", stdout)
    assert match is not None, stdout
    ari = float(match.group(1))
    assert ari > 0.85
    # The printed ARI is that of the fit the demo describes, recomputed independently.
    gmm, iris = reference_fit
    assert ari == pytest.approx(adjusted_rand_score(iris.target, gmm.predict(iris.data)),
                                abs=5e-5)


def test_demo_prints_parameters_and_history(demo_run, reference_fit):
    _, stdout, _, _ = demo_run
    gmm, iris = reference_fit
    # One line per history record: "  t  value   (change)".
    rows = re.findall(r"^\s+(\d+)\s+(-?\d+\.\d+)(?:\s+\(.*\))?$", stdout, flags=re.M)
    assert [int(t) for t, _ in rows] == list(range(len(gmm.history_)))
    np.testing.assert_allclose([float(v) for _, v in rows], gmm.history_.log_likelihood,
                               atol=1e-6)
    final = float(re.search(r"final log-likelihood: (-?[0-9.]+)", stdout).group(1))
    assert final == pytest.approx(gmm.score(iris.data) * len(iris.data), abs=1e-3)
    bic = float(re.search(r"BIC: (-?[0-9.]+)", stdout).group(1))
    assert bic == pytest.approx(gmm.bic(iris.data), abs=1e-3)
    for w in gmm.weights_:
        assert f"{w:6.3f}" in stdout
    for name in iris.target_names:
        assert name in stdout


def test_demo_quiet_prints_nothing(tmp_path):
    output = tmp_path / "quiet.png"
    code, stdout, stderr = _run(["demo", "-o", str(output), "--quiet"])
    assert (code, stdout, stderr) == (0, "", "")
    assert output.read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize("output, message", [
    ("missing_dir/out.png", "does not exist"),
    (".", "is a directory"),
    ("out.notaformat", "unsupported figure format"),
])
def test_demo_unwritable_output_is_a_one_line_error(tmp_path, monkeypatch, output, message):
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = _run(["demo", "--output", output])
    assert code == 1
    assert stdout == ""  # fails before fitting
    assert stderr.count("\n") == 1 and message in stderr
    assert stderr.startswith("probmix demo: error:")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [
    ["demo", "--seed", "-1"],
    ["demo", "--seed", "abc"],
    ["demo", "--bogus"],
    ["fly"],
    [],
])
def test_bad_arguments_exit_two_with_one_line(argv, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "error:" in captured.err


def test_help_through_main_returns_zero(capsys):
    assert main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out
    assert main(["demo", "--help"]) == 0
    assert "--output" in capsys.readouterr().out


def test_python_dash_m_probmix_help():
    result = subprocess.run([sys.executable, "-m", "probmix", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: probmix")
    assert "demo" in result.stdout


def test_python_dash_m_probmix_bad_command_fails():
    result = subprocess.run([sys.executable, "-m", "probmix", "nonsense"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
