r"""
A Poisson mixture: counts from several regimes
==============================================

Counts (messages per hour, arrivals per minute, reads per gene) often come from a few
regimes, each with its own rate. A mixture of Poisson distributions models that:

.. math::

    p(x \mid \theta) = \sum_k \pi_k \, \frac{\lambda_k^x e^{-\lambda_k}}{x!},

and EM fits it with the same E-step as any mixture and an M-step in closed form: the rate of
component k is the responsibility-weighted mean of the counts,

.. math::

    \lambda_k = \frac{\sum_i w_i q_{ik} x_i}{\sum_i w_i q_{ik}}.

This example checks that update by hand, chooses the number of regimes by BIC with
:func:`probmix.selection.compare` (any family, not only Gaussians), and plots the fit.
Run it as ``python examples/plot_poisson_mixture.py [output.png]``; it writes
``plot_poisson_mixture.png`` by default.
"""

import sys

import matplotlib.pyplot as plt
import numpy as np

from probmix import EMAlgorithm, MixtureModel
from probmix.distributions import Poisson
from probmix.init import initial_model, initial_responsibilities
from probmix.selection import compare

# %%
# Counts from three regimes: quiet (rate 1.5), normal (6) and busy (15) hours.
truth = MixtureModel(weights=[0.3, 0.5, 0.2], components=[
    Poisson(rate=[1.5]), Poisson(rate=[6.0]), Poisson(rate=[15.0])])
X, regime = truth.sample(1500, np.random.default_rng(0))
print(f"{len(X)} counts from 0 to {int(X.max())}; mean {X.mean():.2f}, "
      f"variance {X.var():.2f}")

# %%
# A single Poisson has its variance equal to its mean; these counts are overdispersed
# (variance ≫ mean), the first sign of a mixture.
#
# The M-step by hand
# ------------------
# Take any responsibilities q (here: from the true model) and compare the family's
# ``from_statistics`` with the weighted mean above. The statistics are (Σ w, Σ w x): sums
# that add over chunks of rows, so the same update serves chunked and weighted fits.
q = truth.responsibilities(X)
update = truth.from_statistics(truth.component_statistics(X, q))
by_hand = (q * X).sum(axis=0) / q.sum(axis=0)
assert np.allclose([c.rate[0] for c in update.components], by_hand)
assert np.allclose(update.weights, q.mean(axis=0))
print("one M-step from the true responsibilities, rates:", by_hand.round(3))

# %%
# How many regimes?
# -----------------
# One EM fit per K from k-means++ starts, compared by BIC, AIC and ICL (lower is better).
# The log-likelihood alone always prefers more components.
rng = np.random.default_rng(1)
candidates = {}
for k in range(1, 6):
    start = initial_model(X, [Poisson] * k, initial_responsibilities(X, k, "kmeans++", rng))
    candidates[f"K={k}"] = (EMAlgorithm(tol=1e-8, max_iter=1000), start)
selection = compare(X, candidates)
print(selection)
best = selection.best("bic")
print(f"best by BIC: {best.name}; by ICL: {selection.best('icl').name}")
assert best.n_components == 3

# %%
# BIC (and AIC) recover the three regimes. ICL, which adds the entropy of the soft
# classification to BIC, may prefer fewer: the quiet and normal regimes overlap (a count of
# 3 could come from either), and ICL looks for well-separated *clusters* rather than a good
# *density*. :doc:`/choosing-k` derives all three.

# %%
# The chosen fit: EM never decreased its log-likelihood, and it recovers the rates.
model = best.model
order = np.argsort([c.rate[0] for c in model.components])
rates = np.array([model.components[k].rate[0] for k in order])
weights = model.weights[order]
print("fitted rates:", rates.round(2), "weights:", weights.round(3))
assert np.allclose(rates, [1.5, 6.0, 15.0], rtol=0.15)

# %%
# Three panels: the counts with the fitted mixture and its weighted components; the
# responsibilities q_k(x) = p(c = k | x) as a function of the count, which shows where one
# regime hands over to the next (soft, since the regimes overlap); and the criteria
# against K.
fig, (ax_fit, ax_resp, ax_sel) = plt.subplots(1, 3, figsize=(16, 4.6), layout="constrained")
counts = np.arange(int(X.max()) + 1)
grid = counts[:, None].astype(float)
ax_fit.bar(counts, np.bincount(X[:, 0].astype(int)) / len(X), color="0.8",
           label=f"{len(X)} counts")
ax_fit.plot(counts, np.exp(model.log_prob(grid)), "o-", color="k", markersize=3,
            label="fitted mixture")
for j, k in enumerate(order):
    component = model.components[k]
    ax_fit.plot(counts, model.weights[k] * np.exp(component.log_prob(grid)), "--",
                color=f"C{j}", label=f"π = {model.weights[k]:.2f}, λ = {component.rate[0]:.2f}")
ax_fit.set_xlabel("count x")
ax_fit.set_ylabel("probability")
ax_fit.set_title("counts and the fitted Poisson mixture")
ax_fit.legend(fontsize="small")

resp = model.responsibilities(grid)[:, order]
ax_resp.stackplot(counts, resp.T, colors=[f"C{j}" for j in range(len(order))], alpha=0.8,
                  labels=[f"λ = {r:.1f}" for r in rates])
ax_resp.set_xlim(0, counts[-1])
ax_resp.set_ylim(0, 1)
ax_resp.set_xlabel("count x")
ax_resp.set_ylabel("responsibility p(c = k | x)")
ax_resp.set_title("which regime a count comes from")
ax_resp.legend(fontsize="small", loc="center right")

selection.plot(ax=ax_sel)
ax_sel.set_title("choosing K (lower is better)")

output = sys.argv[1] if len(sys.argv) > 1 else "plot_poisson_mixture.png"
fig.savefig(output, dpi=100)
print(f"figure written to {output}")
