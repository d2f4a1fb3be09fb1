"""The batched Gaussian kernels and the threaded EM pass give the per-component path's numbers.

The fast path (one GEMM for all components, statistics from the E-step's residuals, chunks on
threads) is an optimisation only: every test here compares it with the generic per-component
path (``generic_only``) or checks that the thread count and the chunk size do not matter.
"""

import threading
import warnings

import numpy as np
import pytest

from probmix import EMAlgorithm, MixtureModel
from probmix.distributions import (
    DiagonalNormal,
    Distribution,
    FullCovariance,
    Gaussian,
    SphericalNormal,
    TiedNormal,
    _batched,
)
from probmix.distributions._batched import generic_only, kernel_for
from probmix.em import HardEStep, MaximumLikelihood, StochasticEStep
from probmix.em import algorithm as em_algorithm
from probmix.init import kmeans, kmeans_plusplus, responsibilities_from_centers
from probmix.priors import CovarianceRidge

FAMILIES = [Gaussian, DiagonalNormal, SphericalNormal, TiedNormal]
MEANS = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 1.0], [0.0, 5.0, -2.0]])
SCALES = np.array([1.0, 0.5, 2.0])
# dimensions: 3, and one from which the diagonal kernels keep their features row-major
DIMENSIONS = [3, 16]
assert DIMENSIONS[1] >= _batched._SPLIT_MIN_FEATURES > DIMENSIONS[0]


def _means(d):
    extra = np.random.default_rng(7).normal(0.0, 3.0, (MEANS.shape[0], d - MEANS.shape[1]))
    return np.hstack([MEANS, extra])


def _data(shift=0.0, n_per=200, seed=0, d=3):
    rng = np.random.default_rng(seed)
    X = np.concatenate([m + rng.standard_normal((n_per, d)) * s
                        for m, s in zip(_means(d), SCALES)])
    return X + shift


def _covariance(family, rng, d):
    if family is DiagonalNormal:
        return rng.uniform(0.5, 3.0, d)
    if family is SphericalNormal:
        return float(rng.uniform(0.5, 3.0))
    A = rng.standard_normal((d, d))
    return A @ A.T + np.eye(d)


def _mixture(family, shift=0.0, seed=1, d=3):
    """Three components near the data's clusters (a tied family shares one covariance)."""
    rng = np.random.default_rng(seed)
    if family is TiedNormal:
        shared = FullCovariance(covariance=_covariance(family, rng, d))
    comps = [family(mean=m + rng.normal(0, 0.5, d) + shift,
                    covariance=shared if family is TiedNormal else _covariance(family, rng, d))
             for m in _means(d)]
    return MixtureModel(weights=[0.2, 0.3, 0.5], components=comps)


def _assert_fast_path(model, dtype):
    kernel = kernel_for(model.components, dtype)
    assert kernel is not None  # the fast path is exercised
    if kernel.kind == "diag":  # in the layout meant for this dimension
        assert kernel.split == (model.n_features >= _batched._SPLIT_MIN_FEATURES)


def _em(**kwargs):
    return EMAlgorithm(tol=0.0, m_step=MaximumLikelihood(
        component_prior=CovarianceRidge(reg_covar=1e-6)), **kwargs)


def _fit(algorithm, X, init):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached by design (tol=0)
        return algorithm.fit(X, init)


def _assert_same_model(a, b, *, rtol, mean_atol=0.0):
    np.testing.assert_allclose(a.weights, b.weights, rtol=rtol, atol=rtol)
    for ca, cb in zip(a.components, b.components):
        np.testing.assert_allclose(ca.mean, cb.mean, rtol=rtol, atol=mean_atol)
        cov_a, cov_b = ca.covariance.compact, cb.covariance.compact
        np.testing.assert_allclose(cov_a, cov_b, rtol=rtol, atol=rtol * np.max(np.abs(cov_b)))


def _assert_same_statistics(fast, slow, *, rtol, mean_atol=0.0):
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow):
        assert a.structure is b.structure
        assert a.weight == pytest.approx(b.weight, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(a.mean, b.mean, rtol=rtol, atol=mean_atol)
        np.testing.assert_allclose(a.scatter, b.scatter, rtol=rtol,
                                   atol=rtol * np.max(np.abs(b.scatter)))


# -- the kernels against the per-component path -------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-6)])
@pytest.mark.parametrize("shift", [0.0, 1e6])
@pytest.mark.parametrize("d", DIMENSIONS)
def test_log_prob_many_matches_the_loop(family, dtype, rtol, shift, d):
    model = _mixture(family, shift, d=d)
    X = _data(shift, d=d).astype(dtype)
    _assert_fast_path(model, X.dtype)
    fast = family.log_prob_many(model.components, X)
    with generic_only():
        slow = family.log_prob_many(model.components, X)
    assert fast.dtype == slow.dtype == dtype
    np.testing.assert_allclose(fast, slow, rtol=rtol)
    # the base class's loop is the generic path
    np.testing.assert_array_equal(slow, Distribution.log_prob_many.__func__(
        family, model.components, X))
    # the mixture's columns log π + log p, with log π folded into the kernel's constants
    joint = family._log_joint_many(model.components, model.log_weights, X, dtype=dtype)
    assert joint.dtype == dtype and joint.flags.writeable
    np.testing.assert_allclose(joint, slow + model.log_weights.astype(dtype), rtol=rtol)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-11), (np.float32, 1e-5)])
