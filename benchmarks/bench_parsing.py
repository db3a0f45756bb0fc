"""Speed and quality of SCWM's spatial cascaded clustering (``reidlab.parsing.cascaded_parsing``).

The SCWM trainer re-parses every training feature map every epoch (SCWM section 3.1), so parsing must
cost less than the epoch's training work. Maps: LabNet feature maps (128 channels; 8 x 4 for the lab's 64 x 32
inputs, 16 x 8 for tiny scale's 128 x 64) of SynthMarket's training images, from the source-pretrained LabNet
(``reidlab.training.supervised.source_pretrained_model``), repeated up to ``--n`` maps (3,088 = the lab-scale
training set).

* Speed (default): the time of ``cascaded_parsing(maps, num_parts=4)`` with the default options
  against a baseline measured in the same run: one lab-scale epoch's training work, 30 iterations of
  LabNet forward + backward + Adam step on 64 random images of the scale's size. PASS when parsing < 1.0 x epoch.
* Quality (``--quality``): mIoU of the parsing against SynthMarket's ground-truth part masks
  (``reidlab.parsing.parsing_iou``, parts matched to regions by the Hungarian algorithm) for the four
  variants of SCWM Table 2 and several ``eta``: the measurement behind ``reidlab.parsing.DEFAULT_ETA`` (6 cells,
  on 16 x 8 maps, when the lab ran at 128 x 64) and the lab preset's eta on its 8 x 4 maps.

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
from reidlab.data import prepare_dataset  # noqa: E402
from reidlab.models import build_model  # noqa: E402
from reidlab.parsing import DEFAULT_ETA, cascaded_parsing, load_part_masks, parsing_iou  # noqa: E402
from reidlab.training.supervised import source_pretrained_model, supervised_config  # noqa: E402

NUM_PARTS = 4  # SCWM on Market-1501
EPOCH_ITERS, EPOCH_BATCH = 30, 64  # a lab-scale epoch
RATIO_TARGET = 1.0


def labnet_maps(scale: str) -> tuple[torch.Tensor, list]:
    """Feature maps ``(N, 128, h, w)`` of SynthMarket's training images at the scale's input size (8 x 4 maps
    of 64 x 32 inputs at lab scale, 16 x 8 of 128 x 64 at tiny scale) and their records."""
    dataset = prepare_dataset("synthmarket", scale=scale, progress=False)
    model = source_pretrained_model("labnet", scale=scale, progress=False).eval()  # trains if not cached
    size = supervised_config(scale)
    loader = build_test_loader(dataset.train, height=size.height, width=size.width, batch_size=128)
    with torch.no_grad():
        maps = torch.cat([model.forward_features(images) for images, *_ in loader])
    return maps, list(dataset.train)


def epoch_seconds(height: int, width: int) -> float:
    """Time of 30 LabNet forward + backward + Adam steps on 64 random ``height x width`` images (after a warm-up)."""
    torch.manual_seed(0)
    model = build_model("labnet", pretrained=False)
    prototypes = F.normalize(torch.randn(100, model.feature_dim), dim=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3.5e-4)
    images = torch.randn(EPOCH_BATCH, 3, height, width)
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


def speed(maps: torch.Tensor, n: int, scale: str) -> bool:
    maps = maps.repeat(math.ceil(n / len(maps)), 1, 1, 1)[:n].contiguous()
    cascaded_parsing(maps[:64], num_parts=NUM_PARTS)  # warm-up
    start = time.perf_counter()
    cascaded_parsing(maps, num_parts=NUM_PARTS)
    parse = time.perf_counter() - start
    size = supervised_config(scale)
    epoch = epoch_seconds(size.height, size.width)
    ratio = parse / epoch
    print(f"threads: {torch.get_num_threads()}")
    print(f"parsing {n} maps {tuple(maps.shape[1:])}, l = {NUM_PARTS}, eta = {DEFAULT_ETA}: {parse:.2f} s "
          f"({parse / n * 1e3:.2f} ms / map)")
    print(f"epoch ({EPOCH_ITERS} x LabNet fwd+bwd on {EPOCH_BATCH} x 3 x {size.height} x {size.width}): {epoch:.2f} s")
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
    parser.add_argument("--etas", type=float, nargs="+", default=[1, 2, 3, 4, 5, 6, 7, 8])
    args = parser.parse_args(argv)
    maps, records = labnet_maps(args.scale)
    if args.quality:
        quality(maps, records, args.etas)
        return 0
    return 0 if speed(maps, args.n, args.scale) else 1


if __name__ == "__main__":
    sys.exit(main())
