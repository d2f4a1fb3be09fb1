"""Bad input raises a clear exception that names the argument and the problem.

Every check uses ``pytest.raises(..., match=...)`` on the argument's name, so a message that
stops saying *what* was wrong fails the test, not only a wrong exception type.
"""

import numpy as np
import pytest

from probmix import GMM, EMAlgorithm, MixtureModel, NotFittedError
from probmix.distributions import DiagonalNormal, Gaussian
from probmix.em import MaximumLikelihood, SoftEStep


def _blobs(n=40, d=2, seed=0):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(-3, 1, (n // 2, d)), rng.normal(3, 1, (n - n // 2, d))])


@pytest.fixture(scope="module")
def X():
    return _blobs()


@pytest.fixture(scope="module")
def fitted(X):
    return GMM(2, random_state=0).fit(X)


def _two_gaussians(d=2):
    return MixtureModel(weights=[0.5, 0.5], components=[
        Gaussian(mean=np.full(d, -1.0), covariance=np.eye(d)),
        Gaussian(mean=np.full(d, 1.0), covariance=np.eye(d))])


# -- X itself --------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, what", [(np.nan, r"NaN \(first at row 3, column 1\).*"
                                                       r"missing='marginalize'"),
                                       (np.inf, r"infinity \(first at row 3, column 1\)"),
                                       (-np.inf, r"infinity \(first at row 3, column 1\)")])
def test_non_finite_X_rejected_by_fit(X, bad, what):
    Xb = X.copy()
    Xb[3, 1] = bad
    with pytest.raises(ValueError, match=r"X contains " + what):
        GMM(2).fit(Xb)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score"])
def test_non_finite_X_rejected_after_fit(fitted, X, method):
    Xb = X[:5].copy()
    Xb[0, 0] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        getattr(fitted, method)(Xb)


@pytest.mark.parametrize("X_bad, match", [
    (np.empty((0, 2)), r"X needs at least 2 sample"),
    (np.empty((5, 0)), r"X has no features"),
    ([], r"X must be 2-D"),
])
def test_empty_X(X_bad, match):
    with pytest.raises(ValueError, match=match):
        GMM(1).fit(X_bad)


def test_empty_X_at_predict(fitted):
    with pytest.raises(ValueError, match=r"X needs at least 1 sample"):
        fitted.predict(np.empty((0, 2)))


def test_single_row_cannot_be_fitted():
    with pytest.raises(ValueError, match=r"X needs at least 2 sample"):
        GMM(1).fit([[1.0, 2.0]])


def test_1d_X_suggests_reshape():
    with pytest.raises(ValueError, match=r"X must be 2-D.*reshape\(-1, 1\)"):
        GMM(1).fit(np.arange(10.0))


def test_3d_X():
    with pytest.raises(ValueError, match=r"X must be 2-D.*3-D"):
        GMM(1).fit(np.zeros((4, 3, 2)))


@pytest.mark.parametrize("X_bad", [
    np.array([["a", "b"], ["c", "d"], ["e", "f"]]),
    np.array([[1.0, 2.0], [3.0, "x"]], dtype=object),
    [[1.0, "x"], [2.0, 3.0]],
])
def test_non_numeric_X(X_bad):
    with pytest.raises(TypeError, match=r"X must hold numbers"):
        GMM(1).fit(X_bad)


def test_object_array_of_numbers_is_converted():
    # what pandas hands over for mixed columns: accepted when every entry is a number
    X = np.random.default_rng(0).normal(size=(20, 2))
    assert np.allclose(GMM(1).fit(X.astype(object)).means_, GMM(1).fit(X).means_)


def test_complex_X():
    with pytest.raises(ValueError, match=r"X must be real \(Complex data not supported"):
        GMM(1).fit(np.ones((5, 2)) + 1j)


def test_ragged_X():
    with pytest.raises(ValueError, match=r"X could not be read as an array"):
        GMM(1).fit([[1.0, 2.0], [3.0]])


def test_fewer_samples_than_components():
    with pytest.raises(ValueError, match=r"n_samples=3 must be >= n_components=5"):
        GMM(5).fit(_blobs(n=3))


# -- hyperparameters -------------------------------------------------------------------------

