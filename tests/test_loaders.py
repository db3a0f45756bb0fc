"""Tests of reidlab.data.loaders on tiny JPEG files."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reidlab.data.datasets import Record
from reidlab.data.loaders import (
    ImageDataset,
    IterLoader,
    build_test_loader,
    build_train_loader,
    read_image,
)

H, W = 16, 8


@pytest.fixture()
def records(tmp_path) -> list[Record]:
    """6 identities x 4 images of 16 x 8 pixels, on cameras 0 and 1."""
    rng = np.random.default_rng(0)
    records = []
    for pid in range(1, 7):
        for k in range(4):
            path = tmp_path / f"{pid:04d}_c{1 + k % 2}s1_{k:06d}_00.jpg"
            Image.fromarray(rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)).save(path)
            records.append(Record(str(path), pid, k % 2))
    return records


def test_read_image_gives_rgb(tmp_path, records):
    image = read_image(records[0].path)
    assert image.mode == "RGB" and image.size == (W, H)
    gray = tmp_path / "gray.png"
    Image.new("L", (5, 7), color=128).save(gray)
    image = read_image(gray)
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (128, 128, 128)


def test_read_image_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.jpg"
    with pytest.raises(OSError, match=f"cannot read image '{missing}': "):
        read_image(missing)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"not a jpeg at all")
    with pytest.raises(OSError, match=f"cannot read image '{corrupt}': "):
        read_image(corrupt)


def test_image_dataset_samples(records):
    dataset = ImageDataset(records, transform=lambda image: torch.from_numpy(np.array(image)))
    assert len(dataset) == 24
    image, label, camid, index = dataset[5]
    assert image.shape == (H, W, 3)
    assert (label, camid, index) == (records[5].pid, records[5].camid, 5)
    raw, *_ = ImageDataset(records)[0]
    assert isinstance(raw, Image.Image)


def test_image_dataset_labels_override_pids(records):
    pseudo = np.arange(24) % 3 - 1  # -1, 0, 1, ...
    dataset = ImageDataset(records, labels=pseudo)
    assert [dataset[i][1] for i in range(24)] == pseudo.tolist()
    with pytest.raises(ValueError, match=r"labels must have shape \(24,\) like records, got \(23,\)"):
        ImageDataset(records, labels=pseudo[:-1])


def test_cache_keeps_decoded_images(records):
    cached, uncached = ImageDataset(records, cache=True), ImageDataset(records)
    first = np.asarray(cached[0][0])
    Path(records[0].path).unlink()
    np.testing.assert_array_equal(np.asarray(cached[0][0]), first)
    with pytest.raises(OSError, match=f"cannot read image '{records[0].path}'"):
        uncached[0]


def test_a_shared_cache_decodes_each_image_once(records, monkeypatch):
    import reidlab.data.loaders as loaders

    reads = []
    real_read = loaders.read_image
    monkeypatch.setattr(loaders, "read_image", lambda path: reads.append(path) or real_read(path))
    shared = {}
    first = ImageDataset(records, cache=shared)
    second = ImageDataset(records, labels=np.zeros(len(records)), cache=shared)
    images = [first[i][0] for i in range(len(records))]
    assert [second[i][0] for i in range(len(records))] == images  # the very same PIL objects
    assert len(reads) == len(records) and len(shared) == len(records)


def test_a_cached_train_loader_gives_exactly_the_uncached_batches(records):
    def run(cache):
        torch.manual_seed(0)  # the augmentations draw from torch's global generator (num_workers=0)
        return list(build_train_loader(records, None, height=32, width=16, batch_size=8, num_instances=4, iters=6,
                                       seed=5, colour_jitter=0.4, erasing_p=0.5, cache=cache))

    store, uncached = {}, run(False)
    for cached in (run(store), run(store)):  # the first pass fills the store, the second reads from it
        for (a, la, _, ia), (b, lb, _, ib) in zip(cached, uncached, strict=True):
            assert torch.equal(a, b) and torch.equal(la, lb) and torch.equal(ia, ib)
    assert {image.size for image in store.values()} == {(16, 32)}  # kept resized (PIL sizes are width x height)


def test_a_store_shared_by_other_records_and_sizes_keeps_them_apart(records):
    query, gallery = records[:12], records[12:]  # two record lists: index 0 is another image in each
    store = {}
    for part in (query, gallery):
        for height in (32, 16):
            cached = next(iter(build_test_loader(part, height=height, width=height // 2, batch_size=12, cache=store)))
            plain = next(iter(build_test_loader(part, height=height, width=height // 2, batch_size=12)))
            assert torch.equal(cached[0], plain[0])
    assert len(store) == 2 * len(records)  # one entry per image and input size


def test_iter_loader_yields_exactly_length_batches_across_restarts():
    class CountingLoader:
        def __init__(self):
            self.passes = 0

        def __iter__(self):
            self.passes += 1
            return iter([1, 2])

    loader = CountingLoader()
    iter_loader = IterLoader(loader, 5)
    assert len(iter_loader) == 5
    assert list(iter_loader) == [1, 2, 1, 2, 1]
    assert loader.passes == 3
    assert list(iter_loader) == [1, 2, 1, 2, 1]  # each epoch starts a fresh pass
    assert loader.passes == 6


def test_iter_loader_errors():
    with pytest.raises(RuntimeError, match="the loader produced no batch in a whole pass"):
        list(IterLoader([], 3))
    with pytest.raises(ValueError, match="length must be >= 1, got 0"):
        IterLoader([1], 0)


def test_train_loader_batches(records):
    loader = build_train_loader(records, None, height=32, width=16, batch_size=8, num_instances=4, iters=7, seed=0)
    batches = list(loader)
    assert len(batches) == 7  # one pass holds 6 ids x 4 = 3 batches: the loader restarted twice
    for images, labels, camids, indices in batches:
        assert images.shape == (8, 3, 32, 16) and images.dtype == torch.float32
        assert labels.dtype == torch.int64
        assert labels[:4].unique().numel() == 1 and labels[4:].unique().numel() == 1
        assert labels.tolist() == [records[i].pid for i in indices]
        assert camids.tolist() == [records[i].camid for i in indices]
        # other-camera preference: the 3 images after each anchor are on the other camera
        for group in (camids[:4], camids[4:]):
            assert (group[1:] != group[0]).all()


def test_train_loader_uses_pseudo_labels_and_skips_outliers(records):
    pseudo = np.repeat([0, -1, 1, 2, -1, 3], 4)
    loader = build_train_loader(records, pseudo, height=H, width=W, batch_size=8, num_instances=4, iters=4, seed=1)
    for _, labels, _, indices in loader:
        assert labels.tolist() == pseudo[indices.numpy()].tolist()
        assert (labels != -1).all()


def test_train_loader_is_deterministic_given_seeds(records):
    def run():
        torch.manual_seed(0)  # the augmentations draw from torch's global generator (num_workers=0)
        loader = build_train_loader(records, None, height=H, width=W, batch_size=8, num_instances=4, iters=3,
                                    seed=5)
        return list(loader)

    for (a, la, _, ia), (b, lb, _, ib) in zip(run(), run()):
        assert torch.equal(a, b) and torch.equal(la, lb) and torch.equal(ia, ib)


def test_train_loader_with_a_worker_is_deterministic_given_seed(records):
    def run():
        loader = build_train_loader(records, None, height=H, width=W, batch_size=8, num_instances=4, iters=2,
                                    seed=5, num_workers=1, cache=True)
        return list(loader)

    for (a, la, _, ia), (b, lb, _, ib) in zip(run(), run()):
        assert torch.equal(a, b) and torch.equal(la, lb) and torch.equal(ia, ib)


def test_train_loader_batch_size_must_be_a_multiple_of_num_instances(records):
    with pytest.raises(ValueError, match="batch_size must be a multiple of num_instances, got batch_size=10"):
        build_train_loader(records, None, height=H, width=W, batch_size=10, num_instances=4)


def test_test_loader_keeps_order_and_transform_is_deterministic(records):
    loader = build_test_loader(records, height=32, width=16, batch_size=10)
    batches = list(loader)
    assert [len(b[0]) for b in batches] == [10, 10, 4]
    indices = torch.cat([b[3] for b in batches])
    assert indices.tolist() == list(range(24))
    assert torch.cat([b[1] for b in batches]).tolist() == [r.pid for r in records]
    assert batches[0][0].shape == (10, 3, 32, 16)
    again = next(iter(build_test_loader(records, height=32, width=16, batch_size=10, cache=True)))
    assert torch.equal(again[0], batches[0][0])


def test_loaders_on_generated_synthmarket(tiny_synthmarket):
    train = tiny_synthmarket.train
    loader = build_train_loader(train, None, height=64, width=32, batch_size=16, num_instances=4, iters=3, seed=0)
    batches = list(loader)
    assert len(batches) == 3
    assert all(b[0].shape == (16, 3, 64, 32) for b in batches)
    test_batches = list(build_test_loader(tiny_synthmarket.query, height=64, width=32, batch_size=64))
    assert sum(len(b[0]) for b in test_batches) == len(tiny_synthmarket.query)


def test_a_test_loader_pass_leaves_the_global_rng_alone(records):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    list(build_test_loader(records, height=16, width=8, batch_size=2))
    assert torch.equal(torch.rand(3), expected)


def _with_masks(records, tmp_path):
    """``records`` with a part mask each: labels 1-3 on a record's own random pixels, 0 (background) elsewhere."""
    rng = np.random.default_rng(1)
    masked = []
    for k, record in enumerate(records):
        labels = rng.integers(0, 4, size=(H, W), dtype=np.uint8) * (rng.random((H, W)) < 0.5)
        path = tmp_path / f"mask{k}.png"
        Image.fromarray(labels).save(path)
        masked.append(Record(record.path, record.pid, record.camid, mask_path=str(path)))
    return masked


