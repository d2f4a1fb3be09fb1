r"""
Choosing the number of components: BIC, AIC and ICL
====================================================

A mixture with more components always fits the training data at least as well, so the
log-likelihood alone cannot choose K. Information criteria add a penalty for the number of
free parameters p (all three in the "−2 log-likelihood" convention, lower is better):

.. math::

    \mathrm{BIC} = -2 \log L + p \log n, \qquad
    \mathrm{AIC} = -2 \log L + 2p, \qquad
    \mathrm{ICL} = \mathrm{BIC} - 2 \sum_i \sum_k q_{ik} \log q_{ik}.

ICL adds twice the entropy of the soft classification q_ik, so it also penalises components
that overlap: it looks for well-separated *clusters*, where BIC looks for a good *density*.

This example simulates three clusters, two of which overlap, fits
``probmix.selection.select_gmm`` over K = 1 … 6 and all four covariance types, prints the
table and plots every criterion against K next to the soft memberships of the BIC winner.
Run it as ``python examples/plot_model_selection.py [output.png]``; it writes
``plot_model_selection.png`` by default.
"""

import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from probmix import MixtureModel
from probmix.distributions import Gaussian
from probmix.plot import plot_responsibilities
from probmix.selection import select_gmm

# %%
# Three elongated clusters; the two on the left are close enough to overlap.
truth = MixtureModel(weights=[0.35, 0.35, 0.3], components=[
    Gaussian(mean=[0.0, 0.0], covariance=[[1.0, 0.6], [0.6, 1.0]]),
    Gaussian(mean=[2.0, 3.0], covariance=[[1.0, -0.4], [-0.4, 0.8]]),
    Gaussian(mean=[8.0, 1.0], covariance=[[0.6, 0.0], [0.0, 2.0]])])
X, _ = truth.sample(600, np.random.default_rng(0))

# %%
# One GMM per (K, covariance type). A fit that fails (say, a singular covariance) would be a
# row with status "failed" and its reason, not an exception.
result = select_gmm(X, n_components=range(1, 7),
                    covariance_types=["full", "tied", "diag", "spherical"],
                    n_init=2, random_state=0)
print(result)
for criterion in ("bic", "aic", "icl"):
    best = result.best(criterion)
    print(f"best by {criterion.upper()}: {best.name} ({getattr(best, criterion):.1f})")

# %%
# Left: each criterion against K (colour: covariance type; line style: criterion; stars:
# the winners). Right: the soft memberships of the BIC winner.
fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2), layout="constrained")
result.plot(ax=left)
left.set_title("information criteria (lower is better)")
best = result.best("bic")
plot_responsibilities(best.model, X, ax=right)
right.set_title(f"BIC winner: {best.name}")
fig.savefig(sys.argv[1] if len(sys.argv) > 1 else "plot_model_selection.png", dpi=100)
