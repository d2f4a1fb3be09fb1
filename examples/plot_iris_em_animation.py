r"""
The EM animation on the iris data
=================================

The fit of :ref:`the iris tutorial <sphx_glr_auto_examples_plot_iris_tutorial.py>` as an
animation: each frame is one iterate :math:`\theta_t`, drawn in the plane of the first two
principal components, with the flowers coloured by their responsibilities
:math:`q_{ik} = p(c_i = k \mid x_i, \theta_t)` (what the next M-step will use), each
component's 1 and 2σ ellipses, and the log-likelihood so far. The three components start on
top of each other at the centre of the data. Two soon split versicolor from virginica; the
third drifts to setosa but stays broad, still covering part of the other species, for about
a hundred iterations (the plateau of the tutorial's log-likelihood) before it tightens on
setosa and the log-likelihood jumps.

:func:`probmix.plot.animate_em` builds the animation from a history that kept its models
(``EMAlgorithm(keep_models=True)``) and :func:`probmix.plot.save_em_animation` writes it as
a GIF with matplotlib's ``PillowWriter`` (Pillow comes with matplotlib: no ffmpeg needed).

Run it as ``python examples/plot_iris_em_animation.py [output.png [animation.gif]]``: it
writes a storyboard of six frames to ``output.png`` (``plot_iris_em_animation.png`` by
default) and, when given a second path, the animation as a GIF.
"""

import sys

import matplotlib.pyplot as plt
import numpy as np

from probmix import EMAlgorithm
from probmix.datasets import load_iris
from probmix.distributions import Gaussian
from probmix.init import initial_model, initial_responsibilities
from probmix.plot import plot_responsibilities, save_em_animation

# %%
# The same start and fit as in the tutorial: random responsibilities, then EM to a tight
# tolerance, keeping every iterate.
X = load_iris().data
start = initial_model(X, [Gaussian] * 3,
                      initial_responsibilities(X, 3, "random", np.random.default_rng(2)))
result = EMAlgorithm(tol=1e-10, max_iter=500, keep_models=True).fit(X, start)
history = result.history
print(f"{result.n_iter} iterations, log-likelihood per flower "
      f"{history.log_likelihood[0]:.4f} → {history.log_likelihood[-1]:.4f}")

# %%
# A storyboard: six iterates side by side, the same axes for all.
shown = [0, 5, 15, 60, 115, result.n_iter]
fig, axes = plt.subplots(2, 3, figsize=(15, 5.4), layout="constrained")
for ax, t in zip(axes.flat, shown):
    plot_responsibilities(history[t].model, X, ax=ax, n_std=(1, 2), size=12, legend=False)
    ax.set_title(f"iteration {t}: log-likelihood {history.log_likelihood[t]:.3f}")
# One window for all panels, wide enough for every ellipse (equal scales, the box adjusts).
xlim = (min(ax.get_xlim()[0] for ax in axes.flat), max(ax.get_xlim()[1] for ax in axes.flat))
ylim = (min(ax.get_ylim()[0] for ax in axes.flat), max(ax.get_ylim()[1] for ax in axes.flat))
for ax in axes.flat:
    ax.set_aspect("equal", adjustable="box")
    ax.set(xlim=xlim, ylim=ylim)
fig.suptitle("EM on the iris data, iterate by iterate (PCA projection)")
output = sys.argv[1] if len(sys.argv) > 1 else "plot_iris_em_animation.png"
fig.savefig(output, dpi=80)
print(f"storyboard written to {output}")

# %%
# The animation: 45 frames spread over the iterations (the first and the last always
# included), three per second. ``animate_em`` returns the matplotlib animation itself, for
# a notebook (``anim.to_jshtml()``) or another writer.
if len(sys.argv) > 2:
    gif = save_em_animation(history, X, sys.argv[2], max_frames=45, fps=3, dpi=72)
    print(f"animation written to {gif}")
