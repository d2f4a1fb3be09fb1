"""The contract every component family implements.

A family is a frozen value with a handful of methods (see :class:`Distribution`). Its M-step is
driven by *sufficient statistics* that add across row chunks, so one implementation serves
in-memory, chunked, weighted and (later) distributed fits.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import attrs
import numpy as np

from .._validation import check_data, check_sample_weight
from ._missing import incomplete_rows as _incomplete_rows
from ._missing import unsupported as _unsupported

__all__ = ["Distribution", "Statistics", "StatisticsBatch", "StatisticsList"]

D = TypeVar("D", bound="Distribution")
S = TypeVar("S", bound="Statistics")


class Statistics(abc.ABC):
    """Weighted sufficient statistics of a family: a commutative monoid under ``+``.

    ``stats(A) + stats(B)`` must equal ``stats(A ∪ B)`` (to round-off) for any split of the
    rows, and a statistics object of zero ``total_weight`` must be a neutral element.
    """

    @property
    @abc.abstractmethod
    def total_weight(self) -> float:
        """Σ_i w_i over the rows summarised (for a mixture component: N_k = Σ_i w_i q_ik)."""

    @abc.abstractmethod
    def __add__(self: S, other: S) -> S:
        """The statistics of the union of the two sets of rows."""

    def reweighted(self: S, factor: float) -> S:
        """The statistics of the same rows with every weight multiplied by ``factor`` >= 0.

        The laws: ``total_weight`` is multiplied by ``factor``; ``s.reweighted(a) +
        s.reweighted(b)`` equals ``s.reweighted(a + b)``; ``s.reweighted(1)`` equals ``s``;
        ``s.reweighted(0)`` is a neutral element. Statistics that are sums over rows scale
        every sum; a weighted mean (such as a Gaussian's centred mean) does not change.

        Optional: only online EM (:class:`~probmix.em.OnlineEM`) needs it, to form the running
        average (1 − γ) s + γ s̄ of statistics; the default raises ``NotImplementedError``.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement reweighted(factor), which online EM needs "
            "(the statistics of the same rows with every weight multiplied by factor)")


def _scale_factor(factor: Any) -> float:
    """A factor for :meth:`Statistics.reweighted`: a finite real number >= 0 (ValueError else)."""
    if isinstance(factor, (bool, np.bool_)) or not isinstance(factor, (int, float, np.integer,
                                                                      np.floating)):
        raise TypeError(f"factor must be a real number, got {type(factor).__name__}")
    value = float(factor)
    if not (np.isfinite(value) and value >= 0.0):
        raise ValueError(f"factor must be finite and >= 0, got {factor!r}")
    return value


class StatisticsBatch(Statistics):
    """The statistics of several components of one family, as one additive value.

    Returned by :meth:`Distribution.statistics_many`; ``+`` adds the per-component statistics
    (``a + b`` for two batches of the same components), and :meth:`unstack` gives one
    :class:`Statistics` per component. A batched family keeps stacked arrays here, so a chunked
    pass adds arrays instead of K objects per chunk.
    """

    @abc.abstractmethod
    def unstack(self) -> list[Statistics]:
        """One statistics object per component, in order."""


def _tuple(items: Sequence[Statistics]) -> tuple[Statistics, ...]:
    return tuple(items)


@attrs.frozen
class StatisticsList(StatisticsBatch):
    """The default :class:`StatisticsBatch`: a tuple of per-component statistics."""

    items: tuple[Statistics, ...] = attrs.field(converter=_tuple)

    @property
    def total_weight(self) -> float:
        return float(sum(s.total_weight for s in self.items))

    def __add__(self, other: StatisticsBatch) -> StatisticsList:
        if not isinstance(other, StatisticsBatch):
            return NotImplemented
        theirs = other.unstack()
        if len(theirs) != len(self.items):
            raise ValueError(f"cannot add statistics of {len(theirs)} components to those of "
                             f"{len(self.items)}")
        return StatisticsList([a + b for a, b in zip(self.items, theirs)])

    def unstack(self) -> list[Statistics]:
        return list(self.items)

    def reweighted(self, factor: float) -> StatisticsList:
        return StatisticsList([s.reweighted(factor) for s in self.items])


