"""Categorical against a direct log-pmf and scipy's multinomial (n = 1), its closed-form
MLE/MAP, statistics with different numbers of categories per feature, and in a mixture."""

import numpy as np
import pytest
from scipy import stats

from probmix import EMAlgorithm, MixtureModel
from probmix.distributions import Categorical, CategoricalStatistics
from probmix.em import MAP
from probmix.init import initial_model, initial_responsibilities
from probmix.priors import Dirichlet, Gamma

# different numbers of categories per feature, one zero probability
PROBS = ([0.2, 0.8], [0.1, 0.0, 0.6, 0.3], [0.25, 0.25, 0.5])


def codes(n, rng, probs=PROBS):
    return np.column_stack([rng.choice(len(p), size=n, p=p) for p in probs]).astype(float)


def objective(model, X, w, prior):
    return w @ model.log_prob(X) + model.log_prior(prior)


def multinomial_log_pmf(X, probs):
    """Σ_j log Multinomial(one-hot(x_j) | n=1, p_j): scipy's twin of a categorical feature."""
    total = np.zeros(len(X))
    for j, p in enumerate(probs):
        one_hot = np.eye(len(p))[X[:, j].astype(int)]
        total += stats.multinomial.logpmf(one_hot, n=1, p=p)
    return total


def test_log_prob_matches_scipy_multinomial_and_a_direct_lookup():
    X = codes(60, np.random.default_rng(0), [np.full(len(p), 1 / len(p)) for p in PROBS])
    model = Categorical(probabilities=PROBS)
    ours = model.log_prob(X)
    with np.errstate(divide="ignore"):
        direct = sum(np.log(np.asarray(p))[X[:, j].astype(int)] for j, p in enumerate(PROBS))
    twin = multinomial_log_pmf(X, PROBS)
    finite = np.isfinite(direct)
    assert not finite.all()  # some rows hit the zero probability: −∞, never NaN
    np.testing.assert_array_equal(ours[~finite], -np.inf)
    np.testing.assert_allclose(ours[finite], direct[finite], rtol=1e-10)
    np.testing.assert_allclose(ours[finite], twin[finite], rtol=1e-10)


def test_codes_outside_the_categories_get_minus_inf():
    model = Categorical(probabilities=[[0.5, 0.5]])
    ours = model.log_prob(np.array([[2.0], [-1.0], [0.5], [1.0]]))
    assert np.all(np.isneginf(ours[:3])) and np.isfinite(ours[3])


def test_weighted_mle_is_the_weighted_frequency():
    rng = np.random.default_rng(1)
    X, w = codes(100, rng), rng.uniform(0, 3, 100)
    w[:5] = 0.0
    fitted = Categorical.fit(X, w)
    assert fitted.n_categories == (2, 4, 3)
    for j, p in enumerate(fitted.probabilities):
        expected = np.array([w @ (X[:, j] == c) for c in range(p.size)]) / w.sum()
        np.testing.assert_allclose(p, expected, rtol=1e-12)


def test_number_of_categories_is_the_largest_code_plus_one():
    # Feature 1 of PROBS has p = 0 for code 1 but code 3 occurs: 4 categories, p_1 = 0. The
    # MLE of a feature whose top code never occurs has fewer categories (like CategoricalNB).
    X = np.array([[0.0, 3.0], [1.0, 0.0], [1.0, 2.0]])
    fitted = Categorical.fit(X)
    assert fitted.n_categories == (2, 4)
    assert fitted.probabilities[1][1] == 0.0
    assert np.all(np.isfinite(fitted.log_prob(X)))
    # a Dirichlet with a longer α fixes the number of categories
    assert Categorical.fit(X, prior=[Dirichlet(np.ones(3)), Dirichlet(np.ones(6))]
                           ).n_categories == (3, 6)


@pytest.mark.parametrize("prior", [Dirichlet(2.5), (Dirichlet([2.0, 3.0]), Dirichlet(
    [1.0, 4.0, 1.5, 2.0]), Dirichlet(1.0))], ids=["shared", "per-feature"])
def test_map_is_the_dirichlet_posterior_mode(prior):
    rng = np.random.default_rng(2)
    X, w = codes(20, rng), rng.uniform(0, 2, 20)
    fitted = Categorical.fit(X, w, prior=prior)
    priors = prior if isinstance(prior, tuple) else (prior,) * 3
    for j, p in enumerate(fitted.probabilities):
        counts = np.array([w @ (X[:, j] == c) for c in range(p.size)])
        mass = np.maximum(counts + priors[j].concentrations(p.size) - 1, 0)
        np.testing.assert_allclose(p, mass / mass.sum(), rtol=1e-12)
    best = objective(fitted, X, w, prior)
    # neighbours on the simplex: move a little mass from one category to another
    for j, p in enumerate(fitted.probabilities):
        for a in range(p.size):
            for b in range(p.size):
                if a == b or p[a] < 1e-4:
                    continue
                moved = [q.copy() for q in fitted.probabilities]
                moved[j][a] -= 1e-4
                moved[j][b] += 1e-4
                assert best >= objective(Categorical(probabilities=moved), X, w, prior)


def test_log_prior_matches_scipy_dirichlet_inside_the_simplex():
    model = Categorical(probabilities=[[0.2, 0.8], [0.3, 0.3, 0.4]])
    alpha = [2.0, 3.0]
    expected = (stats.dirichlet.logpdf([0.2, 0.8], alpha)
                + stats.dirichlet.logpdf([0.3, 0.3, 0.4], [1.5] * 3))
    got = model.log_prior((Dirichlet(alpha), Dirichlet(1.5)))
    assert got == pytest.approx(expected, rel=1e-12)
    # on the boundary: the density is 0 for α > 1 (where scipy refuses α < 1 instead)
    assert Categorical(probabilities=[[0.0, 1.0]]).log_prior(Dirichlet(2.0)) == -np.inf


