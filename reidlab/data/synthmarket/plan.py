"""Split assignment: every image of a dataset decided before rendering (section 4)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from reidlab.data.synthmarket.appearance import (
    Appearance,
    _choice,
    sample_appearance,
    sample_identities,
)
from reidlab.data.synthmarket.cameras import VIEWS, Camera, sample_cameras
from reidlab.data.synthmarket.config import (
    _STREAM_DISTRACTOR,
    _STREAM_IMAGE,
    _STREAM_JUNK,
    _STREAM_SPLIT,
    PAN_SPAN,
    SPLIT_DIRS,
    SynthMarketConfig,
)
from reidlab.data.synthmarket.render import SampleSpec

# --------------------------------------------------------------------------------------------------
# 4. Split assignment
# --------------------------------------------------------------------------------------------------

_TRACK_KEYS = 100_000  # tracklet keys (seed, stream, pid, _TRACK_KEYS + first image) never equal an image key


def _stem(pid: int, camera: int, sequence: int, frame: int, bbox: int) -> str:
    prefix = "-1" if pid == -1 else f"{pid:04d}"
    return f"{prefix}_c{camera}s{sequence}_{frame:06d}_{bbox:02d}"


_ANY_VIEW = (1 / 3, 1 / 3, 1 / 3)


def _view_probs(config: SynthMarketConfig, camera: Camera) -> tuple[float, ...]:
    """The camera's own viewpoint probabilities, or uniform ones when ``config.camera_views`` is off."""
    return camera.view_probs if config.camera_views else _ANY_VIEW


def _view(rng: np.random.Generator, probs: Sequence[float], dominant: str | None = None) -> tuple[str, int]:
    view = dominant if dominant is not None and rng.random() < 0.75 else _choice(rng, VIEWS, probs)
    return view, int(rng.choice((-1, 1)))


def _built(appearance: Appearance, body_width: float) -> Appearance:
    """``appearance`` with its width factor times ``body_width`` (SynthMarketConfig.body_width)."""
    return appearance if body_width == 1.0 else dataclasses.replace(appearance, width=appearance.width * body_width)


def plan_samples(config: SynthMarketConfig, *, seed: int, difficulty: float) -> tuple[list[SampleSpec], list[Camera]]:
    """Decide every image of the dataset (no rendering): identities, cameras, views, names, splits.

    Market-1501 protocol (Zheng et al. ICCV 2015; docs/methods.md, sections 6-7):

    - pids ``1..n_train_ids + n_test_ids`` are shuffled into disjoint train and test identities;
    - an identity is seen in ``cameras_per_id`` cameras with ``images_per_id`` images in all, at
      least one per camera (train) or two per camera (test); within a camera its images form one
      track (one sequence, increasing frames) and mostly share the camera's dominant viewpoint (with
      ``camera_views`` off, every tracklet's viewpoint is drawn uniformly, whatever the camera); the
      track is cut into tracklets of ``tracklet_length`` consecutive frames that share their view,
      scene and pose (a person filmed while walking past), as real datasets are cut from video; with
      ``tracklet_motion`` the person walks on between frames: each frame shows the next window of the
      tracklet's scene and another pose;
    - for each test identity and camera one image goes to ``query`` and the rest to
      ``bounding_box_test``, so every query has a gallery match in another camera;
    - ``bounding_box_test`` also gets ``n_distractors`` pid-0 images (people not in the dataset, a
      quarter of them background only) and ``n_junk`` pid-(-1) images (test identities cropped so
      badly that little of them shows, or background).

    Args:
        config: Dataset size and domain.
        seed: Dataset seed.
        difficulty: Scales the camera transforms and the share of twins.

    Returns:
        ``(specs, cameras)``: the samples in a fixed order and the :class:`Camera` list.
    """
    cameras = sample_cameras(config.cameras, seed=seed, difficulty=difficulty, domain=config.domain,
                             scenes_per_camera=config.scenes_per_camera)
    palette = config.domain.palette
    n_ids = config.n_train_ids + config.n_test_ids
    order = np.random.default_rng([seed, _STREAM_SPLIT]).permutation(np.arange(1, n_ids + 1))
    train_pids = sorted(int(p) for p in order[:config.n_train_ids])
    test_pids = sorted(int(p) for p in order[config.n_train_ids:])
    twin_probability = min(0.6, config.twin_fraction * difficulty)
    appearances = {**sample_identities(train_pids, seed=seed, twin_probability=twin_probability, palette=palette),
                   **sample_identities(test_pids, seed=seed, twin_probability=twin_probability, palette=palette)}
    appearances = {pid: _built(a, config.body_width) for pid, a in appearances.items()}

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
            dominant = _choice(rng, VIEWS, camera.view_probs) if config.camera_views else None
            query = int(rng.integers(count)) if is_test else -1
            frames_left, track_key = 0, None
            for j in range(count):
                frame += int(rng.integers(4, 40))
                bbox = 1 if rng.random() < 0.85 else int(rng.integers(2, 4))
                if frames_left == 0:  # a new tracklet: its view, and the key of its scene and pose
                    view, direction = _view(rng, _view_probs(config, camera), dominant)
                    frames_left = 1
                    if config.tracklet_length[1] > 1:
                        frames_left = int(rng.integers(config.tracklet_length[0], config.tracklet_length[1] + 1))
                        track_key = (seed, _STREAM_IMAGE, pid, _TRACK_KEYS + index)
                        if config.tracklet_motion > 0:  # where the walk starts in the scene; a step per frame
                            walk = min(PAN_SPAN, (frames_left - 1) * config.tracklet_motion)
                            pan, step = float(rng.uniform(0, PAN_SPAN - walk)), walk / max(1, frames_left - 1)
                frames_left -= 1
                split = "bounding_box_train" if not is_test else ("query" if j == query else "bounding_box_test")
                walking = config.tracklet_motion > 0 and track_key is not None
                specs.append(SampleSpec(split, unique_stem(pid, cam, sequence, frame, bbox), pid, cam, view,
                                        direction, appearances[pid], None, (seed, _STREAM_IMAGE, pid, index),
                                        track_key, pan if walking else None))
                if walking:
                    pan += step
                index += 1

    for i in range(config.n_distractors):
        rng = np.random.default_rng([seed, _STREAM_DISTRACTOR, i])
        cam = int(rng.integers(1, config.cameras + 1))
        appearance = _built(sample_appearance(rng, palette), config.body_width) if rng.random() < 0.75 else None
        view, direction = _view(rng, _view_probs(config, cameras[cam - 1]))
        stem = unique_stem(0, cam, int(rng.integers(1, 7)), int(rng.integers(100, 150000)), int(rng.integers(1, 4)))
        specs.append(SampleSpec("bounding_box_test", stem, 0, cam, view, direction, appearance, None,
                                (seed, _STREAM_DISTRACTOR, i)))

    for i in range(config.n_junk):
        rng = np.random.default_rng([seed, _STREAM_JUNK, i])
        cam = int(rng.integers(1, config.cameras + 1))
        junk = _choice(rng, ("offset", "part", "small", "background"), (0.35, 0.3, 0.2, 0.15))
        appearance = None if junk == "background" else appearances[test_pids[int(rng.integers(len(test_pids)))]]
        view, direction = _view(rng, _view_probs(config, cameras[cam - 1]))
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
