"""``MixtureModel``: mixture weights π and components p_k, as one frozen value.

    p(x | θ) = Σ_k π_k p_k(x | θ_k),      p(c = k | x, θ) = π_k p_k(x | θ_k) / p(x | θ)

Everything here is in log space: the log-joint log π_k + log p_k(x_i) is an (n, K) array and
the evidence log p(x_i) its log-sum-exp over k.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from ._validation import as_rng, check_data, check_sample_weight, readonly
from .distributions._missing import incomplete_rows
from .distributions.base import Distribution, Statistics, StatisticsBatch, _scale_factor
from .exceptions import SingularCovarianceError

__all__ = ["MixtureModel", "MixtureStatistics", "Posterior", "update_components"]

_array_eq = attrs.cmp_using(eq=np.array_equal)


# numpy's SIMD exp falls back to a scalar path, 5-80x slower, wherever a float64 result is
# subnormal or underflows (x < -708); far components of a well-separated mixture put many
# entries of a chunk's shifted log-joint there. Terms below e⁻⁷⁰⁰ (< 1e-304) cannot change a
# row's sum whose largest term is 1, so they are flushed to exactly 0 instead.
_EXP_FLOOR = -700.0
_EXP_AT_FLOOR = float(np.exp(np.full(1, _EXP_FLOOR))[0])  # by the array loop the pass uses


def _shifted_exp(a: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``exp(a − shift[:, None])``, with float64 results below e⁻⁷⁰⁰ exactly 0.

    Four passes over ``a``: subtract, floor at -700, exp, and subtract e⁻⁷⁰⁰ (which zeroes
    the floored entries and moves the others by < 1e-304). The floor is a column of -700
    rather than a scalar: numpy vectorises ``maximum`` only when both operands advance, and
    on a column-major ``a`` the column does (2x faster).
    """
    out = np.subtract(a, shift[:, None])
    if out.dtype != np.float64 or out.size == 0:
        return np.exp(out, out=out)
    np.maximum(out, np.full((out.shape[0], 1), _EXP_FLOOR), out=out)
    np.exp(out, out=out)
    out -= _EXP_AT_FLOOR
    return out


def logsumexp_rows(a: np.ndarray) -> np.ndarray:
    """``log Σ_k exp(a_ik)`` per row, stable (shifted by the row maximum); -inf for a row of
    -inf. Leaner than ``scipy.special.logsumexp``, which matters inside the EM loop."""
    m = np.max(a, axis=1)
    m[~np.isfinite(m)] = 0.0
    with np.errstate(divide="ignore"):
        return m + np.log(np.sum(np.exp(a - m[:, None]), axis=1))


def _simplex(value: Any) -> np.ndarray:
    w = np.array(value, dtype=float)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"weights must be a non-empty 1-D array, got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights contain NaN or infinity")
    if np.any(w < 0):
        raise ValueError(f"weights must be non-negative, got minimum {float(w.min())}")
    if abs(w.sum() - 1.0) > 1e-6:
        raise ValueError(f"weights must sum to 1 (a point of the simplex), got sum "
                         f"{float(w.sum())}")
    # Renormalise only beyond round-off: dividing a sum of 1 ± 2ε again would move weights
    # by an ulp, and a model rebuilt from its own fields would no longer equal itself.
    total = w.sum()
    if abs(total - 1.0) > 8 * w.size * np.finfo(float).eps:
        w = w / total
    return readonly(w)


def _as_tuple(components: Iterable[Distribution]) -> tuple[Distribution, ...]:
    return tuple(components)


