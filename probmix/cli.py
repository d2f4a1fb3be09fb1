"""The ``probmix`` command line (also ``python -m probmix``).

Subcommands register themselves in :func:`build_parser`; each has a handler taking the parsed
arguments and returning an exit code:

- ``probmix fit DATA.csv -k 3``: fit a GMM, print it, optionally save it (JSON, see
  :mod:`probmix.io`) and plot it;
- ``probmix predict MODEL.json DATA.csv``: labels, log-densities and responsibilities as CSV;
- ``probmix select DATA.csv --k 1..8``: BIC/AIC/ICL over a grid (see :mod:`probmix.selection`);
- ``probmix demo``: the bundled iris data.

Results go to stdout, progress and warnings to stderr (one line each; ``--quiet`` silences
them). Usage errors exit with 2, failures (a missing file, a non-numeric column, a fit that
fails) with 1, each with a one-line message.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import attrs
import numpy as np

__all__ = ["main", "build_parser"]

PROG = "probmix"


class CommandError(Exception):
    """A user-facing failure: reported as one line on stderr with exit code 1."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus a pointer to ``--help``), not a banner."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subparser per command."""
    parser = _Parser(prog=PROG, description="Mixture models fitted by Expectation-Maximization.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", required=True,
                                     metavar="COMMAND", parser_class=_Parser)

    demo = commands.add_parser(
        "demo", help="fit a 3-component Gaussian mixture to Fisher's iris data and plot it",
        description="Fit GMM(n_components=3, covariance_type='full', n_init=5) to Fisher's "
                    "iris data, print the fitted parameters, the log-likelihood per EM "
                    "iteration, BIC and the adjusted Rand index against the species, and "
                    "write a figure (soft memberships in PCA coordinates with 1-3 sigma "
                    "ellipses, and the EM history).")
    demo.add_argument("--output", "-o", default="iris_gmm.png", metavar="PATH",
                      help="where to write the figure; the extension picks the format "
                           "(default: %(default)s)")
    demo.add_argument("--seed", type=_non_negative_int, default=0,
                      help="random_state of the fit (default: %(default)s)")
    demo.add_argument("--quiet", "-q", action="store_true",
                      help="print nothing; only write the figure")
    demo.set_defaults(handler=_demo)
    _add_fit(commands)
    _add_predict(commands)
    _add_select(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (``sys.argv[1:]`` by default); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 2
    try:
        return int(args.handler(args))
    except CommandError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 1


# -- demo -----------------------------------------------------------------------------------
def _check_output(path: Path) -> None:
    """Fail before fitting, with one line, when the figure could not be written."""
    from matplotlib.backend_bases import FigureCanvasBase

    if path.is_dir():
        raise CommandError(f"output {str(path)!r} is a directory; give a file name such as "
                           f"{str(path / 'iris_gmm.png')!r}")
    parent = path.parent
    if not parent.is_dir():
        raise CommandError(f"cannot write {str(path)!r}: directory {str(parent)!r} does not "
                           "exist")
    if not os.access(parent, os.W_OK):
        raise CommandError(f"cannot write {str(path)!r}: directory {str(parent)!r} is not "
                           "writable")
    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = path.suffix.lower().lstrip(".")
    if suffix and suffix not in formats:
        raise CommandError(f"cannot write {str(path)!r}: unsupported figure format "
                           f"{path.suffix!r} (use one of {', '.join(sorted(formats))})")


def _demo(args: argparse.Namespace) -> int:
    from .datasets import load_iris
    from .gmm import GMM

    output = Path(args.output)
    _check_output(output)
    out: TextIO | None = None if args.quiet else sys.stdout
    iris = load_iris()
    X, species = iris.data, iris.target
    gmm = GMM(n_components=3, covariance_type="full", random_state=args.seed, n_init=5).fit(X)
    labels = gmm.predict(X)
    ari = _adjusted_rand_index(species, labels)
    if out is not None:
        _report(gmm, X, species, labels, ari, iris.feature_names, iris.target_names, out)

    fig = _demo_figure(gmm, X, ari)
    try:
        fig.savefig(output, dpi=110)
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot write {str(output)!r}: {exc}") from None
    if out is not None:
        print(f"figure written to {output}", file=out)
    return 0


def _report(gmm: Any, X: np.ndarray, species: np.ndarray, labels: np.ndarray, ari: float,
            feature_names: Sequence[str], target_names: Sequence[str], out: TextIO) -> None:
    n, d = X.shape
    K = gmm.n_components
    short = [name.replace(" (cm)", "") for name in feature_names]
    width = max(len(s) for s in short) + 2

    def say(text: str = "") -> None:
        print(text, file=out)

    say(f"Gaussian mixture, K={K}, full covariances, fitted by EM to Fisher's iris data "
        f"({n} flowers x {d} measurements in cm)")
    say(f"best of {gmm.n_init} initialisations (seed {gmm.random_state}): "
        f"{'converged' if gmm.converged_ else 'NOT converged'} after {gmm.n_iter_} iterations")
    say()
    say("weights and means:")
    say("component  weight" + "".join(f"{s:>{width}}" for s in short))
    for k in range(K):
        say(f"{k:>9d}  {gmm.weights_[k]:6.3f}"
            + "".join(f"{m:>{width}.3f}" for m in gmm.means_[k]))
    say()
    say("covariances (rows and columns in the order above):")
    with np.printoptions(precision=3, suppress=True, floatmode="fixed"):
        for k in range(K):
            say(f"component {k}:")
            for line in str(gmm.covariances_[k]).splitlines():
                say("  " + line)
    say()
    say("log-likelihood per sample by iteration:")
    ll = gmm.history_.log_likelihood
    for t, value in enumerate(ll):
        change = "" if t == 0 else f"   ({value - ll[t - 1]:+.2e})"
        say(f"  {t:4d}  {value:.6f}{change}")
    say()
    say(f"final log-likelihood: {gmm.lower_bound_ * n:.3f} "
        f"({gmm.lower_bound_:.6f} per sample)")
    say(f"BIC: {gmm.bic(X):.3f}")
    say(f"adjusted Rand index against the species: {ari:.4f}")
    say()
    say("flowers of each species (columns) per component (rows):")
    names = [str(t) for t in target_names]
    cw = max(len(s) for s in names) + 2
    say(" " * 11 + "".join(f"{s:>{cw}}" for s in names))
    for k in range(K):
        counts = [int(np.sum((labels == k) & (species == j))) for j in range(len(names))]
        say(f"component {k}" + "".join(f"{c:>{cw}d}" for c in counts))


def _demo_figure(gmm: Any, X: np.ndarray, ari: float) -> Any:
    """Two panels: soft memberships in PCA coordinates, and the EM history."""
    from matplotlib.figure import Figure

    from .plot import plot_history, plot_responsibilities

    # A bare Figure (no pyplot): no global state and no GUI backend, so it works headless.
    fig = Figure(figsize=(13, 5.2), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1.15, 1.0])
    plot_responsibilities(gmm, X, ax=left)
    left.set_title("soft memberships and 1, 2, 3σ ellipses (PCA projection)")
    plot_history(gmm.history_, ax=right)
    right.set_title("EM history of the best initialisation")
    fig.suptitle(f"probmix demo: 3-component Gaussian mixture on Fisher's iris data "
                 f"(adjusted Rand index vs species {ari:.3f})")
    return fig


def _adjusted_rand_index(labels_true: Any, labels_pred: Any) -> float:
    """Adjusted Rand index of two labelings of the same items (Hubert & Arabie, 1985).

    From the pair confusion counts (pairs together in both, in one only, in neither):
    ARI = 2 (tp·tn − fn·fp) / ((tp + fn)(fn + tn) + (tp + fp)(fp + tn)); 1.0 for identical
    partitions (up to renaming), about 0 for independent ones. Python integers keep the pair
    counts exact for any n.
    """
    a = np.asarray(labels_true)
    b = np.asarray(labels_pred)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"labelings must be 1-D of the same length, got shapes {a.shape} "
                         f"and {b.shape}")
    n = a.size
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    table = np.zeros((ia.max(initial=-1) + 1, ib.max(initial=-1) + 1), dtype=np.int64)
    np.add.at(table, (ia, ib), 1)

    def pairs(counts: np.ndarray) -> int:
        return sum(int(c) * (int(c) - 1) // 2 for c in counts.ravel())

    together_both = pairs(table)
    together_a = pairs(table.sum(axis=1))
    together_b = pairs(table.sum(axis=0))
    tp = together_both
    fn = together_a - together_both
    fp = together_b - together_both
    tn = n * (n - 1) // 2 - tp - fn - fp
    if fn == 0 and fp == 0:  # the same partition (also n < 2)
        return 1.0
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))


# -- shared by fit, predict and select --------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _k_list(text: str) -> list[int]:
    """``3``, ``1..8``, ``1,2,5`` or ``2..4,8``: the numbers of components to try."""
    values: list[int] = []
    for part in text.split(","):
        lo_text, sep, hi_text = part.strip().partition("..")
        try:
            lo = int(lo_text)
            hi = int(hi_text) if sep else lo
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected K as 3, 1..8 or 1,2,5, got {text!r}") from None
        if lo < 1 or hi < lo:
            raise argparse.ArgumentTypeError(
                f"expected K >= 1 and ranges low..high with low <= high, got {part.strip()!r}")
        values.extend(range(lo, hi + 1))
    return list(dict.fromkeys(values))


def _covariance_list(text: str) -> list[str]:
    from .gmm import COVARIANCE_TYPES

    names = list(COVARIANCE_TYPES) if text == "all" else [t.strip() for t in text.split(",")]
    for name in names:
        if name not in COVARIANCE_TYPES:
            raise argparse.ArgumentTypeError(
                f"unknown covariance type {name!r} (choose from {', '.join(COVARIANCE_TYPES)}, "
                "a comma-separated list of them, or all)")
    return list(dict.fromkeys(names))


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", metavar="DATA.csv",
                        help="a CSV file of numbers, one row per sample; a first row that is "
                             "not all numbers is read as the column names")
    parser.add_argument("--columns", "-c", metavar="COLS",
                        help="comma-separated columns to use, by name (from the header) or "
                             "0-based index (default: every column except --weights)")
    parser.add_argument("--delimiter", default=",", metavar="CHAR",
                        help="field separator (default: ','; use $'\\t' for tabs)")


def _add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    """The GMM settings shared by fit and select."""
    parser.add_argument("--weights", "-w", metavar="COL",
                        help="a column of non-negative sample weights (name or index)")
    parser.add_argument("--n-init", type=_positive_int, default=1, metavar="N",
                        help="initialisations per fit; the best is kept (default: %(default)s)")
    parser.add_argument("--max-iter", type=_positive_int, default=100, metavar="N",
                        help="maximum EM iterations per initialisation (default: %(default)s)")
    parser.add_argument("--tol", type=_non_negative_float, default=1e-3,
                        help="stop when the per-row log-likelihood changes by less "
                             "(default: %(default)s)")
    parser.add_argument("--reg-covar", type=_non_negative_float, default=1e-6, metavar="R",
                        help="added to every covariance diagonal (default: %(default)s)")
    parser.add_argument("--init", dest="init_params", default="kmeans++",
                        choices=["kmeans++", "kmeans", "random", "random_from_data"],
                        help="how EM starts (default: %(default)s)")
    parser.add_argument("--seed", type=_non_negative_int, default=0,
                        help="random_state, for reproducible fits (default: %(default)s)")
    parser.add_argument("--plot", metavar="FIG.png",
                        help="write a figure; the extension picks the format")
    parser.add_argument("--save", metavar="MODEL.json",
                        help="save the fitted model as JSON (read it back with "
                             "'probmix predict' or probmix.io.load)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="print nothing but errors (files are still written)")


def _add_fit(commands: Any) -> None:
    fit = commands.add_parser(
        "fit", help="fit a Gaussian mixture to a CSV file",
        description="Fit a Gaussian mixture with K components by EM to the rows of a CSV "
                    "file; print the weights, means, log-likelihood, BIC and AIC. Progress "
                    "(one line per initialisation, or per iteration with -v) goes to stderr.",
        epilog="example: probmix fit data.csv -k 3 --covariance diag --n-init 5 "
               "--save model.json --plot fit.png")
    _add_data_arguments(fit)
    fit.add_argument("-k", "--n-components", type=_positive_int, required=True, metavar="K",
                     help="number of components")
    fit.add_argument("--covariance", default="full",
                     choices=["full", "tied", "diag", "spherical"],
                     help="covariance structure (default: %(default)s)")
    _add_fit_arguments(fit)
    fit.add_argument("--verbose", "-v", action="store_true",
                     help="also show the log-likelihood every 10 iterations")
    fit.add_argument("--missing", choices=["raise", "marginalize"], default="raise",
                     help="what an empty, NA or nan cell means: an error, or a missing value "
                          "that EM marginalises exactly; 'probmix predict' with the saved "
                          "model then accepts them too (default: %(default)s)")
    fit.set_defaults(handler=_fit)


def _add_predict(commands: Any) -> None:
    predict = commands.add_parser(
        "predict", help="label the rows of a CSV file with a saved model",
        description="Load a model saved by 'probmix fit --save' (or probmix.io.save) and write, "
                    "for every row of DATA.csv, the most probable component (label), the log "
                    "density and the responsibility of each component (p_0, p_1, ...) as CSV. "
                    "The model's column names select the columns when the file has them.",
        epilog="example: probmix predict model.json data.csv --output labels.csv")
    predict.add_argument("model", metavar="MODEL.json", help="a saved GMM or MixtureModel")
    _add_data_arguments(predict)
    predict.add_argument("--output", "-o", metavar="OUT.csv",
                         help="where to write the CSV (default: standard output)")
    predict.add_argument("--quiet", "-q", action="store_true",
                         help="print no summary (the CSV is still written)")
    predict.set_defaults(handler=_predict)


def _add_select(commands: Any) -> None:
    select = commands.add_parser(
        "select", help="choose the number of components (and covariance type) by BIC/AIC/ICL",
        description="Fit a GMM for every K and covariance type, print BIC, AIC and ICL "
                    "(lower is better; ICL also penalises overlapping components) and the best "
                    "model. A fit that fails is listed with its reason.",
        epilog="example: probmix select data.csv --k 1..8 --covariance full,diag "
               "--criterion icl --plot selection.png")
    _add_data_arguments(select)
    select.add_argument("--k", "-k", dest="k", type=_k_list, default=list(range(1, 9)),
                        metavar="K",
                        help="numbers of components: 3, 1..8 or 1,2,5 (default: 1..8)")
    select.add_argument("--covariance", type=_covariance_list, default=["full"],
                        metavar="TYPES",
                        help="covariance types, comma-separated, or all "
                             "(full, tied, diag, spherical; default: full)")
    select.add_argument("--criterion", choices=["bic", "aic", "icl"], default="bic",
                        help="which criterion picks the best model (default: %(default)s)")
    _add_fit_arguments(select)
    select.set_defaults(handler=_select)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


@attrs.frozen
class _Table:
    """Columns read from a CSV file: the data, their names, and the weights (if asked)."""

    X: np.ndarray
    names: tuple[str, ...]
    weights: np.ndarray | None
    weight_name: str | None


def _read_rows(path: Path, delimiter: str) -> tuple[list[str] | None, list[tuple[int, list[str]]]]:
    """(header or None, [(line number, fields)]) of a CSV file; blank and '#' lines skipped."""
    if not path.exists():
        raise CommandError(f"cannot read {str(path)!r}: no such file")
    if path.is_dir():
        raise CommandError(f"cannot read {str(path)!r}: it is a directory")
    if len(delimiter) != 1:
        raise CommandError(f"--delimiter must be one character, got {delimiter!r}")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            rows = []
            for fields in reader:
                if not fields or all(not c.strip() for c in fields):
                    continue
                if fields[0].lstrip().startswith("#"):
                    continue
                rows.append((reader.line_num, [c.strip() for c in fields]))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CommandError(f"cannot read {str(path)!r}: {_one_line(exc)}") from None
    if not rows:
        raise CommandError(f"{str(path)!r} holds no data")
    header = None
    if not all(_is_number(c) for c in rows[0][1]):
        header = rows[0][1]
        rows = rows[1:]
        if not rows:
            raise CommandError(f"{str(path)!r} has a header but no data rows")
    width = len(header) if header is not None else len(rows[0][1])
    for line, fields in rows:
        if len(fields) != width:
            raise CommandError(f"{str(path)!r} line {line} has {len(fields)} fields, expected "
                               f"{width}")
    return header, rows


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _resolve(spec: str, names: Sequence[str], what: str) -> int:
    """A column given by name, or else by 0-based index."""
    if spec in names:
        return list(names).index(spec)
    try:
        index = int(spec)
    except ValueError:
        raise CommandError(f"unknown {what} {spec!r} (the columns are: "
                           f"{', '.join(names)})") from None
    if not 0 <= index < len(names):
        raise CommandError(f"{what} index {index} is out of range: the file has {len(names)} "
                           "columns (indices start at 0)")
    return index


#: cells that mark a missing value with --missing marginalize
_MISSING_CELLS = frozenset({"", "na", "nan"})


def _read_table(path_text: str, columns: str | None, weights: str | None, delimiter: str,
                default_columns: Sequence[str] | None = None,
                allow_missing: bool = False) -> _Table:
    """Read numeric columns (and a weights column) from a CSV file with numpy alone.

    ``default_columns``: the names to use when ``columns`` is None and the file's header has
    them all (the columns a saved model was fitted on). ``allow_missing``: an empty cell,
    ``NA`` or ``nan`` in a data column is a missing value (NaN).
    """
    path = Path(path_text)
    header, rows = _read_rows(path, delimiter)
    width = len(rows[0][1])
    names = header if header is not None else [f"x{j}" for j in range(width)]
    w_index = None if weights is None else _resolve(weights, names, "weights column")
    if columns is not None:
        specs = [c.strip() for c in columns.split(",") if c.strip()]
        if not specs:
            raise CommandError("--columns is empty")
        chosen = [_resolve(c, names, "column") for c in specs]
    elif default_columns is not None and header is not None and all(
            c in header for c in default_columns):
        chosen = [header.index(c) for c in default_columns]
    else:
        chosen = [j for j in range(width) if j != w_index]
    if len(set(chosen)) != len(chosen):
        raise CommandError("--columns names a column twice")
    if w_index is not None and w_index in chosen:
        raise CommandError(f"column {names[w_index]!r} is both a data column and the weights")
    if not chosen:
        raise CommandError("no data columns left (the only column is the weights)")

    def numbers(j: int, role: str) -> np.ndarray:
        out = np.empty(len(rows))
        for i, (line, fields) in enumerate(rows):
            cell = fields[j]
            if allow_missing and role == "column" and cell.strip().lower() in _MISSING_CELLS:
                out[i] = math.nan
                continue
            try:
                value = float(cell)
            except ValueError:
                hint = (" (select numeric columns with --columns)" if role == "column" else "")
                if role == "column" and cell.strip().lower() in _MISSING_CELLS:
                    hint = (" (a missing value: remove the row, or fit with --missing "
                            "marginalize)")
                problem = "is empty" if not cell else f"holds {cell!r}"
                raise CommandError(f"{role} {names[j]!r} is not numeric: line {line} "
                                   f"{problem}{hint}") from None
            if not math.isfinite(value):
                hint = (" (or let the model marginalise missing values: --missing "
                        "marginalize)" if role == "column" and math.isnan(value) else "")
                raise CommandError(f"{role} {names[j]!r} has a missing or infinite value "
                                   f"({cell}) on line {line}: remove or impute it{hint}")
            out[i] = value
        return out

    X = np.column_stack([numbers(j, "column") for j in chosen])
    w = None
    if w_index is not None:
        w = numbers(w_index, "weights column")
        if np.any(w < 0) or not w.sum() > 0:
            raise CommandError(f"weights column {names[w_index]!r} must be non-negative with a "
                               "positive sum")
    return _Table(X=X, names=tuple(names[j] for j in chosen), weights=w,
                  weight_name=None if w_index is None else names[w_index])


def _check_save(path_text: str | None) -> Path | None:
    """Fail before fitting when the model file could not be written."""
    if path_text is None:
        return None
    path = Path(path_text)
    if path.is_dir():
        raise CommandError(f"cannot save to {path_text!r}: it is a directory")
    if not path.parent.is_dir():
        raise CommandError(f"cannot save to {path_text!r}: directory {str(path.parent)!r} does "
                           "not exist")
    if not os.access(path.parent, os.W_OK):
        raise CommandError(f"cannot save to {path_text!r}: directory {str(path.parent)!r} is not "
                           "writable")
    return path


def _check_plot(path_text: str | None) -> Path | None:
    if path_text is None:
        return None
    path = Path(path_text)
    _check_output(path)
    return path


def _save_figure(fig: Any, path: Path) -> None:
    try:
        fig.savefig(path, dpi=110)
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot write {str(path)!r}: {_one_line(exc)}") from None


def _save_model(obj: Any, path: Path, metadata: dict[str, Any]) -> None:
    from .io import save

    try:
        save(obj, path, metadata=metadata)
    except OSError as exc:
        raise CommandError(f"cannot save to {str(path)!r}: {_one_line(exc)}") from None


def _gmm(args: argparse.Namespace, n_components: int, covariance_type: str,
         verbose: int = 0) -> Any:
    from .gmm import GMM

    return GMM(n_components=n_components, covariance_type=covariance_type, tol=args.tol,
               reg_covar=args.reg_covar, max_iter=args.max_iter, n_init=args.n_init,
               init_params=args.init_params, random_state=args.seed, verbose=verbose,
               missing=getattr(args, "missing", "raise"))


def _report_warnings(caught: Sequence[warnings.WarningMessage], command: str,
                     quiet: bool) -> None:
    if quiet:
        return
    for message in dict.fromkeys(_one_line(w.message) for w in caught):  # type: ignore[arg-type]
        print(f"{PROG} {command}: warning: {message}", file=sys.stderr)


# -- fit -------------------------------------------------------------------------------------
def _fit(args: argparse.Namespace) -> int:
    plot_path = _check_plot(args.plot)
    save_path = _check_save(args.save)
    table = _read_table(args.data, args.columns, args.weights, args.delimiter,
                        allow_missing=args.missing == "marginalize")
    verbose = 0 if args.quiet else (2 if args.verbose else 1)
    gmm = _gmm(args, args.n_components, args.covariance, verbose)
    # GMM reports progress on stdout (like scikit-learn); here stdout carries the result,
    # so progress goes to stderr.
    with warnings.catch_warnings(record=True) as caught, \
            contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("always")
        try:
            gmm.fit(table.X, sample_weight=table.weights)
        except (ValueError, ArithmeticError) as exc:
            raise CommandError(f"the fit failed: {_one_line(exc)}") from None
    _report_warnings(caught, "fit", args.quiet)
    if not args.quiet:
        _describe_fit(gmm, table, sys.stdout)
    if save_path is not None:
        _save_model(gmm, save_path, {"columns": list(table.names), "weights": table.weight_name,
                                     "data": os.path.basename(args.data)})
        if not args.quiet:
            print(f"model saved to {save_path}")
    if plot_path is not None:
        _save_figure(_fit_figure(gmm, table), plot_path)
        if not args.quiet:
            print(f"figure written to {plot_path}")
    return 0


def _describe_fit(gmm: Any, table: _Table, out: TextIO) -> None:
    from .selection import criteria

    n, d = table.X.shape
    values = criteria(gmm.model_, table.X, table.weights, missing=gmm.missing)
    weighted = f", weights from {table.weight_name!r}" if table.weight_name else ""
    print(f"GMM with {gmm.n_components_} components, covariance {gmm.covariance_type!r}, "
          f"fitted to {n} rows x {d} columns{weighted}", file=out)
    print(f"best of {gmm.n_init} initialisation(s): "
          f"{'converged' if gmm.converged_ else 'NOT converged'} after {gmm.n_iter_} iterations",
          file=out)
    total_w = float(table.weights.sum()) if table.weights is not None else float(n)
    print(f"log-likelihood {values['log_likelihood']:.4f} "
          f"({values['log_likelihood'] / total_w:.6f} per row), "
          f"BIC {values['bic']:.4f}, AIC {values['aic']:.4f}, ICL {values['icl']:.4f}", file=out)
    width = max(10, *(len(s) + 2 for s in table.names))
    print("component  weight" + "".join(f"{s:>{width}}" for s in table.names), file=out)
    for k in range(gmm.n_components_):
        print(f"{k:>9d}  {gmm.weights_[k]:6.4f}"
              + "".join(f"{m:>{width}.4g}" for m in gmm.means_[k]), file=out)


def _fit_figure(gmm: Any, table: _Table) -> Any:
    from matplotlib.figure import Figure

    from .plot import plot_history, plot_responsibilities

    fig = Figure(figsize=(12, 5), layout="constrained")
    if table.X.shape[1] >= 2:
        left, right = fig.subplots(1, 2)
        missing = bool(np.isnan(table.X).any())
        # rows with missing entries are drawn where the fit expects them
        rows = gmm.impute(table.X) if missing else table.X
        plot_responsibilities(gmm, rows, ax=left, feature_names=table.names)
        left.set_title("soft memberships" + (" (PCA projection)" if table.X.shape[1] > 2
                                             else "")
                       + (", missing entries imputed" if missing else ""))
    else:
        right = fig.subplots()
    plot_history(gmm.history_, ax=right)
    right.set_title("EM history of the best initialisation")
    return fig


# -- predict ---------------------------------------------------------------------------------
def _predict(args: argparse.Namespace) -> int:
    from .gmm import GMM
    from .io import read
    from .mixture import MixtureModel

    output = None if args.output is None else _check_save(args.output)
    try:
        saved = read(args.model)
    except OSError as exc:
        raise CommandError(f"cannot read {args.model!r}: "
                           f"{'no such file' if isinstance(exc, FileNotFoundError) else exc}"
                           ) from None
    except ValueError as exc:
        raise CommandError(f"{args.model!r} is not a valid model file: {_one_line(exc)}"
                           ) from None
    obj = saved.object
    if isinstance(obj, GMM):
        if not hasattr(obj, "model_"):
            raise CommandError(f"{args.model!r} holds a GMM that was never fitted")
        model = obj.model_
    elif isinstance(obj, MixtureModel):
        model = obj
    else:
        raise CommandError(f"{args.model!r} holds a {type(obj).__name__}, not a mixture")
    known = saved.metadata.get("columns")
    default = known if isinstance(known, list) and all(isinstance(c, str) for c in known) else None
    missing = obj.missing if isinstance(obj, GMM) else "raise"
    table = _read_table(args.data, args.columns, None, args.delimiter, default_columns=default,
                        allow_missing=missing == "marginalize")
    if table.X.shape[1] != model.n_features:
        raise CommandError(f"the model expects {model.n_features} columns, the data has "
                           f"{table.X.shape[1]} ({', '.join(table.names)}); choose them with "
                           "--columns")
    try:
        post = model.posterior(table.X, missing=missing)
    except ValueError as exc:
        raise CommandError(_one_line(exc)) from None
    labels = np.argmax(post.log_resp, axis=1)
    resp = np.exp(post.log_resp)
    K = model.n_components
    header = ["label", "log_density", *[f"p_{k}" for k in range(K)]]
    lines = [",".join(header)]
    # repr: the shortest text that reads back as the same float
    lines += [",".join([str(int(c)), repr(float(ld)), *map(repr, map(float, r))])
              for c, ld, r in zip(labels, post.log_evidence, resp)]
    text = "\n".join(lines) + "\n"
    if output is None:
        sys.stdout.write(text)
        return 0
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write {str(output)!r}: {_one_line(exc)}") from None
    if not args.quiet:
        counts = np.bincount(labels, minlength=K)
        print(f"wrote {len(labels)} rows (label, log_density, p_0..p_{K - 1}) to {output}; "
              f"rows per component: {', '.join(f'{k}: {c}' for k, c in enumerate(counts))}")
    return 0


# -- select ----------------------------------------------------------------------------------
def _select(args: argparse.Namespace) -> int:
    from .selection import select_gmm

    plot_path = _check_plot(args.plot)
    save_path = _check_save(args.save)
    table = _read_table(args.data, args.columns, args.weights, args.delimiter)

    def progress(i: int, total: int, cand: Any) -> None:
        if args.quiet:
            return
        status = (f"{args.criterion.upper()} {getattr(cand, args.criterion):.4f}, "
                  f"{cand.n_iter} iterations" + ("" if cand.converged else ", NOT converged")
                  if cand.ok else f"failed: {cand.reason}")
        print(f"[{i}/{total}] {cand.name}: {status}", file=sys.stderr)

    result = select_gmm(table.X, args.k, args.covariance, sample_weight=table.weights,
                        progress=progress, tol=args.tol, reg_covar=args.reg_covar,
                        max_iter=args.max_iter, n_init=args.n_init,
                        init_params=args.init_params, random_state=args.seed)
    if all(not c.ok for c in result.candidates):
        raise CommandError(f"every candidate failed, e.g. {result.candidates[0].name}: "
                           f"{result.candidates[0].reason}")
    best = result.best(args.criterion)
    if not args.quiet:
        print(result.to_text())
        print(f"best by {args.criterion.upper()}: {best.name} "
              f"({args.criterion.upper()} {getattr(best, args.criterion):.4f})")
    if save_path is not None:
        _save_model(best.estimator, save_path,
                    {"columns": list(table.names), "weights": table.weight_name,
                     "data": os.path.basename(args.data), "criterion": args.criterion,
                     args.criterion: getattr(best, args.criterion)})
        if not args.quiet:
            print(f"best model saved to {save_path}")
    if plot_path is not None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(8, 5.5), layout="constrained")
        ax = result.plot(fig.subplots())
        ax.set_title(f"model selection on {os.path.basename(args.data)}")
        _save_figure(fig, plot_path)
        if not args.quiet:
            print(f"figure written to {plot_path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
