"""Missing data: EM that marginalises NaN entries (issue 9).

Every family's marginal density is checked against a reference (scipy.stats on the observed
sub-vector, or a brute-force sum over the missing values), its expected statistics against
closed forms, and the pieces against each other through the identity that makes EM exact:
at the parameters the statistics were taken under,

    expected_log_prob(stats) + entropy = Σ_i w_i log p(x_i,obs).

The EM runs then check that L(q_t, θ_{t+1}) (statistics + entropy of the missing entries) is
a lower bound that the M-step raises, on every iteration.
"""

import itertools
import warnings

import numpy as np
import pytest
import scipy.stats as st
from scipy import special

from probmix import GMM, EMAlgorithm, MaximumLikelihood, MixtureModel
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
from probmix.distributions._missing import missing_patterns
from probmix.exceptions import ConvergenceWarning
from probmix.mixture import MixtureStatistics

GAUSSIANS = (Gaussian, TiedNormal, DiagonalNormal, SphericalNormal)


# -- helpers ------------------------------------------------------------------------------------
def spd(d, rng, scale=1.0):
    a = rng.standard_normal((d, d))
    return scale * (a @ a.T / d + 0.5 * np.eye(d))


def gaussian(family, d, rng, mean=None, cov=None):
    mean = rng.normal(size=d) if mean is None else mean
    full = spd(d, rng) if cov is None else cov
    compact = {Gaussian: full, TiedNormal: full, DiagonalNormal: np.diag(full).copy(),
               SphericalNormal: float(np.mean(np.diag(full)))}[family]
    return family(mean=mean, covariance=compact)


def knock_out(X, rng, fraction=0.3):
    """X with a random fraction of entries NaN, every row keeping an observed entry."""
    X = np.array(X, dtype=float)
    mask = rng.random(X.shape) < fraction
    mask[mask.all(axis=1), rng.integers(X.shape[1])] = False
    mask[mask.all(axis=1), 0] = False
    X[mask] = np.nan
    return X


def gaussian_reference(mean, cov, x):
    """log N(x_o | μ_o, Σ_oo), the conditional mean and covariance of x_m, by the textbook
    formulas with scipy / numpy.linalg.solve."""
    o, m = ~np.isnan(x), np.isnan(x)
    lp = st.multivariate_normal(mean[o], cov[np.ix_(o, o)]).logpdf(x[o]) if o.any() else 0.0
    soo, smo = cov[np.ix_(o, o)], cov[np.ix_(m, o)]
    cmean = mean[m] + smo @ np.linalg.solve(soo, x[o] - mean[o]) if o.any() else mean[m]
    ccov = cov[np.ix_(m, m)] - (smo @ np.linalg.solve(soo, smo.T) if o.any() else 0.0)
    return float(lp), cmean, ccov


