"""probmix.plot: geometry of the ellipses and the projection, colours, history plots, the means
over iterations and the EM animation."""

import subprocess
import sys
from pathlib import Path

import attrs
import matplotlib

matplotlib.use("Agg")  # headless, before pyplot is imported

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import is_color_like
from matplotlib.patches import Ellipse
from sklearn.decomposition import PCA

from probmix import GMM, Distribution, EMAlgorithm, MixtureModel, NotFittedError
from probmix.datasets import load_iris
from probmix.distributions import DiagonalNormal, Gaussian, Poisson, SphericalNormal
from probmix.em import MAP
from probmix.init import initial_model, initial_responsibilities
from probmix.plot import (
    _ellipse,
    _frame_indices,
    _pca_basis,
    _project,
    animate_em,
    blend_colors,
    component_colors,
    component_trajectories,
    plot_history,
    plot_mean_changes,
    plot_means,
    plot_responsibilities,
    save_em_animation,
)
from probmix.priors import Dirichlet

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def iris_fit():
    X = load_iris().data
    return GMM(n_components=3, random_state=0).fit(X), X


def _random_spd(rng, d):
    A = rng.standard_normal((d, d))
    return A @ A.T + 0.1 * np.eye(d)


def _ellipse_boundary(patch: Ellipse) -> np.ndarray:
    """Points on the drawn outline, in data coordinates.

    The patch draws the unit circle through its patch transform (the path's own vertices
    include Bézier control points, which lie off the curve).
    """
    angles = np.linspace(0.0, 2.0 * np.pi, 24, endpoint=False)
    circle = np.column_stack([np.cos(angles), np.sin(angles)])
    return patch.get_patch_transform().transform(circle)


@attrs.frozen(kw_only=True)
class _Cauchy(Distribution):
    """A non-Gaussian family (product of Cauchy densities): only what plotting needs."""

    loc: np.ndarray = attrs.field(converter=np.asarray, eq=False)

    @property
    def n_features(self):
        return self.loc.size

    @property
    def n_parameters(self):
        return self.loc.size

    def log_prob(self, X):
        return -np.sum(np.log(np.pi * (1.0 + (X - self.loc) ** 2)), axis=1)

    def sufficient_statistics(self, X, weights):
        raise NotImplementedError

    @classmethod
    def from_statistics(cls, stats, prior=None):
        raise NotImplementedError

    def sample(self, n_samples, rng):
        return self.loc + rng.standard_cauchy((n_samples, self.n_features))


# -- import hygiene ----------------------------------------------------------------------------
def test_importing_probmix_does_not_load_matplotlib():
    code = ("import sys, probmix, probmix.plot, probmix.cli; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# -- geometry ------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_std", [1.0, 2.0, 3.0])
def test_ellipse_is_the_mahalanobis_contour(rng, n_std):
    for _ in range(5):
        mean, cov = rng.normal(size=2), _random_spd(rng, 2)
        boundary = _ellipse_boundary(_ellipse(mean, cov, n_std))
        r = boundary - mean
        maha = np.einsum("ij,jk,ik->i", r, np.linalg.inv(cov), r)
        np.testing.assert_allclose(maha, n_std**2, rtol=1e-9)


def test_ellipse_of_axis_aligned_covariance():
    # Closed form: semi-axes n·σ along the coordinate axes.
    patch = _ellipse([1.0, -2.0], np.diag([4.0, 1.0]), 2.0)
    assert patch.center == (1.0, -2.0)
    assert (patch.width, patch.height) == pytest.approx((8.0, 4.0))
    assert patch.angle % 180.0 == pytest.approx(0.0, abs=1e-12)


