"""The part-based stage of the training loop: SCWM and its PPLR stripe baseline.

One epoch of SCWM (Hong et al., "Spatial Cascaded Clustering and Weighted Memory for Unsupervised Person
Re-identification", section 3.1 and Figure 2), as :class:`PartStage` runs it inside the shared loop
(:class:`reidlab.training.Trainer`):

Clustering stage (backbone frozen, eval mode):
  1. Every training image gives its feature map F, global feature f^g = GAP(F) and part features
     f^pk = GAP(G(F)_k * F) (Eq. 1); with ``part_source="stripes"`` the parts are PPLR's three
     horizontal stripes instead.
  2. DBSCAN on the k-reciprocal Jaccard distance of the global features gives pseudo identities.
  3. Spatial cascaded clustering of each F gives pseudo parsing masks (Eq. 2), smoothed across epochs
     (Eq. 3).
  4. The kNN agreement of every part with its global feature gives the difficulty alpha (Eq. 7).
  5. The weighted memory (global + one stream per part) and the identity classifiers start from the
     cluster centroids.

Training stage: ``iters`` P x K batches; the loss is the sum of the terms named in
``TrainConfig.losses`` (Eq. 16 = L_SCC + L_WM + L_ID with all of them): ``parsing`` (Eq. 4),
``diversity`` (Eq. 5), ``wnce`` (Eq. 10), ``sep`` (Eq. 11), ``id`` (Eq. 13-15) and, for the PPLR baseline,
``triplet``. After each optimiser step the memory is updated (Eq. 9) with the ``memory_update``
strategy. Flips and pad-and-crop shifts are applied here to the images *and* their pseudo masks
together, so masks stay aligned with what the network sees; random erasing stays in the loader, so it
comes before the flip and crop here (after them in the papers' order; the erased box may be shifted or
partly cropped).

reidlab's choices where PPLR's code differs: the identity classifiers are cosine classifiers rebuilt
(with fresh Adam moments) every epoch (:class:`reidlab.training.losses.IdentityClassifier`; PPLR overwrites the
rows of one linear classifier and keeps its Adam state). The soft triplet loss of the baseline sees the
global BN feature before normalisation, as PPLR's ``SoftTripletLoss`` does (``PartOutput.global_bn``).

Under ``torchrun`` (:mod:`reidlab.training.distributed`) it runs as the global stage does: each rank extracts a shard
of the clustering stage (features, pseudo and predicted masks) and all gather it, so every rank computes
the same difficulties, smoothed masks and memory; each trains through DistributedDataParallel on its own
``batch_size / world_size`` images (its own sampler, flips and crops), the identity classifier's gradients
are averaged over the ranks as DDP averages the model's, and the memory is updated with every rank's batch.

Taught in ``notebooks/04_part_parsing.ipynb`` and ``notebooks/05_weighted_memory.ipynb``.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reidlab.cluster.agreement import knn_agreement
from reidlab.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from reidlab.models.features import model_outputs
from reidlab.models.parts import PartOutput, PartReIDModel
from reidlab.parsing import (
    DEFAULT_ETA,
    MaskSmoother,
    cascaded_parsing,
    diversity_loss,
    load_part_masks,
    parsing_iou,
    parsing_loss,
)
from reidlab.training.distributed import (
    all_gather_tensors,
    is_distributed,
    shard_bounds,
)
from reidlab.training.losses import (
    IdentityClassifier,
    agreement_label_smoothing_loss,
    part_guided_refinement_loss,
    soft_triplet_loss,
)
from reidlab.training.stages import Batch, EpochFeatures, GlobalStage, TrainingRun

logger = logging.getLogger(__name__)

__all__ = ["PartStage", "average_gradients", "extract_part_features", "flip_pad_crop"]

LABEL_SMOOTHING_ALPHA = 0.9  # PPLR's CrossEntropyLabelSmooth (epsilon 0.1) before --aals-epoch


@torch.no_grad()
def extract_part_features(
    model: PartReIDModel,
    records,
    *,
    height: int,
    width: int,
    parse: bool,
    num_parts: int,
    foreground_correction: bool = True,
    space_correction: bool = True,
    eta: float = DEFAULT_ETA,
    batch_size: int = 128,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
    cache: bool | dict = False,
    seed: int = 0,
    progress: bool = True,
) -> EpochFeatures:
    """SCWM's clustering stage over ``records``: Eq. 1 features and, with ``parse``, Eq. 2 pseudo masks.

    The cascaded clustering runs batch by batch on the feature maps, which are never all kept in memory
    (12,936 x 2048 x 24 x 8 floats would be 20 GB at full scale).
    """
    globals_, parts, pseudo, predicted = [], [], [], []
    for out in model_outputs(model, records, height=height, width=width, forward=model.forward_parts,
                             batch_size=batch_size, num_workers=num_workers, device=device, cache=cache,
                             progress=progress, desc="part features"):
        globals_.append(out.global_.float().cpu())
        parts.append(out.parts.float().cpu())
        if parse:
            pseudo.append(cascaded_parsing(
                out.fmap.float().cpu(), num_parts=num_parts, foreground_correction=foreground_correction,
                space_correction=space_correction, eta=eta, seed=seed,
            ).to(torch.uint8))
            predicted.append(out.part_logits.argmax(1).to(torch.uint8).cpu())
    if not globals_:
        raise ValueError("no records to extract features from: the record list is empty")
    return EpochFeatures(
        torch.cat(globals_), torch.cat(parts),
        torch.cat(pseudo) if parse else None, torch.cat(predicted) if parse else None,
    )


def flip_pad_crop(
    images: torch.Tensor,
    masks: torch.Tensor | None,
    *,
    flip_p: float = 0.5,
    padding: int = 10,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The papers' flip and pad-10-random-crop, applied to images and their soft part masks alike.

    Args:
        images: normalised images ``(B, 3, H, W)``; padding fills with the normalised value of black
            (what ``T.Pad`` of the PIL image gives).
        masks: soft part masks ``(B, l, h, w)``, background last, or ``None``. They are upsampled to
            the image size, flipped, padded with background and cropped like the images, and pooled back.
        flip_p: probability of a horizontal flip, per image.
        padding: pixels of padding before the crop back to ``(H, W)``.
        generator: source of the random flips and offsets.

    Returns:
        ``(images, masks)`` transformed.
    """
    batch, channels, height, width = images.shape
    flip = torch.rand(batch, generator=generator) < flip_p
    top = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
    left = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
    black = (-torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD)).to(images)
    padded = black.view(1, channels, 1, 1).repeat(batch, 1, height + 2 * padding, width + 2 * padding)
    flipped = torch.where(flip.to(images.device).view(-1, 1, 1, 1), images.flip(-1), images)
    padded[:, :, padding:padding + height, padding:padding + width] = flipped
    out = torch.stack([padded[b, :, top[b]:top[b] + height, left[b]:left[b] + width] for b in range(batch)])
    if masks is None:
        return out, None
    size = masks.shape[-2:]
    full = F.interpolate(masks, size=(height, width), mode="nearest")
    full = torch.where(flip.to(masks.device).view(-1, 1, 1, 1), full.flip(-1), full)
    background = torch.zeros(masks.shape[1], device=masks.device, dtype=masks.dtype)
    background[-1] = 1.0
    padded_masks = background.view(1, -1, 1, 1).repeat(batch, 1, height + 2 * padding, width + 2 * padding)
    padded_masks[:, :, padding:padding + height, padding:padding + width] = full
    cropped = torch.stack([padded_masks[b, :, top[b]:top[b] + height, left[b]:left[b] + width] for b in range(batch)])
    return out, F.adaptive_avg_pool2d(cropped, size)


