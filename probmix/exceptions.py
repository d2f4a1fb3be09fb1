"""Exceptions and warnings raised by probmix."""

from __future__ import annotations

__all__ = [
    "ConvergenceWarning",
    "DegenerateComponentWarning",
    "NotFittedError",
    "ObjectiveDecreaseWarning",
    "SingularCovarianceError",
]


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before the objective changed by less than ``tol``."""


class ObjectiveDecreaseWarning(RuntimeWarning):
    """The objective an E-step guarantees not to decrease went down beyond round-off.

    With exact E- and M-steps this cannot happen, so it points at a bug in a family's
    ``from_statistics``, a regulariser that is not a prior (such as ``reg_covar``), or
    severe ill-conditioning.
    """


class DegenerateComponentWarning(UserWarning):
    """A component lost (almost) all of its responsibility mass during EM."""


class NotFittedError(ValueError, AttributeError):
    """An estimator was used before ``fit``.

    Inherits from ``ValueError`` and ``AttributeError`` like scikit-learn's error of the
    same name, so code written for either catches it.
    """


class SingularCovarianceError(ValueError):
    """A covariance matrix is not symmetric positive definite (its Cholesky factor failed)."""
