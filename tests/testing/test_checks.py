"""The conformance kit can fail: deliberately broken families, each caught by the check that
names its bug; plus the kit's report, arguments, strategies and import behaviour."""

import itertools
import math
import re
import subprocess
import sys
import unittest

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import probmix.testing
from probmix import MixtureModel
from probmix.distributions import Exponential, Gaussian, Poisson, SphericalNormal
from probmix.distributions.exponential import ExponentialStatistics
from probmix.distributions.poisson import PoissonStatistics
from probmix.testing import (
    CHECKS,
    CheckSkipped,
    check_contract,
    check_distribution,
    check_expected_log_prob,
    check_normalised,
    check_statistics_additive,
)
from probmix.testing.strategies import (
    finite_arrays,
    instances,
    jitter,
    refitted,
    row_splits,
    sample_weights,
    samples,
)

STANDARD = {"mean": [0.0, 1.0], "covariance": 1.5}


def failures(exc_info):
    """The checks named in a check_distribution failure, in order."""
    return re.findall(r"^- (\w+) \(", str(exc_info.value), re.M)


# -- broken families ------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class OffByConstant(SphericalNormal):
    """log_prob 0.1 too high everywhere: the density integrates to e^0.1."""

    def log_prob(self, X):
        return super().log_prob(X) + 0.1


def test_a_density_off_by_a_constant_fails_normalisation():
    with pytest.raises(AssertionError) as exc_info:
        check_distribution(OffByConstant(**STANDARD))
    assert failures(exc_info)[0] == "normalised"
    # the message carries the kit's estimate of the integral, which is e^0.1
    total = float(re.search(r"integrates to ([0-9.]+)", str(exc_info.value)).group(1))
    assert total == pytest.approx(math.exp(0.1), rel=1e-6)


@attrs.frozen(kw_only=True)
class ForgetfulSum(Exponential):
    """Statistics whose + keeps the left total only: they do not add."""

    @classmethod
    def sufficient_statistics(cls, X, weights):
        s = super().sufficient_statistics(X, weights)
        return BrokenSum(weight=s.weight, total=s.total)


@attrs.frozen(kw_only=True)
class BrokenSum(ExponentialStatistics):
    def __add__(self, other):
        return BrokenSum(weight=self.weight + other.weight, total=self.total)  # bug


def test_statistics_that_do_not_add_fail_additivity():
    with pytest.raises(AssertionError) as exc_info:
        check_distribution(ForgetfulSum(rate=[2.0, 0.5]))
    assert "statistics_additive" in failures(exc_info)
    assert "chunks added left to right" in str(exc_info.value)
    # weights and the one-pass fits are fine: those checks pass
    assert "weighted_fit" not in failures(exc_info)
    assert "parameter_recovery" not in failures(exc_info)


@attrs.frozen(kw_only=True)
class RowCountStatistics(PoissonStatistics):
    rows: float  # the number of rows of positive weight

    def __add__(self, other):
        return RowCountStatistics(weight=self.weight + other.weight,
                                  total=self.total + other.total,
                                  log_factorial=self.log_factorial + other.log_factorial,
                                  rows=self.rows + other.rows)


@attrs.frozen(kw_only=True)
class UnweightedPoisson(Poisson):
    """from_statistics divides Σ w x by the number of rows instead of Σ w: it ignores how
    large the weights are (rows of weight 0 are still left out)."""

    @classmethod
    def sufficient_statistics(cls, X, weights):
        s = super().sufficient_statistics(X, weights)
        return RowCountStatistics(weight=s.weight, total=s.total,
                                  log_factorial=s.log_factorial,
                                  rows=float(np.count_nonzero(np.asarray(weights) > 0)))

    @classmethod
    def from_statistics(cls, stats, prior=None):
        return cls(rate=stats.total / stats.rows)  # bug: not Σ w


def test_a_fit_that_ignores_weights_fails_the_weighted_fit_check():
    with pytest.raises(AssertionError) as exc_info:
        check_distribution(UnweightedPoisson(rate=[3.0, 0.5]))
    assert "weighted_fit" in failures(exc_info)
    assert "weights vs repeated rows" in str(exc_info.value)
    # with unit weights it is the right estimate, and its statistics do add
    assert "parameter_recovery" not in failures(exc_info)
    assert "statistics_additive" not in failures(exc_info)


