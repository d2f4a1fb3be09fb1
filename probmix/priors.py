r"""Priors for MAP-EM, and the covariance ridge.

With a prior the M-step maximises L(q, θ) + log p(θ), and the objective EM never decreases is
the log-posterior log p(X | θ) + log p(θ) (up to a constant). The priors here are conjugate,
so the MAP update stays closed-form:

- :class:`Dirichlet` on the mixture weights π;
- :class:`NormalInverseWishart` on a Gaussian's (μ, Σ), for every covariance structure;
- :class:`Gamma` on a Poisson or Exponential rate, :class:`Beta` on a Bernoulli probability
  (and :class:`Dirichlet`, per feature, on a Categorical's probabilities);
- :class:`CovarianceRidge` is *not* a prior: scikit-learn's ``reg_covar``.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from scipy import special

from ._validation import check_scalar, readonly
from .distributions.covariance import CovarianceStructure

__all__ = ["CovarianceRidge", "Dirichlet", "NormalInverseWishart", "Gamma", "Beta"]

_array_eq = attrs.cmp_using(eq=np.array_equal)


@attrs.frozen(kw_only=True)
class CovarianceRidge:
    """Add ``reg_covar`` to the diagonal of every estimated covariance: Σ = S / N + reg·I.

    This is scikit-learn's ``reg_covar``. It keeps covariances positive definite, but it is a
    fixed ridge, **not a prior**: the ridged update does not maximise any fixed objective, so
    EM with it is monotone only up to terms of order ``reg_covar``. Use
    :class:`NormalInverseWishart` (e.g. :meth:`NormalInverseWishart.ridge`) when you need the
    objective guarantee exactly.

    Parameters
    ----------
    reg_covar : float, default=1e-6
        Non-negative value added to the covariance diagonal.
    """

    reg_covar: float = attrs.field(default=1e-6)

    @reg_covar.validator
    def _check(self, attribute: attrs.Attribute, value: float) -> None:
        check_scalar(value, "reg_covar", (int, float), low=0.0)

    def max_decrease(self, components: Any) -> float:
        r"""Bound on how much the ridge can lower the per-sample objective in one M-step.

        With Σ* the exact update and Σ = Σ* + rI, the loss in L per point is
        ½ Σ_j [log(1 + x_j) − x_j/(1 + x_j)] ≤ Σ_j x_j²/4, x_j = r/λ_j(Σ*), so at most
        d (r/λ_min)²/4. EM's monotonicity check allows this much.
        """
        r = float(self.reg_covar)
        if r == 0.0:
            return 0.0
        worst = 0.0
        for c in components:
            cov = getattr(c, "covariance", None)
            if not isinstance(cov, CovarianceStructure):
                continue
            lam = cov.min_eigenvalue - r
            if lam <= 0:
                return float("inf")
            worst = max(worst, c.n_features * (r / lam) ** 2 / 4.0)
        return worst


def _alpha(value: Any) -> np.ndarray:
    a = np.array(value, dtype=float)
    if a.ndim > 1 or a.size == 0:
        raise ValueError(f"alpha must be a scalar or 1-D array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"alpha must be finite, got {a.tolist()}")
    return readonly(a)


@attrs.frozen
class Dirichlet:
    r"""Dirichlet(α) prior on the mixture weights,
    :math:`p(\pi) \propto \prod_k \pi_k^{\alpha_k - 1}`.

    Parameters
    ----------
    alpha : float or array-like of shape (n_components,)
        Concentration α_k, one value shared by all components or one each. α = 1 is the
        uniform prior (MAP = maximum likelihood); α > 1 pulls the weights towards each other;
        α < 1 favours sparse weights, and a component whose mass N_k + α_k − 1 drops to zero
        or below gets weight exactly 0 and is pruned. Note the scale: with 0 < α < 1 only
        components supported by fewer than 1 − α < 1 points can vanish.

        α ≤ 0 gives an *improper* prior, p(π) ∝ Π_k π_k^{α_k − 1}, unnormalisable but with
        the same closed-form mode; α = 1 − T/2 (T free parameters per component) is the
        minimum-message-length penalty of Figueiredo & Jain (2002), which prunes components
        supported by fewer than T/2 points. For it, ``log_prob`` omits the normaliser (a
        constant, so the monotonicity of EM is unaffected).

    Examples
    --------
    >>> from probmix.priors import Dirichlet
    >>> Dirichlet(0.5).mode([10.0, 0.2, 5.0]).round(3).tolist()
    [0.679, 0.0, 0.321]
    """

    alpha: np.ndarray = attrs.field(converter=_alpha, eq=_array_eq)

    def concentrations(self, n_components: int) -> np.ndarray:
        """α as a vector of length ``n_components``."""
        if self.alpha.ndim == 0:
            return np.full(n_components, float(self.alpha))
        if self.alpha.size != n_components:
            raise ValueError(f"the Dirichlet prior has {self.alpha.size} concentrations for "
                             f"{n_components} components")
        return np.asarray(self.alpha)

    def mode(self, masses: Any, free: Any = None) -> np.ndarray:
        """The posterior mode π_k ∝ max(N_k + α_k − 1, 0) given responsibility masses N_k.

        ``free`` (boolean mask) restricts the update to some components: the result then
        holds values proportional to the mode over those only (the caller scales them).
        """
        n = np.asarray(masses, dtype=float)
        # N_k + (α_k − 1), in that order: with α = 1 this is N_k exactly (MAP = ML bit for bit).
        c = np.maximum(n + (self.concentrations(n.size) - 1.0), 0.0)
        if free is not None:
            c = np.where(free, c, 0.0)
        total = c.sum()
        if not total > 0:
            raise ValueError("every component's mass N_k + alpha_k - 1 is <= 0: the Dirichlet "
                             "prior's alpha is too small for this data (increase it)")
        return c / total

    @property
    def proper(self) -> bool:
        """Whether the density normalises (every α_k > 0)."""
        return bool(np.all(self.alpha > 0))

    def log_prob(self, weights: Any) -> float:
        r"""log Dir(π | α) over the components present (zero weights are pruned ones).

        With α_k < 1 the density is unbounded as π_k → 0, which is why pruned components
        leave the model rather than sit at weight 0. For an improper prior (some α_k ≤ 0)
        this is the unnormalised Σ_k (α_k − 1) log π_k.
        """
        w = np.asarray(weights, dtype=float)
        alive = w > 0
        a = self.concentrations(w.size)[alive]
        kernel = float(np.sum((a - 1.0) * np.log(w[alive])))
        if not self.proper:
            return kernel
        return float(special.gammaln(a.sum()) - special.gammaln(a).sum()) + kernel

    def restricted(self, keep: Any) -> Dirichlet:
        """The prior on the components that survive pruning (``keep`` indexes them)."""
        if self.alpha.ndim == 0:
            return self
        return Dirichlet(self.alpha[np.asarray(keep)])


def _optional_mean(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    m = np.array(value, dtype=float)
    if m.ndim != 1 or not np.all(np.isfinite(m)):
        raise ValueError("the prior mean must be a finite 1-D array")
    return readonly(m)


def _scale(value: Any) -> np.ndarray:
    s = np.array(value, dtype=float)
    if s.ndim == 0:
        if not (np.isfinite(s) and s > 0):
            raise ValueError(f"scale must be positive, got {float(s)}")
    elif s.ndim == 2 and s.shape[0] == s.shape[1]:
        try:
            np.linalg.cholesky(s)
        except np.linalg.LinAlgError:
            raise ValueError("scale must be symmetric positive definite") from None
        if np.max(np.abs(s - s.T)) > 1e-8 * np.max(np.abs(s)):
            raise ValueError("scale must be symmetric")
    else:
        raise ValueError(f"scale must be a positive scalar (times I) or a square matrix, got "
                         f"shape {s.shape}")
    return readonly(s)


@attrs.frozen(kw_only=True)
class NormalInverseWishart:
    r"""Conjugate prior on a Gaussian's mean and covariance:
    :math:`\Sigma \sim \mathcal W^{-1}(\Psi, \nu)`,
    :math:`\mu \mid \Sigma \sim \mathcal N(\mu_0, \Sigma/\kappa_0)`.

    The MAP update from a component's statistics (N, mean m, centred scatter S) is

    .. math::
        \mu = \frac{N m + \kappa_0 \mu_0}{N + \kappa_0}, \qquad
        \Psi_N = \Psi + S + \frac{\kappa_0 N}{\kappa_0 + N} (m - \mu_0)(m - \mu_0)^\top,

    and Σ = Ψ_N / (N + ν + d + 2) for a full covariance; a diagonal or spherical structure
    takes the same density restricted to its matrices, giving σ²_j = (Ψ_N)_jj / (N + ν + d + 2)
    and σ² = tr Ψ_N / (d (N + ν + d + 2)); a tied covariance pools all components,
    Σ = (Ψ + Σ_k [S_k + κ-term_k]) / (N + ν + d + 1 + K).

    Parameters
    ----------
    scale : float or array-like of shape (n_features, n_features)
        Ψ, symmetric positive definite; a scalar s means s·I.
    dof : float
        ν > d − 1 (for the restricted structures: ν > −2, and > d − 1 keeps it proper in
        every structure).
    mean : array-like of shape (n_features,), optional
        μ_0. With ``kappa=0`` (the default) the prior on μ is flat and ``mean`` is unused.
    kappa : float, default=0
        κ_0 ≥ 0: how many pseudo-observations the prior mean is worth.

    Notes
    -----
    With ``kappa=0`` the mean's prior is the improper flat one: the updates drop the +1 it
    would add to the denominator, and ``log_prob`` omits its (constant) term.
    """

    scale: np.ndarray = attrs.field(converter=_scale, eq=_array_eq)
    dof: float = attrs.field(converter=float)
    mean: np.ndarray | None = attrs.field(default=None, converter=_optional_mean, eq=_array_eq)
    kappa: float = attrs.field(default=0.0, converter=float)

    def __attrs_post_init__(self) -> None:
        check_scalar(self.kappa, "kappa", float, low=0.0)
        check_scalar(self.dof, "dof", float)
        if self.kappa > 0 and self.mean is None:
            raise ValueError("kappa > 0 needs a prior mean")
        if self.scale.ndim == 2 and self.dof <= self.scale.shape[0] - 1:
            raise ValueError(f"dof must exceed n_features - 1 = {self.scale.shape[0] - 1} for a "
                             f"proper inverse-Wishart, got {self.dof}")

    @classmethod
    def ridge(cls, reg_covar: float, n_features: int) -> NormalInverseWishart:
        """A weak prior that regularises like ``reg_covar`` but is a true prior.

        Ψ = reg_covar · (2d + 1) · I and ν = d with a flat mean: an empty component gets
        Σ = reg_covar · I, and with N points Σ = (S + Ψ) / (N + 2d + 1), which tends to the MLE.
        """
        check_scalar(reg_covar, "reg_covar", (int, float), low=0.0, low_inclusive=False)
        return cls(scale=reg_covar * (2 * n_features + 1) * np.eye(n_features),
                   dof=float(n_features))

    # -- what the Gaussian families call -------------------------------------------------------
    def scale_matrix(self, d: int) -> np.ndarray:
        if self.dof <= d - 1:
            raise ValueError(f"dof must exceed n_features - 1 = {d - 1} for a proper "
                             f"inverse-Wishart, got {self.dof}")
        if self.scale.ndim == 0:
            return float(self.scale) * np.eye(d)
        if self.scale.shape != (d, d):
            raise ValueError(f"the prior's scale is {self.scale.shape[0]}-dimensional, the data "
                             f"{d}-dimensional")
        return np.asarray(self.scale)

    def posterior_mean(self, n: float, m: np.ndarray) -> np.ndarray:
        if self.kappa == 0.0:
            return m
        self._check_dim(m.size)
        assert self.mean is not None
        return (n * m + self.kappa * self.mean) / (n + self.kappa)

    def mean_deviation(self, mu: np.ndarray) -> np.ndarray | None:
        """μ − μ₀ (None with a flat mean prior). Ψ_N = Ψ + S_μ + κ₀ (μ − μ₀)(μ − μ₀)ᵀ, with
        S_μ the scatter about μ: at the MAP mean this equals the textbook
        Ψ + S + κ₀N/(κ₀+N)(m − μ₀)(m − μ₀)ᵀ, and it also holds for a fixed μ."""
        if self.kappa == 0.0:
            return None
        self._check_dim(mu.size)
        assert self.mean is not None
        return mu - self.mean

    def denominator_offset(self, d: int, n_means: int = 1) -> float:
        """ν + d + 1 + (number of means with a proper prior): Σ = Ψ_N / (N + this)."""
        return self.dof + d + 1 + (n_means if self.kappa > 0 else 0)

    def _check_dim(self, d: int) -> None:
        if self.mean is not None and self.mean.size != d:
            raise ValueError(f"the prior mean has {self.mean.size} features, the data {d}")

    def log_prob(self, mean: np.ndarray, covariance: np.ndarray, kind: str) -> float:
        """log p(μ, Σ) for a covariance of the given structure (``compact`` shape).

        Full: log IW(Σ|Ψ,ν) + log N(μ|μ₀, Σ/κ₀). Diagonal and spherical use the same density
        restricted to their matrices, normalised there (each variance is inverse-gamma).
        """
        from scipy import stats  # lazily: scipy.stats costs ~0.4 s to import
        d = mean.size
        psi = self.scale_matrix(d)
        if kind == "full":
            out = float(stats.invwishart(df=self.dof, scale=psi).logpdf(covariance))
            cov_matrix = covariance
        elif kind == "diag":
            shape = (self.dof + d - 1) / 2.0  # density ∝ (σ²)^{-(ν+d+1)/2} exp(−ψ/2σ²)
            out = float(np.sum(stats.invgamma(shape, scale=np.diag(psi) / 2.0).logpdf(covariance)))
            cov_matrix = np.diag(covariance)
        else:  # spherical
            shape = d * (self.dof + d + 1) / 2.0 - 1.0
            out = float(stats.invgamma(shape, scale=np.trace(psi) / 2.0).logpdf(float(covariance)))
            cov_matrix = float(covariance) * np.eye(d)
        return out + self.log_prob_mean(mean, cov_matrix)

    def log_prob_mean(self, mean: np.ndarray, covariance_matrix: np.ndarray) -> float:
        """log N(μ | μ₀, Σ/κ₀), 0 for the flat mean prior (κ₀ = 0)."""
        from scipy import stats  # lazily: scipy.stats costs ~0.4 s to import
        if self.kappa == 0.0:
            return 0.0
        self._check_dim(mean.size)
        return float(stats.multivariate_normal(self.mean, covariance_matrix / self.kappa)
                     .logpdf(mean))


def _positive_parameter(value: Any, name: str) -> np.ndarray:
    """A positive finite scalar or 1-D array (one value per feature), read-only."""
    a = np.array(value, dtype=float)
    if a.ndim > 1 or a.size == 0:
        raise ValueError(f"{name} must be a scalar or a 1-D array (one value per feature), "
                         f"got shape {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"{name} must be positive and finite, got {a.tolist()}")
    return readonly(a)


def _shape(value: Any) -> np.ndarray:
    return _positive_parameter(value, "shape")


def _rate(value: Any) -> np.ndarray:
    return _positive_parameter(value, "rate")


def _a(value: Any) -> np.ndarray:
    return _positive_parameter(value, "a")


def _b(value: Any) -> np.ndarray:
    return _positive_parameter(value, "b")


def _per_feature(values: np.ndarray, name: str, n_features: int) -> np.ndarray:
    if values.ndim == 0:
        return np.full(n_features, float(values))
    if values.size != n_features:
        raise ValueError(f"the prior has {values.size} values of {name} for {n_features} "
                         "features")
    return np.asarray(values)


@attrs.frozen
class Gamma:
    r"""Gamma(a, b) prior on a positive rate λ (one per feature, independent):
    :math:`p(\lambda) = \frac{b^a}{\Gamma(a)} \lambda^{a-1} e^{-b\lambda}`.

    Conjugate to the rate of a :class:`~probmix.distributions.Poisson` and of an
    :class:`~probmix.distributions.Exponential`: the posterior is again a Gamma, and its mode
    is the MAP update (each family's ``from_statistics`` gives the formula). Acting like
    a − 1 pseudo-counts observed over b pseudo-rows (Poisson) or b pseudo-units of total
    value (Exponential).

    Parameters
    ----------
    shape : float or array-like of shape (n_features,)
        a > 0. With a ≥ 1 the density is bounded; a = 1, b → 0 approaches the flat prior.
    rate : float or array-like of shape (n_features,)
        b > 0 (a proper prior).

    Examples
    --------
    >>> from probmix.priors import Gamma
    >>> round(Gamma(2.0, 1.0).log_prob([1.0]), 6)  # log(1 · e^-1)
    -1.0
    """

    shape: np.ndarray = attrs.field(converter=_shape, eq=_array_eq)
    rate: np.ndarray = attrs.field(converter=_rate, eq=_array_eq)

    def parameters(self, n_features: int) -> tuple[np.ndarray, np.ndarray]:
        """(a, b) as vectors of length ``n_features``."""
        return (_per_feature(self.shape, "shape", n_features),
                _per_feature(self.rate, "rate", n_features))

    def log_prob(self, rates: Any) -> float:
        """Σ_j log Gamma(λ_j | a_j, b_j) (−inf or +inf at λ_j = 0 for a > 1 or a < 1)."""
        from scipy import stats  # lazily: scipy.stats costs ~0.4 s to import
        lam = np.atleast_1d(np.asarray(rates, dtype=float))
        a, b = self.parameters(lam.size)
        return float(np.sum(stats.gamma.logpdf(lam, a, scale=1.0 / b)))


@attrs.frozen
class Beta:
    r"""Beta(a, b) prior on a probability p (one per feature, independent):
    :math:`p(p) = \frac{p^{a-1} (1-p)^{b-1}}{B(a, b)}`.

    Conjugate to a :class:`~probmix.distributions.Bernoulli` probability: a − 1 and b − 1
    act as pseudo-counts of ones and zeros. a = b = 1 is the uniform prior (MAP = maximum
    likelihood); a, b > 1 keep every estimate strictly inside (0, 1).

    Parameters
    ----------
    a, b : float or array-like of shape (n_features,)
        Positive concentrations.

    Examples
    --------
    >>> from probmix.priors import Beta
    >>> Beta(1.0, 1.0).log_prob([0.3, 0.9])  # uniform on [0, 1]
    0.0
    """

    a: np.ndarray = attrs.field(converter=_a, eq=_array_eq)
    b: np.ndarray = attrs.field(converter=_b, eq=_array_eq)

    def parameters(self, n_features: int) -> tuple[np.ndarray, np.ndarray]:
        """(a, b) as vectors of length ``n_features``."""
        return _per_feature(self.a, "a", n_features), _per_feature(self.b, "b", n_features)

    def log_prob(self, probabilities: Any) -> float:
        """Σ_j log Beta(p_j | a_j, b_j)."""
        from scipy import stats  # lazily: scipy.stats costs ~0.4 s to import
        p = np.atleast_1d(np.asarray(probabilities, dtype=float))
        a, b = self.parameters(p.size)
        return float(np.sum(stats.beta.logpdf(p, a, b)))