@pytest.mark.parametrize("shift", [0.0, 1e6])
@pytest.mark.parametrize("d", DIMENSIONS)
def test_statistics_many_match_the_loop(family, dtype, rtol, shift, d):
    # Statistics about the old means reused from the E-step's residuals, then centred: as
    # accurate as the centred per-component statistics, even 1e6 σ from the origin (means
    # there carry ~1e-10 absolute round-off in float64 whichever path).
    model = _mixture(family, shift, d=d)
    X = _data(shift, d=d).astype(dtype)
    _assert_fast_path(model, X.dtype)
    q = model.responsibilities(X) * np.random.default_rng(2).uniform(0, 2, (X.shape[0], 1))
    workspace = {}
    family.log_prob_many(model.components, X, workspace=workspace)
    reused = family.statistics_many(model.components, X, q, workspace=workspace).unstack()
    fresh = family.statistics_many(model.components, X, q).unstack()
    with generic_only():
        slow = family.statistics_many(model.components, X, q).unstack()
    atol = 1e-8 if shift else 1e-12
    _assert_same_statistics(reused, slow, rtol=rtol, mean_atol=atol)
    _assert_same_statistics(fresh, slow, rtol=rtol, mean_atol=atol)


def test_statistics_of_an_empty_chunk_are_neutral():
    model = _mixture(Gaussian)
    empty = Gaussian.statistics_many(model.components, np.empty((0, 3)), np.empty((0, 3)))
    X = _data()
    q = model.responsibilities(X)
    whole = Gaussian.statistics_many(model.components, X, q)
    for a, b in zip((whole + empty).unstack(), whole.unstack()):
        assert a.weight == b.weight
        np.testing.assert_array_equal(a.scatter, b.scatter)


def test_batches_of_different_models_still_add():
    # the fast batches add as arrays only within one model; across models they merge pairwise
    X = _data()
    a, b = _mixture(Gaussian, seed=1), _mixture(Gaussian, seed=2)
    q = np.full((X.shape[0], 3), 1.0 / 3.0)
    mixed = (Gaussian.statistics_many(a.components, X[:300], q[:300])
             + Gaussian.statistics_many(b.components, X[300:], q[300:]))
    whole = Gaussian.statistics_many(a.components, X, q)
    _assert_same_statistics(mixed.unstack(), whole.unstack(), rtol=1e-11, mean_atol=1e-13)


def test_large_inputs_are_scored_in_blocks(monkeypatch):
    # without a chunked caller (e.g. predict on all rows) the kernel bounds its temporaries
    model = _mixture(Gaussian)
    X = _data()
    whole = model.log_joint(X)
    monkeypatch.setattr(_batched, "_BLOCK_BYTES", 1000)  # a few rows per block
    np.testing.assert_allclose(model.log_joint(X), whole, rtol=1e-14)
    q = model.responsibilities(X)
    blocked = Gaussian.statistics_many(model.components, X, q).unstack()
    monkeypatch.setattr(_batched, "_BLOCK_BYTES", 8 * 2**20)
    _assert_same_statistics(blocked, Gaussian.statistics_many(model.components, X, q).unstack(),
                            rtol=1e-11, mean_atol=1e-13)


