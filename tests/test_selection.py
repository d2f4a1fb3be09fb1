"""probmix.selection: BIC, AIC and ICL over candidate mixtures; failures reported, not raised."""

import json
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy.special import entr

from probmix import GMM, EMAlgorithm, MixtureModel
from probmix.distributions import Gaussian, Poisson
from probmix.selection import CRITERIA, compare, criteria, select_gmm


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _three_clusters(n=450, seed=0):
    """Three well-separated round clusters: every criterion should find K = 3."""
    truth = MixtureModel(weights=[0.3, 0.3, 0.4], components=[
        Gaussian(mean=m, covariance=np.eye(2)) for m in ([0.0, 0.0], [7.0, 0.0], [0.0, 7.0])])
    return truth.sample(n, np.random.default_rng(seed))[0]


@pytest.fixture(scope="module")
def X3():
    return _three_clusters()


@pytest.fixture(scope="module")
def grid(X3):
    return select_gmm(X3, range(1, 7), ["full", "diag", "spherical", "tied"], random_state=0)


# -- the criteria themselves --------------------------------------------------------------------
def test_criteria_match_their_definitions(X3):
    model = GMM(3, random_state=0).fit(X3).model_
    c = criteria(model, X3)
    ll = float(np.sum(model.log_prob(X3)))
    p, n = model.n_parameters, X3.shape[0]
    assert c["log_likelihood"] == pytest.approx(ll, rel=1e-12)
    assert c["bic"] == pytest.approx(-2 * ll + p * np.log(n), rel=1e-12)
    assert c["bic"] == pytest.approx(model.bic(X3), rel=1e-12)
    assert c["aic"] == pytest.approx(model.aic(X3), rel=1e-12)
    # ICL = BIC + 2 EN, EN = −Σ q log q (scipy's entr is −x log x, 0 at 0)
    entropy = float(entr(model.responsibilities(X3)).sum())
    assert c["entropy"] == pytest.approx(entropy, rel=1e-9, abs=1e-9)
    assert c["icl"] == pytest.approx(c["bic"] + 2 * entropy, rel=1e-12)


def test_icl_is_bic_for_one_component_and_never_below_it(grid):
    for cand in grid.candidates:
        assert cand.icl >= cand.bic
        if cand.n_components == 1:
            assert cand.icl == cand.bic and cand.entropy == 0.0


def test_integer_weights_equal_repeated_rows(X3):
    # n in log n is Σ w: weight 2 on a row is the row twice
    model = GMM(2, random_state=0).fit(X3).model_
    w = np.random.default_rng(1).integers(0, 3, X3.shape[0]).astype(float)
    weighted = criteria(model, X3, w)
    repeated = criteria(model, np.repeat(X3, w.astype(int), axis=0))
    for key in ("log_likelihood", "entropy", "bic", "aic", "icl"):
        assert weighted[key] == pytest.approx(repeated[key], rel=1e-10), key


# -- selection on simulated data --------------------------------------------------------------
@pytest.mark.parametrize("criterion", ["bic", "icl"])
def test_picks_three_components(grid, criterion):
    assert grid.best(criterion).n_components == 3


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_picks_three_within_each_covariance_type(grid, covariance_type):
    rows = [c for c in grid.candidates if c.group == covariance_type]
    for criterion in ("bic", "icl"):
        assert min(rows, key=lambda c: getattr(c, criterion)).n_components == 3


def test_icl_penalises_overlap_where_bic_does_not():
    # Two unit-variance clusters 2.4 apart: the density is clearly two-component (BIC, AIC),
    # but the clusters overlap so much that ICL (which charges for the classification's
    # entropy) prefers one. A sign error in the entropy term would flip this.
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-1.2, 1, 1000), rng.normal(1.2, 1, 1000)])[:, None]
    result = select_gmm(X, [1, 2, 3], random_state=0)
    assert result.best("bic").n_components == 2
    assert result.best("aic").n_components == 2
    assert result.best("icl").n_components == 1


