"""Hypothesis strategies shared by the property tests.

Hypothesis draws the shape of a case (family, number of components and features, sizes,
weights, locations); the bulk arrays come from a numpy generator seeded by a drawn integer,
so the data are continuous (no ties, no exactly singular covariances) yet reproducible.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st

from probmix import MixtureModel
from probmix.distributions import DiagonalNormal, Gaussian, SphericalNormal, TiedNormal
from probmix.init import initial_model

FAMILIES = (Gaussian, TiedNormal, DiagonalNormal, SphericalNormal)

families = st.sampled_from(FAMILIES)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def random_covariance(family: type[Gaussian], d: int, rng: np.random.Generator,
                      scale: float = 1.0):
    """A well-conditioned covariance in the family's compact shape."""
    if family in (Gaussian, TiedNormal):
        a = rng.standard_normal((d, d))
        return scale * (a @ a.T / d + 0.3 * np.eye(d))
    if family is DiagonalNormal:
        return scale * rng.uniform(0.3, 2.0, d)
    return scale * float(rng.uniform(0.3, 2.0))


def random_components(family: type[Gaussian], means: np.ndarray, rng: np.random.Generator,
                      scale: float = 1.0) -> list[Gaussian]:
    """One component per mean (a tied family shares one covariance)."""
    d = means.shape[1]
    shared = random_covariance(family, d, rng, scale)
    return [family(mean=m, covariance=shared if family is TiedNormal
                   else random_covariance(family, d, rng, scale)) for m in means]


@st.composite
def simplex_points(draw, size: int, min_value: float = 0.05) -> np.ndarray:
    """Mixture weights, each at least about ``min_value`` before normalising."""
    raw = draw(st.lists(st.floats(min_value, 1.0), min_size=size, max_size=size))
    w = np.asarray(raw)
    return w / w.sum()


@st.composite
def mixture_models(draw, families=families, max_components: int = 3, max_features: int = 3,
                   spread: float = 6.0) -> MixtureModel:
    """A random Gaussian mixture of one family with means in [-spread, spread]^d."""
    family = draw(families)
    K = draw(st.integers(1, max_components))
    d = draw(st.integers(1, max_features))
    rng = np.random.default_rng(draw(seeds))
    weights = draw(simplex_points(K))
    means = rng.uniform(-spread, spread, (K, d))
    return MixtureModel(weights=weights, components=random_components(family, means, rng))


class EMCase(NamedTuple):
    """Data drawn from ``truth`` and a soft starting model ``init`` of the same family."""

    family: type[Gaussian]
    truth: MixtureModel
    X: np.ndarray
    init: MixtureModel
    seed: int


def soft_start(X: np.ndarray, family: type[Gaussian], K: int,
               rng: np.random.Generator) -> MixtureModel:
    """θ_0 from random soft responsibilities: every component starts with mass ~n/K."""
    resp = rng.dirichlet(np.full(K, 2.0), size=X.shape[0])
    return initial_model(X, [family] * K, resp)


@st.composite
def em_cases(draw, families=families, max_components: int = 3, max_features: int = 3,
             rows_per_parameter: int = 4, max_rows: int = 80) -> EMCase:
    """Enough continuous data for EM without a ridge not to collapse within a few iterations.

    There are at least ``rows_per_parameter`` · K · (d + 2) rows, and every true component
    contributes at least 3 (d + 1) of them, so no cluster in the data is degenerate.
    """
    truth = draw(mixture_models(families, max_components, max_features))
    family = type(truth.components[0])
    K, d = truth.n_components, truth.n_features
    seed = draw(seeds)
    rng = np.random.default_rng(seed)
    low = min(max_rows, rows_per_parameter * K * (d + 2) + 10)
    n = draw(st.integers(low, max(low, max_rows)))
    counts = np.maximum(rng.multinomial(n, truth.weights), 3 * (d + 1))
    X = np.concatenate([c.sample(int(m), rng) for c, m in zip(truth.components, counts)])
    X = X[rng.permutation(X.shape[0])]
    return EMCase(family, truth, X, soft_start(X, family, K, rng), seed)


@st.composite
def arbitrary_q(draw, n: int, K: int) -> np.ndarray:
    """Rows on the simplex with some exact zeros (never a whole row of zeros)."""
    rng = np.random.default_rng(draw(seeds))
    q = rng.dirichlet(np.full(K, draw(st.sampled_from([0.2, 1.0, 5.0]))), size=n)
    if K > 1:
        zero = rng.uniform(size=(n, K)) < draw(st.floats(0.0, 0.6))
        zero[np.arange(n), rng.integers(0, K, n)] = False  # keep one entry of each row
        q = np.where(zero, 0.0, q)
    return q / q.sum(axis=1, keepdims=True)


def permuted(model: MixtureModel, order: np.ndarray) -> MixtureModel:
    """The same mixture with its components listed in the given order."""
    return MixtureModel(weights=model.weights[order],
                        components=[model.components[k] for k in order])


def shifted(model: MixtureModel, shift: np.ndarray, scale: float = 1.0) -> MixtureModel:
    """The image of the mixture under x ↦ scale · x + shift."""
    components = []
    for c in model.components:
        cov = c.covariance.compact * scale**2
        components.append(type(c)(mean=scale * c.mean + shift, covariance=cov))
    return MixtureModel(weights=model.weights, components=components)
