"""The training loop shared by every memory-based method.

Every epoch: the clustering features of the training set (extracted by the model, or, for SpCL, its
instance memory), the k-reciprocal Jaccard distance, DBSCAN pseudo-labels (SpCL: with its self-paced
reliability criterion), the memory built from the pseudo-labels, then ``iters`` iterations on P x K
batches: forward, loss, backward, optimiser step and, after it, the explicit memory update
(:func:`reidlab.training.step.train_step`). Every ``eval_step`` epochs the model is evaluated on
query/gallery.

The loop knows no method by name: every choice it leaves to the method is a field of the method's
:class:`reidlab.training.methods.Method`, and what depends on the model it trains (global embedding, or
SCWM's parts) is the method's stage (:mod:`reidlab.training.stages`). Taught in
``notebooks/02_memory_banks.ipynb`` and ``notebooks/03_hard_mining.ipynb``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from reidlab.cluster import (
    DBSCANPseudoLabeler,
    EmptyClusteringError,
    SelfPacedRefiner,
    cluster_quality,
    jaccard_distance,
)
from reidlab.data.datasets import ReIDDataset
from reidlab.data.loaders import check_images, check_person_masks
from reidlab.evaluation import evaluate_model
from reidlab.memory import Memory
from reidlab.models import IBN_SUFFIX, GeneralizedMeanPooling, has_ibn
from reidlab.training.config import TrainConfig
from reidlab.training.distributed import (
    all_gather_tensors,
    barrier,
    broadcast_array,
    broadcast_object,
    current_world,
    data_parallel,
    rank_seed,
    sync_buffers,
)
from reidlab.training.methods import MemoryInputs, get_method
from reidlab.training.stages import EpochFeatures
from reidlab.training.step import train_step
from reidlab.utils import (
    check_writable,
    load_torch_file,
    resolve_device,
    seed_everything,
    write_atomically,
)

logger = logging.getLogger(__name__)

__all__ = ["Trainer"]


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


def _lr_scheduler(optimizer: torch.optim.Optimizer, *, step_size: int,
                  warmup_epochs: int) -> torch.optim.lr_scheduler.LRScheduler:
    """x0.1 every ``step_size`` epochs (every method), after a linear warm-up from 0.01x over ``warmup_epochs``
    (CAP's ``WarmupMultiStepLR(warmup_factor=0.01, warmup_iters=10)`` in ``train_cap.py``, stepped per epoch:
    epoch e < 10 trains at ``0.01 + 0.99 e / 10`` times the rate)."""
    if warmup_epochs == 0:
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma=0.1)

    def factor(epoch: int) -> float:
        warm = 0.01 + 0.99 * epoch / warmup_epochs if epoch < warmup_epochs else 1.0
        return warm * 0.1 ** (epoch // step_size)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class Trainer:
    """Runs the unsupervised loop for one method (``config.method``).

    Args:
        model: the model to train, as :func:`reidlab.training.build_start_model` makes it for the method (a
            :class:`reidlab.models.ReIDModel`, or a :class:`reidlab.models.PartReIDModel` for SCWM and PPLR).
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
        source: the labelled source dataset of a domain-adaptation method (its ``train`` records and
            pids); None: the one ``config.source_dataset`` and ``config.source_root`` name
            (:func:`reidlab.training.domains.load_source_dataset`).

    Several processes (``torchrun``, :mod:`reidlab.training.distributed`): each rank trains through
    DistributedDataParallel on its own P x K batch of ``batch_size / world_size`` images (its own sampler
    seed), so the global batch and the learning rate are the paper's. Each rank extracts a shard of the
    training features and all gather them; rank 0 pseudo-labels and broadcasts the labels, so every rank
    builds the same memory. The loss is each rank's own batch's; after the optimiser step every rank
    updates its memory with the batches of all ranks, in rank order, so the memories stay identical. Only
    rank 0 evaluates and writes files; its history record is sent to the others. With one process all of
    this reduces to the plain loop.
    """

    model: torch.nn.Module
    dataset: ReIDDataset
    config: TrainConfig
    run_dir: str | Path | None = None
    device: str | torch.device | None = None
    seed: int = 0
    progress: bool = True
    callbacks: Sequence[Callable[[dict[str, Any]], None]] = ()
    source: ReIDDataset | None = None
    history: list[dict[str, Any]] = field(default_factory=list, init=False)
    memory: Memory | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        self.method = get_method(self.config.method)
        self.device = resolve_device(self.device)
        self.world = current_world(self.device)  # one process, or this rank under torchrun
        if self.config.batch_size % (self.world.world_size * self.config.num_instances):
            raise ValueError(
                f"batch_size ({self.config.batch_size}) must split into {self.world.world_size} processes x P "
                f"identities x num_instances ({self.config.num_instances})"
            )
        self.run_dir = Path(self.run_dir) if self.run_dir is not None else None
        if self.run_dir is not None and self.world.is_main:  # found out now, not after an epoch's work
            check_writable(self.run_dir, what="run folder")
        if self.config.k1 >= len(self.dataset.train):
            raise ValueError(f"k1 ({self.config.k1}) must be smaller than the number of training images "
                             f"({len(self.dataset.train)}): lower k1 or use a larger dataset")
        pooling = "gem" if isinstance(getattr(self.model, "pool", None), GeneralizedMeanPooling) else "avg"
        if pooling != self.config.pooling:
            raise ValueError(
                f"the model pools with {pooling!r} but the config says pooling={self.config.pooling!r}; build it "
                f"with build_model({self.config.backbone!r}, pooling={self.config.pooling!r})"
            )
        expects_ibn = self.config.ibn or self.config.backbone.endswith(IBN_SUFFIX)
        if has_ibn(self.model) != expects_ibn:
            raise ValueError(
                f"the model {'has' if has_ibn(self.model) else 'has no'} IBN layers but the config says "
                f"ibn={self.config.ibn}; build it with reidlab.training.build_start_model(config, scale=...)"
            )
        if self.config.background_swap > 0:  # found out now, not after the first clustering
            for data, what in ((self.dataset, "the training set"), (self.source, "the source's training set")):
                if data is not None:
                    check_person_masks(data.train, what)
        self.true_pids = np.array([r.pid for r in self.dataset.train])
        self.train_cameras = np.array([r.camid for r in self.dataset.train])
        # One image store (keyed by path) for the feature extraction, the training loader of every epoch and the
        # evaluation.
        self.image_cache: dict | bool = {} if self.config.cache_images else False
        self.stage = self.method.stage(self)
        self.stage.check_model(self.model)
        self.model.to(self.device)
        # Training forwards go through train_model (DistributedDataParallel under torchrun, else the model
        # itself); extraction, evaluation and checkpoints use the plain model.
        self.train_model = data_parallel(self.model, self.world,
                                         find_unused_parameters=self.stage.leaves_parameters_unused())
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=self.config.lr, weight_decay=self.config.weight_decay)
        self.scheduler = _lr_scheduler(self.optimizer, step_size=self.config.step_size,
                                       warmup_epochs=self.config.warmup_epochs)
        self.scaler = torch.amp.GradScaler(enabled=self.device.type == "cuda")
        self.refiner = (
            SelfPacedRefiner(self.config.eps, eps_gap=self.config.eps_gap, min_samples=self.config.min_samples)
            if self.method.self_paced else None
        )

    # ----------------------------------------------------------------------------- pseudo-labels
    def clustering_features(self) -> EpochFeatures:
        """The features the epoch clusters: freshly extracted, or the rows of the method's instance memory.

        A method with an instance memory (SpCL) extracts the training features once, before its first
        epoch, and afterwards clusters the memory's instance rows, which the training keeps moving.
        """
        if self.method.instance_memory is None:
            return self.stage.extract()
        if self.memory is None:
            self.memory = self.method.instance_memory(self.stage.extract(), self.config).to(self.device)
        return EpochFeatures(self.memory.instance_features.cpu())

    def clustering_stage(self) -> tuple[EpochFeatures, np.ndarray]:
        """The start of every epoch: the clustering features and their pseudo-labels ``(N,)`` (-1: outlier).

        Clustered on rank 0 and sent to the others (every rank holds the same features).
        """
        features = self.clustering_features()
        labels = broadcast_array(self.pseudo_label(features.global_) if self.world.is_main else None)
        return features, labels

    def pseudo_label(self, features: torch.Tensor) -> np.ndarray:
        """Pseudo-labels ``(N,)`` of the training set from ``features (N, D)``; -1 = not in a cluster.

        The Jaccard distance keeps only the pairs within DBSCAN's largest eps (SpCL's loose eps + gap):
        DBSCAN never counts a farther pair as a neighbour, so the labels are those of the full distance,
        which would hold about 100 times more pairs at scale.
        """
        cfg = self.config
        largest_eps = cfg.eps + cfg.eps_gap if self.refiner is not None else cfg.eps
        try:
            return self._cluster(self._jaccard(features, max_distance=largest_eps))
        except EmptyClusteringError:
            # The error suggests an eps from every sample's nearest pairs, beyond eps: raise it from all pairs.
            return self._cluster(self._jaccard(features, max_distance=1.0))

    def _jaccard(self, features: torch.Tensor, *, max_distance: float):
        cfg = self.config
        return jaccard_distance(features, k1=cfg.k1, k2=cfg.k2, neighbour_search=cfg.neighbour_search,
                                max_distance=max_distance, output="sparse")

    def _cluster(self, dist) -> np.ndarray:
        if self.refiner is not None:  # SpCL: DBSCAN at eps, eps -/+ gap and the reliability criterion
            return self.refiner.fit(dist).labels_
        return DBSCANPseudoLabeler(eps=self.config.eps, min_samples=self.config.min_samples).fit(dist).labels_

    def build_memory(self, features: EpochFeatures, labels: np.ndarray, epoch: int) -> np.ndarray:
        """The method's memory from ``labels`` (and the stage's per-epoch state); returns the labels the
        sampler trains on."""
        train_labels = self.method.train_labels(labels)
        self._check_enough_identities(train_labels, labels, epoch)
        inputs = MemoryInputs(features, labels, self.config, self.seed, epoch, self.memory, self.train_cameras)
        self.memory = self.method.make_memory(inputs).to(self.device)
        self.stage.prepare(features, labels, epoch)
        return train_labels

    def _check_enough_identities(self, train_labels: np.ndarray, labels: np.ndarray, epoch: int) -> None:
        """A P x K batch needs P pseudo-identities: say what DBSCAN did when there are fewer."""
        cfg = self.config
        needed = cfg.batch_size // (self.world.world_size * cfg.num_instances)
        identities = len(np.unique(train_labels[train_labels >= 0]))
        if identities >= needed or cfg.sample_by != "cluster":  # camera proxies outnumber the clusters
            return
        clusters, outliers = int(labels.max(initial=-1)) + 1, int((labels < 0).sum())
        if clusters == 1 and outliers == 0:
            cause = f"one cluster holds every training image: eps={cfg.eps} is too large, lower it"
        elif outliers > len(labels) // 2:
            cause = f"{outliers} of {len(labels)} images are outliers: eps={cfg.eps} is too small, raise it"
        else:
            cause = "lower batch_size (P = batch_size / num_instances) or change eps"
        raise ValueError(f"epoch {epoch}: DBSCAN found {clusters} cluster(s) and {outliers} outlier(s), but a "
                         f"batch of {cfg.batch_size} = P x {cfg.num_instances} needs P = {needed} pseudo-identities; "
                         f"{cause}")

    # ----------------------------------------------------------------------------- training
    def train_epoch(self, epoch: int, labels: np.ndarray) -> tuple[float, dict[str, float]]:
        """``iters`` steps on P x K batches of ``labels`` (N,) (-1 = not trained on).

        Returns:
            The mean loss and the mean of every loss term, over the iterations and the ranks.
        """
        cfg = self.config
        self.train_model.train()
        sums: dict[str, float] = {}
        total = 0.0
        self.stage.start_epoch(epoch)
        try:
            bar = tqdm(self.stage.batches(epoch, labels), desc=f"epoch {epoch}", total=cfg.iters, leave=False,
                       disable=not self.progress)
            for batch in bar:
                loss, terms = train_step(
                    lambda: self.stage.forward(batch),
                    lambda out: self.stage.loss_terms(out, batch, epoch),
                    optimizer=self.optimizer, scaler=self.scaler, device=self.device,
                    before_step=self.stage.before_step,
                    after_step=lambda out: self._update_memory(out, batch),
                )
                for name, value in terms.items():
                    sums[name] = sums.get(name, 0.0) + value
                total += loss
                bar.set_postfix(loss=f"{loss:.3f}")
        finally:
            self.stage.end_epoch()
        # Means over the iterations and the ranks (every rank computes the same terms).
        means = torch.tensor([[value / cfg.iters for value in (*sums.values(), total)]], dtype=torch.float64)
        means = all_gather_tensors(means).mean(dim=0).tolist()
        return means[-1], dict(zip(sums, means))

    def _update_memory(self, out: Any, batch) -> None:
        """After the step, with every rank's batch in rank order: the memories stay identical."""
        features = self.stage.memory_features(out)
        if features is None:
            return
        features, targets, indexes = (all_gather_tensors(t) for t in (features, batch.targets, batch.indexes))
        self.memory.update(features, targets, indexes=indexes)

    def evaluate(self) -> dict[str, float]:
        """mAP, Rank-1/5/10 and mINP on the dataset's query and gallery."""
        metrics, _ = evaluate_model(
            self.model, self.dataset, height=self.config.height, width=self.config.width,
            num_workers=self.config.num_workers, device=self.device, cache=self.image_cache, progress=self.progress,
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
        if start < cfg.epochs:  # every image opens, before any work (an unreadable query would stop evaluation)
            check_images([*self.dataset.train, *self.dataset.query, *self.dataset.gallery])
        for epoch in tqdm(range(start, cfg.epochs), desc=cfg.method, disable=not self.progress,
                          initial=start, total=cfg.epochs):
            began = time.perf_counter()
            features, labels = self.clustering_stage()
            quality = cluster_quality(labels, self.true_pids)
            train_labels = self.build_memory(features, labels, epoch)
            lr = self.optimizer.param_groups[0]["lr"]  # the rate this epoch trained with
            loss, loss_terms = self.train_epoch(epoch, train_labels)
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
                **self.stage.epoch_metrics(loss_terms),
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

    # ----------------------------------------------------------------------------- checkpoints
    def _save(self, epoch: int) -> None:
        if self.run_dir is None or not self.world.is_main:  # rank 0 writes for every process
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "epoch": epoch,
            "config": asdict(self.config),
            "seed": self.seed,
            "data": self.dataset.identity(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "history": self.history,
            "rng": _rng_state(),
            **self.stage.state_dict(),
        }
        if self.method.instance_memory is not None:  # the only memory that lives across epochs
            state["memory"] = self.memory.state_dict()
        if self.refiner is not None:
            state["indep_threshold"] = self.refiner.indep_threshold_
        write_atomically(self.run_dir / "checkpoint.pt", lambda p: torch.save(state, p))
        write_atomically(self.run_dir / "history.json", lambda p: p.write_text(json.dumps(self.history, indent=2)))

    def _check_same_run(self, path: Path, state: dict[str, Any]) -> None:
        """Refuse to resume a checkpoint of another run: its config, seed or data (named field by field)."""
        differences = [f"config.{key}: {value!r} there, {getattr(self.config, key, None)!r} here"
                       for key, value in state["config"].items() if asdict(self.config).get(key) != value]
        differences += [f"config.{key}: missing there" for key in asdict(self.config) if key not in state["config"]]
        if state["seed"] != self.seed:
            differences.append(f"seed: {state['seed']} there, {self.seed} here")
        saved, data = state.get("data") or {}, self.dataset.identity()
        for key in ("name", "fingerprint"):
            if saved.get(key) != data[key]:
                differences.append(f"dataset {key}: {saved.get(key)!r} there ({saved.get('root')}), "
                                   f"{data[key]!r} here ({data['root']})")
        if differences:
            raise ValueError(f"{path} was written by another run ({'; '.join(differences)}): resume with the "
                             f"same settings and data, or use another run folder")
        if saved.get("root") != data["root"]:
            logger.info("resuming %s: the same files, now under %s (was %s)", path, data["root"], saved.get("root"))

    def _load_checkpoint(self) -> int:
        if self.run_dir is None:
            raise ValueError("resume=True needs a run_dir holding checkpoint.pt")
        path = self.run_dir / "checkpoint.pt"
        if not path.is_file():
            logger.info("no checkpoint in %s: starting from epoch 0", self.run_dir)
            seed_everything(rank_seed(self.seed, self.world.rank))
            return 0
        state = load_torch_file(path, what="checkpoint",
                                fix="delete it to start the run again, or resume from another run folder")
        if not isinstance(state, dict) or not {"config", "seed", "model", "epoch"} <= set(state):
            raise ValueError(f"{path} is not a reidlab training checkpoint: use another run folder")
        self._check_same_run(path, state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.history = list(state["history"])
        if self.method.instance_memory is not None:  # built as at its creation, then given its saved rows
            self.memory = self.method.instance_memory(self.stage.extract(), self.config)
            self.memory.load_state_dict(state["memory"])
            self.memory.to(self.device)
        if self.refiner is not None:
            self.refiner.indep_threshold_ = state["indep_threshold"]
        self.stage.load_state_dict(state)
        _set_rng_state(state["rng"])  # rank 0's; the other ranks draw their own from here on
        if not self.world.is_main:
            seed_everything(rank_seed(self.seed + state["epoch"] + 1, self.world.rank))
        logger.info("resuming %s from epoch %d", path, state["epoch"] + 1)
        return state["epoch"] + 1
