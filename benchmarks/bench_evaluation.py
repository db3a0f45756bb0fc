"""Speed of ``evaluate_rank`` relative to ``np.argsort`` on a Market-1501-sized distance matrix.

A full sort of every gallery row is what a straightforward evaluation costs; torchreid's Cython
evaluator takes about 2.3x that. The target is at most 2.5x, measured in the same run (best of
``--repeats``, interleaved so both see the same machine load). A naive per-query evaluation (stable
argsort per row, as in ``tests/test_evaluation.py``) is timed once as well and its results compared.

Usage (from the repository root)::

    python benchmarks/bench_evaluation.py            # 3,368 x 15,913 (Market-1501 test split)
    python benchmarks/bench_evaluation.py --quick    # 400 x 2,000

Exits with status 1 when the ratio exceeds ``--limit``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

from reidlab.evaluation import evaluate_rank  # noqa: E402


def market_like_case(
    num_query: int, num_gallery: int, num_ids: int, images_per_id: int, num_cams: int, seed: int
) -> tuple[np.ndarray, ...]:
    """Random float32 distances with Market-1501-like labels.

    Every query id has ``images_per_id`` gallery images; the rest of the gallery are distractors
    (pid 0). Cameras are drawn uniformly from ``num_cams``.

    Returns:
        ``(distmat (Q, G), q_pids (Q,), g_pids (G,), q_camids (Q,), g_camids (G,))``.
    """
    rng = np.random.default_rng(seed)
    ids = np.arange(1, num_ids + 1)
    q_pids = np.concatenate([ids, rng.choice(ids, num_query - num_ids)])  # every id queried
    g_pids = np.zeros(num_gallery, dtype=np.int64)
    g_pids[: num_ids * images_per_id] = np.repeat(ids, images_per_id)
    rng.shuffle(g_pids)
    q_camids = rng.integers(1, num_cams + 1, num_query)
    g_camids = rng.integers(1, num_cams + 1, num_gallery)
    distmat = rng.random((num_query, num_gallery), dtype=np.float32)
    return distmat, q_pids, g_pids, q_camids, g_camids


def naive_evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """Per-query reference: stable argsort of the row, drop junk, CMC and AP from the hit vector."""
    cmcs, aps = [], []
    for q in range(distmat.shape[0]):
        order = np.argsort(distmat[q], kind="stable")
        junk = (g_pids[order] == q_pids[q]) & (g_camids[order] == q_camids[q])
        hits = g_pids[order][~junk] == q_pids[q]
        if not hits.any():
            continue
        cumulative = np.cumsum(hits)
        cmcs.append(np.minimum(cumulative[:max_rank], 1))
        aps.append(np.mean(cumulative[hits] / (np.flatnonzero(hits) + 1)))
    return np.mean(cmcs, axis=0, dtype=np.float32), float(np.mean(aps))


def best_times(functions: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time of each function over ``repeats`` interleaved rounds."""
    best = {name: float("inf") for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="400 x 2,000 instead of 3,368 x 15,913")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the best time is kept")
    parser.add_argument("--limit", type=float, default=2.5, help="allowed evaluate_rank / argsort")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive per-query timing")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if args.quick:
        sizes = dict(num_query=400, num_gallery=2000, num_ids=100, images_per_id=14)
    else:  # Market-1501 test split: 750 query ids, 3,368 queries, 15,913 gallery images
        sizes = dict(num_query=3368, num_gallery=15913, num_ids=750, images_per_id=14)
    case = market_like_case(**sizes, num_cams=6, seed=args.seed)
    distmat = case[0]
    print(
        f"distmat {distmat.shape[0]} x {distmat.shape[1]} {distmat.dtype}, {sizes['num_ids']} ids x "
        f"{sizes['images_per_id']} gallery images + {np.sum(case[2] == 0)} distractors, 6 cameras"
    )

    times = best_times(
        {
            "np.argsort(axis=1)": lambda: np.argsort(distmat, axis=1),
            "evaluate_rank": lambda: evaluate_rank(*case),
        },
        args.repeats,
    )
    for name, seconds in times.items():
        print(f"{name:<22s} {seconds:8.3f} s  (best of {args.repeats})")
    ratio = times["evaluate_rank"] / times["np.argsort(axis=1)"]
    passed = ratio <= args.limit
    print(f"{'ratio':<22s} {ratio:8.2f}    (limit {args.limit}) {'PASS' if passed else 'FAIL'}")

    if not args.no_naive:
        start = time.perf_counter()
        naive_cmc, naive_map = naive_evaluate_rank(*case)
        naive_seconds = time.perf_counter() - start
        cmc, mean_ap = evaluate_rank(*case)
        agree = np.allclose(cmc, naive_cmc, atol=1e-6) and abs(mean_ap - naive_map) < 1e-6
        print(
            f"{'naive per-query':<22s} {naive_seconds:8.3f} s  (1 run; "
            f"{naive_seconds / times['evaluate_rank']:.1f}x slower; results agree: {agree})"
        )
        passed = passed and agree
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
