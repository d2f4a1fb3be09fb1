"""IndependentComponents: products over column blocks, against their parts' scipy twins,
in a mixture of mixed-type data, and with joint hooks (a tied block) across components."""

import attrs
import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import adjusted_rand_score

from probmix import Distribution, EMAlgorithm, MixtureModel
from probmix.distributions import (
    Categorical,
    Gaussian,
    IndependentComponents,
    IndependentStatistics,
    Poisson,
    StudentT,
    TiedNormal,
)
from probmix.em import MAP, MaximumLikelihood
from probmix.init import initial_model, initial_responsibilities
from probmix.priors import CovarianceRidge, Dirichlet, Gamma, NormalInverseWishart

# columns deliberately interleaved: Gaussian on (0, 3), Poisson on 1, Categorical on 2
COLUMNS = [(0, 3), 1, 2]
FAMILIES = [Gaussian, Poisson, Categorical]


def product(mean=(0.0, 1.0), cov=((2.0, 0.3), (0.3, 1.0)), rate=4.0, probs=(0.2, 0.5, 0.3)):
    return IndependentComponents(
        parts=[Gaussian(mean=mean, covariance=cov), Poisson(rate=[rate]),
               Categorical(probabilities=[probs])], columns=COLUMNS)


def data(n, rng, model=None):
    return (model or product()).sample(n, rng)


def test_log_prob_is_the_sum_of_the_scipy_twins():
    model = product()
    X = data(50, np.random.default_rng(0))
    expected = (stats.multivariate_normal([0.0, 1.0], [[2.0, 0.3], [0.3, 1.0]]).logpdf(X[:, [0, 3]])
                + stats.poisson.logpmf(X[:, 1], 4.0)
                + np.log(np.array([0.2, 0.5, 0.3]))[X[:, 2].astype(int)])
    np.testing.assert_allclose(model.log_prob(X), expected, rtol=1e-10)


def test_sample_puts_each_part_in_its_columns():
    X = data(50_000, np.random.default_rng(1))
    assert X.shape == (50_000, 4)
    assert np.all(X[:, 1] == np.round(X[:, 1])) and set(np.unique(X[:, 2])) <= {0.0, 1.0, 2.0}
    n = len(X)
    np.testing.assert_allclose(X[:, [0, 3]].mean(axis=0), [0.0, 1.0], atol=5 * np.sqrt(2 / n))
    assert abs(X[:, 1].mean() - 4.0) <= 5 * np.sqrt(4.0 / n)
    freq = np.bincount(X[:, 2].astype(int)) / n
    np.testing.assert_allclose(freq, [0.2, 0.5, 0.3], atol=5 * np.sqrt(0.25 / n))


def test_from_statistics_is_each_part_fitted_on_its_columns():
    rng = np.random.default_rng(2)
    X, w = data(200, rng), rng.uniform(0, 2, 200)
    fitted = IndependentComponents.from_statistics(product().sufficient_statistics(X, w))
    assert fitted.columns == ((0, 3), (1,), (2,))
    assert fitted.parts[0] == Gaussian.fit(X[:, [0, 3]], w)
    # (a column view and a copy may sum in another order: equal to round-off)
    np.testing.assert_allclose(fitted.parts[1].rate, Poisson.fit(X[:, [1]], w).rate, rtol=1e-13)
    np.testing.assert_allclose(fitted.parts[2].probabilities[0],
                               Categorical.fit(X[:, [2]], w).probabilities[0], rtol=1e-13)
    # the classmethod fit takes families, for a start without parameters
    again = IndependentComponents.fit(X, w, parts=FAMILIES, columns=COLUMNS)
    np.testing.assert_allclose(again.log_prob(X), fitted.log_prob(X), rtol=1e-13)


def test_fit_refines_an_instance_part():
    # a StudentT block needs an instance (its statistics depend on μ, Σ)
    rng = np.random.default_rng(3)
    t = StudentT(mean=[0.0, 0.0], scale=np.eye(2), dof=4.0)
    X = np.column_stack([t.sample(300, rng), rng.poisson(3.0, 300)])
    fitted = IndependentComponents.fit(X, parts=[t, Poisson], columns=[(0, 1), 2])
    np.testing.assert_allclose(fitted.parts[0].mean, StudentT.fit(X[:, :2], dof=4.0).mean,
                               atol=1e-6)


