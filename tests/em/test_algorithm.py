"""Behaviour of ``EMAlgorithm``: history, stopping rule, callbacks and warnings."""

import warnings

import attrs
import numpy as np
import pytest

from probmix import (
    ConvergenceWarning,
    DegenerateComponentWarning,
    EMAlgorithm,
    MixtureModel,
    ObjectiveDecreaseWarning,
)
from probmix.distributions import Gaussian
from probmix.em import MaximumLikelihood, MStep, SoftEStep
from probmix.priors import CovarianceRidge

TRUTH = MixtureModel(weights=[0.4, 0.6], components=[
    Gaussian(mean=[-2.0, 0.0], covariance=[[1.0, 0.3], [0.3, 1.0]]),
    Gaussian(mean=[2.0, 1.0], covariance=[[1.0, 0.0], [0.0, 0.5]])])


@pytest.fixture(scope="module")
def X():
    return TRUTH.sample(400, np.random.default_rng(0))[0]


def _start(spread=4.0):
    """A deliberately poor start: both components wide and near the middle."""
    return MixtureModel(weights=[0.5, 0.5], components=[
        Gaussian(mean=[-0.5, 0.0], covariance=spread * np.eye(2)),
        Gaussian(mean=[0.5, 0.0], covariance=spread * np.eye(2))])


# -- the history -----------------------------------------------------------------------------

def test_record_zero_is_the_initial_model(X):
    init = _start()
    result = EMAlgorithm(tol=1e-6, keep_models=True).fit(X, init)
    first = result.history[0]
    assert first.iteration == 0
    assert first.model is init
    assert first.log_likelihood == pytest.approx(np.mean(init.log_prob(X)), rel=1e-12)
    assert [r.iteration for r in result.history] == list(range(result.n_iter + 1))


def test_converged_result(X):
    result = EMAlgorithm(tol=1e-8, max_iter=500).fit(X, _start())
    assert result.converged
    assert 1 <= result.n_iter < 500
    assert len(result.history) == result.n_iter + 1
    assert result.log_likelihood == result.history[-1].log_likelihood
    assert result.objective == result.history.objective[-1]
    assert result.log_likelihood == pytest.approx(np.mean(result.model.log_prob(X)), rel=1e-12)
    # EM from a poor start climbs, and never goes down.
    ll = result.history.log_likelihood
    assert ll[-1] > ll[0]
    assert np.all(np.diff(ll) >= -1e-12)


def test_keep_models_keeps_every_iterate(X):
    result = EMAlgorithm(tol=1e-6, keep_models=True).fit(X, _start())
    models = [r.model for r in result.history]
    assert all(isinstance(m, MixtureModel) for m in models)
    assert models[-1] is result.model
    # Record t describes θ_t, and θ_{t+1} is the M-step of the statistics under θ_t.
    for t, m in enumerate(models):
        assert result.history[t].log_likelihood == pytest.approx(np.mean(m.log_prob(X)),
                                                                 rel=1e-12)
    for t in range(len(models) - 1):
        q = models[t].responsibilities(X)
        expected = MaximumLikelihood()(models[t].component_statistics(X, q), models[t])
        np.testing.assert_allclose(models[t + 1].weights, expected.weights, rtol=1e-10)
        for a, b in zip(models[t + 1].components, expected.components):
            np.testing.assert_allclose(a.mean, b.mean, rtol=1e-10, atol=1e-12)


def test_models_dropped_by_default(X):
    result = EMAlgorithm(tol=1e-6).fit(X, _start())
    assert all(r.model is None for r in result.history)


def test_soft_e_step_bound_touches_log_likelihood(X):
    h = EMAlgorithm(tol=1e-8).fit(X, _start()).history
    np.testing.assert_allclose(h.bound, h.log_likelihood, rtol=1e-10)
    np.testing.assert_allclose(h.kl, 0.0, atol=1e-10)
    np.testing.assert_array_equal(h.log_prior, 0.0)
    np.testing.assert_array_equal(h.objective, h.log_likelihood)
    after = h.bound_after_m_step
    assert np.isnan(after[-1]) and np.all(np.isfinite(after[:-1]))
    # The M-step raises L(q_t, ·), and L(q_t, θ_{t+1}) <= log p(X | θ_{t+1}).
    assert np.all(after[:-1] >= h.bound[:-1] - 1e-12)
    assert np.all(after[:-1] <= h.log_likelihood[1:] + 1e-12)


