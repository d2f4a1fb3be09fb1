"""Online (stepwise) EM: the schedule, the running statistics, convergence to the batch EM fixed
point, every family through the statistics contract, ``GMM.partial_fit``, and bad input.

Convergence tolerance (``_noise``). Near the fixed point the running statistics are the
fixed point's plus an exponentially weighted sum of the batches' sampling noise ξ_t:
e_t = (1 − γ) e_{t−1} + γ ξ_t, whose stationary standard deviation is √(γ / (2 − γ)) sd(ξ)
≤ √γ sd(ξ) for independent batches. A component mean from a batch of B rows has
sd(ξ) ≈ σ / √(B π_k). The tests assert 5 such standard deviations at the final step size γ_T.
Shuffled epochs only help (the batches of one epoch partition the data, so their noise sums to
zero), so the tolerance is conservative yet tight enough to tell the batch EM fixed point from
the truth, which the tests check too: online EM must land closer to the batch fit than the
batch fit is to the parameters that generated the data.
"""

from __future__ import annotations

import math
import warnings

import attrs
import numpy as np
import pytest

import probmix
from probmix import (
    GMM,
    ConvergenceWarning,
    DegenerateComponentWarning,
    EMAlgorithm,
    MixtureModel,
    OnlineEM,
)
from probmix.distributions import (
    Bernoulli,
    Categorical,
    DiagonalNormal,
    Exponential,
    Gaussian,
    GaussianStatistics,
    IndependentComponents,
    Poisson,
    SphericalNormal,
    StudentT,
    TiedNormal,
)
from probmix.distributions.base import Statistics
from probmix.distributions.poisson import PoissonStatistics
from probmix.em import MAP, MaximumLikelihood, OnlineEMResult, OnlineEMState
from probmix.init import initial_model
from probmix.mixture import MixtureStatistics
from probmix.priors import CovarianceRidge, Dirichlet, Gamma
from probmix.testing import check_distribution, check_statistics_reweighted

GAUSSIAN_TRUTH = MixtureModel(weights=[0.3, 0.5, 0.2], components=[
    Gaussian(mean=[0.0, 0.0], covariance=np.eye(2)),
    Gaussian(mean=[6.0, 0.0], covariance=[[1.0, 0.5], [0.5, 2.0]]),
    Gaussian(mean=[0.0, 7.0], covariance=0.5 * np.eye(2))])
GAUSSIAN_START = MixtureModel(weights=[1 / 3] * 3, components=[
    Gaussian(mean=[1.0, 1.0], covariance=4 * np.eye(2)),
    Gaussian(mean=[4.0, 1.0], covariance=4 * np.eye(2)),
    Gaussian(mean=[1.0, 5.0], covariance=4 * np.eye(2))])
POISSON_TRUTH = MixtureModel(weights=[0.3, 0.4, 0.3], components=[
    Poisson(rate=[1.0, 10.0]), Poisson(rate=[8.0, 2.0]), Poisson(rate=[15.0, 15.0])])
POISSON_START = MixtureModel(weights=[1 / 3] * 3, components=[
    Poisson(rate=[3.0, 6.0]), Poisson(rate=[6.0, 3.0]), Poisson(rate=[10.0, 10.0])])


def _noise(gamma: float, batch_size: int, min_weight: float) -> float:
    """sd of a running component mean per unit sd of a row: √(γ / (B π_min))."""
    return math.sqrt(gamma / (batch_size * min_weight))


def _poisson_rows(n=2000, seed=0):
    return POISSON_TRUTH.sample(n, np.random.default_rng(seed))[0]


# -- the schedule ------------------------------------------------------------------------------
@pytest.mark.parametrize(("kappa", "t0"), [(1.0, 0.0), (0.6, 1.0), (0.75, 10.0), (0.51, 0.0)])
def test_step_size_is_the_schedule(kappa, t0):
    online = OnlineEM(step_exponent=kappa, step_offset=t0)
    assert online.step_size(1) == 1.0
    for t in (2, 3, 10, 1000):
        assert online.step_size(t) == pytest.approx((t + t0) ** -kappa, rel=1e-15)
    steps = np.array([online.step_size(t) for t in range(1, 200)])
    assert np.all((steps > 0) & (steps <= 1)) and np.all(np.diff(steps) <= 0)


