"""Figures shared by the notebooks: image grids and part-mask overlays.

All functions build figures with matplotlib's object API and return them (no global pyplot state), so a
notebook displays them and a script can save them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from PIL import Image

# SynthMarket's part labels (reidlab.data.synthmarket) and one colour each.
PART_NAMES = ("background", "head", "upper body", "lower body", "shoes", "accessory")
PART_COLOURS = np.array(
    [[0, 0, 0], [230, 159, 0], [86, 180, 233], [0, 158, 115], [240, 228, 66], [204, 121, 167]], dtype=np.uint8
)


def load_rgb(path: str | Path) -> np.ndarray:
    """An image file as an ``(H, W, 3)`` uint8 array."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def load_mask(path: str | Path) -> np.ndarray:
    """A label mask file as an ``(H, W)`` integer array."""
    with Image.open(path) as image:
        return np.asarray(image)


def mask_to_rgb(mask: np.ndarray, colours: np.ndarray = PART_COLOURS) -> np.ndarray:
    """Colour a label mask ``(H, W)`` with one colour per label; returns ``(H, W, 3)`` uint8."""
    mask = np.asarray(mask)
    if mask.max(initial=0) >= len(colours):
        raise ValueError(f"mask has label {int(mask.max())} but only {len(colours)} colours were given")
    return colours[mask]


def overlay_mask(image: np.ndarray, mask: np.ndarray, *, alpha: float = 0.5, colours: np.ndarray = PART_COLOURS) -> np.ndarray:
    """Blend the coloured ``mask (H, W)`` over ``image (H, W, 3)``; background pixels stay as they are."""
    image = np.asarray(image, dtype=np.float32)
    if image.shape[:2] != np.shape(mask):
        raise ValueError(f"image {image.shape[:2]} and mask {np.shape(mask)} differ in size")
    coloured = mask_to_rgb(mask, colours).astype(np.float32)
    foreground = (np.asarray(mask) > 0)[..., None]
    blended = np.where(foreground, (1 - alpha) * image + alpha * coloured, image)
    return blended.round().astype(np.uint8)


def part_legend(colours: np.ndarray = PART_COLOURS, names: Sequence[str] = PART_NAMES) -> list[Patch]:
    """Legend handles for the part colours."""
    return [Patch(color=np.asarray(c) / 255, label=n) for c, n in zip(colours, names)]


def image_grid(
    images: Sequence[np.ndarray],
    *,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    cell_size: tuple[float, float] = (1.2, 2.4),
    suptitle: str | None = None,
) -> Figure:
    """A grid of images with optional titles.

    Args:
        images: ``(H, W, 3)`` arrays (or ``(H, W)`` for grey).
        titles: one per image.
        ncols: images per row.
        cell_size: inches per image (width, height).
        suptitle: figure title.
    """
    if len(images) == 0:
        raise ValueError("image_grid needs at least one image")
    nrows = -(-len(images) // ncols)
    ncols = min(ncols, len(images))
    fig = Figure(figsize=(cell_size[0] * ncols, cell_size[1] * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i < len(images):
            ax.imshow(images[i], interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def plot_masks(records: Sequence, *, alpha: float = 0.55) -> Figure:
    """Image, mask and overlay for each record with a ``mask_path`` (three rows, one column per record)."""
    images, titles = [], []
    rows = ([], [], [])
    for r in records:
        if getattr(r, "mask_path", None) is None:
            raise ValueError(f"record {r.path!r} has no mask_path; only SynthMarket has ground-truth masks")
        image, mask = load_rgb(r.path), load_mask(r.mask_path)
        rows[0].append(image)
        rows[1].append(mask_to_rgb(mask))
        rows[2].append(overlay_mask(image, mask, alpha=alpha))
    for name, row in zip(("image", "mask", "overlay"), rows):
        images.extend(row)
        titles.extend(f"{name}" for _ in row)
    fig = image_grid(images, titles=titles, ncols=len(records))
    fig.legend(handles=part_legend(), loc="outside lower center", ncols=len(PART_NAMES), fontsize=7)
    return fig
