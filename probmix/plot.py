"""Plots of a mixture fit: soft memberships with covariance ellipses, and the EM history.

matplotlib is imported inside the functions, so ``import probmix`` (and ``import probmix.plot``)
does not load it. Every plotting function draws into ``ax`` when given one, and otherwise into
a new figure from :mod:`matplotlib.pyplot`; it returns the Axes it drew on. The exceptions are
:func:`animate_em`, which returns a matplotlib animation, and :func:`save_em_animation`, which
writes it as a GIF.

=============================== ==============================================================
what                            function
=============================== ==============================================================
log-likelihood, L(q, θ) and KL  :func:`plot_history`
soft memberships, 1–3σ ellipses :func:`plot_responsibilities` (optionally on a PCA projection)
component means over iterations :func:`plot_means`, :func:`plot_mean_changes`,
                                :func:`component_trajectories`
EM as an animation (GIF)        :func:`animate_em`, :func:`save_em_animation`
model-selection curves          :func:`plot_selection`
=============================== ==============================================================

The means and the animation need every iterate θ_t: fit with
``EMAlgorithm(keep_models=True)``, whose history keeps them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from ._validation import check_data
from .distributions.gaussian import Gaussian
from .em.algorithm import EMResult, History
from .exceptions import NotFittedError
from .mixture import MixtureModel

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.animation import FuncAnimation
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.patches import Ellipse

__all__ = ["plot_history", "plot_responsibilities", "plot_selection", "plot_means",
           "plot_mean_changes", "animate_em", "save_em_animation", "component_trajectories",
           "component_colors", "blend_colors"]

PROJECTIONS = ("pca", None)


# -- inputs ---------------------------------------------------------------------------------------
def _as_mixture(model: Any) -> MixtureModel:
    """The MixtureModel behind a fitted estimator (anything with ``model_``) or a mixture."""
    if isinstance(model, MixtureModel):
        return model
    fitted = getattr(model, "model_", None)
    if isinstance(fitted, MixtureModel):
        return fitted
    if hasattr(model, "get_params"):  # an estimator that was not fitted yet
        raise NotFittedError(f"this {type(model).__name__} is not fitted yet: call fit(X) "
                             "before plotting it")
    raise TypeError(f"expected a MixtureModel or a fitted GMM, got {type(model).__name__}")


def _as_history(history: Any) -> History:
    """The History of an EMResult, a fitted estimator (``history_``) or a History itself."""
    if isinstance(history, History):
        return history
    if isinstance(history, EMResult):
        return history.history
    fitted = getattr(history, "history_", None)
    if isinstance(fitted, History):
        return fitted
    if hasattr(history, "get_params"):
        raise NotFittedError(f"this {type(history).__name__} is not fitted yet: call fit(X) "
                             "before plotting its history")
    raise TypeError("expected a History, an EMResult or a fitted GMM, got "
                    f"{type(history).__name__}")


# -- colours ----------------------------------------------------------------------------------
def component_colors(n_components: int) -> np.ndarray:
    """One RGBA colour per component, an ndarray of shape (n_components, 4).

    The qualitative ``tab10`` palette up to ten components, evenly spaced ``turbo`` hues beyond.
    """
    from matplotlib import colormaps

    if n_components <= 10:
        return np.asarray(colormaps["tab10"](np.arange(n_components)), dtype=float)
    return np.asarray(colormaps["turbo"](np.linspace(0.05, 0.95, n_components)), dtype=float)


def blend_colors(responsibilities: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Each row's colour as the responsibility-weighted average of the component colours.

    Parameters
    ----------
    responsibilities : ndarray of shape (n_samples, n_components)
        Rows summing to one.
    colors : ndarray of shape (n_components, 4)
        RGBA colour of each component.

    Returns
    -------
    ndarray of shape (n_samples, 4)
        Opaque RGBA colours; a row with q_ik = 1 gets exactly component k's colour, an
        ambiguous row a mixture of its candidates' colours.
    """
    q = np.asarray(responsibilities, dtype=float)
    rgb = np.clip(q @ np.asarray(colors, dtype=float)[:, :3], 0.0, 1.0)
    return np.column_stack([rgb, np.ones(len(rgb))])


