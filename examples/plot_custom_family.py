r"""
Writing a family: a mixture of geometric counts
===============================================

probmix fits a mixture of any *family* that keeps the
:class:`~probmix.Distribution` contract: a log density, weighted sufficient statistics
that add, and the weighted maximum-likelihood estimate from those statistics. This example
writes one that probmix does not ship, independent geometric counts on {0, 1, 2, …},

.. math::

    p(x) = \prod_j (1 - p_j)^{x_j} p_j,
    \qquad \hat p_j = \frac{\sum_i w_i}{\sum_i w_i + \sum_i w_i x_{ij}},

checks it with :func:`probmix.testing.check_distribution` (against ``scipy.stats.geom``),
fits a two-component mixture of it with :class:`~probmix.EMAlgorithm`, and plots the fit.

Importing this module only defines the family (the tests import it); running it does the
rest: ``python examples/plot_custom_family.py [output.png]`` writes
``plot_custom_family.png`` by default. See also the docs page "Writing a family".
"""

import sys

import attrs
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats
from scipy.special import xlogy

from probmix import Distribution, EMAlgorithm, MixtureModel, Statistics
from probmix.init import initial_model, initial_responsibilities
from probmix.testing import check_distribution


# %%
# The family
# ----------
# The statistics are (Σ w, Σ w x): plain sums, so the statistics of two chunks of rows add
# up to those of the union, and a row of weight 0 changes nothing. That alone gives chunked,
# weighted and distributed fits; ``from_statistics`` turns them into the weighted MLE.
@attrs.frozen
class GeometricStatistics(Statistics):
    weight: float  # Σ_i w_i
    weighted_sum: np.ndarray  # Σ_i w_i x_i, one entry per feature
    total_weight = property(lambda self: self.weight)

    def __add__(self, other):
        return GeometricStatistics(self.weight + other.weight,
                                   self.weighted_sum + other.weighted_sum)

    def reweighted(self, factor):  # every weight × factor (optional: online EM needs it)
        return GeometricStatistics(factor * self.weight, factor * self.weighted_sum)


def _probabilities(value):
    p = np.array(value, dtype=float, ndmin=1)
    if p.ndim != 1 or not np.all((p > 0) & (p <= 1)):
        raise ValueError(f"p must be a 1-D array of probabilities in (0, 1], got {value!r}")
    p.setflags(write=False)  # a frozen value's parameters must not change under it
    return p


@attrs.frozen(kw_only=True)
class Geometric(Distribution):
    """Independent geometric counts, p(x) = Π_j (1 − p_j)^x_j p_j for x_j = 0, 1, 2, …"""

    p: np.ndarray = attrs.field(converter=_probabilities, eq=attrs.cmp_using(eq=np.array_equal))
    n_features = property(lambda self: self.p.size)
    n_parameters = property(lambda self: self.p.size)

    def log_prob(self, X):  # xlogy: 0 · log 0 = 0, for p = 1 (the MLE of a column of zeros)
        return np.sum(xlogy(X, 1 - self.p) + np.log(self.p), axis=1)

    @classmethod
    def sufficient_statistics(cls, X, weights):
        return GeometricStatistics(float(np.sum(weights)), weights @ X)

    @classmethod
    def from_statistics(cls, stats, prior=None):
        if prior is not None:
            raise TypeError("Geometric takes no prior")
        return cls(p=stats.weight / (stats.weight + stats.weighted_sum))  # the weighted MLE

    def sample(self, n_samples, rng):
        return rng.geometric(self.p, size=(n_samples, self.p.size)) - 1.0

    def check_support(self, X):
        bad = np.flatnonzero(np.any((X < 0) | (np.round(X) != X), axis=0))
        if bad.size:
            raise ValueError(f"X column {bad[0]} must hold non-negative integer counts")

    def expected_log_prob(self, stats):  # optional: Σ w log p(x) from the statistics alone
        return float(np.sum(xlogy(stats.weighted_sum, 1 - self.p) + stats.weight * np.log(self.p)))


# %%
# Checking it
# -----------
# ``check_distribution`` runs the conformance checks probmix runs on its own families:
# log_prob against the scipy twin, normalisation (the pmf summed over the support), sampling
# moments, statistics additivity, weighted fit = repeated rows, parameter recovery and EM
# monotonicity in a two-component mixture. It raises ``AssertionError`` naming any check
# that fails, and otherwise reports what it did.
def check():
    p = np.array([0.3, 0.7])
    return check_distribution(Geometric(p=p),
                              scipy_twin=lambda X: stats.geom.logpmf(X, p, loc=-1).sum(axis=1))


# %%
# Fitting a mixture
# -----------------
# Occasional and frequent visitors: a mixture of two geometric components. The initialisers
# and ``EMAlgorithm`` need nothing from the family beyond the contract.
def fit(seed=0):
    rng = np.random.default_rng(seed)
    truth = MixtureModel(weights=[0.6, 0.4], components=[Geometric(p=[0.5]), Geometric(p=[0.08])])
    X, _ = truth.sample(3000, rng)
    start = initial_model(X, [Geometric, Geometric],
                          initial_responsibilities(X, 2, "kmeans++", rng))
    result = EMAlgorithm(tol=1e-10, max_iter=500).fit(X, start)
    assert result.converged
    assert np.all(np.diff(result.history.log_likelihood) >= -1e-12)  # EM never decreases it
    return truth, X, result


# %%
# The picture: the frequencies of the counts with the true and fitted pmfs and the fitted
# components, on a log scale, where a geometric pmf is a straight line of slope log(1 − p)
# and the mixture bends from the steep one to the shallow one; and the log-likelihood along
# the EM iterations.
def plot(truth, X, result, output):
    fig, (ax_fit, ax_ll) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    counts = np.arange(int(X.max()) + 1)
    ax_fit.bar(counts, np.bincount(X[:, 0].astype(int)) / X.shape[0], color="0.8",
               label=f"{X.shape[0]} counts")
    grid = counts[:, None].astype(float)
    model = result.model
    ax_fit.plot(counts, np.exp(truth.log_prob(grid)), "k--", label="true mixture")
    ax_fit.plot(counts, np.exp(model.log_prob(grid)), color="C0", label="fitted mixture")
    for k, (weight, comp) in enumerate(zip(model.weights, model.components)):
        ax_fit.plot(counts, weight * np.exp(comp.log_prob(grid)), ":", color=f"C{k + 1}",
                    label=f"component {k}: π = {weight:.2f}, p = {comp.p[0]:.3f}")
    ax_fit.set_yscale("log")
    ax_fit.set_ylim(0.3 / X.shape[0], 1.0)
    ax_fit.set_xlabel("count x")
    ax_fit.set_ylabel("probability (log scale)")
    ax_fit.set_title("a mixture of two geometric distributions")
    ax_fit.legend(fontsize="small")
    ax_ll.plot(result.history.log_likelihood, "o-", markersize=3)
    ax_ll.set_xlabel("EM iteration")
    ax_ll.set_ylabel("log-likelihood per count")
    ax_ll.set_title(f"EM: {result.n_iter} iterations, never decreasing")
    fig.savefig(output, dpi=110)
    return fig


if __name__ == "__main__":
    print(check())
    truth, X, result = fit()
    print("fitted weights", np.round(result.model.weights, 3),
          "p", [round(float(c.p[0]), 4) for c in result.model.components])
    output = sys.argv[1] if len(sys.argv) > 1 else "plot_custom_family.png"
    plot(truth, X, result, output)
    print(f"figure written to {output}")
