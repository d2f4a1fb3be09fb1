r"""Model selection: fit several candidate mixtures and compare them by BIC, AIC and ICL.

All three criteria are in the "−2 log-likelihood" convention: **lower is better**. With
log L = Σ_i w_i log p(x_i | θ̂) the (weighted) maximised log-likelihood, p the number of free
parameters (:attr:`MixtureModel.n_parameters <probmix.MixtureModel.n_parameters>`) and
n = Σ_i w_i:

.. math::
    \mathrm{BIC} = -2 \log L + p \log n, \qquad
    \mathrm{AIC} = -2 \log L + 2 p, \qquad
    \mathrm{ICL} = \mathrm{BIC} + 2\,\mathrm{EN}(q), \quad
    \mathrm{EN}(q) = -\sum_i w_i \sum_k q_{ik} \log q_{ik} \ \ge 0,

with q_ik = p(c_i = k | x_i, θ̂) the fitted responsibilities. ICL (Biernacki, Celeux & Govaert,
2000, in the soft-entropy form of McLachlan & Peel) adds the entropy of the classification,
so it penalises overlapping components: it prefers well-separated clusters where BIC prefers
the best density. See ``docs/tools.md`` for the derivations and when to use which.

:func:`select_gmm` fits a grid of ``n_components`` × ``covariance_type``;
:func:`compare` fits (or scores) any list of candidates. Both return a
:class:`SelectionResult`: a table with one row per candidate, including the ones that failed
(with the reason), the best candidate per criterion, and a plot.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from ._validation import check_data, check_sample_weight
from .em.algorithm import EMAlgorithm
from .mixture import MixtureModel

__all__ = ["CRITERIA", "CandidateResult", "SelectionResult", "compare", "criteria",
           "select_gmm"]

#: The criteria computed for every candidate (all: lower is better).
CRITERIA: tuple[str, ...] = ("bic", "aic", "icl")

#: Errors that mark a candidate as failed instead of stopping the selection: what a fit
#: raises on data it cannot handle (a singular covariance is a ValueError, overflow an
#: ArithmeticError). Anything else (a TypeError from a malformed candidate) is a bug, raised.
_FIT_ERRORS = (ValueError, ArithmeticError)


def criteria(model: MixtureModel, X: Any, sample_weight: Any = None, *,
             missing: str = "raise") -> dict[str, float]:
    """Log-likelihood, entropy, BIC, AIC and ICL of a fitted mixture on ``X``.

    Parameters
    ----------
    model : MixtureModel
    X : array-like of shape (n_samples, n_features)
    sample_weight : array-like of shape (n_samples,), optional
    missing : {"raise", "marginalize"}, default="raise"
        With "marginalize", NaN entries are missing: p(x_i) is the density of the observed
        entries and q the posterior given them.

    Returns
    -------
    dict
        ``log_likelihood`` (Σ_i w_i log p(x_i)), ``entropy`` (EN(q) ≥ 0), ``n_parameters``,
        ``bic``, ``aic`` and ``icl`` (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> from probmix import MixtureModel
    >>> from probmix.distributions import Gaussian
    >>> from probmix.selection import criteria
    >>> model = MixtureModel(weights=[0.5, 0.5], components=[
    ...     Gaussian(mean=[-5.0], covariance=[[1.0]]), Gaussian(mean=[5.0], covariance=[[1.0]])])
    >>> X, _ = model.sample(200, np.random.default_rng(0))
    >>> c = criteria(model, X)
    >>> bool(np.isclose(c["bic"], model.bic(X))), c["icl"] >= c["bic"]
    (True, True)
    """
    X = check_data(X, n_features=model.n_features, expected_by="the model has",
                   allow_missing=missing == "marginalize")
    w = check_sample_weight(sample_weight, X.shape[0])
    post = model.posterior(X, missing=missing)
    log_likelihood = float(w @ post.log_evidence)
    q = np.exp(post.log_resp)
    with np.errstate(divide="ignore", invalid="ignore"):
        q_log_q = np.where(q > 0, q * post.log_resp, 0.0)  # 0 log 0 = 0
    entropy = max(float(-(w @ q_log_q.sum(axis=1))), 0.0) + 0.0  # + 0.0: no -0.0
    n, p = float(w.sum()), model.n_parameters
    bic = -2.0 * log_likelihood + p * math.log(n)
    return {"log_likelihood": log_likelihood, "entropy": entropy, "n_parameters": p,
            "bic": bic, "aic": -2.0 * log_likelihood + 2.0 * p, "icl": bic + 2.0 * entropy}


@attrs.frozen(kw_only=True)
class CandidateResult:
    """One row of a :class:`SelectionResult`.

    Attributes
    ----------
    name : str
        The candidate's label.
    group : str
        What the candidate's curve is drawn under in the plot (the covariance type for
        :func:`select_gmm`, the component families otherwise).
    n_components : int
        Components of the fitted model (of the requested model if the fit failed).
    status : {"ok", "failed"}
    reason : str
        Why the fit failed ("" if it did not).
    log_likelihood, entropy, bic, aic, icl : float
        See :func:`criteria`; NaN for a failed candidate.
    n_parameters : int
        -1 for a failed candidate.
    converged : bool
    n_iter : int
        EM iterations of the kept fit (0 for a model that was scored, not fitted).
    warnings : tuple of str
        Warnings raised while fitting (e.g. a ConvergenceWarning), kept instead of printed.
    model : MixtureModel or None
        The fitted mixture.
    estimator : object or None
        The fitted estimator (e.g. the GMM) when the candidate was one.
    """

    name: str
    group: str
    n_components: int
    status: str
    reason: str = ""
    log_likelihood: float = math.nan
    entropy: float = math.nan
    n_parameters: int = -1
    bic: float = math.nan
    aic: float = math.nan
    icl: float = math.nan
    converged: bool = False
    n_iter: int = 0
    warnings: tuple[str, ...] = ()
    model: MixtureModel | None = attrs.field(default=None, repr=False, eq=False)
    estimator: Any = attrs.field(default=None, repr=False, eq=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _candidates(values: Iterable[CandidateResult]) -> tuple[CandidateResult, ...]:
    return tuple(values)


_COLUMNS = ("name", "group", "n_components", "status", "log_likelihood", "entropy",
            "n_parameters", "bic", "aic", "icl", "converged", "n_iter", "reason")


@attrs.frozen(kw_only=True)
class SelectionResult:
    """Every candidate's fit and criteria, and the best candidate per criterion.

    Attributes
    ----------
    candidates : tuple of CandidateResult
        In the order they were given (or of the grid: covariance type, then K).
    n_samples : float
        n = Σ_i w_i, the n in BIC's log n.

    Examples
    --------
    >>> import numpy as np
    >>> from probmix.selection import select_gmm
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-5, 1, (100, 2)), rng.normal(5, 1, (100, 2))])
    >>> result = select_gmm(X, n_components=[1, 2, 3], random_state=0)
    >>> result.best("bic").n_components
    2
    >>> len(result.table)
    3
    """

    candidates: tuple[CandidateResult, ...] = attrs.field(converter=_candidates)
    n_samples: float

    # -- the table ------------------------------------------------------------------------------
    @property
    def table(self) -> np.ndarray:
        """One row per candidate as a numpy structured array (fields as in
        :class:`CandidateResult`, without the fitted objects)."""
        rows = self.records()
        text = {c: max([1] + [len(str(r[c])) for r in rows])
                for c in ("name", "group", "status", "reason")}
        dtype = [("name", f"U{text['name']}"), ("group", f"U{text['group']}"),
                 ("n_components", np.int64), ("status", f"U{text['status']}"),
                 ("log_likelihood", np.float64), ("entropy", np.float64),
                 ("n_parameters", np.int64), ("bic", np.float64), ("aic", np.float64),
                 ("icl", np.float64), ("converged", np.bool_), ("n_iter", np.int64),
                 ("reason", f"U{text['reason']}")]
        return np.array([tuple(r[c] for c in _COLUMNS) for r in rows], dtype=dtype)

    def records(self) -> list[dict[str, Any]]:
        """The table as a list of dicts (JSON-friendly: no fitted objects)."""
        return [{c: getattr(cand, c) for c in _COLUMNS} for cand in self.candidates]

    # -- the winners ----------------------------------------------------------------------------
    def best(self, criterion: str = "bic") -> CandidateResult:
        """The successful candidate with the lowest ``criterion`` (the first one on ties).

        Raises
        ------
        ValueError
            For an unknown criterion, or when every candidate failed.
        """
        _check_criterion(criterion)
        ok = [c for c in self.candidates if c.ok and np.isfinite(getattr(c, criterion))]
        if not ok:
            reasons = "; ".join(f"{c.name}: {c.reason}" for c in self.candidates[:3])
            raise ValueError(f"every candidate failed, so there is no best model ({reasons})")
        return min(ok, key=lambda c: getattr(c, criterion))

    @property
    def best_model(self) -> MixtureModel:
        """The mixture of the best candidate by BIC."""
        model = self.best("bic").model
        assert model is not None
        return model

    @property
    def failed(self) -> tuple[CandidateResult, ...]:
        return tuple(c for c in self.candidates if not c.ok)

    # -- output ---------------------------------------------------------------------------------
    def to_text(self, criteria: Sequence[str] = CRITERIA) -> str:
        """An aligned text table; ``*`` marks the best candidate of each criterion."""
        for c in criteria:
            _check_criterion(c)
        best = {}
        for c in criteria:
            with contextlib.suppress(ValueError):  # every candidate failed: no winner to mark
                best[c] = self.best(c).name
        header = ["candidate", "K", "status", "log-lik", "params", *[c.upper() for c in criteria],
                  "iter", "conv"]
        rows = []
        for cand in self.candidates:
            if cand.ok:
                values = [f"{getattr(cand, c):.2f}" + ("*" if best.get(c) == cand.name else " ")
                          for c in criteria]
                rows.append([cand.name, str(cand.n_components), cand.status,
                             f"{cand.log_likelihood:.2f}", str(cand.n_parameters), *values,
                             str(cand.n_iter), "yes" if cand.converged else "NO"])
            else:
                rows.append([cand.name, str(cand.n_components), cand.status, "-", "-",
                             *["-" for _ in criteria], "-", "-"])
        widths = [max(len(r[j]) for r in [header, *rows]) for j in range(len(header))]
        left = {0, 2}  # text columns flush left, numbers flush right

        def line(cells: Sequence[str]) -> str:
            return "  ".join(c.ljust(w) if j in left else c.rjust(w)
                             for j, (c, w) in enumerate(zip(cells, widths))).rstrip()

        out = [line(header), line(["-" * w for w in widths]), *map(line, rows)]
        notes = [f"{c.name}: failed: {c.reason}" for c in self.candidates if not c.ok]
        notes += [f"{c.name}: {w}" for c in self.candidates if c.ok for w in c.warnings]
        if best:
            out.append(f"lower is better; * marks the best ({', '.join(criteria).upper()})")
        return "\n".join(out + notes)

    def __str__(self) -> str:
        return self.to_text()

    def plot(self, ax: Any = None, *, criteria: Sequence[str] = CRITERIA) -> Any:
        """Each criterion against the number of components; see
        :func:`probmix.plot.plot_selection`."""
        from .plot import plot_selection

        return plot_selection(self, ax=ax, criteria=criteria)


def _check_criterion(criterion: str) -> None:
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")


# -- fitting candidates ---------------------------------------------------------------------------
Progress = Callable[[int, int, CandidateResult], Any]


def select_gmm(X: Any, n_components: Iterable[int] = range(1, 9),
               covariance_types: Iterable[str] = ("full",), *, sample_weight: Any = None,
               progress: Progress | None = None, **gmm_params: Any) -> SelectionResult:
    """Fit a :class:`~probmix.GMM` for every ``n_components`` × ``covariance_type``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : iterable of int, default=range(1, 9)
    covariance_types : iterable of {"full", "tied", "diag", "spherical"}, default=("full",)
    sample_weight : array-like of shape (n_samples,), optional
        Row weights, used by the fits and by the criteria (n = Σ w).
    progress : callable, optional
        Called as ``progress(i, total, candidate_result)`` after each fit (1-based ``i``).
    **gmm_params
        Other :class:`~probmix.GMM` parameters shared by every fit (``n_init``,
        ``random_state``, ``reg_covar``, ``max_iter``, …).

    Returns
    -------
    SelectionResult
        Candidates named ``"K=3 full"``, grouped by covariance type.

    Raises
    ------
    ValueError
        For invalid data or an invalid grid (empty, K < 1, an unknown covariance type); a
        fit that fails on the data is a "failed" row instead.
    """
    from .gmm import COVARIANCE_TYPES, GMM

    ks = [_positive_int(k) for k in n_components]
    types = list(covariance_types)
    if not ks or not types:
        raise ValueError("the grid is empty: give at least one n_components and one "
                         "covariance type")
    for t in types:
        if t not in COVARIANCE_TYPES:
            raise ValueError(f"unknown covariance type {t!r}; use {tuple(COVARIANCE_TYPES)}")
    for key in ("n_components", "covariance_type"):
        if key in gmm_params:
            raise TypeError(f"{key} is set by the grid; do not pass it in gmm_params")
    GMM(**gmm_params)  # invalid shared parameters fail here, once, not as failed rows
    candidates = [(f"K={k} {t}", GMM(n_components=k, covariance_type=t, **gmm_params), t)
                  for t in types for k in ks]
    return _run(X, candidates, sample_weight, progress)


def compare(X: Any, candidates: Mapping[str, Any] | Sequence[tuple[str, Any]], *,
            sample_weight: Any = None, progress: Progress | None = None) -> SelectionResult:
    """Fit (or score) arbitrary candidate mixtures on ``X`` and compare them.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    candidates : mapping or sequence of (name, spec)
        Each spec is one of

        - an estimator with ``fit(X, sample_weight=...)`` and a fitted ``model_`` (a
          :class:`~probmix.GMM`, or your own); it is copied (``type(e)(**e.get_params())``
          when it has ``get_params``) before fitting, so the given one is left unfitted;
        - ``(algorithm, init)``: an :class:`~probmix.EMAlgorithm` and the initial
          :class:`~probmix.MixtureModel` it starts from (any families);
        - a :class:`~probmix.MixtureModel`: scored as it is, not fitted.
    sample_weight : array-like of shape (n_samples,), optional
    progress : callable, optional
        As for :func:`select_gmm`.

    Returns
    -------
    SelectionResult

    Raises
    ------
    TypeError
        For a spec of none of the kinds above (before anything is fitted).
    """
    items = list(candidates.items()) if isinstance(candidates, Mapping) else list(candidates)
    prepared = []
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError(f"each candidate must be a (name, spec) pair, got {item!r}")
        name, spec = item
        prepared.append((name, _check_spec(name, spec), _group(spec)))
    if not prepared:
        raise ValueError("no candidates to compare")
    names = [name for name, _, _ in prepared]
    if len(set(names)) != len(names):
        raise ValueError(f"candidate names must be unique, got {names}")
    return _run(X, prepared, sample_weight, progress)


def _positive_int(k: Any) -> int:
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"n_components must be positive integers, got {k!r}")
    return int(k)


def _check_spec(name: str, spec: Any) -> Any:
    if isinstance(spec, MixtureModel):
        return spec
    if isinstance(spec, tuple) and len(spec) == 2:
        algorithm, init = spec
        if not isinstance(algorithm, EMAlgorithm) or not isinstance(init, MixtureModel):
            raise TypeError(f"candidate {name!r}: a pair must be (EMAlgorithm, initial "
                            f"MixtureModel), got ({type(algorithm).__name__}, "
                            f"{type(init).__name__})")
        return spec
    if callable(getattr(spec, "fit", None)):
        return spec
    raise TypeError(f"candidate {name!r}: expected an estimator with fit(), an (EMAlgorithm, "
                    f"MixtureModel) pair or a MixtureModel, got {type(spec).__name__}")


def _group(spec: Any) -> str:
    model = spec if isinstance(spec, MixtureModel) else (
        spec[1] if isinstance(spec, tuple) else None)
    if model is not None:
        return "+".join(dict.fromkeys(type(c).__name__ for c in model.components))
    covariance_type = getattr(spec, "covariance_type", None)
    return type(spec).__name__ + (f" {covariance_type}" if covariance_type else "")


def _requested_k(spec: Any) -> int:
    if isinstance(spec, MixtureModel):
        return spec.n_components
    if isinstance(spec, tuple):
        return spec[1].n_components
    return int(getattr(spec, "n_components", 0) or 0)


def _run(X: Any, candidates: list[tuple[str, Any, str]], sample_weight: Any,
         progress: Progress | None) -> SelectionResult:
    X = check_data(X)
    w = check_sample_weight(sample_weight, X.shape[0])
    results = []
    for i, (name, spec, group) in enumerate(candidates, start=1):
        result = _fit_one(name, spec, group, X, None if sample_weight is None else w)
        results.append(result)
        if progress is not None:
            progress(i, len(candidates), result)
    return SelectionResult(candidates=results, n_samples=float(w.sum()))


def _fit_one(name: str, spec: Any, group: str, X: np.ndarray,
             w: np.ndarray | None) -> CandidateResult:
    estimator = None
    converged, n_iter = True, 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if isinstance(spec, MixtureModel):
                model = spec
            elif isinstance(spec, tuple):
                em = spec[0].fit(X, spec[1], sample_weight=w)
                model, converged, n_iter = em.model, em.converged, em.n_iter
            else:
                estimator = (type(spec)(**spec.get_params()) if hasattr(spec, "get_params")
                             else spec)
                # no sample_weight keyword unless weights were given: not every estimator
                # takes one
                estimator.fit(X) if w is None else estimator.fit(X, sample_weight=w)
                model = estimator.model_
                converged = bool(getattr(estimator, "converged_", True))
                n_iter = int(getattr(estimator, "n_iter_", 0))
            values = criteria(model, X, w)
        except _FIT_ERRORS as exc:
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line
            return CandidateResult(name=name, group=group, n_components=_requested_k(spec),
                                   status="failed", reason=reason)
    notes = tuple(dict.fromkeys(" ".join(str(c.message).split()) for c in caught))
    return CandidateResult(
        name=name, group=group, n_components=model.n_components, status="ok",
        log_likelihood=values["log_likelihood"], entropy=values["entropy"],
        n_parameters=int(values["n_parameters"]), bic=values["bic"], aic=values["aic"],
        icl=values["icl"], converged=converged, n_iter=n_iter, warnings=notes, model=model,
        estimator=estimator)
