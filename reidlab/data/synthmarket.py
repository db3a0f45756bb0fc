"""SynthMarket: reidlab's procedurally generated pedestrian re-ID dataset with part masks.

No public re-ID dataset can be downloaded in every classroom, so reidlab draws its own. SynthMarket
copies the *protocol* of Market-1501 (Zheng et al., ICCV 2015; SPEC section 7): six cameras, 128 x 64
crops, disjoint train and test identities, one query per test identity and camera, a gallery with
distractors (pid 0) and junk (pid -1). Every image comes with an exact ground-truth part mask, which
the real datasets lack, so part-based ideas (SCWM's spatial cascade, SPEC section 4.4) can be checked.

Layout written at ``root``::

    root/bounding_box_train/*.jpg          training identities
    root/query/*.jpg                       one image per test identity and camera
    root/bounding_box_test/*.jpg           gallery: the other test images + distractors + junk
    root/masks/bounding_box_train/*.png    part mask per image, same stem as the .jpg
    root/masks/query/*.png
    root/masks/bounding_box_test/*.png
    root/synthmarket.json                  manifest, written last, with "complete": true

Names follow Market-1501 exactly: ``PPPP_cCsS_FFFFFF_BB.jpg`` with the person id on 4 digits,
camera ``C`` in 1..6, sequence ``S`` in 1..6, frame ``FFFFFF`` and detection box ``BB``, e.g.
``0042_c3s2_014025_01.jpg``. Distractors have pid 0 (``0000_c5s1_031402_02.jpg``) and junk pid -1
(``-1_c3s1_000401_02.jpg``). Masks are 8-bit single-channel PNGs: 0 background (occluders included),
1 head (with hair), 2 upper body (with arms), 3 lower body (with legs), 4 shoes, 5 accessory (bag
or backpack); see :data:`PART_NAMES`.

How it is made (one section of this file each):

1. *Identities -> appearance.* Colours come from a small palette (12 clothing colours, 5 hair
   colours, 4 skin tones, 6 shoe colours), so many identities share their top or their trousers.
   A share of identities are *near-twins* of another one that differ in one part only (shoes, bag
   or shirt pattern): telling them apart needs fine, part-level cues.
2. *Cameras.* Each camera has its own colour cast, brightness, contrast, background texture
   (pavement tiles, grass, striped wall, colour noise, bricks, asphalt), blur, noise, resolution and
   preferred viewpoints. A camera is a global photometric transform plus a scene: what stays the
   same across cameras (clothing colours, patterns, shoes, bag) *is* the identity.
3. *Rendering.* A person (head, hair, torso with pattern, arms, trousers / shorts / skirt, shoes,
   bag) is drawn from the front, back or side with PIL; the image and the mask are drawn with the
   same shapes, cropped with the same jittered box (detector misalignment) and resized with the same
   geometry (nearest neighbour for the mask), so the mask is exact. Occluders (pole, box, passer-by)
   overwrite both, with label 0.
4. *Splits.* Market-1501 style, see :func:`plan_samples`.
5. *Writer.* Files go to a sibling ``<root>.partial-<pid>-<token>`` folder, the manifest last, then
   one rename makes ``root`` appear complete; an interrupted run never leaves a loadable half dataset.

What makes it hard, all scaled by ``difficulty`` (0 = easy): strong per-camera casts, textured
backgrounds that cover about half of the crop, shared palette colours, twins, viewpoint changes (a
backpack is seen from the back and side, only its straps from the front; a logo only from the
front), misaligned crops, occlusions, blur and noise. An untrained CNN with global average pooling
mostly sees the camera and the background; a trained one can learn the clothing.

Everything random is drawn from ``np.random.default_rng`` seeded by ``(seed, stream, pid, image)``,
so the same preset, seed and difficulty give byte-identical files whatever the number of workers.

Typical use::

    root = generate_synthmarket("data/SynthMarket", preset="default", seed=0)

or ``python -m reidlab.data.synthmarket --root data/SynthMarket --preset default --seed 0``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import multiprocessing
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = [
    "IMAGE_SIZE",
    "PART_NAMES",
    "PRESETS",
    "Appearance",
    "Camera",
    "SampleSpec",
    "SynthMarketConfig",
    "generate_synthmarket",
    "main",
    "plan_samples",
    "render_sample",
    "sample_appearance",
    "sample_cameras",
]

logger = logging.getLogger(__name__)

IMAGE_SIZE = (128, 64)  # (height, width), Market-1501's crop size
PART_NAMES = ("background", "head", "upper_body", "lower_body", "shoes", "accessory")
SPLIT_DIRS = ("bounding_box_train", "query", "bounding_box_test")
MANIFEST_NAME = "synthmarket.json"
FORMAT_VERSION = 1

BACKGROUND, HEAD, UPPER, LOWER, SHOES, ACCESSORY = range(6)

# Random streams: the first two entries of every seed key, (seed, stream, ...).
_STREAM_IDENTITY, _STREAM_CAMERA, _STREAM_SPLIT, _STREAM_IMAGE, _STREAM_DISTRACTOR, _STREAM_JUNK = range(1, 7)

# Rendering happens on a canvas at twice the output resolution; the nominal crop is its centre.
_SCALE = 2
_CROP_H, _CROP_W = IMAGE_SIZE[0] * _SCALE, IMAGE_SIZE[1] * _SCALE
_CANVAS_H, _CANVAS_W = _CROP_H + 96, _CROP_W + 96


# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SynthMarketConfig:
    """Size of a SynthMarket dataset (what ``difficulty`` does not change).

    Attributes:
        n_train_ids: Identities in ``bounding_box_train``.
        n_test_ids: Identities in ``query`` and ``bounding_box_test`` (disjoint from train).
        images_per_id: Inclusive range of images per identity. At least 4, since a test identity needs
            two cameras with two images each (one query, one gallery image per camera).
        cameras_per_id: Inclusive range of cameras an identity is seen in, at least 2.
        cameras: Number of cameras, 2..6 (each has its own background kind).
        twin_fraction: Share of identities that copy an earlier identity of their split and change
            one part (shoes, bag or pattern), at ``difficulty=1``; scaled by the difficulty, at most 0.6.
        n_distractors: Gallery images with pid 0: people who are not in the dataset, or background.
        n_junk: Gallery images with pid -1: badly cropped, mostly background detections.
        jpeg_quality: JPEG quality of the images (PIL, fixed so files are reproducible).
    """

    n_train_ids: int = 150
    n_test_ids: int = 150
    images_per_id: tuple[int, int] = (12, 28)
    cameras_per_id: tuple[int, int] = (2, 6)
    cameras: int = 6
    twin_fraction: float = 0.15
    n_distractors: int = 400
    n_junk: int = 250
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        if self.n_train_ids < 1 or self.n_test_ids < 1:
            raise ValueError(
                f"n_train_ids and n_test_ids must be >= 1, got {self.n_train_ids} and {self.n_test_ids}"
            )
        if self.n_train_ids + self.n_test_ids > 9999:
            raise ValueError(
                f"at most 9999 identities fit the 4-digit pid, got {self.n_train_ids + self.n_test_ids}"
            )
        if not 2 <= self.cameras <= 6:
            raise ValueError(f"cameras must be in 2..6, got {self.cameras}")
        low, high = self.images_per_id
        if not 4 <= low <= high:
            raise ValueError(f"images_per_id must be (low, high) with 4 <= low <= high, got {self.images_per_id}")
        low, high = self.cameras_per_id
        if not 2 <= low <= high <= self.cameras:
            raise ValueError(
                f"cameras_per_id must be (low, high) with 2 <= low <= high <= cameras={self.cameras}, "
                f"got {self.cameras_per_id}"
            )
        if not 0.0 <= self.twin_fraction <= 1.0:
            raise ValueError(f"twin_fraction must be in [0, 1], got {self.twin_fraction}")
        if self.n_distractors < 0 or self.n_junk < 0:
            raise ValueError(f"n_distractors and n_junk must be >= 0, got {self.n_distractors} and {self.n_junk}")
        if not 1 <= self.jpeg_quality <= 95:
            raise ValueError(f"jpeg_quality must be in 1..95, got {self.jpeg_quality}")


PRESETS: dict[str, SynthMarketConfig] = {
    # For tests and quick demos: ~250 images, generated in a few seconds.
    "tiny": SynthMarketConfig(
        n_train_ids=14, n_test_ids=12, images_per_id=(6, 10), cameras_per_id=(2, 4),
        n_distractors=20, n_junk=12,
    ),
    # The lab scale: 300 identities, ~6,700 images (Market-1501 has 1,501 identities, 32,668 images).
    "default": SynthMarketConfig(),
}


# --------------------------------------------------------------------------------------------------
# 1. Identities -> appearance
# --------------------------------------------------------------------------------------------------

Colour = tuple[float, float, float]

_CLOTHING: dict[str, Colour] = {
    "black": (32, 32, 36), "white": (228, 228, 220), "grey": (128, 128, 132), "navy": (34, 44, 92),
    "blue": (52, 104, 190), "red": (188, 36, 42), "green": (44, 122, 64), "khaki": (190, 170, 120),
    "brown": (112, 72, 42), "yellow": (226, 192, 44), "pink": (226, 142, 172), "purple": (112, 52, 142),
}
# Frequencies of tops and bottoms: dark and neutral colours are common, as in a real street.
_UPPER_WEIGHTS = {"black": 14, "white": 13, "grey": 11, "navy": 9, "blue": 9, "red": 8, "green": 7,
                  "khaki": 5, "brown": 5, "yellow": 6, "pink": 6, "purple": 7}
_LOWER_WEIGHTS = {"black": 24, "navy": 14, "blue": 18, "grey": 12, "khaki": 10, "brown": 6, "white": 5,
                  "red": 3, "green": 3, "yellow": 1, "pink": 2, "purple": 2}
_SKIN: dict[str, Colour] = {"light": (236, 198, 170), "medium": (212, 162, 124), "tan": (170, 116, 80),
                            "dark": (104, 70, 46)}
_HAIR: dict[str, Colour] = {"black": (22, 20, 20), "dark_brown": (58, 38, 26), "brown": (104, 68, 36),
                            "blonde": (204, 170, 104), "grey": (156, 156, 156)}
_SHOES: dict[str, Colour] = {"black": (26, 26, 28), "white": (236, 236, 236), "brown": (96, 60, 34),
                             "grey": (120, 120, 126), "red": (196, 40, 40), "blue": (40, 80, 190)}
_BAGS = ("black", "brown", "red", "navy", "grey", "green", "khaki")

PATTERNS = ("solid", "stripes", "check", "logo")
_PATTERN_WEIGHTS = (0.45, 0.2, 0.15, 0.2)
LOWER_KINDS = ("trousers", "shorts", "skirt")
_LOWER_KIND_WEIGHTS = (0.68, 0.17, 0.15)
BAG_KINDS = ("none", "backpack", "shoulder")
_BAG_KIND_WEIGHTS = (0.5, 0.28, 0.22)
HAIR_STYLES = ("short", "medium", "long")
_HAIR_STYLE_WEIGHTS = (0.5, 0.25, 0.25)
LOGO_SHAPES = ("circle", "square", "diamond", "triangle")
TWIN_PARTS = ("shoes", "bag", "pattern")


@dataclass(frozen=True)
class Appearance:
    """What a person looks like, the same in every camera: this is the identity.

    Colours are palette names (several identities share each); :meth:`rgb` gives the drawn colour,
    the palette colour shifted by this identity's small ``tone`` so shared colours are close, not equal.

    Attributes:
        skin, hair, hair_style: Skin tone and hair colour / style (``short``, ``medium``, ``long``).
        upper, pattern, pattern_colour, pattern_period, logo_shape, sleeves: The top: main colour,
            ``solid`` / ``stripes`` / ``check`` / ``logo`` (the logo only shows from the front), second
            colour, stripe period as a fraction of the body height, logo shape, ``long`` or ``short``.
        lower_kind, lower: ``trousers``, ``shorts`` or ``skirt`` and its colour.
        shoes, white_soles: Shoe colour and whether the soles are white (sneakers).
        bag, bag_colour, bag_side: ``none``, ``backpack`` (seen from back and side, straps only from
            the front) or ``shoulder`` (hangs on one side: +1 the person's left, -1 the right).
        height, width: Body height and width factors (about 0.9..1.07 and 0.85..1.2).
        tone: Per-identity colour offset (3,) added to the palette colours.
        twin_of: pid of the identity this one copies except for ``twin_part``; None if not a twin.
        twin_part: ``shoes``, ``bag`` or ``pattern``; None if not a twin.
    """

    skin: str
    hair: str
    hair_style: str
    upper: str
    pattern: str
    pattern_colour: str
    pattern_period: float
    logo_shape: str
    sleeves: str
    lower_kind: str
    lower: str
    shoes: str
    white_soles: bool
    bag: str
    bag_colour: str
    bag_side: int
    height: float
    width: float
    tone: tuple[float, float, float]
    twin_of: int | None = None
    twin_part: str | None = None

    def rgb(self, name: str, palette: dict[str, Colour] = _CLOTHING) -> Colour:
        """Drawn colour of palette entry ``name`` for this identity."""
        return tuple(min(255.0, max(0.0, c + t)) for c, t in zip(palette[name], self.tone))

    def signature(self) -> tuple:
        """The coarse look (palette names and kinds): equal for look-alikes."""
        return (self.upper, self.pattern, self.pattern_colour if self.pattern != "solid" else None,
                self.sleeves, self.lower_kind, self.lower, self.shoes, self.bag,
                self.bag_colour if self.bag != "none" else None, self.hair, self.hair_style)

    def describe(self) -> str:
        """A one-line description, e.g. ``red stripes/white top, navy trousers, black shoes, no bag``."""
        top = self.upper if self.pattern == "solid" else f"{self.upper} {self.pattern}/{self.pattern_colour}"
        bag = "no bag" if self.bag == "none" else f"{self.bag_colour} {self.bag}"
        return (f"{top} top ({self.sleeves} sleeves), {self.lower} {self.lower_kind}, {self.shoes} shoes, "
                f"{bag}, {self.hair} {self.hair_style} hair")


def _choice(rng: np.random.Generator, options: Sequence, weights: Sequence[float] | None = None):
    p = None if weights is None else np.asarray(weights, dtype=float) / np.sum(weights)
    return options[int(rng.choice(len(options), p=p))]


def _other(rng: np.random.Generator, options: Sequence[str], current: str) -> str:
    return _choice(rng, [o for o in options if o != current])


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """Draw a random person from the palettes (the weights mimic a street: dark colours are common).

    Args:
        rng: The identity's generator, e.g. ``np.random.default_rng([seed, 1, pid])``.
    """
    upper = _choice(rng, list(_UPPER_WEIGHTS), list(_UPPER_WEIGHTS.values()))
    return Appearance(
        skin=_choice(rng, list(_SKIN)),
        hair=_choice(rng, list(_HAIR), (30, 25, 20, 15, 10)),
        hair_style=_choice(rng, HAIR_STYLES, _HAIR_STYLE_WEIGHTS),
        upper=upper,
        pattern=_choice(rng, PATTERNS, _PATTERN_WEIGHTS),
        pattern_colour=_other(rng, list(_CLOTHING), upper),
        pattern_period=float(rng.uniform(0.035, 0.06)),
        logo_shape=_choice(rng, LOGO_SHAPES),
        sleeves=_choice(rng, ("long", "short"), (0.55, 0.45)),
        lower_kind=_choice(rng, LOWER_KINDS, _LOWER_KIND_WEIGHTS),
        lower=_choice(rng, list(_LOWER_WEIGHTS), list(_LOWER_WEIGHTS.values())),
        shoes=_choice(rng, list(_SHOES), (30, 25, 12, 12, 8, 8)),
        white_soles=bool(rng.random() < 0.4),
        bag=_choice(rng, BAG_KINDS, _BAG_KIND_WEIGHTS),
        bag_colour=_choice(rng, _BAGS),
        bag_side=int(rng.choice((-1, 1))),
        height=float(rng.uniform(0.9, 1.07)),
        width=float(rng.uniform(0.85, 1.2)),
        tone=tuple(float(t) for t in rng.normal(0.0, 6.0, 3)),
    )


def _make_twin(original: Appearance, original_pid: int, rng: np.random.Generator) -> Appearance:
    """Copy ``original`` and change one part only: shoes, bag or shirt pattern."""
    part = _choice(rng, TWIN_PARTS)
    if part == "shoes":
        change = {"shoes": _other(rng, list(_SHOES), original.shoes)}
    elif part == "bag":
        if original.bag == "none":
            change = {"bag": _choice(rng, ("backpack", "shoulder"))}
        else:  # drop it, or change its kind or its colour
            change = _choice(rng, [{"bag": "none"}, {"bag": _other(rng, BAG_KINDS[1:], original.bag)},
                                   {"bag_colour": _other(rng, _BAGS, original.bag_colour)}])
    else:
        change = {"pattern": _other(rng, PATTERNS, original.pattern)}
    return dataclasses.replace(original, twin_of=original_pid, twin_part=part, **change)


def sample_identities(pids: Sequence[int], *, seed: int, twin_probability: float) -> dict[int, Appearance]:
    """Appearances of the identities of one split, in increasing pid order.

    With probability ``twin_probability`` an identity is a near-twin of an earlier (non-twin)
    identity of the same split (:func:`_make_twin`); otherwise it is drawn afresh, redrawn while its
    :meth:`Appearance.signature` equals one already used, so only twins look alike.

    Args:
        pids: The split's person ids.
        seed: Dataset seed; identity ``pid`` uses ``default_rng([seed, 1, pid])``.
        twin_probability: Chance that an identity is a twin.
    """
    appearances: dict[int, Appearance] = {}
    originals: list[int] = []
    used: set[tuple] = set()
    for pid in sorted(pids):
        rng = np.random.default_rng([seed, _STREAM_IDENTITY, pid])
        if originals and rng.random() < twin_probability:
            source = originals[int(rng.integers(len(originals)))]
            appearances[pid] = _make_twin(appearances[source], source, rng)
            continue
        for _ in range(50):
            appearance = sample_appearance(rng)
            if appearance.signature() not in used:
                break
        used.add(appearance.signature())
        appearances[pid] = appearance
        originals.append(pid)
    return appearances


# --------------------------------------------------------------------------------------------------
# 2. Camera model
# --------------------------------------------------------------------------------------------------

BACKGROUND_KINDS = ("tiles", "grass", "stripes", "noise", "bricks", "asphalt")
VIEWS = ("front", "back", "side")


@dataclass(frozen=True)
class Camera:
    """One camera: a scene (background) and a global photometric transform.

    Attributes:
        index: Camera number, 1-based as in the file names.
        background: Kind of background texture, one of :data:`BACKGROUND_KINDS`.
        colours: Three scene colours (ground, wall, accent) the texture is made of.
        horizon: Fraction of the canvas height where the wall meets the ground.
        texture_size: Tile / brick / stripe size in canvas pixels.
        gain: Per-channel colour cast (3,), multiplies the image.
        brightness: Overall brightness factor.
        contrast: Contrast factor around mid-grey.
        tint: Additive colour offset (3,).
        blur_sigma: Gaussian blur (pixels of the 128 x 64 output).
        noise_std: Sensor noise standard deviation (grey levels).
        resolution: Resolution of the sensor relative to the output (1 = sharp).
        view_probs: Probabilities of front, back and side views (a camera watches a path).
    """

    index: int
    background: str
    colours: tuple[Colour, Colour, Colour]
    horizon: float
    texture_size: float
    gain: tuple[float, float, float]
    brightness: float
    contrast: float
    tint: tuple[float, float, float]
    blur_sigma: float
    noise_std: float
    resolution: float
    view_probs: tuple[float, float, float]


_SCENE_COLOURS: dict[str, tuple[Sequence[Colour], Sequence[Colour], Sequence[Colour]]] = {
    # kind: (ground colours, wall colours, accent colours) to choose from
    "tiles": ([(150, 146, 140), (176, 160, 134), (152, 112, 96), (120, 126, 132)],
              [(200, 196, 186), (170, 180, 190)], [(90, 90, 90), (60, 60, 70)]),
    "grass": ([(74, 120, 56), (96, 136, 62), (60, 100, 60)], [(150, 140, 110), (120, 110, 90)],
              [(40, 70, 36), (110, 150, 70)]),
    "stripes": ([(130, 130, 130), (150, 140, 125)], [(210, 180, 120), (150, 190, 210), (220, 200, 200),
                                                       (180, 210, 160)],
                [(120, 60, 60), (60, 80, 140), (70, 120, 90), (200, 120, 50)]),
    "noise": ([(110, 120, 100), (130, 110, 100)], [(90, 110, 140), (140, 120, 90), (100, 130, 100)],
              [(200, 170, 120), (60, 60, 80), (170, 90, 90)]),
    "bricks": ([(125, 125, 128), (140, 135, 125)], [(160, 80, 60), (190, 150, 100), (130, 70, 60)],
               [(210, 200, 190), (170, 165, 160)]),
    "asphalt": ([(70, 72, 76), (86, 84, 82)], [(40, 44, 52), (70, 60, 52)],
                [(230, 230, 225), (230, 200, 60)]),
}


def sample_cameras(n_cameras: int, *, seed: int, difficulty: float) -> list[Camera]:
    """Draw the cameras of a dataset.

    The casts are spread around the colour wheel (camera ``c`` gets hue angle ``2 pi c / n`` plus
    jitter) and the brightness levels are spread too, so no two cameras look alike. Strengths scale
    with ``difficulty``: at 0 there is no cast, blur or noise.

    Args:
        n_cameras: Number of cameras, 2..6.
        seed: Dataset seed; camera ``c`` uses ``default_rng([seed, 2, c])``.
        difficulty: 0 = easy, 1 = default, larger = harder.
    """
    order = np.random.default_rng([seed, _STREAM_CAMERA, 0])
    kinds = [BACKGROUND_KINDS[i] for i in order.permutation(len(BACKGROUND_KINDS))]
    levels = order.permutation(np.linspace(-0.35, 0.35, n_cameras))
    cameras = []
    for c in range(1, n_cameras + 1):
        rng = np.random.default_rng([seed, _STREAM_CAMERA, c])
        kind = kinds[c - 1]
        grounds, walls, accents = _SCENE_COLOURS[kind]
        colours = tuple(tuple(float(np.clip(v + j, 0, 255)) for v, j in zip(_choice(rng, options),
                                                                           rng.normal(0, 8, 3)))
                        for options in (grounds, walls, accents))
        hue = 2 * math.pi * (c - 1) / n_cameras + rng.uniform(-0.4, 0.4)
        strength = 0.22 * difficulty * rng.uniform(0.7, 1.3)
        gain = np.exp(strength * np.cos(hue - np.array([0.0, 2 * math.pi / 3, 4 * math.pi / 3])))
        cameras.append(Camera(
            index=c,
            background=kind,
            colours=colours,
            horizon=float(rng.uniform(0.35, 0.6)),
            texture_size=float(rng.uniform(16, 30)),
            gain=tuple(float(g) for g in gain),
            brightness=float(np.exp(difficulty * (levels[c - 1] + rng.normal(0, 0.05)))),
            contrast=float(np.exp(np.clip(rng.normal(0, 0.18 * difficulty), -0.5, 0.4))),
            tint=tuple(float(t) for t in rng.normal(0, 8 * difficulty, 3)),
            blur_sigma=float(min(1.6, rng.uniform(0.0, 0.8) * difficulty)),
            noise_std=float(rng.uniform(1.5, 6.0) * difficulty),
            resolution=float(np.clip(1.0 - rng.uniform(0.0, 0.45) * difficulty, 0.35, 1.0)),
            view_probs=tuple(float(p) for p in rng.dirichlet((1.5, 1.5, 1.5))),
        ))
    return cameras


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Value noise ``(height, width)`` in about [-1, 1] with blobs about ``cell`` pixels wide."""
    grid = rng.uniform(-1.0, 1.0, (height // cell + 3, width // cell + 3)).astype(np.float32)
    big = np.asarray(Image.fromarray(grid).resize((grid.shape[1] * cell, grid.shape[0] * cell),
                                                  Image.Resampling.BICUBIC))
    oy, ox = (int(v) for v in rng.integers(0, cell, 2))
    return big[oy:oy + height, ox:ox + width]


def _render_background(camera: Camera, rng: np.random.Generator, difficulty: float, *,
                       shadow: tuple[float, float, float, float] | None = None) -> Image.Image:
    """The camera's scene behind the person, a canvas-sized RGB image.

    The texture kind and colours belong to the camera; the phase, horizon and small colour shifts
    change per image, so two images of one camera share a style but not their pixels. The scene is
    computed at half the canvas resolution (the output's) and upsampled, which is 4x cheaper.

    Args:
        camera: The camera whose scene this is.
        rng: The image's background generator.
        difficulty: Scales the texture contrast.
        shadow: ``(x, y, rx, ry)`` in canvas pixels of a soft shadow on the ground, or None.
    """
    h, w = _CANVAS_H // _SCALE, _CANVAS_W // _SCALE
    amp = float(np.clip(0.5 + 0.5 * difficulty, 0.5, 1.5))
    y = np.arange(h, dtype=np.float32)[:, None]
    x = np.arange(w, dtype=np.float32)[None, :]
    ground, wall, accent = (np.array(c, dtype=np.float32) + rng.normal(0, 6, 3).astype(np.float32)
                            for c in camera.colours)
    t = camera.texture_size / _SCALE * rng.uniform(0.9, 1.1)
    oy, ox = (float(v) for v in rng.uniform(0, 4 * t, 2))
    horizon = (camera.horizon + rng.uniform(-0.06, 0.06)) * h
    shade = _smooth_noise(rng, h, w, 24)  # uneven light

    def paint(where: np.ndarray, colour: np.ndarray) -> None:
        image[np.broadcast_to(where, (h, w))] = colour

    image = np.empty((h, w, 3), dtype=np.float32)
    kind = camera.background
    if kind == "tiles":  # pavement in staggered rows, a tone per tile, dark grout; a wall at the top
        row = np.floor((y + oy) / t)
        u = x + ox + (row % 2) * t / 2
        tone = np.sin(row * 12.9898 + np.floor(u / t) * 78.233 + oy) * 0.5
        image[:] = ground * (1 + 0.12 * amp * tone)[..., None]
        grout = (((y + oy) % t) < 1.2) | ((u % t) < 1.2)
        image[grout] *= 1 - 0.35 * amp
        paint(y < horizon * 0.45, wall)
    elif kind == "grass":  # blades and patches, a sand path, dark hedge at the top
        blades = _smooth_noise(rng, h, w, 3) + 0.5 * _smooth_noise(rng, h, w, 10)
        image[:] = ground * (1 + 0.22 * amp * blades)[..., None]
        path = np.abs(x - w * rng.uniform(0.2, 0.8) - (y - h / 2) * rng.uniform(-0.4, 0.4)) < t * 1.6
        image[path] = (wall * (1 + 0.08 * amp * blades)[..., None])[path]
        top = np.broadcast_to(y < horizon * 0.5, (h, w))
        image[top] = (accent * (1 + 0.3 * amp * blades)[..., None])[top]
    elif kind == "stripes":  # a wall with horizontal colour bands and posts, pavement below
        band = (((y + oy) // (t * 0.8)) % 2)[..., None]
        image[:] = wall + (accent - wall) * band * (0.45 * amp)
        paint(((x + ox) % (3.5 * t)) < 2, accent * 0.6)
        paint(y > horizon, ground)
    elif kind == "noise":  # blurred foliage / crowd: colour blobs
        blobs = np.stack([_smooth_noise(rng, h, w, 7) for _ in range(3)], axis=-1)
        mix = (_smooth_noise(rng, h, w, 15)[..., None] + 1) / 2
        image[:] = wall * (1 - mix) + accent * mix + 30 * amp * blobs
        below = np.broadcast_to(y > horizon + 15, (h, w))
        image[below] = (ground + 10 * amp * blobs)[below]
    elif kind == "bricks":  # staggered bricks with light mortar, pavement below
        brick_h = t * 0.55
        row = np.floor((y + oy) / brick_h)
        u = x + ox + (row % 2) * t
        tone = np.sin(row * 7.13 + np.floor(u / (2 * t)) * 3.7) * 0.5
        image[:] = wall * (1 + 0.12 * amp * tone)[..., None]
        paint((((y + oy) % brick_h) < 1) | ((u % (2 * t)) < 1), accent)
        paint(y > horizon, ground)
    else:  # asphalt: speckled road with zebra bars, a dark shop front with lights above
        image[:] = ground * (1 + 0.1 * amp * _smooth_noise(rng, h, w, 2))[..., None]
        paint((((x + ox) % (2.2 * t)) < 1.1 * t) & (y > horizon + 20), accent * 0.85)
        paint(y < horizon, wall)
        lit = _smooth_noise(rng, h, w, 12) > -0.2  # some windows lit, some dark
        windows = (((x + ox) % (2.4 * t)) < 1.5 * t) & (((y + oy) % (1.8 * t)) < 1.1 * t)
        paint(windows & lit & (y < horizon - 4), accent * 0.8)
    light = 1 + 0.12 * amp * shade
    if shadow is not None:
        sx, sy, rx, ry = (v / _SCALE for v in shadow)
        light *= 1 - 0.4 * np.clip(1.2 - ((x - sx) / rx) ** 2 - ((y - sy) / ry) ** 2, 0, 1)
    image *= light[..., None]
    image += rng.standard_normal((h, w, 1), dtype=np.float32) * (4 * amp)
    small = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    return small.resize((_CANVAS_W, _CANVAS_H), Image.Resampling.BILINEAR)


# --------------------------------------------------------------------------------------------------
# 3. Rendering of image + mask
# --------------------------------------------------------------------------------------------------


def _ints(colour: Sequence[float]) -> tuple[int, int, int]:
    return tuple(int(round(min(255.0, max(0.0, c)))) for c in colour)


def _scaled(colour: Colour, factor: float) -> Colour:
    return tuple(c * factor for c in colour)


def _box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def _limb(p0: tuple[float, float], p1: tuple[float, float], w0: float, w1: float) -> list[tuple[float, float]]:
    """Quadrilateral of a limb from ``p0`` (width ``w0``) to ``p1`` (width ``w1``)."""
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    norm = math.hypot(dx, dy) or 1.0
    nx, ny = -dy / norm, dx / norm
    return [(p0[0] + nx * w0 / 2, p0[1] + ny * w0 / 2), (p1[0] + nx * w1 / 2, p1[1] + ny * w1 / 2),
            (p1[0] - nx * w1 / 2, p1[1] - ny * w1 / 2), (p0[0] - nx * w0 / 2, p0[1] - ny * w0 / 2)]


def _along(p0: tuple[float, float], p1: tuple[float, float], t: float) -> tuple[float, float]:
    return p0[0] + t * (p1[0] - p0[0]), p0[1] + t * (p1[1] - p0[1])


class _Painter:
    """Draws every shape twice, into an RGB image and into a part-label image, so they agree exactly.

    While :attr:`record` is set, shapes are also drawn (255) into that extra mask; the shirt pattern
    is then pasted through it.
    """

    def __init__(self, image: Image.Image, labels: Image.Image) -> None:
        self.image, self.labels = image, labels
        self._rgb = ImageDraw.Draw(self.image)
        self._labels = ImageDraw.Draw(self.labels)
        self.record: ImageDraw.ImageDraw | None = None

    def _targets(self, colour: Colour, part: int) -> Iterator[tuple[ImageDraw.ImageDraw, object]]:
        yield self._rgb, _ints(colour)
        yield self._labels, part
        if self.record is not None:
            yield self.record, 255

    def polygon(self, points: Sequence[tuple[float, float]], colour: Colour, part: int) -> None:
        for draw, fill in self._targets(colour, part):
            draw.polygon(list(points), fill=fill)

    def ellipse(self, box: Sequence[float], colour: Colour, part: int) -> None:
        for draw, fill in self._targets(colour, part):
            draw.ellipse(_box(*box), fill=fill)

    def rounded(self, box: Sequence[float], radius: float, colour: Colour, part: int) -> None:
        box = _box(*box)
        radius = max(0.0, min(radius, (box[2] - box[0]) / 2, (box[3] - box[1]) / 2))
        for draw, fill in self._targets(colour, part):
            draw.rounded_rectangle(box, radius=radius, fill=fill)

    def chord(self, box: Sequence[float], start: float, end: float, colour: Colour, part: int) -> None:
        for draw, fill in self._targets(colour, part):
            draw.chord(_box(*box), start, end, fill=fill)

    def line(self, p0: tuple[float, float], p1: tuple[float, float], width: float, colour: Colour,
             part: int) -> None:
        self.polygon(_limb(p0, p1, width, width), colour, part)


@dataclass(frozen=True)
class _Body:
    """Key heights and widths of a drawn person, in canvas pixels."""

    cx: float
    u: float  # body height
    top: float
    shoulder: float
    hip: float
    ankle: float
    feet: float
    half_shoulder: float
    half_hip: float


def _body(appearance: Appearance, cx: float, feet: float, height: float) -> _Body:
    u, wf = height, appearance.width
    top = feet - u
    return _Body(cx=cx, u=u, top=top, shoulder=top + 0.155 * u, hip=top + 0.5 * u, ankle=top + 0.94 * u,
                 feet=feet, half_shoulder=0.118 * u * wf, half_hip=0.1 * u * wf)


def _paste_pattern(painter: _Painter, clothing: Image.Image, a: Appearance, body: _Body) -> None:
    """Paint stripes or a check into the shirt area recorded in ``clothing``."""
    if a.pattern not in ("stripes", "check"):
        return
    h, w = painter.image.height, painter.image.width
    period = max(4.0, a.pattern_period * body.u)
    yy = (np.arange(h, dtype=np.float32)[:, None] - body.shoulder) % period
    xx = (np.arange(w, dtype=np.float32)[None, :] - body.cx) % period
    inside = np.asarray(clothing) > 0
    second = a.rgb(a.pattern_colour)
    if a.pattern == "stripes":
        layers = [((yy < period * 0.45) & inside, second)]
    else:  # gingham: a band in one direction is a mix, both directions the second colour
        horizontal, vertical = yy < period * 0.4, xx < period * 0.4
        mix = tuple((p + q) / 2 for p, q in zip(a.rgb(a.upper), second))
        layers = [((horizontal ^ vertical) & inside, mix), (horizontal & vertical & inside, second)]
    for where, colour in layers:
        painter.image.paste(_ints(colour), (0, 0, w, h), Image.fromarray(where.astype(np.uint8) * 255))


def _draw_logo(painter: _Painter, a: Appearance, body: _Body) -> None:
    cx, cy, r = body.cx, body.shoulder + 0.11 * body.u, 0.04 * body.u * a.width ** 0.5
    colour = a.rgb(a.pattern_colour)
    if a.logo_shape == "circle":
        painter.ellipse((cx - r, cy - r, cx + r, cy + r), colour, UPPER)
    elif a.logo_shape == "square":
        painter.polygon([(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)], colour, UPPER)
    elif a.logo_shape == "diamond":
        painter.polygon([(cx, cy - 1.3 * r), (cx + r, cy), (cx, cy + 1.3 * r), (cx - r, cy)], colour, UPPER)
    else:
        painter.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], colour, UPPER)


def _draw_shoe(painter: _Painter, a: Appearance, x: float, ankle: float, feet: float, u: float,
               direction: int = 0, dim: float = 1.0) -> None:
    """A shoe under the ankle at ``x``; ``direction`` +-1 points it sideways (side view)."""
    colour = _scaled(a.rgb(a.shoes, _SHOES), dim)
    sole = _scaled((236, 236, 230), dim) if a.white_soles else _scaled(colour, 0.7)
    if direction:
        box = (x - direction * 0.035 * u, ankle - 0.012 * u, x + direction * 0.09 * u, feet)
    else:
        box = (x - 0.048 * u, ankle - 0.012 * u, x + 0.048 * u, feet)
    painter.rounded(box, 0.025 * u, colour, SHOES)
    x0, _, x1, y1 = _box(*box)
    painter.rounded((x0, y1 - 0.016 * u, x1, y1), 0.006 * u, sole, SHOES)


def _draw_leg(painter: _Painter, a: Appearance, hip: tuple[float, float], ankle: tuple[float, float],
              u: float, dim: float = 1.0) -> None:
    """One leg from the hip joint to the ankle, clothed as the lower garment says (part 3)."""
    skin = _scaled(a.rgb(a.skin, _SKIN), dim)
    cloth = _scaled(a.rgb(a.lower), dim)
    w0, w1 = 0.092 * u * a.width, 0.06 * u * a.width ** 0.5
    if a.lower_kind == "trousers":
        painter.polygon(_limb(hip, ankle, w0, w1), cloth, LOWER)
        return
    painter.polygon(_limb(hip, ankle, w0 * 0.8, w1 * 0.85), skin, LOWER)
    if a.lower_kind == "shorts":
        knee = _along(hip, ankle, 0.42)
        painter.polygon(_limb(hip, knee, w0, w0 * 0.95), cloth, LOWER)


def _draw_skirt(painter: _Painter, a: Appearance, body: _Body, half_top: float, half_bottom: float) -> None:
    y0, y1 = body.hip - 0.01 * body.u, body.hip + 0.24 * body.u
    painter.polygon([(body.cx - half_top, y0), (body.cx + half_top, y0), (body.cx + half_bottom, y1),
                     (body.cx - half_bottom, y1)], a.rgb(a.lower), LOWER)


def _draw_arm(painter: _Painter, a: Appearance, shoulder: tuple[float, float], hand: tuple[float, float],
              u: float, dim: float = 1.0) -> None:
    """An arm (part 2): sleeve in the shirt colour, skin below a short sleeve, a hand."""
    skin, cloth = _scaled(a.rgb(a.skin, _SKIN), dim), _scaled(a.rgb(a.upper), dim)
    w0, w1 = 0.062 * u * a.width ** 0.5, 0.045 * u * a.width ** 0.5
    if a.sleeves == "long":
        painter.polygon(_limb(shoulder, hand, w0, w1), cloth, UPPER)
    else:
        painter.polygon(_limb(shoulder, hand, w0 * 0.85, w1 * 0.9), skin, UPPER)
        painter.polygon(_limb(shoulder, _along(shoulder, hand, 0.38), w0 * 1.05, w0), cloth, UPPER)
    r = 0.024 * u
    tip = _along(shoulder, hand, 1.06)
    painter.ellipse((tip[0] - r, tip[1] - r, tip[0] + r, tip[1] + r), skin, UPPER)


def _draw_head(painter: _Painter, a: Appearance, body: _Body, view: str, direction: int) -> None:
    """Neck, head and hair (all part 1); in the back view the hair covers the head."""
    u, cx = body.u, body.cx + (0.012 * body.u * direction if view == "side" else 0.0)
    skin, hair = a.rgb(a.skin, _SKIN), a.rgb(a.hair, _HAIR)
    hw, hh = 0.05 * u * (0.92 + 0.08 * a.width), 0.068 * u
    cy = body.top + hh
    painter.rounded((body.cx - 0.024 * u, cy, body.cx + 0.024 * u, body.shoulder + 0.01 * u), 0.01 * u, skin, HEAD)
    head = (cx - hw, cy - hh, cx + hw, cy + hh)
    hair_box = (cx - hw * 1.08, cy - hh * 1.1, cx + hw * 1.08, cy + hh * 1.02)
    if view == "back":
        painter.ellipse(head, skin, HEAD)
        painter.chord(hair_box, 130, 410, hair, HEAD)  # everything but the nape
    elif view == "front":
        painter.ellipse(head, skin, HEAD)
        painter.chord(hair_box, 198, 342, hair, HEAD)  # a cap of hair over the forehead
        if a.hair_style != "short":
            low = cy + (0.25 if a.hair_style == "medium" else 0.6) * hh
            for side in (-1, 1):
                painter.rounded((cx + side * hw * 1.08, cy - 0.4 * hh, cx + side * hw * 0.7, low), 0.01 * u,
                                hair, HEAD)
    else:
        painter.ellipse(head, skin, HEAD)
        start = 100 if direction > 0 else -170  # the back half and the top of the head
        painter.chord(hair_box, start, start + 250, hair, HEAD)
        eye = (cx + direction * hw * 0.55, cy - 0.1 * hh)
        painter.ellipse((eye[0] - 0.006 * u, eye[1] - 0.006 * u, eye[0] + 0.006 * u, eye[1] + 0.006 * u),
                        _scaled(skin, 0.55), HEAD)
    if view == "front":  # eyes, a pixel each at 128 x 64
        for side in (-1, 1):
            e = (cx + side * hw * 0.4, cy - 0.05 * hh)
            painter.ellipse((e[0] - 0.007 * u, e[1] - 0.006 * u, e[0] + 0.007 * u, e[1] + 0.006 * u),
                            _scaled(skin, 0.45), HEAD)


def _draw_long_hair(painter: _Painter, a: Appearance, body: _Body, view: str, direction: int) -> None:
    """Hair falling to the shoulders: behind the head from the front, over the back from behind."""
    if a.hair_style == "short":
        return
    u, hair = body.u, a.rgb(a.hair, _HAIR)
    low = body.shoulder + (0.0 if a.hair_style == "medium" else 0.09) * u
    if view == "side":
        x_back = body.cx - direction * 0.06 * u
        painter.rounded((x_back, body.top + 0.05 * u, body.cx - direction * 0.005 * u, low), 0.02 * u, hair, HEAD)
    else:
        hw = 0.058 * u * (0.92 + 0.08 * a.width)
        painter.rounded((body.cx - hw, body.top + 0.06 * u, body.cx + hw, low), 0.025 * u, hair, HEAD)


def _torso_front(body: _Body) -> list[tuple[float, float]]:
    u, cx, hs, hh = body.u, body.cx, body.half_shoulder, body.half_hip
    waist = 0.92 * hh
    s, bottom = body.shoulder, body.hip + 0.035 * u
    return [(cx - hs + 0.035 * u, s), (cx + hs - 0.035 * u, s), (cx + hs, s + 0.035 * u),
            (cx + waist, body.hip - 0.1 * u), (cx + hh * 1.02, bottom), (cx - hh * 1.02, bottom),
            (cx - waist, body.hip - 0.1 * u), (cx - hs, s + 0.035 * u)]


def _torso_side(body: _Body, a: Appearance, direction: int) -> list[tuple[float, float]]:
    u, cx, d = body.u, body.cx, direction
    depth = 0.07 * u * a.width
    s, bottom = body.shoulder, body.hip + 0.035 * u
    return [(cx - d * depth * 0.7, s - 0.005 * u), (cx + d * depth * 0.6, s - 0.005 * u),
            (cx + d * depth, s + 0.06 * u), (cx + d * depth * 0.9, bottom), (cx - d * depth * 0.95, bottom),
            (cx - d * depth, s + 0.05 * u)]


def _draw_bag_front_back(painter: _Painter, a: Appearance, body: _Body, view: str) -> None:
    """Backpack (straps from the front, the pack from the back) or shoulder bag on its side."""
    u, cx, colour = body.u, body.cx, a.rgb(a.bag_colour)
    if a.bag == "backpack":
        if view == "front":
            for side in (-1, 1):
                x = cx + side * 0.06 * u * a.width
                painter.line((x, body.shoulder - 0.004 * u), (x + side * 0.012 * u, body.shoulder + 0.2 * u),
                             0.024 * u, colour, ACCESSORY)
        else:
            half = 0.085 * u * a.width
            top = body.shoulder + 0.015 * u
            painter.rounded((cx - half, top, cx + half, top + 0.25 * u), 0.03 * u, colour, ACCESSORY)
            painter.rounded((cx - half * 0.7, top + 0.14 * u, cx + half * 0.7, top + 0.23 * u), 0.015 * u,
                            _scaled(colour, 0.75), ACCESSORY)
    elif a.bag == "shoulder":
        side = a.bag_side if view == "front" else -a.bag_side  # the person's left is image-right from the front
        x_in = cx + side * (body.half_hip + 0.005 * u)
        x_out = cx + side * (body.half_hip + 0.1 * u)
        top = body.hip - 0.08 * u
        painter.line((cx - side * 0.07 * u, body.shoulder + 0.005 * u), ((x_in + x_out) / 2, top + 0.01 * u),
                     0.016 * u, _scaled(colour, 0.85), ACCESSORY)
        painter.rounded((x_in, top, x_out, top + 0.14 * u), 0.02 * u, colour, ACCESSORY)


def _draw_person(painter: _Painter, a: Appearance, body: _Body, view: str, direction: int,
                 rng: np.random.Generator) -> None:
    """Draw one person; ``view`` front/back/side, ``direction`` +-1 the side view's facing."""
    u, cx = body.u, body.cx
    clothing = Image.new("L", painter.image.size, 0)
    if view in ("front", "back"):
        spread = rng.uniform(0.0, 0.035) * u
        if view == "front":
            _draw_long_hair(painter, a, body, "front", 0)  # behind the shoulders
        for side in (-1, 1):
            hip = (cx + side * body.half_hip * 0.5, body.hip + 0.02 * u)
            ankle = (cx + side * (0.045 * u * a.width ** 0.5 + spread), body.ankle)
            _draw_leg(painter, a, hip, ankle, u)
            _draw_shoe(painter, a, ankle[0], body.ankle, body.feet, u)
        if a.lower_kind == "skirt":
            _draw_skirt(painter, a, body, body.half_hip * 1.05, body.half_hip * 1.5)
        else:
            painter.rounded((cx - body.half_hip, body.hip - 0.01 * u, cx + body.half_hip, body.hip + 0.1 * u),
                            0.02 * u, a.rgb(a.lower), LOWER)
        painter.record = ImageDraw.Draw(clothing)
        painter.polygon(_torso_front(body), a.rgb(a.upper), UPPER)
        painter.record = None
        for side in (-1, 1):
            swing = rng.uniform(0.005, 0.03) * u
            shoulder = (cx + side * (body.half_shoulder - 0.025 * u), body.shoulder + 0.03 * u)
            hand = (cx + side * (body.half_shoulder + 0.012 * u + swing), body.shoulder + 0.31 * u)
            painter.record = ImageDraw.Draw(clothing) if a.sleeves == "long" else None
            _draw_arm(painter, a, shoulder, hand, u)
            painter.record = None
        _paste_pattern(painter, clothing, a, body)
        if a.pattern == "logo" and view == "front":
            _draw_logo(painter, a, body)
        _draw_head(painter, a, body, view, 0)
        if view == "back":
            _draw_long_hair(painter, a, body, "back", 0)
        _draw_bag_front_back(painter, a, body, view)
        return

    # side view: far limbs first (darker), then torso, backpack, head, near arm, shoulder bag
    d = direction
    stride = rng.uniform(-0.3, 0.3)
    swing = -stride * rng.uniform(0.6, 1.0)
    hip = (cx, body.hip + 0.02 * u)
    leg = body.ankle - hip[1]
    shoulder = (cx, body.shoulder + 0.035 * u)
    arm = 0.3 * u
    feet_of = [(stride, 0.85), (-stride, 1.0)]  # (angle, brightness) of the far then the near leg
    _draw_arm(painter, a, shoulder, (cx + d * arm * math.sin(-swing), shoulder[1] + arm * math.cos(swing)), u, 0.8)
    for angle, dim in feet_of:
        ankle = (cx + d * leg * math.sin(angle), hip[1] + leg * math.cos(angle))
        _draw_leg(painter, a, hip, ankle, u, dim)
        _draw_shoe(painter, a, ankle[0], ankle[1], ankle[1] + body.feet - body.ankle, u, d, dim)
    depth = 0.07 * u * a.width
    if a.lower_kind == "skirt":
        _draw_skirt(painter, a, body, depth * 0.95, depth * 1.5)
    else:
        painter.rounded((cx - depth * 0.95, body.hip - 0.01 * u, cx + depth * 0.95, body.hip + 0.1 * u),
                        0.02 * u, a.rgb(a.lower), LOWER)
    bag_colour = a.rgb(a.bag_colour)
    if a.bag == "backpack":  # sticks out behind the back
        back = cx - d * depth
        painter.rounded((back - d * 0.075 * u, body.shoulder + 0.015 * u, back + d * 0.02 * u,
                         body.shoulder + 0.265 * u), 0.025 * u, bag_colour, ACCESSORY)
    _draw_long_hair(painter, a, body, "side", d)
    painter.record = ImageDraw.Draw(clothing)
    painter.polygon(_torso_side(body, a, d), a.rgb(a.upper), UPPER)
    painter.record = None
    _paste_pattern(painter, clothing, a, body)
    _draw_head(painter, a, body, "side", d)
    if a.bag == "backpack":
        painter.line((cx - d * 0.01 * u, body.shoulder), (cx + d * 0.045 * u, body.shoulder + 0.15 * u),
                     0.02 * u, bag_colour, ACCESSORY)
    near_hand = (cx + d * arm * math.sin(swing), shoulder[1] + arm * math.cos(swing))
    painter.record = ImageDraw.Draw(clothing) if a.sleeves == "long" else None
    _draw_arm(painter, a, shoulder, near_hand, u)
    painter.record = None
    if a.bag == "shoulder":
        strap_colour = _scaled(bag_colour, 0.85)
        if a.bag_side == d:  # on the side facing the camera: the bag and its strap
            top = body.hip - 0.08 * u
            painter.line((cx, body.shoulder), (cx - d * 0.01 * u, top), 0.016 * u, strap_colour, ACCESSORY)
            painter.rounded((cx - d * 0.07 * u, top, cx + d * 0.045 * u, top + 0.14 * u), 0.02 * u, bag_colour,
                            ACCESSORY)
        else:  # on the far side: only the strap over the shoulder
            painter.line((cx - d * 0.03 * u, body.shoulder - 0.005 * u), (cx + d * 0.03 * u, body.shoulder + 0.02 * u),
                         0.016 * u, strap_colour, ACCESSORY)


def _occlude(image: Image.Image, labels: Image.Image, body: _Body, rng: np.random.Generator) -> None:
    """Draw an occluder (pole, box or passer-by) in place over image and labels; it gets label 0."""
    u, cx, bottom = body.u, body.cx, image.height
    painter = _Painter(image, labels)
    kind = _choice(rng, ("pole", "box", "passer_by"))
    if kind == "pole":
        x = cx + rng.uniform(-0.2, 0.2) * u
        half = rng.uniform(0.04, 0.09) * _CROP_W / 2
        colour = _choice(rng, [(90, 90, 95), (150, 150, 150), (40, 70, 50), (160, 120, 60)])
        painter.rounded((x - half, -1, x + half, bottom), 0, colour, BACKGROUND)
        painter.rounded((x - half * 0.4, -1, x - half * 0.1, bottom), 0, _scaled(colour, 1.3), BACKGROUND)
    elif kind == "box":
        top = body.feet - rng.uniform(0.15, 0.4) * u
        left, right = cx - rng.uniform(0.1, 0.6) * u, cx + rng.uniform(0.1, 0.6) * u
        colour = _choice(rng, [(180, 40, 40), (60, 60, 70), (200, 200, 205), (50, 90, 160), (110, 80, 50)])
        painter.rounded((left, top, right, bottom), 6, colour, BACKGROUND)
        painter.rounded((left, top, right, top + 0.03 * u), 3, _scaled(colour, 1.2), BACKGROUND)
    else:
        x = cx + rng.choice((-1, 1)) * rng.uniform(0.22, 0.32) * u
        top = body.top + rng.uniform(0.15, 0.5) * u
        half = rng.uniform(0.1, 0.16) * u
        colour = _choice(rng, list(_CLOTHING.values()))
        painter.rounded((x - half, top, x + half, bottom), half * 0.8, colour, BACKGROUND)
        painter.rounded((x - half, top + 0.35 * u, x + half, bottom), half * 0.3, _scaled(colour, 0.75),
                        BACKGROUND)


# Body proportions used to place occluders in background-only crops.
_NEUTRAL = Appearance(skin="light", hair="black", hair_style="short", upper="grey", pattern="solid",
                      pattern_colour="white", pattern_period=0.05, logo_shape="circle", sleeves="long",
                      lower_kind="trousers", lower="black", shoes="black", white_soles=False, bag="none",
                      bag_colour="black", bag_side=1, height=1.0, width=1.0, tone=(0.0, 0.0, 0.0))


@dataclass(frozen=True)
class SampleSpec:
    """Everything that defines one image, decided in the main process (:func:`plan_samples`).

    Attributes:
        split: Split folder, one of ``bounding_box_train``, ``query``, ``bounding_box_test``.
        stem: File name without extension, e.g. ``0042_c3s2_014025_01``.
        pid: Person id (0 distractor, -1 junk).
        camera: 1-based camera index.
        view: ``front``, ``back`` or ``side``.
        direction: Facing in the side view, +1 to the right, -1 to the left.
        appearance: The person drawn, or None for a background-only crop.
        junk: How a junk crop is spoiled (``offset``, ``part``, ``small``), else None.
        key: Seed key of the image's random generator, ``(seed, stream, ...)``.
    """

    split: str
    stem: str
    pid: int
    camera: int
    view: str
    direction: int
    appearance: Appearance | None
    junk: str | None
    key: tuple[int, ...]


def render_sample(spec: SampleSpec, camera: Camera, *, difficulty: float = 1.0) -> tuple[Image.Image, Image.Image]:
    """Render one image and its part mask.

    Four independent random streams are spawned from ``spec.key``: background, pose, geometry (crop
    jitter and occlusion) and photometry. So the same spec with ``appearance=None`` gives the same
    scene, crop and noise without the person (and its shadow): a test can check the mask pixel by
    pixel.

    Steps: canvas background (camera scene) with a soft shadow -> person drawn into an image and a
    label layer with the same shapes, shaded -> optional occluder (label 0) -> jittered crop box
    resized to 128 x 64 (bilinear for the image, nearest for the mask) -> camera transform: lower
    resolution, cast, brightness, contrast, blur, noise.

    Args:
        spec: The sample.
        camera: The camera of ``spec.camera``.
        difficulty: 0 = easy, 1 = default, larger = more jitter, occlusion, blur and noise.

    Returns:
        ``(image, mask)``: an RGB image and an ``L`` mask with values in 0..5, both 64 x 128 (W x H).
    """
    bg_rng, pose_rng, geo_rng, photo_rng = (np.random.default_rng(s)
                                            for s in np.random.SeedSequence(list(spec.key)).spawn(4))
    d = float(difficulty)

    # where the person stands: the nominal crop is the canvas centre; junk crops move the person away
    cx, cy = _CANVAS_W / 2, _CANVAS_H / 2
    height = _CROP_H * 0.86 * (spec.appearance.height if spec.appearance else 1.0) * geo_rng.uniform(0.97, 1.03)
    feet = cy + 0.46 * _CROP_H
    if spec.junk == "offset":
        cx += geo_rng.choice((-1, 1)) * geo_rng.uniform(0.45, 0.7) * _CROP_W
    elif spec.junk == "part":
        feet += geo_rng.choice((-1, 1)) * geo_rng.uniform(0.45, 0.65) * _CROP_H
    elif spec.junk == "small":
        height *= geo_rng.uniform(0.3, 0.45)
        cx += geo_rng.uniform(-0.3, 0.3) * _CROP_W
    body = _body(spec.appearance or _NEUTRAL, cx, feet, height)

    shadow = None if spec.appearance is None else (cx, feet, 0.2 * height, 0.035 * height)
    canvas = _render_background(camera, bg_rng, d, shadow=shadow)
    labels = Image.new("L", canvas.size, BACKGROUND)
    if spec.appearance is not None:
        painter = _Painter(Image.new("RGB", canvas.size), labels)
        _draw_person(painter, spec.appearance, body, spec.view, spec.direction, pose_rng)
        box = labels.getbbox()
        if box is not None:
            # round-body shading: darker towards the silhouette's sides and the feet, light from one side
            light = cx + pose_rng.uniform(-0.05, 0.05) * height
            across = np.clip(np.abs(np.arange(box[0], box[2], dtype=np.float32) - light) / (0.2 * height), 0, 1.3)
            down = np.clip((np.arange(box[1], box[3], dtype=np.float32) - body.top) / height, 0, 1)
            shading = (1.04 - 0.22 * across[None, :] ** 2) * (1.05 - 0.12 * down)[:, None]
            person = np.asarray(painter.image.crop(box), dtype=np.float32) * shading[..., None]
            on = Image.fromarray((np.asarray(labels.crop(box)) > 0).astype(np.uint8) * 255)
            canvas.paste(Image.fromarray(np.clip(person, 0, 255).astype(np.uint8)), box[:2], on)

    if geo_rng.random() < min(0.6, 0.15 * d) and spec.junk is None:
        _occlude(canvas, labels, body, geo_rng)

    # detector box: scale, horizontal shift and vertical (top / bottom) jitter, kept inside the canvas
    scale = math.exp(geo_rng.uniform(-0.12, 0.12) * d)
    box_w, box_h = _CROP_W * scale, _CROP_H * scale * math.exp(geo_rng.uniform(-0.05, 0.05) * d)
    box_w, box_h = min(box_w, _CANVAS_W), min(box_h, _CANVAS_H)
    x0 = _CANVAS_W / 2 - box_w / 2 + geo_rng.uniform(-0.1, 0.1) * d * _CROP_W
    y0 = _CANVAS_H / 2 - box_h / 2 + geo_rng.uniform(-0.06, 0.06) * d * _CROP_H
    x0, y0 = min(max(x0, 0.0), _CANVAS_W - box_w), min(max(y0, 0.0), _CANVAS_H - box_h)
    crop = (x0, y0, x0 + box_w, y0 + box_h)
    out_w, out_h = IMAGE_SIZE[1], IMAGE_SIZE[0]
    image = canvas.resize((out_w, out_h), Image.Resampling.BILINEAR, box=crop)
    mask = labels.resize((out_w, out_h), Image.Resampling.NEAREST, box=crop)

    # camera: resolution, cast, brightness, contrast, blur, noise
    if camera.resolution < 0.98:
        small = (max(8, round(out_w * camera.resolution)), max(16, round(out_h * camera.resolution)))
        image = image.resize(small, Image.Resampling.BILINEAR).resize((out_w, out_h), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32)
    gain = np.asarray(camera.gain, dtype=np.float32) * np.exp(photo_rng.normal(0, 0.03 * d, 3)).astype(np.float32)
    brightness = camera.brightness * math.exp(photo_rng.normal(0, 0.07 * d))
    pixels = pixels * gain * brightness
    pixels = (pixels - 118.0) * camera.contrast + 118.0 + np.asarray(camera.tint, dtype=np.float32)
    image = Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8))
    if camera.blur_sigma > 0.05:
        image = image.filter(ImageFilter.GaussianBlur(camera.blur_sigma))
    if camera.noise_std > 0:
        noisy = np.asarray(image, dtype=np.float32) + photo_rng.normal(0, camera.noise_std, (out_h, out_w, 3))
        image = Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8))
    return image, mask


