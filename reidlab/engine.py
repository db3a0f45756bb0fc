"""The training engine: one loop for every memory-based method (SPEC section 1).

Every epoch: extract the training features (or, for SpCL, read its instance memory), compute the
k-reciprocal Jaccard distance, pseudo-label with DBSCAN (SpCL: with its self-paced reliability
criterion), build the memory from the pseudo-labels, then train ``iters`` iterations on P x K batches:
forward, memory loss, backward, optimiser step and, after it, the explicit memory update. Every
``eval_step`` epochs the model is evaluated on query/gallery.

Configs are dataclasses whose defaults are the papers' values (:func:`preset` gives each method's);
only this module unpacks them. Taught in ``notebooks/02_memory_banks.ipynb`` and
``notebooks/03_hard_mining.ipynb``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from reidlab.cluster import (
    DBSCANPseudoLabeler,
    SelfPacedRefiner,
    cluster_quality,
    jaccard_distance,
    outliers_as_classes,
)
from reidlab.data.datasets import ReIDDataset
from reidlab.data.loaders import build_train_loader
from reidlab.distributed import (
    all_gather_tensors,
    barrier,
    broadcast_array,
    broadcast_object,
    current_world,
    data_parallel,
    gather_shards,
    rank_seed,
    shard_bounds,
    sync_buffers,
)
from reidlab.evaluation import evaluate_model
from reidlab.features import extract_features
from reidlab.memory import ClusterMemory, HardHybridMemory, HybridMemory, Memory
from reidlab.models import GeneralizedMeanPooling
from reidlab.utils import resolve_device, seed_everything, write_atomically

logger = logging.getLogger(__name__)

METHODS = ("spcl", "cluster_contrast", "cluster_contrast_hard", "hhcl", "scwm", "pplr_stripes")
# The terms of SCWM's total loss (Eq. 16) a part-based run can switch on; see TrainConfig.losses.
PART_LOSSES = ("parsing", "diversity", "wnce", "sep", "id", "triplet")
SCWM_LOSSES = ("parsing", "diversity", "wnce", "sep", "id")  # SCWM Eq. 16: L_SCC + L_WM + L_ID
PPLR_LOSSES = ("id", "triplet")  # PPLR: AALS + PGLR + soft triplet (SCWM Table 1's baseline)
MEMORY_UPDATES = ("average", "hardest", "weighted")
PART_METHODS = ("scwm", "pplr_stripes")  # trained by reidlab.scwm.PartTrainer
DATASETS = ("market1501", "dukemtmcreid", "msmt17", "synthmarket")

# DBSCAN eps per method and dataset (SPEC section 3).
PAPER_EPS = {
    "spcl": {"market1501": 0.6, "dukemtmcreid": 0.6, "msmt17": 0.6},
    "cluster_contrast": {"market1501": 0.6, "dukemtmcreid": 0.6, "msmt17": 0.6},
    "hhcl": {"market1501": 0.45, "dukemtmcreid": 0.6, "msmt17": 0.7},
    "scwm": {"market1501": 0.5, "msmt17": 0.7},  # SCWM section 4.2 (no DukeMTMC-reID results)
}
SCWM_NUM_PARTS = {"market1501": 4, "msmt17": 7}  # SCWM section 4.2 and Figure 5


@dataclass
class TrainConfig:
    """Settings of one unsupervised run. Defaults are Cluster Contrast's full-scale values.

    Use :func:`preset` for each method's paper settings and for the lab and tiny scales.
    """

    method: str = "cluster_contrast"
    # Schedule (SPEC sections 4.2 and 5).
    epochs: int = 50  # SPEC 4.2
    iters: int = 200  # SPEC 4.2 (400 on MSMT17)
    batch_size: int = 256  # SPEC 4.2: 16 identities x 16 images
    num_instances: int = 16  # K of the P x K sampler; HHCL's P instance slots per cluster (SPEC 4.3)
    lr: float = 3.5e-4  # SPEC 5
    weight_decay: float = 5e-4  # SPEC 5
    step_size: int = 20  # SPEC 5: lr x0.1 every 20 epochs
    eval_step: int = 10  # SpCL / Cluster Contrast --eval-step; also evaluated after the last epoch
    # Pseudo-labels (SPEC sections 2 and 3).
    eps: float = 0.6  # SPEC 3
    min_samples: int = 4  # SPEC 1
    k1: int = 30  # SPEC 2
    k2: int = 6  # SPEC 2
    # Memory (SPEC section 4).
    momentum: float = 0.1  # SPEC 4.2 (Cluster Contrast README runs); SpCL 0.2, HHCL 0.1
    temperature: float = 0.05  # SPEC 4: tau everywhere
    mu: float = 0.5  # HHCL Eq. 2 (SPEC 4.3)
    eps_gap: float = 0.02  # SpCL's tight/loose eps offset (SPEC 4.1)
    # Model and input (SPEC section 5). The caller builds the model (build_model(backbone, pooling=...));
    # the Trainer checks that its pooling is this one.
    backbone: str = "resnet50"  # SPEC 5
    pooling: str = "gem"  # SPEC 4.2: GeM in Cluster Contrast's reported setup
    height: int = 256  # SPEC 5
    width: int = 128  # SPEC 5
    erasing_p: float = 0.5  # SPEC 5: random erasing probability
    num_workers: int = 4
    cache_images: bool = False  # decode each training image once per run and keep it in memory (lab scale)
    # Part-based methods only: SCWM (SPEC 4.4) and its PPLR stripe baseline (reidlab.scwm).
    num_parts: int = 4  # SCWM 4.2: l = 4 on Market-1501 (7 on MSMT17), background included; stripes: 3
    part_source: str = "parsing"  # "parsing": SCWM's part head (Eq. 1); "stripes": PPLR's 3 horizontal stripes
    foreground_correction: bool = True  # SCWM 3.2: 3-class K-means on magnitudes (Table 2)
    space_correction: bool = True  # SCWM Eq. 2: distance "infinite" beyond spatial distance eta (Table 2)
    eta: float = 6.0  # SCWM Eq. 2, in feature-map cells; the paper gives no value (reidlab.parts.DEFAULT_ETA)
    gamma: float = 0.2  # SCWM 4.2: mask smoothing factor of Eq. 3 ...
    gamma_epochs: int = 20  # ... decreasing to 0 after 20 epochs
    beta: float = 0.35  # SCWM 4.2: part-to-global distillation of Eq. 14
    agreement_k: int = 20  # kNN size of Eq. 7 (PPLR's cross-agreement k)
    memory_update: str = "weighted"  # SCWM Table 3: "average", "hardest" or "weighted" (Eq. 9)
    losses: tuple[str, ...] = SCWM_LOSSES  # terms of Eq. 16 (SCWM Table 1's rows); PPLR_LOSSES for the baseline
    # PPLR --aals-epoch 5: before it parts use label smoothing 0.1 (alpha = 0.9). SCWM names no such epoch:
    # reidlab's reading is 0 (Eq. 13 from the start); the pplr_stripes full preset uses PPLR's 5.
    aals_start_epoch: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        self.losses = tuple(self.losses)  # a JSON list from a saved config becomes a tuple again
        unknown = [name for name in self.losses if name not in PART_LOSSES]
        if unknown:
            raise ValueError(f"losses must be names from {PART_LOSSES}, got {unknown}")
        if self.part_source not in ("parsing", "stripes"):
            raise ValueError(f"part_source must be 'parsing' or 'stripes', got {self.part_source!r}")
        if self.part_source == "stripes" and {"parsing", "diversity"} & set(self.losses):
            raise ValueError("the parsing and diversity losses need part_source='parsing' (stripes have no part head)")
        if self.memory_update not in MEMORY_UPDATES:
            raise ValueError(f"memory_update must be one of {MEMORY_UPDATES}, got {self.memory_update!r}")
        if self.num_parts < 2:
            raise ValueError(f"num_parts must be >= 2 (the background is one part), got {self.num_parts}")
        if self.batch_size % self.num_instances:
            raise ValueError(
                f"batch_size ({self.batch_size}) must be a multiple of num_instances ({self.num_instances})"
            )
        if not 0.0 <= self.mu <= 1.0:
            raise ValueError(f"mu must be in [0, 1], got {self.mu}")


def preset(method: str, *, scale: str = "full", dataset: str = "market1501", **overrides: Any) -> TrainConfig:
    """The settings of ``method`` at ``scale`` on ``dataset``.

    ``full`` is the paper setting (SPEC sections 3-5, a GPU run). ``lab`` trains LabNet on SynthMarket
    on two CPU cores in a few minutes: the same algorithm with a smaller network, batch (16 x 4) and
    schedule. ``tiny`` runs in seconds for tests.

    Args:
        method: one of :data:`METHODS`.
        scale: ``"full"``, ``"lab"`` or ``"tiny"``.
        dataset: picks the DBSCAN eps of SPEC section 3 (and SCWM's number of parts) at full scale.
        **overrides: any :class:`TrainConfig` field.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    family = {"cluster_contrast_hard": "cluster_contrast", "pplr_stripes": "scwm"}.get(method, method)
    if scale == "full":
        if dataset not in PAPER_EPS[family]:
            raise ValueError(f"full-scale presets exist for {tuple(PAPER_EPS[family])}, got dataset {dataset!r}")
        config = TrainConfig(method=method, eps=PAPER_EPS[family][dataset])
        if method == "spcl":  # SpCL's USL script: batch 64 = 16 x 4, 400 iters, m = 0.2, average pooling
            config = replace(config, batch_size=64, num_instances=4, iters=400, momentum=0.2, pooling="avg")
        elif method == "hhcl":  # HHCL section 4.1: global average pooling (its run.sh: --pooling-type avg)
            config = replace(config, pooling="avg")
        if dataset == "msmt17" and family == "cluster_contrast":
            config = replace(config, iters=400)  # SPEC 4.2
        if family == "scwm":  # SCWM 4.2; batch 64 = 16 x 4 as PPLR's script, which SCWM builds on
            # eta: the 6 cells measured on LabNet's 16-row maps, scaled to ResNet-50's 24 rows at 384 x 128.
            # pplr_stripes keeps SCWM's schedule (PPLR's own script: 50 epochs), as SCWM's Table 1 baseline.
            config = replace(config, pooling="avg", height=384, width=128, epochs=60, iters=400, momentum=0.2,
                             batch_size=64, num_instances=4, eval_step=5, num_parts=SCWM_NUM_PARTS[dataset],
                             eta=9.0)
    elif scale in ("lab", "tiny"):
        config = TrainConfig(
            method=method,
            backbone="labnet",
            pooling="avg",
            height=128,
            width=64,
            num_workers=0,
            cache_images=True,
            erasing_p=0.0,  # a short schedule learns faster without it (reidlab.supervised.SupervisedConfig)
            eps=0.5,  # lab-scale choice for LabNet features on SynthMarket (notebook 01's sweep)
            momentum=0.2 if method in ("spcl", "scwm", "pplr_stripes") else 0.1,
            epochs=8 if scale == "lab" else 2,
            iters=30 if scale == "lab" else 3,
            batch_size=64 if scale == "lab" else 16,
            num_instances=4,
            step_size=6 if scale == "lab" else 20,
            eval_step=2 if scale == "lab" else 1,
            k1=30 if scale == "lab" else 10,
            k2=6 if scale == "lab" else 3,
            gamma_epochs=3 if scale == "lab" else 1,  # SCWM's 20 of 60 epochs (a third), scaled to 8 epochs
            agreement_k=20 if scale == "lab" else 5,
        )
    else:
        raise ValueError(f"scale must be 'tiny', 'lab' or 'full', got {scale!r}")
    if method == "pplr_stripes":  # PPLR: 3 stripes, beta 0.5, AALS from epoch 5, no parsing or memory
        config = replace(config, part_source="stripes", num_parts=3, losses=PPLR_LOSSES, beta=0.5,
                         aals_start_epoch=5 if scale == "full" else 0)
    return replace(config, **overrides)


def _rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states in types ``torch.load(weights_only=True)`` accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class Trainer:
    """Runs the unsupervised loop of SPEC section 1 for one method.

    Args:
        model: a :class:`reidlab.models.ReIDModel` (initialised as the caller wishes; SPEC 5 uses
            ImageNet weights, reidlab's lab scale :func:`reidlab.supervised.source_pretrained_model`).
        dataset: its ``train`` records are used without labels (their pids only score the pseudo-labels);
            ``query`` and ``gallery`` evaluate.
        config: the run's settings.
        run_dir: where ``checkpoint.pt`` and ``history.json`` are written every epoch; ``None`` keeps
            nothing on disk (no resume).
        device: ``None`` picks CUDA when available; mixed precision is used on CUDA.
        seed: seeds every random choice, so CPU runs repeat exactly.
        progress: show progress bars.
        callbacks: each is called as ``callback(record)`` with the epoch's history entry after every
            epoch (for live plots), after the epoch's checkpoint is written; a callback must not draw from
            the global random generators, or a resumed run would differ from an uninterrupted one.

    Several processes (``torchrun``, :mod:`reidlab.train`; helpers in :mod:`reidlab.distributed`): each
    rank trains through DistributedDataParallel on its own P x K batch of ``batch_size / world_size``
    images (its own sampler seed), so the global batch and the learning rate are the paper's. Each rank
    extracts a shard of the training features and all gather them; rank 0 pseudo-labels and broadcasts
    the labels, so every rank builds the same memory. The memory loss is each rank's own batch's;
    after the optimiser step every rank updates its memory with the batches of all ranks, in rank order,
    so the memories stay identical (cluster ids for the cluster memories, dataset indexes for SpCL's).
    Only rank 0 evaluates and writes files; its history record is sent to the others. With one process
    all of this reduces to the plain loop.
    """

    model: torch.nn.Module
    dataset: ReIDDataset
    config: TrainConfig
    run_dir: str | Path | None = None
    device: str | torch.device | None = None
    seed: int = 0
    progress: bool = True
    callbacks: Sequence[Callable[[dict[str, Any]], None]] = ()
    history: list[dict[str, Any]] = field(default_factory=list, init=False)
    memory: Memory | None = field(default=None, init=False)
    part_based = False  # True for the part-based trainer (reidlab.scwm.PartTrainer)

    def __post_init__(self) -> None:
        if (self.config.method in PART_METHODS) != self.part_based:
            raise ValueError(
                f"{type(self).__name__} cannot train method {self.config.method!r}: build the trainer with "
                "reidlab.engine.make_trainer(model, dataset, config, ...), which picks the right one"
            )
        self.device = resolve_device(self.device)
        self.world = current_world(self.device)  # one process, or this rank under torchrun (reidlab.distributed)
        if self.config.batch_size % (self.world.world_size * self.config.num_instances):
            raise ValueError(
                f"batch_size ({self.config.batch_size}) must split into {self.world.world_size} processes x P "
                f"identities x num_instances ({self.config.num_instances})"
            )
        self.run_dir = Path(self.run_dir) if self.run_dir is not None else None
        pooling = "gem" if isinstance(getattr(self.model, "pool", None), GeneralizedMeanPooling) else "avg"
        if pooling != self.config.pooling:
            raise ValueError(
                f"the model pools with {pooling!r} but the config says pooling={self.config.pooling!r}; build it "
                f"with build_model({self.config.backbone!r}, pooling={self.config.pooling!r})"
            )
        self.model.to(self.device)
        # Training forwards go through train_model (DistributedDataParallel under torchrun, else the model
        # itself); extraction, evaluation and checkpoints use the plain model.
        self.train_model = data_parallel(self.model, self.world, find_unused_parameters=self.leaves_parameters_unused())
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=self.config.lr, weight_decay=self.config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, self.config.step_size, gamma=0.1)
        self.scaler = torch.amp.GradScaler(enabled=self.device.type == "cuda")
        self.true_pids = np.array([r.pid for r in self.dataset.train])
        # One decoded-image store for the feature extraction and the training loader of every epoch.
        self.image_cache: dict | bool = {} if self.config.cache_images else False
        # A distributed rank extracts a shard of the records, which a store keyed by train index cannot serve.
        self.extraction_cache = ({} if self.config.cache_images else False) if self.world.is_distributed \
            else self.image_cache
        self.refiner = (
            SelfPacedRefiner(self.config.eps, eps_gap=self.config.eps_gap, min_samples=self.config.min_samples)
            if self.config.method == "spcl"
            else None
        )

    # ----------------------------------------------------------------------------- pseudo-labels
    def _features(self) -> torch.Tensor:
        """Training features ``(N, D)``; under torchrun each rank extracts its shard and all gather them."""
        n = len(self.dataset.train)
        start, stop = shard_bounds(n, self.world.rank, self.world.world_size)
        shard = extract_features(
            self.model,
            self.dataset.train[start:stop],
            height=self.config.height,
            width=self.config.width,
            num_workers=self.config.num_workers,
            device=self.device,
            cache=self.extraction_cache,
            progress=self.progress,
        )
        return gather_shards(shard, n)

    def pseudo_label(self, features: torch.Tensor) -> np.ndarray:
        """Pseudo-labels ``(N,)`` of the training set from ``features (N, D)``; -1 = not in a cluster."""
        cfg = self.config
        dist = jaccard_distance(features, k1=cfg.k1, k2=cfg.k2, output="sparse")
        if self.refiner is not None:  # SpCL: DBSCAN at eps, eps -/+ gap and the reliability criterion
            return self.refiner.fit(dist).labels_
        return DBSCANPseudoLabeler(eps=cfg.eps, min_samples=cfg.min_samples).fit(dist).labels_

    def build_memory(self, features: torch.Tensor, labels: np.ndarray, epoch: int) -> np.ndarray:
        """Create (or, for SpCL, relabel) the memory; returns the labels the sampler trains on."""
        cfg = self.config
        if cfg.method == "spcl":
            self.memory.set_labels(torch.as_tensor(labels))
            return outliers_as_classes(labels)  # un-clustered samples train as their own classes
        if cfg.method == "hhcl":
            self.memory = HardHybridMemory.from_labels(
                features, labels, num_instances=cfg.num_instances, mu=cfg.mu, momentum=cfg.momentum,
                temperature=cfg.temperature, seed=self.seed + epoch,
            )
        else:
            update = "hard" if cfg.method == "cluster_contrast_hard" else "mean"
            self.memory = ClusterMemory.from_labels(
                features, labels, momentum=cfg.momentum, temperature=cfg.temperature, update=update
            )
        self.memory.to(self.device)
        return labels

    # ----------------------------------------------------------------------------- training
    def train_epoch(self, epoch: int, labels: np.ndarray) -> float:
        """``iters`` iterations on P x K batches of ``labels`` (N,) (-1 = not trained on); mean loss."""
        cfg = self.config
        loader = build_train_loader(
            self.dataset.train, labels.tolist(), height=cfg.height, width=cfg.width,
            batch_size=cfg.batch_size // self.world.world_size, num_instances=cfg.num_instances, iters=cfg.iters,
            num_workers=cfg.num_workers, seed=rank_seed(self.seed * 1000 + epoch, self.world.rank),
            cache=self.image_cache, erasing_p=cfg.erasing_p,
        )
        self.train_model.train()
        use_amp = self.device.type == "cuda"
        total = 0.0
        bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not self.progress)
        for images, targets, _, indexes in bar:
            images = images.to(self.device, non_blocking=True)
            targets, indexes = targets.to(self.device), indexes.to(self.device)
            with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=use_amp):
                features = self.train_model(images)
            features = features.float()
            loss = self.memory.loss(features, targets, indexes=indexes)  # this rank's batch
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            # After the step (STYLE), with every rank's batch in rank order: the memories stay identical.
            features, targets, indexes = (all_gather_tensors(t) for t in (features.detach(), targets, indexes))
            self.memory.update(features, targets, indexes=indexes)
            total += loss.item()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        return float(all_gather_tensors(torch.tensor([total / cfg.iters], dtype=torch.float64)).mean())  # over ranks

    def evaluate(self) -> dict[str, float]:
        """mAP, Rank-1/5/10 and mINP on the dataset's query and gallery."""
        metrics, _ = evaluate_model(
            self.model, self.dataset, height=self.config.height, width=self.config.width,
            num_workers=self.config.num_workers, device=self.device, progress=self.progress,
        )
        return {k: metrics[k] for k in ("mAP", "rank1", "rank5", "rank10", "mINP")}

    def fit(self, *, resume: bool = False) -> list[dict[str, Any]]:
        """Run (or, with ``resume``, continue) the training; returns the per-epoch history.

        Raises:
            ValueError: ``resume`` without a ``run_dir``, or a checkpoint made with another config.
        """
        cfg = self.config
        start = 0
        if resume:
            start = self._load_checkpoint()
        else:
            seed_everything(rank_seed(self.seed, self.world.rank))
        if cfg.method == "spcl" and self.memory is None:  # SpCL extracts once, then clusters its memory
            self.memory = HybridMemory(self._features(), momentum=cfg.momentum, temperature=cfg.temperature)
            self.memory.to(self.device)
        for epoch in tqdm(range(start, cfg.epochs), desc=cfg.method, disable=not self.progress,
                          initial=start, total=cfg.epochs):
            began = time.perf_counter()
            features = self.memory.features.cpu() if cfg.method == "spcl" else self._features()
            # Clustered on rank 0 and sent to the others (every rank holds the same features).
            labels = broadcast_array(self.pseudo_label(features) if self.world.is_main else None)
            quality = cluster_quality(labels, self.true_pids)
            train_labels = self.build_memory(features, labels, epoch)
            lr = self.optimizer.param_groups[0]["lr"]  # the rate this epoch trained with
            loss = self.train_epoch(epoch, train_labels)
            sync_buffers(self.model)  # rank 0's BatchNorm statistics everywhere, as nn.DataParallel keeps
            self.scheduler.step()
            entry: dict[str, Any] = {
                "epoch": epoch,
                "loss": loss,
                "n_clusters": int(quality.n_clusters),
                "n_outliers": int(quality.n_outliers),
                "ari": float(quality.ari),
                "nmi": float(quality.nmi),
                "memory_rows": int(self.memory.num_rows),
                "lr": lr,
                **self.epoch_metrics(),
            }
            if ((epoch + 1) % cfg.eval_step == 0 or epoch + 1 == cfg.epochs) and self.world.is_main:
                entry.update(self.evaluate())
            entry["seconds"] = time.perf_counter() - began
            entry = broadcast_object(entry)  # rank 0's record (with its evaluation) on every rank
            self.history.append(entry)
            self._save(epoch)
            for callback in self.callbacks:
                callback(entry)
        barrier()  # rank 0 has written its last checkpoint
        return self.history

    def epoch_metrics(self) -> dict[str, Any]:
        """Extra entries for the epoch's history record (subclasses add theirs)."""
        return {}

    def leaves_parameters_unused(self) -> bool:
        """Whether the loss leaves some trainable parameter without a gradient (DDP must then be told)."""
        return False

    # ----------------------------------------------------------------------------- checkpoints
    def extra_state(self) -> dict[str, Any]:
        """State beyond model, optimiser and memory that a resumed run needs (subclasses add theirs)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` saved."""

    def _save(self, epoch: int) -> None:
        if self.run_dir is None or not self.world.is_main:  # rank 0 writes for every process
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "epoch": epoch,
            "config": asdict(self.config),
            "seed": self.seed,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "history": self.history,
            "rng": _rng_state(),
            **self.extra_state(),
        }
        if self.config.method == "spcl":  # the only memory that lives across epochs
            state["memory"] = self.memory.state_dict()
            state["indep_threshold"] = self.refiner.indep_threshold_
        write_atomically(self.run_dir / "checkpoint.pt", lambda p: torch.save(state, p))
        write_atomically(self.run_dir / "history.json", lambda p: p.write_text(json.dumps(self.history, indent=2)))

    def _load_checkpoint(self) -> int:
        if self.run_dir is None:
            raise ValueError("resume=True needs a run_dir holding checkpoint.pt")
        path = self.run_dir / "checkpoint.pt"
        if not path.is_file():
            logger.info("no checkpoint in %s: starting from epoch 0", self.run_dir)
            seed_everything(rank_seed(self.seed, self.world.rank))
            return 0
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state["config"] != asdict(self.config) or state["seed"] != self.seed:
            raise ValueError(
                f"{path} was written by a run with another config or seed; use another run_dir or the same settings"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.history = list(state["history"])
        if self.config.method == "spcl":
            memory = state["memory"]
            self.memory = HybridMemory(memory["features"], momentum=self.config.momentum,
                                       temperature=self.config.temperature)
            self.memory.load_state_dict(memory)
            self.memory.to(self.device)
            self.refiner.indep_threshold_ = state["indep_threshold"]
        self.load_extra_state(state)
        _set_rng_state(state["rng"])  # rank 0's; the other ranks draw their own from here on
        if not self.world.is_main:
            seed_everything(rank_seed(self.seed + state["epoch"] + 1, self.world.rank))
        logger.info("resuming %s from epoch %d", path, state["epoch"] + 1)
        return state["epoch"] + 1


def build_start_model(config: TrainConfig, *, scale: str, seed: int = 0, init: str = "pretrained",
                      device: str | torch.device | None = None, progress: bool = True) -> torch.nn.Module:
    """The model a run of ``config`` starts from (SPEC section 5 and README "Where training starts").

    At ``full`` scale: ``config.backbone`` with ImageNet weights when they are in the local torch cache
    (:func:`reidlab.models.build_model`). At ``lab`` and ``tiny`` scale: LabNet pretrained with labels on
    a different SynthMarket (:func:`reidlab.supervised.source_pretrained_model`), reidlab's stand-in for
    ImageNet weights. The part-based methods add a part head and part necks initialised from ``seed``
    (the same whether or not the start model was already cached). ``init="random"`` starts every weight
    from random values instead (tests and smoke runs).
    """
    from reidlab.models import build_model
    from reidlab.supervised import source_pretrained_model

    if init not in ("pretrained", "random"):
        raise ValueError(f"init must be 'pretrained' or 'random', got {init!r}")
    if init == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build_model(config.backbone, pooling=config.pooling, pretrained=False)
    elif scale == "full":
        model = build_model(config.backbone, pooling=config.pooling, pretrained=True)
    else:
        pretrained = source_pretrained_model(config.backbone, scale=scale, device=device, progress=progress)
        model = build_model(config.backbone, pooling=config.pooling, pretrained=False)
        missing, unexpected = model.load_state_dict(pretrained.state_dict(), strict=False)
        if unexpected or any(not key.startswith("pool.") for key in missing):  # only GeM's p may be new
            raise RuntimeError(f"source-pretrained weights do not fit: missing {missing}, unexpected {unexpected}")
    if config.method in PART_METHODS:  # SCWM / PPLR: the same start plus a part head and part necks
        from reidlab.parts import PartReIDModel

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = PartReIDModel.from_model(model, num_parts=config.num_parts, part_source=config.part_source)
    return model


def make_trainer(model: torch.nn.Module, dataset: ReIDDataset, config: TrainConfig, **kwargs: Any) -> Trainer:
    """The trainer for ``config.method``; ``kwargs`` are :class:`Trainer`'s (run_dir, device, seed...)."""
    if config.method in PART_METHODS:
        from reidlab.scwm import PartTrainer

        return PartTrainer(model, dataset, config, **kwargs)
    return Trainer(model, dataset, config, **kwargs)
