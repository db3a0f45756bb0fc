"""Rendering of one image and its exact part mask (section 3)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from reidlab.data.synthmarket.appearance import (
    _CLOTHING,
    _HAIR,
    _SHOES,
    _SKIN,
    Appearance,
    Colour,
    _choice,
)
from reidlab.data.synthmarket.cameras import Camera, _render_background
from reidlab.data.synthmarket.config import (
    _CANVAS_H,
    _CANVAS_W,
    _CROP_H,
    _CROP_W,
    _SCALE,
    ACCESSORY,
    BACKGROUND,
    HEAD,
    IMAGE_SIZE,
    LOWER,
    PAN_SPAN,
    SHOES,
    UPPER,
)

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
        track_key: Seed key shared by the frames of one tracklet (consecutive frames of one walk past a
            camera): their scene and pose come from it, so they differ only in the detector box, occlusion
            and sensor noise. None: the image is a tracklet of its own.
        pan: Where a walking tracklet's frame is in its scene, in crop widths (0..``PAN_SPAN``): the
            scene is then drawn ``PAN_SPAN`` crop widths wider and this frame shows the window that starts
            there, and the frame has a pose of its own (``SynthMarketConfig.tracklet_motion``). None: the
            frames of the tracklet share the background pixels and the pose.
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
    track_key: tuple[int, ...] | None = None
    pan: float | None = None


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
    if spec.track_key is not None:  # a tracklet's frames share the scene and (unless it walks) the pose
        shared_bg, shared_pose = (np.random.default_rng(s)
                                  for s in np.random.SeedSequence(list(spec.track_key)).spawn(4)[:2])
        bg_rng, pose_rng = shared_bg, (pose_rng if spec.pan is not None else shared_pose)
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
    if spec.pan is None:
        canvas = _render_background(camera, bg_rng, d, shadow=shadow)
    else:  # the window of the tracklet's wider scene at this frame's place in the walk
        left = round(spec.pan * _CROP_W / _SCALE) * _SCALE
        canvas = _render_background(camera, bg_rng, d, width=_CANVAS_W + round(PAN_SPAN * _CROP_W),
                                    shadow=None if shadow is None else (cx + left, *shadow[1:]))
        canvas = canvas.crop((left, 0, left + _CANVAS_W, _CANVAS_H))
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