def test_running_statistics_follow_the_recursion():
    # s_t = (1 − γ_t) s_{t−1} + γ_t s̄_t with s̄_t computed by hand under θ_{t−1}
    X = _poisson_rows(600)
    online = OnlineEM(step_exponent=0.7, step_offset=2.0)
    state = online.start(POISSON_START)
    masses = totals = None
    for t, batch in enumerate(np.array_split(X, 6), start=1):
        q = state.model.responsibilities(batch)
        bar_masses = q.mean(axis=0)
        bar_totals = q.T @ batch / batch.shape[0]
        state = online.step(state, batch)
        gamma = online.step_size(t)
        assert state.step_size == gamma and state.n_steps == t
        if masses is None:
            masses, totals = bar_masses, bar_totals
        else:
            masses = (1 - gamma) * masses + gamma * bar_masses
            totals = (1 - gamma) * totals + gamma * bar_totals
        np.testing.assert_allclose(state.statistics.masses, masses, rtol=1e-12)
        np.testing.assert_allclose([s.total for s in state.statistics.components], totals,
                                   rtol=1e-12)
        assert state.statistics.total_weight == pytest.approx(1.0, rel=1e-12)
        # the M-step of the running statistics: π = N_k, λ_k = total_k / N_k
        np.testing.assert_allclose(state.model.weights, masses / masses.sum(), rtol=1e-12)
        np.testing.assert_allclose([c.rate for c in state.model.components],
                                   totals / masses[:, None], rtol=1e-12)
    assert state.weight_seen == X.shape[0]


def test_kappa_one_offset_zero_averages_the_batches_equally():
    X = _poisson_rows(500)
    online = OnlineEM(step_exponent=1.0, step_offset=0.0)
    state = online.start(POISSON_START)
    bars = []
    for batch in np.array_split(X, 5):
        bars.append(state.model.responsibilities(batch).mean(axis=0))
        state = online.step(state, batch)
    np.testing.assert_allclose(state.statistics.masses, np.mean(bars, axis=0), rtol=1e-12)