def test_pca_projection_of_data_means_and_covariances(rng):
    X = rng.normal(size=(200, 4)) @ _random_spd(rng, 4)
    comps = [Gaussian(mean=rng.normal(size=4), covariance=_random_spd(rng, 4)),
             DiagonalNormal(mean=rng.normal(size=4), covariance=[1.0, 2.0, 3.0, 4.0]),
             SphericalNormal(mean=rng.normal(size=4), covariance=0.5)]
    model = MixtureModel(weights=[0.2, 0.3, 0.5], components=comps)
    proj = _project(model, X, "pca")
    V, center = proj.basis, proj.center
    np.testing.assert_allclose(center, X.mean(axis=0))
    np.testing.assert_allclose(V.T @ V, np.eye(2), atol=1e-12)
    # Same plane as scikit-learn's first two principal axes (each up to sign).
    reference = PCA(n_components=2).fit(X).components_
    np.testing.assert_allclose(np.abs(reference @ V), np.eye(2), atol=1e-8)
    np.testing.assert_allclose(proj.points, (X - X.mean(axis=0)) @ V)
    for comp, m2, c2 in zip(comps, proj.means, proj.covariances, strict=True):
        np.testing.assert_allclose(m2, (comp.mean - center) @ V)
        np.testing.assert_allclose(c2, V.T @ comp.covariance_matrix @ V)


def test_no_projection_keeps_the_first_two_features(rng):
    X = rng.normal(size=(50, 3))
    cov = _random_spd(rng, 3)
    model = MixtureModel(weights=[1.0], components=[Gaussian(mean=[1.0, 2.0, 3.0],
                                                             covariance=cov)])
    proj = _project(model, X, None)
    np.testing.assert_array_equal(proj.points, X[:, :2])
    np.testing.assert_array_equal(proj.means[0], [1.0, 2.0])
    np.testing.assert_array_equal(proj.covariances[0], cov[:2, :2])


# -- colours -------------------------------------------------------------------------------------
def test_component_colors_are_distinct_rgba():
    for K in (1, 3, 10, 15):
        colors = component_colors(K)
        assert colors.shape == (K, 4)
        assert len({tuple(c) for c in colors}) == K


def test_blend_is_the_responsibility_weighted_average():
    colors = component_colors(3)
    q = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.0]])
    blended = blend_colors(q, colors)
    np.testing.assert_allclose(blended[0], colors[0])
    np.testing.assert_allclose(blended[1], colors[2])
    np.testing.assert_allclose(blended[2, :3], 0.5 * (colors[0, :3] + colors[1, :3]))


# -- plot_responsibilities -----------------------------------------------------------------------
def test_iris_plot_has_three_ellipses_per_component(iris_fit):
    gmm, X = iris_fit
    ax = plot_responsibilities(gmm, X)
    assert isinstance(ax, Axes)
    ellipses = [p for p in ax.patches if isinstance(p, Ellipse)]
    assert len(ellipses) == 3 * gmm.n_components
    points = ax.collections[0]
    assert points.get_offsets().shape == (X.shape[0], 2)


def test_drawn_ellipses_are_the_projected_covariances(iris_fit):
    gmm, X = iris_fit
    ax = plot_responsibilities(gmm, X, n_std=(2.0,))
    proj = _project(gmm.model_, X, "pca")
    for k, patch in enumerate(ax.patches):
        expected_cov = proj.basis.T @ gmm.covariances_[k] @ proj.basis
        r = _ellipse_boundary(patch) - proj.means[k]
        maha = np.einsum("ij,jk,ik->i", r, np.linalg.inv(expected_cov), r)
        np.testing.assert_allclose(maha, 4.0, rtol=1e-8)


def test_point_colours_are_valid_and_follow_responsibilities(rng):
    # Far-apart components: points at the means are assigned with certainty.
    means = np.array([[0.0, 0.0], [30.0, 0.0], [0.0, 30.0], [30.0, 30.0]])
    model = MixtureModel(weights=[0.25] * 4, components=[
        Gaussian(mean=m, covariance=np.eye(2)) for m in means])
    X = np.vstack([means, rng.normal(15.0, 8.0, size=(40, 2))])
    ax = plot_responsibilities(model, X)
    colours = ax.collections[0].get_facecolors()
    assert colours.shape == (len(X), 4)
    assert np.all((colours >= 0) & (colours <= 1))
    assert all(is_color_like(tuple(c)) for c in colours)
    np.testing.assert_allclose(colours[:4], component_colors(4), atol=1e-12)
    np.testing.assert_allclose(colours,
                               blend_colors(model.responsibilities(X), component_colors(4)))
    assert len(ax.patches) == 3 * 4