@attrs.frozen(kw_only=True)
class MixtureStatistics(Statistics):
    """Responsibility masses N_k = Σ_i w_i q_ik and each component's statistics.

    Adds component-wise, so an EM iteration can accumulate it chunk by chunk.
    """

    masses: np.ndarray = attrs.field(eq=_array_eq)
    components: tuple[Statistics, ...]
    families: tuple[type[Distribution], ...]

    @property
    def total_weight(self) -> float:
        return float(np.sum(self.masses))

    @classmethod
    def of(cls, X: np.ndarray, q: np.ndarray,
           components: Sequence[Distribution | type[Distribution]]) -> MixtureStatistics:
        """Statistics of ``X`` where column k of ``q`` (n, K) weighs the rows for component k.

        ``components`` are component instances, or family classes whose
        ``sufficient_statistics`` is a classmethod (used to start EM from responsibilities).
        Each family summarises its components at once (:meth:`Distribution.statistics_many`).
        Rows must be complete (for rows with NaN, :meth:`MixtureModel.component_statistics`
        takes the expected statistics under the model's parameters).
        """
        if incomplete_rows(np.asarray(X)) is not None:
            raise ValueError("X contains NaN: statistics from given responsibilities need "
                             "complete rows (impute them first, e.g. by column means)")
        families = tuple(c if isinstance(c, type) else type(c) for c in components)
        groups = tuple((f, tuple(idx)) for f, idx in _groups(families).items())
        return _StatisticsParts.of(X, q, components, groups).finish(families)

    def __add__(self, other: MixtureStatistics) -> MixtureStatistics:
        if not isinstance(other, MixtureStatistics):
            return NotImplemented
        return MixtureStatistics(
            masses=self.masses + other.masses,
            components=tuple(a + b for a, b in zip(self.components, other.components)),
            families=self.families)

    def reweighted(self, factor: float) -> MixtureStatistics:
        """Every row's weight × factor: the masses N_k and each component's statistics."""
        f = _scale_factor(factor)
        return MixtureStatistics(masses=self.masses * f,
                                 components=tuple(s.reweighted(f) for s in self.components),
                                 families=self.families)


@attrs.frozen
class _StatisticsParts:
    """Statistics of one chunk by family group, before they are split per component: the EM
    pass adds these (arrays, for batched families) and builds MixtureStatistics once.

    ``missing_entropy`` is Σ_i w_i Σ_k q_ik H[x_i,mis | x_i,obs, c_i = k], the entropy of the
    missing entries under q: a part of L(q, θ) that statistics alone do not carry (0 when
    every entry is observed). The masses N_k are the components' total weights, read at the
    end rather than summed from q in every chunk."""

    groups: tuple[tuple[tuple[int, ...], StatisticsBatch], ...]
    missing_entropy: float = 0.0

    @classmethod
    def of(cls, X: np.ndarray, q: np.ndarray,
           components: Sequence[Distribution | type[Distribution]],
           groups: Sequence[tuple[type[Distribution], tuple[int, ...]]],
           workspace: dict[Any, Any] | None = None) -> _StatisticsParts:
        parts = []
        everything = tuple(range(q.shape[1]))
        for family, idx in groups:
            # one family: no copy of q, and the mixture's own tuple of components (the
            # families may cache what they derive from it)
            whole = idx == everything
            cols = q if whole else q[:, list(idx)]
            parts.append((idx, family.statistics_many(
                components if whole else [components[k] for k in idx], X, cols,
                workspace=None if workspace is None else workspace.get(family))))
        return cls(groups=tuple(parts))

    def __add__(self, other: _StatisticsParts) -> _StatisticsParts:
        return _StatisticsParts(
            groups=tuple((idx, a + b) for (idx, a), (_, b) in zip(self.groups, other.groups)),
            missing_entropy=self.missing_entropy + other.missing_entropy)

    def finish(self, families: tuple[type[Distribution], ...]) -> MixtureStatistics:
        stats: list[Statistics | None] = [None] * len(families)
        for idx, batch in self.groups:
            for k, s in zip(idx, batch.unstack()):
                stats[k] = s
        assert all(s is not None for s in stats)
        masses = np.array([s.total_weight for s in stats], dtype=np.float64)  # type: ignore[union-attr]
        return MixtureStatistics(masses=masses, components=tuple(stats),  # type: ignore[arg-type]
                                 families=families)


@attrs.frozen(eq=False)
class _MissingSplit:
    """The rows of one chunk split into complete ones (the fast path) and ones with a NaN (the
    families' missing-data hooks); kept in the chunk's workspace between scoring and
    summarising, so both see the same row subsets (the batched kernels check identity)."""

    X: np.ndarray
    complete: np.ndarray  # row indices
    incomplete: np.ndarray
    X_complete: np.ndarray
    X_incomplete: np.ndarray

    @classmethod
    def of(cls, X: np.ndarray, rows: np.ndarray) -> _MissingSplit:
        complete, incomplete = np.flatnonzero(~rows), np.flatnonzero(rows)
        return cls(X, complete, incomplete, X[complete], X[incomplete])


