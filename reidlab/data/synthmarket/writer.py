"""Writing a SynthMarket dataset atomically, and its command line (section 5)."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import multiprocessing
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from reidlab.data.synthmarket.cameras import Camera
from reidlab.data.synthmarket.config import (
    FORMAT_VERSION,
    IMAGE_SIZE,
    MANIFEST_NAME,
    PART_NAMES,
    PRESETS,
    SPLIT_DIRS,
    SynthDomain,
    SynthMarketConfig,
    preset_difficulty,
)
from reidlab.data.synthmarket.plan import _counts, plan_samples
from reidlab.data.synthmarket.render import SampleSpec, render_sample

# --------------------------------------------------------------------------------------------------
# 5. Writer
# --------------------------------------------------------------------------------------------------

logger = logging.getLogger(__name__)


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


# The file that marks a folder as the generator's own work in progress (or its own discarded copy): only
# folders that carry it are ever removed, so a user's folder that merely has a similar name is safe.
_MARKER = ".reidlab-synthmarket-temporary"


def _mark(folder: Path, token: str) -> None:
    (folder / _MARKER).write_text(f"{token}\n", encoding="utf-8")


def _remove_stale(root: Path) -> None:
    """Remove ``<root>.partial-<pid>-*`` / ``<root>.old-<pid>-*`` folders that this generator made (they carry
    its marker file) and whose process is gone."""
    if not root.parent.is_dir():
        return
    for path in root.parent.iterdir():
        if not path.name.startswith(f"{root.name}."):
            continue
        tag, _, rest = path.name[len(root.name) + 1:].partition("-")
        pid = rest.split("-")[0]
        if (tag in ("partial", "old") and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid))
                and path.is_dir() and (path / _MARKER).is_file()):
            logger.info("removing %s left by an interrupted SynthMarket generation", path)
            shutil.rmtree(path, ignore_errors=True)


def _die_with_parent() -> None:
    """Worker initialiser: on Linux, ask for SIGTERM when the parent process dies (no orphaned renderers)."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the pool's own shutdown still ends the workers
        pass