# -- geometry -------------------------------------------------------------------------------------
def _ellipse(mean2: Any, cov2: Any, n_std: float, **kwargs: Any) -> Ellipse:
    """The ellipse {x : (x − m)ᵀ Σ⁻¹ (x − m) = n_std²} of a 2-D Gaussian, as a patch.

    Its semi-axes are ``n_std √λ`` along the eigenvectors of the 2×2 covariance Σ.
    """
    from matplotlib.patches import Ellipse

    cov2 = np.asarray(cov2, dtype=float)
    if cov2.shape != (2, 2):
        raise ValueError(f"cov2 must have shape (2, 2), got {cov2.shape}")
    eigenvalues, eigenvectors = np.linalg.eigh(0.5 * (cov2 + cov2.T))  # ascending
    major = eigenvectors[:, 1]
    width, height = 2.0 * n_std * np.sqrt(np.maximum(eigenvalues[::-1], 0.0))
    angle = float(np.degrees(np.arctan2(major[1], major[0])))
    return Ellipse(xy=tuple(np.asarray(mean2, dtype=float)), width=float(width),
                   height=float(height), angle=angle, **kwargs)


def _pca_basis(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre x̄, the first two principal axes V (d, 2) and their share of the variance.

    From the SVD of the centred data; each axis is signed so its largest entry is positive,
    so the picture does not flip between runs or platforms.
    """
    center = X.mean(axis=0)
    _, s, vt = np.linalg.svd(X - center, full_matrices=False)
    V = vt[:2].T
    signs = np.sign(V[np.argmax(np.abs(V), axis=0), [0, 1]])
    V = V * np.where(signs == 0, 1.0, signs)
    total = float(np.sum(s**2))
    explained = s[:2] ** 2 / total if total > 0 else np.zeros(2)
    return center, V, explained


@attrs.frozen
class _Projected:
    """Data and Gaussian components in the 2-D plotting plane.

    A point maps to ``(x − center) @ basis``, a Gaussian mean m to ``(m − center) @ basis`` and
    its covariance Σ to ``basisᵀ Σ basis``; ``covariances[k]`` is None for a non-Gaussian
    component.
    """

    points: np.ndarray
    means: list[np.ndarray | None]
    covariances: list[np.ndarray | None]
    center: np.ndarray
    basis: np.ndarray
    axis_labels: tuple[str, str]


def _project(mixture: MixtureModel, X: np.ndarray, projection: str | None,
             feature_names: Sequence[str] | None = None) -> _Projected:
    d = X.shape[1]
    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {PROJECTIONS}, got {projection!r}")
    if d < 2:
        raise ValueError("plot_responsibilities needs at least 2 features, got 1: "
                         "plot a 1-D mixture's density instead")
    names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(d)]
    if len(names) != d:
        raise ValueError(f"got {len(names)} feature names for {d} features")
    if d > 2 and projection == "pca":
        center, basis, explained = _pca_basis(X)
        labels = (f"PC1 ({explained[0]:.0%} of variance)", f"PC2 ({explained[1]:.0%})")
    else:  # the first two coordinates: a projection too, onto e_0 and e_1
        center, basis = np.zeros(d), np.eye(d)[:, :2]
        labels = (names[0], names[1])
    means: list[np.ndarray | None] = []
    covs: list[np.ndarray | None] = []
    for comp in mixture.components:
        if isinstance(comp, Gaussian):
            means.append((comp.mean - center) @ basis)
            covs.append(basis.T @ comp.covariance_matrix @ basis)
        else:
            means.append(None)
            covs.append(None)
    return _Projected((X - center) @ basis, means, covs, center, basis, labels)


# -- plots ------------------------------------------------------------------------------------
def plot_responsibilities(model: Any, X: Any, ax: Axes | None = None, *,
                          projection: str | None = "pca", n_std: Sequence[float] = (1, 2, 3),
                          colors: Any = None, feature_names: Sequence[str] | None = None,
                          size: float = 18.0, legend: bool = True) -> Axes:
    """Scatter the rows coloured by their soft membership, with each Gaussian's 1–3σ ellipses.

    Each point's colour is Σ_k q_ik c_k, the component colours c_k weighted by the
    responsibilities q_ik = p(c = k | x_i, θ): confidently assigned points take their
    component's colour, points between components a blend.

    Parameters
    ----------
    model : MixtureModel or fitted GMM
    X : array-like of shape (n_samples, n_features)
        Rows to plot (n_features >= 2).
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.
    projection : {"pca", None}, default="pca"
        How data with more than two features reach the plane: ``"pca"`` projects the rows,
        the means ((m − x̄) V) and the covariances (Vᵀ Σ V) on the first two principal axes
        V of ``X``; ``None`` keeps the first two features. Two features are plotted as they are.
    n_std : sequence of float, default=(1, 2, 3)
        Mahalanobis radii of the ellipses drawn for each Gaussian component of positive
        weight. Components of other families get no ellipse.
    colors : array-like of shape (n_components, 4), optional
        RGBA component colours; :func:`component_colors` by default.
    feature_names : sequence of str, optional
        Axis labels when no projection is applied.
    size : float, default=18
        Marker area of the points.
    legend : bool, default=True
        Add a legend naming each component and its weight π_k.

    Returns
    -------
    matplotlib.axes.Axes
        The points are ``ax.collections[0]``; the ellipses are ``ax.patches``.

    Raises
    ------
    NotFittedError
        For an estimator that was not fitted.
    ValueError
        For fewer than two features, data not matching the model, or an unknown projection.
    """
    from matplotlib.lines import Line2D

    mixture = _as_mixture(model)
    X = check_data(X, n_features=mixture.n_features)
    K = mixture.n_components
    base = component_colors(K) if colors is None else np.asarray(colors, dtype=float)
    if base.shape != (K, 4):
        raise ValueError(f"colors must have shape ({K}, 4), got {base.shape}")
    proj = _project(mixture, X, projection, feature_names)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    resp = mixture.responsibilities(X)
    ax.scatter(proj.points[:, 0], proj.points[:, 1], c=blend_colors(resp, base), s=size,
               linewidths=0, zorder=2)
    for k in range(K):
        mean2, cov2 = proj.means[k], proj.covariances[k]
        if mean2 is None or cov2 is None or mixture.weights[k] == 0:
            continue
        for n in n_std:
            # Fainter outer ellipses: the 1σ one carries the shape, the others the extent.
            alpha = 0.95 / (1.0 + 0.45 * (n - 1))
            ax.add_patch(_ellipse(mean2, cov2, n, fill=False, edgecolor=base[k][:3],
                                  linewidth=1.6, alpha=alpha, zorder=3))
        ax.plot(*mean2, marker="X", markersize=9, color=base[k][:3], markeredgecolor="black",
                linestyle="none", zorder=4)
    ax.set_xlabel(proj.axis_labels[0])
    ax.set_ylabel(proj.axis_labels[1])
    if projection == "pca" and X.shape[1] > 2:
        # Principal coordinates share one unit: equal scales keep ellipse shapes honest.
        ax.set_aspect("equal", adjustable="datalim")
    if legend:
        handles = [Line2D([], [], marker="o", linestyle="none", color=base[k][:3],
                          label=f"component {k} (π = {mixture.weights[k]:.2f})")
                   for k in range(K)]
        ax.legend(handles=handles, loc="best", fontsize="small", framealpha=0.85)
    ax.autoscale_view()
    return ax


def plot_history(history: Any, ax: Axes | None = None, *, kl_ax: Axes | None = None,
                 m_step: bool = True) -> Axes:
    """Log-likelihood, bound L(q, θ) and KL per EM iteration, per unit sample weight.

    The decomposition log p(X|θ) = L(q, θ) + KL(q ‖ p(c|X, θ)) holds at every point. The
    log-likelihood and the bound L(q_t, θ_t) share the left axis; the KL divergence, zero after
    an exact E-step, goes on a twin axis on the right (or on ``kl_ax``). The final objective
    (what convergence is judged on) is marked with a star and a dotted line.

    Parameters
    ----------
    history : History, EMResult or fitted GMM
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.
    kl_ax : matplotlib Axes, optional
        Where to draw the KL curves, e.g. a second panel; a twin of ``ax`` by default.
    m_step : bool, default=True
        Also show what each M-step did, where the history has it: the bound
        L(q_t, θ_{t+1}) (at x = t + 1, it lies below the log-likelihood of θ_{t+1}) and the
        gap KL(q_t ‖ p(c|X, θ_{t+1})) = log p(X|θ_{t+1}) − L(q_t, θ_{t+1}) that the next
        E-step closes.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``; its first line is the log-likelihood, one point per record.
    """
    h = _as_history(history)
    if len(h) == 0:
        raise ValueError("the history is empty")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    t = h.iteration.astype(float)
    ll, bound, kl, objective = h.log_likelihood, h.bound, h.kl, h.objective

    ax.plot(t, ll, "o-", color="C0", markersize=3.5, linewidth=1.5,
            label=r"log-likelihood $\log p(X\mid\theta_t)$")
    ax.plot(t, bound, "--", color="C1", linewidth=1.5,
            label=r"bound $\mathcal{L}(q_t, \theta_t)$")
    if not np.allclose(objective, ll, rtol=0, atol=1e-12):
        ax.plot(t, objective, ":", color="C4", linewidth=1.5, label="objective")
    after = h.bound_after_m_step
    has_after = m_step and bool(np.any(np.isfinite(after[:-1])))
    if has_after:
        ax.plot(t[:-1] + 1, after[:-1], "^", color="C2", markersize=4, linestyle="none",
                label=r"after M-step $\mathcal{L}(q_t, \theta_{t+1})$")
    ax.axhline(objective[-1], color="0.5", linewidth=0.8, linestyle=":", zorder=0)
    ax.plot([t[-1]], [objective[-1]], marker="*", markersize=13, color="gold",
            markeredgecolor="black", linestyle="none", zorder=5,
            label=f"final objective {objective[-1]:.4f}")
    ax.set_xlabel("iteration t")
    ax.set_ylabel("per sample")

    twin = kl_ax is None
    if kl_ax is None:
        kl_ax = ax.twinx()
    kl_ax.plot(t, kl, "s-", color="C3", markersize=2.5, linewidth=1.0,
               label=r"KL$(q_t \,\|\, p(c\mid X,\theta_t))$")
    if has_after:
        kl_ax.plot(t[1:], h.kl_after_m_step[:-1], "v:", color="C3", markersize=3, linewidth=1.0,
                   alpha=0.7,
                   label=r"KL$(q_t \,\|\, p(c\mid X,\theta_{t+1}))$")
    kl_ax.set_ylabel("KL divergence per sample", color="C3")
    kl_ax.tick_params(axis="y", colors="C3")
    lo, hi = kl_ax.get_ylim()
    kl_ax.set_ylim(min(lo, 0.0), hi)

    if twin:
        # One legend for both scales, on the twin: it is drawn above ax and would hide it.
        handles, labels = ax.get_legend_handles_labels()
        more = kl_ax.get_legend_handles_labels()
        # Below the axes: inside it would cover one of the two sets of curves.
        kl_ax.legend(handles + more[0], labels + more[1], loc="upper center",
                     bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize="small", frameon=False)
    else:
        ax.legend(loc="lower right", fontsize="small", framealpha=0.9)
        kl_ax.legend(loc="best", fontsize="small", framealpha=0.9)
    return ax


#: line style and marker of each model-selection criterion
_CRITERION_STYLES = {"bic": ("-", "o"), "aic": ("--", "s"), "icl": (":", "^")}


def plot_selection(result: Any, ax: Axes | None = None, *,
                   criteria: Sequence[str] = ("bic", "aic", "icl")) -> Axes:
    """Model-selection criteria against the number of components.

    One colour per group of candidates (the covariance type for
    :func:`~probmix.selection.select_gmm`), one line style per criterion; a star marks the
    best candidate of each criterion (lowest value), and a red cross on the axis each
    candidate that failed to fit.

    Parameters
    ----------
    result : SelectionResult
        From :func:`probmix.selection.select_gmm` or :func:`probmix.selection.compare`.
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.
    criteria : sequence of {"bic", "aic", "icl"}, default=("bic", "aic", "icl")

    Returns
    -------
    matplotlib.axes.Axes
        One line per (group, criterion), in that order, then the stars.
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    from .selection import SelectionResult

    if not isinstance(result, SelectionResult):
        raise TypeError(f"expected a SelectionResult, got {type(result).__name__}")
    for c in criteria:
        if c not in _CRITERION_STYLES:
            raise ValueError(f"criteria must be among {tuple(_CRITERION_STYLES)}, got {c!r}")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    groups = list(dict.fromkeys(c.group for c in result.candidates))
    colors = component_colors(len(groups))
    ok = [c for c in result.candidates if c.ok]
    for g, color in zip(groups, colors):
        members = sorted((c for c in ok if c.group == g), key=lambda c: c.n_components)
        if not members:
            continue
        k = [c.n_components for c in members]
        for crit in criteria:
            style, marker = _CRITERION_STYLES[crit]
            ax.plot(k, [getattr(c, crit) for c in members], linestyle=style, marker=marker,
                    color=color[:3], markersize=4, linewidth=1.4, label=f"{crit.upper()}, {g}")
    # Two small legends instead of one entry per line: colour = group, style = criterion.
    handles = [Line2D([], [], color=color[:3], linewidth=2.5, label=g)
               for g, color in zip(groups, colors)] if len(groups) > 1 else []
    handles += [Line2D([], [], color="0.25",
                       linestyle=_CRITERION_STYLES[c][0],  # type: ignore[arg-type]
                       marker=_CRITERION_STYLES[c][1], markersize=4, label=c.upper())
                for c in criteria]
    if ok:
        for crit in criteria:
            best = result.best(crit)
            ax.plot([best.n_components], [getattr(best, crit)], marker="*", markersize=15,
                    color="gold", markeredgecolor="black", linestyle="none", zorder=5,
                    label=f"best {crit.upper()}: {best.name}")
        names = "; ".join(f"{c.upper()} {result.best(c).name}" for c in criteria)
        handles.append(Line2D([], [], marker="*", markersize=12, color="gold",
                              markeredgecolor="black", linestyle="none", label=f"best: {names}"))
    failed = [c for c in result.candidates if not c.ok]
    if failed:
        # at the bottom of the axes, whatever the criteria's scale
        ax.plot([c.n_components for c in failed], [0.03] * len(failed), "x", color="red",
                markersize=8, transform=ax.get_xaxis_transform(), linestyle="none",
                label="failed")
        handles.append(Line2D([], [], marker="x", color="red", linestyle="none",
                              label=f"failed to fit ({len(failed)})"))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("number of components K")
    ax.set_ylabel("criterion (lower is better)")
    ax.legend(handles=handles, loc="best", fontsize="small", framealpha=0.9)
    return ax


# -- iterates: means over iterations, and the animation ------------------------------------------
def _kept_models(history: Any) -> tuple[History, list[MixtureModel]]:
    """The history and its models θ_0 … θ_n, or a ValueError saying how to keep them."""
    h = _as_history(history)
    if len(h) == 0:
        raise ValueError("the history is empty")
    models = [r.model for r in h]
    if any(m is None for m in models):
        raise ValueError("this history does not keep the models θ_t: fit with "
                         "EMAlgorithm(keep_models=True) (GMM does not keep them)")
    return h, models  # type: ignore[return-value]


def _component_ids(h: History, models: Sequence[MixtureModel]) -> list[np.ndarray]:
    """For each record, the initial index of each of its components (pruning removes some)."""
    alive = np.arange(models[0].n_components)
    ids = []
    for record, model in zip(h, models):
        if record.pruned:
            alive = alive[~np.isin(alive, record.pruned)]
        if alive.size != model.n_components:
            raise ValueError(f"record {record.iteration} has {model.n_components} components "
                             f"but the pruning events leave {alive.size}")
        ids.append(alive)
    return ids


def component_trajectories(history: Any, parameter: str = "mean") -> np.ndarray:
    """Each component's parameter vector at every iteration, from a history that kept models.

    Parameters
    ----------
    history : History or EMResult
        From ``EMAlgorithm(keep_models=True)``.
    parameter : str, default="mean"
        A vector attribute of the components with one entry per feature: ``"mean"`` for the
        Gaussian families and ``StudentT``, ``"rate"`` for ``Poisson``, ``"p"`` for
        ``Bernoulli``.

    Returns
    -------
    ndarray of shape (n_records, n_components, n_features)
        Entry ``[t, k]`` is component k's parameter in θ_t, k indexing the components of the
        initial model; NaN once component k has been pruned.

    Raises
    ------
    ValueError
        If the history did not keep its models, or a component lacks ``parameter``.

    Examples
    --------
    >>> import numpy as np
    >>> from probmix import EMAlgorithm, MixtureModel
    >>> from probmix.distributions import Gaussian
    >>> from probmix.plot import component_trajectories
    >>> X = np.array([[-2.0], [-1.5], [1.0], [2.5]])
    >>> start = MixtureModel(weights=[0.5, 0.5], components=[
    ...     Gaussian(mean=[-1.0], covariance=[[1.0]]), Gaussian(mean=[1.0], covariance=[[1.0]])])
    >>> result = EMAlgorithm(keep_models=True, tol=1e-6).fit(X, start)
    >>> paths = component_trajectories(result)
    >>> paths.shape[1:]                  # two components, one feature
    (2, 1)
    >>> len(paths) == result.n_iter + 1  # θ_0 … θ_n
    True
    >>> paths[0, :, 0].tolist()          # the starting means
    [-1.0, 1.0]
    """
    h, models = _kept_models(history)
    ids = _component_ids(h, models)
    d = models[0].n_features
    out = np.full((len(models), models[0].n_components, d), np.nan)
    for t, (model, alive) in enumerate(zip(models, ids)):
        for k, comp in zip(alive, model.components):
            value = getattr(comp, parameter, None)
            if value is None:
                raise ValueError(f"a {type(comp).__name__} component has no {parameter!r}: "
                                 "pass parameter= the name of a per-feature vector, e.g. "
                                 "'mean', 'rate' or 'p'")
            vector = np.asarray(value, dtype=float)
            if vector.shape != (d,):
                raise ValueError(f"{type(comp).__name__}.{parameter} has shape {vector.shape}, "
                                 f"not one entry per feature ({d},)")
            out[t, k] = vector
    return out


def plot_means(history: Any, ax: Axes | None = None, *, X: Any = None,
               parameter: str = "mean", projection: str | None = "pca",
               feature_names: Sequence[str] | None = None, colors: Any = None,
               size: float = 8.0) -> Axes:
    """The path of each component's mean over the EM iterations, in the plotting plane.

    One line per component from its mean in θ_0 (a circle) to its mean in the final model
    (a cross), one dot per iteration: early iterations take long steps, the last ones pile up
    where EM converges. With ``X``, the rows are drawn in grey underneath.

    Parameters
    ----------
    history : History or EMResult
        From ``EMAlgorithm(keep_models=True)``.
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.
    X : array-like of shape (n_samples, n_features), optional
        Data drawn underneath, and the data defining the PCA plane (as in
        :func:`plot_responsibilities`, so the two pictures share their axes). Without it,
        the first two coordinates are used.
    parameter : str, default="mean"
        The component attribute to follow (see :func:`component_trajectories`).
    projection : {"pca", None}, default="pca"
        How more than two features reach the plane (only with ``X``): the first two
        principal axes of ``X``, or (``None``) the first two features.
    feature_names : sequence of str, optional
        Axis labels when no projection is applied.
    colors : array-like of shape (n_components, 4), optional
        RGBA colour of each initial component; :func:`component_colors` by default.
    size : float, default=8
        Marker area of the data points.

    Returns
    -------
    matplotlib.axes.Axes
        Line ``k`` of ``ax.get_lines()`` is component k's path, one point per record.

    Raises
    ------
    ValueError
        If the history did not keep its models, or for data of fewer than two features.
    """
    h, models = _kept_models(history)
    paths = component_trajectories(h, parameter)
    T, K, d = paths.shape
    base = component_colors(K) if colors is None else np.asarray(colors, dtype=float)
    if base.shape != (K, 4):
        raise ValueError(f"colors must have shape ({K}, 4), got {base.shape}")
    if d < 2:
        raise ValueError("plot_means needs at least 2 features, got 1: plot "
                         "component_trajectories(history)[:, k, 0] against the iteration")
    if X is not None:
        X = check_data(X, n_features=d)
        proj = _project(models[-1], X, projection, feature_names)
        center, basis, labels = proj.center, proj.basis, proj.axis_labels
    else:
        names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(d)]
        center, basis, labels = np.zeros(d), np.eye(d)[:, :2], (names[0], names[1])
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    planar = (paths - center) @ basis  # (T, K, 2); NaN rows stay NaN
    for k in range(K):
        ax.plot(planar[:, k, 0], planar[:, k, 1], "-", marker=".", markersize=5,
                color=base[k][:3], linewidth=1.4, zorder=3, label=f"component {k}")
    for k in range(K):
        live = np.flatnonzero(np.isfinite(planar[:, k, 0]))
        ax.plot(*planar[live[0], k], marker="o", markersize=7, markerfacecolor="white",
                markeredgecolor=base[k][:3], linestyle="none", zorder=4)
        ax.plot(*planar[live[-1], k], marker="X", markersize=10, color=base[k][:3],
                markeredgecolor="black", linestyle="none", zorder=5)
    if X is not None:
        points = (X - center) @ basis
        ax.scatter(points[:, 0], points[:, 1], s=size, color="0.75", linewidths=0, zorder=1)
        if projection == "pca" and d > 2:
            ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.legend(loc="best", fontsize="small", framealpha=0.85,
              title=f"{parameter}: θ₀ (o) → θ_{T - 1} (x)", title_fontsize="small")
    return ax


