"""``GMM``: a scikit-learn-style Gaussian mixture estimator, a thin façade over the layers.

The ``covariance_type`` string is mapped to a component family exactly once, here, at the
edge; everything below works with family objects.
"""

from __future__ import annotations

import numbers
import sys
import warnings
from typing import Any, ClassVar

import attrs
import numpy as np
import scipy.sparse

from ._validation import as_rng, check_data, check_sample_weight, check_scalar
from .distributions.gaussian import DiagonalNormal, Gaussian, SphericalNormal, TiedNormal
from .em.algorithm import (
    EMAlgorithm,
    EMResult,
    History,
    IterationRecord,
    labels_to_responsibility_prior,
)
from .em.mstep import MAP, MaximumLikelihood, MStep
from .em.online import OnlineEM, OnlineEMState
from .em.sources import as_source, in_memory
from .exceptions import ConvergenceWarning, NotFittedError, SingularCovarianceError
from .init import (
    INIT_METHODS,
    initial_model,
    initial_responsibilities,
    responsibilities_from_centers,
)
from .mixture import MixtureModel
from .priors import CovarianceRidge, Dirichlet

__all__ = ["GMM", "COVARIANCE_TYPES"]

#: covariance_type → component family; "tied" pools one covariance across components.
COVARIANCE_TYPES: dict[str, type[Gaussian]] = {
    "full": Gaussian,
    "tied": TiedNormal,
    "diag": DiagonalNormal,
    "spherical": SphericalNormal,
}


def _check(name: str, kind: Any, **bounds: Any) -> Any:
    def validator(instance: Any, attribute: Any, value: Any) -> None:
        check_scalar(value, name, kind, **bounds)
    return validator


def _one_of(options: tuple[str, ...]) -> Any:
    def validator(instance: Any, attribute: Any, value: Any) -> None:
        if not isinstance(value, str) or value not in options:
            raise ValueError(f"{attribute.name} must be one of {options}, got {value!r}")
    return validator


def _concentration(instance: Any, attribute: Any, value: Any) -> None:
    if value is None or (isinstance(value, str) and value == "mml"):
        return
    if isinstance(value, str):
        raise ValueError(f"weight_concentration must be a number, 'mml' or None, got {value!r}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError("weight_concentration must be a number, 'mml' or None, got "
                        f"{type(value).__name__}")
    check_scalar(value, "weight_concentration", _REAL)


def _random_state(instance: Any, attribute: Any, value: Any) -> None:
    as_rng(value)  # raises with a clear message for anything unusable


_INT = (numbers.Integral,)
_REAL = (numbers.Real,)


