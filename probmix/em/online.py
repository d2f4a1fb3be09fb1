r"""Online (stepwise) EM: one mini-batch per step, a running average of the statistics.

Stepwise EM (Cappé & Moulines, 2009). The mixture's complete-data statistics are averages over
rows, so EM is a fixed-point iteration on the mean statistics s = E[T(x, c)]. Online EM replaces
the full-data E-step by a stochastic approximation: for the mini-batch B_t, the E-step under
θ_{t−1} gives the batch's statistics per unit weight

    s̄_t = Σ_{i∈B_t} w_i q_ik T(x_i) / Σ_{i∈B_t} w_i,     q_ik = p(c_i = k | x_i, θ_{t−1}),

the running statistics move a step γ_t towards them, and the M-step maps them to θ_t:

    s_t = (1 − γ_t) s_{t−1} + γ_t s̄_t,     θ_t = M-step(s_t),     γ_t = (t + t₀)^(−κ).

With κ ∈ (0.5, 1], Σ γ_t = ∞ and Σ γ_t² < ∞ (Robbins–Monro): s_t converges to a fixed point of
the mean EM map, the batch EM fixed point when the batches are drawn from one data set. The
first step has no s_0 to forget, so γ_1 = 1: s_1 = s̄_1 (with κ = 1 and t₀ = 0 the schedule
γ_t = 1/t then makes s_t the plain average of s̄_1 … s̄_t). Everything family-specific goes
through the statistics contract: ``+`` and :meth:`~probmix.Statistics.reweighted`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs
import numpy as np

from .._validation import as_rng, check_data, check_sample_weight, check_scalar
from ..exceptions import ConvergenceWarning, DegenerateComponentWarning
from ..mixture import MixtureModel, MixtureStatistics
from .algorithm import _one_of, _records, _RecordTable
from .mstep import MaximumLikelihood, MStep
from .sources import ArraySource, DaskSource, DataSource, as_source

__all__ = ["OnlineEM", "OnlineEMState", "OnlineEMResult", "OnlineHistory", "EpochRecord"]

_REAL = (int, float, np.integer, np.floating)
_INT = (int, np.integer)


def _ids(value: Any) -> np.ndarray:
    # None: set from the model in __attrs_post_init__ (an empty placeholder until then)
    return np.asarray([] if value is None else value, dtype=int)


@attrs.frozen(kw_only=True)
class OnlineEMState:
    """Where online EM stands after some mini-batches: what :meth:`OnlineEM.step` carries on.

    Attributes
    ----------
    model : MixtureModel
        θ_t, the model after ``n_steps`` M-steps (θ_0 before the first).
    statistics : MixtureStatistics or None
        The running statistics s_t, per unit weight (the masses N_k sum to 1); ``None``
        before the first mini-batch.
    n_steps : int
        t, the number of M-steps taken.
    weight_seen : float
        Σ w_i over every row stepped on so far.
    component_ids : ndarray of int
        For each component of ``model``, its index in the initial model (they differ once a
        MAP step pruned components).
    step_size : float
        γ of the last update of the running statistics (NaN before the first).
    batch_log_likelihood : float
        Mean log p(x_i | θ) of the last mini-batch under the model *before* its step (a
        held-out estimate: those rows had not been seen); NaN before the first.
    """

    model: MixtureModel
    statistics: MixtureStatistics | None = None
    n_steps: int = 0
    weight_seen: float = 0.0
    component_ids: np.ndarray = attrs.field(default=None, converter=_ids,
                                            eq=attrs.cmp_using(eq=np.array_equal))
    step_size: float = math.nan
    batch_log_likelihood: float = math.nan

    def __attrs_post_init__(self) -> None:
        if self.component_ids.size == 0:  # not given: the initial model's own indices
            object.__setattr__(self, "component_ids", np.arange(self.model.n_components))
        if self.component_ids.shape != (self.model.n_components,):
            raise ValueError(f"component_ids must have one entry per component "
                             f"({self.model.n_components}), got shape "
                             f"{self.component_ids.shape}")


@attrs.frozen(kw_only=True)
class EpochRecord:
    """What one pass of :meth:`OnlineEM.fit` over the data saw.

    Attributes
    ----------
    epoch : int
        1 for the first pass.
    n_steps : int
        M-steps taken so far (at the end of the epoch).
    weight_seen : float
        Σ w_i over every row stepped on so far.
    log_likelihood : float
        Mean over the epoch's rows of log p(x_i | θ) under the model before the step that
        used the row (weighted by w_i): each row is scored before it is learnt from.
    step_size : float
        γ of the epoch's last step.
    time : float
        Seconds since the start of the fit.
    """

    epoch: int
    n_steps: int
    weight_seen: float
    log_likelihood: float
    step_size: float
    time: float


@attrs.frozen
class OnlineHistory(_RecordTable):
    """The epoch records of an online fit, each field also as an array
    (``history.log_likelihood``)."""

    records: tuple[EpochRecord, ...] = attrs.field(converter=_records)

    @property
    def epoch(self) -> np.ndarray:
        return self._column("epoch", int)

    @property
    def n_steps(self) -> np.ndarray:
        return self._column("n_steps", int)

    @property
    def weight_seen(self) -> np.ndarray:
        return self._column("weight_seen")

    @property
    def step_size(self) -> np.ndarray:
        return self._column("step_size")


@attrs.frozen(kw_only=True)
class OnlineEMResult:
    """The outcome of :meth:`OnlineEM.fit`.

    Attributes
    ----------
    model : MixtureModel
        The final θ_t.
    converged : bool
        Whether the epoch log-likelihood changed by less than ``tol`` (always False for
        ``tol=0``, which runs every epoch).
    n_steps : int
        M-steps taken.
    n_epochs : int
        Passes over the data (the last one may be partial when ``max_steps`` stopped it).
    history : OnlineHistory
        One record per epoch.
    state : OnlineEMState
        The final state: :meth:`OnlineEM.step` continues from it.
    """

    model: MixtureModel
    converged: bool
    n_steps: int
    n_epochs: int
    history: OnlineHistory
    state: OnlineEMState

    @property
    def component_ids(self) -> np.ndarray:
        """For each component of ``model``, its index in the initial model."""
        return self.state.component_ids


def _check(name: str, kind: Any, **bounds: Any) -> Callable[[Any, Any, Any], None]:
    def validator(instance: Any, attribute: Any, value: Any) -> None:
        check_scalar(value, name, kind, **bounds)
    return validator


def _optional(name: str, kind: Any, **bounds: Any) -> Callable[[Any, Any, Any], None]:
    def validator(instance: Any, attribute: Any, value: Any) -> None:
        if value is not None:
            check_scalar(value, name, kind, **bounds)
    return validator


def _step_exponent(instance: Any, attribute: Any, value: Any) -> None:
    check_scalar(value, "step_exponent", _REAL)
    if not 0.5 < value <= 1.0:
        raise ValueError(f"step_exponent (κ) must lie in (0.5, 1], got {value!r}: the steps "
                         "γ_t = (t + step_offset)^(-κ) must sum to infinity (κ <= 1) while "
                         "their squares sum to a finite value (κ > 0.5)")


def _is_bool(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{attribute.name} must be a bool, got {type(value).__name__}")


def _m_step(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, MStep):
        raise TypeError(f"m_step must be an instance of MStep, got {type(value).__name__}")


def _random_state(instance: Any, attribute: Any, value: Any) -> None:
    as_rng(value)  # raises with a clear message for anything unusable


def _callbacks(value: Any) -> tuple[Callable[[OnlineEMState], Any], ...]:
    out = tuple(value)
    for cb in out:
        if not callable(cb):
            raise TypeError(f"callbacks must be callables, got {type(cb).__name__}")
    return out


@attrs.frozen(kw_only=True)
class OnlineEM:
    r"""Online (stepwise) EM on mini-batches (Cappé & Moulines, 2009).

    Per mini-batch B_t: the E-step under θ_{t−1} gives the batch's statistics per unit weight
    s̄_t; the running statistics move towards them, s_t = (1 − γ_t) s_{t−1} + γ_t s̄_t with
    γ_t = (t + t₀)^(−κ) (and γ_1 = 1: s_1 = s̄_1); the M-step strategy maps s_t to θ_t. It works
    for every family whose statistics implement :meth:`~probmix.Statistics.reweighted`.

    Parameters
    ----------
    m_step : MStep, default=MaximumLikelihood()
        How θ is re-estimated from the running statistics. They are per unit weight; the
        M-step sees them multiplied by the weight they stand for (see ``data_weight``),
        which matters only to a prior.
    step_offset : float, default=1.0
        t₀ >= 0. A larger offset makes the early steps smaller: the running statistics then
        forget the first, poorly estimated batches more slowly.
    step_exponent : float, default=0.6
        κ in (0.5, 1]: how fast the steps shrink. κ = 1 (with t₀ = 0) averages the batches'
        statistics equally; a smaller κ forgets the statistics of stale parameters faster
        and converges faster in practice, with more noise left at the end.
    batch_size : int, default=1000
        Rows per mini-batch in :meth:`fit`.
    max_epochs : int, default=10
        Passes over the data in :meth:`fit`.
    max_steps : int, optional
        Stop :meth:`fit` after this many M-steps, even within an epoch.
    tol : float, default=0.0
        Stop :meth:`fit` when the epoch log-likelihood (see :class:`EpochRecord`) changes by
        less than ``tol`` per unit weight between two epochs; 0 runs ``max_epochs``.
    shuffle : bool, default=True
        Shuffle the rows of an in-memory array at every epoch (the rows within each chunk
        read, for data read chunk by chunk). Stochastic approximation needs batches that look
        like draws from the data: do not turn it off for sorted data (and shuffle the rows
        of a memmap or of chunks once, on disk, if they are sorted).
    random_state : None, int or numpy.random.Generator
        Seeds the shuffling.
    warm_up : float, default=0.0
        Sample weight pooled under θ_0 before the first M-step: the first batches' statistics
        are averaged exactly (the model does not move) until they stand for at least this
        much weight (Cappé & Moulines' n_min). A first M-step from a handful of rows can put
        every component on the same points; set it to a few hundred rows when the
        mini-batches are small.
    data_weight : float, optional
        The sample weight the running statistics stand for in the M-step (the prior is
        weighed against it in a MAP step): by default, the weight of one pass over the data in
        :meth:`fit` (so that the MAP fixed point is batch MAP-EM's), and the weight seen so far
        in :meth:`step` (the posterior given the stream so far).
    callbacks : sequence of callables, default=()
        Each is called as ``callback(state)`` with the :class:`OnlineEMState` after every
        mini-batch.
    missing : {"raise", "marginalize"}, default="raise"
        What a NaN entry means, as for :class:`~probmix.EMAlgorithm`: with "marginalize"
        each mini-batch's statistics are the expected statistics given the observed entries
        (see :doc:`/missing-data`).

    Examples
    --------
    >>> import numpy as np
    >>> from probmix import MixtureModel, OnlineEM
    >>> from probmix.distributions import Poisson
    >>> truth = MixtureModel(weights=[0.4, 0.6], components=[
    ...     Poisson(rate=[2.0]), Poisson(rate=[12.0])])
    >>> X, _ = truth.sample(20_000, np.random.default_rng(0))
    >>> start = MixtureModel(weights=[0.5, 0.5], components=[
    ...     Poisson(rate=[1.0]), Poisson(rate=[5.0])])
    >>> result = OnlineEM(batch_size=500, max_epochs=3, random_state=0).fit(X, start)
    >>> np.round([c.rate[0] for c in result.model.components], 0)
    array([ 2., 12.])
    """

    m_step: MStep = attrs.field(factory=MaximumLikelihood, validator=_m_step)
    step_offset: float = attrs.field(default=1.0, validator=_check("step_offset", _REAL, low=0.0))
    step_exponent: float = attrs.field(default=0.6, validator=_step_exponent)
    batch_size: int = attrs.field(default=1000, validator=_check("batch_size", _INT, low=1))
    max_epochs: int = attrs.field(default=10, validator=_check("max_epochs", _INT, low=1))
    max_steps: int | None = attrs.field(default=None,
                                        validator=_optional("max_steps", _INT, low=1))
    tol: float = attrs.field(default=0.0, validator=_check("tol", _REAL, low=0.0))
    shuffle: bool = attrs.field(default=True, validator=_is_bool)
    random_state: Any = attrs.field(default=None, eq=False, validator=_random_state)
    warm_up: float = attrs.field(default=0.0, validator=_check("warm_up", _REAL, low=0.0))
    data_weight: float | None = attrs.field(
        default=None, validator=_optional("data_weight", _REAL, low=0.0, low_inclusive=False))
    callbacks: tuple[Callable[[OnlineEMState], Any], ...] = attrs.field(
        default=(), converter=_callbacks)
    missing: str = attrs.field(default="raise", validator=_one_of("raise", "marginalize"))

    # -- the schedule ----------------------------------------------------------------------------
    def step_size(self, t: int) -> float:
        """γ_t = (t + t₀)^(−κ) for t >= 2; γ_1 = 1 (the first step has nothing to forget)."""
        check_scalar(t, "t", _INT, low=1)
        return 1.0 if t == 1 else float((t + self.step_offset) ** -self.step_exponent)

    # -- one step at a time ----------------------------------------------------------------------
    def start(self, init: MixtureModel) -> OnlineEMState:
        """The state before the first mini-batch: θ_0 = ``init``, no statistics yet."""
        if not isinstance(init, MixtureModel):
            raise TypeError(f"init must be a MixtureModel, got {type(init).__name__}")
        self.m_step.check(init)
        return OnlineEMState(model=init)

    def step(self, state: OnlineEMState, X: Any, sample_weight: Any = None) -> OnlineEMState:
        """One online EM step on the mini-batch ``X``: E-step under ``state.model``, running
        statistics updated, M-step.

        Parameters
        ----------
        state : OnlineEMState
            From :meth:`start` or a previous step.
        X : array-like of shape (n_samples, n_features)
            The mini-batch (one row is enough).
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights w_i with a positive sum.

        Returns
        -------
        OnlineEMState
            The new state; ``state`` itself is unchanged.
        """
        if not isinstance(state, OnlineEMState):
            raise TypeError(f"state must be an OnlineEMState (from OnlineEM.start), got "
                            f"{type(state).__name__}")
        X = check_data(X, n_features=state.model.n_features, expected_by="the model has",
                       allow_missing=self.missing == "marginalize")
        state.model.check_support(X)
        w = check_sample_weight(sample_weight, X.shape[0])
        return self._step(state, X, w, self.data_weight)

    def _step(self, state: OnlineEMState, X: np.ndarray, w: np.ndarray,
              data_weight: float | None) -> OnlineEMState:
        model, ids = state.model, state.component_ids
        # the E-step of the batch fused with its statistics, as in the batch EM pass
        workspace: dict[Any, Any] = {}
        post = model._posterior(model._log_joint(X, workspace))
        batch_weight = float(w.sum())
        # a row of weight 0 counts for nothing, even where its density is 0 (no 0 · (−∞))
        log_lik = float(np.dot(w, np.where(w > 0, post.log_evidence, 0.0))) / batch_weight
        q = post.resp if post.resp.dtype == np.float64 else post.resp.astype(np.float64)
        Q = q if np.all(w == 1.0) else q * w[:, None]
        families = tuple(type(c) for c in model.components)
        batch = model._statistics_parts(X, Q, workspace).finish(families)
        batch = batch.reweighted(1.0 / batch_weight)  # per unit weight: s̄_t
        seen = state.weight_seen + batch_weight
        # under θ_0 the batches pool exactly (γ_1 = 1), then the schedule
        gamma = (batch_weight / seen if state.n_steps == 0
                 else self.step_size(state.n_steps + 1))
        running = (batch if state.statistics is None
                   else state.statistics.reweighted(1.0 - gamma) + batch.reweighted(gamma))
        if state.n_steps == 0 and seen < self.warm_up:
            return attrs.evolve(state, statistics=running, weight_seen=seen, step_size=gamma,
                                batch_log_likelihood=log_lik)
        scale = seen if data_weight is None else data_weight
        new_model = self.m_step(running.reweighted(scale), model, ids=ids)
        if self.m_step.prunes and np.any(new_model.weights == 0):
            keep = new_model.weights > 0
            new_model = MixtureModel(weights=new_model.weights[keep], components=[
                c for c, k in zip(new_model.components, keep) if k])
            running = _keep(running, keep)
            ids = ids[keep]
        else:
            _warn_lost(model, new_model, state.n_steps + 1)
        return OnlineEMState(model=new_model, statistics=running, n_steps=state.n_steps + 1,
                             weight_seen=seen, component_ids=ids, step_size=gamma,
                             batch_log_likelihood=log_lik)

    # -- a pass over data ------------------------------------------------------------------------
    def fit(self, X: Any, init: MixtureModel | OnlineEMState, *,
            sample_weight: Any = None) -> OnlineEMResult:
        """Run online EM over mini-batches of ``X`` for up to ``max_epochs`` passes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), numpy.memmap or re-iterable of chunks
            An in-memory array, cut into shuffled mini-batches of ``batch_size`` rows at
            every epoch; or data read chunk by chunk at every epoch (see
            :func:`~probmix.em.sources.as_source`): a memmap, read in slices of 65 536 rows,
            or a re-iterable of 2-D chunks (or of ``(chunk, weights)`` pairs); the rows of
            each chunk are shuffled and cut into mini-batches.
        init : MixtureModel or OnlineEMState
            θ_0, or a state to continue from (e.g. a previous result's ``state``).
        sample_weight : array-like of shape (n_samples,), optional
            Weights of the rows of an array (a re-iterable yields ``(chunk, weights)`` pairs
            instead).

        Returns
        -------
        OnlineEMResult

        Warns
        -----
        ConvergenceWarning
            When ``tol > 0`` and the epoch log-likelihood still changed by more than ``tol``
            in the last epoch.
        DegenerateComponentWarning
            When a component loses all its responsibility mass (it is kept with weight 0).
        """
        state = init if isinstance(init, OnlineEMState) else self.start(init)
        source = _source(X, sample_weight, state.model, self.missing == "marginalize")
        rng = as_rng(self.random_state) if self.shuffle else None
        # MAP: the running statistics stand for one pass over the data (its weight is known
        # for an array, and otherwise after the first epoch)
        epoch_weight = (self.data_weight if self.data_weight is not None
                        else _total_weight(source))
        start = time.perf_counter()
        records: list[EpochRecord] = []
        converged = False
        change = math.nan
        for epoch in range(1, self.max_epochs + 1):
            ll_total, w_total = 0.0, 0.0
            for Xb, wb in _batches(source, self.batch_size, state.model, rng):
                state = self._step(state, Xb, wb, epoch_weight)
                weight = float(wb.sum())
                ll_total += state.batch_log_likelihood * weight
                w_total += weight
                for callback in self.callbacks:
                    callback(state)
                if self.max_steps is not None and state.n_steps >= self.max_steps:
                    break
            if epoch_weight is None:
                epoch_weight = w_total
            records.append(EpochRecord(epoch=epoch, n_steps=state.n_steps,
                                       weight_seen=state.weight_seen,
                                       log_likelihood=ll_total / w_total,
                                       step_size=state.step_size,
                                       time=time.perf_counter() - start))
            if self.max_steps is not None and state.n_steps >= self.max_steps:
                break
            if len(records) > 1:
                change = records[-1].log_likelihood - records[-2].log_likelihood
                if abs(change) < self.tol:
                    converged = True
                    break
        if self.tol > 0 and not converged:
            warnings.warn(f"online EM did not converge in {len(records)} epoch(s) (last change "
                          f"of the epoch log-likelihood {change:.3g} per sample, "
                          f"tol={self.tol}): increase max_epochs or tol",
                          ConvergenceWarning, stacklevel=2)
        return OnlineEMResult(model=state.model, converged=converged, n_steps=state.n_steps,
                              n_epochs=len(records), history=OnlineHistory(records),
                              state=state)


def _keep(stats: MixtureStatistics, keep: np.ndarray) -> MixtureStatistics:
    """The running statistics of the components kept after pruning, per unit weight again."""
    kept = MixtureStatistics(
        masses=stats.masses[keep],
        components=tuple(s for s, k in zip(stats.components, keep) if k),
        families=tuple(f for f, k in zip(stats.families, keep) if k))
    total = kept.total_weight
    return kept.reweighted(1.0 / total) if total > 0 else kept


def _warn_lost(old: MixtureModel, new: MixtureModel, t: int) -> None:
    lost = np.flatnonzero((old.weights > 0) & (new.weights == 0))
    if lost.size:
        warnings.warn(
            f"component(s) {lost.tolist()} lost all responsibility mass at online EM step {t} "
            "and were kept with weight 0: use fewer components, another initialisation, "
            "larger first mini-batches (or warm_up), or a Dirichlet prior on the weights to "
            "prune them explicitly", DegenerateComponentWarning, stacklevel=4)


# -- mini-batches ---------------------------------------------------------------------------------
#: rows read at once from a source that is not in memory (a memmap, chunks): the unit within
#: which the rows are shuffled
_READ_ROWS = 1 << 16


def _in_memory(source: DataSource) -> ArraySource | None:
    return source if isinstance(source, ArraySource) and source.in_memory else None


def _source(X: Any, sample_weight: Any, model: MixtureModel,
            allow_missing: bool) -> DataSource:
    source = as_source(X, sample_weight, n_features=model.n_features,
                       allow_missing=allow_missing)
    if isinstance(source, DaskSource):
        raise TypeError("online EM reads its mini-batches on the client, so it does not take "
                        "a dask array; iterate over its blocks (e.g. a list of computed "
                        "chunks) or fit it with EMAlgorithm, which runs on the workers")
    array = _in_memory(source)
    if array is not None:
        model.check_support(array.X)  # once; chunks read later are checked as they come
    return source


def _total_weight(source: DataSource) -> float | None:
    """Σ_i w_i of the data, when known without a pass."""
    array = _in_memory(source)
    if array is None:
        return None
    return float(array.n_samples if array.weights is None else array.weights.sum())


def _batches(source: DataSource, batch_size: int, model: MixtureModel,
             rng: np.random.Generator | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of mini-batches ``(X_b, w_b)``, shuffled (by ``rng``) across an in-memory
    array or within each chunk read from elsewhere; mini-batches of zero weight are left out
    (they carry nothing)."""
    array = _in_memory(source)
    chunks: Iterable[tuple[np.ndarray, np.ndarray | None]]
    if array is not None:
        chunks = [(array.X, array.weights)]
    else:
        chunks = ((c.X, c.weights) for c in source.chunks(max(batch_size, _READ_ROWS)))
    for Xc, wc in chunks:
        if array is None:
            model.check_support(Xc)
        n = Xc.shape[0]
        w = np.ones(n) if wc is None else wc
        order = None if rng is None else rng.permutation(n)
        for lo in range(0, n, batch_size):
            rows = slice(lo, lo + batch_size) if order is None else order[lo:lo + batch_size]
            if np.any(w[rows] > 0):
                yield Xc[rows], w[rows]