def plot_mean_changes(history: Any, ax: Axes | None = None, *, parameter: str = "mean",
                      colors: Any = None) -> Axes:
    """How far each component's mean moves per EM iteration, ‖μ_k^(t) − μ_k^(t−1)‖.

    On a log scale: near a maximum EM converges linearly, so the steps shrink geometrically
    (a straight line), at a rate set by how much the components overlap.

    Parameters
    ----------
    history : History or EMResult
        From ``EMAlgorithm(keep_models=True)``.
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.
    parameter : str, default="mean"
        The component attribute to follow (see :func:`component_trajectories`).
    colors : array-like of shape (n_components, 4), optional
        RGBA colour of each initial component; :func:`component_colors` by default.

    Returns
    -------
    matplotlib.axes.Axes
        Line ``k`` is component k: x = t (1 … n), y = the Euclidean norm of its change between
        θ_{t−1} and θ_t.

    Raises
    ------
    ValueError
        If the history did not keep its models or has a single record.
    """
    paths = component_trajectories(history, parameter)
    T, K, _ = paths.shape
    if T < 2:
        raise ValueError("the history has a single record: no change to plot")
    base = component_colors(K) if colors is None else np.asarray(colors, dtype=float)
    if base.shape != (K, 4):
        raise ValueError(f"colors must have shape ({K}, 4), got {base.shape}")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    steps = np.linalg.norm(np.diff(paths, axis=0), axis=2)  # (T - 1, K)
    t = np.arange(1, T)
    for k in range(K):
        ax.plot(t, steps[:, k], "o-", markersize=3, color=base[k][:3], linewidth=1.3,
                label=f"component {k}")
    ax.set_yscale("log")
    ax.set_xlabel("iteration t")
    ax.set_ylabel(f"‖{parameter}_k(t) − {parameter}_k(t−1)‖")
    ax.legend(loc="best", fontsize="small", framealpha=0.85)
    return ax


