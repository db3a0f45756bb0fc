"""Image reading, the re-ID image dataset and the train / test loaders (docs/methods.md, sections 1 and 5).

A batch is ``(images (B, 3, H, W), labels (B,), camids (B,), indices (B,))``; ``indices`` are
positions in the record list, i.e. rows of the feature matrix and of an instance memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from reidlab.data.datasets import Record
from reidlab.data.sampler import PKSampler
from reidlab.data.transforms import build_transforms, split_deterministic

__all__ = ["ImageDataset", "IterLoader", "build_test_loader", "build_train_loader", "check_images",
           "check_person_masks", "read_image"]


def read_image(path: str | os.PathLike) -> Image.Image:
    """Read an image file as an RGB PIL image (decoded now, file closed).

    Raises:
        OSError: ``cannot read image '<path>': <reason>`` for a missing, unreadable or corrupt file.
    """
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError) as error:  # PIL raises all three on bad files
        raise OSError(f"cannot read image '{os.fspath(path)}': {error}") from error


def check_images(records: Sequence[Record], *, limit: int = 5) -> None:
    """Open every image of ``records`` (header only: fast) and list the ones that do not open.

    Called before training starts, so a missing or unreadable image is reported at once, with its path,
    rather than at the first evaluation after an epoch of work.

    Raises:
        OSError: naming up to ``limit`` unreadable files and how many there are.
    """
    bad = []
    for record in records:
        try:
            with Image.open(record.path) as image:
                image.size  # noqa: B018 (opening parses the header)
        except (OSError, SyntaxError, ValueError) as error:
            bad.append(f"{record.path} ({error})" if len(bad) < limit else record.path)
    if bad:
        listed = "; ".join(bad[:limit]) + (f"; and {len(bad) - limit} more" if len(bad) > limit else "")
        raise OSError(f"{len(bad)} image(s) cannot be opened: {listed}. Replace or remove them (for SynthMarket, "
                      "generate the dataset again)")


def check_person_masks(records: Sequence[Record], what: str = "the training set") -> None:
    """Background swap (:class:`ImageDataset`) needs every image's person mask (``Record.mask_path``).

    Raises:
        ValueError: naming how many records of ``what`` have none, and the fix.
    """
    missing = sum(r.mask_path is None for r in records)
    if missing:
        raise ValueError(f"background_swap needs a person mask for every image, but {missing} of the "
                         f"{len(records)} images of {what} have none (Record.mask_path): only SynthMarket has "
                         f"masks; set background_swap=0 to train on this dataset")


class ImageDataset(Dataset):
    """Records as ``(image, label, camid, index)`` samples.

    Args:
        records: Dataset records ``(path, pid, camid, ...)``.
        transform: Applied to the RGB PIL image; None returns the PIL image itself.
        labels: Label per record ``(N,)``, e.g. pseudo-labels (-1 for outliers); None uses ``record.pid``.
        cache: Keep every image in memory after its first read (fast repeated epochs on small datasets), as
            the output of the transform's leading steps that draw no random number (the resize,
            :func:`reidlab.data.transforms.split_deterministic`): a repeated read neither decodes nor resizes,
            and gives exactly the sample an uncached read gives. ``True`` for a store of this dataset's own,
            or a dict to share one store between datasets, e.g. the training loader of every epoch, the
            feature extraction and the evaluation (``reidlab.training.Trainer`` does). Entries are keyed by
            the image's path and those leading steps, so datasets over other records or with another input
            size can share a store without mixing. Each DataLoader worker holds its own copy, which lives as
            long as the worker: the loader builders keep workers alive between epochs when ``cache`` is set.
        background_swap: Probability of showing an image's person on another image's background: the pixels of
            its person mask (``Record.mask_path``, every part label but 0) over a training image drawn at random,
            before the random steps of the transform. This is the random-background augmentation of Tian et al.,
            "Eliminating Background-Bias for Robust Person Re-Identification" (CVPR 2018), which
            takes the mask from a human parser; SynthMarket renders it. The other image keeps its own person
            where this one's mask is 0, as a crowded street would. The papers' pipelines use none (0); the
            lab presets set 1 (benchmarks/CALIBRATION.md, eighth round). Needs a mask for every record.
    """

    def __init__(
        self,
        records: Sequence[Record],
        transform: Callable[[Image.Image], Any] | None = None,
        *,
        labels: npt.ArrayLike | None = None,
        cache: bool | dict = False,
        background_swap: float = 0.0,
    ) -> None:
        self.records = list(records)
        self.transform = transform
        if not 0.0 <= background_swap <= 1.0:
            raise ValueError(f"background_swap must be a probability in [0, 1], got {background_swap}")
        if background_swap > 0:
            check_person_masks(self.records)
        self.background_swap = background_swap
        if labels is None:
            self.labels = np.array([r.pid for r in self.records], dtype=np.int64)
        else:
            self.labels = np.asarray(labels, dtype=np.int64)
            if self.labels.shape != (len(self.records),):
                raise ValueError(
                    f"labels must have shape ({len(self.records)},) like records, got {self.labels.shape}"
                )
        self.cache = cache is not False
        self._images: dict[tuple[str, str], Any] = cache if isinstance(cache, dict) else {}
        # With a store, the steps that can be kept run once, before storing; the rest on every read.
        self._prepare, self._rest = split_deterministic(transform) if self.cache else (None, transform)
        self._prepared_by = repr(self._prepare)

    def __len__(self) -> int:
        return len(self.records)

    def _image(self, index: int) -> Any:
        """The image of ``index``, decoded and, with a store, through the steps that can be kept."""
        path = self.records[index].path
        if not self.cache:
            return read_image(path)
        key = (os.fspath(path), self._prepared_by)
        if key not in self._images:
            image = read_image(path)
            self._images[key] = image if self._prepare is None else self._prepare(image)
        return self._images[key]

    def _person(self, index: int, size: tuple[int, int]) -> Image.Image:
        """The person's pixels of ``index`` as a ``"1"`` mask of ``size`` (its part mask's non-zero labels)."""
        path = self.records[index].mask_path
        key = (os.fspath(path), f"person {size}")
        if key in self._images:
            return self._images[key]
        with Image.open(path) as labels:
            labels = labels.resize(size, Image.Resampling.NEAREST) if labels.size != size else labels
            person = labels.point(lambda v: 255 if v else 0).convert("1")
        if self.cache:
            self._images[key] = person
        return person

    def _swap_background(self, image: Image.Image, index: int) -> Image.Image:
        """With probability ``background_swap``, ``index``'s person pasted on another training image."""
        if torch.rand(()).item() >= self.background_swap:
            return image
        other = self._image(int(torch.randint(len(self.records), ()).item()))
        other = other if other.size == image.size else other.resize(image.size, Image.Resampling.BICUBIC)
        return Image.composite(image, other, self._person(index, image.size))

    def __getitem__(self, index: int) -> tuple[Any, int, int, int]:
        image = self._image(index)
        if self.background_swap > 0:
            image = self._swap_background(image, index)
        if self._rest is not None:
            image = self._rest(image)
        return image, int(self.labels[index]), self.records[index].camid, index


