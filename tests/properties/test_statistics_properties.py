"""Sufficient statistics add across chunks, and weights behave like repeated rows.

``stats(A) + stats(B) == stats(A ∪ B)`` is what lets one EM code path serve in-memory,
chunked and weighted fits; the EM result must therefore not depend on ``chunk_size``, and an
integer sample weight must equal repeating the row.
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from probmix import GMM, EMAlgorithm
from probmix.distributions import TiedNormal
from probmix.exceptions import ConvergenceWarning, SingularCovarianceError
from probmix.gmm import COVARIANCE_TYPES
from probmix.mixture import MixtureStatistics

from .strategies import arbitrary_q, em_cases, families, seeds

COVARIANCE_TYPE_OF = {family: name for name, family in COVARIANCE_TYPES.items()}


def assert_stats_close(a, b, rtol=1e-10):
    """Gaussian statistics equal to round-off.

    The data themselves are only resolved to ε|μ|, so the scatter is only determined to a
    relative ~ε|μ|/σ (κ below); raw moments would be off by ε κ², i.e. useless.
    """
    assert a.structure is b.structure
    assert a.weight == pytest.approx(b.weight, rel=rtol)
    spread = np.sqrt(np.abs(b.scatter).max() / b.weight)
    scale = np.abs(b.mean).max() + spread
    np.testing.assert_allclose(a.mean, b.mean, rtol=rtol, atol=rtol * scale)
    kappa = scale / spread if spread > 0 else 1.0
    scatter_rtol = rtol + 50 * np.finfo(float).eps * kappa
    np.testing.assert_allclose(a.scatter, b.scatter, rtol=scatter_rtol,
                               atol=scatter_rtol * np.abs(b.scatter).max())


@st.composite
def weighted_data(draw, max_rows=40, max_features=4):
    """Rows at a random location and scale with non-negative weights (some exactly zero)."""
    rng = np.random.default_rng(draw(seeds))
    n = draw(st.integers(2, max_rows))
    d = draw(st.integers(1, max_features))
    loc = draw(st.sampled_from([0.0, 1.0, -1e3, 1e6]))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    X = loc + scale * rng.standard_normal((n, d))
    w = rng.uniform(0, 3, n) * (rng.uniform(size=n) > draw(st.floats(0.0, 0.5)))
    return X, w


@given(family=families, data=weighted_data(), data_=st.data())
def test_statistics_add_across_any_split(family, data, data_):
    X, w = data
    n = X.shape[0]
    cut = data_.draw(st.integers(0, n))  # an empty side is the neutral element
    order = np.random.default_rng(data_.draw(seeds)).permutation(n)
    a, b = order[:cut], order[cut:]
    whole = family.sufficient_statistics(X, w)
    merged = family.sufficient_statistics(X[a], w[a]) + family.sufficient_statistics(X[b], w[b])
    if whole.weight == 0.0:
        assert merged.weight == 0.0
        return
    assert_stats_close(merged, whole)
    # addition is commutative (to round-off)
    swapped = family.sufficient_statistics(X[b], w[b]) + family.sufficient_statistics(X[a], w[a])
    assert_stats_close(swapped, whole)


@given(family=families, data=weighted_data(), n_chunks=st.integers(1, 8))
def test_statistics_of_many_chunks(family, data, n_chunks):
    X, w = data
    pieces = np.array_split(np.arange(X.shape[0]), n_chunks)
    total = family.sufficient_statistics(X[pieces[0]], w[pieces[0]])
    for idx in pieces[1:]:
        total = total + family.sufficient_statistics(X[idx], w[idx])
    whole = family.sufficient_statistics(X, w)
    if whole.weight > 0:
        assert_stats_close(total, whole)


@given(family=families, data=weighted_data(max_rows=20), repeats_seed=seeds)
def test_integer_weights_equal_repeated_rows(family, data, repeats_seed):
    X, _ = data
    counts = np.random.default_rng(repeats_seed).integers(0, 4, X.shape[0])
    counts[0] = max(counts[0], 1)
    weighted = family.sufficient_statistics(X, counts.astype(float))
    repeated = family.sufficient_statistics(np.repeat(X, counts, axis=0),
                                            np.ones(counts.sum()))
    assert_stats_close(weighted, repeated)


@given(case=em_cases(), data=st.data())
def test_mixture_statistics_add_across_chunks(case, data):
    X, model = case.X, case.init
    n = X.shape[0]
    q = data.draw(arbitrary_q(n, model.n_components))
    cut = data.draw(st.integers(1, n - 1))
    whole = model.component_statistics(X, q)
    merged = (model.component_statistics(X[:cut], q[:cut])
              + model.component_statistics(X[cut:], q[cut:]))
    assert isinstance(merged, MixtureStatistics)
    assert merged.families == whole.families
    np.testing.assert_allclose(merged.masses, whole.masses, rtol=1e-12)
    assert merged.total_weight == pytest.approx(n, rel=1e-12)  # rows of q sum to one
    for a, b in zip(merged.components, whole.components):
        if b.weight > 0:
            assert_stats_close(a, b)
    # the M-step from merged statistics is the M-step from the whole
    fit_merged = type(model).from_statistics(merged)
    fit_whole = type(model).from_statistics(whole)
    np.testing.assert_allclose(fit_merged.weights, fit_whole.weights, rtol=1e-12)


def fit_em(X, init, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0: expected
        try:
            return EMAlgorithm(tol=0.0, **kwargs).fit(X, init)
        except SingularCovarianceError:
            reject()  # a collapse without a ridge is legitimate: not this property's premise


@given(case=em_cases(max_components=2, max_rows=40))
@settings(max_examples=50)  # chunk_size=1 makes one pass per row
def test_em_does_not_depend_on_chunk_size(case):
    results = [fit_em(case.X, case.init, max_iter=5, chunk_size=size)
               for size in (1, 7, None)]
    reference = results[-1]
    for result in results[:-1]:
        np.testing.assert_allclose(result.history.log_likelihood,
                                   reference.history.log_likelihood, rtol=1e-10)
        np.testing.assert_allclose(result.history.bound_after_m_step[:-1],
                                   reference.history.bound_after_m_step[:-1], rtol=1e-10)
        np.testing.assert_allclose(result.model.weights, reference.model.weights, rtol=1e-10)
        for a, b in zip(result.model.components, reference.model.components):
            scale = np.abs(b.mean).max() + 1.0
            np.testing.assert_allclose(a.mean, b.mean, rtol=1e-10, atol=1e-10 * scale)
            np.testing.assert_allclose(a.covariance_matrix, b.covariance_matrix, rtol=1e-10,
                                       atol=1e-10 * np.abs(b.covariance_matrix).max())


def gmm_start(model):
    """The GMM constructor arguments that start EM exactly at ``model``."""
    precisions = [c.covariance.precision for c in model.components]
    tied = isinstance(model.components[0], TiedNormal)
    return dict(weights_init=np.asarray(model.weights),
                means_init=np.stack([c.mean for c in model.components]),
                precisions_init=precisions[0] if tied else np.stack(precisions))


@given(case=em_cases(max_rows=50), repeats_seed=seeds)
def test_gmm_integer_sample_weight_equals_repeated_rows(case, repeats_seed):
    X = case.X
    counts = np.random.default_rng(repeats_seed).integers(0, 4, X.shape[0])
    counts[: case.init.n_components] = np.maximum(counts[: case.init.n_components], 1)
    kwargs = dict(n_components=case.init.n_components,
                  covariance_type=COVARIANCE_TYPE_OF[case.family], tol=0.0, max_iter=8,
                  **gmm_start(case.init))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = GMM(**kwargs).fit(X, sample_weight=counts)
        repeated = GMM(**kwargs).fit(np.repeat(X, counts, axis=0))
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        a, b = getattr(weighted, name), getattr(repeated, name)
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-8 * np.abs(b).max(), err_msg=name)
    assert weighted.lower_bound_ == pytest.approx(repeated.lower_bound_, rel=1e-8, abs=1e-10)
    np.testing.assert_allclose(weighted.history_.log_likelihood,
                               repeated.history_.log_likelihood, rtol=1e-8, atol=1e-10)
