"""Part features for SCWM and its PPLR baseline, and the model that gives them.

SCWM (Hong et al., section 3.1) adds a part head ``G`` to the backbone: a 3x3 convolution and a softmax over
``l`` channels, the background being the last one; the part features are ``f^pk = GAP(P_k * F)`` (SCWM Eq. 1,
:class:`PartHead`, :func:`masked_part_features`). PPLR (Cho et al., CVPR 2022), SCWM's baseline, pools three
equal horizontal stripes instead (:func:`stripe_features`). :class:`PartReIDModel` gives either kind of part
features next to the global embedding. The pseudo masks that supervise the part head come from
:mod:`reidlab.parsing`.

Taught in ``notebooks/04_part_parsing.ipynb`` and ``notebooks/05_weighted_memory.ipynb``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reidlab.models.reid import BNNeck, GeneralizedMeanPooling, ReIDModel

PART_SOURCES = ("parsing", "stripes")
NUM_STRIPES = 3  # PPLR's three horizontal stripes


class PartHead(nn.Module):
    """SCWM's part classifier ``G``: a 3x3 convolution from ``C`` channels to ``l`` part logits (Eq. 1).

    The softmax over dim 1 of the logits gives the part probabilities ``P``; channel ``l - 1`` is the
    background.

    Args:
        in_channels: channels ``C`` of the feature map.
        num_parts: ``l``, the background included.
    """

    def __init__(self, in_channels: int, num_parts: int) -> None:
        super().__init__()
        if num_parts < 2:
            raise ValueError(f"num_parts must be >= 2 (the background is one part), got {num_parts}")
        self.conv = nn.Conv2d(in_channels, num_parts, kernel_size=3, padding=1, bias=True)

    def forward(self, fmap: Tensor) -> Tensor:
        """Part logits ``(B, l, h, w)`` of ``fmap (B, C, h, w)``."""
        return self.conv(fmap)


def masked_part_features(fmap: Tensor, probs: Tensor) -> Tensor:
    """``f^pk = GAP(P_k * F)`` for every part (SCWM Eq. 1).

    GAP is the mean over all ``h * w`` positions, as Eq. 1 writes it (not a mean weighted by the mask),
    so a part that covers little of the image has a small feature before its BN neck.

    Args:
        fmap: feature map ``(B, C, h, w)``.
        probs: part probabilities ``(B, l, h, w)``.

    Returns:
        part features ``(B, l, C)``.
    """
    if probs.shape[0] != fmap.shape[0] or probs.shape[2:] != fmap.shape[2:]:
        raise ValueError(f"probs (B, l, h, w) must match fmap (B, C, h, w), got {tuple(probs.shape)} "
                         f"and {tuple(fmap.shape)}")
    height, width = fmap.shape[2:]
    return torch.einsum("blhw,bchw->blc", probs, fmap) / (height * width)


def stripe_features(fmap: Tensor, num_stripes: int = NUM_STRIPES) -> Tensor:
    """PPLR's part features: the average of ``num_stripes`` horizontal stripes of the feature map.

    When ``h`` is not a multiple of ``num_stripes`` the stripes are those of adaptive average pooling:
    stripe ``i`` covers rows ``floor(i h / S)`` to ``ceil((i + 1) h / S)`` (neighbours may share a row).

    Args:
        fmap: feature map ``(B, C, h, w)``.
        num_stripes: ``S`` (PPLR: 3), at most ``h``.

    Returns:
        stripe features ``(B, S, C)``, top stripe first.
    """
    if not 1 <= num_stripes <= fmap.shape[2]:
        raise ValueError(f"num_stripes must be in 1..{fmap.shape[2]} (the map height), got {num_stripes}")
    return F.adaptive_avg_pool2d(fmap, (num_stripes, 1)).squeeze(3).transpose(1, 2)


class PartOutput(NamedTuple):
    """What :meth:`PartReIDModel.forward_parts` returns.

    Attributes:
        global_: unit-norm global embeddings ``(B, C)`` (the model's ``forward``).
        parts: unit-norm part embeddings ``(B, l, C)``, one BN neck per part.
        part_logits: part-head logits ``(B, l, h, w)``, or None for stripes.
        fmap: backbone feature map ``(B, C, h, w)``.
        global_bn: the global BN-neck output before L2 normalisation ``(B, C)`` (what PPLR's soft
            triplet loss sees).
    """

    global_: Tensor
    parts: Tensor
    part_logits: Tensor | None
    fmap: Tensor
    global_bn: Tensor


class PartReIDModel(ReIDModel):
    """A :class:`reidlab.models.ReIDModel` that also gives part embeddings (SCWM Eq. 1 or PPLR stripes).

    ``forward(images)`` is unchanged, the global unit-norm embedding, because SCWM and PPLR evaluate with
    the global feature. :meth:`forward_parts` (or ``forward(images, parts=True)``) adds one unit-norm
    embedding per part, each through its own BN neck: SCWM's parsed parts (``part_source="parsing"``, a
    :class:`PartHead` and :func:`masked_part_features`) or PPLR's horizontal stripes (``"stripes"``,
    :func:`stripe_features`).

    Args:
        backbone: maps images ``(B, 3, H, W)`` to ``(B, C, h, w)``, with ``out_channels``.
        pooling: ``"avg"`` or ``"gem"``, the global pooling.
        num_parts: for ``"parsing"`` the number ``l`` of parsed parts, background included (SCWM: 4 on
            Market-1501, 7 on MSMT17); for ``"stripes"`` the number of stripes (PPLR: 3). ``None`` takes
            those defaults (4 and 3).
        part_source: ``"parsing"`` or ``"stripes"``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        pooling: str = "avg",
        num_parts: int | None = None,
        part_source: str = "parsing",
    ) -> None:
        super().__init__(backbone, pooling=pooling)
        if part_source not in PART_SOURCES:
            raise ValueError(f"part_source must be one of {PART_SOURCES}, got {part_source!r}")
        if num_parts is None:
            num_parts = 4 if part_source == "parsing" else NUM_STRIPES
        if num_parts < (2 if part_source == "parsing" else 1):
            raise ValueError(f"num_parts must be >= 2 for parsing (background included) and >= 1 for stripes, "
                             f"got {num_parts}")
        self.part_source = part_source
        self.part_head = PartHead(self.feature_dim, num_parts) if part_source == "parsing" else None
        self.part_necks = nn.ModuleList(BNNeck(self.feature_dim) for _ in range(num_parts))

    @property
    def num_parts(self) -> int:
        """Number of part embeddings ``l`` (the background included for parsing)."""
        return len(self.part_necks)

    def forward(self, images: Tensor, *, parts: bool = False) -> Tensor | PartOutput:
        """The global unit-norm embedding ``(B, C)`` of ``images (B, 3, H, W)``; with ``parts``, :meth:`forward_parts`.

        ``parts=True`` is how a training step goes through ``nn.parallel.DistributedDataParallel``, which
        synchronises the gradients of what its wrapped ``forward`` computes (:class:`reidlab.training.parts.PartStage`).
        """
        return self.forward_parts(images) if parts else super().forward(images)

    def part_features(self, fmap: Tensor) -> tuple[Tensor, Tensor | None]:
        """Pooled part features ``(B, l, C)`` (before the necks) and part logits ``(B, l, h, w)`` or None."""
        if self.part_head is None:
            return stripe_features(fmap, self.num_parts), None
        logits = self.part_head(fmap)
        return masked_part_features(fmap, logits.softmax(dim=1)), logits

    def forward_parts(self, images: Tensor) -> PartOutput:
        """Global and part embeddings of ``images (B, 3, H, W)``, with the part logits and the feature map."""
        fmap = self.forward_features(images)
        pooled, logits = self.part_features(fmap)
        parts = torch.stack([neck(pooled[:, k]) for k, neck in enumerate(self.part_necks)], dim=1)
        global_bn = self.neck.bn(self.pool(fmap))  # forward_head's steps, keeping the BN output
        return PartOutput(F.normalize(global_bn, dim=1), parts, logits, fmap, global_bn)

    @torch.no_grad()
    def part_probabilities(self, images: Tensor, *, batch_size: int = 128) -> Tensor:
        """The part head's probabilities ``(B, l, h, w)`` for ``images (B, 3, H, W)``, on the CPU.

        Runs in eval mode (and restores the mode), batch by batch on the model's device; draws no random
        numbers, so it can watch a training run from a callback.
        """
        was_training = self.training
        device = next(self.parameters()).device
        self.eval()
        try:
            logits = [self.forward_parts(x.to(device)).part_logits.float().cpu() for x in images.split(batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(logits).softmax(dim=1)

    @classmethod
    def from_model(
        cls, model: ReIDModel, *, num_parts: int | None = None, part_source: str = "parsing"
    ) -> PartReIDModel:
        """A part model that shares ``model``'s backbone, pooling and neck, with a fresh head and part necks.

        How a run starts from a trained :class:`ReIDModel` (e.g.
        :func:`reidlab.training.supervised.source_pretrained_model`): the shared modules are the same objects,
        not copies, so the new model's ``forward`` equals ``model``'s. The new modules are put on the
        device of ``model``'s parameters and in its train/eval mode.
        """
        pooling = "gem" if isinstance(model.pool, GeneralizedMeanPooling) else "avg"
        part_model = cls(model.backbone, pooling=pooling, num_parts=num_parts, part_source=part_source)
        part_model.pool = model.pool
        part_model.neck = model.neck
        device = next(model.parameters()).device
        return part_model.to(device).train(model.training)
