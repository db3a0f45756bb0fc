"""The registry of training methods: one :class:`Method` object per method of the family.

The shared loop (:class:`reidlab.training.Trainer`) knows no method by name. Every choice it leaves to the
method is a field of that method's :class:`Method`:

* how its memory is made from the epoch's pseudo-labels (``make_memory``);
* where its clustering features come from: the model every epoch, or SpCL's instance memory
  (``instance_memory``);
* what happens to the DBSCAN outliers (``outliers``) and whether SpCL's self-paced reliability
  criterion refines the clusters (``self_paced``);
* which model it trains and how a batch becomes a loss (``stage``: :class:`GlobalStage` for the
  global-feature methods, :class:`reidlab.training.parts.PartStage` for SCWM and its PPLR baseline,
  :class:`reidlab.training.domains.DomainStage` for domain adaptation from a labelled source dataset,
  :class:`reidlab.training.cameras.CameraStage` for the camera-aware proxies);
* the memory updates it accepts (``memory_updates``, the first is the default) and its presets at full
  scale (``full``, ``datasets``) and at lab/tiny scale (``scaled``), each value with its source.

Adding a method is one new :class:`Method` entry in :data:`METHODS` plus its memory; nothing in the loop
changes. Named variants of a method (:data:`NAMED_PRESETS`, e.g. ``cluster_contrast_hard``) are presets,
not methods. The methods themselves are explained in ``docs/methods.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from reidlab.cluster.dbscan import cluster_centroids
from reidlab.memory import (
    CameraProxyMemory,
    ClusterMemory,
    HardHybridMemory,
    HybridMemory,
    Memory,
    WeightedMemory,
)
from reidlab.training.cameras import CameraStage
from reidlab.training.domains import DomainStage
from reidlab.training.parts import PartStage
from reidlab.training.stages import EpochFeatures, GlobalStage

__all__ = ["METHODS", "NAMED_PRESETS", "Method", "MemoryInputs", "get_method", "resolve_preset"]


@dataclass(frozen=True)
class MemoryInputs:
    """What a method's ``make_memory`` receives at the start of every epoch.

    Attributes:
        features: the epoch's clustering features (:class:`reidlab.training.stages.EpochFeatures`).
        labels: pseudo-labels ``(N,)``, -1 = outlier.
        config: the run's settings (a :class:`reidlab.training.TrainConfig`).
        seed: the run's seed.
        epoch: the epoch about to be trained.
        previous: the memory of the previous epoch (SpCL's instance memory lives across epochs), or None.
        cameras: ``(N,)`` the camera of every training image (the camera-aware proxies split clusters by it).
    """

    features: EpochFeatures
    labels: np.ndarray
    config: Any
    seed: int
    epoch: int
    previous: Memory | None
    cameras: np.ndarray | None = None


def _frozen(values: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(values))


@dataclass(frozen=True)
class Method:
    """One unsupervised re-ID method: what it does at each step of the shared loop, and its presets.

    Attributes:
        name: registry key, the value of ``TrainConfig.method``.
        title: the name people know it by.
        paper: where it comes from.
        make_memory: ``make_memory(inputs: MemoryInputs) -> Memory``, called every epoch after
            pseudo-labelling.
        instance_memory: ``instance_memory(EpochFeatures, TrainConfig) -> Memory`` for a method that keeps one
            row per training image across epochs and clusters those rows (the memory's ``instance_features``)
            instead of freshly extracted features (SpCL); None: the model's features are extracted every
            epoch.
        self_paced: cluster with SpCL's self-paced reliability criterion around DBSCAN.
        outliers: ``"drop"`` (not trained on) or ``"classes"`` (each outlier is a class of its own, SpCL).
        stage: the class that turns batches into losses and knows the model the method trains.
        memory_updates: the ``TrainConfig.memory_update`` values the memory accepts; the first is the
            method's default. Empty when the memory has a single update rule.
        label_smoothing: whether ``TrainConfig.label_smoothing`` applies: its memory's loss is a ClusterNCE-type
            cross-entropy (HHCL Table 3's "LS").
        datasets: full-scale settings per paper dataset (DBSCAN eps of the papers and their scripts...).
        full: full-scale settings beyond :class:`TrainConfig`'s defaults, each with its source.
        scaled: lab- and tiny-scale settings beyond the shared ones of ``reidlab.training.config``.
    """

    name: str
    title: str
    paper: str
    make_memory: Callable[[MemoryInputs], Memory]
    stage: type[GlobalStage] = GlobalStage
    instance_memory: Callable[[EpochFeatures, Any], Memory] | None = None
    self_paced: bool = False
    outliers: str = "drop"
    memory_updates: tuple[str, ...] = ()
    label_smoothing: bool = False
    datasets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    full: Mapping[str, Any] = field(default_factory=dict)
    scaled: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.outliers not in ("drop", "classes"):
            raise ValueError(f"outliers must be 'drop' or 'classes', got {self.outliers!r}")
        for name in ("datasets", "full", "scaled"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    def train_labels(self, labels: np.ndarray) -> np.ndarray:
        """The labels the P x K sampler draws by: outliers dropped (-1) or made one-image classes."""
        if self.outliers == "classes":
            from reidlab.cluster import outliers_as_classes

            return outliers_as_classes(labels)
        return labels


# ----------------------------------------------------------------------------- memory factories
def _spcl_instance_memory(features: EpochFeatures, config: Any) -> Memory:
    return HybridMemory(features.global_, momentum=config.momentum, temperature=config.temperature)


def _spcl_uda_instance_memory(features: EpochFeatures, config: Any) -> Memory:
    """SpCL's domain-adaptation memory (``spcl_train_uda.py``): the source class centroids (mean of the
    normalised features of each identity, re-normalised), then the target's instance rows."""
    centroids = cluster_centroids(features.source, features.source_labels)
    return HybridMemory(features.global_, source_centroids=centroids, momentum=config.momentum,
                        temperature=config.temperature)


def _spcl_memory(inputs: MemoryInputs) -> Memory:
    """SpCL keeps its instance memory and only relabels it (the clusters and the un-clustered instances)."""
    return inputs.previous.set_labels(torch.as_tensor(inputs.labels))


def _cluster_memory(inputs: MemoryInputs) -> Memory:
    cfg = inputs.config
    return ClusterMemory.from_labels(inputs.features.global_, inputs.labels, momentum=cfg.momentum,
                                     temperature=cfg.temperature, update=cfg.memory_update,
                                     label_smoothing=cfg.label_smoothing, smoothing_topk=cfg.label_smoothing_topk)


def _cluster_uda_memory(inputs: MemoryInputs) -> Memory:
    """One cluster-level memory (Cluster Contrast appendix 1.2): the source class centroids, then the target's
    cluster centroids (outliers dropped), numbered after the source classes."""
    cfg, feats = inputs.config, inputs.features
    num_source = int(feats.source_labels.max()) + 1
    target = np.where(inputs.labels >= 0, inputs.labels + num_source, -1)
    labels = np.concatenate([feats.source_labels.numpy(), target])
    return ClusterMemory.from_labels(torch.cat([feats.source, feats.global_]), labels, momentum=cfg.momentum,
                                     temperature=cfg.temperature, update=cfg.memory_update,
                                     label_smoothing=cfg.label_smoothing, smoothing_topk=cfg.label_smoothing_topk)


def _hard_hybrid_memory(inputs: MemoryInputs) -> Memory:
    cfg = inputs.config
    return HardHybridMemory.from_labels(
        inputs.features.global_, inputs.labels, num_instances=cfg.num_instances, mu=cfg.mu, momentum=cfg.momentum,
        temperature=cfg.temperature, seed=inputs.seed + inputs.epoch, label_smoothing=cfg.label_smoothing,
        smoothing_topk=cfg.label_smoothing_topk,
    )


def _camera_proxy_memory(inputs: MemoryInputs, *, with_clusters: bool = False) -> Memory:
    """CAP's proxies of this epoch; the inter-camera loss from ``crosscam_epoch`` on."""
    cfg = inputs.config
    return CameraProxyMemory.from_labels(
        inputs.features.global_, inputs.labels, inputs.cameras, momentum=cfg.proxy_momentum,
        temperature=cfg.proxy_temperature, cross_camera=inputs.epoch >= cfg.crosscam_epoch,
        cross_camera_weight=cfg.crosscam_weight, negatives=cfg.crosscam_negatives, with_clusters=with_clusters,
        cluster_momentum=cfg.momentum, cluster_temperature=cfg.temperature, cluster_update=cfg.memory_update,
        label_smoothing=cfg.label_smoothing, smoothing_topk=cfg.label_smoothing_topk,
    )


def _camera_cluster_memory(inputs: MemoryInputs) -> Memory:
    """CAP's proxies plus Cluster Contrast's cluster memory (Cluster Contrast appendix 1.3)."""
    return _camera_proxy_memory(inputs, with_clusters=True)


def _weighted_memory(inputs: MemoryInputs) -> Memory:
    cfg, feats = inputs.config, inputs.features
    streams = torch.cat([feats.global_[:, None], feats.parts], dim=1)
    return WeightedMemory.from_labels(streams, inputs.labels, difficulty=feats.difficulty, momentum=cfg.momentum,
                                      temperature=cfg.temperature, update=cfg.memory_update)


# ----------------------------------------------------------------------------- the methods
# DBSCAN eps per method and paper dataset: the papers and their training scripts.
_SCWM_FULL = {  # SCWM section 4.2; batch 64 = 16 x 4 as PPLR's script, which SCWM builds on
    "pooling": "avg", "height": 384, "width": 128, "epochs": 60, "iters": 400, "momentum": 0.2, "batch_size": 64,
    "num_instances": 4, "eval_step": 5,
    # eta: reidlab's 6 cells measured on LabNet's 16-row maps, scaled to ResNet-50's 24 rows at 384 x 128
    "eta": 9.0,
}
_SCWM_DATASETS = {  # SCWM section 4.2 and Figure 5: eps and l; no DukeMTMC-reID results
    "market1501": {"eps": 0.5, "num_parts": 4},
    "msmt17": {"eps": 0.7, "num_parts": 7},
}
_PPLR = {  # PPLR (Cho et al., CVPR 2022): 3 stripes, beta 0.5, AALS + PGLR + soft triplet, no parsing or memory loss
    "part_source": "stripes", "num_parts": 3, "losses": ("id", "triplet"), "beta": 0.5,
}

SPCL = Method(
    name="spcl",
    title="SpCL",
    paper="Ge et al., Self-paced Contrastive Learning with Hybrid Memory, NeurIPS 2020",
    make_memory=_spcl_memory,
    instance_memory=_spcl_instance_memory,
    self_paced=True,
    outliers="classes",
    datasets={"market1501": {"eps": 0.6}, "dukemtmcreid": {"eps": 0.6}, "msmt17": {"eps": 0.6}},
    # SpCL's unsupervised script: batch 64 = 16 x 4, 400 iterations, momentum 0.2, average pooling
    full={"batch_size": 64, "num_instances": 4, "iters": 400, "momentum": 0.2, "pooling": "avg"},
    scaled={"momentum": 0.2},
)
CLUSTER_CONTRAST = Method(
    name="cluster_contrast",
    title="Cluster Contrast",
    paper="Dai et al., Cluster Contrast for Unsupervised Person Re-Identification, ACCV 2022",
    make_memory=_cluster_memory,
    memory_updates=("mean", "hard"),
    label_smoothing=True,
    # TrainConfig's defaults are Cluster Contrast's; 400 iterations on MSMT17 (its README)
    datasets={"market1501": {"eps": 0.6}, "dukemtmcreid": {"eps": 0.6}, "msmt17": {"eps": 0.6, "iters": 400}},
    scaled={"momentum": 0.1},
)
HHCL = Method(
    name="hhcl",
    title="HHCL",
    paper="Hu et al., Hard-sample Guided Hybrid Contrast Learning for Unsupervised Person Re-ID, 2021",
    make_memory=_hard_hybrid_memory,
    label_smoothing=True,  # HHCL Table 3's "LS"
    datasets={"market1501": {"eps": 0.45}, "dukemtmcreid": {"eps": 0.6}, "msmt17": {"eps": 0.7}},
    full={"pooling": "avg"},  # HHCL section 4.1: global average pooling (its run.sh: --pooling-type avg)
    scaled={"momentum": 0.1},
)
SCWM = Method(
    name="scwm",
    title="SCWM",
    paper="Hong et al., Spatial Cascaded Clustering and Weighted Memory for Unsupervised Person Re-ID",
    make_memory=_weighted_memory,
    stage=PartStage,
    memory_updates=("weighted", "mean", "hard"),  # SCWM Table 3
    datasets=_SCWM_DATASETS,
    full=_SCWM_FULL,
    scaled={"momentum": 0.2},
)
PPLR_STRIPES = Method(
    name="pplr_stripes",
    title="PPLR stripes",
    paper="Cho et al., Part-based Pseudo Label Refinement, CVPR 2022 (SCWM Table 1's baseline)",
    make_memory=_weighted_memory,  # its centroids start the identity classifiers; no memory loss
    stage=PartStage,
    memory_updates=("weighted", "mean", "hard"),
    datasets={name: {"eps": settings["eps"]} for name, settings in _SCWM_DATASETS.items()},  # 3 stripes everywhere
    # PPLR's --aals-epoch 5; SCWM's schedule (PPLR's own script trains 50 epochs), as SCWM's Table 1 baseline
    full={**_SCWM_FULL, **_PPLR, "aals_start_epoch": 5},
    scaled={"momentum": 0.2, **_PPLR, "aals_start_epoch": 0},
)


# Domain adaptation: the source of each target (Cluster Contrast appendix Table 1: MSMT17 -> Market-1501 and
# Market-1501 -> MSMT17; DukeMTMC-reID from Market-1501, as the SpCL paper adapts it) and SpCL's eps.
_UDA_DATASETS = {
    "market1501": {"eps": 0.6, "source_dataset": "msmt17"},
    "dukemtmcreid": {"eps": 0.6, "source_dataset": "market1501"},
    "msmt17": {"eps": 0.6, "source_dataset": "market1501"},
}
# SpCL's examples/spcl_train_uda.py: batch 64 (+ 64) = 16 x 4, 400 iterations, momentum 0.2, average pooling
# (its defaults also give 50 epochs, eps 0.6, k1 30, k2 6, tau 0.05, TrainConfig's values).
_UDA_FULL = {"batch_size": 64, "num_instances": 4, "iters": 400, "momentum": 0.2, "pooling": "avg"}
# At lab and tiny scale the source is reidlab.training.domains.LAB_SOURCE, SynthMarket's campus domain.
_UDA_SCALED = {"momentum": 0.2, "source_dataset": "synthmarket"}

SPCL_UDA = Method(
    name="spcl_uda",
    title="SpCL (domain adaptation)",
    paper="Ge et al., Self-paced Contrastive Learning with Hybrid Memory, NeurIPS 2020 (examples/spcl_train_uda.py)",
    make_memory=_spcl_memory,
    instance_memory=_spcl_uda_instance_memory,
    self_paced=True,
    outliers="classes",
    stage=DomainStage,
    datasets=_UDA_DATASETS,
    full=_UDA_FULL,
    scaled=_UDA_SCALED,
)
CLUSTER_CONTRAST_UDA = Method(
    name="cluster_contrast_uda",
    title="SpCL + Cluster Contrast",
    paper="Dai et al., Cluster Contrast for Unsupervised Person Re-Identification, ACCV 2022 (appendix 1.2)",
    make_memory=_cluster_uda_memory,
    stage=DomainStage,
    memory_updates=("mean", "hard"),
    label_smoothing=True,
    datasets=_UDA_DATASETS,
    # SpCL's domain-adaptation training (the appendix adopts it) with Cluster Contrast's cluster memory.
    # reidlab's choice: momentum 0.2, the value of SpCL's script and of Cluster Contrast's argparse default
    # (its README's 0.1 is for the purely unsupervised runs); the appendix gives none.
    full=_UDA_FULL,
    scaled=_UDA_SCALED,
)
CAP = Method(
    name="cap",
    title="CAP",
    paper="Wang et al., Camera-aware Proxies for Unsupervised Person Re-Identification, AAAI 2021",
    make_memory=_camera_proxy_memory,
    stage=CameraStage,
    # train_cap.py: eps 0.5 (--thresh) on every dataset; one pass over the clustered images per epoch
    # (len / 32 batches). reidlab's choice: a fixed number of iterations, the training set's size / 32.
    datasets={"market1501": {"eps": 0.5, "iters": 400}, "dukemtmcreid": {"eps": 0.5, "iters": 500},
              "msmt17": {"eps": 0.5, "iters": 1000}},
    # train_cap.py: batch 32 = 8 proxies x 4 images, img_association(k1=20, k2=6), average pooling, Adam 3.5e-4
    # with milestones 20 and 40 (= x0.1 every 20 epochs over 50) after a 10-epoch warm-up; proxy momentum and
    # temperature, cross-camera epoch, weight and negatives are TrainConfig's defaults (CAP's).
    full={"batch_size": 32, "num_instances": 4, "k1": 20, "k2": 6, "pooling": "avg", "sample_by": "proxy",
          "warmup_epochs": 10},
    # CAP's inter-camera loss starts at epoch 5 of 50; at 8 (lab) and 2 (tiny) epochs, at epoch 1. No warm-up:
    # a short schedule has no epochs to spare for it.
    scaled={"sample_by": "proxy", "crosscam_epoch": 1},
)
CAP_CLUSTER_CONTRAST = Method(
    name="cap_cluster_contrast",
    title="CAP + Cluster Contrast",
    paper="Dai et al., Cluster Contrast for Unsupervised Person Re-Identification, ACCV 2022 (appendix 1.3)",
    make_memory=_camera_cluster_memory,
    stage=CameraStage,
    memory_updates=("mean", "hard"),
    label_smoothing=True,
    # Cluster Contrast's training and clustering (TrainConfig's defaults: batch 256 = 16 x 16 by cluster, eps 0.6,
    # k1 30, GeM, momentum 0.1; 400 iterations on MSMT17), as camera_cluster_contrast_train_usl.py samples by
    # cluster; CAP's proxy terms, with the authors' CameraMemory temperature 0.05.
    datasets={"market1501": {"eps": 0.6}, "dukemtmcreid": {"eps": 0.6}, "msmt17": {"eps": 0.6, "iters": 400}},
    full={"proxy_temperature": 0.05},
    scaled={"momentum": 0.1, "proxy_temperature": 0.05, "crosscam_epoch": 1},
)

METHODS: Mapping[str, Method] = MappingProxyType({m.name: m for m in (
    SPCL, CLUSTER_CONTRAST, HHCL, SCWM, PPLR_STRIPES, SPCL_UDA, CLUSTER_CONTRAST_UDA, CAP, CAP_CLUSTER_CONTRAST)})
# Named variants of a method: preset name -> (method, settings).
NAMED_PRESETS: Mapping[str, tuple[str, Mapping[str, Any]]] = MappingProxyType({
    "cluster_contrast_hard": ("cluster_contrast", {"memory_update": "hard"}),  # Cluster Contrast's hard update
})


def get_method(name: str) -> Method:
    """The :class:`Method` registered as ``name``; a ``ValueError`` lists the valid names."""
    if name not in METHODS:
        hint = f" ({name!r} is a preset: use preset({name!r}))" if name in NAMED_PRESETS else ""
        raise ValueError(f"method must be one of {tuple(METHODS)}, got {name!r}{hint}")
    return METHODS[name]


def resolve_preset(name: str) -> tuple[Method, dict[str, Any]]:
    """A method or named preset -> its :class:`Method` and the settings the name adds."""
    if name in NAMED_PRESETS:
        method, settings = NAMED_PRESETS[name]
        return METHODS[method], dict(settings)
    if name not in METHODS:
        raise ValueError(f"method must be one of {(*METHODS, *NAMED_PRESETS)}, got {name!r}")
    return METHODS[name], {}
