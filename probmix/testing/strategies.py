"""Hypothesis strategies for testing a component family: data, weights, splits, parameters.

Use them with the checks of :mod:`probmix.testing.checks`, which accept explicit data, to let
hypothesis search for a counterexample::

    from hypothesis import given
    from hypothesis import strategies as st
    from probmix.testing import check_statistics_additive
    from probmix.testing.strategies import row_splits, sample_weights, samples

    @given(data=st.data())
    def test_statistics_add(data):
        X = data.draw(samples(my_instance, n_rows=st.integers(20, 60)))
        check_statistics_additive(my_instance, X=X, weights=data.draw(sample_weights(len(X))),
                                  splits=data.draw(row_splits(len(X))))

Valid parameters come from :func:`parameters` / :func:`instances` (example parameters plus a
structure-preserving perturbation, :func:`jitter` by default, or your own), from
:func:`refitted` (the family fitted to a sample of an instance: valid by construction, for
any family), or from a strategy the family writes itself.

hypothesis is a test dependency of probmix, not a runtime one: ``import probmix`` never
imports this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

try:
    from hypothesis import assume
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "probmix.testing.strategies needs hypothesis, a test dependency of probmix: install "
        "it with `pip install hypothesis` (or `pip install probmix[test]`). The checks in "
        "probmix.testing work without it.") from exc

import numpy as np
from scipy.linalg import expm

from ..distributions.base import Distribution

__all__ = [
    "finite_arrays",
    "instances",
    "jitter",
    "parameters",
    "refitted",
    "row_splits",
    "sample_weights",
    "samples",
    "seeds",
]

#: seeds for numpy generators: hypothesis draws the seed, numpy the bulk of the numbers
seeds = st.integers(min_value=0, max_value=2**32 - 1)

_SOME_ROWS = st.integers(1, 50)


def _size(n: int | st.SearchStrategy[int]) -> st.SearchStrategy[int]:
    return n if isinstance(n, st.SearchStrategy) else st.just(int(n))


def finite_arrays(shape: int | tuple[int, ...] | st.SearchStrategy[tuple[int, ...]], *,
                  min_value: float = -1e3, max_value: float = 1e3,
                  dtype: Any = np.float64) -> st.SearchStrategy[np.ndarray]:
    """Arrays of the given shape (or shape strategy) with finite entries in
    [``min_value``, ``max_value``]: no NaN, no infinity, no subnormals.

    For data of a family with a restricted support (counts, codes), use :func:`samples`.
    """
    elements = st.floats(min_value=min_value, max_value=max_value, allow_nan=False,
                         allow_infinity=False, allow_subnormal=False,
                         width=np.dtype(dtype).itemsize * 8)
    return hnp.arrays(dtype=dtype, shape=shape, elements=elements)


@st.composite
def samples(draw: Any, dist: Distribution,
            n_rows: int | st.SearchStrategy[int] = _SOME_ROWS) -> np.ndarray:
    """Rows drawn from ``dist`` (so they lie in its support), an array of shape
    (n_rows, n_features); hypothesis picks the number of rows and the seed."""
    n = draw(_size(n_rows))
    return np.asarray(dist.sample(n, np.random.default_rng(draw(seeds))), dtype=float)


@st.composite
def sample_weights(draw: Any, n: int | st.SearchStrategy[int], *, max_value: float = 10.0,
                   integer: bool = False, min_positive: int = 1) -> np.ndarray:
    """Non-negative weights of shape (n,) with a positive sum; exact zeros are common.

    ``integer=True`` draws integers in [0, ``max_value``], for comparisons with repeated rows.
    At least ``min_positive`` weights (or all n, if fewer) are positive: a family that needs
    some rows for a non-singular fit (d + 1 for a d-dimensional Gaussian) asks for them, as
    with fewer it is round-off that decides whether its estimate is singular.
    """
    size = draw(_size(n))
    if integer:
        elements: st.SearchStrategy[Any] = st.integers(0, int(max_value))
        w = draw(hnp.arrays(np.int64, size, elements=elements))
    else:
        elements = st.one_of(st.just(0.0), st.floats(min_value=1e-3, max_value=max_value))
        w = draw(hnp.arrays(np.float64, size, elements=elements))
    missing = min(max(min_positive, 1), size) - int(np.count_nonzero(w))
    if missing > 0:
        zeros = np.flatnonzero(w == 0)
        chosen = draw(st.permutations(zeros.tolist()))[:missing]
        w[chosen] = 1
    return w


@st.composite
def row_splits(draw: Any, n: int, *, max_chunks: int = 5) -> list[np.ndarray]:
    """A random partition of ``range(n)`` into at most ``max_chunks`` chunks of row indices,
    in random order, empty chunks allowed (an empty chunk's statistics must be neutral)."""
    order = np.array(draw(st.permutations(range(n))), dtype=int)
    n_cuts = draw(st.integers(0, max_chunks - 1))
    cuts = sorted(draw(st.lists(st.integers(0, n), min_size=n_cuts, max_size=n_cuts)))
    return np.split(order, cuts)


def jitter(params: Mapping[Any, Any], rng: np.random.Generator,
           scale: float = 0.3) -> dict[Any, Any]:
    """Perturb parameters, keeping the usual constraints; the default of :func:`parameters`.

    Each float value (scalar or array) is moved by about ``scale`` in the way its values
    suggest: a symmetric positive-definite matrix by a congruence B A Bᵀ (B = exp of a random
    matrix, so invertible); rows summing to one (probabilities) multiplicatively and then
    renormalised; values strictly inside (0, 1) on the logit scale; positive values
    multiplicatively; anything else additively, by ``scale · (1 + abs(value))``. Integers,
    booleans, strings, distributions and other objects are kept. A family with other
    constraints passes its own ``perturb``.
    """
    out: dict[Any, Any] = {}
    for key, value in params.items():
        arr = _as_float_array(value)
        if arr is None:
            if isinstance(value, (list, tuple)) and value:  # ragged: each entry on its own
                parts = jitter(dict(enumerate(value)), rng, scale)
                out[key] = type(value)(parts[i] for i in range(len(value)))
            else:
                out[key] = value
            continue
        z = rng.standard_normal(arr.shape)
        if _is_spd(arr):
            b = expm(scale * rng.standard_normal(arr.shape) / np.sqrt(arr.shape[0]))
            new = b @ arr @ b.T
            new = 0.5 * (new + new.T)
        elif (arr.ndim >= 1 and arr.shape[-1] > 1 and np.all(arr >= 0)
              and np.allclose(arr.sum(axis=-1), 1.0)):
            new = arr * np.exp(scale * z)
            new = new / new.sum(axis=-1, keepdims=True)
        elif np.all((arr > 0) & (arr < 1)):
            logit = np.log(arr) - np.log1p(-arr)
            new = 1.0 / (1.0 + np.exp(-(logit + scale * z)))
        elif np.all(arr > 0):
            new = arr * np.exp(scale * z)
        else:
            new = arr + scale * (1.0 + np.abs(arr)) * z
        out[key] = float(new) if np.ndim(value) == 0 else new
    return out


def _as_float_array(value: Any) -> np.ndarray | None:
    """``value`` as a float array, or None (a distribution, integers, a ragged sequence)."""
    if isinstance(value, Distribution):
        return None
    try:
        arr = np.asarray(value)
    except ValueError:  # ragged nested sequences
        return None
    return arr if arr.dtype.kind == "f" else None


def _is_spd(a: np.ndarray) -> bool:
    if a.ndim != 2 or a.shape[0] != a.shape[1] or not np.allclose(a, a.T):
        return False
    return bool(np.all(np.linalg.eigvalsh(a) > 0))


Perturb = Callable[[Mapping[str, Any], np.random.Generator], Mapping[str, Any]]


@st.composite
def parameters(draw: Any, example: Mapping[str, Any], perturb: Perturb = jitter
               ) -> dict[str, Any]:
    """Parameter dicts near ``example``: ``perturb(example, rng)`` with a generator seeded by
    hypothesis (:func:`jitter` by default). The example itself is among the first drawn."""
    if draw(st.booleans()):
        return dict(example)
    return dict(perturb(example, np.random.default_rng(draw(seeds))))


@st.composite
def instances(draw: Any, family: type[Distribution], example: Mapping[str, Any],
              perturb: Perturb = jitter) -> Distribution:
    """Instances ``family(**params)`` for ``params`` drawn from :func:`parameters`; a draw the
    family's validation rejects (``ValueError``) is discarded."""
    params = draw(parameters(example, perturb))
    try:
        return family(**params)
    except ValueError:
        assume(False)
        raise  # unreachable: assume(False) ends the example


@st.composite
def refitted(draw: Any, dist: Distribution, n_rows: int | st.SearchStrategy[int] = 200
             ) -> Distribution:
    """Members of ``dist``'s family near it, for any family: the fit (one
    ``from_statistics``) to ``n_rows`` draws of ``dist`` with random weights. Valid by
    construction whenever the family can fit that much data."""
    n = draw(_size(n_rows))
    rng = np.random.default_rng(draw(seeds))
    X = np.asarray(dist.sample(n, rng), dtype=float)
    w = rng.uniform(0.5, 2.0, n)
    try:
        return type(dist).from_statistics(dist.sufficient_statistics(X, w))
    except ValueError:
        assume(False)
        raise
