r"""Products of distributions over blocks of columns, for mixed data.

``IndependentComponents(parts=[Gaussian(...), Poisson(...), Categorical(...)],
columns=[(0, 1), (2,), (3,)])`` scores a row as
:math:`\log p(x) = \sum_b \log p_b(x_{J_b})`: the blocks are independent *within* a component,
and a mixture of such products clusters rows whose columns are of different kinds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs
import numpy as np

from .._validation import check_data
from ._common import refine, support_error
from .base import Distribution, Statistics

__all__ = ["IndependentComponents", "IndependentStatistics"]


# -- the product ---------------------------------------------------------------------------------

def _columns(value: Any) -> tuple[tuple[int, ...], ...]:
    """A tuple of blocks; a bare int is a block of one column."""
    blocks = []
    for block in value:
        block = (block,) if isinstance(block, (int, np.integer)) else tuple(block)
        for c in block:
            if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)):
                raise TypeError(f"columns must hold integer column indices, got {c!r}")
        blocks.append(tuple(int(c) for c in block))
    return tuple(blocks)


def _parts(value: Any) -> tuple[Distribution, ...]:
    return tuple(value)


def _priors(prior: Any, n_parts: int) -> tuple[Any, ...]:
    if prior is None:
        return (None,) * n_parts
    if isinstance(prior, (tuple, list)):
        if len(prior) != n_parts:
            raise ValueError(f"got {len(prior)} priors for {n_parts} parts")
        return tuple(prior)
    raise TypeError("IndependentComponents takes prior=None or a sequence of one prior per part "
                    f"(None for none), got {type(prior).__name__}")


@attrs.frozen(kw_only=True)
class IndependentStatistics(Statistics):
    """Each part's statistics, with the parts' families and columns (for ``from_statistics``,
    as :class:`~probmix.mixture.MixtureStatistics` keeps its families)."""

    parts: tuple[Statistics, ...]
    families: tuple[type[Distribution], ...]
    columns: tuple[tuple[int, ...], ...]

    @property
    def total_weight(self) -> float:
        return self.parts[0].total_weight

    def __add__(self, other: IndependentStatistics) -> IndependentStatistics:
        if not isinstance(other, IndependentStatistics):
            return NotImplemented
        if other.families != self.families or other.columns != self.columns:
            raise ValueError("cannot add statistics of products with different parts or columns")
        return attrs.evolve(self, parts=tuple(a + b for a, b in zip(self.parts, other.parts)))

    def reweighted(self, factor: float) -> IndependentStatistics:
        return attrs.evolve(self, parts=tuple(p.reweighted(factor) for p in self.parts))


@attrs.frozen(kw_only=True)
class IndependentComponents(Distribution):
    r"""A product of distributions over disjoint blocks of columns.

    .. math::
        \log p(x) = \sum_b \log p_b(x_{J_b})

    Everything is per part: the statistics are the tuple of the parts' statistics (so they
    add), the M-step re-estimates each part from its own (the weighted log-likelihood is a
    sum over parts, so the joint maximiser is the tuple of the parts' maximisers), and
    ``n_parameters``, ``log_prior`` and ``expected_log_prob`` are sums. In a mixture the parts'
    joint hooks are used across components, so e.g. a :class:`TiedNormal` block shares its
    covariance among the components.

    ``sufficient_statistics`` is an instance method (the families come from the parts), so
    start EM from template instances: ``initial_model(X, [template] * K, resp)``, with for
    instance ``template = IndependentComponents.fit(X, parts=[...], columns=[...])``.

    Parameters
    ----------
    parts : sequence of Distribution
        One distribution per block.
    columns : sequence of sequences of int
        Block b's column indices in X (an int is a block of one column). Blocks must be
        disjoint and cover 0 … n_features − 1; ``parts[b].n_features == len(columns[b])``.

    Raises
    ------
    ValueError
        If the blocks overlap, leave a column out, or do not match the parts' sizes.
    TypeError
        If a part is not a Distribution.

    Examples
    --------
    >>> import numpy as np
    >>> from probmix.distributions import Gaussian, IndependentComponents, Poisson
    >>> g, p = Gaussian(mean=[0.0], covariance=[[1.0]]), Poisson(rate=[3.0])
    >>> both = IndependentComponents(parts=[p, g], columns=[(1,), (0,)])
    >>> x = np.array([[0.5, 2.0]])
    >>> bool(np.isclose(both.log_prob(x), g.log_prob(x[:, :1]) + p.log_prob(x[:, 1:]))[0])
    True
    """

    #: the parts are re-estimated or held fixed as a whole
    parameter_names: ClassVar[tuple[str, ...]] = ("parts",)

    parts: tuple[Distribution, ...] = attrs.field(converter=_parts)
    columns: tuple[tuple[int, ...], ...] = attrs.field(converter=_columns)
    _index: tuple[Any, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.parts:
            raise ValueError("IndependentComponents needs at least one part")
        if len(self.parts) != len(self.columns):
            raise ValueError(f"got {len(self.parts)} parts for {len(self.columns)} column blocks")
        for b, (part, block) in enumerate(zip(self.parts, self.columns)):
            if not isinstance(part, Distribution):
                raise TypeError(f"part {b} must be a probmix Distribution, got "
                                f"{type(part).__name__}")
            if part.n_features != len(block):
                raise ValueError(f"part {b} ({type(part).__name__}) has {part.n_features} "
                                 f"features but its block lists {len(block)} columns")
        flat = [c for block in self.columns for c in block]
        seen: dict[int, int] = {}
        for b, block in enumerate(self.columns):
            for c in block:
                if c in seen:
                    raise ValueError(f"column {c} is in blocks {seen[c]} and {b}: blocks must "
                                     "be disjoint")
                seen[c] = b
        missing = sorted(set(range(len(flat))) - set(flat))
        if missing:
            raise ValueError(f"the blocks must cover columns 0..{len(flat) - 1}; missing "
                             f"{missing}")
        # a contiguous increasing block is a slice (a view), any other an index array
        index = tuple(slice(block[0], block[-1] + 1)
                      if list(block) == list(range(block[0], block[-1] + 1))
                      else np.array(block) for block in self.columns)
        object.__setattr__(self, "_index", index)

    def _block(self, X: np.ndarray, b: int) -> np.ndarray:
        return X[:, self._index[b]]

    # -- contract -----------------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        return sum(len(block) for block in self.columns)

    @property
    def n_parameters(self) -> int:
        return sum(p.n_parameters for p in self.parts)

    @property
    def families(self) -> tuple[type[Distribution], ...]:
        """The family of each part."""
        return tuple(type(p) for p in self.parts)

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        return np.sum([p.log_prob(self._block(X, b)) for b, p in enumerate(self.parts)], axis=0)

    def sufficient_statistics(self, X: np.ndarray, weights: np.ndarray) -> IndependentStatistics:
        return IndependentStatistics(
            parts=tuple(p.sufficient_statistics(self._block(X, b), weights)
                        for b, p in enumerate(self.parts)),
            families=self.families, columns=self.columns)

    @classmethod
    def from_statistics(cls, stats: IndependentStatistics,
                        prior: Sequence[Any] | None = None) -> IndependentComponents:
        """Each part's ``from_statistics`` (MLE, or MAP under its entry of ``prior``).

        Parameters
        ----------
        prior : sequence, optional
            One prior per part (``None`` entries for none).
        """
        priors = _priors(prior, len(stats.parts))
        return cls(parts=[f.from_statistics(s, p)
                          for f, s, p in zip(stats.families, stats.parts, priors)],
                   columns=stats.columns)

    def log_prior(self, prior: Sequence[Any] | None) -> float:
        return sum(p.log_prior(q) for p, q in zip(self.parts, _priors(prior, len(self.parts))))

    def expected_log_prob(self, stats: IndependentStatistics) -> float:
        """Σ over parts of each part's ``expected_log_prob``."""
        return sum(p.expected_log_prob(s) for p, s in zip(self.parts, stats.parts))

    # -- missing values: each part marginalises its own block -------------------------------
    #: True, but each part that sees a NaN in its block must support missing values itself
    supports_missing: ClassVar[bool] = True

    def marginal_log_prob(self, X: np.ndarray) -> np.ndarray:
        """Σ_b of each part's ``marginal_log_prob`` on its block; a block wholly missing in a
        row contributes log 1 = 0 (the parts say so themselves)."""
        X = np.asarray(X)
        return np.sum([self._part_hook(b, "marginal_log_prob", self._block(X, b))
                       for b in range(len(self.parts))], axis=0)

    def expected_statistics(self, X: np.ndarray,
                            weights: np.ndarray) -> tuple[IndependentStatistics, float]:
        """Each part's expected statistics on its block (a wholly missing block is imputed
        by its part: its statistics get the part's expectations), entropies summed."""
        X = np.asarray(X)
        parts, entropy = [], 0.0
        for b in range(len(self.parts)):
            s, h = self._part_hook(b, "expected_statistics", self._block(X, b), weights)
            parts.append(s)
            entropy += h
        return (IndependentStatistics(parts=tuple(parts), families=self.families,
                                      columns=self.columns), entropy)

    def conditional_mean(self, X: np.ndarray) -> np.ndarray:
        """Each block's conditional mean under its part (the blocks are independent)."""
        X = np.asarray(X)
        out = np.array(X, dtype=np.float64)
        for b in range(len(self.parts)):
            out[:, self._index[b]] = self._part_hook(b, "conditional_mean", self._block(X, b))
        return out

    def _part_hook(self, b: int, name: str, *args: Any) -> Any:
        try:
            return getattr(self.parts[b], name)(*args)
        except ValueError as exc:
            if not getattr(exc, "missing_unsupported", False):
                raise
            renamed = ValueError(f"X columns {list(self.columns[b])}: {exc}")
            renamed.missing_unsupported = True  # type: ignore[attr-defined]
            raise renamed from None

    def sample(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        out = np.empty((n_samples, self.n_features))
        for b, p in enumerate(self.parts):
            out[:, self._index[b]] = p.sample(n_samples, rng)
        return out

    def support_mask(self, X: np.ndarray) -> np.ndarray:
        mask = np.ones(np.shape(X)[0], dtype=bool)
        for b, part in enumerate(self.parts):
            mask &= part.support_mask(self._block(X, b))
        return mask

    def check_support(self, X: np.ndarray) -> None:
        """Each part's check, with the column it names renumbered as a column of ``X``."""
        for b, part in enumerate(self.parts):
            try:
                part.check_support(self._block(X, b))
            except ValueError as exc:
                column, problem = getattr(exc, "column", None), getattr(exc, "problem", None)
                if column is not None and problem is not None:
                    raise support_error(self.columns[b][column], problem) from None
                raise ValueError(f"X columns {list(self.columns[b])} "
                                 f"({type(part).__name__}): {exc}") from None

    @classmethod
    def fit(cls, X: Any, weights: Any = None, prior: Any = None, *,  # type: ignore[override]
            parts: Sequence[Distribution | type[Distribution]],
            columns: Sequence[Any]) -> IndependentComponents:
        """Weighted MLE (or MAP) of each part on its columns.

        Parameters
        ----------
        parts : sequence of Distribution classes or instances
            A class is fitted with its own ``fit``; an instance (needed for a family whose
            statistics depend on its parameters, such as ``StudentT``) is :func:`refine`-d.
        columns : sequence of sequences of int
            As for the constructor.
        """
        X = check_data(X)
        blocks = _columns(columns)
        priors = _priors(prior, len(blocks))
        fitted = []
        for part, block, p in zip(parts, blocks, priors):
            Xb = X[:, list(block)]
            fitted.append(part.fit(Xb, weights, p) if isinstance(part, type)
                          else refine(part, Xb, weights, p))
        return cls(parts=fitted, columns=blocks)

    # -- joint hooks: each part's family sees its part of every component ------------------------
    @classmethod
    def from_statistics_many(cls, stats: Sequence[IndependentStatistics], prior: Any = None, *,
                             fixed: Sequence[frozenset[str]] | None = None,
                             current: Sequence[Distribution] | None = None,
                             ) -> list[IndependentComponents]:
        """The parts of all free components re-estimated by their families' joint hooks.

        A component held fixed (``"all"`` or ``"parts"``) is kept; holding some parameters of
        a part is not supported.
        """
        out: list[Any] = [None] * len(stats)
        free = []
        for i in range(len(stats)):
            held = frozenset() if fixed is None else fixed[i]
            if not held:
                free.append(i)
            elif current is None:
                raise ValueError("holding parameters fixed needs the current components")
            elif "all" in held or held >= set(cls.parameter_names):
                out[i] = current[i]
            else:
                try:
                    out[i] = cls.from_statistics_partial(stats[i], prior, held,
                                                         current[i])  # type: ignore[arg-type]
                except ValueError as exc:
                    exc.component = i  # type: ignore[attr-defined]
                    raise
        for idx in _by_signature([(stats[i].families, stats[i].columns) for i in free]):
            members = [free[n] for n in idx]
            first = stats[members[0]]
            new_parts = []
            for b, (family, p) in enumerate(zip(first.families,
                                                _priors(prior, len(first.parts)))):
                try:
                    new_parts.append(family.from_statistics_many(
                        [stats[i].parts[b] for i in members], p))
                except ValueError as exc:
                    local = getattr(exc, "component", None)
                    if local is not None:
                        exc.component = members[local]  # type: ignore[attr-defined]
                    raise
            for n, i in enumerate(members):
                out[i] = cls(parts=[parts[n] for parts in new_parts], columns=first.columns)
        return out

    @classmethod
    def n_parameters_many(cls, components: Sequence[Distribution]) -> int:
        return sum(family.n_parameters_many(parts)
                   for family, parts, _, _ in _parts_by_family(components))

    @classmethod
    def log_prior_many(cls, components: Sequence[Distribution], prior: Any) -> float:
        return sum(family.log_prior_many(parts, _priors(prior, n_parts)[b])
                   for family, parts, b, n_parts in _parts_by_family(components))


def _by_signature(signatures: Sequence[Any]) -> list[list[int]]:
    """Indices grouped by equal signature, in order of first appearance."""
    groups: dict[Any, list[int]] = {}
    for i, s in enumerate(signatures):
        groups.setdefault(s, []).append(i)
    return list(groups.values())


def _parts_by_family(components: Sequence[Any],
                     ) -> list[tuple[type[Distribution], list[Any], int, int]]:
    """(family, part b of every component, b, number of parts) for each part of each group of
    same-shaped products, so a family's joint hooks see all its parts at once."""
    out = []
    for idx in _by_signature([(c.families, c.columns) for c in components]):
        first = components[idx[0]]
        for b, family in enumerate(first.families):
            out.append((family, [components[i].parts[b] for i in idx], b, len(first.parts)))
    return out
