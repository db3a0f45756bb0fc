"""The supervised upper bound: the same backbone trained with ground-truth identities.

The papers report "w/ GT" rows (training with the true labels instead of pseudo-labels) as the ceiling
of the unsupervised methods. reidlab's version trains the embedding with a normalised-softmax
("cosine") classifier over the identities: one learnable unit-norm prototype per identity and logits
``x . w_y / tau`` with tau = 0.05, the temperature of every memory in SPEC section 4. It is a cluster
memory whose rows are learned by gradient instead of momentum, with the true labels.

It calibrates SynthMarket (``benchmarks/calibrate_synthmarket.py``): the untrained backbone must score
low and this model high, leaving room for the unsupervised methods in between.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from reidlab.data.datasets import Record
from reidlab.data.loaders import IterLoader, build_train_loader
from reidlab.utils import resolve_device, seed_everything


@dataclass
class SupervisedConfig:
    """Training settings of the supervised upper bound.

    The optimiser values are SPEC section 5's (Adam, lr 3.5e-4, weight decay 5e-4); the batch is smaller
    than the papers' 256 = 16 x 16 so that lab scale runs on two CPU cores.
    """

    epochs: int = 8
    iters: int = 60
    batch_size: int = 64  # P x K = 16 identities x 4 images
    num_instances: int = 4
    lr: float = 3.5e-4  # SPEC 5
    weight_decay: float = 5e-4  # SPEC 5
    temperature: float = 0.05  # SPEC 4: tau of every memory
    step_size: int = 0  # x0.1 every `step_size` epochs (SPEC 5 uses 20 at full scale); 0 = constant
    height: int = 128
    width: int = 64


def train_supervised(
    model: torch.nn.Module,
    records: Sequence[Record],
    config: SupervisedConfig | None = None,
    *,
    device: str | torch.device | None = None,
    seed: int = 0,
    cache: bool = True,
    progress: bool = True,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``model`` in place with the ground-truth identities of ``records``.

    Args:
        model: a :class:`reidlab.models.ReIDModel` (its output must be the unit-norm embedding).
        records: training records; their ``pid`` is the label.
        config: training settings; defaults to :class:`SupervisedConfig`.
        device: where to train; ``None`` picks CUDA when available.
        seed: seeds the sampler, the classifier initialisation and the augmentations.
        cache: keep decoded images in memory.
        progress: show progress bars.
        on_epoch: called as ``on_epoch(epoch, mean_loss)`` after every epoch.

    Returns:
        The mean loss of every epoch.
    """
    config = config or SupervisedConfig()
    device = resolve_device(device)
    seed_everything(seed)
    pids = np.array([r.pid for r in records])
    if len(pids) == 0:
        raise ValueError("no training records: the record list is empty")
    classes, labels = np.unique(pids, return_inverse=True)
    loader = build_train_loader(
        records,
        labels.tolist(),
        height=config.height,
        width=config.width,
        batch_size=config.batch_size,
        num_instances=config.num_instances,
        iters=config.iters,
        seed=seed,
        cache=cache,
    )
    model.to(device).train()
    prototypes = torch.nn.Parameter(F.normalize(torch.randn(len(classes), model.feature_dim, device=device), dim=1))
    params = [p for p in model.parameters() if p.requires_grad] + [prototypes]
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = (
        torch.optim.lr_scheduler.StepLR(optimizer, config.step_size, 0.1) if config.step_size > 0 else None
    )
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler(enabled=use_amp)
    losses = []
    for epoch in tqdm(range(config.epochs), desc="supervised", disable=not progress):
        total = 0.0
        for images, targets, *_ in tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not progress):
            images, targets = images.to(device), torch.as_tensor(targets, device=device)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                embeddings = model(images)
            logits = embeddings.float() @ F.normalize(prototypes, dim=1).t() / config.temperature
            loss = F.cross_entropy(logits, targets)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total += loss.item()
        if scheduler is not None:
            scheduler.step()
        losses.append(total / len(loader))
        if on_epoch is not None:
            on_epoch(epoch, losses[-1])
    return losses
