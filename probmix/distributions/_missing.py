r"""Missing entries (NaN): which rows have them, their missingness patterns, and the Gaussian
conditionals x_mis | x_obs that the Gaussian and Student t families marginalise with.

For a Gaussian N(μ, Σ) and a row with observed coordinates o and missing ones m::

    x_o ~ N(μ_o, Σ_oo)                                      (the marginal: the E-step's density)
    x_m | x_o ~ N(μ_m + Σ_mo Σ_oo⁻¹ (x_o − μ_o), C),   C = Σ_mm − Σ_mo Σ_oo⁻¹ Σ_om

In terms of the precision P = Σ⁻¹ the same quantities need only the |m| × |m| block P_mm:
C = P_mm⁻¹, the conditional mean is μ_m − P_mm⁻¹ P_mo (x_o − μ_o), the Mahalanobis distance
of the observed part is that of the completed row x̂ = (x_o, x̂_m) under Σ, and
log|Σ_oo| = log|Σ| + log|P_mm| (the Schur complement). So one Cholesky factorisation of P_mm
per missingness pattern and component suffices (usually |m| < |o|), no inverse of Σ_oo is
formed, and the per-row work is GEMMs against the factor U (U Uᵀ = Σ⁻¹) that the covariance
structure already keeps. Patterns with the same number of missing entries are factorised in
one batched call, so the Python work grows with the number of distinct missing counts (at
most d), not with the number of patterns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..exceptions import SingularCovarianceError
from .covariance import DiagonalCovariance, FullCovariance, SphericalCovariance

__all__ = ["incomplete_rows", "score_rows", "independent_marginal", "missing_patterns",
           "unsupported", "conditionals", "Conditionals", "LOG_2PI", "LOG_2PIE"]

LOG_2PI = math.log(2.0 * math.pi)
#: log(2πe): the entropy of N(m, C) is ½ (dim · log 2πe + log|C|)
LOG_2PIE = LOG_2PI + 1.0


def incomplete_rows(X: np.ndarray) -> np.ndarray | None:
    """Boolean mask of the rows with a NaN entry, or None when every entry is observed.

    The common case (nothing missing) costs one sum over X: a NaN makes the sum NaN, while
    validated data hold no infinity (an overflowing sum is +-inf, not NaN).
    """
    if X.dtype.kind != "f" or X.size == 0:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        if not np.isnan(np.sum(X)):
            return None
    rows = np.isnan(X).any(axis=1)
    return rows if rows.any() else None


def score_rows(X: np.ndarray, complete: Any, incomplete: Any) -> np.ndarray:
    """One log density per row: ``complete(rows)`` for the rows without NaN (the ordinary
    ``log_prob``), ``incomplete(rows)`` for the others (the marginal of their observed
    entries)."""
    X = np.asarray(X)
    rows = incomplete_rows(X)
    if rows is None:
        return complete(X)
    out = np.empty(X.shape[0])
    if not rows.all():
        out[~rows] = complete(X[~rows])
    out[rows] = incomplete(X[rows])
    return out


def independent_marginal(X: np.ndarray, log_prob: Any, log_terms: Any) -> np.ndarray:
    """:func:`score_rows` for a family whose features are independent given the component:
    a row with NaN scores the sum of ``log_terms(rows)`` (n, d) over its observed entries."""
    def marginal(rows: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            terms = log_terms(rows)
        return np.where(np.isnan(rows), 0.0, terms).sum(axis=1)

    return score_rows(X, log_prob, marginal)


def missing_patterns(nan: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct missingness patterns of the rows.

    Parameters
    ----------
    nan : ndarray of bool, shape (n_samples, n_features)

    Returns
    -------
    patterns : ndarray of bool, shape (n_patterns, n_features)
        Each distinct row of ``nan`` once.
    index : ndarray of int, shape (n_samples,)
        The pattern of each row: ``patterns[index] == nan``.
    """
    n, d = nan.shape
    if n == 0:
        return np.zeros((0, d), dtype=bool), np.zeros(0, dtype=np.intp)
    if d <= 62:  # one integer key per row: a fast unique
        keys = nan.astype(np.int64) @ (np.int64(1) << np.arange(d, dtype=np.int64))
    else:
        packed = np.ascontiguousarray(np.packbits(nan, axis=1))
        keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first, index = np.unique(keys, return_index=True, return_inverse=True)
    return nan[first], index.ravel().astype(np.intp, copy=False)


def unsupported(family: Any) -> ValueError:
    """The error of a family without missing-data support, given rows with NaN."""
    name = family.__name__ if isinstance(family, type) else type(family).__name__
    exc = ValueError(f"{name} does not support missing values (NaN entries): drop or impute "
                     "the incomplete rows, or use a family that marginalises them (the "
                     "Gaussian families, StudentT, Poisson, Bernoulli, Exponential, "
                     "Categorical and products of these)")
    exc.missing_unsupported = True  # type: ignore[attr-defined]  # a product adds its columns
    return exc


