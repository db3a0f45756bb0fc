"""Where a training run starts: the start model of a method at a scale."""

from __future__ import annotations

import torch

from reidlab.config import check_scale
from reidlab.models import build_model, ibn_backbone
from reidlab.training.config import TrainConfig
from reidlab.training.methods import get_method
from reidlab.training.supervised import source_pretrained_model

__all__ = ["INITS", "LAB_START_SEED", "build_start_model"]

INITS = ("start", "random")
# The seed of the lab scale's start: the network's initialisation drawn with it, the same for every run, method
# and training seed (benchmarks/CALIBRATION.md measured the lab with it: 11.4% mAP, 14% of the ceiling).
LAB_START_SEED = 1


def build_start_model(config: TrainConfig, *, scale: str, seed: int = 0, init: str = "start",
                      device: str | torch.device | None = None, progress: bool = True) -> torch.nn.Module:
    """The model a run of ``config`` starts from (README, "Where training starts").

    ``init="start"``, the scale's start model:

    * ``full``: ``config.backbone`` with ImageNet weights when they are in the local torch cache
      (:func:`reidlab.models.build_model`), as every method of the family starts;
    * ``lab``: the backbone's random initialisation drawn with :data:`LAB_START_SEED`. The lab is calibrated so
      that this start sits where an ImageNet start leaves a method on a real dataset, far below the supervised
      ceiling, with first clusters that training can grow (benchmarks/CALIBRATION.md: LabNet pretrained on other
      SynthMarkets was either too strong to leave room, or transferred so poorly that nothing bootstrapped);
    * ``tiny``: LabNet pretrained briefly with labels on a different SynthMarket
      (:func:`reidlab.training.supervised.source_pretrained_model`), so that the tests' few iterations begin
      from features that cluster.

    ``init="random"``: every weight drawn from ``seed`` instead (tests and smoke runs).

    With ``config.ibn`` the backbone is its IBN-a variant (IBN-Net's ImageNet weights when cached; LabNet-IBN
    at lab and tiny scale, from the same start). The method's stage then makes the model it trains from it: the
    part-based methods add a part head and part necks initialised from ``seed`` (the same whatever the start),
    the domain-adaptation methods give every BatchNorm a source and a target copy.
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    backbone = ibn_backbone(config.backbone) if config.ibn else config.backbone  # IBN-a: HHCL Table 3
    if init == "random" or check_scale(scale) == "lab":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed if init == "random" else LAB_START_SEED)
            model = build_model(backbone, pooling=config.pooling, pretrained=False)
    elif scale == "full":
        model = build_model(backbone, pooling=config.pooling, pretrained=True)
    else:
        pretrained = source_pretrained_model(backbone, scale=scale, device=device, progress=progress)
        model = build_model(backbone, pooling=config.pooling, pretrained=False)
        missing, unexpected = model.load_state_dict(pretrained.state_dict(), strict=False)
        if unexpected or any(not key.startswith("pool.") for key in missing):  # only GeM's p may be new
            raise RuntimeError(f"source-pretrained weights do not fit: missing {missing}, unexpected {unexpected}")
    return get_method(config.method).stage.build_model(model, config, seed=seed)