def _frame_indices(n_records: int, max_frames: int | None) -> np.ndarray:
    """Records to draw: all of them, or ``max_frames`` spread evenly with both ends kept."""
    if max_frames is None or n_records <= max_frames:
        return np.arange(n_records)
    if max_frames < 2:
        raise ValueError(f"max_frames must be at least 2, got {max_frames}")
    return np.unique(np.round(np.linspace(0, n_records - 1, max_frames)).astype(int))


def animate_em(history: Any, X: Any, *, fig: Figure | None = None,
               projection: str | None = "pca", n_std: Sequence[float] = (1, 2),
               feature_names: Sequence[str] | None = None, trace: bool = True,
               max_frames: int | None = 60, interval: float = 400.0,
               size: float = 14.0) -> FuncAnimation:
    """EM as an animation: one frame per iteration, the soft memberships and ellipses of θ_t.

    Each frame is :func:`plot_responsibilities` of the model θ_t kept in the history (so the
    colours show the E-step's q_t and the ellipses the components that the next M-step will
    move), with the log-likelihood trace beside it and the current iteration marked. The
    axes are fixed across frames and the PCA plane is that of ``X``, so nothing jumps but the
    model. Save it with :func:`save_em_animation` (GIF), or ``anim.to_jshtml()`` in a
    notebook.

    Parameters
    ----------
    history : History or EMResult
        From ``EMAlgorithm(keep_models=True)``.
    X : array-like of shape (n_samples, n_features)
        The data the models were fitted to (n_features >= 2).
    fig : matplotlib Figure, optional
        The figure to draw in (cleared first); a new one by default.
    projection : {"pca", None}, default="pca"
        As in :func:`plot_responsibilities`.
    n_std : sequence of float, default=(1, 2)
        Mahalanobis radii of the ellipses.
    feature_names : sequence of str, optional
        Axis labels when no projection is applied.
    trace : bool, default=True
        Add a second panel with the log-likelihood per iteration up to the current one.
    max_frames : int or None, default=60
        At most this many frames, spread evenly over the records (the first and the last
        always included); ``None`` for one frame per record.
    interval : float, default=400
        Milliseconds between frames.
    size : float, default=14
        Marker area of the points.

    Returns
    -------
    matplotlib.animation.FuncAnimation
        Keep a reference to it until it is saved or shown. ``anim.frame_records`` holds the
        index of the record each frame draws.

    Raises
    ------
    ValueError
        If the history did not keep its models, or for bad data or arguments.
    """
    from matplotlib.animation import FuncAnimation

    fig, draw, frames = _em_frames(history, X, fig=fig, projection=projection, n_std=n_std,
                                   feature_names=feature_names, trace=trace,
                                   max_frames=max_frames, size=size)
    anim = FuncAnimation(fig, draw, frames=len(frames), interval=interval, blit=False,
                         repeat=True)
    anim.frame_records = frames  # type: ignore[attr-defined]
    return anim


