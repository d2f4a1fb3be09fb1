r"""Conformance checks for a component family: does it keep the :class:`~probmix.Distribution`
contract that EM relies on?

Each check is a public function taking a distribution *instance* and raising
``AssertionError`` with a message that names the check and the numbers when the family breaks
the contract; :func:`check_distribution` runs them all and returns a :class:`CheckReport`.
A check that does not apply (no scipy twin given, no ``expected_log_prob``) raises
:class:`CheckSkipped`, which pytest reports as a skip.

The checks use only the contract (``log_prob``, ``sufficient_statistics``,
``from_statistics``, ``sample``, ``check_support``), so they work for opaque families whose
parameters they cannot read: two fits are compared through their ``log_prob`` on probe rows.
Families whose ``sufficient_statistics`` is an instance method (statistics that depend on the
current parameters, e.g. a latent-scale Student t) are supported: the statistics are taken
under the instance being checked, and a fit is iterated to its fixed point.

Every random draw comes from the ``rng`` argument (an int seed by default), so a check is
reproducible; :func:`check_distribution` gives each check its own stream, so running a subset
sees the same numbers as running all of them.
"""

from __future__ import annotations

import functools
import inspect
import math
import unittest
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from ..distributions.base import Distribution, Statistics
from ..exceptions import ConvergenceWarning, DegenerateComponentWarning, ObjectiveDecreaseWarning

__all__ = [
    "CHECKS",
    "CheckReport",
    "CheckSkipped",
    "check_contract",
    "check_distribution",
    "check_em_monotone",
    "check_expected_log_prob",
    "check_log_prob_matches",
    "check_normalised",
    "check_parameter_recovery",
    "check_sample_moments",
    "check_statistics_additive",
    "check_statistics_reweighted",
    "check_weighted_fit",
]

#: quadrature grids larger than this fall back to a Monte Carlo estimate
MAX_GRID_POINTS = 250_000


class CheckSkipped(unittest.SkipTest):
    """A check does not apply to this family (the message says why).

    A subclass of :class:`unittest.SkipTest`, so a test calling one check directly is
    reported as skipped by pytest and unittest.
    """


@attrs.frozen(kw_only=True)
class CheckReport:
    """What :func:`check_distribution` did: the checks that ran (all passed, or it would
    have raised), those skipped and why, and a one-line summary of each check's numbers."""

    family: str
    ran: tuple[str, ...]
    skipped: Mapping[str, str]
    details: Mapping[str, str]

    def __str__(self) -> str:
        lines = [f"check_distribution({self.family}): {len(self.ran)} passed, "
                 f"{len(self.skipped)} skipped"]
        lines += [f"  passed   {name}: {self.details[name]}" for name in self.ran]
        lines += [f"  skipped  {name}: {why}" for name, why in self.skipped.items()]
        return "\n".join(lines)


# -- helpers --------------------------------------------------------------------------------
def _rng(rng: Any) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _name(dist: Distribution) -> str:
    return type(dist).__name__


def _check(name: str) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """Turn any error raised inside a check (usually deep in the family) into an
    AssertionError naming the check, the error and its message (the traceback is chained)."""
    def decorate(func: Callable[..., str]) -> Callable[..., str]:
        @functools.wraps(func)
        def run(dist: Distribution, *args: Any, **kwargs: Any) -> str:
            if not isinstance(dist, Distribution):
                raise TypeError(f"{name} needs a Distribution instance, got "
                                f"{type(dist).__name__}")
            try:
                return func(dist, *args, **kwargs)
            except (AssertionError, CheckSkipped, _UsageError):
                raise
            except Exception as exc:
                raise AssertionError(f"{name} ({_name(dist)}): {type(exc).__name__} raised "
                                     f"during the check: {exc}") from exc
        return run
    return decorate