@attrs.frozen
class Posterior:
    """The E-step's view of one chunk of rows under the current model.

    Attributes
    ----------
    log_joint : ndarray of shape (n_samples, n_components)
        log π_k + log p_k(x_i).
    log_resp : ndarray of shape (n_samples, n_components)
        log p(c_i = k | x_i, θ), finite or -inf, each row summing to one after ``exp``.
    log_evidence : ndarray of shape (n_samples,)
        log p(x_i | θ).
    """

    log_joint: np.ndarray
    log_evidence: np.ndarray
    # p(c_i = k | x_i, θ) as computed on the way (e^(a − max a) / Σ): the soft E-step's q
    # without another exp
    _resp: np.ndarray = attrs.field(eq=False, repr=False)
    # what log_resp is made of, on demand (the soft E-step of the EM pass never needs it):
    # the row shifts max_k a_ik, log Σ_k e^(a_ik − shift_i), and the rows whose posterior is
    # the prior log π (None: no such row)
    _log_resp_parts: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray] = (
        attrs.field(eq=False, repr=False))

    @functools.cached_property
    def log_resp(self) -> np.ndarray:
        """log p(c_i = k | x_i, θ), shape (n_samples, n_components)."""
        shift, log_norm, lost, log_weights = self._log_resp_parts
        # (a − shift) − log_norm, not a − (shift + log_norm): see MixtureModel._posterior
        with np.errstate(invalid="ignore"):
            out = np.subtract(self.log_joint, shift[:, None])
            out -= log_norm[:, None]
        if lost is not None:
            out[lost] = log_weights
        return out

    @property
    def resp(self) -> np.ndarray:
        """p(c_i = k | x_i, θ), shape (n_samples, n_components): rows sum to one."""
        return self._resp