class Conditionals:
    """x_mis | x_obs under each of m Gaussian components, for the rows of ``X``.

    Attributes (float64, one column per component)
    ----------------------------------------------
    maha : (n, m)
        (x_o − μ_o)ᵀ Σ_oo⁻¹ (x_o − μ_o), the squared distance of the observed part.
    log_det_observed : (n, m)
        log |Σ_oo| (0 for a row with nothing observed).
    log_det_conditional : (n, m)
        log |C| (0 for a row with nothing missing).
    n_observed, n_missing : (n,)
        Number of observed and missing entries of each row.
    """

    X: np.ndarray
    components: tuple[Any, ...]
    maha: np.ndarray
    log_det_observed: np.ndarray
    log_det_conditional: np.ndarray
    n_observed: np.ndarray
    n_missing: np.ndarray

    def __init__(self, X: np.ndarray, components: Sequence[Any], means: np.ndarray,
                 covariances: Sequence[Any]) -> None:
        self.X = X
        self.components = tuple(components)
        self._data = np.asarray(X, dtype=np.float64)
        self.nan = np.isnan(self._data)
        self.means = np.asarray(means, dtype=np.float64)
        self.n_missing = self.nan.sum(axis=1)
        self.n_observed = self.nan.shape[1] - self.n_missing
        n, m = self._data.shape[0], self.means.shape[0]
        self.maha = np.zeros((n, m))
        self.log_det_observed = np.zeros((n, m))
        self.log_det_conditional = np.zeros((n, m))
        self._covariances = tuple(covariances)

    def filled(self, k: int) -> np.ndarray:
        """The rows with each missing entry replaced by E_k[x_mis | x_obs], (n, d) float64."""
        raise NotImplementedError

    def scatter_correction(self, k: int, weights: np.ndarray, structure: type) -> Any:
        """Σ_i w_i C_ik embedded at the missing coordinates, in ``structure``'s scatter form
        (full (d, d), diagonal (d,) or trace ())."""
        raise NotImplementedError


class _DiagonalConditionals(Conditionals):
    """Independent coordinates: the observed ones score as they are, each missing one keeps
    its component's mean and variance (no patterns, no factorisation)."""

    def __init__(self, X: np.ndarray, components: Sequence[Any], means: np.ndarray,
                 covariances: Sequence[Any]) -> None:
        super().__init__(X, components, means, covariances)
        d = self._data.shape[1]
        self.variances = np.array([np.broadcast_to(np.asarray(c.compact, dtype=float), (d,))
                                   for c in covariances])  # (m, d)
        observed = ~self.nan
        log_var = np.log(self.variances)
        self.log_det_observed = observed @ log_var.T
        self.log_det_conditional = self.nan @ log_var.T
        data = np.where(self.nan, 0.0, self._data)
        for k in range(self.means.shape[0]):
            r = np.where(self.nan, 0.0, data - self.means[k])
            self.maha[:, k] = (r * r) @ (1.0 / self.variances[k])

    def filled(self, k: int) -> np.ndarray:
        return np.where(self.nan, self.means[k], self._data)

    def scatter_correction(self, k: int, weights: np.ndarray, structure: type) -> Any:
        per_feature = (np.asarray(weights, dtype=np.float64) @ self.nan) * self.variances[k]
        if structure is SphericalCovariance:
            return np.asarray(float(per_feature.sum()))
        if structure is DiagonalCovariance:
            return per_feature
        return np.diag(per_feature)


