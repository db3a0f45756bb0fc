"""Tests of reidlab.data.transforms (docs/methods.md, section 5)."""

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

from reidlab.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    RandomErasing,
    build_transforms,
    split_deterministic,
)


def _image(height: int = 40, width: int = 20, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _naive_erasing(image, p, sl, sh, r1, mean, uniform, randint):
    """The reference algorithm (SpCL / Cluster Contrast RandomErasing) written out plainly."""
    if uniform(0, 1) >= p:
        return image
    image = image.clone()
    for _ in range(100):
        area = image.size()[1] * image.size()[2]
        target_area = uniform(sl, sh) * area
        aspect_ratio = uniform(r1, 1 / r1)
        h = int(round(math.sqrt(target_area * aspect_ratio)))
        w = int(round(math.sqrt(target_area / aspect_ratio)))
        if w < image.size()[2] and h < image.size()[1]:
            x1 = randint(0, image.size()[1] - h)
            y1 = randint(0, image.size()[2] - w)
            for c in range(3):
                image[c, x1 : x1 + h, y1 : y1 + w] = mean[c]
            return image
    return image


def test_constants():
    assert IMAGENET_MEAN == (0.485, 0.456, 0.406)
    assert IMAGENET_STD == (0.229, 0.224, 0.225)


@pytest.mark.parametrize("train", [True, False])
def test_output_shape(train):
    transform = build_transforms(32, 16, train=train)
    for size in [(40, 20), (7, 30), (32, 16)]:
        out = transform(_image(*size))
        assert out.shape == (3, 32, 16)
        assert out.dtype == torch.float32


def test_test_transform_is_deterministic_and_matches_manual_steps():
    image = _image()
    transform = build_transforms(32, 16, train=False)
    torch.manual_seed(0)
    first = transform(image)
    torch.manual_seed(1)
    assert torch.equal(first, transform(image))
    resized = np.asarray(image.resize((16, 32), Image.BICUBIC), dtype=np.float32) / 255.0
    expected = (resized - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(first.permute(1, 2, 0).numpy(), expected, atol=1e-5)


def test_train_transform_order():
    steps = build_transforms(256, 128, train=True).transforms
    assert [type(s).__name__ for s in steps] == [
        "Resize", "RandomHorizontalFlip", "Pad", "RandomCrop", "ToTensor", "Normalize", "RandomErasing",
    ]
    assert steps[0].interpolation == InterpolationMode.BICUBIC and steps[0].size == (256, 128)
    assert steps[1].p == 0.5 and steps[2].padding == 10 and steps[3].size == (256, 128)
    assert steps[6].p == 0.5 and steps[6].fill == IMAGENET_MEAN


def test_train_transform_without_randomness_equals_test_transform():
    image = _image()
    train = build_transforms(32, 16, train=True, flip_p=0.0, padding=0, erasing_p=0.0)
    assert torch.equal(train(image), build_transforms(32, 16, train=False)(image))


def test_erasing_parity_with_reference_given_the_same_random_numbers():
    erased_count = 0
    for seed in range(30):
        image = torch.randn(3, 32, 16)
        ours = RandomErasing(p=0.5, generator=torch.Generator().manual_seed(seed))(image)
        g = torch.Generator().manual_seed(seed)
        reference = _naive_erasing(
            image, 0.5, 0.02, 0.4, 0.3, IMAGENET_MEAN,
            uniform=lambda a, b: a + (b - a) * torch.rand((), generator=g).item(),
            randint=lambda a, b: int(torch.randint(a, b + 1, (), generator=g).item()),
        )
        assert torch.equal(ours, reference)
        erased_count += not torch.equal(ours, image)
    assert 5 < erased_count < 25  # p = 0.5


def test_erasing_region_and_fill():
    for seed in range(50):
        image = torch.randn(3, 64, 32)
        out = RandomErasing(p=1.0, generator=torch.Generator().manual_seed(seed))(image)
        changed = (out != image).any(0)
        rows, cols = changed.any(1).nonzero().squeeze(1), changed.any(0).nonzero().squeeze(1)
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert changed.sum() == h * w  # one filled rectangle
        for c in range(3):
            region = out[c, rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            assert torch.all(region == torch.tensor(IMAGENET_MEAN[c]))
        # the area fraction is drawn in [0.02, 0.4]; rounding h and w moves it by at most ~(h + w) / 2 pixels
        slack = (h + w) / 2 + 1
        assert 0.02 * 64 * 32 - slack <= h * w <= 0.4 * 64 * 32 + slack
        assert h < 64 and w < 32
        assert torch.equal(image[~changed.expand(3, -1, -1)], out[~changed.expand(3, -1, -1)])


def test_erasing_p0_and_too_small_images_leave_the_image_unchanged():
    image = torch.randn(3, 32, 16)
    assert torch.equal(RandomErasing(p=0.0)(image), image)
    tiny = torch.randn(3, 1, 1)  # no rectangle can be strictly smaller than 1 x 1
    assert torch.equal(RandomErasing(p=1.0, generator=torch.Generator().manual_seed(0))(tiny), tiny)


def test_erasing_does_not_modify_its_input():
    image = torch.randn(3, 32, 16)
    copy = image.clone()
    RandomErasing(p=1.0)(image)
    assert torch.equal(image, copy)


def test_erasing_uses_the_global_generator_when_none_given():
    image = torch.randn(3, 32, 16)
    torch.manual_seed(3)
    first = RandomErasing(p=1.0)(image)
    torch.manual_seed(3)
    assert torch.equal(first, RandomErasing(p=1.0)(image))


def test_erasing_argument_errors():
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        RandomErasing(p=1.5)
    with pytest.raises(ValueError, match="area must satisfy"):
        RandomErasing(area=(0.5, 0.1))
    with pytest.raises(ValueError, match=r"min_aspect must be in \(0, 1\], got 3"):
        RandomErasing(min_aspect=3)


def test_colour_jitter_changes_colours_only_when_asked():
    from PIL import Image
    from torchvision import transforms as T

    from reidlab.data.transforms import build_transforms

    plain = build_transforms(64, 32, train=True, erasing_p=0.0)
    jittered = build_transforms(64, 32, train=True, erasing_p=0.0, colour_jitter=0.4, flip_p=0.0, padding=0)
    assert not any(isinstance(t, T.ColorJitter) for t in plain.transforms)
    (jitter,) = [t for t in jittered.transforms if isinstance(t, T.ColorJitter)]
    assert jitter.brightness == (0.6, 1.4) and jitter.hue == (-0.1, 0.1)
    image = Image.new("RGB", (32, 64), (120, 60, 30))
    torch.manual_seed(0)
    outputs = torch.stack([jittered(image) for _ in range(8)])
    # one colour per image (a global photometric change), but not the same colour in every draw
    assert torch.allclose(outputs.amax(dim=(2, 3)), outputs.amin(dim=(2, 3)), atol=1e-5)
    assert outputs[:, :, 0, 0].std(dim=0).min() > 0.05


@pytest.mark.parametrize("train", [True, False])
def test_split_deterministic_keeps_the_resize_apart_and_composes_back(train):
    transform = build_transforms(32, 16, train=train, colour_jitter=0.4)
    prepare, rest = split_deterministic(transform)
    assert [type(step) for step in prepare.transforms] == [T.Resize]
    assert prepare.transforms + rest.transforms == transform.transforms
    image = _image()
    torch.manual_seed(0)
    whole = transform(image)
    torch.manual_seed(0)
    assert torch.equal(rest(prepare(image)), whole)


def test_split_deterministic_leaves_what_it_cannot_split():
    def plain(image):
        return image

    assert split_deterministic(plain) == (None, plain)
    assert split_deterministic(None) == (None, None)
    random_first = T.Compose([T.RandomHorizontalFlip(), T.Resize((4, 2))])
    assert split_deterministic(random_first) == (None, random_first)
    prepare, rest = split_deterministic(T.Compose([T.Resize((4, 2))]))
    assert len(prepare.transforms) == 1 and rest is None