@pytest.mark.parametrize("cache", [False, True])
def test_background_swap_keeps_the_person_and_takes_every_other_pixel_from_one_other_image(records, tmp_path, cache):
    records = _with_masks(records, tmp_path)
    images = [np.asarray(read_image(r.path)) for r in records]
    dataset = ImageDataset(records, None, cache=cache, background_swap=1.0)
    torch.manual_seed(0)
    sources = []
    for index, record in enumerate(records):
        swapped = np.asarray(dataset[index][0])
        person = np.asarray(Image.open(record.mask_path)) > 0
        assert np.array_equal(swapped[person], images[index][person])
        # every background pixel comes from one training image, drawn at random (itself only by chance)
        matches = [k for k, image in enumerate(images) if np.array_equal(swapped[~person], image[~person])]
        assert len(matches) == 1
        sources.append(matches[0])
    assert sum(source != index for index, source in enumerate(sources)) >= len(records) - 3
    assert len(set(sources)) > len(records) // 2


def test_background_swap_with_p_0_and_its_errors(records, tmp_path):
    masked = _with_masks(records, tmp_path)
    plain = ImageDataset(masked, None, background_swap=0.0)
    assert np.array_equal(np.asarray(plain[3][0]), np.asarray(read_image(masked[3].path)))
    with pytest.raises(ValueError, match="person mask for every image"):
        ImageDataset(records, None, background_swap=0.5)
    with pytest.raises(ValueError, match=r"probability in \[0, 1\]"):
        ImageDataset(masked, None, background_swap=1.5)