class Distribution(abc.ABC):
    """A probability distribution over rows of ``n_features`` values: a mixture component family.

    Subclass contract (a new family implements these and inherits the rest):

    - :meth:`log_prob` ``(X) -> (n_samples,)``, the log density of each row;
    - :meth:`sufficient_statistics` ``(X, weights)``, an additive :class:`Statistics`;
    - :meth:`from_statistics` (classmethod), the weighted maximum-likelihood estimate
      (or the MAP estimate given a ``prior`` the family understands);
    - :meth:`sample` ``(n, rng)``, :attr:`n_features` and :attr:`n_parameters`.

    Optional hooks: :meth:`check_support` (reject data outside the support with a message
    naming the column), :meth:`expected_log_prob` (lets the fit history report the bound after
    each M-step), :meth:`log_prior` (the log density of a prior the family understands, for
    MAP), :meth:`from_statistics_partial` (updates with some parameters held fixed), and
    :meth:`from_statistics_many`, :meth:`n_parameters_many`, :meth:`log_prior_many` (a family
    that pools across components, like a tied covariance, overrides these, so nothing outside
    the family needs to know about it). For speed, :meth:`log_prob_many` and
    :meth:`statistics_many` score and summarise all components of one family in a mixture at
    once (the defaults loop over the components; the Gaussian families use batched GEMM
    kernels).

    Missing values (NaN entries, marginalised by ``EMAlgorithm(missing="marginalize")``): a
    family that sets :attr:`supports_missing` implements :meth:`marginal_log_prob` (the log
    density of each row's observed entries), :meth:`expected_statistics` (the statistics of
    E[s(x_i) | x_i,obs] and the entropy of the missing entries given the observed ones: exact EM
    for data missing at random) and :meth:`conditional_mean` (E[x_mis | x_obs], for
    imputation); :meth:`check_support` and :meth:`support_mask` must ignore NaN entries. The
    defaults handle rows without NaN and refuse the others, naming the family.
    :meth:`marginal_log_prob_many` and :meth:`expected_statistics_many` do the same for several
    components at once (the Gaussian families group the rows by missingness pattern).

    Implementations are immutable (``attrs.frozen``): an update returns a new object.
    """

    #: names of the parameter groups, for holding some of them fixed in the M-step
    parameter_names: ClassVar[tuple[str, ...]] = ()
    #: whether the missing-data hooks marginalise NaN entries (False: rows with NaN raise)
    supports_missing: ClassVar[bool] = False

    # -- the contract -------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def n_features(self) -> int:
        """Number of columns of the rows this distribution scores."""

    @property
    @abc.abstractmethod
    def n_parameters(self) -> int:
        """Number of free scalar parameters (used by BIC and AIC)."""

    @abc.abstractmethod
    def log_prob(self, X: np.ndarray) -> np.ndarray:
        """Log density ``log p(x_i)`` of each row, an ndarray of shape (n_samples,); -inf for
        a row outside the support (never NaN)."""

    @abc.abstractmethod
    def sufficient_statistics(self, X: np.ndarray, weights: np.ndarray) -> Statistics:
        """Weighted sufficient statistics of the rows of ``X``.

        Families whose statistics do not depend on the current parameters (exponential
        families) may define this as a ``classmethod``; the default :meth:`fit` relies on it.
        """

    @classmethod
    @abc.abstractmethod
    def from_statistics(cls: type[D], stats: Any, prior: Any = None) -> D:
        """The distribution maximising ``Σ_i w_i log p(x_i)`` (+ ``log p(θ)`` with a prior)."""

    @abc.abstractmethod
    def sample(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n_samples`` rows, an ndarray of shape (n_samples, n_features)."""

    # -- optional hooks with generic defaults ---------------------------------------------------
    def support_mask(self, X: np.ndarray) -> np.ndarray:
        """Which rows lie in the support, a boolean ndarray of shape (n_samples,).

        A mixture accepts a row that *some* component accepts (a Gaussian bulk with an
        exponential tail scores negative values). Default: every finite row.
        """
        return np.ones(np.shape(X)[0], dtype=bool)

    def check_support(self, X: np.ndarray) -> None:
        """Raise ``ValueError`` naming the column if a row lies outside the support.

        Called once per fit and by the public scoring methods of a mixture, never inside the
        EM loop. The default refuses the rows :meth:`support_mask` excludes (none, unless a
        family says otherwise: a Gaussian's support is all of ℝᵈ); families override it to
        name the column and the problem.
        """
        outside = ~self.support_mask(X)
        if np.any(outside):
            row = int(np.argmax(outside))
            raise ValueError(f"X row {row} lies outside the support of {type(self).__name__}")

    def expected_log_prob(self, stats: Any) -> float:
        """``Σ_i w_i log p(x_i)`` computed from the statistics alone.

        Optional: it lets EM report ``L(q, θ_new)`` after each M-step without another pass.
        For a family whose statistics depend on the parameters (latent variables, as in
        StudentT) it is the bound at the parameters the statistics were taken with: equal to
        Σ w log p(x) there, and a lower bound for any other parameters.
        """
        raise NotImplementedError

    def log_prior(self, prior: Any) -> float:
        """log p(θ) under ``prior`` (0 for ``None``); a family that accepts a prior in
        :meth:`from_statistics` implements it so MAP-EM can monitor the log-posterior."""
        if prior is None:
            return 0.0
        raise NotImplementedError(f"{type(self).__name__} does not know the log density of a "
                                  f"{type(prior).__name__}")

    @classmethod
    def from_statistics_partial(cls: type[D], stats: Any, prior: Any,
                                fixed: frozenset[str], current: D) -> D:
        """The update with the parameter groups ``fixed`` held at ``current``'s values.

        Override for the combinations that have a closed form; the default refuses, so no
        constraint is ever silently ignored.
        """
        raise ValueError(f"{cls.__name__} has no closed-form update with {sorted(fixed)} held "
                         f"fixed (its parameter groups: {list(cls.parameter_names)}); hold the "
                         "whole component fixed instead")

    @classmethod
    def from_statistics_many(cls: type[D], stats: Sequence[Any], prior: Any = None, *,
                             fixed: Sequence[frozenset[str]] | None = None,
                             current: Sequence[D] | None = None) -> list[D]:
        """One estimate per component from each component's statistics.

        ``fixed[i]`` names the parameter groups of component i held at ``current[i]``'s
        values (``"all"``, or every group: the component is kept as it is). The default estimates
        components independently; override it when the family shares parameters across
        components (e.g. a tied covariance).
        """
        out = []
        for i, s in enumerate(stats):
            held = fixed[i] if fixed is not None else frozenset()
            cls._check_parameter_names(held)
            try:
                if not held:
                    out.append(cls.from_statistics(s, prior))
                elif current is None:
                    raise ValueError("holding parameters fixed needs the current components")
                elif "all" in held or held >= set(cls.parameter_names):
                    out.append(current[i])
                else:
                    out.append(cls.from_statistics_partial(s, prior, held, current[i]))
            except ValueError as exc:
                exc.component = i  # type: ignore[attr-defined]  # lets the mixture name it
                raise
        return out

    @classmethod
    def _check_parameter_names(cls, held: frozenset[str]) -> None:
        unknown = held - set(cls.parameter_names) - {"all"}
        if unknown:
            raise ValueError(f"{sorted(unknown)} are not parameters of {cls.__name__} (its "
                             f"parameter groups: {list(cls.parameter_names)}, or 'all')")

    @classmethod
    def log_prob_many(cls, components: Sequence[Distribution], X: np.ndarray, *,
                      workspace: dict[str, Any] | None = None) -> np.ndarray:
        """``log p_j(x_i)`` for several components of this family, shape (n_samples, m).

        ``workspace`` is a dict private to one chunk of rows: a family may keep intermediate
        results there for :meth:`statistics_many` on the same rows and components. Overrides
        must give the same numbers as this default (to round-off), which loops over the
        components.
        """
        if not components:
            return np.empty((X.shape[0], 0))
        # column-major (n, m): reductions over the components then run along rows
        return np.stack([c.log_prob(X) for c in components]).T

    @classmethod
    def _log_joint_many(cls, components: Sequence[Distribution], log_weights: np.ndarray,
                        X: np.ndarray, *, workspace: dict[str, Any] | None = None,
                        dtype: Any = np.float64) -> np.ndarray:
        """``log π_j + log p_j(x_i)`` (n_samples, m), writable, in ``dtype``: a mixture's
        log-joint columns. A family whose scores end with a constant per component may add
        the log-weights there instead of in another pass over the (n, m) block."""
        out = np.asarray(cls.log_prob_many(components, X, workspace=workspace))
        if out.dtype != dtype or not out.flags.writeable:
            out = out.astype(dtype)
        out += np.asarray(log_weights).astype(dtype)
        return out

    @classmethod
    def statistics_many(cls, components: Sequence[Distribution | type[Distribution]],
                        X: np.ndarray, weights: np.ndarray, *,
                        workspace: dict[str, Any] | None = None) -> StatisticsBatch:
        """Statistics of several components at once: column j of ``weights`` (n_samples, m)
        weighs the rows for ``components[j]`` (an instance, or a family class whose
        ``sufficient_statistics`` is a classmethod).

        Returns a :class:`StatisticsBatch` (additive across chunks; ``unstack()`` gives one
        statistics object per component). The default loops over the components.
        """
        return StatisticsList([c.sufficient_statistics(X, weights[:, j])  # type: ignore[call-arg,arg-type]
                               for j, c in enumerate(components)])

    # -- missing values (NaN entries) ------------------------------------------------------------
    def marginal_log_prob(self, X: np.ndarray) -> np.ndarray:
        r"""Log density of each row's *observed* entries, shape (n_samples,); NaN is missing.

        .. math:: \log p(x_{i,\mathrm{obs}}) = \log \int p(x_{i,\mathrm{obs}}, x_{i,\mathrm{mis}})
                  \, \mathrm d x_{i,\mathrm{mis}}

        The default scores rows without NaN by :meth:`log_prob` and refuses the others
        (``ValueError`` naming the family); a family with :attr:`supports_missing` overrides it.
        """
        X = np.asarray(X)
        if _incomplete_rows(X) is not None:
            raise _unsupported(self)
        return self.log_prob(X)

    def expected_statistics(self, X: np.ndarray, weights: np.ndarray) -> tuple[Statistics, float]:
        r"""The statistics of the rows with their missing entries marginalised, and the entropy
        of those entries.

        Returns ``(stats, entropy)``: ``stats`` are the statistics of E[s(x_i) | x_i,obs] (the
        expected sufficient statistics, so that :meth:`from_statistics` is the exact M-step of
        EM for data missing at random, and :meth:`expected_log_prob` gives
        Σ_i w_i E[log p(x_i) | x_i,obs]); ``entropy`` is Σ_i w_i H[x_i,mis | x_i,obs], the part of
        the bound L(q, θ) that the statistics do not carry (0 without missing entries). Both
        are taken under *this* distribution's parameters.

        The default handles rows without NaN (``sufficient_statistics``, entropy 0) and refuses
        the others, naming the family.
        """
        X = np.asarray(X)
        if _incomplete_rows(X) is not None:
            raise _unsupported(self)
        return self.sufficient_statistics(X, weights), 0.0

    def conditional_mean(self, X: np.ndarray) -> np.ndarray:
        """``X`` (float64) with each NaN replaced by E[x_mis | x_obs] under this distribution;
        observed entries unchanged. The default refuses rows with NaN, naming the family."""
        X = np.asarray(X)
        if _incomplete_rows(X) is not None:
            raise _unsupported(self)
        return np.array(X, dtype=np.float64)

    @classmethod
    def marginal_log_prob_many(cls, components: Sequence[Distribution], X: np.ndarray, *,
                               workspace: dict[str, Any] | None = None) -> np.ndarray:
        """:meth:`marginal_log_prob` of several components of this family, shape
        (n_samples, m). ``workspace`` (one dict per chunk of rows) may keep what
        :meth:`expected_statistics_many` reuses on the same rows. The default loops."""
        if not components:
            return np.empty((X.shape[0], 0))
        return np.stack([c.marginal_log_prob(X) for c in components]).T

    @classmethod
    def expected_statistics_many(cls, components: Sequence[Distribution], X: np.ndarray,
                                 weights: np.ndarray, *,
                                 workspace: dict[str, Any] | None = None,
                                 ) -> tuple[StatisticsBatch, float]:
        """:meth:`expected_statistics` of several components, column j of ``weights``
        (n_samples, m) weighing the rows for ``components[j]``: a :class:`StatisticsBatch` and
        the summed entropy. The default loops."""
        stats, entropy = [], 0.0
        for j, c in enumerate(components):
            s, h = c.expected_statistics(X, weights[:, j])
            stats.append(s)
            entropy += h
        return StatisticsList(stats), float(entropy)

    @classmethod
    def _row_bytes_many(cls, components: Sequence[Distribution], dtype: Any) -> int | None:
        """Bytes of temporaries per row that scoring and summarising these components at once
        allocate, the (n, m) log-densities included (a sizing hint for the EM pass's chunks;
        None: unknown)."""
        return None

    @classmethod
    def log_prior_many(cls, components: Sequence[Distribution], prior: Any) -> float:
        """log p(θ_1, …, θ_m) of several components of this family (independent by default)."""
        return sum(c.log_prior(prior) for c in components)

    @classmethod
    def n_parameters_many(cls, components: Sequence[Distribution]) -> int:
        """Free parameters of several components of this family in one mixture."""
        return sum(c.n_parameters for c in components)

    @classmethod
    def fit(cls: type[D], X: Any, weights: Any = None, prior: Any = None) -> D:
        """Weighted maximum-likelihood (or MAP) fit to the rows of ``X``."""
        X = check_data(X)
        w = check_sample_weight(weights, X.shape[0], name="weights")
        stats = cls.sufficient_statistics(X, w)  # type: ignore[call-arg,arg-type]  # classmethod
        return cls.from_statistics(stats, prior)

    def score(self, X: Any) -> float:
        """Mean log density of the rows of ``X``."""
        return float(np.mean(self.log_prob(check_data(X, n_features=self.n_features))))
