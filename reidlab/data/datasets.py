"""Person re-ID datasets as lists of ``(path, pid, camid)`` records (docs/methods.md, section 7).

Each dataset is a small class: the published folder name, the entries that folder must contain, a
docstring with the reference and statistics, and one function that turns files into records. Nothing
opens an image here; :mod:`reidlab.data.loaders` does that.

Conventions (as torchreid and the SpCL / Cluster Contrast code):

- ``camid`` is 0-based (camera ``c1`` in a file name is ``camid == 0``).
- Train pids are kept as they appear in the files, not relabelled to ``0..n-1``: the unsupervised
  methods never read them, and keeping them lets a notebook compare pseudo-labels with the truth.
  :func:`relabel` maps them to ``0..n-1`` when a contiguous label is needed.
- Junk images (pid -1) are never loaded; distractors (pid 0, Market-1501) stay in the gallery
  (docs/methods.md, section 6).
- Records are sorted by path, so the order (and every index into it) is the same on every machine.

Typical use::

    dataset = load_dataset("market1501", "data/")
    print(dataset.summary())
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, NamedTuple

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "DATASETS",
    "IMAGE_EXTENSIONS",
    "DukeMTMCreID",
    "MSMT17",
    "Market1501",
    "ReIDDataset",
    "Record",
    "SynthMarket",
    "load_dataset",
    "parse_market_folder",
    "relabel",
]

SPLITS = ("train", "query", "gallery")

# Market-1501 naming scheme, also used by DukeMTMC-reID and SynthMarket: the person id (-1 for junk)
# then "_c" and the 1-based camera digit, e.g. 0002_c1s1_000451_03.jpg or 0005_c2_f0046985.jpg.
_MARKET_NAME = re.compile(r"(-1|\d+)_c(\d+)")
# Image files a split folder may hold (any case): Market-1501's are .jpg; a converted copy may differ.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

_MARKET_SPLIT_DIRS = ("bounding_box_train", "query", "bounding_box_test")
_MSMT17_LISTS = ("list_train.txt", "list_val.txt", "list_query.txt", "list_gallery.txt")
_MSMT17_IMAGE_DIRS = {"MSMT17_V1": ("train", "test"), "MSMT17_V2": ("mask_train_v2", "mask_test_v2")}


class Record(NamedTuple):
    """One image of a re-ID dataset.

    Attributes:
        path: Path of the image file.
        pid: Person id as written in the dataset (0 = Market-1501 distractor).
        camid: 0-based camera index.
        mask_path: Path of the parsing mask (SynthMarket only), else None.
    """

    path: str
    pid: int
    camid: int
    mask_path: str | None = None


def relabel(pids: Sequence[int]) -> np.ndarray:
    """Map person ids to contiguous labels ``0..n-1`` in increasing pid order.

    Args:
        pids: Person ids ``(N,)``, e.g. ``[r.pid for r in dataset.train]``.

    Returns:
        Labels ``(N,)`` int64, equal pids sharing a label.
    """
    _, labels = np.unique(np.asarray(pids, dtype=np.int64), return_inverse=True)
    return labels.astype(np.int64)


def parse_market_folder(folder: str | os.PathLike, *, num_cameras: int) -> list[Record]:
    """Records of one split folder named in the Market-1501 scheme.

    The file name starts with the person id and the camera, matched by ``(-1|\\d+)_c(\\d+)``
    (``0002_c1s1_000451_03.jpg``, ``0005_c2_f0046985.jpg``). Junk images (pid -1) are dropped,
    distractors (pid 0) kept. Images are ``.jpg``, ``.jpeg`` or ``.png`` in any case; other files are
    counted and named in a logged warning. Only names are read, no image is opened.

    Args:
        folder: A split folder, e.g. ``.../bounding_box_train``.
        num_cameras: Cameras of the dataset; camera digits must lie in ``1..num_cameras``.

    Returns:
        Records sorted by file name, ``camid`` 0-based.

    Raises:
        ValueError: An image name does not follow the scheme (the file is named), names a camera out of
            range, or the folder holds no image.
    """
    folder = os.fspath(folder)
    entries = sorted(entry.name for entry in os.scandir(folder) if entry.is_file())
    names = [name for name in entries if name.lower().endswith(IMAGE_EXTENSIONS)]
    ignored = [name for name in entries if name not in set(names)]
    if ignored:  # reported, never silently dropped
        shown = ", ".join(ignored[:5]) + (f" and {len(ignored) - 5} more" if len(ignored) > 5 else "")
        logger.warning("%s: ignored %d file(s) that are not %s images: %s", folder, len(ignored),
                       "/".join(IMAGE_EXTENSIONS), shown)
    if not names:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in '{folder}'")
    records = []
    for name in names:
        match = _MARKET_NAME.match(name)
        if match is None:
            raise ValueError(
                f"cannot read person id and camera from '{os.path.join(folder, name)}': expected "
                "names like 0002_c1s1_000451_03.jpg (pid or -1, '_c', camera number); rename or remove the file"
            )
        pid, camera = int(match[1]), int(match[2])
        if pid == -1:
            continue  # junk image, never loaded (docs/methods.md, section 6)
        if not 1 <= camera <= num_cameras:
            raise ValueError(
                f"camera {camera} out of range 1..{num_cameras} in '{os.path.join(folder, name)}'"
            )
        records.append(Record(os.path.join(folder, name), pid, camera - 1))
    return records


def _split_stats(records: Sequence[Record]) -> dict[str, int]:
    return {
        "ids": len({r.pid for r in records}),
        "images": len(records),
        "cameras": len({r.camid for r in records}),
    }


class ReIDDataset:
    """Base class: a dataset folder split into train, query and gallery records.

    A subclass names its published folder(s) and the entries each must contain in ``layouts``
    (``"name/"`` for a folder, ``"name"`` for a file) and implements :meth:`load_splits`.
    ``root`` may be the dataset folder itself or a parent of it: ``root/<published name>``,
    ``root/<parent name>/<published name>`` and ``root/<parent name>`` are tried in this order.

    Attributes:
        name: Registry name, e.g. ``"market1501"``.
        root: The resolved dataset folder.
        layout: Published name of the layout found in ``root`` (e.g. ``"MSMT17_V2"``).
        train: Training records (pids as in the files, not relabelled).
        query: Query records.
        gallery: Gallery records.
    """

    name: ClassVar[str] = ""
    layouts: ClassVar[dict[str, tuple[str, ...]]] = {}
    parent_names: ClassVar[tuple[str, ...]] = ()
    layout: str  # set by _find_root

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = self._find_root(root)
        self.train, self.query, self.gallery = self.load_splits(self.root)

    def load_splits(self, root: Path) -> tuple[list[Record], list[Record], list[Record]]:
        """Return the ``(train, query, gallery)`` records of the resolved folder ``root``."""
        raise NotImplementedError

    # -- locating the folder --------------------------------------------------------------------

    def _candidates(self, root: Path) -> list[Path]:
        candidates = [root]
        candidates += [root / published for published in self.layouts]
        candidates += [root / parent / published
                       for parent in self.parent_names for published in self.layouts]
        candidates += [root / parent for parent in self.parent_names]
        return list(dict.fromkeys(candidates))

    @staticmethod
    def _missing(folder: Path, required: tuple[str, ...]) -> list[str]:
        return [
            entry for entry in required
            if not ((folder / entry).is_dir() if entry.endswith("/") else (folder / entry).is_file())
        ]

    def _find_root(self, root: str | os.PathLike) -> Path:
        """The first candidate folder holding every entry of one layout, else FileNotFoundError."""
        root = Path(root).expanduser()
        looked = []
        for candidate in self._candidates(root):
            if not candidate.is_dir():
                looked.append(f"  - {candidate} (does not exist)")
                continue
            missing = {published: self._missing(candidate, required)
                       for published, required in self.layouts.items()}
            for published, entries in missing.items():
                if not entries:
                    self.layout = published
                    return candidate
            closest = min(missing.values(), key=len)
            looked.append(f"  - {candidate} (missing {', '.join(closest)})")
        expected = " or ".join(f"{', '.join(required)} (published as '{published}')"
                               for published, required in self.layouts.items())
        raise FileNotFoundError(
            f"{type(self).__name__} not found from root '{root}': expected a folder containing "
            f"{expected}. Looked in:\n" + "\n".join(looked) + "\n"
            "Pass root= the dataset folder itself or a folder that contains it."
        )

    # -- identity -------------------------------------------------------------------------------

    def fingerprint(self) -> str:
        """A digest of the file list: every record's split, path relative to the root, pid and camera.

        Two folders with the same files give the same fingerprint wherever they are; a dataset with another
        image, label or split gives another one. The images' contents are not read.
        """
        if getattr(self, "_fingerprint", None) is None:
            digest = hashlib.sha1()
            for split in SPLITS:
                for record in getattr(self, split):
                    relative = os.path.relpath(record.path, self.root)
                    digest.update(f"{split}\t{relative}\t{record.pid}\t{record.camid}\n".encode())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    def identity(self) -> dict[str, str]:
        """What ties a run to this data: ``{"name", "root", "fingerprint"}`` (:meth:`fingerprint`)."""
        return {"name": self.name, "root": str(Path(self.root).resolve()), "fingerprint": self.fingerprint()}

    # -- statistics -----------------------------------------------------------------------------

    def stats(self) -> dict[str, dict[str, int]]:
        """Number of ids, images and cameras per split: ``{"train": {"ids": ..., ...}, ...}``."""
        return {split: _split_stats(getattr(self, split)) for split in SPLITS}

    def summary(self) -> str:
        """A small table of :meth:`stats` (subset | # ids | # images | # cameras)."""
        lines = [
            f"{self.name} ({self.root})",
            "  subset  |  # ids | # images | # cameras",
            "  --------+--------+----------+----------",
        ]
        for split, s in self.stats().items():
            lines.append(f"  {split:<7} | {s['ids']:>6,} | {s['images']:>8,} | {s['cameras']:>9}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{split}={len(getattr(self, split))}" for split in SPLITS)
        return f"{type(self).__name__}(root='{self.root}', {sizes})"

    @property
    def num_train_pids(self) -> int:
        return _split_stats(self.train)["ids"]

    @property
    def num_train_images(self) -> int:
        return len(self.train)

    @property
    def num_train_cams(self) -> int:
        return _split_stats(self.train)["cameras"]

    @property
    def num_query_pids(self) -> int:
        return _split_stats(self.query)["ids"]

    @property
    def num_query_images(self) -> int:
        return len(self.query)

    @property
    def num_query_cams(self) -> int:
        return _split_stats(self.query)["cameras"]

    @property
    def num_gallery_pids(self) -> int:
        return _split_stats(self.gallery)["ids"]

    @property
    def num_gallery_images(self) -> int:
        return len(self.gallery)

    @property
    def num_gallery_cams(self) -> int:
        return _split_stats(self.gallery)["cameras"]


class _MarketLayoutDataset(ReIDDataset):
    """A dataset laid out as Market-1501: three split folders of images named by pid and camera."""

    num_cameras: ClassVar[int]

    def load_splits(self, root: Path) -> tuple[list[Record], list[Record], list[Record]]:
        train, query, gallery = (
            parse_market_folder(root / d, num_cameras=self.num_cameras) for d in _MARKET_SPLIT_DIRS
        )
        return train, query, gallery


class Market1501(_MarketLayoutDataset):
    """Market-1501.

    Reference:
        Zheng et al. Scalable Person Re-identification: A Benchmark. ICCV 2015.

    Layout: ``Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}``, names
    ``PPPP_cCsS_FFFFFF_BB.jpg`` (pid, camera 1-6, sequence, frame, box).

    Statistics (docs/methods.md, section 7), junk (pid -1) dropped:
        - train: 751 ids, 12,936 images, 6 cameras.
        - query: 750 ids, 3,368 images.
        - gallery: 751 ids (750 + distractor pid 0), 15,913 images (19,732 files minus 3,819 junk).
    """

    name = "market1501"
    layouts = {"Market-1501-v15.09.15": tuple(f"{d}/" for d in _MARKET_SPLIT_DIRS)}
    parent_names = ("market1501",)
    num_cameras = 6


class DukeMTMCreID(_MarketLayoutDataset):
    """DukeMTMC-reID.

    References:
        Ristani et al. Performance Measures and a Data Set for Multi-Target, Multi-Camera Tracking.
        ECCV 2016 workshops. Zheng et al. Unlabeled Samples Generated by GAN Improve the Person
        Re-identification Baseline in vitro. ICCV 2017.

    Layout: ``DukeMTMC-reID/{bounding_box_train,query,bounding_box_test}``, names
    ``PPPP_cC_fFFFFFFF.jpg`` (pid, camera 1-8, frame).

    Statistics (docs/methods.md, section 7):
        - train: 702 ids, 16,522 images, 8 cameras.
        - query: 702 ids, 2,228 images.
        - gallery: 1,110 ids (702 + 408 distractor identities), 17,661 images.
    """

    name = "dukemtmcreid"
    layouts = {"DukeMTMC-reID": tuple(f"{d}/" for d in _MARKET_SPLIT_DIRS)}
    parent_names = ("dukemtmcreid", "dukemtmc-reid")
    num_cameras = 8


class MSMT17(ReIDDataset):
    """MSMT17, versions V1 and V2 (detected from the folder; V1 first when both are present).

    Reference:
        Wei et al. Person Transfer GAN to Bridge Domain Gap for Person Re-Identification. CVPR 2018.

    Layout: ``MSMT17_V1/{train,test}`` or ``MSMT17_V2/{mask_train_v2,mask_test_v2}``, each with
    ``list_{train,val,query,gallery}.txt``. A list line is ``relative/path.jpg pid``; the camera is the
    third ``_`` field of the file name (``0000_000_01_0303morning_0015_0.jpg`` -> camera 1 -> camid 0),
    15 cameras. Training set = train + val lists together (as the unsupervised methods train on it);
    query and gallery images sit in the test folder. Only the lists are read: no image file is
    checked, so a missing image surfaces when the loader reads it.

    Statistics (docs/methods.md, section 7):
        - train (train + val lists): 1,041 ids, 32,621 images, 15 cameras.
        - query: 3,060 ids, 11,659 images.
        - gallery: 3,060 ids, 82,161 images.

    Args:
        root: The ``MSMT17_V1`` / ``MSMT17_V2`` folder or a folder that contains it.
        version: ``"V1"`` or ``"V2"`` to require one version; None takes what is found.
    """

    name = "msmt17"
    layouts = {
        published: (f"{train}/", f"{test}/", *_MSMT17_LISTS)
        for published, (train, test) in _MSMT17_IMAGE_DIRS.items()
    }
    parent_names = ("msmt17", "MSMT17")
    num_cameras: ClassVar[int] = 15

    def __init__(self, root: str | os.PathLike, *, version: str | None = None) -> None:
        if version is not None:
            published = f"MSMT17_{version.upper()}"
            if published not in self.layouts:
                raise ValueError(f"version must be 'V1', 'V2' or None, got {version!r}")
            self.layouts = {published: type(self).layouts[published]}
        super().__init__(root)

    @property
    def version(self) -> str:
        """``"V1"`` or ``"V2"``, as found on disk."""
        return self.layout.rsplit("_", 1)[1]

    def load_splits(self, root: Path) -> tuple[list[Record], list[Record], list[Record]]:
        train_dir, test_dir = (root / d for d in _MSMT17_IMAGE_DIRS[self.layout])
        train = self._read_list(root / "list_train.txt", train_dir)
        train += self._read_list(root / "list_val.txt", train_dir)
        query = self._read_list(root / "list_query.txt", test_dir)
        gallery = self._read_list(root / "list_gallery.txt", test_dir)
        return sorted(train), sorted(query), sorted(gallery)

    def _read_list(self, list_file: Path, image_dir: Path) -> list[Record]:
        """Records of one ``path pid`` list file, paths joined to ``image_dir``."""
        records = []
        with open(list_file, encoding="utf-8") as lines:
            for line_no, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    relative, pid = line.split()
                    camera = int(relative.rsplit("/", 1)[-1].split("_")[2])
                    pid = int(pid)
                except (ValueError, IndexError):
                    raise ValueError(
                        f"{list_file}:{line_no}: expected 'dir/PPPP_SSS_CC_....jpg pid', got {line.strip()!r}"
                    ) from None
                if not 1 <= camera <= self.num_cameras:
                    raise ValueError(
                        f"{list_file}:{line_no}: camera {camera} out of range 1..{self.num_cameras}"
                    )
                records.append(Record(os.path.join(image_dir, relative), pid, camera - 1))
        return records


class SynthMarket(_MarketLayoutDataset):
    """SynthMarket: reidlab's generated dataset in the Market-1501 layout, with parsing masks.

    Generated by ``python -m reidlab.data.synthmarket``. Layout, directly at ``root``:
    ``{bounding_box_train,query,bounding_box_test}/*.jpg`` named as Market-1501,
    ``masks/<split folder>/<same stem>.png`` and the manifest ``synthmarket.json``, which the
    generator writes last with ``"complete": true``. A folder without a complete manifest is refused:
    its generation was interrupted. Cameras 1-6 as in Market-1501, or as many as the manifest says (its
    ``campus`` domain has 8; the generator's maximum is 9). Every
    record carries ``mask_path`` (not checked file by file). ``root`` may be the dataset folder, or a
    folder containing ``SynthMarket/`` or ``synthmarket/``.
    """

    name = "synthmarket"
    layouts = {
        "SynthMarket": tuple(f"{d}/" for d in _MARKET_SPLIT_DIRS)
        + tuple(f"masks/{d}/" for d in _MARKET_SPLIT_DIRS)
    }
    parent_names = ("synthmarket",)
    num_cameras = 6
    MANIFEST: ClassVar[str] = "synthmarket.json"

    def _find_root(self, root: str | os.PathLike) -> Path:
        # The folder holding a manifest is the one the generator wrote to, even if splits are missing;
        # with no manifest anywhere, the folder holding the split folders is reported as interrupted.
        started = [c for c in self._candidates(Path(root).expanduser()) if (c / self.MANIFEST).is_file()]
        folder = started[0] if started else super()._find_root(root)
        self._check_manifest(folder)
        return super()._find_root(folder)

    def _check_manifest(self, folder: Path) -> None:
        manifest = folder / self.MANIFEST
        try:
            content = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else None
        except (OSError, ValueError):
            content = None
        content = content if isinstance(content, dict) else {}
        if content.get("complete") is True:
            return
        preset = content.get("preset") or ("tiny" if "tiny" in folder.name else "default")
        seed = content.get("seed", 0)
        regenerate = f"reidlab data --root {folder} --preset {preset} --seed {seed}"
        if not manifest.is_file():
            raise RuntimeError(
                f"'{folder}' has no {self.MANIFEST}, so it is not a complete SynthMarket (the generator writes "
                f"the manifest last, into a folder it renames only when complete): move it away, then "
                f"generate it with `{regenerate}`"
            )
        raise RuntimeError(
            f"'{manifest}' does not say \"complete\": true: the SynthMarket is incomplete. Regenerate it with "
            f"`{regenerate} --overwrite`"
        )

    def load_splits(self, root: Path) -> tuple[list[Record], list[Record], list[Record]]:
        # the manifest says how many cameras this SynthMarket has (6 unless its config says otherwise)
        manifest = json.loads((root / self.MANIFEST).read_text(encoding="utf-8"))
        self.num_cameras = int(manifest.get("config", {}).get("cameras", type(self).num_cameras))
        splits = super().load_splits(root)
        with_masks = []
        for split_dir, records in zip(_MARKET_SPLIT_DIRS, splits):
            mask_dir = root / "masks" / split_dir
            with_masks.append([r._replace(mask_path=str(mask_dir / Path(r.path).with_suffix(".png").name))
                               for r in records])
        train, query, gallery = with_masks
        return train, query, gallery


DATASETS: dict[str, type[ReIDDataset]] = {
    cls.name: cls for cls in (Market1501, DukeMTMCreID, MSMT17, SynthMarket)
}

_ALIASES = {"market": "market1501", "duke": "dukemtmcreid", "dukemtmc": "dukemtmcreid", "msmt": "msmt17",
            "synth": "synthmarket"}


def load_dataset(name: str, root: str | os.PathLike, **kwargs) -> ReIDDataset:
    """Load a dataset by name.

    Args:
        name: ``market1501``, ``dukemtmcreid``, ``msmt17`` or ``synthmarket``; case, ``-`` and ``_``
            are ignored and the aliases ``market``, ``duke``, ``dukemtmc``, ``msmt``, ``synth`` work.
        root: The dataset folder or a folder that contains it (see :class:`ReIDDataset`).
        **kwargs: Passed to the dataset class (e.g. ``version="V2"`` for MSMT17).

    Returns:
        The loaded dataset.

    Raises:
        ValueError: Unknown name.
    """
    key = re.sub(r"[-_\s]", "", name.lower())
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}: valid names are {', '.join(DATASETS)} "
            f"(aliases: {', '.join(_ALIASES)})"
        )
    return DATASETS[key](root, **kwargs)
