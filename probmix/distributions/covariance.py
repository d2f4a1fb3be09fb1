"""Covariance structures: full, diagonal and spherical, each owning its Cholesky factor.

A structure answers every question a Gaussian asks of its covariance Σ (whitening, log-det,
colouring noise for sampling) and knows the *scatter* it is estimated from: the full matrix
``Σ_i w_i (x_i - m)(x_i - m)ᵀ``, only its diagonal, or only its trace. Scatters are *centred*
(around the weighted mean of the rows summarised): raw moments ``Σ w x xᵀ − N m mᵀ`` cancel
catastrophically when |μ| ≫ σ, above all in float32.
"""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar

import attrs
import numpy as np
import scipy.linalg

from .._validation import readonly
from ..exceptions import SingularCovarianceError

__all__ = ["CovarianceStructure", "FullCovariance", "DiagonalCovariance", "SphericalCovariance"]

_array_eq = attrs.cmp_using(eq=np.array_equal)


class CovarianceStructure(abc.ABC):
    """The covariance Σ of a Gaussian with a given structure, with its factorisation cached."""

    #: name used in messages and by the GMM façade
    kind: ClassVar[str]

    @property
    @abc.abstractmethod
    def n_features(self) -> int: ...

    @property
    @abc.abstractmethod
    def log_det(self) -> float:
        """``log |Σ|``."""

    @property
    @abc.abstractmethod
    def compact(self) -> np.ndarray:
        """Σ in its natural shape: (d, d) full, (d,) diagonal, () spherical."""

    @property
    @abc.abstractmethod
    def precision_cholesky(self) -> np.ndarray:
        """``U`` with ``U Uᵀ = Σ⁻¹``, in the compact shape (upper triangular when full)."""

    @property
    def precision(self) -> np.ndarray:
        """Σ⁻¹ in the compact shape."""
        return self.precision_cholesky ** 2

    @property
    def matrix(self) -> np.ndarray:
        """Σ as a dense (d, d) matrix."""
        return np.diag(np.broadcast_to(self.compact, (self.n_features,))).astype(float)

    @property
    def min_eigenvalue(self) -> float:
        """λ_min(Σ), the smallest variance in any direction."""
        return float(np.min(self.compact))

    @abc.abstractmethod
    def whiten(self, residuals: np.ndarray) -> np.ndarray:
        """``z`` with ``‖z_i‖² = (x_i − μ)ᵀ Σ⁻¹ (x_i − μ)`` for residual rows ``x_i − μ``."""

    @abc.abstractmethod
    def colour(self, noise: np.ndarray) -> np.ndarray:
        """Map standard-normal rows to rows of covariance Σ (for sampling)."""

    @abc.abstractmethod
    def trace_precision(self, scatter: np.ndarray) -> float:
        """``tr(Σ⁻¹ S)`` for a scatter ``S`` of this structure."""

    # -- estimation from centred scatters ---------------------------------------------------
    @staticmethod
    @abc.abstractmethod
    def scatter(residuals: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The part of ``Σ_i w_i r_i r_iᵀ`` this structure needs."""

    @staticmethod
    @abc.abstractmethod
    def outer(delta: np.ndarray) -> np.ndarray:
        """The scatter of the single displacement ``delta`` (for merging two scatters)."""

    @staticmethod
    @abc.abstractmethod
    def zero_scatter(n_features: int) -> np.ndarray: ...

    @staticmethod
    @abc.abstractmethod
    def restrict(matrix: np.ndarray) -> np.ndarray:
        """The part of a (d, d) matrix this structure's scatter keeps (matrix, diagonal, trace)."""

    @classmethod
    @abc.abstractmethod
    def from_scatter(cls, scatter: np.ndarray, total_weight: float, n_features: int,
                     reg_covar: float = 0.0) -> CovarianceStructure:
        """Σ = S / N + ``reg_covar`` I, the weighted MLE plus an optional ridge."""

    @classmethod
    @abc.abstractmethod
    def from_precision_cholesky(cls, factor: Any, n_features: int) -> CovarianceStructure:
        """Build from ``U`` with ``U Uᵀ = Σ⁻¹`` given in the compact shape."""

    @classmethod
    def from_precision(cls, precision: Any, n_features: int) -> CovarianceStructure:
        """Build from the precision Σ⁻¹ given in the compact shape."""
        p = np.asarray(precision, dtype=float)
        if np.any(~np.isfinite(p)) or np.any(p <= 0):
            raise SingularCovarianceError(f"{cls.kind} precision must be finite and positive")
        return cls.from_precision_cholesky(np.sqrt(p), n_features)

    @staticmethod
    @abc.abstractmethod
    def n_parameters(n_features: int) -> int:
        """Free parameters of one covariance of this structure."""


def _positive(values: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        raise SingularCovarianceError(f"{what} must be finite, got {values}")
    if np.any(values <= 0):
        raise SingularCovarianceError(
            f"{what} must be positive, got minimum {float(np.min(values))}: the covariance is "
            "singular (increase reg_covar, or check for constant or duplicated features)")
    return values


@attrs.frozen(kw_only=True)
class FullCovariance(CovarianceStructure):
    """A dense symmetric positive definite Σ, stored with its lower Cholesky factor L.

    Parameters
    ----------
    covariance : array-like of shape (n_features, n_features)
        Symmetric positive definite.
    """

    kind: ClassVar[str] = "full"
    covariance: np.ndarray = attrs.field(eq=_array_eq)
    cholesky: np.ndarray = attrs.field(init=False, eq=False, repr=False)
    _precision_cholesky: np.ndarray = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        cov = np.array(self.covariance, dtype=float)
        if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or cov.shape[0] == 0:
            raise ValueError(f"a full covariance must be a square matrix, got shape {cov.shape}")
        if not np.all(np.isfinite(cov)):
            raise SingularCovarianceError("covariance contains NaN or infinity")
        scale = max(np.max(np.abs(cov)), np.finfo(float).tiny)
        if np.max(np.abs(cov - cov.T)) > 1e-8 * scale:
            raise ValueError("covariance must be symmetric")
        cov = 0.5 * (cov + cov.T)
        try:
            chol = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise SingularCovarianceError(
                "covariance is not positive definite (its Cholesky factorisation failed): "
                "increase reg_covar, or check for collinear or constant features") from None
        # U = L⁻ᵀ (one triangular solve, no general inverse): U Uᵀ = Σ⁻¹, and ‖(x−μ) U‖² is
        # the Mahalanobis distance computed by one GEMM.
        prec = scipy.linalg.solve_triangular(chol, np.eye(len(cov)), lower=True).T
        object.__setattr__(self, "covariance", readonly(cov))
        object.__setattr__(self, "cholesky", readonly(chol))
        object.__setattr__(self, "_precision_cholesky", readonly(prec))

    @property
    def n_features(self) -> int:
        return int(self.covariance.shape[0])

    @property
    def log_det(self) -> float:
        return float(2.0 * np.sum(np.log(np.diag(self.cholesky))))

    @property
    def compact(self) -> np.ndarray:
        return self.covariance

    @property
    def matrix(self) -> np.ndarray:
        return self.covariance

    @property
    def min_eigenvalue(self) -> float:
        return float(np.linalg.eigvalsh(self.covariance)[0])

    @property
    def precision_cholesky(self) -> np.ndarray:
        return self._precision_cholesky

    @property
    def precision(self) -> np.ndarray:
        return self._precision_cholesky @ self._precision_cholesky.T

    def whiten(self, residuals: np.ndarray) -> np.ndarray:
        return residuals @ self._precision_cholesky.astype(residuals.dtype, copy=False)

    def colour(self, noise: np.ndarray) -> np.ndarray:
        return noise @ self.cholesky.T

    def trace_precision(self, scatter: np.ndarray) -> float:
        u = self._precision_cholesky
        return float(np.sum(u * (scatter @ u)))

    @staticmethod
    def scatter(residuals: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return (residuals.T * weights) @ residuals

    @staticmethod
    def outer(delta: np.ndarray) -> np.ndarray:
        return np.outer(delta, delta)

    @staticmethod
    def zero_scatter(n_features: int) -> np.ndarray:
        return np.zeros((n_features, n_features))

    @staticmethod
    def restrict(matrix: np.ndarray) -> np.ndarray:
        return np.asarray(matrix, dtype=float)

    @classmethod
    def from_scatter(cls, scatter: np.ndarray, total_weight: float, n_features: int,
                     reg_covar: float = 0.0) -> FullCovariance:
        cov = scatter / total_weight
        cov.flat[:: n_features + 1] += reg_covar
        return cls(covariance=cov)

    @classmethod
    def from_precision_cholesky(cls, factor: Any, n_features: int) -> FullCovariance:
        u = np.asarray(factor, dtype=float)
        if u.shape != (n_features, n_features):
            raise ValueError(f"a full precision Cholesky factor must have shape "
                             f"({n_features}, {n_features}), got {u.shape}")
        _positive(np.abs(np.diag(u)), "the diagonal of the precision Cholesky factor")
        # Σ = (U Uᵀ)⁻¹ = U⁻ᵀ U⁻¹: one triangular solve when U is triangular.
        # A triangular factor has exact zeros; a tolerance would misjudge tiny-scale factors.
        lower = np.array_equal(u, np.tril(u))
        upper = np.array_equal(u, np.triu(u))
        if not (lower or upper):  # any square root of Σ⁻¹: go through its Cholesky factor
            return cls.from_precision(u @ u.T, n_features)
        inv_u = scipy.linalg.solve_triangular(u, np.eye(n_features), lower=lower)
        return cls(covariance=inv_u.T @ inv_u)

    @classmethod
    def from_precision(cls, precision: Any, n_features: int) -> FullCovariance:
        p = np.asarray(precision, dtype=float)
        if p.shape != (n_features, n_features):
            raise ValueError(f"a full precision must have shape ({n_features}, {n_features}), "
                             f"got {p.shape}")
        if not np.all(np.isfinite(p)) or np.max(np.abs(p - p.T)) > 1e-8 * np.max(np.abs(p)):
            raise ValueError("precision must be finite and symmetric")
        try:
            lp = np.linalg.cholesky(0.5 * (p + p.T))
        except np.linalg.LinAlgError:
            raise SingularCovarianceError("precision is not positive definite") from None
        return cls.from_precision_cholesky(lp, n_features)

    @staticmethod
    def n_parameters(n_features: int) -> int:
        return n_features * (n_features + 1) // 2


@attrs.frozen(kw_only=True)
class DiagonalCovariance(CovarianceStructure):
    """Σ = diag(σ²_1, …, σ²_d): independent coordinates.

    Parameters
    ----------
    variances : array-like of shape (n_features,)
        Positive.
    """

    kind: ClassVar[str] = "diag"
    variances: np.ndarray = attrs.field(eq=_array_eq)

    def __attrs_post_init__(self) -> None:
        var = np.array(self.variances, dtype=float)
        if var.ndim != 1 or var.size == 0:
            raise ValueError(f"diagonal variances must be a non-empty 1-D array, got shape "
                             f"{var.shape}")
        object.__setattr__(self, "variances", readonly(_positive(var, "variances")))

    @property
    def n_features(self) -> int:
        return int(self.variances.shape[0])

    @property
    def log_det(self) -> float:
        return float(np.sum(np.log(self.variances)))

    @property
    def compact(self) -> np.ndarray:
        return self.variances

    @property
    def precision_cholesky(self) -> np.ndarray:
        return 1.0 / np.sqrt(self.variances)

    def whiten(self, residuals: np.ndarray) -> np.ndarray:
        return residuals * self.precision_cholesky.astype(residuals.dtype, copy=False)

    def colour(self, noise: np.ndarray) -> np.ndarray:
        return noise * np.sqrt(self.variances)

    def trace_precision(self, scatter: np.ndarray) -> float:
        return float(np.sum(scatter / self.variances))

    @staticmethod
    def scatter(residuals: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return weights @ (residuals * residuals)

    @staticmethod
    def outer(delta: np.ndarray) -> np.ndarray:
        return delta * delta

    @staticmethod
    def zero_scatter(n_features: int) -> np.ndarray:
        return np.zeros(n_features)

    @staticmethod
    def restrict(matrix: np.ndarray) -> np.ndarray:
        return np.diag(matrix).astype(float)

    @classmethod
    def from_scatter(cls, scatter: np.ndarray, total_weight: float, n_features: int,
                     reg_covar: float = 0.0) -> DiagonalCovariance:
        return cls(variances=scatter / total_weight + reg_covar)

    @classmethod
    def from_precision_cholesky(cls, factor: Any, n_features: int) -> DiagonalCovariance:
        u = np.asarray(factor, dtype=float)
        if u.shape != (n_features,):
            raise ValueError(f"a diagonal precision Cholesky factor must have shape "
                             f"({n_features},), got {u.shape}")
        return cls(variances=1.0 / _positive(u, "precision Cholesky factor") ** 2)

    @staticmethod
    def n_parameters(n_features: int) -> int:
        return n_features


@attrs.frozen(kw_only=True)
class SphericalCovariance(CovarianceStructure):
    """Σ = σ² I: one variance shared by all coordinates.

    Parameters
    ----------
    variance : float
        Positive.
    n_features : int
        Dimension d.
    """

    kind: ClassVar[str] = "spherical"
    variance: float = attrs.field(converter=float)
    dimension: int = attrs.field(converter=int)

    def __attrs_post_init__(self) -> None:
        if self.dimension < 1:
            raise ValueError(f"dimension must be >= 1, got {self.dimension}")
        _positive(np.array([self.variance]), "variance")

    @property
    def n_features(self) -> int:
        return self.dimension

    @property
    def log_det(self) -> float:
        return self.dimension * math.log(self.variance)

    @property
    def compact(self) -> np.ndarray:
        return np.asarray(self.variance)

    @property
    def precision_cholesky(self) -> np.ndarray:
        return np.asarray(1.0 / math.sqrt(self.variance))

    def whiten(self, residuals: np.ndarray) -> np.ndarray:
        return residuals * residuals.dtype.type(1.0 / math.sqrt(self.variance))

    def colour(self, noise: np.ndarray) -> np.ndarray:
        return noise * math.sqrt(self.variance)

    def trace_precision(self, scatter: np.ndarray) -> float:
        return float(scatter) / self.variance

    @staticmethod
    def scatter(residuals: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return np.asarray(weights @ np.einsum("ij,ij->i", residuals, residuals))

    @staticmethod
    def outer(delta: np.ndarray) -> np.ndarray:
        return np.asarray(delta @ delta)

    @staticmethod
    def zero_scatter(n_features: int) -> np.ndarray:
        return np.asarray(0.0)

    @staticmethod
    def restrict(matrix: np.ndarray) -> np.ndarray:
        return np.asarray(float(np.trace(matrix)))

    @classmethod
    def from_scatter(cls, scatter: np.ndarray, total_weight: float, n_features: int,
                     reg_covar: float = 0.0) -> SphericalCovariance:
        return cls(variance=float(scatter) / (total_weight * n_features) + reg_covar,
                   dimension=n_features)

    @classmethod
    def from_precision_cholesky(cls, factor: Any, n_features: int) -> SphericalCovariance:
        u = np.asarray(factor, dtype=float)
        if u.shape != ():
            raise ValueError(f"a spherical precision Cholesky factor must be a scalar, "
                             f"got shape {u.shape}")
        return cls(variance=1.0 / float(_positive(u, "precision Cholesky factor")) ** 2,
                   dimension=n_features)

    @staticmethod
    def n_parameters(n_features: int) -> int:
        return 1
