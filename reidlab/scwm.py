"""The part-based training loop: SCWM (SPEC 4.4) and its PPLR stripe baseline.

One epoch of SCWM (Hong et al., "Spatial Cascaded Clustering and Weighted Memory for Unsupervised Person
Re-identification", section 3.1 and Figure 2), as :class:`PartTrainer` runs it:

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
comes before the flip and crop here (after them in SPEC 5's order; the erased box may be shifted or
partly cropped).

reidlab's choices where PPLR's code differs: the identity classifiers are cosine classifiers rebuilt
(with fresh Adam moments) every epoch (:class:`reidlab.losses.IdentityClassifier`; PPLR overwrites the
rows of one linear classifier and keeps its Adam state). The soft triplet loss of the baseline sees the
global BN feature before normalisation, as PPLR's ``SoftTripletLoss`` does (``PartOutput.global_bn``).

Under ``torchrun`` (:mod:`reidlab.distributed`) it runs as the base trainer does: each rank extracts a shard
of the clustering stage (features, pseudo and predicted masks) and all gather it, so every rank computes
the same difficulties, smoothed masks and memory; each trains through DistributedDataParallel on its own
``batch_size / world_size`` images (its own sampler, flips and crops), the identity classifier's gradients
are averaged over the ranks as DDP averages the model's, and the memory is updated with every rank's batch.

Taught in ``notebooks/04_part_parsing.ipynb`` and ``notebooks/05_weighted_memory.ipynb``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from reidlab.cluster.agreement import knn_agreement
from reidlab.data.loaders import build_train_loader
from reidlab.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from reidlab.distributed import all_gather_tensors, gather_shards, is_distributed, rank_seed, shard_bounds
from reidlab.engine import Trainer
from reidlab.features import model_outputs
from reidlab.losses import (
    IdentityClassifier,
    agreement_label_smoothing_loss,
    part_guided_refinement_loss,
    soft_triplet_loss,
)
from reidlab.memory import WeightedMemory
from reidlab.parts import (
    DEFAULT_ETA,
    MaskSmoother,
    PartReIDModel,
    cascaded_parsing,
    diversity_loss,
    load_part_masks,
    parsing_iou,
    parsing_loss,
)

logger = logging.getLogger(__name__)

LABEL_SMOOTHING_ALPHA = 0.9  # PPLR's CrossEntropyLabelSmooth (epsilon 0.1) before --aals-epoch


@dataclass
class PartFeatures:
    """What the clustering stage extracts from the training set.

    Attributes:
        global_: global features ``(N, D)``, unit norm.
        parts: part features ``(N, l, D)``, unit norm per part.
        pseudo_masks: cascaded-clustering labels ``(N, h, w)`` (``None`` for stripes).
        predicted_masks: arg-max of the part head ``(N, h, w)`` (``None`` for stripes).
    """

    global_: torch.Tensor
    parts: torch.Tensor
    pseudo_masks: torch.Tensor | None
    predicted_masks: torch.Tensor | None


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
) -> PartFeatures:
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
    return PartFeatures(
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
    """SPEC 5's flip and pad-10-random-crop, applied to images and their soft part masks alike.

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
    :class:`PartTrainer` rebuilds each epoch: with a loss that is a mean over each rank's batch, every
    rank then steps with the gradient of the mean over the global batch and the copies stay identical.
    Parameters without a gradient are skipped (every rank must have the same ones). A no-op in one process.
    """
    if not is_distributed():
        return
    for param in parameters:
        if param.grad is not None:
            param.grad.copy_(all_gather_tensors(param.grad[None]).mean(dim=0))


@dataclass
class PartTrainer(Trainer):
    """:class:`reidlab.engine.Trainer` for the part-based methods ``"scwm"`` and ``"pplr_stripes"``.

    The model is a :class:`reidlab.parts.PartReIDModel` (``reidlab.engine.build_start_model`` makes
    one); evaluation uses its global feature, as SCWM and PPLR do. Beyond the base trainer's history
    entries each epoch records the mean of every loss term and, on SynthMarket (which has ground-truth
    part masks), the mIoU of the pseudo masks and of the part head's predictions.
    """

    part_based = True
    features_: PartFeatures | None = field(default=None, init=False)
    alpha_: torch.Tensor | None = field(default=None, init=False)
    smoother: MaskSmoother | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        super().__post_init__()  # checks the method first
        if not isinstance(self.model, PartReIDModel):
            raise ValueError(
                f"method {self.config.method!r} needs a reidlab.parts.PartReIDModel, got "
                f"{type(self.model).__name__}; build it with reidlab.engine.build_start_model(config, scale=...) "
                "or PartReIDModel.from_model(model, num_parts=..., part_source=...)"
            )
        if self.model.num_parts != self.config.num_parts or self.model.part_source != self.config.part_source:
            raise ValueError(
                f"the model has {self.model.num_parts} {self.model.part_source} parts but the config asks for "
                f"{self.config.num_parts} {self.config.part_source} parts"
            )
        self.parse = self.config.part_source == "parsing"
        self.loss_terms_: dict[str, float] = {}
        self.classifier: IdentityClassifier | None = None
        has_masks = all(r.mask_path is not None for r in self.dataset.train)
        self.gt_masks = (  # for the mIoU of epoch_metrics, which only rank 0's history record keeps
            load_part_masks(self.dataset.train, size=(self.config.height, self.config.width)).to(torch.uint8)
            if self.parse and has_masks and self.world.is_main else None
        )

    # ----------------------------------------------------------------------------- clustering stage
    def _features(self) -> torch.Tensor:
        """Global features ``(N, D)``; keeps all of :class:`PartFeatures` in ``features_``.

        Under torchrun each rank extracts (and parses) its shard of the training set and all gather them.
        """
        cfg = self.config
        n = len(self.dataset.train)
        start, stop = shard_bounds(n, self.world.rank, self.world.world_size)
        shard = extract_part_features(
            self.model, self.dataset.train[start:stop], height=cfg.height, width=cfg.width, parse=self.parse,
            num_parts=cfg.num_parts, foreground_correction=cfg.foreground_correction,
            space_correction=cfg.space_correction, eta=cfg.eta, num_workers=cfg.num_workers,
            device=self.device, cache=self.extraction_cache, seed=self.seed, progress=self.progress,
        )
        self.features_ = PartFeatures(*(
            None if part is None else gather_shards(part, n)
            for part in (shard.global_, shard.parts, shard.pseudo_masks, shard.predicted_masks)
        ))
        return self.features_.global_

    def build_memory(self, features: torch.Tensor, labels: np.ndarray, epoch: int) -> np.ndarray:
        """Difficulties (Eq. 7), smoothed masks (Eq. 3), weighted memory and classifiers from ``labels``."""
        cfg = self.config
        feats = self.features_
        self.alpha_ = knn_agreement(feats.global_, feats.parts, k=cfg.agreement_k)
        if self.parse:
            if self.smoother is None:
                self.smoother = MaskSmoother(len(labels), cfg.num_parts, tuple(feats.pseudo_masks.shape[-2:]),
                                             gamma=cfg.gamma, gamma_epochs=cfg.gamma_epochs)
            self.smoother.update(torch.arange(len(labels)), feats.pseudo_masks.long(), epoch)
        streams = torch.cat([feats.global_[:, None], feats.parts], dim=1)
        self.memory = WeightedMemory.from_labels(
            streams, labels, momentum=cfg.momentum, temperature=cfg.temperature, update=cfg.memory_update
        ).to(self.device)
        if "id" in cfg.losses:  # PPLR: classifiers start from the normalised centroids every epoch
            self.classifier = IdentityClassifier(self.memory.centroids.clone(), temperature=cfg.temperature)
            self.classifier.to(self.device)
        return labels

    # ----------------------------------------------------------------------------- training stage
    def _loss_terms(self, out, targets: torch.Tensor, indexes: torch.Tensor, masks: torch.Tensor | None,
                    weights: torch.Tensor, epoch: int) -> dict[str, torch.Tensor]:
        cfg = self.config
        streams = torch.cat([out.global_[:, None], out.parts], dim=1).float()
        terms: dict[str, torch.Tensor] = {}
        if "parsing" in cfg.losses:
            terms["parsing"] = parsing_loss(out.part_logits.float(), masks)
        if "diversity" in cfg.losses:
            terms["diversity"] = diversity_loss(out.part_logits.float())
        if "wnce" in cfg.losses:
            terms["wnce"] = self.memory.loss(streams, targets, weights=weights)
        if "sep" in cfg.losses:
            terms["sep"] = self.memory.separation_loss(streams, targets)
        if "id" in cfg.losses:
            alpha = self.alpha_[indexes.cpu()].to(self.device)
            logits = self.classifier(streams)  # (B, 1 + l, K)
            part_alpha = alpha if epoch >= cfg.aals_start_epoch else torch.full_like(alpha, LABEL_SMOOTHING_ALPHA)
            part_terms = [agreement_label_smoothing_loss(logits[:, k + 1], targets, part_alpha[:, k])
                          for k in range(cfg.num_parts)]
            terms["id"] = (part_guided_refinement_loss(logits[:, 0], logits[:, 1:], targets, alpha, beta=cfg.beta)
                           + torch.stack(part_terms).mean())
        if "triplet" in cfg.losses:
            terms["triplet"] = soft_triplet_loss(out.global_bn.float(), targets)  # PPLR: before normalisation
        return terms

    def train_epoch(self, epoch: int, labels: np.ndarray) -> float:
        """``iters`` iterations of Eq. 16's enabled terms, each followed by the memory update (Eq. 9)."""
        cfg = self.config
        seed = rank_seed(self.seed * 1000 + epoch, self.world.rank)  # rank 0 keeps the single-process seed
        loader = build_train_loader(
            self.dataset.train, labels.tolist(), height=cfg.height, width=cfg.width,
            batch_size=cfg.batch_size // self.world.world_size, num_instances=cfg.num_instances, iters=cfg.iters,
            num_workers=cfg.num_workers, seed=seed, cache=self.image_cache,
            erasing_p=cfg.erasing_p, flip_p=0.0, padding=0,  # flip and crop below, with the masks
        )
        generator = torch.Generator().manual_seed(seed)
        classifier_group = None
        if self.classifier is not None:  # a fresh group each epoch, at the current learning rate
            group = self.optimizer.param_groups[0]
            self.optimizer.add_param_group({"params": list(self.classifier.parameters()), "lr": group["lr"],
                                            "weight_decay": group["weight_decay"]})
            classifier_group = self.optimizer.param_groups[-1]
        update_memory = bool({"wnce", "sep"} & set(cfg.losses))
        self.train_model.train()
        use_amp = self.device.type == "cuda"
        sums: dict[str, float] = {}
        total = 0.0
        bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not self.progress)
        try:
            for images, targets, _, indexes in bar:
                masks = self.smoother(indexes).to(self.device) if self.parse else None
                images = images.to(self.device, non_blocking=True)
                targets = targets.to(self.device)
                # On the device: the padded (B, l, H + 20, W + 20) masks are large at 384 x 128. The random
                # draws come from the CPU generator either way.
                images, masks = flip_pad_crop(images, masks, generator=generator)
                raw = WeightedMemory.raw_weights(self.alpha_[indexes]).to(self.device)
                weights = self.memory.class_weights(raw, targets)  # Eq. 8 within this rank's batch
                with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=use_amp):
                    out = self.train_model(images, parts=True)  # DDP averages the model's gradients
                terms = self._loss_terms(out, targets, indexes, masks, weights, epoch)
                loss = torch.stack(list(terms.values())).sum()
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                if self.classifier is not None:
                    average_gradients(self.classifier.parameters())  # ... and here the classifier's
                self.scaler.step(self.optimizer)
                self.scaler.update()
                if update_memory:  # after the step (STYLE)
                    # Every rank's batch in rank order, with Eq. 8's weights over all of it: the memories
                    # stay identical (one process: its own batch and the weights above).
                    streams = torch.cat([out.global_[:, None], out.parts], dim=1).detach().float()
                    streams, targets, raw = (all_gather_tensors(t) for t in (streams, targets, raw))
                    self.memory.update(streams, targets, weights=self.memory.class_weights(raw, targets))
                for name, value in terms.items():
                    sums[name] = sums.get(name, 0.0) + value.item()
                total += loss.item()
                bar.set_postfix(loss=f"{loss.item():.3f}")
        finally:
            if classifier_group is not None:  # the classifier is rebuilt next epoch: drop it from Adam
                self.optimizer.param_groups.remove(classifier_group)
                for param in classifier_group["params"]:
                    self.optimizer.state.pop(param, None)
        # Means over the iterations and the ranks (every rank computes the same terms).
        means = torch.tensor([[value / cfg.iters for value in (*sums.values(), total)]], dtype=torch.float64)
        means = all_gather_tensors(means).mean(dim=0).tolist()
        self.loss_terms_ = {f"loss_{name}": value for name, value in zip(sums, means)}
        return means[-1]

    # ----------------------------------------------------------------------------- records and state
    def epoch_metrics(self) -> dict[str, Any]:
        """Mean loss terms, mean difficulty and (SynthMarket) the parsing mIoU of pseudo and predicted masks."""
        metrics: dict[str, Any] = dict(self.loss_terms_)
        metrics["mean_alpha"] = float(self.alpha_.mean())
        if self.gt_masks is not None:
            for name, masks in (("pseudo", self.features_.pseudo_masks), ("predicted", self.features_.predicted_masks)):
                score = parsing_iou(masks.long(), self.gt_masks, num_parts=self.config.num_parts)
                metrics[f"{name}_miou"] = float(score.miou)
        return metrics

    def leaves_parameters_unused(self) -> bool:
        """Whether the enabled loss terms leave a module of the model without a gradient (:meth:`_loss_terms`).

        The part necks get gradients from ``wnce``, ``sep`` and ``id``; the part head from those (through
        the part features) and from ``parsing`` and ``diversity``; the global neck from ``wnce``, ``sep``,
        ``id`` and ``triplet``. All of them are used in Eq. 16 and in the PPLR baseline, not in every
        ablation (e.g. ``losses=("parsing", "diversity")``): DistributedDataParallel must then be told.
        """
        losses = set(self.config.losses)
        parts = bool({"wnce", "sep", "id"} & losses)
        head = parts or bool({"parsing", "diversity"} & losses) or self.config.part_source == "stripes"
        global_ = bool({"wnce", "sep", "id", "triplet"} & losses)
        return not (parts and head and global_)

    def extra_state(self) -> dict[str, Any]:
        return {"mask_smoother": self.smoother.state_dict()} if self.smoother is not None else {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "mask_smoother" in state:
            masks = state["mask_smoother"]["masks"]
            self.smoother = MaskSmoother(masks.shape[0], masks.shape[1], tuple(masks.shape[-2:]),
                                         gamma=self.config.gamma, gamma_epochs=self.config.gamma_epochs)
            self.smoother.load_state_dict(state["mask_smoother"])