def test_table_holds_every_candidate(grid):
    table = grid.table
    assert table.dtype.names == ("name", "group", "n_components", "status", "log_likelihood",
                                 "entropy", "n_parameters", "bic", "aic", "icl", "converged",
                                 "n_iter", "reason")
    assert len(table) == 6 * 4
    expected = {f"K={k} {t}" for k in range(1, 7) for t in ("full", "diag", "spherical", "tied")}
    assert set(table["name"]) == expected
    assert np.all(table["status"] == "ok")
    np.testing.assert_array_equal(table["bic"], [c.bic for c in grid.candidates])
    # a fitted model's parameter count: full covariance in 2-D, K = 3: 2 + 3·(2 + 3)
    assert table[table["name"] == "K=3 full"]["n_parameters"][0] == 17
    records = grid.records()
    assert len(records) == len(table) and json.dumps(records)  # plain data, no objects


def test_best_models_are_the_fitted_ones(grid, X3):
    best = grid.best("bic")
    assert isinstance(best.estimator, GMM)
    assert best.model is best.estimator.model_
    assert grid.best_model is best.model
    assert best.bic == pytest.approx(best.estimator.bic(X3), rel=1e-12)


def test_text_table_is_aligned_and_marks_the_winners(grid):
    text = grid.to_text()
    lines = text.splitlines()
    header, rule = lines[0], lines[1]
    assert header.split()[:3] == ["candidate", "K", "status"]
    rows = lines[2:2 + len(grid.candidates)]
    # every column starts where the rule's dashes do
    starts = [i for i, ch in enumerate(rule) if ch == "-" and (i == 0 or rule[i - 1] == " ")]
    for row in rows:
        for s in starts[1:]:
            assert row[s - 1] == " "
    for criterion in ("bic", "icl"):
        best = grid.best(criterion)
        row = next(r for r in rows if r.startswith(best.name + " "))
        assert f"{getattr(best, criterion):.2f}*" in row
    assert str(grid) == text


def test_progress_is_reported_for_every_candidate(X3):
    seen = []
    select_gmm(X3, [1, 2], ["full", "diag"], random_state=0,
               progress=lambda i, total, cand: seen.append((i, total, cand.name)))
    assert seen == [(1, 4, "K=1 full"), (2, 4, "K=2 full"), (3, 4, "K=1 diag"),
                    (4, 4, "K=2 diag")]


# -- failures are rows, not exceptions ---------------------------------------------------------
def test_candidate_that_fails_is_a_row_with_its_reason(X3):
    X = X3[:5]
    result = select_gmm(X, [1, 2, 6], random_state=0)
    failed = result.failed
    assert [c.name for c in failed] == ["K=6 full"]
    assert failed[0].status == "failed" and "n_samples=5 must be >= n_components=6" in \
        failed[0].reason
    assert np.isnan(failed[0].bic) and failed[0].model is None
    assert result.best("bic").status == "ok"
    assert "K=6 full: failed: ValueError: n_samples=5" in result.to_text()


def test_singular_candidate_fails_with_the_singular_covariance_error():
    # three distinct points and no ridge: a component on a single point collapses
    X = np.repeat([[0.0, 0.0], [1.0, 1.0], [5.0, 0.0]], 4, axis=0)
    start = MixtureModel(weights=[0.5, 0.5], components=[
        Gaussian(mean=[0.1, 0.1], covariance=np.eye(2)),
        Gaussian(mean=[5.0, 0.0], covariance=np.eye(2))])
    one = MixtureModel(weights=[1.0], components=[Gaussian(mean=[2.0, 0.3], covariance=np.eye(2))])
    result = compare(X, [("singular", (EMAlgorithm(), start)), ("one", (EMAlgorithm(), one))])
    bad, good = result.candidates
    assert bad.status == "failed" and bad.reason.startswith("SingularCovarianceError:")
    assert "\n" not in bad.reason
    assert good.ok and result.best("bic").name == "one"


def test_when_every_candidate_fails_there_is_no_best():
    result = select_gmm(np.zeros((3, 2)), [4, 5])
    assert len(result.failed) == 2
    with pytest.raises(ValueError, match="every candidate failed"):
        result.best("bic")
    assert "failed" in result.to_text()


