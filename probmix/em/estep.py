"""E-step strategies: which q(c) to use given the current model.

Each strategy maps the posterior of a chunk of rows to a distribution ``q`` over components
and says which objective EM with it never decreases. With the exact posterior (``SoftEStep``)
``KL(q ‖ p(c|x,θ)) = 0`` and the bound ``L(q, θ)`` touches the log-likelihood, so the
log-likelihood itself never decreases.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import attrs
import numpy as np

from ..mixture import Posterior

__all__ = ["EStep", "SoftEStep"]


class EStep(abc.ABC):
    """Interface of an E-step strategy.

    Subclasses are small frozen values. ``__call__`` gets the posterior of one chunk of rows,
    the iteration number, the current *stage* and the fit's random generator (for stochastic
    variants), and returns ``q`` and the per-row value of the objective the strategy
    guarantees not to decrease.

    Stages serve schedules such as deterministic annealing, whose objective changes with the
    temperature: ``EMAlgorithm`` compares objectives only within a stage, and when EM
    converges in stage s < ``n_stages`` − 1 it moves on to stage s + 1 instead of stopping.
    """

    #: name of the objective reported in the history (e.g. "log-likelihood")
    objective_name: ClassVar[str]
    #: whether EM with this E-step (and an exact M-step) never decreases that objective
    monotone: ClassVar[bool] = True

    @property
    def n_stages(self) -> int:
        """Number of stages (1 unless the strategy follows a schedule)."""
        return 1

    @abc.abstractmethod
    def __call__(self, posterior: Posterior, *, iteration: int, stage: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Return ``q`` of shape (n_samples, n_components) and the objective per row."""


@attrs.frozen
class SoftEStep(EStep):
    """Classic EM: q_ik = p(c_i = k | x_i, θ), the exact posterior (KL = 0).

    Guarantees the log-likelihood log p(X | θ) (plus the log-prior with a MAP M-step) never
    decreases.
    """

    objective_name: ClassVar[str] = "log-likelihood"

    def __call__(self, posterior: Posterior, *, iteration: int, stage: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return np.exp(posterior.log_resp), posterior.log_evidence
