"""The models several notebooks share, built once and cached: the start model and the supervised ceiling.

Every run of notebooks 01-06 starts from the scale's start model (:func:`reidlab.training.build_start_model`:
at ``lab`` scale LabNet's seeded initialisation, nothing to train; at ``tiny`` scale LabNet pretrained with labels
on a source SynthMarket, :func:`reidlab.training.supervised.source_pretrained_model`), and notebooks 00, 02 and
06 measure the methods against the supervised ceiling (:func:`supervised_ceiling`). What has to be trained
(the ceiling, and the tiny start) is cached under ``data/pretrained/``; the lab ceiling takes a few minutes.
``reidlab demo`` calls :func:`build_shared_models` before the first notebook, with its own progress line and a
time estimate; the notebooks call the same function (and the same :func:`supervised_ceiling`), so they find the
same cache files and say so, instead of training in silence inside a cell.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from reidlab.config import check_scale
from reidlab.data.datasets import ReIDDataset
from reidlab.models import ReIDModel
from reidlab.training.config import preset
from reidlab.training.supervised import (
    SupervisedConfig,
    seconds_per_iteration,
    source_dataset_root,
    source_pretrained_model,
    supervised_cache_path,
    supervised_config,
    supervised_model,
)
from reidlab.utils import format_duration

__all__ = ["SHARED_MODELS", "SharedModel", "build_shared_models", "shared_models", "supervised_ceiling"]

logger = logging.getLogger(__name__)

# "start": the start model of every run, trained only at tiny scale (source-pretrained); "ceiling": the
# supervised ceiling ("w/ GT").
SHARED_MODELS = ("start", "ceiling")
# The ceiling's seed: fixed, so that every notebook (whatever its own seed) compares with the same model.
CEILING_SEED = 0


@dataclass
class SharedModel:
    """One shared model: what it is, where it is cached and what training it costs.

    Attributes:
        name: ``"start"`` or ``"ceiling"``.
        description: one line for a person.
        path: the cache file (:func:`reidlab.training.supervised.supervised_cache_path`).
        config: its training schedule.
        backbone: the network trained.
        seconds: time :func:`build_shared_models` spent on it (0 when it was cached).
    """

    name: str
    description: str
    path: Path
    config: SupervisedConfig
    backbone: str
    seconds: float = 0.0

    @property
    def cached(self) -> bool:
        """Whether its weights are on disk (no training needed)."""
        return self.path.is_file()

    @property
    def iterations(self) -> int:
        """Optimisation steps of its training."""
        return self.config.epochs * self.config.iters


def _backbone(scale: str) -> str:
    """The backbone the scale's presets train (LabNet at tiny and lab scale, ResNet-50 at full scale)."""
    return preset("cluster_contrast", scale=scale).backbone


def supervised_ceiling(
    dataset: ReIDDataset,
    *,
    scale: str,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> ReIDModel:
    """The supervised ceiling ("w/ GT" in the papers' tables) of ``dataset`` at ``scale``: the scale's backbone
    trained with the true identities on :func:`reidlab.training.supervised.supervised_config`'s schedule,
    seed 0, cached (:func:`reidlab.training.supervised.supervised_model`). Notebooks 00, 02 and 06 call it,
    so they share one model."""
    check_scale(scale)
    return supervised_model(dataset, backbone=_backbone(scale), config=supervised_config(scale), seed=CEILING_SEED,
                            device=device, progress=progress)


def shared_models(dataset: ReIDDataset, *, scale: str, models: Sequence[str] = SHARED_MODELS) -> list[SharedModel]:
    """The shared models of ``models`` at ``scale`` for ``dataset`` that need training, cached or not (nothing is
    trained here).

    At ``full`` scale there is none: runs start from ImageNet weights and only notebook 00 trains the ceiling.
    At ``lab`` scale the start is an initialisation (:data:`reidlab.training.start.LAB_START_SEED`), so only the
    ceiling is listed.

    Raises:
        ValueError: an unknown name in ``models``.
    """
    unknown = [name for name in models if name not in SHARED_MODELS]
    if unknown:
        raise ValueError(f"models must be names from {SHARED_MODELS}, got {unknown}")
    if check_scale(scale) == "full":
        return []
    backbone, config = _backbone(scale), supervised_config(scale)
    found = []
    if "start" in models and scale == "tiny":
        source = source_dataset_root(scale)
        found.append(SharedModel(
            "start", f"the start model: {backbone} pretrained with labels on a source SynthMarket ({source.name})",
            supervised_cache_path(source, backbone=backbone, config=config, seed=1), config, backbone))
    if "ceiling" in models:
        found.append(SharedModel(
            "ceiling", f"the supervised ceiling: {backbone} trained with the true identities of {dataset.name}",
            supervised_cache_path(dataset.root, backbone=backbone, config=config, seed=CEILING_SEED), config, backbone))
    return found


def build_shared_models(
    dataset: ReIDDataset,
    *,
    scale: str,
    models: Sequence[str] = SHARED_MODELS,
    device: str | torch.device | None = None,
    progress: bool = True,
    report: Callable[[str], None] | None = None,
) -> list[SharedModel]:
    """Train the shared models that are not cached yet, saying first what and for how long.

    One line before any training: which models, how many iterations, and an estimate from a few optimisation
    steps timed on this machine (:func:`reidlab.training.supervised.seconds_per_iteration`; data loading and
    generating the source SynthMarket come on top); then one line per model with its measured time. Models
    already cached cost one line and no training. The notebooks call it before they use the models, and
    ``reidlab demo`` before the first notebook.

    Args:
        dataset: the target dataset (the ceiling is trained on its labels).
        scale: ``"tiny"``, ``"lab"`` or ``"full"`` (nothing to build at full scale).
        models: which of :data:`SHARED_MODELS`.
        device: where to train; ``None`` picks CUDA when available.
        progress: show the training progress bars.
        report: called with each line (``print`` in a notebook); ``None`` logs them (``logging.INFO``).

    Returns:
        The :class:`SharedModel` of each name in ``models`` (none at full scale), now cached.
    """
    report = report or logger.info
    wanted = shared_models(dataset, scale=scale, models=models)
    missing = [model for model in wanted if not model.cached]
    if not missing:
        where = ", ".join(f"{model.name} {model.path}" for model in wanted)
        report(f"shared models: {'cached (' + where + ')' if wanted else f'none to train at {scale} scale'}")
        return wanted
    step = seconds_per_iteration(missing[0].backbone, missing[0].config, device=device)
    iterations = sum(model.iterations for model in missing)
    report(f"shared models: training {' and '.join(model.name for model in missing)} now, once ({iterations} "
           f"iterations; about {format_duration(iterations * step)} at {step:.2f} s per iteration measured on this "
           f"machine, plus data loading); cached in {missing[0].path.parent}/ afterwards")
    for model in missing:
        report(f"  {model.description}")
        start = time.perf_counter()
        if model.name == "start":
            source_pretrained_model(model.backbone, scale=scale, device=device, progress=progress)
        else:
            supervised_ceiling(dataset, scale=scale, device=device, progress=progress)
        model.seconds = time.perf_counter() - start
        report(f"  {model.name}: trained in {format_duration(model.seconds)} -> {model.path}")
    return wanted
