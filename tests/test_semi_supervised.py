"""Semi-supervised EM: partial labels as a responsibility prior r_ik, q_ik ∝ r_ik π_k p_k(x_i).

With every row labelled the E-step is the labels themselves, so one M-step is the supervised
maximum-likelihood estimate per class; rows labelled -1 keep the ordinary posterior; the
objective is Σ_i w_i log Σ_k r_ik π_k p_k(x_i), computed here directly from the final model.
"""

import warnings

import numpy as np
import pytest
from scipy.special import logsumexp

from probmix import GMM, ConvergenceWarning, EMAlgorithm, MixtureModel
from probmix.distributions import DiagonalNormal, Gaussian, SphericalNormal, TiedNormal
from probmix.em import MAP, MaximumLikelihood, labels_to_responsibility_prior
from probmix.priors import Dirichlet, NormalInverseWishart

FAMILIES = (Gaussian, DiagonalNormal, SphericalNormal, TiedNormal)
CENTERS = np.array([[-6.0, 0.0], [6.0, 0.0], [0.0, 8.0]])


def labelled_data(seed=0, n_per=40):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(c, [1.0, 0.6], (n_per, 2)) for c in CENTERS])
    y = np.repeat(np.arange(3), n_per)
    order = rng.permutation(len(X))
    return X[order], y[order]


def poor_start(family, K=3):
    """Means nowhere near the classes, in the wrong order: the labels alone must decide."""
    cov = {DiagonalNormal: np.ones(2), SphericalNormal: 1.0}.get(family, np.eye(2))
    means = [(0.0, -5.0), (1.0, 1.0), (-2.0, 3.0)][:K]
    return MixtureModel(weights=np.full(K, 1 / K),
                        components=[family(mean=m, covariance=cov) for m in means])


