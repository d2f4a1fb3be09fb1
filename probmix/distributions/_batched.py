r"""Batched Gaussian kernels: all K components of one Gaussian family in a mixture at once.

The per-component path scores component k with its own residuals ``(X − μ_k) U_k`` (one small
GEMM and one N × d temporary per component). Here a chunk of rows is scored against every
component with one GEMM, and the M-step statistics reuse the E-step's intermediate results.

Full covariance (``U_k U_kᵀ = Σ_k⁻¹``, ``L_k`` the Cholesky factor of Σ_k, ``U_k = L_k⁻ᵀ``)::

    z_ik = (x_i − μ_k) U_k = (x_i − c) U_k − (μ_k − c) U_k     all i, k: one GEMM of the chunk
                                                               [X − c, 1] against the stacked
                                                               [U_k; −(μ_k − c) U_k]
    log p_k(x_i) = −½ (d log 2π + log|Σ_k| + ‖z_ik‖²)
    Σ_i q_ik (x_i − μ_k)(x_i − μ_k)ᵀ = L_k (Σ_i q_ik z_ik z_ikᵀ) L_kᵀ   (K rank-n updates)

(the stacked factor carries a √½, so ‖z‖² is already half the distance; the arrays run along
the rows last, see :class:`_Kernel`)

so the scatter is accumulated about the *old* mean μ_k, a good centre: the centred scatter
about the new mean m_k follows by one rank-one correction N_k (m_k − μ_k)(m_k − μ_k)ᵀ without
cancellation. Diagonal and spherical covariances use the expanded quadratic form as one GEMM,
``A @ [(X − c)², X − c, 1]ᵀ`` with A holding −½/σ², μ̃/σ² and the constants, and their
statistics are the moments ``Σ q (x − c)²``, ``Σ q (x − c)`` and ``Σ q`` from one more GEMM.
From d = 12 on the features stay row-major as the rows come (X − c and its squares, two GEMMs
on each side): transposing them into one block costs more than the split GEMMs lose.

The reference point c (the mean of the component means, rounded to float32 so that float32
rows subtract it exactly) makes the expansions cancel only as much as the mixture is spread:
the shared GEMM computes ``(x − c) U_k`` and subtracts ``(μ_k − c) U_k``, which loses
``ε · r_k`` (full) or ``ε · r_k²`` (diagonal, spherical) where r_k is the whitened distance of
μ_k from c. :func:`kernel_for` refuses mixtures spread so far that this exceeds about 1e-10 in
float64 (1e-3 in float32) relative to the log-density; the per-component path then runs,
exact as ever. A data set far from the origin (|μ| ≫ σ) costs nothing: c moves with it.

float32 rows: a full covariance is scored by float32 GEMMs (the residuals and their scatter
per chunk in float32, the chunk sums accumulated in float64); diagonal and spherical ones are
computed in float64 and rounded (their expansion cancels by ε r², and their GEMMs are cheap).
Measured on the benchmark mixtures (``benchmarks/run.py``), ten float32 iterations agree with
scikit-learn's float64 fit to 1e-7 … 3e-7 (full) and 5e-8 … 8e-8 (diagonal) in
max |a − b| / max |b| of the parameters, and with the per-component float32 path to ~4e-7.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import numpy as np

from .base import StatisticsBatch, StatisticsList, _scale_factor
from .covariance import DiagonalCovariance, FullCovariance, SphericalCovariance

__all__ = ["kernel_for", "generic_only", "GaussianMoments"]

_LOG_2PI = math.log(2.0 * math.pi)

#: largest whitened spread r = max_k ‖(μ_k − c) U_k‖ for which the shared GEMM is used, by
#: kind and dtype: the kernels lose ε·r (full) or ε·r² (expanded forms) of the log-density.
_MAX_SPREAD = {
    ("full", np.dtype(np.float64)): 1e4,
    ("full", np.dtype(np.float32)): 100.0,
    ("diag", np.dtype(np.float64)): 1e3,
    ("diag", np.dtype(np.float32)): 1e3,  # computed in float64
}

#: bytes of temporaries a kernel allocates at once when called without a chunked caller
_BLOCK_BYTES = 8 * 2**20

_generic = False


def _enabled() -> bool:
    return not _generic


@contextlib.contextmanager
def generic_only() -> Iterator[None]:
    """Within this block, Gaussian families use the per-component path (in every thread).

    For tests and benchmarks: both paths must give the same numbers. Not for concurrent use.
    """
    global _generic
    before = _generic
    _generic = True
    try:
        yield
    finally:
        _generic = before


# -- the kernel cache ----------------------------------------------------------------------------
# Preparing a kernel stacks the K factors (O(K d²)); the EM loop calls the hooks once per chunk
# with the same components, so prepared kernels are cached by the identity of the components.
# Each entry keeps its components alive, so an id is never reused while it is a key.
_CACHE: OrderedDict[tuple[int, ...], _Kernel] = OrderedDict()
_CACHE_SIZE = 8
_LOCK = threading.Lock()
# The last answer, for the same sequence object of components (a mixture passes its own tuple
# on every chunk): (components, dtype, kernel or None), replaced whole, so threads may share it.
_LAST: tuple[Any, Any, _Kernel | None] = ((), None, None)


def kernel_for(components: Sequence[Any], dtype: Any) -> _Kernel | None:
    """The batched kernel for these Gaussian components and data dtype, or None when the
    per-component path must run (a class instead of an instance, a structure without a
    kernel, a mixture too spread for the shared reference point, or :func:`generic_only`)."""
    if not components or not _enabled():
        return None
    global _LAST
    last_components, last_dtype, last_kernel = _LAST
    if components is last_components and dtype == last_dtype:
        return last_kernel
    found = _lookup(components, dtype)
    if isinstance(components, tuple):  # immutable: the same object holds the same components
        _LAST = (components, dtype, found)
    return found


def _lookup(components: Sequence[Any], dtype: Any) -> _Kernel | None:
    key = tuple(id(c) for c in components)
    with _LOCK:
        kernel = _CACHE.get(key)
        if kernel is not None:
            _CACHE.move_to_end(key)
    if kernel is None:
        kernel = _prepare(components)
        if kernel is None:
            return None
        with _LOCK:
            # two threads may both have prepared one: the first stored wins, so that every
            # chunk's moments share one kernel and add as arrays (moments of different kernels
            # add per component, with other round-off: the thread count would show)
            kernel = _CACHE.setdefault(key, kernel)
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    limit = _MAX_SPREAD.get((kernel.kind, np.dtype(dtype)))
    return kernel if limit is not None and kernel.spread <= limit else None


def _prepare(components: Sequence[Any]) -> _Kernel | None:
    if any(isinstance(c, type) for c in components):
        return None
    structures = {type(c.covariance) for c in components}
    if len(structures) != 1:
        return None
    structure = structures.pop()
    if structure is FullCovariance:
        return _FullKernel(components)
    if structure in (DiagonalCovariance, SphericalCovariance):
        return _DiagonalKernel(components, spherical=structure is SphericalCovariance)
    return None


def _reference(means: np.ndarray) -> np.ndarray:
    # float32-representable, so float32 rows near it subtract it exactly (Sterbenz)
    return means.mean(axis=0).astype(np.float32).astype(np.float64)


def _row_blocks(n: int, bytes_per_row: int) -> list[slice]:
    rows = max(1, _BLOCK_BYTES // max(bytes_per_row, 1))
    return [slice(lo, min(lo + rows, n)) for lo in range(0, n, rows)] or [slice(0, 0)]


class _Kernel:
    """Stacked parameters of m Gaussian components of one covariance structure.

    Arrays run along the rows last ((m, n), (K d, n)): reductions over the components are then
    vectorised over rows, and the log-densities come out as a column-major (n, m) array, on
    which the posterior's row-wise max and sum are 20-50x faster than on a row-major one.
    """

    kind: str
    spread: float
    components: tuple[Any, ...]
    structure: type
    means: np.ndarray  # (m, d) float64
    reference: np.ndarray  # (d,) c
    n_rows_bytes: int

    def row_bytes(self, itemsize: int) -> int:
        """Bytes of temporaries per row of a chunk, kept between scoring and summarising."""
        raise NotImplementedError

    def log_prob(self, X: np.ndarray, workspace: dict[str, Any] | None,
                 offsets: np.ndarray | None = None) -> np.ndarray:
        """(n, m) log-densities (plus ``offsets`` per component, e.g. log π), column-major;
        keeps the residuals in ``workspace``."""
        n = X.shape[0]
        if workspace is not None or n * self.n_rows_bytes <= _BLOCK_BYTES:
            return self._log_prob(X, workspace, offsets).T
        out = np.empty((len(self.components), n), dtype=X.dtype)
        for b in _row_blocks(n, self.n_rows_bytes):
            out[:, b] = self._log_prob(X[b], None, offsets)
        return out.T

    def statistics(self, X: np.ndarray, weights: np.ndarray,
                   workspace: dict[str, Any] | None) -> GaussianMoments:
        kept = None if workspace is None else workspace.pop("residuals", None)
        if kept is not None and kept[0] is self and kept[1] is X:
            return self._statistics(X, weights, kept[2])
        total: Any = None
        for b in _row_blocks(X.shape[0], self.n_rows_bytes):
            ws: dict[str, Any] = {}
            self._log_prob(X[b], ws, None)
            part = self._statistics(X[b], weights[b], ws["residuals"][2])
            total = part if total is None else total + part
        assert total is not None
        return total

    def _log_prob(self, X: np.ndarray, workspace: dict[str, Any] | None,
                  offsets: np.ndarray | None) -> np.ndarray:
        """(m, n) log-densities, plus ``offsets[k]`` in row k."""
        raise NotImplementedError

    def _statistics(self, X: np.ndarray, weights: np.ndarray, kept: Any) -> GaussianMoments:
        raise NotImplementedError

    def unstack(self, moments: GaussianMoments) -> list[Any]:
        raise NotImplementedError


# Products with a small result (the statistics: (K, d + 1), (d, d)) use np.dot, not matmul:
# numpy's matmul keeps the GIL when the result has fewer than ~500 entries, which serialises
# the threads of the EM pass; np.dot always releases it around BLAS.


def _weights(weights: np.ndarray) -> np.ndarray:
    """(m, n) float64 view (no copy for the column-major q of the EM pass)."""
    return np.asarray(weights, dtype=np.float64).T


def _with_ones(X: np.ndarray, c: np.ndarray) -> np.ndarray:
    """[X − c, 1] (n, d + 1): the column of ones lets one GEMM add per-component offsets
    (and a GEMM with the weights return their sums)."""
    n, d = X.shape
    out = np.empty((n, d + 1), dtype=X.dtype)
    np.subtract(X, c.astype(X.dtype), out=out[:, :d])
    out[:, d] = 1.0
    return out


# below this dimension the K scatters Σ w z zᵀ are faster as plain GEMMs of (z w) and z than
# as symmetric rank-k updates of z √w (which need a square root per weight); measured
_SYRK_MIN_FEATURES = 12


class _FullKernel(_Kernel):
    kind = "full"

    def __init__(self, components: Sequence[Any]) -> None:
        self.components = tuple(components)
        self.structure = FullCovariance
        self.means = np.array([c.mean for c in components], dtype=np.float64)
        m, d = self.means.shape
        c = self.reference = _reference(self.means)
        covs = [comp.covariance for comp in components]
        # a tied covariance (one object shared by all components) needs one GEMM, not K
        self.tied = all(cov is covs[0] for cov in covs)
        U = np.array([cov.precision_cholesky for cov in covs])  # (m, d, d)
        self.cholesky = np.array([cov.cholesky for cov in covs])
        offsets = np.einsum("kd,kde->ke", self.means - c, U)  # (μ_k − c) U_k
        self.spread = float(np.sqrt(np.max(np.sum(offsets * offsets, axis=1))))
        self.const = -0.5 * (d * _LOG_2PI + np.array([cov.log_det for cov in covs]))
        # The residuals are scaled by √½ so that ‖z‖² is already half the Mahalanobis
        # distance: log p = const − ‖z‖². Rows k d … k d + d − 1 of the stacked factor are
        # √½ [U_kᵀ, −U_kᵀ (μ_k − c)]: Z = factor @ [X − c, 1]ᵀ.
        half = math.sqrt(0.5)
        if self.tied:
            factor = half * U[0].T
        else:
            factor = half * np.concatenate(
                [U.transpose(0, 2, 1).reshape(m * d, d), -offsets.reshape(m * d, 1)], axis=1)
        self._arrays = {np.dtype(np.float64): (factor, half * offsets[:, :, None],
                                               self.const[:, None].copy())}
        self.n_rows_bytes = self.row_bytes(8)

    def row_bytes(self, itemsize: int) -> int:
        m, d = self.means.shape
        residuals = m * d * (1 if d >= _SYRK_MIN_FEATURES else 2)  # Z (and Z w for small d)
        return itemsize * (residuals + d + 1 + m) + 8 * (d + 1)

    def arrays(self, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        found = self._arrays.get(dtype)
        if found is None:  # float32 copies, made once per kernel (a race makes equal copies)
            found = tuple(a.astype(dtype) for a in self._arrays[np.dtype(np.float64)])
            self._arrays[dtype] = found  # type: ignore[assignment]
        return found  # type: ignore[return-value]

    def _log_prob(self, X: np.ndarray, workspace: dict[str, Any] | None,
                  offsets: np.ndarray | None) -> np.ndarray:
        m, d = self.means.shape
        factor, shifts, const = self.arrays(X.dtype)
        Xa = _with_ones(X, self.reference)
        with np.errstate(over="ignore", invalid="ignore"):  # +inf distance near the float limit
            if self.tied:  # one whitening, then each component's offset
                Z = np.dot(factor, Xa[:, :d].T)[None, :, :] - shifts  # (m, d, n)
            else:
                Z = np.dot(factor, Xa.T).reshape(m, d, -1)
            out = np.einsum("kdn,kdn->kn", Z, Z)
        if offsets is not None:
            const = (const + offsets[:, None]).astype(X.dtype)
        out = np.subtract(const, out, out=out)
        if workspace is not None:
            workspace["residuals"] = (self, X, (Xa, Z))
        return out

    def _statistics(self, X: np.ndarray, weights: np.ndarray, kept: Any) -> GaussianMoments:
        Xa, Z = kept
        w = _weights(weights)  # (m, n)
        G = np.dot(w, Xa.astype(np.float64, copy=False))  # [Σ w (x − c), Σ w], (m, d + 1)
        # Σ_i w_ik z_ik z_ikᵀ (Z is scaled in place: it is not needed again)
        m, d, _ = Z.shape
        second = np.empty((m, d, d), dtype=Z.dtype)
        if d >= _SYRK_MIN_FEATURES:
            root = np.sqrt(w).astype(Z.dtype)
            for k in range(m):  # scaled, then used while in cache (2 % faster in float32)
                Z[k] *= root[k]
                np.dot(Z[k], Z[k].T, out=second[k])  # a symmetric rank-n update
        else:
            scaled = Z * w.astype(Z.dtype)[:, None, :]
            for k in range(m):
                np.dot(scaled[k], Z[k].T, out=second[k])
        second = 2.0 * second.astype(np.float64, copy=False)  # undo the √½ of the residuals
        return GaussianMoments(kernel=self, weight=G[:, -1], first=G[:, :-1], second=second)

    def unstack(self, moments: GaussianMoments) -> list[Any]:
        from .gaussian import GaussianStatistics

        n = moments.weight
        L = self.cholesky
        # scatter about the old mean μ_k: L_k (Σ w z zᵀ) L_kᵀ; then about the new mean m_k
        about_old = np.matmul(np.matmul(L, moments.second), L.transpose(0, 2, 1))
        out = []
        for k in range(n.size):
            if not n[k] > 0.0:
                out.append(_zero(self.structure, self.means.shape[1]))
                continue
            shift = moments.first[k] / n[k]
            mean = self.reference + shift
            delta = shift - (self.means[k] - self.reference)  # m_k − μ_k
            scatter = about_old[k] - n[k] * np.outer(delta, delta)
            out.append(GaussianStatistics(weight=float(n[k]), mean=mean,
                                          scatter=0.5 * (scatter + scatter.T),
                                          structure=self.structure))
        return out


# From this dimension on, the diagonal kernel keeps its features as the rows come, X − c and
# its squares (n, d), and runs two GEMMs on each side; below it, one transposed block
# [(x − c)², x − c, 1] (2d + 1, n) and one GEMM on each side is faster. Transposing the rows
# costs ~1.5 ns per entry (strided reads), the split GEMMs lose on their shorter inner
# dimension; measured on 2 cores: at d = 32, K = 16 the split pass is 15 % faster, at d = 16,
# K = 8 20 %, at d = 8 10 % slower.
_SPLIT_MIN_FEATURES = 12


class _DiagonalKernel(_Kernel):
    kind = "diag"

    def __init__(self, components: Sequence[Any], *, spherical: bool) -> None:
        self.components = tuple(components)
        self.spherical = spherical
        self.structure = SphericalCovariance if spherical else DiagonalCovariance
        self.means = np.array([c.mean for c in components], dtype=np.float64)
        d = self.means.shape[1]
        c = self.reference = _reference(self.means)
        precision = np.array([np.broadcast_to(1.0 / np.asarray(comp.covariance.compact), (d,))
                              for comp in components])  # (m, d)
        centred = self.means - c
        quad = np.sum(centred * centred * precision, axis=1)
        self.spread = float(np.sqrt(np.max(quad)))
        log_det = np.array([comp.covariance.log_det for comp in components])
        const = -0.5 * (d * _LOG_2PI + log_det + quad)
        # log p = A @ [(x − c)², x − c, 1]ᵀ, the spherical form with ‖x − c‖² only
        squares = -0.5 * (precision[:, :1] if spherical else precision)
        linear = centred * precision
        self.A = np.hstack([squares, linear, const[:, None]])
        self.split = d >= _SPLIT_MIN_FEATURES
        # the blocks of A for the split layout
        self.A_squares, self.A_linear, self.const = np.ascontiguousarray(squares), linear, const
        self.n_rows_bytes = self.row_bytes(8)

    def row_bytes(self, itemsize: int) -> int:
        m, d = self.means.shape
        width = 1 if self.spherical else d
        rounded = 0 if itemsize == 8 else itemsize * m  # float32 rows: the rounded copy
        if self.split:  # X − c, the squares, the log-densities and one GEMM's result
            return 8 * (d + width + 2 * m) + rounded
        return 8 * (width + d + 1 + m) + rounded

    def _features(self, X: np.ndarray) -> Any:
        """Split layout: (x − c, (x − c)² or ‖x − c‖²), each (n, ·) float64. Otherwise
        [(x − c)² (or ‖x − c‖²), x − c, 1], transposed: (width + d + 1, n), float64 (rows of
        this layout are contiguous, which makes the squares 4x faster than per row)."""
        if self.split:
            Z = np.subtract(X, self.reference)  # float32 rows: converted exactly
            S = np.einsum("ij,ij->i", Z, Z)[:, None] if self.spherical else np.square(Z)
            return Z, S
        n, d = X.shape
        width = 1 if self.spherical else d
        F = np.empty((width + d + 1, n))
        centred = F[width:width + d]
        np.subtract(X.T, self.reference[:, None], out=centred)
        if self.spherical:
            np.einsum("dn,dn->n", centred, centred, out=F[0])
        else:
            np.square(centred, out=F[:width])
        F[-1] = 1.0
        return F

    def _log_prob(self, X: np.ndarray, workspace: dict[str, Any] | None,
                  offsets: np.ndarray | None) -> np.ndarray:
        # float64 throughout, also for float32 rows (converted exactly): the expanded form
        # cancels by ε r², too much in float32, and this GEMM is cheap (K × 2d × n); the
        # result is rounded to float32 like the per-component path's.
        with np.errstate(over="ignore", invalid="ignore"):
            features = self._features(X)
            if self.split:
                Z, S = features
                out = np.dot(self.A_squares, S.T)
                out += np.dot(self.A_linear, Z.T)
                out += (self.const if offsets is None else self.const + offsets)[:, None]
            elif offsets is None:
                out = np.dot(self.A, features)
            else:
                A = self.A.copy()
                A[:, -1] += offsets
                out = np.dot(A, features)
        if workspace is not None:
            workspace["residuals"] = (self, X, features)
        return out if X.dtype == np.float64 else out.astype(X.dtype)

    def _statistics(self, X: np.ndarray, weights: np.ndarray, kept: Any) -> GaussianMoments:
        w = _weights(weights)  # (m, n)
        if self.split:
            Z, S = kept
            return GaussianMoments(kernel=self, weight=np.sum(w, axis=1), first=np.dot(w, Z),
                                   second=np.dot(w, S))
        # (m, width + d + 1): Σ w (x − c)² (or ‖x − c‖²), Σ w (x − c), Σ w
        G = np.dot(w, kept.T)
        width = G.shape[1] - X.shape[1] - 1
        return GaussianMoments(kernel=self, weight=G[:, -1], first=G[:, width:-1],
                               second=G[:, :width])

    def unstack(self, moments: GaussianMoments) -> list[Any]:
        from .gaussian import GaussianStatistics

        n = moments.weight
        d = self.means.shape[1]
        out = []
        for k in range(n.size):
            if not n[k] > 0.0:
                out.append(_zero(self.structure, d))
                continue
            shift = moments.first[k] / n[k]
            outer = shift * shift
            scatter = moments.second[k] - n[k] * (np.sum(outer) if self.spherical else outer)
            scatter = np.maximum(scatter, 0.0)  # round-off below an exact zero variance
            out.append(GaussianStatistics(
                weight=float(n[k]), mean=self.reference + shift,
                scatter=np.asarray(float(scatter[0])) if self.spherical else scatter,
                structure=self.structure))
        return out


def _zero(structure: Any, d: int) -> Any:
    from .gaussian import GaussianStatistics

    return GaussianStatistics(weight=0.0, mean=np.zeros(d), scatter=structure.zero_scatter(d),
                              structure=structure)


@attrs.frozen(kw_only=True, eq=False)
class GaussianMoments(StatisticsBatch):
    """Stacked moments of m Gaussian components in the frame of one kernel (see the module
    docstring); two batches of the same kernel add as arrays."""

    kernel: _Kernel
    weight: np.ndarray
    first: np.ndarray
    second: np.ndarray

    @property
    def total_weight(self) -> float:
        return float(np.sum(self.weight))

    def __add__(self, other: StatisticsBatch) -> StatisticsBatch:  # type: ignore[override]
        if isinstance(other, GaussianMoments) and other.kernel is self.kernel:
            return GaussianMoments(kernel=self.kernel, weight=self.weight + other.weight,
                                   first=self.first + other.first,
                                   second=self.second + other.second)
        if not isinstance(other, StatisticsBatch):
            return NotImplemented
        return StatisticsList(self.unstack()) + other

    def unstack(self) -> list[Any]:
        return self.kernel.unstack(self)

    def reweighted(self, factor: float) -> GaussianMoments:
        """Weights × factor: every moment is a weighted sum, so all of them scale."""
        f = _scale_factor(factor)
        return GaussianMoments(kernel=self.kernel, weight=self.weight * f, first=self.first * f,
                               second=self.second * f)
