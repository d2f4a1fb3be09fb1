"""Chunked and out-of-core EM: every way of handing over the rows gives the in-memory fit.

One EM iteration is a sum over rows, so a memmap read slice by slice, a list of chunks, or a
re-iterable reading chunks afresh must reproduce the in-memory fit from the same start to
round-off (rtol 1e-10), whatever the chunk sizes (down to one row, with a ragged last chunk),
and a pass must need the memory of a chunk, not of the data.
"""

import tracemalloc
import warnings

import numpy as np
import pytest

from probmix import GMM, EMAlgorithm, MixtureModel
from probmix.distributions import DiagonalNormal, Gaussian, Poisson
from probmix.em import StochasticEStep
from probmix.em.sources import ArraySource, ChunkSource, as_source


def _gaussian_case(dtype=np.float64, n=1001):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-3, 1, (n // 2, 3)), rng.normal(3, 1.5, (n - n // 2, 3))])
    init = MixtureModel(weights=[0.5, 0.5], components=[
        Gaussian(mean=X[0], covariance=np.eye(3)), Gaussian(mean=X[-1], covariance=np.eye(3))])
    return X.astype(dtype), init


def _poisson_case():
    rng = np.random.default_rng(1)
    X = np.vstack([rng.poisson([2.0, 9.0], (400, 2)), rng.poisson([12.0, 1.0], (333, 2))])
    init = MixtureModel(weights=[0.5, 0.5], components=[Poisson(rate=[3.0, 5.0]),
                                                       Poisson(rate=[8.0, 2.0])])
    return X.astype(float), init


def _fit(X, init, sample_weight=None, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached by design (tol=0)
        return EMAlgorithm(**{"tol": 0.0, "max_iter": 15, **kwargs}).fit(X, init,
                                                                sample_weight=sample_weight)


def _assert_same_fit(a, b, X, rtol=1e-10):
    """Weights and the log-density at the data rows (which pins every parameter down)."""
    np.testing.assert_allclose(a.model.weights, b.model.weights, rtol=rtol)
    np.testing.assert_allclose(a.model.log_prob(X), b.model.log_prob(X), rtol=rtol)
    np.testing.assert_allclose(a.history.log_likelihood, b.history.log_likelihood, rtol=rtol)


def _chunks(X, size):
    return [X[i:i + size] for i in range(0, len(X), size)]


@pytest.fixture
def memmap_of(tmp_path):
    def make(X):
        path = tmp_path / "X.npy"
        out = np.lib.format.open_memmap(path, mode="w+", dtype=X.dtype, shape=X.shape)
        out[:] = X
        out.flush()
        del out
        return np.load(path, mmap_mode="r")
    return make


@pytest.mark.parametrize("case", [_gaussian_case, _poisson_case])
@pytest.mark.parametrize("chunk_size", [1, 7, 250, 5000])
def test_a_list_of_chunks_gives_the_in_memory_fit(case, chunk_size):
    X, init = case()
    reference = _fit(X, init)
    # stored chunks of 97 rows (ragged last one), read in pass chunks of chunk_size rows
    chunked = _fit(_chunks(X, 97), init, chunk_size=chunk_size)
    _assert_same_fit(chunked, reference, X)
    assert chunked.n_iter == reference.n_iter


@pytest.mark.parametrize("case", [_gaussian_case, _poisson_case])
@pytest.mark.parametrize("chunk_size", [1, 64, None])
def test_a_memmap_gives_the_in_memory_fit(case, chunk_size, memmap_of):
    X, init = case()
    mm = memmap_of(X)
    assert isinstance(as_source(mm), ArraySource) and not as_source(mm).in_memory
    _assert_same_fit(_fit(mm, init, chunk_size=chunk_size), _fit(X, init), X)


def test_a_float32_memmap_is_scored_in_float32(memmap_of):
    X, init = _gaussian_case(np.float32)
    fit = _fit(memmap_of(X), init, chunk_size=100)
    assert as_source(memmap_of(X)).dtype == np.float32
    _assert_same_fit(fit, _fit(X, init), X, rtol=1e-6)


def test_an_integer_memmap_is_converted_chunk_by_chunk(memmap_of):
    X, init = _poisson_case()
    _assert_same_fit(_fit(memmap_of(X.astype(np.int16)), init, chunk_size=50),
                     _fit(X, init), X)


class _Reader:
    """A re-iterable that builds each chunk afresh on every pass (as a file reader would)."""

    def __init__(self, X, size):
        self.X, self.size, self.passes = X, size, 0

    def __iter__(self):
        self.passes += 1
        for i in range(0, len(self.X), self.size):
            yield self.X[i:i + self.size].copy()


def test_a_reiterable_is_read_once_per_iteration():
    X, init = _gaussian_case()
    reader = _Reader(X, 300)
    fit = _fit(reader, init)
    _assert_same_fit(fit, _fit(X, init), X)
    # one pass per evaluated model, plus the one that sizes the source (its first chunk)
    assert reader.passes == len(fit.history) + 1


def test_weighted_chunks_equal_sample_weight():
    X, init = _gaussian_case()
    w = np.random.default_rng(2).uniform(0.1, 3.0, len(X))
    pairs = [(X[i:i + 128], w[i:i + 128]) for i in range(0, len(X), 128)]
    _assert_same_fit(_fit(pairs, init, chunk_size=50), _fit(X, init, sample_weight=w), X)


def test_weighted_memmap_equals_in_memory(memmap_of):
    X, init = _gaussian_case()
    w = np.random.default_rng(3).integers(0, 4, len(X)).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = EMAlgorithm(tol=0.0, max_iter=10, chunk_size=33).fit(memmap_of(X), init,
                                                                  sample_weight=w)
        b = EMAlgorithm(tol=0.0, max_iter=10).fit(X, init, sample_weight=w)
    _assert_same_fit(a, b, X)


def test_the_diagonal_family_streams_too():
    X, _ = _gaussian_case()
    init = MixtureModel(weights=[0.3, 0.7], components=[
        DiagonalNormal(mean=X[0], covariance=np.ones(3)),
        DiagonalNormal(mean=X[-1], covariance=np.ones(3))])
    _assert_same_fit(_fit(_chunks(X, 10), init, chunk_size=3), _fit(X, init), X)


def test_a_stochastic_estep_does_not_depend_on_the_thread_count(monkeypatch):
    from probmix.em import algorithm

    monkeypatch.setattr(algorithm, "_THREAD_MIN_CHUNK_BYTES", 0)
    X, init = _gaussian_case()
    runs = [EMAlgorithm(e_step=StochasticEStep(), tol=0.0, max_iter=5, chunk_size=100,
                        n_threads=n).fit(X, init, random_state=7) for n in (1, 2)]
    np.testing.assert_array_equal(runs[0].history.objective, runs[1].history.objective)


@pytest.mark.filterwarnings("ignore:EM did not converge")  # tol=0 by design
def test_streamed_chunks_on_two_threads_equal_one(monkeypatch):
    # a stream is read a few chunks ahead of the threads, an array handed out at once: both
    # reduce in row order
    from probmix.em import algorithm

    monkeypatch.setattr(algorithm, "_THREAD_MIN_CHUNK_BYTES", 0)
    X, init = _gaussian_case()
    for data in (X, _chunks(X, 97)):
        runs = [EMAlgorithm(tol=0.0, max_iter=5, chunk_size=40, n_threads=n).fit(data, init)
                for n in (1, 2)]
        np.testing.assert_array_equal(runs[0].history.log_likelihood,
                                      runs[1].history.log_likelihood)
        for a, b in zip(runs[0].model.components, runs[1].model.components):
            np.testing.assert_array_equal(a.mean, b.mean)


def test_a_memmap_pass_needs_the_memory_of_a_chunk_not_of_the_data(memmap_of):
    rng = np.random.default_rng(4)
    n, d = 200_000, 8
    X = memmap_of(np.vstack([rng.normal(-2, 1, (n // 2, d)), rng.normal(2, 1, (n // 2, d))]))
    init = MixtureModel(weights=[0.5, 0.5], components=[
        Gaussian(mean=-np.ones(d), covariance=np.eye(d)),
        Gaussian(mean=np.ones(d), covariance=np.eye(d))])
    tracemalloc.start()
    try:
        _fit(X, init, chunk_size=2000, max_iter=2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    data_bytes = n * d * 8
    assert peak < data_bytes / 10, (peak, data_bytes)  # 12.8 MB of data, ~1 MB traced


# -- bad sources --------------------------------------------------------------------------------
def test_a_generator_is_refused_with_the_remedy():
    X, init = _gaussian_case()
    with pytest.raises(TypeError, match=r"read only once.*re-iterable"):
        EMAlgorithm().fit((c for c in _chunks(X, 100)), init)


def test_a_source_that_changes_between_passes_is_an_error():
    X, init = _gaussian_case()

    class Shrinking(_Reader):
        def __iter__(self):
            self.passes += 1
            rows = self.X[:len(self.X) - 10 * self.passes]
            for i in range(0, len(rows), self.size):
                yield rows[i:i + self.size]

    with pytest.raises(ValueError, match="data changed between EM iterations"):
        EMAlgorithm(max_iter=5).fit(Shrinking(X, 300), init)


def test_a_bad_chunk_is_named_by_its_first_row():
    X, init = _gaussian_case()
    chunks = _chunks(X, 100)
    chunks[3] = chunks[3].copy()
    chunks[3][5, 1] = np.nan
    with pytest.raises(ValueError, match=r"X \(chunk from row 300\) contains NaN \(first at "
                                         r"row 5, column 1\)"):
        EMAlgorithm().fit(chunks, init)


def test_a_chunk_with_other_columns_is_an_error():
    X, init = _gaussian_case()
    chunks = _chunks(X, 100)
    chunks[2] = chunks[2][:, :2]
    with pytest.raises(ValueError, match=r"chunk from row 200\) has 2 features, but the "
                                         r"initial model has 3"):
        EMAlgorithm().fit(chunks, init)


def test_a_chunk_outside_the_support_is_named():
    X, init = _poisson_case()
    chunks = _chunks(X, 100)
    chunks[1] = chunks[1].copy()
    chunks[1][4, 0] = -1.0
    with pytest.raises(ValueError, match=r"in the chunk of rows from 100: .*row 4"):
        EMAlgorithm().fit(chunks, init)


def test_sample_weight_with_chunks_points_at_pairs():
    X, init = _gaussian_case()
    with pytest.raises(ValueError, match=r"yield \(chunk, weights\) pairs"):
        EMAlgorithm().fit(_chunks(X, 100), init, sample_weight=np.ones(len(X)))


def test_responsibility_prior_needs_an_in_memory_array(memmap_of):
    X, init = _gaussian_case()
    with pytest.raises(TypeError, match="responsibility_prior needs X as an in-memory array"):
        EMAlgorithm().fit(memmap_of(X), init, responsibility_prior=np.ones((len(X), 2)))


@pytest.mark.parametrize("chunks, error, match", [
    ([], ValueError, "yielded no chunks"),
    ([(np.ones((3, 3)), np.ones(3), 1)], ValueError, "tuple of 3"),
    ([(np.ones((3, 3)), np.ones(2))], ValueError, "weights of chunk 0"),
])
def test_malformed_chunk_lists(chunks, error, match):
    _, init = _gaussian_case()
    with pytest.raises(error, match=match):
        EMAlgorithm().fit(_Listed(chunks), init)


class _Listed:
    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)


def test_a_nested_list_of_numbers_is_one_array_not_chunks():
    assert isinstance(as_source([[1.0, 2.0], [3.0, 4.0]]), ArraySource)
    assert isinstance(as_source([np.ones((2, 2)), np.ones((3, 2))]), ChunkSource)


@pytest.mark.parametrize("n_rows", [10, 300, 5000])
def test_sampling_a_chunk_source_is_uniform_and_without_replacement(n_rows):
    X = np.arange(4000.0).reshape(-1, 1)
    source = as_source(_chunks(X, 333))
    rows = source.sample(n_rows, np.random.default_rng(0))
    assert rows.shape == (min(n_rows, 4000), 1)
    assert np.unique(rows).size == rows.shape[0]  # no row twice
    if n_rows == 300:  # uniform: the sample's mean is near the data's (σ of the mean ≈ 67)
        assert abs(rows.mean() - X.mean()) < 4 * X.std() / np.sqrt(n_rows)


# -- GMM on data that do not live in memory ------------------------------------------------------
def _gmm_data():
    rng = np.random.default_rng(5)
    return np.vstack([rng.normal(-3, 1, (700, 2)), rng.normal(3, 1.5, (501, 2))])


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_gmm_on_a_memmap_with_the_whole_sample_is_the_in_memory_fit(covariance_type, memmap_of):
    X = _gmm_data()
    settings = dict(n_components=2, covariance_type=covariance_type, random_state=0, tol=1e-9)
    a = GMM(**settings).fit(X)
    # a sample as large as the data is the data: the same start, so the same fit
    b = GMM(**settings, init_sample_size=len(X)).fit(memmap_of(X))
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-10)
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=1e-10)
    assert b.n_iter_ == a.n_iter_


def test_gmm_on_chunks_starts_from_a_sample_and_finds_the_clusters():
    X = _gmm_data()
    reference = GMM(2, random_state=0, tol=1e-9).fit(X)
    gmm = GMM(2, random_state=0, tol=1e-9, init_sample_size=50).fit(_chunks(X, 100))
    order = np.argsort(gmm.means_[:, 0])
    ref_order = np.argsort(reference.means_[:, 0])
    # another start, the same maximum
    np.testing.assert_allclose(gmm.means_[order], reference.means_[ref_order], atol=1e-6)
    assert gmm.score(X) == pytest.approx(reference.score(X), abs=1e-9)


def test_gmm_sample_weights_travel_with_the_chunks():
    X = _gmm_data()
    w = np.random.default_rng(6).integers(1, 4, len(X)).astype(float)
    a = GMM(2, random_state=0, tol=1e-9, means_init=[[-3, 0], [3, 0]]).fit(X, sample_weight=w)
    pairs = [(X[i:i + 128], w[i:i + 128]) for i in range(0, len(X), 128)]
    b = GMM(2, random_state=0, tol=1e-9, means_init=[[-3, 0], [3, 0]],
            init_sample_size=len(X)).fit(pairs)
    # the sample starts unweighted (the means_init decide the start's labels alike)
    np.testing.assert_allclose(np.sort(b.means_, 0), np.sort(a.means_, 0), atol=1e-6)


def test_gmm_labels_need_an_in_memory_array(memmap_of):
    X = _gmm_data()
    with pytest.raises(TypeError, match="labels need X as an in-memory array"):
        GMM(2).fit(memmap_of(X), labels=np.full(len(X), -1))


def test_missing_entries_stream_from_a_memmap_as_in_memory(memmap_of):
    X, init = _gaussian_case()
    X = X.copy()
    X[np.random.default_rng(7).random(X.shape) < 0.15] = np.nan
    X[np.all(np.isnan(X), axis=1), 0] = 0.0  # every row keeps an observed entry
    algorithm = dict(missing="marginalize", chunk_size=64)
    a = _fit(memmap_of(X), init, **algorithm)
    b = _fit(X, init, missing="marginalize")
    np.testing.assert_allclose(a.model.weights, b.model.weights, rtol=1e-10)
    np.testing.assert_allclose(a.history.log_likelihood, b.history.log_likelihood, rtol=1e-10)
    np.testing.assert_allclose(a.history.bound_after_m_step[:-1],
                               b.history.bound_after_m_step[:-1], rtol=1e-10)
    with pytest.raises(ValueError, match=r"chunk from row 0\) contains NaN"):
        EMAlgorithm(chunk_size=64).fit(memmap_of(X), init)