def generate_synthmarket(
    root: str | os.PathLike,
    *,
    preset: str = "default",
    seed: int = 0,
    difficulty: float | None = None,
    config: SynthMarketConfig | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Generate a SynthMarket dataset at ``root`` (layout in the module docstring) and return ``root``.

    The dataset is written to a sibling ``<root>.partial-<pid>-<token>`` folder, the manifest
    ``synthmarket.json`` (with ``"complete": true``) last, and the folder is then renamed to ``root``;
    an interrupted run leaves no ``root``. Stale ``.partial`` folders of dead runs are removed, but only
    those that carry the generator's marker file: a folder reidlab did not make is never removed.

    If ``root`` exists and is non-empty: a complete dataset with the same preset, config, seed and
    difficulty is reused as is; another SynthMarket raises :class:`FileExistsError` unless
    ``overwrite``, which replaces it once the new dataset is complete; anything that is not a SynthMarket
    is never replaced.

    Args:
        root: Folder of the dataset, e.g. ``data/SynthMarket``.
        preset: Name of a config in :data:`PRESETS` (``tiny``, ``default``, ``lab``, or their ``campus``
            domain: ``tiny_campus``, ``campus``, ``lab_campus``); ignored if ``config``.
        seed: Non-negative seed; the same seed, preset and difficulty give byte-identical files.
        difficulty: 0 = easy (no casts, noise, occlusion or twins), 1 = default, larger = harder; None: the
            preset's (:func:`preset_difficulty`: 0 for ``lab`` and ``lab_campus``, 1 otherwise and for a ``config``).
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
    difficulty = float(preset_difficulty(preset_name) if difficulty is None else difficulty)
    if not math.isfinite(difficulty) or difficulty < 0:
        raise ValueError(f"difficulty must be a finite number >= 0, got {difficulty}")
    workers = min(2, os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 0:
        raise ValueError(f"workers must be >= 0 (0 or 1 = render inline), got {workers}")

    root = Path(root).expanduser().absolute()
    manifest = {"name": "SynthMarket", "version": FORMAT_VERSION, "preset": preset_name, "seed": int(seed),
                "difficulty": difficulty, "image_size": list(IMAGE_SIZE), "part_names": list(PART_NAMES),
                "config": dataclasses.asdict(config)}
    # Settings added after format 1 are not written at their defaults: manifests stay as they were before them,
    # so a dataset generated then is still recognised and reused.
    for name, default in (("domain", SynthDomain()), ("tracklet_length", (1, 1)), ("scenes_per_camera", 1),
                          ("camera_views", True), ("tracklet_motion", 0.0),
                          ("body_width", 1.0)):
        if getattr(config, name) == default:
            del manifest["config"][name]
    manifest["config"] = json.loads(json.dumps(manifest["config"]))  # tuples as lists, as read back
    _remove_stale(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        existing = _read_manifest(root) if root.is_dir() else None
        if existing is not None and existing.get("complete") is True and all(
                existing.get(k) == manifest[k] for k in ("version", "preset", "seed", "difficulty", "config")):
            logger.info("SynthMarket at %s already complete (preset %s, seed %d, difficulty %g): reusing it",
                        root, preset_name, seed, difficulty)
            return root
        if existing is None:  # not reidlab's: never replaced, even with overwrite
            raise FileExistsError(
                f"'{root}' already exists and is not a SynthMarket (no {MANIFEST_NAME}); reidlab replaces only "
                f"a SynthMarket it generated: choose another root, or move '{root}' away yourself"
            )
        if not overwrite:
            raise FileExistsError(
                f"'{root}' already holds a different SynthMarket (preset={existing.get('preset')}, "
                f"seed={existing.get('seed')}, difficulty={existing.get('difficulty')}; wanted preset={preset_name}, "
                f"seed={seed}, difficulty={difficulty}): pass overwrite=True (--overwrite) to replace it, or "
                f"choose another root"
            )

    specs, cameras = plan_samples(config, seed=int(seed), difficulty=difficulty)
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    partial = root.parent / f"{root.name}.partial-{token}"
    partial.mkdir(parents=True)  # new and ours: the token is unique
    try:
        _mark(partial, token)
        for split in SPLIT_DIRS:
            (partial / split).mkdir(parents=True)
            (partial / "masks" / split).mkdir(parents=True)
        _render_all(partial, specs, cameras, difficulty, config.jpeg_quality, workers, progress)
        manifest.update(counts=_counts(specs), complete=True)
        (partial / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if root.exists():  # an empty folder, or a SynthMarket to overwrite: move it aside, remove it after
            old = root.parent / f"{root.name}.old-{token}"
            os.replace(root, old)
            _mark(old, token)  # now ours to remove
            (partial / _MARKER).unlink()
            os.replace(partial, root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            (partial / _MARKER).unlink()
            os.replace(partial, root)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # made by this call (unique token)
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
        with multiprocessing.get_context().Pool(workers, initializer=_die_with_parent) as pool:
            for done in pool.imap_unordered(_render_chunk_args, jobs):
                bar.update(done)


# --------------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------------


def describe(root: str | Path) -> str:
    """A few lines about the SynthMarket at ``root``: preset, seed, difficulty and the size of every split."""
    manifest = _read_manifest(Path(root)) or {}
    lines = [f"SynthMarket ({manifest.get('preset')}, seed {manifest.get('seed')}, "
             f"difficulty {manifest.get('difficulty')}) at {root}"]
    for split, count in manifest.get("counts", {}).items():
        extra = "".join(f", {k.replace('_images', '')} {v}" for k, v in count.items() if k.endswith("_images"))
        lines.append(f"  {split:<20} {count['images']:>6} images {count['ids']:>5} ids{extra}")
    return "\n".join(lines)
