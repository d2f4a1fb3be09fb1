"""Behaviour of the ``GMM`` estimator (reference comparisons live in test_gmm_reference.py)."""

import re
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from probmix import (
    GMM,
    ConvergenceWarning,
    DegenerateComponentWarning,
    MixtureModel,
    SingularCovarianceError,
)

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")
CENTERS = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])


@pytest.fixture(scope="module")
def X():
    """Three well-separated clusters, shuffled."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(c, 1.0, (100, 2)) for c in CENTERS])
    return X[rng.permutation(len(X))]


@pytest.fixture(scope="module")
def overlapping():
    """Five overlapping clusters: many local optima, so starts matter."""
    rng = np.random.default_rng(1)
    return np.vstack([rng.normal(c, 1.5, (60, 2)) for c in rng.uniform(-3, 3, (5, 2))])


def _assert_finite_fit(gmm):
    for name in FITTED:
        assert np.all(np.isfinite(getattr(gmm, name))), name
    assert np.isfinite(gmm.lower_bound_)


# -- fit_predict and reproducibility -----------------------------------------------------------

@pytest.mark.filterwarnings("ignore::probmix.ConvergenceWarning")
@pytest.mark.parametrize("seed, n_init, max_iter", [
    (0, 1, 100), (1, 3, 100), (2, 1, 1), (3, 2, 1), (4, 1, 5)])
@pytest.mark.parametrize("covariance_type", ["full", "spherical"])
def test_fit_predict_equals_fit_then_predict(overlapping, seed, n_init, max_iter,
                                             covariance_type):
    params = dict(n_components=4, covariance_type=covariance_type, n_init=n_init,
                  max_iter=max_iter, random_state=seed)
    labels = GMM(**params).fit_predict(overlapping)
    np.testing.assert_array_equal(labels, GMM(**params).fit(overlapping).predict(overlapping))
    assert labels.min() >= 0 and labels.max() < 4


@pytest.mark.parametrize("init_params", ["kmeans++", "kmeans", "random", "random_from_data"])
def test_same_int_seed_identical_results(overlapping, init_params):
    a = GMM(4, init_params=init_params, n_init=2, random_state=7).fit(overlapping)
    b = GMM(4, init_params=init_params, n_init=2, random_state=7).fit(overlapping)
    for name in FITTED:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.history_.log_likelihood, b.history_.log_likelihood)
    np.testing.assert_array_equal(a.restart_objectives_, b.restart_objectives_)
    # Refitting the same estimator with an int seed starts over identically.
    np.testing.assert_array_equal(a.fit(overlapping).means_, b.means_)


@pytest.mark.filterwarnings("ignore::probmix.ConvergenceWarning")
def test_other_seeds_may_differ(overlapping):
    # The seed is used: random starts and few iterations cannot all agree.
    means = [GMM(4, init_params="random", max_iter=3, random_state=s).fit(overlapping).means_
             for s in range(4)]
    assert any(not np.allclose(means[0], m) for m in means[1:])


def test_numpy_generator_accepted(overlapping):
    a = GMM(3, random_state=np.random.default_rng(5)).fit(overlapping)
    b = GMM(3, random_state=np.random.default_rng(5)).fit(overlapping)
    np.testing.assert_array_equal(a.means_, b.means_)
    _assert_finite_fit(a)
    # A Generator is consumed by sampling; an int seed restarts the stream every call.
    assert not np.array_equal(a.sample(5)[0], a.sample(5)[0])
    g = GMM(3, random_state=0).fit(overlapping)
    np.testing.assert_array_equal(g.sample(5)[0], g.sample(5)[0])


@pytest.mark.filterwarnings("ignore::probmix.ConvergenceWarning")
def test_n_init_keeps_best_restart(overlapping):
    gmm = GMM(5, init_params="random", n_init=4, max_iter=30, tol=1e-4,
              random_state=0).fit(overlapping)
    objectives = gmm.restart_objectives_
    assert objectives.shape == (4,)
    assert np.all(np.isfinite(objectives))
    assert np.max(objectives) == gmm.lower_bound_
    assert gmm.lower_bound_ == gmm.history_.objective[-1]
    # lower_bound_ is the per-sample log-likelihood of the model handed out.
    assert gmm.score(overlapping) == pytest.approx(gmm.lower_bound_, rel=1e-12)
    # More restarts from the same stream can only match or improve on the first one.
    single = GMM(5, init_params="random", n_init=1, max_iter=30, tol=1e-4,
                 random_state=0).fit(overlapping)
    assert single.lower_bound_ == objectives[0]
    assert gmm.lower_bound_ >= single.lower_bound_


# -- convergence -----------------------------------------------------------------------------

def test_convergence_warning_when_max_iter_too_small(overlapping):
    with pytest.warns(ConvergenceWarning) as record:
        gmm = GMM(4, max_iter=2, tol=0.0, n_init=3, random_state=0).fit(overlapping)
    messages = [str(w.message) for w in record if w.category is ConvergenceWarning]
    # Warned once for the kept fit, not once per restart, and says what to try.
    assert len(messages) == 1
    assert re.search(r"max_iter=2.*increase max_iter", messages[0])
    assert not gmm.converged_
    assert gmm.n_iter_ == 2
    _assert_finite_fit(gmm)


def test_converged_fit_does_not_warn(X):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        gmm = GMM(3, tol=1e-6, random_state=0).fit(X)
    assert gmm.converged_
    assert 1 <= gmm.n_iter_ < gmm.max_iter


def test_history_lengths(overlapping):
    gmm = GMM(3, tol=1e-5, random_state=0).fit(overlapping)
    h = gmm.history_
    assert len(h) == gmm.n_iter_ + 1
    for field in ("log_likelihood", "objective", "bound", "kl", "log_prior",
                  "bound_after_m_step", "n_components", "time"):
        assert len(getattr(h, field)) == gmm.n_iter_ + 1, field
    assert np.all(np.diff(h.time) >= 0)
    assert np.all(h.n_components == 3)


# -- dtypes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_kept(X, covariance_type):
    X32 = X.astype(np.float32)
    g32 = GMM(3, covariance_type=covariance_type, random_state=0).fit(X32)
    for name in FITTED:
        assert getattr(g32, name).dtype == np.float32, name
    assert g32.sample(4)[0].dtype == np.float32
    # Same fit as in float64 up to float32 precision (the statistics accumulate in float64).
    g64 = GMM(3, covariance_type=covariance_type, random_state=0).fit(X)
    np.testing.assert_allclose(g32.means_, g64.means_, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(g32.predict_proba(X32), g64.predict_proba(X), atol=1e-4)


def test_float32_kept_by_predict_proba(X):
    X32 = X.astype(np.float32)
    g32 = GMM(3, random_state=0).fit(X32)
    assert g32.predict_proba(X32).dtype == np.float32
    assert g32.score_samples(X32).dtype == np.float32


def test_integer_and_list_input_are_float64():
    Xi = np.random.default_rng(0).integers(0, 20, (50, 2))
    gmm = GMM(2, random_state=0).fit(Xi.tolist())
    assert gmm.means_.dtype == np.float64
    np.testing.assert_array_equal(gmm.predict(Xi), gmm.predict(Xi.astype(float)))


# -- scikit-learn protocol -------------------------------------------------------------------

def test_get_params_set_params_round_trip():
    gmm = GMM(3, covariance_type="diag", tol=1e-4, reg_covar=1e-5, max_iter=20, n_init=2,
              init_params="random", weights_init=[0.2, 0.3, 0.5], random_state=4, verbose=0)
    params = gmm.get_params()
    assert params["n_components"] == 3 and params["weights_init"] == [0.2, 0.3, 0.5]
    assert GMM(**params).get_params() == params
    other = GMM()
    assert other.set_params(**params) is other
    assert other.get_params() == params
    assert set(params) == {"n_components", "covariance_type", "tol", "reg_covar", "max_iter",
                           "n_init", "init_params", "weights_init", "means_init",
                           "precisions_init", "weight_concentration", "missing",
                           "random_state", "verbose", "verbose_interval", "learning_offset",
                           "learning_decay", "init_sample_size"}


def test_sklearn_clone(X):
    gmm = GMM(3, covariance_type="tied", means_init=CENTERS, tol=1e-5,
              random_state=np.random.default_rng(0))
    c = clone(gmm)
    assert c is not gmm
    # clone gets every argument back unchanged (no converters) ...
    params, cloned = gmm.get_params(), c.get_params()
    for name in params:
        if name != "random_state":
            np.testing.assert_array_equal(cloned[name], params[name], err_msg=name)
    # ... and deep-copies the generator, so both draw the same stream.
    assert cloned["random_state"] is not params["random_state"]
    np.testing.assert_array_equal(c.fit(X).means_, gmm.fit(X).means_)
    # Cloning a fitted estimator drops the fitted state.
    assert not hasattr(clone(gmm), "means_")


def test_pipeline(X):
    pipe = Pipeline([("scale", StandardScaler()), ("gmm", GMM(3, random_state=0))]).fit(X)
    labels = pipe.predict(X)
    assert adjusted_rand_score(labels, GMM(3, random_state=0).fit_predict(
        StandardScaler().fit_transform(X))) == 1.0
    assert np.isfinite(pipe.score(X))
    assert pipe.predict_proba(X).shape == (len(X), 3)


def test_grid_search_picks_true_n_components(X):
    # Scored by GMM.score (held-out mean log-likelihood).
    search = GridSearchCV(GMM(random_state=0), {"n_components": [1, 2, 3]}, cv=3).fit(X)
    assert search.best_params_ == {"n_components": 3}
    assert np.all(np.diff(search.cv_results_["mean_test_score"]) > 0)


def test_verbose_output(X, capsys):
    GMM(3, random_state=0).fit(X)
    assert capsys.readouterr().out == ""

    gmm = GMM(3, n_init=2, verbose=1, random_state=0).fit(X)
    out = capsys.readouterr().out
    assert len(re.findall(r"GMM init \d/2: \d+ iterations", out)) == 2
    assert "iteration" not in out.replace("iterations", "")

    gmm = GMM(3, tol=1e-8, verbose=2, verbose_interval=2, random_state=0).fit(X)
    lines = re.findall(r"^\s+iteration\s+(\d+)\s+log-likelihood", capsys.readouterr().out,
                       flags=re.M)
    assert [int(t) for t in lines] == list(range(0, gmm.n_iter_ + 1, 2))


# -- degenerate data -------------------------------------------------------------------------

@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_collapsed_component_names_component_and_remedy(covariance_type):
    rng = np.random.default_rng(0)
    X = np.vstack([np.tile([3.0, 3.0], (50, 1)), rng.normal(-3, 1, (50, 2))])
    gmm = GMM(2, covariance_type=covariance_type, reg_covar=0.0, random_state=0)
    with pytest.raises(SingularCovarianceError, match=r"component \d collapsed.*reg_covar"):
        gmm.fit(X)
    assert issubclass(SingularCovarianceError, ValueError)
    assert not hasattr(gmm, "means_")  # nothing half-fitted is left behind
    # The remedy works: the default ridge makes the same data fit.
    _assert_finite_fit(gmm.set_params(reg_covar=1e-6).fit(X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_duplicated_points_and_constant_feature_fit_finite(covariance_type):
    rng = np.random.default_rng(0)
    X = np.vstack([np.tile([3.0, 1.0], (30, 1)), rng.normal(-3, 1, (60, 2))])
    X = np.column_stack([X, np.full(len(X), 7.0)])  # a constant feature
    gmm = GMM(3, covariance_type=covariance_type, random_state=0).fit(X)
    _assert_finite_fit(gmm)
    assert np.all(np.isfinite(gmm.score_samples(X)))
    assert np.isfinite(gmm.bic(X))


def test_constant_feature_variance_is_the_ridge():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=200), np.full(200, 7.0)])
    gmm = GMM(2, covariance_type="diag", random_state=0).fit(X)
    np.testing.assert_allclose(gmm.covariances_[:, 1], gmm.reg_covar, rtol=1e-6)
    np.testing.assert_allclose(gmm.means_[:, 1], 7.0)


@pytest.mark.parametrize("init_params", ["kmeans++", "kmeans", "random_from_data"])
def test_fewer_distinct_points_than_components(init_params):
    X = np.repeat([[0.0, 0.0], [1.0, 1.0]], 10, axis=0)
    with pytest.raises(ValueError, match=r"fewer distinct points.*n_components=3.*decrease "
                                         r"n_components"):
        GMM(3, init_params=init_params, random_state=0).fit(X)


def test_means_init_far_from_data_names_empty_component(X):
    means = np.array([[0.0, 0.0], [8.0, 0.0], [1e4, 1e4]])
    with pytest.raises(ValueError, match=r"component 2 has no responsibility mass"):
        GMM(3, means_init=means).fit(X)


def test_component_losing_its_mass_warns_and_stays_finite(X):
    # Fully specified start with component 2 far from every point: its responsibilities
    # underflow to 0 and it dies in the first M-step.
    gmm = GMM(3, weights_init=[0.4, 0.4, 0.2], means_init=[[0.0, 0.0], [8.0, 0.0], [1e3, 0.0]],
              precisions_init=np.array([np.eye(2)] * 3), random_state=0)
    with pytest.warns(DegenerateComponentWarning, match=r"component\(s\) \[2\] lost all"):
        gmm.fit(X)
    assert gmm.weights_[2] == 0.0
    _assert_finite_fit(gmm)
    assert gmm.history_.n_components[-1] == 2
    np.testing.assert_allclose(gmm.predict_proba(X).sum(axis=1), 1.0)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("far", [[1e200, 1e200], [-1e200, 0.0], [0.0, 1e300], [1e10, -1e10]])
def test_far_point_has_finite_responsibilities(X, covariance_type, far):
    gmm = GMM(3, covariance_type=covariance_type, random_state=0).fit(X)
    Xf = np.vstack([X[:3], far])
    resp = gmm.predict_proba(Xf)
    assert np.all(np.isfinite(resp))
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-12)
    labels = gmm.predict(Xf)
    assert labels.dtype.kind == "i" and 0 <= labels[-1] < 3
    # The ordinary rows are unaffected by the far one.
    np.testing.assert_allclose(resp[:3], gmm.predict_proba(X[:3]))


@pytest.mark.parametrize("start, offset", [
    ("kmeans++", 1e5), ("means_init", 1e5), ("means_init", 1e10),
    ("kmeans++", 1e10)])
def test_data_far_from_origin(X, offset, start):
    # Centred statistics make EM itself indifferent to |μ| >> σ; the start must be too.
    def fit(data, shift):
        means = CENTERS + shift if start == "means_init" else None
        return GMM(3, means_init=means, tol=1e-6, random_state=0).fit(data)

    near, far = fit(X, 0.0), fit(X + offset, offset)
    assert adjusted_rand_score(near.predict(X), far.predict(X + offset)) > 0.98
    np.testing.assert_allclose(far.means_ - offset, near.means_, atol=1e-3)
    np.testing.assert_allclose(far.covariances_, near.covariances_, rtol=1e-3)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_far_point_near_float_limit_with_narrow_components(covariance_type):
    # σ = 0.01 makes the precision factor 100, so 1e307 · 100 overflows to ±inf.
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(c, 0.01, (50, 2)) for c in CENTERS / 8])
    gmm = GMM(3, covariance_type=covariance_type, random_state=0).fit(X)
    resp = gmm.predict_proba(np.array([[1e307, -1e307]]))
    assert np.all(np.isfinite(resp))
    np.testing.assert_allclose(resp.sum(axis=1), 1.0)


# -- a real data set -------------------------------------------------------------------------

def test_iris_recovers_species():
    X, y = load_iris(return_X_y=True)
    gmm = GMM(3, covariance_type="full", n_init=3, random_state=0).fit(X)
    assert gmm.converged_
    assert adjusted_rand_score(y, gmm.predict(X)) > 0.85


# -- the fitted model ------------------------------------------------------------------------

@pytest.mark.parametrize("covariance_type, shape", [
    ("full", (3, 2, 2)), ("tied", (2, 2)), ("diag", (3, 2)), ("spherical", (3,))])
def test_fitted_attributes_are_consistent(X, covariance_type, shape):
    gmm = GMM(3, covariance_type=covariance_type, random_state=0).fit(X)
    assert isinstance(gmm.model_, MixtureModel)
    assert gmm.n_features_in_ == 2
    assert gmm.weights_.shape == (3,) and gmm.means_.shape == (3, 2)
    for name in ("covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(gmm, name).shape == shape, name
    np.testing.assert_allclose(gmm.weights_.sum(), 1.0)
    # precisions_ is the inverse of covariances_, and U Uᵀ = precision
    cov = gmm.covariances_ if covariance_type in ("full", "tied") else None
    if cov is not None:
        eye = np.broadcast_to(np.eye(2), cov.shape)
        np.testing.assert_allclose(cov @ gmm.precisions_, eye, atol=1e-10)
        U = gmm.precisions_cholesky_
        np.testing.assert_allclose(U @ np.swapaxes(U, -1, -2), gmm.precisions_, rtol=1e-10)
    else:
        np.testing.assert_allclose(gmm.covariances_ * gmm.precisions_, 1.0, rtol=1e-12)
        np.testing.assert_allclose(gmm.precisions_cholesky_ ** 2, gmm.precisions_, rtol=1e-12)
    # The clusters are found (in some order).
    order = np.argsort(gmm.means_[:, 0] + 2 * gmm.means_[:, 1])
    np.testing.assert_allclose(gmm.means_[order], CENTERS, atol=0.4)


def test_sample_weight_zero_rows_are_ignored(X):
    outliers = np.random.default_rng(0).uniform(-50, 50, (20, 2))
    Xo = np.vstack([X, outliers])
    w = np.r_[np.ones(len(X)), np.zeros(20)]
    weighted = GMM(3, random_state=0, tol=1e-8).fit(Xo, sample_weight=w)
    plain = GMM(3, means_init=weighted.means_, tol=1e-8).fit(X)
    np.testing.assert_allclose(weighted.means_, plain.means_, atol=1e-6)
    assert weighted.score(Xo, sample_weight=w) == pytest.approx(plain.score(X), rel=1e-6)
