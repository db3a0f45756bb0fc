"""SynthMarket's constants, size settings and presets."""

from __future__ import annotations

from dataclasses import dataclass

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
        tracklet_length: Inclusive range of consecutive frames per tracklet; a tracklet's frames share
            view, scene and pose. (1, 1): every image drawn on its own.
        scenes_per_camera: Backgrounds each camera films, 1..``cameras`` (1: the background names the camera).
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
    tracklet_length: tuple[int, int] = (1, 1)
    scenes_per_camera: int = 1

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
        low, high = self.tracklet_length
        if not 1 <= low <= high:
            raise ValueError(f"tracklet_length must be (low, high) with 1 <= low <= high, got {self.tracklet_length}")
        if not 1 <= self.scenes_per_camera <= self.cameras:
            raise ValueError(f"scenes_per_camera must be in 1..cameras={self.cameras}, got {self.scenes_per_camera}")
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