def test_map_uses_one_prior_per_part():
    rng = np.random.default_rng(4)
    X, w = data(30, rng), rng.uniform(0, 2, 30)
    priors = (NormalInverseWishart(scale=1.0, dof=3.0), Gamma(2.0, 1.0), Dirichlet(3.0))
    fitted = IndependentComponents.fit(X, w, priors, parts=FAMILIES, columns=COLUMNS)
    assert fitted.parts[1] == Poisson.fit(X[:, [1]], w, prior=priors[1])
    assert fitted.parts[2] == Categorical.fit(X[:, [2]], w, prior=priors[2])
    expected = sum(p.log_prior(q) for p, q in zip(fitted.parts, priors))
    assert fitted.log_prior(priors) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="2 priors for 3 parts"):
        fitted.log_prior(priors[:2])
    with pytest.raises(TypeError, match="one prior per part"):
        fitted.log_prior(Gamma(1.0, 1.0))


def test_statistics_add_and_zero_weight_is_neutral():
    rng = np.random.default_rng(5)
    X, w = data(60, rng), rng.uniform(0, 2, 60)
    model = product()
    whole = model.sufficient_statistics(X, w)
    split = model.sufficient_statistics(X[:17], w[:17]) + model.sufficient_statistics(X[17:],
                                                                                      w[17:])
    assert isinstance(split, IndependentStatistics)
    assert split.total_weight == pytest.approx(whole.total_weight, rel=1e-13)
    assert IndependentComponents.from_statistics(split).log_prob(X) == pytest.approx(
        IndependentComponents.from_statistics(whole).log_prob(X), rel=1e-12)
    zero = model.sufficient_statistics(X, np.zeros(60))
    assert (whole + zero).parts[1] == whole.parts[1] and (whole + zero).parts[2] == whole.parts[2]


def test_expected_log_prob_equals_weighted_log_prob():
    rng = np.random.default_rng(6)
    X, w = data(40, rng), rng.uniform(0, 2, 40)
    model = product(mean=(0.5, 0.5), rate=3.0)
    s = model.sufficient_statistics(X, w)
    assert model.expected_log_prob(s) == pytest.approx(w @ model.log_prob(X), rel=1e-11)


def test_n_parameters_sums_the_parts():
    assert product().n_parameters == (2 + 3) + 1 + 2
    assert product().n_features == 4


# -- support errors, renumbered to X's columns ---------------------------------------------------

@pytest.mark.parametrize("column, value, match", [
    (1, -1.0, "X column 1 must hold non-negative integer counts"),
    (2, 3.0, r"X column 2 must hold integer codes in \[0, 3\)"),
])
def test_support_error_names_the_column_of_x(column, value, match):
    X = data(5, np.random.default_rng(7))
    X[3, column] = value
    with pytest.raises(ValueError, match=match):
        product().check_support(X)


def test_nested_products_renumber_twice():
    inner = IndependentComponents(parts=[Poisson(rate=[1.0]), Poisson(rate=[1.0])],
                                  columns=[1, 0])
    outer = IndependentComponents(parts=[Gaussian(mean=[0.0], covariance=[[1.0]]), inner],
                                  columns=[0, (2, 1)])
    X = np.zeros((2, 3))
    X[1, 2] = 0.5  # X column 2 → inner column 0 → its part 1, column 0
    with pytest.raises(ValueError, match=r"^X column 2 must"):
        outer.check_support(X)


def test_a_foreign_support_error_is_prefixed_with_the_block():
    @attrs.frozen
    class Picky(Distribution):
        n_features = 1
        n_parameters = 0
        log_prob = sufficient_statistics = sample = lambda *a: None
        from_statistics = classmethod(lambda cls, s, prior=None: cls())

        def check_support(self, X):
            raise ValueError("no thanks")

    model = IndependentComponents(parts=[Poisson(rate=[1.0]), Picky()], columns=[0, 1])
    with pytest.raises(ValueError, match=r"X columns \[1\] \(Picky\): no thanks"):
        model.check_support(np.zeros((2, 2)))


@pytest.mark.parametrize("columns, match", [
    ([(0, 1), 1, 2], "column 1 is in blocks 0 and 1"),
    ([(0, 4), 1, 2], r"missing \[3\]"),
    ([(0,), 1, 2], "has 2 features but its block lists 1"),
    ([(0, 3), 1], "3 parts for 2 column blocks"),
])
def test_invalid_blocks(columns, match):
    parts = product().parts
    with pytest.raises(ValueError, match=match):
        IndependentComponents(parts=parts, columns=columns)


