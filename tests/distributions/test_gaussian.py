"""Gaussian families against scipy.stats and the closed-form weighted estimates.

One table drives the reference tests: each family with the dense covariance its compact
parameter stands for, so ``scipy.stats.multivariate_normal`` is the twin of every structure.
"""

import numpy as np
import pytest
from scipy import stats

from probmix.distributions import (
    DiagonalNormal,
    Gaussian,
    GaussianStatistics,
    MultivariateNormal,
    SphericalNormal,
    TiedNormal,
)
from probmix.priors import CovarianceRidge

FAMILIES = (Gaussian, DiagonalNormal, SphericalNormal, TiedNormal)
EPS32 = np.finfo(np.float32).eps


def random_spd(d, cond, rng):
    """A random symmetric positive definite matrix with condition number ``cond``."""
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    cov = (q * np.logspace(0, np.log10(cond), d)) @ q.T
    return 0.5 * (cov + cov.T)


def random_compact(family, d, cond, rng):
    """A covariance parameter in the family's compact shape, and the dense Σ it means."""
    if family in (Gaussian, TiedNormal):
        cov = random_spd(d, cond, rng)
        return cov, cov
    if family is DiagonalNormal:
        var = rng.permutation(np.logspace(0, np.log10(cond), d))
        return var, np.diag(var)
    var = float(cond)  # a single variance has no conditioning: use cond as a scale
    return var, var * np.eye(d)


def weighted_moments(X, w):
    """The closed-form weighted MLE: np.average and np.cov(aweights, bias=True)."""
    mean = np.average(X, axis=0, weights=w)
    cov = np.atleast_2d(np.cov(X, rowvar=False, aweights=w, bias=True))
    return mean, cov


def restrict(family, cov):
    """The MLE of a structured covariance is the structured part of the full one."""
    if family is DiagonalNormal:
        return np.diag(np.diag(cov))
    if family is SphericalNormal:
        return np.mean(np.diag(cov)) * np.eye(len(cov))
    return cov


def eval_points(mean, cov, rng, n=50):
    """Points from the distribution plus a few far out in its tails (~10σ)."""
    near = rng.multivariate_normal(mean, cov, size=n)
    far = mean + 10 * rng.standard_normal((5, len(mean))) @ np.linalg.cholesky(cov).T
    return np.vstack([near, far])


def test_multivariate_normal_is_gaussian():
    assert MultivariateNormal is Gaussian


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("d", [1, 2, 5])
@pytest.mark.parametrize("cond", [1.0, 1e6], ids=["cond1", "cond1e6"])
@pytest.mark.parametrize("loc", [0.0, 1e4], ids=["origin", "far"])
def test_log_prob_matches_scipy(family, d, cond, loc):
    rng = np.random.default_rng(d)
    compact, cov = random_compact(family, d, cond, rng)
    mean = loc + rng.standard_normal(d)
    X = eval_points(mean, cov, rng)
    ours = family(mean=mean, covariance=compact).log_prob(X)
    expected = stats.multivariate_normal(mean, cov).logpdf(X)
    assert ours.shape == (X.shape[0],) and ours.dtype == np.float64
    np.testing.assert_allclose(ours, np.atleast_1d(expected), rtol=1e-10)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("d", [1, 3])
def test_log_prob_float32_near_the_origin(family, d):
    # float32 is kept; the error is a few float32 ulps of each term of the log density.
    rng = np.random.default_rng(7)
    compact, cov = random_compact(family, d, 100.0, rng)
    mean = rng.standard_normal(d)
    X = eval_points(mean, cov, rng).astype(np.float32)
    ours = family(mean=mean, covariance=compact).log_prob(X)
    expected = stats.multivariate_normal(mean, cov).logpdf(X.astype(np.float64))
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.__name__)
def test_log_prob_float32_far_from_the_origin(family):
    # Residuals are formed in float32, so the mean is rounded to the float32 grid at |μ|:
    # each residual may be off by ε₃₂|μ|/2, which moves the Mahalanobis term by at most
    # 2 · ‖z‖ · ε₃₂|μ| / σ_min per coordinate. That is the documented float32 tolerance.
    rng = np.random.default_rng(8)
    d = 3
    compact, cov = random_compact(family, d, 100.0, rng)
    mean = 1e4 + rng.standard_normal(d)
    X = eval_points(mean, cov, rng).astype(np.float32)
    ours = family(mean=mean, covariance=compact).log_prob(X)
    X64 = X.astype(np.float64)
    expected = stats.multivariate_normal(mean, cov).logpdf(X64)
    sigma_min = np.sqrt(np.linalg.eigvalsh(cov)[0])
    maha = np.sqrt(np.sum((X64 - mean) @ np.linalg.inv(cov) * (X64 - mean), axis=1))
    tolerance = 2 * d * EPS32 * np.abs(mean).max() / sigma_min * (1 + maha) + 1e-5 * np.abs(
        expected)
    assert ours.dtype == np.float32
    assert np.all(np.abs(ours - expected) <= tolerance)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("reg_covar", [None, 1e-3])
