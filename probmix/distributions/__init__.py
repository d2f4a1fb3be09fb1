"""Component families and covariance structures."""

from .base import Distribution, Statistics
from .covariance import (
    CovarianceStructure,
    DiagonalCovariance,
    FullCovariance,
    SphericalCovariance,
)
from .gaussian import (
    DiagonalNormal,
    Gaussian,
    GaussianStatistics,
    MultivariateNormal,
    SphericalNormal,
    TiedNormal,
)

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
]
