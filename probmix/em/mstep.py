"""M-step strategies: new parameters θ from the statistics the E-step's q produced."""

from __future__ import annotations

import abc
from typing import Any

import attrs

from ..mixture import MixtureModel, MixtureStatistics

__all__ = ["MStep", "MaximumLikelihood"]


class MStep(abc.ABC):
    """Interface of an M-step strategy: maximise L(q, θ) (+ log p(θ)) over θ with q fixed."""

    @abc.abstractmethod
    def __call__(self, stats: MixtureStatistics, previous: MixtureModel | None) -> MixtureModel:
        """New model from the accumulated statistics.

        ``previous`` is the model the statistics were computed under (``None`` when starting
        from responsibilities); strategies use it for components that lost all their mass.
        """

    def log_prior(self, model: MixtureModel) -> float:
        """log p(θ), added to the monitored objective (0 for maximum likelihood)."""
        return 0.0


@attrs.frozen(kw_only=True)
class MaximumLikelihood(MStep):
    """π_k = N_k / N and each component's weighted MLE from its statistics.

    Parameters
    ----------
    component_prior : object, optional
        Handed to every family's ``from_statistics`` as ``prior``; for maximum likelihood this
        is a regulariser such as :class:`~probmix.priors.CovarianceRidge`. Its effect is not
        part of the objective (see the ridge's docstring).
    """

    component_prior: Any = None

    def __call__(self, stats: MixtureStatistics, previous: MixtureModel | None) -> MixtureModel:
        return MixtureModel.from_statistics(stats, self.component_prior, fallback=previous)