def run_em(X, start, *, max_iter=30, tol=0.0, weights=None, **kw):
    alg = EMAlgorithm(m_step=MaximumLikelihood(component_prior=None), tol=tol,
                      max_iter=max_iter, missing="marginalize", **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return alg.fit(X, start, sample_weight=weights)


def assert_exact_em(result, atol=1e-10):
    """L(q_t, θ_{t+1}) ≤ log p(X | θ_{t+1}) and L(q_t, θ_{t+1}) ≥ L(q_t, θ_t) on every step, and
    the likelihood never decreases."""
    h = result.history
    assert np.all(np.isfinite(h.bound_after_m_step[:-1]))
    assert np.all(h.kl_after_m_step[:-1] >= -atol)
    assert np.all(h.bound_after_m_step[:-1] - h.bound[:-1] >= -atol)
    assert np.all(np.diff(h.log_likelihood) >= -atol)


# -- marginal densities against references ------------------------------------------------------
@pytest.mark.parametrize("family", GAUSSIANS)
def test_gaussian_marginal_density_matches_scipy_on_the_observed_subvector(family, rng):
    g = gaussian(family, 5, rng)
    X = knock_out(rng.normal(size=(60, 5)), rng, 0.4)
    X[0] = np.nan
    X[0, 3] = 0.7  # a single observed entry
    ref = [gaussian_reference(g.mean, g.covariance_matrix, x)[0] for x in X]
    np.testing.assert_allclose(g.marginal_log_prob(X), ref, rtol=1e-12, atol=1e-12)


def test_student_t_marginal_density_matches_scipy(rng):
    d = 4
    t = StudentT(mean=rng.normal(size=d), scale=spd(d, rng), dof=3.5)
    X = knock_out(rng.normal(size=(60, d)) * 2, rng, 0.4)
    ref = []
    for x in X:
        o = ~np.isnan(x)
        ref.append(st.multivariate_t(t.mean[o], t.scale.matrix[np.ix_(o, o)],
                                     df=3.5).logpdf(x[o]))
    np.testing.assert_allclose(t.marginal_log_prob(X), ref, rtol=1e-12, atol=1e-12)


def brute_force_marginal(dist, x, values):
    """log Σ over every completion of the missing entries (from ``values`` per entry)."""
    m = np.flatnonzero(np.isnan(x))
    rows = []
    for combo in itertools.product(values, repeat=m.size):
        y = x.copy()
        y[m] = combo
        rows.append(y)
    return special.logsumexp(dist.log_prob(np.array(rows)))


@pytest.mark.parametrize("dist, values", [
    (Poisson(rate=[0.7, 3.0, 0.0]), np.arange(60.0)),
    (Bernoulli(probability=[0.2, 1.0, 0.6]), [0.0, 1.0]),
    (Categorical(probabilities=[[0.2, 0.8, 0.0], [0.1, 0.3, 0.6], [0.5, 0.25, 0.25]]),
     [0.0, 1.0, 2.0]),
], ids=["poisson", "bernoulli", "categorical"])
def test_discrete_marginal_density_is_the_sum_over_the_missing_values(dist, values, rng):
    X = dist.sample(40, rng)
    X = knock_out(X, rng, 0.5)
    got = dist.marginal_log_prob(X)
    ref = [brute_force_marginal(dist, x, values) for x in X]
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_exponential_marginal_density_is_the_product_over_observed_entries(rng):
    e = Exponential(rate=[0.5, 2.0, 1.5])
    X = knock_out(e.sample(40, rng), rng, 0.5)
    ref = np.nansum(st.expon(scale=1.0 / e.rate).logpdf(X), axis=1)
    np.testing.assert_allclose(e.marginal_log_prob(X), ref, rtol=1e-12)


def test_independent_components_add_their_blocks_and_a_missing_block_scores_zero(rng):
    g = gaussian(Gaussian, 2, rng)
    p = Poisson(rate=[2.0])
    both = IndependentComponents(parts=[p, g], columns=[(2,), (0, 1)])
    X = np.array([[0.3, np.nan, 4.0], [np.nan, np.nan, 1.0], [0.1, -0.2, np.nan]])
    want = [g.marginal_log_prob(X[:1, :2])[0] + p.log_prob(X[:1, 2:])[0],
            p.log_prob(X[1:2, 2:])[0],  # the Gaussian block wholly missing: log 1
            g.log_prob(X[2:, :2])[0]]
    np.testing.assert_allclose(both.marginal_log_prob(X), want, rtol=1e-13)


# -- expected statistics and conditional means against closed forms ----------------------------
@pytest.mark.parametrize("family", GAUSSIANS)
def test_gaussian_expected_statistics_are_the_imputed_moments_plus_conditional_covariances(
        family, rng):
    d = 4
    g = gaussian(family, d, rng)
    cov = g.covariance_matrix
    X = knock_out(rng.normal(size=(50, d)), rng, 0.35)
    w = rng.uniform(0.2, 2.0, 50)
    filled, extra, entropy = X.copy(), np.zeros((d, d)), 0.0
    for i, x in enumerate(X):
        m = np.isnan(x)
        _, cmean, ccov = gaussian_reference(g.mean, cov, x)
        filled[i, m] = cmean
        extra[np.ix_(m, m)] += w[i] * ccov
        if m.any():
            entropy += w[i] * 0.5 * np.linalg.slogdet(2 * np.pi * np.e * ccov)[1]
    mean = w @ filled / w.sum()
    scatter = (filled - mean).T @ ((filled - mean) * w[:, None]) + extra
    stats, h = g.expected_statistics(X, w)
    assert stats.weight == pytest.approx(w.sum(), rel=1e-14)
    np.testing.assert_allclose(stats.mean, mean, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(stats.scatter, g._structure.restrict(scatter), rtol=1e-11,
                               atol=1e-12)
    assert h == pytest.approx(entropy, rel=1e-12)
    np.testing.assert_allclose(g.conditional_mean(X), filled, rtol=1e-12, atol=1e-13)


def test_poisson_expected_statistics_use_the_rate_and_the_mean_log_factorial(rng):
    rate = np.array([0.4, 5.0, 250.0, 0.0])
    p = Poisson(rate=rate)
    X = knock_out(p.sample(30, rng), rng, 0.4)
    w = rng.uniform(0.5, 2.0, 30)
    nan = np.isnan(X)
    k = np.arange(2000.0)
    mean_log_fact = np.array([st.poisson(r).pmf(k) @ special.gammaln(k + 1) if r > 0 else 0.0
                              for r in rate])
    stats, h = p.expected_statistics(X, w)
    np.testing.assert_allclose(stats.total, w @ np.where(nan, rate, X), rtol=1e-13)
    want_lf = w @ np.where(nan, mean_log_fact, special.gammaln(np.nan_to_num(X) + 1)).sum(1)
    assert stats.log_factorial == pytest.approx(want_lf, rel=1e-12)
    entropies = np.array([st.poisson(r).entropy() if r > 0 else 0.0 for r in rate])
    assert h == pytest.approx((w @ nan) @ entropies, rel=1e-9)


def test_bernoulli_exponential_and_categorical_expected_statistics(rng):
    w = rng.uniform(0.5, 2.0, 40)
    b = Bernoulli(probability=[0.3, 0.9])
    X = knock_out(b.sample(40, rng), rng, 0.4)
    nan = np.isnan(X)
    stats, h = b.expected_statistics(X, w)
    np.testing.assert_allclose(stats.ones, w @ np.where(nan, b.probability, X), rtol=1e-13)
    np.testing.assert_allclose(stats.zeros, w @ np.where(nan, 1 - b.probability, 1 - X),
                               rtol=1e-13)
    assert h == pytest.approx((w @ nan) @ st.bernoulli(b.probability).entropy(), rel=1e-12)

    e = Exponential(rate=[0.5, 3.0])
    X = knock_out(e.sample(40, rng), rng, 0.4)
    nan = np.isnan(X)
    stats, h = e.expected_statistics(X, w)
    np.testing.assert_allclose(stats.total, w @ np.where(nan, 1 / e.rate, X), rtol=1e-13)
    assert h == pytest.approx((w @ nan) @ st.expon(scale=1 / e.rate).entropy(), rel=1e-12)

    c = Categorical(probabilities=[[0.2, 0.8], [0.1, 0.3, 0.6]])
    X = knock_out(c.sample(40, rng), rng, 0.4)
    nan = np.isnan(X)
    stats, h = c.expected_statistics(X, w)
    for j, p in enumerate(c.probabilities):
        seen = ~nan[:, j]
        want = np.bincount(X[seen, j].astype(int), weights=w[seen], minlength=p.size)
        np.testing.assert_allclose(stats.counts[j][:p.size], want + (w @ nan[:, j]) * p,
                                   rtol=1e-13)
    want_h = sum((w @ nan[:, j]) * st.entropy(p) for j, p in enumerate(c.probabilities))
    assert h == pytest.approx(want_h, rel=1e-12)


def families_with_data(rng):
    d = 3
    yield gaussian(Gaussian, d, rng), rng.normal(size=(40, d))
    yield gaussian(DiagonalNormal, d, rng), rng.normal(size=(40, d))
    yield gaussian(SphericalNormal, d, rng), rng.normal(size=(40, d))
    yield StudentT(mean=np.zeros(d), scale=spd(d, rng), dof=4.0), 2 * rng.normal(size=(40, d))
    yield Poisson(rate=[0.5, 4.0, 20.0]), rng.poisson([0.5, 4.0, 20.0], (40, d)).astype(float)
    yield Bernoulli(probability=[0.2, 0.5, 0.9]), (rng.random((40, d)) < 0.5).astype(float)
    yield Exponential(rate=[0.5, 1.0, 4.0]), rng.exponential(1.0, (40, d))
    yield (Categorical(probabilities=[[0.3, 0.7], [0.2, 0.2, 0.6], [0.5, 0.5]]),
           rng.integers(0, 2, (40, d)).astype(float))
    yield (IndependentComponents(parts=[gaussian(Gaussian, 2, rng), Poisson(rate=[3.0])],
                                 columns=[(0, 2), (1,)]),
           np.column_stack([rng.normal(size=40), rng.poisson(3.0, 40), rng.normal(size=40)]))


def test_expected_log_prob_plus_entropy_is_the_observed_log_likelihood(rng):
    """At the parameters the statistics are taken under, E[log p(x)|x_obs] + H[x_mis|x_obs] =
    log p(x_obs): the identity that makes L(q, θ) touch the likelihood."""
    for dist, X in families_with_data(rng):
        X = knock_out(X, rng, 0.4)
        w = rng.uniform(0.2, 3.0, X.shape[0])
        stats, entropy = dist.expected_statistics(X, w)
        want = w @ dist.marginal_log_prob(X)
        assert dist.expected_log_prob(stats) + entropy == pytest.approx(want, rel=1e-10), dist


def test_hooks_on_complete_rows_agree_with_the_ordinary_path(rng):
    for dist, X in families_with_data(rng):
        w = rng.uniform(0.2, 3.0, X.shape[0])
        np.testing.assert_array_equal(dist.marginal_log_prob(X), dist.log_prob(X))
        stats, entropy = dist.expected_statistics(X, w)
        assert entropy == 0.0
        ordinary = dist.sufficient_statistics(X, w)
        assert dist.expected_log_prob(stats) == pytest.approx(
            dist.expected_log_prob(ordinary), rel=1e-12)
        np.testing.assert_array_equal(dist.conditional_mean(X), X)
        # the batched Gaussian hooks on complete rows (a pattern with nothing missing)
        many = type(dist).marginal_log_prob_many([dist], X)[:, 0]
        np.testing.assert_allclose(many, dist.log_prob(X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("family", [*GAUSSIANS, StudentT])
def test_pattern_grouping_gives_the_row_by_row_numbers(family, rng):
    d, K = 5, 3
    if family is StudentT:
        comps = [StudentT(mean=rng.normal(size=d), scale=spd(d, rng), dof=5.0)
                 for _ in range(K)]
    elif family is TiedNormal:
        shared = spd(d, rng)
        comps = [gaussian(family, d, rng, cov=shared) for _ in range(K)]
        shared_cov = comps[0].covariance
        comps = [TiedNormal(mean=c.mean, covariance=shared_cov) for c in comps]
    else:
        comps = [gaussian(family, d, rng) for _ in range(K)]
    X = knock_out(rng.normal(size=(80, d)), rng, 0.4)
    X = np.vstack([X, X[:10]])  # repeated patterns
    W = rng.uniform(0.1, 2.0, (X.shape[0], K))
    batch = family.marginal_log_prob_many(comps, X)
    rows = np.vstack([family.marginal_log_prob_many(comps, X[i:i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(batch, rows, rtol=1e-12, atol=1e-12)
    stats, entropy = family.expected_statistics_many(comps, X, W)
    one_by_one = [family.expected_statistics_many(comps, X[i:i + 1], W[i:i + 1])
                  for i in range(len(X))]
    total = one_by_one[0][0]
    for s, _ in one_by_one[1:]:
        total = total + s
    assert entropy == pytest.approx(sum(h for _, h in one_by_one), rel=1e-12)
    for a, b, c in zip(stats.unstack(), total.unstack(), comps):
        assert c.expected_log_prob(a) == pytest.approx(c.expected_log_prob(b), rel=1e-11)


def test_missing_patterns_index_every_row():
    rng = np.random.default_rng(3)
    for d in (3, 70):  # integer keys, and packed bytes beyond 62 columns
        nan = rng.random((200, d)) < (0.3 if d == 3 else 0.02)
        patterns, index = missing_patterns(nan)
        np.testing.assert_array_equal(patterns[index], nan)
        assert len({tuple(r) for r in nan}) == patterns.shape[0]


# -- the mixture ---------------------------------------------------------------------------------
def two_gaussians(rng, family=Gaussian, d=3, spread=3.0):
    if family is TiedNormal:
        shared = TiedNormal(mean=np.zeros(d), covariance=spd(d, rng)).covariance
        comps = [TiedNormal(mean=rng.normal(size=d) * spread, covariance=shared)
                 for _ in range(2)]
    else:
        comps = [gaussian(family, d, rng, mean=rng.normal(size=d) * spread) for _ in range(2)]
    return MixtureModel(weights=[0.4, 0.6], components=comps)


def test_mixture_scores_complete_rows_by_the_fast_path_and_the_rest_marginally(rng):
    model = two_gaussians(rng)
    X, _ = model.sample(200, rng)
    Xm = knock_out(X, rng, 0.2)
    complete = ~np.isnan(Xm).any(axis=1)
    lj = model.log_joint(Xm, missing="marginalize")
    np.testing.assert_allclose(lj[complete], model.log_joint(Xm[complete]), rtol=1e-13)
    ref = np.array([[np.log(pi) + gaussian_reference(c.mean, c.covariance_matrix, x)[0]
                     for pi, c in zip(model.weights, model.components)] for x in Xm])
    np.testing.assert_allclose(lj, ref, rtol=1e-12)
    np.testing.assert_allclose(model.log_prob(Xm, missing="marginalize"),
                               special.logsumexp(ref, axis=1), rtol=1e-12)
    resp = model.responsibilities(Xm, missing="marginalize")
    np.testing.assert_allclose(resp, np.exp(ref - special.logsumexp(ref, axis=1)[:, None]),
                               rtol=1e-10, atol=1e-14)


def test_impute_is_the_posterior_weighted_conditional_mean(rng):
    model = two_gaussians(rng)
    X, _ = model.sample(60, rng)
    Xm = knock_out(X, rng, 0.35)
    resp = model.responsibilities(Xm, missing="marginalize")
    want = Xm.copy()
    for i, x in enumerate(Xm):
        m = np.isnan(x)
        if m.any():
            want[i, m] = sum(resp[i, k] * gaussian_reference(c.mean, c.covariance_matrix, x)[1]
                             for k, c in enumerate(model.components))
    filled = model.impute(Xm)
    np.testing.assert_allclose(filled, want, rtol=1e-12, atol=1e-12)
    observed = ~np.isnan(Xm)
    np.testing.assert_array_equal(filled[observed], Xm[observed])  # untouched
    np.testing.assert_array_equal(model.impute(X), X)


def test_default_is_raise_with_a_message_pointing_at_marginalisation(rng):
    model = two_gaussians(rng)
    X = knock_out(model.sample(30, rng)[0], rng, 0.3)
    for call in (model.log_joint, model.log_prob, model.posterior, model.responsibilities,
                 model.bic, lambda X: EMAlgorithm().fit(X, model), lambda X: GMM(2).fit(X)):
        with pytest.raises(ValueError, match="missing='marginalize'"):
            call(X)
    with pytest.raises(ValueError, match="missing must be"):
        model.log_prob(X, missing="drop")
    with pytest.raises(ValueError, match="missing must be one of"):
        GMM(missing="impute")


def test_a_row_with_every_entry_missing_is_refused(rng):
    model = two_gaussians(rng)
    X = model.sample(10, rng)[0]
    X[4] = np.nan
    with pytest.raises(ValueError, match="row 4 has every entry missing"):
        model.log_prob(X, missing="marginalize")
    with pytest.raises(ValueError, match="row 4 has every entry missing"):
        GMM(2, missing="marginalize").fit(X)
    with pytest.raises(ValueError, match="row 4 has every entry missing"):
        model.impute(X)


def test_a_family_without_support_is_named(rng):
    class CountsOnly(Poisson):
        supports_missing = False
        marginal_log_prob = Distribution.marginal_log_prob
        expected_statistics = Distribution.expected_statistics
        conditional_mean = Distribution.conditional_mean

    X = np.array([[1.0, np.nan, 0.5], [2.0, 3.0, 0.1]])
    plain = MixtureModel(weights=[1.0], components=[
        IndependentComponents(parts=[CountsOnly(rate=[1.0, 2.0]), gaussian(Gaussian, 1, rng)],
                              columns=[(0, 1), (2,)])])
    with pytest.raises(ValueError, match=r"X columns \[0, 1\]: CountsOnly does not support "
                                         "missing values"):
        plain.log_prob(X, missing="marginalize")
    with pytest.raises(ValueError, match="CountsOnly does not support missing values"):
        CountsOnly(rate=[1.0, 1.0]).expected_statistics(X[:, :2], np.ones(2))
    # complete rows are fine for it
    assert np.isfinite(plain.log_prob(X[1:], missing="marginalize")).all()


def test_support_checks_ignore_nan_and_still_name_the_bad_column(rng):
    model = MixtureModel(weights=[0.5, 0.5], components=[Poisson(rate=[1.0, 2.0, 3.0]),
                                                         Poisson(rate=[2.0, 1.0, 0.5])])
    X = np.array([[1.0, np.nan, 2.0], [np.nan, 1.0, -1.0]])
    with pytest.raises(ValueError, match="X column 2 must hold non-negative integer counts"):
        model.log_prob(X, missing="marginalize")
    assert np.isfinite(model.log_prob(X[:1], missing="marginalize")).all()
    for dist, bad in [(Bernoulli(probability=[0.5, 0.5]), 0.5),
                      (Exponential(rate=[1.0, 1.0]), -1.0),
                      (Categorical(probabilities=[[0.5, 0.5], [0.5, 0.5]]), 2.0)]:
        dist.check_support(np.array([[np.nan, 1.0], [1.0, np.nan]]))
        with pytest.raises(ValueError, match="X column 1"):
            dist.check_support(np.array([[np.nan, bad]]))


def test_statistics_from_given_responsibilities_refuse_nan():
    X = np.array([[1.0, np.nan], [0.0, 1.0]])
    with pytest.raises(ValueError, match="X contains NaN"):
        MixtureStatistics.of(X, np.ones((2, 1)), [Gaussian])


# -- EM ------------------------------------------------------------------------------------------
def test_without_nan_the_option_gives_exactly_the_complete_data_fit(rng):
    model = two_gaussians(rng)
    X, _ = model.sample(300, rng)
    start = two_gaussians(np.random.default_rng(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = EMAlgorithm(max_iter=15, tol=0.0).fit(X, start)
        b = EMAlgorithm(max_iter=15, tol=0.0, missing="marginalize").fit(X, start)
    assert a.model == b.model
    np.testing.assert_array_equal(a.history.log_likelihood, b.history.log_likelihood)
    g1 = GMM(2, random_state=0).fit(X)
    g2 = GMM(2, random_state=0, missing="marginalize").fit(X)
    np.testing.assert_array_equal(g1.means_, g2.means_)
    np.testing.assert_array_equal(g1.covariances_, g2.covariances_)
    np.testing.assert_array_equal(g1.score_samples(X), g2.score_samples(X))


@pytest.mark.parametrize("family", GAUSSIANS)
def test_em_with_missing_entries_is_exact_for_every_covariance_type(family, rng):
    truth = two_gaussians(rng, family, spread=5.0)
    X = knock_out(truth.sample(300, rng)[0], rng, 0.25)
    start = MixtureModel(weights=[0.5, 0.5], components=[
        type(c)(mean=c.mean + 0.5, covariance=c.covariance) for c in truth.components])
    result = run_em(X, start, max_iter=150, chunk_size=64)
    assert_exact_em(result)
    h = result.history
    # near the fixed point the bound touches the likelihood again (an error in the statistics
    # or the entropy would leave a gap of its size here)
    assert np.diff(h.log_likelihood)[-1] < 1e-7
    assert abs(h.kl_after_m_step[-2]) < 1e-7
    assert abs(h.bound_after_m_step[-2] - h.bound[-2]) < 1e-7


def test_em_is_exact_for_the_other_families(rng):
    cases = []
    X = rng.poisson([[1.0, 6.0, 0.3]] * 150 + [[5.0, 1.0, 2.0]] * 150).astype(float)
    cases.append((X, [Poisson(rate=[2.0, 2.0, 1.0]), Poisson(rate=[3.0, 4.0, 1.0])]))
    X = (rng.random((300, 4)) < np.r_[[[0.9, 0.1, 0.8, 0.3]] * 150,
                                      [[0.2, 0.7, 0.4, 0.6]] * 150]).astype(float)
    cases.append((X, [Bernoulli(probability=[0.6, 0.4, 0.5, 0.5]),
                      Bernoulli(probability=[0.4, 0.5, 0.6, 0.4])]))
    X = rng.exponential([[1.0, 3.0]] * 150 + [[4.0, 0.5]] * 150)
    cases.append((X, [Exponential(rate=[1.0, 0.8]), Exponential(rate=[0.5, 1.2])]))
    X = np.column_stack([rng.integers(0, 3, 300), rng.integers(0, 2, 300)]).astype(float)
    cases.append((X, [Categorical(probabilities=[[0.2, 0.3, 0.5], [0.6, 0.4]]),
                      Categorical(probabilities=[[0.5, 0.3, 0.2], [0.3, 0.7]])]))
    X = 1.5 * rng.standard_t(4.0, (300, 3)) + np.r_[[[-2.0, 0, 1]] * 150, [[2.0, 1, 0]] * 150]
    cases.append((X, [StudentT(mean=[-1.0, 0, 0], scale=np.eye(3), dof=4.0),
                      StudentT(mean=[1.0, 0, 0], scale=np.eye(3), dof=4.0)]))
    X = np.column_stack([rng.normal(size=300), rng.poisson(3.0, 300), rng.normal(size=300)])
    X[:150, 0] += 3
    cases.append((X, [IndependentComponents(parts=[gaussian(Gaussian, 2, rng), Poisson(rate=[2.0])],
                                            columns=[(0, 2), (1,)]),
                      IndependentComponents(parts=[gaussian(Gaussian, 2, rng), Poisson(rate=[4.0])],
                                            columns=[(0, 2), (1,)])]))
    for X, comps in cases:
        Xm = knock_out(X, rng, 0.3)
        result = run_em(Xm, MixtureModel(weights=[0.5, 0.5], components=comps), max_iter=25)
        assert_exact_em(result, atol=1e-9)
        assert result.history.log_likelihood[-1] > result.history.log_likelihood[0]


def test_integer_weights_are_repeated_rows(rng):
    truth = two_gaussians(rng)
    X = knock_out(truth.sample(80, rng)[0], rng, 0.3)
    counts = rng.integers(1, 4, 80)
    start = two_gaussians(np.random.default_rng(2))
    a = run_em(X, start, max_iter=10, weights=counts.astype(float))
    b = run_em(np.repeat(X, counts, axis=0), start, max_iter=10)
    for ca, cb in zip(a.model.components, b.model.components):
        np.testing.assert_allclose(ca.mean, cb.mean, rtol=1e-10)
        np.testing.assert_allclose(ca.covariance_matrix, cb.covariance_matrix, rtol=1e-10)
    np.testing.assert_allclose(a.history.log_likelihood, b.history.log_likelihood, rtol=1e-11)


@pytest.mark.parametrize("family", [Gaussian, DiagonalNormal])
def test_float32_data_with_missing_entries(family, rng):
    truth = two_gaussians(rng, family)
    X = knock_out(truth.sample(400, rng)[0], rng, 0.2)
    start = two_gaussians(np.random.default_rng(3), family)
    r64 = run_em(X, start, max_iter=10)
    r32 = run_em(X.astype(np.float32), start, max_iter=10)
    for a, b in zip(r64.model.components, r32.model.components):
        np.testing.assert_allclose(b.mean, a.mean, rtol=1e-4, atol=1e-4)
    filled = r32.model.impute(X.astype(np.float32))
    assert filled.dtype == np.float32 and not np.isnan(filled).any()


# -- GMM -----------------------------------------------------------------------------------------
def mcar_problem(seed, n=1500, fraction=0.2):
    """Three correlated clusters in 4-D, and the same rows with ``fraction`` of the entries
    missing completely at random."""
    rng = np.random.default_rng(seed)
    weights = np.array([0.3, 0.4, 0.3])
    means = np.array([[-2.0, 0.0, 1.0, 0.5], [2.0, 1.0, -1.0, 0.0], [0.0, -3.0, 0.0, 2.0]])
    lags = np.abs(np.subtract.outer(np.arange(4), np.arange(4))).astype(float)
    covs = np.array([s * rho ** lags for s, rho in [(0.5, 0.8), (1.0, -0.6), (1.5, 0.5)]])
    labels = rng.choice(3, size=n, p=weights)
    X = np.array([rng.multivariate_normal(means[k], covs[k]) for k in labels])
    Xm = knock_out(X, rng, fraction)
    return X, Xm, (weights, means, covs)


def parameter_errors(gmm, truth):
    """Largest absolute errors of the means, covariances and weights (best matching)."""
    weights, means, covs = truth
    best = None
    for perm in itertools.permutations(range(len(weights))):
        p = list(perm)
        err = (np.max(np.abs(gmm.means_[p] - means)), np.max(np.abs(gmm.covariances_[p] - covs)),
               np.max(np.abs(gmm.weights_[p] - weights)))
        best = err if best is None or err[0] < best[0] else best
    return np.array(best)


def test_marginalising_beats_mean_imputation_and_nearly_matches_complete_data():
    X, Xm, truth = mcar_problem(0)
    mean_imputed = np.where(np.isnan(Xm), np.nanmean(Xm, axis=0), Xm)
    kw = dict(n_components=3, random_state=0, tol=1e-6, max_iter=300)
    complete = GMM(**kw).fit(X)
    marginal = GMM(missing="marginalize", **kw).fit(Xm)
    imputed = GMM(**kw).fit(mean_imputed)
    e_complete = parameter_errors(complete, truth)
    e_marginal = parameter_errors(marginal, truth)
    e_imputed = parameter_errors(imputed, truth)
    # stated tolerances (means, covariances, weights), from 1500 rows with 20 % MCAR
    assert np.all(e_marginal <= [0.2, 0.25, 0.03])
    assert np.all(e_marginal <= e_complete + np.array([0.08, 0.1, 0.02]))  # near complete data
    assert np.all(e_imputed >= 2.5 * e_marginal)  # mean imputation distorts everything
    np.testing.assert_allclose(np.sort(marginal.means_, axis=0),
                               np.sort(complete.means_, axis=0), atol=0.12)


def test_gmm_scoring_and_prediction_on_rows_with_nan(rng):
    X, Xm, _ = mcar_problem(1, n=600)
    for covariance_type in ("full", "tied", "diag", "spherical"):
        gmm = GMM(3, covariance_type=covariance_type, missing="marginalize",
                  random_state=0).fit(Xm)
        model = gmm.model_
        proba = gmm.predict_proba(Xm)
        np.testing.assert_allclose(proba, model.responsibilities(Xm, missing="marginalize"))
        np.testing.assert_array_equal(gmm.predict(Xm), np.argmax(proba, axis=1))
        ll = model.log_prob(Xm, missing="marginalize")
        np.testing.assert_allclose(gmm.score_samples(Xm), ll)
        assert gmm.score(Xm) == pytest.approx(ll.mean())
        assert gmm.bic(Xm) == pytest.approx(-2 * ll.sum() + model.n_parameters * np.log(600))
        assert gmm.aic(Xm) == pytest.approx(-2 * ll.sum() + 2 * model.n_parameters)
        assert gmm.lower_bound_ == pytest.approx(ll.mean(), abs=1e-9)
        filled = gmm.impute(Xm)
        np.testing.assert_allclose(filled, model.impute(Xm))
        assert not np.isnan(filled).any()
    # a GMM fitted without the option refuses NaN in scoring, but imputes
    plain = GMM(3, random_state=0).fit(X)
    with pytest.raises(ValueError, match="missing='marginalize'"):
        plain.predict(Xm)
    assert not np.isnan(plain.impute(Xm)).any()


def test_gmm_parameter_is_validated_and_cloned(rng):
    from sklearn.base import clone

    gmm = GMM(2, missing="marginalize")
    assert gmm.get_params()["missing"] == "marginalize"
    assert clone(gmm).missing == "marginalize"
    X = knock_out(rng.normal(size=(50, 3)), rng, 0.2)
    X[:, 1] = np.nan
    X[:, 0] = np.where(np.isnan(X).all(axis=1), 0.0, X[:, 0])
    with pytest.raises(ValueError, match="X column 1 has no observed entry"):
        gmm.fit(X)


def test_gmm_sample_weight_with_missing_entries(rng):
    _, Xm, _ = mcar_problem(2, n=300)
    counts = rng.integers(1, 3, 300)
    kw = dict(n_components=3, missing="marginalize", means_init=[[-2, 0, 1, 0.5],
              [2, 1, -1, 0], [0, -3, 0, 2]], tol=1e-10, max_iter=50)
    a = GMM(**kw).fit(Xm, sample_weight=counts)
    b = GMM(**kw).fit(np.repeat(Xm, counts, axis=0))
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-7, atol=1e-8)
