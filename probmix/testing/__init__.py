"""Public conformance kit for component families.

:func:`check_distribution` runs every check of :mod:`probmix.testing.checks` on a family (an
instance, or a class and its parameters) and raises ``AssertionError`` naming each check that
fails; :mod:`probmix.testing.strategies` has hypothesis strategies (data, weights, splits of
rows, valid parameters) for a family's own property tests. probmix's test suite runs the same
checks over every built-in family.

The checks need only numpy and scipy. The strategies need hypothesis (a test dependency, not a
runtime one): it is imported when ``probmix.testing.strategies`` is, never by ``import
probmix``.

Examples
--------
>>> from probmix.distributions import Gaussian
>>> from probmix.testing import check_distribution
>>> report = check_distribution(Gaussian(mean=[0.0], covariance=[[1.0]]),
...                             checks=["contract", "weighted_fit"])
>>> report.ran
('contract', 'weighted_fit')
"""

from typing import Any

from .checks import (
    CHECKS,
    CheckReport,
    CheckSkipped,
    check_contract,
    check_distribution,
    check_em_monotone,
    check_expected_log_prob,
    check_log_prob_matches,
    check_normalised,
    check_parameter_recovery,
    check_sample_moments,
    check_statistics_additive,
    check_statistics_reweighted,
    check_weighted_fit,
)

__all__ = [
    "CHECKS",
    "CheckReport",
    "CheckSkipped",
    "check_contract",
    "check_distribution",
    "check_em_monotone",
    "check_expected_log_prob",
    "check_log_prob_matches",
    "check_normalised",
    "check_parameter_recovery",
    "check_sample_moments",
    "check_statistics_additive",
    "check_statistics_reweighted",
    "check_weighted_fit",
    "strategies",
]


def __getattr__(name: str) -> Any:
    # ``probmix.testing.strategies`` on first use, so the checks work without hypothesis
    if name == "strategies":
        import importlib

        return importlib.import_module(".strategies", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
