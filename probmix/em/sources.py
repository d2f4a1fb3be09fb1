r"""Where the EM pass reads its rows: in memory, a memmap, a re-iterable of chunks, or Dask.

One EM iteration is a sum over rows: every family's statistics are additive, and so are the
log-likelihood and the bound. A :class:`DataSource` hands the pass its rows chunk by chunk and
adds up what each chunk gives; the result is the in-memory fit's to round-off (only the order
of the additions differs), and the memory a pass needs is that of one chunk, not of the data.

:func:`as_source` picks the source for what ``EMAlgorithm.fit`` (or ``GMM.fit``) is given:

- a numpy array: validated once, read in slices (:class:`ArraySource`);
- a ``numpy.memmap``: read and validated slice by slice, never loaded whole
  (:class:`ArraySource` with ``lazy=True``);
- a ``dask.array.Array``: each block is summarised where it lives, on the Dask workers, and
  only the small statistics objects travel, tree-reduced (:class:`DaskSource`);
- any other re-iterable of 2-D chunks, or of ``(chunk, weights)`` pairs (a list of arrays, or an
  object whose ``__iter__`` reads the chunks afresh each time, e.g. from files):
  :class:`ChunkSource`.
"""

from __future__ import annotations

import abc
import functools
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import attrs
import numpy as np

from .._validation import check_data, check_sample_weight

__all__ = ["Chunk", "DataSource", "ArraySource", "ChunkSource", "DaskSource", "as_source",
           "in_memory"]

T = TypeVar("T")

# runs ``work`` over the chunks (in order, or on threads) and yields the results in order
Runner = Callable[[Callable[[Any], Any], Iterable[Any]], Iterator[Any]]


def _sequential(work: Callable[[Any], T], items: Iterable[Any]) -> Iterator[T]:
    return map(work, items)


@attrs.frozen
class Chunk:
    """Rows of the data, their weights (``None``: every weight is 1) and the position of the
    first row in the data."""

    X: np.ndarray
    weights: np.ndarray | None
    start: int

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])


class DataSource(abc.ABC):
    """Rows that the EM pass reads once per iteration, chunk by chunk.

    Subclasses implement :meth:`chunks` (validated chunks, in the same order on every pass)
    and :meth:`sample`; a source whose rows live elsewhere (a cluster) overrides
    :meth:`map_reduce` to run the work where the rows are.
    """

    #: the number of columns
    n_features: int
    #: float32 or float64: the precision the data are scored in
    dtype: np.dtype
    #: rows that marginalise missing entries (NaN) rather than reject them
    allow_missing: bool = False

    @property
    def n_samples(self) -> int | None:
        """Number of rows, when known without a pass (``None`` otherwise)."""
        return None

    @property
    def in_memory(self) -> bool:
        """Whether the rows are one validated in-memory array (:attr:`ArraySource.X`)."""
        return False

    @abc.abstractmethod
    def chunks(self, chunk_size: int) -> Iterator[Chunk]:
        """Validated chunks of at most ``chunk_size`` rows, covering every row once."""

    @abc.abstractmethod
    def sample(self, n_rows: int, rng: np.random.Generator) -> np.ndarray:
        """Up to ``n_rows`` rows drawn uniformly without replacement (all rows if fewer):
        what a k-means++ initialisation on large data starts from."""

    def map_reduce(self, work: Callable[[Chunk], T], chunk_size: int,
                   run: Runner = _sequential) -> T:
        """``work(chunk_1) + work(chunk_2) + …`` in row order, whoever runs the chunks."""
        total: Any = None
        for part in run(work, self.chunks(chunk_size)):
            total = part if total is None else total + part
        if total is None:
            raise ValueError("the data source yielded no rows")
        return total  # type: ignore[no-any-return]


