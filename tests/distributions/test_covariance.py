"""Covariance structures against dense linear algebra (numpy.linalg as the reference).

Every structure is checked through its dense matrix Σ: the precision Cholesky factor, the
log-determinant, whitening, colouring, trace terms, the centred scatter and the constructors
from precisions, plus the errors for invalid input.
"""

import numpy as np
import pytest

from probmix.distributions import DiagonalCovariance, FullCovariance, SphericalCovariance
from probmix.exceptions import SingularCovarianceError

STRUCTURES = (FullCovariance, DiagonalCovariance, SphericalCovariance)


def random_spd(d, cond, rng):
    """A random symmetric positive definite matrix with condition number ``cond``."""
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    cov = (q * np.logspace(0, np.log10(cond), d)) @ q.T
    return 0.5 * (cov + cov.T)


def make_structure(kind, d, cond, rng):
    """A structure of the given kind, dimension and condition number."""
    if kind is FullCovariance:
        return FullCovariance(covariance=random_spd(d, cond, rng))
    if kind is DiagonalCovariance:
        return DiagonalCovariance(variances=rng.permutation(np.logspace(0, np.log10(cond), d)))
    return SphericalCovariance(variance=cond, dimension=d)  # cond is just a scale here


def dense(compact, d):
    """A compact precision/Cholesky array as the dense (d, d) matrix it stands for."""
    compact = np.asarray(compact)
    return compact if compact.ndim == 2 else np.diag(np.broadcast_to(compact, (d,)))


def compact_part(kind, matrix):
    """The part of a dense scatter a structure keeps: all of it, its diagonal or its trace."""
    if kind is FullCovariance:
        return matrix
    if kind is DiagonalCovariance:
        return np.diag(matrix)
    return np.trace(matrix)


CASES = [(kind, d, cond) for kind in STRUCTURES for d in (1, 2, 5) for cond in (1.0, 1e6)]


@pytest.fixture(params=CASES, ids=lambda c: f"{c[0].kind}-d{c[1]}-cond{c[2]:g}")
def structure(request):
    kind, d, cond = request.param
    return make_structure(kind, d, cond, np.random.default_rng(d))


def test_matrix_and_compact_shapes(structure):
    d = structure.n_features
    expected = {"full": (d, d), "diag": (d,), "spherical": ()}[structure.kind]
    assert structure.compact.shape == expected
    assert structure.precision_cholesky.shape == expected
    assert structure.precision.shape == expected
    assert structure.matrix.shape == (d, d)
    np.testing.assert_array_equal(dense(structure.compact, d), structure.matrix)


def test_precision_cholesky_squares_to_the_inverse(structure):
    d = structure.n_features
    u = dense(structure.precision_cholesky, d)
    inverse = np.linalg.inv(structure.matrix)
    # inv() itself loses ~cond·ε, so compare relative to the largest entry
    np.testing.assert_allclose(u @ u.T, inverse, rtol=1e-9, atol=1e-9 * np.abs(inverse).max())
    np.testing.assert_allclose(dense(structure.precision, d), u @ u.T, rtol=1e-12,
                               atol=1e-14 * np.abs(inverse).max())


def test_full_precision_cholesky_is_upper_triangular():
    s = FullCovariance(covariance=random_spd(4, 100.0, np.random.default_rng(0)))
    u = s.precision_cholesky
    np.testing.assert_array_equal(u, np.triu(u))
    assert np.all(np.diag(u) > 0)
    # and the cached lower factor is Σ's Cholesky factor
    np.testing.assert_allclose(s.cholesky @ s.cholesky.T, s.covariance, rtol=1e-13)


def test_log_det_matches_slogdet(structure):
    sign, logdet = np.linalg.slogdet(structure.matrix)
    assert sign == 1.0
    # both factorisations perturb the smallest eigenvalue by ~cond·ε relative
    cond = np.linalg.cond(structure.matrix)
    assert structure.log_det == pytest.approx(logdet, rel=1e-12,
                                              abs=10 * cond * np.finfo(float).eps)


def test_min_eigenvalue_is_the_smallest_eigenvalue_of_the_matrix(structure):
    expected = np.linalg.eigvalsh(structure.matrix)[0]
    assert structure.min_eigenvalue == pytest.approx(expected, rel=1e-10)