def test_weighted_fit_is_the_closed_form_weighted_mle(family, reg_covar):
    rng = np.random.default_rng(9)
    X = rng.standard_normal((60, 3)) @ rng.standard_normal((3, 3)) + [1.0, -2.0, 5.0]
    w = rng.uniform(0, 3, 60)
    w[:5] = 0.0  # zero weights are allowed and ignored
    prior = None if reg_covar is None else CovarianceRidge(reg_covar=reg_covar)
    fitted = family.fit(X, w, prior=prior)
    mean, cov = weighted_moments(X, w)
    expected = restrict(family, cov) + (reg_covar or 0.0) * np.eye(3)
    assert type(fitted) is family
    np.testing.assert_allclose(fitted.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(fitted.covariance_matrix, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.__name__)
def test_unweighted_fit_equals_unit_weights(family):
    rng = np.random.default_rng(10)
    X = rng.standard_normal((30, 2))
    a, b = family.fit(X), family.fit(X, np.ones(30))
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.covariance_matrix, b.covariance_matrix)
    _, cov = weighted_moments(X, np.ones(30))
    np.testing.assert_allclose(a.covariance_matrix, restrict(family, cov), rtol=1e-12,
                               atol=1e-15)


def test_tied_pools_the_within_component_scatter():
    # Σ = Σ_k S_k / Σ_k N_k, the weighted pooled within-group covariance; means stay separate.
    rng = np.random.default_rng(11)
    X = rng.standard_normal((80, 2))
    q = rng.dirichlet(np.ones(3), size=80)
    parts = [TiedNormal.sufficient_statistics(X, q[:, k]) for k in range(3)]
    fitted = TiedNormal.from_statistics_many(parts, CovarianceRidge(reg_covar=1e-4))
    pooled = np.zeros((2, 2))
    for k in range(3):
        mean, cov = weighted_moments(X, q[:, k])
        pooled += q[:, k].sum() * cov
        np.testing.assert_allclose(fitted[k].mean, mean, rtol=1e-12)
    pooled = pooled / q.sum() + 1e-4 * np.eye(2)
    for component in fitted:
        assert type(component) is TiedNormal
        np.testing.assert_allclose(component.covariance_matrix, pooled, rtol=1e-12)
    # the shared covariance is counted once
    assert TiedNormal.n_parameters_many(fitted) == 3 * 2 + 3


@pytest.mark.parametrize("family, expected", [(Gaussian, 4 + 10), (TiedNormal, 4 + 10),
                                              (DiagonalNormal, 4 + 4), (SphericalNormal, 4 + 1)],
                         ids=lambda v: getattr(v, "__name__", str(v)))
def test_n_parameters(family, expected):
    compact, _ = random_compact(family, 4, 10.0, np.random.default_rng(0))
    g = family(mean=np.zeros(4), covariance=compact)
    assert g.n_parameters == expected
    assert g.n_features == 4


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("loc", [0.0, 1e3])
def test_expected_log_prob_equals_weighted_log_prob(family, loc):
    # Holds for any Gaussian, not only the MLE of the statistics.
    rng = np.random.default_rng(12)
    d = 3
    X = loc + rng.standard_normal((50, d)) * [1.0, 3.0, 0.5]
    w = rng.uniform(0, 2, 50)
    compact, _ = random_compact(family, d, 50.0, rng)
    g = family(mean=loc + rng.standard_normal(d), covariance=compact)
    stats_ = family.sufficient_statistics(X, w)
    expected = w @ g.log_prob(X)
    assert g.expected_log_prob(stats_) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.__name__)
def test_sample_moments(family):
    rng = np.random.default_rng(13)
    d, n = 3, 200_000
    compact, cov = random_compact(family, d, 20.0, rng)
    mean = np.array([1.0, -5.0, 100.0])
    X = family(mean=mean, covariance=compact).sample(n, np.random.default_rng(14))
    assert X.shape == (n, d)
    # Monte-Carlo tolerance: 5 standard errors; SE(mean_j) = sqrt(Σ_jj / n),
    # SE(cov_ij) = sqrt((Σ_ii Σ_jj + Σ_ij²) / n) for Gaussian data.
    var = np.diag(cov)
    assert np.all(np.abs(X.mean(axis=0) - mean) <= 5 * np.sqrt(var / n))
    se_cov = np.sqrt((np.outer(var, var) + cov ** 2) / n)
    assert np.all(np.abs(np.cov(X, rowvar=False, bias=True) - cov) <= 5 * se_cov)


def test_sample_is_reproducible_with_the_generator():
    g = Gaussian(mean=[0.0, 1.0], covariance=[[2.0, 0.3], [0.3, 1.0]])
    a = g.sample(10, np.random.default_rng(0))
    b = g.sample(10, np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)


