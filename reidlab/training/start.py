"""Where a training run starts: the start model of a method at a scale."""

from __future__ import annotations

import torch

from reidlab.models import build_model, ibn_backbone
from reidlab.training.config import TrainConfig
from reidlab.training.methods import get_method
from reidlab.training.supervised import source_pretrained_model

__all__ = ["INITS", "build_start_model"]

INITS = ("pretrained", "random")


def build_start_model(config: TrainConfig, *, scale: str, seed: int = 0, init: str = "pretrained",
                      device: str | torch.device | None = None, progress: bool = True) -> torch.nn.Module:
    """The model a run of ``config`` starts from (README, "Where training starts").

    At ``full`` scale: ``config.backbone`` with ImageNet weights when they are in the local torch cache
    (:func:`reidlab.models.build_model`), as every method of the family starts. At ``lab`` and ``tiny``
    scale: LabNet pretrained with labels on a different SynthMarket
    (:func:`reidlab.training.supervised.source_pretrained_model`), reidlab's stand-in for ImageNet weights.
    With ``config.ibn`` the backbone is its IBN-a variant (IBN-Net's ImageNet weights when cached; at lab
    scale LabNet-IBN, pretrained on the same source). The method's stage then makes the model it trains from
    it: the part-based methods add a part head and part necks initialised from ``seed`` (the same whether or
    not the start model was already cached), the domain-adaptation methods give every BatchNorm a source
    and a target copy.
    ``init="random"`` starts every weight from random values instead (tests and smoke runs).
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    backbone = ibn_backbone(config.backbone) if config.ibn else config.backbone  # IBN-a: HHCL Table 3
    if init == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
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
