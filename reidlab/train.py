"""Train one method from the command line, in one process or on several GPUs with ``torchrun``.

One GPU (or the CPU)::

    python -m reidlab.train --method cluster_contrast --scale full --dataset market1501 \\
        --data-root /data/Market-1501-v15.09.15 --run-dir runs/cc-market

Four GPUs of one machine, one process each (DistributedDataParallel, :mod:`reidlab.distributed`)::

    torchrun --nproc_per_node 4 -m reidlab.train --method cluster_contrast --scale full \\
        --dataset market1501 --data-root /data/Market-1501-v15.09.15 --run-dir runs/cc-market

Both run the same :class:`reidlab.engine.Trainer` with the same global batch (the paper's) and learning
rate; with ``torchrun`` every process trains on ``batch_size / nproc`` images per step. ``--set key=value``
overrides any :class:`reidlab.engine.TrainConfig` field (``--set epochs=60 --set eps=0.55``);
``--resume`` continues from ``<run-dir>/checkpoint.pt``. Rank 0 writes ``checkpoint.pt`` and
``history.json`` every epoch and prints the last epoch's record as JSON at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from reidlab.distributed import World, barrier, cleanup_distributed, init_distributed
from reidlab.engine import METHODS, TrainConfig, Trainer, build_start_model, make_trainer, preset
from reidlab.notebook import SCALES, prepare_dataset
from reidlab.utils import seed_everything

logger = logging.getLogger(__name__)

__all__ = ["build_parser", "main", "parse_overrides", "run"]


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["epochs=60", "eps=0.55"]`` -> ``{"epochs": 60, "eps": 0.55}``, typed like the TrainConfig fields.

    Booleans accept ``true/false/1/0/yes/no``; tuple and list fields take JSON (``losses=["a","b"]``) or
    comma-separated values.

    Raises:
        ValueError: a pair without ``=``, an unknown field, or a value of the wrong type.
    """
    defaults = TrainConfig()
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise ValueError(f"--set takes key=value, got {pair!r}")
        if key not in fields:
            raise ValueError(f"unknown TrainConfig field {key!r}; valid fields: {', '.join(sorted(fields))}")
        current = getattr(defaults, key)
        try:
            if isinstance(current, bool):
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError("expected true or false")
                value: Any = text.lower() in ("true", "1", "yes")
            elif isinstance(current, (tuple, list)):
                items = json.loads(text) if text.startswith("[") else [t for t in text.split(",") if t]
                value = type(current)(items)
            elif current is None:
                value = json.loads(text)
            else:
                value = type(current)(text)
        except ValueError as error:
            raise ValueError(f"--set {key}={text}: {type(current).__name__} expected ({error})") from error
        overrides[key] = value
    return overrides


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reidlab.train", description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=METHODS, required=True)
    parser.add_argument("--scale", choices=SCALES, default="full")
    parser.add_argument("--dataset", default="market1501",
                        help="market1501, dukemtmcreid, msmt17 or synthmarket (default market1501)")
    parser.add_argument("--data-root", default=None,
                        help="dataset folder (needed for the real datasets; SynthMarket is generated if missing)")
    parser.add_argument("--run-dir", required=True, help="where checkpoint.pt and history.json are written")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a TrainConfig field; repeatable")
    parser.add_argument("--init", choices=("pretrained", "random"), default="pretrained",
                        help="pretrained: the scale's starting model (ImageNet ResNet-50 at full scale, the "
                             "source-pretrained LabNet at lab/tiny scale); random: random weights (tests)")
    parser.add_argument("--resume", action="store_true", help="continue from <run-dir>/checkpoint.pt")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return parser


def _starting_point(args: argparse.Namespace, config: TrainConfig, world: World, *, progress: bool):
    """The dataset and the model a run starts from."""
    dataset = prepare_dataset(args.dataset, args.data_root, scale=args.scale, progress=progress)
    seed_everything(args.seed)
    model = build_start_model(config, scale=args.scale, seed=args.seed, init=args.init, device=world.device,
                              progress=progress)
    return dataset, model


def run(args: argparse.Namespace, world: World) -> Trainer:
    """Build the dataset, config, model and trainer of ``args`` and train; returns the trainer.

    Rank 0 prepares the dataset and the starting model first (SynthMarket generation and the
    source-pretrained weights are cached on disk), then the other ranks load what it cached. Their
    models are replaced by rank 0's anyway when the trainer wraps the model in DistributedDataParallel.
    """
    config = preset(args.method, scale=args.scale, dataset=args.dataset, **parse_overrides(args.overrides))
    progress = world.is_main and not args.no_progress
    if world.is_main:
        dataset, model = _starting_point(args, config, world, progress=progress)
    barrier()
    if not world.is_main:
        dataset, model = _starting_point(args, config, world, progress=False)
    trainer = make_trainer(model, dataset, config, run_dir=args.run_dir, device=world.device, seed=args.seed,
                           progress=progress)
    trainer.fit(resume=args.resume)
    return trainer


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, join the torchrun process group if there is one, train; returns the exit status."""
    args = build_parser().parse_args(argv)
    world = init_distributed()
    logging.basicConfig(level=logging.INFO if world.is_main else logging.WARNING,
                        format=f"%(levelname)s [rank {world.rank}] %(name)s: %(message)s")
    try:
        trainer = run(args, world)
    except (FileNotFoundError, ValueError) as error:
        print(f"reidlab.train: error: {error}", file=sys.stderr)
        return 2
    finally:
        cleanup_distributed()
    if world.is_main and trainer.history:
        print(json.dumps(trainer.history[-1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
