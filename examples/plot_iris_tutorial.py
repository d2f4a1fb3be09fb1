r"""
The iris tutorial: EM for a Gaussian mixture, step by step
==========================================================

Fisher's iris data (150 flowers, four measurements each, three species) is the classic first
data set for the EM algorithm. This tutorial fits a three-component Gaussian mixture to the
measurements alone, without the species, and draws the classic figures of that fit:

1. the flowers in the plane of their first two principal components, coloured by species;
2. the fitted soft clustering: each flower coloured by its responsibilities
   :math:`q_{ik} = p(c_i = k \mid x_i, \theta)`, with 1, 2 and 3σ ellipses;
3. the log-likelihood per iteration, which EM never decreases;
4. how the component means move at each iteration;
5. probmix's centroids against scikit-learn's, from the same starting point.

The EM animation of the same fit is the next example,
:ref:`sphx_glr_auto_examples_plot_iris_em_animation.py`. The equations behind each step are
derived in the theory chapter (:doc:`/theory`).

Run it as ``python examples/plot_iris_tutorial.py [output.png]``: it writes all five figures
as one overview, ``plot_iris_tutorial.png`` by default.
"""

import sys

import matplotlib.pyplot as plt
import numpy as np

from probmix import EMAlgorithm
from probmix.datasets import load_iris
from probmix.distributions import Gaussian
from probmix.init import initial_model, initial_responsibilities
from probmix.plot import plot_history, plot_mean_changes, plot_means, plot_responsibilities

# %%
# The data
# --------
# A (150, 4) array of measurements in cm, and the species of each flower. EM will not see
# the species: they only serve to judge the clusters afterwards.
iris = load_iris()
X, species = iris.data, iris.target
print(f"{X.shape[0]} flowers; features: {', '.join(iris.feature_names)}")
print("species:", ", ".join(iris.target_names))

# %%
# Four dimensions do not fit on a page. Principal component analysis finds the plane that
# keeps most of the variance: centre the data, take the singular value decomposition
# X − x̄ = U S Vᵀ, and project on the first two right singular vectors.
center = X.mean(axis=0)
_, s, vt = np.linalg.svd(X - center, full_matrices=False)
V = vt[:2].T * np.sign(vt[:2, 0])  # fix each axis' sign, so the picture is reproducible
explained = s**2 / np.sum(s**2)
print("share of the variance on each principal axis:", explained.round(3))


def draw_species(ax):
    """Figure 1: the flowers on their first two principal components, by species."""
    Z = (X - center) @ V
    for j, name in enumerate(iris.target_names):
        ax.scatter(Z[species == j, 0], Z[species == j, 1], s=16, label=name,
                   color=f"C{j + 3}", linewidths=0)
    ax.set_xlabel(f"PC1 ({explained[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({explained[1]:.0%})")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(fontsize="small")
    ax.set_title("the species (not shown to EM)")


fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
draw_species(ax)

# %%
# Setosa stands apart; versicolor and virginica overlap. A mixture model has to find that
# structure from the measurements alone.
#
# The starting point
# ------------------
# EM needs initial parameters θ₀ = (π, μ_k, Σ_k). Here every flower gets random
# responsibilities q_ik (a random point of the simplex), and one M-step turns them into
# weights, means and covariances: three broad components, all near the centre of the data.
# This makes the path of EM long enough to watch; :class:`probmix.GMM` starts from k-means++
# seeds instead and runs several starts (``n_init``), because EM only finds a *local*
# maximum.
rng = np.random.default_rng(2)
q0 = initial_responsibilities(X, 3, "random", rng)
start = initial_model(X, [Gaussian] * 3, q0)
print("initial weights:", start.weights.round(3))

