"""Dask-distributed EM: blocks are summarised on the workers, only statistics travel.

A ``LocalCluster`` with two worker processes on loopback stands in for a cluster. The fit must
equal the in-memory fit from the same start (rtol 1e-10), and the client must never compute
the data itself: ``Array.compute`` and ``np.asarray(X)`` are made to fail during the fit, and
what the client receives per pass is checked to be one small statistics object.
"""

import pickle
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import dask  # noqa: E402

from probmix import EMAlgorithm, MixtureModel  # noqa: E402
from probmix.distributions import Gaussian, Poisson  # noqa: E402
from probmix.em import StochasticEStep  # noqa: E402
from probmix.em import algorithm as em_algorithm  # noqa: E402
from probmix.em.sources import DaskSource, as_source  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _gaussian_case():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-3, 1, (2500, 3)), rng.normal(3, 1.5, (1501, 3))])
    init = MixtureModel(weights=[0.5, 0.5], components=[
        Gaussian(mean=X[0], covariance=np.eye(3)), Gaussian(mean=X[-1], covariance=np.eye(3))])
    return X, init


def _poisson_case():
    rng = np.random.default_rng(1)
    X = np.vstack([rng.poisson([2.0, 9.0], (700, 2)),
                   rng.poisson([12.0, 1.0], (555, 2))]).astype(float)
    init = MixtureModel(weights=[0.5, 0.5], components=[Poisson(rate=[3.0, 5.0]),
                                                       Poisson(rate=[8.0, 2.0])])
    return X, init


