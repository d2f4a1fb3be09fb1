"""probmix: mixture models fitted by Expectation-Maximization.

The three roles of EM: a :class:`Distribution` (a component family), a :class:`MixtureModel`
(weights and components) and an :class:`EMAlgorithm` (E-step, M-step, stopping rule, history).
:class:`GMM` is the scikit-learn-style Gaussian mixture built from them.
"""

from .distributions.base import Distribution, Statistics
from .em import EMAlgorithm, EMResult, MaximumLikelihood, OnlineEM, SoftEStep
from .exceptions import (
    ConvergenceWarning,
    DegenerateComponentWarning,
    NotFittedError,
    ObjectiveDecreaseWarning,
    SingularCovarianceError,
)
from .gmm import GMM
from .mixture import MixtureModel

__version__ = "0.1.0"

__all__ = [
    "Distribution",
    "Statistics",
    "MixtureModel",
    "EMAlgorithm",
    "EMResult",
    "OnlineEM",
    "SoftEStep",
    "MaximumLikelihood",
    "GMM",
    "ConvergenceWarning",
    "DegenerateComponentWarning",
    "NotFittedError",
    "ObjectiveDecreaseWarning",
    "SingularCovarianceError",
    "__version__",
]
