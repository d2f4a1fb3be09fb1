"""The fit, predict and select commands, end to end on temporary CSV files."""

import contextlib
import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from probmix import GMM, MixtureModel
from probmix.cli import main
from probmix.distributions import Gaussian
from probmix.io import load, read, save

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(argv):
    """main(argv) with stdout and stderr captured: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def _sample(n=150, seed=0):
    truth = MixtureModel(weights=[0.3, 0.3, 0.4], components=[
        Gaussian(mean=m, covariance=np.eye(2)) for m in ([0.0, 0.0], [6.0, 0.0], [0.0, 6.0])])
    X, labels = truth.sample(n, np.random.default_rng(seed))
    return X, labels


@pytest.fixture(scope="module")
def data():
    X, labels = _sample()
    w = np.random.default_rng(1).integers(1, 4, len(X)).astype(float)
    return X, labels, w


@pytest.fixture(scope="module")
def csv_path(data, tmp_path_factory):
    """x, y (numbers), weight, and a text column: what a real export looks like."""
    X, labels, w = data
    path = tmp_path_factory.mktemp("csv") / "data.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["x", "y", "weight", "species"])
        for (x, y), wi, lab in zip(X, w, labels):
            writer.writerow([repr(float(x)), repr(float(y)), repr(float(wi)), "abc"[lab]])
    return path


@pytest.fixture(scope="module")
def fitted(csv_path, tmp_path_factory):
    """One `probmix fit` run with every output, shared by the tests that read them."""
    out = tmp_path_factory.mktemp("fit")
    code, stdout, stderr = _run(["fit", csv_path, "-k", "3", "--columns", "x,y", "--n-init", "2",
                                 "--seed", "0", "--save", out / "model.json",
                                 "--plot", out / "fit.png"])
    return code, stdout, stderr, out


def _reference(X, w=None):
    return GMM(3, n_init=2, random_state=0).fit(X, sample_weight=w)


def _one_line_error(code, stdout, stderr, expected_code, command, fragment):
    assert code == expected_code, stderr
    assert stdout == ""
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith(f"probmix {command}: error:")
    assert fragment in stderr, stderr


# -- fit -------------------------------------------------------------------------------------
def test_fit_prints_the_fitted_mixture(fitted, data):
    code, stdout, _, _ = fitted
    assert code == 0
    reference = _reference(data[0])
    for w, (mx, my) in zip(reference.weights_, reference.means_):
        assert re.search(rf"^\s+\d\s+{w:6.4f}\s+{mx:.4g}\s+{my:.4g}$", stdout, flags=re.M)
    ll = float(re.search(r"log-likelihood (-?[0-9.]+)", stdout).group(1))
    assert ll == pytest.approx(reference.score(data[0]) * len(data[0]), abs=1e-4)
    bic = float(re.search(r"BIC (-?[0-9.]+)", stdout).group(1))
    assert bic == pytest.approx(reference.bic(data[0]), abs=1e-4)
    assert "fitted to 150 rows x 2 columns" in stdout


def test_fit_reports_progress_per_initialisation_on_stderr(fitted):
    _, _, stderr, _ = fitted
    lines = stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == ["GMM init 1/2", "GMM init 2/2"]


def test_fit_saves_a_model_that_predicts_like_the_fit(fitted, data):
    *_, out = fitted
    saved = read(out / "model.json")
    assert saved.metadata["columns"] == ["x", "y"]
    gmm = saved.object
    reference = _reference(data[0])
    np.testing.assert_array_equal(gmm.predict_proba(data[0]), reference.predict_proba(data[0]))
    np.testing.assert_array_equal(gmm.means_, reference.means_)


def test_fit_writes_the_figure(fitted):
    *_, out = fitted
    png = (out / "fit.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 20_000


def test_fit_with_a_weights_column(csv_path, data):
    X, _, w = data
    code, stdout, _ = _run(["fit", csv_path, "-k", "3", "-c", "x,y", "--weights", "weight",
                            "--n-init", "2", "--seed", "0", "-q"])
    assert (code, stdout) == (0, "")
    code, stdout, _ = _run(["fit", csv_path, "-k", "3", "-c", "0,1", "-w", "2", "--n-init", "2",
                            "--seed", "0"])
    assert code == 0 and "weights from 'weight'" in stdout
    reference = _reference(X, w)
    for weight in reference.weights_:
        assert f"{weight:6.4f}" in stdout


def test_fit_quiet_prints_nothing_but_writes_files(csv_path, tmp_path):
    code, stdout, stderr = _run(["fit", csv_path, "-k", "2", "-c", "x,y", "-q",
                                 "--save", tmp_path / "m.json", "--max-iter", "1"])
    assert (code, stdout, stderr) == (0, "", "")  # even the ConvergenceWarning is silenced
    assert isinstance(load(tmp_path / "m.json"), GMM)


def test_fit_verbose_shows_iterations_and_warnings_are_one_line(csv_path):
    code, _, stderr = _run(["fit", csv_path, "-k", "3", "-c", "x,y", "-v", "--max-iter", "3",
                            "--tol", "0", "--init", "random"])
    assert code == 0
    assert re.search(r"^\s+iteration\s+0\s+log-likelihood", stderr, flags=re.M)
    warning = [line for line in stderr.splitlines() if "warning" in line]
    assert len(warning) == 1
    assert warning[0].startswith("probmix fit: warning: EM did not converge in max_iter=3")


def test_fit_headerless_csv_by_index(tmp_path, data):
    path = tmp_path / "plain.csv"
    np.savetxt(path, data[0], delimiter=";")
    code, stdout, _ = _run(["fit", path, "-k", "3", "--delimiter", ";", "--n-init", "2",
                            "--seed", "0"])
    assert code == 0
    assert "x0" in stdout and "x1" in stdout  # columns named by position
    for weight in _reference(data[0]).weights_:
        assert f"{weight:6.4f}" in stdout


def test_fit_one_column_plots_the_history_only(tmp_path, data):
    path = tmp_path / "one.csv"
    np.savetxt(path, data[0][:, :1], header="x", comments="")
    code, _, _ = _run(["fit", path, "-k", "2", "--plot", tmp_path / "one.png", "-q"])
    assert code == 0
    assert (tmp_path / "one.png").read_bytes().startswith(PNG_MAGIC)


# -- predict -----------------------------------------------------------------------------------
def _read_predictions(text):
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    values = np.array([[float(v) for v in r] for r in body])
    return header, values


def test_predict_writes_labels_and_responsibilities(fitted, csv_path, data, tmp_path):
    *_, out = fitted
    output = tmp_path / "labels.csv"
    # the CSV has extra columns (weight, species): the model's saved column names pick x, y
    code, stdout, stderr = _run(["predict", out / "model.json", csv_path, "-o", output])
    assert code == 0, stderr
    header, values = _read_predictions(output.read_text())
    assert header == ["label", "log_density", "p_0", "p_1", "p_2"]
    reference = _reference(data[0])
    np.testing.assert_array_equal(values[:, 0], reference.predict(data[0]))
    # written with repr: every float reads back exactly
    np.testing.assert_array_equal(values[:, 1], reference.score_samples(data[0]))
    np.testing.assert_array_equal(values[:, 2:], reference.predict_proba(data[0]))
    counts = np.bincount(reference.predict(data[0]), minlength=3)
    assert f"rows per component: 0: {counts[0]}, 1: {counts[1]}, 2: {counts[2]}" in stdout


def test_predict_to_stdout_with_a_saved_mixture_model(tmp_path, data):
    model = MixtureModel(weights=[0.5, 0.5], components=[
        Gaussian(mean=[0.0, 0.0], covariance=np.eye(2)),
        Gaussian(mean=[6.0, 3.0], covariance=2 * np.eye(2))])
    save(model, tmp_path / "mixture.json")
    path = tmp_path / "plain.csv"
    np.savetxt(path, data[0][:20], delimiter=",")
    code, stdout, stderr = _run(["predict", tmp_path / "mixture.json", path])
    assert (code, stderr) == (0, "")
    _, values = _read_predictions(stdout)
    np.testing.assert_array_equal(values[:, 2:], model.responsibilities(data[0][:20]))


# -- select ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def selected(csv_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("select")
    code, stdout, stderr = _run(["select", csv_path, "-c", "x,y", "--k", "1..4",
                                 "--covariance", "full,diag", "--seed", "0",
                                 "--save", out / "best.json", "--plot", out / "sel.png"])
    return code, stdout, stderr, out


def test_select_prints_the_table_and_the_winner(selected):
    code, stdout, _, _ = selected
    assert code == 0
    for k in range(1, 5):
        for t in ("full", "diag"):
            assert re.search(rf"^K={k} {t}\s+{k}\s+ok\s", stdout, flags=re.M)
    best = re.search(r"best by BIC: K=(\d) (\w+)", stdout)
    assert best is not None and best.group(1) == "3"


def test_select_progress_saved_model_and_figure(selected, data):
    _, _, stderr, out = selected
    assert [line.split("]")[0] for line in stderr.splitlines()] == [
        f"[{i}/8" for i in range(1, 9)]
    best = load(out / "best.json", GMM)
    assert best.n_components == 3
    assert read(out / "best.json").metadata["criterion"] == "bic"
    np.testing.assert_allclose(best.score(data[0]),
                               GMM(3, covariance_type=best.covariance_type,
                                   random_state=0).fit(data[0]).score(data[0]), rtol=1e-12)
    assert (out / "sel.png").read_bytes().startswith(PNG_MAGIC)


def test_select_by_icl_quietly(csv_path, tmp_path):
    code, stdout, stderr = _run(["select", csv_path, "-c", "x,y", "--k", "2,3,4",
                                 "--criterion", "icl", "-q", "--save", tmp_path / "b.json"])
    assert (code, stdout, stderr) == (0, "", "")
    assert load(tmp_path / "b.json").n_components == 3


def test_select_lists_a_failed_candidate(tmp_path):
    path = tmp_path / "few.csv"
    np.savetxt(path, _sample(n=6)[0], delimiter=",")
    code, stdout, stderr = _run(["select", path, "--k", "1,2,7"])
    assert code == 0
    assert re.search(r"^K=7 full\s+7\s+failed", stdout, flags=re.M)
    assert "n_samples=6 must be >= n_components=7" in stdout
    assert "[3/3] K=7 full: failed:" in stderr


# -- errors: one line, the right exit code, nothing written ------------------------------------
@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, fitted):
    d = tmp_path_factory.mktemp("bad")
    (d / "text.csv").write_text("a,b\n1,2\n3,oops\n")
    (d / "ragged.csv").write_text("a,b\n1,2\n3\n")
    (d / "empty.csv").write_text("")
    (d / "header_only.csv").write_text("a,b\n")
    (d / "missing_value.csv").write_text("a,b\n1,2\n3,\n4,5\n")
    (d / "nan.csv").write_text("a,b\n1,2\n3,nan\n")
    (d / "negative_weights.csv").write_text("a,w\n1,1\n2,-1\n3,1\n")
    doc = json.loads((fitted[3] / "model.json").read_text())
    doc["object"]["fitted"]["model_"]["weights"]["data"][0] = 5.0
    (d / "tampered.json").write_text(json.dumps(doc))
    doc["format_version"] = 99
    (d / "future.json").write_text(json.dumps(doc))
    return d


ERRORS = [
    # (argv with {csv}, {bad} and {model} placeholders, exit code, message fragment)
    (["fit", "{bad}/nope.csv", "-k", "2"], 1, "cannot read '{bad}/nope.csv': no such file"),
    (["fit", "{bad}", "-k", "2"], 1, "it is a directory"),
    (["fit", "{csv}", "-k", "2"], 1, "column 'species' is not numeric: line 2 holds"),
    (["fit", "{bad}/text.csv", "-k", "1"], 1, "column 'b' is not numeric: line 3 holds 'oops'"),
    (["fit", "{bad}/missing_value.csv", "-k", "1"], 1, "column 'b' is not numeric: line 3 is "
                                                       "empty"),
    (["fit", "{bad}/nan.csv", "-k", "1"], 1, "column 'b' has a missing or infinite value (nan) "
                                             "on line 3"),
    (["fit", "{bad}/ragged.csv", "-k", "1"], 1, "line 3 has 1 fields, expected 2"),
    (["fit", "{bad}/empty.csv", "-k", "1"], 1, "holds no data"),
    (["fit", "{bad}/header_only.csv", "-k", "1"], 1, "has a header but no data rows"),
    (["fit", "{bad}/negative_weights.csv", "-k", "1", "-w", "w"], 1,
     "weights column 'w' must be non-negative"),
    (["fit", "{csv}", "-k", "0", "-c", "x,y"], 2, "expected a positive integer, got 0"),
    (["fit", "{csv}", "-k", "three", "-c", "x,y"], 2, "expected a positive integer, got 'three'"),
    (["fit", "{csv}", "-c", "x,y"], 2, "the following arguments are required: -k"),
    (["fit", "{csv}", "-k", "500", "-c", "x,y"], 1, "n_samples=150 must be >= n_components=500"),
    (["fit", "{csv}", "-k", "2", "-c", "x,z"], 1, "unknown column 'z' (the columns are: x, y, "
                                                  "weight, species)"),
    (["fit", "{csv}", "-k", "2", "-c", "0,7"], 1, "column index 7 is out of range"),
    (["fit", "{csv}", "-k", "2", "-c", "x,y", "-w", "x"], 1, "both a data column and the "
                                                             "weights"),
    (["fit", "{csv}", "-k", "2", "-c", "x,y", "--covariance", "round"], 2, "invalid choice"),
    (["fit", "{csv}", "-k", "2", "-c", "x,y", "--save", "{bad}/no/m.json"], 1,
     "directory '{bad}/no' does not exist"),
    (["fit", "{csv}", "-k", "2", "-c", "x,y", "--plot", "{bad}/f.notaformat"], 1,
     "unsupported figure format"),
    (["select", "{csv}", "-c", "x,y", "--k", "0..3"], 2, "expected K >= 1"),
    (["select", "{csv}", "-c", "x,y", "--k", "4..2"], 2, "low <= high"),
    (["select", "{csv}", "-c", "x,y", "--k", "1..x"], 2, "expected K as 3, 1..8 or 1,2,5"),
    (["select", "{csv}", "-c", "x,y", "--covariance", "full,round"], 2,
     "unknown covariance type 'round'"),
    (["select", "{bad}/text.csv", "--k", "1..2"], 1, "column 'b' is not numeric"),
    (["select", "{bad}/header_only.csv", "--k", "1"], 1, "has a header but no data rows"),
    (["predict", "{bad}/nope.json", "{csv}"], 1, "cannot read '{bad}/nope.json': no such file"),
    (["predict", "{csv}", "{csv}"], 1, "is not a valid model file: the file is not valid JSON"),
    (["predict", "{bad}/tampered.json", "{csv}"], 1,
     "is not a valid model file: fitted.model_.weights: weights must sum to 1"),
    (["predict", "{bad}/future.json", "{csv}"], 1, "format_version: the file has format "
                                                   "version 99"),
    (["predict", "{model}", "{csv}", "-c", "x"], 1, "the model expects 2 columns, the data has "
                                                    "1 (x)"),
    (["predict", "{model}", "{bad}/text.csv"], 1, "column 'b' is not numeric"),
]


@pytest.mark.parametrize("argv, code, fragment", ERRORS,
                         ids=[f"{a[0]}-{m[:30]}" for a, _, m in ERRORS])
def test_bad_input_is_a_one_line_error(argv, code, fragment, csv_path, bad_files, fitted):
    places = {"csv": csv_path, "bad": bad_files, "model": fitted[3] / "model.json"}
    before = sorted(bad_files.iterdir())
    result = _run([a.format(**places) for a in argv])
    _one_line_error(*result, code, argv[0], fragment.format(**places))
    assert sorted(bad_files.iterdir()) == before  # nothing written on failure


def test_select_exits_one_when_every_candidate_fails(tmp_path):
    path = tmp_path / "two.csv"
    np.savetxt(path, [[0.0, 1.0], [1.0, 0.0]], delimiter=",")
    result = _run(["select", path, "--k", "3..4", "-q"])
    _one_line_error(*result, 1, "select", "every candidate failed, e.g. K=3 full: ValueError")


@pytest.mark.parametrize("command, options", [
    ("fit", ["-k", "--covariance", "--columns", "--weights", "--save", "--plot", "--quiet"]),
    ("predict", ["MODEL.json", "DATA.csv", "--output", "--columns"]),
    ("select", ["--k", "1..8", "--covariance", "--criterion", "--save", "--plot"]),
])
def test_help_documents_the_options(command, options, capsys):
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    for option in options:
        assert option in text
    assert "example: probmix " + command in text


def test_top_level_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("fit", "predict", "select", "demo"):
        assert re.search(rf"^\s+{command}\s", text, flags=re.M)


def test_console_round_trip_through_python_dash_m(tmp_path, data):
    path = tmp_path / "d.csv"
    np.savetxt(path, data[0], delimiter=",", header="x,y", comments="")
    model, labels = tmp_path / "m.json", tmp_path / "labels.csv"
    fit = subprocess.run([sys.executable, "-m", "probmix", "fit", str(path), "-k", "3",
                          "--save", str(model), "-q"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (fit.returncode, fit.stdout, fit.stderr) == (0, "", "")
    predict = subprocess.run([sys.executable, "-m", "probmix", "predict", str(model), str(path),
                              "-o", str(labels)],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert predict.returncode == 0, predict.stderr
    _, values = _read_predictions(labels.read_text())
    np.testing.assert_array_equal(values[:, 0], load(model).predict(data[0]))


# -- missing values --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gappy_csv(data, tmp_path_factory):
    """data's x, y with cells left empty, as NA and as nan (every row keeps one value)."""
    X = data[0]
    path = tmp_path_factory.mktemp("gappy") / "gappy.csv"
    gaps = {3: (1, ""), 10: (0, "NA"), 17: (1, "nan"), 40: (0, "")}
    rows = ["x,y"]
    for i, (x, y) in enumerate(X):
        cells = [repr(float(x)), repr(float(y))]
        if i in gaps:
            j, text = gaps[i]
            cells[j] = text
        rows.append(",".join(cells))
    path.write_text("\n".join(rows) + "\n")
    Xg = X.copy()
    for i, (j, _) in gaps.items():
        Xg[i, j] = np.nan
    return path, Xg


