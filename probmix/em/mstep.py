r"""M-step strategies: new parameters θ from the statistics the E-step's q produced.

Both strategies here are closed-form: the weights maximise Σ_k N_k log π_k (+ log p(π)) on the
simplex, and each family re-estimates its components from their statistics (with the
component prior, if any). Either can hold parameters fixed:

- ``fixed_weights``: the weights of some (or all) components keep their current values; the
  free ones share the mass 1 − Σ_fixed π_k in proportion to their own update (the constrained
  maximiser, by a Lagrange multiplier on the free weights);
- ``fixed_components``: ``{k: "all"}`` keeps component k as it is, ``{k: "mean"}`` holds a
  Gaussian's mean (its covariance is re-estimated about that mean), ``{k: "covariance"}``
  holds its covariance. Combinations without a closed form raise ``ValueError``.

Indices k refer to the components of the initial model (they survive pruning).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from ..mixture import MixtureModel, MixtureStatistics, update_components
from ..priors import Dirichlet

__all__ = ["MStep", "MaximumLikelihood", "MAP"]


class MStep(abc.ABC):
    """Interface of an M-step strategy: maximise L(q, θ) (+ log p(θ)) over θ with q fixed."""

    #: whether components whose weight the update sets to exactly 0 leave the model
    prunes: bool = False

    @abc.abstractmethod
    def __call__(self, stats: MixtureStatistics, previous: MixtureModel, *,
                 ids: np.ndarray | None = None) -> MixtureModel:
        """New model from the accumulated statistics.

        ``previous`` is the model the statistics were computed under; ``ids`` the indices of
        its components in the initial model (they differ once components were pruned).
        """

    def log_prior(self, model: MixtureModel, *, ids: np.ndarray | None = None) -> float:
        """log p(θ), added to the monitored objective (0 for maximum likelihood)."""
        return 0.0

    def max_decrease(self, model: MixtureModel) -> float:
        """How much an inexact update (such as a ridge) may lower the per-sample objective
        in the step that produced ``model``; 0 for an exact M-step."""
        return 0.0

    def check(self, init: MixtureModel) -> None:  # noqa: B027  # optional hook, no-op default
        """Validate the strategy against the initial model before EM starts."""


def _fixed_weights(value: Any) -> bool | frozenset[int]:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    try:
        return frozenset(int(k) for k in value)
    except (TypeError, ValueError):
        raise TypeError("fixed_weights must be a bool or a collection of component indices, "
                        f"got {value!r}") from None


def _fixed_components(value: Any) -> Mapping[int, frozenset[str]]:
    if not isinstance(value, Mapping):
        raise TypeError("fixed_components must be a mapping {component index: 'all' or "
                        f"parameter names}}, got {type(value).__name__}")
    out = {}
    for k, names in value.items():
        held = frozenset([names] if isinstance(names, str) else names)
        if not held or not all(isinstance(n, str) for n in held):
            raise ValueError(f"fixed_components[{k}] must be 'all' or parameter names, got "
                             f"{names!r}")
        out[int(k)] = held
    return out


@attrs.frozen(kw_only=True)
class _ClosedForm(MStep):
    component_prior: Any = None
    fixed_weights: bool | frozenset[int] = attrs.field(default=False, converter=_fixed_weights)
    fixed_components: Mapping[int, frozenset[str]] = attrs.field(
        factory=dict, converter=_fixed_components)

    @abc.abstractmethod
    def _weight_update(self, masses: np.ndarray, free: np.ndarray,
                       ids: np.ndarray) -> np.ndarray:
        """Unconstrained update of the free weights, normalised over them."""

    def __call__(self, stats: MixtureStatistics, previous: MixtureModel, *,
                 ids: np.ndarray | None = None) -> MixtureModel:
        K = previous.n_components
        ids = np.arange(K) if ids is None else np.asarray(ids)
        masses = np.asarray(stats.masses, dtype=float)
        held = (np.ones(K, dtype=bool) if self.fixed_weights is True else
                np.isin(ids, list(self.fixed_weights or ())))
        weights = np.asarray(previous.weights, dtype=float).copy()
        if not held.all():
            left = 1.0 - weights[held].sum()
            weights[~held] = left * self._weight_update(masses, ~held, ids)[~held]
        # Components without mass cannot be re-estimated; they keep their parameters (at
        # weight ~0, or about to be pruned).
        estimate = (masses > 1e-12 * masses.sum()) & (weights > 0)
        fixed = [self.fixed_components.get(int(i), frozenset()) for i in ids]
        components = update_components(stats, self.component_prior, estimate=estimate,
                                       fixed=fixed, current=previous)
        return MixtureModel(weights=weights, components=components)

    def log_prior(self, model: MixtureModel, *, ids: np.ndarray | None = None) -> float:
        return model.components_log_prior(self.component_prior)

    def check(self, init: MixtureModel) -> None:
        K = init.n_components
        named = set(self.fixed_components) | (set(self.fixed_weights)
                                              if isinstance(self.fixed_weights, frozenset)
                                              else set())
        bad = sorted(k for k in named if not 0 <= k < K)
        if bad:
            raise ValueError(f"fixed_components/fixed_weights name component(s) {bad}, but the "
                             f"initial model has {K} components (indices 0..{K - 1})")

    def max_decrease(self, model: MixtureModel) -> float:
        bound = getattr(self.component_prior, "max_decrease", None)
        return 0.0 if bound is None else float(bound(model.components))


@attrs.frozen(kw_only=True)
class MaximumLikelihood(_ClosedForm):
    r"""π_k = N_k / N and each component's weighted MLE from its statistics.

    Guarantees (with an exact E-step) that the log-likelihood never decreases.

    Parameters
    ----------
    component_prior : object, optional
        Handed to every family's ``from_statistics`` as ``prior``. For maximum likelihood
        this is a regulariser such as :class:`~probmix.priors.CovarianceRidge`, which is not
        part of the objective (see its docstring); a true prior belongs in :class:`MAP`.
    fixed_weights : bool or collection of int, default=False
        Hold all weights (``True``) or those of the listed components fixed.
    fixed_components : mapping, default={}
        ``{k: "all" | parameter name(s)}``: parameters of component k held fixed.
    """

    def _weight_update(self, masses: np.ndarray, free: np.ndarray,
                       ids: np.ndarray) -> np.ndarray:
        # a component without mass gets weight exactly 0 (it is kept, not pruned)
        free_mass = np.where(free & (masses > 1e-12 * masses.sum()), masses, 0.0)
        return free_mass / free_mass.sum()


@attrs.frozen(kw_only=True)
class MAP(_ClosedForm):
    r"""Maximum a posteriori: maximise L(q, θ) + log p(θ).

    Weights at the Dirichlet posterior mode π_k ∝ max(N_k + α_k − 1, 0); components by their
    family's MAP update under ``component_prior`` (e.g.
    :class:`~probmix.priors.NormalInverseWishart`). With α_k < 1 a component whose mass
    N_k + α_k − 1 falls to 0 or below gets weight exactly 0 and is **pruned** by
    :class:`~probmix.EMAlgorithm` (recorded in the history).

    Guarantees (with an exact E-step) that the log-posterior log p(X | θ) + log p(θ) never
    decreases while the number of components stays the same; a pruning step changes the
    model's dimension (and the prior's support), so the objective is compared afresh after it.
    With α = 1 and no component prior it is exactly :class:`MaximumLikelihood`.

    Parameters
    ----------
    weights_prior : Dirichlet, optional
        Prior on π (``None``: flat, i.e. the maximum-likelihood weights).
    component_prior : object, optional
        Prior on each component, understood by its family.
    fixed_weights, fixed_components
        As for :class:`MaximumLikelihood`.
    """

    weights_prior: Dirichlet | None = attrs.field(default=None)

    @weights_prior.validator
    def _check_prior(self, attribute: Any, value: Any) -> None:
        if value is not None and not isinstance(value, Dirichlet):
            raise TypeError(f"weights_prior must be a Dirichlet, got {type(value).__name__}")

    @property
    def prunes(self) -> bool:  # type: ignore[override]
        return self.weights_prior is not None

    def _alpha(self, ids: np.ndarray) -> Dirichlet | None:
        """The prior restricted to the components still present (by their initial ids)."""
        if self.weights_prior is None or self.weights_prior.alpha.ndim == 0:
            return self.weights_prior
        return self.weights_prior.restricted(ids)

    def _weight_update(self, masses: np.ndarray, free: np.ndarray,
                       ids: np.ndarray) -> np.ndarray:
        prior = self._alpha(ids)
        if prior is None:
            free_mass = np.where(free, masses, 0.0)
            return free_mass / free_mass.sum()
        return prior.mode(masses, free=free)

    def log_prior(self, model: MixtureModel, *, ids: np.ndarray | None = None) -> float:
        ids = np.arange(model.n_components) if ids is None else np.asarray(ids)
        prior = self._alpha(ids)
        weights_term = 0.0 if prior is None else prior.log_prob(model.weights)
        return weights_term + super().log_prior(model, ids=ids)
