"""Speed and memory of ``jaccard_distance`` relative to the exact kNN search it starts from.

Features: N L2-normalised 2048-d rows around N/17 random unit centres (17 images per identity, as in
Market-1501's 12,936 / 751) plus Gaussian noise giving a same-identity cosine of about 0.75.
k1 = 30, k2 = 6 (docs/methods.md, section 2). For every size, in the same run and interleaved so that both see the
same machine load (best of ``--repeats``):

* kNN: the exact search alone, ``faiss.IndexFlatIP`` with k = k1 (what any implementation must do);
* total: ``jaccard_distance(features)``, which runs its own kNN search.

``rest`` = total - kNN is the cost on top of the search; with other jobs on the machine the two best
times can come from different load levels, so it is only indicative (it can even be negative).

Targets: total / kNN <= 1.5 at each size, and the peak extra memory of one ``jaccard_distance`` call
(peak RSS minus the RSS after the features exist, measured in a fresh subprocess) < 1.5 GB.
For comparison, the authors' dense CPU code takes 12.4 s at N = 12,936 and 68 s with 8.4 GB extra at
N = 32,621, where the kNN search alone takes 3.0 s and 19.6 s on the same 2-core machine.

Usage (from the repository root)::

    python benchmarks/bench_jaccard.py                 # N = 12,936 and 32,621 (Market-1501, MSMT17)
    python benchmarks/bench_jaccard.py --sizes 12936   # one size
    python benchmarks/bench_jaccard.py --quick         # N = 2,000 and 5,000, targets not enforced

Exits with status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

from reidlab.cluster.jaccard import jaccard_distance  # noqa: E402

K1, K2 = 30, 6
IMAGES_PER_ID = 17
RATIO_TARGET = 1.5
MEMORY_TARGET_GB = 1.5


def identity_features(n: int, dim: int = 2048, seed: int = 0) -> np.ndarray:
    """(n, dim) float32 unit rows: n / 17 random unit centres plus noise, same-centre cosine ~0.75."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // IMAGES_PER_ID), dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    # Noise of squared norm 1/3: cos(a, b) = 1 / (1 + 1/3) = 0.75 for two rows of the same centre.
    features = rng.standard_normal((n, dim), dtype=np.float32)
    features *= np.float32(np.sqrt(1 / 3 / dim))
    features += centres[rng.integers(0, len(centres), n)]
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    return features


def knn_only(features: np.ndarray) -> float:
    """Seconds for the exact flat inner-product search with k = k1."""
    start = time.perf_counter()
    index = faiss.IndexFlatIP(features.shape[1])
    index.add(features)
    index.search(features, K1)
    return time.perf_counter() - start


def jaccard_total(features: np.ndarray) -> tuple[float, int]:
    """Seconds for ``jaccard_distance`` and the number of stored entries of its result."""
    start = time.perf_counter()
    dist = jaccard_distance(features, K1, K2)
    return time.perf_counter() - start, dist.nnz


def status_kb(field: str) -> int:
    """A ``/proc/self/status`` field in kB (``VmRSS``, ``VmHWM``: the peak RSS since the last reset)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status (the memory measurement needs Linux)")


def peak_extra_memory(n: int, dim: int, seed: int) -> float:
    """Peak RSS increase (bytes) of one ``jaccard_distance`` call, measured in a fresh subprocess."""
    result = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(n), "--dim", str(dim), "--seed", str(seed)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])["extra_bytes"]


def _memory_child(n: int, dim: int, seed: int) -> None:
    """Runs in the subprocess: features, reset the peak-RSS mark, one call, print the increase."""
    features = identity_features(n, dim, seed)
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # resets VmHWM (peak RSS) to the current RSS (Linux >= 4.0)
    baseline = status_kb("VmRSS")
    jaccard_distance(features, K1, K2)
    print(json.dumps({"extra_bytes": (status_kb("VmHWM") - baseline) * 1024}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[12_936, 32_621], help="numbers of features N")
    parser.add_argument("--quick", action="store_true", help="N = 2,000 and 5,000, one repeat, targets not enforced")
    parser.add_argument("--repeats", type=int, default=3, help="timings per size (best is kept)")
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child is not None:
        _memory_child(args.memory_child, args.dim, args.seed)
        return 0
    sizes, repeats = ([2_000, 5_000], 1) if args.quick else (args.sizes, args.repeats)

    print(f"k1={K1} k2={K2} dim={args.dim} faiss threads={faiss.omp_get_max_threads()} repeats={repeats}")
    print(f"{'N':>7} {'kNN s':>8} {'total s':>8} {'rest s':>7} {'ratio':>6} {'extra GB':>9} {'nnz/row':>8}")
    failed = False
    for n in sizes:
        features = identity_features(n, args.dim, args.seed)
        knn_times, total_times = [], []
        for _ in range(repeats):
            knn_times.append(knn_only(features))
            seconds, nnz = jaccard_total(features)
            total_times.append(seconds)
        del features
        extra_gb = peak_extra_memory(n, args.dim, args.seed) / 1e9
        knn, total = min(knn_times), min(total_times)
        ratio = total / knn
        print(f"{n:>7} {knn:>8.2f} {total:>8.2f} {total - knn:>7.2f} {ratio:>6.2f} {extra_gb:>9.3f} {nnz / n:>8.0f}")
        if args.quick:
            continue
        ratio_ok, memory_ok = ratio <= RATIO_TARGET, extra_gb < MEMORY_TARGET_GB
        print(f"        total/kNN {ratio:.2f} <= {RATIO_TARGET}: {'PASS' if ratio_ok else 'FAIL'};"
              f" peak extra memory {extra_gb:.3f} GB < {MEMORY_TARGET_GB} GB: {'PASS' if memory_ok else 'FAIL'}")
        failed |= not (ratio_ok and memory_ok)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