def _em_frames(history: Any, X: Any, *, fig: Figure | None, projection: str | None,
               n_std: Sequence[float], feature_names: Sequence[str] | None, trace: bool,
               max_frames: int | None, size: float
               ) -> tuple[Figure, Callable[[int], list[Any]], np.ndarray]:
    """The figure of the EM animation, a function drawing frame i into it, and the records
    the frames show."""
    from matplotlib.lines import Line2D

    h, models = _kept_models(history)
    X = check_data(X, n_features=models[0].n_features)
    if X.shape[1] < 2:
        raise ValueError("animate_em needs at least 2 features, got 1")
    ids = _component_ids(h, models)
    frames = _frame_indices(len(models), max_frames)
    base = component_colors(models[0].n_components)
    # Fixed limits: the data's extent in the plane, with a margin for the ellipses.
    points = _project(models[-1], X, projection, feature_names).points
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = 0.15 * np.maximum(hi - lo, 1e-12)
    xlim, ylim = (lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1])
    equal = projection == "pca" and X.shape[1] > 2

    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(11.0, 4.8) if trace else (6.5, 5.2))
    fig.clear()
    # A fixed layout: constrained layout would be solved again for every frame.
    if trace:
        ax, ax_trace = fig.subplots(1, 2, width_ratios=[1.5, 1.0])
        fig.subplots_adjust(left=0.06, right=0.98, bottom=0.11, top=0.8, wspace=0.18)
    else:
        ax, ax_trace = fig.subplots(), None
        fig.subplots_adjust(left=0.12, right=0.97, bottom=0.11, top=0.8)
    t_all = h.iteration.astype(float)
    ll = h.log_likelihood
    line = marker = None
    if ax_trace is not None:
        ax_trace.plot(t_all, ll, "-", color="0.8", linewidth=1.2)
        (line,) = ax_trace.plot([], [], "o-", color="C0", markersize=3.5, linewidth=1.5,
                                label=r"log-likelihood $\log p(X\mid\theta_t)$ / N")
        (marker,) = ax_trace.plot([], [], "o", color="C3", markersize=9, zorder=5)
        ax_trace.set_xlabel("iteration t")
        ax_trace.set_ylabel("per sample")
        ax_trace.legend(loc="lower right", fontsize="small")
        span = float(ll.max() - ll.min()) or 1.0
        ax_trace.set_ylim(ll.min() - 0.05 * span, ll.max() + 0.05 * span)

    def draw(i: int) -> list[Any]:
        t = int(frames[i])
        model, alive = models[t], ids[t]
        ax.clear()
        plot_responsibilities(model, X, ax=ax, projection=projection, n_std=n_std,
                              colors=base[alive], feature_names=feature_names, size=size,
                              legend=False)
        handles = [Line2D([], [], marker="o", linestyle="none", color=base[k][:3],
                          label=f"component {k} (π = {w:.2f})")
                   for k, w in zip(alive, model.weights)]
        # Above the axes, where it hides no point.
        ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0),
                  ncol=min(len(handles), 4), fontsize="small", frameon=False)
        # Equal scales for principal coordinates, with the box (not the limits) adjusting,
        # so every frame shows the same window.
        ax.set_aspect("equal" if equal else "auto", adjustable="box")
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        fig.suptitle(f"EM iteration {h[t].iteration}: log-likelihood {ll[t]:.4f} per sample",
                     fontsize="large")
        if line is not None and marker is not None:
            line.set_data(t_all[: t + 1], ll[: t + 1])
            marker.set_data([t_all[t]], [ll[t]])
        return [ax]

    return fig, draw, frames