def _fit(X, init, sample_weight=None, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached by design (tol=0)
        return EMAlgorithm(**{"tol": 0.0, "max_iter": 12, **kwargs}).fit(
            X, init, sample_weight=sample_weight, random_state=0)


def _assert_same_fit(a, b, X, rtol=1e-10):
    np.testing.assert_allclose(a.model.weights, b.model.weights, rtol=rtol)
    np.testing.assert_allclose(a.model.log_prob(X), b.model.log_prob(X), rtol=rtol)
    np.testing.assert_allclose(a.history.log_likelihood, b.history.log_likelihood, rtol=rtol)


@pytest.mark.parametrize("case", [_gaussian_case, _poisson_case])
def test_dask_on_a_local_cluster_gives_the_in_memory_fit(client, case):
    X, init = case()
    # ragged blocks, one of them empty, persisted on the two workers
    n = X.shape[0]
    blocks = (n // 3, 0, n // 3 + 17, n - 2 * (n // 3) - 17)
    Xd = da.from_array(X, chunks=(blocks, X.shape[1])).persist()
    assert isinstance(as_source(Xd), DaskSource)
    _assert_same_fit(_fit(Xd, init, chunk_size=300), _fit(X, init), X)


def test_dask_with_sample_weights(client):
    X, init = _gaussian_case()
    w = np.random.default_rng(2).uniform(0.2, 2.0, X.shape[0])
    Xd = da.from_array(X, chunks=(900, 3)).persist()
    reference = _fit(X, init, sample_weight=w)
    _assert_same_fit(_fit(Xd, init, sample_weight=w), reference, X)
    wd = da.from_array(w, chunks=700)  # other block boundaries than X's: rechunked to X's
    _assert_same_fit(_fit(Xd, init, sample_weight=wd), reference, X)


def test_the_client_never_computes_the_data(client, monkeypatch):
    X, init = _gaussian_case()
    Xd = da.from_array(X, chunks=(500, 3)).persist()

    def refuse(*args, **kwargs):
        raise AssertionError("the data were computed on the client")

    monkeypatch.setattr(da.Array, "compute", refuse)
    monkeypatch.setattr(da.Array, "__array__", refuse)
    received = []
    real_compute = dask.compute

    def spy(*args, **kwargs):
        out = real_compute(*args, **kwargs)
        received.extend(out)
        return out

    monkeypatch.setattr(dask, "compute", spy)
    fit = _fit(Xd, init, max_iter=3)
    assert len(received) == len(fit.history)  # one object per pass ...
    assert all(isinstance(r, em_algorithm._ChunkTotals) for r in received)
    # ... a few hundred bytes of statistics, not the 96 kB of data
    assert max(len(pickle.dumps(r)) for r in received) < X.nbytes / 20


def test_a_stochastic_estep_draws_as_in_memory(client):
    # draws are seeded by (pass, first row of the chunk): blocks of whole chunks give the
    # in-memory chunks, so the same draws
    X, init = _gaussian_case()
    Xd = da.from_array(X, chunks=(600, 3)).persist()
    runs = [_fit(data, init, e_step=StochasticEStep(), chunk_size=300, max_iter=4)
            for data in (X, Xd)]
    np.testing.assert_allclose(runs[0].history.objective, runs[1].history.objective,
                               rtol=1e-12)


def test_a_bad_block_is_reported_on_the_client(client):
    X, init = _gaussian_case()
    X = X.copy()
    X[1234, 2] = np.inf
    Xd = da.from_array(X, chunks=(1000, 3))
    with pytest.raises(ValueError, match=r"X \(a dask block\) contains infinity \(first at "
                                         r"row 234, column 2\)"):
        _fit(Xd, init)


def test_dask_without_a_cluster_uses_the_local_scheduler():
    X, init = _poisson_case()
    with dask.config.set(scheduler="threads"):
        _assert_same_fit(_fit(da.from_array(X, chunks=(300, 2)), init), _fit(X, init), X)


def test_column_blocks_are_joined_into_whole_rows():
    X, init = _gaussian_case()
    Xd = da.from_array(X, chunks=(1000, 2))  # a task needs whole rows
    with dask.config.set(scheduler="synchronous"):
        _assert_same_fit(_fit(Xd, init), _fit(X, init), X)


@pytest.mark.parametrize("make, error, match", [
    (lambda X: da.from_array(X[:, 0], chunks=100), ValueError, "must be 2-D"),
    (lambda X: da.from_array(X, chunks=(100, 3))[da.from_array(X[:, 0] > 0, chunks=100)],
     ValueError, "compute_chunk_sizes"),
    (lambda X: da.from_array(X.astype(str), chunks=(100, 3)), TypeError, "must hold numbers"),
    (lambda X: da.from_array(X[:, :2], chunks=(100, 2)), ValueError,
     "2 features, but the initial model has 3"),
])
def test_bad_dask_arrays(make, error, match):
    X, init = _gaussian_case()
    with pytest.raises(error, match=match):
        EMAlgorithm().fit(make(X), init)


def test_dask_sample_weight_of_the_wrong_length():
    X, init = _gaussian_case()
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(4001,\)"):
        EMAlgorithm().fit(da.from_array(X, chunks=(1000, 3)), init,
                          sample_weight=da.ones(10, chunks=5))


def test_gmm_fits_a_dask_array_on_the_cluster(client):
    from probmix import GMM

    X, _ = _gaussian_case()
    settings = dict(n_components=2, random_state=0, tol=1e-9)
    reference = GMM(**settings).fit(X)
    gmm = GMM(**settings, init_sample_size=len(X)).fit(da.from_array(X, chunks=(1000, 3)))
    np.testing.assert_allclose(gmm.means_, reference.means_, rtol=1e-10)
    np.testing.assert_allclose(gmm.covariances_, reference.covariances_, rtol=1e-10)


def test_missing_entries_are_marginalised_on_the_workers(client):
    X, init = _gaussian_case()
    X = X.copy()
    X[np.random.default_rng(8).random(X.shape) < 0.15] = np.nan
    X[np.all(np.isnan(X), axis=1), 0] = 0.0
    a = _fit(da.from_array(X, chunks=(700, 3)), init, missing="marginalize")
    b = _fit(X, init, missing="marginalize")
    np.testing.assert_allclose(a.model.weights, b.model.weights, rtol=1e-10)
    np.testing.assert_allclose(a.history.log_likelihood, b.history.log_likelihood, rtol=1e-10)
