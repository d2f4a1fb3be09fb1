"""Priors: Dirichlet and Normal-Inverse-Wishart densities and modes, the covariance ridge, and
the MAP component updates they induce.

The MAP updates are checked against a numerical maximiser of the log-posterior written out
here from the densities' definitions (weighted Gaussian log-likelihood plus the inverse-Wishart
kernel restricted to the structure's matrices, plus the mean's N(μ₀, Σ/κ₀) term), so the
closed forms, including their ν + d + 1 + [κ₀ > 0] denominators, are derived independently.
"""

import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

from probmix.distributions import (
    DiagonalNormal,
    Gaussian,
    SphericalNormal,
    TiedNormal,
)
from probmix.priors import CovarianceRidge, Dirichlet, NormalInverseWishart

STRUCTURED = (Gaussian, DiagonalNormal, SphericalNormal)
KIND = {Gaussian: "full", DiagonalNormal: "diag", SphericalNormal: "spherical"}

PSI = np.array([[1.5, 0.4], [0.4, 0.8]])
MU0 = np.array([0.5, -1.0])


def dense(family, compact, d):
    """The dense Σ a compact covariance parameter stands for."""
    if family is DiagonalNormal:
        return np.diag(compact)
    if family is SphericalNormal:
        return float(compact) * np.eye(d)
    return np.asarray(compact)


def weighted_data(seed, n=15, d=2, loc=(1.0, 2.0)):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((d, d))
    X = rng.standard_normal((n, d)) @ a + np.asarray(loc[:d])
    w = rng.uniform(0.2, 2.0, n)
    return X, w


# -- Dirichlet ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("alpha", "masses", "expected"), [
    # π_k ∝ max(N_k + α_k − 1, 0), worked by hand
    (1.0, [3.0, 0.0, 2.0], [3 / 5, 0.0, 2 / 5]),
    (0.5, [10.0, 0.2, 5.0], [9.5 / 14, 0.0, 4.5 / 14]),
    (2.0, [0.0, 1.0, 3.0], [1 / 7, 2 / 7, 4 / 7]),
    ([2.0, 1.0, 0.5], [1.0, 2.0, 3.0], [2 / 6.5, 2 / 6.5, 2.5 / 6.5]),
    (-1.5, [2.5, 10.0, 4.0], [0.0, 7.5 / 9, 1.5 / 9]),  # exactly at the threshold: pruned
    (0.0, [0.0, 0.5, 3.0], [0.0, 0.0, 1.0]),
])
def test_dirichlet_mode_closed_form(alpha, masses, expected):
    np.testing.assert_allclose(Dirichlet(alpha).mode(masses), expected, rtol=1e-14, atol=0)


def test_dirichlet_mode_with_alpha_one_is_the_mle_bit_for_bit():
    masses = np.array([0.1, 7.3, 1e-3, 12.9])
    np.testing.assert_array_equal(Dirichlet(1.0).mode(masses), masses / masses.sum())


def test_dirichlet_mode_restricted_to_free_components():
    # the non-free component is left out and the rest normalised among themselves
    mode = Dirichlet(1.5).mode([4.0, 2.0, 6.0], free=[True, False, True])
    np.testing.assert_allclose(mode, [4.5 / 11, 0.0, 6.5 / 11], rtol=1e-14)


def test_dirichlet_mode_errors():
    with pytest.raises(ValueError, match="too small"):
        Dirichlet(0.1).mode([0.5, 0.3])
    with pytest.raises(ValueError, match="3 concentrations for 2 components"):
        Dirichlet([1.0, 2.0, 3.0]).mode([1.0, 2.0])


@pytest.mark.parametrize("alpha", [[0.5, 2.0, 3.0], [1.0, 1.0, 1.0], [7.0, 0.2, 1.3]])
@pytest.mark.parametrize("weights", [[0.2, 0.3, 0.5], [0.01, 0.98, 0.01], [1 / 3] * 3])
def test_dirichlet_log_prob_matches_scipy(alpha, weights):
    expected = stats.dirichlet(alpha).logpdf(weights)
    assert Dirichlet(alpha).log_prob(weights) == pytest.approx(expected, rel=1e-12)


