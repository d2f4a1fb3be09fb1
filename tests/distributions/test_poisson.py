"""Poisson against scipy.stats.poisson, its closed-form MLE/MAP, and in a mixture."""

import warnings

import numpy as np
import pytest
from scipy import stats

from probmix import EMAlgorithm, MixtureModel
from probmix.distributions import IndependentComponents, Poisson, PoissonStatistics
from probmix.init import initial_model, initial_responsibilities
from probmix.priors import Beta, Gamma

RATES = np.array([0.3, 4.0, 25.0])


def counts(n, rng, rates=RATES):
    return rng.poisson(rates, size=(n, len(rates))).astype(float)


def objective(model, X, w, prior):
    """The weighted log-posterior the MAP update maximises."""
    return w @ model.log_prob(X) + model.log_prior(prior)


@pytest.mark.parametrize("rates", [RATES, [0.0, 2.0], [1e-8, 1e3]],
                         ids=["typical", "zero", "extreme"])
def test_log_prob_matches_scipy(rates):
    rng = np.random.default_rng(0)
    rates = np.asarray(rates)
    X = counts(50, rng, np.maximum(rates, 0.5))
    X[0] = 0.0  # the one row a zero rate supports
    expected = stats.poisson.logpmf(X, rates).sum(axis=1)
    ours = Poisson(rate=rates).log_prob(X)
    finite = np.isfinite(expected)
    np.testing.assert_allclose(ours[finite], expected[finite], rtol=1e-10)
    # a zero rate: 0 · log 0 = 0 for zero counts, −∞ (never NaN) for the others
    np.testing.assert_array_equal(ours[~finite], -np.inf)
    assert np.isfinite(ours[0])


def test_log_prob_outside_the_support_is_minus_inf_like_scipy():
    X = np.array([[-1.0, 2.0], [0.5, 2.0], [1.0, 2.0]])
    ours = Poisson(rate=[1.0, 2.0]).log_prob(X)
    np.testing.assert_array_equal(ours[:2], stats.poisson.logpmf(X[:2], [1.0, 2.0]).sum(axis=1))
    assert np.all(np.isneginf(ours[:2])) and np.isfinite(ours[2])


def test_weighted_mle_is_the_weighted_mean():
    rng = np.random.default_rng(1)
    X, w = counts(80, rng), rng.uniform(0, 3, 80)
    w[:5] = 0.0
    fitted = Poisson.fit(X, w)
    np.testing.assert_allclose(fitted.rate, np.average(X, axis=0, weights=w), rtol=1e-12)


def test_all_zero_column_gives_a_zero_rate_with_a_finite_density():
    X = np.column_stack([np.zeros(10), np.arange(10.0)])
    fitted = Poisson.fit(X)
    assert fitted.rate[0] == 0.0
    assert np.all(np.isfinite(fitted.log_prob(X)))


@pytest.mark.parametrize("shape, rate", [(2.0, 0.5), ([0.5, 3.0, 1.0], [1.0, 2.0, 0.1])])
def test_map_is_the_gamma_posterior_mode(shape, rate):
    rng = np.random.default_rng(2)
    X, w = counts(15, rng), rng.uniform(0, 2, 15)
    prior = Gamma(shape, rate)
    fitted = Poisson.fit(X, w, prior=prior)
    a, b = np.broadcast_to(shape, 3), np.broadcast_to(rate, 3)
    expected = np.maximum(a - 1 + w @ X, 0) / (b + w.sum())
    np.testing.assert_allclose(fitted.rate, expected, rtol=1e-12)
    best = objective(fitted, X, w, prior)
    for j in range(3):
        for step in (-1e-4, 1e-4):
            rates = fitted.rate.copy()
            rates[j] = max(rates[j] * (1 + step), 0.0)
            assert best >= objective(Poisson(rate=rates), X, w, prior)


def test_map_with_a_small_shape_clips_at_zero():
    # a − 1 + T < 0: the posterior density decreases from λ = 0, so the mode is 0
    fitted = Poisson.fit(np.zeros((4, 1)), prior=Gamma(0.5, 1.0))
    assert fitted.rate[0] == 0.0


def test_log_prior_is_scipys_gamma():
    p = Poisson(rate=[0.5, 2.0])
    expected = stats.gamma(3.0, scale=1 / 2.0).logpdf([0.5, 2.0]).sum()
    assert p.log_prior(Gamma(3.0, 2.0)) == pytest.approx(expected, rel=1e-12)
    assert p.log_prior(None) == 0.0


def test_statistics_add_and_zero_weight_is_neutral():
    rng = np.random.default_rng(3)
    X, w = counts(40, rng), rng.uniform(0, 2, 40)
    whole = Poisson.sufficient_statistics(X, w)
    parts = Poisson.sufficient_statistics(X[:13], w[:13]) + Poisson.sufficient_statistics(
        X[13:], w[13:])
    np.testing.assert_allclose(parts.total, whole.total, rtol=1e-13)
    assert parts.weight == pytest.approx(whole.weight, rel=1e-13)
    assert parts.log_factorial == pytest.approx(whole.log_factorial, rel=1e-13)
    empty = Poisson.sufficient_statistics(X, np.zeros(40))
    assert empty.total_weight == 0.0
    assert whole + empty == whole


