"""SCWM's parsing losses: cross-entropy against the pseudo masks (Eq. 4) and the diversity loss (Eq. 5)."""

from __future__ import annotations

import torch
from torch import Tensor


def parsing_loss(part_logits: Tensor, target: Tensor) -> Tensor:
    """``-sum_k M~_k log P_k`` averaged over positions and images (SCWM Eq. 4).

    Args:
        part_logits: part-head logits ``(B, l, h, w)`` (``log_softmax`` gives ``log P`` stably).
        target: smoothed masks ``(B, l, h, w)``, summing to 1 over ``l``.
    """
    if part_logits.shape != target.shape:
        raise ValueError(f"part_logits and target must have the same (B, l, h, w) shape, got "
                         f"{tuple(part_logits.shape)} and {tuple(target.shape)}")
    return -(target * part_logits.log_softmax(dim=1)).sum(dim=1).mean()


def diversity_loss(part_logits: Tensor) -> Tensor:
    """``2 / (l (l - 1)) sum_{i<j} sum_{x,y} P_i P_j`` per position, averaged over images (SCWM Eq. 5).

    The overlap of every pair of predicted part maps. reidlab's choice: the sum over positions of Eq. 5
    is divided by ``h * w``, the same reduction as :func:`parsing_loss` (Eq. 4, a mean over positions).
    Eq. 5 as written is ``h * w`` times larger (128 on LabNet's 16 x 8 maps of 128 x 64 inputs, 192 at
    384 x 128) and then dominates Eq. 4: measured on those 16 x 8 maps, the part head collapsed to one part
    everywhere (no overlap at all) instead of following the pseudo masks. With equal reductions the cheapest way to lower both terms
    is one confident part per position that agrees with the pseudo mask. At most ``1 / l^2`` per
    position, reached by uniform ``P``; 0 for one-hot maps.

    Args:
        part_logits: part-head logits ``(B, l, h, w)``.
    """
    num_parts = part_logits.shape[1]
    if num_parts < 2:
        raise ValueError(f"part_logits must have at least 2 parts, got {num_parts}")
    probs = part_logits.softmax(dim=1).flatten(2)  # (B, l, hw)
    overlap = probs @ probs.transpose(1, 2) / probs.shape[-1]  # (B, l, l): mean over positions of P_i P_j
    upper = torch.triu(torch.ones(num_parts, num_parts, dtype=torch.bool, device=probs.device), diagonal=1)
    return overlap[:, upper].sum(dim=1).mean() * 2 / (num_parts * (num_parts - 1))
