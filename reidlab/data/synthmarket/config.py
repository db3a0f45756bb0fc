"""SynthMarket's constants, size settings and presets."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

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
# Width of a walking tracklet's scene beyond the canvas, in crop widths (SynthMarketConfig.tracklet_motion)
PAN_SPAN = 2.0
_CROP_H, _CROP_W = IMAGE_SIZE[0] * _SCALE, IMAGE_SIZE[1] * _SCALE
_CANVAS_H, _CANVAS_W = _CROP_H + 96, _CROP_W + 96


# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------

# Every background kind the camera model can draw (cameras.py): the first six make the default domain's scenes.
BACKGROUND_KINDS = ("tiles", "grass", "stripes", "noise", "bricks", "asphalt",
                    "mall", "gravel", "glass", "parking")
# Clothing palettes (appearance.py): "street", the default domain's summer street; "winter", coats and muted colours.
PALETTES = ("street", "winter")
MAX_CAMERAS = 9  # a Market-1501 file name has one digit for the camera (DukeMTMC-reID has 8 cameras)


@dataclass(frozen=True)
class SynthDomain:
    """How a SynthMarket's world looks, apart from its size: what differs between two real datasets besides
    their people (Market-1501 vs DukeMTMC-reID vs MSMT17: other cameras and light, other places, other
    sensors, another season's clothing).

    The defaults are SynthMarket's own domain and reproduce its images exactly. Each camera still draws its
    own cast, background colours, blur, noise and resolution (``cameras.sample_cameras``); a domain shifts
    them all in one direction.

    Attributes:
        backgrounds: Background kinds the cameras' scenes are drawn from, in a seeded order (camera c gets
            the c-th, cycling when there are more cameras than kinds); names from :data:`BACKGROUND_KINDS`.
        palette: Clothing palette, one of :data:`PALETTES`.
        white_balance: Domain-wide colour gain (3,) every camera multiplies into its own cast (e.g. the warm
            light of an indoor mall); scaled by ``difficulty`` like the casts.
        cast_strength: Factor on the strength of every camera's own colour cast.
        resolution: Factor on every camera's sensor resolution (below 1: coarser sensors, blurrier images).
        blur: Gaussian blur sigma (pixels of the 128 x 64 output) added to every camera's, times ``difficulty``.
    """

    backgrounds: tuple[str, ...] = BACKGROUND_KINDS[:6]
    palette: str = "street"
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    cast_strength: float = 1.0
    resolution: float = 1.0
    blur: float = 0.0

    def __post_init__(self) -> None:
        unknown = [kind for kind in self.backgrounds if kind not in BACKGROUND_KINDS]
        if not self.backgrounds or unknown:
            raise ValueError(f"backgrounds must be a non-empty tuple of names from {BACKGROUND_KINDS}, "
                             f"got {self.backgrounds!r}")
        if self.palette not in PALETTES:
            raise ValueError(f"palette must be one of {PALETTES}, got {self.palette!r}")
        if len(self.white_balance) != 3 or not all(0.5 <= g <= 2.0 for g in self.white_balance):
            raise ValueError(f"white_balance must be 3 gains in [0.5, 2], got {self.white_balance!r}")
        if not 0.0 <= self.cast_strength <= 3.0:
            raise ValueError(f"cast_strength must be in [0, 3], got {self.cast_strength}")
        if not 0.2 <= self.resolution <= 1.0:
            raise ValueError(f"resolution must be in [0.2, 1], got {self.resolution}")
        if not 0.0 <= self.blur <= 3.0:
            raise ValueError(f"blur must be in [0, 3], got {self.blur}")


# reidlab's second domain, "campus": a DukeMTMC-reID-like world next to SynthMarket's Market-1501-like one.
# Eight cameras (Duke has 8, Market 6) in other places (an indoor mall, gravel paths, glass facades, a car
# park), in warmer light with weaker per-camera casts, through coarser, blurrier sensors, seen on people
# dressed for winter. reidlab's choice of values: strong enough that a model trained with labels on one
# domain loses most of its accuracy on the other (notebook 06 measures it).
CAMPUS = SynthDomain(backgrounds=("mall", "gravel", "glass", "parking"), palette="winter",
                     white_balance=(1.12, 1.0, 0.84), cast_strength=0.6, resolution=0.7, blur=0.35)


@dataclass(frozen=True)
class SynthMarketConfig:
    """Size of a SynthMarket dataset (what ``difficulty`` does not change).

    Attributes:
        n_train_ids: Identities in ``bounding_box_train``.
        n_test_ids: Identities in ``query`` and ``bounding_box_test`` (disjoint from train).
        images_per_id: Inclusive range of images per identity. At least 4, since a test identity needs
            two cameras with two images each (one query, one gallery image per camera).
        cameras_per_id: Inclusive range of cameras an identity is seen in, at least 2.
        cameras: Number of cameras, 2..9 (each has its own scene; the default domain has six background kinds).
        twin_fraction: Share of identities that copy an earlier identity of their split and change
            one part (shoes, bag or pattern), at ``difficulty=1``; scaled by the difficulty, at most 0.6.
        n_distractors: Gallery images with pid 0: people who are not in the dataset, or background.
        n_junk: Gallery images with pid -1: badly cropped, mostly background detections.
        jpeg_quality: JPEG quality of the images (PIL, fixed so files are reproducible).
        domain: How the world looks (:class:`SynthDomain`): backgrounds, palette, light and sensors.
        tracklet_length: Inclusive range of consecutive frames per tracklet; a tracklet's frames share
            view, scene and pose. (1, 1): every image drawn on its own.
        scenes_per_camera: Backgrounds each camera films, 1..``cameras`` (1: the background names the camera).
        camera_views: Cameras have preferred viewpoints (each watches a path, so a person's track in one
            camera is mostly one view, and the view differs between cameras). False: every tracklet's
            view is front, back or side with equal probability in every camera.
        tracklet_motion: How far the person walks between two frames of a tracklet, in crop widths
            (0..1): each frame then shows another window of the tracklet's scene (the detector box
            follows the person across the background) and another step of the walk (pose). 0: the
            frames share the background pixels and the pose.
        body_width: Scales every person's build (the appearance's width factor: the torso in proportion,
            limbs by its square root), so that the person fills more of the crop and the background less;
            1: SynthMarket's slim people (the torso about a quarter of the crop's width).
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
    domain: SynthDomain = field(default_factory=SynthDomain)
    tracklet_length: tuple[int, int] = (1, 1)
    scenes_per_camera: int = 1
    camera_views: bool = True
    tracklet_motion: float = 0.0
    body_width: float = 1.0

    def __post_init__(self) -> None:
        if self.n_train_ids < 1 or self.n_test_ids < 1:
            raise ValueError(
                f"n_train_ids and n_test_ids must be >= 1, got {self.n_train_ids} and {self.n_test_ids}"
            )
        if self.n_train_ids + self.n_test_ids > 9999:
            raise ValueError(
                f"at most 9999 identities fit the 4-digit pid, got {self.n_train_ids + self.n_test_ids}"
            )
        if not 2 <= self.cameras <= MAX_CAMERAS:
            raise ValueError(f"cameras must be in 2..{MAX_CAMERAS}, got {self.cameras}")
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
        low, high = self.tracklet_length
        if not 1 <= low <= high:
            raise ValueError(f"tracklet_length must be (low, high) with 1 <= low <= high, got {self.tracklet_length}")
        if not 1 <= self.scenes_per_camera <= self.cameras:
            raise ValueError(f"scenes_per_camera must be in 1..cameras={self.cameras}, got {self.scenes_per_camera}")
        if not 0.0 <= self.tracklet_motion <= 1.0:
            raise ValueError(f"tracklet_motion must be in [0, 1] crop widths per frame, got {self.tracklet_motion}")
        if not 0.5 <= self.body_width <= 2.0:
            raise ValueError(f"body_width must be in [0.5, 2], got {self.body_width}")
        if not 1 <= self.jpeg_quality <= 95:
            raise ValueError(f"jpeg_quality must be in 1..95, got {self.jpeg_quality}")


