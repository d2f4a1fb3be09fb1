"""Component families and covariance structures."""

from ._common import refine
from .base import Distribution, Statistics
from .bernoulli import Bernoulli, BernoulliStatistics
from .categorical import Categorical, CategoricalStatistics
from .covariance import (
    CovarianceStructure,
    DiagonalCovariance,
    FullCovariance,
    SphericalCovariance,
)
from .exponential import Exponential, ExponentialStatistics
from .gaussian import (
    DiagonalNormal,
    Gaussian,
    GaussianStatistics,
    MultivariateNormal,
    SphericalNormal,
    TiedNormal,
)
from .independent import IndependentComponents, IndependentStatistics
from .poisson import Poisson, PoissonStatistics
from .student_t import StudentT, StudentTStatistics

__all__ = [
    "Distribution",
    "Statistics",
    "CovarianceStructure",
    "FullCovariance",
    "DiagonalCovariance",
    "SphericalCovariance",
    "Gaussian",
    "MultivariateNormal",
    "DiagonalNormal",
    "SphericalNormal",
    "TiedNormal",
    "GaussianStatistics",
    "Poisson",
    "PoissonStatistics",
    "Bernoulli",
    "BernoulliStatistics",
    "Categorical",
    "CategoricalStatistics",
    "Exponential",
    "ExponentialStatistics",
    "StudentT",
    "StudentTStatistics",
    "IndependentComponents",
    "IndependentStatistics",
    "refine",
]
