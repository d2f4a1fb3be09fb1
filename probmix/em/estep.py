"""E-step strategies: which q(c) to use given the current model.

Each strategy maps the posterior of a chunk of rows to a distribution ``q`` over components
and says which objective EM with it never decreases. With the exact posterior (``SoftEStep``)
``KL(q ‖ p(c|x,θ)) = 0`` and the bound ``L(q, θ)`` touches the log-likelihood, so the
log-likelihood itself never decreases.
"""

from __future__ import annotations

import abc
import itertools
from typing import Any, ClassVar

import attrs
import numpy as np

from ..mixture import Posterior

__all__ = ["EStep", "SoftEStep", "HardEStep", "StochasticEStep", "AnnealedEStep"]


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
    #: whether it draws from the fit's generator; if so EMAlgorithm feeds it the chunks in
    #: order on one thread, so the random stream (and the fit) does not depend on threads.
    #: Conservatively True for new strategies.
    uses_rng: ClassVar[bool] = True
    # (n_samples, n_components) arrays a call allocates besides the posterior's: sizes the
    # EM pass's chunks to its memory budget (conservative for new strategies)
    _n_arrays: ClassVar[int] = 4

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
    uses_rng: ClassVar[bool] = False
    _n_arrays: ClassVar[int] = 0  # q is the posterior's own array

    def __call__(self, posterior: Posterior, *, iteration: int, stage: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return posterior.resp, posterior.log_evidence


def _one_hot(labels: np.ndarray, n_components: int) -> np.ndarray:
    q = np.zeros((labels.size, n_components))
    q[np.arange(labels.size), labels] = 1.0
    return q


@attrs.frozen
class HardEStep(EStep):
    """Classification EM (CEM): q_ik = 1 for k = argmax_j log π_j p_j(x_i), else 0.

    Guarantees that the classification log-likelihood Σ_i w_i max_k log(π_k p_k(x_i)) (plus the
    log-prior with MAP) never decreases: the C-step picks the best labels for θ, the M-step the
    best θ for those labels. It converges in finitely many steps to a partition, typically
    faster than soft EM and with more biased estimates when components overlap.
    """

    objective_name: ClassVar[str] = "classification log-likelihood"
    uses_rng: ClassVar[bool] = False
    _n_arrays: ClassVar[int] = 2  # log q, then a one-hot q

    def __call__(self, posterior: Posterior, *, iteration: int, stage: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        labels = np.argmax(posterior.log_resp, axis=1)
        objective = posterior.log_joint[np.arange(labels.size), labels]
        return _one_hot(labels, posterior.log_joint.shape[1]), objective


@attrs.frozen
class StochasticEStep(EStep):
    """Stochastic EM (SEM): each label c_i is drawn from the posterior p(c_i | x_i, θ) with the
    fit's random generator, and q_i is its one-hot vector.

    No monotone guarantee: the trace of the log-likelihood (reported as the objective) is
    random and fluctuates around a stationary regime, which helps escape poor local optima.
    ``EMAlgorithm`` therefore runs it for exactly ``max_iter`` iterations (a small change is
    chance, not convergence) without a ConvergenceWarning; use it e.g. as a warm-up before
    soft EM.
    """

    objective_name: ClassVar[str] = "log-likelihood"
    monotone: ClassVar[bool] = False

    def __call__(self, posterior: Posterior, *, iteration: int, stage: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        resp = np.exp(posterior.log_resp)
        cumulative = np.cumsum(resp, axis=1)
        u = rng.uniform(size=(resp.shape[0], 1)) * cumulative[:, -1:]
        labels = np.minimum((cumulative < u).sum(axis=1), resp.shape[1] - 1)
        return _one_hot(labels, resp.shape[1]), posterior.log_evidence


def _betas(value: Any) -> tuple[float, ...]:
    betas = tuple(float(b) for b in np.atleast_1d(np.asarray(value, dtype=float)))
    if not betas or not all(0 < b <= 1 for b in betas):
        raise ValueError(f"betas must lie in (0, 1], got {betas}")
    if any(b2 <= b1 for b1, b2 in itertools.pairwise(betas)):
        raise ValueError(f"betas must increase, got {betas}")
    if betas[-1] != 1.0:
        betas = (*betas, 1.0)  # the schedule ends at the true posterior
    return betas


@attrs.frozen
class AnnealedEStep(EStep):
    r"""Deterministic annealing: q_ik ∝ (π_k p_k(x_i))^β with β rising to 1 over stages.

    At fixed β the E-step maximises the free energy
    :math:`F_\beta(q, \theta) = \sum_i w_i \sum_k q_{ik} \log \pi_k p_k(x_i)
    + \frac1\beta H(q_i)`, whose maximum over q is
    :math:`\frac1\beta \sum_i w_i \log \sum_k (\pi_k p_k(x_i))^\beta`; the M-step maximises the
    same F_β over θ. So that free energy never decreases **at each fixed β** (one stage per β),
    and at β = 1 it is the log-likelihood. Small β flattens the posterior and smooths away
    poor local optima early on.

    A heuristic, not a guarantee of the global optimum: at small β components with free
    covariances can merge into near-identical copies (a fixed point by symmetry), and later
    stages may not split them again. Start with β near the critical temperature (e.g.
    ``betas=(0.5, 0.75, 1.0)``) or from a spread-out initialisation.

    Parameters
    ----------
    betas : sequence of float, default=(0.2, 0.4, 0.6, 0.8, 1.0)
        Increasing inverse temperatures in (0, 1]; 1 is appended if missing. EM runs to
        convergence (``tol``) at each before moving to the next.
    """

    objective_name: ClassVar[str] = "free energy at fixed beta"
    uses_rng: ClassVar[bool] = False
    _n_arrays: ClassVar[int] = 3  # β log(π p), its exp, q
    betas: tuple[float, ...] = attrs.field(default=(0.2, 0.4, 0.6, 0.8, 1.0), converter=_betas)

    @property
    def n_stages(self) -> int:
        return len(self.betas)

    def __call__(self, posterior: Posterior, *, iteration: int, stage: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        beta = self.betas[stage]
        scaled = beta * posterior.log_joint
        shift = np.max(scaled, axis=1)
        shift[~np.isfinite(shift)] = 0.0
        with np.errstate(divide="ignore"):
            log_norm = np.log(np.sum(np.exp(scaled - shift[:, None]), axis=1))
        q = np.exp(scaled - (shift + log_norm)[:, None])
        lost = ~np.isfinite(log_norm)
        if np.any(lost):  # rows whose density underflows everywhere: the posterior's fallback
            q[lost] = np.exp(posterior.log_resp[lost])
        return q, (shift + log_norm) / beta