def one_step(X, init, r, **fit_kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return EMAlgorithm(max_iter=1, keep_models=True).fit(
            X, init, responsibility_prior=r, **fit_kwargs)


def supervised_mle(family, X, y, w):
    """Per-class weighted frequencies, means and covariances (pooled when tied)."""
    K, d = 3, X.shape[1]
    weights = np.array([w[y == k].sum() for k in range(K)]) / w.sum()
    means = np.array([np.average(X[y == k], axis=0, weights=w[y == k]) for k in range(K)])
    scatters = [((w[y == k][:, None] * (X[y == k] - means[k])).T @ (X[y == k] - means[k]))
                for k in range(K)]
    covs = [s / w[y == k].sum() for k, s in enumerate(scatters)]
    if family is TiedNormal:
        covs = [sum(scatters) / w.sum()] * K
    elif family is DiagonalNormal:
        covs = [np.diag(np.diag(c)) for c in covs]
    elif family is SphericalNormal:
        covs = [np.trace(c) / d * np.eye(d) for c in covs]
    return weights, means, covs


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("weighted", [False, True])
def test_all_labels_one_m_step_is_the_supervised_mle(family, weighted):
    X, y = labelled_data()
    w = (np.random.default_rng(1).uniform(0.2, 3.0, len(X)) if weighted
         else np.ones(len(X)))
    result = one_step(X, poor_start(family), labels_to_responsibility_prior(y, 3),
                      sample_weight=w)
    weights, means, covs = supervised_mle(family, X, y, w)
    model = result.model
    np.testing.assert_allclose(model.weights, weights, rtol=1e-12)
    for k, c in enumerate(model.components):
        np.testing.assert_allclose(c.mean, means[k], rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(c.covariance.matrix, covs[k], rtol=1e-11)


def test_unlabelled_rows_keep_their_posterior():
    X, y = labelled_data(2)
    labels = np.where(np.arange(len(X)) % 3 == 0, y, -1)
    init = poor_start(Gaussian)
    r = labels_to_responsibility_prior(labels, 3)
    result = one_step(X, init, r)
    # q by hand: one-hot for the labelled rows, the model's posterior for the others
    q = init.responsibilities(X)
    known = labels >= 0
    q[known] = np.eye(3)[labels[known]]
    expected = MaximumLikelihood()(init.component_statistics(X, q), init)
    np.testing.assert_allclose(result.model.weights, expected.weights, rtol=1e-12)
    for a, b in zip(result.model.components, expected.components):
        np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12)
        np.testing.assert_allclose(a.covariance.matrix, b.covariance.matrix, rtol=1e-12)


def test_all_rows_unlabelled_is_ordinary_em():
    X, _ = labelled_data(3)
    init = MixtureModel(weights=[0.2, 0.3, 0.5], components=[
        Gaussian(mean=m, covariance=4 * np.eye(2)) for m in ((-3, 0), (3, 0), (0, 3))])
    r = labels_to_responsibility_prior(np.full(len(X), -1), 3)
    run = EMAlgorithm(tol=0.0, max_iter=10, keep_models=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clamped = run.fit(X, init, responsibility_prior=r)
        free = run.fit(X, init)
    np.testing.assert_array_equal(clamped.history.objective, free.history.objective)
    for a, b in zip(clamped.model.components, free.model.components):
        np.testing.assert_array_equal(a.mean, b.mean)


def test_clamped_objective_is_the_labelled_joint_likelihood():
    X, y = labelled_data(4)
    labels = np.where(np.arange(len(X)) % 4 == 0, y, -1)
    r = labels_to_responsibility_prior(labels, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = EMAlgorithm(tol=0.0, max_iter=15, keep_models=True).fit(
            X, poor_start(Gaussian), responsibility_prior=r)
    h = result.history
    for rec in h:
        lj = rec.model.log_joint(X)
        with np.errstate(divide="ignore"):
            expected = np.mean(logsumexp(lj + np.log(r), axis=1))
        assert rec.objective == pytest.approx(expected, rel=1e-12)
        # the log-likelihood column stays the unclamped one, an upper bound of the objective
        assert rec.log_likelihood == pytest.approx(np.mean(rec.model.log_prob(X)), rel=1e-12)
        assert rec.objective <= rec.log_likelihood + 1e-12
    assert np.all(np.diff(h.objective) >= -1e-12)


# -- labels_to_responsibility_prior ---------------------------------------------------------------

def test_labels_to_responsibility_prior_values():
    r = labels_to_responsibility_prior([2, -1, 0, 0], 3)
    np.testing.assert_array_equal(r, [[0, 0, 1], [1, 1, 1], [1, 0, 0], [1, 0, 0]])
    # integral floats are accepted as labels
    np.testing.assert_array_equal(labels_to_responsibility_prior(np.array([1.0, -1.0]), 2),
                                  [[0, 1], [1, 1]])
    assert labels_to_responsibility_prior(np.array([], dtype=int), 4).shape == (0, 4)


@pytest.mark.parametrize(("labels", "exc", "match"), [
    ([0, 3, -1], ValueError, r"in \[0, 3\), got 3"),
    ([0, -2], ValueError, "got -2"),
    ([0.5, 1.0], TypeError, "integers"),
    (["a", "b"], TypeError, "integers"),
    ([[0, 1]], ValueError, "1-D"),
])
def test_labels_to_responsibility_prior_validation(labels, exc, match):
    with pytest.raises(exc, match=match):
        labels_to_responsibility_prior(labels, 3)


@pytest.mark.parametrize(("r", "match"), [
    (np.ones((5, 3)), r"shape \(6, 2\)"),
    (-np.ones((6, 2)), "non-negative"),
    (np.full((6, 2), np.nan), "finite"),
    (np.vstack([np.zeros((1, 2)), np.ones((5, 2))]), "row 0 is all zero"),
])
def test_responsibility_prior_validation(r, match):
    X = np.random.default_rng(0).standard_normal((6, 2))
    init = poor_start(Gaussian, K=2)
    with pytest.raises(ValueError, match=match):
        EMAlgorithm(max_iter=1).fit(X, init, responsibility_prior=r)


# -- GMM.fit(labels=...) ---------------------------------------------------------------------------

PERMUTATION = np.array([2, 0, 1])  # class j is labelled as component PERMUTATION[j]


def _partial_labels(y, every=5):
    labels = np.full(len(y), -1)
    labels[::every] = PERMUTATION[y[::every]]
    return labels


def _check_clamped_fit(gmm, X, y, labels):
    known = labels >= 0
    # the labels decide the components' order: every row follows its class's label
    np.testing.assert_array_equal(gmm.predict(X[known]), labels[known])
    np.testing.assert_array_equal(gmm.predict(X), PERMUTATION[y])
    # the reported objective is Σ log Σ_k r_ik π_k p_k(x_i) / n of the final model
    r = labels_to_responsibility_prior(labels, 3)
    with np.errstate(divide="ignore"):
        expected = np.mean(logsumexp(gmm.model_.log_joint(X) + np.log(r), axis=1))
    assert gmm.lower_bound_ == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_gmm_labels_clamp_the_components(covariance_type):
    X, y = labelled_data(5)
    labels = _partial_labels(y)
    gmm = GMM(3, covariance_type=covariance_type, init_params="random", random_state=0,
              tol=1e-6).fit(X, labels=labels)
    _check_clamped_fit(gmm, X, y, labels)


@pytest.mark.parametrize("init_params", ["kmeans++", "kmeans", "random_from_data"])
def test_gmm_labels_with_hard_initialisations(init_params):
    # whatever order the initial clusters come in (several seeds), the labels decide
    X, y = labelled_data(5)
    labels = _partial_labels(y)
    for seed in range(4):
        gmm = GMM(3, init_params=init_params, random_state=seed, tol=1e-6).fit(X, labels=labels)
        _check_clamped_fit(gmm, X, y, labels)


def test_gmm_labels_with_means_init():
    X, y = labelled_data(6)
    labels = _partial_labels(y)
    gmm = GMM(3, means_init=CENTERS, tol=1e-6).fit(X, labels=labels)
    _check_clamped_fit(gmm, X, y, labels)


def test_gmm_labels_with_weight_concentration_include_the_log_prior():
    X, y = labelled_data(7)
    labels = _partial_labels(y)
    gmm = GMM(3, init_params="random", random_state=1, weight_concentration=3.0,
              tol=1e-6).fit(X, labels=labels)
    np.testing.assert_array_equal(gmm.predict(X), PERMUTATION[y])
    r = labels_to_responsibility_prior(labels, 3)
    with np.errstate(divide="ignore"):
        clamped = np.mean(logsumexp(gmm.model_.log_joint(X) + np.log(r), axis=1))
    log_prior = Dirichlet(3.0).log_prob(gmm.weights_) / len(X)
    assert gmm.lower_bound_ == pytest.approx(clamped + log_prior, rel=1e-10)


@pytest.mark.parametrize(("labels", "exc", "match"), [
    (np.zeros(5, dtype=int), ValueError, "shape"),
    (np.full(120, 3), ValueError, "labels"),
    (np.full(120, 0.5), TypeError, "integers"),
])
def test_gmm_fit_label_validation(labels, exc, match):
    X, _ = labelled_data(8)
    with pytest.raises(exc, match=match):
        GMM(3).fit(X, labels=labels)


def test_pruning_never_strands_a_labelled_row():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-3, 1, (50, 2)), rng.normal(3, 1, (50, 2))])
    labels = np.full(100, -1)
    labels[0] = 2  # one row says it belongs to a third, otherwise unsupported component
    init = MixtureModel(weights=[0.45, 0.45, 0.1], components=[
        Gaussian(mean=[-3.0, 0.0], covariance=np.eye(2)),
        Gaussian(mean=[3.0, 0.0], covariance=np.eye(2)),
        Gaussian(mean=[0.0, 8.0], covariance=np.eye(2))])
    prior = NormalInverseWishart.ridge(0.01, 2)
    algorithm = EMAlgorithm(m_step=MAP(weights_prior=Dirichlet(-1.5), component_prior=prior),
                            max_iter=20)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = algorithm.fit(X, init,
                                   responsibility_prior=labels_to_responsibility_prior(labels, 3))
    except ValueError:
        return  # refusing clearly is acceptable; a silent -inf objective is not
    assert np.all(np.isfinite(result.history.objective))
