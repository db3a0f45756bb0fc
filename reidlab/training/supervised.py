"""The supervised upper bound: the same backbone trained with ground-truth identities.

The papers report "w/ GT" rows (training with the true labels instead of pseudo-labels) as the ceiling
of the unsupervised methods. reidlab's version trains the embedding with a normalised-softmax
("cosine") classifier over the identities: one learnable unit-norm prototype per identity and logits
``x . w_y / tau`` with tau = 0.05, the temperature of every memory (docs/methods.md, section 4). It is a cluster
memory whose rows are learned by gradient instead of momentum, with the true labels.

It is the ceiling every notebook compares the unsupervised methods with.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from reidlab.config import LAB_INPUT_SIZE, check_scale, data_dir
from reidlab.data.datasets import Record, ReIDDataset
from reidlab.data.loaders import build_train_loader
from reidlab.data.prepare import prepare_dataset
from reidlab.models import ReIDModel, build_model
from reidlab.training.step import train_step
from reidlab.utils import (
    load_torch_file,
    resolve_device,
    seed_everything,
    write_atomically,
)

logger = logging.getLogger(__name__)


@dataclass
class SupervisedConfig:
    """Training settings of the supervised upper bound.

    The optimiser is the papers' (Adam, weight decay 5e-4; docs/methods.md, section 5) with a higher
    learning rate, because LabNet trains from scratch; the batch is smaller than the papers' 256 = 16 x 16
    and random erasing is off, so that lab scale learns within minutes on two CPU cores (erasing slows a short schedule
    down: 30% instead of 40% mAP after 12 x 60 iterations on SynthMarket).
    """

    epochs: int = 12
    iters: int = 60
    batch_size: int = 64  # P x K = 16 identities x 4 images
    num_instances: int = 4
    lr: float = 1e-3  # the papers use 3.5e-4 for ImageNet-initialised ResNet-50 (docs/methods.md, section 5)
    weight_decay: float = 5e-4  # docs/methods.md, section 5
    temperature: float = 0.05  # tau of every memory (docs/methods.md, section 4)
    step_size: int = 0  # x0.1 every `step_size` epochs (20 at full scale, docs/methods.md, section 5); 0 = constant
    erasing_p: float = 0.0  # 0.5 at full scale (docs/methods.md, section 5)
    colour_jitter: float = 0.0  # photometric augmentation strength (reidlab.data.build_transforms)
    background_swap: float = 0.0  # probability of pasting the person on another image (reidlab.data.ImageDataset)
    height: int = 128
    width: int = 64


def supervised_config(scale: str) -> SupervisedConfig:
    """The supervised schedule at ``scale``: seconds at ``tiny`` (tests), minutes at ``lab`` (LabNet on
    two CPU cores, 64 x 32 inputs, the lab methods' colour jitter and background swap), the papers' ResNet-50 setting at ``full`` (docs/methods.md, section 5: 256 x 128,
    16 x 16 batches, erasing, lr x0.1 every 20 epochs)."""
    if scale == "tiny":
        return SupervisedConfig(epochs=1, iters=10, batch_size=32)
    if scale == "lab":  # the lab methods' augmentation; 16 x 60 iterations from random weights (CALIBRATION.md n15, s3)
        return SupervisedConfig(epochs=16, height=LAB_INPUT_SIZE[0], width=LAB_INPUT_SIZE[1], colour_jitter=0.4,
                                background_swap=1.0)
    if scale == "full":
        return SupervisedConfig(epochs=60, iters=200, batch_size=256, num_instances=16, lr=3.5e-4, step_size=20,
                                erasing_p=0.5, height=256, width=128)
    raise ValueError(f"scale must be 'tiny', 'lab' or 'full', got {scale!r}")


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
        erasing_p=config.erasing_p,
        colour_jitter=config.colour_jitter,
        background_swap=config.background_swap,
    )
    model.to(device).train()
    prototypes = torch.nn.Parameter(F.normalize(torch.randn(len(classes), model.feature_dim, device=device), dim=1))
    params = [p for p in model.parameters() if p.requires_grad] + [prototypes]
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = (
        torch.optim.lr_scheduler.StepLR(optimizer, config.step_size, 0.1) if config.step_size > 0 else None
    )
    scaler = torch.amp.GradScaler(enabled=device.type == "cuda")
    losses = []
    for epoch in tqdm(range(config.epochs), desc="supervised", disable=not progress):
        total = 0.0
        for images, targets, *_ in tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not progress):
            images, targets = images.to(device), torch.as_tensor(targets, device=device)
            loss, _ = train_step(
                lambda: model(images),  # the unit-norm embeddings
                lambda embeddings: {"id": F.cross_entropy(  # a cosine classifier over the true identities
                    embeddings.float() @ F.normalize(prototypes, dim=1).t() / config.temperature, targets)},
                optimizer=optimizer, scaler=scaler, device=device,
            )
            total += loss
        if scheduler is not None:
            scheduler.step()
        losses.append(total / len(loader))
        if on_epoch is not None:
            on_epoch(epoch, losses[-1])
    return losses


def supervised_cache_path(
    dataset_root: str | Path,
    *,
    backbone: str = "labnet",
    config: SupervisedConfig | None = None,
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> Path:
    """Where :func:`supervised_model` caches ``backbone`` trained on the dataset at ``dataset_root`` (the file
    exists once it is trained): ``cache_dir`` (default ``data_dir()/pretrained``) / a name keyed by the
    dataset folder, backbone, seed and every setting of ``config``."""
    config = config or SupervisedConfig()
    cache_dir = Path(cache_dir) if cache_dir is not None else data_dir() / "pretrained"
    root = Path(dataset_root).resolve()
    key = hashlib.sha1(repr((str(root), backbone, seed, asdict(config))).encode()).hexdigest()[:10]
    return cache_dir / f"{backbone}-{root.name}-seed{seed}-{key}.pt"


def seconds_per_iteration(
    backbone: str = "labnet",
    config: SupervisedConfig | None = None,
    *,
    num_classes: int = 100,
    device: str | torch.device | None = None,
    steps: int = 2,
) -> float:
    """Measured seconds of one :func:`train_supervised` iteration on this machine: ``steps`` optimisation steps
    (after one warm-up) on a random batch of ``config``'s size, without data loading. Times
    ``config.epochs * config.iters`` give a first estimate of a training's duration before it starts."""
    import time

    config = config or SupervisedConfig()
    device = resolve_device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(backbone, pretrained=False).to(device).train()
        prototypes = torch.nn.Parameter(torch.randn(num_classes, model.feature_dim, device=device))
        optimizer = torch.optim.Adam([*model.parameters(), prototypes], lr=config.lr)
        images = torch.randn(config.batch_size, 3, config.height, config.width, device=device)
        targets = torch.randint(num_classes, (config.batch_size,), device=device)
        scaler = torch.amp.GradScaler(enabled=device.type == "cuda")
        start = 0.0
        for step in range(steps + 1):
            if step == 1:
                start = time.perf_counter()
            train_step(lambda: model(images), lambda embeddings: {"id": F.cross_entropy(
                embeddings.float() @ F.normalize(prototypes, dim=1).t() / config.temperature, targets)},
                optimizer=optimizer, scaler=scaler, device=device)
        return (time.perf_counter() - start) / steps


def supervised_model(
    dataset: ReIDDataset,
    *,
    backbone: str = "labnet",
    config: SupervisedConfig | None = None,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> ReIDModel:
    """``backbone`` trained with the ground-truth identities of ``dataset.train``, cached on disk.

    The weights are cached in ``cache_dir`` (default ``data_dir()/pretrained``) under a key made of the
    dataset folder, backbone, settings and seed, written atomically and loaded with
    ``torch.load(weights_only=True)``: only the first call trains, so notebooks can share the model.

    Args:
        dataset: its training records and their pids are the labels.
        backbone: a :func:`reidlab.models.build_model` name (random initialisation).
        config: training settings; defaults to :class:`SupervisedConfig`.
        seed: seeds initialisation, sampling and augmentation.
        cache_dir: folder of the cached weights.
        device: where to train; ``None`` picks CUDA when available.
        progress: show progress bars.

    Returns:
        The trained model, in training mode, on the CPU.
    """
    config = config or SupervisedConfig()
    path = supervised_cache_path(dataset.root, backbone=backbone, config=config, seed=seed, cache_dir=cache_dir)
    root, cache_dir = Path(dataset.root).resolve(), path.parent
    if path.is_file():
        model = build_model(backbone, pretrained=False)
        model.load_state_dict(load_torch_file(path, what="cached model"))
        logger.info("loaded %s trained on %s from %s", backbone, root, path)
        return model
    logger.info("training %s on %s (%d images, %d ids)", backbone, root, len(dataset.train), dataset.num_train_pids)
    seed_everything(seed)
    model = build_model(backbone, pretrained=False)
    train_supervised(model, dataset.train, config, device=device, seed=seed, progress=progress)
    model.cpu()
    cache_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda partial: torch.save(model.state_dict(), partial))
    return model


def source_dataset_root(scale: str, *, source_seed: int = 1) -> Path:
    """The folder of the source SynthMarket :func:`source_pretrained_model` pretrains on at ``scale``
    (generated there when missing): the tiny preset at ``tiny`` scale, the default one otherwise."""
    preset = "tiny" if check_scale(scale) == "tiny" else "default"
    return data_dir() / f"synthmarket-{preset}-source-seed{source_seed}"


def source_pretrained_model(
    backbone: str = "labnet",
    *,
    scale: str = "lab",
    source_seed: int = 1,
    config: SupervisedConfig | None = None,
    cache_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> ReIDModel:
    """A backbone pretrained with labels on a *different* SynthMarket: reidlab's stand-in for ImageNet.

    Every method of the family starts from an ImageNet-pretrained ResNet-50 (docs/methods.md, section 5), never from
    random weights; no such weights can be downloaded here and none exist for LabNet. reidlab therefore
    pretrains on a source SynthMarket generated with another seed (``source_seed``): its identities,
    camera colour casts and backgrounds are all different from the target's. The target's training set
    stays unlabelled, as in the papers: the initialisation has seen other labelled people, as an
    ImageNet initialisation has seen other labelled images (and as SpCL's domain-adaptation setting
    has seen a labelled source dataset). Cached like :func:`supervised_model`.

    Args:
        backbone: a :func:`reidlab.models.build_model` name.
        scale: ``"tiny"`` pretrains briefly on the tiny preset (tests); other scales use the default
            preset and :class:`SupervisedConfig`'s schedule.
        source_seed: the source SynthMarket's generation seed; must differ from the target's.
        config: training settings; defaults depend on ``scale``.
        cache_dir: folder of the cached weights.
        device: where to train; ``None`` picks CUDA when available.
        progress: show progress bars.

    Returns:
        The pretrained model, in training mode, on the CPU.
    """
    check_scale(scale)
    config = config or supervised_config(scale)
    source_root = source_dataset_root(scale, source_seed=source_seed)
    source = prepare_dataset("synthmarket", source_root, scale=scale, seed=source_seed, generate=True,
                             progress=progress)
    return supervised_model(source, backbone=backbone, config=config, seed=source_seed, cache_dir=cache_dir,
                            device=device, progress=progress)