def test_a_wrong_twin_fails_the_twin_check():
    dist = Gaussian(mean=[0.0], covariance=[[1.0]])
    wrong = stats.norm(0.0, 1.1)  # the right twin has scale 1
    with pytest.raises(AssertionError) as exc_info:
        check_distribution(dist, scipy_twin=lambda X: wrong.logpdf(X[:, 0]))
    assert failures(exc_info) == ["log_prob_matches"]
    assert "differs from the scipy twin" in str(exc_info.value)
    # the right twin passes
    right = stats.norm(0.0, 1.0)
    check_distribution(dist, scipy_twin=lambda X: right.logpdf(X[:, 0]),
                       checks=["log_prob_matches"])


@attrs.frozen(kw_only=True)
class WideSampler(SphericalNormal):
    """Draws with 5% too large a spread."""

    def sample(self, n_samples, rng):
        return self.mean + 1.05 * (super().sample(n_samples, rng) - self.mean)


def test_a_sampler_that_disagrees_with_log_prob_fails_the_moments_check():
    with pytest.raises(AssertionError) as exc_info:
        check_distribution(WideSampler(**STANDARD))
    assert "sample_moments" in failures(exc_info)
    assert "cov[0,0]" in str(exc_info.value) and "E[log p]" in str(exc_info.value)
    assert "normalised" not in failures(exc_info)


@attrs.frozen(kw_only=True)
class Inflated(SphericalNormal):
    """An estimator with 1.5 times the MLE variance: consistent weights, wrong answer."""

    @classmethod
    def from_statistics(cls, stats, prior=None):
        fit = super().from_statistics(stats, prior)
        return cls(mean=fit.mean, covariance=1.5 * fit.covariance.compact)


def test_a_biased_estimator_fails_parameter_recovery():
    with pytest.raises(AssertionError) as exc_info:
        check_distribution(Inflated(**STANDARD), checks=["weighted_fit", "parameter_recovery"])
    assert failures(exc_info) == ["parameter_recovery"]
    assert "worse than the true parameters" in str(exc_info.value)


_calls = itertools.count()


@attrs.frozen(kw_only=True)
class Erratic(Poisson):
    """Every other update doubles the rates: the log-likelihood goes up and down."""

    @classmethod
    def from_statistics(cls, stats, prior=None):
        fit = super().from_statistics(stats, prior)
        return cls(rate=fit.rate * (2.0 if next(_calls) % 2 else 1.0))


def test_an_m_step_that_lowers_the_likelihood_fails_em_monotonicity():
    with pytest.raises(AssertionError) as exc_info:
        check_distribution(Erratic(rate=[3.0]), checks=["em_monotone"])
    assert failures(exc_info) == ["em_monotone"]
    assert "decreased at EM iteration" in str(exc_info.value)


@attrs.frozen(kw_only=True)
class Crashing(Poisson):
    @classmethod
    def from_statistics(cls, stats, prior=None):
        raise RuntimeError("boom")


def test_an_error_inside_the_family_fails_the_check_that_met_it():
    with pytest.raises(AssertionError, match=r"contract \(Crashing\): RuntimeError raised "
                                             r"during the check: boom"):
        check_contract(Crashing(rate=[1.0]))


@attrs.frozen(kw_only=True)
class TwoBugs(OffByConstant, WideSampler):
    pass


def test_all_failures_are_reported_together():
    with pytest.raises(AssertionError) as exc_info:
        check_distribution(TwoBugs(**STANDARD), checks=["normalised", "sample_moments",
                                                        "weighted_fit"])
    assert str(exc_info.value).startswith("check_distribution(TwoBugs): 2 of 3 checks failed")
    assert failures(exc_info) == ["normalised", "sample_moments"]


# -- the report and the arguments -------------------------------------------------------------
@attrs.frozen(kw_only=True)
class NoExpectedLogProb(Poisson):
    def expected_log_prob(self, stats):
        raise NotImplementedError


def test_report_lists_what_ran_and_why_the_rest_was_skipped():
    report = check_distribution(NoExpectedLogProb, params={"rate": [2.0]})
    assert report.skipped == {"log_prob_matches": "no scipy_twin given",
                              "expected_log_prob": "the family does not implement "
                                                   "expected_log_prob"}
    assert report.ran == tuple(n for n in CHECKS if n not in report.skipped)
    assert set(report.details) == set(report.ran)
    text = str(report)
    assert "8 passed, 2 skipped" in text and "skipped  log_prob_matches" in text


