"""Identities -> appearance: what a SynthMarket person wears (section 1 of the generator)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reidlab.data.synthmarket.config import _STREAM_IDENTITY

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
# The "winter" palette (the campus domain): coats and knitwear in muted and earth colours, hi-vis orange and
# a few brights; colours of their own, so that no identity of one palette wears a colour of the other.
_WINTER: dict[str, Colour] = {
    "charcoal": (56, 58, 62), "ivory": (214, 208, 190), "slate": (92, 104, 120), "olive": (96, 100, 50),
    "camel": (176, 134, 86), "burgundy": (110, 30, 46), "teal": (30, 110, 116), "orange": (228, 116, 30),
    "denim": (70, 96, 136), "forest": (34, 74, 48), "beige": (196, 178, 146), "plum": (84, 44, 78),
}
_WINTER_UPPER_WEIGHTS = {"charcoal": 16, "ivory": 8, "slate": 10, "olive": 9, "camel": 10, "burgundy": 9, "teal": 7,
                         "orange": 5, "denim": 6, "forest": 8, "beige": 7, "plum": 6}
_WINTER_LOWER_WEIGHTS = {"charcoal": 24, "denim": 22, "slate": 10, "beige": 10, "olive": 8, "camel": 6, "forest": 4,
                         "burgundy": 3, "ivory": 2, "teal": 2, "plum": 2, "orange": 1}



@dataclass(frozen=True)
class _Palette:
    """What people of one domain wear: clothing colours and how often each kind of garment appears."""

    colours: dict[str, Colour]
    upper_weights: dict[str, float]
    lower_weights: dict[str, float]
    sleeves: tuple[float, float]  # long, short
    lower_kinds: tuple[float, float, float]  # trousers, shorts, skirt


_PALETTES: dict[str, _Palette] = {  # keys: reidlab.data.synthmarket.config.PALETTES
    "street": _Palette(_CLOTHING, _UPPER_WEIGHTS, _LOWER_WEIGHTS, (0.55, 0.45), (0.68, 0.17, 0.15)),
    "winter": _Palette(_WINTER, _WINTER_UPPER_WEIGHTS, _WINTER_LOWER_WEIGHTS, (0.95, 0.05), (0.9, 0.02, 0.08)),
}
# Every clothing colour by name, so that an appearance draws its colours whatever its palette.
_ALL_CLOTHING: dict[str, Colour] = {**_CLOTHING, **_WINTER}

PATTERNS = ("solid", "stripes", "check", "logo")
_PATTERN_WEIGHTS = (0.45, 0.2, 0.15, 0.2)
LOWER_KINDS = ("trousers", "shorts", "skirt")
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

    def rgb(self, name: str, palette: dict[str, Colour] = _ALL_CLOTHING) -> Colour:
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


def sample_appearance(rng: np.random.Generator, palette: str = "street") -> Appearance:
    """Draw a random person from a palette (the weights mimic a street: dark colours are common).

    Args:
        rng: The identity's generator, e.g. ``np.random.default_rng([seed, 1, pid])``.
        palette: The clothing palette, ``"street"`` or ``"winter"`` (:class:`~reidlab.data.synthmarket.SynthDomain`).
    """
    clothes = _PALETTES[palette]
    upper = _choice(rng, list(clothes.upper_weights), list(clothes.upper_weights.values()))
    return Appearance(
        skin=_choice(rng, list(_SKIN)),
        hair=_choice(rng, list(_HAIR), (30, 25, 20, 15, 10)),
        hair_style=_choice(rng, HAIR_STYLES, _HAIR_STYLE_WEIGHTS),
        upper=upper,
        pattern=_choice(rng, PATTERNS, _PATTERN_WEIGHTS),
        pattern_colour=_other(rng, list(clothes.colours), upper),
        pattern_period=float(rng.uniform(0.035, 0.06)),
        logo_shape=_choice(rng, LOGO_SHAPES),
        sleeves=_choice(rng, ("long", "short"), clothes.sleeves),
        lower_kind=_choice(rng, LOWER_KINDS, clothes.lower_kinds),
        lower=_choice(rng, list(clothes.lower_weights), list(clothes.lower_weights.values())),
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


def sample_identities(pids: Sequence[int], *, seed: int, twin_probability: float,
                      palette: str = "street") -> dict[int, Appearance]:
    """Appearances of the identities of one split, in increasing pid order.

    With probability ``twin_probability`` an identity is a near-twin of an earlier (non-twin)
    identity of the same split (:func:`_make_twin`); otherwise it is drawn afresh, redrawn while its
    :meth:`Appearance.signature` equals one already used, so only twins look alike.

    Args:
        pids: The split's person ids.
        seed: Dataset seed; identity ``pid`` uses ``default_rng([seed, 1, pid])``.
        twin_probability: Chance that an identity is a twin.
        palette: The clothing palette (:func:`sample_appearance`).
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
            appearance = sample_appearance(rng, palette)
            if appearance.signature() not in used:
                break
        used.add(appearance.signature())
        appearances[pid] = appearance
        originals.append(pid)
    return appearances
