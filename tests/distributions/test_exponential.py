"""Exponential against scipy.stats.expon, its closed-form MLE/MAP, and in a mixture."""

import numpy as np
import pytest
from scipy import stats

from probmix import EMAlgorithm, MixtureModel
from probmix.distributions import Exponential, ExponentialStatistics
from probmix.init import initial_model, initial_responsibilities
from probmix.priors import Beta, Gamma

RATES = np.array([0.2, 1.0, 30.0])


def positive(n, rng, rates=RATES):
    return rng.exponential(1 / np.asarray(rates), size=(n, len(rates)))


def objective(model, X, w, prior):
    return w @ model.log_prob(X) + model.log_prior(prior)


@pytest.mark.parametrize("rates", [RATES, [1e-6, 1e6]], ids=["typical", "extreme"])
def test_log_prob_matches_scipy(rates):
    rates = np.asarray(rates)
    X = positive(50, np.random.default_rng(0), np.ones(len(rates)))
    X[0] = 0.0  # the edge of the support
    expected = stats.expon(scale=1 / rates).logpdf(X).sum(axis=1)
    np.testing.assert_allclose(Exponential(rate=rates).log_prob(X), expected, rtol=1e-10)


def test_negative_values_get_minus_inf_like_scipy():
    X = np.array([[-0.1, 1.0], [0.1, 1.0]])
    ours = Exponential(rate=[1.0, 2.0]).log_prob(X)
    np.testing.assert_array_equal(ours, stats.expon(scale=[1.0, 0.5]).logpdf(X).sum(axis=1))
    assert np.isneginf(ours[0])


def test_weighted_mle_is_the_inverse_weighted_mean():
    rng = np.random.default_rng(1)
    X, w = positive(80, rng), rng.uniform(0, 3, 80)
    w[:5] = 0.0
    fitted = Exponential.fit(X, w)
    np.testing.assert_allclose(fitted.rate, 1 / np.average(X, axis=0, weights=w), rtol=1e-12)


@pytest.mark.parametrize("shape, rate", [(2.0, 0.5), ([0.5, 3.0, 1.0], [1.0, 2.0, 0.1])])
def test_map_is_the_gamma_posterior_mode(shape, rate):
    rng = np.random.default_rng(2)
    X, w = positive(15, rng), rng.uniform(0.5, 2, 15)
    prior = Gamma(shape, rate)
    fitted = Exponential.fit(X, w, prior=prior)
    a, b = np.broadcast_to(shape, 3), np.broadcast_to(rate, 3)
    np.testing.assert_allclose(fitted.rate, (a - 1 + w.sum()) / (b + w @ X), rtol=1e-12)
    best = objective(fitted, X, w, prior)
    for j in range(3):
        for step in (-1e-4, 1e-4):
            rates = fitted.rate.copy()
            rates[j] *= 1 + step
            assert best >= objective(Exponential(rate=rates), X, w, prior)


def test_all_zero_column_needs_a_prior():
    X = np.column_stack([np.zeros(5), np.arange(1.0, 6.0)])
    with pytest.raises(ValueError, match=r"feature 0 .*infinite.*Gamma prior"):
        Exponential.fit(X)
    fitted = Exponential.fit(X, prior=Gamma(2.0, 1.0))
    assert np.all(np.isfinite(fitted.rate)) and np.all(np.isfinite(fitted.log_prob(X)))


def test_map_whose_mode_is_zero_is_refused():
    nothing = Exponential.sufficient_statistics(np.ones((2, 1)), np.zeros(2))
    with pytest.raises(ValueError, match="a - 1 \\+ N"):
        Exponential.from_statistics(nothing, Gamma(0.5, 1.0))


def test_log_prior_is_scipys_gamma():
    model = Exponential(rate=[0.5, 2.0])
    expected = stats.gamma(3.0, scale=1 / 2.0).logpdf([0.5, 2.0]).sum()
    assert model.log_prior(Gamma(3.0, 2.0)) == pytest.approx(expected, rel=1e-12)


def test_statistics_add_and_zero_weight_is_neutral():
    rng = np.random.default_rng(3)
    X, w = positive(40, rng), rng.uniform(0, 2, 40)
    whole = Exponential.sufficient_statistics(X, w)
    parts = (Exponential.sufficient_statistics(X[:11], w[:11])
             + Exponential.sufficient_statistics(X[11:], w[11:]))
    np.testing.assert_allclose(parts.total, whole.total, rtol=1e-13)
    assert parts.total_weight == pytest.approx(whole.total_weight, rel=1e-13)
    assert whole + Exponential.sufficient_statistics(X, np.zeros(40)) == whole


def test_expected_log_prob_equals_weighted_log_prob():
    rng = np.random.default_rng(4)
    X, w = positive(30, rng), rng.uniform(0, 2, 30)
    model = Exponential(rate=[0.5, 2.0, 10.0])
    stats_ = Exponential.sufficient_statistics(X, w)
    assert isinstance(stats_, ExponentialStatistics)
    assert model.expected_log_prob(stats_) == pytest.approx(w @ model.log_prob(X), rel=1e-12)


def test_sample_moments():
    n = 100_000
    X = Exponential(rate=RATES).sample(n, np.random.default_rng(5))
    assert X.shape == (n, 3) and np.all(X >= 0)
    mean = 1 / RATES  # the standard deviation is also 1/λ
    assert np.all(np.abs(X.mean(axis=0) - mean) <= 5 * mean / np.sqrt(n))


def test_support_error_names_the_column():
    X = np.ones((4, 3))
    X[0, 1] = -2.0
    with pytest.raises(ValueError, match=r"column 1 must be >= 0 .*-2\.0 at row 0"):
        Exponential(rate=RATES).check_support(X)


@pytest.mark.parametrize("rates, match", [([0.0], "> 0"), ([-1.0], "> 0"), ([np.inf], "finite"),
                                          ([[1.0]], "1-D")])
def test_invalid_parameters(rates, match):
    with pytest.raises(ValueError, match=match):
        Exponential(rate=rates)


def test_wrong_prior_is_rejected():
    with pytest.raises(TypeError, match="Gamma"):
        Exponential.fit(np.ones((2, 1)), prior=Beta(1.0, 1.0))


# -- in a mixture ---------------------------------------------------------------------------------

def test_two_component_mixture_history_is_monotone():
    truth = MixtureModel(weights=[0.4, 0.6], components=[
        Exponential(rate=[0.2, 3.0]), Exponential(rate=[4.0, 0.3])])
    X, _ = truth.sample(300, np.random.default_rng(6))
    resp = initial_responsibilities(X, 2, "random", np.random.default_rng(0))
    result = EMAlgorithm(tol=1e-8, max_iter=500).fit(X, initial_model(X, [Exponential] * 2,
                                                                        resp))
    ll = result.history.log_likelihood
    assert result.converged and np.all(np.diff(ll) >= -1e-12 * np.abs(ll[1:]))
    after = result.history.bound_after_m_step[:-1]
    assert np.all(after >= result.history.bound[:-1] - 1e-12)
