"""Pseudo-labels for up to a million images: approximate vs exact neighbour search, time and memory per stage.

For every N the pipeline of every method (docs/methods.md, sections 2-3) runs in a fresh subprocess, so that
the peak memory is that of this N alone: kNN lists (k1 = 30), the sparse k-reciprocal Jaccard distance
(k2 = 6) and DBSCAN (eps = 0.6, min_samples = 4). Per stage it prints the wall time and the process's peak
resident memory (``VmHWM`` from /proc, which counts faiss's and NumPy's native allocations, reset before
each stage; the 2048-d features, 8 GB at 1M, are part of every stage's figure), and the adjusted Rand index
(ARI) of the pseudo-labels against the generating identities (outliers count as one-image clusters). The
approximate search is ``knn_search(method="approximate")``: HNSW over the features' 128 principal
components, k1 candidates re-ranked by their exact inner product (docs/methods.md, section 2, "Neighbour
search at scale").

At every N up to ``--exact-max`` (default 100k) the exact pipeline runs too, on the same features in the
same subprocess, and the ARI between the exact and approximate pseudo-labels, the recall of the approximate
kNN lists and the speed-up of the kNN stage and of the whole pipeline are printed.

Features (``clustered_features``): identities have 5 to 40 images (uniform, mean 22.5; Market-1501 has 17
per identity, MSMT17 26), in random row order. Each identity is a centre in a 32-d latent space and is seen
by 2 to 4 cameras, each adding its own offset (the view); an image is centre + view offset + a small latent
noise, lifted into 2048-d by a fixed random orthonormal map, plus isotropic 2048-d noise, then
L2-normalised. 32 latent dimensions follow the intrinsic dimension measured on the last layers of trained
CNNs (a few tens; Ansuini et al., "Intrinsic dimension of data representations in deep neural networks",
NeurIPS 2019). Calibration: the view offset ``--noise`` (default 0.9, relative to the spread of the
centres) was set with the exact pipeline so that its ARI against the identities lies where lab-scale
pseudo-labels are (0.3-0.8): 0.64 at N = 30k. The views split identities (as cameras do in re-ID), and
other identities crowd in as N grows, so the task gets harder with N, as with real collections.

Outputs: the table on stdout, the results as JSON and the log-log plot of time against N (exact and
approximate, kNN + Jaccard + DBSCAN; the exact curve beyond its largest measured N extrapolated as N^2 from
its kNN stage plus the approximate path's Jaccard + DBSCAN, drawn dashed) under ``--out``
(default ``docs/figures``: ``bench_scale.json``, ``bench_scale.png``).

Targets (checked unless ``--quick``): 1M to pseudo-labels in <= 15 min (kNN + Jaccard + DBSCAN, feature
generation reported apart) and <= 16 GB peak; at the largest exact N, ARI(approx, exact) >= 0.95 and the two
ARIs against the identities within 0.01.

Usage (from the repository root; CPU-heavy, shares the machine through /work/bin/heavy here)::

    python benchmarks/bench_scale.py                          # N = 100k (with exact), 300k, 1M
    python benchmarks/bench_scale.py --sizes 100000 --exact-max 100000
    python benchmarks/bench_scale.py --quick                  # N = 10k and 30k with exact, targets not enforced

Exits with status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

from bench_jaccard import status_kb  # noqa: E402  (benchmarks/ is the script's own folder)

K1, K2, EPS, MIN_SAMPLES = 30, 6, 0.6, 4
DIM, LATENT_DIM = 2048, 32
IMAGES_PER_ID = (5, 40)
CAMERAS_PER_ID = (2, 4)
NOISE, IMAGE_NOISE, ISOTROPIC_NOISE = 0.9, 0.5, 0.5
TIME_TARGET_S, MEMORY_TARGET_GB, AGREEMENT_TARGET, ARI_GAP_TARGET = 15 * 60, 16.0, 0.95, 0.01
_CHUNK = 65_536  # rows generated at once (512 MB of 2048-d float32 noise)


def clustered_features(
    n: int, *, dim: int = DIM, noise: float = NOISE, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) float32 unit rows and their identities (n,) int64, generated chunk by chunk (see module doc).

    Per image of identity p seen by camera c: ``normalise(lift(a_p + noise * b_pc + 0.5 * z) + 0.5 * e)``
    with a_p, b_pc, z ~ N(0, I_128 / 128), ``lift`` a fixed random 128 -> dim orthonormal map and
    e ~ N(0, I_dim / dim). Each identity is seen by 2 to 4 of its cameras' views (b_pc), each image by one.
    """
    rng = np.random.default_rng(seed)
    sizes = rng.integers(IMAGES_PER_ID[0], IMAGES_PER_ID[1] + 1, size=n // IMAGES_PER_ID[0] + 1)
    n_ids = int(np.searchsorted(np.cumsum(sizes), n)) + 1
    identities = rng.permutation(np.repeat(np.arange(n_ids), sizes[:n_ids])[:n]).astype(np.int64)
    cameras_of_id = rng.integers(CAMERAS_PER_ID[0], CAMERAS_PER_ID[1] + 1, size=n_ids)
    views = (rng.random(n) * cameras_of_id[identities]).astype(np.int64)  # camera of each image, 0..cameras-1
    scale = np.float32(1 / np.sqrt(LATENT_DIM))
    centres = rng.standard_normal((n_ids, LATENT_DIM), dtype=np.float32) * scale
    offsets = rng.standard_normal((n_ids, CAMERAS_PER_ID[1], LATENT_DIM), dtype=np.float32) * (scale * noise)
    lift = np.linalg.qr(rng.standard_normal((dim, LATENT_DIM)))[0].T.astype(np.float32)  # orthonormal rows
    features = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        ids, cams = identities[start:start + _CHUNK], views[start:start + _CHUNK]
        latent = centres[ids] + offsets[ids, cams]
        latent += rng.standard_normal(latent.shape, dtype=np.float32) * (scale * IMAGE_NOISE)
        block = features[start:start + len(ids)]
        rng.standard_normal(out=block, dtype=np.float32)
        block *= np.float32(ISOTROPIC_NOISE / np.sqrt(dim))
        block += latent @ lift
        block /= np.linalg.norm(block, axis=1, keepdims=True)
    return features, identities


# ----------------------------------------------------------------------------- one N, in a subprocess
class _Stages:
    """Wall time and peak RSS (VmHWM, reset at the start of each stage) of named stages."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.peak_gb: dict[str, float] = {}

    def run(self, name: str, function, *args, **kwargs):
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # VmHWM := current RSS (Linux >= 4.0)
        start = time.perf_counter()
        result = function(*args, **kwargs)
        self.seconds[name] = time.perf_counter() - start
        self.peak_gb[name] = status_kb("VmHWM") * 1024 / 1e9
        return result


def _pipeline(stages: _Stages, prefix: str, features: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """kNN -> Jaccard -> DBSCAN: labels (outliers as one-image clusters) and kNN lists, each stage timed."""
    from reidlab.cluster.dbscan import dbscan_labels, outliers_as_classes
    from reidlab.cluster.jaccard import jaccard_distance
    from reidlab.cluster.neighbors import knn_search

    knn = stages.run(f"{prefix}knn", knn_search, features, K1, method=method)
    dist = stages.run(f"{prefix}jaccard", jaccard_distance, features, K1, K2, neighbours=knn, max_distance=EPS)
    labels = stages.run(f"{prefix}dbscan", dbscan_labels, dist, eps=EPS, min_samples=MIN_SAMPLES)
    return outliers_as_classes(labels), knn[1]


def _child(n: int, seed: int, with_exact: bool, noise: float) -> dict:
    """Runs in the subprocess: generate, approximate pipeline, optionally the exact one; results as a dict."""
    from sklearn.metrics import adjusted_rand_score

    stages = _Stages()
    features, identities = stages.run("generate", clustered_features, n, noise=noise, seed=seed)
    result: dict = {"n": n, "identities": int(identities.max()) + 1}
    approx, approx_knn = _pipeline(stages, "approx_", features, "approximate")
    result["approx_ari"] = adjusted_rand_score(identities, approx)
    result["approx_clusters"] = int(np.sum(np.bincount(approx) > 1))
    if with_exact:
        exact, exact_knn = _pipeline(stages, "exact_", features, "exact")
        result["exact_ari"] = adjusted_rand_score(identities, exact)
        result["agreement_ari"] = adjusted_rand_score(exact, approx)
        result["knn_recall"] = _recall(approx_knn, exact_knn)
    result["seconds"], result["peak_gb"] = stages.seconds, stages.peak_gb
    result["peak_rss_gb"] = status_kb("VmHWM") * 1024 / 1e9  # since the last reset: the largest stage's
    return result


def _recall(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean fraction of the exact kNN lists (N, k) found in the approximate ones."""
    found = sum(np.count_nonzero((a[:, :, None] == e[:, None, :]).any(axis=2))
                for a, e in zip(np.array_split(approx, 64), np.array_split(exact, 64)))
    return found / exact.size


def run_size(n: int, seed: int, with_exact: bool, noise: float) -> dict:
    """``_child`` in a fresh Python process (so that peak memory is per N)."""
    command = [sys.executable, __file__, "--child", str(n), "--seed", str(seed), "--noise", str(noise)]
    if with_exact:
        command.append("--with-exact")
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- report
def _total(result: dict, prefix: str) -> float:
    return sum(result["seconds"][f"{prefix}{stage}"] for stage in ("knn", "jaccard", "dbscan"))


def _peak(result: dict, prefix: str) -> float:
    return max(result["peak_gb"][f"{prefix}{stage}"] for stage in ("knn", "jaccard", "dbscan"))


def _print_result(r: dict) -> None:
    s, m = r["seconds"], r["peak_gb"]
    print(f"N = {r['n']:,} ({r['identities']:,} identities), features generated in {s['generate']:.0f} s, "
          f"{m['generate']:.1f} GB")
    for prefix in ("approx_", "exact_"):
        if f"{prefix}knn" not in s:
            continue
        stages = "  ".join(f"{stage} {s[prefix + stage]:7.1f} s {m[prefix + stage]:5.1f} GB"
                           for stage in ("knn", "jaccard", "dbscan"))
        print(f"  {prefix[:-1]:6}  {stages}  total {_total(r, prefix):7.1f} s  peak {_peak(r, prefix):5.1f} GB  "
              f"ARI vs identities {r[prefix + 'ari']:.4f}")
    if "exact_ari" in r:
        print(f"  ARI(approx, exact) {r['agreement_ari']:.4f}, kNN recall {r['knn_recall']:.4f}, speed-up: kNN "
              f"{s['exact_knn'] / s['approx_knn']:.1f}x, pipeline {_total(r, 'exact_') / _total(r, 'approx_'):.1f}x")


def plot(results: list[dict], path: Path) -> None:
    """Log-log time (kNN + Jaccard + DBSCAN) against N: approximate, exact measured, exact extrapolated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = np.array([r["n"] for r in results], dtype=float)
    approx = np.array([_total(r, "approx_") for r in results])
    exact_rows = [r for r in results if "exact_knn" in r["seconds"]]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.plot(sizes, approx, "o-", color="tab:blue", label="approximate (HNSW over PCA-128, re-ranked)")
    if exact_rows:
        exact_n = np.array([r["n"] for r in exact_rows], dtype=float)
        ax.plot(exact_n, [_total(r, "exact_") for r in exact_rows], "s-", color="tab:red", label="exact, measured")
        last = exact_rows[-1]
        beyond = sizes[sizes >= exact_n[-1]]
        if beyond.size > 1:
            rest = {r["n"]: _total(r, "approx_") - r["seconds"]["approx_knn"] for r in results}
            guess = [last["seconds"]["exact_knn"] * (m / exact_n[-1]) ** 2 + rest[int(m)] for m in beyond]
            ax.plot(beyond, guess, "s--", color="tab:red", mfc="none",
                    label="exact, extrapolated (kNN x N^2 + measured rest)")
    ax.axhline(TIME_TARGET_S, color="grey", lw=0.8, ls=":")
    ax.text(sizes[0], TIME_TARGET_S * 1.08, "15 min", color="grey", fontsize=8)
    ax.set(xscale="log", yscale="log", xlabel="N (2048-d features)", ylabel="seconds, kNN + Jaccard + DBSCAN",
           title="Pseudo-labels: time against N (2 CPU cores)")
    ax.grid(True, which="both", lw=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--exact-max", type=int, default=100_000, help="largest N that also runs the exact pipeline")
    parser.add_argument("--quick", action="store_true", help="N = 10k and 30k with exact, targets not enforced")
    parser.add_argument("--noise", type=float, default=NOISE, help="latent noise (calibration: see the module doc)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--append", action="store_true",
                        help="keep the other sizes of an earlier run's bench_scale.json (this run's sizes replace theirs)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "figures")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--with-exact", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(_child(args.child, args.seed, args.with_exact, args.noise)))
        return 0
    sizes = [10_000, 30_000] if args.quick else sorted(args.sizes)
    exact_max = 30_000 if args.quick else args.exact_max

    import faiss

    print(f"k1={K1} k2={K2} eps={EPS} min_samples={MIN_SAMPLES} dim={DIM} noise={args.noise} "
          f"faiss threads={faiss.omp_get_max_threads()}")
    results = []
    for n in sizes:
        results.append(run_size(n, args.seed, n <= exact_max, args.noise))
        _print_result(results[-1])
    args.out.mkdir(parents=True, exist_ok=True)
    saved = args.out / "bench_scale.json"
    if args.append and saved.exists():
        earlier = [r for r in json.loads(saved.read_text()) if r["n"] not in sizes]
        results = sorted(earlier + results, key=lambda r: r["n"])
    saved.write_text(json.dumps(results, indent=1))
    plot(results, args.out / "bench_scale.png")
    print(f"wrote {args.out / 'bench_scale.json'} and {args.out / 'bench_scale.png'}")
    if args.quick:
        return 0
    failed = False
    for r in results:
        if r["n"] >= 1_000_000:
            seconds, peak = _total(r, "approx_"), _peak(r, "approx_")
            ok = seconds <= TIME_TARGET_S and peak <= MEMORY_TARGET_GB
            print(f"N = {r['n']:,}: {seconds / 60:.1f} min <= 15 min, peak {peak:.1f} GB <= {MEMORY_TARGET_GB} GB: "
                  f"{'PASS' if ok else 'FAIL'}")
            failed |= not ok
    exact_rows = [r for r in results if "exact_ari" in r]
    if exact_rows:
        r = exact_rows[-1]
        gap = abs(r["approx_ari"] - r["exact_ari"])
        ok = r["agreement_ari"] >= AGREEMENT_TARGET and gap <= ARI_GAP_TARGET
        print(f"N = {r['n']:,}: ARI(approx, exact) {r['agreement_ari']:.4f} >= {AGREEMENT_TARGET}, ARI gap to "
              f"identities {gap:.4f} <= {ARI_GAP_TARGET}: {'PASS' if ok else 'FAIL'}")
        failed |= not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
