"""Online EM never produces invalid parameters, whatever the stream; ``reweighted`` keeps its
laws for every family; ``GMM.partial_fit`` is ``OnlineEM.step``; the step sizes follow
γ_t = (t + t₀)^(−κ).

The streams are adversarial in the ways a stream can be: batches of a single row, weights
from 1e-6 to 1e6 with exact zeros, rows far from every component, few rows for many
components. At every step the model must be a valid mixture (finite weights on the simplex,
positive-definite covariances, rates and probabilities in range) and the running statistics a
per-unit-weight average (masses summing to 1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probmix import GMM, MixtureModel, OnlineEM
from probmix.distributions import (
    Bernoulli,
    Categorical,
    DiagonalNormal,
    Exponential,
    Gaussian,
    IndependentComponents,
    Poisson,
    SphericalNormal,
    StudentT,
    TiedNormal,
)
from probmix.em import MaximumLikelihood
from probmix.priors import CovarianceRidge
from probmix.testing import check_statistics_reweighted
from probmix.testing.strategies import sample_weights, samples

from .strategies import seeds

GAUSSIANS = (Gaussian, DiagonalNormal, SphericalNormal, TiedNormal)


def _component(family, d, rng):
    if family in GAUSSIANS:
        mean = rng.normal(0.0, 3.0, d)
        if family is DiagonalNormal:
            return family(mean=mean, covariance=rng.uniform(0.3, 2.0, d))
        if family is SphericalNormal:
            return family(mean=mean, covariance=float(rng.uniform(0.3, 2.0)))
        a = rng.standard_normal((d, d))
        return family(mean=mean, covariance=a @ a.T / d + 0.3 * np.eye(d))
    if family is Poisson:
        return Poisson(rate=rng.uniform(0.5, 20.0, d))
    return Bernoulli(probability=rng.uniform(0.05, 0.95, d))


def _rows(family, model, n, rng):
    """Rows from the model, some of them far out (for a Gaussian) or at the support's edge."""
    X, _ = model.sample(n, rng)
    far = rng.uniform(size=n) < 0.1
    if family in GAUSSIANS:
        X[far] = rng.normal(0.0, 200.0, (int(far.sum()), X.shape[1]))
    elif family is Poisson:
        X[far] = 0.0
    return X


def _weights(kind, n, rng):
    if kind == "ones":
        return np.ones(n)
    if kind == "spread":  # 1e-6 … 1e6, with exact zeros
        w = 10.0 ** rng.uniform(-6, 6, n) * (rng.uniform(size=n) > 0.3)
    else:  # integers, zeros common
        w = rng.integers(0, 4, n).astype(float)
    if not w.sum() > 0:
        w[rng.integers(n)] = 1.0
    return w


def _assert_valid(state, family):
    model = state.model
    w = model.weights
    assert np.all(np.isfinite(w)) and np.all(w >= 0) and abs(w.sum() - 1.0) < 1e-9
    for c in model.components:
        if family in GAUSSIANS:
            assert np.all(np.isfinite(c.mean))
            cov = c.covariance_matrix
            assert np.all(np.isfinite(cov))
            assert np.allclose(cov, cov.T)
            assert np.linalg.eigvalsh(cov).min() > 0  # positive definite
        elif family is Poisson:
            assert np.all(np.isfinite(c.rate)) and np.all(c.rate >= 0)
        else:
            assert np.all((c.probability >= 0) & (c.probability <= 1))
    masses = state.statistics.masses
    assert np.all(np.isfinite(masses)) and np.all(masses >= 0)
    assert math.isclose(float(masses.sum()), 1.0, rel_tol=1e-9)


@pytest.mark.filterwarnings("ignore::probmix.DegenerateComponentWarning")  # expected here
@settings(max_examples=80)
@given(family=st.sampled_from((*GAUSSIANS, Poisson, Bernoulli)), n_components=st.integers(1, 4),
       n_features=st.integers(1, 3),
       sizes=st.lists(st.integers(1, 25), min_size=1, max_size=8),
       weights=st.sampled_from(["ones", "spread", "integers"]),
       kappa=st.floats(0.501, 1.0), t0=st.floats(0.0, 20.0), seed=seeds)
def test_any_stream_gives_valid_parameters_at_every_step(family, n_components, n_features,
                                                         sizes, weights, kappa, t0, seed):
    rng = np.random.default_rng(seed)
    comps = [_component(family, n_features, rng) for _ in range(n_components)]
    if family is TiedNormal:  # one shared covariance
        comps = [TiedNormal(mean=c.mean, covariance=comps[0].covariance) for c in comps]
    start = MixtureModel(weights=rng.dirichlet(np.ones(n_components)), components=comps)
    # a Gaussian fitted to one row is singular: the ridge GMM uses keeps it positive definite
    prior = CovarianceRidge(reg_covar=1e-6) if family in GAUSSIANS else None
    online = OnlineEM(m_step=MaximumLikelihood(component_prior=prior), step_offset=t0,
                      step_exponent=kappa)
    state = online.start(start)
    seen = 0.0
    for t, size in enumerate(sizes, start=1):
        X = _rows(family, start, size, rng)
        w = _weights(weights, size, rng)
        state = online.step(state, X, sample_weight=w)
        seen += w.sum()
        assert state.n_steps == t and math.isclose(state.weight_seen, seen, rel_tol=1e-12)
        assert state.step_size == online.step_size(t)
        _assert_valid(state, family)
        assert not np.any(np.isnan(state.model.log_prob(X)))