@pytest.mark.parametrize("params, error, match", [
    ({"n_components": 0}, ValueError, r"n_components must be >= 1"),
    ({"n_components": -1}, ValueError, r"n_components must be >= 1"),
    ({"n_components": 1.5}, TypeError, r"n_components must be int"),
    ({"n_components": True}, TypeError, r"n_components must be int.*bool"),
    ({"n_components": "3"}, TypeError, r"n_components must be int"),
    ({"covariance_type": "foo"}, ValueError, r"covariance_type must be one of.*'foo'"),
    ({"covariance_type": None}, ValueError, r"covariance_type must be one of"),
    ({"tol": -1e-3}, ValueError, r"tol must be >= 0"),
    ({"tol": np.nan}, ValueError, r"tol must be finite"),
    ({"tol": "small"}, TypeError, r"tol must be float"),
    ({"reg_covar": -1e-6}, ValueError, r"reg_covar must be >= 0"),
    ({"reg_covar": np.inf}, ValueError, r"reg_covar must be finite"),
    ({"max_iter": 0}, ValueError, r"max_iter must be >= 1"),
    ({"max_iter": 10.0}, TypeError, r"max_iter must be int"),
    ({"n_init": 0}, ValueError, r"n_init must be >= 1"),
    ({"init_params": "bogus"}, ValueError, r"init_params must be one of.*'bogus'"),
    ({"random_state": "x"}, TypeError, r"random_state must be None, an int or a numpy Generator"),
    ({"random_state": -1}, ValueError, r"random_state must be non-negative"),
    ({"random_state": True}, TypeError, r"random_state .*bool"),
    ({"verbose": -1}, ValueError, r"verbose must be >= 0"),
    ({"verbose_interval": 0}, ValueError, r"verbose_interval must be >= 1"),
])
def test_bad_hyperparameters_rejected_at_construction(params, error, match):
    with pytest.raises(error, match=match):
        GMM(**params)


@pytest.mark.parametrize("params, error, match", [
    ({"n_components": 0}, ValueError, r"n_components must be >= 1"),
    ({"covariance_type": "foo"}, ValueError, r"covariance_type must be one of"),
    ({"tol": -1.0}, ValueError, r"tol must be >= 0"),
    ({"max_iter": 2.5}, TypeError, r"max_iter must be int"),
    ({"random_state": "x"}, TypeError, r"random_state"),
])
def test_set_params_validates_and_keeps_old_value(params, error, match):
    gmm = GMM(2, covariance_type="diag", tol=1e-4, max_iter=50, random_state=3)
    before = gmm.get_params()
    with pytest.raises(error, match=match):
        gmm.set_params(**params)
    # A rejected value must not be left behind half-set.
    assert gmm.get_params() == before


def test_set_params_unknown_name():
    with pytest.raises(ValueError, match=r"invalid parameter 'n_clusters' for GMM.*n_components"):
        GMM().set_params(n_clusters=3)


# -- shape mismatch and use before fit ---------------------------------------------------------

@pytest.mark.parametrize("method", ["predict", "predict_proba", "score", "score_samples",
                                    "bic", "aic"])
def test_wrong_n_features_after_fit(fitted, method):
    with pytest.raises(ValueError, match=r"X has 3 features, but GMM is expecting 2 features as input"):
        getattr(fitted, method)(np.zeros((4, 3)))


@pytest.mark.parametrize("call", [
    lambda g: g.predict(np.zeros((2, 2))),
    lambda g: g.predict_proba(np.zeros((2, 2))),
    lambda g: g.score(np.zeros((2, 2))),
    lambda g: g.score_samples(np.zeros((2, 2))),
    lambda g: g.sample(3),
    lambda g: g.bic(np.zeros((2, 2))),
    lambda g: g.aic(np.zeros((2, 2))),
    lambda g: g.n_parameters_,
], ids=["predict", "predict_proba", "score", "score_samples", "sample", "bic", "aic",
        "n_parameters_"])
def test_not_fitted(call):
    with pytest.raises(NotFittedError, match=r"not fitted yet: call fit"):
        call(GMM(2))


def test_not_fitted_error_is_value_and_attribute_error():
    # Code written for either scikit-learn convention must catch it.
    assert issubclass(NotFittedError, ValueError)
    assert issubclass(NotFittedError, AttributeError)
    with pytest.raises(ValueError):
        GMM().predict(np.zeros((1, 1)))
    with pytest.raises(AttributeError):
        GMM().predict(np.zeros((1, 1)))
    assert not hasattr(GMM(), "means_")


def test_sample_count_validated(fitted):
    with pytest.raises(ValueError, match=r"n_samples must be >= 1"):
        fitted.sample(0)
    with pytest.raises(TypeError, match=r"n_samples must be an int"):
        fitted.sample(2.5)


# -- user-given initial parameters -----------------------------------------------------------

