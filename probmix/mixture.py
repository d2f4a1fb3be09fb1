"""``MixtureModel``: mixture weights π and components p_k, as one frozen value.

    p(x | θ) = Σ_k π_k p_k(x | θ_k),      p(c = k | x, θ) = π_k p_k(x | θ_k) / p(x | θ)

Everything here is in log space: the log-joint log π_k + log p_k(x_i) is an (n, K) array and
the evidence log p(x_i) its log-sum-exp over k.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import numpy as np

from ._validation import as_rng, check_data, check_sample_weight, readonly
from .distributions.base import Distribution, Statistics
from .exceptions import SingularCovarianceError

__all__ = ["MixtureModel", "MixtureStatistics", "Posterior", "update_components"]

_array_eq = attrs.cmp_using(eq=np.array_equal)


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
    return readonly(w / w.sum())


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
        """
        families = tuple(c if isinstance(c, type) else type(c) for c in components)
        # A class here has a classmethod sufficient_statistics (see the Distribution contract).
        stats = tuple(c.sufficient_statistics(X, q[:, k])  # type: ignore[call-arg,arg-type]
                      for k, c in enumerate(components))
        return cls(masses=q.sum(axis=0, dtype=np.float64), components=stats, families=families)

    def __add__(self, other: MixtureStatistics) -> MixtureStatistics:
        if not isinstance(other, MixtureStatistics):
            return NotImplemented
        return MixtureStatistics(
            masses=self.masses + other.masses,
            components=tuple(a + b for a, b in zip(self.components, other.components)),
            families=self.families)


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
    log_resp: np.ndarray
    log_evidence: np.ndarray


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

    def log_joint(self, X: Any) -> np.ndarray:
        """log π_k + log p_k(x_i), an ndarray of shape (n_samples, n_components).

        Components of zero weight get -inf without being evaluated.
        """
        X = check_data(X, n_features=self.n_features, expected_by="the model has")
        self.check_support(X)
        return self._log_joint(X)

    def check_support(self, X: np.ndarray) -> None:
        """Every component's support check (components of one family may differ in support,
        e.g. categoricals with different numbers of categories)."""
        for c in self.components:
            c.check_support(X)

    def _log_joint(self, X: np.ndarray) -> np.ndarray:
        """:meth:`log_joint` for data already validated (the EM loop checks X once)."""
        # float32 data is scored in float32 (as scikit-learn does); all else in float64
        out = np.full((X.shape[0], self.n_components), -np.inf,
                      dtype=X.dtype if X.dtype == np.float32 else np.float64)
        for k, c in enumerate(self.components):
            if self.weights[k] > 0:
                out[:, k] = self.log_weights[k] + c.log_prob(X)
        return out

    def posterior(self, X: Any) -> Posterior:
        """Log-joint, log-responsibilities and log-evidence of the rows of ``X`` in one go."""
        return self._posterior(self.log_joint(X))

    def _posterior(self, log_joint: np.ndarray) -> Posterior:
        # Normalise the *shifted* row (a − max a): subtracting log p(x) from log π + log p_k
        # instead loses the normaliser when |log p(x)| ~ 1e17 (a row far out), where adding
        # log 2 no longer changes the float, and the responsibilities then sum to 2.
        shift = np.max(log_joint, axis=1)
        shift[~np.isfinite(shift)] = 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            shifted = log_joint - shift[:, None]
            log_norm = np.log(np.sum(np.exp(shifted), axis=1))
            log_resp = shifted - log_norm[:, None]
        log_evidence = shift + log_norm
        lost = ~np.isfinite(log_evidence)
        if np.any(lost):
            # The density underflows to zero under every component (a point extremely far
            # from all of them): the likelihood carries no information, so the posterior is
            # the prior π. Keeps responsibilities finite and normalised.
            log_resp[lost] = self.log_weights
        return Posterior(log_joint, log_resp, log_evidence)

    def log_prob(self, X: Any) -> np.ndarray:
        """log p(x_i | θ) = logsumexp_k(log π_k + log p_k(x_i)), shape (n_samples,)."""
        return logsumexp_rows(self.log_joint(X))

    def responsibilities(self, X: Any) -> np.ndarray:
        """Posterior q_ik = p(c_i = k | x_i, θ), shape (n_samples, n_components); rows sum to 1."""
        return np.exp(self.posterior(X).log_resp)

    def sufficient_statistics(self, X: np.ndarray, weights: np.ndarray) -> MixtureStatistics:
        """Expected statistics under the posterior: the E-step of a nested mixture."""
        q = self.responsibilities(X) * np.asarray(weights, dtype=float)[:, None]
        return self.component_statistics(X, q)

    def component_statistics(self, X: np.ndarray, q: np.ndarray) -> MixtureStatistics:
        """Statistics of ``X`` with column k of ``q`` (n, K) as the weights of component k."""
        return MixtureStatistics.of(X, q, self.components)

    @classmethod
    def from_statistics(cls, stats: MixtureStatistics, prior: Any = None, *,
                        fallback: MixtureModel | None = None) -> MixtureModel:
        """The maximum-likelihood M-step: π_k = N_k / N, θ_k from component k's statistics.

        Parameters
        ----------
        stats : MixtureStatistics
            Accumulated statistics.
        prior : object, optional
            Passed to every family's ``from_statistics_many`` (e.g. a ``CovarianceRidge``).
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
        return sum(family.log_prior_many([self.components[k] for k in idx], prior)
                   for family, idx in _groups([type(c) for c in self.components]).items())

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
        X = np.concatenate([c.sample(int(m), rng) for c, m in zip(self.components, counts)])
        order = rng.permutation(n_samples)
        return X[order], labels[order]

    # -- model selection ------------------------------------------------------------------------
    def bic(self, X: Any, sample_weight: Any = None) -> float:
        """Bayesian information criterion −2 log p(X|θ) + n_parameters · log n (lower is better)."""
        ll, n = self._total_log_likelihood(X, sample_weight)
        return -2.0 * ll + self.n_parameters * math.log(n)

    def aic(self, X: Any, sample_weight: Any = None) -> float:
        """Akaike information criterion −2 log p(X|θ) + 2 n_parameters (lower is better)."""
        ll, _ = self._total_log_likelihood(X, sample_weight)
        return -2.0 * ll + 2.0 * self.n_parameters

    def _total_log_likelihood(self, X: Any, sample_weight: Any) -> tuple[float, float]:
        X = check_data(X, n_features=self.n_features, expected_by="the model has")
        w = check_sample_weight(sample_weight, X.shape[0])
        return float(w @ self.log_prob(X)), float(w.sum())


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
                    [stats.components[k] for k in live], prior,
                    fixed=[held[k] for k in live],
                    current=None if current is None else [current.components[k] for k in live])
            except SingularCovarianceError as exc:
                local = getattr(exc, "component", None)
                names = (f"component {live[local]}" if local is not None
                         else f"components {live}")
                raise SingularCovarianceError(
                    f"{names} collapsed ({exc}) with responsibility mass "
                    f"{', '.join(f'{masses[k]:.3g}' for k in live[:8])} of {masses.sum():.3g}. "
                    "Increase reg_covar, decrease n_components, or scale the data."
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