class IterLoader:
    """Exactly ``length`` batches per epoch from ``loader``, restarting it when it runs out.

    docs/methods.md, section 1.

    Each ``iter()`` (each epoch) starts a fresh pass of ``loader``, like ``IterLoader.new_epoch`` of
    SpCL / Cluster Contrast; a pass that ends before ``length`` batches is followed by a new one.

    Args:
        loader: Any re-iterable of batches, usually a DataLoader.
        length: Batches per epoch (``iters``: 200 in Cluster Contrast / HHCL, 400 in SpCL / MSMT17).
    """

    def __init__(self, loader: DataLoader, length: int) -> None:
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        self.loader = loader
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[Any]:
        end = object()
        batches = iter(self.loader)
        for _ in range(self.length):
            batch = next(batches, end)
            if batch is end:  # the pass is over: start another one
                batches = iter(self.loader)
                batch = next(batches, end)
                if batch is end:
                    raise RuntimeError(
                        "the loader produced no batch in a whole pass: with drop_last=True a pass needs "
                        "at least batch_size samples (are there enough non-outlier samples?)"
                    )
            yield batch


def build_train_loader(
    records: Sequence[Record],
    labels: npt.ArrayLike | None,
    *,
    height: int,
    width: int,
    batch_size: int = 256,
    num_instances: int = 16,
    iters: int = 200,
    num_workers: int = 0,
    seed: int | None = None,
    cache: bool | dict = False,
    erasing_p: float = 0.5,
    flip_p: float = 0.5,
    padding: int = 10,
    colour_jitter: float = 0.0,
    background_swap: float = 0.0,
    pin_memory: bool = False,
) -> IterLoader:
    """P x K training batches with the train augmentations, ``iters`` batches per epoch.

    Defaults are Cluster Contrast / HHCL's: batch 256 = 16 identities x 16 images, 200 iterations
    (docs/methods.md, section 4.2). Records whose label is -1 are never sampled; indices in the batch stay
    positions in ``records``.

    Args:
        records: Training records ``(N,)``.
        labels: Pseudo-label per record ``(N,)`` (-1 = outlier); None uses the record pids.
        height: Image height.
        width: Image width.
        batch_size: Images per batch, a multiple of ``num_instances``; the last short batch is dropped.
        num_instances: K, images per identity in a batch.
        iters: Batches per epoch.
        num_workers: DataLoader worker processes.
        seed: Seeds the sampler and the DataLoader's worker seeds. With ``num_workers=0`` the
            augmentations draw from torch's global generator: call ``torch.manual_seed`` for
            bit-identical runs.
        cache: Keep decoded images in memory: ``True`` or a shared dict (see :class:`ImageDataset`).
        erasing_p: probability of random erasing (docs/methods.md, section 5: 0.5).
        flip_p: horizontal flip probability (docs/methods.md, section 5: 0.5).
        padding: padding before the random crop (docs/methods.md, section 5: 10). SCWM's trainer sets ``flip_p`` and
            ``padding`` to 0 and applies both itself, to the images and their pseudo parsing masks together.
        colour_jitter: strength of the photometric augmentation (0 = off), see
            :func:`reidlab.data.build_transforms`.
        background_swap: probability of pasting an image's person on another training image (0 = off), see
            :class:`ImageDataset`.
        pin_memory: Passed to the DataLoader (useful when batches go to a GPU).

    Returns:
        An :class:`IterLoader` of ``(images, labels, camids, indices)`` batches.
    """
    if batch_size % num_instances != 0:
        raise ValueError(
            f"batch_size must be a multiple of num_instances, got batch_size={batch_size}, "
            f"num_instances={num_instances}"
        )
    transform = build_transforms(height, width, train=True, erasing_p=erasing_p, flip_p=flip_p, padding=padding,
                                 colour_jitter=colour_jitter)
    dataset = ImageDataset(records, transform, labels=labels, cache=cache, background_swap=background_swap)
    sampler = PKSampler(dataset.labels, [r.camid for r in dataset.records], num_instances, seed=seed)
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=True,
        pin_memory=pin_memory,
        generator=generator,
        persistent_workers=cache is not False and num_workers > 0,
    )
    return IterLoader(loader, iters)


def build_test_loader(
    records: Sequence[Record],
    *,
    height: int,
    width: int,
    batch_size: int = 256,
    num_workers: int = 0,
    cache: bool | dict = False,
    pin_memory: bool = False,
) -> DataLoader:
    """Batches of ``records`` in order with the test transform (feature extraction, evaluation).

    Returns:
        A DataLoader of ``(images, pids, camids, indices)`` batches, the last one possibly short.
    """
    dataset = ImageDataset(records, build_transforms(height, width, train=False), cache=cache)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=cache is not False and num_workers > 0,
        # Its own generator: otherwise every pass draws a seed from the global torch RNG, and how often
        # a run evaluates would change its training augmentations.
        generator=torch.Generator().manual_seed(0),
    )
