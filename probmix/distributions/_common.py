"""Helpers the component families share: the support-error convention (a ``ValueError``
carrying ``.column`` and ``.problem``, so a product of distributions can renumber the column),
the zero-weight row filter, and :func:`refine`, the fit of a family whose statistics depend
on its current parameters."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._validation import check_data, check_sample_weight
from ..exceptions import ConvergenceWarning
from .base import Distribution

__all__ = ["first_violation", "positive_rows", "refine", "support_error"]


def support_error(column: int, problem: str) -> ValueError:
    """``ValueError("X column {column} {problem}")`` carrying ``.column`` and ``.problem``, so
    that a product of distributions can renumber the column to its own input's numbering."""
    exc = ValueError(f"X column {column} {problem}")
    exc.column = column  # type: ignore[attr-defined]
    exc.problem = problem  # type: ignore[attr-defined]
    return exc


def first_violation(bad: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of the first flagged entry of the first flagged column, or None."""
    flagged = np.asarray(bad).any(axis=0)
    if not flagged.any():
        return None
    col = int(np.argmax(flagged))
    return int(np.argmax(bad[:, col])), col


def positive_rows(X: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of positive weight and their weights, in float64: a row of weight 0
    contributes nothing to the statistics, whatever it holds."""
    w = np.asarray(weights, dtype=np.float64)
    keep = w > 0
    if not keep.all():
        X, w = X[keep], w[keep]
    return np.asarray(X, dtype=np.float64), w


def refine(start: Distribution, X: Any, weights: Any = None, prior: Any = None, *,
           tol: float = 1e-12, max_iter: int = 1000) -> Distribution:
    r"""Iterate θ ← from_statistics(θ.sufficient_statistics(X, w)) from ``start`` to a fixed point.

    For an exponential family the statistics do not depend on θ and one step is the exact
    fit. For a family whose statistics are *expected* statistics of its own latent variables
    (:class:`~probmix.distributions.StudentT`'s scales, a nested
    :class:`~probmix.MixtureModel`'s labels, a product containing either) each step is an
    EM step, so Σ_i w_i log p(x_i | θ) (+ log p(θ)) never decreases; it stops when that
    changes by less than ``tol`` per unit weight.

    Returns
    -------
    Distribution
        Of the type of ``start``.

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` steps were not enough.
    """
    X = check_data(X, n_features=start.n_features, expected_by="the distribution has")
    w = check_sample_weight(weights, X.shape[0], name="weights")
    start.check_support(X)
    family = type(start)
    theta = start
    previous = (w @ theta.log_prob(X) + theta.log_prior(prior)) / w.sum()
    for _ in range(max_iter):
        theta = family.from_statistics(theta.sufficient_statistics(X, w), prior)
        current = (w @ theta.log_prob(X) + theta.log_prior(prior)) / w.sum()
        if abs(current - previous) < tol:
            return theta
        previous = current
    warnings.warn(f"{family.__name__}: the fit did not converge in max_iter={max_iter} steps "
                  f"(last change {abs(current - previous):.3g} per unit weight)",
                  ConvergenceWarning, stacklevel=2)
    return theta
