"""Initialisation: starting responsibilities for EM, usable by any family.

Every method returns responsibilities of shape (n_samples, n_components); :func:`initial_model`
turns them into θ_0 with one M-step, so a new family needs nothing extra to be initialised.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._validation import check_data, check_sample_weight
from .distributions.base import Distribution
from .mixture import MixtureModel, MixtureStatistics

__all__ = [
    "INIT_METHODS",
    "kmeans_plusplus",
    "kmeans",
    "initial_responsibilities",
    "responsibilities_from_centers",
    "initial_model",
]

INIT_METHODS: tuple[str, ...] = ("kmeans++", "kmeans", "random", "random_from_data")


class _Distances:
    """Squared Euclidean distances from the rows of X to changing sets of centers.

    ‖x − s‖² − 2 (x − s)·(c − s) + ‖c − s‖² is one GEMM per set of centers; the shift s (the
    mean of the rows) keeps the expansion from cancelling when the data sit far from the
    origin, and the rows' part is computed once.
    """

    def __init__(self, X: np.ndarray) -> None:
        self.shift = X.mean(axis=0)
        self.rows = X - self.shift
        self.norms = np.einsum("ij,ij->i", self.rows, self.rows)

    def to(self, centers: np.ndarray) -> np.ndarray:
        """(n_centers, n_samples), clipped at 0 against round-off: rows of this layout make
        the reductions over centers (argmin, minimum) run along contiguous memory."""
        c = centers - self.shift
        d2 = c @ self.rows.T
        d2 *= -2.0
        d2 += self.norms
        d2 += np.einsum("ij,ij->i", c, c)[:, None]
        return np.maximum(d2, 0.0, out=d2)


def _too_few_distinct(n_components: int) -> ValueError:
    return ValueError(f"X has fewer distinct points (with positive weight) than "
                      f"n_components={n_components}: decrease n_components")


def kmeans_plusplus(X: np.ndarray, n_components: int, rng: np.random.Generator,
                    sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii, 2007).

    Each next center is drawn with probability ∝ w_i D(x_i)², D the distance to the nearest
    center so far; of ``2 + ⌊log K⌋`` candidates the one that most reduces the potential wins.

    Returns
    -------
    centers : ndarray of shape (n_components, n_features)
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    n_trials = 2 + int(math.log(n_components))
    centers = np.empty((n_components, X.shape[1]))
    first = rng.choice(n, p=w / w.sum())
    centers[0] = X[first]
    distances = _Distances(X)
    closest = distances.to(centers[:1])[0]
    for c in range(1, n_components):
        potential = w * closest
        total = potential.sum()
        if not total > 0:
            raise _too_few_distinct(n_components)
        cumulative = np.cumsum(potential)
        candidates = np.searchsorted(cumulative, rng.uniform(size=n_trials) * total)
        candidates = np.minimum(candidates, n - 1)
        cand_d2 = np.minimum(closest, distances.to(X[candidates]))  # (n_trials, n)
        best = int(np.argmin(cand_d2 @ w))
        centers[c] = X[candidates[best]]
        closest = cand_d2[best]
    return centers


def kmeans(X: np.ndarray, n_components: int, rng: np.random.Generator,
           sample_weight: np.ndarray | None = None, n_iter: int = 10) -> np.ndarray:
    """k-means++ seeding followed by ``n_iter`` weighted Lloyd iterations; returns the centers.

    A cluster that empties keeps its previous center.
    """
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    centers = kmeans_plusplus(X, n_components, rng, w)
    distances = _Distances(X)
    for _ in range(n_iter):
        labels = np.argmin(distances.to(centers), axis=0)
        one_hot = np.zeros((X.shape[0], n_components))
        one_hot[np.arange(X.shape[0]), labels] = w
        mass = np.bincount(labels, weights=w, minlength=n_components)
        new = np.where(mass[:, None] > 0, (one_hot.T @ X) / np.maximum(mass, 1e-300)[:, None],
                       centers)
        if np.allclose(new, centers, rtol=0, atol=0):
            break
        centers = new
    return centers


def responsibilities_from_centers(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """One-hot responsibilities (n_samples, n_centers): each row to its nearest center."""
    labels = np.argmin(_Distances(X).to(centers), axis=0)
    resp = np.zeros((X.shape[0], centers.shape[0]))
    resp[np.arange(X.shape[0]), labels] = 1.0
    return resp


def initial_responsibilities(X: Any, n_components: int, method: str,
                             rng: np.random.Generator, sample_weight: Any = None) -> np.ndarray:
    """Starting responsibilities, an ndarray of shape (n_samples, n_components).

    Parameters
    ----------
    method : {"kmeans++", "kmeans", "random", "random_from_data"}
        ``kmeans++``: each row assigned to its nearest k-means++ seed; ``kmeans``: to its
        nearest center after a few Lloyd iterations; ``random``: uniform random
        responsibilities, normalised per row; ``random_from_data``: nearest of
        ``n_components`` distinct rows drawn at random.
    """
    X = check_data(X)
    w = check_sample_weight(sample_weight, X.shape[0])
    if method == "random":
        resp = rng.uniform(size=(X.shape[0], n_components))
        return resp / resp.sum(axis=1, keepdims=True)
    if method == "kmeans++":
        return responsibilities_from_centers(X, kmeans_plusplus(X, n_components, rng, w))
    if method == "kmeans":
        return responsibilities_from_centers(X, kmeans(X, n_components, rng, w))
    if method == "random_from_data":
        candidates = np.flatnonzero(w > 0)
        unique = np.unique(X[candidates], axis=0, return_index=True)[1]
        if unique.size < n_components:
            raise _too_few_distinct(n_components)
        rows = candidates[rng.choice(unique, size=n_components, replace=False)]
        return responsibilities_from_centers(X, X[rows].astype(np.float64))
    raise ValueError(f"init_params must be one of {INIT_METHODS}, got {method!r}")


def initial_model(X: Any, families: Sequence[type[Distribution]], resp: np.ndarray, *,
                  sample_weight: Any = None, prior: Any = None) -> MixtureModel:
    """θ_0 from starting responsibilities by one maximum-likelihood M-step.

    Parameters
    ----------
    families : sequence of Distribution classes
        The family of each component (their ``sufficient_statistics`` must be classmethods).
    resp : ndarray of shape (n_samples, n_components)
    prior : object, optional
        Passed to the families' ``from_statistics`` (e.g. a ``CovarianceRidge``).
    """
    X = check_data(X)
    w = check_sample_weight(sample_weight, X.shape[0])
    stats = MixtureStatistics.of(X, resp * w[:, None], families)
    return MixtureModel.from_statistics(stats, prior)
