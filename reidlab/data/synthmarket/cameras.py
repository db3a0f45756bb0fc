"""The camera model: a scene behind the person and a global photometric transform (section 2)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from reidlab.data.synthmarket.appearance import Colour, _choice
from reidlab.data.synthmarket.config import (
    _CANVAS_H,
    _CANVAS_W,
    _SCALE,
    _STREAM_CAMERA,
    BACKGROUND_KINDS,
    SynthDomain,
)

# --------------------------------------------------------------------------------------------------
# 2. Camera model
# --------------------------------------------------------------------------------------------------

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
        other_scenes: Further ``(background, colours)`` scenes this camera films (a wide view: the person
            walks past several backgrounds); each image shows one of them or the main one, at random.
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
    other_scenes: tuple[tuple[str, tuple[Colour, Colour, Colour]], ...] = ()


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
    # the campus domain's scenes (config.CAMPUS)
    "mall": ([(206, 200, 190), (180, 184, 190), (196, 176, 150)], [(120, 100, 130), (70, 110, 120), (150, 60, 50)],
             [(250, 240, 200), (240, 220, 170)]),
    "gravel": ([(160, 150, 130), (130, 124, 114), (176, 168, 150)], [(200, 206, 210), (160, 170, 176)],
               [(90, 84, 76), (60, 56, 50)]),
    "glass": ([(110, 110, 114), (140, 136, 130)], [(80, 110, 130), (100, 130, 140), (60, 80, 100)],
              [(190, 210, 220), (40, 44, 50)]),
    "parking": ([(120, 118, 112), (100, 100, 100), (140, 138, 132)], [(74, 76, 80), (96, 90, 84)],
                [(230, 220, 90), (240, 240, 236)]),
}


def _scene_colours(rng: np.random.Generator, kind: str) -> tuple[Colour, Colour, Colour]:
    return tuple(tuple(float(np.clip(v + j, 0, 255)) for v, j in zip(_choice(rng, options), rng.normal(0, 8, 3)))
                 for options in _SCENE_COLOURS[kind])


def sample_cameras(n_cameras: int, *, seed: int, difficulty: float, domain: SynthDomain | None = None,
                   scenes_per_camera: int = 1) -> list[Camera]:
    """Draw the cameras of a dataset.

    The casts are spread around the colour wheel (camera ``c`` gets hue angle ``2 pi c / n`` plus
    jitter) and the brightness levels are spread too, so no two cameras look alike. Strengths scale
    with ``difficulty``: at 0 there is no cast, blur or noise. The ``domain`` moves every camera the same way
    (:class:`~reidlab.data.synthmarket.SynthDomain`): its background kinds, white balance, cast strength,
    resolution and blur; the default domain leaves the cameras as drawn.

    Args:
        n_cameras: Number of cameras, 2..9.
        seed: Dataset seed; camera ``c`` uses ``default_rng([seed, 2, c])``.
        difficulty: 0 = easy, 1 = default, larger = harder.
        domain: The dataset's domain; None: SynthMarket's default domain.
        scenes_per_camera: Backgrounds each camera films: its own kind and the next ``scenes_per_camera - 1``
            kinds of the other cameras (with colours of its own), so a background no longer names the camera.
    """
    domain = domain or SynthDomain()
    order = np.random.default_rng([seed, _STREAM_CAMERA, 0])
    kinds = [domain.backgrounds[i] for i in order.permutation(len(domain.backgrounds))]
    levels = order.permutation(np.linspace(-0.35, 0.35, n_cameras))
    cameras = []
    for c in range(1, n_cameras + 1):
        rng = np.random.default_rng([seed, _STREAM_CAMERA, c])
        kind = kinds[(c - 1) % len(kinds)]
        colours = _scene_colours(rng, kind)
        others = tuple((kinds[(c - 1 + j) % len(kinds)],
                        _scene_colours(np.random.default_rng([seed, _STREAM_CAMERA, c, j]), kinds[(c - 1 + j) % len(kinds)]))
                       for j in range(1, scenes_per_camera))
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
            other_scenes=others,
        ))
    if domain != SynthDomain():
        cameras = [_in_domain(camera, domain, difficulty) for camera in cameras]
    return cameras


def _in_domain(camera: Camera, domain: SynthDomain, difficulty: float) -> Camera:
    """``camera`` moved by ``domain``: its cast's strength scaled (``gain ** cast_strength``) and multiplied by
    the domain's white balance (scaled by ``difficulty``), its resolution scaled and its blur increased."""
    balance = np.asarray(domain.white_balance) ** difficulty
    gain = np.asarray(camera.gain) ** domain.cast_strength * balance
    return dataclasses.replace(
        camera,
        gain=tuple(float(g) for g in gain),
        resolution=float(np.clip(camera.resolution * domain.resolution, 0.2, 1.0)),
        blur_sigma=float(camera.blur_sigma + domain.blur * difficulty),
    )


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Value noise ``(height, width)`` in about [-1, 1] with blobs about ``cell`` pixels wide."""
    grid = rng.uniform(-1.0, 1.0, (height // cell + 3, width // cell + 3)).astype(np.float32)
    big = np.asarray(Image.fromarray(grid).resize((grid.shape[1] * cell, grid.shape[0] * cell),
                                                  Image.Resampling.BICUBIC))
    oy, ox = (int(v) for v in rng.integers(0, cell, 2))
    return big[oy:oy + height, ox:ox + width]


def _render_background(camera: Camera, rng: np.random.Generator, difficulty: float, *, width: int = _CANVAS_W,
                       shadow: tuple[float, float, float, float] | None = None) -> Image.Image:
    """The camera's scene behind the person, a canvas-sized RGB image.

    The texture kind and colours belong to the camera; the phase, horizon and small colour shifts
    change per image, so two images of one camera share a style but not their pixels. The scene is
    computed at half the canvas resolution (the output's) and upsampled, which is 4x cheaper.

    Args:
        camera: The camera whose scene this is.
        rng: The image's background generator.
        difficulty: Scales the texture contrast.
        width: Width in canvas pixels (wider than the canvas: a walking tracklet's scene).
        shadow: ``(x, y, rx, ry)`` in canvas pixels of a soft shadow on the ground, or None.
    """
    h, w = _CANVAS_H // _SCALE, width // _SCALE
    amp = float(np.clip(0.5 + 0.5 * difficulty, 0.5, 1.5))
    y = np.arange(h, dtype=np.float32)[:, None]
    x = np.arange(w, dtype=np.float32)[None, :]
    kind, colours = camera.background, camera.colours
    if camera.other_scenes:
        kind, colours = ((kind, colours), *camera.other_scenes)[int(rng.integers(len(camera.other_scenes) + 1))]
    ground, wall, accent = (np.array(c, dtype=np.float32) + rng.normal(0, 6, 3).astype(np.float32)
                            for c in colours)
    t = camera.texture_size / _SCALE * rng.uniform(0.9, 1.1)
    oy, ox = (float(v) for v in rng.uniform(0, 4 * t, 2))
    horizon = (camera.horizon + rng.uniform(-0.06, 0.06)) * h
    shade = _smooth_noise(rng, h, w, 24)  # uneven light

    def paint(where: np.ndarray, colour: np.ndarray) -> None:
        image[np.broadcast_to(where, (h, w))] = colour

    image = np.empty((h, w, 3), dtype=np.float32)
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
    elif kind == "asphalt":  # speckled road with zebra bars, a dark shop front with lights above
        image[:] = ground * (1 + 0.1 * amp * _smooth_noise(rng, h, w, 2))[..., None]
        paint((((x + ox) % (2.2 * t)) < 1.1 * t) & (y > horizon + 20), accent * 0.85)
        paint(y < horizon, wall)
        lit = _smooth_noise(rng, h, w, 12) > -0.2  # some windows lit, some dark
        windows = (((x + ox) % (2.4 * t)) < 1.5 * t) & (((y + oy) % (1.8 * t)) < 1.1 * t)
        paint(windows & lit & (y < horizon - 4), accent * 0.8)
    elif kind == "mall":  # polished floor with ceiling-light reflections, shop fronts with bright signs
        image[:] = ground
        glare = np.clip(_smooth_noise(rng, h, w, 18), 0, 1)[..., None]
        image += (accent - ground) * glare * (0.5 * amp)
        paint(((x + ox) % (4 * t)) < 0.8, ground * 0.85)  # floor seams
        paint(y < horizon, wall)
        paint((y < horizon * 0.3) & (((x + ox) % (3 * t)) < 2 * t), accent)  # shop signs
    elif kind == "gravel":  # coarse gravel path, a pale sky over a low hedge
        grains = _smooth_noise(rng, h, w, 2) + 0.6 * _smooth_noise(rng, h, w, 5)
        image[:] = ground * (1 + 0.2 * amp * grains)[..., None]
        paint(y < horizon * 0.5, wall)
        hedge = (y >= horizon * 0.5) & (y < horizon * 0.5 + t * 0.6)
        image[np.broadcast_to(hedge, (h, w))] = (accent * (1 + 0.3 * amp * grains)[..., None])[
            np.broadcast_to(hedge, (h, w))]
    elif kind == "glass":  # a glass facade: panes with mullions and diagonal reflections, pavement below
        reflection = (np.sin((x + y + ox) / (1.3 * t)) * 0.5 + 0.5)[..., None]
        image[:] = wall + (accent - wall) * reflection * (0.35 * amp)
        paint((((x + ox) % (2.5 * t)) < 1.5) | (((y + oy) % (2 * t)) < 1.5), accent * 0.3)
        paint(y > horizon, ground)
    elif kind == "parking":  # dark concrete with painted bay lines and oil stains, a concrete wall
        stains = _smooth_noise(rng, h, w, 9)
        image[:] = ground * (1 + 0.12 * amp * stains)[..., None]
        paint((((x + ox) % (3 * t)) < 1.5) & (y > horizon + 6), accent)
        paint(y < horizon, wall)
        paint((y < horizon) & (((y + oy) % (1.2 * t)) < 1.0), wall * 0.8)
    else:
        raise ValueError(f"unknown background kind {kind!r}; valid: {BACKGROUND_KINDS}")
    light = 1 + 0.12 * amp * shade
    if shadow is not None:
        sx, sy, rx, ry = (v / _SCALE for v in shadow)
        light *= 1 - 0.4 * np.clip(1.2 - ((x - sx) / rx) ** 2 - ((y - sy) / ry) ** 2, 0, 1)
    image *= light[..., None]
    image += rng.standard_normal((h, w, 1), dtype=np.float32) * (4 * amp)
    small = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    return small.resize((w * _SCALE, _CANVAS_H), Image.Resampling.BILINEAR)
