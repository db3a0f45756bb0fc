"""Parsing quality against ground-truth part masks (SynthMarket's), which no real re-ID dataset has."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from reidlab.data.synthmarket import PART_NAMES
from reidlab.parsing.losses import diversity_loss


class ParsingScore(NamedTuple):
    """How a parsing matches ground-truth regions (:func:`parsing_iou`).

    Attributes:
        iou: IoU over the whole set between every part and every region ``(l, R)``.
        matching: the one-to-one ``(part, region)`` index pairs chosen by the Hungarian algorithm.
        per_part: ``"part0" ... "background"`` -> IoU with its matched region, e.g.
            ``{"part0": 0.61, ...}``; ``matching`` says which region.
        miou: mean IoU of the matched pairs.
    """

    iou: np.ndarray
    matching: list[tuple[int, int]]
    per_part: dict[str, float]
    miou: float


def part_names(num_parts: int) -> tuple[str, ...]:
    """Names of the ``l`` parsed parts: ``("part0", ..., "part{l-2}", "background")``."""
    return tuple(f"part{k}" for k in range(num_parts - 1)) + ("background",)


def parsing_iou(
    pred: Tensor | np.ndarray,
    gt: Tensor | np.ndarray,
    *,
    num_parts: int,
    region_names: Sequence[str] = PART_NAMES,
) -> ParsingScore:
    """IoU of a parsing against ground-truth regions, parts matched to regions one to one.

    Unsupervised parts have no names, so each part is matched to one region by the Hungarian algorithm
    (``scipy.optimize.linear_sum_assignment``) maximising the summed IoU; the IoU of a pair is counted
    over the whole set (intersection and union summed over all images). With more regions than parts
    (SynthMarket: 6 regions, SCWM: 4 parts) the least matched regions stay unmatched; the background
    part is matched like any other.

    Args:
        pred: predicted labels ``(N, h, w)`` in ``0..l-1``; upsampled (nearest) to the ground-truth size.
        gt: ground-truth labels ``(N, H, W)`` in ``0..R-1``, e.g. from :func:`load_part_masks`.
        num_parts: ``l``.
        region_names: names of the ``R`` ground-truth regions (SynthMarket's
            :data:`reidlab.data.synthmarket.PART_NAMES`).

    Returns:
        :class:`ParsingScore`.
    """
    pred = torch.as_tensor(pred).long().cpu()
    gt = torch.as_tensor(gt).long().cpu()
    if pred.dim() != 3 or gt.dim() != 3 or len(pred) != len(gt):
        raise ValueError(f"pred (N, h, w) and gt (N, H, W) must have the same N, got {tuple(pred.shape)} "
                         f"and {tuple(gt.shape)}")
    num_regions = len(region_names)
    if pred.numel() and (pred.min() < 0 or pred.max() >= num_parts):
        raise ValueError(f"pred labels must be in 0..{num_parts - 1}, got {pred.min()}..{pred.max()}")
    if gt.numel() and (gt.min() < 0 or gt.max() >= num_regions):
        raise ValueError(f"gt labels must be in 0..{num_regions - 1}, got {gt.min()}..{gt.max()}")
    if pred.shape[1:] != gt.shape[1:]:
        pred = F.interpolate(pred[:, None].float(), size=tuple(gt.shape[1:]), mode="nearest")[:, 0].long()
    joint = torch.bincount((pred * num_regions + gt).flatten(), minlength=num_parts * num_regions)
    intersection = joint.view(num_parts, num_regions).double().numpy()
    union = intersection.sum(1, keepdims=True) + intersection.sum(0, keepdims=True) - intersection
    iou = np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)
    parts, regions = linear_sum_assignment(iou, maximize=True)
    matching = [(int(k), int(r)) for k, r in zip(parts, regions)]
    names = part_names(num_parts)
    per_part = {names[k]: float(iou[k, r]) for k, r in matching}
    return ParsingScore(iou, matching, per_part, float(np.mean([iou[k, r] for k, r in matching])))


def load_part_masks(records: Sequence, size: tuple[int, int] | None = None) -> Tensor:
    """Ground-truth part masks of ``records`` as labels ``(N, H, W)`` int64.

    Only SynthMarket has them (``Record.mask_path``; labels as in
    :data:`reidlab.data.synthmarket.PART_NAMES`).

    Args:
        records: :class:`reidlab.data.Record` items with a ``mask_path``.
        size: ``(H, W)`` to resize to (nearest neighbour); ``None`` keeps the files' size.
    """
    from PIL import Image

    masks = []
    for record in records:
        if getattr(record, "mask_path", None) is None:
            raise ValueError(f"record {record.path!r} has no mask_path: only SynthMarket has ground-truth part "
                             "masks (load it with reidlab.data.load_dataset('synthmarket', root))")
        with Image.open(record.mask_path) as image:
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.NEAREST)
            masks.append(np.asarray(image, dtype=np.int64))
    if not masks:
        raise ValueError("no records to load masks for: the record list is empty")
    shapes = {m.shape for m in masks}
    if len(shapes) > 1:
        raise ValueError(f"masks have different sizes {sorted(shapes)}: pass size=(H, W)")
    return torch.from_numpy(np.stack(masks))


def foreground_scores(pred: Tensor | np.ndarray, gt: Tensor | np.ndarray, *, num_parts: int) -> tuple[float, float]:
    """Recall and precision of the person's pixels by a parsing's foreground (every part but the background).

    Args:
        pred: labels ``(N, h, w)`` in ``0..l-1``, the background last; upsampled (nearest) to ``gt``'s size.
        gt: ground-truth labels ``(N, H, W)``, 0 = background (occluders included).
        num_parts: ``l``.

    Returns:
        ``(recall, precision)``: the share of person pixels in the foreground, and of foreground pixels on
        the person.
    """
    pred, gt = torch.as_tensor(pred), torch.as_tensor(gt)
    foreground = F.interpolate(pred[:, None].float(), size=tuple(gt.shape[-2:]), mode="nearest")[:, 0] < num_parts - 1
    person = gt > 0
    hits = (foreground & person).sum().item()
    return hits / max(person.sum().item(), 1), hits / max(foreground.sum().item(), 1)


def parts_in_pieces(pred: Tensor | np.ndarray, *, num_parts: int) -> float:
    """Share of the (image, foreground part) pairs whose part is split into several 4-connected pieces.

    A part that is one body region stays in one piece; the space correction of SCWM Eq. 2 exists to keep
    parts from scattering over the map. ``pred`` (N, h, w) holds labels in ``0..l-1``, the background last.
    """
    split = total = 0
    for labels in torch.as_tensor(pred).cpu().numpy():
        for k in range(num_parts - 1):
            pieces = ndimage.label(labels == k)[1]
            total += pieces > 0
            split += pieces > 1
    return split / max(total, 1)


def part_map_measures(probs: Tensor, gt: Tensor | np.ndarray) -> dict[str, float]:
    """How a part head's probability maps ``(N, l, h, w)`` parse: mIoU of their arg-max against ``gt``
    (N, H, W), parts used per image, mean cosine similarity of different part maps, and Eq. 5's overlap.

    SCWM Figure 4's degradation (all parts collapsing onto the same region) shows as fewer parts used, a
    map similarity towards 1 and a growing overlap.
    """
    num_parts = probs.shape[1]
    maps = F.normalize(probs.flatten(2), dim=2)
    similarity = maps @ maps.transpose(1, 2)  # (N, l, l) cosine similarity of the part maps
    pairs = torch.triu_indices(num_parts, num_parts, offset=1)
    winners = probs.argmax(1)
    used = torch.stack([torch.bincount(w.flatten(), minlength=num_parts) > 0 for w in winners]).sum(1)
    return {"miou": parsing_iou(winners, gt, num_parts=num_parts).miou, "parts_used": used.float().mean().item(),
            "map_similarity": similarity[:, pairs[0], pairs[1]].mean().item(),
            "overlap": diversity_loss(probs.clamp(min=1e-12).log()).item()}  # softmax(log P) = P: Eq. 5 itself