def test_a_skipped_check_is_a_unittest_skip():
    assert issubclass(CheckSkipped, unittest.SkipTest)
    with pytest.raises(CheckSkipped):
        check_expected_log_prob(NoExpectedLogProb(rate=[2.0]))


def test_each_check_sees_the_same_numbers_alone_or_with_the_others():
    dist = Poisson(rate=[2.0, 5.0])
    everything = check_distribution(dist, rng=7)
    for name in ("sample_moments", "parameter_recovery", "em_monotone"):
        alone = check_distribution(dist, rng=7, checks=[name])
        assert alone.details[name] == everything.details[name]
    assert check_distribution(dist, rng=8).details != everything.details


def test_arguments_are_checked():
    with pytest.raises(TypeError, match="params"):
        check_distribution(Poisson)
    with pytest.raises(TypeError, match="params is only for a family class"):
        check_distribution(Poisson(rate=[1.0]), params={"rate": [1.0]})
    with pytest.raises(TypeError, match="Distribution subclass or instance"):
        check_distribution(stats.norm)
    with pytest.raises(ValueError, match=r"unknown check\(s\) \['normalized'\]"):
        check_distribution(Poisson(rate=[1.0]), checks=["normalized"])
    with pytest.raises(ValueError, match="splits must partition the rows"):
        check_statistics_additive(Poisson(rate=[1.0]), X=np.ones((4, 1)),
                                  splits=[[0, 1], [1, 2, 3]])


def test_normalisation_by_monte_carlo_beyond_two_continuous_columns():
    # three continuous columns: no tensor grid, an importance-sampling estimate instead
    good = check_distribution(Gaussian(mean=[0.0, 1.0, 2.0], covariance=np.eye(3) + 0.5),
                              checks=["normalised"])
    assert "importance sampling" in good.details["normalised"]
    with pytest.raises(AssertionError, match=r"normalised .* importance sampling"):
        check_normalised(OffByConstant(mean=[0.0, 1.0, 2.0], covariance=1.0))


def test_normalisation_respects_a_bounded_support():
    # an exponential's support is x >= 0: its check_support puts the grid's edge there
    assert "1014 grid" in check_normalised(Exponential(rate=[1e3]))


@attrs.frozen(kw_only=True)
class UnboundedExponential(Exponential):
    """Forgets its support: log λ − λx is then also a 'density' on x < 0."""

    def check_support(self, X):
        pass

    def log_prob(self, X):
        return np.sum(np.log(self.rate) - X * self.rate, axis=1)


def test_a_density_positive_outside_its_support_fails_normalisation():
    with pytest.raises(AssertionError, match="make check_support reject rows outside it"):
        check_normalised(UnboundedExponential(rate=[2.0]))


# -- mixtures as distributions ----------------------------------------------------------------
MIXTURE = MixtureModel(weights=[0.4, 0.6], components=[
    Gaussian(mean=[0.0], covariance=[[1.0]]), Gaussian(mean=[3.0], covariance=[[0.5]])])


def test_a_mixture_samples_rows_and_labels_and_nests():
    # MixtureModel.sample returns (X, labels) by design; as a component its rows are used
    X, labels = MIXTURE.sample(30, np.random.default_rng(0))
    assert X.shape == (30, 1) and labels.shape == (30,) and set(labels) <= {0, 1}
    outer = MixtureModel(weights=[0.5, 0.5], components=[
        MIXTURE, Gaussian(mean=[-5.0], covariance=[[1.0]])])
    Y, outer_labels = outer.sample(40, np.random.default_rng(1))
    assert Y.shape == (40, 1) and np.all(Y[outer_labels == 1] < -1.0)


def test_a_mixture_summarises_an_empty_chunk():
    X, _ = MIXTURE.sample(50, np.random.default_rng(0))
    check_statistics_additive(MIXTURE, X=X, splits=[np.arange(50), np.arange(0)])


def test_a_mixture_statistics_add_over_non_empty_chunks():
    # the rest of the statistics contract holds for a mixture (its latent labels' statistics)
    X, _ = MIXTURE.sample(50, np.random.default_rng(0))
    detail = check_statistics_additive(MIXTURE, X=X, splits=[np.arange(20), np.arange(20, 50)])
    assert "compared by from_statistics" in detail