def test_threads_preparing_one_kernel_share_the_first(monkeypatch):
    # Two threads that both miss the cache must end up with the same kernel: the moments of
    # two kernels add per component, with other round-off, and results would then depend on
    # the thread count (seen at d = 16 with chunks of one row).
    model = _mixture(Gaussian, seed=5)
    original = _batched._prepare
    both_missed = threading.Barrier(2)

    def prepare_together(components):
        both_missed.wait(timeout=10)
        return original(components)

    monkeypatch.setattr(_batched, "_prepare", prepare_together)
    found = []

    def look_up():  # a list, not the mixture's tuple: no shortcut past the cache
        found.append(kernel_for(list(model.components), np.dtype(np.float64)))

    threads = [threading.Thread(target=look_up) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 2 and found[0] is not None and found[0] is found[1]


def test_spread_out_mixtures_use_the_exact_path():
    # components 1e5 σ apart: the shared reference point would cost digits, so each
    # component is scored from its own residuals, as ever
    comps = [Gaussian(mean=[0.0, 0.0], covariance=np.eye(2)),
             Gaussian(mean=[1e5, 0.0], covariance=np.eye(2))]
    assert kernel_for(comps, np.float64) is None
    diag = [DiagonalNormal(mean=[0.0], covariance=[1.0]),
            DiagonalNormal(mean=[1e4], covariance=[1.0])]
    assert kernel_for(diag, np.float64) is None
    near = [Gaussian(mean=[0.0, 0.0], covariance=np.eye(2)),
            Gaussian(mean=[300.0, 0.0], covariance=np.eye(2))]
    assert kernel_for(near, np.float64) is not None
    assert kernel_for(near, np.float32) is None  # float32 tolerates less spread


def test_subclass_that_scores_differently_keeps_its_log_prob():
    class Shifted(Gaussian):
        def log_prob(self, X):
            return super().log_prob(X) + 1.0

    comps = [Shifted(mean=[0.0], covariance=[[1.0]]), Shifted(mean=[1.0], covariance=[[2.0]])]
    X = np.linspace(-2, 2, 7)[:, None]
    np.testing.assert_allclose(Shifted.log_prob_many(comps, X),
                               np.stack([c.log_prob(X) for c in comps], axis=1))


def test_mixed_families_and_zero_weights():
    # each family scores its own components; a zero-weight component is not scored (-inf)
    X = _data()
    comps = [Gaussian(mean=MEANS[0], covariance=np.eye(3)),
             DiagonalNormal(mean=MEANS[1], covariance=np.ones(3)),
             Gaussian(mean=MEANS[2], covariance=2 * np.eye(3)),
             DiagonalNormal(mean=MEANS[0], covariance=np.ones(3))]
    model = MixtureModel(weights=[0.3, 0.3, 0.4, 0.0], components=comps)
    lj = model.log_joint(X)
    with generic_only():
        slow = model.log_joint(X)
    assert np.all(lj[:, 3] == -np.inf)
    np.testing.assert_allclose(lj[:, :3], slow[:, :3], rtol=1e-12)
    q = model.responsibilities(X)
    fast_stats = model.component_statistics(X, q)
    with generic_only():
        slow_stats = model.component_statistics(X, q)
    np.testing.assert_allclose(fast_stats.masses, slow_stats.masses, rtol=1e-12)
    _assert_same_statistics(fast_stats.components, slow_stats.components, rtol=1e-11,
                            mean_atol=1e-13)


# -- the EM pass: fast path = generic path, for any chunking and thread count ------------------
@pytest.fixture
def threads_for_small_chunks(monkeypatch):
    """Small test data would run on one thread (too little work per chunk): force threads."""
    monkeypatch.setattr(em_algorithm, "_THREAD_MIN_CHUNK_BYTES", 0)


def test_chunks_run_on_the_worker_threads(threads_for_small_chunks, monkeypatch):
    seen = set()
    original = em_algorithm._chunk_totals

    def spy(*args, **kwargs):
        seen.add(threading.current_thread().name.split("_")[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(em_algorithm, "_chunk_totals", spy)
    _fit(_em(max_iter=2, chunk_size=16, n_threads=2), _data(n_per=40), _mixture(Gaussian))
    assert seen == {"probmix-em"}

@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 2e-5)])
@pytest.mark.parametrize("shift", [0.0, 1e6])
@pytest.mark.parametrize("d", DIMENSIONS)
def test_em_fast_path_equals_generic_path(family, dtype, rtol, shift, d):
    X = _data(shift, d=d).astype(dtype)
    init = _mixture(family, shift, d=d)
    _assert_fast_path(init, X.dtype)
    algorithm = _em(max_iter=15)
    fast = _fit(algorithm, X, init)
    with generic_only():
        slow = _fit(algorithm, X, init)
    mean_atol = 1e-5 if dtype == np.float32 else 1e-8 if shift else 1e-12
    _assert_same_model(fast.model, slow.model, rtol=rtol, mean_atol=mean_atol)
    # 1e6 σ out, a float64 mean is only resolved to ~1e-10 σ, whichever path computes it
    close = 1e-6 if dtype == np.float32 else 1e-9 if shift else 1e-12
    np.testing.assert_allclose(fast.history.log_likelihood, slow.history.log_likelihood,
                               rtol=close)
    np.testing.assert_allclose(fast.history.bound, slow.history.bound, rtol=close)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("chunk_size", [1, 7, 256])
