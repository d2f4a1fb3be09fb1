"""Gaussian components: one family, every covariance structure.

``Gaussian`` (alias ``MultivariateNormal``) has a full covariance; ``DiagonalNormal`` and
``SphericalNormal`` differ only in the :mod:`covariance structure <.covariance>` they carry,
and ``TiedNormal`` shares one full covariance across the components of a mixture through the
joint hook :meth:`~probmix.Distribution.from_statistics_many`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import attrs
import numpy as np

from .._validation import readonly
from ..priors import CovarianceRidge, NormalInverseWishart
from . import _batched, _missing
from .base import Distribution, Statistics, StatisticsBatch, StatisticsList, _scale_factor
from .covariance import (
    CovarianceStructure,
    DiagonalCovariance,
    FullCovariance,
    SphericalCovariance,
)

__all__ = [
    "GaussianStatistics",
    "Gaussian",
    "MultivariateNormal",
    "DiagonalNormal",
    "SphericalNormal",
    "TiedNormal",
]

_LOG_2PI = math.log(2.0 * math.pi)
_array_eq = attrs.cmp_using(eq=np.array_equal)


@attrs.frozen(kw_only=True)
class GaussianStatistics(Statistics):
    """Weighted count, mean and *centred* scatter of some rows, for one covariance structure.

    Two sets merge exactly (Chan et al.'s pairwise update)::

        N = N_a + N_b,   m = m_a + (N_b / N) δ,   S = S_a + S_b + (N_a N_b / N) δδᵀ,  δ = m_b − m_a

    which stays accurate when ``|μ| ≫ σ``, unlike raw moments Σ w x xᵀ.
    """

    weight: float
    mean: np.ndarray = attrs.field(eq=_array_eq)
    scatter: np.ndarray = attrs.field(eq=_array_eq)
    structure: type[CovarianceStructure]

    @property
    def total_weight(self) -> float:
        return self.weight

    @classmethod
    def of(cls, X: np.ndarray, weights: np.ndarray,
           structure: type[CovarianceStructure]) -> GaussianStatistics:
        """Statistics of the rows of ``X`` with the given weights (float64 accumulation)."""
        n = float(np.sum(weights, dtype=np.float64))
        d = X.shape[1]
        if n <= 0.0:
            return cls(weight=0.0, mean=np.zeros(d), scatter=structure.zero_scatter(d),
                       structure=structure)
        w = np.asarray(weights, dtype=np.float64)
        Xd = np.asarray(X, dtype=np.float64)
        used = w != 0.0
        if np.count_nonzero(used) < 0.5 * w.size:  # e.g. one-hot starting responsibilities
            w, Xd = w[used], Xd[used]
        mean = (w @ Xd) / n
        return cls(weight=n, mean=mean, scatter=structure.scatter(Xd - mean, w),
                   structure=structure)

    def scatter_about(self, point: np.ndarray) -> np.ndarray:
        """Σ w (x − p)(x − p)ᵀ (in the structure's form) = S + N (m − p)(m − p)ᵀ."""
        return self.scatter + self.weight * self.structure.outer(self.mean - point)

    def __add__(self, other: GaussianStatistics) -> GaussianStatistics:
        if not isinstance(other, GaussianStatistics) or other.structure is not self.structure:
            return NotImplemented
        if other.weight == 0.0:
            return self
        if self.weight == 0.0:
            return other
        n = self.weight + other.weight
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.weight / n)
        scatter = (self.scatter + other.scatter
                   + self.structure.outer(delta) * (self.weight * other.weight / n))
        return GaussianStatistics(weight=n, mean=mean, scatter=scatter, structure=self.structure)

    def reweighted(self, factor: float) -> GaussianStatistics:
        """Weights × factor: N and the scatter scale, the (weighted) mean does not."""
        f = _scale_factor(factor)
        return GaussianStatistics(weight=self.weight * f, mean=self.mean,
                                  scatter=self.scatter * f, structure=self.structure)


def _to_structure(value: Any, self: Any) -> CovarianceStructure:
    """Accept a structure object or an array in the family's compact shape."""
    structure = type(self)._structure
    if isinstance(value, structure):
        return value
    if isinstance(value, CovarianceStructure):
        raise TypeError(f"{type(self).__name__} needs a {structure.__name__}, "
                        f"got a {type(value).__name__}")
    arr = np.asarray(value, dtype=float)
    if structure is FullCovariance:
        return FullCovariance(covariance=arr)
    if structure is DiagonalCovariance:
        return DiagonalCovariance(variances=arr)
    return SphericalCovariance(variance=float(arr), dimension=len(self.mean))


def _check_prior(prior: Any) -> None:
    if prior is not None and not isinstance(prior, (CovarianceRidge, NormalInverseWishart)):
        raise TypeError("Gaussian families understand prior=None, a CovarianceRidge or a "
                        f"NormalInverseWishart, got {type(prior).__name__}")


@attrs.frozen(kw_only=True)
class Gaussian(Distribution):
    r"""Multivariate normal :math:`\mathcal N(\mu, \Sigma)` with a full covariance.

    Parameters
    ----------
    mean : array-like of shape (n_features,)
        The mean μ.
    covariance : array-like of shape (n_features, n_features) or FullCovariance
        The covariance Σ, symmetric positive definite.

    Raises
    ------
    ValueError
        If the mean is not a finite vector or the covariance does not match it.
    SingularCovarianceError
        If the covariance is not positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> from probmix.distributions import Gaussian
    >>> g = Gaussian(mean=[0.0, 0.0], covariance=np.eye(2))
    >>> bool(np.isclose(g.log_prob(np.zeros((1, 2)))[0], -np.log(2 * np.pi)))
    True
    """

    _structure: ClassVar[type[CovarianceStructure]] = FullCovariance
    parameter_names: ClassVar[tuple[str, ...]] = ("mean", "covariance")

    mean: np.ndarray = attrs.field(converter=readonly, eq=_array_eq)
    covariance: CovarianceStructure = attrs.field(
        converter=attrs.Converter(_to_structure, takes_self=True))  # type: ignore[misc]

    def __attrs_post_init__(self) -> None:
        if self.mean.ndim != 1 or self.mean.size == 0:
            raise ValueError(f"mean must be a non-empty 1-D array, got shape {self.mean.shape}")
        if not np.all(np.isfinite(self.mean)):
            raise ValueError("mean contains NaN or infinity")
        if self.covariance.n_features != self.mean.size:
            raise ValueError(f"covariance is for {self.covariance.n_features} features but the "
                             f"mean has {self.mean.size}")

    # -- contract -----------------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        return int(self.mean.size)

    @property
    def n_parameters(self) -> int:
        return self.n_features + self._structure.n_parameters(self.n_features)

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        # The residual is formed in float64 (rounding μ to float32 first would cost
        # ε₃₂ |μ|/σ), then float32 data is whitened by a float32 GEMM.
        residual = (X - self.mean).astype(X.dtype if X.dtype == np.float32 else np.float64,
                                          copy=False)
        with np.errstate(over="ignore"):  # +inf distance for points near the float limit
            z = self.covariance.whiten(residual)
            maha = np.einsum("ij,ij->i", z, z)
        return -0.5 * (self.n_features * _LOG_2PI + self.covariance.log_det + maha)

    @classmethod
    def sufficient_statistics(cls, X: np.ndarray, weights: np.ndarray) -> GaussianStatistics:
        return GaussianStatistics.of(X, weights, cls._structure)

    @classmethod
    def log_prob_many(cls, components: Sequence[Distribution], X: np.ndarray, *,
                      workspace: dict[str, Any] | None = None) -> np.ndarray:
        """All components at once by one GEMM (see :mod:`probmix.distributions._batched`);
        the per-component loop for subclasses that change ``log_prob``."""
        kernel = cls._kernel(components, X)
        if kernel is None:
            return super().log_prob_many(components, X, workspace=workspace)
        return kernel.log_prob(X, workspace)

    @classmethod
    def _log_joint_many(cls, components: Sequence[Distribution], log_weights: np.ndarray,
                        X: np.ndarray, *, workspace: dict[str, Any] | None = None,
                        dtype: Any = np.float64) -> np.ndarray:
        # the kernel adds log π to its per-component constants
        kernel = cls._kernel(components, X)
        if kernel is None or cls.log_prob_many.__func__ is not (  # type: ignore[attr-defined]
                Gaussian.log_prob_many.__func__):  # type: ignore[attr-defined]
            return super()._log_joint_many(components, log_weights, X, workspace=workspace,
                                           dtype=dtype)
        out = kernel.log_prob(X, workspace, offsets=np.asarray(log_weights, dtype=np.float64))
        return out if out.dtype == dtype else out.astype(dtype)

    @classmethod
    def statistics_many(cls, components: Sequence[Distribution | type[Distribution]],
                        X: np.ndarray, weights: np.ndarray, *,
                        workspace: dict[str, Any] | None = None) -> StatisticsBatch:
        """Every component's statistics from one pass, reusing the residuals that
        :meth:`log_prob_many` left in ``workspace`` for the same rows."""
        kernel = cls._kernel(components, X)
        if kernel is None:
            return super().statistics_many(components, X, weights, workspace=workspace)
        return kernel.statistics(X, weights, workspace)

    @classmethod
    def _row_bytes_many(cls, components: Sequence[Distribution], dtype: Any) -> int | None:
        kernel = cls._kernel(components, np.empty((0, 1), dtype=dtype))
        return None if kernel is None else kernel.row_bytes(np.dtype(dtype).itemsize)

    @classmethod
    def _kernel(cls, components: Sequence[Any], X: np.ndarray) -> Any:
        # a subclass that scores or summarises differently keeps the per-component path
        if (cls.log_prob is not Gaussian.log_prob
                or cls.sufficient_statistics.__func__  # type: ignore[attr-defined]
                is not Gaussian.sufficient_statistics.__func__  # type: ignore[attr-defined]
                or X.dtype not in (np.float32, np.float64)):
            return None
        return _batched.kernel_for(components, X.dtype)

    @classmethod
    def from_statistics(cls, stats: GaussianStatistics, prior: Any = None) -> Gaussian:
        """Weighted MLE μ = m, Σ = S / N (+ ``reg_covar`` I with a :class:`CovarianceRidge`),
        or the MAP estimate under a :class:`~probmix.priors.NormalInverseWishart`."""
        mean = cls._mean_update(stats, prior)
        return cls(mean=mean, covariance=cls._covariance_update([stats], [mean], prior))

    @classmethod
    def from_statistics_partial(cls, stats: GaussianStatistics, prior: Any,
                                fixed: frozenset[str], current: Gaussian) -> Gaussian:
        """Hold the mean (Σ re-estimated about it) or the covariance (μ updated) fixed.

        Neither update depends on the other parameter's value except through the fixed mean,
        so both have the closed form: Σ = S_μ / N with S_μ the scatter about the fixed μ (or
        its MAP form), and μ = m (or its MAP form) for a fixed Σ.
        """
        if fixed == {"mean"}:
            cov = cls._covariance_update([stats], [current.mean], prior)
            return cls(mean=current.mean, covariance=cov)
        if fixed == {"covariance"}:
            return cls(mean=cls._mean_update(stats, prior), covariance=current.covariance)
        return super().from_statistics_partial(stats, prior, fixed, current)

    @classmethod
    def _mean_update(cls, stats: GaussianStatistics, prior: Any) -> np.ndarray:
        _check_prior(prior)
        if stats.structure is not cls._structure:
            raise TypeError(f"{cls.__name__} needs statistics of a {cls._structure.kind} "
                            f"covariance, got {stats.structure.kind}")
        if isinstance(prior, NormalInverseWishart):
            return prior.posterior_mean(stats.weight, stats.mean)
        if not stats.weight > 0.0:
            raise ValueError(f"cannot estimate a {cls.__name__} from zero total weight")
        return stats.mean

    @classmethod
    def _covariance_update(cls, stats: Sequence[GaussianStatistics],
                           means: Sequence[np.ndarray], prior: Any) -> CovarianceStructure:
        """Σ from the scatters about ``means``, pooled when several components share it."""
        _check_prior(prior)
        structure = cls._structure
        d = means[0].size
        total = sum(s.weight for s in stats)
        scatter = np.sum([s.scatter_about(m) for s, m in zip(stats, means)], axis=0)
        if isinstance(prior, NormalInverseWishart):
            psi = structure.restrict(prior.scale_matrix(d)) + scatter
            for m in means:
                deviation = prior.mean_deviation(m)
                if deviation is not None:
                    psi = psi + prior.kappa * structure.outer(deviation)
            return structure.from_scatter(psi, total + prior.denominator_offset(d, len(means)),
                                          d)
        if not total > 0.0:
            raise ValueError(f"cannot estimate a {cls.__name__} covariance from zero weight")
        reg = prior.reg_covar if isinstance(prior, CovarianceRidge) else 0.0
        return structure.from_scatter(scatter, total, d, reg)

    def log_prior(self, prior: Any) -> float:
        """log p(μ, Σ): 0 without a prior or with a ridge (not a prior), else the NIW density."""
        _check_prior(prior)
        if isinstance(prior, NormalInverseWishart):
            return prior.log_prob(self.mean, self.covariance.compact, self._structure.kind)
        return 0.0

    def sample(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        noise = rng.standard_normal((n_samples, self.n_features))
        out = self.covariance.colour(noise)  # a new array: shift it in place
        out += self.mean
        return out

    def expected_log_prob(self, stats: GaussianStatistics) -> float:
        """``Σ w log N(x|μ,Σ) = −½[N(d log 2π + log|Σ|) + tr(Σ⁻¹S) + N(m−μ)ᵀΣ⁻¹(m−μ)]``."""
        z = self.covariance.whiten((stats.mean - self.mean)[None, :])
        return -0.5 * (stats.weight * (self.n_features * _LOG_2PI + self.covariance.log_det
                                       + float(np.sum(z * z)))
                       + self.covariance.trace_precision(stats.scatter))

    # -- missing values ------------------------------------------------------------------------
    #: NaN entries are marginalised (see :mod:`probmix.distributions._missing`)
    supports_missing: ClassVar[bool] = True

    def marginal_log_prob(self, X: np.ndarray) -> np.ndarray:
        r"""log N(x_o | μ_o, Σ_oo) over each row's observed coordinates o (NaN: missing);
        rows without NaN are scored by :meth:`log_prob`."""
        return _missing.score_rows(
            X, self.log_prob, lambda rows: type(self).marginal_log_prob_many([self], rows)[:, 0])

    def expected_statistics(self, X: np.ndarray,
                            weights: np.ndarray) -> tuple[GaussianStatistics, float]:
        r"""Statistics of the rows with each missing block x_m replaced by its conditional
        mean μ_m + Σ_mo Σ_oo⁻¹ (x_o − μ_o), plus Σ_i w_i C_i (C = Σ_mm − Σ_mo Σ_oo⁻¹ Σ_om) in
        the scatter's (m, m) block; entropy Σ_i w_i ½ log|2πe C_i|."""
        batch, entropy = type(self).expected_statistics_many(
            [self], np.asarray(X), np.asarray(weights, dtype=np.float64)[:, None])
        return batch.unstack()[0], entropy  # type: ignore[return-value]

    def conditional_mean(self, X: np.ndarray) -> np.ndarray:
        """``X`` with x_m replaced by μ_m + Σ_mo Σ_oo⁻¹ (x_o − μ_o) in each row (float64)."""
        X = np.asarray(X)
        rows = _missing.incomplete_rows(X)
        out = np.array(X, dtype=np.float64)
        if rows is not None:
            out[rows] = _missing.conditionals([self], X[rows]).filled(0)
        return out

    @classmethod
    def marginal_log_prob_many(cls, components: Sequence[Distribution], X: np.ndarray, *,
                               workspace: dict[str, Any] | None = None) -> np.ndarray:
        """All components on rows grouped by missingness pattern: one Cholesky factor of Σ_oo
        per pattern and covariance (float64, shape (n_samples, m))."""
        if not components:
            return np.empty((X.shape[0], 0))
        cond = _missing.conditionals(components, X, workspace=workspace)
        return -0.5 * (cond.n_observed[:, None] * _LOG_2PI + cond.log_det_observed
                       + cond.maha)

    @classmethod
    def expected_statistics_many(cls, components: Sequence[Distribution], X: np.ndarray,
                                 weights: np.ndarray, *,
                                 workspace: dict[str, Any] | None = None,
                                 ) -> tuple[StatisticsBatch, float]:
        """Each component's statistics of its conditionally imputed rows plus its conditional
        covariances, reusing the factorisations :meth:`marginal_log_prob_many` kept."""
        if not components:
            return StatisticsList([]), 0.0
        cond = _missing.conditionals(components, X, workspace=workspace)
        structure = cls._structure
        stats, entropy = [], 0.0
        for k in range(len(components)):
            w = np.asarray(weights[:, k], dtype=np.float64)
            s = GaussianStatistics.of(cond.filled(k), w, structure)
            s = GaussianStatistics(weight=s.weight, mean=s.mean, structure=structure,
                                   scatter=s.scatter + cond.scatter_correction(k, w, structure))
            stats.append(s)
            entropy += 0.5 * float(w @ (cond.n_missing * _missing.LOG_2PIE
                                        + cond.log_det_conditional[:, k]))
        return StatisticsList(stats), entropy

    # -- conveniences ---------------------------------------------------------------------------
    @property
    def covariance_matrix(self) -> np.ndarray:
        """Σ as a dense (n_features, n_features) array."""
        return self.covariance.matrix


MultivariateNormal = Gaussian


@attrs.frozen(kw_only=True)
class DiagonalNormal(Gaussian):
    """Normal with a diagonal covariance: ``covariance`` is the (n_features,) variances."""

    _structure: ClassVar[type[CovarianceStructure]] = DiagonalCovariance


@attrs.frozen(kw_only=True)
class SphericalNormal(Gaussian):
    """Normal with covariance σ² I: ``covariance`` is the scalar variance σ²."""

    _structure: ClassVar[type[CovarianceStructure]] = SphericalCovariance


@attrs.frozen(kw_only=True)
class TiedNormal(Gaussian):
    """Full-covariance normal whose covariance is shared by all components of a mixture.

    Alone it is a :class:`Gaussian`; in a mixture, :meth:`from_statistics_many` pools the
    within-component scatters, Σ = Σ_k S_k / Σ_k N_k, and :meth:`n_parameters_many` counts
    the shared covariance once.
    """

    @classmethod
    def from_statistics_many(cls, stats: Sequence[GaussianStatistics], prior: Any = None, *,
                             fixed: Sequence[frozenset[str]] | None = None,
                             current: Sequence[Gaussian] | None = None) -> list[TiedNormal]:
        """Means as for :class:`Gaussian`; one covariance from the pooled scatters about them.

        Fixed means are supported; the shared covariance can be held fixed only for all
        components at once (fixing it for some would fix it for all).
        """
        held = [frozenset() if fixed is None else fixed[k] for k in range(len(stats))]
        for h in held:
            cls._check_parameter_names(h)
        held = [frozenset(cls.parameter_names) if "all" in h else h for h in held]
        cov_fixed = ["covariance" in h for h in held]
        if any(held) and current is None:
            raise ValueError("holding parameters fixed needs the current components")
        if any(cov_fixed) and not all(cov_fixed):
            raise ValueError("TiedNormal shares one covariance: hold it fixed for every "
                             "component or for none")
        means = [current[k].mean if "mean" in h and current is not None
                 else cls._mean_update(s, prior) for k, (s, h) in enumerate(zip(stats, held))]
        if all(cov_fixed):
            assert current is not None
            shared = current[0].covariance
        else:
            try:
                shared = cls._covariance_update(stats, means, prior)
            except ValueError as exc:
                raise type(exc)(f"the tied covariance: {exc}") from None
        return [cls(mean=m, covariance=shared) for m in means]

    @classmethod
    def n_parameters_many(cls, components: Sequence[Distribution]) -> int:
        d = components[0].n_features
        return len(components) * d + FullCovariance.n_parameters(d)

    @classmethod
    def log_prior_many(cls, components: Sequence[Distribution], prior: Any) -> float:
        """The inverse-Wishart term counted once for the shared covariance, plus each mean's."""
        _check_prior(prior)
        if not isinstance(prior, NormalInverseWishart):
            return 0.0
        gaussians = [c for c in components if isinstance(c, Gaussian)]
        cov = gaussians[0].covariance.compact
        return (gaussians[0].log_prior(prior)
                + sum(prior.log_prob_mean(g.mean, cov) for g in gaussians[1:]))
