"""Two-domain training: a labelled source dataset and the pseudo-labelled target, side by side.

Domain adaptation is SpCL's own main setting (Ge et al., NeurIPS 2020; ``examples/spcl_train_uda.py`` and
``SpCLTrainer_UDA`` in ``spcl/trainers.py``), and the Cluster Contrast appendix (1.2, Table 1) trains it
with Cluster Contrast's memory. Within the shared loop (:class:`reidlab.training.Trainer`),
:class:`DomainStage` makes an epoch two-domain:

* the model has domain-specific BatchNorm (:mod:`reidlab.models.domains`): built from the start model
  (:meth:`DomainStage.build_model`), every BatchNorm of backbone and neck has a source and a target copy;
* the clustering stage extracts the target's training features, which are pseudo-labelled as in every
  method, and the source's, whose identities are known (the memory's source class centroids); both
  through the target BatchNorms, as SpCL extracts in eval mode;
* every iteration draws one P x K batch of the source by true identity and one P x K batch of the target
  by pseudo-label, puts both through the model in one forward pass (the source images first, through the
  source BatchNorms; the target images through the target BatchNorms, as SpCL's ``DSBN2d`` splits its
  batch), and minimises the memory's loss of the source batch plus that of the target batch
  (``loss = loss_s + loss_t``); after the step the memory is updated with both batches.

The memory's rows put the source first: source class c is memory class c, and the target's classes are
numbered after the S source classes. The stage hands the memory, as each sample's ``targets`` and
``indexes``, its class and memory row: a source sample's class and row are its identity, a target
sample's class is S + its pseudo-label and its row S + its dataset index (``SpCLTrainer_UDA`` passes
``s_targets`` and ``t_indexes + source_classes``).

Where the source comes from: ``TrainConfig.source_dataset`` names it and ``TrainConfig.source_root`` says
where it is (:func:`load_source_dataset`); a :class:`reidlab.training.Trainer` given ``source=`` uses that
dataset instead. At lab and tiny scale the source is :data:`LAB_SOURCE`, a SynthMarket of another domain
(the ``campus`` presets: other cameras, scenes, sensors and clothes).

To be taught in notebook 06 (domain adaptation and camera-aware proxies).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reidlab.config import data_dir
from reidlab.data.datasets import ReIDDataset, SynthMarket, load_dataset, relabel
from reidlab.data.loaders import build_train_loader
from reidlab.models.domains import (
    convert_domain_batchnorm,
    domain_split,
    has_domain_batchnorm,
)
from reidlab.training.distributed import barrier
from reidlab.training.stages import Batch, EpochFeatures, GlobalStage, TrainingRun

logger = logging.getLogger(__name__)

__all__ = ["LAB_SOURCE", "DomainStage", "SourceSynthMarket", "is_lab_source", "lab_source_root", "load_source_dataset"]


@dataclass(frozen=True)
class SourceSynthMarket:
    """A generated SynthMarket that serves as the labelled source dataset of lab- and tiny-scale runs.

    Attributes:
        seed: its generation seed.
        preset: its SynthMarket preset; None: the preset of the target SynthMarket (``tiny`` at tiny scale,
            ``lab`` at lab scale), so that source and target have the same size and structure.
        domain: its domain (:func:`reidlab.data.synthmarket.domain_preset`: ``"campus"`` turns ``tiny`` into
            ``tiny_campus``, ``lab`` into ``lab_campus`` and ``default`` into ``campus``); None: the preset's own
            domain.
    """

    seed: int = 2
    preset: str | None = None
    domain: str | None = "campus"

    def preset_for(self, target_preset: str) -> str:
        """The preset this source is generated with, next to a target generated with ``target_preset``."""
        from reidlab.data.synthmarket import PRESETS, domain_preset

        size = self.preset or (target_preset if target_preset in PRESETS else "default")  # "custom": the lab size
        if self.domain is None or PRESETS[size].domain != PRESETS["default"].domain:
            return size  # the preset's own domain, or a preset that already is another domain
        return domain_preset(size, self.domain)


# The labelled source of every lab- and tiny-scale domain-adaptation run, reidlab's stand-in for a second
# real dataset (MSMT17 -> Market-1501 in the papers). reidlab's choice: SynthMarket's second domain, "campus"
# (reidlab.data.synthmarket.CAMPUS: eight cameras in other places and light, coarser sensors, winter
# clothes), as real datasets differ from each other, at the target's size. Seed 0 is the target; seed 1
# pretrains the tiny start model (source_pretrained_model), so the source is seed 2: as MSMT17 is not ImageNet,
# the labelled source is not the set a start model was pretrained on.
LAB_SOURCE = SourceSynthMarket(seed=2, domain="campus")

# The source loader's seeds are a stream of their own, apart from the target loader's (loader_seed).
_SOURCE_SEED_STREAM = 2**32


def lab_source_root(preset: str, source: SourceSynthMarket = LAB_SOURCE) -> Path:
    """Where the lab source SynthMarket next to a target of ``preset`` lives:
    ``data_dir()/synthmarket-<source preset>-uda-source-seed<seed>`` (``-uda-``, to keep it apart from the
    folders of :func:`reidlab.training.source_pretrained_model`)."""
    return data_dir() / f"synthmarket-{source.preset_for(preset)}-uda-source-seed{source.seed}"


def _synthmarket_preset(dataset: ReIDDataset) -> str | None:
    """The preset a SynthMarket was generated with (its manifest), None for another dataset."""
    if not isinstance(dataset, SynthMarket):
        return None
    manifest = json.loads((Path(dataset.root) / SynthMarket.MANIFEST).read_text(encoding="utf-8"))
    return manifest.get("preset")


def load_source_dataset(config: Any, target: ReIDDataset, *, progress: bool = True) -> ReIDDataset:
    """The labelled source dataset of a domain-adaptation run of ``config`` on ``target``.

    * ``config.source_root`` set: ``config.source_dataset`` loaded from there.
    * ``source_dataset="synthmarket"`` without a root: :data:`LAB_SOURCE` (SynthMarket's campus domain at the
      target's size), generated on first use under :func:`lab_source_root`.
    * a real dataset without a root: looked for beside the target, in the folder that holds the target's
      folder and in the one above it (``reidlab reproduce --data-root DIR`` holds every dataset in DIR).

    Raises:
        ValueError: no source named, or the source is the target itself.
        FileNotFoundError: the source is not where it was looked for (the message says where).
    """
    name = config.source_dataset
    if not name:
        raise ValueError(f"method {config.method!r} trains on a labelled source dataset: set source_dataset "
                         "(e.g. 'msmt17', or 'synthmarket' at lab and tiny scale)")
    if config.source_root:
        source = load_dataset(name, config.source_root)
    elif is_lab_source(name):
        target_preset = _synthmarket_preset(target) or "default"
        root = lab_source_root(target_preset)
        if not root.exists():
            from reidlab.data.synthmarket import generate_synthmarket

            preset = LAB_SOURCE.preset_for(target_preset)
            logger.info("generating the lab source SynthMarket (%s, seed %d) in %s", preset, LAB_SOURCE.seed, root)
            generate_synthmarket(root, preset=preset, seed=LAB_SOURCE.seed, progress=progress)
        source = load_dataset("synthmarket", root)
    else:
        places = list(dict.fromkeys([Path(target.root).parent, Path(target.root).parent.parent]))
        for place in places:
            try:
                source = load_dataset(name, place)
                break
            except FileNotFoundError:
                continue
        else:
            raise FileNotFoundError(
                f"the source dataset {name!r} is not beside the target ({', '.join(map(str, places))}): put it "
                f"there, or give its folder as source_root (reidlab train --set source_root=DIR)"
            )
    if Path(source.root).resolve() == Path(target.root).resolve():
        raise ValueError(f"the source dataset ({source.root}) is the target itself: domain adaptation needs "
                         "another labelled dataset")
    return source


def is_lab_source(name: str) -> bool:
    """Whether ``source_dataset`` names the generated lab source (any spelling of SynthMarket)."""
    return name.replace("-", "").replace("_", "").lower() in ("synthmarket", "synth")


class DomainStage(GlobalStage):
    """The stage of the domain-adaptation methods: a source and a target batch per iteration, DSBN model.

    See the module docstring. The memory's loss is called twice per iteration, on the source batch and on
    the target batch (history: ``loss_source``, ``loss_target``); the update gets both, source first.

    Args:
        trainer: the run; its ``dataset`` is the target, its ``source`` (or ``config.source_dataset``) the
            labelled source.

    Attributes:
        source: the labelled source dataset.
        source_labels: ``(N_s,)`` its identities relabelled 0..S-1 in increasing pid order.
        num_source_classes: S.
    """

    needs_source = True

    def __init__(self, trainer: TrainingRun) -> None:
        super().__init__(trainer)
        source = getattr(trainer, "source", None)
        if source is None:  # rank 0 generates a missing lab source; the others load it after
            if trainer.world.is_main:
                source = load_source_dataset(trainer.config, trainer.dataset, progress=trainer.progress)
            barrier()
            if not trainer.world.is_main:
                source = load_source_dataset(trainer.config, trainer.dataset, progress=False)
        if not source.train:
            raise ValueError(f"the source dataset {source.root} has no training images")
        self.source = source
        self.source_labels = relabel([record.pid for record in source.train])
        self.num_source_classes = int(self.source_labels.max()) + 1

    # ----------------------------------------------------------------------------- the model
    @staticmethod
    def build_model(model: nn.Module, config: Any, *, seed: int) -> nn.Module:
        """The start model with domain-specific BatchNorm (:func:`reidlab.models.convert_domain_batchnorm`)."""
        return convert_domain_batchnorm(model)

    def check_model(self, model: nn.Module) -> None:
        super().check_model(model)
        if not has_domain_batchnorm(model):
            raise ValueError(
                f"method {self.trainer.config.method!r} trains a model with domain-specific BatchNorm: build it "
                "with reidlab.training.build_start_model(config, scale=...) or convert it with "
                "reidlab.models.convert_domain_batchnorm(model)"
            )

    # ----------------------------------------------------------------------------- clustering stage
    def extract(self) -> EpochFeatures:
        """The target's training features, with the source's and its identities (``source``,
        ``source_labels``), both through the target BatchNorms (eval mode)."""
        target = super().extract()
        source = self.extract_records(self.source.train, self.trainer.image_cache)
        return replace(target, source=source, source_labels=torch.from_numpy(self.source_labels))

    # ----------------------------------------------------------------------------- training stage
    def batches(self, epoch: int, labels: np.ndarray) -> Iterable[Batch]:
        """``iters`` pairs of P x K batches, source (true identities) and target (``labels``), as one batch."""
        t, cfg = self.trainer, self.trainer.config
        options = {"height": cfg.height, "width": cfg.width, "batch_size": cfg.batch_size // t.world.world_size,
                   "num_instances": cfg.num_instances, "iters": cfg.iters, "num_workers": cfg.num_workers,
                   "erasing_p": cfg.erasing_p, "colour_jitter": cfg.colour_jitter,
                   "background_swap": cfg.background_swap}
        source = build_train_loader(self.source.train, self.source_labels.tolist(),
                                    seed=self.loader_seed(epoch) + _SOURCE_SEED_STREAM, cache=t.image_cache,
                                    **options)
        target = build_train_loader(t.dataset.train, labels.tolist(), seed=self.loader_seed(epoch),
                                    cache=t.image_cache, **options)
        return self._pairs(source, target)

    def _pairs(self, source: Iterable, target: Iterable) -> Iterator[Batch]:
        device, offset = self.trainer.device, self.num_source_classes
        for (s_images, s_labels, _, _), (t_images, t_labels, _, t_indexes) in zip(source, target):
            yield Batch(
                torch.cat([s_images, t_images]).to(device, non_blocking=True),
                torch.cat([s_labels, t_labels + offset]).to(device),
                torch.cat([s_labels, t_indexes + offset]).to(device),  # memory rows: class / S + dataset index
                {"num_source": len(s_images)},
            )

    def forward(self, batch: Batch) -> torch.Tensor:
        """One forward pass: the source images through the source BatchNorms, the target's through the target's."""
        n = batch.extras["num_source"]
        with domain_split(self.trainer.model, {"source": n, "target": len(batch.images) - n}):
            return self.trainer.train_model(batch.images)

    def loss_terms(self, out: torch.Tensor, batch: Batch, epoch: int) -> dict[str, torch.Tensor]:
        """The memory's loss of the source batch and of the target batch (``SpCLTrainer_UDA``: ``loss_s + loss_t``)."""
        n, memory, out = batch.extras["num_source"], self.trainer.memory, out.float()
        return {
            "source": memory.loss(out[:n], batch.targets[:n], indexes=batch.indexes[:n]),
            "target": memory.loss(out[n:], batch.targets[n:], indexes=batch.indexes[n:]),
        }

    # ----------------------------------------------------------------------------- records
    def epoch_metrics(self, loss_terms: dict[str, float]) -> dict[str, Any]:
        """The mean source and target losses (``loss_source``, ``loss_target``) and the source's size."""
        return {**{f"loss_{name}": value for name, value in loss_terms.items()},
                "source_classes": self.num_source_classes}