def test_statistics_add_across_chunks_with_different_codes():
    # chunk A sees codes up to 1, chunk B up to 3: the sum pads, so it equals one pass
    rng = np.random.default_rng(3)
    X, w = codes(50, rng), rng.uniform(0, 2, 50)
    X = X[np.argsort(X[:, 1], kind="stable")]
    whole = Categorical.sufficient_statistics(X, w)
    split = (Categorical.sufficient_statistics(X[:20], w[:20])
             + Categorical.sufficient_statistics(X[20:], w[20:]))
    assert [c.size for c in Categorical.sufficient_statistics(X[:20], w[:20]).counts] != [
        c.size for c in whole.counts]
    for a, b in zip(split.counts, whole.counts):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    assert whole + Categorical.sufficient_statistics(X, np.zeros(50)) == whole


def test_expected_log_prob_equals_weighted_log_prob():
    rng = np.random.default_rng(4)
    X, w = codes(30, rng), rng.uniform(0, 2, 30)
    model = Categorical(probabilities=[[0.3, 0.7], [0.1, 0.2, 0.3, 0.4], [0.5, 0.25, 0.25]])
    stats_ = Categorical.sufficient_statistics(X, w)
    assert isinstance(stats_, CategoricalStatistics)
    assert model.expected_log_prob(stats_) == pytest.approx(w @ model.log_prob(X), rel=1e-12)


def test_sample_frequencies():
    n = 100_000
    X = Categorical(probabilities=PROBS).sample(n, np.random.default_rng(5))
    assert X.shape == (n, 3)
    for j, p in enumerate(PROBS):
        p = np.asarray(p)
        freq = np.bincount(X[:, j].astype(int), minlength=p.size) / n
        assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / n))


@pytest.mark.parametrize("bad", [3.0, -1.0, 0.5])
def test_support_error_names_the_column(bad):
    X = np.zeros((3, 3))
    X[1, 2] = bad
    with pytest.raises(ValueError, match=r"column 2 must hold integer codes in \[0, 3\)"):
        Categorical(probabilities=PROBS).check_support(X)


@pytest.mark.parametrize("probs, match", [
    ([[0.5, 0.6]], "sum to 1"),
    ([[-0.5, 1.5]], ">= 0"),
    ([[]], "non-empty"),
    ([0.5, 0.5], r"one feature write \[\[p_0"),
    (np.array([0.5, 0.5]), "2-D array"),
])
def test_invalid_parameters(probs, match):
    with pytest.raises(ValueError, match=match):
        Categorical(probabilities=probs)


def test_wrong_prior_and_too_small_alpha():
    with pytest.raises(TypeError, match="Dirichlet"):
        Categorical.fit(np.zeros((2, 1)), prior=Gamma(1.0, 1.0))
    nothing = Categorical.sufficient_statistics(np.zeros((2, 1)), np.zeros(2))
    with pytest.raises(ValueError, match="alpha is too small"):
        Categorical.from_statistics(nothing, Dirichlet(0.5))


def test_n_parameters_counts_free_probabilities():
    assert Categorical(probabilities=PROBS).n_parameters == 1 + 3 + 2


# -- in a mixture ---------------------------------------------------------------------------------

def test_two_component_mixture_history_is_monotone():
    rng = np.random.default_rng(6)
    X = np.vstack([codes(100, rng, ([0.8, 0.1, 0.1], [0.7, 0.3], [0.1, 0.2, 0.7])),
                   codes(100, rng, ([0.1, 0.2, 0.7], [0.2, 0.8], [0.6, 0.3, 0.1]))])
    resp = initial_responsibilities(X, 2, "random", np.random.default_rng(0))
    result = EMAlgorithm(tol=1e-8, max_iter=500).fit(X, initial_model(X, [Categorical] * 2,
                                                                        resp))
    ll = result.history.log_likelihood
    assert result.converged and np.all(np.diff(ll) >= -1e-12 * np.abs(ll[1:]))
    # every component spans the same categories (those of the whole data set)
    assert {c.n_categories for c in result.model.components} == {(3, 2, 3)}


def test_map_mixture_keeps_unseen_categories_inside_the_simplex():
    # Code 2 of feature 0 and code 1 of feature 1 never occur: under a Dirichlet(2) prior of
    # the right length each keeps a positive probability, and the log-posterior never drops.
    rng = np.random.default_rng(7)
    X = np.vstack([codes(60, rng, ([0.9, 0.1], [1.0], [0.8, 0.2], [0.7, 0.3])),
                   codes(60, rng, ([0.1, 0.9], [1.0], [0.2, 0.8], [0.1, 0.9]))])
    prior = (Dirichlet(np.full(3, 2.0)), Dirichlet(np.full(2, 2.0)), Dirichlet(1.0),
             Dirichlet(1.0))
    start = MixtureModel(weights=[0.5, 0.5], components=[
        Categorical(probabilities=[[0.6, 0.3, 0.1], [0.5, 0.5], [0.6, 0.4], [0.5, 0.5]]),
        Categorical(probabilities=[[0.3, 0.6, 0.1], [0.5, 0.5], [0.4, 0.6], [0.5, 0.5]])])
    result = EMAlgorithm(m_step=MAP(component_prior=prior), tol=1e-10, max_iter=500).fit(
        X, start)
    assert result.converged
    for c in result.model.components:
        assert c.n_categories == (3, 2, 2, 2)
        assert np.all(c.probabilities[0] > 0) and np.all(c.probabilities[1] > 0)
    assert np.all(np.diff(result.history.objective) >= -1e-12)