# %%
# Fitting by EM
# -------------
# :class:`~probmix.EMAlgorithm` alternates the E-step (responsibilities from the current
# θ) and the M-step (weighted means and covariances from the responsibilities) until the
# log-likelihood per flower changes by less than ``tol``. ``keep_models=True`` keeps every
# iterate θ_0, θ_1, … in the history, for the figures below.
result = EMAlgorithm(tol=1e-10, max_iter=500, keep_models=True).fit(X, start)
history = result.history
model = result.model
print(f"converged={result.converged} after {result.n_iter} iterations; "
      f"log-likelihood per flower {result.log_likelihood:.5f}")
print("weights:", model.weights.round(3))
print("means:\n", np.array([c.mean for c in model.components]).round(3))

# %%
# The clusters against the species: a contingency table, component (rows) by species
# (columns). Setosa is recovered exactly; a few versicolor and virginica flowers land in
# each other's component.
labels = model.responsibilities(X).argmax(axis=1)
table = np.array([[np.sum((labels == k) & (species == j)) for j in range(3)]
                  for k in range(3)])
print(table)


# %%
# The fitted soft clustering
# --------------------------
# Each flower's colour mixes the component colours in proportion to its responsibilities,
# so a flower between versicolor and virginica shows a blend. The ellipses are the fitted
# Gaussians at 1, 2 and 3 standard deviations, projected onto the same plane
# (mean (μ − x̄) V, covariance Vᵀ Σ V).
def draw_soft_clustering(ax):
    """Figure 2: soft memberships and the fitted components, in the PCA plane."""
    plot_responsibilities(model, X, ax=ax, size=14)
    ax.set_title("the fitted soft clustering")


fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
draw_soft_clustering(ax)


# %%
# The log-likelihood per iteration
# --------------------------------
# EM never decreases the log-likelihood log p(X | θ_t). With the exact E-step, the bound
# L(q_t, θ_t) touches it (the KL divergence between q_t and the posterior is 0), and each
# M-step raises the bound to L(q_t, θ_{t+1}), below the new log-likelihood by a KL gap that
# the next E-step closes (:doc:`/theory`, §2–3). The history records all of it
# (``history.log_likelihood``, ``.bound``, ``.kl``, ``.bound_after_m_step``).
assert np.all(np.diff(history.log_likelihood) >= -1e-12)
assert np.allclose(history.kl, 0.0, atol=1e-12)

# %%
# The trace has a long plateau: for dozens of iterations two components share the
# versicolor and virginica cloud while the third takes setosa, a near-saddle of the
# likelihood that EM leaves only slowly. A slow stretch looks like convergence to a loose
# stopping rule. With probmix's default ``tol=1e-3`` this start would stop on the plateau:
gain = np.diff(history.log_likelihood)
early = int(np.argmax(gain < 1e-3)) + 1
print(f"with tol=1e-3 EM would stop at t={early}, log-likelihood "
      f"{history.log_likelihood[early]:.4f} per flower instead of "
      f"{history.log_likelihood[-1]:.4f}")
assert history.log_likelihood[early] < history.log_likelihood[-1] - 0.5

# %%
# Tight tolerances help, and restarts help more: from k-means++ seeds, as ``GMM`` starts,
# EM on iris reaches the same maximum in about twenty iterations.


def draw_log_likelihood(ax):
    """Figure 3: the log-likelihood, the bound and the KL divergence per iteration."""
    plot_history(history, ax=ax)
    ax.set_title("log-likelihood per iteration")


fig, ax = plt.subplots(figsize=(6.5, 4.8), layout="constrained")
draw_log_likelihood(ax)


# %%
# How the means move
# ------------------
# Left: each component's mean at every iteration, in the PCA plane, from θ₀ (circle) to
# the fit (cross). Right: the length of each step, ‖μ_k^(t) − μ_k^(t−1)‖, on a log scale.
# The first steps are large; then the steps shrink geometrically (a straight line on this
# scale): near a maximum EM converges linearly, and slowest where components overlap
# (versicolor and virginica). The changes are small long before the log-likelihood stops
# changing, which is why probmix stops on the objective, not on the parameters.
def draw_mean_paths(ax):
    """Figure 4a: the path of each component's mean."""
    plot_means(history, ax=ax, X=X)
    ax.set_title("component means over the iterations")