def test_callbacks_called_once_per_record(X):
    seen_a, seen_b = [], []
    result = EMAlgorithm(tol=1e-6, keep_models=True, callbacks=[
        lambda record, model: seen_a.append((record.iteration, model)),
        lambda record, model: seen_b.append(record.log_likelihood)]).fit(X, _start())
    assert [t for t, _ in seen_a] == list(range(len(result.history)))
    assert all(m is r.model for (_, m), r in zip(seen_a, result.history))
    np.testing.assert_array_equal(seen_b, result.history.log_likelihood)


# -- the stopping rule -----------------------------------------------------------------------

@pytest.mark.parametrize("tol", [1e-2, 1e-4, 1e-7])
def test_tol_is_on_the_per_sample_objective_change(X, tol):
    result = EMAlgorithm(tol=tol, max_iter=1000).fit(X, _start())
    change = np.abs(np.diff(result.history.objective))
    assert result.converged
    assert change[-1] < tol
    assert np.all(change[:-1] >= tol)


def test_tol_does_not_depend_on_sample_size(X):
    # Duplicating every row (or weighting it by 3) leaves the per-sample trace unchanged,
    # so the same tol stops at the same iteration; a tolerance on the *total* would not.
    algo = EMAlgorithm(tol=1e-5)
    base = algo.fit(X, _start())
    doubled = algo.fit(np.vstack([X, X]), _start())
    weighted = algo.fit(X, _start(), sample_weight=np.full(len(X), 3.0))
    for other in (doubled, weighted):
        assert other.n_iter == base.n_iter
        np.testing.assert_allclose(other.history.objective, base.history.objective, rtol=1e-10)


def test_chunk_size_does_not_change_the_fit(X):
    a = EMAlgorithm(tol=1e-6).fit(X, _start())
    b = EMAlgorithm(tol=1e-6, chunk_size=37).fit(X, _start())
    assert a.n_iter == b.n_iter
    np.testing.assert_allclose(a.history.log_likelihood, b.history.log_likelihood, rtol=1e-12)
    for ca, cb in zip(a.model.components, b.model.components):
        np.testing.assert_allclose(ca.mean, cb.mean, rtol=1e-10)
        np.testing.assert_allclose(ca.covariance_matrix, cb.covariance_matrix, rtol=1e-10)


def test_convergence_warning_at_max_iter(X):
    with pytest.warns(ConvergenceWarning, match=r"did not converge in max_iter=3 .*increase "
                                                r"max_iter"):
        result = EMAlgorithm(tol=0.0, max_iter=3).fit(X, _start())
    assert not result.converged
    assert result.n_iter == 3
    assert len(result.history) == 4


def test_max_iter_one(X):
    with pytest.warns(ConvergenceWarning):
        result = EMAlgorithm(tol=0.0, max_iter=1, keep_models=True).fit(X, _start())
    assert result.n_iter == 1 and len(result.history) == 2
    assert result.history[1].model is result.model


# -- warnings about the objective and the components -----------------------------------------

@attrs.frozen
class _ShiftedMaximumLikelihood(MStep):
    """A wrong M-step: the ML update with every mean moved by ``shift`` (not a maximiser)."""

    shift: float = 1.0

    def __call__(self, stats, previous, *, ids=None):
        ml = MaximumLikelihood()(stats, previous)
        return MixtureModel(weights=ml.weights, components=[
            attrs.evolve(c, mean=c.mean + self.shift) for c in ml.components])