def test_non_gaussian_and_empty_components_get_no_ellipse(rng):
    X = rng.normal(size=(30, 2))
    model = MixtureModel(weights=[0.5, 0.5, 0.0], components=[
        Gaussian(mean=[0.0, 0.0], covariance=np.eye(2)), _Cauchy(loc=[1.0, 1.0]),
        Gaussian(mean=[5.0, 5.0], covariance=np.eye(2))])
    ax = plot_responsibilities(model, X)
    assert len(ax.patches) == 3  # only the Gaussian of positive weight
    assert ax.collections[0].get_offsets().shape == (30, 2)


def test_draws_into_the_given_axes(iris_fit):
    gmm, X = iris_fit
    _, (a, b) = plt.subplots(1, 2)
    assert plot_responsibilities(gmm.model_, X, ax=b) is b
    assert len(a.patches) == 0 and len(b.patches) == 9


@pytest.mark.parametrize("bad, error, match", [
    (dict(projection="tsne"), ValueError, "projection"),
    (dict(colors=np.zeros((2, 4))), ValueError, "colors"),
])
def test_bad_arguments(iris_fit, bad, error, match):
    gmm, X = iris_fit
    with pytest.raises(error, match=match):
        plot_responsibilities(gmm, X, **bad)


def test_bad_models_and_data(iris_fit):
    gmm, X = iris_fit
    with pytest.raises(NotFittedError):
        plot_responsibilities(GMM(n_components=2), X)
    with pytest.raises(TypeError, match="MixtureModel"):
        plot_responsibilities(object(), X)
    with pytest.raises(ValueError, match="features"):
        plot_responsibilities(gmm, X[:, :3])
    one_d = MixtureModel(weights=[1.0], components=[Gaussian(mean=[0.0], covariance=[[1.0]])])
    with pytest.raises(ValueError, match="at least 2 features"):
        plot_responsibilities(one_d, X[:, :1])


# -- plot_history ----------------------------------------------------------------------------
def test_history_plot_has_one_point_per_record(iris_fit):
    gmm, _ = iris_fit
    h = gmm.history_
    ax = plot_history(gmm)
    assert isinstance(ax, Axes)
    loglik_line = ax.get_lines()[0]
    np.testing.assert_array_equal(loglik_line.get_xdata(), np.arange(len(h)))
    np.testing.assert_array_equal(loglik_line.get_ydata(), h.log_likelihood)
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), h.bound)
    # The KL curve lives on a twin axis sharing the iterations.
    (twin,) = [a for a in ax.figure.axes if a is not ax]
    kl_line = twin.get_lines()[0]
    np.testing.assert_array_equal(kl_line.get_ydata(), h.kl)
    # The M-step markers: one per M-step, at θ_{t+1}.
    (after,) = [line for line in ax.get_lines() if "M-step" in line.get_label()]
    assert len(after.get_xdata()) == len(h) - 1
    np.testing.assert_array_equal(after.get_ydata(), h.bound_after_m_step[:-1])


def test_history_plot_accepts_results_and_a_separate_kl_panel(rng):
    model = MixtureModel(weights=[0.5, 0.5], components=[
        Gaussian(mean=[-2.0], covariance=[[1.0]]), Gaussian(mean=[2.0], covariance=[[1.0]])])
    X, _ = model.sample(200, rng)
    result = EMAlgorithm(tol=1e-6).fit(X, attrs.evolve(model, weights=[0.3, 0.7]))
    fig, (top, bottom) = plt.subplots(2, 1)
    assert plot_history(result, ax=top, kl_ax=bottom, m_step=False) is top
    assert len(fig.axes) == 2  # no twin created
    assert not any("M-step" in line.get_label() for line in top.get_lines())
    assert len(bottom.get_lines()[0].get_xdata()) == result.n_iter + 1
    ax2 = plot_history(result.history)
    assert len(ax2.get_lines()[0].get_xdata()) == len(result.history)


