"""Figures shared by the notebooks: image grids, ground-truth part masks and unsupervised parsings.

All functions build figures with matplotlib's object API and return them (no global pyplot state), so a
notebook displays them and a script can save them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.patches import Patch
from PIL import Image

from reidlab.data.synthmarket import PART_NAMES
from reidlab.lab.palette import (
    BACKGROUND_PATCH,
    PARSING_COLOURS,
    PART_COLOURS,
    legend_patches,
)
from reidlab.plotting import Figure


def identity_records(records: Sequence, pid: int, *, limit: int = 12) -> list:
    """Up to ``limit`` records of identity ``pid``: one per camera first, then the rest, so that a row of
    them shows the camera changes."""
    own = sorted((r for r in records if r.pid == pid), key=lambda r: r.camid)
    firsts = {r.camid: r for r in reversed(own)}
    ordered = list(firsts.values()) + [r for r in own if r not in firsts.values()]
    return ordered[:limit]


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


def part_legend() -> list[Patch]:
    """Legend handles of the ground-truth regions: the untinted background, then a box per region colour."""
    return [Patch(**BACKGROUND_PATCH), *legend_patches(PART_COLOURS[1:], PART_NAMES[1:])]


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
    fig.legend(handles=part_legend(), loc="outside lower center", ncols=3, fontsize=7)
    return fig


# --------------------------------------------------------------------------------------------------
# Unsupervised parsings (SCWM's parts, reidlab.parsing): parts have no names, only an order top to bottom
# --------------------------------------------------------------------------------------------------

def parsing_to_mask(labels: np.ndarray, *, num_parts: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """A parsing in :mod:`reidlab.parsing`' numbering as a label mask that :func:`overlay_mask` can draw.

    :func:`reidlab.parsing.cascaded_parsing` numbers the parts ``0..l-2`` from the top and gives the
    background the last label ``l - 1``; a drawable mask has the background at 0, so part ``k`` becomes
    ``k + 1`` (its colour in :data:`PARSING_COLOURS`).

    Args:
        labels: parsing ``(h, w)`` in ``0..l-1`` (NumPy or torch).
        num_parts: ``l``, the background included.
        size: ``(H, W)`` to resize to (nearest neighbour: pixel ``(y, x)`` takes cell
            ``(y h // H, x w // W)``, a block of pixels per cell); ``None`` keeps ``(h, w)``.

    Returns:
        mask ``(H, W)`` int64 in ``0..l-1``, 0 = background.
    """
    labels = np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels).astype(np.int64)
    if labels.ndim != 2:
        raise ValueError(f"labels must be one (h, w) parsing, got shape {labels.shape}")
    if not 2 <= num_parts <= len(PARSING_COLOURS):
        raise ValueError(f"num_parts must be in 2..{len(PARSING_COLOURS)} (one colour each), got {num_parts}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_parts):
        raise ValueError(f"labels must be in 0..{num_parts - 1}, got {labels.min()}..{labels.max()}")
    mask = (labels + 1) % num_parts
    if size is not None and tuple(size) != mask.shape:
        rows = np.arange(size[0]) * mask.shape[0] // size[0]
        cols = np.arange(size[1]) * mask.shape[1] // size[1]
        mask = mask[np.ix_(rows, cols)]
    return mask


def overlay_parsing(image: np.ndarray, labels: np.ndarray, *, num_parts: int, alpha: float = 0.6) -> np.ndarray:
    """Blend a parsing ``(h, w)`` (:mod:`reidlab.parsing` numbering) over ``image (H, W, 3)``; background stays."""
    mask = parsing_to_mask(labels, num_parts=num_parts, size=np.shape(image)[:2])
    return overlay_mask(image, mask, alpha=alpha, colours=PARSING_COLOURS)


def parsing_legend(num_parts: int) -> list[Patch]:
    """Legend handles for the parts of an ``l``-part parsing: ``part0 (top)`` ..., then the untinted background."""
    names = [f"part{k}" + (" (top)" if k == 0 else "") for k in range(num_parts - 1)]
    return [*legend_patches(PARSING_COLOURS[1:num_parts], names), Patch(**BACKGROUND_PATCH)]


def legend_columns(handles: Sequence[Patch], width: float, *, fontsize: float = 7) -> int:
    """How many legend columns of ``handles`` fit in ``width`` inches at ``fontsize`` points, so that a legend
    under a figure is never clipped at its edges: every column is as wide as the longest label (about 0.55
    em a character) plus the box and the padding."""
    longest = max((len(handle.get_label()) for handle in handles), default=0)
    column = 0.55 * fontsize / 72 * longest + 4.5 * fontsize / 72  # inches: label + box and padding
    return max(1, min(len(handles), int(0.95 * width / column)))


def plot_parsings(
    images: Sequence[np.ndarray],
    parsings: Mapping[str, Sequence[np.ndarray]],
    *,
    num_parts: int,
    gt_masks: Sequence[np.ndarray] | None = None,
    layout: str = "rows",
    alpha: float = 0.6,
    cell_size: tuple[float, float] = (1.0, 2.0),
    suptitle: str | None = None,
) -> Figure:
    """Parsings of the same images side by side, each overlaid on its image (as SCWM Figures 3 and 4).

    Args:
        images: ``N`` images ``(H, W, 3)`` uint8.
        parsings: name -> ``N`` parsings ``(h, w)`` in :mod:`reidlab.parsing`' numbering (a ``(N, h, w)``
            tensor works), e.g. ``{"plain": ..., "both corrections": ...}``; one panel each per image.
        num_parts: ``l``, the background included.
        gt_masks: ``N`` ground-truth label masks ``(H, W)`` (SynthMarket's, :data:`PART_NAMES`), drawn in
            the first panel instead of the bare image.
        layout: ``"rows"``: one row per image and one column per parsing (SCWM Figure 3);
            ``"columns"``: one column per image (compact for many images).
        alpha: opacity of the part colours.
        cell_size: inches per panel (width, height).
        suptitle: figure title.
    """
    if layout not in ("rows", "columns"):
        raise ValueError(f"layout must be 'rows' or 'columns', got {layout!r}")
    if len(images) == 0:
        raise ValueError("plot_parsings needs at least one image")
    for name, labels in parsings.items():
        if len(labels) != len(images):
            raise ValueError(f"parsing {name!r} has {len(labels)} masks for {len(images)} images")
    if gt_masks is not None and len(gt_masks) != len(images):
        raise ValueError(f"gt_masks has {len(gt_masks)} masks for {len(images)} images")
    first = "ground truth" if gt_masks is not None else "image"
    panels = [first, *parsings]  # one per image and panel kind
    n_images, n_panels = len(images), len(panels)
    nrows, ncols = (n_images, n_panels) if layout == "rows" else (n_panels, n_images)
    fig = Figure(figsize=(cell_size[0] * ncols, cell_size[1] * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, image in enumerate(images):
        for p, panel in enumerate(panels):
            ax = axes[i, p] if layout == "rows" else axes[p, i]
            if p == 0:
                picture = image if gt_masks is None else overlay_mask(image, np.asarray(gt_masks[i]), alpha=alpha)
            else:
                picture = overlay_parsing(image, parsings[panel][i], num_parts=num_parts, alpha=alpha)
            ax.imshow(picture, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.spines[:].set_visible(False)
            if layout == "rows" and i == 0:
                ax.set_title(panel, fontsize=8)
            if layout == "columns" and i == 0:
                ax.set_ylabel(panel, fontsize=8)
    handles = parsing_legend(num_parts)
    if gt_masks is not None:
        handles += legend_patches(PART_COLOURS[1:], [f"GT {name}" for name in PART_NAMES[1:]])
    fig.legend(handles=handles, loc="outside lower center", ncols=legend_columns(handles, fig.get_figwidth(), fontsize=7),
               fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig
