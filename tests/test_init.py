"""Initialisation: k-means++, k-means, random and random-from-data starts."""

import numpy as np
import pytest

from probmix.distributions import DiagonalNormal, Gaussian
from probmix.init import (
    INIT_METHODS,
    initial_model,
    initial_responsibilities,
    kmeans,
    kmeans_plusplus,
    responsibilities_from_centers,
)
from probmix.priors import CovarianceRidge


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(11)
    return np.vstack([rng.normal(c, 1.0, (60, 2)) for c in ([-5, 0], [0, 5], [5, 0], [0, -5])])


@pytest.fixture(scope="module")
def uniform():
    # No cluster structure: different seeds lead to visibly different starts.
    return np.random.default_rng(3).uniform(size=(200, 3))


def _inertia(X, centers, w=None):
    d2 = ((X[:, None, :] - centers[None, :, :]) ** 2).sum(-1).min(axis=1)
    return float(d2 @ (np.ones(len(X)) if w is None else w))


@pytest.mark.parametrize("method", INIT_METHODS)
@pytest.mark.parametrize("K", [1, 3, 6])
def test_responsibilities_are_distributions(X, method, K):
    resp = initial_responsibilities(X, K, method, np.random.default_rng(0))
    assert resp.shape == (len(X), K)
    assert np.all(resp >= 0)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-12)
    # Every component starts with some mass, so the first M-step is well defined.
    assert np.all(resp.sum(axis=0) > 0)


@pytest.mark.parametrize("method", INIT_METHODS)
@pytest.mark.parametrize("family", [Gaussian, DiagonalNormal])
def test_initial_model_is_finite(X, method, family):
    K = 4
    resp = initial_responsibilities(X, K, method, np.random.default_rng(1))
    model = initial_model(X, [family] * K, resp, prior=CovarianceRidge(reg_covar=1e-6))
    assert model.n_components == K
    assert all(type(c) is family for c in model.components)
    assert np.all(np.isfinite(model.weights)) and np.all(model.weights > 0)
    for c in model.components:
        assert np.all(np.isfinite(c.mean)) and np.all(np.isfinite(c.covariance_matrix))
    assert np.all(np.isfinite(model.log_prob(X)))


@pytest.mark.parametrize("method", INIT_METHODS)
def test_same_seed_same_start_other_seed_differs(uniform, method):
    def start(seed):
        return initial_responsibilities(uniform, 4, method, np.random.default_rng(seed))

    np.testing.assert_array_equal(start(0), start(0))
    assert any(not np.array_equal(start(0), start(seed)) for seed in range(1, 6))


def test_kmeans_plusplus_centers_are_distinct_data_points(X):
    for seed in range(5):
        centers = kmeans_plusplus(X, 6, np.random.default_rng(seed))
        assert centers.shape == (6, 2)
        # each center is one of the rows, and no row is picked twice
        matches = [np.flatnonzero(np.all(c == X, axis=1)) for c in centers]
        assert all(m.size == 1 for m in matches)
        assert len({int(m[0]) for m in matches}) == 6


def test_kmeans_plusplus_spreads_over_separated_clusters(X):
    # With four well-separated clusters and four seeds, D² sampling puts one seed in each.
    centers = kmeans_plusplus(X, 4, np.random.default_rng(0))
    cluster = np.argmin(((centers[:, None, :] - [[-5, 0], [0, 5], [5, 0], [0, -5]]) ** 2)
                        .sum(-1), axis=1)
    assert sorted(cluster) == [0, 1, 2, 3]


def test_zero_weight_rows_never_seed(X):
    # Far outliers would attract D² sampling strongly, but they carry no weight.
    outliers = np.array([[1e3, 1e3], [-1e3, 1e3], [1e3, -1e3]])
    Xo = np.vstack([X, outliers])
    w = np.r_[np.ones(len(X)), np.zeros(3)]
    for seed in range(20):
        centers = kmeans_plusplus(Xo, 4, np.random.default_rng(seed), w)
        assert np.all(np.abs(centers) < 100)
        centers = kmeans(Xo, 4, np.random.default_rng(seed), w)
        assert np.all(np.abs(centers) < 100)
    for method in INIT_METHODS:
        for seed in range(5):
            resp = initial_responsibilities(Xo, 4, method, np.random.default_rng(seed), w)
            # A zero-weight seed would own only the outliers: a component without mass.
            assert np.all(w @ resp > 0), (method, seed)


def test_kmeans_lowers_inertia_of_its_seeds(uniform):
    for seed in range(3):
        # kmeans starts from the k-means++ seeds drawn from the same generator state.
        seeds = kmeans_plusplus(uniform, 5, np.random.default_rng(seed))
        centers = kmeans(uniform, 5, np.random.default_rng(seed))
        assert _inertia(uniform, centers) < _inertia(uniform, seeds)