def _sample(dist: Distribution, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.asarray(dist.sample(n, rng), dtype=float)


def _stats(dist: Distribution, X: np.ndarray, w: np.ndarray) -> Any:
    # Called on the instance: works for classmethod and instance-method statistics alike.
    return dist.sufficient_statistics(X, w)


def _from_stats(dist: Distribution, stats: Any) -> Distribution:
    return type(dist).from_statistics(stats)


def _weighted_sum(w: np.ndarray, log_p: np.ndarray) -> float:
    """Σ_i w_i log p(x_i) over the rows of positive weight (a row of weight 0 counts for
    nothing, even where its density is 0)."""
    keep = w > 0
    return float(w[keep] @ np.asarray(log_p, dtype=float)[keep])


def _stats_are_classmethod(dist: Distribution) -> bool:
    """Whether the statistics do not depend on the parameters (then one update is the MLE)."""
    return isinstance(inspect.getattr_static(type(dist), "sufficient_statistics"), classmethod)


def _fit(start: Distribution, X: np.ndarray, w: np.ndarray, max_iter: int = 200,
         tol: float = 1e-12) -> Distribution:
    """The weighted MLE by iterating ``from_statistics`` from ``start``.

    One update when the statistics are a classmethod; otherwise (an EM inside the family,
    as for latent scales) until Σ w log p stops changing.
    """
    current = _from_stats(start, _stats(start, X, w))
    if _stats_are_classmethod(start):
        return current
    ll = _weighted_sum(w, current.log_prob(X))
    for _ in range(max_iter):
        current = _from_stats(current, _stats(current, X, w))
        new = _weighted_sum(w, current.log_prob(X))
        if abs(new - ll) <= tol * max(1.0, abs(new)):
            break
        ll = new
    return current


def _assert_same_fit(check: str, what: str, a: Distribution, b: Distribution,
                     probe: np.ndarray, rtol: float) -> float:
    """Two fits agree when their log densities agree on the probe rows (opaque-friendly)."""
    la, lb = a.log_prob(probe), b.log_prob(probe)
    with np.errstate(invalid="ignore"):  # −∞ − (−∞): equal infinities, set to 0 below
        diff = np.abs(la - lb)
    diff[la == lb] = 0.0
    finite = np.isfinite(la) & np.isfinite(lb)
    diff[~finite & (la != lb)] = np.inf  # one infinite, the other not (or NaN)
    bad = ~(diff <= rtol * np.maximum(1.0, np.where(finite, np.abs(lb), 0.0)))
    if np.any(bad):
        i = int(np.argmax(diff))
        raise AssertionError(
            f"{check} ({_name(a)}): {what}: the log densities of the two fits differ by up to "
            f"{diff[i]:.3g} on {probe.shape[0]} probe rows (row {i}: {float(la[i])!r} vs "
            f"{float(lb[i])!r}); tolerance {rtol:g}·max(1, |log p|)")
    return float(diff.max(initial=0.0))


def _round_off(X: np.ndarray, rtol: float) -> float:
    """``rtol`` plus the round-off the data themselves carry: a value x is only resolved to
    ε|x|, so statistics (and log densities) are determined to about ε κ relative, with
    κ = (|location| + spread) / spread per column (κ ≈ 1e7 for x ≈ 1e6 ± 0.1)."""
    spread = X.std(axis=0) if X.shape[0] > 1 else np.zeros(X.shape[1])
    spread = np.where(spread > 0, spread, 1.0)
    kappa = float(np.max((np.abs(np.median(X, axis=0)) + spread) / spread, initial=1.0))
    return rtol + 100.0 * float(np.finfo(np.float64).eps) * kappa


def _default_weights(n: int, rng: np.random.Generator) -> np.ndarray:
    """Non-negative weights with about a quarter exact zeros and a positive sum."""
    w = rng.uniform(0.1, 3.0, n) * (rng.uniform(size=n) > 0.25)
    if not w.sum() > 0:
        w[0] = 1.0
    return w


def _default_splits(n: int, rng: np.random.Generator, n_chunks: int = 3) -> list[np.ndarray]:
    """A random partition of the rows into chunks in random order, one of them empty."""
    order = rng.permutation(n)
    cuts = np.sort(rng.integers(0, n + 1, n_chunks - 1))
    chunks = np.split(order, cuts)
    return [*chunks, order[:0]]


# -- (0) the contract's shapes ----------------------------------------------------------------
@_check("contract")
def check_contract(dist: Distribution, *, n_samples: int = 200, rng: Any = 0) -> str:
    """Shapes and types the framework relies on.

    ``n_features`` and ``n_parameters`` are non-negative integers; ``sample(n, rng)`` returns
    finite rows of shape (n, n_features), draws only from the ``rng`` it is given (equal
    seeds, equal rows) and its rows pass ``check_support``; ``log_prob`` returns a finite
    (n,) array that does not depend on the other rows of the batch; ``sufficient_statistics``
    returns a :class:`~probmix.Statistics` whose ``total_weight`` is Σ w; ``from_statistics``
    returns a distribution of the same family and dimension.
    """
    check = "contract"
    d = dist.n_features
    k = dist.n_parameters
    for label, value in (("n_features", d), ("n_parameters", k)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise AssertionError(f"{check} ({_name(dist)}): {label} must be a non-negative int, "
                                 f"got {value!r}")
    seed = int(_rng(rng).integers(2**32))
    raw = dist.sample(n_samples, np.random.default_rng(seed))
    if not isinstance(raw, np.ndarray) or raw.shape != (n_samples, d):
        shape = getattr(raw, "shape", type(raw).__name__)
        raise AssertionError(f"{check} ({_name(dist)}): sample({n_samples}, rng) must return "
                             f"an ndarray of shape ({n_samples}, {d}), got {shape}")
    X = np.asarray(raw, dtype=float)
    if not np.all(np.isfinite(X)):
        raise AssertionError(f"{check} ({_name(dist)}): sample returned NaN or infinity")
    again = np.asarray(dist.sample(n_samples, np.random.default_rng(seed)), dtype=float)
    if not np.array_equal(X, again):
        raise AssertionError(f"{check} ({_name(dist)}): two samples with equally seeded "
                             "generators differ: sample must draw only from the rng it is given")
    try:
        dist.check_support(X)
    except ValueError as exc:
        raise AssertionError(f"{check} ({_name(dist)}): check_support rejects the family's own "
                             f"samples: {exc}") from None
    lp = np.asarray(dist.log_prob(X))
    if lp.shape != (n_samples,):
        raise AssertionError(f"{check} ({_name(dist)}): log_prob of {n_samples} rows must have "
                             f"shape ({n_samples},), got {lp.shape}")
    if not np.all(np.isfinite(lp)):
        i = int(np.flatnonzero(~np.isfinite(lp))[0])
        raise AssertionError(f"{check} ({_name(dist)}): log_prob of its own sample row {i} "
                             f"({X[i].tolist()}) is {lp[i]}")
    single = np.array([dist.log_prob(X[i:i + 1])[0] for i in range(min(n_samples, 10))])
    if not np.allclose(single, lp[:single.size], rtol=1e-12, atol=1e-12):
        raise AssertionError(f"{check} ({_name(dist)}): log_prob of a row depends on the other "
                             f"rows of the batch: {single.tolist()} vs "
                             f"{lp[:single.size].tolist()}")
    w = np.linspace(0.0, 2.0, n_samples)
    stats = _stats(dist, X, w)
    if not isinstance(stats, Statistics):
        raise AssertionError(f"{check} ({_name(dist)}): sufficient_statistics must return a "
                             f"probmix.Statistics, got {type(stats).__name__}")
    if not math.isclose(float(stats.total_weight), float(w.sum()), rel_tol=1e-12):
        raise AssertionError(f"{check} ({_name(dist)}): total_weight is "
                             f"{stats.total_weight!r}, but the weights sum to "
                             f"{float(w.sum())!r}")
    fitted = _from_stats(dist, stats)
    if not isinstance(fitted, type(dist)) or fitted.n_features != d:
        raise AssertionError(f"{check} ({_name(dist)}): from_statistics returned a "
                             f"{type(fitted).__name__} with {fitted.n_features} features")
    return f"n_features={d}, n_parameters={k}; shapes, seeding and support of {n_samples} rows"


# -- (1) log_prob against a scipy.stats twin ------------------------------------------------
@_check("log_prob_matches")
def check_log_prob_matches(dist: Distribution, scipy_twin: Callable[[np.ndarray], Any] | None,
                           *, X: np.ndarray | None = None, n_samples: int = 500,
                           rtol: float = 1e-10, rng: Any = 0) -> str:
    """``log_prob(X)`` equals ``scipy_twin(X)`` (a callable returning the log density of each
    row, e.g. ``lambda X: scipy.stats.poisson.logpmf(X, mu).sum(axis=1)``) to ``rtol``
    relative to max(1, abs(log p)), on ``X`` or on a sample of the family."""
    if scipy_twin is None:
        raise CheckSkipped("no scipy_twin given")
    X = _sample(dist, n_samples, _rng(rng)) if X is None else np.asarray(X, dtype=float)
    ours = np.asarray(dist.log_prob(X), dtype=float)
    theirs = np.asarray(scipy_twin(X), dtype=float).reshape(-1)
    if theirs.shape != ours.shape:
        raise AssertionError(f"log_prob_matches ({_name(dist)}): the twin returned shape "
                             f"{theirs.shape} for {X.shape[0]} rows (log_prob: {ours.shape})")
    with np.errstate(invalid="ignore"):  # −∞ − (−∞): equal infinities, set to 0 below
        diff = np.abs(ours - theirs)
    diff[ours == theirs] = 0.0
    finite = np.isfinite(ours) & np.isfinite(theirs)
    diff[~finite & (ours != theirs)] = np.inf  # one infinite, the other not (or NaN)
    bad = ~(diff <= rtol * np.maximum(1.0, np.where(finite, np.abs(theirs), 0.0)))
    if np.any(bad):
        i = int(np.flatnonzero(bad)[np.argmax(diff[bad])])
        raise AssertionError(
            f"log_prob_matches ({_name(dist)}): log_prob differs from the scipy twin on "
            f"{int(bad.sum())} of {X.shape[0]} rows, by up to {diff[i]:.3g} at row {i} "
            f"({X[i].tolist()}): {float(ours[i])!r} vs {float(theirs[i])!r}; tolerance "
            f"{rtol:g}·max(1, |log p|)")
    return f"max |Δ log p| = {diff.max():.2g} over {X.shape[0]} rows"


# -- quadrature and Monte Carlo over the support ---------------------------------------------
@attrs.frozen
class _Column:
    """How one column is integrated: a lattice of integers or a continuum, its support
    interval (from check_support probes) and a location and scale from a sample."""

    lattice: bool
    lower: float
    upper: float
    center: float
    scale: float


def _accepts(dist: Distribution, row: np.ndarray) -> bool:
    """Whether a row lies in the support: check_support accepts it and the density is > 0."""
    try:
        dist.check_support(row[None, :])
    except ValueError:
        return False
    with np.errstate(all="ignore"):
        lp = float(np.asarray(dist.log_prob(row[None, :]))[0])
    return lp > -np.inf  # also False for NaN


def _support_bound(dist: Distribution, row: np.ndarray, j: int, direction: int,
                   scale: float, lattice: bool) -> float:
    """How far column j of ``row`` (a sample row, in the support) can move in ``direction``:
    exponential search out to 1e8 scales, then bisection; ±inf if never rejected."""
    start = float(row[j])
    probe = row.copy()

    def ok(v: float) -> bool:
        probe[j] = v
        return _accepts(dist, probe)

    inside, step = start, max(scale, 1.0) if lattice else scale
    outside = None
    while step <= 1e8 * scale:
        v = start + direction * step
        if lattice:
            v = float(round(v))
        if not ok(v):
            outside = v
            break
        inside, step = v, step * 2.0
    if outside is None:
        return direction * np.inf
    for _ in range(200):
        if lattice and abs(outside - inside) <= 1:
            break
        mid = 0.5 * (inside + outside)
        if lattice:
            mid = float(math.floor(mid) if direction > 0 else math.ceil(mid))
            if mid in (inside, outside):
                break
        elif mid in (inside, outside):
            break
        if ok(mid):
            inside = mid
        else:
            outside = mid
    return inside


def _columns(dist: Distribution, X: np.ndarray) -> list[_Column]:
    cols = []
    for j in range(X.shape[1]):
        x = X[:, j]
        lattice = bool(np.all(x == np.round(x)))
        q25, q50, q75 = np.percentile(x, [25, 50, 75])
        scale = (q75 - q25) / 1.349
        if not scale > 0:
            scale = float(np.std(x))
        if not scale > 0:
            scale = 1.0 if lattice else max(abs(float(q50)), 1.0) * 1e-3
        if lattice:
            scale = max(scale, 1.0)
        lower = _support_bound(dist, X[np.argmin(x)], j, -1, scale, lattice)
        upper = _support_bound(dist, X[np.argmax(x)], j, +1, scale, lattice)
        cols.append(_Column(lattice, lower, upper, float(q50), float(scale)))
    return cols


def _continuous_nodes(col: _Column, X: np.ndarray, j: int,
                      h: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of a trapezoid rule after a map that sends the support interval to
    the whole line (sinh for ℝ, exp for a half-line, tanh for an interval): the integrand then
    decays double-exponentially and the trapezoid rule converges geometrically in 1/h."""
    lo, hi = col.lower, col.upper
    if np.isinf(lo) and np.isinf(hi):
        u = np.arange(-np.arcsinh(1e8), np.arcsinh(1e8) + h / 2, h)
        return col.center + col.scale * np.sinh(u), h * col.scale * np.cosh(u)
    if np.isinf(hi) or np.isinf(lo):
        edge, sign = (lo, 1.0) if np.isinf(hi) else (hi, -1.0)
        s = float(np.median(np.abs(X[:, j] - edge)))
        s = s if s > 0 else col.scale
        u = np.arange(math.log(1e-14), math.log(1e8) + h / 2, h)
        return edge + sign * s * np.exp(u), h * s * np.exp(u)
    mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    u = np.arange(-18.0, 18.0 + h / 2, h)
    return mid + half * np.tanh(u), h * half / np.cosh(u) ** 2


def _log_prob(dist: Distribution, points: np.ndarray, chunk: int = 50_000) -> np.ndarray:
    with np.errstate(all="ignore"):  # far-out nodes may underflow: their density is 0
        return np.concatenate([np.asarray(dist.log_prob(points[i:i + chunk]), dtype=float)
                               for i in range(0, points.shape[0], chunk)])


def _product(nodes: Sequence[np.ndarray], weights: Sequence[np.ndarray],
             edges: Sequence[np.ndarray] | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Tensor grid: the points, the product weights, and which points lie on a truncated
    edge (given per column by ``edges``)."""
    mesh = np.meshgrid(*nodes, indexing="ij")
    points = np.stack([m.ravel() for m in mesh], axis=1)
    w = functools.reduce(np.multiply, np.meshgrid(*weights, indexing="ij")).ravel()
    if edges is None:
        return points, w, None
    edge = functools.reduce(np.logical_or, np.meshgrid(*edges, indexing="ij")).ravel()
    return points, w, edge


def _truncated_ends(col: _Column, nodes: np.ndarray) -> np.ndarray:
    """The end nodes where the grid was cut short: both ends of a continuous column (the map
    reaches the support's ends only in the limit); a lattice end only if the support goes on."""
    edge = np.zeros(nodes.size, dtype=bool)
    edge[0] = not col.lattice or nodes[0] - 1 >= col.lower
    edge[-1] = not col.lattice or nodes[-1] + 1 <= col.upper
    return edge


@attrs.frozen
class _Integrator:
    """∫ g p over the support: a tensor quadrature (``kind="grid"``: weights ``w`` at
    ``points``, ``edge`` marks the outermost nodes) or importance sampling
    (``kind="monte carlo"``: ``w`` are the ratios p/q of proposal draws, divided by their
    number)."""

    kind: str
    points: np.ndarray
    w: np.ndarray  # p-weighted: ∫ g p ≈ Σ w g
    log_p: np.ndarray  # log p at the points
    edge: np.ndarray | None
    description: str

    @property
    def total(self) -> float:
        return float(np.sum(self.w))

    def standard_error(self, values: np.ndarray | None = None) -> float:
        """Monte Carlo standard error of Σ w g (0 for quadrature)."""
        if self.kind == "grid":
            return 0.0
        g = self.w * (1.0 if values is None else values) * self.w.size
        return float(np.std(g) / math.sqrt(self.w.size))

    def resolved(self, values: np.ndarray, rtol: float = 1e-6) -> bool:
        """Whether ∫ |g| p is resolved: a negligible share sits on the grid's edge (a moment
        that does not converge, as for heavy tails, puts a finite share there)."""
        if self.kind != "grid":
            return True
        assert self.edge is not None
        mass = np.abs(values) * self.w
        return bool(mass[self.edge].sum() <= rtol * mass.sum())


def _integrator(dist: Distribution, rng: np.random.Generator, n_monte_carlo: int,
                max_grid_points: int = MAX_GRID_POINTS) -> _Integrator:
    X = _sample(dist, 2000, rng)
    cols = _columns(dist, X)
    n_cont = sum(not c.lattice for c in cols)
    h = {0: 1.0, 1: 0.05, 2: 0.15}.get(n_cont)  # trapezoid step in the mapped variable
    if h is None:
        return _monte_carlo(dist, cols, rng, n_monte_carlo)
    nodes: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    for j, c in enumerate(cols):
        if c.lattice:
            lattice = np.arange(max(float(X[:, j].min()), c.lower),
                                min(float(X[:, j].max()), c.upper) + 1.0)
            nodes.append(lattice)
            weights.append(np.ones(lattice.size))
        else:
            x, w = _continuous_nodes(c, X, j, h)
            nodes.append(x)
            weights.append(w)
    if _extend_lattices(dist, cols, nodes, weights, max_grid_points):
        ends = [_truncated_ends(c, n) for c, n in zip(cols, nodes)]
        points, w, edge = _product(nodes, weights, ends)
        lp = _log_prob(dist, points)
        if np.any(np.isnan(lp)):
            i = int(np.flatnonzero(np.isnan(lp))[0])
            raise AssertionError(f"normalised ({_name(dist)}): log_prob is NaN at "
                                 f"{points[i].tolist()}, a point of its support")
        with np.errstate(over="ignore"):  # a density that is not one may overflow
            w = w * np.exp(lp)
        sizes = "×".join(str(len(n)) for n in nodes)
        kinds = ", ".join("lattice" if c.lattice else "continuous" for c in cols)
        return _Integrator("grid", points, w, lp, edge,
                           f"quadrature on a {sizes} grid ({kinds})")
    return _monte_carlo(dist, cols, rng, n_monte_carlo)


def _extend_lattices(dist: Distribution, cols: Sequence[_Column], nodes: list[np.ndarray],
                     weights: list[np.ndarray], max_grid_points: int) -> bool:
    """Grow each lattice column beyond the sample's range while the support allows and the
    next layer still carries mass (> 1e-17); False if the grid outgrows the budget."""
    for j, c in enumerate(cols):
        if not c.lattice:
            continue
        for direction in (-1, 1):
            while True:
                size = math.prod(len(n) for n in nodes)
                if size + size // len(nodes[j]) > max_grid_points:
                    return False
                v = nodes[j][0] - 1 if direction < 0 else nodes[j][-1] + 1
                if not c.lower <= v <= c.upper:
                    break
                layer_nodes = list(nodes)
                layer_nodes[j] = np.array([v])
                layer_weights = list(weights)
                layer_weights[j] = np.ones(1)
                points, w, _ = _product(layer_nodes, layer_weights)
                with np.errstate(over="ignore"):
                    mass = float(np.sum(w * np.exp(_log_prob(dist, points))))
                if not mass > 1e-17:
                    break
                nodes[j] = np.insert(nodes[j], 0, v) if direction < 0 else np.append(nodes[j], v)
                weights[j] = np.ones(nodes[j].size)
    return math.prod(len(n) for n in nodes) <= max_grid_points


def _monte_carlo(dist: Distribution, cols: Sequence[_Column], rng: np.random.Generator,
                 n: int) -> _Integrator:
    """Importance sampling from a product of Cauchy proposals (discretised on lattice
    columns), each truncated to its column's support, centred and scaled by a sample: heavier
    tails than any family we expect, so p/q has a finite variance."""
    def cdf(x: np.ndarray | float, c: _Column) -> Any:
        return 0.5 + np.arctan((np.asarray(x) - c.center) / c.scale) / np.pi

    points = np.empty((n, len(cols)))
    log_q = np.zeros(n)
    for j, c in enumerate(cols):
        if c.lattice:
            lo, hi = c.lower - 0.5, c.upper + 0.5
        else:
            lo, hi = c.lower, c.upper
        f_lo, f_hi = cdf(lo, c), cdf(hi, c)
        u = rng.uniform(f_lo, f_hi, n).clip(1e-15, 1 - 1e-15)
        y = c.center + c.scale * np.tan(np.pi * (u - 0.5))
        if c.lattice:
            k = np.clip(np.ceil(y - 0.5), c.lower, c.upper)
            a, b = (k + 0.5 - c.center) / c.scale, (k - 0.5 - c.center) / c.scale
            # atan a − atan b without cancellation far out (a b > −1 as scale ≥ 1)
            mass = np.arctan((a - b) / (1.0 + a * b)) / np.pi
            points[:, j] = k
            log_q += np.log(mass / (f_hi - f_lo))
        else:
            y = np.clip(y, lo, hi)
            z = (y - c.center) / c.scale
            points[:, j] = y
            log_q += -np.log(np.pi * c.scale * (1.0 + z * z)) - np.log(f_hi - f_lo)
    lp = _log_prob(dist, points)
    if np.any(np.isnan(lp)):
        i = int(np.flatnonzero(np.isnan(lp))[0])
        raise AssertionError(f"normalised ({_name(dist)}): log_prob is NaN at "
                             f"{points[i].tolist()}, a point of its support")
    with np.errstate(over="ignore"):
        ratios = np.exp(lp - log_q) / n
    return _Integrator("monte carlo", points, ratios, lp, None,
                       f"importance sampling with {n} draws from a Cauchy proposal")


# -- (2) normalisation ----------------------------------------------------------------------
@_check("normalised")
def check_normalised(dist: Distribution, *, rtol: float = 1e-6, n_monte_carlo: int = 200_000,
                     max_grid_points: int = MAX_GRID_POINTS, rng: Any = 0) -> str:
    r"""The density integrates (the pmf sums) to one over the support.

    The support is found with ``check_support`` (and where the density is 0); a column whose
    sample values are all integers is a lattice (summed), any other column is integrated.
    When the tensor grid fits in ``max_grid_points`` (at most two continuous columns): a
    trapezoid rule after a sinh/exp/tanh change of variables, out to 10⁸ scales, and lattices
    summed until the next value carries no mass; the tolerance is ``rtol``. Otherwise:
    importance sampling from a heavy-tailed proposal with ``n_monte_carlo`` draws, tolerance
    5 standard errors (and the check fails as inconclusive if the standard error exceeds
    0.05).
    """
    integ = _integrator(dist, _rng(rng), n_monte_carlo, max_grid_points)
    total = integ.total
    if integ.kind == "grid":
        if not abs(total - 1.0) <= rtol:
            raise AssertionError(
                f"normalised ({_name(dist)}): the density integrates to {total!r} (off by "
                f"{total - 1.0:.3g}), not 1, by {integ.description}; tolerance {rtol:g}. "
                "If the support is bounded, make check_support reject rows outside it")
        return f"∫ p = 1 {total - 1.0:+.1e} by {integ.description}"
    se = integ.standard_error()
    if se > 0.05:
        raise AssertionError(f"normalised ({_name(dist)}): the Monte Carlo estimate "
                             f"{total:.4f} is inconclusive (standard error {se:.3g} > 0.05): "
                             "increase n_monte_carlo")
    if not abs(total - 1.0) <= 5 * se:
        raise AssertionError(
            f"normalised ({_name(dist)}): the density integrates to {total:.5f} ± {se:.2g}, "
            f"not 1 (off by {(total - 1.0) / se:.1f} standard errors; tolerance 5), by "
            f"{integ.description}")
    return f"∫ p = {total:.5f} ± {se:.1g} by {integ.description}"


# -- (3) sampling moments -------------------------------------------------------------------
@_check("sample_moments")
def check_sample_moments(dist: Distribution, *, sample_size: int = 20_000, z: float = 5.0,
                         n_monte_carlo: int = 200_000, rng: Any = 0) -> str:
    r"""``sample`` draws from the density ``log_prob`` describes.

    Compares, on ``sample_size`` draws, the mean, the covariance matrix and the mean log
    density E[log p(x)] (the negative entropy: a dimension-free check of the whole shape)
    with the same quantities computed from the density by the quadrature or Monte Carlo
    estimate of :func:`check_normalised`. Each difference must be within ``z`` standard
    errors (from the density's own higher moments). Moments that do not converge (heavy
    tails) are left out and said so.
    """
    gen = _rng(rng)
    integ = _integrator(dist, gen, n_monte_carlo)
    X = _sample(dist, sample_size, gen)
    n, d = X.shape
    P, total = integ.points, integ.total

    def expect(values: np.ndarray) -> float:
        return float(np.sum(integ.w * values) / total)

    failures, compared, left_out = [], [], []

    def compare(label: str, observed: float, expected: float, var: float, exp_se: float,
                bias: float = 0.0) -> None:
        se = math.sqrt(max(var, 0.0) / n + exp_se**2)
        tol = z * se + bias + 1e-9 * max(1.0, abs(expected))
        compared.append(label)
        if not abs(observed - expected) <= tol:
            failures.append(f"{label}: sample {observed:.6g}, density {expected:.6g} "
                            f"(|Δ| = {abs(observed - expected):.3g} > {z:g} SE = {tol:.3g})")

    lp_nodes = integ.log_p
    lp_sample = np.asarray(dist.log_prob(X), dtype=float)
    for j in range(d):
        xj = P[:, j]
        if not (integ.resolved(xj * xj) and integ.resolved(xj)):
            left_out.append(f"mean[{j}] (no finite variance)")
            continue
        mu = expect(xj)
        compare(f"mean[{j}]", float(X[:, j].mean()), mu, expect((xj - mu) ** 2),
                integ.standard_error(xj) / total)
    means = np.array([expect(P[:, j]) for j in range(d)])
    Xc, Pc = X - X.mean(axis=0), P - means
    for a in range(d):
        for b in range(a, d):
            prod = Pc[:, a] * Pc[:, b]
            if not integ.resolved(prod * prod):
                left_out.append(f"cov[{a},{b}] (no finite fourth moment)")
                continue
            cov = expect(prod)
            # centring on the sample mean instead of μ shifts the estimate by
            # (x̄_a − μ_a)(x̄_b − μ_b), at most z² σ_a σ_b / n at z standard errors
            bias = z**2 * math.sqrt(abs(expect(Pc[:, a] ** 2) * expect(Pc[:, b] ** 2))) / n
            compare(f"cov[{a},{b}]", float(np.mean(Xc[:, a] * Xc[:, b])), cov,
                    expect((prod - cov) ** 2), integ.standard_error(prod) / total, bias)
    finite = np.isfinite(lp_nodes)
    lp_nodes = np.where(finite, lp_nodes, 0.0)
    if integ.resolved(lp_nodes**2):
        mean_lp = expect(lp_nodes)
        compare("E[log p]", float(lp_sample.mean()), mean_lp, expect((lp_nodes - mean_lp) ** 2),
                integ.standard_error(lp_nodes) / total)
    if failures:
        raise AssertionError(f"sample_moments ({_name(dist)}): {sample_size} draws disagree "
                             f"with the density ({integ.description}): " + "; ".join(failures))
    out = f"{', '.join(compared)} within {z:g} SE on {sample_size} draws"
    return out + (f"; left out: {', '.join(left_out)}" if left_out else "")


# -- (4) statistics add ---------------------------------------------------------------------
class _UsageError(ValueError):
    """A bad argument to a check (not a failure of the family): raised as it is."""


def _data(dist: Distribution, X: Any, weights: Any, n_samples: int,
          gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = _sample(dist, n_samples, gen) if X is None else np.asarray(X, dtype=float)
    w = _default_weights(X.shape[0], gen) if weights is None else np.asarray(weights, float)
    if X.ndim != 2 or w.shape != (X.shape[0],) or np.any(w < 0) or not w.sum() > 0:
        raise _UsageError(f"need X of shape (n, d) and non-negative weights of shape (n,) with "
                          f"a positive sum, got {X.shape} and {w.shape}")
    return X, w


def _comparable(dist: Distribution, stats: Any) -> tuple[Distribution | None, float | None,
                                                         str | None]:
    """What two statistics objects are compared by: their fit and their expected log density
    under ``dist`` (None where the family cannot produce it)."""
    fit: Distribution | None
    try:
        fit, error = _from_stats(dist, stats), None
    except ValueError as exc:  # e.g. too little data for a non-singular fit
        fit, error = None, f"{type(exc).__name__}: {exc}"
    try:
        elp: float | None = float(dist.expected_log_prob(stats))
    except NotImplementedError:
        elp = None
    return fit, elp, error


@_check("statistics_additive")
def check_statistics_additive(dist: Distribution, *, X: Any = None, weights: Any = None,
                              splits: Sequence[Any] | None = None, n_samples: int = 200,
                              rtol: float = 1e-9, rng: Any = 0) -> str:
    r"""``stats(A) + stats(B) == stats(A ∪ B)``, and zero weight is neutral.

    The statistics of ``X`` (a sample of the family by default) with ``weights`` (random,
    about a quarter exact zeros, by default) are compared with the sum of the statistics of
    the chunks ``splits`` (a random partition with an empty chunk, by default) added in both
    orders, with the statistics of the positively weighted rows alone, and with the whole
    plus a zero-weight statistics object on either side. Statistics are opaque, so they are
    compared through ``from_statistics`` (the log densities of the fits on the rows, to
    ``rtol``) and, when the family has it, ``expected_log_prob``. ``rtol`` grows by
    100 ε κ for data far from the origin relative to their spread (κ = abs(location) / spread:
    the data themselves are only resolved to ε abs(x)).
    """
    check = "statistics_additive"
    gen = _rng(rng)
    X, w = _data(dist, X, weights, n_samples, gen)
    n = X.shape[0]
    chunks = (_default_splits(n, gen) if splits is None
              else [np.asarray(s, dtype=int).reshape(-1) for s in splits])
    covered = np.sort(np.concatenate(chunks)) if chunks else np.array([], dtype=int)
    if not np.array_equal(covered, np.arange(n)):
        raise _UsageError("splits must partition the rows: every row index exactly once")
    whole = _stats(dist, X, w)
    parts = [_stats(dist, X[idx], w[idx]) for idx in chunks]
    zero = _stats(dist, X[: max(1, n // 4)], np.zeros(max(1, n // 4)))
    if float(zero.total_weight) != 0.0:
        raise AssertionError(f"{check} ({_name(dist)}): rows of zero weight give "
                             f"total_weight {zero.total_weight!r}, not 0")
    keep = w > 0
    candidates = {
        "chunks added left to right": functools.reduce(lambda a, b: a + b, parts),
        "chunks added right to left": functools.reduce(lambda a, b: b + a, parts[::-1]),
        "rows of zero weight left out": _stats(dist, X[keep], w[keep]),
        "whole + zero-weight statistics": whole + zero,
        "zero-weight statistics + whole": zero + whole,
    }
    for label, s in candidates.items():
        if not math.isclose(float(s.total_weight), float(whole.total_weight), rel_tol=1e-12):
            raise AssertionError(f"{check} ({_name(dist)}): {label}: total_weight "
                                 f"{s.total_weight!r}, but the whole has "
                                 f"{whole.total_weight!r}")
    rtol = _round_off(X, rtol)
    ref_fit, ref_elp, error = _comparable(dist, whole)
    worst = 0.0
    for label, s in candidates.items():
        fit, elp, err = _comparable(dist, s)
        if (fit is None) != (ref_fit is None):
            raise AssertionError(f"{check} ({_name(dist)}): {label}: from_statistics "
                                 f"{'failed' if fit is None else 'succeeded'} ({err or error}) "
                                 "where the statistics of the whole did not")
        if fit is not None and ref_fit is not None:
            worst = max(worst, _assert_same_fit(check, label, fit, ref_fit, X, rtol))
        if elp is not None and ref_elp is not None and not math.isclose(
                elp, ref_elp, rel_tol=rtol, abs_tol=rtol):
            raise AssertionError(f"{check} ({_name(dist)}): {label}: expected_log_prob "
                                 f"{elp!r}, but {ref_elp!r} for the whole; tolerance {rtol:g}")
    if ref_fit is None and ref_elp is None:
        return (f"{len(chunks)} chunks of {n} rows: from_statistics refused every variant alike "
                f"({error}), and there is no expected_log_prob to compare them by")
    via = "from_statistics" if ref_fit is not None else "expected_log_prob"
    return (f"{len(chunks)} chunks of {n} rows, zero weights neutral "
            f"(compared by {via}: max |Δ log p| = {worst:.1g})")


def _assert_same_statistics(check: str, dist: Distribution, label: str, s: Any, ref: Any,
                            probe: np.ndarray, rtol: float) -> float:
    """Two statistics objects agree: total weight, fit (or refusal) and expected_log_prob."""
    if not math.isclose(float(s.total_weight), float(ref.total_weight), rel_tol=1e-12,
                        abs_tol=1e-300):
        raise AssertionError(f"{check} ({_name(dist)}): {label}: total_weight "
                             f"{s.total_weight!r}, expected {ref.total_weight!r}")
    fit, elp, err = _comparable(dist, s)
    ref_fit, ref_elp, ref_err = _comparable(dist, ref)
    if (fit is None) != (ref_fit is None):
        raise AssertionError(f"{check} ({_name(dist)}): {label}: from_statistics "
                             f"{'failed' if fit is None else 'succeeded'} ({err or ref_err}) "
                             "where it did not for the reference statistics")
    worst = 0.0
    if fit is not None and ref_fit is not None:
        worst = _assert_same_fit(check, label, fit, ref_fit, probe, rtol)
    if elp is not None and ref_elp is not None and not math.isclose(
            elp, ref_elp, rel_tol=rtol, abs_tol=rtol):
        raise AssertionError(f"{check} ({_name(dist)}): {label}: expected_log_prob {elp!r}, "
                             f"but {ref_elp!r} for the reference; tolerance {rtol:g}")
    return worst


@_check("statistics_reweighted")
def check_statistics_reweighted(dist: Distribution, *, X: Any = None, weights: Any = None,
                                n_samples: int = 200, rtol: float = 1e-9, rng: Any = 0) -> str:
    r"""``s.reweighted(c)`` is the statistics of the same rows with every weight times c.

    With ``s_A``, ``s_B`` the statistics of a random split of ``X`` (a sample of the family
    by default; ``weights`` random with zeros, by default) and factors a ∈ (0.2, 0.9),
    b ∈ (1.5, 4) drawn from ``rng``: ``total_weight`` scales by the factor;
    ``s_A.reweighted(a) + s_B`` equals the statistics of ``X`` with the weights of A times a
    (a comparison that sees the scale: the fit of the union depends on how the halves are
    weighed against each other); ``s.reweighted(a) + s.reweighted(b)`` equals
    ``s.reweighted(a + b)`` and the statistics with weights (a + b) w; ``s.reweighted(1)``
    equals ``s``, and ``s_A.reweighted(0)`` has zero weight and is neutral. Compared as in
    :func:`check_statistics_additive`. Only online EM needs ``reweighted``: the check is
    skipped for a family whose statistics do not implement it.
    """
    check = "statistics_reweighted"
    gen = _rng(rng)
    X, w = _data(dist, X, weights, n_samples, gen)
    n = X.shape[0]
    whole = _stats(dist, X, w)
    try:
        whole.reweighted(1.0)
    except NotImplementedError:
        raise CheckSkipped("the family's statistics do not implement reweighted (only online "
                           "EM needs it)") from None
    in_a = np.zeros(n, dtype=bool)
    in_a[gen.permutation(n)[: n // 2]] = True
    s_a, s_b = _stats(dist, X[in_a], w[in_a]), _stats(dist, X[~in_a], w[~in_a])
    a, b = float(gen.uniform(0.2, 0.9)), float(gen.uniform(1.5, 4.0))
    zero = s_a.reweighted(0.0)
    if float(zero.total_weight) != 0.0:
        raise AssertionError(f"{check} ({_name(dist)}): reweighted(0) has total_weight "
                             f"{zero.total_weight!r}, not 0")
    comparisons = [
        ("s_A.reweighted(a) + s_B vs weights a·w on A", s_a.reweighted(a) + s_b,
         _stats(dist, X, np.where(in_a, a * w, w))),
        ("s.reweighted(a) + s.reweighted(b) vs s.reweighted(a + b)",
         whole.reweighted(a) + whole.reweighted(b), whole.reweighted(a + b)),
        ("s.reweighted(a + b) vs weights (a + b)·w", whole.reweighted(a + b),
         _stats(dist, X, (a + b) * w)),
        ("s.reweighted(1) vs s", whole.reweighted(1.0), whole),
        ("s_A.reweighted(0) + s_B vs s_B", zero + s_b, s_b),
        ("s_B + s_A.reweighted(0) vs s_B", s_b + zero, s_b),
    ]
    tol = _round_off(X, rtol)
    worst = max(_assert_same_statistics(check, dist, label, s, ref, X, tol)
                for label, s, ref in comparisons)
    return (f"factors {a:.3g} and {b:.3g} on {n} rows: reweighted = weights × factor, "
            f"additive in the factor, 0 neutral (max |Δ log p| = {worst:.1g})")


# -- expected_log_prob --------------------------------------------------------------------
@_check("expected_log_prob")
def check_expected_log_prob(dist: Distribution, *, X: Any = None, weights: Any = None,
                            n_samples: int = 200, rtol: float = 1e-9, rng: Any = 0) -> str:
    r"""``expected_log_prob`` from the statistics agrees with Σ_i w_i log p(x_i).

    For the statistics taken under ``dist``: ``dist.expected_log_prob(stats)`` must equal
    Σ w log p_dist(x). For ``other``, the fit from those statistics, it must equal
    Σ w log p_other(x) when the statistics do not depend on the parameters (a classmethod),
    and must not exceed it otherwise: statistics of latent variables taken under ``dist``
    give a lower bound for other parameters (the bound L(q_t, θ_{t+1}) EM's history reports,
    which touches the log-likelihood at θ_t). Skipped when the family does not implement
    the optional hook.
    """
    check = "expected_log_prob"
    X, w = _data(dist, X, weights, n_samples, _rng(rng))
    stats = _stats(dist, X, w)
    try:
        dist.expected_log_prob(stats)
    except NotImplementedError:
        raise CheckSkipped("the family does not implement expected_log_prob") from None
    exact = _stats_are_classmethod(dist)
    rtol = _round_off(X, rtol)
    worst = 0.0
    fit, _, refused = _comparable(dist, stats)  # too little data for a fit: check dist alone
    for label, other in (("the distribution itself", dist), ("its fit", fit)):
        if other is None:
            continue
        direct = _weighted_sum(w, other.log_prob(X))
        via = float(other.expected_log_prob(stats))
        slack = rtol * max(1.0, abs(direct))
        if exact or other is dist:
            worst = max(worst, abs(via - direct) / max(1.0, abs(direct)))
            if not abs(via - direct) <= slack:
                raise AssertionError(
                    f"{check} ({_name(dist)}): for {label}, expected_log_prob(stats) = {via!r} "
                    f"but Σ w log p(x) = {direct!r} (off by {via - direct:.3g}); tolerance "
                    f"{rtol:g}·max(1, |Σ w log p|)")
        elif not via <= direct + slack:
            raise AssertionError(
                f"{check} ({_name(dist)}): for {label}, expected_log_prob(stats) = {via!r} "
                f"exceeds Σ w log p(x) = {direct!r}: with statistics taken under other "
                "parameters it must be a lower bound")
    if fit is None:
        return f"equals Σ w log p (relative {worst:.1g}); no fit to compare ({refused})"
    kind = "equal for both" if exact else "equal under it, a lower bound for its fit"
    return f"vs Σ w log p for the distribution and its fit: {kind} (relative {worst:.1g})"


# -- (5) weighted fit = duplicated rows -------------------------------------------------------
@_check("weighted_fit")
def check_weighted_fit(dist: Distribution, *, X: Any = None, weights: Any = None,
                       n_samples: int = 200, rtol: float = 1e-9, rng: Any = 0) -> str:
    """An integer weight is the same as repeating the row: the fit from ``(X, weights)``
    equals the fit from ``X`` with row i repeated ``weights[i]`` times (weights drawn from
    0–3 by default), compared by their log densities on the rows to ``rtol`` (+ 100 ε κ, as
    in :func:`check_statistics_additive`)."""
    check = "weighted_fit"
    gen = _rng(rng)
    X = _sample(dist, n_samples, gen) if X is None else np.asarray(X, dtype=float)
    if weights is None:
        w = gen.integers(0, 4, X.shape[0])
        w[0] = max(w[0], 1)
    else:
        w = np.asarray(weights)
        if w.shape != (X.shape[0],) or np.any(w < 0) or np.any(w != np.round(w)) or not w.sum():
            raise _UsageError("weights must be non-negative integers, one per row, "
                              "with a positive sum")
        w = w.astype(int)
    repeated = np.repeat(X, w, axis=0)
    weighted, _, error_w = _comparable(dist, _stats(dist, X, w.astype(float)))
    duplicated, _, error_d = _comparable(dist, _stats(dist, repeated,
                                                      np.ones(repeated.shape[0])))
    if (weighted is None) != (duplicated is None):
        raise AssertionError(
            f"{check} ({_name(dist)}): from_statistics "
            f"{'refused' if weighted is None else 'accepted'} the weighted rows but "
            f"{'refused' if duplicated is None else 'accepted'} the repeated ones "
            f"({error_w or error_d})")
    if weighted is None or duplicated is None:
        return (f"from_statistics refused the weighted and the repeated rows alike "
                f"({error_w})")
    worst = _assert_same_fit(check, "weights vs repeated rows", weighted, duplicated, X,
                             _round_off(X, rtol))
    return (f"integer weights on {X.shape[0]} rows = {repeated.shape[0]} repeated rows "
            f"(max |Δ log p| = {worst:.1g})")


# -- (6) parameter recovery -----------------------------------------------------------------
@_check("parameter_recovery")
def check_parameter_recovery(dist: Distribution, *, sample_size: int = 20_000,
                             n_held_out: int = 5000, factor: float = 5.0,
                             rng: Any = 0) -> str:
    r"""The fit to a large sample recovers the distribution.

    Fits ``sample_size`` draws (iterating ``from_statistics`` to its fixed point when the
    statistics depend on the parameters) and compares the fitted and the true log densities
    on ``n_held_out`` fresh draws: for a consistent estimator their root-mean-square
    difference is about √(k/n), k = ``n_parameters`` (the score times an estimation error of
    covariance I⁻¹/n), so the tolerance is ``factor`` · √(k/n). Also checks the maximum
    likelihood property: the fit scores its training sample at least as well as the truth.
    """
    check = "parameter_recovery"
    gen = _rng(rng)
    X = _sample(dist, sample_size, gen)
    fitted = _fit(dist, X, np.ones(sample_size))
    ll_fit = float(np.mean(fitted.log_prob(X)))
    ll_true = float(np.mean(dist.log_prob(X)))
    if ll_fit < ll_true - 1e-9 * max(1.0, abs(ll_true)):
        raise AssertionError(
            f"{check} ({_name(dist)}): the fit scores its own {sample_size} training rows "
            f"worse than the true parameters ({ll_fit!r} < {ll_true!r} per row): "
            "from_statistics is not the maximum-likelihood estimate")
    held = _sample(dist, n_held_out, gen)
    diff = np.asarray(fitted.log_prob(held), float) - np.asarray(dist.log_prob(held), float)
    rms = float(np.sqrt(np.mean(diff**2)))
    k = max(int(dist.n_parameters), 1)
    tol = factor * math.sqrt(k / sample_size)
    if not rms <= tol:
        raise AssertionError(
            f"{check} ({_name(dist)}): after fitting {sample_size} draws, log p_fit − log p_true "
            f"has root-mean-square {rms:.4g} on {n_held_out} held-out draws, above the "
            f"tolerance {factor:g}·√(n_parameters/n) = {tol:.4g} (n_parameters = {k})")
    return (f"RMS of log p_fit − log p_true = {rms:.2g} ≤ {tol:.2g} on {n_held_out} held-out "
            f"draws (fit to {sample_size})")


# -- (7) EM monotonicity ---------------------------------------------------------------------
def _tilted(dist: Distribution, gen: np.random.Generator, tilt: float) -> Distribution:
    """A second member of the family: the fit to a sample reweighted by exp(tilt · z), z the
    standardised row mean, so it differs from ``dist`` in location or shape."""
    X = _sample(dist, 2000, gen)
    spread = X.std(axis=0)
    z = ((X - np.median(X, axis=0)) / np.where(spread > 0, spread, 1.0)).mean(axis=1)
    return _fit(dist, X, np.exp(tilt * np.clip(z, -3.0, 3.0)))


@_check("em_monotone")
def check_em_monotone(dist: Distribution, *, n_samples: int = 1000, max_iter: int = 30,
                      tilt: float = 2.5, rtol: float = 1e-9, rng: Any = 0) -> str:
    r"""EM on a two-component mixture of the family never decreases the log-likelihood.

    The components are ``dist`` and a second member of the family, its fit to a sample
    reweighted towards large values (by exp(``tilt`` · z), z the standardised row mean). EM
    starts from one M-step on random responsibilities and runs ``max_iter`` iterations. Each
    iteration must not lower log p(X | θ) by more than ``rtol`` relative, and each M-step must
    not lower L(q_t, θ) = Σ_i Σ_k q_ik (log π_k + log p_k(x_i)) (q_t held fixed), which is
    what ``from_statistics`` being the weighted MLE guarantees.
    """
    from ..em import EMAlgorithm
    from ..init import initial_model
    from ..mixture import MixtureModel, MixtureStatistics

    check = "em_monotone"
    gen = _rng(rng)
    other = _tilted(dist, gen, tilt)
    truth = MixtureModel(weights=[0.5, 0.5], components=[dist, other])
    X, _ = truth.sample(n_samples, gen)
    X = np.asarray(X, dtype=float)
    # random responsibilities: a noisy logistic split along a random direction (a split with
    # no structure leaves EM creeping away from a saddle, with steps too small to judge)
    scores = (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
    s = scores @ gen.standard_normal(X.shape[1])
    s = s / (s.std() if s.std() > 0 else 1.0) + gen.standard_normal(n_samples)
    first = 1.0 / (1.0 + np.exp(-s))
    resp = np.column_stack([first, 1.0 - first])
    if _stats_are_classmethod(dist):
        start = initial_model(X, [type(dist)] * 2, resp)
    else:  # statistics under given parameters: take them under the two components
        start = MixtureModel.from_statistics(MixtureStatistics.of(X, resp, [dist, other]))
    with warnings.catch_warnings():
        # this check judges the history itself, whatever EM warns about
        for category in (ConvergenceWarning, ObjectiveDecreaseWarning,
                         DegenerateComponentWarning):
            warnings.simplefilter("ignore", category)
        # tol=0: all max_iter iterations, also when EM creeps away from a near-symmetric start
        result = EMAlgorithm(tol=0.0, max_iter=max_iter, keep_models=True).fit(X, start)
    ll = result.history.log_likelihood
    drop = ll[:-1] - ll[1:]
    bad = drop > rtol * np.maximum(1.0, np.abs(ll[:-1]))
    if np.any(bad):
        t = int(np.flatnonzero(bad)[0])
        raise AssertionError(
            f"{check} ({_name(dist)}): the log-likelihood per row decreased at EM iteration "
            f"{t + 1}, from {float(ll[t])!r} to {float(ll[t + 1])!r} (by {drop[t]:.3g}; "
            f"tolerance {rtol:g} relative), on {n_samples} rows from a 2-component mixture")
    models = [record.model for record in result.history if record.model is not None]
    for t in range(len(models) - 1):
        q = models[t].responsibilities(X)
        before, after = (_expected_log_joint(q, m, X) for m in (models[t], models[t + 1]))
        if after < before - rtol * max(1.0, abs(before)):
            raise AssertionError(
                f"{check} ({_name(dist)}): the M-step of iteration {t + 1} lowered "
                f"Σ q (log π + log p) per row from {before!r} to {after!r}, with q held fixed: "
                "from_statistics does not maximise the weighted log-likelihood")
    return (f"{result.n_iter} EM iterations on {n_samples} rows: log-likelihood "
            f"{ll[0]:.4f} → {ll[-1]:.4f}, never decreasing; every M-step raised L(q, θ)")


def _expected_log_joint(q: np.ndarray, model: Any, X: np.ndarray) -> float:
    log_joint = model.log_joint(X)
    with np.errstate(invalid="ignore"):
        terms = np.where(q > 0, q * log_joint, 0.0)
    return float(np.mean(terms.sum(axis=1)))


# -- all of them ----------------------------------------------------------------------------
#: the checks :func:`check_distribution` runs, by name, in order
CHECKS: Mapping[str, Callable[..., str]] = {
    "contract": check_contract,
    "log_prob_matches": check_log_prob_matches,
    "normalised": check_normalised,
    "sample_moments": check_sample_moments,
    "statistics_additive": check_statistics_additive,
    "statistics_reweighted": check_statistics_reweighted,
    "expected_log_prob": check_expected_log_prob,
    "weighted_fit": check_weighted_fit,
    "parameter_recovery": check_parameter_recovery,
    "em_monotone": check_em_monotone,
}


def check_distribution(family_or_instance: type[Distribution] | Distribution, *,
                       params: Mapping[str, Any] | None = None,
                       scipy_twin: Callable[[np.ndarray], Any] | None = None,
                       sample_size: int = 20_000, rng: Any = 0,
                       checks: Iterable[str] | None = None) -> CheckReport:
    r"""Run the conformance checks on a family and report.

    Parameters
    ----------
    family_or_instance : Distribution subclass or instance
        The family to check: an instance, or a class together with ``params``.
    params : mapping, optional
        Keyword arguments building the instance from a class (``family(**params)``).
    scipy_twin : callable, optional
        ``X -> log density of each row`` from an independent implementation (usually
        scipy.stats); without it the ``log_prob_matches`` check is skipped.
    sample_size : int, default=20000
        Draws for the sampling-moment and parameter-recovery checks.
    rng : int, numpy.random.Generator or None, default=0
        Seed of every random draw; each check gets its own stream.
    checks : iterable of str, optional
        Names of the checks to run (keys of :data:`CHECKS`), by default all of them:
        ``contract``, ``log_prob_matches``, ``normalised``, ``sample_moments``,
        ``statistics_additive``, ``statistics_reweighted``, ``expected_log_prob``,
        ``weighted_fit``, ``parameter_recovery``, ``em_monotone``.

    Returns
    -------
    CheckReport
        The checks that ran and passed, those skipped and why, and each one's numbers.

    Raises
    ------
    AssertionError
        If any check fails; every failing check is listed, by name, with its numbers.

    Examples
    --------
    >>> from scipy import stats
    >>> from probmix.distributions import Gaussian
    >>> from probmix.testing import check_distribution
    >>> report = check_distribution(
    ...     Gaussian, params={"mean": [0.0], "covariance": [[2.0]]},
    ...     scipy_twin=lambda X: stats.norm(0.0, 2.0**0.5).logpdf(X[:, 0]),
    ...     checks=["log_prob_matches", "normalised"])
    >>> report.ran
    ('log_prob_matches', 'normalised')
    """
    if isinstance(family_or_instance, type) and issubclass(family_or_instance, Distribution):
        if params is None:
            raise TypeError(f"give the parameters of a {family_or_instance.__name__} "
                            "(params={...}) or pass an instance")
        dist = family_or_instance(**params)
    elif isinstance(family_or_instance, Distribution):
        if params is not None:
            raise TypeError("params is only for a family class; an instance has its own")
        dist = family_or_instance
    else:
        raise TypeError("check_distribution needs a Distribution subclass or instance, got "
                        f"{family_or_instance!r}")
    names = list(CHECKS) if checks is None else list(checks)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; the checks are {list(CHECKS)}")
    entropy = int(rng.integers(2**63)) if isinstance(rng, np.random.Generator) else rng
    streams = dict(zip(CHECKS, np.random.SeedSequence(entropy).spawn(len(CHECKS))))
    ran: list[str] = []
    skipped: dict[str, str] = {}
    details: dict[str, str] = {}
    failures: list[str] = []
    for name in names:
        kwargs: dict[str, Any] = {"rng": np.random.default_rng(streams[name])}
        if name == "log_prob_matches":
            kwargs["scipy_twin"] = scipy_twin
        if name in ("sample_moments", "parameter_recovery"):
            kwargs["sample_size"] = sample_size
        try:
            details[name] = CHECKS[name](dist, **kwargs)
        except CheckSkipped as exc:
            skipped[name] = str(exc)
            continue
        except AssertionError as exc:
            failures.append(str(exc))
            continue
        ran.append(name)
    if failures:
        raise AssertionError(f"check_distribution({_name(dist)}): {len(failures)} of "
                             f"{len(names)} checks failed:\n- " + "\n- ".join(failures))
    return CheckReport(family=_name(dist), ran=tuple(ran), skipped=skipped, details=details)