def test_whiten_gives_the_mahalanobis_distance(structure):
    rng = np.random.default_rng(1)
    d = structure.n_features
    r = rng.standard_normal((20, d)) * np.sqrt(np.diag(structure.matrix))
    z = structure.whiten(r)
    maha = np.einsum("ij,ij->i", r, np.linalg.solve(structure.matrix, r.T).T)
    np.testing.assert_allclose(np.sum(z * z, axis=1), maha, rtol=1e-9)


def test_colour_is_a_square_root_of_sigma_and_inverts_whiten(structure):
    d = structure.n_features
    c = structure.colour(np.eye(d))  # rows: the images of the basis vectors
    np.testing.assert_allclose(c.T @ c, structure.matrix, rtol=1e-12,
                               atol=1e-13 * np.abs(structure.matrix).max())
    z = np.random.default_rng(2).standard_normal((10, d))
    np.testing.assert_allclose(structure.whiten(structure.colour(z)), z, rtol=1e-9, atol=1e-9)


def test_scatter_outer_and_trace_precision(structure):
    rng = np.random.default_rng(3)
    d = structure.n_features
    r = rng.standard_normal((30, d))
    w = rng.uniform(0, 2, 30)
    full_scatter = (r.T * w) @ r
    kind = type(structure)
    scatter = kind.scatter(r, w)
    np.testing.assert_allclose(scatter, compact_part(kind, full_scatter), rtol=1e-12)
    np.testing.assert_allclose(kind.outer(r[0]), compact_part(kind, np.outer(r[0], r[0])),
                               rtol=1e-14)
    np.testing.assert_array_equal(kind.zero_scatter(d), compact_part(kind, np.zeros((d, d))))
    # tr(Σ⁻¹ S) only needs the part of S the structure keeps
    expected = np.trace(np.linalg.solve(structure.matrix, full_scatter))
    assert structure.trace_precision(scatter) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("kind", STRUCTURES, ids=lambda k: k.kind)
@pytest.mark.parametrize("reg_covar", [0.0, 1e-3])
def test_from_scatter_is_scatter_over_weight_plus_ridge(kind, reg_covar):
    rng = np.random.default_rng(4)
    d = 3
    r = rng.standard_normal((40, d))
    w = rng.uniform(0, 1, 40)
    s = kind.from_scatter(kind.scatter(r, w), w.sum(), d, reg_covar)
    dense_cov = (r.T * w) @ r / w.sum()
    expected = {FullCovariance: dense_cov, DiagonalCovariance: np.diag(np.diag(dense_cov)),
                SphericalCovariance: np.trace(dense_cov) / d * np.eye(d)}[kind]
    np.testing.assert_allclose(s.matrix, expected + reg_covar * np.eye(d), rtol=1e-12,
                               atol=1e-15)


def test_from_precision_round_trip(structure):
    kind, d = type(structure), structure.n_features
    back = kind.from_precision(structure.precision, d)
    np.testing.assert_allclose(back.matrix, structure.matrix, rtol=1e-8,
                               atol=1e-10 * np.abs(structure.matrix).max())


def test_from_precision_cholesky_round_trip(structure):
    kind, d = type(structure), structure.n_features
    back = kind.from_precision_cholesky(structure.precision_cholesky, d)
    np.testing.assert_allclose(back.matrix, structure.matrix, rtol=1e-8,
                               atol=1e-10 * np.abs(structure.matrix).max())


@pytest.mark.parametrize("factor_kind", ["lower", "dense"])
def test_full_from_any_factor_of_the_precision(factor_kind):
    # Any U with U Uᵀ = Σ⁻¹ determines Σ: a lower Cholesky factor of the precision, or the
    # upper one times an orthogonal matrix (not triangular at all).
    rng = np.random.default_rng(5)
    s = FullCovariance(covariance=random_spd(4, 1e3, rng))
    if factor_kind == "lower":
        factor = np.linalg.cholesky(np.linalg.inv(s.covariance))
    else:
        q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
        factor = s.precision_cholesky @ q
    back = FullCovariance.from_precision_cholesky(factor, 4)
    np.testing.assert_allclose(back.covariance, s.covariance, rtol=1e-8,
                               atol=1e-10 * np.abs(s.covariance).max())


def test_full_from_precision_cholesky_round_trip_at_large_scale():
    # Non-regression: triangularity used to be judged with np.allclose (absolute atol 1e-8),
    # so a factor with all entries below 1e-8 lost its upper part. Data in large units
    # (σ ~ 3e8, e.g. metres per second) give precision factors ~1e-9.
    s = FullCovariance(covariance=np.array([[4.0, 1.5], [1.5, 2.0]]) * 1e17)
    back = FullCovariance.from_precision_cholesky(s.precision_cholesky, 2)
    np.testing.assert_allclose(back.covariance, s.covariance, rtol=1e-8)


