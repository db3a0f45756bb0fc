"""One training run from the command line (``reidlab train``), in one process or under ``torchrun``.

One GPU (or the CPU)::

    reidlab train --method cluster_contrast --scale full --dataset market1501 \\
        --data-root /data/Market-1501-v15.09.15 --run-dir runs/cc-market

Four GPUs of one machine, one process each (DistributedDataParallel, :mod:`reidlab.training.distributed`)::

    torchrun --nproc_per_node 4 -m reidlab.train --method cluster_contrast --scale full \\
        --dataset market1501 --data-root /data/Market-1501-v15.09.15 --run-dir runs/cc-market

Domain adaptation trains on a labelled source dataset too: the preset names it (MSMT17 -> Market-1501 for
``spcl_uda`` on ``market1501``), looked for beside the target; ``--set source_dataset=...`` and
``--set source_root=DIR`` choose another::

    reidlab train --method spcl_uda --scale full --dataset market1501 --data-root /data \\
        --set source_dataset=dukemtmcreid --run-dir runs/spcl-duke-market

Both run the same :class:`reidlab.training.Trainer` with the same global batch (the paper's) and learning
rate; with ``torchrun`` every process trains on ``batch_size / nproc`` images per step. ``--set key=value``
overrides any :class:`reidlab.training.TrainConfig` field (``--set epochs=60 --set eps=0.55``);
``--resume`` continues from ``<run-dir>/checkpoint.pt``. Rank 0 writes ``checkpoint.pt`` and
``history.json`` every epoch.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reidlab.data.prepare import prepare_dataset
from reidlab.training.config import TrainConfig, preset
from reidlab.training.distributed import barrier, cleanup_distributed, init_distributed
from reidlab.training.start import build_start_model
from reidlab.training.trainer import Trainer
from reidlab.utils import seed_everything

logger = logging.getLogger(__name__)

__all__ = ["parse_overrides", "train_run"]


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


def train_run(
    method: str,
    *,
    run_dir: str | Path,
    scale: str = "full",
    dataset: str = "market1501",
    data_root: str | Path | None = None,
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
    init: str = "start",
    resume: bool = False,
    progress: bool = True,
) -> Trainer:
    """Build the dataset, config, start model and trainer of one run and train; returns the trainer.

    Joins the ``torchrun`` process group when there is one. Rank 0 prepares the dataset and the start
    model first (SynthMarket generation and the source-pretrained weights are cached on disk), then the
    other ranks load what it cached. Their models are replaced by rank 0's anyway when the trainer wraps
    the model in DistributedDataParallel.
    """
    config = preset(method, scale=scale, dataset=dataset, **(overrides or {}))
    world = init_distributed()
    logging.getLogger("reidlab").setLevel(logging.INFO if world.is_main else logging.WARNING)
    try:
        progress = progress and world.is_main

        def starting_point(show: bool):
            data = prepare_dataset(dataset, data_root, scale=scale, progress=show)
            seed_everything(seed)
            return data, build_start_model(config, scale=scale, seed=seed, init=init, device=world.device,
                                           progress=show)

        if world.is_main:
            data, model = starting_point(progress)
        barrier()
        if not world.is_main:
            data, model = starting_point(False)
        trainer = Trainer(model, data, config, run_dir=run_dir, device=world.device, seed=seed, progress=progress)
        trainer.fit(resume=resume)
        return trainer
    finally:
        cleanup_distributed()
