"""probmix.io: JSON save/load without pickle; exact round trips; malformed files named."""

import json
import math
import re
import sys
import warnings

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probmix import GMM, MixtureModel
from probmix.distributions import (
    Bernoulli,
    Categorical,
    DiagonalCovariance,
    DiagonalNormal,
    Distribution,
    Exponential,
    FullCovariance,
    Gaussian,
    IndependentComponents,
    Poisson,
    SphericalCovariance,
    SphericalNormal,
    StudentT,
    TiedNormal,
)
from probmix.io import (
    FORMAT_VERSION,
    dumps,
    load,
    loads,
    read,
    reads,
    register,
    registered_classes,
    save,
)
from probmix.priors import Beta, CovarianceRidge, Dirichlet, Gamma, NormalInverseWishart

COV = np.array([[2.0, 0.3], [0.3, 1.0]])

# Two different instances of every built-in family (a mixture of them has informative
# responsibilities). A family added to probmix.distributions needs a row here:
# test_every_registered_family_has_an_example says so.
EXAMPLES = {
    Gaussian: (Gaussian(mean=[0.5, -1.0], covariance=COV),
               Gaussian(mean=[3.0, 2.0], covariance=0.5 * np.eye(2))),
    DiagonalNormal: (DiagonalNormal(mean=[0.0, 1.0], covariance=[1.5, 0.7]),
                     DiagonalNormal(mean=[4.0, -2.0], covariance=[0.2, 3.0])),
    SphericalNormal: (SphericalNormal(mean=[0.0, 1.0], covariance=0.8),
                      SphericalNormal(mean=[-3.0, 0.5], covariance=2.5)),
    TiedNormal: (TiedNormal(mean=[0.0, 1.0], covariance=COV),
                 TiedNormal(mean=[2.0, -1.0], covariance=COV)),
    Poisson: (Poisson(rate=[2.0, 0.0]), Poisson(rate=[7.5, 0.0])),
    Bernoulli: (Bernoulli(probability=[0.25, 1.0]), Bernoulli(probability=[0.9, 0.5])),
    Categorical: (Categorical(probabilities=[[0.5, 0.5], [0.1, 0.2, 0.7]]),
                  Categorical(probabilities=[[0.9, 0.1], [0.6, 0.4, 0.0]])),
    Exponential: (Exponential(rate=[1.5, 0.3]), Exponential(rate=[0.2, 4.0])),
    StudentT: (StudentT(mean=[0.0, 0.0], scale=COV, dof=4.5),
               StudentT(mean=[5.0, 1.0], scale=np.eye(2), dof=30.0)),
    IndependentComponents: (
        IndependentComponents(parts=[Poisson(rate=[3.0]), Gaussian(mean=[0.0], covariance=[[1.0]])],
                              columns=[(1,), (0,)]),
        IndependentComponents(parts=[Poisson(rate=[0.5]), Gaussian(mean=[4.0], covariance=[[2.0]])],
                              columns=[(1,), (0,)])),
}

PRIORS = [
    CovarianceRidge(reg_covar=1e-3),
    Dirichlet(0.7),
    Dirichlet([0.5, 2.0, 1.0]),
    NormalInverseWishart(scale=COV, dof=3.0, mean=[0.0, 1.0], kappa=0.5),
    NormalInverseWishart(scale=2.0, dof=3.0),
    Gamma(2.0, [1.0, 3.0]),
    Beta(1.5, 2.0),
]

STRUCTURES = [FullCovariance(covariance=COV), DiagonalCovariance(variances=[0.1, 3.0]),
              SphericalCovariance(variance=0.25, dimension=3)]


def _data(dist, n=60, seed=0):
    return dist.sample(n, np.random.default_rng(seed))


def _roundtrip(obj, **kwargs):
    return loads(dumps(obj, **kwargs))


