"""EM on data larger than a chunk: in memory vs a memmap read chunk by chunk vs Dask workers.

Writes a synthetic, well-separated float32 Gaussian mixture (default 10 million rows x 16
columns, 8 components) to a .npy file in a temporary directory, then fits the same
full-covariance mixture from the same start, for the same number of iterations, three ways,
each in a fresh process:

- ``in-memory``: the file loaded whole (``np.load``), the ordinary fit;
- ``memmap``: ``np.load(..., mmap_mode="r")``: the pass reads and validates slice by slice;
- ``dask``: a ``LocalCluster`` of 2 single-threaded worker processes; the dask array's blocks
  are read from the file by the workers on every pass (nothing is persisted), and only
  statistics travel back;
- ``dask-malloc``: the same, with the workers' glibc allocator left to reuse large buffers
  (Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` in its workers, which also pins
  glibc's mmap threshold at 128 KiB: every large temporary of a chunk is then a fresh mmap,
  zero-filled page by page; ``WORKER_MALLOC`` below undoes that).

For each: the median time per EM iteration, the peak of memory allocated during the run
(tracemalloc: numpy reports its buffers to it; for Dask the largest worker's peak and the
client's), the peak resident set size of the process (ru_maxrss; pages of a memmap count
there while mapped), and the largest relative difference of the fitted parameters from the
in-memory fit. Run: ``python benchmarks/out_of_core.py [--rows N] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings

import numpy as np

D, K = 16, 8
BLOCK = 1_000_000  # rows per block of the file and of the dask array (fewer for small data)


def write_data(path: str, n: int, seed: int = 0) -> np.ndarray:
    """Rows of a K-component mixture, written block by block (never held whole)."""
    rng = np.random.default_rng(seed)
    means = rng.uniform(-10, 10, (K, D))
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, D))
    for lo in range(0, n, BLOCK):
        m = min(BLOCK, n - lo)
        labels = rng.integers(0, K, m)
        out[lo:lo + m] = means[labels] + rng.standard_normal((m, D), dtype=np.float32)
    out.flush()
    return means


def start_model(means: np.ndarray):
    from probmix import MixtureModel
    from probmix.distributions import Gaussian

    rng = np.random.default_rng(1)
    return MixtureModel(weights=np.full(K, 1.0 / K), components=[
        Gaussian(mean=m + rng.normal(0, 0.5, D), covariance=np.eye(D)) for m in means])


def _load_block(path: str, lo: int, hi: int) -> np.ndarray:
    return np.array(np.load(path, mmap_mode="r")[lo:hi])


def dask_array(path: str, n: int):
    import dask
    import dask.array as da

    block = min(BLOCK, -(-n // 8))  # at least 8 blocks: work for both workers
    blocks = [da.from_delayed(dask.delayed(_load_block)(path, lo, min(lo + block, n)),
                              shape=(min(block, n - lo), D), dtype=np.float32)
              for lo in range(0, n, block)]
    return da.concatenate(blocks)


# environment of Dask worker processes for numpy-heavy tasks: large buffers are reused from the
# heap (up to 32 MiB) and the heap is trimmed only above 256 MiB of free memory at its top
WORKER_MALLOC = {"MALLOC_TRIM_THRESHOLD_": str(2**28), "MALLOC_MMAP_THRESHOLD_": str(2**25)}


def run_mode(mode: str, path: str, means_path: str, n_iter: int) -> dict:
    """One mode, in this (fresh) process."""
    from probmix import EMAlgorithm

    init = start_model(np.load(means_path))
    algorithm = EMAlgorithm(tol=0.0, max_iter=n_iter)
    client = cluster = None
    if mode.startswith("dask"):
        import dask
        from dask.distributed import Client, LocalCluster

        if mode == "dask-malloc":
            dask.config.set({f"distributed.nanny.pre-spawn-environ.{k}": v
                             for k, v in WORKER_MALLOC.items()})
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None)
        client = Client(cluster)
        client.run(tracemalloc.start)
    tracemalloc.start()
    t0 = time.perf_counter()
    if mode == "in-memory":
        X = np.load(path)
    elif mode == "memmap":
        X = np.load(path, mmap_mode="r")
    else:
        X = dask_array(path, np.load(path, mmap_mode="r").shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached by design
        result = algorithm.fit(X, init)
    total = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    worker_peak = 0
    if client is not None:
        worker_peak = max(p[1] for p in client.run(tracemalloc.get_traced_memory).values())
        client.close()
        cluster.close()
    model = result.model
    return {
        "mode": mode,
        "per_iteration": float(np.median(np.diff(result.history.time))),
        "total": total,
        "peak_alloc": peak,
        "worker_peak_alloc": worker_peak,
        "max_rss": _peak_rss(),
        "weights": model.weights.tolist(),
        "means": [c.mean.tolist() for c in model.components],
        "covariances": [c.covariance.covariance.tolist() for c in model.components],
    }


def _peak_rss() -> int:
    """The process's peak resident set size (VmHWM: unlike ru_maxrss, not inherited from
    the parent across exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def rel_diff(a: dict, b: dict) -> float:
    return max(float(np.max(np.abs(np.asarray(a[k]) - np.asarray(b[k])))
                     / np.max(np.abs(np.asarray(b[k]))))
               for k in ("weights", "means", "covariances"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="1 million rows")
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:  # a child process
        print(json.dumps(run_mode(args.mode, args.path, args.path + ".means.npy",
                                  args.iterations)))
        return
    n = 1_000_000 if args.quick else args.rows
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "X.npy")
        t0 = time.perf_counter()
        np.save(path + ".means.npy", write_data(path, n))
        data_bytes = n * D * 4
        print(f"data: {n:,} rows x {D} float32 = {data_bytes / 2**20:,.0f} MiB, K={K} full "
              f"covariance, {args.iterations} EM iterations (written in "
              f"{time.perf_counter() - t0:.1f} s); load average {os.getloadavg()[0]:.2f}")
        rows = []
        for mode in ("in-memory", "memmap", "dask", "dask-malloc"):
            out = subprocess.run([sys.executable, __file__, "--mode", mode, "--path", path,
                                  "--iterations", str(args.iterations)],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    ref = rows[0]
    print(f"{'mode':>11} | {'s/iter':>7} {'ratio':>6} | {'peak alloc MiB':>14} {'ratio':>6} | "
          f"{'worker peak MiB':>15} | {'max RSS MiB':>11} | {'rel.diff':>8}")
    for r in rows:
        print(f"{r['mode']:>11} | {r['per_iteration']:7.2f} "
              f"{r['per_iteration'] / ref['per_iteration']:5.2f}x | "
              f"{r['peak_alloc'] / 2**20:14.1f} {r['peak_alloc'] / ref['peak_alloc']:5.3f}x | "
              f"{r['worker_peak_alloc'] / 2**20:15.1f} | {r['max_rss'] / 2**20:11.0f} | "
              f"{rel_diff(r, ref):8.1e}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
