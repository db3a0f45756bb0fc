"""One optimisation step, shared by every trainer (unsupervised, part-based, supervised)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["train_step"]


def train_step(
    forward: Callable[[], Any],
    loss_terms: Callable[[Any], dict[str, torch.Tensor]],
    *,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    device: torch.device,
    before_step: Callable[[], None] | None = None,
    after_step: Callable[[Any], None] | None = None,
) -> tuple[float, dict[str, float]]:
    """Forward (under autocast on CUDA), loss, backward, optimiser step, then the explicit memory update.

    The order every method of the family relies on: the memory is updated with the batch features only
    after ``optimizer.step()`` and never through autograd (the research code hides it in a ``backward``).

    Args:
        forward: runs the model on the batch; mixed precision (float16) on CUDA, full precision on the CPU.
        loss_terms: the model's output -> named scalar losses, computed in full precision; their sum is
            minimised.
        optimizer: steps the parameters.
        scaler: the gradient scaler (enabled on CUDA only).
        device: the training device.
        before_step: called after ``backward``, before the step (e.g. averaging gradients of modules that
            DistributedDataParallel does not wrap).
        after_step: called with the model's output after the step (the memory update).

    Returns:
        The total loss and each term's value.
    """
    with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=device.type == "cuda"):
        out = forward()
    terms = loss_terms(out)
    loss = torch.stack(list(terms.values())).sum()
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if before_step is not None:
        before_step()
    scaler.step(optimizer)
    scaler.update()
    if after_step is not None:
        after_step(out)
    return loss.item(), {name: value.item() for name, value in terms.items()}
