"""``GMM`` against scikit-learn's ``GaussianMixture`` from identical initial parameters.

Both run exactly ``max_iter`` EM iterations (``tol=0``) from the same weights, means and
precisions, so every fitted attribute must agree to round-off for all four covariance types.
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.mixture import GaussianMixture

from probmix import GMM
from probmix.exceptions import ConvergenceWarning

COV_TYPES = ("full", "tied", "diag", "spherical")
FITTED = ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_")


def iris():
    return load_iris().data  # bundled with scikit-learn, no download


def three_clusters():
    rng = np.random.default_rng(0)
    centres = [(0.0, 0.0, 0.0), (6.0, 1.0, -2.0), (2.0, 7.0, 3.0)]
    scales = [(1.0, 0.5, 2.0), (0.5, 0.5, 0.5), (1.5, 1.0, 0.3)]
    return np.vstack([rng.normal(c, s, (100, 3)) for c, s in zip(centres, scales)])


DATASETS = {"iris": iris, "three_clusters": three_clusters}


def sklearn_start(X, covariance_type, reg_covar):
    """Initial parameters from a one-iteration scikit-learn fit (any fixed start would do)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        start = GaussianMixture(3, covariance_type=covariance_type, max_iter=1, random_state=0,
                                reg_covar=reg_covar).fit(X)
    return dict(weights_init=start.weights_, means_init=start.means_,
                precisions_init=start.precisions_)


def fit_both(X, covariance_type, max_iter, reg_covar, init):
    """Our GMM and scikit-learn's, fitted from ``init`` for exactly ``max_iter`` iterations."""
    kwargs = dict(covariance_type=covariance_type, tol=0.0, max_iter=max_iter,
                  reg_covar=reg_covar, **init)
    # A ridge is not a prior: with a large reg_covar the likelihood may dip near the optimum,
    # within the bound CovarianceRidge.max_decrease states, so no ObjectiveDecreaseWarning
    # (an error in this suite). tol=0 never converges: both libraries warn, ours must.
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        ours = GMM(3, **kwargs).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        theirs = GaussianMixture(3, **kwargs).fit(X)
    return ours, theirs


def assert_same_parameters(ours, theirs, rtol):
    for name in FITTED:
        a, b = getattr(ours, name), getattr(theirs, name)
        assert a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0, err_msg=name)


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("max_iter", [1, 5, 25])
@pytest.mark.parametrize("reg_covar", [1e-6, 1e-3])
def test_matches_sklearn(dataset, covariance_type, max_iter, reg_covar):
    X = DATASETS[dataset]()
    init = sklearn_start(X, covariance_type, reg_covar)
    ours, theirs = fit_both(X, covariance_type, max_iter, reg_covar, init)
    assert_same_parameters(ours, theirs, rtol=1e-8)
    assert ours.n_iter_ == theirs.n_iter_ == max_iter
    assert not ours.converged_ and not theirs.converged_
    assert ours.score(X) == pytest.approx(theirs.score(X), rel=1e-10)
    # Our lower_bound_ is the log-likelihood of the final model; scikit-learn's is the value
    # computed in its last E-step, i.e. under the parameters *before* the last M-step.
    assert ours.lower_bound_ == pytest.approx(theirs.score(X), rel=1e-10)
    assert ours.history_.log_likelihood[-2] == pytest.approx(theirs.lower_bound_, rel=1e-10)
    # ... and so is every earlier one: record t of our history is scikit-learn's bound t+1
    np.testing.assert_allclose(ours.history_.log_likelihood[:-1], theirs.lower_bounds_,
                               rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_matches_sklearn_from_hand_built_start(covariance_type):
    # A start that did not come from either library: three data rows and unit precisions.
    X = three_clusters()
    d = X.shape[1]
    precisions = {"full": np.stack([np.eye(d)] * 3), "tied": np.eye(d),
                  "diag": np.ones((3, d)), "spherical": np.ones(3)}[covariance_type]
    init = dict(weights_init=np.array([0.2, 0.3, 0.5]), means_init=X[[0, 150, 250]],
                precisions_init=precisions)
    ours, theirs = fit_both(X, covariance_type, 10, 1e-6, init)
    assert_same_parameters(ours, theirs, rtol=1e-8)


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_predictions_match_sklearn_on_our_parameters(dataset, covariance_type):
    # Hand our fitted parameters to a scikit-learn estimator: both then score the same model.
    X = DATASETS[dataset]()
    init = sklearn_start(X, covariance_type, 1e-6)
    ours, _ = fit_both(X, covariance_type, 5, 1e-6, init)
    theirs = GaussianMixture(3, covariance_type=covariance_type)
    for name in FITTED:
        setattr(theirs, name, getattr(ours, name))
    theirs.n_features_in_ = X.shape[1]
    theirs.converged_, theirs.n_iter_, theirs.lower_bound_ = True, ours.n_iter_, 0.0
    Y = np.vstack([X, X.mean(axis=0) + 3 * X.std(axis=0)])  # includes an off-data row
    np.testing.assert_allclose(ours.score_samples(Y), theirs.score_samples(Y), rtol=1e-10)
    np.testing.assert_allclose(ours.predict_proba(Y), theirs.predict_proba(Y), rtol=1e-8,
                               atol=1e-12)
    np.testing.assert_array_equal(ours.predict(Y), theirs.predict(Y))
    assert ours.score(Y) == pytest.approx(theirs.score(Y), rel=1e-10)
    # model selection: the same parameter count, hence the same BIC and AIC
    assert ours.n_parameters_ == theirs._n_parameters()
    assert ours.bic(Y) == pytest.approx(theirs.bic(Y), rel=1e-10)
    assert ours.aic(Y) == pytest.approx(theirs.aic(Y), rel=1e-10)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_fit_predict_matches_sklearn(covariance_type):
    X = three_clusters()
    init = sklearn_start(X, covariance_type, 1e-6)
    kwargs = dict(covariance_type=covariance_type, tol=1e-10, max_iter=200, **init)
    ours = GMM(3, **kwargs).fit_predict(X)
    theirs = GaussianMixture(3, **kwargs).fit_predict(X)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_float32_input_keeps_float32(covariance_type):
    # float32 data: fitted attributes stay float32 and agree with a float64 fit of the very
    # same points up to float32 resolution (the log densities are computed in float32).
    X32 = iris().astype(np.float32)
    X64 = X32.astype(np.float64)
    init = sklearn_start(X64, covariance_type, 1e-6)
    ours32, _ = fit_both(X32, covariance_type, 10, 1e-6, init)
    ours64, theirs64 = fit_both(X64, covariance_type, 10, 1e-6, init)
    for name in FITTED:
        assert getattr(ours32, name).dtype == np.float32, name
    assert_same_parameters(ours32, theirs64, rtol=1e-5)
    assert ours32.score(X32) == pytest.approx(ours64.score(X64), rel=1e-6)
    proba = ours32.predict_proba(X32)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(proba, theirs64.predict_proba(X64), atol=1e-5)
