"""Behaviour of ``MixtureModel``: sampling, scoring, parameter counts, zero weights, families."""

import math

import attrs
import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture

from probmix import GMM, EMAlgorithm, MixtureModel, SingularCovarianceError
from probmix.distributions import DiagonalNormal, Gaussian, SphericalNormal, TiedNormal
from probmix.mixture import MixtureStatistics

WEIGHTS = np.array([0.2, 0.5, 0.3])
MEANS = np.array([[-4.0, 0.0], [0.0, 3.0], [5.0, -1.0]])
COVS = np.array([[[1.0, 0.3], [0.3, 0.5]],
                 [[2.0, -0.8], [-0.8, 1.0]],
                 [[0.4, 0.0], [0.0, 0.4]]])


@pytest.fixture(scope="module")
def model():
    return MixtureModel(weights=WEIGHTS, components=[
        Gaussian(mean=m, covariance=c) for m, c in zip(MEANS, COVS)])


@pytest.fixture(scope="module")
def big_sample(model):
    return model.sample(100_000, np.random.default_rng(2024))


# -- sampling --------------------------------------------------------------------------------

def test_sample_shapes_and_labels(model):
    X, labels = model.sample(50, np.random.default_rng(0))
    assert X.shape == (50, 2) and labels.shape == (50,)
    assert np.issubdtype(labels.dtype, np.integer)
    assert labels.min() >= 0 and labels.max() < model.n_components
    assert np.all(np.isfinite(X))


def test_sample_is_reproducible_and_shuffled(model):
    X1, l1 = model.sample(200, np.random.default_rng(7))
    X2, l2 = model.sample(200, np.random.default_rng(7))
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(l1, l2)
    # Rows come in random order, not grouped by component.
    assert np.count_nonzero(np.diff(l1)) > 10


def test_label_frequencies_match_weights(model, big_sample):
    _, labels = big_sample
    counts = np.bincount(labels, minlength=3)
    # Chi-square goodness of fit against the multinomial(n, π) the labels come from.
    assert stats.chisquare(counts, len(labels) * WEIGHTS).pvalue > 1e-3


def test_per_component_sample_moments(model, big_sample):
    X, labels = big_sample
    for k in range(3):
        Xk = X[labels == k]
        n = len(Xk)
        # Standard errors: of a mean, sqrt(Σ_ii / n); of a covariance entry,
        # sqrt((Σ_ii Σ_jj + Σ_ij²) / n) for Gaussian data. 5 SE ⇒ no flaky failures.
        se_mean = np.sqrt(np.diag(COVS[k]) / n)
        np.testing.assert_array_less(np.abs(Xk.mean(axis=0) - MEANS[k]), 5 * se_mean)
        d = np.diag(COVS[k])
        se_cov = np.sqrt((np.outer(d, d) + COVS[k] ** 2) / n)
        np.testing.assert_array_less(np.abs(np.cov(Xk.T) - COVS[k]), 5 * se_cov)


def test_sample_skips_zero_weight_component():
    model = MixtureModel(weights=[0.0, 1.0], components=[
        Gaussian(mean=[100.0], covariance=[[1.0]]), Gaussian(mean=[0.0], covariance=[[1.0]])])
    X, labels = model.sample(500, np.random.default_rng(0))
    assert np.all(labels == 1) and np.all(np.abs(X) < 10)


# -- scoring ---------------------------------------------------------------------------------

