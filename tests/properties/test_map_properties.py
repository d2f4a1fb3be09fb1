r"""Properties of MAP-EM and of the E-step family, for every data set, mixture and structure.

Each strategy declares the objective it never decreases:

- Soft E-step + MAP: the log-posterior log p(X | θ) + log p(θ), while the number of components
  stays the same (a pruning step changes the model's dimension);
- Hard E-step: the classification log-likelihood Σ_i max_k log π_k p_k(x_i) (+ log p(θ));
- Annealed E-step: at each fixed β, (1/β) Σ_i log Σ_k (π_k p_k(x_i))^β (+ log p(θ));
- Stochastic E-step: nothing; it must then not warn when the likelihood goes down.

The objectives are recomputed here from the kept models, so the history is checked against
its definition as well as for monotonicity.
"""

import warnings

import numpy as np
import pytest
from hypothesis import assume, event, given, reject, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from probmix import EMAlgorithm, MixtureModel
from probmix.em import (
    MAP,
    AnnealedEStep,
    HardEStep,
    MaximumLikelihood,
    SoftEStep,
    StochasticEStep,
)
from probmix.exceptions import (
    ConvergenceWarning,
    DegenerateComponentWarning,
    ObjectiveDecreaseWarning,
    SingularCovarianceError,
)
from probmix.priors import Dirichlet, NormalInverseWishart

from .strategies import em_cases, seeds, soft_start