def test_the_first_step_is_one_batch_em_iteration():
    # γ_1 = 1: s_1 is the first batch's statistics, θ_1 one EM iteration on it
    X = GAUSSIAN_TRUTH.sample(300, np.random.default_rng(3))[0]
    online = OnlineEM()
    state = online.step(online.start(GAUSSIAN_START), X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        batch = EMAlgorithm(max_iter=1, tol=0.0).fit(X, GAUSSIAN_START).model
    np.testing.assert_allclose(state.model.weights, batch.weights, rtol=1e-12)
    for a, b in zip(state.model.components, batch.components):
        np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(a.covariance_matrix, b.covariance_matrix, rtol=1e-11)
    assert state.batch_log_likelihood == pytest.approx(np.mean(GAUSSIAN_START.log_prob(X)),
                                                       rel=1e-12)


def test_warm_up_pools_rows_under_the_initial_model():
    X = GAUSSIAN_TRUTH.sample(60, np.random.default_rng(4))[0]
    online = OnlineEM(warm_up=50)
    state = online.start(GAUSSIAN_START)
    for i in range(50):
        state = online.step(state, X[i:i + 1])
        if i < 49:
            assert state.model is GAUSSIAN_START and state.n_steps == 0
    assert state.n_steps == 1 and state.weight_seen == 50
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pooled = EMAlgorithm(max_iter=1, tol=0.0).fit(X[:50], GAUSSIAN_START).model
    for a, b in zip(state.model.components, pooled.components):
        np.testing.assert_allclose(a.mean, b.mean, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(a.covariance_matrix, b.covariance_matrix, rtol=1e-10)
    np.testing.assert_allclose(state.model.weights, pooled.weights, rtol=1e-10)


# -- convergence to the batch EM fixed point ---------------------------------------------------
def _max_abs(a, b):
    return float(np.max(np.abs(np.asarray(a, float) - np.asarray(b, float))))


def test_gaussian_mixture_converges_to_the_batch_em_fixed_point():
    X = GAUSSIAN_TRUTH.sample(20_000, np.random.default_rng(1))[0]
    batch = EMAlgorithm(tol=1e-12, max_iter=1000).fit(X, GAUSSIAN_START).model
    B = 1000
    result = OnlineEM(step_exponent=0.8, batch_size=B, max_epochs=60,
                      random_state=0).fit(X, GAUSSIAN_START)
    assert result.n_epochs == 60 and result.n_steps == 60 * 20
    noise = _noise(result.state.step_size, B, min(batch.weights))
    sd = 2.0**0.5  # the largest component standard deviation
    errors = {
        "means": max(_max_abs(a.mean, b.mean)
                     for a, b in zip(result.model.components, batch.components)),
        "covariances": max(_max_abs(a.covariance_matrix, b.covariance_matrix)
                           for a, b in zip(result.model.components, batch.components)),
        "weights": _max_abs(result.model.weights, batch.weights),
    }
    # a scatter entry's sd is about √2 σ² per row; a weight's √(π(1 − π)) ≤ ½
    tolerance = {"means": 5 * noise * sd, "covariances": 5 * noise * math.sqrt(2) * sd**2,
                 "weights": 5 * noise * 0.5}
    for name, err in errors.items():
        assert err < tolerance[name], (name, err, tolerance[name])
    truth_gap = max(_max_abs(a.mean, b.mean)
                    for a, b in zip(GAUSSIAN_TRUTH.components, batch.components))
    assert errors["means"] < 0.5 * truth_gap  # the batch fit's fixed point, not the truth


def test_poisson_mixture_converges_to_the_batch_em_fixed_point():
    X = _poisson_rows(20_000, seed=2)
    batch = EMAlgorithm(tol=1e-12, max_iter=2000).fit(X, POISSON_START).model
    B = 1000
    result = OnlineEM(step_exponent=0.8, batch_size=B, max_epochs=60,
                      random_state=1).fit(X, POISSON_START)
    noise = _noise(result.state.step_size, B, min(batch.weights))
    rates = np.array([c.rate for c in result.model.components])
    batch_rates = np.array([c.rate for c in batch.components])
    assert _max_abs(rates, batch_rates) < 5 * noise * math.sqrt(15.0)  # sd of a row: √λ
    assert _max_abs(result.model.weights, batch.weights) < 5 * noise * 0.5
    truth_rates = np.array([c.rate for c in POISSON_TRUTH.components])
    assert _max_abs(rates, batch_rates) < 0.5 * _max_abs(truth_rates, batch_rates)


def test_map_scaling_gives_the_batch_map_fixed_point():
    # a strong Gamma prior: where the fixed point lies depends on how many rows the running
    # statistics stand for; fit scales them to the data's total weight, as batch MAP-EM sees it
    X = _poisson_rows(4000, seed=5)
    m_step = MAP(weights_prior=Dirichlet(3.0), component_prior=Gamma(shape=400.0, rate=40.0))
    batch = EMAlgorithm(m_step=m_step, tol=1e-13, max_iter=2000).fit(X, POISSON_START).model
    rates = np.array([c.rate for c in batch.components])

    def online_rates(data_weight):
        result = OnlineEM(m_step=m_step, step_exponent=0.8, batch_size=200, max_epochs=40,
                          data_weight=data_weight, random_state=2).fit(X, POISSON_START)
        return np.array([c.rate for c in result.model.components])

    noise = _noise((40 * 20 + 1) ** -0.8, 200, 0.3)
    assert _max_abs(online_rates(None), rates) < 5 * noise * math.sqrt(15.0)
    assert _max_abs(online_rates(4000.0), rates) < 5 * noise * math.sqrt(15.0)
    # weighed against 40 rows instead, the prior pulls the rates far away
    assert _max_abs(online_rates(40.0), rates) > 1.0


# -- every family, through the statistics contract ----------------------------------------------
FAMILY_MIXTURES = {
    "Gaussian": [Gaussian(mean=[0.0, 0.0], covariance=np.eye(2)),
                 Gaussian(mean=[5.0, 1.0], covariance=[[1.0, 0.3], [0.3, 0.5]])],
    "DiagonalNormal": [DiagonalNormal(mean=[0.0, 0.0], covariance=[1.0, 2.0]),
                       DiagonalNormal(mean=[5.0, 1.0], covariance=[0.5, 1.0])],
    "SphericalNormal": [SphericalNormal(mean=[0.0, 0.0], covariance=1.0),
                        SphericalNormal(mean=[5.0, 1.0], covariance=0.5)],
    "TiedNormal": [TiedNormal(mean=[0.0, 0.0], covariance=[[1.0, 0.3], [0.3, 0.5]]),
                   TiedNormal(mean=[5.0, 1.0], covariance=[[1.0, 0.3], [0.3, 0.5]])],
    "Poisson": [Poisson(rate=[1.0, 6.0]), Poisson(rate=[9.0, 2.0])],
    "Bernoulli": [Bernoulli(probability=[0.1, 0.8, 0.3]),
                  Bernoulli(probability=[0.9, 0.2, 0.6])],
    "Categorical": [Categorical(probabilities=[[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]),
                    Categorical(probabilities=[[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])],
    "Exponential": [Exponential(rate=[2.0, 0.2]), Exponential(rate=[0.1, 3.0])],
    "StudentT": [StudentT(mean=[0.0, 0.0], scale=np.eye(2), dof=5.0),
                 StudentT(mean=[6.0, 1.0], scale=[[1.0, 0.3], [0.3, 0.5]], dof=5.0)],
    "IndependentComponents": [
        IndependentComponents(parts=[Gaussian(mean=[0.0], covariance=[[1.0]]),
                                     Poisson(rate=[2.0])], columns=[(0,), (1,)]),
        IndependentComponents(parts=[Gaussian(mean=[5.0], covariance=[[0.5]]),
                                     Poisson(rate=[9.0])], columns=[(0,), (1,)])],
}


@pytest.mark.parametrize("name", list(FAMILY_MIXTURES))
def test_every_family_reaches_the_batch_log_likelihood(name):
    truth = MixtureModel(weights=[0.4, 0.6], components=FAMILY_MIXTURES[name])
    rng = np.random.default_rng(6)
    X, labels = truth.sample(4000, rng)
    # start from labels that are half noise: the components are blurred towards each other
    resp = 0.5 * np.eye(2)[labels] + 0.5 * rng.dirichlet([1.0, 1.0], size=4000)
    start = initial_model(X, list(truth.components), resp)
    batch = EMAlgorithm(tol=1e-10, max_iter=500).fit(X, start)
    result = OnlineEM(batch_size=200, max_epochs=8, step_exponent=0.8,
                      random_state=0).fit(X, start)
    assert result.n_steps == 8 * 20
    online_ll = float(np.mean(result.model.log_prob(X)))
    assert np.isfinite(online_ll)
    # 5e-3 nats per row: far below the gap between the start and the fit
    start_ll = float(np.mean(start.log_prob(X)))
    assert batch.log_likelihood - start_ll > 0.05
    assert online_ll > batch.log_likelihood - 5e-3


@attrs.frozen(kw_only=True)
class _UnscalableStatistics(PoissonStatistics):
    def __add__(self, other):
        s = super().__add__(other)
        return _UnscalableStatistics(weight=s.weight, total=s.total,
                                     log_factorial=s.log_factorial)

    def reweighted(self, factor):
        return Statistics.reweighted(self, factor)  # the contract's default


@attrs.frozen(kw_only=True)
class _Unscalable(Poisson):
    @classmethod
    def sufficient_statistics(cls, X, weights):
        s = Poisson.sufficient_statistics(X, weights)
        return _UnscalableStatistics(weight=s.weight, total=s.total,
                                     log_factorial=s.log_factorial)


def test_a_family_without_reweighted_is_refused_by_name():
    model = MixtureModel(weights=[0.5, 0.5], components=[_Unscalable(rate=[1.0]),
                                                         _Unscalable(rate=[5.0])])
    online = OnlineEM()
    with pytest.raises(NotImplementedError, match=r"_UnscalableStatistics.*online EM"):
        online.step(online.start(model), np.array([[1.0], [4.0]]))


# -- pruning and lost components -----------------------------------------------------------------
def test_a_sparse_dirichlet_prunes_and_keeps_the_ids():
    X = GAUSSIAN_TRUTH.sample(6000, np.random.default_rng(7))[0]
    extra = MixtureModel(weights=[0.25] * 4, components=[
        *GAUSSIAN_START.components, Gaussian(mean=[30.0, 30.0], covariance=np.eye(2))])
    m_step = MAP(weights_prior=Dirichlet(0.5), component_prior=CovarianceRidge(reg_covar=1e-6))
    result = OnlineEM(m_step=m_step, batch_size=500, max_epochs=3,
                      random_state=0).fit(X, extra)
    assert result.model.n_components == 3
    np.testing.assert_array_equal(result.component_ids, [0, 1, 2])
    assert result.model.weights.sum() == pytest.approx(1.0, abs=1e-12)
    stats = result.state.statistics
    assert len(stats.components) == 3
    assert stats.total_weight == pytest.approx(1.0, rel=1e-12)


def test_a_component_that_loses_its_mass_warns_and_keeps_weight_zero():
    X = np.random.default_rng(8).normal(size=(200, 1))
    far = MixtureModel(weights=[0.5, 0.5], components=[
        Gaussian(mean=[0.0], covariance=[[1.0]]), Gaussian(mean=[1e3], covariance=[[1.0]])])
    online = OnlineEM()
    with pytest.warns(DegenerateComponentWarning, match=r"component\(s\) \[1\]"):
        state = online.step(online.start(far), X)
    assert state.model.weights[1] == 0.0 and state.model.weights[0] == 1.0
    state = online.step(state, X)  # and stays so, without another warning
    assert state.model.weights[1] == 0.0


# -- fit: data, stopping, callbacks ------------------------------------------------------------
def test_chunks_give_the_same_batches_as_the_array():
    X = _poisson_rows(1000, seed=9)
    w = np.random.default_rng(9).uniform(0.5, 2.0, 1000)
    online = OnlineEM(batch_size=100, max_epochs=2, shuffle=False)
    whole = online.fit(X, POISSON_START, sample_weight=w)
    pairs = [(X[lo:lo + 300], w[lo:lo + 300]) for lo in range(0, 1000, 300)]
    # 300-row chunks cut into 100-row batches: the same batches, with a ragged last one
    chunked = online.fit(pairs, POISSON_START)
    assert chunked.n_steps == 2 * 10 == whole.n_steps
    # equal to round-off: the M-step sees the statistics scaled to the weight seen so far
    # (first epoch of chunks) or to the data's total weight (an array), which cancels
    np.testing.assert_allclose(chunked.model.weights, whole.model.weights, rtol=1e-13)
    for a, b in zip(chunked.model.components, whole.model.components):
        np.testing.assert_allclose(a.rate, b.rate, rtol=1e-13)
    np.testing.assert_allclose(chunked.history.log_likelihood, whole.history.log_likelihood,
                               rtol=1e-13)


def test_a_memmap_is_read_in_slices_with_the_same_batches(tmp_path):
    X = _poisson_rows(1000, seed=9)
    path = tmp_path / "rows.dat"
    disk = np.memmap(path, dtype=np.float64, mode="w+", shape=X.shape)
    disk[:] = X
    disk.flush()
    online = OnlineEM(batch_size=128, max_epochs=2, shuffle=False)
    a = online.fit(np.memmap(path, dtype=np.float64, mode="r", shape=X.shape), POISSON_START)
    b = online.fit(X, POISSON_START)
    assert a.n_steps == b.n_steps == 2 * 8
    for ca, cb in zip(a.model.components, b.model.components):
        np.testing.assert_allclose(ca.rate, cb.rate, rtol=1e-13)


def test_shuffling_is_seeded():
    X = _poisson_rows(1000, seed=10)
    a = OnlineEM(batch_size=100, max_epochs=2, random_state=3).fit(X, POISSON_START)
    b = OnlineEM(batch_size=100, max_epochs=2, random_state=3).fit(X, POISSON_START)
    c = OnlineEM(batch_size=100, max_epochs=2, random_state=4).fit(X, POISSON_START)
    assert a.model == b.model and a.model != c.model


def test_history_max_steps_callbacks_and_continuing():
    X = _poisson_rows(1000, seed=11)
    seen = []
    online = OnlineEM(batch_size=100, max_epochs=5, max_steps=25, random_state=0,
                      callbacks=[seen.append])
    result = online.fit(X, POISSON_START)
    assert isinstance(result, OnlineEMResult)
    assert result.n_steps == 25 and result.n_epochs == 3
    assert [s.n_steps for s in seen] == list(range(1, 26))
    assert seen[-1] is result.state and result.model is result.state.model
    history = result.history
    assert len(history) == 3
    np.testing.assert_array_equal(history.epoch, [1, 2, 3])
    np.testing.assert_array_equal(history.n_steps, [10, 20, 25])
    np.testing.assert_array_equal(history.weight_seen, [1000.0, 2000.0, 2500.0])
    # an epoch's log-likelihood is the weighted mean of its batches' (each before its step)
    first_epoch = [s.batch_log_likelihood for s in seen[:10]]
    assert history.log_likelihood[0] == pytest.approx(np.mean(first_epoch), rel=1e-12)
    assert history.step_size[-1] == online.step_size(25)
    assert np.all(np.diff(history.time) >= 0)
    # a state continues where the fit stopped
    more = OnlineEM(batch_size=100, max_epochs=1, random_state=0).fit(X, result.state)
    assert more.n_steps == 35


def test_tol_stops_and_warns_when_not_reached():
    X = _poisson_rows(2000, seed=12)
    done = OnlineEM(batch_size=200, max_epochs=50, tol=1e-3, step_exponent=0.8,
                    random_state=0).fit(X, POISSON_START)
    assert done.converged and 2 <= done.n_epochs < 50
    assert abs(np.diff(done.history.log_likelihood)[-1]) < 1e-3
    with pytest.warns(ConvergenceWarning, match="did not converge in 2 epoch"):
        tight = OnlineEM(batch_size=200, max_epochs=2, tol=1e-12,
                         random_state=0).fit(X, POISSON_START)
    assert not tight.converged


def test_float32_data_are_accepted():
    X = GAUSSIAN_TRUTH.sample(2000, np.random.default_rng(13))[0]
    a = OnlineEM(batch_size=200, max_epochs=2, random_state=0).fit(X, GAUSSIAN_START)
    b = OnlineEM(batch_size=200, max_epochs=2, random_state=0).fit(X.astype(np.float32),
                                                                    GAUSSIAN_START)
    for ca, cb in zip(a.model.components, b.model.components):
        np.testing.assert_allclose(ca.mean, cb.mean, atol=1e-4)


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"step_exponent": 0.5}, ValueError, r"step_exponent .*\(0\.5, 1\]"),
    ({"step_exponent": 1.01}, ValueError, r"step_exponent .*\(0\.5, 1\]"),
    ({"step_exponent": 0.2}, ValueError, "step_exponent"),
    ({"step_exponent": float("nan")}, ValueError, "step_exponent must be finite"),
    ({"step_exponent": "0.7"}, TypeError, "step_exponent"),
    ({"step_offset": -1.0}, ValueError, "step_offset must be >= 0"),
    ({"step_offset": float("inf")}, ValueError, "step_offset must be finite"),
    ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
    ({"batch_size": 10.0}, TypeError, "batch_size must be int"),
    ({"batch_size": True}, TypeError, "batch_size"),
    ({"max_epochs": 0}, ValueError, "max_epochs must be >= 1"),
    ({"max_steps": 0}, ValueError, "max_steps must be >= 1"),
    ({"tol": -1e-3}, ValueError, "tol must be >= 0"),
    ({"warm_up": -1.0}, ValueError, "warm_up must be >= 0"),
    ({"data_weight": 0.0}, ValueError, "data_weight must be > 0"),
    ({"shuffle": "yes"}, TypeError, "shuffle must be a bool"),
    ({"m_step": "ml"}, TypeError, "m_step must be an instance of MStep"),
    ({"callbacks": [1]}, TypeError, "callbacks must be callables"),
    ({"random_state": "seed"}, TypeError, "random_state"),
])
def test_bad_settings_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        OnlineEM(**kwargs)


