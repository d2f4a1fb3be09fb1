"""The conformance kit over every built-in family and the gallery's example family.

One registry table (family, example parameters, scipy.stats twin) drives both
``check_distribution`` and the hypothesis property tests, so a new built-in family gets every
check by adding one row; ``test_registry_covers_every_built_in_family`` fails until it has one.
"""

import ast
import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import probmix.distributions as distributions
from probmix.distributions import (
    Bernoulli,
    Categorical,
    DiagonalNormal,
    Distribution,
    Exponential,
    Gaussian,
    IndependentComponents,
    Poisson,
    SphericalNormal,
    StudentT,
    TiedNormal,
)
from probmix.testing import (
    CHECKS,
    check_distribution,
    check_expected_log_prob,
    check_statistics_additive,
    check_weighted_fit,
)
from probmix.testing.strategies import (
    instances,
    refitted,
    row_splits,
    sample_weights,
    samples,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "plot_custom_family.py"


def _load_example():
    # The example defines its family at import time and does its work under __main__ only.
    spec = importlib.util.spec_from_file_location("plot_custom_family", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = _load_example()
Geometric = example.Geometric


# -- scipy twins: independent implementations of each log density ---------------------------
def normal_twin(p):
    cov = np.asarray(p["covariance"], dtype=float)
    d = len(p["mean"])
    cov = cov * np.eye(d) if cov.ndim == 0 else (np.diag(cov) if cov.ndim == 1 else cov)
    return lambda X: stats.multivariate_normal(p["mean"], cov).logpdf(X).reshape(-1)


def categorical_logpmf(probabilities, X):
    """Each column a one-draw multinomial: scipy's categorical."""
    return sum(stats.multinomial(1, q).logpmf(np.eye(len(q))[X[:, j].astype(int)])
               for j, q in enumerate(probabilities))


MIXED_PARTS = [Gaussian(mean=[1.0], covariance=[[2.0]]), Poisson(rate=[4.0]),
               Categorical(probabilities=[[0.2, 0.3, 0.5]])]


def mixed_twin(p):
    # columns: 0 Poisson, 1 Categorical, 2 Gaussian (blocks listed out of order on purpose)
    return lambda X: (stats.poisson.logpmf(X[:, 0], 4.0)
                      + categorical_logpmf([[0.2, 0.3, 0.5]], X[:, 1:2])
                      + stats.norm(1.0, np.sqrt(2.0)).logpdf(X[:, 2]))


class Row(NamedTuple):
    name: str
    family: type[Distribution]
    params: dict[str, Any]
    twin: Callable[[dict[str, Any]], Callable[[np.ndarray], np.ndarray]]
    #: strategy of valid instances near the example (default: jittered parameters)
    nearby: Callable[["Row"], st.SearchStrategy] | None = None

    def instance(self):
        return self.family(**self.params)

    def instances(self):
        return self.nearby(self) if self.nearby else instances(self.family, self.params)


REGISTRY = [
    Row("Gaussian", Gaussian,
        {"mean": [1.0, -2.0], "covariance": [[2.0, 0.6], [0.6, 0.5]]}, normal_twin),
    Row("DiagonalNormal", DiagonalNormal,
        {"mean": [1.0, -2.0], "covariance": [2.0, 0.5]}, normal_twin),
    Row("SphericalNormal", SphericalNormal,
        {"mean": [0.5, -1.0], "covariance": 0.7}, normal_twin),
    Row("TiedNormal", TiedNormal,
        {"mean": [3.0, 0.0], "covariance": [[0.3, -0.1], [-0.1, 1.0]]}, normal_twin),
    Row("Poisson", Poisson, {"rate": [3.0, 0.5]},
        lambda p: lambda X: stats.poisson.logpmf(X, p["rate"]).sum(axis=1)),
    Row("Bernoulli", Bernoulli, {"probability": [0.2, 0.7, 0.5]},
        lambda p: lambda X: stats.bernoulli.logpmf(X, p["probability"]).sum(axis=1)),
    Row("Categorical", Categorical, {"probabilities": [[0.2, 0.5, 0.3], [0.6, 0.4]]},
        lambda p: lambda X: categorical_logpmf(p["probabilities"], X)),
    Row("Exponential", Exponential, {"rate": [2.0, 0.5]},
        lambda p: lambda X: stats.expon(scale=1.0 / np.asarray(p["rate"])).logpdf(X).sum(axis=1)),
    Row("StudentT", StudentT,
        {"mean": [1.0, -1.0], "scale": [[1.0, 0.3], [0.3, 0.5]], "dof": 5.0},
        lambda p: lambda X: stats.multivariate_t(p["mean"], p["scale"], df=p["dof"]).logpdf(X)),
    Row("IndependentComponents", IndependentComponents,
        {"parts": MIXED_PARTS, "columns": [(2,), (0,), (1,)]}, mixed_twin,
        # its parameters are distributions: jitter keeps them, refitting moves them
        nearby=lambda row: refitted(row.instance(), n_rows=st.integers(50, 200))),
    Row("Geometric (examples/plot_custom_family.py)", Geometric, {"p": [0.3, 0.7]},
        lambda p: lambda X: stats.geom.logpmf(X, p["p"], loc=-1).sum(axis=1)),
]
IDS = [row.name.split()[0] for row in REGISTRY]


def test_registry_covers_every_built_in_family():
    built_in = {obj for name in distributions.__all__
                if isinstance(obj := getattr(distributions, name), type)
                and issubclass(obj, Distribution) and obj is not Distribution}
    missing = built_in - {row.family for row in REGISTRY}
    assert not missing, f"add a registry row for {sorted(f.__name__ for f in missing)}"


@pytest.mark.parametrize("row", REGISTRY, ids=IDS)
def test_check_distribution_passes(row):
    report = check_distribution(row.family, params=row.params, scipy_twin=row.twin(row.params))
    # every built-in family has a twin and expected_log_prob: nothing may be skipped
    assert report.ran == tuple(CHECKS), report.skipped
    assert report.family == row.family.__name__


@pytest.mark.parametrize("row", REGISTRY, ids=IDS)
@settings(max_examples=15)
@given(data=st.data())
def test_statistics_add_and_weights_repeat_rows(row, data):
    # hypothesis picks a nearby member of the family, small data in its support, weights with
    # zeros and any split into chunks; the kit's checks must hold for every such draw
    dist = data.draw(row.instances(), label="distribution")
    X = data.draw(samples(dist, n_rows=st.integers(8, 40)), label="X")
    # d + 2 rows of positive weight: a Gaussian fit to fewer is singular, and round-off
    # decides whether its Cholesky factorisation notices
    enough = dist.n_features + 2
    weights = data.draw(sample_weights(len(X), min_positive=enough), label="weights")
    check_statistics_additive(dist, X=X, weights=weights,
                              splits=data.draw(row_splits(len(X)), label="splits"))
    check_expected_log_prob(dist, X=X, weights=weights)
    repeats = sample_weights(len(X), integer=True, max_value=3, min_positive=enough)
    check_weighted_fit(dist, X=X, weights=data.draw(repeats, label="repeats"))


# -- the example family: the docs page shows exactly the example's code -----------------------
def _family_block():
    page = (ROOT / "docs" / "writing-a-family.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", page, re.S | re.M)
    (block,) = [b for b in blocks if "class Geometric(Distribution)" in b]
    return block


def _split_imports(block):
    lines = block.splitlines()
    imports = [ln for ln in lines if ln.startswith(("import ", "from "))]
    return imports, "\n".join(ln for ln in lines if ln not in imports).strip()


def _imported_names(source):
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {(alias.name, alias.asname) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names |= {(f"{node.module}.{alias.name}", alias.asname) for alias in node.names}
    return names


def test_docs_page_shows_the_example_family_verbatim():
    source = EXAMPLE.read_text(encoding="utf-8")
    imports, body = _split_imports(_family_block())
    assert body.startswith("@attrs.frozen") and "class Geometric(Distribution)" in body
    assert body in source, "docs/writing-a-family.md and the example's family differ"
    missing = _imported_names("\n".join(imports)) - _imported_names(source)
    assert not missing, f"the example does not import {missing}"


def test_example_family_is_short_and_the_page_says_how_short():
    # code lines: not blank, not a comment, not a docstring (the issue asks for under ~40)
    _, body = _split_imports(_family_block())
    tree = ast.parse(body)
    docstring_lines = {n.body[0].lineno for n in ast.walk(tree)
                       if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(n)}
    code = [ln for i, ln in enumerate(body.splitlines(), 1)
            if ln.strip() and not ln.strip().startswith("#") and i not in docstring_lines]
    assert len(code) < 40
    page = (ROOT / "docs" / "writing-a-family.md").read_text(encoding="utf-8")
    assert f"({len(code)} lines of code)" in page