def test_log_prob_matches_scipy(model):
    X = np.random.default_rng(1).normal(0, 3, (20, 2))
    expected = logsumexp([np.log(w) + stats.multivariate_normal(m, c).logpdf(X)
                          for w, m, c in zip(WEIGHTS, MEANS, COVS)], axis=0)
    np.testing.assert_allclose(model.log_prob(X), expected, rtol=1e-12)
    post = model.posterior(X)
    np.testing.assert_allclose(post.log_evidence, expected, rtol=1e-12)
    np.testing.assert_allclose(np.exp(post.log_resp).sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(model.responsibilities(X), np.exp(post.log_resp))


def test_responsibilities_below_e_minus_700_are_exact_zeros():
    # rows at growing distance from the second component: log-responsibility gaps from ~0 to
    # ~-5000, crossing numpy's slow subnormal range of exp (-745 < gap < -708)
    model = MixtureModel(weights=[0.5, 0.5], components=[
        Gaussian(mean=[0.0], covariance=[[1.0]]), Gaussian(mean=[1.0], covariance=[[1.0]])])
    X = np.linspace(-5000.0, 5.0, 4001)[:, None]
    post = model.posterior(X)
    gap = post.log_resp  # exact: recomputed from the log-joint
    expected = np.exp(gap)
    flushed = gap < -700.0
    assert flushed.any() and (~flushed).any()
    assert np.all(post.resp[flushed] == 0.0)
    np.testing.assert_allclose(post.resp[~flushed], expected[~flushed], rtol=1e-12,
                               atol=1e-303)
    np.testing.assert_allclose(post.resp.sum(axis=1), 1.0, rtol=1e-15)
    # log_resp is exact where resp was flushed: a − max a − log Σ
    np.testing.assert_allclose(gap, post.log_joint - logsumexp(post.log_joint, axis=1,
                                                                   keepdims=True),
                               rtol=1e-12, atol=1e-13)


class _Exploding(Gaussian):
    """A component that must never be scored."""

    def log_prob(self, X):
        raise AssertionError("a zero-weight component was evaluated")


def test_zero_weight_component_is_skipped_and_never_evaluated():
    live = Gaussian(mean=[0.0, 0.0], covariance=np.eye(2))
    model = MixtureModel(weights=[0.0, 1.0],
                         components=[_Exploding(mean=[0.0, 0.0], covariance=np.eye(2)), live])
    X = np.random.default_rng(0).normal(size=(10, 2))
    log_joint = model.log_joint(X)
    assert np.all(log_joint[:, 0] == -np.inf)
    np.testing.assert_allclose(log_joint[:, 1], live.log_prob(X))
    np.testing.assert_allclose(model.log_prob(X), live.log_prob(X))
    resp = model.responsibilities(X)
    np.testing.assert_array_equal(resp, np.column_stack([np.zeros(10), np.ones(10)]))


def test_weights_are_normalised_and_read_only(model):
    # Sums within the 1e-6 tolerance are renormalised exactly.
    m = MixtureModel(weights=[0.5, 0.5 + 5e-7], components=model.components[:2])
    assert m.weights.sum() == pytest.approx(1.0, abs=1e-15)
    with pytest.raises(ValueError):
        model.weights[0] = 1.0
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        model.weights = np.ones(3) / 3


# -- parameter counts, BIC, AIC --------------------------------------------------------------

def _textbook_n_parameters(covariance_type, K, d):
    return {"full": K - 1 + K * d + K * d * (d + 1) // 2,
            "tied": K - 1 + K * d + d * (d + 1) // 2,
            "diag": K - 1 + 2 * K * d,
            "spherical": K - 1 + K * d + K}[covariance_type]


_FAMILIES = {"full": Gaussian, "tied": TiedNormal, "diag": DiagonalNormal,
             "spherical": SphericalNormal}


def _covariance(covariance_type, d):
    return {"full": np.eye(d), "tied": np.eye(d), "diag": np.ones(d), "spherical": 1.0}[
        covariance_type]


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("K, d", [(1, 1), (3, 1), (2, 3), (4, 5)])
def test_n_parameters_textbook(covariance_type, K, d):
    family = _FAMILIES[covariance_type]
    model = MixtureModel(weights=np.full(K, 1.0 / K), components=[
        family(mean=np.full(d, float(k)), covariance=_covariance(covariance_type, d))
        for k in range(K)])
    assert model.n_parameters == _textbook_n_parameters(covariance_type, K, d)


def _sklearn_twin(gmm):
    """A scikit-learn GaussianMixture holding exactly the parameters of a fitted probmix GMM."""
    sk = GaussianMixture(n_components=gmm.n_components, covariance_type=gmm.covariance_type)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_",
                 "n_features_in_", "converged_", "n_iter_", "lower_bound_"):
        setattr(sk, name, getattr(gmm, name))
    return sk


@pytest.fixture(scope="module")
def data_3d():
    rng = np.random.default_rng(5)
    return np.vstack([rng.normal(c, 1.0, (80, 3)) for c in (-4, 0, 4)])


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_n_parameters_bic_aic_match_sklearn(data_3d, covariance_type):
    X = data_3d
    gmm = GMM(3, covariance_type=covariance_type, random_state=0).fit(X)
    sk = _sklearn_twin(gmm)
    n, d = X.shape
    assert gmm.n_parameters_ == sk._n_parameters() == _textbook_n_parameters(
        covariance_type, 3, d)
    np.testing.assert_allclose(gmm.score_samples(X), sk.score_samples(X), rtol=1e-10)
    np.testing.assert_allclose(gmm.bic(X), sk.bic(X), rtol=1e-10)
    np.testing.assert_allclose(gmm.aic(X), sk.aic(X), rtol=1e-10)
    # And the closed forms, from the per-sample log-likelihood.
    ll = n * gmm.score(X)
    assert gmm.bic(X) == pytest.approx(-2 * ll + gmm.n_parameters_ * math.log(n), rel=1e-12)
    assert gmm.aic(X) == pytest.approx(-2 * ll + 2 * gmm.n_parameters_, rel=1e-12)