# -- the reweighted laws, for every family ---------------------------------------------------------
FAMILIES = {
    "Gaussian": Gaussian(mean=[0.5, -1.0], covariance=[[1.0, 0.3], [0.3, 0.5]]),
    "DiagonalNormal": DiagonalNormal(mean=[0.5, -1.0], covariance=[1.0, 0.5]),
    "SphericalNormal": SphericalNormal(mean=[0.5, -1.0], covariance=0.7),
    "TiedNormal": TiedNormal(mean=[0.5, -1.0], covariance=[[1.0, 0.3], [0.3, 0.5]]),
    "Poisson": Poisson(rate=[2.0, 7.0]),
    "Bernoulli": Bernoulli(probability=[0.2, 0.7]),
    "Categorical": Categorical(probabilities=[[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]]),
    "Exponential": Exponential(rate=[0.5, 3.0]),
    "StudentT": StudentT(mean=[0.0, 1.0], scale=[[1.0, 0.2], [0.2, 0.6]], dof=4.0),
    "IndependentComponents": IndependentComponents(
        parts=[Gaussian(mean=[0.0], covariance=[[1.0]]), Poisson(rate=[3.0])],
        columns=[(1,), (0,)]),
    "MixtureModel": MixtureModel(weights=[0.3, 0.7], components=[
        Poisson(rate=[1.0, 2.0]), Poisson(rate=[6.0, 9.0])]),
}


@settings(max_examples=60)
@given(name=st.sampled_from(list(FAMILIES)), data=st.data())
def test_reweighted_keeps_its_laws_for_every_family(name, data):
    dist = FAMILIES[name]
    if isinstance(dist, MixtureModel):  # its sample is (rows, labels)
        n_rows, seed = data.draw(st.integers(8, 40)), data.draw(seeds)
        X = dist.sample(n_rows, np.random.default_rng(seed))[0]
    else:
        X = data.draw(samples(dist, n_rows=st.integers(8, 40)), label="X")
    # d + 2 rows of positive weight: fewer may make a Gaussian fit singular by round-off
    w = data.draw(sample_weights(len(X), min_positive=dist.n_features + 2), label="weights")
    check_statistics_reweighted(dist, X=X, weights=w, rng=data.draw(seeds, label="rng"))


# -- partial_fit is OnlineEM.step ------------------------------------------------------------------
@settings(max_examples=30)
@given(sizes=st.lists(st.integers(1, 30), min_size=1, max_size=6),
       covariance_type=st.sampled_from(["full", "diag", "spherical", "tied"]),
       decay=st.floats(0.51, 1.0), offset=st.floats(0.0, 10.0), seed=seeds)
def test_partial_fit_is_online_em_step_by_step(sizes, covariance_type, decay, offset, seed):
    rng = np.random.default_rng(seed)
    K, d = 2, 2
    means = rng.normal(0.0, 3.0, (K, d))
    precisions = {"full": np.stack([np.eye(d)] * K), "diag": np.ones((K, d)),
                  "spherical": np.ones(K), "tied": np.eye(d)}[covariance_type]
    gmm = GMM(n_components=K, covariance_type=covariance_type, weights_init=[0.5, 0.5],
              means_init=means, precisions_init=precisions, learning_decay=decay,
              learning_offset=offset)
    family = {"full": Gaussian, "diag": DiagonalNormal, "spherical": SphericalNormal,
              "tied": TiedNormal}[covariance_type]
    cov = {"full": np.eye(d), "diag": np.ones(d), "spherical": 1.0, "tied": np.eye(d)}
    start = MixtureModel(weights=[0.5, 0.5], components=[
        family(mean=m, covariance=cov[covariance_type]) for m in means])
    online = OnlineEM(m_step=MaximumLikelihood(component_prior=CovarianceRidge(reg_covar=1e-6)),
                      step_offset=offset, step_exponent=decay)
    state = online.start(start)
    for size in sizes:
        X = rng.normal(0.0, 3.0, (size, d))
        w = rng.uniform(0.1, 5.0, size)
        gmm.partial_fit(X, sample_weight=w)
        state = online.step(state, X, sample_weight=w)
        np.testing.assert_allclose(gmm.weights_, state.model.weights, rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(gmm.means_, [c.mean for c in state.model.components],
                                   rtol=1e-9, atol=1e-12)
    assert gmm.n_iter_ == len(sizes)


# -- the schedule --------------------------------------------------------------------------------
@settings(max_examples=100)
@given(kappa=st.floats(0.5, 1.0, exclude_min=True), t0=st.floats(0.0, 1e3),
       t=st.integers(2, 10**7))
def test_step_sizes_follow_the_schedule(kappa, t0, t):
    online = OnlineEM(step_exponent=kappa, step_offset=t0)
    gamma = online.step_size(t)
    assert math.isclose(gamma, (t + t0) ** -kappa, rel_tol=1e-14)
    assert 0 < gamma < 1 and online.step_size(t + 1) <= gamma <= online.step_size(t - 1)
    assert online.step_size(1) == 1.0