@pytest.mark.parametrize("weights_init, error, match", [
    ([0.5, 0.6], ValueError, r"weights_init must be non-negative and sum to 1"),
    ([1.5, -0.5], ValueError, r"weights_init must be non-negative and sum to 1"),
    ([1.0], ValueError, r"weights_init must have shape \(2,\)"),
    ([[0.5, 0.5]], ValueError, r"weights_init must have shape \(2,\)"),
    ([np.nan, 1.0], ValueError, r"weights_init contains NaN"),
    (["a", "b"], TypeError, r"weights_init must hold real numbers"),
])
def test_bad_weights_init(X, weights_init, error, match):
    with pytest.raises(error, match=match):
        GMM(2, weights_init=weights_init).fit(X)


@pytest.mark.parametrize("means_init", [np.zeros((3, 2)), np.zeros((2, 3)), np.zeros(4)])
def test_means_init_wrong_shape(X, means_init):
    with pytest.raises(ValueError, match=r"means_init must have shape \(2, 2\)"):
        GMM(2, means_init=means_init).fit(X)


@pytest.mark.parametrize("covariance_type, shape, expected", [
    ("full", (2, 2), r"\(2, 2, 2\)"),
    ("tied", (2, 2, 2), r"\(2, 2\)"),
    ("diag", (2,), r"\(2, 2\)"),
    ("spherical", (2, 2), r"\(2,\)"),
])
def test_precisions_init_wrong_shape(X, covariance_type, shape, expected):
    with pytest.raises(ValueError, match=rf"precisions_init for covariance_type="
                                         rf"'{covariance_type}' must have shape {expected}"):
        GMM(2, covariance_type=covariance_type, precisions_init=np.ones(shape)).fit(X)


@pytest.mark.parametrize("covariance_type, precisions", [
    # symmetric but indefinite (eigenvalues 3 and -1)
    ("full", np.array([np.eye(2), [[1.0, 2.0], [2.0, 1.0]]])),
    ("full", np.array([np.eye(2), [[1.0, 0.5], [-0.5, 1.0]]])),  # not symmetric
    ("tied", np.array([[1.0, 2.0], [2.0, 1.0]])),
    ("diag", np.array([[1.0, 1.0], [1.0, -2.0]])),
    ("diag", np.array([[1.0, 1.0], [0.0, 1.0]])),
    ("spherical", np.array([1.0, -1.0])),
    ("spherical", np.array([0.0, 1.0])),
])
def test_precisions_init_not_positive_definite(X, covariance_type, precisions):
    with pytest.raises(ValueError, match=r"precisions_init is invalid"):
        GMM(2, covariance_type=covariance_type, precisions_init=precisions).fit(X)


@pytest.mark.parametrize("name, value", [
    ("weights_init", np.array([0.5, 0.5]) + 0j),
    ("means_init", np.zeros((2, 2)) + 1j),
    ("precisions_init", np.array([np.eye(2), np.eye(2)]) + 0j),
])
def test_complex_initial_parameters(X, name, value):
    with pytest.raises(TypeError, match=rf"{name}.*real"):
        GMM(2, **{name: value}).fit(X)


# -- sample_weight ---------------------------------------------------------------------------

@pytest.mark.parametrize("make_weight, match", [
    (lambda n: np.ones(n - 1), r"sample_weight must have shape \(40,\)"),
    (lambda n: np.ones((n, 1)), r"sample_weight must have shape \(40,\)"),
    (lambda n: np.r_[-1.0, np.ones(n - 1)], r"sample_weight must be non-negative"),
    (lambda n: np.r_[np.nan, np.ones(n - 1)], r"sample_weight contains NaN"),
    (lambda n: np.r_[np.inf, np.ones(n - 1)], r"sample_weight contains NaN or infinity"),
    (lambda n: np.zeros(n), r"sample_weight sums to zero"),
])
def test_bad_sample_weight(X, make_weight, match):
    with pytest.raises(ValueError, match=match):
        GMM(2).fit(X, sample_weight=make_weight(len(X)))


def test_non_numeric_sample_weight(X):
    with pytest.raises(TypeError, match=r"sample_weight must hold numbers"):
        GMM(2).fit(X, sample_weight=np.array(["a"] * len(X)))


# -- MixtureModel ----------------------------------------------------------------------------