def test_convergence_warnings_are_kept_not_printed(X3):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing escapes the selection
        result = select_gmm(X3, [3], max_iter=1, random_state=0)
    (cand,) = result.candidates
    assert cand.ok and not cand.converged
    assert any("did not converge" in w for w in cand.warnings)
    assert "did not converge" in result.to_text()


@pytest.mark.parametrize("kwargs, error, message", [
    ({"n_components": []}, ValueError, "grid is empty"),
    ({"n_components": [0, 1]}, ValueError, "positive integers"),
    ({"covariance_types": ["full", "round"]}, ValueError, "unknown covariance type 'round'"),
    ({"covariance_type": "diag"}, TypeError, "set by the grid"),
    ({"tol": -1.0}, ValueError, "tol must be >= 0"),
])
def test_an_invalid_grid_raises_before_fitting(X3, kwargs, error, message):
    with pytest.raises(error, match=message):
        select_gmm(X3, **{"n_components": [1], **kwargs})


def test_malformed_candidate_raises_before_fitting(X3):
    with pytest.raises(TypeError, match="candidate 'x'"):
        compare(X3, {"x": 3})
    with pytest.raises(TypeError, match=r"\(EMAlgorithm, initial MixtureModel\)"):
        compare(X3, {"x": (EMAlgorithm(), "start")})
    with pytest.raises(ValueError, match="unique"):
        compare(X3, [("a", GMM(1)), ("a", GMM(2))])
    with pytest.raises(ValueError, match="criterion must be one of"):
        select_gmm(X3, [1]).best("mdl")


# -- generic candidates: any family, any estimator --------------------------------------------
def test_compare_poisson_mixtures():
    truth = MixtureModel(weights=[0.5, 0.5], components=[Poisson(rate=[2.0, 10.0]),
                                                         Poisson(rate=[12.0, 1.0])])
    X, _ = truth.sample(400, np.random.default_rng(0))
    starts = {
        f"K={k} Poisson": (EMAlgorithm(tol=1e-6),
                           MixtureModel(weights=np.full(k, 1 / k), components=[
                               Poisson(rate=[1.0 + 4 * j, 8.0 - 3 * j]) for j in range(k)]))
        for k in (1, 2, 3)}
    result = compare(X, {**starts, "truth": truth})
    assert result.best("bic").name in ("K=2 Poisson", "truth")
    assert result.best("bic").n_components == 2
    fitted = result.candidates[1]
    assert fitted.group == "Poisson" and fitted.n_iter > 0 and fitted.converged
    scored = result.candidates[3]
    assert scored.n_iter == 0 and scored.model is truth


def test_compare_leaves_the_given_estimator_unfitted(X3):
    given = GMM(3, random_state=0)
    result = compare(X3, {"gmm": given})
    assert not hasattr(given, "model_")
    assert result.candidates[0].estimator is not given
    assert result.candidates[0].group == "GMM full"


# -- plot (the gallery example runs in tests/test_examples.py) ------------------------------
def test_plot_draws_one_curve_per_group_and_criterion_and_stars_the_winners(grid):
    ax = grid.plot()
    n_groups = 4
    curves = ax.lines[:n_groups * len(CRITERIA)]
    assert len(ax.lines) == n_groups * len(CRITERIA) + len(CRITERIA)
    full_bic = curves[0]
    np.testing.assert_array_equal(full_bic.get_xdata(), range(1, 7))
    np.testing.assert_allclose(full_bic.get_ydata(),
                               [c.bic for c in grid.candidates if c.group == "full"])
    stars = ax.lines[n_groups * len(CRITERIA):]
    for star, criterion in zip(stars, CRITERIA):
        best = grid.best(criterion)
        assert (star.get_xdata()[0], star.get_ydata()[0]) == (best.n_components,
                                                              getattr(best, criterion))


def test_plot_marks_failed_candidates(X3):
    result = select_gmm(X3[:5], [1, 6])
    ax = result.plot(criteria=["bic"])
    assert ax.lines[-1].get_label() == "failed"
    np.testing.assert_array_equal(ax.lines[-1].get_xdata(), [6])
