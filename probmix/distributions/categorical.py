r"""Independent categorical features given as integer codes:
:math:`p(x) = \prod_j p_{j, x_j}`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs
import numpy as np
from scipy import special

from .._validation import readonly
from ..priors import Dirichlet
from . import _missing
from ._common import first_violation, positive_rows, support_error
from .base import Distribution, Statistics, _scale_factor

__all__ = ["Categorical", "CategoricalStatistics"]


def _arrays_equal(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


_tuple_eq = attrs.cmp_using(eq=_arrays_equal)


def _simplices(value: Any) -> tuple[np.ndarray, ...]:
    """One probability vector per feature: a 2-D array (equal numbers of categories) or a
    sequence of 1-D arrays (any numbers). Each is checked and renormalised (like π)."""
    if isinstance(value, np.ndarray) and value.ndim != 2:
        raise ValueError("probabilities must be a 2-D array (n_features, n_categories) or a "
                         f"sequence of 1-D arrays, got shape {value.shape}; for one feature "
                         "write [[p_0, ..., p_C]]")
    rows = list(value)
    if not rows:
        raise ValueError("probabilities needs at least one feature")
    out = []
    for j, row in enumerate(rows):
        p = np.array(row, dtype=float)
        if p.ndim != 1 or p.size == 0:
            raise ValueError(f"probabilities of feature {j} must be a non-empty 1-D array, got "
                             f"shape {p.shape} (for one feature write [[p_0, ..., p_C]])")
        if not np.all(np.isfinite(p)) or np.any(p < 0):
            raise ValueError(f"probabilities of feature {j} must be finite and >= 0, got "
                             f"{p.tolist()}")
        if abs(p.sum() - 1.0) > 1e-6:
            raise ValueError(f"probabilities of feature {j} must sum to 1, got sum "
                             f"{float(p.sum())}")
        out.append(readonly(p / p.sum()))
    return tuple(out)


def _code_mask(X: np.ndarray, n_categories: Any) -> np.ndarray:
    """Entries that are integer codes in [0, n_categories_j)."""
    with np.errstate(invalid="ignore"):
        return (X >= 0) & np.less(X, n_categories) & np.equal(X, np.floor(X))


def _pad(counts: np.ndarray, size: int) -> np.ndarray:
    return counts if counts.size >= size else np.pad(counts, (0, size - counts.size))


@attrs.frozen(kw_only=True)
class CategoricalStatistics(Statistics):
    """Σ_i w_i and, per feature j, the weighted count N_jc = Σ_i w_i [x_ij = c] of each code.

    Feature j's counts cover the codes 0 … (largest code seen) in the rows summarised; two
    summaries add by padding the shorter counts with zeros, so the sum does not depend on how
    the rows were split.
    """

    weight: float
    counts: tuple[np.ndarray, ...] = attrs.field(eq=_tuple_eq)

    @property
    def total_weight(self) -> float:
        return self.weight

    def __add__(self, other: CategoricalStatistics) -> CategoricalStatistics:
        if not isinstance(other, CategoricalStatistics):
            return NotImplemented
        if len(other.counts) != len(self.counts):
            raise ValueError(f"cannot add Categorical statistics of {len(self.counts)} and "
                             f"{len(other.counts)} features")
        counts = []
        for a, b in zip(self.counts, other.counts):
            size = max(a.size, b.size)
            counts.append(_pad(a, size) + _pad(b, size))
        return CategoricalStatistics(weight=self.weight + other.weight, counts=tuple(counts))

    def reweighted(self, factor: float) -> CategoricalStatistics:
        f = _scale_factor(factor)
        return CategoricalStatistics(weight=self.weight * f,
                                     counts=tuple(c * f for c in self.counts))


@attrs.frozen(kw_only=True)
class Categorical(Distribution):
    r"""Independent categorical features: column j holds a code in {0, …, C_j − 1}.

    .. math::
        \log p(x) = \sum_j \log p_{j, x_j}, \qquad \sum_c p_{jc} = 1

    Features may have different numbers of categories C_j. A probability of exactly 0 (the
    MLE of a category never seen) gives that code −∞ and leaves the others finite.

    The number of categories of a fitted feature is the largest code in the data plus one
    (as scikit-learn's ``CategoricalNB`` infers it); to fix it beyond that, give a
    Dirichlet prior whose α has C_j entries.

    Parameters
    ----------
    probabilities : array-like of shape (n_features, n_categories) or sequence of 1-D arrays
        Row j is the probability vector of feature j (renormalised if it sums to 1 within
        1e-6). Use a sequence for features with different numbers of categories.

    Raises
    ------
    ValueError
        If a probability vector is empty, negative, not finite or does not sum to 1.

    Examples
    --------
    >>> import numpy as np
    >>> from probmix.distributions import Categorical
    >>> c = Categorical(probabilities=[[0.5, 0.5], [0.1, 0.2, 0.7]])
    >>> c.n_categories, c.n_parameters
    ((2, 3), 3)
    >>> round(float(np.exp(c.log_prob(np.array([[1.0, 2.0]]))[0])), 12)
    0.35
    """

    parameter_names: ClassVar[tuple[str, ...]] = ("probabilities",)

    probabilities: tuple[np.ndarray, ...] = attrs.field(converter=_simplices, eq=_tuple_eq)
    _log_table: np.ndarray = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        # log p_jc in one (n_features, max C_j) table, −∞ beyond C_j: log_prob is one gather
        table = np.full((len(self.probabilities), max(self.n_categories)), -np.inf)
        with np.errstate(divide="ignore"):
            for j, p in enumerate(self.probabilities):
                table[j, :p.size] = np.log(p)
        object.__setattr__(self, "_log_table", readonly(table))

    @property
    def n_categories(self) -> tuple[int, ...]:
        """C_j for each feature."""
        return tuple(p.size for p in self.probabilities)

    @property
    def n_features(self) -> int:
        return len(self.probabilities)

    @property
    def n_parameters(self) -> int:
        return sum(c - 1 for c in self.n_categories)

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        """Log pmf of each row; −∞ for a row with a code outside [0, C_j)."""
        X = np.asarray(X)
        inside = _code_mask(X, np.array(self.n_categories))
        codes = np.where(inside, X, 0).astype(np.intp)
        terms = self._log_table[np.arange(self.n_features), codes]
        return np.where(inside, terms, -np.inf).sum(axis=1)

    @classmethod
    def sufficient_statistics(cls, X: np.ndarray, weights: np.ndarray) -> CategoricalStatistics:
        X = np.asarray(X)
        # The counts of every component of a mixture span the same codes: those of all rows
        # of X (also rows of weight 0), not only the rows this component is given.
        valid = _code_mask(X, np.inf)
        top = np.max(np.where(valid, X, -1), axis=0, initial=-1).astype(np.intp) + 1
        X, w = positive_rows(X, weights)
        bad = first_violation(~_code_mask(X, np.inf))
        if bad is not None:
            raise support_error(bad[1], "must hold non-negative integer codes for a "
                                        f"Categorical, got {float(X[bad])}")
        codes = X.astype(np.intp)
        counts = tuple(np.bincount(codes[:, j], weights=w, minlength=int(top[j]))
                       for j in range(X.shape[1]))
        return CategoricalStatistics(weight=float(w.sum()), counts=counts)

    @classmethod
    def from_statistics(cls, stats: CategoricalStatistics,
                        prior: Dirichlet | Sequence[Dirichlet] | None = None) -> Categorical:
        r"""Weighted MLE, or MAP under a Dirichlet prior on each feature's probabilities.

        The weighted log-likelihood of feature j is Σ_c N_jc log p_jc, maximised on the
        simplex by p_jc = N_jc / Σ_c' N_jc'. With a Dirichlet(α_j) prior the log-posterior is
        Σ_c (N_jc + α_jc − 1) log p_jc, maximised by

        .. math::
            p_{jc} = \frac{\max(N_{jc} + \alpha_{jc} - 1,\ 0)}
                          {\sum_{c'} \max(N_{jc'} + \alpha_{jc'} - 1,\ 0)}

        (a category whose N + α − 1 ≤ 0 gets probability 0, as for the mixture weights).

        Parameters
        ----------
        stats : CategoricalStatistics
        prior : Dirichlet or sequence of Dirichlet, optional
            One Dirichlet for every feature (a scalar α, or a vector when all features have
            as many categories), or one per feature. A vector α longer than the codes seen
            sets the number of categories.

        Raises
        ------
        ValueError
            Zero total weight without a prior, or a feature whose N + α − 1 ≤ 0 everywhere.
        """
        priors = _priors(prior, len(stats.counts))
        probabilities = []
        for j, (counts, p) in enumerate(zip(stats.counts, priors)):
            if p is None:
                if not stats.weight > 0:
                    raise ValueError("cannot estimate a Categorical from zero total weight")
                probabilities.append(counts / counts.sum())
                continue
            size = max(counts.size, p.alpha.size)
            alpha = p.concentrations(size)
            mass = np.maximum(_pad(counts, size) + (alpha - 1.0), 0.0)
            if not mass.sum() > 0:
                raise ValueError(f"feature {j}: every category's N + alpha - 1 is <= 0: the "
                                 "Dirichlet prior's alpha is too small for this data")
            probabilities.append(mass / mass.sum())
        return cls(probabilities=probabilities)

    def log_prior(self, prior: Dirichlet | Sequence[Dirichlet] | None) -> float:
        r"""Σ_j log Dir(p_j | α_j), 0 without a prior.

        Computed as log Γ(Σα) − Σ log Γ(α) + Σ (α − 1) log p (with (α − 1) log 0 = ±∞ on the
        boundary, where ``scipy.stats.dirichlet`` refuses); for an improper α (some ≤ 0)
        only the kernel Σ (α − 1) log p.
        """
        total = 0.0
        for p, d in zip(self.probabilities, _priors(prior, self.n_features)):
            if d is None:
                continue
            alpha = d.concentrations(p.size)
            with np.errstate(divide="ignore"):
                total += float(np.sum(special.xlogy(alpha - 1.0, p)))
            if d.proper:
                total += float(special.gammaln(alpha.sum()) - special.gammaln(alpha).sum())
        return total

    def expected_log_prob(self, stats: CategoricalStatistics) -> float:
        """Σ_i w_i log p(x_i) = Σ_j Σ_c N_jc log p_jc."""
        total = 0.0
        for p, counts in zip(self.probabilities, stats.counts):
            size = max(p.size, counts.size)
            with np.errstate(divide="ignore"):
                total += float(np.sum(special.xlogy(_pad(counts, size), _pad(p, size))))
        return total

    # -- missing values: the features are independent, so a missing code is skipped ---------
    supports_missing: ClassVar[bool] = True

    def marginal_log_prob(self, X: np.ndarray) -> np.ndarray:
        """Σ_j over the observed codes of log p_{j, x_j} (NaN: missing)."""
        def log_terms(X: np.ndarray) -> np.ndarray:
            inside = _code_mask(X, np.array(self.n_categories))
            codes = np.where(inside, X, 0).astype(np.intp)
            return np.where(inside, self._log_table[np.arange(self.n_features), codes], -np.inf)

        return _missing.independent_marginal(X, self.log_prob, log_terms)

    def expected_statistics(self, X: np.ndarray,
                            weights: np.ndarray) -> tuple[CategoricalStatistics, float]:
        """A missing code of feature j adds p_jc to every count N_jc; entropy −Σ_c p_jc log p_jc."""
        X = np.asarray(X)
        if _missing.incomplete_rows(X) is None:
            return self.sufficient_statistics(X, weights), 0.0
        # as in sufficient_statistics: the counts span the codes of all rows of X
        top = np.max(np.where(_code_mask(X, np.inf), X, -1), axis=0,
                     initial=-1).astype(np.intp) + 1
        X, w = positive_rows(X, weights)
        nan = np.isnan(X)
        bad = first_violation(~(_code_mask(X, np.inf) | nan))
        if bad is not None:
            raise support_error(bad[1], "must hold non-negative integer codes for a "
                                        f"Categorical, got {float(X[bad])}")
        missing_weight = w @ nan
        counts, entropy = [], 0.0
        for j, p in enumerate(self.probabilities):
            seen = ~nan[:, j]
            size = max(int(top[j]), p.size)
            c = np.bincount(X[seen, j].astype(np.intp), weights=w[seen], minlength=size)
            counts.append(c + missing_weight[j] * _pad(p, c.size))
            entropy += float(missing_weight[j] * -np.sum(special.xlogy(p, p)))
        return CategoricalStatistics(weight=float(w.sum()), counts=tuple(counts)), entropy

    def conditional_mean(self, X: np.ndarray) -> np.ndarray:
        """``X`` with a missing code replaced by its mean Σ_c c p_jc (a number, not a code:
        for the most probable category use the probabilities themselves)."""
        X = np.asarray(X, dtype=np.float64)
        means = np.array([p @ np.arange(p.size) for p in self.probabilities])
        return np.where(np.isnan(X), means, X)

    def sample(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        return np.column_stack([rng.choice(p.size, size=n_samples, p=p)
                                for p in self.probabilities]).astype(np.float64)

    def support_mask(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        return np.asarray((_code_mask(X, np.array(self.n_categories)) | np.isnan(X)).all(axis=1))

    def check_support(self, X: np.ndarray) -> None:
        """Column j must hold integer codes in [0, C_j) (or NaN, a missing entry)."""
        X = np.asarray(X)
        bad = first_violation(~(_code_mask(X, np.array(self.n_categories)) | np.isnan(X)))
        if bad is not None:
            row, col = bad
            raise support_error(col, f"must hold integer codes in [0, {self.n_categories[col]})"
                                     f" for a Categorical with {self.n_categories[col]} "
                                     f"categories, got {float(X[row, col])} at row {row}")


def _priors(prior: Any, n_features: int) -> tuple[Dirichlet | None, ...]:
    if prior is None or isinstance(prior, Dirichlet):
        return (prior,) * n_features
    if isinstance(prior, Sequence) and all(isinstance(p, Dirichlet) for p in prior):
        if len(prior) != n_features:
            raise ValueError(f"got {len(prior)} Dirichlet priors for {n_features} features")
        return tuple(prior)
    raise TypeError("Categorical understands prior=None, a Dirichlet, or one Dirichlet per "
                    f"feature, got {type(prior).__name__}")