def save_em_animation(history: Any, X: Any, path: Any, *, fps: int = 3, dpi: float = 80.0,
                      **kwargs: Any) -> Any:
    """Write :func:`animate_em` as an animated GIF with matplotlib's ``PillowWriter``.

    Pillow is a dependency of matplotlib, so no external encoder (ffmpeg, ImageMagick) is
    needed.

    Parameters
    ----------
    history : History or EMResult
        From ``EMAlgorithm(keep_models=True)``.
    X : array-like of shape (n_samples, n_features)
        The data the models were fitted to.
    path : str or path-like
        Where to write the GIF (conventionally ``*.gif``).
    fps : int, default=3
        Frames per second.
    dpi : float, default=80
        Resolution of the frames; the file grows with its square.
    **kwargs
        Passed to :func:`animate_em` (``max_frames``, ``trace``, ``n_std``, ...).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        As :func:`animate_em`.
    """
    from pathlib import Path

    import matplotlib.pyplot as plt
    from matplotlib.animation import PillowWriter

    options: dict[str, Any] = {"fig": None, "projection": "pca", "n_std": (1, 2),
                               "feature_names": None, "trace": True, "max_frames": 60,
                               "size": 14.0}
    unknown = set(kwargs) - set(options) - {"interval"}
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {sorted(unknown)}")
    options.update((k, v) for k, v in kwargs.items() if k != "interval")
    before = set(plt.get_fignums())
    out = Path(path)
    try:
        fig, draw, frames = _em_frames(history, X, **options)
        # Frame by frame rather than FuncAnimation.save, which draws each frame twice.
        writer = PillowWriter(fps=fps)
        with writer.saving(fig, out, dpi):
            for i in range(len(frames)):
                draw(i)
                writer.grab_frame()
    finally:
        for number in set(plt.get_fignums()) - before:  # the figure made here, not the caller's
            plt.close(number)
    return out