PRESETS: dict[str, SynthMarketConfig] = {
    # For tests and quick demos: ~250 images, generated in a few seconds.
    "tiny": SynthMarketConfig(
        n_train_ids=14, n_test_ids=12, images_per_id=(6, 10), cameras_per_id=(2, 4),
        n_distractors=20, n_junk=12,
    ),
    # 300 identities, ~6,700 images (Market-1501 has 1,501 identities, 32,668 images), each image drawn on its own.
    "default": SynthMarketConfig(),
}
# The lab scale's dataset, calibrated so that unsupervised training visibly works in minutes (benchmarks/
# CALIBRATION.md, fourth round): the default's size, cut from video as real datasets are (tracklets of 2-4
# frames in which the person walks 0.3 crop widths a frame), six backgrounds per camera and viewpoints
# independent of the camera (so that neither names the camera), people drawn twice as wide (filling the crop as
# Market-1501's detections do), generated at difficulty 0 (PRESET_DIFFICULTY).
PRESETS["lab"] = replace(PRESETS["default"], tracklet_length=(2, 4), scenes_per_camera=6, camera_views=False,
                         tracklet_motion=0.3, body_width=2.0)
# The second domain at each size (notebook 06, the lab source of domain adaptation): the same numbers of
# identities and images as its size's preset, eight cameras and the campus domain.
PRESETS["campus"] = replace(PRESETS["default"], cameras=8, cameras_per_id=(2, 8), domain=CAMPUS)
PRESETS["lab_campus"] = replace(PRESETS["lab"], cameras=8, cameras_per_id=(2, 8), domain=CAMPUS)
PRESETS["tiny_campus"] = replace(PRESETS["tiny"], cameras=8, domain=CAMPUS)
# The difficulty a preset is generated at when none is given (1 for every preset not named here).
PRESET_DIFFICULTY: dict[str, float] = {"lab": 0.0, "lab_campus": 0.0}


def preset_difficulty(preset: str) -> float:
    """The difficulty ``preset`` is generated at by default: 0 for the lab presets, 1 otherwise."""
    return PRESET_DIFFICULTY.get(preset, 1.0)


def domain_preset(size: str, domain: str | None) -> str:
    """The preset of the ``domain`` variant (``None`` or ``"campus"``) of the size preset ``size``
    (``tiny``, ``default`` or ``lab``): ``domain_preset("default", "campus") == "campus"``."""
    if domain is None:
        return size
    name = domain if size == "default" else f"{size}_{domain}"
    if name not in PRESETS:
        raise ValueError(f"no {domain!r} variant of preset {size!r}; presets: {sorted(PRESETS)}")
    return name
