r"""The EM loop: one streaming pass over the data per iteration.

For any q, ``log p(X|θ) = L(q, θ) + KL(q ‖ p(c|X, θ))`` with

    L(q, θ) = Σ_i w_i Σ_k q_ik [log π_k + log p_k(x_i|θ_k) − log q_ik].

Each iteration makes one pass over row chunks under the current θ_t: the E-step strategy turns
each chunk's posterior into q, the pass accumulates the log-likelihood, the bound
L(q_t, θ_t) and the sufficient statistics weighted by q_t; then the M-step strategy produces
θ_{t+1} from the totals. The N × K responsibilities are never held for more than one chunk.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from typing import Any

import attrs
import numpy as np

from .._validation import as_rng, check_scalar
from ..exceptions import ConvergenceWarning, DegenerateComponentWarning, ObjectiveDecreaseWarning
from ..mixture import MixtureModel, MixtureStatistics, _StatisticsParts, logsumexp_rows
from .estep import EStep, SoftEStep
from .mstep import MaximumLikelihood, MStep
from .sources import Chunk, DataSource, Runner, _sequential, as_source

__all__ = [
    "EMAlgorithm",
    "EMResult",
    "History",
    "IterationRecord",
    "labels_to_responsibility_prior",
]

# Memory for one chunk's temporaries (the families' residuals and log-densities, the E-step's
# (n, K) arrays): bounded, not O(n); each thread has a chunk in flight. Measured on 2 cores
# with the estimates of MixtureModel._row_bytes and EStep._n_arrays (within 10 % of tracemalloc
# for the Gaussian kernels): smaller chunks pay per-chunk calls and, with threads, a GIL
# hand-over per numpy call; larger ones no longer share the 32 MiB L3 cache with the rows
# streaming through, and would raise the peak memory.
_CHUNK_BUDGET_BYTES = 8 * 2**20

# Threads pay a GIL hand-over per numpy call: below this much work per chunk (measured in
# its temporaries) one thread is faster on 2 cores.
_THREAD_MIN_CHUNK_BYTES = 4 * 2**20



@attrs.frozen(kw_only=True)
class IterationRecord:
    """What one EM iteration saw, per unit of sample weight (divide totals by Σ_i w_i).

    Attributes
    ----------
    iteration : int
        0 for the initial model, t for the model after t M-steps.
    log_likelihood : float
        log p(X | θ_t) / N.
    log_prior : float
        log p(θ_t) / N (0 for maximum likelihood).
    objective : float
        The E-step's guaranteed objective at θ_t plus ``log_prior``; for ``SoftEStep`` the
        log-likelihood. Convergence is judged on its change.
    bound : float
        L(q_t, θ_t) / N with q_t the E-step's q under θ_t.
    kl : float
        KL(q_t ‖ p(c | X, θ_t)) / N = log_likelihood − bound (0 for the soft E-step).
    bound_after_m_step : float or None
        L(q_t, θ_{t+1}) / N: the M-step's gain is this minus ``bound``. ``None`` on the last
        record, or when a family does not implement ``expected_log_prob``.
    n_components : int
        Number of components with positive weight.
    stage : int
        The E-step's stage (always 0 unless it follows a schedule, e.g. annealing).
    pruned : tuple of int
        Components (by their index in the initial model) that the M-step before this record
        removed, e.g. a MAP step with a sparse Dirichlet prior.
    time : float
        Seconds since the start of the fit.
    model : MixtureModel or None
        θ_t, kept when ``EMAlgorithm(keep_models=True)``.
    """

    iteration: int
    log_likelihood: float
    log_prior: float
    objective: float
    bound: float
    kl: float
    bound_after_m_step: float | None
    n_components: int
    stage: int
    time: float
    pruned: tuple[int, ...] = ()
    model: MixtureModel | None = attrs.field(default=None, repr=False)


def _records(records: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(records)


class _RecordTable(Sequence[Any]):
    """A sequence of records (``records``, a tuple) whose fields subclasses also offer as
    arrays through :meth:`_column`."""

    records: tuple[Any, ...]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: Any) -> Any:
        return self.records[i]

    def _column(self, name: str, dtype: Any = float) -> np.ndarray:
        return np.array([getattr(r, name) for r in self.records], dtype=dtype)

    @property
    def log_likelihood(self) -> np.ndarray:
        return self._column("log_likelihood")

    @property
    def time(self) -> np.ndarray:
        return self._column("time")


@attrs.frozen
class History(_RecordTable):
    """The records of a fit, with each field available as an array (``history.objective``)."""

    records: tuple[IterationRecord, ...] = attrs.field(converter=_records)

    @property
    def iteration(self) -> np.ndarray:
        return self._column("iteration", int)

    @property
    def objective(self) -> np.ndarray:
        return self._column("objective")

    @property
    def bound(self) -> np.ndarray:
        return self._column("bound")

    @property
    def kl(self) -> np.ndarray:
        return self._column("kl")

    @property
    def log_prior(self) -> np.ndarray:
        return self._column("log_prior")

    @property
    def bound_after_m_step(self) -> np.ndarray:
        """NaN where the value is unavailable (``None`` in the records)."""
        return np.array([np.nan if r.bound_after_m_step is None else r.bound_after_m_step
                         for r in self.records])

    @property
    def kl_after_m_step(self) -> np.ndarray:
        """KL(q_t ‖ p(c | X, θ_{t+1})) = log_likelihood[t+1] − bound_after_m_step[t]: the gap the
        M-step opens and the next E-step closes (NaN on the last record)."""
        out = np.full(len(self.records), np.nan)
        out[:-1] = self.log_likelihood[1:] - self.bound_after_m_step[:-1]
        return out

    @property
    def stage(self) -> np.ndarray:
        return self._column("stage", int)

    @property
    def n_components(self) -> np.ndarray:
        return self._column("n_components", int)

    @property
    def pruned(self) -> list[tuple[int, tuple[int, ...]]]:
        """(iteration, initial indices of the components pruned just before it) events."""
        return [(r.iteration, r.pruned) for r in self.records if r.pruned]


@attrs.frozen(kw_only=True)
class EMResult:
    """The outcome of :meth:`EMAlgorithm.fit`.

    Attributes
    ----------
    model : MixtureModel
        The final θ (after ``n_iter`` M-steps).
    converged : bool
        Whether the objective changed by less than ``tol`` per unit weight (always False
        for a non-monotone E-step such as ``StochasticEStep``, which runs ``max_iter``).
    n_iter : int
        Number of M-steps taken.
    history : History
        One record per model evaluated: θ_0 … θ_n.
    component_ids : ndarray of int
        For each component of ``model``, its index in the initial model (they differ once
        components were pruned).
    """

    model: MixtureModel
    converged: bool
    n_iter: int
    history: History
    component_ids: np.ndarray = attrs.field(eq=attrs.cmp_using(eq=np.array_equal))

    @property
    def log_likelihood(self) -> float:
        """log p(X | θ) / N of the final model."""
        return self.history[-1].log_likelihood

    @property
    def objective(self) -> float:
        """The final objective per unit weight."""
        return self.history[-1].objective


@attrs.frozen
class _PassTotals:
    stats: MixtureStatistics
    log_likelihood: float
    objective: float
    expected_log_joint: float  # Σ w q (log π + log p)
    entropy: float  # −Σ w q log q
    missing_entropy: float  # Σ w q H[x_mis | x_obs, k] (0 without missing entries)
    weight: float  # Σ w
    n_rows: int


@attrs.frozen
class _ChunkTotals:
    """What one chunk contributes; chunks are added in row order, whatever thread ran them."""

    parts: _StatisticsParts
    log_likelihood: float
    objective: float
    expected_log_joint: float
    entropy: float
    weight: float
    n_rows: int

    def __add__(self, other: _ChunkTotals) -> _ChunkTotals:
        return _ChunkTotals(self.parts + other.parts,
                            self.log_likelihood + other.log_likelihood,
                            self.objective + other.objective,
                            self.expected_log_joint + other.expected_log_joint,
                            self.entropy + other.entropy,
                            self.weight + other.weight,
                            self.n_rows + other.n_rows)


def _positive_int(name: str) -> Callable[[Any, Any, Any], None]:
    def check(instance: Any, attribute: Any, value: Any) -> None:
        check_scalar(value, name, (int, np.integer), low=1)
    return check


def _optional_positive_int(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None:
        check_scalar(value, attribute.name, (int, np.integer), low=1)


def _non_negative(instance: Any, attribute: Any, value: Any) -> None:
    check_scalar(value, attribute.name, (int, float, np.integer, np.floating), low=0.0)


def _one_of(*options: str) -> Callable[[Any, Any, Any], None]:
    def check(instance: Any, attribute: Any, value: Any) -> None:
        if value not in options:
            raise ValueError(f"{attribute.name} must be one of {list(options)}, got {value!r}")
    return check


def _of_type(kind: type) -> Callable[[Any, Any, Any], None]:
    def check(instance: Any, attribute: Any, value: Any) -> None:
        if not isinstance(value, kind):
            raise TypeError(f"{attribute.name} must be an instance of {kind.__name__}, got "
                            f"{type(value).__name__}")
    return check


@attrs.frozen(kw_only=True)
class EMAlgorithm:
    """Expectation-Maximization with pluggable E- and M-steps.

    Parameters
    ----------
    e_step : EStep, default=SoftEStep()
        How q is formed from the posterior.
    m_step : MStep, default=MaximumLikelihood()
        How θ is re-estimated from the q-weighted statistics.
    tol : float, default=1e-3
        Stop when the objective (per unit sample weight) changes by less than ``tol``.
    max_iter : int, default=100
        Maximum number of M-steps.
    chunk_size : int, optional
        Rows per chunk of the streaming pass; by default chosen so that a chunk's temporaries
        take at most about 8 MiB (each thread holds one), in equal chunks that share out evenly
        over the threads. The result does not depend on it beyond round-off.
    n_threads : int, optional
        Threads that process chunks in parallel (numpy and BLAS release the GIL; BLAS itself
        is limited to one thread per worker during the fit). Default: the CPUs available to
        the process. Chunks are reduced in row order, so the result does not depend on it.
        E-steps that draw random numbers, and chunks too small to pay for the hand-overs
        between threads (about 4 MiB of temporaries), run on one thread.
    keep_models : bool, default=False
        Keep every iterate θ_t in the history records.
    callbacks : sequence of callables, default=()
        Each is called as ``callback(record, model)`` once per evaluated model θ_t, when its
        record is complete (after the M-step that follows it, or at the end of the fit).
    missing : {"raise", "marginalize"}, default="raise"
        What a NaN entry of X means. "raise": an error. "marginalize": a missing value; the
        E-step scores each row by the marginal density of its observed entries and the M-step
        uses the expected statistics given them, which is exact EM for data missing at random
        (see the user guide's section on missing data).

    Examples
    --------
    >>> import numpy as np
    >>> from probmix import EMAlgorithm, MixtureModel
    >>> from probmix.distributions import Gaussian
    >>> truth = MixtureModel(weights=[0.5, 0.5], components=[
    ...     Gaussian(mean=[-3.0], covariance=[[1.0]]), Gaussian(mean=[3.0], covariance=[[1.0]])])
    >>> X, _ = truth.sample(500, np.random.default_rng(0))
    >>> start = MixtureModel(weights=[0.5, 0.5], components=[
    ...     Gaussian(mean=[-1.0], covariance=[[4.0]]), Gaussian(mean=[1.0], covariance=[[4.0]])])
    >>> result = EMAlgorithm(tol=1e-8).fit(X, start)
    >>> result.converged, bool(np.all(np.diff(result.history.log_likelihood) >= -1e-12))
    (True, True)
    """

    e_step: EStep = attrs.field(factory=SoftEStep, validator=_of_type(EStep))
    m_step: MStep = attrs.field(factory=MaximumLikelihood, validator=_of_type(MStep))
    tol: float = attrs.field(default=1e-3, validator=_non_negative)
    max_iter: int = attrs.field(default=100, validator=_positive_int("max_iter"))
    chunk_size: int | None = attrs.field(default=None, validator=_optional_positive_int)
    keep_models: bool = False
    n_threads: int | None = attrs.field(default=None, validator=_optional_positive_int)
    callbacks: tuple[Callable[[IterationRecord, MixtureModel], Any], ...] = attrs.field(
        default=(), converter=tuple)
    missing: str = attrs.field(default="raise", validator=_one_of("raise", "marginalize"))

    def fit(self, X: Any, init: MixtureModel, *, sample_weight: Any = None,
            random_state: Any = None, responsibility_prior: Any = None) -> EMResult:
        """Run EM from the model ``init``.

        Parameters
        ----------
        X : array-like, numpy.memmap, dask.array.Array or re-iterable of chunks
            The rows, of shape (n_samples, n_features); float32 is kept, other numbers are
            converted to float64. An array is validated once and read in slices; a memmap
            is read (and validated) slice by slice, never loaded whole; a Dask array is
            summarised block by block on the Dask workers; any other re-iterable of 2-D
            chunks, or of ``(chunk, weights)`` pairs, is read afresh on every iteration (see
            :mod:`probmix.em.sources`). The fit is the same to round-off whatever the form.
        init : MixtureModel
            θ_0 (see :mod:`probmix.init` for ways to build one from the data).
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights w_i; an integer weight is equivalent to repeating the row.
        random_state : None, int or numpy.random.Generator
            Generator for stochastic E-steps.
        responsibility_prior : array-like of shape (n_samples, n_components), optional
            Non-negative r_ik multiplying each row's posterior: q_ik ∝ r_ik π_k p_k(x_i). A
            one-hot row clamps a known label, a row of ones leaves it free (see
            :func:`labels_to_responsibility_prior`). The objective becomes
            Σ_i w_i log Σ_k r_ik π_k p_k(x_i): the likelihood of the unlabelled rows times the
            joint likelihood of the labelled ones. In-memory arrays only.

        Returns
        -------
        EMResult

        Warns
        -----
        ConvergenceWarning
            When ``max_iter`` is reached before convergence.
        ObjectiveDecreaseWarning
            When a monotone E-step's objective decreases beyond round-off.
        DegenerateComponentWarning
            When a component loses all its responsibility mass (it is kept with weight 0).
        """
        if not isinstance(init, MixtureModel):
            raise TypeError(f"init must be a MixtureModel, got {type(init).__name__}")
        source = as_source(X, sample_weight, n_features=init.n_features,
                           allow_missing=self.missing == "marginalize")
        if source.in_memory:  # other sources are checked chunk by chunk in the first pass
            init.check_support(source.X)  # type: ignore[attr-defined]
        self.m_step.check(init)
        prior_r = None
        if responsibility_prior is not None:
            if not source.in_memory:
                raise TypeError("responsibility_prior needs X as an in-memory array (its rows "
                                "are matched to X's by position)")
            assert source.n_samples is not None  # an in-memory array
            prior_r = _check_responsibility_prior(responsibility_prior, source.n_samples,
                                                  init.n_components)
        rng = as_rng(random_state)
        # the E-step's arrays, w q for weighted rows (a stream's weights are unknown yet:
        # counted), and log r and log(π p r) for a responsibility prior
        arrays = (self.e_step._n_arrays + (getattr(source, "weights", True) is not None)
                  + 2 * (prior_r is not None))
        row_bytes = init._row_bytes(source.dtype) + 8 * init.n_components * arrays
        chunk = self.chunk_size or _default_chunk_size(source.n_samples, row_bytes)
        threads = self._threads(source.n_samples, chunk, row_bytes)
        if not self.chunk_size:
            chunk = _balanced(source.n_samples, chunk, threads)
        # an array's chunks are views: all can be handed out at once
        with _chunk_runner(threads, None if source.in_memory else 2 * threads) as run:
            return self._fit(source, init, prior_r, rng, chunk, run)

    def _threads(self, n_samples: int | None, chunk: int, row_bytes: int) -> int:
        if _blas_controller() is None or chunk * row_bytes < _THREAD_MIN_CHUNK_BYTES:
            return 1
        wanted = self.n_threads or _available_cpus()
        return max(1, wanted if n_samples is None else min(wanted, -(-n_samples // chunk)))

    def _fit(self, source: DataSource, init: MixtureModel, prior_r: np.ndarray | None,
             rng: np.random.Generator, chunk: int, run: Runner) -> EMResult:
        eps = float(np.finfo(source.dtype).eps)
        start = time.perf_counter()

        model, ids, stage = init, np.arange(init.n_components), 0
        totals = self._pass(model, source, prior_r, ids, chunk, 0, stage, rng, run)
        total_w, n_rows = totals.weight, totals.n_rows
        if not total_w > 0:
            raise ValueError("sample_weight sums to zero: no row carries any weight")
        records = [self._record(0, stage, model, ids, (), totals, total_w, start)]
        converged = False
        n_iter = 0
        change = float("nan")
        for t in range(1, self.max_iter + 1):
            new_model = self.m_step(totals.stats, model, ids=ids)
            n_iter = t
            # L(q_t, θ_{t+1}) from the statistics alone: the M-step's gain, with no extra pass
            # (-inf when a pruned component still had mass under q_t: recorded as None). With
            # missing entries q also covers them: their expected complete-data log-density is
            # in the statistics, their entropy under q_t in missing_entropy.
            after = new_model.expected_log_joint(totals.stats)
            if after is not None and np.isfinite(after):
                records[-1] = attrs.evolve(records[-1], bound_after_m_step=(
                    after + totals.entropy + totals.missing_entropy) / total_w)
            self._emit(records[-1], model)
            pruned: tuple[int, ...] = ()
            if self.m_step.prunes and np.any(new_model.weights == 0):
                keep = new_model.weights > 0
                pruned = tuple(int(i) for i in ids[~keep])
                _check_no_stranded_rows(prior_r, ids[keep], pruned, t)
                new_model = MixtureModel(weights=new_model.weights[keep], components=[
                    c for c, k in zip(new_model.components, keep) if k])
                ids = ids[keep]
            else:
                self._warn_lost_components(model, new_model, t)
            model = new_model
            totals = self._pass(model, source, prior_r, ids, chunk, t, stage, rng, run)
            if totals.n_rows != n_rows or not np.isclose(totals.weight, total_w, rtol=1e-9):
                raise ValueError(
                    f"the data changed between EM iterations: the first pass read {n_rows} "
                    f"rows of total weight {total_w:.10g}, pass {t} read {totals.n_rows} of "
                    f"{totals.weight:.10g}; a re-iterable source must yield the same rows on "
                    "every pass")
            records.append(self._record(t, stage, model, ids, pruned, totals, total_w, start))
            if pruned or records[-2].stage != stage:
                continue  # a model of another dimension, or another stage: not comparable
            change = records[-1].objective - records[-2].objective
            self._check_decrease(change, records[-2].objective, t,
                                 eps, self.m_step.max_decrease(model))
            # a stochastic E-step's trace fluctuates: a small change is chance, not convergence
            if self.e_step.monotone and abs(change) < self.tol:
                if stage + 1 < self.e_step.n_stages:
                    stage += 1
                    continue
                converged = True
                break
        self._emit(records[-1], model)
        if not converged and self.e_step.monotone:  # a stochastic E-step runs max_iter by design
            warnings.warn(f"EM did not converge in max_iter={self.max_iter} iterations (last "
                          f"objective change {change:.3g} per sample, tol={self.tol}): increase "
                          "max_iter, increase tol, or try another initialisation",
                          ConvergenceWarning, stacklevel=3)
        return EMResult(model=model, converged=converged, n_iter=n_iter,
                        history=History(records), component_ids=ids)

    # -- the streaming pass --------------------------------------------------------------------
    def _pass(self, model: MixtureModel, source: DataSource, prior_r: np.ndarray | None,
              ids: np.ndarray, chunk: int, iteration: int, stage: int,
              rng: np.random.Generator, run: Runner) -> _PassTotals:
        # A stochastic E-step draws from a generator seeded by (this pass, the chunk's first
        # row): the same draws whichever thread or Dask worker runs the chunk.
        seed = int(rng.integers(2**63)) if self.e_step.uses_rng else None
        check = iteration == 0 and not source.in_memory  # an array was checked whole
        work = functools.partial(_chunk_totals, self.e_step, model, ids, iteration, stage, seed,
                                 prior_r, check, self.missing == "raise")
        total = source.map_reduce(work, chunk, run)
        stats = total.parts.finish(tuple(type(c) for c in model.components))
        return _PassTotals(stats, total.log_likelihood, total.objective,
                           total.expected_log_joint, total.entropy, total.parts.missing_entropy,
                           total.weight, total.n_rows)

    def _record(self, t: int, stage: int, model: MixtureModel, ids: np.ndarray,
                pruned: tuple[int, ...], totals: _PassTotals, total_w: float,
                start: float) -> IterationRecord:
        log_prior = self.m_step.log_prior(model, ids=ids)
        bound = (totals.expected_log_joint + totals.entropy) / total_w
        ll = totals.log_likelihood / total_w
        record = IterationRecord(
            iteration=t, log_likelihood=ll, log_prior=log_prior / total_w,
            objective=(totals.objective + log_prior) / total_w, bound=bound,
            kl=max(ll - bound, 0.0), bound_after_m_step=None,
            n_components=int(np.count_nonzero(model.weights > 0)), stage=stage, pruned=pruned,
            time=time.perf_counter() - start, model=model if self.keep_models else None)
        return record

    def _emit(self, record: IterationRecord, model: MixtureModel) -> None:
        """Hand a finished record (its ``bound_after_m_step`` filled in) to the callbacks."""
        for callback in self.callbacks:
            callback(record, model)

    def _check_decrease(self, change: float, previous: float, t: int, eps: float,
                        allowance: float) -> None:
        # Round-off in a mean of n log-densities is a few ε |mean| (ε of the data's dtype:
        # float32 data is scored in float32); 1e-9 leaves room for float64 accumulation. An
        # inexact M-step (a ridge) may lose up to its stated allowance.
        slack = max(1e-9, 100 * eps) * max(1.0, abs(previous)) + allowance
        if self.e_step.monotone and change < -slack:
            warnings.warn(
                f"the {self.e_step.objective_name} decreased by {-change:.3g} per sample at "
                f"iteration {t}; EM guarantees it never decreases, so this points at an inexact "
                "M-step (e.g. a large reg_covar, which is not a prior) or ill-conditioned data",
                ObjectiveDecreaseWarning, stacklevel=4)

    @staticmethod
    def _warn_lost_components(old: MixtureModel, new: MixtureModel, t: int) -> None:
        if old.n_components != new.n_components:
            return  # an M-step that prunes components reports that itself
        lost = np.flatnonzero((old.weights > 0) & (new.weights == 0))
        if lost.size:
            warnings.warn(
                f"component(s) {lost.tolist()} lost all responsibility mass at iteration {t} and "
                "were kept with weight 0: use fewer components, another initialisation, or a "
                "Dirichlet prior on the weights to prune them explicitly",
                DegenerateComponentWarning, stacklevel=4)


_UNUSED_RNG = np.random.default_rng(0)


def _chunk_totals(e_step: EStep, model: MixtureModel, ids: np.ndarray, iteration: int,
                  stage: int, seed: int | None, prior_r: np.ndarray | None,
                  check_support: bool, complete: bool, chunk: Chunk) -> _ChunkTotals:
    """The E-step of one chunk fused with its M-step statistics (a module-level function, so a
    Dask worker can run it)."""
    Xc, wc = chunk.X, chunk.weights
    if check_support:
        try:
            model.check_support(Xc)
        except ValueError as exc:
            raise ValueError(f"in the chunk of rows from {chunk.start}: {exc}") from None
    workspace: dict[Any, Any] = {}  # the families' residuals, reused by the statistics
    # complete: validation refused NaN, so the mixture need not look for missing entries
    log_joint = model._log_joint(Xc, workspace, complete=complete)
    if prior_r is None:
        post = model._posterior(log_joint)
        log_evidence = post.log_evidence
    else:  # q ∝ r π p: the E-step sees the log-joint shifted by log r
        with np.errstate(divide="ignore"):
            log_r = np.log(prior_r[chunk.start:chunk.start + chunk.n_rows][:, ids])
        post = model._posterior(log_joint + log_r)
        log_evidence = logsumexp_rows(log_joint)
    # an E-step that draws nothing (seed None) is handed a generator it never touches
    rng = _UNUSED_RNG if seed is None else np.random.default_rng([seed, chunk.start])
    q, obj_rows = e_step(post, iteration=iteration, stage=stage, rng=rng)
    # w_i q_ik in float64 for the statistics
    Q = (q if q.dtype == np.float64 else q.astype(np.float64)) if wc is None else q * wc[:, None]
    # Σ w q log(π p) and −Σ w q log q, with 0 · log 0 = 0 and 0 · (−∞) = 0 (a component
    # with zero weight or density): one dot each, the masked form only when one is hit.
    # An E-step that hands back the posterior itself (the soft one) has log q at hand.
    weight = float(Xc.shape[0]) if wc is None else float(np.sum(wc))
    total_ll = float(np.sum(log_evidence)) if wc is None else float(wc @ log_evidence)
    if obj_rows is log_evidence:  # the soft E-step's objective is the log-likelihood
        total_obj = total_ll
    else:
        total_obj = float(np.sum(obj_rows)) if wc is None else float(wc @ obj_rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        elj = _dot(Q, log_joint)
        if not np.isfinite(elj):
            elj = _masked_dot(Q, log_joint)
        if q is post._resp and prior_r is None and log_joint.dtype == np.float64 \
                and np.isfinite(total_ll):
            # q is the posterior, log q = log(π p) − log p(x): −Σ w q log q = Σ w log p(x)
            # − Σ w q log(π p), with no pass over log q (float64 only: float32 scores would
            # leave this difference with an error of ε |log p(x)| per row)
            ent = total_ll - elj
        else:
            log_q = post.log_resp if q is post._resp else np.log(q)
            ent = -_dot(Q, log_q)
            if not np.isfinite(ent):
                ent = -_masked_dot(Q, log_q)
    return _ChunkTotals(model._statistics_parts(Xc, Q, workspace), total_ll, total_obj, elj,
                        ent, weight, Xc.shape[0])


def labels_to_responsibility_prior(labels: Any, n_components: int) -> np.ndarray:
    """A responsibility prior from partial labels: one-hot rows where ``labels[i] >= 0``,
    rows of ones (no constraint) where ``labels[i] == -1``.

    Parameters
    ----------
    labels : array-like of int, shape (n_samples,)
        Known component of each row, or -1 if unknown.
    n_components : int

    Returns
    -------
    ndarray of shape (n_samples, n_components)
    """
    lab = np.asarray(labels)
    if lab.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {lab.shape}")
    if lab.size and not np.issubdtype(lab.dtype, np.integer):
        if not (np.issubdtype(lab.dtype, np.floating) and np.all(lab == np.round(lab))):
            raise TypeError(f"labels must be integers (-1 for unknown), got dtype {lab.dtype}")
        lab = lab.astype(int)
    if np.any((lab < -1) | (lab >= n_components)):
        bad = lab[(lab < -1) | (lab >= n_components)][0]
        raise ValueError(f"labels must be -1 (unknown) or in [0, {n_components}), got {bad}")
    prior = np.ones((lab.size, n_components))
    known = lab >= 0
    prior[known] = np.eye(n_components)[lab[known]]
    return prior


def _check_no_stranded_rows(prior_r: np.ndarray | None, kept: np.ndarray,
                            pruned: tuple[int, ...], t: int) -> None:
    """Pruning must not remove every component a labelled row allows."""
    if prior_r is None:
        return
    stranded = ~np.any(prior_r[:, kept] > 0, axis=1)
    if np.any(stranded):
        rows = np.flatnonzero(stranded)
        raise ValueError(
            f"the M-step pruned component(s) {list(pruned)} at iteration {t}, but row(s) "
            f"{rows[:5].tolist()} are labelled with them: the weights prior removes components "
            "supported by fewer than 1 - alpha points; label more rows, or raise alpha")


def _check_responsibility_prior(value: Any, n_samples: int,
                                n_components: int) -> np.ndarray | None:
    if value is None:
        return None
    r = np.asarray(value, dtype=float)
    if r.shape != (n_samples, n_components):
        raise ValueError(f"responsibility_prior must have shape ({n_samples}, {n_components}), "
                         f"got {r.shape}")
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError("responsibility_prior must be finite and non-negative")
    empty = ~np.any(r > 0, axis=1)
    if np.any(empty):
        raise ValueError(f"responsibility_prior row {int(np.flatnonzero(empty)[0])} is all zero: "
                         "every row must allow at least one component")
    return r


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Σ a_ik b_ik without copies (both arrays column-major in the EM pass)."""
    if a.flags.f_contiguous and b.flags.f_contiguous:
        return float(np.dot(a.T.ravel(), b.T.ravel()))
    if a.flags.c_contiguous and b.flags.c_contiguous:
        return float(np.dot(a.ravel(), b.ravel()))
    return float(np.einsum("ij,ij->", a, b))


def _masked_dot(q: np.ndarray, values: np.ndarray) -> float:
    """Σ q · values over the entries with q > 0 (where values may be −∞ only if q = 0)."""
    with np.errstate(invalid="ignore"):
        prod = q * values
    prod[q == 0] = 0.0
    return float(np.sum(prod))


def _default_chunk_size(n_samples: int | None, bytes_per_row: int) -> int:
    """Rows per chunk: about ``_CHUNK_BUDGET_BYTES`` of temporaries, and at least ~16 chunks
    when that leaves more than 4096 rows per chunk (temporaries well below the size of the
    data, and work for every thread)."""
    budget = _CHUNK_BUDGET_BYTES // max(bytes_per_row, 1)
    if n_samples is None:  # a stream of chunks: the budget alone
        return max(256, budget)
    return max(256, min(budget, max(4096, -(-n_samples // 16))))


def _balanced(n_samples: int | None, chunk: int, threads: int) -> int:
    """At most ``chunk`` rows per chunk, in equal chunks whose count is a multiple of the thread
    count (exactly so when there are more rows than chunks squared): a pass ends when its
    slowest thread does, so the threads get equal work (21 chunks and a short one on 2 threads
    would leave one thread idle for ~5 % of the pass)."""
    if n_samples is None or threads <= 1 or n_samples <= chunk:
        return chunk
    n_chunks = -(-n_samples // chunk)
    n_chunks += -n_chunks % threads
    return -(-n_samples // n_chunks)


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# -- running chunks -------------------------------------------------------------------------------
def _on_pool(pool: Executor, depth: int | None) -> Runner:
    """Run chunks on the pool, at most ``depth`` ahead, and yield their results in order.

    With ``depth`` None every chunk is submitted at once and the results are yielded when all
    are done: the caller then wakes once per pass, not once per chunk (each wake-up preempted
    a worker on 2 cores: ~40 involuntary context switches per pass, 3 % of its time).
    """
    def run(work: Callable[[Chunk], _ChunkTotals],
            chunks: Iterable[Chunk]) -> Iterator[_ChunkTotals]:
        if depth is None:
            futures = [pool.submit(work, chunk) for chunk in chunks]
            wait_for(futures)
            for future in futures:
                yield future.result()
            return
        pending: collections.deque[Any] = collections.deque()
        for chunk in chunks:
            pending.append(pool.submit(work, chunk))
            if len(pending) >= depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    return run


_CONTROLLER: Any = None


def _blas_controller() -> Any:
    """threadpoolctl's controller of the loaded BLAS libraries (None without threadpoolctl)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - a declared dependency
            _CONTROLLER = False
        else:
            _CONTROLLER = ThreadpoolController()
    return _CONTROLLER or None


@contextlib.contextmanager
def _chunk_runner(n_threads: int, depth: int | None = None) -> Iterator[Runner]:
    # BLAS on one thread per worker while the fit runs: the parallelism is over chunks (BLAS
    # threads on top would oversubscribe the cores), and the result then does not depend on
    # the number of threads.
    controller = _blas_controller()
    with contextlib.nullcontext() if controller is None else controller.limit(
            limits=1, user_api="blas"):
        if n_threads <= 1:
            yield _sequential
            return
        with ThreadPoolExecutor(max_workers=n_threads,
                                thread_name_prefix="probmix-em") as pool:
            yield _on_pool(pool, depth)