def test_history_plot_rejects_other_objects():
    with pytest.raises(NotFittedError):
        plot_history(GMM())
    with pytest.raises(TypeError, match="History"):
        plot_history([1.0, 2.0])


# -- means over iterations and the EM animation --------------------------------------------------
@pytest.fixture(scope="module")
def kept_fit():
    """EM on three 2-D clusters from a poor start, keeping every iterate θ_t."""
    rng = np.random.default_rng(1)
    centers = np.array([[-4.0, 0.0], [4.0, 0.0], [0.0, 5.0]])
    X = np.vstack([c + rng.standard_normal((40, 2)) for c in centers])
    start = MixtureModel(weights=[1 / 3] * 3, components=[
        Gaussian(mean=m, covariance=np.eye(2)) for m in ([-1.0, 0.0], [1.0, 0.0], [0.0, 1.0])])
    result = EMAlgorithm(keep_models=True, tol=1e-8, max_iter=100).fit(X, start)
    assert result.n_iter > 5  # a path worth plotting
    return result, X


def test_trajectories_are_the_kept_means(kept_fit):
    result, _ = kept_fit
    paths = component_trajectories(result)
    assert paths.shape == (len(result.history), 3, 2)
    for t, record in enumerate(result.history):
        for k, comp in enumerate(record.model.components):
            np.testing.assert_array_equal(paths[t, k], comp.mean)


def test_trajectories_follow_initial_indices_through_pruning():
    rng = np.random.default_rng(0)
    centers = np.array([[-5.0, 0.0], [5.0, 0.0], [0.0, 6.0]])
    X = np.vstack([c + rng.standard_normal((100, 2)) for c in centers])
    # Six components on three clusters; the minimum-message-length prior prunes the surplus.
    start = initial_model(X, [Gaussian] * 6, initial_responsibilities(X, 6, "kmeans++", rng))
    result = EMAlgorithm(m_step=MAP(weights_prior=Dirichlet(-1.5)), keep_models=True,
                         tol=1e-6, max_iter=300).fit(X, start)
    h = result.history
    assert h.pruned, "the fit should prune"
    paths = component_trajectories(result)
    assert paths.shape == (len(h), 6, 2)
    for t, removed in h.pruned:
        assert np.all(np.isnan(paths[t:, list(removed)]))
        assert np.all(np.isfinite(paths[:t, list(removed)]))
    # The survivors' last entries are the final means, under their initial indices.
    final = np.array([c.mean for c in result.model.components])
    np.testing.assert_array_equal(paths[-1, result.component_ids], final)


def test_trajectories_of_another_parameter_and_bad_names():
    rng = np.random.default_rng(2)
    X = np.vstack([rng.poisson([2.0, 9.0], (60, 2)), rng.poisson([8.0, 1.0], (60, 2))])
    start = MixtureModel(weights=[0.5, 0.5], components=[Poisson(rate=[1.0, 5.0]),
                                                         Poisson(rate=[5.0, 1.0])])
    result = EMAlgorithm(keep_models=True, tol=1e-8).fit(X.astype(float), start)
    rates = component_trajectories(result, parameter="rate")
    np.testing.assert_array_equal(rates[-1], [c.rate for c in result.model.components])
    with pytest.raises(ValueError, match="no 'mean'"):
        component_trajectories(result)


def test_iterate_plots_need_kept_models(iris_fit):
    gmm, X = iris_fit  # GMM keeps only the numbers of its history, not the models
    for call in (lambda: component_trajectories(gmm), lambda: plot_means(gmm),
                 lambda: plot_mean_changes(gmm), lambda: animate_em(gmm, X),
                 lambda: save_em_animation(gmm, X, "never.gif")):
        with pytest.raises(ValueError, match="keep_models=True"):
            call()


