"""The settings of a training run (:class:`TrainConfig`) and the presets of every method (:func:`preset`).

Defaults are the papers' values, each with its source; ``docs/methods.md`` explains them. A method's own
settings (its DBSCAN eps per dataset, its batch and momentum...) live in its entry of
:data:`reidlab.training.methods.METHODS`; the settings shared by every method at the lab and tiny scales
live here (:data:`SCALED_SETTINGS`). Only the training loop unpacks a config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from reidlab.cluster.neighbors import NEIGHBOUR_SEARCHES
from reidlab.config import LAB_INPUT_SIZE, check_scale
from reidlab.models import BACKBONES, PART_SOURCES, POOLINGS
from reidlab.training.cameras import SAMPLE_BY, CameraStage
from reidlab.training.methods import METHODS, get_method, resolve_preset

__all__ = ["MEMORY_UPDATES", "PART_LOSSES", "SCALED_SETTINGS", "TrainConfig", "preset"]

# The terms of SCWM's total loss (Eq. 16) a part-based run can switch on; see TrainConfig.losses.
PART_LOSSES = ("parsing", "diversity", "wnce", "sep", "id", "triplet")
SCWM_LOSSES = ("parsing", "diversity", "wnce", "sep", "id")  # SCWM Eq. 16: L_SCC + L_WM + L_ID
# How a cluster memory moves its rows after a step: Cluster Contrast's mean and hard updates, SCWM's Eq. 9
# weighted update (SCWM Table 3 calls them average, hardest and weighted).
MEMORY_UPDATES = ("mean", "hard", "weighted")


@dataclass
class TrainConfig:
    """Settings of one unsupervised run. Defaults are Cluster Contrast's full-scale values.

    Use :func:`preset` for each method's paper settings and for the lab and tiny scales.
    """

    method: str = "cluster_contrast"  # a key of reidlab.training.methods.METHODS
    # Schedule: Cluster Contrast's README and the recipe the four methods share.
    epochs: int = 50  # Cluster Contrast
    iters: int = 200  # Cluster Contrast (400 on MSMT17)
    batch_size: int = 256  # Cluster Contrast: 16 identities x 16 images
    num_instances: int = 16  # K of the P x K sampler; HHCL's P instance slots per cluster
    lr: float = 3.5e-4  # Adam, every method
    weight_decay: float = 5e-4  # every method
    step_size: int = 20  # lr x0.1 every 20 epochs, every method
    eval_step: int = 10  # SpCL / Cluster Contrast --eval-step; also evaluated after the last epoch
    # Pseudo-labels: the k-reciprocal Jaccard distance (Zhong et al. CVPR 2017) and DBSCAN.
    eps: float = 0.6  # Cluster Contrast and SpCL on Market-1501 (see each method's presets)
    min_samples: int = 4  # every method's DBSCAN
    k1: int = 30  # every method's training script
    k2: int = 6  # every method's training script
    # kNN search behind the Jaccard distance (docs/methods.md, section 2, "Neighbour search at scale"): "exact"
    # as in every method's code, "approximate" (= "hnsw": HNSW over PCA-reduced features, re-ranked exactly),
    # "ivf", or "auto": exact below 50,000 images (Market-1501 and MSMT17 stay exact), "hnsw" from there on.
    neighbour_search: str = "auto"
    # Memory.
    momentum: float = 0.1  # Cluster Contrast's README runs (its argparse says 0.2); SpCL 0.2, HHCL 0.1
    temperature: float = 0.05  # tau of every memory
    mu: float = 0.5  # HHCL Eq. 2: weight of the cluster term against the hard-instance term
    eps_gap: float = 0.02  # SpCL's tight/loose eps offset
    # Model and input. The caller builds the model (build_start_model); the Trainer checks its pooling.
    backbone: str = "resnet50"  # ImageNet ResNet-50 with last stride 1, every method
    pooling: str = "gem"  # GeM in Cluster Contrast's reported setup (its appendix)
    height: int = 256  # every method (SCWM 384)
    width: int = 128  # every method
    erasing_p: float = 0.5  # random erasing probability, every method
    # Photometric augmentation strength (reidlab.data.build_transforms; 0 = the papers' pipeline, every full-scale
    # preset; 0.4 at lab scale, measured in benchmarks/CALIBRATION.md).
    colour_jitter: float = 0.0
    # Probability of showing a training image's person on another training image's background
    # (reidlab.data.ImageDataset; Tian et al. CVPR 2018); needs person masks (SynthMarket). 0 = the papers'
    # pipeline; 1 at lab scale.
    background_swap: float = 0.0
    num_workers: int = 4
    cache_images: bool = False  # read each image once per run and keep it in memory, resized (lab scale)
    # Part-based methods only: SCWM and its PPLR stripe baseline (reidlab.training.parts).
    num_parts: int = 4  # SCWM 4.2: l = 4 on Market-1501 (7 on MSMT17), background included; stripes: 3
    part_source: str = "parsing"  # "parsing": SCWM's part head (Eq. 1); "stripes": PPLR's 3 horizontal stripes
    foreground_correction: bool = True  # SCWM 3.2: 3-class K-means on magnitudes (Table 2)
    space_correction: bool = True  # SCWM Eq. 2: distance "infinite" beyond spatial distance eta (Table 2)
    eta: float = 6.0  # SCWM Eq. 2, in feature-map cells; the paper gives no value (reidlab.parsing.DEFAULT_ETA)
    gamma: float = 0.2  # SCWM 4.2: mask smoothing factor of Eq. 3 ...
    gamma_epochs: int = 20  # ... decreasing to 0 after 20 epochs
    beta: float = 0.35  # SCWM 4.2: part-to-global distillation of Eq. 14
    agreement_k: int = 20  # kNN size of Eq. 7 (PPLR's cross-agreement k)
    # How the cluster rows move after a step (MEMORY_UPDATES); each method accepts some (Method.memory_updates).
    memory_update: str = "mean"  # Cluster Contrast's default; SCWM's preset: "weighted" (Eq. 9)
    losses: tuple[str, ...] = SCWM_LOSSES  # terms of Eq. 16 (SCWM Table 1's rows); PPLR: ("id", "triplet")
    # PPLR --aals-epoch 5: before it parts use label smoothing 0.1 (alpha = 0.9). SCWM names no such epoch:
    # reidlab's reading is 0 (Eq. 13 from the start); the pplr_stripes full preset uses PPLR's 5.
    aals_start_epoch: int = 0
    # Schedule: a linear warm-up of the learning rate from 0.01x over the first epochs (0 = none, every method
    # but CAP). CAP's train_cap.py: WarmupMultiStepLR(warmup_factor=0.01, warmup_iters=10), stepped per epoch.
    warmup_epochs: int = 0
    # HHCL Table 3's tricks. IBN-a (Pan et al., ECCV 2018) in the early blocks of the backbone: HHCL's run.sh
    # trains resnet_ibn50a for the "IBN" rows (LabNet-IBN at lab scale).
    ibn: bool = False
    # Label smoothing epsilon of the memory's cross-entropy ("LS"; 0 = off). HHCL's code fixes epsilon at 0.1
    # (CrossEntropyLabelSmooth(num_classes, 0.1, topk_smoothing=True)) and spreads it over the C // 50
    # top-scoring classes: label_smoothing_topk=True.
    label_smoothing: float = 0.0
    label_smoothing_topk: bool = False
    # Domain adaptation (SpCL's examples/spcl_train_uda.py, the Cluster Contrast appendix 1.2): the labelled
    # source dataset ("" = none: purely unsupervised) and its folder ("" = beside the target's folder for a
    # real dataset; reidlab.training.domains.LAB_SOURCE for "synthmarket").
    source_dataset: str = ""
    source_root: str = ""
    # Camera-aware proxies (CAP, Wang et al. AAAI 2021; Terminator8758/CAP-master train_cap.py, CAPMemory).
    proxy_momentum: float = 0.2  # CAP --inv_alpha 0.2 (also the Cluster Contrast authors' camera script)
    proxy_temperature: float = 0.07  # CAP --inv_beta 0.07; Cluster Contrast's CameraMemory: 0.05
    crosscam_epoch: int = 5  # CAPMemory(crosscam_epoch=5): the inter-camera loss from this epoch on
    crosscam_weight: float = 0.5  # CAPMemory: loss += 0.5 * associate_loss
    crosscam_negatives: int = 50  # CAPMemory(bg_knn=50): hard negative proxies of the inter-camera loss
    sample_by: str = "cluster"  # P x K by "cluster" or by camera "proxy" (CAP's ClassUniformlySampler)

    def __post_init__(self) -> None:
        self.losses = tuple(self.losses)  # a JSON list from a saved config becomes a tuple again
        method = get_method(self.method)
        for name, rule in _RULES.items():
            rule.check(name, getattr(self, name))
        unknown = [name for name in self.losses if name not in PART_LOSSES]
        if unknown:
            raise ValueError(f"losses must be names from {PART_LOSSES}, got {unknown}")
        if self.part_source == "stripes" and {"parsing", "diversity"} & set(self.losses):
            raise ValueError("the parsing and diversity losses need part_source='parsing' (stripes have no part head)")
        valid_updates = method.memory_updates or MEMORY_UPDATES
        if self.memory_update not in valid_updates:
            raise ValueError(f"memory_update of method {self.method!r} must be one of {valid_updates}, "
                             f"got {self.memory_update!r}")
        if self.batch_size % self.num_instances:
            raise ValueError(
                f"batch_size ({self.batch_size}) must be a multiple of num_instances ({self.num_instances})"
            )
        if self.k2 > self.k1:
            raise ValueError(f"k2 ({self.k2}) must be <= k1 ({self.k1}): the query expansion averages within the "
                             f"k1-neighbour lists")
        if method.self_paced and not (0.0 < self.eps - self.eps_gap and self.eps + self.eps_gap < 1.0):
            raise ValueError(f"eps - eps_gap and eps + eps_gap must stay in (0, 1) (SpCL's tight and loose eps), "
                             f"got eps={self.eps}, eps_gap={self.eps_gap}")
        if (self.label_smoothing or self.label_smoothing_topk) and not method.label_smoothing:
            supported = [name for name, m in METHODS.items() if m.label_smoothing]
            raise ValueError(f"label smoothing applies to the ClusterNCE-type losses of {supported}, not to "
                             f"{self.method!r}")
        if method.stage.needs_source and not self.source_dataset:
            raise ValueError(f"method {self.method!r} trains on a labelled source dataset: set source_dataset "
                             "(market1501, dukemtmcreid, msmt17, or synthmarket at lab and tiny scale)")
        if (self.source_dataset or self.source_root) and not method.stage.needs_source:
            with_source = [name for name, m in METHODS.items() if m.stage.needs_source]
            raise ValueError(f"source_dataset and source_root are for the domain-adaptation methods {with_source}, "
                             f"not {self.method!r}")
        if self.sample_by == "proxy" and not issubclass(method.stage, CameraStage):
            raise ValueError(f"sample_by='proxy' draws by camera proxy, which only camera-aware methods have "
                             f"(not {self.method!r})")


@dataclass(frozen=True)
class _Rule:
    """What one TrainConfig field may hold: a type and a range or a set of choices."""

    kind: type
    low: float | None = None
    high: float | None = None
    open_low: bool = False  # the range excludes low
    open_high: bool = False  # the range excludes high
    choices: tuple = ()

    def describe(self) -> str:
        if self.choices:
            return f"one of {self.choices}"
        if self.kind is bool:
            return "True or False"
        if self.low is not None and self.high is not None:
            return (f"{'an integer' if self.kind is int else 'a number'} in {'(' if self.open_low else '['}"
                    f"{self.low:g}, {self.high:g}{')' if self.open_high else ']'}")
        if self.low is not None:
            return f"{'an integer' if self.kind is int else 'a number'} {'>' if self.open_low else '>='} {self.low:g}"
        return "a string" if self.kind is str else f"a {self.kind.__name__}"

    def check(self, name: str, value: Any) -> None:
        kinds = {int: (int,), float: (int, float), bool: (bool,), str: (str,)}[self.kind]
        wrong_type = not isinstance(value, kinds) or (self.kind is not bool and isinstance(value, bool))
        ok = not wrong_type
        if ok and self.choices:
            ok = value in self.choices
        elif ok and self.kind in (int, float):
            if self.kind is float and math.isnan(value):
                ok = False
            if self.low is not None:
                ok = ok and (value > self.low if self.open_low else value >= self.low)
            if self.high is not None:
                ok = ok and (value < self.high if self.open_high else value <= self.high)
        if not ok:
            raise ValueError(f"TrainConfig.{name} must be {self.describe()}, got {value!r}")


_INF = math.inf
_RULES: dict[str, _Rule] = {  # every field but method, losses and memory_update (checked above)
    "epochs": _Rule(int, 1), "iters": _Rule(int, 1), "batch_size": _Rule(int, 1), "num_instances": _Rule(int, 1),
    "lr": _Rule(float, 0, open_low=True), "weight_decay": _Rule(float, 0), "step_size": _Rule(int, 1),
    "eval_step": _Rule(int, 1),
    # The Jaccard distance lies in [0, 1]; eps = 1 would join every pair (and the sparse distance stores
    # only pairs below 1).
    "eps": _Rule(float, 0, 1, open_low=True, open_high=True), "min_samples": _Rule(int, 1), "k1": _Rule(int, 1),
    "k2": _Rule(int, 1), "neighbour_search": _Rule(str, choices=NEIGHBOUR_SEARCHES), "momentum": _Rule(float, 0, 1), "temperature": _Rule(float, 0, open_low=True),
    "mu": _Rule(float, 0, 1), "eps_gap": _Rule(float, 0, 1, open_high=True),
    "backbone": _Rule(str, choices=BACKBONES), "pooling": _Rule(str, choices=POOLINGS),
    "height": _Rule(int, 16), "width": _Rule(int, 8), "erasing_p": _Rule(float, 0, 1),
    "colour_jitter": _Rule(float, 0, 1), "background_swap": _Rule(float, 0, 1),
    "num_workers": _Rule(int, 0), "cache_images": _Rule(bool),
    "num_parts": _Rule(int, 2), "part_source": _Rule(str, choices=PART_SOURCES),
    "foreground_correction": _Rule(bool), "space_correction": _Rule(bool), "eta": _Rule(float, 0, _INF, open_low=True),
    "gamma": _Rule(float, 0, 1), "gamma_epochs": _Rule(int, 0), "beta": _Rule(float, 0, 1),
    "agreement_k": _Rule(int, 1), "aals_start_epoch": _Rule(int, 0),
    "warmup_epochs": _Rule(int, 0), "ibn": _Rule(bool), "label_smoothing": _Rule(float, 0, 1, open_high=True),
    "label_smoothing_topk": _Rule(bool), "source_dataset": _Rule(str), "source_root": _Rule(str),
    "proxy_momentum": _Rule(float, 0, 1), "proxy_temperature": _Rule(float, 0, open_low=True),
    "crosscam_epoch": _Rule(int, 0), "crosscam_weight": _Rule(float, 0), "crosscam_negatives": _Rule(int, 1),
    "sample_by": _Rule(str, choices=SAMPLE_BY),
}


# Settings every method shares at the lab scale (LabNet on SynthMarket, two CPU cores, minutes) and the
# tiny scale (seconds, tests), on top of which each method puts its own (Method.scaled).
_LAB_AND_TINY = {
    "backbone": "labnet", "pooling": "avg", "height": 128, "width": 64, "num_workers": 0, "cache_images": True,
    "erasing_p": 0.0,  # a short schedule learns faster without it (reidlab.training.supervised.SupervisedConfig)
    "eps": 0.5,  # lab-scale choice for LabNet features on SynthMarket (notebook 01's sweep)
    "num_instances": 4,
}
SCALED_SETTINGS: dict[str, dict[str, Any]] = {
    # Lab inputs: reidlab.config.LAB_INPUT_SIZE (64 x 32, 8 x 4 maps). SCWM's eta there is 2 cells, the best mIoU
    # of 1..8 with both corrections on the 3,088 training maps (benchmarks/bench_parsing.py --quality: 0.254,
    # against 0.248 at 3 and 0.232 at 6; reidlab.parsing.DEFAULT_ETA = 6 was measured on 16 x 8 maps).
    # 8 x 120 iterations with colour jitter 0.4, calibrated with the seeded random start on SynthMarket's lab preset
    # (benchmarks/CALIBRATION.md, n15-n16: every method rises at every evaluation; 8 x 60 ends lower, n23), and every
    # training image on another's background (eighth round, s2-s4: the first clusters no longer split people by scene).
    "lab": {**_LAB_AND_TINY, "height": LAB_INPUT_SIZE[0], "width": LAB_INPUT_SIZE[1], "eta": 2.0,
            "colour_jitter": 0.4, "background_swap": 1.0,
            "epochs": 8, "iters": 120, "batch_size": 64, "step_size": 6, "eval_step": 2, "k1": 30,
            "k2": 6, "gamma_epochs": 3,  # SCWM's 20 of 60 epochs (a third), scaled to 8 epochs
            "agreement_k": 20},
    "tiny": {**_LAB_AND_TINY, "epochs": 2, "iters": 3, "batch_size": 16, "step_size": 20, "eval_step": 1, "k1": 10,
             "k2": 3, "gamma_epochs": 1, "agreement_k": 5},
}


def preset(method: str, *, scale: str = "full", dataset: str = "market1501", **overrides: Any) -> TrainConfig:
    """The settings of ``method`` at ``scale`` on ``dataset``.

    ``full`` is the paper setting (a GPU run). ``lab`` trains LabNet on SynthMarket on two CPU cores in a
    few minutes: the same algorithm with a smaller network, batch (16 x 4) and schedule. ``tiny`` runs in
    seconds for tests.

    Args:
        method: a method of :data:`reidlab.training.methods.METHODS` or a named preset of
            :data:`reidlab.training.methods.NAMED_PRESETS` (``cluster_contrast_hard``).
        scale: ``"full"``, ``"lab"`` or ``"tiny"``.
        dataset: picks the paper's DBSCAN eps (and SCWM's number of parts) at full scale.
        **overrides: any :class:`TrainConfig` field.
    """
    spec, named = resolve_preset(method)
    check_scale(scale)
    values: dict[str, Any] = {"method": spec.name}
    if spec.memory_updates:
        values["memory_update"] = spec.memory_updates[0]
    if scale == "full":
        if dataset not in spec.datasets:
            raise ValueError(f"full-scale presets of {spec.name!r} exist for {tuple(spec.datasets)}, "
                             f"got dataset {dataset!r}")
        values.update({**spec.full, **spec.datasets[dataset]})
    else:
        values.update({**SCALED_SETTINGS[scale], **spec.scaled})
    unknown = sorted(set(overrides) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise ValueError(f"unknown TrainConfig field(s) {unknown}; valid fields: "
                         f"{', '.join(f.name for f in fields(TrainConfig))}")
    return TrainConfig(**{**values, **named, **overrides})
