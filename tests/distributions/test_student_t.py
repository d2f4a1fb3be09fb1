"""StudentT against scipy.stats.multivariate_t, the latent-scale EM update, and in a mixture."""

import numpy as np
import pytest
from scipy import stats

from probmix import EMAlgorithm, MixtureModel
from probmix.distributions import GaussianStatistics, StudentT, StudentTStatistics
from probmix.distributions.covariance import FullCovariance
from probmix.init import initial_model, initial_responsibilities
from probmix.priors import CovarianceRidge, Gamma


def random_spd(d, rng):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.5 * np.eye(d)


def expected_scales(t, X):
    """E[u | x] = (ν + d) / (ν + δ(x)), from scipy-independent linear algebra."""
    r = X - t.mean
    delta = np.einsum("ij,ij->i", r @ np.linalg.inv(t.scale.matrix), r)
    return (t.dof + t.n_features) / (t.dof + delta)


@pytest.mark.parametrize("d", [1, 3])
@pytest.mark.parametrize("dof", [0.7, 3.0, 50.0])
@pytest.mark.parametrize("loc", [0.0, 1e3])
def test_log_prob_matches_scipy(d, dof, loc):
    rng = np.random.default_rng(d)
    mean, scale = loc + rng.standard_normal(d), random_spd(d, rng)
    t = StudentT(mean=mean, scale=scale, dof=dof)
    X = np.vstack([t.sample(40, rng), mean + 1e3 * rng.standard_normal((3, d))])
    expected = stats.multivariate_t(mean, scale, df=dof).logpdf(X)
    np.testing.assert_allclose(t.log_prob(X), np.atleast_1d(expected), rtol=1e-10)


def test_statistics_weigh_rows_by_their_expected_scale():
    rng = np.random.default_rng(1)
    t = StudentT(mean=[1.0, -1.0], scale=random_spd(2, rng), dof=4.0)
    X, w = t.sample(50, rng), rng.uniform(0, 2, 50)
    s = t.sufficient_statistics(X, w)
    u = expected_scales(t, X)
    reference = GaussianStatistics.of(X, w * u, FullCovariance)
    assert s.weight == pytest.approx(w.sum(), rel=1e-13)
    assert s.scaled.weight == pytest.approx(reference.weight, rel=1e-12)
    np.testing.assert_allclose(s.scaled.mean, reference.mean, rtol=1e-12)
    np.testing.assert_allclose(s.scaled.scatter, reference.scatter, rtol=1e-11)


def test_from_statistics_is_the_closed_form_update():
    # μ = Σ w u x / Σ w u,  Σ = Σ w u (x − μ)(x − μ)ᵀ / Σ w
    rng = np.random.default_rng(2)
    t = StudentT(mean=[0.0, 0.0, 0.0], scale=random_spd(3, rng), dof=2.5)
    X, w = t.sample(60, rng) + 5.0, rng.uniform(0, 2, 60)
    w[:4] = 0.0
    new = StudentT.from_statistics(t.sufficient_statistics(X, w))
    wu = w * expected_scales(t, X)
    mu = wu @ X / wu.sum()
    sigma = (X - mu).T @ ((X - mu) * wu[:, None]) / w.sum()
    np.testing.assert_allclose(new.mean, mu, rtol=1e-12)
    np.testing.assert_allclose(new.scale.matrix, sigma, rtol=1e-11)
    assert new.dof == t.dof
    ridged = StudentT.from_statistics(t.sufficient_statistics(X, w), CovarianceRidge(reg_covar=0.1))
    np.testing.assert_allclose(ridged.scale.matrix, sigma + 0.1 * np.eye(3), rtol=1e-11)