@pytest.mark.parametrize("d", DIMENSIONS)
def test_em_does_not_depend_on_chunks_or_threads(family, dtype, chunk_size, d,
                                                 threads_for_small_chunks):
    X = _data(n_per=40, d=d).astype(dtype)
    init = _mixture(family, d=d)
    _assert_fast_path(init, X.dtype)
    one = _fit(_em(max_iter=5, chunk_size=chunk_size, n_threads=1), X, init)
    two = _fit(_em(max_iter=5, chunk_size=chunk_size, n_threads=2), X, init)
    # chunks are reduced in row order whichever thread ran them: identical numbers
    np.testing.assert_array_equal(one.history.log_likelihood, two.history.log_likelihood)
    for a, b in zip(one.model.components, two.model.components):
        np.testing.assert_array_equal(a.mean, b.mean)
        np.testing.assert_array_equal(a.covariance.compact, b.covariance.compact)
    # and the generic path on one chunk agrees up to round-off
    with generic_only():
        whole = _fit(_em(max_iter=5, chunk_size=10**6, n_threads=1), X, init)
    _assert_same_model(one.model, whole.model, rtol=1e-10 if dtype == np.float64 else 2e-5,
                       mean_atol=1e-12 if dtype == np.float64 else 1e-5)


def test_weighted_and_hard_em_agree_across_paths(threads_for_small_chunks):
    X = _data()
    w = np.random.default_rng(3).integers(0, 3, X.shape[0]).astype(float)
    init = _mixture(Gaussian)
    for algorithm in (_em(max_iter=8, n_threads=2, chunk_size=50),
                      _em(max_iter=8, e_step=HardEStep(), n_threads=2, chunk_size=50)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fast = algorithm.fit(X, init, sample_weight=w)
            with generic_only():
                slow = algorithm.fit(X, init, sample_weight=w)
        _assert_same_model(fast.model, slow.model, rtol=1e-10, mean_atol=1e-12)
        np.testing.assert_allclose(fast.history.bound, slow.history.bound, rtol=1e-12)


def test_stochastic_e_step_is_reproducible_with_threads(threads_for_small_chunks):
    # an E-step that draws random numbers sees the chunks in order: same seed, same fit
    X = _data()
    init = _mixture(Gaussian)
    runs = [_em(max_iter=5, e_step=StochasticEStep(), chunk_size=64, n_threads=t)
            for t in (1, 2)]
    a, b = (algorithm.fit(X, init, random_state=7) for algorithm in runs)
    np.testing.assert_array_equal(a.history.log_likelihood, b.history.log_likelihood)


def test_n_threads_is_validated():
    with pytest.raises(ValueError, match="n_threads must be >= 1"):
        EMAlgorithm(n_threads=0)


# -- initialisation ----------------------------------------------------------------------------
def test_nearest_center_assignment_far_from_the_origin():
    # the expanded distance is shifted to the data, so it does not cancel 1e8 away
    X = _data(shift=1e8)
    centers = X[[0, 250, 500]]
    brute = np.argmin(((X[:, None, :] - centers[None]) ** 2).sum(axis=2), axis=1)
    resp = responsibilities_from_centers(X, centers)
    np.testing.assert_array_equal(np.argmax(resp, axis=1), brute)
    np.testing.assert_array_equal(resp.sum(axis=1), 1.0)


def test_kmeans_seeds_are_rows_and_lloyd_moves_to_cluster_means():
    X = _data()
    seeds = kmeans_plusplus(X, 3, np.random.default_rng(0))
    assert all(np.any(np.all(s == X, axis=1)) for s in seeds)
    centers = kmeans(X, 3, np.random.default_rng(0), n_iter=50)
    labels = np.argmin(((X[:, None, :] - centers[None]) ** 2).sum(axis=2), axis=1)
    for k in range(3):  # a fixed point of Lloyd's iteration: each center its cluster's mean
        np.testing.assert_allclose(centers[k], X[labels == k].mean(axis=0), rtol=1e-12,
                                   atol=1e-12)


@pytest.mark.parametrize("n, chunk, threads", [(200_000, 9400, 2), (200_000, 9400, 3),
                                               (10_001, 1000, 2), (999, 1000, 2),
                                               (5000, 256, 2), (5000, 1000, 1)])
def test_balanced_chunks_give_each_thread_equal_work(n, chunk, threads):
    rows = em_algorithm._balanced(n, chunk, threads)
    assert 1 <= rows <= chunk
    n_chunks = -(-n // rows)
    if threads > 1 and n > chunk:
        # as many chunks per thread, all of one size but the last, which is short by less
        # than one row per chunk
        assert n_chunks % threads == 0
        assert n - (n_chunks - 1) * rows > rows - n_chunks
    else:
        assert rows == chunk
