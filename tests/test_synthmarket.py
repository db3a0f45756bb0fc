"""Tests of reidlab.data.synthmarket: layout, masks, splits, determinism and safe writing (tiny preset)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reidlab.cli import main
from reidlab.data import synthmarket as sm
from reidlab.data.synthmarket import writer

MARKET = re.compile(r"([-\d]+)_c(\d)")  # the regex the Market-1501 loaders use
FULL_NAME = re.compile(r"^(-1|\d{4})_c([1-6])s([1-6])_(\d{6})_(\d{2})\.jpg$")
# A very small custom dataset for the tests that only need *a* generation.
MICRO = dataclasses.replace(sm.PRESETS["tiny"], n_train_ids=2, n_test_ids=2, n_distractors=2, n_junk=2)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "SynthMarket"
    return sm.generate_synthmarket(root, preset="tiny", seed=0, workers=0, progress=False)


def records(root: Path, split: str) -> list[tuple[str, int, int]]:
    """(stem, pid, camera) of a split folder, parsed with the Market regex."""
    out = []
    for path in sorted((root / split).glob("*.jpg")):
        pid, cam = MARKET.match(path.name).groups()
        out.append((path.stem, int(pid), int(cam)))
    return out


def hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_names_and_manifest(tiny):
    assert sorted(p.name for p in tiny.iterdir()) == sorted([*sm.SPLIT_DIRS, "masks", sm.MANIFEST_NAME])
    manifest = json.loads((tiny / sm.MANIFEST_NAME).read_text())
    assert manifest["complete"] is True
    assert (manifest["name"], manifest["version"], manifest["preset"]) == ("SynthMarket", 1, "tiny")
    assert (manifest["seed"], manifest["difficulty"]) == (0, 1.0)
    assert manifest["image_size"] == [128, 64]
    assert manifest["part_names"] == ["background", "head", "upper_body", "lower_body", "shoes", "accessory"]
    for split in sm.SPLIT_DIRS:
        files = sorted((tiny / split).iterdir())
        assert files and all(FULL_NAME.match(f.name) for f in files), split
        assert manifest["counts"][split]["images"] == len(files)
        assert manifest["counts"][split]["ids"] == len({pid for _, pid, _ in records(tiny, split) if pid > 0})
        with Image.open(files[0]) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (64, 128))
    total = sum(manifest["counts"][s]["images"] for s in sm.SPLIT_DIRS)
    assert 150 <= total <= 400  # "a few hundred images"


def test_every_image_has_an_exact_size_mask_with_part_labels(tiny):
    with_all_parts = n_train = 0
    for split in sm.SPLIT_DIRS:
        stems = {p.stem for p in (tiny / split).glob("*.jpg")}
        assert stems == {p.stem for p in (tiny / "masks" / split).glob("*.png")}
        for stem in stems:
            with Image.open(tiny / "masks" / split / f"{stem}.png") as mask:
                assert (mask.format, mask.mode, mask.size) == ("PNG", "L", (64, 128))
                values = set(np.unique(np.asarray(mask)).tolist())
            assert values <= set(range(6))
            if split == "bounding_box_train":
                n_train += 1
                with_all_parts += {1, 2, 3} <= values
    assert with_all_parts >= 0.8 * n_train  # only occluded or badly cropped persons miss a part


def test_splits_follow_the_market_protocol(tiny):
    train, query, gallery = (records(tiny, s) for s in sm.SPLIT_DIRS)
    train_ids = {pid for _, pid, _ in train}
    test_ids = {pid for _, pid, _ in query + gallery if pid > 0}
    assert 0 not in train_ids and -1 not in train_ids
    assert train_ids and test_ids and not train_ids & test_ids
    assert {pid for _, pid, _ in query} == test_ids
    cameras = defaultdict(set)
    for _, pid, cam in train + query + gallery:
        cameras[pid].add(cam)
    assert all(len(cameras[pid]) >= 2 for pid in train_ids | test_ids)
    per_camera = defaultdict(int)
    for _, pid, cam in query:
        per_camera[pid, cam] += 1
    assert set(per_camera.values()) == {1}
    gallery_cams = defaultdict(set)
    for _, pid, cam in gallery:
        gallery_cams[pid].add(cam)
    for _, pid, cam in query:  # a cross-camera gallery match for every query
        assert gallery_cams[pid] - {cam}
        assert cam in gallery_cams[pid]  # one query per camera: the camera's other images stay in the gallery
    stems = [stem for stem, _, _ in gallery]
    assert any(s.startswith("-1_c") for s in stems) and any(s.startswith("0000_c") for s in stems)


def test_regeneration_is_byte_identical_with_any_worker_count(tiny, tmp_path):
    again = sm.generate_synthmarket(tmp_path / "again", preset="tiny", seed=0, workers=2, progress=False)
    assert hashes(again) == hashes(tiny)


def test_different_seed_gives_different_files(tmp_path):
    first = hashes(sm.generate_synthmarket(tmp_path / "a", config=MICRO, seed=0, workers=0, progress=False))
    second = hashes(sm.generate_synthmarket(tmp_path / "b", config=MICRO, seed=1, workers=0, progress=False))
    jpgs = lambda h: sorted(v for k, v in h.items() if k.endswith(".jpg"))  # noqa: E731
    assert not set(jpgs(first)) & set(jpgs(second))


def test_mask_matches_the_drawn_image_pixel_for_pixel():
    # Render one sample with and without its person: with the same scene, crop and camera, pixels
    # labelled background (2 px from the person: the bilinear support) must be unchanged, and the
    # person's pixels must differ. difficulty=0 removes blur and noise; rows near the feet hold the shadow.
    specs, cameras = sm.plan_samples(MICRO, seed=0, difficulty=0.0)
    spec = next(s for s in specs if s.split == "bounding_box_train")
    for view in ("front", "back", "side"):
        person = dataclasses.replace(spec, view=view)
        image, mask = sm.render_sample(person, cameras[spec.camera - 1], difficulty=0.0)
        empty, empty_mask = sm.render_sample(dataclasses.replace(person, appearance=None),
                                             cameras[spec.camera - 1], difficulty=0.0)
        labels = np.asarray(mask)
        assert not np.asarray(empty_mask).any()
        assert {1, 2, 3, 4} <= set(np.unique(labels).tolist())
        diff = np.abs(np.asarray(image, dtype=int) - np.asarray(empty, dtype=int)).max(axis=2)
        padded = np.pad(labels > 0, 2)
        near = np.zeros_like(labels, dtype=bool)
        inner = np.ones_like(labels, dtype=bool)
        for dy in range(5):
            for dx in range(5):
                window = padded[dy:dy + 128, dx:dx + 64]
                near |= window
                inner &= window
        above_feet = np.arange(128)[:, None] < 108
        assert (diff[~near & above_feet] == 0).all()
        assert (diff[inner] > 0).mean() > 0.9


def test_backpack_is_seen_from_the_back_and_only_its_straps_from_the_front():
    specs, cameras = sm.plan_samples(MICRO, seed=0, difficulty=0.0)
    spec = next(s for s in specs if s.split == "bounding_box_train")
    spec = dataclasses.replace(spec, appearance=dataclasses.replace(spec.appearance, bag="backpack"))
    area = {}
    for view in ("front", "back", "side"):
        _, mask = sm.render_sample(dataclasses.replace(spec, view=view), cameras[0], difficulty=0.0)
        area[view] = int((np.asarray(mask) == sm.ACCESSORY).sum())
    assert area["back"] > 2 * area["front"] > 0
    assert area["side"] > 0


def test_palette_is_shared_and_twins_differ_in_one_part():
    specs, _ = sm.plan_samples(sm.PRESETS["default"], seed=0, difficulty=1.0)
    people = {s.pid: s.appearance for s in specs if s.pid > 0}
    assert len(people) == 300
    uppers = defaultdict(int)
    for a in people.values():
        uppers[a.upper] += 1
    assert max(uppers.values()) >= 20  # many identities share their top colour
    twins = {pid: a for pid, a in people.items() if a.twin_of is not None}
    assert 0.05 * len(people) <= len(twins) <= 0.3 * len(people)
    changed_fields = {"shoes": {"shoes"}, "bag": {"bag", "bag_colour"}, "pattern": {"pattern"}}
    for pid, twin in twins.items():
        original = people[twin.twin_of]
        diff = {f.name for f in dataclasses.fields(twin) if getattr(twin, f.name) != getattr(original, f.name)}
        assert diff - {"twin_of", "twin_part"} and diff - {"twin_of", "twin_part"} <= changed_fields[twin.twin_part]
    originals = [a.signature() for a in people.values() if a.twin_of is None]
    assert len(set(originals)) == len(originals)
    easy, _ = sm.plan_samples(sm.PRESETS["tiny"], seed=0, difficulty=0.0)
    assert all(s.appearance is None or s.appearance.twin_of is None for s in easy)


def test_default_domain_reproduces_the_cameras_and_people_drawn_without_one():
    # SynthDomain's defaults are SynthMarket's own domain: passing it changes nothing.
    assert sm.sample_cameras(6, seed=3, difficulty=1.0) == sm.sample_cameras(6, seed=3, difficulty=1.0,
                                                                             domain=sm.SynthDomain())
    assert sm.PRESETS["default"].domain == sm.SynthDomain() and sm.PRESETS["tiny"].domain == sm.SynthDomain()
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    assert sm.sample_appearance(rng_a) == sm.sample_appearance(rng_b, "street")


def test_campus_domain_has_its_own_cameras_scenes_sensors_and_clothes():
    from reidlab.data.synthmarket.appearance import _CLOTHING, _WINTER

    config = sm.PRESETS["campus"]
    default = sm.PRESETS["default"]
    # Same size as the lab preset, eight cameras.
    assert (config.n_train_ids, config.n_test_ids, config.images_per_id) == \
        (default.n_train_ids, default.n_test_ids, default.images_per_id)
    assert config.cameras == 8 and sm.PRESETS["tiny_campus"].cameras == 8
    assert sm.domain_preset("default", "campus") == "campus" and sm.domain_preset("tiny", "campus") == "tiny_campus"
    assert sm.domain_preset("tiny", None) == "tiny"
    specs, cameras = sm.plan_samples(sm.PRESETS["tiny_campus"], seed=2, difficulty=1.0)
    assert {s.camera for s in specs} == set(range(1, 9))
    assert {c.background for c in cameras} == set(sm.CAMPUS.backgrounds)  # every kind, each twice
    people = [s.appearance for s in specs if s.appearance is not None]
    worn = {a.upper for a in people} | {a.lower for a in people} | {a.pattern_colour for a in people}
    assert worn <= set(_WINTER) and not worn & set(_CLOTHING)
    # The domain moves every camera: the drawn camera, then coarser, blurrier, warmer (same seed, same draws).
    plain = sm.sample_cameras(8, seed=2, difficulty=1.0, domain=dataclasses.replace(
        sm.CAMPUS, palette="street", white_balance=(1.0, 1.0, 1.0), cast_strength=1.0, resolution=1.0, blur=0.0))
    for moved, drawn in zip(cameras, plain):
        assert moved.background == drawn.background and moved.colours == drawn.colours
        assert moved.resolution == pytest.approx(max(0.2, drawn.resolution * sm.CAMPUS.resolution))
        assert moved.blur_sigma == pytest.approx(drawn.blur_sigma + sm.CAMPUS.blur)
        expected = np.asarray(drawn.gain) ** sm.CAMPUS.cast_strength * np.asarray(sm.CAMPUS.white_balance)
        assert moved.gain == pytest.approx(tuple(expected))
    # Every image renders with a valid mask, the file names stay Market-1501's, c7 and c8 included.
    spec = next(s for s in specs if s.camera == 8 and s.appearance is not None)
    image, mask = sm.render_sample(spec, cameras[7])
    assert image.size == (64, 128) and set(np.unique(np.asarray(mask)).tolist()) <= set(range(6))
    assert re.match(r"^\d{4}_c8s[1-6]_\d{6}_\d{2}$", spec.stem)


def test_domain_manifest_and_validation(tmp_path):
    micro_campus = dataclasses.replace(MICRO, cameras=8, domain=sm.CAMPUS)
    root = sm.generate_synthmarket(tmp_path / "campus", config=micro_campus, seed=0, workers=0, progress=False)
    manifest = json.loads((root / sm.MANIFEST_NAME).read_text())
    assert manifest["config"]["domain"]["palette"] == "winter" and manifest["config"]["cameras"] == 8
    plain = sm.generate_synthmarket(tmp_path / "plain", config=MICRO, seed=0, workers=0, progress=False)
    assert "domain" not in json.loads((plain / sm.MANIFEST_NAME).read_text())["config"]  # as before domains
    with pytest.raises(ValueError, match="backgrounds must be"):
        sm.SynthDomain(backgrounds=("tiles", "moon"))
    with pytest.raises(ValueError, match="palette must be one of"):
        sm.SynthDomain(palette="summer")
    with pytest.raises(ValueError, match="resolution must be"):
        sm.SynthDomain(resolution=0.0)


def test_interrupted_generation_leaves_nothing_loadable(tmp_path, monkeypatch):
    written = []

    def failing_writer(root, spec, image, mask, quality):
        if len(written) == 5:
            raise KeyboardInterrupt("simulated interruption")
        written.append(spec.stem)
        image.save(root / spec.split / f"{spec.stem}.jpg", format="JPEG", quality=quality)

    monkeypatch.setattr(writer, "_write_sample", failing_writer)
    with pytest.raises(KeyboardInterrupt):
        sm.generate_synthmarket(tmp_path / "SynthMarket", config=MICRO, workers=0, progress=False)
    assert len(written) == 5
    assert list(tmp_path.iterdir()) == []  # no root, no partial folder, no manifest anywhere


def test_stale_partial_folder_of_a_dead_run_is_removed(tmp_path):
    stale = tmp_path / "SynthMarket.partial-999999999-deadbeef"  # pid above any pid_max: not running
    (stale / "query").mkdir(parents=True)
    (stale / writer._MARKER).write_text("999999999-deadbeef\n")  # the generator's own folder
    users = [tmp_path / "SynthMarket.partial-999999998", tmp_path / "SynthMarket.old-999999997-mine"]
    for folder in users:  # same naming, no marker: a user's folders, which must stay
        (folder / "notes").mkdir(parents=True)
    sm.generate_synthmarket(tmp_path / "SynthMarket", config=MICRO, workers=0, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SynthMarket", *sorted(f.name for f in users)]
    assert not (tmp_path / "SynthMarket" / writer._MARKER).exists()


def test_existing_root_is_reused_refused_or_overwritten(tiny, tmp_path, monkeypatch, caplog):
    def must_not_render(*args, **kwargs):
        raise AssertionError("a complete dataset with the same parameters must be reused")

    with monkeypatch.context() as patch:
        patch.setattr(writer, "_render_all", must_not_render)
        with caplog.at_level(logging.INFO, logger=sm.__name__):
            assert sm.generate_synthmarket(tiny, preset="tiny", seed=0, progress=False) == tiny
        assert "reusing" in caplog.text
        with pytest.raises(FileExistsError, match=r"overwrite=True.*another root"):
            sm.generate_synthmarket(tiny, preset="tiny", seed=1, progress=False)
        with pytest.raises(FileExistsError, match="difficulty=2.0"):
            sm.generate_synthmarket(tiny, preset="tiny", seed=0, difficulty=2.0, progress=False)

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("not a dataset")
    with pytest.raises(FileExistsError, match="is not a SynthMarket .* move .* away yourself"):
        sm.generate_synthmarket(other, config=MICRO, workers=0, progress=False)
    with pytest.raises(FileExistsError, match="is not a SynthMarket"):  # not even with overwrite
        sm.generate_synthmarket(other, config=MICRO, workers=0, overwrite=True, progress=False)
    assert (other / "notes.txt").exists()

    root = sm.generate_synthmarket(tmp_path / "micro", config=MICRO, seed=0, workers=0, progress=False)
    sm.generate_synthmarket(root, config=MICRO, seed=1, workers=0, overwrite=True, progress=False)
    manifest = json.loads((root / sm.MANIFEST_NAME).read_text())
    assert (manifest["seed"], manifest["preset"], manifest["complete"]) == (1, "custom", True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["micro", "other"]  # the old copy is gone


def test_invalid_arguments_are_explained(tmp_path):
    with pytest.raises(ValueError, match=r"preset must be one of \['campus', 'default', 'lab', 'lab_campus', 'tiny', 'tiny_campus'\], got 'huge'"):
        sm.generate_synthmarket(tmp_path / "x", preset="huge")
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        sm.generate_synthmarket(tmp_path / "x", seed=-1)
    with pytest.raises(ValueError, match="difficulty must be a finite number >= 0"):
        sm.generate_synthmarket(tmp_path / "x", difficulty=-0.5)
    with pytest.raises(ValueError, match=r"images_per_id must be .* 4 <= low <= high, got \(3, 8\)"):
        sm.SynthMarketConfig(images_per_id=(3, 8))
    with pytest.raises(ValueError, match="cameras must be in 2..9, got 10"):
        sm.SynthMarketConfig(cameras=10)
    assert not (tmp_path / "x").exists()


def test_cli_generates_tiny_and_prints_counts(tmp_path, capsys):
    root = tmp_path / "cli"
    assert main(["data", "--root", str(root), "--preset", "tiny", "--seed", "3", "--workers", "0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((root / sm.MANIFEST_NAME).read_text())
    assert str(root) in out and manifest["seed"] == 3
    for split in sm.SPLIT_DIRS:
        assert re.search(rf"{split}\s+{manifest['counts'][split]['images']} images", out)


def test_tracklets_share_view_scene_and_pose_and_default_draws_each_image_alone():
    config = dataclasses.replace(sm.PRESETS["tiny"], tracklet_length=(2, 4))
    specs, _ = sm.plan_samples(config, seed=3, difficulty=1.0)
    people = [s for s in specs if s.pid > 0]
    tracks = defaultdict(list)
    for spec in people:
        tracks[spec.track_key].append(spec)
    assert None not in tracks
    for frames in tracks.values():
        assert len({(f.pid, f.camera, f.view, f.direction) for f in frames}) == 1
        assert len({f.key for f in frames}) == len(frames)  # each frame its own box, occlusion and noise
    # tracks are cut from one camera's walk: at most 4 frames each, and some of several frames
    sizes = [len(frames) for frames in tracks.values()]
    assert max(sizes) <= 4 and sum(size > 1 for size in sizes) > len(sizes) // 3
    # two frames of a tracklet: the same scene and pose, so their pixels are far closer than across tracklets
    first, second = next(frames for frames in tracks.values() if len(frames) > 1)[:2]
    other = next(frames[0] for frames in tracks.values() if frames[0].pid == first.pid and frames[0] is not first)
    cameras = sm.sample_cameras(config.cameras, seed=3, difficulty=0.0)
    pixels = [np.asarray(sm.render_sample(spec, cameras[spec.camera - 1], difficulty=0.0)[0], dtype=float)
              for spec in (first, second, other)]
    assert np.abs(pixels[0] - pixels[1]).mean() < 0.5 * np.abs(pixels[0] - pixels[2]).mean()
    # the default preset keeps every image its own tracklet
    assert all(s.track_key is None for s in sm.plan_samples(sm.PRESETS["tiny"], seed=3, difficulty=1.0)[0])


def test_cameras_film_several_scenes_without_changing_their_own():
    one = sm.sample_cameras(6, seed=5, difficulty=1.0)
    three = sm.sample_cameras(6, seed=5, difficulty=1.0, scenes_per_camera=3)
    for single, wide in zip(one, three):
        assert dataclasses.replace(wide, other_scenes=()) == single
        kinds = [single.background] + [kind for kind, _ in wide.other_scenes]
        assert len(kinds) == 3 and len(set(kinds)) == 3
    # every background kind is filmed by three cameras: the scene no longer names the camera
    filmed = defaultdict(set)
    for camera in three:
        for kind in [camera.background] + [kind for kind, _ in camera.other_scenes]:
            filmed[kind].add(camera.index)
    assert all(len(cams) == 3 for cams in filmed.values())
    with pytest.raises(ValueError, match="scenes_per_camera"):
        dataclasses.replace(sm.PRESETS["tiny"], scenes_per_camera=7)
    with pytest.raises(ValueError, match="tracklet_length"):
        dataclasses.replace(sm.PRESETS["tiny"], tracklet_length=(0, 2))


def test_viewpoints_follow_the_camera_unless_camera_views_is_off():
    def view_shares(config):
        specs, _ = sm.plan_samples(config, seed=2, difficulty=1.0)
        counts = defaultdict(Counter)
        for spec in specs:
            if spec.pid > 0:
                counts[spec.camera][spec.view] += 1
        return {cam: {view: n / sum(c.values()) for view, n in c.items()} for cam, c in counts.items()}

    base = dataclasses.replace(sm.PRESETS["default"], n_distractors=0, n_junk=0)
    # by default each camera prefers some views: its most common view is well above a third (0.53 here)
    assert np.mean([max(shares.values()) for shares in view_shares(base).values()]) > 0.45
    # with camera_views off every camera sees the three views about equally
    uniform = view_shares(dataclasses.replace(base, camera_views=False))
    assert all(abs(share - 1 / 3) < 0.06 for shares in uniform.values() for share in shares.values())


def test_a_walking_tracklet_pans_across_its_scene_and_changes_pose():
    config = dataclasses.replace(sm.PRESETS["tiny"], tracklet_length=(3, 5), tracklet_motion=0.25)
    specs, cameras = sm.plan_samples(config, seed=4, difficulty=0.0)
    tracks = defaultdict(list)
    for spec in specs:
        if spec.track_key is not None:
            tracks[spec.track_key].append(spec)
    # frames step 0.25 crop widths along their walk, inside the scene's span
    for frames in tracks.values():
        assert np.allclose(np.diff([f.pan for f in frames]), 0.25)
        assert 0 <= frames[0].pan and frames[-1].pan <= sm.config.PAN_SPAN + 1e-9
    assert all(s.pan is None for s in specs if s.track_key is None)
    # the background alone (no person): frame two is frame one moved left by 0.25 crop widths (16 of 64
    # pixels), so the scene is the tracklet's but the pixels are not
    first, second = next(frames for frames in tracks.values() if frames[0].pan <= 1.0)[:2]
    camera = cameras[first.camera - 1]
    empty = [np.asarray(sm.render_sample(dataclasses.replace(f, appearance=None), camera, difficulty=0.0)[0],
                        dtype=float) for f in (first, second)]
    assert np.abs(empty[0][:, 16:] - empty[1][:, :-16]).mean() < 2.0
    assert np.abs(empty[0] - empty[1]).mean() > 4 * np.abs(empty[0][:, 16:] - empty[1][:, :-16]).mean()
    # with the person: the silhouettes differ (the walk goes on) although view and person are the same
    masks = [np.asarray(sm.render_sample(f, camera, difficulty=0.0)[1]) > 0 for f in (first, second)]
    still = dataclasses.replace(config, tracklet_motion=0.0)
    frozen = [s for s in sm.plan_samples(still, seed=4, difficulty=0.0)[0] if s.track_key == first.track_key][:2]
    frozen_masks = [np.asarray(sm.render_sample(f, camera, difficulty=0.0)[1]) > 0 for f in frozen]
    assert (masks[0] != masks[1]).sum() > (frozen_masks[0] != frozen_masks[1]).sum()
    with pytest.raises(ValueError, match="tracklet_motion"):
        dataclasses.replace(sm.PRESETS["tiny"], tracklet_motion=1.5)


def test_body_width_widens_every_person_and_nothing_else():
    base = dataclasses.replace(sm.PRESETS["tiny"], n_junk=0)
    slim, _ = sm.plan_samples(base, seed=6, difficulty=0.0)
    wide, cameras = sm.plan_samples(dataclasses.replace(base, body_width=1.5), seed=6, difficulty=0.0)
    assert [(s.stem, s.view) for s in slim] == [(s.stem, s.view) for s in wide]
    people = [(a, b) for a, b in zip(slim, wide) if a.appearance is not None]
    assert people and all(b.appearance.width == pytest.approx(1.5 * a.appearance.width) for a, b in people)
    assert all(dataclasses.replace(b.appearance, width=a.appearance.width) == a.appearance for a, b in people)
    # a front view: the person covers more of the crop's width, at the same height
    a, b = next((a, b) for a, b in people if a.view == "front" and a.pid > 0)
    camera = cameras[a.camera - 1]
    masks = [np.asarray(sm.render_sample(spec, camera, difficulty=0.0)[1]) > 0 for spec in (a, b)]
    widths = [mask.any(axis=0).sum() for mask in masks]
    heights = [mask.any(axis=1).sum() for mask in masks]
    assert widths[1] > 1.25 * widths[0] and abs(heights[1] - heights[0]) <= 2
    with pytest.raises(ValueError, match="body_width"):
        dataclasses.replace(base, body_width=3.0)


def test_manifest_of_a_default_dataset_names_no_setting_added_after_format_1(tiny):
    config = json.loads((tiny / sm.MANIFEST_NAME).read_text())["config"]
    assert not {"domain", "tracklet_length", "scenes_per_camera", "camera_views", "tracklet_motion",
                "body_width"} & set(config)


def test_lab_preset_is_the_calibrated_structure_generated_at_difficulty_zero(tmp_path):
    """The lab scale's preset: the default's size, walking tracklets in six scenes per camera, free viewpoints,
    wide people; generated at difficulty 0 unless told otherwise (its campus twin too)."""
    lab, default = sm.PRESETS["lab"], sm.PRESETS["default"]
    assert (lab.n_train_ids, lab.n_test_ids, lab.images_per_id, lab.cameras) == \
        (default.n_train_ids, default.n_test_ids, default.images_per_id, default.cameras)
    assert (lab.tracklet_length, lab.scenes_per_camera, lab.camera_views, lab.tracklet_motion, lab.body_width) == \
        ((2, 4), 6, False, 0.3, 2.0)
    assert sm.domain_preset("lab", "campus") == "lab_campus"
    assert sm.PRESETS["lab_campus"].domain == sm.CAMPUS and sm.PRESETS["lab_campus"].tracklet_length == (2, 4)
    assert [sm.preset_difficulty(name) for name in ("lab", "lab_campus", "default", "tiny")] == [0.0, 0.0, 1.0, 1.0]
    micro = dataclasses.replace(sm.PRESETS["tiny"], n_train_ids=2, n_test_ids=2, n_distractors=0, n_junk=0)
    root = sm.generate_synthmarket(tmp_path / "custom", config=micro, workers=0, progress=False)
    assert json.loads((root / sm.MANIFEST_NAME).read_text())["difficulty"] == 1.0  # a config: difficulty 1