@torch.no_grad()
def average_gradients(parameters) -> None:
    """Replace every gradient of ``parameters`` by its mean over the ranks, in place (as DDP does for a model).

    For parameters outside the DistributedDataParallel model, such as the identity classifier that
    :class:`PartStage` rebuilds each epoch: with a loss that is a mean over each rank's batch, every
    rank then steps with the gradient of the mean over the global batch and the copies stay identical.
    Parameters without a gradient are skipped (every rank must have the same ones). A no-op in one process.
    """
    if not is_distributed():
        return
    for param in parameters:
        if param.grad is not None:
            param.grad.copy_(all_gather_tensors(param.grad[None]).mean(dim=0))


class PartStage(GlobalStage):
    """The stage of the part-based methods ``"scwm"`` and ``"pplr_stripes"`` (see the module).

    The model is a :class:`reidlab.models.PartReIDModel` (:meth:`build_model` makes one from a start
    model); evaluation uses its global feature, as SCWM and PPLR do. Beyond the loop's history entries each
    epoch records the mean of every loss term, the mean difficulty and, on SynthMarket (which has
    ground-truth part masks), the mIoU of the pseudo masks and of the part head's predictions.
    """

    def __init__(self, trainer: TrainingRun) -> None:
        super().__init__(trainer)
        cfg = trainer.config
        self.parse = cfg.part_source == "parsing"
        self.features_: EpochFeatures | None = None
        self.smoother: MaskSmoother | None = None
        self.classifier: IdentityClassifier | None = None
        self._classifier_group: dict | None = None
        self._generator: torch.Generator | None = None
        has_masks = all(r.mask_path is not None for r in trainer.dataset.train)
        self.gt_masks = (  # for the mIoU of epoch_metrics, which only rank 0's history record keeps
            load_part_masks(trainer.dataset.train, size=(cfg.height, cfg.width)).to(torch.uint8)
            if self.parse and has_masks and trainer.world.is_main else None
        )

    # ----------------------------------------------------------------------------- the model
    @staticmethod
    def build_model(model: nn.Module, config: Any, *, seed: int) -> nn.Module:
        """The start model plus a part head and part necks initialised from ``seed`` (SCWM Eq. 1, or PPLR's
        stripes)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return PartReIDModel.from_model(model, num_parts=config.num_parts, part_source=config.part_source)

    def check_model(self, model: nn.Module) -> None:
        cfg = self.trainer.config
        if not isinstance(model, PartReIDModel):
            raise ValueError(
                f"method {cfg.method!r} needs a reidlab.models.PartReIDModel, got {type(model).__name__}; build it "
                "with reidlab.training.build_start_model(config, scale=...) or PartReIDModel.from_model(model, "
                "num_parts=..., part_source=...)"
            )
        if model.num_parts != cfg.num_parts or model.part_source != cfg.part_source:
            raise ValueError(
                f"the model has {model.num_parts} {model.part_source} parts but the config asks for "
                f"{cfg.num_parts} {cfg.part_source} parts"
            )

    def leaves_parameters_unused(self) -> bool:
        """Whether the enabled loss terms leave a module of the model without a gradient (:meth:`loss_terms`).

        The part necks get gradients from ``wnce``, ``sep`` and ``id``; the part head from those (through
        the part features) and from ``parsing`` and ``diversity``; the global neck from ``wnce``, ``sep``,
        ``id`` and ``triplet``. All of them are used in Eq. 16 and in the PPLR baseline, not in every
        ablation (e.g. ``losses=("parsing", "diversity")``): DistributedDataParallel must then be told.
        """
        cfg = self.trainer.config
        losses = set(cfg.losses)
        parts = bool({"wnce", "sep", "id"} & losses)
        head = parts or bool({"parsing", "diversity"} & losses) or cfg.part_source == "stripes"
        global_ = bool({"wnce", "sep", "id", "triplet"} & losses)
        return not (parts and head and global_)

    # ----------------------------------------------------------------------------- clustering stage
    def extract(self) -> EpochFeatures:
        """Global and part features, pseudo and predicted masks, and the kNN agreements (Eq. 7).

        Under torchrun each rank extracts (and parses) its shard of the training set and all gather them;
        every rank then computes the same agreements.
        """
        t, cfg = self.trainer, self.trainer.config
        n = len(t.dataset.train)
        start, stop = shard_bounds(n, t.world.rank, t.world.world_size)
        shard = extract_part_features(
            t.model, t.dataset.train[start:stop], height=cfg.height, width=cfg.width, parse=self.parse,
            num_parts=cfg.num_parts, foreground_correction=cfg.foreground_correction,
            space_correction=cfg.space_correction, eta=cfg.eta, num_workers=cfg.num_workers,
            device=t.device, cache=t.image_cache, seed=t.seed, progress=t.progress,
        )
        feats = shard.gathered(n)
        self.features_ = EpochFeatures(feats.global_, feats.parts, feats.pseudo_masks, feats.predicted_masks,
                                       difficulty=knn_agreement(feats.global_, feats.parts, k=cfg.agreement_k))
        return self.features_

    def prepare(self, features: EpochFeatures, labels: np.ndarray, epoch: int) -> None:
        """Smoothed masks (Eq. 3) and, with the ``id`` term, the identity classifiers from the centroids."""
        t, cfg = self.trainer, self.trainer.config
        if self.parse:
            if self.smoother is None:
                self.smoother = MaskSmoother(len(labels), cfg.num_parts, tuple(features.pseudo_masks.shape[-2:]),
                                             gamma=cfg.gamma, gamma_epochs=cfg.gamma_epochs)
            self.smoother.update(torch.arange(len(labels)), features.pseudo_masks.long(), epoch)
        if "id" in cfg.losses:  # PPLR: classifiers start from the normalised centroids every epoch
            self.classifier = IdentityClassifier(t.memory.centroids.clone(), temperature=cfg.temperature)
            self.classifier.to(t.device)

    # ----------------------------------------------------------------------------- training stage
    def loader_options(self) -> dict[str, Any]:
        return {"flip_p": 0.0, "padding": 0}  # flipped and cropped in batches(), with the masks

    def start_epoch(self, epoch: int) -> None:
        """The classifier joins the optimiser as a fresh group at the current learning rate."""
        optimizer = self.trainer.optimizer
        self._generator = torch.Generator().manual_seed(self.loader_seed(epoch))
        if self.classifier is not None:
            group = optimizer.param_groups[0]
            optimizer.add_param_group({"params": list(self.classifier.parameters()), "lr": group["lr"],
                                       "weight_decay": group["weight_decay"]})
            self._classifier_group = optimizer.param_groups[-1]

    def end_epoch(self) -> None:
        """The classifier is rebuilt next epoch: drop it from Adam."""
        optimizer = self.trainer.optimizer
        if self._classifier_group is not None:
            optimizer.param_groups.remove(self._classifier_group)
            for param in self._classifier_group["params"]:
                optimizer.state.pop(param, None)
            self._classifier_group = None

    def batches(self, epoch: int, labels: np.ndarray) -> Iterable[Batch]:
        return self._flipped(super().batches(epoch, labels))

    def _flipped(self, batches: Iterable[Batch]) -> Iterator[Batch]:
        """Each batch's images and smoothed pseudo masks flipped, padded and cropped together."""
        for batch in batches:
            masks = self.smoother(batch.indexes.cpu()).to(self.trainer.device) if self.parse else None
            # On the device: the padded (B, l, H + 20, W + 20) masks are large at 384 x 128. The random
            # draws come from the CPU generator either way.
            images, masks = flip_pad_crop(batch.images, masks, generator=self._generator)
            yield Batch(images, batch.targets, batch.indexes, {"masks": masks})

    def forward(self, batch: Batch) -> PartOutput:
        return self.trainer.train_model(batch.images, parts=True)  # DDP averages the model's gradients

    def loss_terms(self, out: PartOutput, batch: Batch, epoch: int) -> dict[str, torch.Tensor]:
        """The terms of Eq. 16 that ``TrainConfig.losses`` enables, on this rank's batch."""
        t, cfg = self.trainer, self.trainer.config
        targets, indexes = batch.targets, batch.indexes
        streams = torch.cat([out.global_[:, None], out.parts], dim=1).float()
        terms: dict[str, torch.Tensor] = {}
        if "parsing" in cfg.losses:
            terms["parsing"] = parsing_loss(out.part_logits.float(), batch.extras["masks"])
        if "diversity" in cfg.losses:
            terms["diversity"] = diversity_loss(out.part_logits.float())
        if "wnce" in cfg.losses:
            terms["wnce"] = t.memory.loss(streams, targets, indexes=indexes)  # Eq. 8 weights within this batch
        if "sep" in cfg.losses:
            terms["sep"] = t.memory.separation_loss(streams, targets)
        if "id" in cfg.losses:
            alpha = self.features_.difficulty[indexes.cpu()].to(t.device)
            logits = self.classifier(streams)  # (B, 1 + l, K)
            part_alpha = alpha if epoch >= cfg.aals_start_epoch else torch.full_like(alpha, LABEL_SMOOTHING_ALPHA)
            part_terms = [agreement_label_smoothing_loss(logits[:, k + 1], targets, part_alpha[:, k])
                          for k in range(cfg.num_parts)]
            terms["id"] = (part_guided_refinement_loss(logits[:, 0], logits[:, 1:], targets, alpha, beta=cfg.beta)
                           + torch.stack(part_terms).mean())
        if "triplet" in cfg.losses:
            terms["triplet"] = soft_triplet_loss(out.global_bn.float(), targets)  # PPLR: before normalisation
        return terms

    def memory_features(self, out: PartOutput) -> torch.Tensor | None:
        """The global and part streams ``(B, 1 + l, D)``; no update when neither ``wnce`` nor ``sep`` is on."""
        if not {"wnce", "sep"} & set(self.trainer.config.losses):
            return None
        return torch.cat([out.global_[:, None], out.parts], dim=1).detach().float()

    def before_step(self) -> None:
        if self.classifier is not None:
            average_gradients(self.classifier.parameters())  # DDP averages the model's, this the classifier's

    # ----------------------------------------------------------------------------- records and state
    def epoch_metrics(self, loss_terms: dict[str, float]) -> dict[str, Any]:
        """Mean loss terms, mean difficulty and (SynthMarket) the parsing mIoU of pseudo and predicted masks."""
        metrics: dict[str, Any] = {f"loss_{name}": value for name, value in loss_terms.items()}
        metrics["mean_alpha"] = float(self.features_.difficulty.mean())
        if self.gt_masks is not None:
            for name, masks in (("pseudo", self.features_.pseudo_masks), ("predicted", self.features_.predicted_masks)):
                score = parsing_iou(masks.long(), self.gt_masks, num_parts=self.trainer.config.num_parts)
                metrics[f"{name}_miou"] = float(score.miou)
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {"mask_smoother": self.smoother.state_dict()} if self.smoother is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "mask_smoother" in state:
            cfg = self.trainer.config
            masks = state["mask_smoother"]["masks"]
            self.smoother = MaskSmoother(masks.shape[0], masks.shape[1], tuple(masks.shape[-2:]),
                                         gamma=cfg.gamma, gamma_epochs=cfg.gamma_epochs)
            self.smoother.load_state_dict(state["mask_smoother"])