def test_plot_means_draws_each_path_in_the_pca_plane():
    X = load_iris().data
    start = initial_model(X, [Gaussian] * 3,
                          initial_responsibilities(X, 3, "kmeans++", np.random.default_rng(0)))
    result = EMAlgorithm(keep_models=True, tol=1e-6).fit(X, start)
    ax = plot_means(result, X=X)
    assert isinstance(ax, Axes)
    paths = component_trajectories(result)
    center, basis, _ = _pca_basis(X)
    for k in range(3):
        line = ax.get_lines()[k]
        expected = (paths[:, k] - center) @ basis
        np.testing.assert_allclose(line.get_xdata(), expected[:, 0])
        np.testing.assert_allclose(line.get_ydata(), expected[:, 1])
    assert ax.collections[0].get_offsets().shape == (len(X), 2)  # the data, underneath


def test_plot_means_without_data_uses_the_first_two_coordinates(kept_fit):
    result, _ = kept_fit
    _, ax = plt.subplots()
    assert plot_means(result, ax=ax) is ax
    paths = component_trajectories(result)
    np.testing.assert_array_equal(ax.get_lines()[1].get_xdata(), paths[:, 1, 0])
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), paths[:, 1, 1])


def test_plot_mean_changes_are_the_step_lengths(kept_fit):
    result, _ = kept_fit
    ax = plot_mean_changes(result)
    paths = component_trajectories(result)
    for k in range(3):
        line = ax.get_lines()[k]
        steps = [np.linalg.norm(paths[t, k] - paths[t - 1, k]) for t in range(1, len(paths))]
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, len(paths)))
        np.testing.assert_allclose(line.get_ydata(), steps)
    assert ax.get_yscale() == "log"


def test_frame_selection_keeps_both_ends():
    np.testing.assert_array_equal(_frame_indices(5, None), np.arange(5))
    np.testing.assert_array_equal(_frame_indices(5, 10), np.arange(5))
    frames = _frame_indices(100, 7)
    assert len(frames) == 7 and frames[0] == 0 and frames[-1] == 99
    assert np.all(np.diff(frames) > 0)
    with pytest.raises(ValueError, match="max_frames"):
        _frame_indices(100, 1)


def test_save_em_animation_writes_a_gif_of_the_iterations(kept_fit, tmp_path):
    from PIL import Image

    result, X = kept_fit
    before = plt.get_fignums()
    path = save_em_animation(result, X, tmp_path / "em.gif", max_frames=4, dpi=40)
    assert path == tmp_path / "em.gif"
    assert path.read_bytes()[:6] == b"GIF89a"
    with Image.open(path) as gif:
        assert gif.n_frames == 4
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB"), dtype=float))
    assert not np.array_equal(frames[0], frames[-1])  # the model moves between frames
    assert plt.get_fignums() == before  # its own figure is closed


def test_animate_em_draws_the_recorded_models(kept_fit, tmp_path):
    from matplotlib.animation import FuncAnimation, PillowWriter

    result, X = kept_fit
    fig = plt.figure()
    anim = animate_em(result, X, fig=fig, max_frames=3, trace=True)
    assert isinstance(anim, FuncAnimation)
    last = len(result.history) - 1
    assert len(anim.frame_records) == 3 and anim.frame_records[[0, -1]].tolist() == [0, last]
    anim.save(tmp_path / "a.gif", writer=PillowWriter(fps=2), dpi=30)
    # After the last frame: the final model's ellipses and the whole log-likelihood trace.
    ax, ax_trace = fig.axes
    assert f"iteration {last}:" in fig.get_suptitle()
    assert len(ax.patches) == 2 * 3  # n_std=(1, 2) for three components
    np.testing.assert_array_equal(ax_trace.get_lines()[1].get_ydata(),
                                  result.history.log_likelihood)
    assert plt.fignum_exists(fig.number)  # the caller's figure is left open