def run(X, init, *, e_step=None, m_step, max_iter=12, tol=0.0, random_state=None,
        decrease="ignore"):
    """EM keeping every iterate; convergence and degenerate-component warnings silenced.

    A monotone test bounds the decrease itself (``decrease="ignore"``); others may turn the
    warning into an error. A collapse without a prior is outside the properties' premise.
    """
    algorithm = EMAlgorithm(e_step=e_step or SoftEStep(), m_step=m_step, tol=tol,
                            max_iter=max_iter, keep_models=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", DegenerateComponentWarning)
        warnings.simplefilter(decrease, ObjectiveDecreaseWarning)
        try:
            return algorithm.fit(X, init, random_state=random_state)
        except SingularCovarianceError:
            reject()


def round_off(values):
    return 1e-9 * np.maximum(1.0, np.abs(values))


@st.composite
def niw_priors(draw, X):
    """A proper NIW prior on the data's scale, with a flat or an informative mean."""
    d = X.shape[1]
    scale = draw(st.sampled_from([0.01, 0.1, 1.0])) * float(np.mean(np.var(X, axis=0)))
    kappa = draw(st.sampled_from([0.0, 0.5, 3.0]))
    return NormalInverseWishart(scale=scale * np.eye(d), dof=d + draw(st.sampled_from([0, 2])),
                                mean=X.mean(axis=0) if kappa else None, kappa=kappa)


def direct_log_prior(model, m_step):
    """log p(θ) from the priors' own densities (weights prior restricted to the survivors is
    the caller's business: these tests use a scalar α)."""
    w = 0.0 if m_step.weights_prior is None else m_step.weights_prior.log_prob(model.weights)
    return w + model.components_log_prior(m_step.component_prior)


def _approx(value, rel=1e-10):
    return pytest.approx(value, rel=rel, abs=1e-12)


def non_decreasing(values, steps=None):
    diff = np.diff(values)
    ok = diff >= -round_off(values[:-1])
    return bool(np.all(ok if steps is None else ok[steps]))


# -- Soft E-step + MAP -----------------------------------------------------------------------------

@given(case=em_cases(), alpha=st.sampled_from([1.0, 1.5, 4.0]), data=st.data())
def test_log_posterior_never_decreases_without_pruning(case, alpha, data):
    m_step = MAP(weights_prior=Dirichlet(alpha), component_prior=data.draw(niw_priors(case.X)))
    h = run(case.X, case.init, m_step=m_step, max_iter=10).history
    assert h.pruned == []
    assert non_decreasing(h.objective), np.diff(h.objective)
    n = len(case.X)
    for r in h:
        assert r.log_prior * n == _approx(direct_log_prior(r.model, m_step))
        assert r.objective == _approx(r.log_likelihood + r.log_prior)
        assert r.log_likelihood == _approx(np.mean(r.model.log_prob(case.X)))


def _mml_alpha(init):
    """1 − T/2, T the free parameters per component (Figueiredo & Jain)."""
    comps = list(init.components)
    return 1.0 - type(comps[0]).n_parameters_many(comps) / len(comps) / 2.0


def with_far_component(model, X):
    """The model plus a component far from all the data (it gets no mass: prunable at once)."""
    c = model.components[0]
    far = type(c)(mean=X.mean(axis=0) + 1e3 * (1 + np.ptp(X, axis=0)), covariance=c.covariance)
    return MixtureModel(weights=np.r_[0.95 * model.weights, 0.05],
                        components=[*model.components, far])


@given(case=em_cases(), extra=st.integers(0, 3), far=st.sampled_from([True, False]),
       alpha=st.sampled_from([0.5, 0.1, 0.0, -0.5, "mml"]), seed=seeds, data=st.data())
def test_log_posterior_never_decreases_between_prunings(case, extra, far, alpha, seed, data):
    # an overcomplete start, sometimes with a component on no data, so that pruning happens
    init = soft_start(case.X, case.family, case.init.n_components + extra,
                      np.random.default_rng(seed))
    if far:
        init = with_far_component(init, case.X)
    K0 = init.n_components
    alpha = _mml_alpha(init) if alpha == "mml" else alpha
    m_step = MAP(weights_prior=Dirichlet(alpha), component_prior=data.draw(niw_priors(case.X)))
    try:
        result = run(case.X, init, m_step=m_step, max_iter=15)
    except ValueError as exc:  # every component below 1 − α: a documented refusal
        assert "too small" in str(exc)
        reject()
    h = result.history
    event(f"pruned: {bool(h.pruned)}")
    steps = np.array([r.pruned == () for r in h[1:]])
    assert non_decreasing(h.objective, steps), np.diff(h.objective)
    # bookkeeping: each initial component is either pruned once or still there
    pruned = [k for _, ks in h.pruned for k in ks]
    assert sorted(pruned + result.component_ids.tolist()) == list(range(K0))
    assert np.all(result.model.weights > 0)
    assert [r.model.n_components for r in h] == h.n_components.tolist()
    for t, r in enumerate(h[1:], start=1):
        assert h[t - 1].model.n_components - r.model.n_components == len(r.pruned)
        assert r.objective == _approx(r.log_likelihood + r.log_prior)
        assert r.log_prior * len(case.X) == _approx(direct_log_prior(r.model, m_step))


@given(case=em_cases(max_rows=60))
def test_map_with_a_uniform_dirichlet_is_maximum_likelihood_exactly(case):
    ml = run(case.X, case.init, m_step=MaximumLikelihood(), max_iter=8)
    mp = run(case.X, case.init, m_step=MAP(weights_prior=Dirichlet(1.0)), max_iter=8)
    assert len(ml.history) == len(mp.history)
    for a, b in zip(ml.history, mp.history):
        np.testing.assert_array_equal(a.model.weights, b.model.weights)
        for ca, cb in zip(a.model.components, b.model.components):
            np.testing.assert_array_equal(ca.mean, cb.mean)
            np.testing.assert_array_equal(ca.covariance.compact, cb.covariance.compact)


# -- Hard E-step -----------------------------------------------------------------------------------

@given(case=em_cases(), which=st.sampled_from(["ml", "map", "map+dirichlet"]), data=st.data())
def test_classification_log_likelihood_never_decreases_under_hard_em(case, which, data):
    niw = data.draw(niw_priors(case.X))
    m_step = {"ml": MaximumLikelihood(component_prior=niw),
              "map": MAP(component_prior=niw),
              "map+dirichlet": MAP(weights_prior=Dirichlet(2.0), component_prior=niw)}[which]
    h = run(case.X, case.init, e_step=HardEStep(), m_step=m_step).history
    event(f"hard EM changed the partition: {h.objective[-1] != h.objective[0]}")
    steps = np.array([r.pruned == () for r in h[1:]])
    assert non_decreasing(h.objective, steps), np.diff(h.objective)
    n = len(case.X)
    for r in h:
        classification = np.mean(np.max(r.model.log_joint(case.X), axis=1))
        log_prior = (r.model.components_log_prior(niw) if which != "map+dirichlet"
                     else direct_log_prior(r.model, m_step))
        assert r.objective == _approx(classification + log_prior / n)


# -- Annealed E-step -------------------------------------------------------------------------------

betas_schedules = st.lists(st.sampled_from([0.1, 0.3, 0.5, 0.8]), min_size=1, max_size=3,
                           unique=True).map(sorted)


@settings(max_examples=50)  # each example runs EM to convergence at every temperature
@given(case=em_cases(max_rows=60), betas=betas_schedules, data=st.data())
def test_annealed_free_energy_never_decreases_at_fixed_beta(case, betas, data):
    niw = data.draw(niw_priors(case.X))
    e_step = AnnealedEStep(betas=betas)
    result = run(case.X, case.init, e_step=e_step, m_step=MAP(component_prior=niw),
                 max_iter=400, tol=1e-5)
    assume(result.converged)
    h = result.history
    event(f"stages: {e_step.n_stages}")
    stages = h.stage
    assert np.all(np.diff(stages) >= 0)
    assert stages[-1] == e_step.n_stages - 1 and e_step.betas[-1] == 1.0
    for s in np.unique(stages):
        assert non_decreasing(h.objective[stages == s]), (s, np.diff(h.objective[stages == s]))
    n = len(case.X)
    for r in h:
        beta = e_step.betas[r.stage]
        free_energy = np.mean(logsumexp(beta * r.model.log_joint(case.X), axis=1)) / beta
        assert r.objective == _approx(free_energy + r.model.components_log_prior(niw) / n)
    final = stages == stages[-1]
    np.testing.assert_allclose(h.objective[final], (h.log_likelihood + h.log_prior)[final],
                               rtol=1e-12)


# -- Stochastic E-step -----------------------------------------------------------------------------

@given(case=em_cases(), seed=seeds)
def test_stochastic_em_is_reproducible_and_never_warns(case, seed):
    prior = NormalInverseWishart.ridge(0.05, case.X.shape[1])
    m_step = MAP(component_prior=prior)

    def fit(s):
        return run(case.X, case.init, e_step=StochasticEStep(), m_step=m_step, max_iter=6,
                   random_state=s, decrease="error")  # no monotone guarantee: no warning

    a, b = fit(seed), fit(seed)
    np.testing.assert_array_equal(a.history.objective, b.history.objective)
    for ca, cb in zip(a.model.components, b.model.components):
        np.testing.assert_array_equal(ca.mean, cb.mean)
        np.testing.assert_array_equal(ca.covariance.compact, cb.covariance.compact)
    # the trace it reports is the log-posterior of each iterate
    for r in a.history:
        assert r.log_likelihood == _approx(np.mean(r.model.log_prob(case.X)))