def test_parts_must_be_distributions():
    with pytest.raises(TypeError, match="part 0 must be a probmix Distribution"):
        IndependentComponents(parts=["gaussian"], columns=[0])


# -- in a mixture --------------------------------------------------------------------------------

def mixed_truth():
    means, rates = [[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]], [2.0, 8.0, 18.0]
    probs = [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]
    return MixtureModel(weights=[0.3, 0.3, 0.4], components=[
        IndependentComponents(parts=[Gaussian(mean=m, covariance=np.eye(2)), Poisson(rate=[r]),
                                     Categorical(probabilities=[p])], columns=[(0, 1), 2, 3])
        for m, r, p in zip(means, rates, probs)])


def test_mixed_type_mixture_clusters_the_data():
    # 2 Gaussian + 1 Poisson + 1 Categorical column, 3 clusters that overlap in each kind of
    # column alone: the Gaussian columns by themselves reach an ARI of only ~0.75.
    X, labels = mixed_truth().sample(600, np.random.default_rng(8))
    template = IndependentComponents.fit(X, parts=FAMILIES, columns=[(0, 1), 2, 3])
    best = None
    for seed in range(3):
        resp = initial_responsibilities(X, 3, "kmeans++", np.random.default_rng(seed))
        result = EMAlgorithm(tol=1e-8, max_iter=300).fit(X, initial_model(X, [template] * 3,
                                                                            resp))
        ll = result.history.log_likelihood
        assert np.all(np.diff(ll) >= -1e-12 * np.abs(ll[1:]))
        if best is None or result.log_likelihood > best.log_likelihood:
            best = result
    ari = adjusted_rand_score(labels, best.model.responsibilities(X).argmax(axis=1))
    assert ari > 0.9


def test_two_component_mixture_history_is_monotone_with_a_prior():
    X, _ = mixed_truth().sample(200, np.random.default_rng(9))
    template = IndependentComponents.fit(X, parts=FAMILIES, columns=[(0, 1), 2, 3])
    resp = initial_responsibilities(X, 2, "random", np.random.default_rng(0))
    priors = (NormalInverseWishart.ridge(1e-3, 2), Gamma(2.0, 0.5), Dirichlet(2.0))
    result = EMAlgorithm(m_step=MAP(component_prior=priors), tol=1e-8, max_iter=500).fit(
        X, initial_model(X, [template] * 2, resp))
    assert result.converged and np.all(np.diff(result.history.objective) >= -1e-12)
    assert np.all(result.history.log_prior != 0.0)  # the parts' log-priors are monitored


def test_a_tied_block_is_pooled_across_components():
    # the parts' joint hooks see every component: one covariance for the TiedNormal block
    rng = np.random.default_rng(10)
    X = np.column_stack([rng.standard_normal((90, 2)), rng.poisson(3.0, 90)])
    q = rng.dirichlet(np.ones(3), size=90)
    template = IndependentComponents(parts=[TiedNormal(mean=[0.0, 0.0], covariance=np.eye(2)),
                                            Poisson(rate=[1.0])], columns=[(0, 1), 2])
    stats_ = [template.sufficient_statistics(X, q[:, k]) for k in range(3)]
    ridge = CovarianceRidge(reg_covar=1e-4)
    fitted = IndependentComponents.from_statistics_many(stats_, (ridge, None))
    pooled = TiedNormal.from_statistics_many([s.parts[0] for s in stats_], ridge)
    for c, g in zip(fitted, pooled):
        assert c.parts[0] == g
    assert IndependentComponents.n_parameters_many(fitted) == 3 * 2 + 3 + 3 * 1
    model = MixtureModel(weights=[1 / 3] * 3, components=fitted)
    assert model.n_parameters == 2 + 3 * 2 + 3 + 3


def test_fixed_components_are_kept_and_partial_fixing_is_refused():
    X, _ = mixed_truth().sample(100, np.random.default_rng(11))
    start = mixed_truth()
    held = EMAlgorithm(m_step=MaximumLikelihood(fixed_components={0: "all"}), max_iter=3,
                       tol=0.0)
    with pytest.warns(UserWarning, match="did not converge"):
        result = held.fit(X, start)
    assert result.model.components[0] == start.components[0]
    refused = EMAlgorithm(m_step=MaximumLikelihood(fixed_components={0: "mean"}))
    with pytest.raises(ValueError, match="no closed-form update"):
        refused.fit(X, start)
