"""Bundled data sets: the iris CSV against scikit-learn's copy, and packaging."""

import csv
import fnmatch
import io
from importlib import resources
from pathlib import Path

import attrs
import numpy as np
import pytest
from sklearn import datasets as sk_datasets

from probmix.datasets import Dataset, load_iris

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def iris() -> Dataset:
    return load_iris()


def test_shapes_and_dtypes(iris):
    assert iris.data.shape == (150, 4)
    assert iris.data.dtype == np.float64
    assert iris.target.shape == (150,)
    assert np.issubdtype(iris.target.dtype, np.integer)
    assert len(iris.feature_names) == 4
    assert iris.target_names == ("setosa", "versicolor", "virginica")


def test_fifty_flowers_per_species(iris):
    assert np.array_equal(np.bincount(iris.target), [50, 50, 50])


def test_matches_scikit_learn_copy_exactly(iris):
    reference = sk_datasets.load_iris()
    # Bit-for-bit: the CSV holds the shortest round-tripping decimal of every value.
    assert np.array_equal(iris.data, reference.data)
    assert np.array_equal(iris.target, reference.target)
    assert list(iris.feature_names) == list(reference.feature_names)
    assert list(iris.target_names) == list(reference.target_names)


def test_csv_is_plain_readable_and_in_the_package():
    resource = resources.files("probmix.datasets").joinpath("iris.csv")
    assert resource.is_file()
    rows = list(csv.reader(io.StringIO(resource.read_text(encoding="utf-8"))))
    header, body = rows[0], rows[1:]
    assert header[-1] == "species" and len(header) == 5
    assert len(body) == 150 and all(len(r) == 5 for r in body)
    assert {r[-1] for r in body} == {"setosa", "versicolor", "virginica"}


def test_csv_is_declared_as_package_data():
    # Without the glob in pyproject the CSV would be missing from an installed wheel.
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["probmix"]
    assert any(fnmatch.fnmatch("datasets/iris.csv", p) for p in patterns)


def test_value_is_frozen_and_arrays_read_only(iris):
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        iris.data = np.zeros((150, 4))
    with pytest.raises(ValueError, match="read-only"):
        iris.data[0, 0] = 0.0
    # Each call reads the file afresh and returns an equal value.
    assert load_iris() == iris


def test_dataset_checks_consistency():
    with pytest.raises(ValueError, match="feature names"):
        Dataset(data=np.zeros((3, 2)), target=np.zeros(3, dtype=int),
                feature_names=["a"], target_names=["x"])
    with pytest.raises(ValueError, match="target"):
        Dataset(data=np.zeros((3, 2)), target=np.zeros(4, dtype=int),
                feature_names=["a", "b"], target_names=["x"])
