"""Small shared helpers: device choice, seeding and atomic file writes."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch


def format_duration(seconds: float) -> str:
    """``"40 s"`` below a minute and a half, ``"12 min"`` above (progress and time-estimate messages)."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


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
    When ``write`` or the rename fails (a full disk, say), the partial file it made is removed and the
    error raised: nothing is left behind, and a retry does not pile up partial files.
    """
    path = Path(path)
    partial = path.with_name(f"{path.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        write(partial)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)  # this call's own file: its name is unique to it
        raise


def check_writable(folder: str | Path, *, what: str = "output folder") -> Path:
    """Create ``folder`` (and its parents) if needed and check that files can be written in it.

    Called before work starts, so that a read-only or missing output folder is reported at once rather
    than after an epoch of training. The probe file is unique to this call and removed at once.

    Raises:
        PermissionError / OSError: with the folder named and what to do.
    """
    folder = Path(folder)
    probe = folder / f".reidlab-write-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
    except OSError as error:
        raise type(error)(f"cannot write to the {what} {folder} ({error.strerror or error}): choose a "
                          f"writable folder or fix its permissions") from error
    probe.unlink(missing_ok=True)
    return folder


def load_torch_file(path: str | Path, *, what: str = "checkpoint", fix: str | None = None) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with an error that names the file and the fix.

    A truncated or empty file (an interrupted copy, a full disk) or one that is not a torch file raises a
    ``ValueError`` saying so, instead of an ``EOFError`` or an unpickling error without a path.
    """
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # EOFError, RuntimeError, pickle.UnpicklingError...
        hint = fix or "delete it (or move it away) and run again"
        raise ValueError(f"{path} is not a readable {what} ({type(error).__name__}: {error}); it may be "
                         f"truncated or written by something else: {hint}") from error
