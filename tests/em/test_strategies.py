"""E-step and M-step strategies: what each computes, what it guarantees, pruning and fixed
parameters.

E-steps are checked on a posterior against their formulas; M-steps against the closed-form
(constrained) maximisers computed here from the responsibilities; pruning and fixed
parameters through whole EM runs, whose bookkeeping is compared with the models they keep.
"""

import warnings

import numpy as np
import pytest
from scipy.special import logsumexp, softmax

from probmix import (
    GMM,
    ConvergenceWarning,
    DegenerateComponentWarning,
    EMAlgorithm,
    MixtureModel,
    ObjectiveDecreaseWarning,
)
from probmix.distributions import (
    DiagonalNormal,
    Distribution,
    Gaussian,
    SphericalNormal,
    TiedNormal,
)
from probmix.em import (
    MAP,
    AnnealedEStep,
    HardEStep,
    MaximumLikelihood,
    SoftEStep,
    StochasticEStep,
)
from probmix.init import initial_model, initial_responsibilities
from probmix.priors import CovarianceRidge, Dirichlet, NormalInverseWishart

FAMILIES = (Gaussian, DiagonalNormal, SphericalNormal, TiedNormal)
CENTERS = np.array([[-8.0, 0.0], [8.0, 0.0], [0.0, 10.0]])


def three_clusters(seed, n_per=100):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(c, 1.0, (n_per, 2)) for c in CENTERS])