# -- strategies -----------------------------------------------------------------------------
@settings(max_examples=40)
@given(data=st.data(), n=st.integers(1, 30))
def test_sample_weights_are_non_negative_with_a_positive_sum(data, n):
    k = data.draw(st.integers(1, 35))
    for integer in (False, True):
        w = data.draw(sample_weights(n, integer=integer, min_positive=k))
        assert w.shape == (n,) and np.all(w >= 0) and w.sum() > 0
        assert np.count_nonzero(w) >= min(k, n)
        assert (w.dtype.kind == "i") == integer


@settings(max_examples=40)
@given(data=st.data(), n=st.integers(0, 30))
def test_row_splits_partition_the_rows(data, n):
    chunks = data.draw(row_splits(n, max_chunks=4))
    assert 1 <= len(chunks) <= 4
    assert sorted(np.concatenate(chunks).tolist()) == list(range(n))


@settings(max_examples=20)
@given(X=finite_arrays((5, 3)))
def test_finite_arrays(X):
    assert X.shape == (5, 3) and np.all(np.isfinite(X)) and np.all(np.abs(X) <= 1e3)


@settings(max_examples=20)
@given(data=st.data())
def test_samples_lie_in_the_support(data):
    dist = Poisson(rate=[0.5, 4.0])
    X = data.draw(samples(dist, n_rows=st.integers(1, 20)))
    assert X.ndim == 2 and X.shape[1] == 2 and 1 <= X.shape[0] <= 20
    dist.check_support(X)


def test_jitter_keeps_the_constraints():
    rng = np.random.default_rng(0)
    params = {"cov": [[2.0, 0.9], [0.9, 1.0]], "probs": [[0.2, 0.8], [0.5, 0.5]],
              "p": [0.1, 0.9], "rate": [3.0, 0.01], "mean": [-1.0, 0.0], "df": 4.0,
              "ragged": [[0.2, 0.8], [0.1, 0.2, 0.7]], "codes": [1, 2], "part": Poisson(rate=[1.0])}
    for _ in range(50):
        new = jitter(params, rng, scale=0.5)
        assert np.all(np.linalg.eigvalsh(new["cov"]) > 0) and np.allclose(new["cov"],
                                                                           np.transpose(new["cov"]))
        assert np.allclose(np.sum(new["probs"], axis=1), 1.0) and np.all(new["probs"] > 0)
        assert np.all((new["p"] > 0) & (new["p"] < 1)) and np.all(new["rate"] > 0)
        assert [float(np.sum(r)) for r in new["ragged"]] == pytest.approx([1.0, 1.0])
        assert isinstance(new["df"], float) and new["df"] > 0
        assert new["codes"] == [1, 2] and new["part"] is params["part"]
    assert not np.allclose(new["mean"], params["mean"])


@settings(max_examples=20)
@given(data=st.data())
def test_instances_and_refitted_are_valid_members_of_the_family(data):
    g = data.draw(instances(Gaussian, {"mean": [0.0, 1.0], "covariance": np.eye(2)}))
    assert isinstance(g, Gaussian) and g.n_features == 2
    r = data.draw(refitted(g, n_rows=st.integers(10, 50)))
    assert isinstance(r, Gaussian) and r.n_features == 2


# -- imports --------------------------------------------------------------------------------
def _python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)


def test_hypothesis_is_imported_only_with_the_strategies():
    run = _python("import sys, probmix, probmix.testing\n"
                  "from probmix.testing import check_distribution\n"
                  "assert 'hypothesis' not in sys.modules, 'hypothesis was imported'\n"
                  "probmix.testing.strategies\n"
                  "assert 'hypothesis' in sys.modules")
    assert run.returncode == 0, run.stderr


def test_without_hypothesis_the_checks_work_and_the_strategies_say_what_is_missing():
    run = _python("import sys\n"
                  "sys.modules['hypothesis'] = None  # as if it were not installed\n"
                  "from probmix.distributions import Poisson\n"
                  "from probmix.testing import check_distribution\n"
                  "check_distribution(Poisson(rate=[1.0]), checks=['weighted_fit'])\n"
                  "import probmix.testing.strategies")
    assert run.returncode == 1
    assert "ImportError: probmix.testing.strategies needs hypothesis" in run.stderr
    assert "pip install hypothesis" in run.stderr


def test_strategies_module_is_an_attribute_of_the_package():
    from probmix.testing import strategies

    assert probmix.testing.strategies is strategies
    with pytest.raises(AttributeError):
        probmix.testing.no_such_thing  # noqa: B018