def _dtype_of(dtype: Any) -> np.dtype:
    """float32 is kept; every other number type is scored in float64."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float32 else np.dtype(np.float64)


class ArraySource(DataSource):
    """Rows of one array, read in slices.

    An ordinary array is validated once (finite, 2-D, numeric) and sliced without copies.
    With ``lazy=True`` (what a ``numpy.memmap`` gets) each slice is validated and converted
    as it is read, so the data are never loaded, converted or checked whole.
    """

    def __init__(self, X: Any, sample_weight: Any = None, *, n_features: int | None = None,
                 allow_missing: bool = False, lazy: bool = False,
                 expected_by: str = "the initial model has") -> None:
        self.allow_missing = allow_missing
        self._lazy = lazy
        self._expected_by = expected_by
        if lazy:
            if not isinstance(X, np.ndarray) or X.ndim != 2:
                raise ValueError(f"X must be a 2-D array, got {getattr(X, 'shape', type(X))}")
            check_data(X[:1], n_features=n_features, expected_by=expected_by,
                       allow_missing=allow_missing)  # shape and type, from one row
            self.X = X
            self.dtype = _dtype_of(X.dtype)
        else:
            self.X = check_data(X, n_features=n_features, expected_by=expected_by,
                                allow_missing=allow_missing)
            self.dtype = self.X.dtype
        self.n_features = int(self.X.shape[1])
        # unit weights travel as None: the pass then skips a product per chunk (and a
        # memmap's pass allocates nothing of the data's length)
        self.weights = None
        if sample_weight is not None:
            w = check_sample_weight(sample_weight, self.X.shape[0])
            self.weights = None if np.all(w == 1.0) else w

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def in_memory(self) -> bool:
        return not self._lazy

    def chunks(self, chunk_size: int) -> Iterator[Chunk]:
        for lo in range(0, self.n_samples, chunk_size):
            Xc = self.X[lo:lo + chunk_size]
            if self._lazy:
                Xc = _check_chunk(np.asarray(Xc), self, lo)
            yield Chunk(Xc, None if self.weights is None else self.weights[lo:lo + chunk_size],
                        lo)

    def sample(self, n_rows: int, rng: np.random.Generator) -> np.ndarray:
        if n_rows >= self.n_samples:
            rows = self.X if not self._lazy else _check_chunk(np.asarray(self.X), self, 0)
            return rows
        # sorted positions: a memmap is then read front to back
        idx = np.sort(rng.choice(self.n_samples, size=n_rows, replace=False))
        return _check_chunk(np.asarray(self.X[idx]), self, None)


def _check_chunk(Xc: np.ndarray, source: DataSource, start: int | None) -> np.ndarray:
    """Validate one chunk read from a source, naming where it came from."""
    where = "X" if start is None else f"X (chunk from row {start})"
    out = check_data(Xc, name=where, n_features=source.n_features,
                     allow_missing=source.allow_missing, expected_by="the initial model has")
    return out if out.dtype == source.dtype else out.astype(source.dtype)


class ChunkSource(DataSource):
    """Rows from a re-iterable of chunks: 2-D arrays, or ``(array, weights)`` pairs.

    Each pass iterates ``chunks`` afresh, so it must be re-iterable (a list, or an object whose
    ``__iter__`` returns a new iterator that reads the same rows in the same order) — a
    generator can be read only once. Chunks larger than the pass's chunk size are split; each
    is validated as it is read. The dtype is that of the first chunk (float32 kept).
    """

    def __init__(self, chunks: Iterable[Any], *, n_features: int | None = None,
                 allow_missing: bool = False) -> None:
        if iter(chunks) is chunks:
            raise TypeError(
                "X is an iterator (e.g. a generator), which can be read only once, but EM "
                "reads the data once per iteration: pass a re-iterable instead (a list of "
                "arrays, or an object whose __iter__ returns a fresh iterator over the chunks)")
        self._chunks = chunks
        self.allow_missing = allow_missing
        first = next(iter(chunks), None)
        if first is None:
            raise ValueError("X yielded no chunks")
        X0, _ = _split_pair(first)
        X0 = check_data(X0, name="X (chunk 0)", n_features=n_features,
                        allow_missing=allow_missing, expected_by="the initial model has")
        self.n_features = X0.shape[1]
        self.dtype = X0.dtype

    def chunks(self, chunk_size: int) -> Iterator[Chunk]:
        start = 0
        for i, item in enumerate(self._chunks):
            Xi, wi = _split_pair(item)
            Xi = _check_chunk(np.asarray(Xi) if not isinstance(Xi, np.ndarray) else Xi,
                              self, start)
            if wi is not None:
                wi = check_sample_weight(wi, Xi.shape[0], name=f"weights of chunk {i}")
            for lo in range(0, Xi.shape[0], chunk_size):
                yield Chunk(Xi[lo:lo + chunk_size],
                            None if wi is None else wi[lo:lo + chunk_size], start + lo)
            start += Xi.shape[0]

    def sample(self, n_rows: int, rng: np.random.Generator) -> np.ndarray:
        """Reservoir sampling over one pass: a uniform sample whatever the chunk sizes."""
        reservoir: list[np.ndarray] = []
        keys: list[np.ndarray] = []
        # each row gets a uniform key; the n_rows smallest keys are a uniform sample
        for chunk in self.chunks(1 << 16):
            keys.append(rng.random(chunk.n_rows))
            reservoir.append(chunk.X)
            if sum(k.size for k in keys) > 4 * n_rows:
                reservoir, keys = _smallest(reservoir, keys, n_rows)
        rows, _ = _smallest(reservoir, keys, n_rows)
        return rows[0]


def _smallest(rows: list[np.ndarray], keys: list[np.ndarray],
              n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    all_rows, all_keys = np.concatenate(rows), np.concatenate(keys)
    if all_keys.size > n:
        keep = np.sort(np.argpartition(all_keys, n)[:n])
        all_rows, all_keys = all_rows[keep], all_keys[keep]
    return [all_rows], [all_keys]


def _split_pair(item: Any) -> tuple[Any, Any]:
    if isinstance(item, tuple):
        if len(item) != 2:
            raise ValueError("a chunk must be an array or an (array, weights) pair, got a "
                             f"tuple of {len(item)}")
        return item
    return item, None


class DaskSource(DataSource):
    """Rows of a ``dask.array.Array``, summarised on the Dask workers.

    Per pass, each block becomes one task that validates its rows and returns the block's
    statistics (chunk by chunk inside the block, so a worker needs the memory of one chunk
    beyond the block itself); the per-block results are added in a binary tree of tasks, and
    only the final sum — statistics of size O(K d²), not O(n) — reaches the client. The rows
    are never gathered. A lazy array is re-read on every pass; ``X.persist()`` first keeps it in
    the workers' memory when it fits there.
    """

    def __init__(self, X: Any, sample_weight: Any = None, *, n_features: int | None = None,
                 allow_missing: bool = False) -> None:
        import dask.array as da

        if X.ndim != 2:
            raise ValueError(f"X must be 2-D of shape (n_samples, n_features), got {X.ndim}-D "
                             f"with shape {X.shape}")
        if any(np.isnan(c) for c in X.chunks[0]):
            raise ValueError("X has unknown chunk sizes: call X.compute_chunk_sizes() first")
        if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
            raise TypeError(f"X must hold numbers, got a dask array of dtype {X.dtype}")
        if n_features is not None and X.shape[1] != n_features:
            raise ValueError(f"X has {X.shape[1]} features, but the initial model has "
                             f"{n_features}")
        if len(X.chunks[1]) > 1:  # a task needs whole rows
            X = X.rechunk({1: -1})
        self.X = X
        self.n_features = int(X.shape[1])
        self.dtype = _dtype_of(X.dtype)
        self.allow_missing = allow_missing
        self.weights = None
        if sample_weight is not None:
            if not isinstance(sample_weight, da.Array):
                w = check_sample_weight(sample_weight, X.shape[0])
                sample_weight = da.from_array(w, chunks=(X.chunks[0],))
            elif sample_weight.shape != (X.shape[0],):
                raise ValueError(f"sample_weight must have shape ({X.shape[0]},), got "
                                 f"{sample_weight.shape}")
            self.weights = sample_weight.rechunk((X.chunks[0],))

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    def chunks(self, chunk_size: int) -> Iterator[Chunk]:  # pragma: no cover - not used
        raise TypeError("a DaskSource is reduced on the workers, not iterated on the client")

    def map_reduce(self, work: Callable[[Chunk], T], chunk_size: int,
                   run: Runner = _sequential) -> T:
        import dask

        blocks = self.X.to_delayed().ravel()
        weights = ([None] * len(blocks) if self.weights is None
                   else list(self.weights.to_delayed().ravel()))
        task = dask.delayed(functools.partial(_block, work, chunk_size, self.n_features,
                                              self.dtype, self.allow_missing), pure=True)
        starts = np.concatenate([[0], np.cumsum(self.X.chunks[0])[:-1]]).astype(int)
        parts = [task(int(lo), b, w) for lo, b, w in zip(starts, blocks, weights)]
        while len(parts) > 1:  # a binary tree: the client receives one small object
            pairs = [dask.delayed(_add, pure=True)(a, b)
                     for a, b in zip(parts[::2], parts[1::2])]
            parts = pairs + ([parts[-1]] if len(parts) % 2 else [])
        (total,) = dask.compute(parts[0])
        if total is None:
            raise ValueError("X has no rows")
        return total  # type: ignore[no-any-return]

    def sample(self, n_rows: int, rng: np.random.Generator) -> np.ndarray:
        n = self.n_samples
        idx = np.arange(n) if n_rows >= n else np.sort(rng.choice(n, size=n_rows,
                                                                   replace=False))
        return _check_chunk(np.asarray(self.X[idx].compute()), self, None)


def _add(a: Any, b: Any) -> Any:
    """a + b, where an empty block's result (None) is neutral."""
    return a if b is None else b if a is None else a + b