def _blobs(seed=0, n=90):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    return np.vstack([rng.normal(c, 1.0, (n // 3, 2)) for c in centers])


# -- every family, structure and prior ----------------------------------------------------------
def test_every_registered_family_has_an_example():
    families = {cls for name, cls in registered_classes().items()
                if name.startswith("probmix.") and issubclass(cls, Distribution)
                and cls is not MixtureModel}
    missing = sorted(cls.__name__ for cls in families - set(EXAMPLES))
    assert not missing, f"add examples of {missing} to EXAMPLES in tests/test_io.py"


@pytest.mark.parametrize("family", list(EXAMPLES), ids=lambda f: f.__name__)
def test_distribution_round_trip_is_exact(family):
    for dist in EXAMPLES[family]:
        back = _roundtrip(dist)
        assert type(back) is family
        assert back == dist  # attrs equality: every array bit for bit
        X = _data(dist)
        np.testing.assert_array_equal(back.log_prob(X), dist.log_prob(X))


@pytest.mark.parametrize("family", list(EXAMPLES), ids=lambda f: f.__name__)
def test_mixture_round_trip_gives_identical_predictions(family):
    model = MixtureModel(weights=[0.3, 0.7], components=EXAMPLES[family])
    back = _roundtrip(model)
    assert back == model
    X, _ = model.sample(80, np.random.default_rng(1))
    np.testing.assert_array_equal(back.log_prob(X), model.log_prob(X))
    np.testing.assert_array_equal(back.responsibilities(X), model.responsibilities(X))


def test_mixture_of_families_and_nested_mixture_round_trip():
    inner = MixtureModel(weights=[0.5, 0.5], components=EXAMPLES[Gaussian])
    model = MixtureModel(weights=[0.2, 0.3, 0.5],
                         components=[EXAMPLES[StudentT][0], inner, EXAMPLES[DiagonalNormal][1]])
    back = _roundtrip(model)
    assert back == model
    assert isinstance(back.components[1], MixtureModel)
    X, _ = model.sample(50, np.random.default_rng(2))
    np.testing.assert_array_equal(back.log_prob(X), model.log_prob(X))


def test_nested_mixture_can_be_sampled():
    # was a core bug (MixtureModel.sample returned (X, labels) to the outer mixture); fixed
    inner = MixtureModel(weights=[0.5, 0.5], components=EXAMPLES[Gaussian])
    outer = MixtureModel(weights=[0.5, 0.5], components=[inner, EXAMPLES[Gaussian][0]])
    X, _ = outer.sample(20, np.random.default_rng(0))
    assert X.shape == (20, 2)


@pytest.mark.parametrize("obj", PRIORS + STRUCTURES, ids=lambda o: type(o).__name__)
def test_priors_and_covariance_structures_round_trip(obj):
    back = _roundtrip(obj)
    assert type(back) is type(obj)
    assert back == obj


def test_awkward_floats_come_back_bit_for_bit():
    # shortest-repr floats: 0.1 + 0.2, subnormal-adjacent, huge; and a float32 array
    model = MixtureModel(weights=[0.1 + 0.2, 1 - (0.1 + 0.2)], components=[
        DiagonalNormal(mean=[1e-300, -1.5e300], covariance=[1e-200, 1e200]),
        DiagonalNormal(mean=[math.pi, math.e], covariance=[1 / 3, 2 / 3])])
    assert _roundtrip(model) == model
    arr = np.array([0.1, 1e-30, 3.4e38], dtype=np.float32)
    back = loads(dumps(CovarianceRidge(reg_covar=1e-6)))  # a scalar field, for contrast
    assert back.reg_covar == 1e-6
    doc = json.loads(dumps(Dirichlet(arr.astype(float))))
    assert doc["object"]["alpha"]["data"] == arr.astype(float).tolist()


@settings(max_examples=40)
@given(st.lists(st.floats(-1e12, 1e12, allow_nan=False, allow_subnormal=True), min_size=2,
                max_size=2),
       st.floats(1e-6, 1e6), st.floats(0.5, 1.0, exclude_max=True))
def test_any_gaussian_mixture_round_trips_exactly(mean, variance, weight):
    # weight ≥ 0.5: then 1 − weight is exact (Sterbenz) and the weights sum to exactly 1
    model = MixtureModel(weights=[weight, 1.0 - weight], components=[
        Gaussian(mean=mean, covariance=variance * np.eye(2)),
        SphericalNormal(mean=[0.0, 0.0], covariance=variance)])
    back = _roundtrip(model)
    assert back == model


# -- GMM ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def X():
    return _blobs()


FITTED = ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_",
          "converged_", "n_iter_", "lower_bound_", "n_features_in_", "n_components_"]


def _assert_same_gmm(a, b, X):
    assert a.get_params() == b.get_params()
    for name in FITTED:
        va, vb = getattr(a, name), getattr(b, name)
        assert np.asarray(va).dtype == np.asarray(vb).dtype, name
        np.testing.assert_array_equal(va, vb, err_msg=name)
    np.testing.assert_array_equal(a.restart_objectives_, b.restart_objectives_)
    assert a.model_ == b.model_
    for column in ["iteration", "log_likelihood", "objective", "bound", "kl", "log_prior",
                   "bound_after_m_step", "n_components", "stage", "time"]:
        np.testing.assert_array_equal(getattr(a.history_, column),
                                      getattr(b.history_, column), err_msg=column)
    assert a.history_.pruned == b.history_.pruned
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))


# weights summing to 1 + 2ε: the constructor once renormalised them by an ulp (found by search)
DRIFTING_WEIGHTS = [0.4325152177214142, 0.5637771777263074, 0.0037076045522782953]


def test_mixture_rebuilt_from_its_own_fields_is_equal():
    model = MixtureModel(weights=DRIFTING_WEIGHTS, components=[*EXAMPLES[Gaussian],
                                                               EXAMPLES[Gaussian][0]])
    assert attrs.evolve(model) == model


def test_weights_summing_to_one_plus_epsilon_round_trip_exactly():
    model = MixtureModel(weights=DRIFTING_WEIGHTS, components=[*EXAMPLES[Gaussian],
                                                               EXAMPLES[Gaussian][0]])
    assert _roundtrip(model) == model


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_fitted_gmm_round_trip(X, covariance_type, tmp_path):
    gmm = GMM(3, covariance_type=covariance_type, n_init=2, random_state=0).fit(X)
    path = save(gmm, tmp_path / "gmm.json", metadata={"columns": ["a", "b"]})
    back = load(path, GMM)
    _assert_same_gmm(gmm, back, X)
    assert read(path).metadata == {"columns": ["a", "b"]}


def test_float32_gmm_keeps_its_dtype(X):
    gmm = GMM(2, random_state=0).fit(X.astype(np.float32))
    back = _roundtrip(gmm)
    assert back.means_.dtype == np.float32
    _assert_same_gmm(gmm, back, X.astype(np.float32))


def test_pruned_gmm_and_its_history_round_trip():
    X = _blobs(n=150)
    gmm = GMM(6, weight_concentration="mml", random_state=0, max_iter=300).fit(X)
    assert gmm.n_components_ < 6 and gmm.history_.pruned  # the case this test is about
    _assert_same_gmm(gmm, _roundtrip(gmm), X)


def test_unfitted_gmm_round_trips_its_parameters():
    gmm = GMM(4, covariance_type="diag", means_init=np.arange(8.0).reshape(4, 2), tol=1e-5)
    back = _roundtrip(gmm)
    assert not hasattr(back, "model_")
    params = back.get_params()
    np.testing.assert_array_equal(params.pop("means_init"), gmm.means_init)
    assert params == {k: v for k, v in gmm.get_params().items() if k != "means_init"}


def test_loaded_gmm_can_be_refitted_to_the_same_result(X):
    gmm = GMM(3, random_state=0).fit(X)
    again = _roundtrip(gmm).fit(X)
    np.testing.assert_array_equal(again.means_, gmm.means_)


def test_nan_restart_objective_survives(X):
    # a failed initialisation is NaN in restart_objectives_ (JSON has no NaN: see the format)
    gmm = GMM(2, n_init=3, random_state=0).fit(X)
    gmm.restart_objectives_[1] = np.nan
    text = dumps(gmm)
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    np.testing.assert_array_equal(loads(text).restart_objectives_, gmm.restart_objectives_)


def test_generator_random_state_is_not_saved(X):
    gmm = GMM(2, random_state=np.random.default_rng(0)).fit(X)
    with pytest.warns(UserWarning, match="random_state.*not saved"):
        text = dumps(gmm)
    assert loads(text).random_state is None


# -- the file itself ------------------------------------------------------------------------------
def test_file_is_standard_readable_json(tmp_path):
    model = MixtureModel(weights=[0.5, 0.5], components=EXAMPLES[Gaussian])
    text = save(model, tmp_path / "m.json").read_text(encoding="utf-8")
    doc = json.loads(text)  # strict JSON: no NaN literals, no pickle payloads
    assert doc["format"] == "probmix" and doc["format_version"] == FORMAT_VERSION
    assert doc["object"]["class"] == "probmix.MixtureModel"
    assert doc["object"]["components"][0]["class"] == "probmix.distributions.Gaussian"
    # a covariance matrix is readable as rows of numbers on one line each
    assert '"data": [[2.0, 0.3], [0.3, 1.0]]' in text


def test_metadata_must_be_json():
    with pytest.raises(TypeError, match="metadata must be plain JSON"):
        dumps(Dirichlet(1.0), metadata={"x": np.arange(3)})


def test_unregistered_class_cannot_be_saved():
    @attrs.frozen
    class Stranger:
        x: float = 1.0

    with pytest.raises(TypeError, match=r"cannot save .*Stranger.*register"):
        dumps(Stranger())


@attrs.frozen(kw_only=True)
class _ShiftedPoisson(Poisson):
    """A user's family: not known to probmix until registered."""


def test_registered_user_family_round_trips():
    dist = _ShiftedPoisson(rate=[1.0, 2.0])
    with pytest.raises(TypeError, match="register"):
        dumps(dist)
    register(_ShiftedPoisson, "tests.test_io.ShiftedPoisson")
    back = _roundtrip(MixtureModel(weights=[1.0], components=[dist]))
    assert type(back.components[0]) is _ShiftedPoisson and back.components[0] == dist


def test_load_checks_the_kind(tmp_path):
    path = save(Dirichlet(1.0), tmp_path / "d.json")
    with pytest.raises(ValueError, match="holds a Dirichlet, expected a GMM"):
        load(path, GMM)


# -- malformed and tampered files -----------------------------------------------------------------
def _document(obj):
    return json.loads(dumps(obj))


def _mixture_doc():
    return _document(MixtureModel(weights=[0.4, 0.6], components=EXAMPLES[Gaussian]))


def _tampered(change, obj=None):
    doc = _document(obj) if obj is not None else _mixture_doc()
    change(doc)
    return json.dumps(doc)


def _set(path, value):
    def change(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


def _delete(path):
    def change(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return change


MEAN1 = ("object", "components", 1, "mean")

MALFORMED = {
    "missing field": (_delete(MEAN1), r"^components\[1\]\.mean: missing field"),
    "missing nested field": (_delete(("object", "components", 0, "covariance", "covariance")),
                             r"^components\[0\]\.covariance\.covariance: missing field"),
    "wrong shape (data vs shape)": (
        _set((*MEAN1, "data"), [1.0, 2.0, 3.0]),
        r"^components\[1\]\.mean: wrong shape: the data has shape \(3,\) but the file says \(2,\)"),
    "wrong shape (mean vs covariance)": (
        _set(MEAN1, {"dtype": "float64", "shape": [3], "data": [1.0, 2.0, 3.0]}),
        r"^components\[1\]: invalid probmix\.distributions\.Gaussian: covariance is for 2 "
        r"features but the mean has 3"),
    "ragged rows": (_set(("object", "components", 0, "covariance", "covariance", "data"),
                         [[1.0, 0.0], [0.0]]),
                    r"^components\[0\]\.covariance\.covariance\.data: rows of different lengths"),
    "NaN in a parameter": (_set((*MEAN1, "data"), [0.0, "NaN"]),
                           r"^components\[1\]\.mean: contains NaN or infinity \(at index \(1,\)\)"),
    "infinity in a parameter": (_set(("object", "weights", "data"), ["Infinity", 0.5]),
                                r"^weights: contains NaN or infinity"),
    "text in an array": (_set((*MEAN1, "data"), [0.0, "abc"]),
                         r"^components\[1\]\.mean\.data: 'abc' is not a valid floating-point"),
    "unsupported dtype": (_set((*MEAN1, "dtype"), "complex128"),
                          r"^components\[1\]\.mean\.dtype: unsupported dtype 'complex128'"),
    "weights off the simplex": (_set(("object", "weights", "data"), [0.5, 0.6]),
                                r"^weights: weights must sum to 1"),
    "negative weight": (_set(("object", "weights", "data"), [1.5, -0.5]),
                        r"^weights: weights must be non-negative"),
    "not positive definite": (
        _set(("object", "components", 0, "covariance", "covariance", "data"),
             [[1.0, 2.0], [2.0, 1.0]]),
        r"^components\[0\]\.covariance: invalid probmix\.distributions\.FullCovariance: "
        r"covariance is not positive definite"),
    "unknown class": (_set(("object", "components", 1, "class"), "subprocess.Popen"),
                      r"^components\[1\]\.class: unknown class 'subprocess\.Popen'"),
    "unexpected field": (_set(("object", "components", 0, "colour"), "red"),
                         r"^components\[0\]\.colour: unexpected field for "
                         r"probmix\.distributions\.Gaussian"),
    "newer format version": (_set(("format_version",), FORMAT_VERSION + 1),
                             rf"^format_version: the file has format version "
                             rf"{FORMAT_VERSION + 1}.*upgrade probmix"),
    "format version not a number": (_set(("format_version",), "1"),
                                    r"^format_version: expected a positive integer"),
    "missing format version": (_delete(("format_version",)), r"^format_version: missing field"),
    "not a probmix file": (_set(("format",), "pickle"), r"^format: expected 'probmix'"),
    "missing object": (_delete(("object",)), r"^object: missing field"),
    "object without class": (_set(("object", "components", 0), {"mean": 1}),
                             r"^components\[0\]: expected an object with a 'class'"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_file_names_the_field(case):
    change, message = MALFORMED[case]
    with pytest.raises(ValueError, match=message):
        loads(_tampered(change))


def test_bare_nan_literal_is_reported_like_a_quoted_one():
    text = dumps(MixtureModel(weights=[0.4, 0.6], components=EXAMPLES[Gaussian]))
    text = text.replace('"data": [3.0, 2.0]', '"data": [3.0, NaN]', 1)
    assert "NaN" in text
    with pytest.raises(ValueError, match=r"^components\[1\]\.mean: contains NaN"):
        loads(text)


@pytest.mark.parametrize("text, message", [
    ("", r"not valid JSON \(line 1"),
    ("{", r"not valid JSON"),
    ("[1, 2]", r"expected a JSON object at the top level, got a list"),
])
def test_not_a_model_file(text, message):
    with pytest.raises(ValueError, match=message):
        reads(text)


def test_unknown_class_is_never_imported():
    module = "probmix_test_io_never_imported"
    text = _tampered(_set(("object", "components", 0, "class"), f"{module}.Evil"))
    with pytest.raises(ValueError, match="unknown class"):
        loads(text)
    assert module not in sys.modules


@pytest.fixture(scope="module")
def gmm_doc():
    return _document(GMM(2, n_init=2, random_state=0).fit(_blobs()))


GMM_MALFORMED = {
    "bad parameter": (_set(("object", "params", "n_components"), -1),
                      r"^params\.n_components: n_components must be >= 1"),
    "unknown parameter": (_set(("object", "params", "n_clusters"), 2),
                          r"^params\.n_clusters: unknown GMM parameter"),
    "missing fitted field": (_delete(("object", "fitted", "history_")),
                             r"^fitted\.history_: missing field"),
    "family does not match covariance_type": (
        _set(("object", "params", "covariance_type"), "diag"),
        r"^fitted\.model_\.components\[0\]: a GMM with covariance_type='diag' has "
        r"DiagonalNormal components, got Gaussian"),
    "more components than n_components": (_set(("object", "params", "n_components"), 1),
                                          r"^fitted\.model_: 2 components, more than"),
    "restart objectives of the wrong length": (
        _set(("object", "params", "n_init"), 5),
        r"^fitted\.restart_objectives_: expected a float array of shape \(5,\)"),
    "missing history column": (_delete(("object", "fitted", "history_", "columns", "kl")),
                               r"^fitted\.history_\.columns\.kl: missing column"),
    "history column of the wrong type": (
        _set(("object", "fitted", "history_", "columns", "log_likelihood", 0), "high"),
        r"^fitted\.history_\.columns\.log_likelihood\[0\]: 'high' is not a valid float"),
    "NaN in a fitted mean": (
        _set(("object", "fitted", "model_", "components", 1, "mean", "data", 0), "NaN"),
        r"^fitted\.model_\.components\[1\]\.mean: contains NaN"),
    "converged_ not a boolean": (_set(("object", "fitted", "converged_"), "yes"),
                                 r"^fitted\.converged_: expected true or false"),
}


@pytest.mark.parametrize("case", list(GMM_MALFORMED))
def test_malformed_gmm_file_names_the_field(gmm_doc, case):
    change, message = GMM_MALFORMED[case]
    doc = json.loads(json.dumps(gmm_doc))
    change(doc)
    with pytest.raises(ValueError, match=message):
        loads(json.dumps(doc))


def test_tied_components_must_share_their_covariance():
    gmm = GMM(2, covariance_type="tied", random_state=0).fit(_blobs())
    doc = _document(gmm)
    cov = doc["object"]["fitted"]["model_"]["components"][1]["covariance"]["covariance"]
    cov["data"] = (2 * np.array(cov["data"])).tolist()
    with pytest.raises(ValueError, match=r"^fitted\.model_: .*tied GMM must share one covariance"):
        loads(json.dumps(doc))


def test_every_error_message_is_one_line():
    # the command line prints these as they are
    for change, _ in [*MALFORMED.values()]:
        with pytest.raises(ValueError) as info:
            loads(_tampered(change))
        assert "\n" not in str(info.value)
        assert re.match(r"^[\w\[\].]+: ", str(info.value))


def test_no_warnings_on_a_clean_round_trip(X):
    gmm = GMM(2, random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _roundtrip(gmm)
