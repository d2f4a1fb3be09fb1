"""Bernoulli against scipy.stats.bernoulli, its closed-form MLE/MAP, and in a mixture."""

import warnings

import numpy as np
import pytest
from scipy import stats

from probmix import EMAlgorithm, MixtureModel
from probmix.distributions import Bernoulli
from probmix.init import initial_model, initial_responsibilities
from probmix.priors import Beta, Gamma

P = np.array([0.1, 0.5, 0.93])


def binary(n, rng, p=P):
    return (rng.random((n, len(p))) < p).astype(float)


def objective(model, X, w, prior):
    return w @ model.log_prob(X) + model.log_prior(prior)


@pytest.mark.parametrize("p", [P, [0.0, 1.0, 0.3], [1e-12, 1 - 1e-12, 0.5]],
                         ids=["typical", "boundary", "near-boundary"])
def test_log_prob_matches_scipy(p):
    p = np.asarray(p)
    X = binary(60, np.random.default_rng(0), np.full(3, 0.5))
    expected = stats.bernoulli.logpmf(X, p).sum(axis=1)
    ours = Bernoulli(probability=p).log_prob(X)
    finite = np.isfinite(expected)
    np.testing.assert_allclose(ours[finite], expected[finite], rtol=1e-10)
    np.testing.assert_array_equal(ours[~finite], -np.inf)  # never NaN at p ∈ {0, 1}


def test_boundary_component_is_finite_on_its_support():
    model = Bernoulli(probability=[0.0, 1.0])
    assert np.isfinite(model.log_prob(np.array([[0.0, 1.0]])))[0]
    assert model.log_prob(np.array([[0.0, 1.0]]))[0] == 0.0


def test_log_prob_outside_the_support_is_minus_inf():
    X = np.array([[0.5, 1.0], [2.0, 0.0], [1.0, 0.0]])
    ours = Bernoulli(probability=[0.5, 0.5]).log_prob(X)
    assert np.all(np.isneginf(ours[:2])) and np.isfinite(ours[2])


def test_weighted_mle_is_the_weighted_frequency():
    rng = np.random.default_rng(1)
    X, w = binary(80, rng), rng.uniform(0, 3, 80)
    w[:5] = 0.0
    fitted = Bernoulli.fit(X, w)
    np.testing.assert_allclose(fitted.probability, np.average(X, axis=0, weights=w), rtol=1e-12)


def test_constant_columns_give_exact_boundary_probabilities():
    # kept as counts of ones and of zeros, so p is exactly 1 (not 1 ± ε) for an all-ones column
    rng = np.random.default_rng(2)
    X = np.column_stack([np.ones(50), np.zeros(50), binary(50, rng, [0.5])[:, 0]])
    fitted = Bernoulli.fit(X, rng.uniform(0.1, 3.0, 50))
    assert fitted.probability[0] == 1.0 and fitted.probability[1] == 0.0
    assert np.all(np.isfinite(fitted.log_prob(X)))


@pytest.mark.parametrize("a, b", [(2.0, 2.0), ([1.5, 3.0, 1.0], [4.0, 1.2, 1.0])])
def test_map_is_the_beta_posterior_mode(a, b):
    rng = np.random.default_rng(3)
    X, w = binary(12, rng), rng.uniform(0, 2, 12)
    prior = Beta(a, b)
    fitted = Bernoulli.fit(X, w, prior=prior)
    a, b = np.broadcast_to(a, 3), np.broadcast_to(b, 3)
    ones, zeros = w @ X, w @ (1 - X)
    expected = (a - 1 + ones) / (a + b - 2 + ones + zeros)
    np.testing.assert_allclose(fitted.probability, expected, rtol=1e-12)
    best = objective(fitted, X, w, prior)
    for j in range(3):
        for step in (-1e-4, 1e-4):
            p = fitted.probability.copy()
            p[j] = np.clip(p[j] + step, 0.0, 1.0)
            assert best >= objective(Bernoulli(probability=p), X, w, prior)


def test_map_on_the_boundary_and_without_a_mode():
    X = np.zeros((3, 1))
    # a − 1 + n1 < 0 ≤ b − 1 + n0: the density is unbounded at p = 0, which is the mode
    assert Bernoulli.fit(X, prior=Beta(0.5, 1.0)).probability[0] == 0.0
    # a = b = 1 with no data: the flat posterior has no unique mode
    nothing = Bernoulli.sufficient_statistics(X, np.zeros(3))
    with pytest.raises(ValueError, match="no unique mode"):
        Bernoulli.from_statistics(nothing, Beta(1.0, 1.0))


def test_log_prior_is_scipys_beta():
    model = Bernoulli(probability=[0.2, 0.7])
    expected = stats.beta(2.0, 3.0).logpdf([0.2, 0.7]).sum()
    assert model.log_prior(Beta(2.0, 3.0)) == pytest.approx(expected, rel=1e-12)


