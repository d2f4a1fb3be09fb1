r"""Multivariate Student t with a full scale matrix and fixed degrees of freedom.

.. math::
    p(x) = \frac{\Gamma(\frac{\nu + d}{2})}{\Gamma(\frac{\nu}{2}) (\nu\pi)^{d/2} |\Sigma|^{1/2}}
           \Big(1 + \frac{\delta(x)}{\nu}\Big)^{-\frac{\nu + d}{2}},
    \qquad \delta(x) = (x - \mu)^\top \Sigma^{-1} (x - \mu)

is the marginal of x | u ~ N(μ, Σ/u) with a latent scale u ~ Gamma(ν/2, rate ν/2). EM treats u
as one more latent variable (see :class:`StudentT`).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import attrs
import numpy as np
from scipy import special

from .._validation import check_data, check_sample_weight, readonly
from ..priors import CovarianceRidge
from . import _missing
from ._common import refine
from .base import Distribution, Statistics, _scale_factor
from .covariance import FullCovariance
from .gaussian import GaussianStatistics

__all__ = ["StudentT", "StudentTStatistics"]

_LOG_PI = math.log(math.pi)
_LOG_2PI = math.log(2.0 * math.pi)
_array_eq = attrs.cmp_using(eq=np.array_equal)


def _to_scale(value: Any) -> FullCovariance:
    return value if isinstance(value, FullCovariance) else FullCovariance(
        covariance=np.asarray(value, dtype=float))


def _check_dof(instance: Any, attribute: Any, value: float) -> None:
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"dof must be positive and finite, got {value}")


@attrs.frozen(kw_only=True)
class StudentTStatistics(Statistics):
    r"""Expected complete-data statistics of the latent-scale model, under the current (μ, Σ).

    With the posterior of the scale q(u_i) = Gamma(A, B_i), A = (ν + d)/2,
    B_i = (ν + δ_i)/2 (so E[u_i] = (ν + d)/(ν + δ_i)):

    - ``scaled``: Gaussian statistics with weights w_i E[u_i] (Σ w u, the u-weighted mean and
      centred scatter, merged as for a Gaussian);
    - ``weight``: N = Σ_i w_i;
    - ``log_scale``: Σ_i w_i E[log u_i] = Σ_i w_i (ψ(A) − log B_i);
    - ``entropy``: Σ_i w_i H[q(u_i)].

    All are sums over rows, so they add; ``dof`` must agree.
    """

    scaled: GaussianStatistics
    weight: float
    log_scale: float
    entropy: float
    dof: float

    @property
    def total_weight(self) -> float:
        return self.weight

    def __add__(self, other: StudentTStatistics) -> StudentTStatistics:
        if not isinstance(other, StudentTStatistics):
            return NotImplemented
        if other.dof != self.dof:
            raise ValueError(f"cannot add Student t statistics of dof {self.dof} and {other.dof}")
        return StudentTStatistics(scaled=self.scaled + other.scaled,
                                  weight=self.weight + other.weight,
                                  log_scale=self.log_scale + other.log_scale,
                                  entropy=self.entropy + other.entropy, dof=self.dof)

    def reweighted(self, factor: float) -> StudentTStatistics:
        """Weights × factor: every sum over rows scales (the u-weighted mean does not)."""
        f = _scale_factor(factor)
        return StudentTStatistics(scaled=self.scaled.reweighted(f), weight=self.weight * f,
                                  log_scale=self.log_scale * f, entropy=self.entropy * f,
                                  dof=self.dof)


@attrs.frozen(kw_only=True)
class StudentT(Distribution):
    r"""Multivariate t with location μ, full scale matrix Σ and fixed degrees of freedom ν.

    Heavier-tailed than a Gaussian (its covariance is ν/(ν − 2) Σ for ν > 2), so a mixture of
    them is robust to outliers; ν → ∞ is the Gaussian.

    **EM through the latent scale.** Write x_i | u_i ~ N(μ, Σ/u_i), u_i ~ Gamma(ν/2, ν/2).
    Given x_i the scale's posterior is Gamma((ν + d)/2, (ν + δ_i)/2), with
    E[u_i | x_i] = (ν + d)/(ν + δ_i): a point far from μ (large δ_i) gets a small weight.
    ``sufficient_statistics`` (an *instance* method: it needs the current μ, Σ) computes the
    expected complete-data statistics, and ``from_statistics`` maximises the expected
    complete-data log-likelihood
    Σ_i w_i E[log N(x_i | μ, Σ/u_i)] = −½ Σ_i w_i (log|Σ| + E[u_i] δ_i) + const:

    .. math::
        \mu = \frac{\sum_i w_i u_i x_i}{\sum_i w_i u_i}, \qquad
        \Sigma = \frac{\sum_i w_i u_i (x_i - \mu)(x_i - \mu)^\top}{\sum_i w_i},
        \qquad u_i = \mathrm E[u_i \mid x_i].

    This is still a valid EM step inside a mixture. The mixture's E-step, with this family's
    statistics, computes the exact joint posterior of the latent pair (c_i, u_i):
    q(c_i = k) times q(u_i | c_i = k), each under the current θ. The outer M-step (π_k = N_k/N
    and the update above per component) then maximises the expected complete-data
    log-likelihood over *both* latent variables, so the bound L(q, θ) — now including the
    scales — rises, and with it log p(X | θ), which the bound touches at the current θ. The
    log-likelihood of the mixture therefore never decreases, as for Gaussian components.
    Correspondingly :meth:`expected_log_prob` returns the scale-augmented bound
    Σ_i w_i E_q[log p(x_i, u_i) − log q(u_i)], which equals Σ_i w_i log p(x_i) under the
    parameters the statistics were computed with and is below it for any other.

    **ν is held fixed.** Its update solves
    log(ν/2) + 1 − ψ(ν/2) + (1/N) Σ_i w_i (E[log u_i] − E[u_i]) = 0, which has no closed form
    (it needs a one-dimensional root search, ECME-style); the closed-form update here keeps
    every M-step exact. Choose ν by comparing the log-likelihood or BIC of fits with a few
    values.

    Parameters
    ----------
    mean : array-like of shape (n_features,)
        The location μ.
    scale : array-like of shape (n_features, n_features) or FullCovariance
        The scale matrix Σ, symmetric positive definite.
    dof : float
        The degrees of freedom ν > 0 (not estimated).

    Raises
    ------
    ValueError
        If the mean is not a finite vector, the scale does not match it, or ν is not positive.
    SingularCovarianceError
        If the scale is not positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> from probmix.distributions import StudentT
    >>> t = StudentT(mean=[0.0, 0.0], scale=np.eye(2), dof=4.0)
    >>> X = t.sample(2000, np.random.default_rng(0))
    >>> fitted = StudentT.fit(X, dof=4.0)
    >>> bool(np.all(np.abs(fitted.mean) < 0.1))
    True
    """

    parameter_names: ClassVar[tuple[str, ...]] = ("mean", "scale")

    mean: np.ndarray = attrs.field(converter=readonly, eq=_array_eq)
    scale: FullCovariance = attrs.field(converter=_to_scale)
    dof: float = attrs.field(converter=float, validator=_check_dof)

    def __attrs_post_init__(self) -> None:
        if self.mean.ndim != 1 or self.mean.size == 0:
            raise ValueError(f"mean must be a non-empty 1-D array, got shape {self.mean.shape}")
        if not np.all(np.isfinite(self.mean)):
            raise ValueError("mean contains NaN or infinity")
        if self.scale.n_features != self.mean.size:
            raise ValueError(f"scale is for {self.scale.n_features} features but the mean has "
                             f"{self.mean.size}")

    # -- contract -----------------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        return int(self.mean.size)

    @property
    def n_parameters(self) -> int:
        """d + d(d+1)/2: ν is fixed, not estimated."""
        return self.n_features + FullCovariance.n_parameters(self.n_features)

    def _mahalanobis(self, X: np.ndarray) -> np.ndarray:
        z = self.scale.whiten(np.asarray(X, dtype=np.float64) - self.mean)
        return np.einsum("ij,ij->i", z, z)

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        d, nu = self.n_features, self.dof
        const = (special.gammaln(0.5 * (nu + d)) - special.gammaln(0.5 * nu)
                 - 0.5 * d * (math.log(nu) + _LOG_PI) - 0.5 * self.scale.log_det)
        return const - 0.5 * (nu + d) * np.log1p(self._mahalanobis(X) / nu)

    def sufficient_statistics(self, X: np.ndarray,  # type: ignore[override]
                              weights: np.ndarray) -> StudentTStatistics:
        """Expected statistics under the scale posterior of *this* (μ, Σ) (see the class)."""
        w = np.asarray(weights, dtype=np.float64)
        a = 0.5 * (self.dof + self.n_features)
        b = 0.5 * (self.dof + self._mahalanobis(X))
        log_b = np.log(b)
        digamma_a = float(special.digamma(a))
        entropy = a - log_b + special.gammaln(a) + (1.0 - a) * digamma_a
        return StudentTStatistics(
            scaled=GaussianStatistics.of(X, w * (a / b), FullCovariance),
            weight=float(w.sum()), log_scale=float(w @ (digamma_a - log_b)),
            entropy=float(w @ entropy), dof=self.dof)

    @classmethod
    def from_statistics(cls, stats: StudentTStatistics,
                        prior: CovarianceRidge | None = None) -> StudentT:
        """μ = Σ w u x / Σ w u, Σ = Σ w u (x − μ)(x − μ)ᵀ / Σ w (+ ``reg_covar`` I with a
        :class:`~probmix.priors.CovarianceRidge`), ν unchanged."""
        mean = cls._mean_update(stats, prior)
        return cls(mean=mean, scale=cls._scale_update(stats, mean, prior), dof=stats.dof)

    @classmethod
    def from_statistics_partial(cls, stats: StudentTStatistics, prior: Any,
                                fixed: frozenset[str], current: StudentT) -> StudentT:
        """Hold μ (Σ re-estimated about it) or Σ (μ updated): both closed-form, since given
        the expected scales the update of each does not involve the other's value."""
        if fixed == {"mean"}:
            return cls(mean=current.mean, scale=cls._scale_update(stats, current.mean, prior),
                       dof=stats.dof)
        if fixed == {"scale"}:
            return cls(mean=cls._mean_update(stats, prior), scale=current.scale, dof=stats.dof)
        return super().from_statistics_partial(stats, prior, fixed, current)

    @staticmethod
    def _mean_update(stats: StudentTStatistics, prior: Any) -> np.ndarray:
        _check_prior(prior)
        if not (stats.weight > 0 and stats.scaled.weight > 0):
            raise ValueError("cannot estimate a StudentT from zero total weight")
        return stats.scaled.mean

    @staticmethod
    def _scale_update(stats: StudentTStatistics, mean: np.ndarray,
                      prior: Any) -> FullCovariance:
        _check_prior(prior)
        if not stats.weight > 0:
            raise ValueError("cannot estimate a StudentT scale from zero total weight")
        reg = prior.reg_covar if isinstance(prior, CovarianceRidge) else 0.0
        return FullCovariance.from_scatter(stats.scaled.scatter_about(mean), stats.weight,
                                           mean.size, reg)

    def log_prior(self, prior: CovarianceRidge | None) -> float:
        """0: the ridge is not a prior, and there is no other."""
        _check_prior(prior)
        return 0.0

    def expected_log_prob(self, stats: StudentTStatistics) -> float:
        r"""Σ_i w_i E_q[log N(x_i | μ, Σ/u_i) + log Gamma(u_i | ν/2, ν/2) − log q(u_i)].

        With N = Σ w, U = Σ w E[u], L = Σ w E[log u], H = Σ w H[q(u)] and the u-weighted
        mean m and scatter S:

        .. math::
            \tfrac{d + \nu - 2}{2} L - \tfrac{N}{2}(d \log 2\pi + \log|\Sigma|)
            - \tfrac12[\operatorname{tr}(\Sigma^{-1} S) + U (m - \mu)^\top \Sigma^{-1} (m - \mu)]
            + N[\tfrac\nu2 \log\tfrac\nu2 - \log\Gamma(\tfrac\nu2)] - \tfrac\nu2 U + H

        Equal to Σ_i w_i log p(x_i) when the statistics were computed under this (μ, Σ);
        a lower bound of it otherwise (the bound EM's history reports).
        """
        if stats.dof != self.dof:
            raise ValueError(f"statistics of dof {stats.dof} for a StudentT of dof {self.dof}")
        d, nu = self.n_features, self.dof
        s, n, u = stats.scaled, stats.weight, stats.scaled.weight
        z = self.scale.whiten((s.mean - self.mean)[None, :])
        quadratic = self.scale.trace_precision(s.scatter) + u * float(np.sum(z * z))
        return (0.5 * (d + nu - 2.0) * stats.log_scale
                - 0.5 * n * (d * _LOG_2PI + self.scale.log_det) - 0.5 * quadratic
                + n * (0.5 * nu * math.log(0.5 * nu) - special.gammaln(0.5 * nu))
                - 0.5 * nu * u + stats.entropy)

    # -- missing values ------------------------------------------------------------------------
    #: NaN entries are marginalised: x_o is Student t with (μ_o, Σ_oo, ν), and given x_o and
    #: the scale u, x_m is normal with the Gaussian conditional mean and covariance C / u
    supports_missing: ClassVar[bool] = True

    def marginal_log_prob(self, X: np.ndarray) -> np.ndarray:
        """The Student t log density of each row's observed coordinates o, with (μ_o, Σ_oo, ν)
        (NaN: missing); rows without NaN are scored by :meth:`log_prob`."""
        def marginal(rows: np.ndarray) -> np.ndarray:
            cond = _missing.conditionals([self], rows, covariance="scale")
            return self._log_density(cond.n_observed, cond.log_det_observed[:, 0],
                                     cond.maha[:, 0])

        return _missing.score_rows(X, self.log_prob, marginal)

    def _log_density(self, dim: Any, log_det: Any, maha: np.ndarray) -> np.ndarray:
        nu = self.dof
        return (special.gammaln(0.5 * (nu + dim)) - special.gammaln(0.5 * nu)
                - 0.5 * dim * (math.log(nu) + _LOG_PI) - 0.5 * log_det
                - 0.5 * (nu + dim) * np.log1p(maha / nu))

    def expected_statistics(self, X: np.ndarray,
                            weights: np.ndarray) -> tuple[StudentTStatistics, float]:
        r"""Expected statistics over the missing coordinates *and* the scales.

        Given x_o (d_o coordinates) the scale's posterior is Gamma((ν + d_o)/2, (ν + δ_o)/2),
        and x_m | x_o, u ~ N(x̂_m, C/u) with the Gaussian conditional mean x̂_m and covariance
        C. So E[u x] = E[u] x̂ and E[u (x − x̂)(x − x̂)ᵀ] = C in the missing block: the scaled
        statistics are those of the imputed rows with weights w E[u], plus Σ w C. The entropy
        of x_m given x_o and u, averaged over u, is ½ log|2πe C| − (d_m/2) E[log u].
        """
        X = np.asarray(X)
        if _missing.incomplete_rows(X) is None:
            return self.sufficient_statistics(X, weights), 0.0
        w = np.asarray(weights, dtype=np.float64)
        cond = _missing.conditionals([self], X, covariance="scale")
        a = 0.5 * (self.dof + cond.n_observed)
        b = 0.5 * (self.dof + cond.maha[:, 0])
        log_b = np.log(b)
        digamma_a = special.digamma(a)
        log_scale = digamma_a - log_b
        scale_entropy = a - log_b + special.gammaln(a) + (1.0 - a) * digamma_a
        scaled = GaussianStatistics.of(cond.filled(0), w * (a / b), FullCovariance)
        scaled = GaussianStatistics(
            weight=scaled.weight, mean=scaled.mean, structure=FullCovariance,
            scatter=scaled.scatter + cond.scatter_correction(0, w, FullCovariance))
        stats = StudentTStatistics(scaled=scaled, weight=float(w.sum()),
                                   log_scale=float(w @ log_scale),
                                   entropy=float(w @ scale_entropy), dof=self.dof)
        missing_entropy = w @ (0.5 * (cond.n_missing * _missing.LOG_2PIE
                                      + cond.log_det_conditional[:, 0])
                               - 0.5 * cond.n_missing * log_scale)
        return stats, float(missing_entropy)

    def conditional_mean(self, X: np.ndarray) -> np.ndarray:
        """``X`` with x_m replaced by μ_m + Σ_mo Σ_oo⁻¹ (x_o − μ_o) (float64): the scale does
        not move the conditional mean."""
        X = np.asarray(X)
        rows = _missing.incomplete_rows(X)
        out = np.array(X, dtype=np.float64)
        if rows is not None:
            out[rows] = _missing.conditionals([self], X[rows], covariance="scale").filled(0)
        return out

    def sample(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        z = self.scale.colour(rng.standard_normal((n_samples, self.n_features)))
        u = rng.gamma(0.5 * self.dof, 2.0 / self.dof, size=(n_samples, 1))
        return self.mean + z / np.sqrt(u)

    @classmethod
    def fit(cls, X: Any, weights: Any = None,  # type: ignore[override]
            prior: CovarianceRidge | None = None, *, dof: float, tol: float = 1e-12,
            max_iter: int = 1000) -> StudentT:
        """Weighted MLE of μ and Σ for the given ν, by EM over the scales.

        Starts from the Gaussian MLE (mean and covariance) and iterates the update (see
        :func:`~probmix.distributions.refine`) until the mean log-likelihood
        changes by less than ``tol``.
        """
        X = check_data(X)
        w = check_sample_weight(weights, X.shape[0], name="weights")
        gaussian = GaussianStatistics.of(X, w, FullCovariance)
        start = cls(mean=gaussian.mean, scale=cls._scale_update(
            StudentTStatistics(scaled=gaussian, weight=gaussian.weight, log_scale=0.0,
                               entropy=0.0, dof=float(dof)), gaussian.mean, prior), dof=dof)
        return refine(start, X, w, prior, tol=tol, max_iter=max_iter)  # type: ignore[return-value]


def _check_prior(prior: Any) -> None:
    if prior is not None and not isinstance(prior, CovarianceRidge):
        raise TypeError("StudentT understands prior=None or a CovarianceRidge, got "
                        f"{type(prior).__name__}")