@attrs.frozen(kw_only=True)
class MixtureModel(Distribution):
    r"""A finite mixture :math:`p(x) = \sum_k \pi_k p_k(x)`; itself a :class:`Distribution`.

    Parameters
    ----------
    weights : array-like of shape (n_components,)
        The mixture weights π, a point of the simplex (zeros allowed: such a component is
        skipped when scoring).
    components : sequence of Distribution
        One distribution per component, all with the same ``n_features``. They may be of
        different families.

    Raises
    ------
    ValueError
        If the weights are not a simplex point, their number differs from the number of
        components, or the components disagree on ``n_features``.

    Examples
    --------
    >>> import numpy as np
    >>> from probmix import MixtureModel
    >>> from probmix.distributions import Gaussian
    >>> model = MixtureModel(weights=[0.3, 0.7], components=[
    ...     Gaussian(mean=[0.0], covariance=[[1.0]]), Gaussian(mean=[5.0], covariance=[[1.0]])])
    >>> X, labels = model.sample(1000, np.random.default_rng(0))
    >>> model.responsibilities(X).shape
    (1000, 2)
    """

    weights: np.ndarray = attrs.field(converter=_simplex, eq=_array_eq)
    components: tuple[Distribution, ...] = attrs.field(converter=_as_tuple)
    log_weights: np.ndarray = attrs.field(init=False, eq=False, repr=False)
    # family groups of the components with positive weight (the ones that are scored)
    _live_groups: tuple[tuple[type[Distribution], tuple[int, ...]], ...] = attrs.field(
        init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if len(self.components) != self.weights.size:
            raise ValueError(f"got {self.weights.size} weights for {len(self.components)} "
                             "components")
        for k, c in enumerate(self.components):
            if not isinstance(c, Distribution):
                raise TypeError(f"component {k} must be a probmix Distribution, got "
                                f"{type(c).__name__}")
        dims = {c.n_features for c in self.components}
        if len(dims) != 1:
            raise ValueError(f"components disagree on n_features: {sorted(dims)}")
        with np.errstate(divide="ignore"):
            object.__setattr__(self, "log_weights", readonly(np.log(self.weights)))
        live = [k for k in range(len(self.components)) if self.weights[k] > 0]
        families = [type(self.components[k]) for k in live]
        object.__setattr__(self, "_live_groups", tuple(
            (f, tuple(live[j] for j in idx)) for f, idx in _groups(families).items()))

    # -- Distribution contract ------------------------------------------------------------------
    @property
    def n_components(self) -> int:
        return len(self.components)

    @property
    def n_features(self) -> int:
        return self.components[0].n_features

    @property
    def n_parameters(self) -> int:
        """(K − 1) free weights plus each family's count (shared parameters counted once)."""
        total = self.n_components - 1
        for family, idx in _groups(tuple(type(c) for c in self.components)).items():
            total += family.n_parameters_many([self.components[k] for k in idx])
        return total

    def log_joint(self, X: Any, *, missing: str = "raise") -> np.ndarray:
        """log π_k + log p_k(x_i), an ndarray of shape (n_samples, n_components).

        Components of zero weight get -inf without being evaluated. ``missing``: "raise"
        (default) refuses NaN; "marginalize" treats NaN as a missing entry, and p_k(x_i) is
        then the marginal density of the row's observed entries, p_k(x_i,obs).
        """
        return self._log_joint(self._validated(X, missing))

    def _validated(self, X: Any, missing: str) -> np.ndarray:
        if not isinstance(missing, str) or missing not in ("raise", "marginalize"):
            raise ValueError(f"missing must be 'raise' or 'marginalize', got {missing!r}")
        X = check_data(X, n_features=self.n_features, expected_by="the model has",
                       allow_missing=missing == "marginalize")
        self.check_support(X)
        return X

    def support_mask(self, X: np.ndarray) -> np.ndarray:
        """A row is in a mixture's support if it is in some component's."""
        mask = np.zeros(np.shape(X)[0], dtype=bool)
        for c in self.components:
            mask |= c.support_mask(X)
        return mask

    def check_support(self, X: np.ndarray) -> None:
        """Raise ``ValueError`` for the first row outside every component's support, saying
        what each component requires."""
        if self.n_components == 1:
            self.components[0].check_support(X)
            return
        outside = ~self.support_mask(X)
        if not np.any(outside):
            return
        row = int(np.argmax(outside))
        reasons = []
        for k, c in enumerate(self.components):
            try:
                c.check_support(X[row:row + 1])
            except ValueError as exc:
                # the component saw the row alone: drop its "at row 0"
                reasons.append(f"component {k} ({type(c).__name__}): "
                               + re.sub(r",? at row 0$", "", str(exc)))
        raise ValueError(f"X row {row} lies outside the support of every component: "
                         + "; ".join(reasons))

    def _log_joint(self, X: np.ndarray, workspace: dict[Any, Any] | None = None, *,
                   complete: bool = False) -> np.ndarray:
        """:meth:`log_joint` for data already validated (the EM loop checks X once).

        Each family scores its components at once (:meth:`Distribution.log_prob_many`);
        ``workspace`` (one dict per chunk of rows) lets it keep intermediate results for
        :meth:`_statistics_parts` on the same rows.

        Rows with a NaN entry (missing values) are scored by the families'
        :meth:`~probmix.Distribution.marginal_log_prob_many`; the others as above, unchanged
        (one NaN check per chunk when nothing is missing, none when the caller knows X is
        ``complete``). The split is kept in ``workspace`` for :meth:`_statistics_parts`.
        """
        rows = None if complete else incomplete_rows(X)
        split = None if rows is None else _MissingSplit.of(X, rows)
        if workspace is not None:
            workspace[_MissingSplit] = (X, split)
        if split is None:
            return self._log_joint_observed(X, workspace)
        dtype = X.dtype if X.dtype == np.float32 else np.float64
        out = np.full((X.shape[0], self.n_components), -np.inf, dtype=dtype, order="F")
        if split.complete.size:
            out[split.complete] = self._log_joint_observed(split.X_complete, workspace)
        for family, idx in self._live_groups:
            cols = family.marginal_log_prob_many(
                [self.components[k] for k in idx], split.X_incomplete,
                workspace=None if workspace is None
                else workspace.setdefault((_MissingSplit, family), {}))
            out[np.ix_(split.incomplete, np.array(idx))] = self.log_weights[list(idx)] + cols
        return out

    def _log_joint_observed(self, X: np.ndarray,
                            workspace: dict[Any, Any] | None = None) -> np.ndarray:
        """:meth:`_log_joint` of complete rows."""
        # float32 data is scored in float32 (as scikit-learn does); all else in float64
        dtype = X.dtype if X.dtype == np.float32 else np.float64
        groups = self._live_groups
        if len(groups) == 1 and len(groups[0][1]) == self.n_components:
            family, _ = groups[0]  # one family, every component live: no scatter into columns
            return family._log_joint_many(
                self.components, self.log_weights, X, dtype=dtype,
                workspace=None if workspace is None else workspace.setdefault(family, {}))
        # column-major: the posterior's reductions over k run down contiguous columns
        out = np.full((X.shape[0], self.n_components), -np.inf, dtype=dtype, order="F")
        for family, idx in groups:
            out[:, list(idx)] = family._log_joint_many(
                [self.components[k] for k in idx], self.log_weights[list(idx)], X, dtype=dtype,
                workspace=None if workspace is None else workspace.setdefault(family, {}))
        return out

    def _row_bytes(self, dtype: Any) -> int:
        """Temporaries per row of scoring a chunk and summarising it: the families' (their
        hint, or their (n, m) log-densities and one component's residuals, 2 d + 2 floats)
        and the posterior. An E-step's own arrays come on top (``EStep._n_arrays``)."""
        d = self.n_features
        total = 8 * self.n_components  # the posterior (the log-joint is the families' output)
        for family, idx in self._live_groups:
            hint = family._row_bytes_many([self.components[k] for k in idx], dtype)
            total += 8 * (len(idx) + 2 * d + 2) if hint is None else hint
        return total

    def posterior(self, X: Any, *, missing: str = "raise") -> Posterior:
        """Log-joint, log-responsibilities and log-evidence of the rows of ``X`` in one go
        (``missing`` as for :meth:`log_joint`)."""
        return self._posterior(self.log_joint(X, missing=missing))

    def _posterior(self, log_joint: np.ndarray) -> Posterior:
        # Normalise the *shifted* row (a − max a): subtracting log p(x) from log π + log p_k
        # instead loses the normaliser when |log p(x)| ~ 1e17 (a row far out), where adding
        # log 2 no longer changes the float, and the responsibilities then sum to 2.
        # (the sums test whole vectors for a non-finite entry in one call: with threads each
        # numpy call is a GIL hand-over)
        shift = np.max(log_joint, axis=1)
        if not np.isfinite(np.sum(shift)):
            shift[~np.isfinite(shift)] = 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            resp = _shifted_exp(log_joint, shift)
            norm = np.sum(resp, axis=1)
            log_norm = np.log(norm)
            resp *= (1.0 / norm)[:, None]  # one division per row, a product per entry
        log_evidence = shift + log_norm
        lost = None
        if not np.isfinite(np.sum(log_evidence)):
            lost = ~np.isfinite(log_evidence)
        if lost is not None and np.any(lost):
            # The density underflows to zero under every component (a point extremely far
            # from all of them): the likelihood carries no information, so the posterior is
            # the prior π. Keeps responsibilities finite and normalised.
            resp[lost] = self.weights
        else:
            lost = None
        return Posterior(log_joint, log_evidence, resp,
                         (shift, log_norm, lost, self.log_weights))

    def log_prob(self, X: Any, *, missing: str = "raise") -> np.ndarray:
        """log p(x_i | θ) = logsumexp_k(log π_k + log p_k(x_i)), shape (n_samples,); with
        ``missing="marginalize"`` the log density of each row's observed entries."""
        return logsumexp_rows(self.log_joint(X, missing=missing))

    def responsibilities(self, X: Any, *, missing: str = "raise") -> np.ndarray:
        """Posterior q_ik = p(c_i = k | x_i, θ), shape (n_samples, n_components); rows sum to 1.
        With ``missing="marginalize"``, p(c_i = k | x_i,obs, θ) for rows with NaN."""
        return np.exp(self.posterior(X, missing=missing).log_resp)

    def impute(self, X: Any) -> np.ndarray:
        r"""Conditional-mean imputation of the missing entries (NaN) of ``X``.

        .. math:: \hat x_{i,\mathrm{mis}} = \mathrm E[x_{i,\mathrm{mis}} \mid x_{i,\mathrm{obs}}]
                  = \sum_k p(c_i = k \mid x_{i,\mathrm{obs}})\,
                    \mathrm E_k[x_{i,\mathrm{mis}} \mid x_{i,\mathrm{obs}}]

        the posterior-weighted conditional means of the components
        (:meth:`~probmix.Distribution.conditional_mean`; for a Gaussian
        μ_m + Σ_mo Σ_oo⁻¹ (x_o − μ_o)). Observed entries are returned unchanged.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NaN marks a missing entry; a row needs at least one observed entry.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            Of X's float dtype (float32 kept), without NaN.

        Examples
        --------
        >>> import numpy as np
        >>> from probmix import MixtureModel
        >>> from probmix.distributions import Gaussian
        >>> model = MixtureModel(weights=[1.0], components=[
        ...     Gaussian(mean=[0.0, 0.0], covariance=[[1.0, 0.8], [0.8, 1.0]])])
        >>> model.impute([[2.0, np.nan]])  # E[x_2 | x_1 = 2] = 0.8 * 2
        array([[2. , 1.6]])
        """
        X = self._validated(X, "marginalize")
        out = X.copy()
        rows = incomplete_rows(X)
        if rows is None:
            return out
        Xi = X[rows]
        resp = self._posterior(self._log_joint(Xi)).resp
        filled = np.zeros(Xi.shape)
        for k, comp in enumerate(self.components):
            if self.weights[k] > 0:
                filled += resp[:, k:k + 1] * comp.conditional_mean(Xi)
        out[rows] = np.where(np.isnan(Xi), filled, Xi)
        return out

    def sufficient_statistics(self, X: np.ndarray, weights: np.ndarray) -> MixtureStatistics:
        """Expected statistics under the posterior: the E-step of a nested mixture."""
        X = np.asarray(X)
        # the posterior of the rows as they are (an empty chunk gives the neutral element)
        q = (np.exp(self._posterior(self._log_joint(X)).log_resp)
             * np.asarray(weights, dtype=float)[:, None])
        return self.component_statistics(X, q)

    def component_statistics(self, X: np.ndarray, q: np.ndarray) -> MixtureStatistics:
        """Statistics of ``X`` with column k of ``q`` (n, K) as the weights of component k."""
        return self._statistics_parts(X, q).finish(tuple(type(c) for c in self.components))

    def _statistics_parts(self, X: np.ndarray, q: np.ndarray,
                          workspace: dict[Any, Any] | None = None) -> _StatisticsParts:
        """The statistics of one chunk, grouped as :meth:`_log_joint` scored it (so a family
        can reuse what it kept in ``workspace``); components of zero weight are summarised
        one by one.

        Rows with a NaN entry get the families' expected statistics
        (:meth:`~probmix.Distribution.expected_statistics_many`) and add the entropy of their
        missing entries to ``missing_entropy``; the complete rows take the path above."""
        scored, split = (None, None) if workspace is None else workspace.get(_MissingSplit,
                                                                             (None, None))
        if scored is not X:  # not scored by _log_joint with this workspace: check here
            rows = incomplete_rows(X)
            split = None if rows is None else _MissingSplit.of(X, rows)
        if split is None:
            return self._observed_parts(X, q, workspace)
        parts = self._missing_parts(split.X_incomplete, q[split.incomplete], workspace)
        if split.complete.size:
            parts = self._observed_parts(split.X_complete, q[split.complete], workspace) + parts
        return parts

    def _missing_parts(self, X: np.ndarray, q: np.ndarray,
                       workspace: dict[Any, Any] | None) -> _StatisticsParts:
        """:meth:`_statistics_parts` of rows that all have a NaN, grouped as there."""
        dead = [(type(self.components[k]), (k,)) for k in range(self.n_components)
                if not self.weights[k] > 0]
        groups, entropy = [], 0.0
        for n, (family, idx) in enumerate([*self._live_groups, *dead]):
            live = n < len(self._live_groups)
            batch, h = family.expected_statistics_many(
                [self.components[k] for k in idx], X, q[:, list(idx)],
                workspace=None if workspace is None or not live
                else workspace.setdefault((_MissingSplit, family), {}))
            groups.append((idx, batch))
            entropy += h
        return _StatisticsParts(groups=tuple(groups), missing_entropy=entropy)

    def _observed_parts(self, X: np.ndarray, q: np.ndarray,
                        workspace: dict[Any, Any] | None) -> _StatisticsParts:
        """:meth:`_statistics_parts` of complete rows."""
        parts = _StatisticsParts.of(X, q, self.components, self._live_groups, workspace)
        dead = tuple(k for k in range(self.n_components) if not self.weights[k] > 0)
        if not dead:
            return parts
        rest = _StatisticsParts.of(X, q, self.components,
                                   [(type(self.components[k]), (k,)) for k in dead])
        return _StatisticsParts(groups=parts.groups + rest.groups)

    @classmethod
    def from_statistics(cls, stats: MixtureStatistics, prior: Any = None, *,
                        fallback: MixtureModel | None = None) -> MixtureModel:
        """The maximum-likelihood M-step: π_k = N_k / N, θ_k from component k's statistics.

        Parameters
        ----------
        stats : MixtureStatistics
            Accumulated statistics.
        prior : object or mapping, optional
            Passed to every family's ``from_statistics_many`` (e.g. a ``CovarianceRidge``);
            a mapping ``{family: prior}`` gives each family its own.
        fallback : MixtureModel, optional
            A component whose mass N_k is (numerically) zero cannot be re-estimated; with a
            fallback it keeps the fallback's parameters (its weight is ~0, so it no longer
            affects the fit). Without one, such a component raises ``ValueError``.

        Raises
        ------
        ValueError
            A component without mass and no fallback, or a component whose estimate is
            singular (the message names the component and the remedy).
        """
        masses = np.asarray(stats.masses, dtype=float)
        dead = masses <= 1e-12 * masses.sum()
        if np.any(dead) and fallback is None:
            k = int(np.flatnonzero(dead)[0])
            raise ValueError(f"component {k} has no responsibility mass (N_k = {masses[k]:.3g})"
                             ": use fewer components or a different initialisation")
        weights = np.where(dead, 0.0, masses) / masses.sum()
        return cls(weights=weights,
                   components=update_components(stats, prior, estimate=~dead, current=fallback))

    def components_log_prior(self, prior: Any) -> float:
        """Σ log p(θ_k) under a component prior, each family scoring its own components."""
        return sum(family.log_prior_many([self.components[k] for k in idx],
                                         prior_for(prior, family))
                   for family, idx in _groups([type(c) for c in self.components]).items())

    @classmethod
    def from_statistics_many(cls, stats: Sequence[Any], prior: Any = None, *,
                             fixed: Sequence[frozenset[str]] | None = None,
                             current: Sequence[Any] | None = None) -> list[MixtureModel]:
        """Nested mixtures: one inner M-step each, inner components without mass keeping the
        current parameters (as at the outer level)."""
        if fixed is not None and any(fixed):
            return super().from_statistics_many(stats, prior, fixed=fixed, current=current)
        return [cls.from_statistics(s, prior, fallback=None if current is None else current[i])
                for i, s in enumerate(stats)]

    def expected_log_joint(self, stats: MixtureStatistics) -> float | None:
        """Σ_i Σ_k w_i q_ik (log π_k + log p_k(x_i)) from statistics, or None if a family lacks
        :meth:`~probmix.Distribution.expected_log_prob`."""
        total = 0.0
        for k, comp in enumerate(self.components):
            n_k = float(stats.masses[k])
            if n_k <= 0:
                continue
            try:
                total += n_k * float(self.log_weights[k]) + comp.expected_log_prob(
                    stats.components[k])
            except NotImplementedError:
                return None
        return total

    def sample(self, n_samples: int, rng: Any = None) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[override]
        """Draw ``n_samples`` rows and their component labels, in random order.

        ``rng`` is a ``numpy.random.Generator``, an int seed or ``None``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        labels : ndarray of shape (n_samples,)
        """
        if isinstance(n_samples, (bool, np.bool_)) or not isinstance(n_samples, (int, np.integer)):
            raise TypeError(f"n_samples must be an int, got {type(n_samples).__name__}")
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        rng = as_rng(rng)
        counts = rng.multinomial(n_samples, self.weights)
        labels = np.repeat(np.arange(self.n_components), counts)
        X = np.concatenate([_rows(c.sample(int(m), rng))
                            for c, m in zip(self.components, counts)])
        order = rng.permutation(n_samples)
        return X[order], labels[order]

    # -- model selection ------------------------------------------------------------------------
    def bic(self, X: Any, sample_weight: Any = None, *, missing: str = "raise") -> float:
        """Bayesian information criterion −2 log p(X|θ) + n_parameters · log n (lower is better);
        with ``missing="marginalize"``, p(X|θ) is the density of the observed entries."""
        ll, n = self._total_log_likelihood(X, sample_weight, missing)
        return -2.0 * ll + self.n_parameters * math.log(n)

    def aic(self, X: Any, sample_weight: Any = None, *, missing: str = "raise") -> float:
        """Akaike information criterion −2 log p(X|θ) + 2 n_parameters (lower is better);
        ``missing`` as for :meth:`bic`."""
        ll, _ = self._total_log_likelihood(X, sample_weight, missing)
        return -2.0 * ll + 2.0 * self.n_parameters

    def _total_log_likelihood(self, X: Any, sample_weight: Any,
                              missing: str = "raise") -> tuple[float, float]:
        X = self._validated(X, missing)
        w = check_sample_weight(sample_weight, X.shape[0])
        return float(w @ logsumexp_rows(self._log_joint(X))), float(w.sum())


def _rows(sample: Any) -> np.ndarray:
    """The rows of a component's sample (a nested mixture also returns its labels)."""
    return sample[0] if isinstance(sample, tuple) else sample


def prior_for(prior: Any, family: type[Distribution]) -> Any:
    """The component prior a family gets: ``prior`` itself, or, for a mapping
    ``{family: prior}`` (heterogeneous mixtures), the entry of the family or of its nearest
    base class (``None`` if there is none)."""
    if not isinstance(prior, Mapping):
        return prior
    for base in family.__mro__:
        if base in prior:
            return prior[base]
    return None


def update_components(stats: MixtureStatistics, prior: Any = None, *,
                      estimate: np.ndarray | None = None,
                      fixed: Sequence[frozenset[str]] | None = None,
                      current: MixtureModel | None = None) -> list[Distribution]:
    """The components' M-step: each family's ``from_statistics_many`` on its components.

    Parameters
    ----------
    estimate : ndarray of bool, shape (n_components,), optional
        Components to re-estimate; the others keep ``current``'s parameters (components
        without responsibility mass, or about to be pruned).
    fixed : sequence of frozenset of str, optional
        Per component, the parameter groups held at ``current``'s values.
    current : MixtureModel, optional
        The model the statistics were computed under.

    Raises
    ------
    SingularCovarianceError
        Naming the component, its mass and the remedy, when an estimate is singular.
    """
    K = len(stats.components)
    estimate = np.ones(K, dtype=bool) if estimate is None else np.asarray(estimate, dtype=bool)
    held = [frozenset()] * K if fixed is None else list(fixed)
    if current is None and (not estimate.all() or any(held)):
        raise ValueError("keeping or fixing components needs the current model")
    masses = np.asarray(stats.masses, dtype=float)
    out: list[Distribution | None] = [None] * K
    for family, idx in _groups(stats.families).items():
        live = [k for k in idx if estimate[k]]
        if live:
            try:
                fitted = family.from_statistics_many(
                    [stats.components[k] for k in live], prior_for(prior, family),
                    fixed=[held[k] for k in live],
                    current=None if current is None else [current.components[k] for k in live])
            except SingularCovarianceError as exc:
                local = getattr(exc, "component", None)
                named = [live[local]] if local is not None else live
                what = (f"component {named[0]}" if len(named) == 1
                        else f"components {named}")
                raise SingularCovarianceError(
                    f"{what} collapsed ({exc}) with responsibility mass "
                    f"{', '.join(f'{masses[k]:.3g}' for k in named[:8])} of "
                    f"{masses.sum():.3g}. Increase reg_covar, decrease n_components, or scale "
                    "the data."
                ) from None
            for k, comp in zip(live, fitted):
                out[k] = comp
        for k in idx:
            if not estimate[k]:
                assert current is not None
                out[k] = current.components[k]
    return [c for c in out if c is not None]


def _groups(families: Sequence[type[Distribution]]) -> dict[type[Distribution], list[int]]:
    """Component indices grouped by family, in order of first appearance."""
    out: dict[type[Distribution], list[int]] = {}
    for k, f in enumerate(families):
        out.setdefault(f, []).append(k)
    return out
