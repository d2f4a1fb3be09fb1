r"""Independent binary features: :math:`p(x) = \prod_j p_j^{x_j} (1 - p_j)^{1 - x_j}`."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np
from scipy import special

from .._validation import readonly
from ..priors import Beta
from . import _missing
from ._common import first_violation, positive_rows, support_error
from .base import Distribution, Statistics, _scale_factor

__all__ = ["Bernoulli", "BernoulliStatistics"]

_array_eq = attrs.cmp_using(eq=np.array_equal)


def _check_probability(instance: Any, attribute: Any, value: np.ndarray) -> None:
    if value.ndim != 1 or value.size == 0:
        raise ValueError(f"probability must be a non-empty 1-D array (one per feature), got "
                         f"shape {value.shape}")
    if not np.all((value >= 0) & (value <= 1)):  # also rejects NaN
        raise ValueError(f"probability must lie in [0, 1], got {value.tolist()}")


@attrs.frozen(kw_only=True)
class BernoulliStatistics(Statistics):
    """Σ_i w_i and, per feature, the weighted counts of ones Σ w x and of zeros Σ w (1 − x).

    Both counts are kept (rather than ones and Σ w): an all-ones column then has exactly zero
    weight of zeros, so its MLE is exactly 1, not 1 ± ε from a cancelling difference.
    """

    weight: float
    ones: np.ndarray = attrs.field(eq=_array_eq)
    zeros: np.ndarray = attrs.field(eq=_array_eq)

    @property
    def total_weight(self) -> float:
        return self.weight

    def __add__(self, other: BernoulliStatistics) -> BernoulliStatistics:
        if not isinstance(other, BernoulliStatistics):
            return NotImplemented
        if other.ones.shape != self.ones.shape:
            raise ValueError(f"cannot add Bernoulli statistics of {self.ones.size} and "
                             f"{other.ones.size} features")
        return BernoulliStatistics(weight=self.weight + other.weight,
                                   ones=self.ones + other.ones, zeros=self.zeros + other.zeros)

    def reweighted(self, factor: float) -> BernoulliStatistics:
        f = _scale_factor(factor)
        return BernoulliStatistics(weight=self.weight * f, ones=self.ones * f,
                                   zeros=self.zeros * f)


@attrs.frozen(kw_only=True)
class Bernoulli(Distribution):
    r"""Independent Bernoulli features, one probability :math:`p_j = P(x_j = 1)` each.

    .. math::
        \log p(x) = \sum_j \big[x_j \log p_j + (1 - x_j) \log(1 - p_j)\big]

    Probabilities of exactly 0 or 1 are allowed (the MLE of a constant column): the matching
    value keeps log-probability 0, the other gets −∞, never NaN.

    Parameters
    ----------
    probability : array-like of shape (n_features,)
        p_j in [0, 1].

    Raises
    ------
    ValueError
        If the probabilities are not a non-empty 1-D array of values in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from probmix.distributions import Bernoulli
    >>> b = Bernoulli(probability=[0.25, 1.0])
    >>> float(np.exp(b.log_prob(np.array([[1.0, 1.0]]))[0]))
    0.25
    >>> Bernoulli.fit(np.array([[1.0, 0.0], [1.0, 1.0]])).probability.tolist()
    [1.0, 0.5]
    """

    parameter_names: ClassVar[tuple[str, ...]] = ("probability",)

    probability: np.ndarray = attrs.field(converter=readonly, eq=_array_eq,
                                          validator=_check_probability)

    @property
    def n_features(self) -> int:
        return int(self.probability.size)

    @property
    def n_parameters(self) -> int:
        return self.n_features

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        """Log pmf of each row; −∞ for a row with an entry other than 0 or 1."""
        X = np.asarray(X)
        with np.errstate(divide="ignore"):
            log_p, log_q = np.log(self.probability), np.log1p(-self.probability)
        # where, not x log p + (1 − x) log(1 − p): that is 0 · (−∞) = NaN at p ∈ {0, 1}
        terms = np.where(X == 1, log_p, np.where(X == 0, log_q, -np.inf))
        return terms.sum(axis=1)

    @classmethod
    def sufficient_statistics(cls, X: np.ndarray, weights: np.ndarray) -> BernoulliStatistics:
        X, w = positive_rows(X, weights)
        return BernoulliStatistics(weight=float(w.sum()), ones=w @ X, zeros=w @ (1.0 - X))

    @classmethod
    def from_statistics(cls, stats: BernoulliStatistics, prior: Beta | None = None,
                        ) -> Bernoulli:
        r"""Weighted MLE, or MAP under a :class:`~probmix.priors.Beta` prior.

        With n1_j = Σ_i w_i x_ij and n0_j = Σ_i w_i (1 − x_ij) the weighted log-likelihood
        n1 log p + n0 log(1 − p) is maximised by p_j = n1_j / (n1_j + n0_j). With a
        Beta(a_j, b_j) prior the log-posterior is α log p + β log(1 − p), α = a_j − 1 + n1_j,
        β = b_j − 1 + n0_j, whose mode is

        .. math::
            p_j = \frac{\alpha}{\alpha + \beta} \quad (\alpha, \beta \ge 0),

        and p_j = 0 when α < 0 ≤ β, p_j = 1 when β < 0 ≤ α (the density is unbounded there).

        Raises
        ------
        ValueError
            Zero total weight without a prior, or a posterior without a unique mode
            (α = β = 0, or both negative).
        TypeError
            A prior other than ``None`` or a Beta.
        """
        _check_prior(prior)
        if prior is None:
            if not stats.weight > 0:
                raise ValueError("cannot estimate a Bernoulli from zero total weight")
            total = stats.ones + stats.zeros
            return cls(probability=np.divide(stats.ones, total, out=np.zeros_like(total),
                                             where=total > 0))
        a, b = prior.parameters(stats.ones.size)
        alpha, beta = a - 1.0 + stats.ones, b - 1.0 + stats.zeros
        interior = (alpha >= 0) & (beta >= 0) & (alpha + beta > 0)
        ambiguous = ~interior & ((alpha < 0) == (beta < 0))
        if np.any(ambiguous):
            j = int(np.flatnonzero(ambiguous)[0])
            raise ValueError(f"the Beta posterior of feature {j} has no unique mode "
                             f"(a - 1 + n1 = {alpha[j]:.3g}, b - 1 + n0 = {beta[j]:.3g}): use "
                             "a, b >= 1, or more data")
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.where(interior, alpha / (alpha + beta), (alpha >= 0).astype(float))
        return cls(probability=p)

    def log_prior(self, prior: Beta | None) -> float:
        """Σ_j log Beta(p_j | a_j, b_j), 0 without a prior."""
        _check_prior(prior)
        return 0.0 if prior is None else prior.log_prob(self.probability)

    def expected_log_prob(self, stats: BernoulliStatistics) -> float:
        """Σ_i w_i log p(x_i) = Σ_j [n1_j log p_j + n0_j log(1 − p_j)]."""
        p = self.probability
        return float(np.sum(special.xlogy(stats.ones, p) + special.xlogy(stats.zeros, 1.0 - p)))

    # -- missing values: the features are independent, so a missing entry is skipped --------
    supports_missing: ClassVar[bool] = True

    def marginal_log_prob(self, X: np.ndarray) -> np.ndarray:
        """Σ_j over the observed entries of log p_j or log(1 − p_j) (NaN: missing)."""
        with np.errstate(divide="ignore"):
            log_p, log_q = np.log(self.probability), np.log1p(-self.probability)
        return _missing.independent_marginal(
            X, self.log_prob,
            lambda X: np.where(X == 1, log_p, np.where(X == 0, log_q, -np.inf)))

    def expected_statistics(self, X: np.ndarray,
                            weights: np.ndarray) -> tuple[BernoulliStatistics, float]:
        """A missing entry counts p_j as a one and 1 − p_j as a zero; entropy
        −p_j log p_j − (1 − p_j) log(1 − p_j)."""
        X = np.asarray(X)
        if _missing.incomplete_rows(X) is None:
            return self.sufficient_statistics(X, weights), 0.0
        X, w = positive_rows(X, weights)
        nan = np.isnan(X)
        filled = np.where(nan, self.probability, X)
        p = self.probability
        entropy = -special.xlogy(p, p) - special.xlogy(1.0 - p, 1.0 - p)
        return (BernoulliStatistics(weight=float(w.sum()), ones=w @ filled,
                                    zeros=w @ (1.0 - filled)),
                float((w @ nan) @ entropy))

    def conditional_mean(self, X: np.ndarray) -> np.ndarray:
        """``X`` with a missing entry replaced by its mean p_j."""
        X = np.asarray(X, dtype=np.float64)
        return np.where(np.isnan(X), self.probability, X)

    def sample(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        return (rng.random((n_samples, self.n_features)) < self.probability).astype(np.float64)

    def support_mask(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        return np.asarray(((X == 0) | (X == 1) | np.isnan(X)).all(axis=1))

    def check_support(self, X: np.ndarray) -> None:
        """Every entry must be 0 or 1 (or NaN, a missing entry)."""
        X = np.asarray(X)
        bad = first_violation((X != 0) & (X != 1) & ~np.isnan(X))
        if bad is not None:
            row, col = bad
            raise support_error(col, f"must hold 0/1 values for a Bernoulli, got "
                                     f"{float(X[row, col])} at row {row}")


def _check_prior(prior: Any) -> None:
    if prior is not None and not isinstance(prior, Beta):
        raise TypeError(f"Bernoulli understands prior=None or a Beta prior on the "
                        f"probabilities, got {type(prior).__name__}")