def overlapping(seed=0, n=120):
    """Two overlapping clusters: posteriors far from one-hot, so the E-steps differ."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal([-1.0, 0.0], 1.0, (n // 2, 2)),
                           rng.normal([1.0, 0.5], 1.0, (n - n // 2, 2))])


def start(family=Gaussian, means=((-0.5, 0.0), (0.5, 0.0)), weights=None, scale=2.0):
    """A start with the given means and a common isotropic covariance of ``scale``."""
    d = len(means[0])
    cov = {DiagonalNormal: np.full(d, scale), SphericalNormal: scale}.get(family,
                                                                        scale * np.eye(d))
    K = len(means)
    return MixtureModel(weights=np.full(K, 1 / K) if weights is None else weights,
                        components=[family(mean=m, covariance=cov) for m in means])


def run(X, init, *, e_step=None, m_step=None, seed=None, **kwargs):
    """EM keeping every iterate (unless told otherwise), ConvergenceWarning silenced."""
    algorithm = EMAlgorithm(e_step=e_step or SoftEStep(), m_step=m_step or MaximumLikelihood(),
                            **{"keep_models": True, **kwargs})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return algorithm.fit(X, init, random_state=seed)


def restrict(family, matrix):
    if family is DiagonalNormal:
        return np.diag(np.diag(matrix))
    if family is SphericalNormal:
        return np.trace(matrix) / len(matrix) * np.eye(len(matrix))
    return matrix


def scatter_about(X, w, point):
    r = X - point
    return (w[:, None] * r).T @ r


# -- E-steps on one posterior ------------------------------------------------------------------

@pytest.fixture(scope="module")
def posterior():
    X = overlapping()
    model = start(weights=[0.3, 0.7], scale=1.5)
    return model, X, model.posterior(X)


def test_soft_e_step_is_the_posterior(posterior):
    model, X, post = posterior
    q, obj = SoftEStep()(post, iteration=0, stage=0, rng=np.random.default_rng(0))
    np.testing.assert_allclose(q, softmax(post.log_joint, axis=1), rtol=1e-12)
    np.testing.assert_allclose(obj, model.log_prob(X), rtol=1e-12)


def test_hard_e_step_is_one_hot_at_the_argmax(posterior):
    _, _, post = posterior
    q, obj = HardEStep()(post, iteration=0, stage=0, rng=np.random.default_rng(0))
    labels = np.argmax(post.log_joint, axis=1)
    np.testing.assert_array_equal(q, np.eye(2)[labels])
    # the classification log-likelihood of each row: max_k log π_k p_k(x_i)
    np.testing.assert_array_equal(obj, np.max(post.log_joint, axis=1))


def test_stochastic_e_step_samples_the_posterior():
    X = np.array([[0.0, 0.0], [0.3, 0.1], [-5.0, 0.0]])
    post = start(weights=[0.4, 0.6], scale=1.0).posterior(X)
    p = np.exp(post.log_resp)
    rng = np.random.default_rng(7)
    draws = 4000
    counts = np.zeros_like(p)
    for t in range(draws):
        q, obj = StochasticEStep()(post, iteration=t, stage=0, rng=rng)
        assert np.all(q.sum(axis=1) == 1.0) and np.all((q == 0) | (q == 1))
        counts += q
    np.testing.assert_array_equal(obj, post.log_evidence)
    # binomial frequencies within 5 standard errors of the posterior
    se = np.sqrt(p * (1 - p) / draws)
    assert np.all(np.abs(counts / draws - p) <= 5 * se + 1e-12), (counts / draws, p)


@pytest.mark.parametrize("beta", [0.2, 0.5, 1.0])
def test_annealed_e_step_tempers_the_posterior(posterior, beta):
    _, _, post = posterior
    betas = (beta,) if beta == 1.0 else (beta, 1.0)
    q, obj = AnnealedEStep(betas=betas)(post, iteration=0, stage=0,
                                        rng=np.random.default_rng(0))
    # q ∝ (π_k p_k)^β; objective (1/β) log Σ_k (π_k p_k)^β, the maximised free energy
    np.testing.assert_allclose(q, softmax(beta * post.log_joint, axis=1), rtol=1e-12)
    np.testing.assert_allclose(obj, logsumexp(beta * post.log_joint, axis=1) / beta,
                               rtol=1e-12)
    if beta < 1:  # flatter than the posterior
        assert np.all(np.max(q, axis=1) <= np.max(np.exp(post.log_resp), axis=1) + 1e-15)


def test_annealed_schedule_validation():
    assert AnnealedEStep(betas=(0.1, 0.5)).betas == (0.1, 0.5, 1.0)  # ends at the posterior
    assert AnnealedEStep(betas=0.3).n_stages == 2
    assert AnnealedEStep().n_stages == 5 and AnnealedEStep().betas[-1] == 1.0
    for bad in [(0.5, 0.2), (0.0, 1.0), (0.5, 1.5), (0.3, 0.3), (), (-0.1,)]:
        with pytest.raises(ValueError, match="betas"):
            AnnealedEStep(betas=bad)


def test_declared_objectives():
    assert SoftEStep.monotone and HardEStep.monotone and AnnealedEStep.monotone
    assert not StochasticEStep.monotone
    assert "classification" in HardEStep.objective_name
    assert SoftEStep().n_stages == 1


# -- E-steps in EM --------------------------------------------------------------------------------

def test_hard_em_objective_is_the_classification_log_likelihood():
    X = overlapping(1)
    prior = NormalInverseWishart.ridge(0.01, 2)
    m_step = MAP(component_prior=prior)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ObjectiveDecreaseWarning)
        result = run(X, start(), e_step=HardEStep(), m_step=m_step, tol=0.0, max_iter=50)
    h = result.history
    for r in h:
        lj = r.model.log_joint(X)
        log_prior = r.model.components_log_prior(prior)
        assert r.objective == pytest.approx(np.mean(np.max(lj, axis=1)) + log_prior / len(X),
                                            rel=1e-12)
        # q one-hot: the bound is the classification log-likelihood without the prior
        assert r.bound == pytest.approx(np.mean(np.max(lj, axis=1)), rel=1e-12)
        assert r.kl == pytest.approx(r.log_likelihood - r.bound, abs=1e-12)
    assert np.all(np.diff(h.objective) >= -1e-12)
    # CEM reaches a fixed partition: the last M-steps change nothing
    assert h.objective[-1] == h.objective[-10]


def test_hard_em_converges_to_a_fixed_partition():
    X = overlapping(2)
    m_step = MAP(component_prior=NormalInverseWishart.ridge(0.01, 2))
    result = run(X, start(), e_step=HardEStep(), m_step=m_step, tol=1e-12, max_iter=200)
    assert result.converged
    labels = np.argmax(result.model.log_joint(X), axis=1)
    # the final model is the M-step of its own partition
    refit = m_step(result.model.component_statistics(X, np.eye(2)[labels]), result.model)
    np.testing.assert_allclose(refit.weights, result.model.weights, rtol=1e-12)
    for a, b in zip(refit.components, result.model.components):
        np.testing.assert_allclose(a.mean, b.mean, rtol=1e-10)


def _stochastic_fit(X, seed):
    return run(X, start(), e_step=StochasticEStep(),
               m_step=MAP(component_prior=NormalInverseWishart.ridge(0.01, 2)),
               tol=0.0, max_iter=25, seed=seed)


def test_stochastic_em_is_reproducible_and_depends_on_the_seed():
    X = overlapping(3)
    a, b, c = _stochastic_fit(X, 11), _stochastic_fit(X, 11), _stochastic_fit(X, 12)
    np.testing.assert_array_equal(a.history.objective, b.history.objective)
    for ma, mb in zip(a.model.components, b.model.components):
        np.testing.assert_array_equal(ma.mean, mb.mean)
        np.testing.assert_array_equal(ma.covariance.matrix, mb.covariance.matrix)
    assert not np.array_equal(a.history.objective, c.history.objective)


def test_stochastic_em_never_warns_about_a_decrease():
    X = overlapping(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ObjectiveDecreaseWarning)
        result = _stochastic_fit(X, 11)
    ll = result.history.log_likelihood
    assert np.any(np.diff(ll) < -1e-6)  # the trace really goes down somewhere
    # the reported objective is the log-likelihood (plus the log-prior)
    np.testing.assert_allclose(result.history.objective,
                               ll + result.history.log_prior, rtol=1e-12)


def test_stochastic_em_uses_the_fit_generator():
    # a Generator passed in is advanced by the fit: the E-step draws from it
    X = overlapping(3)
    rng = np.random.default_rng(5)
    before = rng.bit_generator.state
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        EMAlgorithm(e_step=StochasticEStep(), m_step=MAP(
            component_prior=NormalInverseWishart.ridge(0.01, 2)), max_iter=2, tol=0.0).fit(
            X, start(), random_state=rng)
    assert rng.bit_generator.state != before


def test_annealed_em_runs_every_stage_and_ends_on_the_log_likelihood():
    X = overlapping(4)
    e_step = AnnealedEStep(betas=(0.25, 0.5, 1.0))
    result = run(X, start(), e_step=e_step, tol=1e-6, max_iter=500)
    assert result.converged
    h = result.history
    stages = h.stage
    assert np.all(np.diff(stages) >= 0)
    assert set(stages) == {0, 1, 2}
    for r in h:  # the objective is the free energy at the record's β
        beta = e_step.betas[r.stage]
        lj = r.model.log_joint(X)
        assert r.objective == pytest.approx(np.mean(logsumexp(beta * lj, axis=1)) / beta,
                                            rel=1e-12)
    final = stages == 2
    np.testing.assert_allclose(h.objective[final], h.log_likelihood[final], rtol=1e-12)
    # a stage ends only when its objective stopped changing
    for t in np.flatnonzero(np.diff(stages) > 0) + 1:
        assert abs(h.objective[t - 1] - h.objective[t - 2]) < 1e-6
    for s in range(3):
        assert np.all(np.diff(h.objective[stages == s]) >= -1e-12)


# -- M-steps: weights ---------------------------------------------------------------------------

def _stats_with_masses(masses, seed=0):
    """Mixture statistics whose responsibility masses are exactly ``masses`` (hand-made q)."""
    K = len(masses)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((4 * K, 2)) + np.repeat(np.arange(K), 4)[:, None] * 5.0
    q = np.zeros((4 * K, K))
    for k, m in enumerate(masses):
        q[4 * k:4 * k + 4, k] = m / 4
    model = start(means=[tuple(c) for c in X[::4]])
    return model, model.component_statistics(X, q)


def test_maximum_likelihood_weights_are_the_mass_fractions():
    model, stats = _stats_with_masses([6.0, 2.5, 1.5])
    np.testing.assert_allclose(MaximumLikelihood()(stats, model).weights, [0.6, 0.25, 0.15],
                               rtol=1e-14)


@pytest.mark.parametrize(("alpha", "masses", "expected"), [
    (2.0, [6.0, 2.5, 1.5], [7 / 13, 3.5 / 13, 2.5 / 13]),
    ([3.0, 1.0, 0.5], [6.0, 2.5, 1.5], [8 / 11.5, 2.5 / 11.5, 1 / 11.5]),
    (0.1, [100.0, 0.91, 0.89, 50.0], [99.1 / 148.21, 0.01 / 148.21, 0.0, 49.1 / 148.21]),
])
def test_map_weights_closed_form(alpha, masses, expected):
    model, stats = _stats_with_masses(masses)
    new = MAP(weights_prior=Dirichlet(alpha))(stats, model)
    np.testing.assert_allclose(new.weights, expected, rtol=1e-12, atol=0)


def test_map_without_weights_prior_does_not_prune():
    assert not MAP().prunes
    assert MAP(weights_prior=Dirichlet(1.0)).prunes
    assert not MaximumLikelihood().prunes
    with pytest.raises(TypeError, match="Dirichlet"):
        MAP(weights_prior=0.5)


@pytest.mark.parametrize("family", FAMILIES)
def test_map_with_uniform_dirichlet_is_maximum_likelihood_exactly(family):
    X = three_clusters(0, 40)
    init = start(family, means=((-4.0, 0.0), (4.0, 1.0), (0.0, 4.0)), scale=4.0)
    ml = run(X, init, m_step=MaximumLikelihood(), tol=0.0, max_iter=15)
    mp = run(X, init, m_step=MAP(weights_prior=Dirichlet(1.0)), tol=0.0, max_iter=15)
    for a, b in zip(ml.history, mp.history):
        np.testing.assert_array_equal(a.model.weights, b.model.weights)
        for ca, cb in zip(a.model.components, b.model.components):
            np.testing.assert_array_equal(ca.mean, cb.mean)
            np.testing.assert_array_equal(ca.covariance.compact, cb.covariance.compact)
    np.testing.assert_array_equal(ml.history.log_likelihood, mp.history.log_likelihood)
    # the objectives differ by the uniform prior's constant log Γ(K)
    np.testing.assert_allclose(mp.history.objective - ml.history.objective,
                               np.log(2.0) / len(X), rtol=1e-9)


def test_map_objective_is_log_likelihood_plus_log_prior():
    X = three_clusters(1, 30)
    weights_prior = Dirichlet([2.0, 3.0, 1.5])
    comp_prior = NormalInverseWishart(scale=0.5 * np.eye(2), dof=3.0, mean=[0.0, 0.0],
                                      kappa=0.1)
    init = start(means=((-4.0, 0.0), (4.0, 1.0), (0.0, 4.0)), scale=4.0)
    result = run(X, init, m_step=MAP(weights_prior=weights_prior, component_prior=comp_prior),
                 tol=0.0, max_iter=10)
    for r in result.history:
        log_prior = (weights_prior.log_prob(r.model.weights)
                     + sum(comp_prior.log_prob(c.mean, c.covariance.compact, "full")
                           for c in r.model.components))
        assert r.log_prior == pytest.approx(log_prior / len(X), rel=1e-12)
        assert r.log_likelihood == pytest.approx(np.mean(r.model.log_prob(X)), rel=1e-12)
        assert r.objective == pytest.approx(r.log_likelihood + r.log_prior, rel=1e-12)
    assert np.all(np.diff(result.history.objective) >= -1e-12)


# -- pruning --------------------------------------------------------------------------------------

def far_start():
    """Component 0 sits far from all data: it gets no responsibility mass."""
    return start(means=((100.0, 100.0), (-3.0, 0.0), (3.0, 0.0)), scale=1.0)


def two_clusters():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal([-3, 0], 1.0, (60, 2)), rng.normal([3, 0], 1.0, (60, 2))])


def test_a_component_far_from_the_data_is_pruned_in_the_first_iteration():
    X = two_clusters()
    alpha = [0.5, 2.0, 3.0]
    m_step = MAP(weights_prior=Dirichlet(alpha))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateComponentWarning)  # pruned, not kept at 0
        result = run(X, far_start(), m_step=m_step, tol=1e-8, max_iter=100)
    h = result.history
    assert h.pruned == [(1, (0,))]
    assert h[1].pruned == (0,) and all(r.pruned == () for r in h if r.iteration != 1)
    np.testing.assert_array_equal(result.component_ids, [1, 2])
    np.testing.assert_array_equal(h.n_components, [3] + [2] * (len(h) - 1))
    assert result.model.n_components == 2
    assert all(r.model.n_components == 2 for r in h[1:])
    # after pruning, the prior is restricted to the survivors' concentrations
    for r in h[1:]:
        assert r.log_prior == pytest.approx(
            Dirichlet([2.0, 3.0]).log_prob(r.model.weights) / len(X), rel=1e-12)
    assert np.all(np.diff(h.objective[1:]) >= -1e-12)
    assert result.converged


def test_maximum_likelihood_keeps_an_empty_component_at_weight_zero():
    X = two_clusters()
    with pytest.warns(DegenerateComponentWarning, match="component"):
        result = run(X, far_start(), m_step=MaximumLikelihood(), tol=1e-8, max_iter=100)
    assert result.history.pruned == []
    np.testing.assert_array_equal(result.component_ids, [0, 1, 2])
    assert result.model.weights[0] == 0.0


def test_gmm_weight_concentration_prunes_exactly_the_components_below_one_minus_alpha():
    """The issue's GMM(weight_concentration=0.1) cannot prune a cluster of ordinary size:
    π_k ∝ max(N_k + α − 1, 0) only zeroes components with N_k ≤ 1 − α = 0.9. Two tiny far
    clusters of effective size 0.5 and 1.0 (through sample weights): the first is pruned at
    once, the second survives with weight ∝ 0.1."""
    rng = np.random.default_rng(1)
    X = three_clusters(1)
    small_a = rng.normal([20.0, 20.0], 1.0, (5, 2))
    small_b = rng.normal([-20.0, 20.0], 1.0, (5, 2))
    Xw = np.vstack([X, small_a, small_b])
    sw = np.r_[np.ones(len(X)), np.full(5, 0.1), np.full(5, 0.2)]
    gmm = GMM(5, weight_concentration=0.1, tol=1e-6, max_iter=200,
              means_init=np.vstack([CENTERS, [20.0, 20.0], [-20.0, 20.0]])).fit(
        Xw, sample_weight=sw)
    assert gmm.history_.pruned == [(1, (3,))]
    assert gmm.n_components_ == 4
    masses = (gmm.predict_proba(Xw) * sw[:, None]).sum(axis=0)
    assert np.all(masses > 0.9)
    # the survivor of mass 1.0 keeps the MAP weight (N + α − 1) / Σ (N + α − 1)
    np.testing.assert_allclose(gmm.weights_[3], (masses[3] - 0.9) / (sw.sum() - 4 * 0.9),
                               rtol=1e-6)


def _assert_fitted_shapes(gmm, X, K):
    d = X.shape[1]
    assert gmm.n_components_ == K == gmm.model_.n_components
    assert gmm.weights_.shape == (K,) and gmm.means_.shape == (K, d)
    assert gmm.covariances_.shape == gmm.precisions_.shape == (K, d, d)
    assert gmm.predict_proba(X).shape == (len(X), K)
    labels = gmm.predict(X)
    assert labels.min() >= 0 and labels.max() < K


@pytest.mark.parametrize("random_state", [1, 2, 3])
def test_gmm_mml_finds_three_clusters_from_ten(random_state):
    X = three_clusters(1)
    gmm = GMM(10, weight_concentration="mml", tol=1e-5, max_iter=500,
              random_state=random_state).fit(X)
    _assert_fitted_shapes(gmm, X, 3)
    assert set(gmm.predict(X)) == {0, 1, 2}
    # each true centre has one fitted mean next to it
    dist = np.linalg.norm(gmm.means_[:, None, :] - CENTERS[None], axis=2)
    assert np.all(dist.min(axis=0) < 0.5)
    # the history names the seven pruned components, each once, by its initial index
    pruned = [k for _, ks in gmm.history_.pruned for k in ks]
    assert len(pruned) == len(set(pruned)) == 7 and set(pruned) <= set(range(10))
    assert gmm.history_.n_components[0] == 10 and gmm.history_.n_components[-1] == 3


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_map_with_an_mml_prior_and_niw_ridge_finds_three_clusters(seed):
    X = three_clusters(3)
    prior = NormalInverseWishart.ridge(0.01, 2)
    resp = initial_responsibilities(X, 10, "kmeans++", np.random.default_rng(seed))
    init = initial_model(X, [Gaussian] * 10, resp, prior=prior)
    result = run(X, init, m_step=MAP(weights_prior=Dirichlet(-1.5), component_prior=prior),
                 tol=1e-5, max_iter=500, keep_models=False)
    assert result.model.n_components == 3
    pruned = [k for _, ks in result.history.pruned for k in ks]
    assert sorted(pruned + list(result.component_ids)) == list(range(10))
    # between prunings the log-posterior never decreases
    h = result.history
    steps = np.array([r.pruned == () for r in h])[1:]
    assert np.all(np.diff(h.objective)[steps] >= -1e-9 * np.abs(h.objective[:-1][steps]))


@pytest.mark.parametrize(("covariance_type", "T"), [
    ("full", 2 + 3), ("diag", 2 + 2), ("spherical", 2 + 1), ("tied", 2 + 3 / 4)])
def test_gmm_mml_uses_alpha_one_minus_half_the_parameters(covariance_type, T):
    X = three_clusters(2, 40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gmm = GMM(4, covariance_type=covariance_type, weight_concentration="mml", max_iter=3,
                  random_state=0).fit(X)
    # with a ridge (not a prior) the log-prior is the Dirichlet's alone
    alpha = 1.0 - T / 2
    expected = Dirichlet(alpha).log_prob(gmm.weights_) / len(X)
    assert gmm.history_.log_prior[-1] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("value", ["bogus", "MML", "", np.nan, np.inf, -np.inf])
def test_gmm_weight_concentration_validation(value):
    with pytest.raises(ValueError, match="weight_concentration"):
        GMM(3, weight_concentration=value)
    gmm = GMM(3)
    with pytest.raises(ValueError, match="weight_concentration"):
        gmm.set_params(weight_concentration=value)


@pytest.mark.parametrize("value", [[0.5, 0.5], object()])
def test_gmm_weight_concentration_rejects_non_scalars(value):
    with pytest.raises(TypeError, match="weight_concentration"):
        GMM(3, weight_concentration=value)


def test_gmm_without_weight_concentration_keeps_every_component():
    X = three_clusters(1)
    gmm = GMM(5, random_state=0).fit(X)
    _assert_fitted_shapes(gmm, X, 5)
    assert gmm.history_.pruned == []


# -- fixed parameters ----------------------------------------------------------------------------

def _one_step_setup(family, seed=0):
    X = overlapping(seed, 60)
    model = start(family, scale=1.5)
    q = model.responsibilities(X)
    return X, model, q, model.component_statistics(X, q)


@pytest.mark.parametrize("family", [Gaussian, DiagonalNormal, SphericalNormal])
@pytest.mark.parametrize("reg", [0.0, 0.05])
def test_frozen_mean_covariance_is_the_scatter_about_it(family, reg):
    X, model, q, stats = _one_step_setup(family)
    prior = CovarianceRidge(reg_covar=reg) if reg else None
    new = MaximumLikelihood(component_prior=prior, fixed_components={0: "mean"})(stats, model)
    held = model.components[0].mean
    np.testing.assert_array_equal(new.components[0].mean, held)
    expected = restrict(family, scatter_about(X, q[:, 0], held) / q[:, 0].sum())
    np.testing.assert_allclose(new.components[0].covariance.matrix,
                               expected + reg * np.eye(2), rtol=1e-12)
    # the free component is the ordinary update
    free = family.from_statistics(stats.components[1], prior)
    np.testing.assert_allclose(new.components[1].covariance.matrix, free.covariance.matrix,
                               rtol=1e-14)


def test_tied_frozen_mean_pools_the_scatter_about_it():
    X, model, q, stats = _one_step_setup(TiedNormal)
    new = MaximumLikelihood(fixed_components={0: "mean"})(stats, model)
    mu0 = model.components[0].mean
    mu1 = np.average(X, axis=0, weights=q[:, 1])
    np.testing.assert_array_equal(new.components[0].mean, mu0)
    np.testing.assert_allclose(new.components[1].mean, mu1, rtol=1e-12)
    pooled = (scatter_about(X, q[:, 0], mu0) + scatter_about(X, q[:, 1], mu1)) / len(X)
    for c in new.components:
        np.testing.assert_allclose(c.covariance.matrix, pooled, rtol=1e-12)


@pytest.mark.parametrize("family", [Gaussian, DiagonalNormal, SphericalNormal])
def test_frozen_mean_over_a_whole_fit(family):
    X = overlapping(5)
    init = start(family, means=((-3.0, 0.0), (1.0, 0.5)))
    result = run(X, init, m_step=MaximumLikelihood(fixed_components={0: "mean"}), tol=0.0,
                 max_iter=20)
    for r in result.history:
        np.testing.assert_array_equal(r.model.components[0].mean, [-3.0, 0.0])
    # the constrained update is exact: the log-likelihood still never decreases
    assert np.all(np.diff(result.history.log_likelihood) >= -1e-12)


@pytest.mark.parametrize("family", FAMILIES)
def test_frozen_covariance_updates_only_the_mean(family):
    X, model, q, stats = _one_step_setup(family)
    new = MaximumLikelihood(fixed_components={k: "covariance" for k in range(2)})(stats, model)
    for k in range(2):
        np.testing.assert_array_equal(new.components[k].covariance.compact,
                                      model.components[k].covariance.compact)
        np.testing.assert_allclose(new.components[k].mean,
                                   np.average(X, axis=0, weights=q[:, k]), rtol=1e-12)
    np.testing.assert_allclose(new.weights, q.sum(axis=0) / len(X), rtol=1e-12)


def test_frozen_covariance_with_a_prior_uses_the_posterior_mean():
    X, model, q, stats = _one_step_setup(Gaussian)
    prior = NormalInverseWishart(scale=np.eye(2), dof=3.0, mean=[5.0, 5.0], kappa=2.0)
    new = MAP(component_prior=prior, fixed_components={0: "covariance"})(stats, model)
    n0 = q[:, 0].sum()
    m0 = np.average(X, axis=0, weights=q[:, 0])
    np.testing.assert_allclose(new.components[0].mean, (n0 * m0 + 2.0 * prior.mean) / (n0 + 2),
                               rtol=1e-12)
    np.testing.assert_array_equal(new.components[0].covariance.matrix,
                                  model.components[0].covariance.matrix)


def test_fixed_weights_true_keeps_every_weight():
    X = overlapping(6)
    init = start(weights=[0.2, 0.8])
    for m_step in (MaximumLikelihood(fixed_weights=True),
                   MAP(weights_prior=Dirichlet(0.5), fixed_weights=True)):
        result = run(X, init, m_step=m_step, tol=0.0, max_iter=10)
        for r in result.history:
            np.testing.assert_array_equal(r.model.weights, [0.2, 0.8])
        assert not np.array_equal(result.model.components[0].mean, init.components[0].mean)


def test_fixed_weights_for_a_subset_renormalise_the_free_ones():
    model, stats = _stats_with_masses([6.0, 2.5, 1.5])
    model = MixtureModel(weights=[0.5, 0.3, 0.2], components=model.components)
    new = MaximumLikelihood(fixed_weights=[1])(stats, model)
    # the free weights share 1 − 0.3 in proportion to their masses
    np.testing.assert_allclose(new.weights, [0.7 * 6 / 7.5, 0.3, 0.7 * 1.5 / 7.5], rtol=1e-14)
    new = MAP(weights_prior=Dirichlet(2.0), fixed_weights=[0])(stats, model)
    # ... or to their Dirichlet mode N_k + α − 1
    np.testing.assert_allclose(new.weights, [0.5, 0.5 * 3.5 / 6, 0.5 * 2.5 / 6], rtol=1e-14)


def test_fixed_weights_over_a_fit_keep_the_fixed_mass():
    X = three_clusters(4, 30)
    init = start(means=((-4.0, 0.0), (4.0, 1.0), (0.0, 4.0)), weights=[0.1, 0.45, 0.45],
                 scale=4.0)
    result = run(X, init, m_step=MaximumLikelihood(fixed_weights={0}), tol=0.0, max_iter=10)
    for r in result.history:
        assert r.model.weights[0] == 0.1
        assert r.model.weights.sum() == pytest.approx(1.0, abs=1e-14)
    assert np.all(np.diff(result.history.log_likelihood) >= -1e-12)


def test_fixed_component_all_is_kept_as_it_is():
    X = overlapping(7)
    init = start()
    result = run(X, init, m_step=MaximumLikelihood(fixed_components={1: "all"}), tol=0.0,
                 max_iter=8)
    for r in result.history:
        assert r.model.components[1] == init.components[1]
    assert r.model.components[0] != init.components[0]


def test_tied_covariance_fixed_for_some_components_only_is_refused():
    _, model, _, stats = _one_step_setup(TiedNormal)
    with pytest.raises(ValueError, match="shares one covariance"):
        MaximumLikelihood(fixed_components={0: "covariance"})(stats, model)
    with pytest.raises(ValueError, match="shares one covariance"):
        MaximumLikelihood(fixed_components={0: "all"})(stats, model)
    # held for all: the shared covariance stays, the means move
    new = MaximumLikelihood(fixed_components={0: "covariance", 1: "covariance"})(stats, model)
    for c, old in zip(new.components, model.components):
        np.testing.assert_array_equal(c.covariance.matrix, old.covariance.matrix)


class _NoPartialNormal(Gaussian):
    """A family that does not implement ``from_statistics_partial``."""

    from_statistics_partial = classmethod(Distribution.from_statistics_partial.__func__)


def test_a_family_without_a_partial_update_refuses_to_fix_a_parameter():
    X = overlapping(8, 60)
    model = MixtureModel(weights=[0.5, 0.5], components=[
        _NoPartialNormal(mean=[-1.0, 0.0], covariance=np.eye(2)),
        _NoPartialNormal(mean=[1.0, 0.0], covariance=np.eye(2))])
    stats = model.component_statistics(X, model.responsibilities(X))
    with pytest.raises(ValueError, match=r"no closed-form update with \['mean'\] held fixed"):
        MaximumLikelihood(fixed_components={0: "mean"})(stats, model)
    # holding the whole component is always possible
    new = MaximumLikelihood(fixed_components={0: "all"})(stats, model)
    assert new.components[0] == model.components[0]


@pytest.mark.parametrize(("family", "held"), [
    (Gaussian, {"bogus"}),
    (Gaussian, {"mean", "weights"}),
    (Gaussian, {"mean", "covariance", "bogus"}),  # a superset of the names is not "all"
    (TiedNormal, {"bogus"}),
    (TiedNormal, {"weights"}),
])
def test_unknown_parameter_names_are_never_silently_skipped(family, held):
    _, model, _, stats = _one_step_setup(family)
    with pytest.raises(ValueError, match=r"bogus|weights"):
        MaximumLikelihood(fixed_components={0: held})(stats, model)


def test_fixed_indices_outside_the_model_are_refused():
    X = overlapping(9)
    with pytest.raises(ValueError, match="5"):
        run(X, start(), m_step=MaximumLikelihood(fixed_components={5: "all"}), max_iter=3)


def test_fixed_parameter_options_validation():
    with pytest.raises(TypeError, match="fixed_weights"):
        MaximumLikelihood(fixed_weights=0.5)
    with pytest.raises(TypeError, match="fixed_components"):
        MAP(fixed_components=[0, 1])
    with pytest.raises(ValueError, match=r"fixed_components\[0\]"):
        MaximumLikelihood(fixed_components={0: []})
    with pytest.raises(ValueError, match=r"fixed_components\[1\]"):
        MaximumLikelihood(fixed_components={1: [3]})
