"""The notebooks' colours, in one place: body regions, parsed parts, identities and cameras.

* Ground-truth body regions of SynthMarket (:data:`PART_COLOURS`) use the Okabe-Ito colours (readable with
  every common colour-vision deficiency): head orange, upper body sky blue, lower body bluish green, shoes
  yellow, accessory reddish purple.
* Parsed parts of SCWM (:data:`PARSING_COLOURS`) have no names, only an order from the top; they use dark,
  saturated colours that none of the region colours resembles, so a predicted part is never read as a
  ground-truth region.
* The background (and occluders) is never tinted: its legend entry is an empty box.
* Identities and pseudo-labels (:func:`identity_colours`) use matplotlib's qualitative ``tab20`` family
  without its greys (grey marks DBSCAN's outliers); cameras (:func:`camera_colours`) use ``Dark2``, so a
  plot coloured by camera never looks like one coloured by identity.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.colors import to_rgba
from matplotlib.patches import Patch

__all__ = [
    "BACKGROUND_PATCH",
    "OUTLIER_COLOUR",
    "PARSING_COLOURS",
    "PART_COLOURS",
    "camera_colours",
    "identity_colours",
    "legend_patches",
]

# Index = SynthMarket's label (reidlab.data.synthmarket.PART_NAMES); row 0, the background, is never drawn.
PART_COLOURS = np.array(
    [[0, 0, 0], [230, 159, 0], [86, 180, 233], [0, 158, 115], [240, 228, 66], [204, 121, 167]], dtype=np.uint8
)
# Index 0 the background (never drawn), then part0 (top), part1, ...: none close to a PART_COLOURS colour.
PARSING_COLOURS = np.array(
    [[0, 0, 0], [200, 20, 60], [40, 60, 190], [140, 80, 20], [110, 40, 160], [110, 0, 0], [120, 120, 0],
     [90, 90, 90], [0, 0, 100]],
    dtype=np.uint8,
)
OUTLIER_COLOUR = "0.6"  # grey: DBSCAN's outliers in every scatter
# The legend entry of the untinted background: an empty box.
BACKGROUND_PATCH = {"facecolor": "none", "edgecolor": "0.4", "label": "background (not tinted)"}


def legend_patches(colours: np.ndarray, names) -> list[Patch]:
    """Legend handles: a filled box per colour (``(k, 3)`` uint8) and name (``upper_body`` shows as "upper body")."""
    return [Patch(color=np.asarray(c) / 255, label=str(n).replace("_", " ")) for c, n in zip(colours, names)]


def identity_colours(max_colours: int = 20) -> np.ndarray:
    """(max_colours, 4) RGBA of a qualitative palette without greys (grey marks outliers).

    matplotlib's ``tab20`` (its ten strong colours first, then their light versions), then ``tab20b`` and
    ``tab20c``; greys are left out, which leaves 54 colours.

    Raises:
        ValueError: ``max_colours`` is not between 1 and the palette size.
    """
    tab20, tab20b, tab20c = (matplotlib.colormaps[name].colors for name in ("tab20", "tab20b", "tab20c"))
    rgba = np.array([to_rgba(c) for c in [*tab20[0::2], *tab20[1::2], *tab20b, *tab20c]])
    palette = rgba[np.ptp(rgba[:, :3], axis=1) > 0.05]  # no greys
    if not 1 <= max_colours <= len(palette):
        raise ValueError(f"max_colours must be between 1 and {len(palette)}, got {max_colours}")
    return palette[:max_colours]


def camera_colours(num_cameras: int) -> np.ndarray:
    """(num_cameras, 4) RGBA, one per camera: ``Dark2`` (8 colours), then ``Set1`` for up to 15 cameras."""
    colours = [*matplotlib.colormaps["Dark2"].colors, *matplotlib.colormaps["Set1"].colors[:7]]
    if not 1 <= num_cameras <= len(colours):
        raise ValueError(f"num_cameras must be between 1 and {len(colours)}, got {num_cameras}")
    return np.array([to_rgba(c) for c in colours[:num_cameras]])