def test_kmeans_converges_to_a_lloyd_fixed_point(X):
    centers = kmeans(X, 4, np.random.default_rng(0), n_iter=100)
    labels = np.argmin(((X[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
    for k in range(4):
        np.testing.assert_allclose(centers[k], X[labels == k].mean(axis=0), rtol=1e-10)


def test_weighted_kmeans_equals_duplicated_rows(X):
    # Lloyd's step with integer weights equals the step on repeated rows, from the same seeds.
    w = np.random.default_rng(0).integers(1, 4, size=len(X)).astype(float)
    seeds = kmeans_plusplus(X, 4, np.random.default_rng(0), w)
    labels = np.argmin(((X[:, None, :] - seeds[None]) ** 2).sum(-1), axis=1)
    Xr, lr = np.repeat(X, w.astype(int), axis=0), np.repeat(labels, w.astype(int))
    centers = kmeans(X, 4, np.random.default_rng(0), w, n_iter=1)
    for k in range(4):
        np.testing.assert_allclose(centers[k], Xr[lr == k].mean(axis=0), rtol=1e-12)


@pytest.mark.parametrize("method", ["kmeans++", "kmeans", "random_from_data"])
def test_too_few_distinct_points(method):
    X = np.repeat([[0.0, 0.0], [1.0, 2.0]], 10, axis=0)
    with pytest.raises(ValueError, match=r"fewer distinct points .* than n_components=3"):
        initial_responsibilities(X, 3, method, np.random.default_rng(0))
    # Exactly as many distinct points as components is fine.
    resp = initial_responsibilities(X, 2, method, np.random.default_rng(0))
    assert sorted(resp.sum(axis=0)) == [10.0, 10.0]


def test_unknown_method():
    with pytest.raises(ValueError, match=r"init_params must be one of .*'kmeans--'"):
        initial_responsibilities(np.zeros((5, 1)), 2, "kmeans--", np.random.default_rng(0))


def test_float32_input_accepted(X):
    X32 = X.astype(np.float32)
    for method in INIT_METHODS:
        resp = initial_responsibilities(X32, 3, method, np.random.default_rng(0))
        model = initial_model(X32, [Gaussian] * 3, resp)
        assert np.all(np.isfinite(model.log_prob(X32)))


def test_initial_model_is_one_weighted_m_step(X):
    # Hard responsibilities: weights are cluster fractions, means cluster means.
    resp = initial_responsibilities(X, 4, "kmeans", np.random.default_rng(0))
    w = np.random.default_rng(1).integers(1, 3, size=len(X)).astype(float)
    model = initial_model(X, [Gaussian] * 4, resp, sample_weight=w)
    mass = w @ resp
    np.testing.assert_allclose(model.weights, mass / mass.sum(), rtol=1e-12)
    for k, c in enumerate(model.components):
        np.testing.assert_allclose(c.mean, (w * resp[:, k]) @ X / mass[k], rtol=1e-12)


def test_initial_model_mixed_families(X):
    resp = initial_responsibilities(X, 2, "kmeans++", np.random.default_rng(0))
    model = initial_model(X, [Gaussian, DiagonalNormal], resp)
    assert [type(c) for c in model.components] == [Gaussian, DiagonalNormal]


def test_responsibilities_from_centers_is_nearest_center(X):
    centers = np.array([[-5.0, 0.0], [5.0, 0.0]])
    resp = responsibilities_from_centers(X, centers)
    np.testing.assert_array_equal(resp.argmax(axis=1), (X[:, 0] > 0).astype(int))
    np.testing.assert_array_equal(resp.sum(axis=1), 1.0)




@pytest.mark.parametrize("offset", [1e5, 1e9])
def test_seeding_is_translation_invariant(X, offset):
    # Seeds depend on distances only, so shifting the data shifts the seeds (same generator).
    Xs = X + offset
    np.testing.assert_allclose(kmeans_plusplus(Xs, 4, np.random.default_rng(0)) - offset,
                               kmeans_plusplus(X, 4, np.random.default_rng(0)), atol=1e-5)
    np.testing.assert_allclose(kmeans(Xs, 4, np.random.default_rng(0)) - offset,
                               kmeans(X, 4, np.random.default_rng(0)), atol=1e-5)
    centers = np.array([[-5.0, 0.0], [0.0, 5.0], [5.0, 0.0], [0.0, -5.0]])
    np.testing.assert_array_equal(responsibilities_from_centers(Xs, centers + offset),
                                  responsibilities_from_centers(X, centers))
