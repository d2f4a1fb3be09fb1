r"""Properties of EM that hold for every data set, mixture and covariance structure.

The identity behind EM, for any q on the simplex:

    log p(X|θ) = L(q, θ) + KL(q ‖ p(c|X, θ)),
    L(q, θ) = Σ_i Σ_k q_ik [log π_k + log p_k(x_i) − log q_ik]

The E-step sets q to the posterior (KL = 0), the M-step maximises L(q, ·); hence the
log-likelihood never decreases. The tests compute L and KL directly from
``MixtureModel.log_joint`` / ``posterior`` and compare them with what ``EMAlgorithm`` records.
"""

import warnings
from typing import ClassVar

import attrs
import numpy as np
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from probmix import EMAlgorithm, MixtureModel
from probmix.distributions import Gaussian
from probmix.em import EStep, MaximumLikelihood
from probmix.exceptions import (
    ConvergenceWarning,
    ObjectiveDecreaseWarning,
    SingularCovarianceError,
)
from probmix.priors import CovarianceRidge

from .strategies import arbitrary_q, em_cases, mixture_models, permuted, shifted


def run_em(X, init, *, max_iter=12, ridge=None, quiet_decrease=False, **kwargs):
    """EM for exactly ``max_iter`` iterations (tol=0), keeping every iterate.

    Without a ridge the likelihood is unbounded: a component may legitimately collapse onto
    a few points and raise ``SingularCovarianceError``. Such an example is outside the
    properties' premise (a well-defined EM sequence), so it is rejected, not failed.
    """
    algorithm = EMAlgorithm(m_step=MaximumLikelihood(component_prior=ridge), tol=0.0,
                            max_iter=max_iter, keep_models=True, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # expected with tol=0
        if quiet_decrease:  # the test itself bounds the decrease
            warnings.simplefilter("ignore", ObjectiveDecreaseWarning)
        try:
            return algorithm.fit(X, init)
        except SingularCovarianceError:
            reject()


def bound_and_kl(model, X, q):
    """L(q, θ) and KL(q ‖ posterior) summed over rows, computed directly (0 · log 0 = 0)."""
    post = model.posterior(X)
    positive = q > 0
    log_q = np.log(np.where(positive, q, 1.0))
    bound = np.where(positive, q * (post.log_joint - log_q), 0.0).sum()
    kl_rows = np.where(positive, q * (log_q - post.log_resp), 0.0).sum(axis=1)
    return bound, kl_rows, post.log_evidence


def round_off(values):
    """Round-off allowance for per-sample log-likelihoods: 1e-9 relative, 1e-9 at least."""
    return 1e-9 * np.maximum(1.0, np.abs(values))


# -- monotonicity ------------------------------------------------------------------------------

@given(case=em_cases())
def test_log_likelihood_never_decreases_without_ridge(case):
    history = run_em(case.X, case.init).history
    ll = history.log_likelihood
    assert np.all(np.isfinite(ll))
    assert np.all(np.diff(ll) >= -round_off(ll[:-1])), np.diff(ll)


@given(case=em_cases(), reg_covar=st.sampled_from([1e-12, 1e-9, 1e-6, 1e-4]))
def test_log_likelihood_with_a_small_ridge_decreases_at_most_second_order(case, reg_covar):
    # The ridged update Σ = S/N + rI is not the maximiser of L(q, ·); it loses
    # ½ Σ_j [log(1 + u_j) − u_j / (1 + u_j)] ≤ u_j² / 4 per unit mass, u_j = r / λ_j over the
    # eigenvalues λ_j of S/N. So a step may lose at most d (r / λ_min)² / 4 per sample.
    result = run_em(case.X, case.init, ridge=CovarianceRidge(reg_covar=reg_covar),
                    quiet_decrease=True)
    ll = result.history.log_likelihood
    lam_min = min(np.linalg.eigvalsh(c.covariance_matrix)[0] - reg_covar
                  for r in result.history[1:] for c in r.model.components)
    d = case.X.shape[1]
    allowed = round_off(ll[:-1]) + d * (reg_covar / lam_min) ** 2 / 4
    assert np.all(np.diff(ll) >= -allowed), np.diff(ll)


@given(case=em_cases())
def test_m_step_never_decreases_the_bound(case):
    history = run_em(case.X, case.init).history
    bound, after = history.bound[:-1], history.bound_after_m_step[:-1]
    assert np.all(np.isfinite(after))
    assert np.isnan(history.bound_after_m_step[-1])  # no M-step after the last record
    assert np.all(after >= bound - round_off(bound))
    # and the next E-step lifts L(q_t, θ_{t+1}) to log p(X | θ_{t+1}) (KL ≥ 0)
    ll_next = history.log_likelihood[1:]
    assert np.all(ll_next >= after - round_off(after))


@given(case=em_cases(max_components=2, max_features=2))
@settings(max_examples=50)
def test_recorded_values_match_direct_computation(case):
    result = run_em(case.X, case.init, max_iter=4)
    n = case.X.shape[0]
    for t, record in enumerate(result.history):
        model = record.model
        assert record.iteration == t
        ll = model.log_prob(case.X).sum()
        assert record.log_likelihood * n == np_approx(ll)
        q = model.responsibilities(case.X)
        bound, _, _ = bound_and_kl(model, case.X, q)
        assert record.bound * n == np_approx(bound)
        if t + 1 < len(result.history):  # L(q_t, θ_{t+1})
            after, _, _ = bound_and_kl(result.history[t + 1].model, case.X, q)
            assert record.bound_after_m_step * n == np_approx(after)
    assert result.model is result.history[-1].model
    assert result.n_iter == len(result.history) - 1 == 4


def np_approx(value, rel=1e-10):
    """Equality of summed log-likelihood terms up to round-off."""
    return pytest.approx(value, rel=rel, abs=1e-9)


# -- the decomposition -------------------------------------------------------------------------

@given(model=mixture_models(), data=st.data())
def test_log_likelihood_is_bound_plus_kl_for_any_q(model, data):
    seed = data.draw(st.integers(0, 2**32 - 1))
    X, _ = model.sample(data.draw(st.integers(1, 40)), np.random.default_rng(seed))
    q = data.draw(arbitrary_q(X.shape[0], model.n_components))
    bound, kl_rows, log_evidence = bound_and_kl(model, X, q)
    ll = log_evidence.sum()
    assert np.all(kl_rows >= -1e-12 * np.maximum(1.0, np.abs(log_evidence)))
    assert ll == np_approx(bound + kl_rows.sum(), rel=1e-10)
    # the posterior itself is the q with KL = 0
    q_star = model.responsibilities(X)
    bound_star, kl_star, _ = bound_and_kl(model, X, q_star)
    assert np.all(np.abs(kl_star) <= 1e-10 * np.maximum(1.0, np.abs(log_evidence)))
    assert bound_star >= bound - 1e-9 * max(1.0, abs(ll))


@given(case=em_cases())
def test_kl_is_zero_after_the_soft_e_step(case):
    history = run_em(case.X, case.init, max_iter=5).history
    ll = history.log_likelihood
    assert np.all(history.kl >= 0.0)
    assert np.all(history.kl <= round_off(ll))
    np.testing.assert_allclose(history.bound, ll, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(history.objective, ll)  # soft E-step, no prior


@attrs.frozen
class TemperedEStep(EStep):
    """q ∝ posterior^β with entries below ``cutoff`` set to exactly zero: an arbitrary q."""

    beta: float
    cutoff: float
    objective_name: ClassVar[str] = "tempered bound"
    monotone: ClassVar[bool] = False

    def __call__(self, posterior, *, iteration, stage, rng):
        q = np.exp(self.beta * (posterior.log_resp - posterior.log_resp.max(axis=1,
                                                                           keepdims=True)))
        q /= q.sum(axis=1, keepdims=True)
        q = np.where(q < self.cutoff, 0.0, q)
        q /= q.sum(axis=1, keepdims=True)
        log_q = np.log(np.where(q > 0, q, 1.0))
        return q, np.where(q > 0, q * (posterior.log_joint - log_q), 0.0).sum(axis=1)


@given(case=em_cases(), beta=st.floats(0.2, 3.0), cutoff=st.sampled_from([0.0, 0.02, 0.1]))
def test_history_bound_and_kl_for_an_arbitrary_e_step(case, beta, cutoff):
    e_step = TemperedEStep(beta=beta, cutoff=cutoff)
    history = run_em(case.X, case.init, max_iter=1, e_step=e_step).history
    n = case.X.shape[0]
    post = case.init.posterior(case.X)
    q, _ = e_step(post, iteration=0, stage=0, rng=None)
    bound, kl_rows, log_evidence = bound_and_kl(case.init, case.X, q)
    first = history[0]
    assert first.log_likelihood * n == np_approx(log_evidence.sum())
    assert first.bound * n == np_approx(bound)
    assert first.kl * n == np_approx(kl_rows.sum(), rel=1e-8)
    assert first.log_likelihood == np_approx(first.bound + first.kl)
    # the M-step maximises L(q, ·) for this q too
    assert first.bound_after_m_step >= first.bound - 1e-9 * max(1.0, abs(first.bound))


# -- responsibilities --------------------------------------------------------------------------

def far_rows(rng, d, magnitudes, n=6):
    """Rows with coordinates of the given magnitudes and random signs."""
    return (np.asarray(magnitudes)[rng.integers(0, len(magnitudes), (n, d))]
            * rng.choice([-1.0, 1.0], (n, d)))


def assert_normalised(model, Y):
    resp = model.responsibilities(Y)
    assert resp.shape == (Y.shape[0], model.n_components)
    assert np.all(np.isfinite(resp))
    assert np.all(resp >= 0.0)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    post = model.posterior(Y)
    assert np.all(post.log_resp <= 1e-12)
    np.testing.assert_allclose(np.exp(post.log_resp), resp, rtol=1e-14, atol=0)


@given(model=mixture_models(max_components=4), seed=st.integers(0, 2**32 - 1))
def test_responsibilities_are_finite_and_normalised(model, seed):
    rng = np.random.default_rng(seed)
    X, _ = model.sample(20, rng)
    # rows so far from every component that the densities overflow/underflow (x = 1e200):
    # the posterior falls back to the prior, finite and normalised
    Y = np.vstack([X, far_rows(rng, model.n_features, [1e200, 1e300])])
    assert_normalised(model, Y)


@given(model=mixture_models(max_components=4), seed=st.integers(0, 2**32 - 1))
def test_responsibilities_are_normalised_far_from_every_component(model, seed):
    # Non-regression: log_joint − log_evidence lost the normaliser once |log p| ~ 1e17 (a row
    # ~1e9 σ out), so responsibilities summed to 2; the shifted log-joint is normalised now.
    rng = np.random.default_rng(seed)
    X, _ = model.sample(5, rng)
    Y = np.vstack([X, far_rows(rng, model.n_features, [1e4, 1e8, 1e50, 1e100, 1e150])])
    assert_normalised(model, Y)


def test_far_row_between_two_components_has_responsibilities_one_half():
    # The minimal case of the bug above: equal weights, means (±1, 0), unit covariances;
    # every point on the bisector x₁ = 0 has posterior exactly (½, ½), however far out.
    model = MixtureModel(weights=[0.5, 0.5], components=[
        Gaussian(mean=[-1.0, 0.0], covariance=np.eye(2)),
        Gaussian(mean=[1.0, 0.0], covariance=np.eye(2))])
    X = np.array([[0.0, 1e2], [0.0, 1e6], [0.0, 1e9]])
    np.testing.assert_allclose(model.responsibilities(X), 0.5, rtol=1e-12)


# -- symmetries --------------------------------------------------------------------------------

@given(model=mixture_models(max_components=4), data=st.data())
def test_permuting_components(model, data):
    order = np.array(data.draw(st.permutations(range(model.n_components))))
    X, _ = model.sample(25, np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))))
    other = permuted(model, order)
    np.testing.assert_allclose(other.log_prob(X), model.log_prob(X), rtol=1e-13)
    # each column is computed on its own; only π's normalisation may differ by an ulp
    np.testing.assert_allclose(other.log_joint(X), model.log_joint(X)[:, order], rtol=1e-14,
                               atol=1e-15)
    np.testing.assert_allclose(other.responsibilities(X), model.responsibilities(X)[:, order],
                               rtol=1e-12, atol=1e-15)
    assert other.n_parameters == model.n_parameters