def test_bad_step_arguments_are_refused():
    online = OnlineEM()
    state = online.start(POISSON_START)
    with pytest.raises(TypeError, match="init must be a MixtureModel"):
        online.start("model")
    with pytest.raises(TypeError, match="state must be an OnlineEMState"):
        online.step(POISSON_START, np.ones((2, 2)))
    with pytest.raises(ValueError, match="X has 3 features, but the model has 2"):
        online.step(state, np.ones((2, 3)))
    with pytest.raises(ValueError, match="X contains NaN"):
        online.step(state, np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="X needs at least 1 sample"):
        online.step(state, np.empty((0, 2)))
    with pytest.raises(ValueError, match="column 1"):
        online.step(state, np.array([[1.0, -2.0]]))  # outside the Poisson support
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        online.step(state, np.ones((2, 2)), sample_weight=[1.0, -1.0])
    with pytest.raises(ValueError, match="sample_weight sums to zero"):
        online.step(state, np.ones((2, 2)), sample_weight=[0.0, 0.0])
    with pytest.raises(ValueError, match=r"must lie in \(0\.5, 1\]|t must be >= 1"):
        online.step_size(0)
    with pytest.raises(ValueError, match="fixed_components/fixed_weights name component"):
        OnlineEM(m_step=MaximumLikelihood(fixed_components={5: "all"})).start(POISSON_START)


