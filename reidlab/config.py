"""Scales and data paths shared by the library, the notebooks and the command line.

reidlab runs every experiment at one of three scales:

* ``tiny``: seconds, for the tests (a tiny SynthMarket, LabNet, a few iterations);
* ``lab``: minutes on two CPU cores (SynthMarket's lab preset, LabNet from its initialisation), what ``make demo`` runs;
* ``full``: the papers' settings (ResNet-50 on Market-1501, DukeMTMC-reID, MSMT17), a GPU job.

Generated datasets and cached models live under :func:`data_dir`.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["LAB_INPUT_SIZE", "NOTEBOOK_DIR", "SCALES", "check_scale", "data_dir", "default_synthmarket_root", "synthmarket_preset"]

SCALES = ("tiny", "lab", "full")
# Input (height, width) of every network at lab scale: a quarter of SynthMarket's 128 x 64 pixels and about 4x
# faster on two cores, so that `make demo` (every notebook, the start model and the ceiling) fits in half an hour.
# LabNet's feature map is then 8 x 4. Tiny scale keeps 128 x 64.
LAB_INPUT_SIZE = (64, 32)
# The SynthMarket preset generated at each scale when no dataset root is given.
_SCALE_PRESETS = {"tiny": "tiny", "lab": "lab", "full": "default"}
_PACKAGE_DIR = Path(__file__).resolve().parent
# The workbench notebooks, beside the package in a checkout.
NOTEBOOK_DIR = _PACKAGE_DIR.parent / "notebooks"


def check_scale(scale: str) -> str:
    """Return ``scale`` if it is one of :data:`SCALES`, else raise a ``ValueError`` listing them."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    return scale


def data_dir() -> Path:
    """Where generated datasets live: ``$REIDLAB_DATA``, else the checkout's ``data/``, else ``./data``."""
    if os.environ.get("REIDLAB_DATA"):
        return Path(os.environ["REIDLAB_DATA"]).expanduser()
    checkout = _PACKAGE_DIR.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout / "data"
    return Path.cwd() / "data"


def synthmarket_preset(scale: str) -> str:
    """The SynthMarket preset (:data:`reidlab.data.synthmarket.PRESETS`) generated at ``scale``."""
    return _SCALE_PRESETS[check_scale(scale)]


def default_synthmarket_root(scale: str) -> Path:
    """The SynthMarket folder used at ``scale`` when no dataset root is given."""
    preset = synthmarket_preset(scale)
    return data_dir() / ("synthmarket" if preset == "default" else f"synthmarket-{preset}")