def test_statistics_add_and_zero_weight_is_neutral():
    rng = np.random.default_rng(4)
    X, w = binary(40, rng), rng.uniform(0, 2, 40)
    whole = Bernoulli.sufficient_statistics(X, w)
    parts = (Bernoulli.sufficient_statistics(X[:7], w[:7])
             + Bernoulli.sufficient_statistics(X[7:], w[7:]))
    np.testing.assert_allclose(parts.ones, whole.ones, rtol=1e-13)
    np.testing.assert_allclose(parts.zeros, whole.zeros, rtol=1e-13)
    assert parts.total_weight == pytest.approx(whole.total_weight, rel=1e-13)
    assert whole + Bernoulli.sufficient_statistics(X, np.zeros(40)) == whole


def test_expected_log_prob_equals_weighted_log_prob():
    rng = np.random.default_rng(5)
    X, w = binary(30, rng), rng.uniform(0, 2, 30)
    model = Bernoulli(probability=[0.3, 0.6, 0.99])
    stats_ = Bernoulli.sufficient_statistics(X, w)
    assert model.expected_log_prob(stats_) == pytest.approx(w @ model.log_prob(X), rel=1e-12)


def test_sample_moments():
    n = 100_000
    X = Bernoulli(probability=P).sample(n, np.random.default_rng(6))
    assert X.shape == (n, 3) and set(np.unique(X)) <= {0.0, 1.0}
    assert np.all(np.abs(X.mean(axis=0) - P) <= 5 * np.sqrt(P * (1 - P) / n))


def test_support_error_names_the_column():
    X = np.ones((4, 3))
    X[3, 2] = 2.0
    with pytest.raises(ValueError, match=r"column 2 must hold 0/1 values.*2\.0 at row 3"):
        Bernoulli(probability=P).check_support(X)


@pytest.mark.parametrize("make, match", [
    (lambda: Bernoulli(probability=[1.5]), r"\[0, 1\]"),
    (lambda: Bernoulli(probability=[np.nan]), r"\[0, 1\]"),
    (lambda: Bernoulli(probability=[]), "non-empty"),
])
def test_invalid_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_wrong_prior_is_rejected():
    with pytest.raises(TypeError, match="Beta"):
        Bernoulli.fit(np.ones((2, 1)), prior=Gamma(1.0, 1.0))


# -- in a mixture ---------------------------------------------------------------------------------

def test_two_component_mixture_history_is_monotone():
    rng = np.random.default_rng(7)
    X = np.vstack([binary(100, rng, [0.9, 0.2, 0.7, 0.8, 0.1]),
                   binary(100, rng, [0.2, 0.8, 0.5, 0.1, 0.6])])
    resp = initial_responsibilities(X, 2, "random", np.random.default_rng(0))
    result = EMAlgorithm(tol=1e-8, max_iter=500).fit(X, initial_model(X, [Bernoulli] * 2, resp))
    ll = result.history.log_likelihood
    assert result.converged and np.all(np.diff(ll) >= -1e-12 * np.abs(ll[1:]))


def test_mixture_from_one_hot_start_keeps_a_finite_likelihood():
    # k-means++ gives one-hot responsibilities: components start with some p ∈ {0, 1}, yet
    # every row stays supported by its own component, so EM proceeds without NaN.
    rng = np.random.default_rng(8)
    X = np.vstack([binary(30, rng, [1.0, 0.0, 0.5]), binary(30, rng, [0.0, 1.0, 0.5])])
    resp = initial_responsibilities(X, 2, "kmeans++", np.random.default_rng(0))
    result = EMAlgorithm(tol=1e-10).fit(X, initial_model(X, [Bernoulli] * 2, resp))
    assert np.all(np.isfinite(result.history.log_likelihood))
    assert np.all(np.isfinite(result.model.log_prob(X)))


def test_mixture_recovers_known_probabilities():
    P_true = np.array([[0.9, 0.8, 0.1, 0.2, 0.9, 0.1, 0.6, 0.3],
                       [0.1, 0.3, 0.9, 0.7, 0.2, 0.8, 0.5, 0.4],
                       [0.8, 0.1, 0.8, 0.1, 0.5, 0.5, 0.9, 0.9]])
    truth = MixtureModel(weights=[0.3, 0.3, 0.4],
                         components=[Bernoulli(probability=p) for p in P_true])
    X, _ = truth.sample(3000, np.random.default_rng(9))
    best = None
    for seed in range(3):
        resp = initial_responsibilities(X, 3, "random", np.random.default_rng(seed))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result = EMAlgorithm(tol=1e-8, max_iter=1000).fit(
                X, initial_model(X, [Bernoulli] * 3, resp))
        if best is None or result.log_likelihood > best.log_likelihood:
            best = result
    # sort by the first feature's probability, as the true components are
    order = np.argsort([-c.probability[0] for c in best.model.components])
    P_hat = np.array([best.model.components[k].probability for k in order])
    order_true = np.argsort(-P_true[:, 0])
    # tolerance 0.06: about 4 standard errors sqrt(p(1-p)/(π n)) at p = 0.5, π = 0.3
    np.testing.assert_allclose(P_hat, P_true[order_true], atol=0.06)
    np.testing.assert_allclose(best.model.weights[order], truth.weights[order_true], atol=0.04)