class _FullConditionals(Conditionals):
    """Dense covariances, through the precision P = Σ⁻¹ = U Uᵀ (U the factor the covariance
    structure keeps): with r̃ the residual x − μ with its missing entries set to 0 and
    g = P r̃ (so g_m = P_mo r_o),

        x̂_m − μ_m = −P_mm⁻¹ g_m,   C = P_mm⁻¹,   ‖(x̂ − μ) U‖² = (x_o − μ_o)ᵀ Σ_oo⁻¹ (x_o − μ_o),
        log|Σ_oo| = log|Σ| + log|P_mm|,   log|C| = −log|P_mm|

    so each pattern needs only the Cholesky factor M of its |m| × |m| block P_mm (and
    W = M⁻¹, by a solve: C = WᵀW, x̂_m − μ_m = −Wᵀ W g_m). Patterns with the same number of
    missing entries are factorised in one batched call for every component, and the rows are
    then handled by stacked GEMMs: the Python work grows with the number of distinct
    missing counts (at most d), not with the number of patterns."""

    def __init__(self, X: np.ndarray, components: Sequence[Any], means: np.ndarray,
                 covariances: Sequence[Any]) -> None:
        super().__init__(X, components, means, covariances)
        n = self._data.shape[0]
        U = np.array([c.precision_cholesky for c in covariances])  # (m, d, d)
        P = np.matmul(U, U.transpose(0, 2, 1))
        P = 0.5 * (P + P.transpose(0, 2, 1))
        with np.errstate(invalid="ignore"):  # NaN − μ: replaced below
            resid = np.where(self.nan, 0.0, self._data[None, :, :] - self.means[:, None, :])
        log_det_pmm = np.zeros((len(covariances), n))  # log|P_mm| per component and row
        self._groups: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        patterns, index = missing_patterns(self.nan)
        count = patterns.sum(axis=1)  # missing entries per pattern
        if np.any(count):
            g = np.matmul(resid, P)  # rows of r̃ P = (P r̃)ᵀ, P symmetric
        row_count = count[index]
        for s in np.unique(count[count > 0]):
            chosen = np.flatnonzero(count == s)
            M = np.nonzero(patterns[chosen])[1].reshape(chosen.size, s)  # (n_pat, s), sorted
            local = np.empty(patterns.shape[0], dtype=np.intp)
            local[chosen] = np.arange(chosen.size)
            rows = np.flatnonzero(row_count == s)
            pid = local[index[rows]]
            try:
                factor = np.linalg.cholesky(P[:, M[:, :, None], M[:, None, :]])  # (m, n_pat, s, s)
            except np.linalg.LinAlgError:
                raise SingularCovarianceError(
                    "a block of a component's precision is not numerically positive definite: "
                    "the covariance is too ill-conditioned to marginalise missing entries "
                    "(increase reg_covar, or scale the data)") from None
            log_det_pmm[:, rows] = 2.0 * np.sum(
                np.log(np.diagonal(factor, axis1=-2, axis2=-1)), axis=-1)[:, pid]
            W = np.linalg.solve(factor, np.broadcast_to(np.eye(s), factor.shape))  # M⁻¹
            cols = M[pid]  # (n_s, s): each row's missing columns
            g_m = np.take_along_axis(g[:, rows, :], cols[None, :, :], axis=2)  # (m, n_s, s)
            W_rows = W[:, pid]  # (m, n_s, s, s)
            shift = np.einsum("knji,knj->kni", W_rows, np.einsum("knij,knj->kni", W_rows, g_m))
            resid[:, rows[:, None], cols] = -shift
            self._groups.append((M, rows, pid, np.matmul(W.transpose(0, 1, 3, 2), W)))
        self._resid = resid  # x̂ − μ_k, (m, n, d)
        z = np.matmul(resid, U)
        self.maha = np.einsum("knd,knd->nk", z, z)
        log_det = np.array([c.log_det for c in covariances])
        self.log_det_observed = (log_det[:, None] + log_det_pmm).T
        self.log_det_conditional = -log_det_pmm.T

    def filled(self, k: int) -> np.ndarray:
        return np.where(self.nan, self.means[k] + self._resid[k], self._data)

    def scatter_correction(self, k: int, weights: np.ndarray, structure: type) -> Any:
        w = np.asarray(weights, dtype=np.float64)
        d = self._data.shape[1]
        total = np.zeros(d * d)
        for M, rows, pid, C in self._groups:  # C: (m, n_pat, s, s)
            mass = np.bincount(pid, weights=w[rows], minlength=M.shape[0])
            flat = M[:, :, None] * d + M[:, None, :]  # positions of each C in the (d, d) scatter
            total += np.bincount(flat.ravel(), weights=(mass[:, None, None] * C[k]).ravel(),
                                 minlength=d * d)
        return structure.restrict(total.reshape(d, d))  # type: ignore[attr-defined]


def conditionals(components: Sequence[Any], X: np.ndarray, *, covariance: str = "covariance",
                 workspace: dict[str, Any] | None = None) -> Conditionals:
    """The conditionals of these components on the rows of ``X``, kept in ``workspace`` (one
    dict per chunk) so that scoring and summarising the same rows factorise once.

    ``covariance`` names the attribute holding each component's covariance structure
    (``"scale"`` for a Student t).
    """
    if workspace is not None:
        kept = workspace.get("conditionals")
        if (kept is not None and kept.X is X and len(kept.components) == len(components)
                and all(a is b for a, b in zip(kept.components, components))):
            return kept
    covs = [getattr(c, covariance) for c in components]
    means = np.array([c.mean for c in components], dtype=np.float64)
    out: Conditionals
    if all(isinstance(c, (DiagonalCovariance, SphericalCovariance)) for c in covs):
        out = _DiagonalConditionals(X, components, means, covs)
    else:
        if not all(isinstance(c, (FullCovariance, DiagonalCovariance, SphericalCovariance))
                   for c in covs):
            raise TypeError("missing-data conditionals need full, diagonal or spherical "
                            "covariance structures")
        covs = [c if isinstance(c, FullCovariance) else FullCovariance(covariance=c.matrix)
                for c in covs]
        out = _FullConditionals(X, components, means, covs)
    if workspace is not None:
        workspace["conditionals"] = out
    return out
