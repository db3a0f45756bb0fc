"""Feature extraction over a list of records (docs/methods.md, section 1 step 1 and section 5).

Taught in ``notebooks/00_data_and_evaluation.ipynb``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from reidlab.data.datasets import Record
from reidlab.data.loaders import build_test_loader
from reidlab.utils import resolve_device


def model_outputs(
    model: torch.nn.Module,
    records: Sequence[Record],
    *,
    height: int,
    width: int,
    forward: Callable[[torch.Tensor], Any] | None = None,
    batch_size: int = 128,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    cache: bool | dict = False,
    progress: bool = True,
    desc: str = "features",
) -> Iterator[Any]:
    """``forward(images)`` of every batch of ``records`` with the test transform, in the records' order.

    The one extraction loop of reidlab (:func:`extract_features`, ``reidlab.training.parts.extract_part_features``):
    the model runs in eval mode without gradients, under float16 autocast on CUDA, and gets its
    train/eval mode back when the iteration ends.

    Args:
        model: the model; moved to ``device``.
        records: the images.
        height: input height of the test transform.
        width: input width of the test transform.
        forward: what to call on each batch ``(B, 3, H, W)``; ``model`` itself when None.
        batch_size: images per forward pass.
        num_workers: DataLoader worker processes.
        device: where to run; ``None`` picks CUDA when available.
        cache: keep decoded images in memory (see :class:`reidlab.data.ImageDataset`).
        progress: show a progress bar.
        desc: the progress bar's label.
    """
    device = resolve_device(device)
    forward = forward or model
    loader = build_test_loader(
        records, height=height, width=width, batch_size=batch_size, num_workers=num_workers, cache=cache
    )
    was_training = model.training
    model.eval().to(device)
    try:
        for images, *_ in tqdm(loader, desc=desc, disable=not progress, leave=False):
            images = images.to(device, non_blocking=True)
            with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.float16,
                                                 enabled=device.type == "cuda"):
                out = forward(images)
            yield out  # outside the contexts: they are thread-wide and must not reach the caller's code
    finally:
        model.train(was_training)


def extract_features(
    model: torch.nn.Module,
    records: Sequence[Record],
    *,
    height: int,
    width: int,
    batch_size: int = 128,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    cache: bool | dict = False,
    progress: bool = True,
) -> torch.Tensor:
    """Embed every record with ``model`` in eval mode, in the records' order.

    The model's output is the L2-normalised BN-neck feature (docs/methods.md, section 5), so the returned rows have
    unit norm. On a CUDA device the forward pass runs under float16 autocast; features come back as
    float32 on the CPU either way. The model's train/eval mode is restored afterwards.

    Args:
        model: maps images ``(B, 3, H, W)`` to features ``(B, D)``.
        records: the images, e.g. ``dataset.train``.
        height: input height of the test transform.
        width: input width of the test transform.
        batch_size: images per forward pass.
        num_workers: DataLoader worker processes.
        device: where to run; ``None`` picks CUDA when available.
        cache: keep decoded images in memory: ``True``, or a dict shared with other loaders over the
            same records (see :class:`reidlab.data.ImageDataset`).
        progress: show a progress bar.

    Returns:
        features ``(N, D)`` float32 on the CPU.
    """
    chunks = [
        out.float().cpu()
        for out in model_outputs(model, records, height=height, width=width, batch_size=batch_size,
                                 num_workers=num_workers, device=device, cache=cache, progress=progress)
    ]
    if not chunks:
        raise ValueError("no records to extract features from: the record list is empty")
    return torch.cat(chunks)
