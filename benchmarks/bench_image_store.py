"""Speed of a lab epoch's image reading with the resized-image store, against a store of decoded images.

A lab run reads every image many times: 120 batches of 64 augmented training images an epoch, the training
set again for each clustering and the query and gallery at each evaluation. The store of a run
(``reidlab.data.ImageDataset(cache=...)``, which ``reidlab.training.Trainer`` shares between its loaders) keeps
each image as the output of the transform's leading deterministic steps, the resize, and the evaluation
reads from it too. The baseline, timed in the same run, is the previous behaviour: a store of decoded
images that every read resizes again, and an evaluation that decodes the query and gallery files each time.

One epoch's reading is timed (the train loader, one extraction of the training set, one evaluation's query
and gallery), after one warm-up epoch that fills both stores; best of ``--repeats``, the two interleaved. The
batches of the two are checked to be identical. Usage (from the repository root)::

    python benchmarks/bench_image_store.py            # the lab SynthMarket (generated when missing)
    python benchmarks/bench_image_store.py --quick    # 20 batches an epoch
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

import reidlab.data.loaders as loaders  # noqa: E402
from reidlab.data.prepare import prepare_dataset  # noqa: E402
from reidlab.training import preset  # noqa: E402

SPLIT = loaders.split_deterministic


def epoch_reading(data, cfg, *, store: dict, evaluation_store, iters: int) -> tuple[float, torch.Tensor]:
    """Seconds to read one epoch's images, and the sum of the training batches (to compare the two)."""
    height, width = cfg.height, cfg.width
    began = time.perf_counter()
    for images, *_ in loaders.build_test_loader(data.train, height=height, width=width, batch_size=128, cache=store):
        pass
    torch.manual_seed(0)
    total = torch.zeros(())
    for images, *_ in loaders.build_train_loader(data.train, None, height=height, width=width,
                                                 batch_size=cfg.batch_size, num_instances=cfg.num_instances,
                                                 iters=iters, seed=0, cache=store, erasing_p=cfg.erasing_p,
                                                 colour_jitter=cfg.colour_jitter,
                                                 background_swap=cfg.background_swap):
        total += images.double().sum()
    for part in (data.query, data.gallery):
        for images, *_ in loaders.build_test_loader(part, height=height, width=width, batch_size=128,
                                                    cache=evaluation_store):
            pass
    return time.perf_counter() - began, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 batches an epoch instead of the lab's 120")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    data = prepare_dataset("synthmarket", scale="lab")
    cfg = preset("cluster_contrast", scale="lab")
    iters = 20 if args.quick else cfg.iters
    decoded_store, resized_store = {}, {}

    def baseline() -> tuple[float, torch.Tensor]:
        loaders.split_deterministic = lambda transform: (None, transform)  # store decoded images, resize on read
        try:
            return epoch_reading(data, cfg, store=decoded_store, evaluation_store=False, iters=iters)
        finally:
            loaders.split_deterministic = SPLIT

    def stored() -> tuple[float, torch.Tensor]:
        return epoch_reading(data, cfg, store=resized_store, evaluation_store=resized_store, iters=iters)

    baseline()  # warm-up: fills both stores
    stored()
    times, sums = {"baseline": [], "stored": []}, {}
    for _ in range(args.repeats):
        for name, run in (("baseline", baseline), ("stored", stored)):
            seconds, total = run()
            times[name].append(seconds)
            if not torch.equal(sums.setdefault(name, total), total):
                raise SystemExit(f"{name}: the training batches differ between repeats")
    if not torch.equal(sums["baseline"], sums["stored"]):
        raise SystemExit("the stored images give other training batches than the baseline")
    best = {name: min(times[name]) for name in ("baseline", "stored")}
    print(f"one lab epoch's image reading ({iters} batches of {cfg.batch_size}, one extraction of {len(data.train)} "
          f"training images, one evaluation of {len(data.query)} + {len(data.gallery)}), best of {args.repeats}:")
    print(f"  decoded-image store, resized on every read, evaluation from the files: {best['baseline']:.2f} s")
    print(f"  resized-image store shared with the evaluation:                       {best['stored']:.2f} s")
    print(f"  ratio stored / baseline: {best['stored'] / best['baseline']:.2f} (identical training batches)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