def test_structures_are_immutable_and_compare_by_value():
    cov = random_spd(3, 10.0, np.random.default_rng(6))
    a, b = FullCovariance(covariance=cov), FullCovariance(covariance=cov.copy())
    assert a == b
    with pytest.raises(ValueError):
        a.covariance[0, 0] = 2.0  # read-only array
    assert DiagonalCovariance(variances=[1.0, 2.0]) != DiagonalCovariance(variances=[1.0, 3.0])


@pytest.mark.parametrize("kind, expected", [(FullCovariance, 15), (DiagonalCovariance, 5),
                                            (SphericalCovariance, 1)], ids=lambda v: str(v))
def test_n_parameters(kind, expected):
    assert kind.n_parameters(5) == expected


NAN2 = [[1.0, np.nan], [np.nan, 1.0]]

INVALID = [
    # (constructor, exception, message pattern)
    (lambda: FullCovariance(covariance=[[1.0, 0.5], [0.0, 1.0]]), ValueError, "symmetric"),
    (lambda: FullCovariance(covariance=[[1.0, 2.0], [2.0, 1.0]]), SingularCovarianceError,
     "not positive definite"),
    (lambda: FullCovariance(covariance=[[1.0, 1.0], [1.0, 1.0]]), SingularCovarianceError,
     "not positive definite"),
    (lambda: FullCovariance(covariance=NAN2), SingularCovarianceError, "NaN or infinity"),
    (lambda: FullCovariance(covariance=[1.0, 2.0]), ValueError, "square matrix"),
    (lambda: FullCovariance(covariance=np.ones((2, 3))), ValueError, "square matrix"),
    (lambda: DiagonalCovariance(variances=[1.0, -1.0]), SingularCovarianceError, "positive"),
    (lambda: DiagonalCovariance(variances=[1.0, 0.0]), SingularCovarianceError, "positive"),
    (lambda: DiagonalCovariance(variances=[1.0, np.nan]), SingularCovarianceError, "finite"),
    (lambda: DiagonalCovariance(variances=np.eye(2)), ValueError, "1-D"),
    (lambda: SphericalCovariance(variance=-1.0, dimension=2), SingularCovarianceError,
     "positive"),
    (lambda: SphericalCovariance(variance=np.nan, dimension=2), SingularCovarianceError,
     "finite"),
    (lambda: SphericalCovariance(variance=1.0, dimension=0), ValueError, "dimension"),
    (lambda: FullCovariance.from_precision([[1.0, 2.0], [2.0, 1.0]], 2),
     SingularCovarianceError, "not positive definite"),
    (lambda: FullCovariance.from_precision([[1.0, 0.5], [0.0, 1.0]], 2), ValueError,
     "symmetric"),
    (lambda: FullCovariance.from_precision(NAN2, 2), ValueError, "finite"),
    (lambda: FullCovariance.from_precision(np.eye(3), 2), ValueError, "shape"),
    (lambda: FullCovariance.from_precision_cholesky(np.eye(3), 2), ValueError, "shape"),
    (lambda: FullCovariance.from_precision_cholesky(np.diag([1.0, 0.0]), 2),
     SingularCovarianceError, "positive"),
    (lambda: DiagonalCovariance.from_precision([1.0, -1.0], 2), SingularCovarianceError,
     "positive"),
    (lambda: DiagonalCovariance.from_precision([1.0, np.nan], 2), SingularCovarianceError,
     "finite"),
    (lambda: DiagonalCovariance.from_precision_cholesky([1.0, 1.0, 1.0], 2), ValueError,
     "shape"),
    (lambda: SphericalCovariance.from_precision(0.0, 2), SingularCovarianceError, "positive"),
    (lambda: SphericalCovariance.from_precision_cholesky([1.0, 1.0], 2), ValueError,
     "scalar"),
]


@pytest.mark.parametrize("make, exc, match", INVALID, ids=range(len(INVALID)))
def test_invalid_input_raises_with_a_message(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_singular_covariance_error_is_a_value_error():
    # callers that catch ValueError (as for scikit-learn) also catch singular covariances
    with pytest.raises(ValueError, match="increase reg_covar"):
        FullCovariance(covariance=np.zeros((2, 2)))