@attrs.define(slots=False)
class GMM:
    r"""Gaussian mixture fitted by EM, with scikit-learn's estimator conventions.

    .. math:: p(x \mid \theta) = \sum_{k=1}^{K} \pi_k \, \mathcal N(x \mid \mu_k, \Sigma_k)

    Parameters
    ----------
    n_components : int, default=1
        Number of components K.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
        Structure of Σ_k: a full matrix each, one full matrix shared by all ("tied"), a
        diagonal each, or σ_k² I each.
    tol : float, default=1e-3
        Convergence threshold on the change of the per-sample log-likelihood.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance so it stays positive definite. A fixed
        ridge, not a prior: see :class:`~probmix.priors.CovarianceRidge`.
    max_iter : int, default=100
        Maximum number of EM iterations (M-steps) per initialisation.
    n_init : int, default=1
        Number of initialisations; the fit with the highest final log-likelihood is kept.
    init_params : {"kmeans++", "kmeans", "random", "random_from_data"}, default="kmeans++"
        How the starting responsibilities are chosen (see :mod:`probmix.init`).
    weights_init : array-like of shape (n_components,), optional
        Starting weights π (replace those computed from ``init_params``).
    means_init : array-like of shape (n_components, n_features), optional
        Starting means; the starting responsibilities then assign each row to its
        nearest mean.
    precisions_init : array-like, optional
        Starting precisions Σ_k⁻¹, shaped like ``precisions_`` (see below).
    weight_concentration : float or "mml", optional
        α of a symmetric Dirichlet prior on the weights, fitted by MAP-EM
        (π_k ∝ max(N_k + α − 1, 0)). A component whose weight reaches 0 is pruned:
        ``n_components`` is then an upper bound, and the fitted attributes hold the survivors
        (``n_components_`` of them; ``history_.pruned`` says when and which). With
        0 < α < 1 only components supported by fewer than 1 − α points vanish; ``"mml"``
        sets α = 1 − T/2 (T parameters per component: Figueiredo & Jain's improper
        minimum-message-length prior), which removes components supported by fewer than T/2
        points: from an overcomplete start it removes spikes and stragglers, but a split
        cluster whose halves both hold more than T/2 points survives.
        ``None`` (default) is maximum likelihood.
    missing : {"raise", "marginalize"}, default="raise"
        What a NaN entry of X means. "raise": an error. "marginalize": a missing value (see
        :doc:`/missing-data`). EM then scores each row by the marginal density of its observed
        entries and the M-step uses the conditional expectations of the missing ones and of
        their second moments (exact maximum likelihood for data missing at random); the
        initialisation runs on the rows with missing entries replaced by the column means
        (of the observed entries), and ``predict``, ``predict_proba``, ``score_samples``,
        ``score``, ``bic`` and ``aic`` use the marginal density too. :meth:`impute` fills
        missing entries in either case.
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the initialisation; the same int gives identical results.
    verbose : int, default=0
        1 prints one line per initialisation; 2 also prints the objective every
        ``verbose_interval`` iterations.
    verbose_interval : int, default=10
        Iterations between two progress lines at ``verbose=2``.
    learning_offset : float, default=1.0
        t₀ >= 0 of the step sizes γ_t = (t + t₀)^(−κ) of :meth:`partial_fit` (online EM): a
        larger offset makes the early steps smaller.
    learning_decay : float, default=0.7
        κ in (0.5, 1] of those step sizes: how fast they shrink (the names are those of
        scikit-learn's ``LatentDirichletAllocation``, whose online updates have this form).
    init_sample_size : int, default=100_000
        When X does not live in memory (a memmap, a Dask array, a re-iterable of chunks),
        the initialisation (``init_params``) runs on a uniform sample of this many rows
        drawn in one pass; EM then uses every row. In-memory arrays start from all rows.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        (K, d, d) for "full", (d, d) for "tied", (K, d) for "diag", (K,) for "spherical".
    precisions_ : ndarray
        Σ_k⁻¹, shaped like ``covariances_``.
    precisions_cholesky_ : ndarray
        U_k with U_k U_kᵀ = Σ_k⁻¹ (upper triangular), shaped like ``covariances_``.
    n_components_ : int
        Number of fitted components (less than ``n_components`` after pruning).
    converged_ : bool
    n_iter_ : int
        M-steps taken by the kept initialisation.
    lower_bound_ : float
        Per-sample objective of the final model: its log-likelihood, plus log p(θ)/N with
        ``weight_concentration``, and the likelihood with the labels clamped when fitted with
        ``labels`` (scikit-learn reports the value before the last M-step instead).
    history_ : History
        Per-iteration log-likelihood, bound L(q, θ), KL, number of components and time.
    restart_objectives_ : ndarray of shape (n_init,)
        Final per-sample objective (as ``lower_bound_``) of every initialisation (NaN for one
        that failed).
    model_ : MixtureModel
        The fitted mixture, for use with the rest of probmix.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from probmix import GMM
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-4, 1, (200, 2)), rng.normal(4, 1, (200, 2))])
    >>> gmm = GMM(n_components=2, random_state=0).fit(X)
    >>> np.sort(gmm.means_[:, 0]).round(0)
    array([-4.,  4.])
    """

    _estimator_type: ClassVar[str] = "density_estimator"

    n_components: int = attrs.field(default=1, validator=_check("n_components", _INT, low=1))
    covariance_type: str = attrs.field(default="full", kw_only=True,
                                       validator=_one_of(tuple(COVARIANCE_TYPES)))
    tol: float = attrs.field(default=1e-3, kw_only=True, validator=_check("tol", _REAL, low=0))
    reg_covar: float = attrs.field(default=1e-6, kw_only=True,
                                   validator=_check("reg_covar", _REAL, low=0))
    max_iter: int = attrs.field(default=100, kw_only=True,
                                validator=_check("max_iter", _INT, low=1))
    n_init: int = attrs.field(default=1, kw_only=True, validator=_check("n_init", _INT, low=1))
    init_params: str = attrs.field(default="kmeans++", kw_only=True,
                                   validator=_one_of(INIT_METHODS))
    weights_init: Any = attrs.field(default=None, kw_only=True, eq=False)
    means_init: Any = attrs.field(default=None, kw_only=True, eq=False)
    precisions_init: Any = attrs.field(default=None, kw_only=True, eq=False)
    weight_concentration: float | str | None = attrs.field(
        default=None, kw_only=True, validator=_concentration)
    missing: str = attrs.field(default="raise", kw_only=True,
                               validator=_one_of(("raise", "marginalize")))
    random_state: Any = attrs.field(default=None, kw_only=True, eq=False,
                                    validator=_random_state)
    verbose: int = attrs.field(default=0, kw_only=True, validator=_check("verbose", _INT, low=0))
    verbose_interval: int = attrs.field(default=10, kw_only=True,
                                        validator=_check("verbose_interval", _INT, low=1))
    learning_offset: float = attrs.field(default=1.0, kw_only=True,
                                         validator=_check("learning_offset", _REAL, low=0))
    learning_decay: float = attrs.field(
        default=0.7, kw_only=True,
        validator=_check("learning_decay", _REAL, low=0.5, low_inclusive=False, high=1.0))
    init_sample_size: int = attrs.field(default=100_000, kw_only=True,
                                        validator=_check("init_sample_size", _INT, low=1))

    # -- scikit-learn protocol -----------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, as scikit-learn's ``clone`` and grid search expect."""
        return {a.name: getattr(self, a.name) for a in attrs.fields(type(self))}

    def set_params(self, **params: Any) -> GMM:
        """Set constructor arguments by name (validated); returns ``self``."""
        valid = {a.name for a in attrs.fields(type(self))}
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for GMM; valid parameters are "
                                 f"{sorted(valid)}")
            setattr(self, name, value)
        return self

    def __sklearn_tags__(self) -> Any:
        """Estimator tags for scikit-learn >= 1.6 (imported lazily: only scikit-learn calls it)."""
        from sklearn.utils import InputTags, Tags, TargetTags

        return Tags(estimator_type="density_estimator", target_tags=TargetTags(required=False),
                    input_tags=InputTags(allow_nan=self.missing == "marginalize"))

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None, labels: Any = None) -> GMM:
        """Estimate the parameters by EM (best of ``n_init`` initialisations).

        Parameters
        ----------
        X : array-like, numpy.memmap, dask.array.Array or re-iterable of chunks
            The rows, of shape (n_samples, n_features). Data that do not fit in memory can be
            a memmap (read slice by slice), a Dask array (summarised on the Dask workers) or
            any re-iterable of 2-D chunks or ``(chunk, weights)`` pairs (read afresh on every
            EM iteration): the fit is the in-memory one to round-off (see
            :doc:`/scaling-up`). For those, the initialisation runs on a uniform sample of
            ``init_sample_size`` rows.
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; an integer weight is equivalent to repeating the row.
        labels : array-like of int, shape (n_samples,), optional
            Partial labels for semi-supervised EM: component index of a row known to belong
            to it, -1 where unknown. A known label clamps that row's responsibilities.
            In-memory X only.

        Returns
        -------
        self : GMM

        Raises
        ------
        ValueError
            For invalid data or initial parameters, or when a component collapses to a
            singular covariance (the message names the component and the remedy).
        """
        rng = as_rng(self.random_state)
        if in_memory(X):
            X = _check_input(X, min_samples=2, allow_missing=self._marginalize)
            w = check_sample_weight(sample_weight, X.shape[0])
            data: Any = X  # what EM reads, with data_weight: here the rows themselves
            data_weight = w
        else:  # out of core: EM streams the source; the start comes from a sample of it
            if labels is not None:
                raise TypeError("labels need X as an in-memory array (they are matched to "
                                "its rows by position)")
            data = as_source(X, sample_weight, allow_missing=self._marginalize)
            data_weight = None
            X = data.sample(self.init_sample_size, rng)
            w = np.ones(X.shape[0])
        if self._marginalize:
            _check_observed_columns(X, w)
        if X.shape[0] < self.n_components:
            raise ValueError(f"n_samples={X.shape[0]} must be >= n_components="
                             f"{self.n_components}: decrease n_components or add data")
        family = COVARIANCE_TYPES[self.covariance_type]
        ridge = CovarianceRidge(reg_covar=self.reg_covar)
        user = self._user_init(X.shape[1], family)
        clamp = (None if labels is None else
                 labels_to_responsibility_prior(_labels(labels, X.shape[0]), self.n_components))
        algorithm = EMAlgorithm(m_step=self._m_step(family, X.shape[1], ridge), tol=self.tol,
                                max_iter=self.max_iter, callbacks=self._progress(),
                                missing=self.missing)
        best: EMResult | None = None
        objectives = np.full(self.n_init, np.nan)
        error: Exception | None = None
        for run in range(self.n_init):
            try:
                start = self._initial_model(X, w, family, ridge, user, rng, clamp)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)  # warned once, below
                    result = algorithm.fit(data, start, sample_weight=data_weight,
                                           random_state=rng, responsibility_prior=clamp)
            except SingularCovarianceError as exc:
                error = exc  # another initialisation may do better; reported if none does
                continue
            objectives[run] = result.objective
            if self.verbose:
                print(f"GMM init {run + 1}/{self.n_init}: {result.n_iter} iterations, "
                      f"log-likelihood {result.objective:.6g}, converged={result.converged}",
                      file=sys.stdout)
            if best is None or result.objective > best.objective:
                best = result
        if best is None:
            assert error is not None
            raise error
        if not best.converged:
            objective = best.history.objective
            change = objective[-1] - objective[-2] if len(objective) > 1 else float("nan")
            warnings.warn(f"EM did not converge in max_iter={self.max_iter} iterations for the "
                          f"best initialisation (last change of the per-sample objective "
                          f"{change:.3g}, tol={self.tol}): increase max_iter or tol, try other "
                          "init_params or n_init, or check for degenerate data",
                          ConvergenceWarning, stacklevel=2)
        self._set_fitted(best, objectives, X)
        return self

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None,
                    labels: Any = None) -> np.ndarray:
        """Fit, then return the most probable component of each row (= ``fit(X).predict(X)``)."""
        return self.fit(X, sample_weight=sample_weight, labels=labels).predict(X)

    def _m_step(self, family: type[Gaussian], d: int, ridge: CovarianceRidge) -> MStep:
        alpha = self.weight_concentration
        if alpha is None:
            return MaximumLikelihood(component_prior=ridge)
        if alpha == "mml":
            K = self.n_components
            # T: free parameters per component (a tied covariance is shared by the K)
            per_component = family.n_parameters_many(
                [family(mean=np.zeros(d), covariance=family._structure.from_scatter(
                    family._structure.zero_scatter(d), 1.0, d, 1.0))] * K) / K
            alpha = 1.0 - per_component / 2.0
        return MAP(weights_prior=Dirichlet(float(alpha)), component_prior=ridge)

    def _user_init(self, d: int, family: type[Gaussian]) -> dict[str, np.ndarray]:
        """Validate the user's initial parameters against K and d."""
        K = self.n_components
        out: dict[str, np.ndarray] = {}
        if self.weights_init is not None:
            wi = _numeric(self.weights_init, "weights_init")
            if wi.shape != (K,):
                raise ValueError(f"weights_init must have shape ({K},), got {wi.shape}")
            if np.any(wi < 0) or abs(wi.sum() - 1.0) > 1e-6:
                raise ValueError("weights_init must be non-negative and sum to 1, got sum "
                                 f"{wi.sum():.6g} and minimum {wi.min():.3g}")
            out["weights"] = wi / wi.sum()
        if self.means_init is not None:
            mi = _numeric(self.means_init, "means_init")
            if mi.shape != (K, d):
                raise ValueError(f"means_init must have shape ({K}, {d}), got {mi.shape}")
            out["means"] = mi
        if self.precisions_init is not None:
            pi = _numeric(self.precisions_init, "precisions_init")
            expected = _param_shape(family, K, d)
            if pi.shape != expected:
                raise ValueError(f"precisions_init for covariance_type={self.covariance_type!r} "
                                 f"must have shape {expected}, got {pi.shape}")
            try:
                if family is TiedNormal:
                    shared = family._structure.from_precision(pi, d)
                    out["covariances"] = np.array([shared] * K, dtype=object)
                else:
                    out["covariances"] = np.array(
                        [family._structure.from_precision(p, d) for p in pi], dtype=object)
            except ValueError as exc:
                raise ValueError(f"precisions_init is invalid: {exc}") from None
        return out

    def _initial_model(self, X: np.ndarray, w: np.ndarray, family: type[Gaussian],
                       ridge: CovarianceRidge, user: dict[str, np.ndarray],
                       rng: np.random.Generator, clamp: np.ndarray | None) -> MixtureModel:
        K = self.n_components
        if len(user) == 3:  # fully specified: no data-driven start needed
            return MixtureModel(weights=user["weights"], components=[
                family(mean=m, covariance=c) for m, c in zip(user["means"], user["covariances"])])
        if np.isnan(np.sum(X)):
            # missing entries: start from the rows with the column means filled in (k-means++
            # and one M-step need complete rows; EM then marginalises the entries properly)
            X = _column_mean_imputed(X, w)
        if "means" in user:
            resp = responsibilities_from_centers(X, user["means"])
        else:
            resp = initial_responsibilities(X, K, self.init_params, rng, w)
        if clamp is not None:  # known labels start where they belong
            resp = resp * clamp
            moved = resp.sum(axis=1) == 0  # a hard start put a labelled row elsewhere
            resp[moved] = clamp[moved]
            resp /= resp.sum(axis=1, keepdims=True)
        model = initial_model(X, [family] * K, resp, sample_weight=w, prior=ridge)
        means = user.get("means", [c.mean for c in _gaussians(model)])
        covs = user.get("covariances", [c.covariance for c in _gaussians(model)])
        return MixtureModel(weights=user.get("weights", model.weights), components=[
            family(mean=m, covariance=c) for m, c in zip(means, covs)])

    def _progress(self) -> tuple[Any, ...]:
        if self.verbose < 2:
            return ()
        interval = self.verbose_interval
        last: list[float] = []

        def report(record: IterationRecord, model: MixtureModel) -> None:
            change = record.objective - last[0] if last else float("nan")
            last[:] = [record.objective]
            if record.iteration % interval == 0:
                print(f"  iteration {record.iteration:4d}  log-likelihood {record.objective:.8g}"
                      f"  change {change:.3g}", file=sys.stdout)
        return (report,)

    def _set_fitted(self, result: EMResult, objectives: np.ndarray, X: np.ndarray) -> None:
        model = result.model
        family = COVARIANCE_TYPES[self.covariance_type]
        dtype = X.dtype
        gaussians = _gaussians(model)

        def stacked(attr: str) -> np.ndarray:
            values = [np.asarray(getattr(g.covariance, attr), dtype=dtype) for g in gaussians]
            return values[0] if family is TiedNormal else np.stack(values)

        self.model_ = model
        self.n_components_ = model.n_components
        self.weights_ = model.weights.astype(dtype)
        self.means_ = np.stack([g.mean for g in gaussians]).astype(dtype)
        self.covariances_ = stacked("compact")
        self.precisions_cholesky_ = stacked("precision_cholesky")
        self.precisions_ = stacked("precision")
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.lower_bound_ = result.objective
        self.history_: History = result.history
        self.restart_objectives_ = objectives
        self.n_features_in_ = X.shape[1]
        for name in ("weights_", "means_", "covariances_", "precisions_"):
            if not np.all(np.isfinite(getattr(self, name))):  # never hand out NaN parameters
                raise FloatingPointError(f"fitted {name} is not finite; scale the data or "
                                         "increase reg_covar")

    # -- online fitting --------------------------------------------------------------------------
    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> GMM:
        r"""One step of online (stepwise) EM on the mini-batch ``X``.

        Each call is one :meth:`OnlineEM.step <probmix.em.OnlineEM.step>`: the E-step of the
        batch under the current model gives its statistics per unit weight s̄_t, the running
        statistics move to s_t = (1 − γ_t) s_{t−1} + γ_t s̄_t with
        γ_t = (t + ``learning_offset``)^(−``learning_decay``) (γ_1 = 1), and the M-step
        (with ``reg_covar``, and ``weight_concentration`` weighed against the sample weight
        seen so far) gives the new parameters. The first call on an unfitted GMM initialises
        the model on that batch as :meth:`fit` does (``init_params`` and the ``*_init``
        parameters, one initialisation: the batch needs at least ``n_components`` rows unless
        all three ``*_init`` are given); after :meth:`fit`, the fitted model is the start.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights with a positive sum.

        Returns
        -------
        self : GMM
            With the fitted attributes of the new model; ``n_iter_`` counts the online steps,
            ``lower_bound_`` is the batch's mean log-likelihood under the model *before* the
            step (the rows were not yet learnt from), ``converged_`` is False and
            ``history_`` holds that one record.

        Examples
        --------
        >>> import numpy as np
        >>> from probmix import GMM
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(-4, 1, (3000, 2)), rng.normal(4, 1, (3000, 2))])
        >>> gmm = GMM(n_components=2, random_state=0)
        >>> for batch in np.array_split(rng.permutation(X), 30):
        ...     gmm = gmm.partial_fit(batch)
        >>> np.sort(gmm.means_[:, 0]).round(0), gmm.n_iter_
        (array([-4.,  4.]), 30)
        """
        state: OnlineEMState | None = getattr(self, "_online_state_", None)
        if state is not None and state.model is not getattr(self, "model_", None):
            state = None  # refitted by fit() since: start again from the fitted model
        family = COVARIANCE_TYPES[self.covariance_type]
        ridge = CovarianceRidge(reg_covar=self.reg_covar)
        if state is None and not hasattr(self, "model_"):
            X = _check_input(X, allow_missing=self._marginalize)
            w = check_sample_weight(sample_weight, X.shape[0])
            user = self._user_init(X.shape[1], family)
            if len(user) < 3 and X.shape[0] < self.n_components:
                raise ValueError(f"the first partial_fit batch initialises the model and needs "
                                 f"n_samples >= n_components={self.n_components}, got "
                                 f"n_samples={X.shape[0]}")
            start = self._initial_model(X, w, family, ridge, user,
                                        as_rng(self.random_state), None)
        else:
            start, X = self._checked(X, self._marginalize)
            w = check_sample_weight(sample_weight, X.shape[0])
        online = OnlineEM(m_step=self._m_step(family, X.shape[1], ridge), missing=self.missing,
                          step_offset=self.learning_offset, step_exponent=self.learning_decay)
        state = online.step(online.start(start) if state is None else state, X, w)
        ll = state.batch_log_likelihood
        record = IterationRecord(
            iteration=state.n_steps, log_likelihood=ll, log_prior=0.0, objective=ll,
            bound=float("nan"), kl=float("nan"), bound_after_m_step=None,
            n_components=int(np.count_nonzero(state.model.weights > 0)), stage=0,
            time=float("nan"))
        result = EMResult(model=state.model, converged=False, n_iter=state.n_steps,
                          history=History([record]), component_ids=state.component_ids)
        self._set_fitted(result, np.array([ll]), X)
        self._online_state_ = state
        return self

    # -- using the fit -------------------------------------------------------------------------
    def _fitted_model(self) -> MixtureModel:
        if not hasattr(self, "model_"):
            raise NotFittedError("this GMM instance is not fitted yet: call fit(X) before "
                                 "using this method")
        return self.model_

    def _checked(self, X: Any, allow_missing: bool = False) -> tuple[MixtureModel, np.ndarray]:
        model = self._fitted_model()
        return model, _check_input(X, n_features=model.n_features, allow_missing=allow_missing)

    @property
    def _marginalize(self) -> bool:
        return self.missing == "marginalize"

    def predict_proba(self, X: Any) -> np.ndarray:
        """Responsibilities p(c = k | x_i), an ndarray of shape (n_samples, n_components)
        (p(c = k | x_i,obs) for a row with missing entries, with ``missing="marginalize"``)."""
        model, X = self._checked(X, self._marginalize)
        return model.responsibilities(X, missing=self.missing)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable component of each row, an ndarray of shape (n_samples,)."""
        model, X = self._checked(X, self._marginalize)
        return np.argmax(model.posterior(X, missing=self.missing).log_resp, axis=1)

    def score_samples(self, X: Any) -> np.ndarray:
        """log p(x_i | θ) of each row, an ndarray of shape (n_samples,) (of its observed
        entries, with ``missing="marginalize"``)."""
        model, X = self._checked(X, self._marginalize)
        return model.log_prob(X, missing=self.missing)

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Mean (weighted) per-sample log-likelihood of ``X``; higher is better."""
        model, X = self._checked(X, self._marginalize)
        w = check_sample_weight(sample_weight, X.shape[0])
        return float(w @ model.log_prob(X, missing=self.missing) / w.sum())

    def impute(self, X: Any) -> np.ndarray:
        r"""Fill the missing entries (NaN) of ``X`` with their conditional means under the fit.

        .. math:: \hat x_{i,\mathrm{mis}} = \sum_k p(c_i = k \mid x_{i,\mathrm{obs}})
                  \big[\mu_{k,\mathrm{mis}} + \Sigma_{k,\mathrm{mo}}
                  \Sigma_{k,\mathrm{oo}}^{-1} (x_{i,\mathrm{obs}} - \mu_{k,\mathrm{obs}})\big]

        (see :meth:`MixtureModel.impute`). Works whatever ``missing`` is; observed entries are
        returned unchanged.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NaN marks a missing entry; every row needs an observed entry.

        Returns
        -------
        ndarray of shape (n_samples, n_features)

        Examples
        --------
        >>> import numpy as np
        >>> from probmix import GMM
        >>> rng = np.random.default_rng(0)
        >>> X = rng.multivariate_normal([0, 0], [[1, 0.9], [0.9, 1]], size=500)
        >>> gmm = GMM(random_state=0).fit(X)
        >>> filled = gmm.impute([[1.0, np.nan]])  # about 0.9 * 1.0
        >>> bool(abs(filled[0, 1] - 0.9) < 0.1)
        True
        """
        model = self._fitted_model()
        return model.impute(_check_input(X, n_features=model.n_features, allow_missing=True))

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw rows from the fitted mixture, using ``random_state``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        labels : ndarray of shape (n_samples,)
        """
        X, labels = self._fitted_model().sample(n_samples, as_rng(self.random_state))
        return X.astype(self.means_.dtype, copy=False), labels

    def bic(self, X: Any) -> float:
        """Bayesian information criterion on ``X`` (lower is better)."""
        model, X = self._checked(X, self._marginalize)
        return model.bic(X, missing=self.missing)

    def aic(self, X: Any) -> float:
        """Akaike information criterion on ``X`` (lower is better)."""
        model, X = self._checked(X, self._marginalize)
        return model.aic(X, missing=self.missing)

    @property
    def n_parameters_(self) -> int:
        """Free parameters of the fitted mixture (the count BIC and AIC use)."""
        return self._fitted_model().n_parameters


def _check_input(X: Any, *, n_features: int | None = None, min_samples: int = 1,
                 allow_missing: bool = False) -> np.ndarray:
    """:func:`check_data`, with scikit-learn's wording where its estimator checks look for it.

    Sparse, 1-D, featureless and too-short input get messages that carry both probmix's
    phrasing and scikit-learn's (``check_estimator`` matches "sparse", "Reshape your data",
    "0 feature(s) (shape=...)" and "n_samples=1"); everything else is ``check_data``'s.
    """
    if scipy.sparse.issparse(X):
        raise TypeError("sparse input is not supported: GMM needs a dense array (call "
                        "X.toarray() first)")
    shape = np.shape(X) if isinstance(X, np.ndarray) else None
    if shape is not None and len(shape) == 1:
        raise ValueError(f"X must be 2-D of shape (n_samples, n_features), got 1-D with shape "
                         f"{shape}. Reshape your data: X.reshape(-1, 1) for a single feature, "
                         "X.reshape(1, -1) for a single sample")
    if shape is not None and len(shape) == 2 and shape[1] == 0:
        raise ValueError(f"X has no features: 0 feature(s) (shape={shape}) while a minimum of 1 "
                         "is required.")
    if n_features is not None and shape is not None and len(shape) == 2 \
            and shape[1] != n_features:
        raise ValueError(f"X has {shape[1]} features, but GMM is expecting {n_features} "
                         "features as input (the number it was fitted with)")
    if shape is not None and len(shape) == 2 and shape[0] < min_samples:
        raise ValueError(f"X needs at least {min_samples} sample(s), got n_samples={shape[0]}")
    return check_data(X, min_samples=min_samples, n_features=n_features,
                      allow_missing=allow_missing)


def _check_observed_columns(X: np.ndarray, w: np.ndarray) -> None:
    """Every column needs an observed entry of positive weight: nothing else identifies its
    mean and variance."""
    observed = (w > 0) @ ~np.isnan(X)
    if not np.all(observed):
        j = int(np.flatnonzero(observed == 0)[0])
        raise ValueError(f"X column {j} has no observed entry (of positive sample weight): "
                         "its mean and variance cannot be estimated; drop the column")


def _column_mean_imputed(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """X with each NaN replaced by the weighted mean of its column's observed entries."""
    nan = np.isnan(X)
    observed_weight = w @ ~nan
    means = (w @ np.where(nan, 0.0, X)) / np.maximum(observed_weight, np.finfo(float).tiny)
    return np.where(nan, means, X).astype(X.dtype, copy=False)


def _labels(labels: Any, n_samples: int) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.shape != (n_samples,):
        raise ValueError(f"labels must have shape ({n_samples},) to match X, got {lab.shape}")
    return lab


def _gaussians(model: MixtureModel) -> list[Gaussian]:
    return [c for c in model.components if isinstance(c, Gaussian)]


def _numeric(value: Any, name: str) -> np.ndarray:
    arr = np.asarray(value)
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def _param_shape(family: type[Gaussian], K: int, d: int) -> tuple[int, ...]:
    """Shape of covariances_/precisions_ for a family: (K,) + compact, or compact if tied."""
    compact = {"full": (d, d), "diag": (d,), "spherical": ()}[family._structure.kind]
    return compact if family is TiedNormal else (K, *compact)
