"""Input checks shared by every layer: one place that turns bad input into a clear message."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

_FLOATS = (np.float32, np.float64)


def check_data(X: Any, *, name: str = "X", n_features: int | None = None,
               min_samples: int = 1, dtype: Any = None,
               expected_by: str = "the model was fitted with",
               allow_missing: bool = False) -> np.ndarray:
    """Return ``X`` as a finite 2-D float array (float32 kept, anything else float64).

    Raises ``TypeError`` for non-numeric input and ``ValueError`` for a wrong shape,
    too few rows, a wrong number of columns, or NaN/inf entries. With ``allow_missing``, NaN
    marks a missing entry (infinity is still an error, and so is a row with nothing observed).
    """
    if hasattr(X, "dtype") and not isinstance(X, np.ndarray) and hasattr(X, "to_numpy"):
        X = X.to_numpy()  # pandas objects
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if arr.dtype == object:  # e.g. from pandas: fine if every entry is a real number
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must hold numbers: {exc}") from None
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must hold numbers, got an array of dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real (Complex data not supported: dtype {arr.dtype})")
    if arr.ndim != 2:
        hint = " (use X.reshape(-1, 1) for a single feature)" if arr.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D of shape (n_samples, n_features), "
                         f"got {arr.ndim}-D with shape {arr.shape}{hint}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has no features (shape {arr.shape})")
    if arr.shape[0] < min_samples:
        raise ValueError(f"{name} needs at least {min_samples} sample(s), got {arr.shape[0]}")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features, but {expected_by} "
                         f"{n_features}")
    target = dtype if dtype is not None else (arr.dtype if arr.dtype in _FLOATS else np.float64)
    arr = np.asarray(arr, dtype=target)
    if not np.all(np.isfinite(arr)):
        if allow_missing:
            _check_missing(arr, name)
        else:
            bad = np.argwhere(~np.isfinite(arr))[0]
            what = "NaN" if np.isnan(arr[bad[0], bad[1]]) else "infinity"
            hint = (" (or let the model marginalise missing entries: missing='marginalize')"
                    if what == "NaN" else "")
            raise ValueError(f"{name} contains {what} (first at row {bad[0]}, column "
                             f"{bad[1]}); remove or impute those entries{hint}")
    return arr


def _check_missing(arr: np.ndarray, name: str) -> None:
    """NaN entries are missing values; infinity and rows with nothing observed are errors."""
    if np.any(np.isinf(arr)):
        bad = np.argwhere(np.isinf(arr))[0]
        raise ValueError(f"{name} contains infinity (first at row {bad[0]}, column {bad[1]}); "
                         "only NaN marks a missing entry")
    empty = np.all(np.isnan(arr), axis=1)
    if np.any(empty):
        raise ValueError(f"{name} row {int(np.flatnonzero(empty)[0])} has every entry missing "
                         "(NaN): it carries no information; drop such rows")


def check_sample_weight(weights: Any, n_samples: int, *, name: str = "sample_weight",
                        ) -> np.ndarray:
    """Return non-negative finite float64 weights of shape (n_samples,), ones if ``None``."""
    if weights is None:
        return np.ones(n_samples)
    w = np.asarray(weights)
    if not (np.issubdtype(w.dtype, np.number) or w.dtype == bool):
        raise TypeError(f"{name} must hold numbers, got dtype {w.dtype}")
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (n_samples,):
        raise ValueError(f"{name} must have shape ({n_samples},) to match X, got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{name} contains NaN or infinity")
    if np.any(w < 0):
        raise ValueError(f"{name} must be non-negative, got minimum {w.min()}")
    if not w.sum() > 0:
        raise ValueError(f"{name} sums to zero: at least one sample needs a positive weight")
    return w


def check_scalar(value: Any, name: str, kind: Any, *,
                 low: float | None = None, high: float | None = None,
                 low_inclusive: bool = True, high_inclusive: bool = True) -> Any:
    """Check a hyperparameter's type and range, naming it in the message."""
    is_bool = isinstance(value, (bool, np.bool_))
    kinds = kind if isinstance(kind, tuple) else (kind,)
    integral = any(k in (numbers.Integral, int, np.integer) for k in kinds)
    if not isinstance(value, kind) or (is_bool and integral):
        names = " or ".join(k.__name__.replace("Integral", "int").replace("Real", "float")
                            for k in kinds)
        raise TypeError(f"{name} must be {names}, got {type(value).__name__} {value!r}")
    if isinstance(value, numbers.Real) and not np.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (value < low or (value == low and not low_inclusive)):
        op = ">=" if low_inclusive else ">"
        raise ValueError(f"{name} must be {op} {low}, got {value!r}")
    if high is not None and (value > high or (value == high and not high_inclusive)):
        op = "<=" if high_inclusive else "<"
        raise ValueError(f"{name} must be {op} {high}, got {value!r}")
    return value


def readonly(a: Any, dtype: Any = np.float64) -> np.ndarray:
    """A read-only copy of ``a``: parameter arrays of frozen values must not change."""
    arr = np.array(a, dtype=dtype)
    arr.setflags(write=False)
    return arr


def as_rng(random_state: Any) -> np.random.Generator:
    """Turn ``None``, an int, a ``SeedSequence`` or a ``Generator`` into a ``Generator``."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31))
    if random_state is None or isinstance(random_state, (numbers.Integral, np.random.SeedSequence)):
        if isinstance(random_state, (bool, np.bool_)):
            raise TypeError("random_state must be None, an int or a numpy Generator, got a bool")
        if isinstance(random_state, numbers.Integral) and random_state < 0:
            raise ValueError(f"random_state must be non-negative, got {random_state}")
        return np.random.default_rng(random_state)  # type: ignore[arg-type]
    raise TypeError("random_state must be None, an int or a numpy Generator, "
                    f"got {type(random_state).__name__}")