def draw_mean_changes(ax):
    """Figure 4b: the length of each step of each mean."""
    plot_mean_changes(history, ax=ax)
    ax.set_title("change of the means per iteration")


fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6), layout="constrained")
draw_mean_paths(left)
draw_mean_changes(right)

# %%
# probmix against scikit-learn
# ----------------------------
# scikit-learn's :class:`sklearn.mixture.GaussianMixture` runs the same EM. Started from the
# same θ₀ (its ``weights_init``, ``means_init`` and ``precisions_init``, the inverse
# covariances) with no covariance ridge, it reaches the same centroids: they differ by no
# more than the stopping tolerance allows (scikit-learn judges convergence on a value it
# computes before its last M-step, so it takes one step more). scikit-learn is not a
# dependency of probmix; without it this comparison is skipped.
try:
    from sklearn.mixture import GaussianMixture
except ImportError:
    GaussianMixture = None
    print("scikit-learn is not installed: skipping the comparison "
          "(pip install scikit-learn to run it)")

probmix_means = np.array([c.mean for c in model.components])
sklearn_means = None
if GaussianMixture is not None:
    reference = GaussianMixture(
        n_components=3, covariance_type="full", tol=1e-10, reg_covar=0.0, max_iter=500,
        weights_init=start.weights,
        means_init=np.array([c.mean for c in start.components]),
        precisions_init=np.array([np.linalg.inv(c.covariance_matrix)
                                  for c in start.components])).fit(X)
    sklearn_means = reference.means_
    gap = np.abs(sklearn_means - probmix_means).max()
    print(f"scikit-learn: {reference.n_iter_} iterations; largest difference of the "
          f"centroids: {gap:.1e} cm")
    assert gap < 1e-4
    assert np.array_equal(reference.predict(X), labels)


def draw_centroids(ax):
    """Figure 5: probmix's and scikit-learn's centroids in the PCA plane."""
    Z = (X - center) @ V
    ax.scatter(Z[:, 0], Z[:, 1], s=10, color="0.75", linewidths=0, label="flowers")
    P = (probmix_means - center) @ V
    ax.plot(P[:, 0], P[:, 1], "X", markersize=12, color="C0", markeredgecolor="black",
            linestyle="none", label="probmix")
    if sklearn_means is not None:
        S = (sklearn_means - center) @ V
        ax.plot(S[:, 0], S[:, 1], "o", markersize=18, markerfacecolor="none",
                markeredgecolor="C3", markeredgewidth=2, linestyle="none",
                label="scikit-learn")
    else:
        ax.text(0.5, 0.05, "scikit-learn not installed", transform=ax.transAxes,
                ha="center")
    ax.set_xlabel("PC1")
    ax.set_ylabel("PC2")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(fontsize="small")
    ax.set_title("centroids: probmix and scikit-learn")


fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
draw_centroids(ax)

# %%
# All five figures together
# -------------------------
# The overview that ``python examples/plot_iris_tutorial.py`` writes.
fig, axes = plt.subplot_mosaic([["species", "soft", "centroids"],
                                ["loglik", "paths", "changes"]],
                               figsize=(18, 10), layout="constrained")
draw_species(axes["species"])
draw_soft_clustering(axes["soft"])
draw_centroids(axes["centroids"])
draw_log_likelihood(axes["loglik"])
draw_mean_paths(axes["paths"])
draw_mean_changes(axes["changes"])
fig.suptitle("EM for a 3-component Gaussian mixture on Fisher's iris data")
output = sys.argv[1] if len(sys.argv) > 1 else "plot_iris_tutorial.png"
fig.savefig(output, dpi=80)
print(f"figure written to {output}")