# --------------------------------------------------------------------------------------------------
# 4. Split assignment
# --------------------------------------------------------------------------------------------------


def _stem(pid: int, camera: int, sequence: int, frame: int, bbox: int) -> str:
    prefix = "-1" if pid == -1 else f"{pid:04d}"
    return f"{prefix}_c{camera}s{sequence}_{frame:06d}_{bbox:02d}"


def _view(rng: np.random.Generator, camera: Camera, dominant: str | None = None) -> tuple[str, int]:
    view = dominant if dominant is not None and rng.random() < 0.75 else _choice(rng, VIEWS, camera.view_probs)
    return view, int(rng.choice((-1, 1)))


def plan_samples(config: SynthMarketConfig, *, seed: int, difficulty: float) -> tuple[list[SampleSpec], list[Camera]]:
    """Decide every image of the dataset (no rendering): identities, cameras, views, names, splits.

    Market-1501 protocol (Zheng et al. ICCV 2015; SPEC sections 6-7):

    - pids ``1..n_train_ids + n_test_ids`` are shuffled into disjoint train and test identities;
    - an identity is seen in ``cameras_per_id`` cameras with ``images_per_id`` images in all, at
      least one per camera (train) or two per camera (test); within a camera its images form one
      track (one sequence, increasing frames) and mostly share the camera's dominant viewpoint;
    - for each test identity and camera one image goes to ``query`` and the rest to
      ``bounding_box_test``, so every query has a gallery match in another camera;
    - ``bounding_box_test`` also gets ``n_distractors`` pid-0 images (people not in the dataset, a
      quarter of them background only) and ``n_junk`` pid-(-1) images (test identities cropped so
      badly that little of them shows, or background).

    Args:
        config: Dataset size.
        seed: Dataset seed.
        difficulty: Scales the camera transforms and the share of twins.

    Returns:
        ``(specs, cameras)``: the samples in a fixed order and the :class:`Camera` list.
    """
    cameras = sample_cameras(config.cameras, seed=seed, difficulty=difficulty)
    n_ids = config.n_train_ids + config.n_test_ids
    order = np.random.default_rng([seed, _STREAM_SPLIT]).permutation(np.arange(1, n_ids + 1))
    train_pids = sorted(int(p) for p in order[:config.n_train_ids])
    test_pids = sorted(int(p) for p in order[config.n_train_ids:])
    twin_probability = min(0.6, config.twin_fraction * difficulty)
    appearances = {**sample_identities(train_pids, seed=seed, twin_probability=twin_probability),
                   **sample_identities(test_pids, seed=seed, twin_probability=twin_probability)}

    specs: list[SampleSpec] = []
    used: set[str] = set()

    def unique_stem(pid: int, camera: int, sequence: int, frame: int, bbox: int) -> str:
        while (stem := _stem(pid, camera, sequence, frame, bbox)) in used:
            frame = frame % 999999 + 1
        used.add(stem)
        return stem

    for pid in sorted(appearances):
        is_test = pid in test_pids
        rng = np.random.default_rng([seed, _STREAM_SPLIT, pid])
        per_camera_min = 2 if is_test else 1
        n_images = int(rng.integers(config.images_per_id[0], config.images_per_id[1] + 1))
        low, high = config.cameras_per_id
        high = max(low, min(high, n_images // per_camera_min))
        n_cams = int(rng.integers(low, high + 1))
        cams = sorted(int(c) for c in rng.choice(np.arange(1, config.cameras + 1), n_cams, replace=False))
        extra = rng.multinomial(max(0, n_images - per_camera_min * n_cams), rng.dirichlet(np.full(n_cams, 2.0)))
        index = 0
        for cam, n_extra in zip(cams, extra):
            camera = cameras[cam - 1]
            count = per_camera_min + int(n_extra)
            sequence, frame = int(rng.integers(1, 7)), int(rng.integers(100, 150000))
            dominant = _choice(rng, VIEWS, camera.view_probs)
            query = int(rng.integers(count)) if is_test else -1
            for j in range(count):
                frame += int(rng.integers(4, 40))
                bbox = 1 if rng.random() < 0.85 else int(rng.integers(2, 4))
                view, direction = _view(rng, camera, dominant)
                split = "bounding_box_train" if not is_test else ("query" if j == query else "bounding_box_test")
                specs.append(SampleSpec(split, unique_stem(pid, cam, sequence, frame, bbox), pid, cam, view,
                                        direction, appearances[pid], None, (seed, _STREAM_IMAGE, pid, index)))
                index += 1

    for i in range(config.n_distractors):
        rng = np.random.default_rng([seed, _STREAM_DISTRACTOR, i])
        cam = int(rng.integers(1, config.cameras + 1))
        appearance = sample_appearance(rng) if rng.random() < 0.75 else None
        view, direction = _view(rng, cameras[cam - 1])
        stem = unique_stem(0, cam, int(rng.integers(1, 7)), int(rng.integers(100, 150000)), int(rng.integers(1, 4)))
        specs.append(SampleSpec("bounding_box_test", stem, 0, cam, view, direction, appearance, None,
                                (seed, _STREAM_DISTRACTOR, i)))

    for i in range(config.n_junk):
        rng = np.random.default_rng([seed, _STREAM_JUNK, i])
        cam = int(rng.integers(1, config.cameras + 1))
        junk = _choice(rng, ("offset", "part", "small", "background"), (0.35, 0.3, 0.2, 0.15))
        appearance = None if junk == "background" else appearances[test_pids[int(rng.integers(len(test_pids)))]]
        view, direction = _view(rng, cameras[cam - 1])
        stem = unique_stem(-1, cam, int(rng.integers(1, 7)), int(rng.integers(100, 150000)), int(rng.integers(1, 4)))
        specs.append(SampleSpec("bounding_box_test", stem, -1, cam, view, direction, appearance,
                                None if junk == "background" else junk, (seed, _STREAM_JUNK, i)))
    return specs, cameras


def _counts(specs: Sequence[SampleSpec]) -> dict[str, dict[str, int]]:
    """Images and identities (pid > 0) per split; the gallery also counts distractors and junk."""
    counts = {}
    for split in SPLIT_DIRS:
        in_split = [s for s in specs if s.split == split]
        counts[split] = {"images": len(in_split), "ids": len({s.pid for s in in_split if s.pid > 0})}
    gallery = [s for s in specs if s.split == "bounding_box_test"]
    counts["bounding_box_test"]["distractor_images"] = sum(s.pid == 0 for s in gallery)
    counts["bounding_box_test"]["junk_images"] = sum(s.pid == -1 for s in gallery)
    return counts


# --------------------------------------------------------------------------------------------------
# 5. Writer
# --------------------------------------------------------------------------------------------------


def _write_sample(root: Path, spec: SampleSpec, image: Image.Image, mask: Image.Image, quality: int) -> None:
    """Write ``<split>/<stem>.jpg`` and ``masks/<split>/<stem>.png`` under ``root``."""
    image.save(root / spec.split / f"{spec.stem}.jpg", format="JPEG", quality=quality)
    mask.save(root / "masks" / spec.split / f"{spec.stem}.png", format="PNG")


def _render_chunk(root: str, specs: Sequence[SampleSpec], cameras: Sequence[Camera], difficulty: float,
                  quality: int) -> int:
    """Render and write a chunk of samples (run in a worker process); returns how many."""
    for spec in specs:
        image, mask = render_sample(spec, cameras[spec.camera - 1], difficulty=difficulty)
        _write_sample(Path(root), spec, image, mask, quality)
    return len(specs)


def _render_chunk_args(args: tuple) -> int:
    return _render_chunk(*args)


def _chunks(specs: Sequence[SampleSpec], size: int) -> list[list[SampleSpec]]:
    return [list(specs[i:i + size]) for i in range(0, len(specs), size)]


def _read_manifest(root: Path) -> dict | None:
    try:
        manifest = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _remove_stale(root: Path) -> None:
    """Remove ``<root>.partial-*`` / ``<root>.old-*`` folders left by runs whose process is gone."""
    if not root.parent.is_dir():
        return
    for path in root.parent.iterdir():
        if not path.name.startswith(f"{root.name}."):
            continue
        tag, _, rest = path.name[len(root.name) + 1:].partition("-")
        pid = rest.split("-")[0]
        if tag in ("partial", "old") and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            logger.info("removing %s left by an interrupted SynthMarket generation", path)
            shutil.rmtree(path, ignore_errors=True)


def generate_synthmarket(
    root: str | os.PathLike,
    *,
    preset: str = "default",
    seed: int = 0,
    difficulty: float = 1.0,
    config: SynthMarketConfig | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Generate a SynthMarket dataset at ``root`` (layout in the module docstring) and return ``root``.

    The dataset is written to a sibling ``<root>.partial-<pid>-<token>`` folder, the manifest
    ``synthmarket.json`` (with ``"complete": true``) last, and the folder is then renamed to ``root``;
    an interrupted run leaves no ``root``. Stale ``.partial`` folders of dead runs are removed.

    If ``root`` exists and is non-empty: a complete dataset with the same preset, config, seed and
    difficulty is reused as is; anything else raises :class:`FileExistsError` unless ``overwrite``,
    which replaces it once the new dataset is complete.

    Args:
        root: Folder of the dataset, e.g. ``data/SynthMarket``.
        preset: Name of a config in :data:`PRESETS` (``tiny`` or ``default``); ignored if ``config``.
        seed: Non-negative seed; the same seed, preset and difficulty give byte-identical files.
        difficulty: 0 = easy (no casts, noise, occlusion or twins), 1 = default, larger = harder.
        config: A custom :class:`SynthMarketConfig` instead of a preset (recorded as preset ``custom``).
        workers: Processes rendering in parallel; None = ``min(2, os.cpu_count())``, 0 or 1 = inline.
        overwrite: Replace an existing different dataset at ``root``.
        progress: Show a tqdm progress bar.

    Returns:
        ``root`` as a :class:`pathlib.Path`.

    Raises:
        ValueError: Unknown preset, negative seed or workers, or a negative / non-finite difficulty.
        FileExistsError: ``root`` holds something else and ``overwrite`` is False.
    """
    if config is None:
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
        config, preset_name = PRESETS[preset], preset
    elif isinstance(config, SynthMarketConfig):
        preset_name = "custom"
    else:
        raise TypeError(f"config must be a SynthMarketConfig or None, got {type(config).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    difficulty = float(difficulty)
    if not math.isfinite(difficulty) or difficulty < 0:
        raise ValueError(f"difficulty must be a finite number >= 0, got {difficulty}")
    workers = min(2, os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 0:
        raise ValueError(f"workers must be >= 0 (0 or 1 = render inline), got {workers}")

    root = Path(root).expanduser().absolute()
    manifest = {"name": "SynthMarket", "version": FORMAT_VERSION, "preset": preset_name, "seed": int(seed),
                "difficulty": difficulty, "image_size": list(IMAGE_SIZE), "part_names": list(PART_NAMES),
                "config": dataclasses.asdict(config)}
    manifest["config"] = json.loads(json.dumps(manifest["config"]))  # tuples as lists, as read back
    _remove_stale(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        existing = _read_manifest(root) if root.is_dir() else None
        if existing is not None and existing.get("complete") is True and all(
                existing.get(k) == manifest[k] for k in ("version", "preset", "seed", "difficulty", "config")):
            logger.info("SynthMarket at %s already complete (preset %s, seed %d, difficulty %g): reusing it",
                        root, preset_name, seed, difficulty)
            return root
        if not overwrite:
            what = "a different SynthMarket" if existing is not None else "something that is not a complete SynthMarket"
            raise FileExistsError(
                f"'{root}' already exists and holds {what} (wanted preset={preset_name}, seed={seed}, "
                f"difficulty={difficulty}); pass overwrite=True (--overwrite) to replace it or choose another root"
            )

    specs, cameras = plan_samples(config, seed=int(seed), difficulty=difficulty)
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    partial = root.parent / f"{root.name}.partial-{token}"
    try:
        for split in SPLIT_DIRS:
            (partial / split).mkdir(parents=True)
            (partial / "masks" / split).mkdir(parents=True)
        _render_all(partial, specs, cameras, difficulty, config.jpeg_quality, workers, progress)
        manifest.update(counts=_counts(specs), complete=True)
        (partial / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if root.exists():  # overwrite (or an empty folder): move the old one aside, remove it after
            old = root.parent / f"{root.name}.old-{token}"
            os.replace(root, old)
            os.replace(partial, root)
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink()
        else:
            os.replace(partial, root)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    logger.info("SynthMarket written to %s (%d images)", root, len(specs))
    return root


def _render_all(partial: Path, specs: Sequence[SampleSpec], cameras: Sequence[Camera], difficulty: float,
                quality: int, workers: int, progress: bool) -> None:
    """Render all samples into ``partial``, inline or with a process pool (order does not matter)."""
    from tqdm.auto import tqdm

    with tqdm(total=len(specs), desc="SynthMarket", unit="img", disable=not progress) as bar:
        if workers <= 1:
            for chunk in _chunks(specs, 64):
                bar.update(_render_chunk(str(partial), chunk, cameras, difficulty, quality))
            return
        jobs = [(str(partial), chunk, cameras, difficulty, quality)
                for chunk in _chunks(specs, max(8, len(specs) // (workers * 16)))]
        with multiprocessing.get_context().Pool(workers) as pool:
            for done in pool.imap_unordered(_render_chunk_args, jobs):
                bar.update(done)


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m reidlab.data.synthmarket --root DIR [--preset tiny|default] [--seed N] ...``."""
    parser = argparse.ArgumentParser(prog="python -m reidlab.data.synthmarket",
                                     description="Generate the SynthMarket re-ID dataset (Market-1501 layout).")
    parser.add_argument("--root", required=True, help="folder to write, e.g. data/SynthMarket")
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS), help="dataset size")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--difficulty", type=float, default=1.0, help="0 = easy, 1 = default, larger = harder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing different dataset")
    parser.add_argument("--workers", type=int, default=None, help="processes (default min(2, CPUs); 0 = inline)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    root = generate_synthmarket(args.root, preset=args.preset, seed=args.seed, difficulty=args.difficulty,
                                workers=args.workers, overwrite=args.overwrite, progress=not args.no_progress)
    manifest = _read_manifest(root) or {}
    print(f"SynthMarket ({manifest.get('preset')}, seed {manifest.get('seed')}, "
          f"difficulty {manifest.get('difficulty')}) at {root}")
    for split, count in manifest.get("counts", {}).items():
        extra = "".join(f", {k.replace('_images', '')} {v}" for k, v in count.items() if k.endswith("_images"))
        print(f"  {split:<20} {count['images']:>6} images {count['ids']:>5} ids{extra}")
    return 0


if __name__ == "__main__":
    # Run the importable module's main, not this __main__ copy, so the classes sent to worker
    # processes are reidlab.data.synthmarket's.
    from reidlab.data.synthmarket import main as _main

    raise SystemExit(_main())