def test_objective_decrease_warning_for_a_wrong_m_step(X):
    # Starting at the truth, the ML update barely moves; the shifted one loses likelihood.
    algo = EMAlgorithm(m_step=_ShiftedMaximumLikelihood(shift=1.0), tol=1e-3)
    with pytest.warns(ObjectiveDecreaseWarning,
                      match=r"the log-likelihood decreased by .* at iteration 1") as record:
        result = algo.fit(X, TRUTH)
    assert issubclass(ObjectiveDecreaseWarning, RuntimeWarning)
    assert result.history.objective[1] < result.history.objective[0]
    assert any("inexact M-step" in str(w.message) for w in record)


def test_exact_m_step_does_not_warn(X):
    # ObjectiveDecreaseWarning is a RuntimeWarning, an error in this suite: a fit from a
    # poor start with the exact M-step must never trigger it.
    result = EMAlgorithm(tol=1e-10, max_iter=300).fit(X, _start(spread=10.0))
    assert result.converged


def test_tiny_ridge_keeps_log_likelihood_monotone(X):
    # reg_covar is not a prior, but at 1e-6 its effect stays below the warning threshold.
    algo = EMAlgorithm(m_step=MaximumLikelihood(component_prior=CovarianceRidge(reg_covar=1e-6)),
                       tol=1e-8)
    assert np.all(np.diff(algo.fit(X, _start()).history.log_likelihood) > -1e-9)


def test_degenerate_component_warning_names_component():
    X = np.random.default_rng(0).normal(size=(200, 1))
    # Component 1 sits so far away that its responsibilities underflow to exactly 0.
    init = MixtureModel(weights=[0.5, 0.5], components=[
        Gaussian(mean=[0.0], covariance=[[1.0]]), Gaussian(mean=[1e3], covariance=[[1.0]])])
    with pytest.warns(DegenerateComponentWarning,
                      match=r"component\(s\) \[1\] lost all responsibility mass at iteration 1"):
        result = EMAlgorithm(tol=1e-8).fit(X, init)
    np.testing.assert_array_equal(result.model.weights, [1.0, 0.0])
    assert result.history.n_components.tolist() == [2] + [1] * result.n_iter
    # The dead component is kept unchanged, and the live one is the plain MLE.
    assert result.model.components[1] == init.components[1]
    np.testing.assert_allclose(result.model.components[0].mean, X.mean(axis=0), rtol=1e-12)
    assert np.all(np.isfinite(result.history.log_likelihood))
    assert np.all(np.isfinite(result.history.bound))


def test_zero_weight_start_stays_zero_without_warning():
    X = np.random.default_rng(0).normal(size=(100, 1))
    init = MixtureModel(weights=[1.0, 0.0], components=[
        Gaussian(mean=[0.0], covariance=[[1.0]]), Gaussian(mean=[3.0], covariance=[[1.0]])])
    # Nothing is *lost* (it never had mass), so no DegenerateComponentWarning either.
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateComponentWarning)
        result = EMAlgorithm(tol=1e-8).fit(X, init)
    assert result.model.weights[1] == 0.0
    assert result.history.n_components.tolist() == [1] * len(result.history)


def test_the_soft_entropy_shortcut_equals_the_direct_sum():
    """For the soft E-step the pass takes −Σ q log q as Σ log p(x) − Σ q log(π p); a
    responsibility prior of ones takes the direct sum over log q: the two must agree."""
    from probmix.em import algorithm as em_algorithm
    from probmix.em.sources import Chunk

    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(-1, 1, (300, 2)), rng.normal(1, 1, (300, 2))])
    model = MixtureModel(weights=[0.4, 0.6], components=[
        Gaussian(mean=[-1.0, 0.0], covariance=np.eye(2)),
        Gaussian(mean=[1.0, 0.5], covariance=2 * np.eye(2))])
    ids = np.arange(2)

    def totals(prior_r):
        return em_algorithm._chunk_totals(SoftEStep(), model, ids, 1, 0, None, prior_r,
                                          False, True, Chunk(X, None, 0))

    shortcut, direct = totals(None), totals(np.ones((len(X), 2)))
    assert shortcut.entropy > 1.0  # overlapping clusters: the posterior is far from one-hot
    assert shortcut.entropy == pytest.approx(direct.entropy, rel=1e-10)
    assert shortcut.expected_log_joint == pytest.approx(direct.expected_log_joint, rel=1e-12)