def test_bad_fit_data_are_refused():
    online = OnlineEM(batch_size=10)
    X = _poisson_rows(50)
    with pytest.raises(TypeError, match="iterator"):
        online.fit((chunk for chunk in [X]), POISSON_START)
    with pytest.raises(ValueError, match="sample_weight cannot be given with a re-iterable"):
        online.fit([X[:20], X[20:]], POISSON_START, sample_weight=np.ones(50))
    with pytest.raises(ValueError, match="yielded no chunks"):
        online.fit(_Empty(), POISSON_START)
    with pytest.raises(ValueError, match=r"X \(chunk from row 20\) has 3 features"):
        online.fit([X[:20], np.ones((5, 3))], POISSON_START)
    with pytest.raises(ValueError, match="weights of chunk 0 must have shape"):
        online.fit([(X[:20], np.ones(3))], POISSON_START)
    with pytest.raises(ValueError, match=r"an array or an .array, weights. pair"):
        online.fit([(X[:20], np.ones(20), 1)], POISSON_START)
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        online.fit(X, POISSON_START, sample_weight=np.ones(3))
    with pytest.raises(TypeError, match="init must be a MixtureModel"):
        online.fit(X, None)


class _Empty:
    def __iter__(self):
        return iter(())


# -- reweighted: the statistics contract ----------------------------------------------------------
def test_gaussian_statistics_reweighted_scales_weight_and_scatter_not_the_mean():
    X = np.random.default_rng(14).normal(size=(30, 3))
    w = np.random.default_rng(15).uniform(0, 2, 30)
    s = Gaussian.sufficient_statistics(X, w)
    r = s.reweighted(2.5)
    reference = Gaussian.sufficient_statistics(X, 2.5 * w)
    assert r.weight == pytest.approx(reference.weight, rel=1e-14)
    np.testing.assert_allclose(r.mean, reference.mean, rtol=1e-13)
    np.testing.assert_allclose(r.scatter, reference.scatter, rtol=1e-13)
    np.testing.assert_array_equal(r.mean, s.mean)
    zero = s.reweighted(0)
    assert zero.weight == 0.0 and not np.any(zero.scatter)
    assert isinstance(zero + s, GaussianStatistics) and (zero + s) == s


