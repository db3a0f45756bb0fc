"""Small shared helpers: device choice and seeding."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on: ``device`` if given, else CUDA when available, else the CPU.

    Args:
        device: ``None`` (automatic), or anything ``torch.device`` accepts (``"cpu"``, ``"cuda:1"``).

    Raises:
        ValueError: a CUDA device was asked for but none is available.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} was requested but CUDA is not available; use 'cpu' or None")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so that CPU runs repeat exactly.

    Args:
        seed: the seed.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
