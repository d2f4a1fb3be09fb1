"""Small data sets bundled with probmix, for examples, tests and the ``probmix demo`` command.

The files ship inside the package and are read with :mod:`importlib.resources`, so they work
from a source checkout, an installed wheel or a zip archive alike.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from importlib import resources

import attrs
import numpy as np

from .._validation import readonly

__all__ = ["Dataset", "load_iris"]

_array_eq = attrs.cmp_using(eq=np.array_equal)


def _names(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


@attrs.frozen(kw_only=True)
class Dataset:
    """A bundled data set: the rows, their class labels and the names of both.

    Attributes
    ----------
    data : ndarray of shape (n_samples, n_features)
        float64, read-only (copy it to modify it in place).
    target : ndarray of shape (n_samples,)
        Integer class label of each row, an index into ``target_names``; read-only.
    feature_names : tuple of str
        One name per column of ``data``.
    target_names : tuple of str
        One name per class.
    """

    data: np.ndarray = attrs.field(eq=_array_eq)
    target: np.ndarray = attrs.field(eq=_array_eq)
    feature_names: tuple[str, ...] = attrs.field(converter=_names)
    target_names: tuple[str, ...] = attrs.field(converter=_names)

    def __attrs_post_init__(self) -> None:
        if self.data.ndim != 2 or self.data.shape[1] != len(self.feature_names):
            raise ValueError(f"data of shape {self.data.shape} does not match "
                             f"{len(self.feature_names)} feature names")
        if self.target.shape != (self.data.shape[0],):
            raise ValueError(f"target of shape {self.target.shape} does not match "
                             f"{self.data.shape[0]} rows")


def _read_labelled_csv(name: str) -> Dataset:
    """Read a bundled CSV whose header names the features and whose last column is the class.

    Class names are numbered in order of first appearance.
    """
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], [r for r in rows[1:] if r]
    classes = list(dict.fromkeys(r[-1] for r in body))
    data = np.array([[float(v) for v in r[:-1]] for r in body], dtype=np.float64)
    target = np.array([classes.index(r[-1]) for r in body], dtype=np.int64)
    return Dataset(data=readonly(data), target=readonly(target, dtype=np.int64),
                   feature_names=header[:-1], target_names=classes)


def load_iris() -> Dataset:
    """Fisher's iris data: 150 flowers, 4 measurements (cm), 3 species of 50 flowers each.

    The copy is the one distributed with scikit-learn and R (Fisher's published values; the
    UCI repository's copy differs in two rows). The data are in the public domain.

    Returns
    -------
    Dataset
        ``data`` of shape (150, 4) (sepal length, sepal width, petal length, petal width),
        ``target`` in {0, 1, 2} for ``target_names`` ("setosa", "versicolor", "virginica").

    References
    ----------
    R. A. Fisher (1936). The use of multiple measurements in taxonomic problems.
    *Annals of Eugenics* 7(2), 179–188.

    Examples
    --------
    >>> from probmix.datasets import load_iris
    >>> iris = load_iris()
    >>> iris.data.shape, iris.target_names
    ((150, 4), ('setosa', 'versicolor', 'virginica'))
    """
    return _read_labelled_csv("iris.csv")