def test_expected_log_prob_equals_weighted_log_prob():
    rng = np.random.default_rng(4)
    X, w = counts(30, rng), rng.uniform(0, 2, 30)
    model = Poisson(rate=[1.0, 3.0, 20.0])
    stats_ = Poisson.sufficient_statistics(X, w)
    assert model.expected_log_prob(stats_) == pytest.approx(w @ model.log_prob(X), rel=1e-12)


def test_sample_moments():
    n = 100_000
    X = Poisson(rate=RATES).sample(n, np.random.default_rng(5))
    assert X.shape == (n, 3) and np.all(np.round(X) == X)
    # mean and variance both λ; 5 standard errors (var of the sample variance ≈ (λ + 2λ²)/n)
    assert np.all(np.abs(X.mean(axis=0) - RATES) <= 5 * np.sqrt(RATES / n))
    assert np.all(np.abs(X.var(axis=0) - RATES) <= 5 * np.sqrt((RATES + 2 * RATES ** 2) / n))


@pytest.mark.parametrize("bad, problem", [(-1.0, "non-negative integer"), (2.5, "2.5")])
def test_support_error_names_the_column(bad, problem):
    X = np.ones((4, 3))
    X[2, 1] = bad
    with pytest.raises(ValueError, match=f"column 1 .*{problem}"):
        Poisson(rate=[1.0, 1.0, 1.0]).check_support(X)


def test_mixture_fit_checks_the_support():
    start = MixtureModel(weights=[1.0], components=[Poisson(rate=[1.0])])
    with pytest.raises(ValueError, match="column 0"):
        EMAlgorithm().fit(np.array([[1.0], [-2.0]]), start)


@pytest.mark.parametrize("make, match", [
    (lambda: Poisson(rate=[-1.0]), ">= 0"),
    (lambda: Poisson(rate=[np.inf]), "finite"),
    (lambda: Poisson(rate=[[1.0]]), "1-D"),
    (lambda: Poisson.from_statistics(Poisson.sufficient_statistics(np.ones((2, 1)), np.zeros(2))),
     "zero total weight"),
])
def test_invalid_input(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_wrong_prior_is_rejected():
    with pytest.raises(TypeError, match="Gamma"):
        Poisson.fit(np.ones((2, 1)), prior=Beta(1.0, 1.0))


def test_statistics_type():
    s = Poisson.sufficient_statistics(np.ones((2, 1)), np.ones(2))
    assert isinstance(s, PoissonStatistics) and s.total_weight == 2.0


# -- in a mixture ---------------------------------------------------------------------------------

def test_two_component_mixture_history_is_monotone():
    rng = np.random.default_rng(6)
    X = np.vstack([counts(100, rng, [1.0, 6.0]), counts(100, rng, [5.0, 1.0])])
    resp = initial_responsibilities(X, 2, "random", np.random.default_rng(0))
    result = EMAlgorithm(tol=1e-10, max_iter=300).fit(X, initial_model(X, [Poisson] * 2, resp))
    ll = result.history.log_likelihood
    assert result.converged and np.all(np.diff(ll) >= -1e-12 * np.abs(ll[1:]))
    # the bound after each M-step sits between the two log-likelihoods
    after = result.history.bound_after_m_step[:-1]
    assert np.all(after >= result.history.bound[:-1] - 1e-12)
    assert np.all(after <= ll[1:] + 1e-12)


def test_mixture_recovers_known_rates():
    # 3 components, 2 features, n = 3000, fixed seeds; a few random restarts, best kept.
    truth = MixtureModel(weights=[0.2, 0.3, 0.5], components=[
        Poisson(rate=[1.0, 10.0]), Poisson(rate=[8.0, 2.0]), Poisson(rate=[15.0, 15.0])])
    X, _ = truth.sample(3000, np.random.default_rng(7))
    best = None
    for seed in range(3):
        resp = initial_responsibilities(X, 3, "kmeans++", np.random.default_rng(seed))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result = EMAlgorithm(tol=1e-8, max_iter=500).fit(
                X, initial_model(X, [Poisson] * 3, resp))
        if best is None or result.log_likelihood > best.log_likelihood:
            best = result
    order = np.argsort([c.rate[0] for c in best.model.components])
    rates = np.array([best.model.components[k].rate for k in order])
    true_rates = np.array([c.rate for c in truth.components])
    # tolerance: a few standard errors sqrt(λ / (π n)) of each component's mean
    se = np.sqrt(true_rates / (np.array(truth.weights)[:, None] * 3000))
    assert np.all(np.abs(rates - true_rates) <= 5 * se + 0.05 * true_rates)
    np.testing.assert_allclose(best.model.weights[order], truth.weights, atol=0.04)


def test_poisson_part_of_a_product_reports_its_column_in_the_product():
    product = IndependentComponents(parts=[Poisson(rate=[1.0]), Poisson(rate=[1.0, 2.0])],
                                    columns=[(2,), (0, 1)])
    X = np.ones((3, 3))
    X[1, 1] = 0.5  # column 1 of X is column 1 of the second part
    with pytest.raises(ValueError, match="X column 1 must hold non-negative integer"):
        product.check_support(X)
    X[1, 1], X[0, 2] = 1.0, -1.0  # column 2 of X is column 0 of the first part
    with pytest.raises(ValueError, match="X column 2 must"):
        product.check_support(X)