def test_dirichlet_scalar_alpha_is_symmetric():
    w = [0.1, 0.6, 0.3]
    assert Dirichlet(0.7).log_prob(w) == pytest.approx(stats.dirichlet([0.7] * 3).logpdf(w),
                                                       rel=1e-12)


def test_dirichlet_log_prob_skips_pruned_components():
    # a zero weight is a pruned component: the density is over the survivors only
    expected = stats.dirichlet([0.5, 3.0]).logpdf([0.4, 0.6])
    assert Dirichlet([0.5, 2.0, 3.0]).log_prob([0.4, 0.0, 0.6]) == pytest.approx(expected,
                                                                               rel=1e-12)


@pytest.mark.parametrize("alpha", [0.0, -1.5, [-1.0, 0.5, 2.0]])
def test_improper_dirichlet_log_prob_is_the_kernel(alpha):
    prior = Dirichlet(alpha)
    assert not prior.proper
    w = np.array([0.2, 0.3, 0.5])
    kernel = np.sum((prior.concentrations(3) - 1.0) * np.log(w))
    assert prior.log_prob(w) == pytest.approx(kernel, rel=1e-14)


def test_dirichlet_proper_flag_and_restriction():
    assert Dirichlet(1e-3).proper
    assert Dirichlet([1.0, 2.0]).proper
    assert not Dirichlet([1.0, -2.0]).proper
    prior = Dirichlet([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(prior.restricted([0, 2]).alpha, [1.0, 3.0])
    assert Dirichlet(0.5).restricted([1]) == Dirichlet(0.5)


@pytest.mark.parametrize("alpha", [np.nan, np.inf, [1.0, np.nan], [[1.0]], []])
def test_dirichlet_rejects_invalid_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        Dirichlet(alpha)


# -- Normal-Inverse-Wishart densities ------------------------------------------------------------

def test_niw_full_log_prob_is_inverse_wishart_times_normal():
    prior = NormalInverseWishart(scale=PSI, dof=4.0, mean=MU0, kappa=0.7)
    sigma = np.array([[0.9, -0.2], [-0.2, 0.6]])
    mu = np.array([0.1, 0.3])
    expected = (stats.invwishart(df=4.0, scale=PSI).logpdf(sigma)
                + stats.multivariate_normal(MU0, sigma / 0.7).logpdf(mu))
    assert prior.log_prob(mu, sigma, "full") == pytest.approx(expected, rel=1e-12)


def test_niw_flat_mean_drops_the_normal_term():
    prior = NormalInverseWishart(scale=PSI, dof=4.0)
    sigma = np.array([[0.9, -0.2], [-0.2, 0.6]])
    for mu in ([0.0, 0.0], [5.0, -3.0]):
        assert prior.log_prob(np.array(mu), sigma, "full") == pytest.approx(
            stats.invwishart(df=4.0, scale=PSI).logpdf(sigma), rel=1e-12)


@pytest.mark.parametrize("kappa", [0.0, 1.3])
def test_niw_diag_log_prob_is_a_product_of_inverse_gammas(kappa):
    # docstring: each variance ~ InvGamma((ν + d − 1)/2, ψ_jj/2)
    d, nu = 2, 3.0
    prior = NormalInverseWishart(scale=PSI, dof=nu, mean=MU0, kappa=kappa)
    var = np.array([0.7, 2.1])
    mu = np.array([0.3, -0.2])
    expected = sum(stats.invgamma((nu + d - 1) / 2, scale=PSI[j, j] / 2).logpdf(var[j])
                   for j in range(d))
    if kappa:
        expected += stats.multivariate_normal(MU0, np.diag(var) / kappa).logpdf(mu)
    assert prior.log_prob(mu, var, "diag") == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("kappa", [0.0, 1.3])
def test_niw_spherical_log_prob_is_an_inverse_gamma(kappa):
    # docstring: σ² ~ InvGamma(d(ν + d + 1)/2 − 1, tr Ψ / 2)
    d, nu = 2, 3.0
    prior = NormalInverseWishart(scale=PSI, dof=nu, mean=MU0, kappa=kappa)
    mu = np.array([0.3, -0.2])
    expected = stats.invgamma(d * (nu + d + 1) / 2 - 1, scale=np.trace(PSI) / 2).logpdf(0.8)
    if kappa:
        expected += stats.multivariate_normal(MU0, 0.8 * np.eye(d) / kappa).logpdf(mu)
    assert prior.log_prob(mu, np.float64(0.8), "spherical") == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("kind", ["diag", "spherical"])
def test_niw_restricted_densities_are_the_inverse_wishart_restricted(kind):
    """Up to a constant, the diag/spherical densities are the IW density at their matrices,
    and they integrate to one over their own parameters."""
    d, nu = 2, 3.0
    prior = NormalInverseWishart(scale=PSI, dof=nu)
    iw = stats.invwishart(df=nu, scale=PSI)
    mu = np.zeros(d)
    compacts = ([np.array(v) for v in ([0.5, 1.0], [2.0, 0.3], [1.1, 4.0])] if kind == "diag"
                else [np.float64(v) for v in (0.4, 1.0, 3.0)])
    gaps = [prior.log_prob(mu, c, kind) - iw.logpdf(np.diag(c) if kind == "diag"
                                                    else float(c) * np.eye(d))
            for c in compacts]
    np.testing.assert_allclose(gaps, gaps[0], rtol=1e-10)
    if kind == "spherical":  # a one-dimensional density: integrate it
        total, _ = integrate.quad(
            lambda s: np.exp(prior.log_prob(mu, np.float64(s), kind)), 0, np.inf)
        assert total == pytest.approx(1.0, rel=1e-7)


def test_niw_validation():
    with pytest.raises(ValueError, match="kappa > 0 needs a prior mean"):
        NormalInverseWishart(scale=1.0, dof=3.0, kappa=1.0)
    with pytest.raises(ValueError, match="kappa"):
        NormalInverseWishart(scale=1.0, dof=3.0, kappa=-1.0, mean=[0.0])
    with pytest.raises(ValueError, match="positive"):
        NormalInverseWishart(scale=0.0, dof=3.0)
    with pytest.raises(ValueError, match="symmetric"):
        NormalInverseWishart(scale=[[1.0, 0.5], [0.4, 1.0]], dof=3.0)
    with pytest.raises(ValueError, match="positive definite"):
        NormalInverseWishart(scale=[[1.0, 2.0], [2.0, 1.0]], dof=3.0)
    with pytest.raises(ValueError, match="finite 1-D"):
        NormalInverseWishart(scale=1.0, dof=3.0, mean=[[0.0]])
    with pytest.raises(ValueError):
        NormalInverseWishart.ridge(0.0, 2)


def test_niw_dimension_mismatch_is_reported():
    prior = NormalInverseWishart(scale=np.eye(3), dof=4.0)
    X, w = weighted_data(0)
    with pytest.raises(ValueError, match="3-dimensional"):
        Gaussian.from_statistics(Gaussian.sufficient_statistics(X, w), prior)
    prior = NormalInverseWishart(scale=1.0, dof=4.0, mean=[0.0, 0.0, 0.0], kappa=1.0)
    with pytest.raises(ValueError, match="3 features"):
        Gaussian.from_statistics(Gaussian.sufficient_statistics(X, w), prior)


# -- NormalInverseWishart.ridge -------------------------------------------------------------------

@pytest.mark.parametrize("family", [*STRUCTURED, TiedNormal])
def test_niw_ridge_gives_reg_identity_for_an_empty_component(family):
    d, reg = 3, 0.02
    X = np.random.default_rng(0).standard_normal((5, d))
    empty = family.sufficient_statistics(X, np.zeros(5))
    fitted = family.from_statistics(empty, NormalInverseWishart.ridge(reg, d))
    np.testing.assert_allclose(fitted.covariance.matrix, reg * np.eye(d), rtol=1e-14)


@pytest.mark.parametrize("family", STRUCTURED)
def test_niw_ridge_with_data_is_the_shrunk_scatter(family):
    # Σ = (S + Ψ) / (N + 2d + 1), restricted to the structure
    X, w = weighted_data(1)
    d, reg = 2, 0.05
    stats_ = family.sufficient_statistics(X, w)
    fitted = family.from_statistics(stats_, NormalInverseWishart.ridge(reg, d))
    m = np.average(X, axis=0, weights=w)
    S = (w[:, None] * (X - m)).T @ (X - m)
    full = (S + reg * (2 * d + 1) * np.eye(d)) / (w.sum() + 2 * d + 1)
    expected = {Gaussian: full, DiagonalNormal: np.diag(np.diag(full)),
                SphericalNormal: np.trace(full) / d * np.eye(d)}[family]
    np.testing.assert_allclose(fitted.covariance.matrix, expected, rtol=1e-12)
    np.testing.assert_allclose(fitted.mean, m, rtol=1e-12)


# -- CovarianceRidge.max_decrease -----------------------------------------------------------------

def _mean_weighted_log_lik(component, X, w):
    cov = component.covariance.matrix
    return float(w @ stats.multivariate_normal(component.mean, cov).logpdf(X) / w.sum())


@pytest.mark.parametrize("family", STRUCTURED)
@pytest.mark.parametrize("reg", [1e-3, 0.05, 0.3])
def test_ridge_max_decrease_bounds_the_loss_of_the_ridged_step(family, reg):
    rng = np.random.default_rng(3)
    # anisotropic data: the smallest eigenvalue is comparable to the ridge
    X = rng.standard_normal((40, 2)) * [2.0, 0.3]
    w = rng.uniform(0.5, 1.5, 40)
    stats_ = family.sufficient_statistics(X, w)
    ridge = CovarianceRidge(reg_covar=reg)
    exact = family.from_statistics(stats_)
    ridged = family.from_statistics(stats_, ridge)
    loss = _mean_weighted_log_lik(exact, X, w) - _mean_weighted_log_lik(ridged, X, w)
    bound = ridge.max_decrease([ridged])
    assert 0.0 <= loss <= bound
    # the docstring's exact loss, ½ Σ_j [log(1 + x_j) − x_j / (1 + x_j)], x_j = r / λ_j(Σ*)
    x = reg / np.linalg.eigvalsh(exact.covariance.matrix)
    assert loss == pytest.approx(0.5 * np.sum(np.log1p(x) - x / (1 + x)), rel=1e-8)


def test_ridge_max_decrease_takes_the_worst_component():
    ridge = CovarianceRidge(reg_covar=0.1)
    a = Gaussian(mean=[0.0, 0.0], covariance=np.diag([1.1, 2.1]))  # λ_min(Σ*) = 1
    b = Gaussian(mean=[0.0, 0.0], covariance=np.diag([0.6, 2.1]))  # λ_min(Σ*) = 0.5
    assert ridge.max_decrease([a]) == pytest.approx(2 * 0.1**2 / 4)
    assert ridge.max_decrease([a, b]) == pytest.approx(2 * (0.1 / 0.5) ** 2 / 4)
    # a covariance no larger than the ridge cannot have come from it: no finite bound
    assert ridge.max_decrease([Gaussian(mean=[0.0], covariance=[[0.05]])]) == np.inf
    assert CovarianceRidge(reg_covar=0.0).max_decrease([b]) == 0.0


def test_ridge_rejects_negative():
    with pytest.raises(ValueError, match="reg_covar"):
        CovarianceRidge(reg_covar=-1e-3)


# -- MAP component updates against a numerical maximiser -----------------------------------------

def _log_posterior(X, w, means, sigma, prior):
    """Σ_k Σ_i w_ik log N(x_i | μ_k, Σ) + IW kernel(Σ) + Σ_k [κ₀ > 0] log N(μ_k | μ₀, Σ/κ₀),
    written out from the definitions (one shared Σ; the tied case passes several means)."""
    d = sigma.shape[0]
    sign, logdet = np.linalg.slogdet(sigma)
    if sign <= 0:
        return -np.inf
    inv = np.linalg.inv(sigma)
    total = 0.0
    for mu, wk in zip(means, w):
        r = X - mu
        maha = np.einsum("ij,jk,ik->i", r, inv, r)
        total += -0.5 * wk @ (d * np.log(2 * np.pi) + logdet + maha)
    psi = prior.scale_matrix(d)
    total += -0.5 * (prior.dof + d + 1) * logdet - 0.5 * np.trace(psi @ inv)
    if prior.kappa > 0:
        for mu in means:
            dev = mu - prior.mean
            total += -0.5 * logdet - 0.5 * prior.kappa * dev @ inv @ dev
    return total


def _sigma_from(family, theta, d):
    """Unconstrained parameters → Σ of the structure (log-Cholesky, log-variances)."""
    if family is DiagonalNormal:
        return np.diag(np.exp(theta[:d]))
    if family is SphericalNormal:
        return np.exp(theta[0]) * np.eye(d)
    L = np.zeros((d, d))
    L[np.tril_indices(d)] = theta[: d * (d + 1) // 2]
    L[np.diag_indices(d)] = np.exp(np.diag(L))
    return L @ L.T


def _n_cov_params(family, d):
    return {DiagonalNormal: d, SphericalNormal: 1}.get(family, d * (d + 1) // 2)


def _maximise(objective, n_params):
    # Nelder-Mead then BFGS: robust from a crude start, then tight at the optimum
    res = optimize.minimize(lambda t: -objective(t), np.zeros(n_params), method="Nelder-Mead",
                            options={"maxiter": 20000, "xatol": 1e-10, "fatol": 1e-12})
    res = optimize.minimize(lambda t: -objective(t), res.x, method="BFGS",
                            options={"gtol": 1e-10})
    return res.x, -res.fun


PRIORS = {
    "flat mean": NormalInverseWishart(scale=PSI, dof=3.0),
    "kappa": NormalInverseWishart(scale=PSI, dof=3.0, mean=MU0, kappa=2.5),
    "small dof": NormalInverseWishart(scale=0.5, dof=1.2, mean=MU0, kappa=0.4),
}


@pytest.mark.parametrize("family", STRUCTURED)
@pytest.mark.parametrize("prior_name", sorted(PRIORS))
def test_map_update_is_the_numerical_maximiser(family, prior_name):
    prior = PRIORS[prior_name]
    X, w = weighted_data(5, n=12)
    d = 2
    fitted = family.from_statistics(family.sufficient_statistics(X, w), prior)
    nc = _n_cov_params(family, d)

    def objective(theta):
        return _log_posterior(X, [w], [theta[:d]], _sigma_from(family, theta[d:], d), prior)

    theta, best = _maximise(objective, d + nc)
    closed = _log_posterior(X, [w], [fitted.mean], fitted.covariance.matrix, prior)
    assert closed >= best - 1e-9 * abs(best)
    np.testing.assert_allclose(fitted.mean, theta[:d], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fitted.covariance.matrix, _sigma_from(family, theta[d:], d),
                               rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("prior_name", sorted(PRIORS))
def test_tied_map_update_is_the_numerical_maximiser(prior_name):
    # two components share Σ: one IW term, one mean term per component (the +K denominator)
    prior = PRIORS[prior_name]
    d = 2
    Xa, wa = weighted_data(6, n=10, loc=(-2.0, 0.0))
    Xb, wb = weighted_data(7, n=8, loc=(3.0, 1.0))
    X = np.vstack([Xa, Xb])
    w = [np.r_[wa, np.zeros(8)], np.r_[np.zeros(10), wb]]
    fitted = TiedNormal.from_statistics_many(
        [TiedNormal.sufficient_statistics(X, wk) for wk in w], prior)

    def objective(theta):
        return _log_posterior(X, w, [theta[:d], theta[d:2 * d]],
                              _sigma_from(Gaussian, theta[2 * d:], d), prior)

    theta, best = _maximise(objective, 2 * d + 3)
    sigma = fitted[0].covariance.matrix
    assert fitted[1].covariance.matrix is sigma or np.array_equal(fitted[1].covariance.matrix,
                                                                  sigma)
    closed = _log_posterior(X, w, [c.mean for c in fitted], sigma, prior)
    assert closed >= best - 1e-9 * abs(best)
    np.testing.assert_allclose(np.concatenate([c.mean for c in fitted]), theta[:2 * d],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sigma, _sigma_from(Gaussian, theta[2 * d:], d), rtol=1e-5,
                               atol=1e-7)


@pytest.mark.parametrize("family", STRUCTURED)
@pytest.mark.parametrize("prior_name", ["flat mean", "kappa"])
def test_map_update_with_a_fixed_mean_is_the_constrained_maximiser(family, prior_name):
    prior = PRIORS[prior_name]
    X, w = weighted_data(8, n=12)
    d = 2
    held_mean = np.array([0.0, 3.0])  # away from the data mean: the constraint binds
    current = family(mean=held_mean, covariance=family.fit(X).covariance)
    fitted = family.from_statistics_partial(family.sufficient_statistics(X, w), prior,
                                            frozenset({"mean"}), current)
    np.testing.assert_array_equal(fitted.mean, held_mean)

    def objective(theta):
        return _log_posterior(X, [w], [held_mean], _sigma_from(family, theta, d), prior)

    theta, _ = _maximise(objective, _n_cov_params(family, d))
    np.testing.assert_allclose(fitted.covariance.matrix, _sigma_from(family, theta, d),
                               rtol=1e-5, atol=1e-7)


def test_map_mean_is_the_posterior_mean():
    X, w = weighted_data(9)
    prior = PRIORS["kappa"]
    fitted = Gaussian.from_statistics(Gaussian.sufficient_statistics(X, w), prior)
    m = np.average(X, axis=0, weights=w)
    np.testing.assert_allclose(fitted.mean, (w.sum() * m + prior.kappa * MU0)
                               / (w.sum() + prior.kappa), rtol=1e-13)


@pytest.mark.parametrize("family", [*STRUCTURED, TiedNormal])
def test_log_prior_of_a_component_is_the_niw_density(family):
    prior = PRIORS["kappa"]
    X, w = weighted_data(10)
    c = family.fit(X, w)
    kind = KIND.get(family, "full")
    assert c.log_prior(prior) == pytest.approx(prior.log_prob(c.mean, c.covariance.compact, kind),
                                               rel=1e-14)
    assert c.log_prior(None) == 0.0
    assert c.log_prior(CovarianceRidge()) == 0.0  # a ridge is not a prior


def test_tied_log_prior_counts_the_shared_covariance_once():
    prior = PRIORS["kappa"]
    sigma = np.array([[1.0, 0.2], [0.2, 0.5]])
    means = [np.array([0.0, 1.0]), np.array([2.0, -1.0]), np.array([-1.0, 0.5])]
    comps = [TiedNormal(mean=m, covariance=sigma) for m in means]
    expected = (stats.invwishart(df=prior.dof, scale=PSI).logpdf(sigma)
                + sum(stats.multivariate_normal(MU0, sigma / prior.kappa).logpdf(m)
                      for m in means))
    assert TiedNormal.log_prior_many(comps, prior) == pytest.approx(expected, rel=1e-12)
    # an untied family scores each component's covariance
    untied = [Gaussian(mean=m, covariance=sigma) for m in means]
    assert Gaussian.log_prior_many(untied, prior) == pytest.approx(
        3 * stats.invwishart(df=prior.dof, scale=PSI).logpdf(sigma)
        + sum(stats.multivariate_normal(MU0, sigma / prior.kappa).logpdf(m) for m in means),
        rel=1e-12)


def test_dirichlet_normaliser_matches_gamma_functions():
    # cross-check the proper normaliser on a point where the kernel vanishes (uniform prior)
    alpha = np.array([1.0, 1.0, 1.0, 1.0])
    assert Dirichlet(alpha).log_prob([0.1, 0.2, 0.3, 0.4]) == pytest.approx(
        special.gammaln(4.0), rel=1e-14)


def test_niw_ridge_parameters():
    prior = NormalInverseWishart.ridge(0.01, 3)
    np.testing.assert_allclose(prior.scale, 0.01 * 7 * np.eye(3))
    assert prior.dof == 3.0 and prior.kappa == 0.0 and prior.mean is None



@pytest.mark.parametrize("scale, dof", [(np.eye(3), 2.0), (np.eye(3), -5.0), (1.0, 1.5)])
def test_niw_dof_must_keep_the_inverse_wishart_proper(scale, dof):
    # ν > d − 1: checked at construction when Ψ fixes d, else when the prior meets the data
    with pytest.raises(ValueError, match=r"dof must exceed n_features - 1 = 2"):
        NormalInverseWishart(scale=scale, dof=dof).scale_matrix(3)
