r"""Independent exponential features: :math:`p(x) = \prod_j \lambda_j e^{-\lambda_j x_j}`."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np

from .._validation import readonly
from ..priors import Gamma
from . import _missing
from ._common import first_violation, positive_rows, support_error
from .base import Distribution, Statistics, _scale_factor

__all__ = ["Exponential", "ExponentialStatistics"]

_array_eq = attrs.cmp_using(eq=np.array_equal)


def _check_rate(instance: Any, attribute: Any, value: np.ndarray) -> None:
    if value.ndim != 1 or value.size == 0:
        raise ValueError(f"rate must be a non-empty 1-D array (one rate per feature), got shape "
                         f"{value.shape}")
    if not np.all(np.isfinite(value)) or np.any(value <= 0):
        raise ValueError(f"rate must be finite and > 0 (a zero rate has no density), got "
                         f"{value.tolist()}")


@attrs.frozen(kw_only=True)
class ExponentialStatistics(Statistics):
    """Σ_i w_i and Σ_i w_i x_i (per feature): plain sums, exact under ``+``."""

    weight: float
    total: np.ndarray = attrs.field(eq=_array_eq)

    @property
    def total_weight(self) -> float:
        return self.weight

    def __add__(self, other: ExponentialStatistics) -> ExponentialStatistics:
        if not isinstance(other, ExponentialStatistics):
            return NotImplemented
        if other.total.shape != self.total.shape:
            raise ValueError(f"cannot add Exponential statistics of {self.total.size} and "
                             f"{other.total.size} features")
        return ExponentialStatistics(weight=self.weight + other.weight,
                                     total=self.total + other.total)

    def reweighted(self, factor: float) -> ExponentialStatistics:
        f = _scale_factor(factor)
        return ExponentialStatistics(weight=self.weight * f, total=self.total * f)


@attrs.frozen(kw_only=True)
class Exponential(Distribution):
    r"""Independent exponential features, one rate :math:`\lambda_j > 0` per feature.

    .. math::
        \log p(x) = \sum_j \big[\log \lambda_j - \lambda_j x_j\big], \qquad x_j \ge 0

    (``scipy.stats.expon(scale=1/λ)``). A rate must be positive: λ = 0 is no distribution,
    and the MLE of an all-zero column is λ = ∞, which ``from_statistics`` refuses (a
    :class:`~probmix.priors.Gamma` prior keeps it finite).

    Parameters
    ----------
    rate : array-like of shape (n_features,)
        The rates λ_j (the mean of feature j is 1/λ_j).

    Raises
    ------
    ValueError
        If the rate is not a non-empty 1-D array of finite positive numbers.

    Examples
    --------
    >>> import numpy as np
    >>> from probmix.distributions import Exponential
    >>> e = Exponential(rate=[2.0])
    >>> float(e.log_prob(np.array([[0.0]]))[0]) == float(np.log(2.0))
    True
    >>> Exponential.fit(np.array([[1.0], [3.0]])).rate.tolist()
    [0.5]
    """

    parameter_names: ClassVar[tuple[str, ...]] = ("rate",)

    rate: np.ndarray = attrs.field(converter=readonly, eq=_array_eq, validator=_check_rate)

    @property
    def n_features(self) -> int:
        return int(self.rate.size)

    @property
    def n_parameters(self) -> int:
        return self.n_features

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        """Log density of each row; −∞ for a row with a negative entry."""
        X = np.asarray(X, dtype=np.float64)
        terms = np.log(self.rate) - X * self.rate
        return np.where(X >= 0, terms, -np.inf).sum(axis=1)

    @classmethod
    def sufficient_statistics(cls, X: np.ndarray, weights: np.ndarray,
                              ) -> ExponentialStatistics:
        X, w = positive_rows(X, weights)
        return ExponentialStatistics(weight=float(w.sum()), total=w @ X)

    @classmethod
    def from_statistics(cls, stats: ExponentialStatistics, prior: Gamma | None = None,
                        ) -> Exponential:
        r"""Weighted MLE, or MAP under a :class:`~probmix.priors.Gamma` prior on the rates.

        With N = Σ_i w_i and T_j = Σ_i w_i x_ij, the weighted log-likelihood
        N log λ_j − T_j λ_j is maximised by λ_j = N / T_j. With a Gamma(a_j, b_j) prior the
        log-posterior is (a_j − 1 + N) log λ_j − (b_j + T_j) λ_j, whose mode is

        .. math::
            \lambda_j = \frac{a_j - 1 + N}{b_j + T_j} \qquad (a_j - 1 + N > 0).

        Raises
        ------
        ValueError
            Zero total weight, or T_j = 0 (every weighted value 0: λ = ∞), without a prior;
            a − 1 + N ≤ 0 with one (the posterior mode is λ = 0).
        TypeError
            A prior other than ``None`` or a Gamma.
        """
        _check_prior(prior)
        if prior is None:
            if not stats.weight > 0:
                raise ValueError("cannot estimate an Exponential from zero total weight")
            if np.any(stats.total <= 0):
                j = int(np.flatnonzero(stats.total <= 0)[0])
                raise ValueError(f"feature {j} is 0 in every row of positive weight: its rate "
                                 "MLE is infinite (use a Gamma prior on the rates)")
            return cls(rate=stats.weight / stats.total)
        a, b = prior.parameters(stats.total.size)
        shape = a - 1.0 + stats.weight
        if np.any(shape <= 0):
            raise ValueError(f"a - 1 + N = {float(np.min(shape)):.3g} <= 0: the Gamma "
                             "posterior's mode is a zero rate (use a prior shape a >= 1)")
        return cls(rate=shape / (b + stats.total))

    def log_prior(self, prior: Gamma | None) -> float:
        """Σ_j log Gamma(λ_j | a_j, b_j), 0 without a prior."""
        _check_prior(prior)
        return 0.0 if prior is None else prior.log_prob(self.rate)

    def expected_log_prob(self, stats: ExponentialStatistics) -> float:
        """Σ_i w_i log p(x_i) = Σ_j [N log λ_j − λ_j T_j]."""
        return float(np.sum(stats.weight * np.log(self.rate) - self.rate * stats.total))

    # -- missing values: the features are independent, so a missing entry is skipped --------
    supports_missing: ClassVar[bool] = True

    def marginal_log_prob(self, X: np.ndarray) -> np.ndarray:
        """Σ_j over the observed entries of log λ_j − λ_j x_j (NaN: missing)."""
        return _missing.independent_marginal(
            X, self.log_prob,
            lambda X: np.where(X >= 0, np.log(self.rate) - X * self.rate, -np.inf))

    def expected_statistics(self, X: np.ndarray,
                            weights: np.ndarray) -> tuple[ExponentialStatistics, float]:
        """A missing entry contributes its mean 1/λ_j to the totals; entropy 1 − log λ_j."""
        X = np.asarray(X)
        if _missing.incomplete_rows(X) is None:
            return self.sufficient_statistics(X, weights), 0.0
        X, w = positive_rows(X, weights)
        nan = np.isnan(X)
        filled = np.where(nan, 1.0 / self.rate, X)
        return (ExponentialStatistics(weight=float(w.sum()), total=w @ filled),
                float((w @ nan) @ (1.0 - np.log(self.rate))))

    def conditional_mean(self, X: np.ndarray) -> np.ndarray:
        """``X`` with a missing entry replaced by its mean 1/λ_j."""
        X = np.asarray(X, dtype=np.float64)
        return np.where(np.isnan(X), 1.0 / self.rate, X)

    def sample(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        return rng.exponential(1.0 / self.rate, size=(n_samples, self.n_features))

    def support_mask(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        return np.asarray(((X >= 0) | np.isnan(X)).all(axis=1))

    def check_support(self, X: np.ndarray) -> None:
        """Every entry must be ≥ 0 (or NaN, a missing entry)."""
        X = np.asarray(X)
        bad = first_violation(X < 0)
        if bad is not None:
            row, col = bad
            raise support_error(col, f"must be >= 0 for an Exponential, got "
                                     f"{float(X[row, col])} at row {row}")


def _check_prior(prior: Any) -> None:
    if prior is not None and not isinstance(prior, Gamma):
        raise TypeError(f"Exponential understands prior=None or a Gamma prior on the rates, "
                        f"got {type(prior).__name__}")