def test_fit_is_a_stationary_point_of_the_weighted_likelihood():
    rng = np.random.default_rng(3)
    truth = StudentT(mean=[2.0, -1.0], scale=[[2.0, 0.6], [0.6, 1.0]], dof=3.0)
    X, w = truth.sample(200, rng), rng.uniform(0.5, 1.5, 200)
    fitted = StudentT.fit(X, w, dof=3.0, tol=1e-14)  # Δθ² ~ Δ log-lik near the optimum
    # a fixed point of the update...
    again = StudentT.from_statistics(fitted.sufficient_statistics(X, w))
    np.testing.assert_allclose(again.mean, fitted.mean, atol=1e-6)
    np.testing.assert_allclose(again.scale.matrix, fitted.scale.matrix, atol=1e-6)
    # ...that beats its neighbours on Σ w log p(x)
    best = w @ fitted.log_prob(X)
    for j in range(2):
        for step in (-1e-3, 1e-3):
            mean = fitted.mean.copy()
            mean[j] += step
            assert best >= w @ StudentT(mean=mean, scale=fitted.scale, dof=3.0).log_prob(X)
    for step in (-1e-3, 1e-3):
        for e in (np.eye(2), np.array([[0.0, 1.0], [1.0, 0.0]])):
            scale = fitted.scale.matrix + step * e
            assert best >= w @ StudentT(mean=fitted.mean, scale=scale, dof=3.0).log_prob(X)


def test_weighted_fit_equals_duplicated_rows():
    rng = np.random.default_rng(4)
    X = StudentT(mean=[0.0, 1.0], scale=np.eye(2), dof=5.0).sample(30, rng)
    counts = rng.integers(0, 4, 30)
    a = StudentT.fit(X, counts.astype(float), dof=5.0)
    b = StudentT.fit(np.repeat(X, counts, axis=0), dof=5.0)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-8)
    np.testing.assert_allclose(a.scale.matrix, b.scale.matrix, rtol=1e-8)


def test_statistics_add_and_zero_weight_is_neutral():
    rng = np.random.default_rng(5)
    t = StudentT(mean=[0.0, 0.0], scale=np.eye(2), dof=3.0)
    X, w = t.sample(40, rng), rng.uniform(0, 2, 40)
    whole = t.sufficient_statistics(X, w)
    split = t.sufficient_statistics(X[:9], w[:9]) + t.sufficient_statistics(X[9:], w[9:])
    for name in ("weight", "log_scale", "entropy"):
        assert getattr(split, name) == pytest.approx(getattr(whole, name), rel=1e-12)
    np.testing.assert_allclose(split.scaled.mean, whole.scaled.mean, rtol=1e-12)
    np.testing.assert_allclose(split.scaled.scatter, whole.scaled.scatter, rtol=1e-12)
    assert whole + t.sufficient_statistics(X, np.zeros(40)) == whole
    other = StudentT(mean=[0.0, 0.0], scale=np.eye(2), dof=4.0).sufficient_statistics(X, w)
    with pytest.raises(ValueError, match="dof"):
        whole + other


def test_expected_log_prob_is_the_scale_augmented_bound():
    rng = np.random.default_rng(6)
    t = StudentT(mean=[0.5, -0.5], scale=random_spd(2, rng), dof=2.0)
    X, w = t.sample(50, rng), rng.uniform(0, 2, 50)
    s = t.sufficient_statistics(X, w)
    assert isinstance(s, StudentTStatistics)
    # exact under the parameters the statistics were computed with...
    assert t.expected_log_prob(s) == pytest.approx(w @ t.log_prob(X), rel=1e-11)
    # ...a lower bound under any other, raised by the update (one EM step)
    new = StudentT.from_statistics(s)
    assert t.expected_log_prob(s) < new.expected_log_prob(s) <= w @ new.log_prob(X)


def test_sample_moments():
    n, dof = 200_000, 8.0
    mean, scale = np.array([1.0, -3.0]), np.array([[2.0, 0.5], [0.5, 1.0]])
    X = StudentT(mean=mean, scale=scale, dof=dof).sample(n, np.random.default_rng(7))
    cov = dof / (dof - 2) * scale
    assert np.all(np.abs(X.mean(axis=0) - mean) <= 5 * np.sqrt(np.diag(cov) / n))
    # the sample covariance of a t has a larger standard error than a Gaussian's: 2%
    np.testing.assert_allclose(np.cov(X, rowvar=False), cov, rtol=0.02, atol=0.02)


def test_partial_updates_hold_one_parameter():
    rng = np.random.default_rng(8)
    t = StudentT(mean=[0.0, 0.0], scale=np.eye(2), dof=3.0)
    X, w = t.sample(40, rng) + 1.0, np.ones(40)
    s = t.sufficient_statistics(X, w)
    full = StudentT.from_statistics(s)
    held_mean = StudentT.from_statistics_partial(s, None, frozenset({"mean"}), t)
    held_scale = StudentT.from_statistics_partial(s, None, frozenset({"scale"}), t)
    np.testing.assert_array_equal(held_mean.mean, t.mean)
    wu = w * expected_scales(t, X)
    np.testing.assert_allclose(held_mean.scale.matrix, (X.T * wu) @ X / w.sum(), rtol=1e-11)
    np.testing.assert_allclose(held_scale.mean, full.mean, rtol=1e-12)
    np.testing.assert_array_equal(held_scale.scale.matrix, t.scale.matrix)


