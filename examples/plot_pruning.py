r"""
Pruning components with a sparse Dirichlet prior (MAP-EM)
=========================================================

Start EM with far too many components (ten, on data drawn from three well-separated
clusters) and let a prior on the weights switch the surplus off. MAP-EM maximises
log p(X | θ) + log p(θ); with a Dirichlet(α) prior on π the M-step sets

.. math::

    \pi_k \propto \max(N_k + \alpha - 1,\ 0), \qquad N_k = \sum_i q_{ik},

so a component whose responsibility mass N_k falls to 1 − α or below gets weight exactly 0
and is removed from the model. With α = 1 − T/2 (T free parameters per component) this is
Figueiredo & Jain's minimum-message-length criterion: a component must explain more than T/2
points to stay. The covariances get a weak Normal-Inverse-Wishart prior
(``NormalInverseWishart.ridge``), a true prior, so the whole objective is one EM provably
never decreases *between* prunings.

The figure shows the final clusters, the number of live components per iteration with the
pruning events (``history.pruned``), and the objective, which rises while a component fades
and drops when it leaves: a pruning changes the model's dimension and the prior's support,
so the objective before and after it are not comparable. Run it as
``python examples/plot_pruning.py [output.png]``; it writes ``plot_pruning.png`` by default.
"""

import itertools
import sys

import matplotlib.pyplot as plt
import numpy as np

from probmix import EMAlgorithm
from probmix.distributions import Gaussian
from probmix.em import MAP
from probmix.init import initial_model, initial_responsibilities
from probmix.plot import plot_responsibilities
from probmix.priors import Dirichlet, NormalInverseWishart

# %%
# Three well-separated clusters of 200 points each in 2-D.
rng = np.random.default_rng(0)
centers = np.array([[-5.0, 0.0], [5.0, 0.0], [0.0, 6.0]])
X = np.vstack([c + rng.standard_normal((200, 2)) for c in centers])
n_samples, d = X.shape

# %%
# The priors. A full-covariance Gaussian in d = 2 has T = d + d(d+1)/2 = 5 free parameters,
# so the minimum-message-length weight prior is Dirichlet(1 − T/2) = Dirichlet(−1.5), an
# improper prior that prunes every component explaining at most T/2 = 2.5 points.
# ``NormalInverseWishart.ridge(0.01, d)`` regularises like ``reg_covar=0.01`` (an empty
# component would get Σ = 0.01 I) but, unlike a fixed ridge, it is a prior: its log-density
# is part of the objective and the M-step maximises it exactly.
T = d + d * (d + 1) // 2
component_prior = NormalInverseWishart.ridge(0.01, d)
m_step = MAP(weights_prior=Dirichlet(1 - T / 2), component_prior=component_prior)

# %%
# An overcomplete start: ten components from k-means++ seeds (each row assigned to its
# nearest seed, then one M-step). EM finds a local optimum only; from this seed it ends with
# the three true clusters. From other starts it can also stop with a cluster shared by two
# components, or with a tight "spike" on a handful of points (more than T/2 of them): both
# are genuine local optima of this objective.
start = initial_model(X, [Gaussian] * 10,
                      initial_responsibilities(X, 10, "kmeans++", np.random.default_rng(5)),
                      prior=component_prior)
result = EMAlgorithm(m_step=m_step, tol=1e-6, max_iter=1000).fit(X, start)
history = result.history
print(f"{result.n_iter} iterations, converged={result.converged}, "
      f"{result.model.n_components} components left")
for iteration, removed in history.pruned:
    print(f"  iteration {iteration:3d}: pruned component(s) {list(removed)}")
assert result.model.n_components == 3
# The survivors, by their index among the ten starting components:
print("survivors:", result.component_ids.tolist(), "weights:", result.model.weights.round(3))

# %%
# The guarantee: the objective (per sample) never decreases between two prunings. At a
# pruning it is compared afresh: the record after a pruning describes a model with fewer
# parameters, under a prior on a smaller simplex.
events = np.array([iteration for iteration, _ in history.pruned])
steps = np.setdiff1d(np.arange(1, len(history)), events)
assert np.all(history.objective[steps] - history.objective[steps - 1] >= -1e-9)
assert np.allclose(history.objective, history.log_likelihood + history.log_prior)

# %%
# Three panels: the fitted clusters (soft memberships, 1–3σ ellipses) with the ten starting
# means; the number of live components, one step down per pruning; and the objective split
# into its two terms. The log-prior Σ_k (α − 1) log π_k = −2.5 Σ_k log π_k grows as a
# component's weight shrinks (this is why the mode puts it at exactly 0), and loses that
# component's term when it is pruned.
fig, (ax_data, ax_count, ax_obj) = plt.subplots(1, 3, figsize=(16, 4.8), layout="constrained")

plot_responsibilities(result.model, X, ax=ax_data, size=10)
# Name the survivors by their index among the ten starting components, as history.pruned does.
survivor_handles = ax_data.get_legend().legend_handles
for handle, k, weight in zip(survivor_handles, result.component_ids, result.model.weights):
    handle.set_label(f"component {k} (π = {weight:.2f})")
starts = np.array([c.mean for c in start.components])
(start_handle,) = ax_data.plot(starts[:, 0], starts[:, 1], "k+", markersize=10,
                               markeredgewidth=1.5, label="the 10 starting means")
ax_data.legend(handles=[*survivor_handles, start_handle], fontsize="small", loc="upper right",
               framealpha=0.85)
ax_data.set_aspect("equal", adjustable="datalim")
ax_data.set_title("final clusters (3 of 10 components left)")

t = history.iteration
ax_count.step(t, history.n_components, where="post", color="C0", linewidth=2)
for iteration, removed in history.pruned:
    ax_count.axvline(iteration, color="C3", linewidth=0.8, linestyle=":")
    ax_count.annotate(f"−{','.join(map(str, removed))}",
                      (iteration, history.n_components[iteration]),
                      textcoords="offset points", xytext=(3, 4), fontsize="small", color="C3")
ax_count.set_xlabel("iteration t")
ax_count.set_ylabel("live components")
ax_count.set_yticks(range(0, 11, 2))
ax_count.set_ylim(0, 10.8)
ax_count.set_title("pruning events (history.pruned: initial indices)")

# One line per segment between prunings: within a segment the objective is monotone.
bounds = [0, *events, len(history)]
for j, (lo, hi) in enumerate(itertools.pairwise(bounds)):
    seg = slice(lo, hi)
    ax_obj.plot(t[seg], history.objective[seg], color="C0", linewidth=2,
                label="objective = log-lik. + log-prior" if j == 0 else None)
    ax_obj.plot(t[seg], history.log_likelihood[seg], color="C1", linewidth=1.2,
                linestyle="--", label="log-likelihood" if j == 0 else None)
for k, iteration in enumerate(events):
    ax_obj.axvline(iteration, color="C3", linewidth=0.8, linestyle=":",
                   label="pruning" if k == 0 else None)
ax_obj.set_xlabel("iteration t")
ax_obj.set_ylabel("per sample")
ax_obj.set_title("objective: monotone between prunings")
ax_obj.legend(fontsize="small", loc="lower right")

fig.suptitle("MAP-EM with a Dirichlet(1 − T/2) weight prior: 10 components → 3")

output = sys.argv[1] if len(sys.argv) > 1 else "plot_pruning.png"
fig.savefig(output, dpi=110)
print(f"figure written to {output}")