def _block(work: Callable[[Chunk], T], chunk_size: int, n_features: int, dtype: np.dtype,
           allow_missing: bool, start: int, X: np.ndarray,
           weights: np.ndarray | None) -> T | None:
    """One Dask block, on a worker: validate it, then work through it chunk by chunk."""
    X = check_data(X, name="X (a dask block)", n_features=n_features, min_samples=0,
                   allow_missing=allow_missing, expected_by="the initial model has")
    X = X if X.dtype == dtype else X.astype(dtype)
    if weights is not None:
        weights = check_sample_weight(weights, X.shape[0])
    total: Any = None
    for lo in range(0, X.shape[0], chunk_size):
        part = work(Chunk(X[lo:lo + chunk_size],
                          None if weights is None else weights[lo:lo + chunk_size], start + lo))
        total = part if total is None else total + part
    return total  # type: ignore[no-any-return]  # None for an empty block


def _is_dask_array(X: Any) -> bool:
    da = sys.modules.get("dask.array")  # never import dask for data that cannot be Dask's
    return da is not None and isinstance(X, da.Array)


def as_source(X: Any, sample_weight: Any = None, *, n_features: int | None = None,
              allow_missing: bool = False) -> DataSource:
    """The :class:`DataSource` for ``X`` (a source is returned as it is).

    Parameters
    ----------
    X : array-like, numpy.memmap, dask.array.Array, re-iterable of chunks, or DataSource
    sample_weight : array-like of shape (n_samples,), optional
        Not for a re-iterable of chunks (yield ``(chunk, weights)`` pairs instead).
    n_features : int, optional
        The number of columns the model expects.
    allow_missing : bool, default=False
        Whether NaN marks a missing entry (see ``EMAlgorithm(missing=...)``).
    """
    if isinstance(X, DataSource):
        if sample_weight is not None:
            raise ValueError("sample_weight cannot be given with a DataSource: the source "
                             "carries its own weights")
        return X
    if isinstance(X, np.memmap):
        return ArraySource(X, sample_weight, n_features=n_features,
                           allow_missing=allow_missing, lazy=True)
    if _is_dask_array(X):
        return DaskSource(X, sample_weight, n_features=n_features, allow_missing=allow_missing)
    if _is_chunk_iterable(X):
        if sample_weight is not None:
            raise ValueError("sample_weight cannot be given with a re-iterable of chunks: "
                             "yield (chunk, weights) pairs instead")
        return ChunkSource(X, n_features=n_features, allow_missing=allow_missing)
    return ArraySource(X, sample_weight, n_features=n_features, allow_missing=allow_missing)


def in_memory(X: Any) -> bool:
    """Whether :func:`as_source` reads ``X`` as one in-memory array (validated whole)."""
    return not (isinstance(X, (DataSource, np.memmap)) or _is_dask_array(X)
                or _is_chunk_iterable(X))


def _is_chunk_iterable(X: Any) -> bool:
    """An iterable that is not itself array-like: its items are chunks, not rows."""
    if isinstance(X, (np.ndarray, str, bytes)) or hasattr(X, "__array__"):
        return False
    if hasattr(X, "to_numpy") or hasattr(X, "tocsr"):  # pandas; scipy.sparse (refused later)
        return False
    if isinstance(X, (list, tuple)):
        # a list of 2-D arrays (or pairs) is chunks; a nested list of numbers is one array
        return bool(X) and all(isinstance(c, tuple) or np.ndim(c) == 2 for c in X)
    return isinstance(X, Iterable)
