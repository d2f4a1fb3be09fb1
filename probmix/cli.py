"""The ``probmix`` command line (also ``python -m probmix``).

Subcommands register themselves in :func:`build_parser`; each has a handler taking the parsed
arguments and returning an exit code. Only ``demo`` exists so far; ``fit``, ``predict`` and
``select`` are meant to follow the same pattern.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
