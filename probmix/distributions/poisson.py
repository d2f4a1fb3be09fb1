r"""Independent Poisson counts: :math:`p(x) = \prod_j \lambda_j^{x_j} e^{-\lambda_j} / x_j!`."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np
from scipy import special

from .._validation import readonly
from ..priors import Gamma
from . import _missing
from ._common import first_violation, positive_rows, support_error
from .base import Distribution, Statistics, _scale_factor

__all__ = ["Poisson", "PoissonStatistics"]

_array_eq = attrs.cmp_using(eq=np.array_equal)


def _check_rate(instance: Any, attribute: Any, value: np.ndarray) -> None:
    if value.ndim != 1 or value.size == 0:
        raise ValueError(f"rate must be a non-empty 1-D array (one rate per feature), got shape "
                         f"{value.shape}")
    if not np.all(np.isfinite(value)) or np.any(value < 0):
        raise ValueError(f"rate must be finite and >= 0 (0 is the point mass at 0), got "
                         f"{value.tolist()}")


def _count_mask(X: np.ndarray) -> np.ndarray:
    """Entries that are non-negative integers (the support of every Poisson)."""
    with np.errstate(invalid="ignore"):
        return (X >= 0) & np.equal(X, np.floor(X))


@attrs.frozen(kw_only=True)
class PoissonStatistics(Statistics):
    """Σ_i w_i, Σ_i w_i x_i (per feature) and Σ_i w_i Σ_j log x_ij! of some rows.

    All three are plain sums, so they add exactly and a zero-weight summary is neutral.
    """

    weight: float
    total: np.ndarray = attrs.field(eq=_array_eq)
    log_factorial: float

    @property
    def total_weight(self) -> float:
        return self.weight

    def __add__(self, other: PoissonStatistics) -> PoissonStatistics:
        if not isinstance(other, PoissonStatistics):
            return NotImplemented
        if other.total.shape != self.total.shape:
            raise ValueError(f"cannot add Poisson statistics of {self.total.size} and "
                             f"{other.total.size} features")
        return PoissonStatistics(weight=self.weight + other.weight,
                                 total=self.total + other.total,
                                 log_factorial=self.log_factorial + other.log_factorial)

    def reweighted(self, factor: float) -> PoissonStatistics:
        f = _scale_factor(factor)
        return PoissonStatistics(weight=self.weight * f, total=self.total * f,
                                 log_factorial=self.log_factorial * f)


@attrs.frozen(kw_only=True)
class Poisson(Distribution):
    r"""Independent Poisson counts, one rate :math:`\lambda_j \ge 0` per feature.

    .. math::
        \log p(x) = \sum_j \big[x_j \log \lambda_j - \lambda_j - \log x_j!\big]

    A rate of 0 is the point mass at 0 (the MLE of an all-zero column); ``log_prob`` then
    uses 0 · log 0 = 0, so rows of zeros keep a finite density and any other count gets −∞.

    Parameters
    ----------
    rate : array-like of shape (n_features,)
        The rates λ_j, finite and ≥ 0.

    Raises
    ------
    ValueError
        If the rate is not a non-empty 1-D array of finite non-negative numbers.

    Examples
    --------
    >>> import numpy as np
    >>> from probmix.distributions import Poisson
    >>> p = Poisson(rate=[2.0, 0.5])
    >>> float(np.exp(p.log_prob(np.array([[0.0, 0.0]]))[0])) == float(np.exp(-2.5))
    True
    >>> Poisson.fit(np.array([[1.0, 0.0], [3.0, 1.0]])).rate.tolist()
    [2.0, 0.5]
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
        """Log pmf of each row; −∞ for a row with a negative or non-integer entry."""
        X = np.asarray(X, dtype=np.float64)
        inside = _count_mask(X)
        with np.errstate(divide="ignore", invalid="ignore"):
            # xlogy: 0 · log 0 = 0 for a zero count under a zero rate
            terms = special.xlogy(X, self.rate) - special.gammaln(X + 1.0)
        return np.where(inside, terms, -np.inf).sum(axis=1) - float(self.rate.sum())

    @classmethod
    def sufficient_statistics(cls, X: np.ndarray, weights: np.ndarray) -> PoissonStatistics:
        X, w = positive_rows(X, weights)
        return PoissonStatistics(weight=float(w.sum()), total=w @ X,
                                 log_factorial=float(w @ special.gammaln(X + 1.0).sum(axis=1)))

    @classmethod
    def from_statistics(cls, stats: PoissonStatistics, prior: Gamma | None = None) -> Poisson:
        r"""Weighted MLE, or MAP under a :class:`~probmix.priors.Gamma` prior.

        With N = Σ_i w_i and T_j = Σ_i w_i x_ij, the weighted log-likelihood
        T_j log λ_j − N λ_j is maximised by λ_j = T_j / N. With a Gamma(a_j, b_j) prior the
        log-posterior is (a_j − 1 + T_j) log λ_j − (b_j + N) λ_j, whose mode is

        .. math::
            \lambda_j = \frac{\max(a_j - 1 + T_j,\ 0)}{b_j + N}

        (0 when a_j − 1 + T_j ≤ 0: the posterior density then decreases from λ = 0).

        Raises
        ------
        ValueError
            Zero total weight without a prior.
        TypeError
            A prior other than ``None`` or a Gamma.
        """
        _check_prior(prior)
        if prior is None:
            if not stats.weight > 0:
                raise ValueError("cannot estimate a Poisson from zero total weight")
            return cls(rate=stats.total / stats.weight)
        a, b = prior.parameters(stats.total.size)
        return cls(rate=np.maximum(a - 1.0 + stats.total, 0.0) / (b + stats.weight))

    def log_prior(self, prior: Gamma | None) -> float:
        """Σ_j log Gamma(λ_j | a_j, b_j), 0 without a prior."""
        _check_prior(prior)
        return 0.0 if prior is None else prior.log_prob(self.rate)

    def expected_log_prob(self, stats: PoissonStatistics) -> float:
        """Σ_i w_i log p(x_i) = Σ_j [T_j log λ_j − N λ_j] − Σ_i w_i Σ_j log x_ij!."""
        with np.errstate(divide="ignore"):
            loglik = special.xlogy(stats.total, self.rate) - stats.weight * self.rate
        return float(loglik.sum()) - stats.log_factorial

    # -- missing values: the features are independent, so a missing count is skipped --------
    supports_missing: ClassVar[bool] = True

    def marginal_log_prob(self, X: np.ndarray) -> np.ndarray:
        """Σ_j over the observed counts of x_j log λ_j − λ_j − log x_j! (NaN: missing)."""
        def log_terms(X: np.ndarray) -> np.ndarray:
            with np.errstate(divide="ignore"):
                terms = special.xlogy(X, self.rate) - special.gammaln(X + 1.0) - self.rate
            return np.where(_count_mask(X), terms, -np.inf)

        return _missing.independent_marginal(X, self.log_prob, log_terms)

    def expected_statistics(self, X: np.ndarray,
                            weights: np.ndarray) -> tuple[PoissonStatistics, float]:
        """A missing count contributes E[x_j] = λ_j to the totals and E[log x_j!] (a series)
        to the log-factorial term; entropy H[Poisson(λ_j)] = λ_j − λ_j log λ_j + E[log x_j!]."""
        X = np.asarray(X)
        if _missing.incomplete_rows(X) is None:
            return self.sufficient_statistics(X, weights), 0.0
        X, w = positive_rows(X, weights)
        nan = np.isnan(X)
        filled = np.where(nan, self.rate, X)
        missing_weight = w @ nan
        mean_log_factorial = _mean_log_factorial(self.rate)
        log_factorial = (w @ np.where(nan, 0.0, special.gammaln(filled + 1.0)).sum(axis=1)
                         + missing_weight @ mean_log_factorial)
        entropy = self.rate - special.xlogy(self.rate, self.rate) + mean_log_factorial
        return (PoissonStatistics(weight=float(w.sum()), total=w @ filled,
                                  log_factorial=float(log_factorial)),
                float(missing_weight @ entropy))

    def conditional_mean(self, X: np.ndarray) -> np.ndarray:
        """``X`` with a missing count replaced by its mean λ_j."""
        X = np.asarray(X, dtype=np.float64)
        return np.where(np.isnan(X), self.rate, X)

    def sample(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        return rng.poisson(self.rate, size=(n_samples, self.n_features)).astype(np.float64)

    def support_mask(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        return np.asarray((_count_mask(X) | np.isnan(X)).all(axis=1))

    def check_support(self, X: np.ndarray) -> None:
        """Counts must be non-negative integers (stored as floats); NaN is a missing entry."""
        X = np.asarray(X)
        bad = first_violation(~(_count_mask(X) | np.isnan(X)))
        if bad is not None:
            row, col = bad
            raise support_error(col, f"must hold non-negative integer counts for a Poisson, "
                                     f"got {float(X[row, col])} at row {row}")


def _mean_log_factorial(rate: np.ndarray) -> np.ndarray:
    """E[log x!] for x ~ Poisson(λ), per rate: the series Σ_x p(x) log x! over λ ± (20√λ + 20),
    outside which the mass is below 1e-80 (no closed form exists)."""
    out = np.zeros(rate.size)
    for j, lam in enumerate(np.asarray(rate, dtype=np.float64)):
        if lam == 0.0:
            continue  # the point mass at 0: log 0! = 0
        spread = 20.0 * np.sqrt(lam) + 20.0
        x = np.arange(max(0.0, np.floor(lam - spread)), np.ceil(lam + spread) + 1.0)
        log_factorial = special.gammaln(x + 1.0)
        out[j] = float(np.exp(x * np.log(lam) - lam - log_factorial) @ log_factorial)
    return out


def _check_prior(prior: Any) -> None:
    if prior is not None and not isinstance(prior, Gamma):
        raise TypeError(f"Poisson understands prior=None or a Gamma prior on the rates, got "
                        f"{type(prior).__name__}")
