"""Shared test configuration.

Hypothesis runs derandomised by default (profile "ci": the same examples every run, no
example database written into the tree). ``HYPOTHESIS_PROFILE=dev`` explores new examples.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
import scipy.linalg  # noqa: F401  # load scipy's own BLAS before limiting it too
from threadpoolctl import threadpool_limits

# The tests use small matrices, for which BLAS threads only contend with each other (measured:
# 15x slower on a loaded 2-core machine); one thread also fixes the reduction order.
threadpool_limits(limits=1)

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=100,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=300,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
