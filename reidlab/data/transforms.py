"""Image transforms of the re-ID training and test pipelines (docs/methods.md, section 5).

Train: bicubic resize -> horizontal flip 0.5 -> pad 10 -> random crop -> tensor -> ImageNet
normalisation -> random erasing 0.5. Test: bicubic resize -> tensor -> normalisation. This is the
pipeline of the SpCL and Cluster Contrast training scripts (``get_train_loader`` /
``get_test_loader`` in ``examples/*_train_usl.py``), which HHCL reuses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "RandomErasing", "build_transforms", "split_deterministic"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class RandomErasing:
    """Random erasing as in the re-ID code (Zhong et al. AAAI 2020, "Random Erasing Data Augmentation").

    With probability ``p``, try up to ``max_attempts`` times to draw a rectangle whose area is a
    uniform fraction in ``area`` of the image and whose aspect ratio ``h / w`` is uniform in
    ``[min_aspect, 1 / min_aspect]``: ``h = round(sqrt(S a))``, ``w = round(sqrt(S / a))``. The first
    rectangle strictly smaller than the image (``h < H`` and ``w < W``) is placed uniformly and filled
    with ``fill[c]`` in channel ``c``; if no attempt fits, the image is returned unchanged.

    This is the ``RandomErasing`` of SpCL / Cluster Contrast (``utils/data/transforms.py``), applied
    after normalisation as there. Their class defaults ``mean`` to the CIFAR means
    (0.4914, 0.4822, 0.4465), but their training scripts pass ``mean=[0.485, 0.456, 0.406]``, the
    ImageNet means, so that is the default here. Because the tensor is already normalised, these
    values are written as they are (a grey near 0.45 in normalised units, not the mean pixel, which
    would be 0). It differs from ``torchvision.transforms.RandomErasing`` (log-uniform ratio,
    10 attempts, area up to 0.33, random-value fill).

    Random numbers come from ``generator`` (torch's global generator when None, which DataLoader
    workers seed per worker), drawn in the reference's order: one uniform for ``p``, then per attempt
    the area fraction and the aspect ratio, then the top and left corners of a rectangle that fits.

    Args:
        p: Probability of erasing.
        area: Range of the erased area as a fraction of the image (reference ``sl``, ``sh``).
        min_aspect: Smallest aspect ratio ``h / w`` (reference ``r1``); the largest is its inverse.
        fill: Value written in each channel (one value is used for one-channel images).
        max_attempts: Rectangles tried before giving up (100 in the reference).
        generator: Source of random numbers; None uses torch's global generator.
    """

    def __init__(
        self,
        p: float = 0.5,
        *,
        area: tuple[float, float] = (0.02, 0.4),
        min_aspect: float = 0.3,
        fill: Sequence[float] = IMAGENET_MEAN,
        max_attempts: int = 100,
        generator: torch.Generator | None = None,
    ) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if not 0.0 < area[0] <= area[1] <= 1.0:
            raise ValueError(f"area must satisfy 0 < low <= high <= 1, got {area}")
        if not 0.0 < min_aspect <= 1.0:
            raise ValueError(f"min_aspect must be in (0, 1], got {min_aspect}")
        self.p = p
        self.area = area
        self.min_aspect = min_aspect
        self.fill = tuple(fill)
        self.max_attempts = max_attempts
        self.generator = generator

    def _uniform(self, low: float, high: float) -> float:
        return low + (high - low) * torch.rand((), generator=self.generator).item()

    def _randint(self, low: int, high: int) -> int:
        """Uniform integer in ``[low, high]``, both included (as Python's ``random.randint``)."""
        return int(torch.randint(low, high + 1, (), generator=self.generator).item())

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """Erase one rectangle of ``image (C, H, W)``; returns a new tensor when it erases."""
        if self._uniform(0.0, 1.0) >= self.p:
            return image
        channels, height, width = image.shape
        for _ in range(self.max_attempts):
            target_area = self._uniform(*self.area) * height * width
            aspect = self._uniform(self.min_aspect, 1.0 / self.min_aspect)
            h = int(round(math.sqrt(target_area * aspect)))
            w = int(round(math.sqrt(target_area / aspect)))
            if w < width and h < height:
                top = self._randint(0, height - h)
                left = self._randint(0, width - w)
                image = image.clone()
                fill = self.fill if channels == len(self.fill) else self.fill[:1] * channels
                fill_values = torch.tensor(fill, dtype=image.dtype, device=image.device)
                image[:, top : top + h, left : left + w] = fill_values[:, None, None]
                return image
        return image

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(p={self.p}, area={self.area}, min_aspect={self.min_aspect}, "
            f"fill={self.fill}, max_attempts={self.max_attempts})"
        )


def build_transforms(
    height: int = 256,
    width: int = 128,
    *,
    train: bool,
    flip_p: float = 0.5,
    padding: int = 10,
    erasing_p: float = 0.5,
    colour_jitter: float = 0.0,
) -> T.Compose:
    """The train or test transform of docs/methods.md, section 5, taking a PIL image to a ``(3, height, width)`` tensor.

    Args:
        height: Output height (256; SCWM uses 384).
        width: Output width (128).
        train: Build the augmenting train transform; False builds the deterministic test transform.
        flip_p: Horizontal flip probability (0.5).
        padding: Zero padding before the random crop back to ``(height, width)`` (10 pixels).
        erasing_p: Random erasing probability (0.5), see :class:`RandomErasing`.
        colour_jitter: Strength ``s`` of a random photometric change after the flip (0 = off, the papers'
            pipeline): brightness, contrast and saturation factors in ``[1 - s, 1 + s]`` and a hue shift in
            ``[-s / 4, s / 4]`` (``torchvision.transforms.ColorJitter``), against SynthMarket's per-camera
            colour casts. ImageNet pretraining uses colour augmentation (Krizhevsky et al. 2012); the re-ID
            papers' pipeline does not. The lab presets set 0.4 (benchmarks/CALIBRATION.md measures it), the
            papers' presets 0.

    Returns:
        A ``torchvision.transforms.Compose``.
    """
    resize = T.Resize((height, width), interpolation=InterpolationMode.BICUBIC)  # "interpolation=3"
    to_normalised_tensor = [T.ToTensor(), T.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD)]
    if not train:
        return T.Compose([resize, *to_normalised_tensor])
    return T.Compose([
        resize,
        T.RandomHorizontalFlip(p=flip_p),
        *([T.ColorJitter(colour_jitter, colour_jitter, colour_jitter, min(0.5, colour_jitter / 4))]
          if colour_jitter > 0 else []),
        T.Pad(padding),
        T.RandomCrop((height, width)),
        *to_normalised_tensor,
        RandomErasing(p=erasing_p),
    ])


# Steps that take a PIL image to a PIL image and draw no random number: their output can be kept and reused.
# ToTensor and Normalize are deterministic too, but their float tensors take four times the memory of the image.
_REUSABLE_STEPS = (T.Resize,)


def split_deterministic(transform: Callable[[Any], Any] | None) -> tuple[T.Compose | None, Callable[[Any], Any] | None]:
    """``transform`` as ``(prepare, rest)``: its leading steps that always give the same output for the same image
    (the resize of :func:`build_transforms`), and the steps after them, so that ``rest(prepare(image))`` is
    ``transform(image)`` and ``prepare(image)`` can be computed once and kept (:class:`reidlab.data.ImageDataset`).

    Only a ``torchvision.transforms.Compose`` is split; ``prepare`` is None when nothing leads it that can be kept,
    ``rest`` None when every step can.
    """
    if not isinstance(transform, T.Compose):
        return None, transform
    steps = transform.transforms
    n = 0
    while n < len(steps) and type(steps[n]) in _REUSABLE_STEPS:
        n += 1
    if n == 0:
        return None, transform
    return T.Compose(steps[:n]), T.Compose(steps[n:]) if n < len(steps) else None
