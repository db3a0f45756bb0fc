"""Training: the method registry, the shared loop, the part-based stage, the supervised bound, torchrun.

* :mod:`reidlab.training.methods`: one :class:`Method` per method of the family (the registry).
* :mod:`reidlab.training.config`: :class:`TrainConfig` and :func:`preset`.
* :mod:`reidlab.training.trainer`: :class:`Trainer`, the loop every method runs.
* :mod:`reidlab.training.stages`, :mod:`reidlab.training.parts`, :mod:`reidlab.training.domains` and
  :mod:`reidlab.training.cameras`: how a batch becomes a loss for the global-feature methods, the part-based
  ones (SCWM, PPLR), domain adaptation from a labelled source (SpCL, SpCL + Cluster Contrast) and the
  camera-aware proxies (CAP, CAP + Cluster Contrast).
* :mod:`reidlab.training.step`: the one optimisation step every trainer uses.
* :mod:`reidlab.training.start`: the start model of a run (at lab scale LabNet's seeded initialisation);
  :mod:`reidlab.training.supervised`: the supervised upper bound and the source-pretrained LabNet (the tiny
  scale's start); :mod:`reidlab.training.shared`: those of them that several notebooks share, built once
  (:func:`build_shared_models`).
* :mod:`reidlab.training.losses`: SCWM's and PPLR's identity losses; :mod:`reidlab.training.distributed`:
  several processes with ``torchrun``.
"""

from reidlab.training.config import MEMORY_UPDATES, PART_LOSSES, TrainConfig, preset
from reidlab.training.methods import METHODS, NAMED_PRESETS, Method, get_method
from reidlab.training.shared import build_shared_models, supervised_ceiling
from reidlab.training.start import build_start_model
from reidlab.training.step import train_step
from reidlab.training.supervised import (
    SupervisedConfig,
    source_pretrained_model,
    supervised_model,
    train_supervised,
)
from reidlab.training.trainer import Trainer

__all__ = [
    "MEMORY_UPDATES",
    "METHODS",
    "NAMED_PRESETS",
    "PART_LOSSES",
    "Method",
    "SupervisedConfig",
    "TrainConfig",
    "Trainer",
    "build_shared_models",
    "build_start_model",
    "get_method",
    "preset",
    "source_pretrained_model",
    "supervised_ceiling",
    "supervised_model",
    "train_step",
    "train_supervised",
]