@pytest.mark.parametrize("factor", [-1.0, float("nan"), float("inf")])
def test_reweighted_refuses_a_negative_or_non_finite_factor(factor):
    s = Poisson.sufficient_statistics(np.ones((2, 1)), np.ones(2))
    with pytest.raises(ValueError, match="factor must be finite and >= 0"):
        s.reweighted(factor)


@pytest.mark.parametrize("factor", ["2", True, None])
def test_reweighted_refuses_a_non_number(factor):
    s = Gaussian.sufficient_statistics(np.ones((2, 1)), np.ones(2))
    with pytest.raises(TypeError, match="factor must be a real number"):
        s.reweighted(factor)


def test_mixture_statistics_reweighted_scales_masses_and_components():
    X = GAUSSIAN_TRUTH.sample(100, np.random.default_rng(16))[0]
    q = GAUSSIAN_START.responsibilities(X)
    s = GAUSSIAN_START.component_statistics(X, q)
    r = s.reweighted(0.25)
    reference = GAUSSIAN_START.component_statistics(X, 0.25 * q)
    assert isinstance(r, MixtureStatistics)
    np.testing.assert_allclose(r.masses, reference.masses, rtol=1e-14)
    for a, b in zip(r.components, reference.components):
        np.testing.assert_allclose(a.scatter, b.scatter, rtol=1e-12)