# -- centred statistics ------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.__name__)
def test_centred_statistics_float64_huge_mean(family):
    # Raw moments Σx² − N m² lose everything at mean 1e8, std 1: x² ~ 1e16 has ulp ~2, the
    # same size as the variance. Centred scatters keep the variance to ~1e-8.
    rng = np.random.default_rng(15)
    X = 1e8 + rng.standard_normal((1000, 2)) * [1.0, 2.0]
    w = rng.uniform(0.5, 1.5, 1000)
    fitted = family.fit(X, w)
    centred = X - np.average(X, axis=0, weights=w)  # two-pass reference
    _, cov = weighted_moments(centred, w)
    np.testing.assert_allclose(fitted.covariance_matrix, restrict(family, cov), rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(fitted.mean, np.average(X, axis=0, weights=w), rtol=1e-14)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.__name__)
def test_centred_statistics_float32_input(family):
    # In float32, raw moments fail already at mean 1e4, std 1 (x² ~ 1e8, ulp 8).
    rng = np.random.default_rng(16)
    X = (1e4 + rng.standard_normal((1000, 2))).astype(np.float32)
    fitted = family.fit(X)
    X64 = X.astype(np.float64)  # the same points, exactly
    _, cov = weighted_moments(X64 - X64.mean(axis=0), np.ones(1000))
    np.testing.assert_allclose(fitted.covariance_matrix, restrict(family, cov), rtol=1e-6,
                               atol=1e-7)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.__name__)
def test_centred_statistics_merge_exactly_at_huge_mean(family):
    # The pairwise merge of chunk statistics must be as accurate as one pass.
    rng = np.random.default_rng(17)
    X = 1e8 + rng.standard_normal((900, 2))
    w = np.ones(900)
    merged = family.sufficient_statistics(X[:1], w[:1])
    for lo in range(1, 900, 97):
        merged = merged + family.sufficient_statistics(X[lo:lo + 97], w[lo:lo + 97])
    _, cov = weighted_moments(X - X.mean(axis=0), w)
    np.testing.assert_allclose(family.from_statistics(merged).covariance_matrix,
                               restrict(family, cov), rtol=1e-6, atol=1e-6)


def test_statistics_are_float64_for_float32_input():
    X = np.random.default_rng(18).standard_normal((20, 2)).astype(np.float32)
    s = Gaussian.sufficient_statistics(X, np.ones(20, dtype=np.float32))
    assert isinstance(s, GaussianStatistics)
    assert s.mean.dtype == np.float64 and s.scatter.dtype == np.float64


# -- errors ------------------------------------------------------------------------------------

def test_zero_total_weight_cannot_be_fitted():
    s = Gaussian.sufficient_statistics(np.ones((3, 2)), np.zeros(3))
    assert s.total_weight == 0.0
    with pytest.raises(ValueError, match="zero total weight"):
        Gaussian.from_statistics(s)


def test_statistics_of_another_structure_are_rejected():
    s = DiagonalNormal.sufficient_statistics(np.eye(3), np.ones(3))
    with pytest.raises(TypeError, match="diag"):
        Gaussian.from_statistics(s)


def test_unknown_prior_is_rejected():
    with pytest.raises(TypeError, match="CovarianceRidge"):
        Gaussian.fit(np.eye(3), prior=0.1)


@pytest.mark.parametrize("make, exc, match", [
    (lambda: Gaussian(mean=[0.0, np.nan], covariance=np.eye(2)), ValueError, "NaN"),
    (lambda: Gaussian(mean=[0.0, 0.0], covariance=np.eye(3)), ValueError, "3 features"),
    (lambda: Gaussian(mean=[[0.0, 0.0]], covariance=np.eye(2)), ValueError, "1-D"),
    (lambda: DiagonalNormal(mean=[0.0, 0.0], covariance=[1.0, 1.0, 1.0]), ValueError,
     "3 features"),
    (lambda: Gaussian(mean=[0.0, 0.0], covariance=[[1.0, 2.0], [2.0, 1.0]]), ValueError,
     "positive definite"),
    (lambda: SphericalNormal(mean=[0.0, 0.0], covariance=-1.0), ValueError, "positive"),
], ids=["nan-mean", "dim-mismatch", "2d-mean", "diag-mismatch", "not-pd", "negative-var"])
def test_invalid_parameters(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.__name__)
def test_singular_data_names_the_remedy(family):
    X = np.column_stack([np.arange(5.0), np.zeros(5)])
    if family is SphericalNormal:
        X = np.zeros((5, 2))  # only all-constant data makes σ² zero
    with pytest.raises(ValueError, match="reg_covar"):
        family.fit(X)
    # the ridge is the remedy
    fitted = family.fit(X, prior=CovarianceRidge(reg_covar=1e-6))
    assert np.all(np.linalg.eigvalsh(fitted.covariance_matrix) >= 1e-6 * (1 - 1e-9))
