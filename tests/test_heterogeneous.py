"""Mixtures whose components are of different families, and mixtures nested as components:
EMAlgorithm fits both unchanged, and the log-likelihood never decreases."""

import numpy as np
import pytest

from probmix import EMAlgorithm, MixtureModel
from probmix.distributions import Exponential, Gaussian, Poisson, StudentT
from probmix.init import initial_model, initial_responsibilities


def monotone(history):
    ll = history.log_likelihood
    return bool(np.all(np.diff(ll) >= -1e-12 * np.abs(ll[1:])))


# -- a Gaussian bulk and an Exponential tail -------------------------------------------------------

@pytest.fixture(scope="module")
def bulk_and_tail():
    # the bulk sits 10σ above 0, so every row is also in the Exponential's support
    truth = MixtureModel(weights=[0.7, 0.3], components=[
        Gaussian(mean=[10.0], covariance=[[1.0]]), Exponential(rate=[0.1])])
    X, labels = truth.sample(2000, np.random.default_rng(0))
    return truth, X, labels


def test_gaussian_bulk_and_exponential_tail(bulk_and_tail):
    truth, X, _ = bulk_and_tail
    # the initialisers take a list of families, one per component
    resp = initial_responsibilities(X, 2, "kmeans++", np.random.default_rng(0))
    init = initial_model(X, [Gaussian, Exponential], resp)
    result = EMAlgorithm(tol=1e-10, max_iter=500).fit(X, init)
    assert result.converged and monotone(result.history)
    gauss, expo = result.model.components
    assert isinstance(gauss, Gaussian) and isinstance(expo, Exponential)
    # tolerances: several standard errors at n = 2000 (weights ±0.03, mean ±0.1, rate ±15%)
    np.testing.assert_allclose(result.model.weights, truth.weights, atol=0.03)
    assert abs(gauss.mean[0] - 10.0) < 0.1 and abs(gauss.covariance_matrix[0, 0] - 1.0) < 0.15
    assert abs(expo.rate[0] - 0.1) < 0.015
    # both families report expected_log_prob, so the bound after each M-step is recorded
    after = result.history.bound_after_m_step[:-1]
    assert np.all(np.isfinite(after))
    assert np.all(after >= result.history.bound[:-1] - 1e-12)
    assert result.model.n_parameters == 1 + 2 + 1


def test_heterogeneous_mixture_samples_and_scores(bulk_and_tail):
    truth, X, labels = bulk_and_tail
    assert np.all(X[labels == 1] >= 0)
    # log p(x) = log Σ_k π_k p_k(x), each component scored by its own family
    expected = np.logaddexp(np.log(0.7) + truth.components[0].log_prob(X),
                            np.log(0.3) + truth.components[1].log_prob(X))
    np.testing.assert_allclose(truth.log_prob(X), expected, rtol=1e-12)


def test_gaussian_and_student_t_components_together():
    # one family with classmethod statistics, one whose statistics need the instance
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal([0.0, 0.0], 0.5, (150, 2)),
                   StudentT(mean=[4.0, 0.0], scale=np.eye(2), dof=2.0).sample(150, rng)])
    start = MixtureModel(weights=[0.5, 0.5], components=[
        Gaussian(mean=[1.0, 0.0], covariance=np.eye(2)),
        StudentT(mean=[3.0, 0.0], scale=np.eye(2), dof=2.0)])
    result = EMAlgorithm(tol=1e-10, max_iter=500).fit(X, start)
    assert result.converged and monotone(result.history)
    np.testing.assert_allclose(result.model.components[1].mean, [4.0, 0.0], atol=0.3)


def test_exponential_tail_with_a_bulk_reaching_below_zero():
    # Rows below 0 have density 0 under the Exponential (log_prob −∞, responsibility 0), but
    # the Gaussian explains them, so the likelihood is finite and EM is well defined.
    truth = MixtureModel(weights=[0.7, 0.3], components=[
        Gaussian(mean=[0.0], covariance=[[1.0]]), Exponential(rate=[0.2])])
    X, _ = truth.sample(300, np.random.default_rng(2))
    assert np.all(np.isfinite(truth.log_prob(X)))
    result = EMAlgorithm(tol=1e-8).fit(X, truth)
    assert monotone(result.history)