def test_weighted_bic_aic_equal_duplicated_rows(model):
    X, _ = model.sample(60, np.random.default_rng(3))
    w = np.random.default_rng(4).integers(1, 4, size=60)
    Xrep = np.repeat(X, w, axis=0)
    assert model.bic(X, sample_weight=w) == pytest.approx(model.bic(Xrep), rel=1e-12)
    assert model.aic(X, sample_weight=w) == pytest.approx(model.aic(Xrep), rel=1e-12)


# -- heterogeneous families ------------------------------------------------------------------

@pytest.fixture(scope="module")
def mixed():
    return MixtureModel(weights=[0.3, 0.4, 0.3], components=[
        Gaussian(mean=[-5.0, 0.0], covariance=[[1.0, 0.5], [0.5, 1.0]]),
        DiagonalNormal(mean=[0.0, 4.0], covariance=[0.5, 2.0]),
        SphericalNormal(mean=[5.0, 0.0], covariance=0.7)])


def test_heterogeneous_mixture_scores_like_scipy(mixed):
    X, labels = mixed.sample(300, np.random.default_rng(0))
    assert set(np.unique(labels)) == {0, 1, 2}
    covs = [[[1.0, 0.5], [0.5, 1.0]], np.diag([0.5, 2.0]), 0.7 * np.eye(2)]
    means = [[-5.0, 0.0], [0.0, 4.0], [5.0, 0.0]]
    expected = logsumexp([np.log(w) + stats.multivariate_normal(m, c).logpdf(X)
                          for w, m, c in zip(mixed.weights, means, covs)], axis=0)
    np.testing.assert_allclose(mixed.log_prob(X), expected, rtol=1e-12)
    # (K − 1) + full (2 + 3) + diagonal (2 + 2) + spherical (2 + 1)
    assert mixed.n_parameters == 2 + 5 + 4 + 3


def test_heterogeneous_mixture_fits_by_em(mixed):
    X, _ = mixed.sample(600, np.random.default_rng(1))
    start = MixtureModel(weights=[1 / 3] * 3, components=[
        Gaussian(mean=[-3.0, 1.0], covariance=np.eye(2)),
        DiagonalNormal(mean=[1.0, 3.0], covariance=[1.0, 1.0]),
        SphericalNormal(mean=[3.0, 1.0], covariance=1.0)])
    result = EMAlgorithm(tol=1e-8).fit(X, start)
    assert result.converged
    # Each component keeps its own family through the M-steps.
    assert [type(c) for c in result.model.components] == [Gaussian, DiagonalNormal,
                                                          SphericalNormal]
    assert np.all(np.diff(result.history.log_likelihood) >= -1e-10)
    np.testing.assert_allclose(np.stack([c.mean for c in result.model.components]),
                               [[-5.0, 0.0], [0.0, 4.0], [5.0, 0.0]], atol=0.3)


# -- the M-step from statistics --------------------------------------------------------------

def test_from_statistics_is_weighted_mle(model):
    X, labels = model.sample(500, np.random.default_rng(0))
    q = np.eye(3)[labels]
    new = MixtureModel.from_statistics(model.component_statistics(X, q))
    np.testing.assert_allclose(new.weights, np.bincount(labels) / 500)
    for k, comp in enumerate(new.components):
        Xk = X[labels == k]
        np.testing.assert_allclose(comp.mean, Xk.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(comp.covariance_matrix, np.cov(Xk.T, bias=True), rtol=1e-10)


def test_from_statistics_massless_component(model):
    X, _ = model.sample(50, np.random.default_rng(0))
    q = np.column_stack([np.ones(50), np.zeros(50), np.zeros(50)])
    stats_ = model.component_statistics(X, q)
    with pytest.raises(ValueError, match=r"component 1 has no responsibility mass"):
        MixtureModel.from_statistics(stats_)
    # With a fallback the massless components keep its parameters at weight 0.
    new = MixtureModel.from_statistics(stats_, fallback=model)
    np.testing.assert_array_equal(new.weights, [1.0, 0.0, 0.0])
    assert new.components[1] == model.components[1]
    assert new.components[2] == model.components[2]


def test_from_statistics_names_collapsed_component():
    # Component 1 sees one repeated point: zero scatter, singular covariance.
    X = np.vstack([np.random.default_rng(0).normal(size=(10, 2)), np.tile([5.0, 5.0], (6, 1))])
    q = np.zeros((16, 2))
    q[:10, 0] = 1.0
    q[10:, 1] = 1.0
    stats_ = MixtureStatistics.of(X, q, [Gaussian, Gaussian])
    with pytest.raises(SingularCovarianceError, match=r"component 1 collapsed.*reg_covar"):
        MixtureModel.from_statistics(stats_)
