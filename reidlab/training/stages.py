"""How a method's batches become losses: the stage interface and the global-feature stage.

The shared loop (:class:`reidlab.training.Trainer`) owns the epoch: clustering features, pseudo-labels,
the memory, the optimiser step, checkpoints and evaluation. A *stage* owns what depends on the model a
method trains:

* :meth:`GlobalStage.extract`: the clustering features of the training set (:class:`EpochFeatures`);
* :meth:`GlobalStage.prepare`: per-epoch state beyond the memory (SCWM's smoothed masks and classifiers);
* :meth:`GlobalStage.batches` and :meth:`GlobalStage.forward`: the P x K batches and the model's output;
* :meth:`GlobalStage.loss_terms`: the named loss terms of a batch (their sum is minimised);
* :meth:`GlobalStage.memory_features`: what the memory is updated with after the step.

:class:`GlobalStage` serves every method trained on the global embedding (SpCL, Cluster Contrast, HHCL);
:class:`reidlab.training.parts.PartStage` extends it for SCWM and its PPLR stripe baseline.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from reidlab.data.loaders import build_train_loader
from reidlab.models.features import extract_features
from reidlab.models.parts import PartReIDModel
from reidlab.training.distributed import gather_shards, rank_seed, shard_bounds

__all__ = ["Batch", "EpochFeatures", "GlobalStage", "TrainingRun"]


class TrainingRun(Protocol):
    """What a stage uses of the run it serves (:class:`reidlab.training.Trainer` is one)."""

    model: nn.Module  # the model itself: extraction, evaluation, checkpoints
    train_model: nn.Module  # what training forwards go through (DistributedDataParallel under torchrun)
    config: Any  # the run's reidlab.training.TrainConfig
    dataset: Any  # its reidlab.data.ReIDDataset
    device: torch.device
    world: Any  # reidlab.training.distributed.World: this process's rank and the number of processes
    seed: int
    progress: bool
    image_cache: dict | bool  # the run's images, shared by extraction, training and evaluation
    memory: Any  # the epoch's reidlab.memory.Memory
    optimizer: torch.optim.Optimizer
    source: Any  # the labelled source reidlab.data.ReIDDataset of a domain-adaptation run, or None


@dataclass(frozen=True)
class EpochFeatures:
    """What one epoch's clustering stage extracts from the training set.

    Attributes:
        global_: global features ``(N, D)``, unit norm; DBSCAN clusters these.
        parts: part features ``(N, l, D)``, unit norm per part (part-based methods), else None.
        pseudo_masks: SCWM's cascaded-clustering masks ``(N, h, w)``, else None.
        predicted_masks: arg-max of SCWM's part head ``(N, h, w)``, else None.
        difficulty: kNN agreement ``(N, l)`` of every part with the global feature (SCWM Eq. 7), else None.
        source: domain adaptation: features ``(N_s, D)`` of the labelled source training set, unit norm, else
            None.
        source_labels: their identities ``(N_s,)``, 0..S-1, else None.
    """

    global_: torch.Tensor
    parts: torch.Tensor | None = None
    pseudo_masks: torch.Tensor | None = None
    predicted_masks: torch.Tensor | None = None
    difficulty: torch.Tensor | None = None
    source: torch.Tensor | None = None
    source_labels: torch.Tensor | None = None

    def gathered(self, n: int) -> EpochFeatures:
        """Every rank's shard of the training set put together (:func:`reidlab.training.distributed.gather_shards`);
        a no-op in one process."""
        return replace(self, **{name: None if value is None else gather_shards(value, n)
                                for name, value in vars(self).items()
                                if name not in ("difficulty", "source", "source_labels")})


@dataclass
class Batch:
    """One training batch, on the training device.

    Attributes:
        images: ``(B, 3, H, W)``.
        targets: ``(B,)`` training labels (pseudo-identities).
        indexes: ``(B,)`` dataset indices of the samples.
        extras: what a stage adds (SCWM: the batch's smoothed pseudo masks).
    """

    images: torch.Tensor
    targets: torch.Tensor
    indexes: torch.Tensor
    extras: dict[str, Any]


class GlobalStage:
    """The stage of the methods trained on the global embedding: one memory loss on the normalised feature.

    Args:
        trainer: the run this stage serves (a :class:`reidlab.training.Trainer`: model, config, data, device...).

    Attributes:
        needs_source: whether the stage trains on a labelled source dataset besides the target
            (:class:`reidlab.training.domains.DomainStage`); ``TrainConfig.source_dataset`` must then name it.
    """

    needs_source = False

    def __init__(self, trainer: TrainingRun) -> None:
        self.trainer = trainer

    # ----------------------------------------------------------------------------- the model
    @staticmethod
    def build_model(model: nn.Module, config: Any, *, seed: int) -> nn.Module:
        """The model this stage trains, made from a start model and the run's ``TrainConfig`` (here the model
        itself)."""
        return model

    def check_model(self, model: nn.Module) -> None:
        """Raise a ``ValueError`` if ``model`` cannot be trained by this stage."""
        if isinstance(model, PartReIDModel):
            raise ValueError(
                f"method {self.trainer.config.method!r} trains the global embedding, but the model is a "
                "PartReIDModel (SCWM's); build it with reidlab.training.build_start_model(config, scale=...)"
            )

    def leaves_parameters_unused(self) -> bool:
        """Whether the loss leaves some trainable parameter without a gradient (DDP must then be told)."""
        return False

    # ----------------------------------------------------------------------------- clustering stage
    def extract(self) -> EpochFeatures:
        """Training features ``(N, D)`` in eval mode; under torchrun each rank extracts a shard and all gather."""
        t = self.trainer
        return EpochFeatures(self.extract_records(t.dataset.train, t.image_cache))

    def extract_records(self, records, cache: dict | bool) -> torch.Tensor:
        """Features ``(len(records), D)`` of ``records`` in eval mode, each rank a shard, all gathered."""
        t = self.trainer
        n = len(records)
        start, stop = shard_bounds(n, t.world.rank, t.world.world_size)
        shard = extract_features(
            t.model, records[start:stop], height=t.config.height, width=t.config.width,
            num_workers=t.config.num_workers, device=t.device, cache=cache, progress=t.progress,
        )
        return gather_shards(shard, n)

    def prepare(self, features: EpochFeatures, labels: np.ndarray, epoch: int) -> None:
        """Per-epoch state beyond the memory, after it is built (nothing here)."""

    # ----------------------------------------------------------------------------- training stage
    def batches(self, epoch: int, labels: np.ndarray) -> Iterable[Batch]:
        """``iters`` P x K batches drawn by ``labels (N,)`` (-1 = not trained on), each rank its own."""
        t, cfg = self.trainer, self.trainer.config
        loader = build_train_loader(
            t.dataset.train, labels.tolist(), height=cfg.height, width=cfg.width,
            batch_size=cfg.batch_size // t.world.world_size, num_instances=cfg.num_instances, iters=cfg.iters,
            num_workers=cfg.num_workers, seed=self.loader_seed(epoch), cache=t.image_cache, erasing_p=cfg.erasing_p,
            colour_jitter=cfg.colour_jitter, background_swap=cfg.background_swap, **self.loader_options(),
        )
        return self._to_device(loader)

    def loader_seed(self, epoch: int) -> int:
        """The epoch's sampler and augmentation seed (rank 0 keeps the single-process seed)."""
        return rank_seed(self.trainer.seed * 1000 + epoch, self.trainer.world.rank)

    def loader_options(self) -> dict[str, Any]:
        """Extra :func:`reidlab.data.build_train_loader` options of this stage."""
        return {}

    def _to_device(self, loader: Iterable) -> Iterator[Batch]:
        device = self.trainer.device
        for images, targets, _, indexes in loader:
            yield Batch(images.to(device, non_blocking=True), targets.to(device), indexes.to(device), {})

    def forward(self, batch: Batch) -> torch.Tensor:
        """The model's output for the batch (run under autocast by the train step)."""
        return self.trainer.train_model(batch.images)

    def loss_terms(self, out: torch.Tensor, batch: Batch, epoch: int) -> dict[str, torch.Tensor]:
        """The memory's loss of this rank's batch."""
        return {"memory": self.trainer.memory.loss(out.float(), batch.targets, indexes=batch.indexes)}

    def memory_features(self, out: torch.Tensor) -> torch.Tensor | None:
        """What the memory is updated with after the step (None: no update)."""
        return out.detach().float()

    def before_step(self) -> None:
        """Called between ``backward`` and the optimiser step (gradients of modules outside DDP)."""

    def start_epoch(self, epoch: int) -> None:
        """Called before an epoch's batches."""

    def end_epoch(self) -> None:
        """Called after an epoch's batches, also when training was interrupted."""

    # ----------------------------------------------------------------------------- records and state
    def epoch_metrics(self, loss_terms: dict[str, float]) -> dict[str, Any]:
        """Extra entries of the epoch's history record (the mean loss terms are given)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs beyond model, optimiser and memory."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
