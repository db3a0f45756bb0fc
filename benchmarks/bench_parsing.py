"""Speed and quality of SCWM's spatial cascaded clustering (``reidlab.parsing.cascaded_parsing``).

The SCWM trainer re-parses every training feature map every epoch (SCWM section 3.1), so parsing must
cost less than the epoch's training work. Maps: LabNet feature maps (128 channels, 16 x 8 at 128 x 64)
of SynthMarket's training images, from the source-pretrained LabNet
(``reidlab.training.supervised.source_pretrained_model``), repeated up to ``--n`` maps (3,088 = the lab-scale
training set).

* Speed (default): the time of ``cascaded_parsing(maps, num_parts=4)`` with the default options
  against a baseline measured in the same run: one lab-scale epoch's training work, 30 iterations of
  LabNet forward + backward + Adam step on 64 random 128 x 64 images. PASS when parsing < 1.0 x epoch.
* Quality (``--quality``): mIoU of the parsing against SynthMarket's ground-truth part masks
  (``reidlab.parsing.parsing_iou``, parts matched to regions by the Hungarian algorithm) for the four
  variants of SCWM Table 2 and several ``eta``; the measurement behind ``reidlab.parsing.DEFAULT_ETA``.

Usage (from the repository root; set ``OMP_NUM_THREADS`` to compare machines)::

    python benchmarks/bench_parsing.py                # speed, lab scale
    python benchmarks/bench_parsing.py --quality      # mIoU table, lab scale
    python benchmarks/bench_parsing.py --scale tiny   # tiny SynthMarket (generated if missing)

Exits with status 1 when the speed target is missed.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

from reidlab.data.loaders import build_test_loader  # noqa: E402
from reidlab.lab.notebook import prepare_dataset  # noqa: E402
from reidlab.models import build_model  # noqa: E402
from reidlab.parsing import DEFAULT_ETA, cascaded_parsing, load_part_masks, parsing_iou  # noqa: E402
from reidlab.training.supervised import source_pretrained_model  # noqa: E402

NUM_PARTS = 4  # SCWM on Market-1501
HEIGHT, WIDTH = 128, 64
EPOCH_ITERS, EPOCH_BATCH = 30, 64  # a lab-scale epoch
RATIO_TARGET = 1.0


def labnet_maps(scale: str) -> tuple[torch.Tensor, list]:
    """Feature maps ``(N, 128, 16, 8)`` of SynthMarket's training images and their records."""
    dataset = prepare_dataset("synthmarket", scale=scale, progress=False)
    model = source_pretrained_model("labnet", scale=scale, progress=False).eval()  # trains if not cached
    loader = build_test_loader(dataset.train, height=HEIGHT, width=WIDTH, batch_size=128)
    with torch.no_grad():
        maps = torch.cat([model.forward_features(images) for images, *_ in loader])
    return maps, list(dataset.train)


def epoch_seconds() -> float:
    """Time of 30 LabNet forward + backward + Adam steps on 64 random 128 x 64 images (after a warm-up)."""
    torch.manual_seed(0)
    model = build_model("labnet", pretrained=False)
    prototypes = F.normalize(torch.randn(100, model.feature_dim), dim=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3.5e-4)
    images = torch.randn(EPOCH_BATCH, 3, HEIGHT, WIDTH)
    targets = torch.randint(0, 100, (EPOCH_BATCH,))

    def step() -> None:
        loss = F.cross_entropy(model(images) @ prototypes.t() / 0.05, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()
    start = time.perf_counter()
    for _ in range(EPOCH_ITERS):
        step()
    return time.perf_counter() - start


def speed(maps: torch.Tensor, n: int) -> bool:
    maps = maps.repeat(math.ceil(n / len(maps)), 1, 1, 1)[:n].contiguous()
    cascaded_parsing(maps[:64], num_parts=NUM_PARTS)  # warm-up
    start = time.perf_counter()
    cascaded_parsing(maps, num_parts=NUM_PARTS)
    parse = time.perf_counter() - start
    epoch = epoch_seconds()
    ratio = parse / epoch
    print(f"threads: {torch.get_num_threads()}")
    print(f"parsing {n} maps {tuple(maps.shape[1:])}, l = {NUM_PARTS}, eta = {DEFAULT_ETA}: {parse:.2f} s "
          f"({parse / n * 1e3:.2f} ms / map)")
    print(f"epoch ({EPOCH_ITERS} x LabNet fwd+bwd on {EPOCH_BATCH} x 3 x {HEIGHT} x {WIDTH}): {epoch:.2f} s")
    passed = ratio < RATIO_TARGET
    print(f"parsing / epoch = {ratio:.2f} (target < {RATIO_TARGET}): {'PASS' if passed else 'FAIL'}")
    return passed


def quality(maps: torch.Tensor, records: list, etas: list[float]) -> None:
    gt = load_part_masks(records)
    print(f"mIoU of {len(maps)} parsings ({NUM_PARTS} parts) against SynthMarket's masks ({tuple(gt.shape[1:])})")
    print(f"{'foreground corr.':>16} {'space corr.':>11} {'eta':>5} {'mIoU':>6}  per part (matched region)")
    for foreground_correction in (False, True):
        for eta in [math.inf, *etas]:
            labels = cascaded_parsing(maps, num_parts=NUM_PARTS, foreground_correction=foreground_correction,
                                      space_correction=math.isfinite(eta), eta=eta)
            score = parsing_iou(labels, gt, num_parts=NUM_PARTS)
            names = ("background", "head", "upper", "lower", "shoes", "acc.")
            parts = " ".join(f"{k}:{names[r]}={score.iou[k, r]:.2f}" for k, r in score.matching)
            print(f"{str(foreground_correction):>16} {str(math.isfinite(eta)):>11} {eta:>5} {score.miou:6.3f}  "
                  f"{parts}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="lab", choices=("tiny", "lab"))
    parser.add_argument("--n", type=int, default=3088, help="maps to parse in the speed test")
    parser.add_argument("--quality", action="store_true", help="print the mIoU table instead of timing")
    parser.add_argument("--etas", type=float, nargs="+", default=[2, 3, 4, 5, 6, 7, 8])
    args = parser.parse_args(argv)
    maps, records = labnet_maps(args.scale)
    if args.quality:
        quality(maps, records, args.etas)
        return 0
    return 0 if speed(maps, args.n) else 1


if __name__ == "__main__":
    sys.exit(main())