def test_fit_and_predict_marginalise_missing_cells(gappy_csv, tmp_path):
    path, Xg = gappy_csv
    code, stdout, stderr = _run(["fit", path, "-k", "3", "--seed", "0", "--missing",
                                 "marginalize", "--save", tmp_path / "m.json",
                                 "--plot", tmp_path / "m.png"])
    assert code == 0, stderr
    reference = GMM(3, random_state=0, missing="marginalize").fit(Xg)
    total = reference.score(Xg) * len(Xg)
    assert f"log-likelihood {total:.4f}" in stdout
    assert (tmp_path / "m.png").read_bytes()[:8] == PNG_MAGIC
    code, stdout, stderr = _run(["predict", tmp_path / "m.json", path])
    assert code == 0, stderr
    _, values = _read_predictions(stdout)
    np.testing.assert_array_equal(values[:, 0], reference.predict(Xg))
    np.testing.assert_allclose(values[:, 1], reference.score_samples(Xg), rtol=1e-12)


def test_a_missing_cell_without_the_option_points_at_it(gappy_csv):
    path, _ = gappy_csv  # columns are read in turn: x's NA on line 12 comes first
    _one_line_error(*_run(["fit", path, "-k", "2"]), 1, "fit",
                    "column 'x' is not numeric: line 12 holds 'NA' (a missing value: remove "
                    "the row, or fit with --missing marginalize)")
