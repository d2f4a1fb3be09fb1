"""probmix against scikit-learn's GaussianMixture: time per EM iteration, memory, accuracy.

Run from the repository root (scikit-learn needed: ``pip install ".[bench]"``)::

    python benchmarks/run.py            # the full suite, ~5 minutes on 2 cores
    python benchmarks/run.py --quick    # smaller data, fewer iterations, < 1 minute

Every comparison starts both implementations from the same parameters (``weights_init``,
``means_init``, ``precisions_init``) and runs the same number of iterations (``tol=0``), in the
same process, one after the other. What is measured:

- time per EM iteration: the median over iterations of the wall time between two consecutive
  E-steps (scikit-learn: a subclass stamps each ``_e_step`` call; probmix: ``history_.time``),
  so start-up work is excluded for both; the lowest of three such fits per library, the two
  libraries' fits interleaved;
- peak extra memory: ``tracemalloc``'s peak during a separate short fit (numpy reports its
  buffers to tracemalloc), minus what was allocated before; BLAS's internal buffers are not
  seen, for either library;
- the max relative difference of the fitted parameters: for each of weights, means and
  covariances, max |a − b| / max |b| after the last iteration;
- GFLOP/s of the nominal arithmetic of an iteration (full: 2NKd² for the whitening GEMM and
  2NKd² for the scatters; diagonal: 4NKd for the expanded quadratic form and 4NKd for the
  moments), and that as a fraction of the GEMM peak measured at the start (a large np.dot).

Timings on a shared machine are noisy: the load average is printed with the results.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import probmix
from probmix import GMM

try:
    import sklearn
    from sklearn.mixture import GaussianMixture
except ImportError:  # pragma: no cover
    sys.exit("the benchmark compares against scikit-learn: pip install '.[bench]'")

CASES = [(100_000, 2, 3), (200_000, 16, 8), (200_000, 32, 16), (1_000_000, 8, 8)]
QUICK_CASES = [(20_000, 2, 3), (40_000, 16, 8), (40_000, 32, 16), (100_000, 8, 8)]


class TimedGaussianMixture(GaussianMixture):
    """scikit-learn's GaussianMixture, stamping the start of every E-step."""

    def _e_step(self, X, xp=None):
        self.stamps_.append(time.perf_counter())
        return super()._e_step(X, xp=xp)


