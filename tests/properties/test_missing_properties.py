"""Properties of EM with missing entries, for random mixtures, data and missingness masks.

With NaN marginalised, EM is still EM: the E-step's q covers the labels *and* the missing
entries, so L(q_t, θ_{t+1}) (expected statistics plus the entropy of the missing entries) is a
lower bound on log p(X_obs | θ_{t+1}) that the M-step does not lower, and the observed-data
log-likelihood never decreases. The hooks must also agree with the complete-data path and with
row-by-row evaluation, whatever the pattern of missing entries.
"""

import warnings

import numpy as np
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from probmix import EMAlgorithm
from probmix.em import MaximumLikelihood
from probmix.exceptions import ConvergenceWarning, SingularCovarianceError

from .strategies import em_cases, mixture_models, seeds


def knock_out(X, seed, fraction):
    """X with entries missing at random (each row keeps an observed entry)."""
    rng = np.random.default_rng(seed)
    X = np.array(X, dtype=float)
    mask = rng.random(X.shape) < fraction
    full = mask.all(axis=1)
    mask[full, rng.integers(X.shape[1], size=int(full.sum()))] = False
    X[mask] = np.nan
    return X


@settings(max_examples=100)
@given(case=em_cases(max_features=4), seed=seeds, fraction=st.floats(0.05, 0.5),
       chunk=st.sampled_from([None, 7, 64]))
def test_log_likelihood_never_decreases_and_the_bound_is_exact(case, seed, fraction, chunk):
    X = knock_out(case.X, seed, fraction)
    algorithm = EMAlgorithm(m_step=MaximumLikelihood(component_prior=None), tol=0.0,
                            max_iter=8, chunk_size=chunk, missing="marginalize")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            result = algorithm.fit(X, case.init)
        except SingularCovarianceError:
            reject()  # a component collapsed without a ridge: outside the premise
    h = result.history
    scale = max(1.0, float(np.max(np.abs(h.log_likelihood))))
    slack = 1e-9 * scale
    assert np.all(np.diff(h.log_likelihood) >= -slack)
    assert np.all(h.kl_after_m_step[:-1] >= -slack)
    assert np.all(h.bound_after_m_step[:-1] >= h.bound[:-1] - slack)
    # the recorded likelihood is the marginal density of the observed entries
    final = result.model.log_prob(X, missing="marginalize").mean()
    assert np.isclose(h.log_likelihood[-1], final, rtol=1e-10, atol=1e-10)


@settings(max_examples=100)
@given(model=mixture_models(max_features=5), seed=seeds, fraction=st.floats(0.0, 0.7))
def test_hooks_agree_with_the_fast_path_and_with_rows_one_by_one(model, seed, fraction):
    rng = np.random.default_rng(seed)
    X, _ = model.sample(40, rng)
    Xm = knock_out(X, seed, fraction)
    complete = ~np.isnan(Xm).any(axis=1)
    joint = model.log_joint(Xm, missing="marginalize")
    if complete.any():
        np.testing.assert_allclose(joint[complete], model.log_joint(Xm[complete]),
                                   rtol=1e-12, atol=1e-12)
    rows = np.vstack([model.log_joint(Xm[i:i + 1], missing="marginalize")
                      for i in range(len(Xm))])
    np.testing.assert_allclose(joint, rows, rtol=1e-11, atol=1e-11)
    # the mixture's statistics of the chunk equal the sum of its rows' (one pattern each)
    q = model.responsibilities(Xm, missing="marginalize")
    parts = model._statistics_parts(Xm, q)
    one_by_one = [model._statistics_parts(Xm[i:i + 1], q[i:i + 1]) for i in range(len(Xm))]
    total = one_by_one[0]
    for p in one_by_one[1:]:
        total = total + p
    assert np.isclose(parts.missing_entropy, total.missing_entropy, rtol=1e-10, atol=1e-10)
    a = parts.finish(tuple(type(c) for c in model.components))
    b = total.finish(tuple(type(c) for c in model.components))
    np.testing.assert_allclose(model.expected_log_joint(a), model.expected_log_joint(b),
                               rtol=1e-10)
    # imputation leaves observed entries alone and fills every missing one
    filled = model.impute(Xm)
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[~np.isnan(Xm)], Xm[~np.isnan(Xm)])


@settings(max_examples=50)
@given(case=em_cases(max_features=3))
def test_without_nan_marginalising_is_the_complete_data_fit(case):
    kwargs = dict(m_step=MaximumLikelihood(component_prior=None), tol=0.0, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            a = EMAlgorithm(**kwargs).fit(case.X, case.init)
        except SingularCovarianceError:
            reject()
        b = EMAlgorithm(missing="marginalize", **kwargs).fit(case.X, case.init)
    assert a.model == b.model
    np.testing.assert_array_equal(a.history.log_likelihood, b.history.log_likelihood)