def test_batched_gaussian_moments_reweighted():
    # the fast kernels' stacked moments scale as arrays and unstack to the scaled statistics
    X = GAUSSIAN_TRUTH.sample(200, np.random.default_rng(17))[0]
    comps = list(GAUSSIAN_START.components)
    q = GAUSSIAN_START.responsibilities(X)
    moments = Gaussian.statistics_many(comps, X, q)
    assert type(moments).__name__ == "GaussianMoments"
    for a, b in zip(moments.reweighted(3.0).unstack(), moments.unstack()):
        assert a.weight == pytest.approx(3.0 * b.weight, rel=1e-14)
        np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12)
        np.testing.assert_allclose(a.scatter, 3.0 * b.scatter, rtol=1e-12)


def test_the_base_default_names_the_class_and_online_em():
    with pytest.raises(NotImplementedError, match=r"_UnscalableStatistics.*online EM"):
        _Unscalable.sufficient_statistics(np.ones((2, 1)), np.ones(2)).reweighted(2.0)


@attrs.frozen(kw_only=True)
class _MeanScaling(GaussianStatistics):
    """A bug: reweighted also scales the centred mean."""

    def __add__(self, other):
        s = GaussianStatistics.__add__(self, other)
        return _MeanScaling(weight=s.weight, mean=s.mean, scatter=s.scatter,
                            structure=s.structure)

    def reweighted(self, factor):
        return _MeanScaling(weight=self.weight * factor, mean=self.mean * factor,
                            scatter=self.scatter * factor, structure=self.structure)


@attrs.frozen(kw_only=True)
class _BadGaussian(Gaussian):
    @classmethod
    def sufficient_statistics(cls, X, weights):
        s = GaussianStatistics.of(X, weights, cls._structure)
        return _MeanScaling(weight=s.weight, mean=s.mean, scatter=s.scatter,
                            structure=s.structure)


@attrs.frozen(kw_only=True)
class _ForgetfulScale(_UnscalableStatistics):
    """A bug: reweighted leaves the statistics as they are."""

    def __add__(self, other):
        s = PoissonStatistics.__add__(self, other)
        return _ForgetfulScale(weight=s.weight, total=s.total, log_factorial=s.log_factorial)

    def reweighted(self, factor):
        return self


@attrs.frozen(kw_only=True)
class _ForgetfulPoisson(Poisson):
    @classmethod
    def sufficient_statistics(cls, X, weights):
        s = Poisson.sufficient_statistics(X, weights)
        return _ForgetfulScale(weight=s.weight, total=s.total, log_factorial=s.log_factorial)


def test_the_kit_catches_a_broken_reweighted():
    with pytest.raises(AssertionError, match="statistics_reweighted"):
        check_statistics_reweighted(_BadGaussian(mean=[1.0, 2.0], covariance=np.eye(2)))
    with pytest.raises(AssertionError, match=r"statistics_reweighted .*total_weight"):
        check_statistics_reweighted(_ForgetfulPoisson(rate=[2.0]))
    report = check_distribution(_Unscalable(rate=[2.0]), checks=["statistics_reweighted"])
    assert "statistics_reweighted" in report.skipped


# -- GMM.partial_fit ---------------------------------------------------------------------------
def _stream(n_batches=12, size=150, seed=18):
    X = GAUSSIAN_TRUTH.sample(n_batches * size, np.random.default_rng(seed))[0]
    return np.array_split(X, n_batches)


