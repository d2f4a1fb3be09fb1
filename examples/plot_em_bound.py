r"""
The EM bound: log p = L + KL, step by step
==========================================

For any distribution q over the component labels,

.. math::

    \log p(X \mid \theta) = \mathcal L(q, \theta)
        + \mathrm{KL}\big(q \,\|\, p(c \mid X, \theta)\big),
    \qquad
    \mathcal L(q, \theta) = \sum_i \sum_k q_{ik}
        \big[\log \pi_k + \log p_k(x_i \mid \theta_k) - \log q_{ik}\big].

EM alternates two steps on this identity:

* the **E-step** sets q_t = p(c | X, θ_t): KL becomes zero and L touches log p;
* the **M-step** keeps q_t fixed and maximises L over θ: L(q_t, θ_{t+1}) ≥ L(q_t, θ_t). The
  log-likelihood rises by even more, since KL(q_t ‖ p(c | X, θ_{t+1})) ≥ 0 opens up again.

This example fits a two-component mixture to 1-D data with ``EMAlgorithm(keep_models=True)``,
recomputes L and KL from the kept iterates, checks them against the fit history, and plots
the zigzag. Run it as ``python examples/plot_em_bound.py [output.png]``; it writes
``plot_em_bound.png`` by default.
"""

import sys

import matplotlib.pyplot as plt
import numpy as np
from scipy.special import xlogy

from probmix import EMAlgorithm, MixtureModel
from probmix.distributions import Gaussian

# %%
# Data from a known mixture, and a deliberately poor start (both components on the left),
# so that EM needs a couple of dozen iterations.
truth = MixtureModel(weights=[0.4, 0.6], components=[
    Gaussian(mean=[-2.0], covariance=[[0.5]]), Gaussian(mean=[1.5], covariance=[[1.0]])])
X, _ = truth.sample(300, np.random.default_rng(0))
start = MixtureModel(weights=[0.5, 0.5], components=[
    Gaussian(mean=[-3.0], covariance=[[1.0]]), Gaussian(mean=[-1.0], covariance=[[1.0]])])

# %%
# Exact maximum-likelihood EM (no covariance ridge, so every M-step maximises L exactly),
# keeping every iterate θ_0, θ_1, … in the history.
result = EMAlgorithm(tol=1e-6, max_iter=200, keep_models=True).fit(X, start)
history = result.history
models = [record.model for record in history]
print(f"{result.n_iter} iterations, converged={result.converged}, "
      f"final log-likelihood per sample {result.log_likelihood:.5f}")


# %%
# L(q, θ) per sample, straight from its definition. ``xlogy`` gives 0 · log 0 = 0.
def bound(q, model):
    log_joint = model.log_joint(X)
    return float(np.mean(np.sum(q * log_joint - xlogy(q, q), axis=1)))


loglik = np.array([m.log_prob(X).mean() for m in models])  # log p(X | θ_t) / n
q = [m.responsibilities(X) for m in models]  # E-step: q_t = p(c | X, θ_t)
bound_before = np.array([bound(q[t], models[t]) for t in range(len(models) - 1)])
bound_after = np.array([bound(q[t], models[t + 1]) for t in range(len(models) - 1)])
kl_after = loglik[1:] - bound_after  # KL(q_t ‖ p(c | X, θ_{t+1}))

# The E-step closes the gap (L(q_t, θ_t) = log p(X | θ_t)), the M-step raises L, and KL ≥ 0:
assert np.allclose(bound_before, loglik[:-1], rtol=0, atol=1e-10)
assert np.all(bound_after >= bound_before - 1e-12)
assert np.all(kl_after >= -1e-12)
# ... and the fit history recorded the same numbers without a second pass over the data.
assert np.allclose(history.bound[:-1], bound_before, rtol=0, atol=1e-10)
assert np.allclose(history.bound_after_m_step[:-1], bound_after, rtol=0, atol=1e-10)

# %%
# Three panels: the data with the starting and fitted densities; the zigzag of log p and L
# (the first M-step's jump is left off the scale so the later steps are visible); and, on a
# log scale, how much each step gains: the M-step raises L by L(q_t, θ_{t+1}) − L(q_t, θ_t),
# the next E-step by the KL gap. Their sum is the rise of the log-likelihood.
fig, (ax_data, ax_zigzag, ax_gain) = plt.subplots(1, 3, figsize=(15, 4.6), layout="constrained")

grid = np.linspace(X.min() - 1.0, X.max() + 1.0, 400)[:, None]
ax_data.hist(X[:, 0], bins=40, density=True, color="0.8", label="data")
ax_data.plot(grid[:, 0], np.exp(start.log_prob(grid)), "--", color="C1", label="start θ₀")
ax_data.plot(grid[:, 0], np.exp(result.model.log_prob(grid)), color="C0",
             label=f"after {result.n_iter} iterations")
ax_data.set_xlabel("x")
ax_data.set_ylabel("density")
ax_data.set_title("data and mixture density")
ax_data.legend(fontsize="small")

# θ_0 → θ_1 gains ~1.8 nats per sample: start the zigzag at θ_1, and stop after a dozen
# steps, when the gaps become too small to see on this scale (the right panel has them all).
first = 1
steps = np.arange(first, min(len(models) - 1, first + 12))
path_x, path_y = [], []
for t in steps:
    path_x += [t, t + 1, t + 1]
    path_y += [loglik[t], bound_after[t], loglik[t + 1]]
ax_zigzag.plot(path_x, path_y, color="0.6", linewidth=1.0, zorder=1)
shown = np.arange(first, steps[-1] + 2)
ax_zigzag.plot(shown, loglik[shown], "o", color="C0", markersize=4,
               label=r"$\log p(X\mid\theta_t) = \mathcal{L}(q_t, \theta_t)$ after the E-step")
ax_zigzag.plot(steps + 1, bound_after[steps], "^", color="C2", markersize=4,
               label=r"$\mathcal{L}(q_t, \theta_{t+1})$ after the M-step")
ax_zigzag.vlines(steps + 1, bound_after[steps], loglik[steps + 1], color="C3", linewidth=2.5,
                 alpha=0.6, label=r"KL$(q_t\,\|\,p(c\mid X,\theta_{t+1}))$, closed by the E-step")
ax_zigzag.set_xlabel("iteration t")
ax_zigzag.set_ylabel("per sample")
ax_zigzag.set_title(r"$\log p = \mathcal{L} + \mathrm{KL}$ along the iterations")
ax_zigzag.legend(fontsize="small", loc="lower right")

gain_m = bound_after - bound_before
ax_gain.semilogy(np.arange(len(gain_m)), gain_m, "^-", color="C2", markersize=4,
                 label=r"M-step: $\mathcal{L}(q_t,\theta_{t+1}) - \mathcal{L}(q_t,\theta_t)$")
ax_gain.semilogy(np.arange(len(kl_after)), kl_after, "v-", color="C3", markersize=4,
                 label=r"E-step: KL$(q_t\,\|\,p(c\mid X,\theta_{t+1}))$")
ax_gain.semilogy(np.arange(len(gain_m)), np.diff(loglik), ":", color="C0",
                 label=r"sum: $\log p(X\mid\theta_{t+1}) - \log p(X\mid\theta_t)$")
ax_gain.set_xlabel("iteration t")
ax_gain.set_ylabel("gain per sample (log scale)")
ax_gain.set_title("both steps raise the log-likelihood")
ax_gain.legend(fontsize="small")

output = sys.argv[1] if len(sys.argv) > 1 else "plot_em_bound.png"
fig.savefig(output, dpi=110)
print(f"figure written to {output}")
