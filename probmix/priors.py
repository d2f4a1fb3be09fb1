"""Priors and regularisers for the M-step.

Only the covariance ridge lives here for now; conjugate priors (Dirichlet on the weights,
Normal-Inverse-Wishart on Gaussian components) make the M-step a MAP update.
"""

from __future__ import annotations

import attrs

from ._validation import check_scalar

__all__ = ["CovarianceRidge"]


@attrs.frozen(kw_only=True)
class CovarianceRidge:
    """Add ``reg_covar`` to the diagonal of every estimated covariance: Σ = S / N + reg·I.

    This is scikit-learn's ``reg_covar``. It keeps covariances positive definite, but it is a
    fixed ridge, **not a prior**: the ridged update does not maximise any fixed objective, so
    EM with it is monotone only up to terms of order ``reg_covar``. Use a conjugate prior when
    you need the objective guarantee exactly.

    Parameters
    ----------
    reg_covar : float, default=1e-6
        Non-negative value added to the covariance diagonal.
    """

    reg_covar: float = attrs.field(default=1e-6)

    @reg_covar.validator
    def _check(self, attribute: attrs.Attribute, value: float) -> None:
        check_scalar(value, "reg_covar", (int, float), low=0.0)