def test_n_parameters_excludes_the_fixed_dof():
    assert StudentT(mean=np.zeros(3), scale=np.eye(3), dof=4.0).n_parameters == 3 + 6


@pytest.mark.parametrize("make, exc, match", [
    (lambda: StudentT(mean=[0.0], scale=[[1.0]], dof=0.0), ValueError, "dof"),
    (lambda: StudentT(mean=[0.0], scale=[[1.0]], dof=np.inf), ValueError, "dof"),
    (lambda: StudentT(mean=[0.0, 0.0], scale=[[1.0]], dof=1.0), ValueError, "2"),
    (lambda: StudentT(mean=[np.nan], scale=[[1.0]], dof=1.0), ValueError, "NaN"),
    (lambda: StudentT(mean=[0.0], scale=[[-1.0]], dof=1.0), ValueError, "positive definite"),
    (lambda: StudentT.fit(np.eye(3), dof=2.0, prior=Gamma(1.0, 1.0)), TypeError, "Covariance"),
])
def test_invalid_input(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


# -- in a mixture ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_clusters():
    truth = MixtureModel(weights=[0.4, 0.6], components=[
        StudentT(mean=[100.0, 100.0], scale=np.eye(2), dof=3.0),
        StudentT(mean=[106.0, 106.0], scale=[[1.0, 0.5], [0.5, 2.0]], dof=3.0)])
    X, _ = truth.sample(400, np.random.default_rng(9))
    return X


@pytest.mark.parametrize("template", ["unit", "pooled"])
def test_mixture_from_template_instances(two_clusters, template):
    # initial_model needs instances (the statistics depend on μ, Σ): a unit template far
    # from the data and the pooled fit both start EM, which then finds both clusters.
    X = two_clusters
    start = (StudentT(mean=[0.0, 0.0], scale=np.eye(2), dof=3.0) if template == "unit"
             else StudentT.fit(X, dof=3.0))
    resp = initial_responsibilities(X, 2, "kmeans++", np.random.default_rng(0))
    init = initial_model(X, [start] * 2, resp)
    assert all(type(c) is StudentT and c.dof == 3.0 for c in init.components)
    result = EMAlgorithm(tol=1e-8, max_iter=300).fit(X, init)
    ll = result.history.log_likelihood
    assert result.converged and np.all(np.diff(ll) >= -1e-12 * np.abs(ll[1:]))
    # the bound after each M-step (with the scales) is between consecutive log-likelihoods
    after = result.history.bound_after_m_step[:-1]
    assert np.all(after >= result.history.bound[:-1] - 1e-9)
    assert np.all(after <= ll[1:] + 1e-9)
    means = sorted(tuple(c.mean) for c in result.model.components)
    np.testing.assert_allclose(means, [[100.0, 100.0], [106.0, 106.0]], atol=0.3)


def test_mixture_of_t_resists_outliers_better_than_gaussians():
    # 5% uniform outliers drag a Gaussian component's mean; the t's small E[u] discounts them.
    from probmix.distributions import Gaussian
    rng = np.random.default_rng(10)
    X = np.vstack([rng.normal([0, 0], 1, (190, 2)), rng.normal([8, 0], 1, (190, 2)),
                   rng.uniform(-40, 40, (20, 2))])
    true_means = np.array([[0.0, 0.0], [8.0, 0.0]])

    def error(start):
        resp = np.column_stack([X[:, 0] < 4, X[:, 0] >= 4]).astype(float)
        model = EMAlgorithm(tol=1e-8, max_iter=500).fit(X, initial_model(X, start, resp)).model
        means = np.array(sorted(tuple(c.mean) for c in model.components))
        return np.abs(means - true_means).max()

    t_error = error([StudentT.fit(X, dof=3.0)] * 2)
    gauss_error = error([Gaussian] * 2)
    assert t_error < 0.3 < gauss_error