# -- data and starting points ---------------------------------------------------------------------
def mixture_data(n: int, d: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n rows from k well-separated Gaussians in d dimensions (random SPD covariances with
    eigenvalues in about [0.5, 2], means ~ N(0, 4² I)); returns X and the true means."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, 4.0, (k, d))
    labels = rng.integers(k, size=n)
    X = np.empty((n, d))
    for j in range(k):
        A = rng.standard_normal((d, d)) / np.sqrt(d)
        chol = np.linalg.cholesky(0.5 * np.eye(d) + A @ A.T * 0.5)
        rows = labels == j
        X[rows] = means[j] + rng.standard_normal((int(rows.sum()), d)) @ chol.T
    return X, means


def starting_point(means: np.ndarray, cov_type: str, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    k, d = means.shape
    precisions = np.array([np.eye(d)] * k) if cov_type == "full" else np.ones((k, d))
    return dict(weights_init=np.full(k, 1.0 / k),
                means_init=means + rng.normal(0.0, 0.5, means.shape),
                precisions_init=precisions)


def nominal_flops(n: int, d: int, k: int, cov_type: str) -> float:
    """The textbook count of an iteration, the same for both libraries: full, 2NKd² to whiten
    the rows and 2NKd² for the K scatters; diagonal, 4NKd for the expanded quadratic form and
    4NKd for the moments."""
    return 4.0 * n * k * d * d if cov_type == "full" else 8.0 * n * k * d


def probmix_flops(n: int, d: int, k: int, cov_type: str) -> float:
    """What probmix's kernels execute: the whitening GEMM has d + 1 columns (the offsets ride
    along), and for d >= 12 the scatters are symmetric rank-k updates (half a GEMM)."""
    if cov_type != "full":
        return 4.0 * n * k * (2 * d + 1)
    scatter = n * k * d * d if d >= 12 else 2.0 * n * k * d * d
    return 2.0 * n * k * d * (d + 1) + scatter + 2.0 * n * k * (d + 1)


# -- measurements ---------------------------------------------------------------------------------
def gemm_peak(dtype: type, size: int, repeats: int = 5) -> float:
    a = np.random.default_rng(0).standard_normal((size, size)).astype(dtype)
    np.dot(a, a)
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        np.dot(a, a)
        best = min(best, time.perf_counter() - t)
    return 2.0 * size**3 / best / 1e9


def fit_sklearn(X: np.ndarray, k: int, cov_type: str, n_iter: int, start: dict,
                repeats: int = 1):
    """Fit ``repeats`` times; the lowest median time per iteration (other processes on a
    shared machine only ever add time)."""
    best = np.inf
    for _ in range(repeats):
        gm = TimedGaussianMixture(k, covariance_type=cov_type, tol=0.0, max_iter=n_iter,
                                  init_params="random_from_data", random_state=0, **start)
        gm.stamps_ = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm.fit(X)
        best = min(best, float(np.median(np.diff(gm.stamps_))))
    return gm, best


def fit_probmix(X: np.ndarray, k: int, cov_type: str, n_iter: int, start: dict,
                repeats: int = 1):
    best = np.inf
    for _ in range(repeats):
        gmm = GMM(k, covariance_type=cov_type, tol=0.0, max_iter=n_iter, **start)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gmm.fit(X)
        best = min(best, float(np.median(np.diff(gmm.history_.time))))
    return gmm, best


def peak_memory(fit, *args) -> float:
    """Peak bytes allocated during ``fit(*args)`` beyond what existed before (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    fit(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return float(peak - base)


def max_rel_diff(ours, theirs) -> float:
    out = 0.0
    for name in ("weights_", "means_", "covariances_"):
        a = np.asarray(getattr(ours, name), dtype=np.float64)
        b = np.asarray(getattr(theirs, name), dtype=np.float64)
        out = max(out, float(np.max(np.abs(a - b)) / np.max(np.abs(b))))
    return out


# -- sections -------------------------------------------------------------------------------------
def per_iteration(cases, n_iter: int, peaks: dict, repeats: int) -> list[dict]:
    print(f"\n## Per EM iteration ({n_iter} iterations from the same start, tol=0; the lowest "
          f"of {repeats} fits' medians, the libraries' fits interleaved)")
    print("sk = scikit-learn GaussianMixture on float64 rows; pm = probmix GMM on rows of the "
          "given dtype;\nMiB = tracemalloc peak extra memory of a 2-iteration fit; rel.diff = "
          "max relative difference of the fitted parameters;\nGF/s = nominal GFLOP/s (the "
          "same count for both); %peak = pm's GFLOP/s over the GEMM peak of its dtype, "
          "nominal and as executed")
    header = (f"{'N':>9} {'d':>3} {'K':>3} {'cov':>4} {'dtype':>7} | {'sk ms':>7} {'pm ms':>7} "
              f"{'speedup':>7} | {'sk MiB':>6} {'pm MiB':>6} {'ratio':>5} | {'rel.diff':>8} | "
              f"{'sk GF/s':>7} {'pm GF/s':>7} | {'%peak':>5} {'exec':>5}")
    print(header)
    print("-" * len(header))
    rows = []
    for n, d, k in cases:
        X64, means = mixture_data(n, d, k)
        data = {np.float64: X64, np.float32: X64.astype(np.float32)}
        for cov_type in ("full", "diag"):
            start = starting_point(means, cov_type)
            # interleaved (scikit-learn, probmix float64, probmix float32, again ...), each
            # side's lowest median: a drift of the machine's speed reaches both alike
            sk_t, pm_t_of, pm_of = np.inf, {}, {}
            for _ in range(repeats):
                sk, t = fit_sklearn(X64, k, cov_type, n_iter, start)
                sk_t = min(sk_t, t)
                for dtype, X in data.items():
                    pm_of[dtype], t = fit_probmix(X, k, cov_type, n_iter, start)
                    pm_t_of[dtype] = min(pm_t_of.get(dtype, np.inf), t)
            sk_mem = peak_memory(fit_sklearn, X64, k, cov_type, 2, start)
            for dtype, X in data.items():
                pm, pm_t = pm_of[dtype], pm_t_of[dtype]
                pm_mem = peak_memory(fit_probmix, X, k, cov_type, 2, start)
                flops = nominal_flops(n, d, k, cov_type)
                peak = peaks[np.dtype(dtype).name]
                row = dict(n=n, d=d, k=k, cov=cov_type, dtype=np.dtype(dtype).name,
                           sk_t=sk_t, pm_t=pm_t, sk_mem=sk_mem, pm_mem=pm_mem,
                           rel=max_rel_diff(pm, sk), sk_gf=flops / sk_t / 1e9,
                           pm_gf=flops / pm_t / 1e9)
                row["pm_frac"] = row["pm_gf"] / peak
                row["pm_exec"] = probmix_flops(n, d, k, cov_type) / pm_t / 1e9 / peak
                rows.append(row)
                print(f"{n:>9} {d:>3} {k:>3} {cov_type:>4} {row['dtype']:>7} | "
                      f"{sk_t * 1e3:7.1f} {pm_t * 1e3:7.1f} {sk_t / pm_t:6.1f}x | "
                      f"{sk_mem / 2**20:6.1f} {pm_mem / 2**20:6.1f} {pm_mem / sk_mem:5.2f} | "
                      f"{row['rel']:8.1e} | {row['sk_gf']:7.1f} {row['pm_gf']:7.1f} | "
                      f"{100 * row['pm_frac']:4.0f}% {100 * row['pm_exec']:4.0f}%", flush=True)
            del sk
    return rows


def whole_fit(cases, seeds) -> list[dict]:
    print(f"\n## Whole fit: each library's k-means++ start, n_init=1, default tol=1e-3 and "
          f"max_iter=100, float64;\ntotals over random_state in {list(seeds)} (iterations "
          "differ: each library draws its own seeds)")
    header = (f"{'N':>9} {'d':>3} {'K':>3} {'cov':>4} | {'sk s':>7} {'iters':>5} | "
              f"{'pm s':>7} {'iters':>5} | {'speedup':>7} | {'sk loglik':>10} {'pm loglik':>10}")
    print(header)
    print("-" * len(header))
    rows = []
    for n, d, k in cases:
        X, _ = mixture_data(n, d, k)
        for cov_type in ("full", "diag"):
            sk_t = pm_t = 0.0
            sk_it = pm_it = 0
            sk_ll, pm_ll = [], []
            for seed in seeds:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t = time.perf_counter()
                    sk = GaussianMixture(k, covariance_type=cov_type, init_params="k-means++",
                                         random_state=seed).fit(X)
                    sk_t += time.perf_counter() - t
                    t = time.perf_counter()
                    pm = GMM(k, covariance_type=cov_type, init_params="kmeans++",
                             random_state=seed).fit(X)
                    pm_t += time.perf_counter() - t
                sk_it += sk.n_iter_
                pm_it += pm.n_iter_
                sk_ll.append(sk.score(X))
                pm_ll.append(pm.score(X))
            rows.append(dict(n=n, d=d, k=k, cov=cov_type, sk_t=sk_t, pm_t=pm_t))
            print(f"{n:>9} {d:>3} {k:>3} {cov_type:>4} | {sk_t:7.2f} {sk_it:>5} | "
                  f"{pm_t:7.2f} {pm_it:>5} | {sk_t / pm_t:6.1f}x | "
                  f"{np.mean(sk_ll):10.4f} {np.mean(pm_ll):10.4f}", flush=True)
    return rows


def using_the_fit(n: int, d: int, k: int) -> None:
    print(f"\n## Using a fitted model (N={n}, d={d}, K={k}, full, float64): seconds per call")
    X, means = mixture_data(n, d, k)
    start = starting_point(means, "full")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk, _ = fit_sklearn(X, k, "full", 3, start)
        pm, _ = fit_probmix(X, k, "full", 3, start)
    print(f"{'method':>14} | {'sk s':>7} {'pm s':>7} {'speedup':>7}")
    for name in ("predict", "predict_proba", "score_samples", "sample"):
        arg = (n,) if name == "sample" else (X,)
        times = []
        for est in (sk, pm):
            best = np.inf
            for _ in range(3):
                t = time.perf_counter()
                getattr(est, name)(*arg)
                best = min(best, time.perf_counter() - t)
            times.append(best)
        print(f"{name:>14} | {times[0]:7.3f} {times[1]:7.3f} {times[0] / times[1]:6.1f}x")


def scaling(ns, ks, ds, n_iter: int, n_mid: int) -> None:
    print(f"\n## Scaling (full covariance, float64, {n_iter} iterations): ms per iteration")
    print(f"{'N':>9} {'d':>3} {'K':>3} | {'sk ms':>8} {'pm ms':>8} {'speedup':>7} | "
          f"{'pm ns/row':>9} {'pm %peak':>8}")
    peak = gemm_peak(np.float64, 2048, 3)

    def one(n: int, d: int, k: int) -> None:
        X, means = mixture_data(n, d, k)
        start = starting_point(means, "full")
        _, sk_t = fit_sklearn(X, k, "full", n_iter, start)
        _, pm_t = fit_probmix(X, k, "full", n_iter, start)
        frac = nominal_flops(n, d, k, "full") / pm_t / 1e9 / peak
        print(f"{n:>9} {d:>3} {k:>3} | {sk_t * 1e3:8.1f} {pm_t * 1e3:8.1f} "
              f"{sk_t / pm_t:6.1f}x | {pm_t / n * 1e9:9.1f} {100 * frac:7.0f}%", flush=True)

    print("-- in N (d=8, K=8)")
    for n in ns:
        one(n, 8, 8)
    print(f"-- in K (N={n_mid}, d=16)")
    for k in ks:
        one(n_mid, 16, k)
    print(f"-- in d (N={n_mid}, K=8)")
    for d in ds:
        one(n_mid, d, 8)


def targets(rows: list[dict], fits: list[dict]) -> None:
    """The issue's targets, each marked as met or not, with the value measured."""
    print("\n## Targets")

    def line(ok: bool, text: str) -> None:
        print(f"[{'met ' if ok else 'MISS'}] {text}")

    for r in rows:
        case = f"({r['n']}, {r['d']}, {r['k']}) {r['cov']}"
        if r["dtype"] == "float64":
            line(r["sk_t"] / r["pm_t"] >= 5, f"{case} float64: {r['sk_t'] / r['pm_t']:.1f}x "
                 "faster per iteration (>= 5x)")
            line(r["rel"] <= 1e-10, f"{case} float64: parameters equal to {r['rel']:.1e} "
                 "(<= 1e-10)")
            line(r["pm_mem"] <= 0.3 * r["sk_mem"], f"{case} float64: "
                 f"{r['pm_mem'] / r['sk_mem']:.2f} of scikit-learn's peak memory (<= 0.3)")
    large = sorted({(r["n"], r["d"], r["k"]) for r in rows},
                   key=lambda c: c[0] * c[1] * c[2])[-2:]
    for r in rows:
        if r["cov"] == "full" and r["dtype"] == "float32" and (r["n"], r["d"], r["k"]) in large:
            line(r["sk_t"] / r["pm_t"] >= 10, f"({r['n']}, {r['d']}, {r['k']}) full float32: "
                 f"{r['sk_t'] / r['pm_t']:.1f}x faster than scikit-learn float64 (>= 10x)")
    for r in rows:
        if (r["d"], r["k"], r["cov"], r["dtype"]) == (32, 16, "full", "float64"):
            line(r["pm_frac"] >= 0.5, f"({r['n']}, 32, 16) full float64: "
                 f"{100 * r['pm_frac']:.0f}% of the GEMM peak in nominal flops, "
                 f"{100 * r['pm_exec']:.0f}% in executed flops (>= 50%)")
    for f in fits:
        line(f["pm_t"] < f["sk_t"], f"({f['n']}, {f['d']}, {f['k']}) {f['cov']}: whole fit "
             f"{f['sk_t'] / f['pm_t']:.1f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, < 1 minute")
    parser.add_argument("--only", choices=["iterations", "fit", "use", "scaling"],
                        help="run one section only")
    parser.add_argument("--iterations", type=int, help="EM iterations per timing")
    args = parser.parse_args()
    quick = args.quick
    sections = {args.only} if args.only else {"iterations", "fit", "use", "scaling"}
    started = time.perf_counter()
    try:
        from threadpoolctl import threadpool_info
        blas = ", ".join(f"{i['internal_api']} {i['version']} ({i['num_threads']} threads)"
                         for i in threadpool_info() if i["user_api"] == "blas")
    except ImportError:
        blas = "unknown"
    print(f"# probmix {probmix.__version__} vs scikit-learn {sklearn.__version__} "
          f"(numpy {np.__version__}, {blas})")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average at start {os.getloadavg()[0]:.2f}" + (" [quick mode]" if quick else ""))
    size = 1024 if quick else 4096
    peaks = {"float64": gemm_peak(np.float64, size), "float32": gemm_peak(np.float32, size)}
    print(f"# GEMM peak (np.dot {size}x{size}, best of 5): float64 {peaks['float64']:.1f} "
          f"GFLOP/s, float32 {peaks['float32']:.1f} GFLOP/s")

    cases = QUICK_CASES if quick else CASES
    rows: list[dict] = []
    fits: list[dict] = []
    if "iterations" in sections:
        rows = per_iteration(cases, args.iterations or (4 if quick else 10), peaks,
                             repeats=1 if quick else 3)
    if "fit" in sections:
        fits = whole_fit(cases, range(1) if quick else range(3))
    if "use" in sections:
        using_the_fit(*cases[2])
    if "scaling" in sections:
        if quick:
            scaling([10_000, 30_000, 100_000], [4, 16], [4, 32], 3, 30_000)
        else:
            scaling([10_000, 30_000, 100_000, 300_000, 1_000_000], [2, 4, 8, 16, 32],
                    [2, 4, 8, 16, 32, 64], 5, 300_000)
    targets(rows, fits)
    print(f"\n# done in {time.perf_counter() - started:.0f} s; load average now "
          f"{os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