def test_mixture_weights_not_on_simplex():
    comps = _two_gaussians().components
    with pytest.raises(ValueError, match=r"weights must sum to 1.*got sum"):
        MixtureModel(weights=[0.5, 0.4], components=comps)
    with pytest.raises(ValueError, match=r"weights must be non-negative"):
        MixtureModel(weights=[1.5, -0.5], components=comps)
    with pytest.raises(ValueError, match=r"weights contain NaN"):
        MixtureModel(weights=[np.nan, 1.0], components=comps)
    with pytest.raises(ValueError, match=r"weights must be a non-empty 1-D array"):
        MixtureModel(weights=[[0.5, 0.5]], components=comps)


def test_mixture_wrong_number_of_weights():
    with pytest.raises(ValueError, match=r"got 3 weights for 2 components"):
        MixtureModel(weights=[0.2, 0.3, 0.5], components=_two_gaussians().components)


def test_mixture_components_disagree_on_n_features():
    with pytest.raises(ValueError, match=r"components disagree on n_features: \[1, 2\]"):
        MixtureModel(weights=[0.5, 0.5], components=[
            Gaussian(mean=[0.0], covariance=[[1.0]]),
            DiagonalNormal(mean=[0.0, 0.0], covariance=[1.0, 1.0])])


def test_mixture_component_not_a_distribution():
    from scipy.stats import norm

    with pytest.raises(TypeError, match=r"component 1 must be a probmix Distribution.*rv_"):
        MixtureModel(weights=[0.5, 0.5], components=[
            Gaussian(mean=[0.0], covariance=[[1.0]]), norm(0, 1)])


def test_mixture_scoring_validates_X():
    model = _two_gaussians()
    with pytest.raises(ValueError, match=r"X has 3 features, but the model has 2"):
        model.log_prob(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"X contains NaN"):
        model.log_joint(np.array([[0.0, np.nan]]))


def test_mixture_sample_count_validated():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"n_samples must be >= 1"):
        _two_gaussians().sample(0, rng)
    with pytest.raises(TypeError, match=r"n_samples must be an int"):
        _two_gaussians().sample(True, rng)


# -- EMAlgorithm -----------------------------------------------------------------------------

@pytest.mark.parametrize("params, error, match", [
    ({"tol": "0.1"}, TypeError, r"tol must be"),
    ({"tol": -1.0}, ValueError, r"tol must be >= 0"),
    ({"tol": np.nan}, ValueError, r"tol must be finite"),
    ({"max_iter": 0}, ValueError, r"max_iter must be >= 1"),
    ({"max_iter": 1.5}, TypeError, r"max_iter must be int"),
    ({"max_iter": "10"}, TypeError, r"max_iter must be int"),
    ({"chunk_size": 0}, ValueError, r"chunk_size must be >= 1"),
    ({"chunk_size": 2.5}, TypeError, r"chunk_size must be int"),
    ({"e_step": "soft"}, TypeError, r"e_step must be an instance of EStep, got str"),
    # the class, not an instance:
    ({"e_step": SoftEStep}, TypeError, r"e_step must be an instance of EStep"),
    ({"m_step": MaximumLikelihood}, TypeError, r"m_step must be an instance of MStep"),
    ({"m_step": None}, TypeError, r"m_step must be an instance of MStep, got NoneType"),
])
def test_em_algorithm_bad_arguments(params, error, match):
    with pytest.raises(error, match=match):
        EMAlgorithm(**params)


@pytest.mark.parametrize("name", ["max_iter", "chunk_size"])
def test_em_algorithm_rejects_bool_counts(name):
    # GMM rejects n_components=True; the algorithm's integer arguments should agree.
    with pytest.raises(TypeError, match=name):
        EMAlgorithm(**{name: True})


def test_em_algorithm_init_must_be_a_mixture(X):
    with pytest.raises(TypeError, match=r"init must be a MixtureModel, got Gaussian"):
        EMAlgorithm().fit(X, Gaussian(mean=[0.0, 0.0], covariance=np.eye(2)))
    with pytest.raises(TypeError, match=r"init must be a MixtureModel, got GMM"):
        EMAlgorithm().fit(X, GMM(2))


def test_em_algorithm_checks_X_against_init(X):
    with pytest.raises(ValueError, match=r"X has 2 features, but the initial model has 3"):
        EMAlgorithm().fit(X, _two_gaussians(d=3))
    with pytest.raises(ValueError, match=r"sample_weight must be non-negative"):
        EMAlgorithm().fit(X, _two_gaussians(), sample_weight=-np.ones(len(X)))
    with pytest.raises(TypeError, match=r"random_state"):
        EMAlgorithm().fit(X, _two_gaussians(), random_state="seed")