def test_partial_fit_equals_online_em_step_by_step():
    start = GAUSSIAN_START
    gmm = GMM(n_components=3, weights_init=start.weights,
              means_init=[c.mean for c in start.components],
              precisions_init=[np.linalg.inv(c.covariance_matrix) for c in start.components],
              learning_offset=3.0, learning_decay=0.65, reg_covar=1e-4)
    online = OnlineEM(m_step=MaximumLikelihood(component_prior=CovarianceRidge(reg_covar=1e-4)),
                      step_offset=3.0, step_exponent=0.65)
    state = online.start(start)
    w = np.random.default_rng(19).uniform(0.2, 3.0, 150)
    for t, batch in enumerate(_stream(), start=1):
        gmm.partial_fit(batch, sample_weight=w)
        state = online.step(state, batch, sample_weight=w)
        assert gmm.n_iter_ == t
        np.testing.assert_allclose(gmm.weights_, state.model.weights, rtol=1e-10)
        for k, c in enumerate(state.model.components):
            np.testing.assert_allclose(gmm.means_[k], c.mean, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(gmm.covariances_[k], c.covariance_matrix, rtol=1e-9)
        assert gmm.lower_bound_ == pytest.approx(state.batch_log_likelihood, rel=1e-12)
        assert not gmm.converged_ and len(gmm.history_) == 1


def test_partial_fit_then_predict():
    stream = _stream(n_batches=20, size=300, seed=20)
    gmm = GMM(n_components=3, random_state=0)
    for batch in stream:
        assert gmm.partial_fit(batch) is gmm
    X = np.concatenate(stream)
    batch_fit = GMM(n_components=3, random_state=0, tol=1e-8).fit(X)
    # the same clusters, up to the labels' order, and nearly the batch fit's log-likelihood
    order = [int(np.argmin(np.linalg.norm(batch_fit.means_ - m, axis=1))) for m in gmm.means_]
    assert sorted(order) == [0, 1, 2]
    agreement = np.mean(np.array(order)[gmm.predict(X)] == batch_fit.predict(X))
    assert agreement > 0.99
    assert gmm.score(X) > batch_fit.score(X) - 0.01
    assert gmm.predict_proba(X[:5]).shape == (5, 3)
    assert gmm.sample(4)[0].shape == (4, 2)
    assert np.all(np.isfinite(gmm.score_samples(X[:10])))


def test_partial_fit_continues_a_fit_and_restarts_after_a_new_fit():
    stream = _stream(seed=21)
    X = np.concatenate(stream)
    gmm = GMM(n_components=3, random_state=0).fit(X)
    fitted = gmm.model_
    gmm.partial_fit(stream[0])
    assert gmm.n_iter_ == 1
    expected = OnlineEM(m_step=MaximumLikelihood(component_prior=CovarianceRidge(reg_covar=1e-6)),
                        step_exponent=0.7).step(OnlineEM().start(fitted), stream[0])
    np.testing.assert_allclose(gmm.means_, [c.mean for c in expected.model.components],
                               rtol=1e-10)
    gmm.partial_fit(stream[1])
    assert gmm.n_iter_ == 2
    gmm.fit(X)
    gmm.partial_fit(stream[2])
    assert gmm.n_iter_ == 1  # a new online run from the new fit


def test_partial_fit_bad_input():
    gmm = GMM(n_components=3, random_state=0)
    with pytest.raises(ValueError, match="needs n_samples >= n_components=3"):
        gmm.partial_fit(np.ones((2, 2)))
    gmm.partial_fit(GAUSSIAN_TRUTH.sample(50, np.random.default_rng(22))[0])
    with pytest.raises(ValueError, match="X has 3 features, but GMM is expecting 2"):
        gmm.partial_fit(np.ones((5, 3)))
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        gmm.partial_fit(np.ones((2, 2)), sample_weight=[1.0, -1.0])


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"learning_decay": 0.5}, ValueError, "learning_decay must be > 0.5"),
    ({"learning_decay": 1.5}, ValueError, "learning_decay must be <= 1.0"),
    ({"learning_decay": "fast"}, TypeError, "learning_decay"),
    ({"learning_offset": -1.0}, ValueError, "learning_offset must be >= 0"),
])
def test_gmm_learning_settings_are_validated(kwargs, error, match):
    with pytest.raises(error, match=match):
        GMM(**kwargs)
    gmm = GMM()
    with pytest.raises(error, match=match):
        gmm.set_params(**kwargs)


def test_gmm_learning_settings_are_parameters():
    params = GMM(learning_offset=5.0, learning_decay=0.9).get_params()
    assert params["learning_offset"] == 5.0 and params["learning_decay"] == 0.9


def test_exported():
    assert probmix.OnlineEM is OnlineEM
    assert probmix.em.OnlineEMState is OnlineEMState


def test_partial_fit_marginalises_missing_entries_like_the_batch_fit():
    stream = _stream(n_batches=40, size=300, seed=21)
    rng = np.random.default_rng(22)
    gappy = []
    for batch in stream:
        batch = batch.copy()
        batch[rng.random(len(batch)) < 0.25, rng.integers(0, 2)] = np.nan  # one column
        gappy.append(batch)
    with pytest.raises(ValueError, match="missing='marginalize'"):
        GMM(n_components=3, random_state=0).partial_fit(gappy[0])
    # one start for both (a start is not what is tested here: from a poor k-means++ start on
    # the first 300 rows, online EM can settle in a poorer optimum, as batch EM can)
    start = dict(n_components=3, means_init=[[0.5, 0.5], [5.0, 0.0], [0.0, 6.0]],
                 missing="marginalize", random_state=0)
    gmm = GMM(**start)
    for batch in gappy:
        gmm.partial_fit(batch)
    X = np.concatenate(gappy)
    batch_fit = GMM(**start, tol=1e-8).fit(X)
    order = [int(np.argmin(np.linalg.norm(batch_fit.means_ - m, axis=1))) for m in gmm.means_]
    assert sorted(order) == [0, 1, 2]
    # the same fixed point up to the stochastic approximation's error
    np.testing.assert_allclose(gmm.means_, batch_fit.means_[order], atol=0.1)
    assert gmm.score(X) > batch_fit.score(X) - 0.01
    assert np.all(np.isfinite(gmm.impute(X)))


def test_online_em_with_missing_entries_steps_on_expected_statistics():
    X = np.concatenate(_stream(n_batches=5, size=200, seed=23))
    X[np.random.default_rng(24).random(len(X)) < 0.3, 1] = np.nan
    online = OnlineEM(missing="marginalize", batch_size=100, max_epochs=2, random_state=0)
    result = online.fit(X, GAUSSIAN_START)
    assert np.all(np.isfinite(result.history.log_likelihood))
    with pytest.raises(ValueError, match="contains NaN"):
        OnlineEM(batch_size=100).fit(X, GAUSSIAN_START)
