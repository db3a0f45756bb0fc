"""Small shared helpers: device choice, seeding and atomic file writes."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

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


def write_atomically(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(partial)`` on a temporary name next to ``path``, then rename it to ``path``.

    A reader (or a resumed run) sees either the old file or the complete new one, never a partial one.
    """
    path = Path(path)
    partial = path.with_name(f"{path.name}.partial-{os.getpid()}")
    write(partial)
    os.replace(partial, path)
