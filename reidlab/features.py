"""Feature extraction over a list of records (SPEC section 1 step 1 and section 5).

Taught in ``notebooks/00_data_and_evaluation.ipynb``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from reidlab.data.datasets import Record
from reidlab.data.loaders import build_test_loader
from reidlab.utils import resolve_device


@torch.no_grad()
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

    The model's output is the L2-normalised BN-neck feature (SPEC section 5), so the returned rows have
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
    device = resolve_device(device)
    loader = build_test_loader(
        records, height=height, width=width, batch_size=batch_size, num_workers=num_workers, cache=cache
    )
    was_training = model.training
    model.eval().to(device)
    chunks = []
    try:
        for images, *_ in tqdm(loader, desc="features", disable=not progress, leave=False):
            images = images.to(device, non_blocking=True)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=device.type == "cuda"):
                chunks.append(model(images).float().cpu())
    finally:
        model.train(was_training)
    if not chunks:
        raise ValueError("no records to extract features from: the record list is empty")
    return torch.cat(chunks)
