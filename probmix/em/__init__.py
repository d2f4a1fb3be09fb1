"""The EM loop and its strategies."""

from .algorithm import EMAlgorithm, EMResult, History, IterationRecord
from .estep import EStep, SoftEStep
from .mstep import MaximumLikelihood, MStep

__all__ = [
    "EMAlgorithm",
    "EMResult",
    "History",
    "IterationRecord",
    "EStep",
    "SoftEStep",
    "MStep",
    "MaximumLikelihood",
]
