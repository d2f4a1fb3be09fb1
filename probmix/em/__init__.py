"""The EM loop and its strategies."""

from .algorithm import (
    EMAlgorithm,
    EMResult,
    History,
    IterationRecord,
    labels_to_responsibility_prior,
)
from .estep import AnnealedEStep, EStep, HardEStep, SoftEStep, StochasticEStep
from .mstep import MAP, MaximumLikelihood, MStep
from .online import EpochRecord, OnlineEM, OnlineEMResult, OnlineEMState, OnlineHistory

__all__ = [
    "EMAlgorithm",
    "EMResult",
    "History",
    "IterationRecord",
    "labels_to_responsibility_prior",
    "EStep",
    "SoftEStep",
    "HardEStep",
    "StochasticEStep",
    "AnnealedEStep",
    "MStep",
    "MaximumLikelihood",
    "MAP",
    "OnlineEM",
    "OnlineEMState",
    "OnlineEMResult",
    "OnlineHistory",
    "EpochRecord",
]