@given(case=em_cases(), data=st.data())
def test_em_is_equivariant_under_permutation(case, data):
    order = np.array(data.draw(st.permutations(range(case.init.n_components))))
    a = run_em(case.X, case.init, max_iter=8).model
    b = run_em(case.X, permuted(case.init, order), max_iter=8).model
    np.testing.assert_allclose(b.weights, a.weights[order], rtol=1e-10, atol=1e-14)
    for k, j in enumerate(order):
        assert_component_close(b.components[k], a.components[j])


def assert_component_close(a, b, rtol=1e-10, shift=0.0):
    scale = np.abs(b.mean).max() + np.sqrt(np.abs(b.covariance_matrix).max())
    np.testing.assert_allclose(a.mean - shift, b.mean, rtol=rtol, atol=rtol * scale)
    cov_b = b.covariance_matrix
    np.testing.assert_allclose(a.covariance_matrix, cov_b, rtol=rtol,
                               atol=rtol * np.abs(cov_b).max())


@given(case=em_cases(), data=st.data())
def test_em_is_translation_equivariant(case, data):
    d = case.X.shape[1]
    shift = np.array(data.draw(st.lists(st.floats(-1e3, 1e3), min_size=d, max_size=d)))
    a = run_em(case.X, case.init, max_iter=8)
    b = run_em(case.X + shift, shifted(case.init, shift), max_iter=8)
    np.testing.assert_allclose(b.model.weights, a.model.weights, rtol=1e-8, atol=1e-12)
    for cb, ca in zip(b.model.components, a.model.components):
        assert_component_close(cb, ca, rtol=1e-8, shift=shift)
    # the log-likelihood is invariant (translation has unit Jacobian)
    np.testing.assert_allclose(b.history.log_likelihood, a.history.log_likelihood, rtol=1e-8,
                               atol=1e-8)


@given(case=em_cases(), scale=st.floats(1e-3, 1e3))
def test_em_is_scale_equivariant(case, scale):
    a = run_em(case.X, case.init, max_iter=8)
    b = run_em(case.X * scale, shifted(case.init, 0.0, scale), max_iter=8)
    np.testing.assert_allclose(b.model.weights, a.model.weights, rtol=1e-8, atol=1e-12)
    for cb, ca in zip(b.model.components, a.model.components):
        np.testing.assert_allclose(cb.mean / scale, ca.mean, rtol=1e-8,
                                   atol=1e-8 * np.abs(ca.mean).max())
        np.testing.assert_allclose(cb.covariance_matrix / scale**2, ca.covariance_matrix,
                                   rtol=1e-8, atol=1e-8 * np.abs(ca.covariance_matrix).max())
    # the density picks up the Jacobian: log p_b(s x) = log p_a(x) − d log s
    d = case.X.shape[1]
    np.testing.assert_allclose(b.history.log_likelihood + d * np.log(scale),
                               a.history.log_likelihood, rtol=1e-8, atol=1e-8)
