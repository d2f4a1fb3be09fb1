"""probmix.plot: geometry of the ellipses and the projection, colours, and history plots."""

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
from probmix.distributions import DiagonalNormal, Gaussian, SphericalNormal
from probmix.plot import (
    _ellipse,
    _project,
    blend_colors,
    component_colors,
    plot_history,
    plot_responsibilities,
)

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
