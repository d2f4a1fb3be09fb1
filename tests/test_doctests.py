"""The Examples sections of probmix's docstrings run, and print what they show.

One test per docstring that has examples (``doctest.DocTestFinder`` over every probmix module,
each object in the module that defines it), so a failure names the object. The examples are
documentation: they must stay short and fast.
"""

import doctest
import importlib
import pkgutil

import matplotlib
import pytest

import probmix

matplotlib.use("Agg")  # an example that plots needs no display

# ``python -m probmix`` runs the command line when imported.
NOT_IMPORTABLE = {"probmix.__main__"}
# The hypothesis strategies need hypothesis, a test dependency that may be missing.
NEEDS_HYPOTHESIS = {"probmix.testing.strategies"}
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# Docstrings whose examples fail for a reason to fix in the docstring (files owned elsewhere).
KNOWN_FAILURES: dict[str, str] = {}


def _module_names():
    names = ["probmix"]
    for info in pkgutil.walk_packages(probmix.__path__, "probmix."):
        if info.name not in NOT_IMPORTABLE:
            names.append(info.name)
    return names


def _find():
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = {}
    for name in _module_names():
        if name in NEEDS_HYPOTHESIS:
            try:
                import hypothesis  # noqa: F401
            except ImportError:
                continue
        module = importlib.import_module(name)
        for test in finder.find(module, name):
            if test.examples:
                found[test.name] = test
    return found


DOCTESTS = _find()


def _param(name):
    marks = ()
    if name in KNOWN_FAILURES:
        marks = pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[name])
    return pytest.param(name, id=name, marks=marks)


def test_the_public_docstrings_have_examples():
    # The families, the mixture, the algorithm, the estimator and the tools all show usage.
    modules = {name.rsplit(".", 1)[0] for name in DOCTESTS}
    for expected in ("probmix.gmm", "probmix.mixture", "probmix.em.algorithm", "probmix.io",
                     "probmix.selection", "probmix.priors", "probmix.plot", "probmix.datasets"):
        assert any(m.startswith(expected) for m in modules), expected
    assert len(DOCTESTS) >= 15


@pytest.mark.parametrize("name", [_param(name) for name in sorted(DOCTESTS)])
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that save a file write it here
    test = DOCTESTS[name]
    test.globs = dict(test.globs)  # each run starts from the module's namespace, untouched
    report = []
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    result = runner.run(test, out=report.append, clear_globs=True)
    assert result.attempted > 0
    assert result.failed == 0, "".join(report)