def test_a_row_needs_the_support_of_one_component():
    # 0.5 is no count, but the Gaussian component scores it: the mixture accepts the row
    start = MixtureModel(weights=[0.5, 0.5], components=[
        Gaussian(mean=[0.0], covariance=[[1.0]]), Poisson(rate=[1.0])])
    assert start.support_mask(np.array([[0.5], [-1.0]])).all()
    # a row outside every component's support is refused, with each one's requirement
    counts = MixtureModel(weights=[0.5, 0.5], components=[Poisson(rate=[1.0]),
                                                          Exponential(rate=[1.0])])
    with pytest.raises(ValueError, match=r"X row 1 lies outside the support of every "
                       r"component: component 0 \(Poisson\): X column 0 must hold non-negative "
                       r"integer counts.*component 1 \(Exponential\): X column 0 must be >= 0"):
        EMAlgorithm().fit(np.array([[1.0], [-2.0]]), counts)


# -- a mixture as a component of a mixture ---------------------------------------------------------

def nested_start():
    def pair(centre):
        return MixtureModel(weights=[0.5, 0.5], components=[
            Gaussian(mean=[centre - 1.0], covariance=[[1.0]]),
            Gaussian(mean=[centre + 1.0], covariance=[[1.0]])])
    return MixtureModel(weights=[0.4, 0.6], components=[pair(-2.0), pair(2.0)])


def flatten(nested):
    """The same density as a flat mixture: weight π_c ρ_cd for inner component d of c."""
    weights = [p * r for p, inner in zip(nested.weights, nested.components)
               for r in inner.weights]
    components = [g for inner in nested.components for g in inner.components]
    return MixtureModel(weights=weights, components=components)


@pytest.fixture(scope="module")
def four_bumps():
    rng = np.random.default_rng(3)
    return np.concatenate([rng.normal(-6, 1, 100), rng.normal(-3, 1, 100),
                           rng.normal(3, 1, 150), rng.normal(6, 1, 150)])[:, None]


def test_nested_mixture_is_fitted_by_em(four_bumps):
    X = four_bumps
    result = EMAlgorithm(tol=1e-10, max_iter=1000).fit(X, nested_start())
    assert result.converged and monotone(result.history)
    assert all(isinstance(c, MixtureModel) for c in result.model.components)
    means = sorted(g.mean[0] for inner in result.model.components for g in inner.components)
    np.testing.assert_allclose(means, [-6.0, -3.0, 3.0, 6.0], atol=0.4)
    # π weights (1) + 2 × (ρ weight (1) + 2 Gaussians × 2)
    assert result.model.n_parameters == 1 + 2 * (1 + 2 * 2)


def test_nested_em_follows_the_flat_em_path(four_bumps):
    # q(c) q(d | c) is the flat posterior over (c, d), and N_cd / N_c · N_c / N = N_cd / N: one
    # nested EM step is one flat EM step, so the two fits agree iterate by iterate.
    X = four_bumps
    start = nested_start()
    np.testing.assert_allclose(start.log_prob(X), flatten(start).log_prob(X), rtol=1e-12)
    fit = EMAlgorithm(tol=0.0, max_iter=25).fit
    with pytest.warns(UserWarning, match="did not converge"):
        a = fit(X, start)
    with pytest.warns(UserWarning, match="did not converge"):
        b = fit(X, flatten(start))
    np.testing.assert_allclose(a.history.log_likelihood, b.history.log_likelihood, rtol=1e-10)
    np.testing.assert_allclose(a.model.log_prob(X), b.model.log_prob(X), rtol=1e-9)


def test_nested_templates_initialise(four_bumps):
    X = four_bumps
    resp = initial_responsibilities(X, 2, "kmeans++", np.random.default_rng(0))
    init = initial_model(X, [nested_start().components[0]] * 2, resp)
    assert all(isinstance(c, MixtureModel) for c in init.components)
    result = EMAlgorithm(tol=1e-8, max_iter=1000).fit(X, init)
    assert monotone(result.history)


def test_nested_inner_component_without_mass_is_kept_at_weight_zero(four_bumps):
    # At the outer level a component whose responsibilities underflow to exactly 0 is kept
    # with weight 0; inside a nested mixture the same situation should not end the fit.
    X = four_bumps
    inner = MixtureModel(weights=[0.5, 0.5], components=[
        Gaussian(mean=[-4.0], covariance=[[4.0]]), Gaussian(mean=[1e3], covariance=[[1.0]])])
    start = MixtureModel(weights=[0.5, 0.5], components=[
        inner, Gaussian(mean=[4.0], covariance=[[4.0]])])
    result = EMAlgorithm(tol=1e-8).fit(X, start)
    assert result.converged
    assert result.model.components[0].weights[1] == 0.0
    assert monotone(result.history)


def test_nested_mixture_samples():
    X, labels = nested_start().sample(100, np.random.default_rng(4))
    assert X.shape == (100, 1) and labels.shape == (100,)
