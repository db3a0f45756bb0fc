"""Tests of reidlab.data.datasets on file trees that use the real naming schemes (docs/methods.md, section 7).

Files are empty: the loaders only read names (and MSMT17 only its list files).
"""

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from reidlab.data.datasets import (
    DATASETS,
    MSMT17,
    DukeMTMCreID,
    Market1501,
    Record,
    SynthMarket,
    load_dataset,
    parse_market_folder,
    relabel,
)


def _touch(path: Path) -> None:
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def _spread(total: int, pids) -> list[int]:
    """One pid per image: ``total`` images spread as evenly as possible over ``pids``."""
    pids = list(pids)
    base, extra = divmod(total, len(pids))
    counts = [base + (i < extra) for i in range(len(pids))]
    return [pid for pid, n in zip(pids, counts) for _ in range(n)]


def _write_split(folder: Path, pids, num_cameras: int, name) -> None:
    folder.mkdir(parents=True)
    for i, pid in enumerate(pids):
        _touch(folder / name(pid, 1 + i % num_cameras, i))


def _market_name(pid: int, cam: int, i: int) -> str:
    pid_text = "-1" if pid == -1 else f"{pid:04d}"  # junk files are named -1_c...
    return f"{pid_text}_c{cam}s{1 + i % 6}_{i:06d}_{i % 10:02d}.jpg"


def _duke_name(pid: int, cam: int, i: int) -> str:
    return f"{pid:04d}_c{cam}_f{i:07d}.jpg"


@pytest.fixture(scope="module")
def scratch() -> Path:
    """A folder removed after the module, in memory (/dev/shm) where there is one: the ~72k empty
    files of Market-1501 + DukeMTMC-reID take ~0.5 s there and several seconds on a busy disk."""
    memory = "/dev/shm"
    base = memory if os.path.isdir(memory) and os.access(memory, os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=base, prefix="reidlab-test-datasets-") as folder:
        yield Path(folder)


@pytest.fixture(scope="module")
def market_parent(scratch) -> Path:
    """Market-1501 with the published counts, under ``parent/Market-1501-v15.09.15``."""
    parent = scratch / "market"
    root = parent / "Market-1501-v15.09.15"
    perm = np.random.default_rng(0).permutation(np.arange(1, 1502))
    train_pids, test_pids = sorted(perm[:751]), sorted(perm[751:])
    _write_split(root / "bounding_box_train", _spread(12_936, train_pids), 6, _market_name)
    _write_split(root / "query", _spread(3_368, test_pids), 6, _market_name)
    # 19,732 gallery files = 13,120 of the 750 test ids + 2,793 distractors (pid 0) + 3,819 junk (pid -1)
    gallery = _spread(13_120, test_pids) + [0] * 2_793 + [-1] * 3_819
    _write_split(root / "bounding_box_test", gallery, 6, _market_name)
    return parent


@pytest.fixture(scope="module")
def duke_parent(scratch) -> Path:
    """DukeMTMC-reID with the published counts, under ``parent/DukeMTMC-reID``."""
    parent = scratch / "duke"
    root = parent / "DukeMTMC-reID"
    perm = np.random.default_rng(1).permutation(np.arange(1, 7141))
    train_pids, test_pids, distractor_pids = sorted(perm[:702]), sorted(perm[702:1404]), sorted(perm[1404:1812])
    _write_split(root / "bounding_box_train", _spread(16_522, train_pids), 8, _duke_name)
    _write_split(root / "query", _spread(2_228, test_pids), 8, _duke_name)
    _write_split(root / "bounding_box_test", _spread(17_661, test_pids + distractor_pids), 8, _duke_name)
    return parent


def _msmt_lines(pids, start: int) -> list[str]:
    lines = []
    for i, pid in enumerate(pids, start=start):
        cam = 1 + i % 15
        lines.append(f"{pid:04d}/{pid:04d}_{i % 1000:03d}_{cam:02d}_0303morning_{i:06d}_0.jpg {pid}\n")
    return lines


def _write_msmt17(parent: Path, version: str) -> Path:
    root = parent / f"MSMT17_{version}"
    train_dir, test_dir = ("train", "test") if version == "V1" else ("mask_train_v2", "mask_test_v2")
    (root / train_dir).mkdir(parents=True)
    (root / test_dir).mkdir()
    train = _spread(30_248, range(1_041))
    val = _spread(2_373, range(0, 1_041, 2))  # val holds other images of training ids
    lists = {
        "list_train.txt": _msmt_lines(train, 0),
        "list_val.txt": _msmt_lines(val, len(train)),
        "list_query.txt": _msmt_lines(_spread(11_659, range(3_060)), 0),
        "list_gallery.txt": _msmt_lines(_spread(82_161, range(3_060)), 20_000),
    }
    for name, lines in lists.items():
        (root / name).write_text("".join(lines))
    return root


@pytest.fixture(scope="module", params=["V1", "V2"])
def msmt17_parent(request, scratch) -> Path:
    parent = scratch / f"msmt17_{request.param}"
    _write_msmt17(parent, request.param)
    return parent


def _counts(records) -> tuple[int, int]:
    return len({r.pid for r in records}), len(records)


# -- published statistics ---------------------------------------------------------------------------


def test_market1501_statistics(market_parent):
    dataset = Market1501(market_parent)
    assert dataset.root == market_parent / "Market-1501-v15.09.15"
    assert _counts(dataset.train) == (751, 12_936)
    assert _counts(dataset.query) == (750, 3_368)
    assert _counts(dataset.gallery) == (751, 15_913)
    assert dataset.stats() == {
        "train": {"ids": 751, "images": 12_936, "cameras": 6},
        "query": {"ids": 750, "images": 3_368, "cameras": 6},
        "gallery": {"ids": 751, "images": 15_913, "cameras": 6},
    }
    assert (dataset.num_train_pids, dataset.num_train_images, dataset.num_train_cams) == (751, 12_936, 6)
    assert (dataset.num_query_pids, dataset.num_query_images, dataset.num_query_cams) == (750, 3_368, 6)
    assert (dataset.num_gallery_pids, dataset.num_gallery_images, dataset.num_gallery_cams) == (751, 15_913, 6)


def test_market1501_junk_distractors_and_camids(market_parent):
    dataset = Market1501(market_parent / "Market-1501-v15.09.15")  # the folder itself works too
    all_records = dataset.train + dataset.query + dataset.gallery
    assert all(r.pid != -1 for r in all_records)
    assert sum(r.pid == 0 for r in dataset.gallery) == 2_793
    assert all(r.pid != 0 for r in dataset.train + dataset.query)
    assert {r.camid for r in all_records} == set(range(6))
    for r in all_records[:: 997]:
        name = os.path.basename(r.path)
        assert r.pid == int(name.split("_")[0])
        assert r.camid == int(name.split("_c")[1][0]) - 1
        assert r.mask_path is None
    assert dataset.train == sorted(dataset.train)
    # pids are kept as in the files, not relabelled
    assert max(r.pid for r in dataset.train) > 751


def test_market1501_summary(market_parent):
    text = Market1501(market_parent).summary()
    assert "market1501" in text
    rows = {line.split("|")[0].strip(): [c.strip() for c in line.split("|")[1:]] for line in text.splitlines()[3:]}
    assert rows == {
        "train": ["751", "12,936", "6"], "query": ["750", "3,368", "6"], "gallery": ["751", "15,913", "6"],
    }


def test_dukemtmcreid_statistics(duke_parent):
    dataset = DukeMTMCreID(duke_parent)
    assert _counts(dataset.train) == (702, 16_522)
    assert _counts(dataset.query) == (702, 2_228)
    assert _counts(dataset.gallery) == (1_110, 17_661)
    assert dataset.num_train_cams == 8
    assert {r.camid for r in dataset.gallery} == set(range(8))
    record = dataset.train[0]
    name = os.path.basename(record.path)
    assert (record.pid, record.camid) == (int(name[:4]), int(name[6]) - 1)


def test_msmt17_statistics(msmt17_parent):
    dataset = MSMT17(msmt17_parent)
    version = msmt17_parent.name.split("_")[1]
    assert dataset.version == version
    assert dataset.root == msmt17_parent / f"MSMT17_{version}"
    assert _counts(dataset.train) == (1_041, 32_621)
    assert _counts(dataset.query) == (3_060, 11_659)
    assert _counts(dataset.gallery) == (3_060, 82_161)
    assert dataset.num_train_cams == 15
    assert {r.camid for r in dataset.gallery} == set(range(15))
    train_dir, test_dir = ("train", "test") if version == "V1" else ("mask_train_v2", "mask_test_v2")
    assert all(Path(r.path).parent.parent == dataset.root / train_dir for r in dataset.train[:: 101])
    assert all(Path(r.path).parent.parent == dataset.root / test_dir for r in dataset.query[:: 101])


def test_msmt17_camera_is_third_field(tmp_path):
    root = _write_msmt17(tmp_path, "V1")
    (root / "list_query.txt").write_text("0007/0007_012_03_0303morning_0015_0.jpg 7\n\n")
    dataset = MSMT17(root)
    assert dataset.query == [Record(str(root / "test" / "0007/0007_012_03_0303morning_0015_0.jpg"), 7, 2)]


def test_msmt17_version_and_malformed_list(tmp_path):
    root = _write_msmt17(tmp_path, "V1")
    with pytest.raises(FileNotFoundError, match="MSMT17_V2"):
        MSMT17(tmp_path, version="V2")
    with pytest.raises(ValueError, match="version must be 'V1', 'V2' or None, got 'V3'"):
        MSMT17(tmp_path, version="V3")
    (root / "list_val.txt").write_text("0001/0001_000_01_0303morning_0001_0.jpg 1\nbroken-line\n")
    with pytest.raises(ValueError, match=r"list_val.txt:2: expected"):
        MSMT17(tmp_path)


# -- root resolution and errors ---------------------------------------------------------------------


def _tiny_market(folder: Path, names=("0002_c1s1_000451_03.jpg", "0002_c3s1_000551_01.jpg")) -> None:
    for split in ("bounding_box_train", "query", "bounding_box_test"):
        (folder / split).mkdir(parents=True)
        for name in names:
            _touch(folder / split / name)


def test_root_may_be_the_conventional_parent(tmp_path):
    _tiny_market(tmp_path / "market1501" / "Market-1501-v15.09.15")
    dataset = load_dataset("Market-1501", tmp_path)
    assert dataset.root == tmp_path / "market1501" / "Market-1501-v15.09.15"
    assert [(r.pid, r.camid) for r in dataset.train] == [(2, 0), (2, 2)]


def test_wrong_root_lists_expected_folders_and_places(tmp_path):
    (tmp_path / "query").mkdir()
    with pytest.raises(FileNotFoundError) as error:
        Market1501(tmp_path)
    message = str(error.value)
    for entry in ("bounding_box_train/", "query/", "bounding_box_test/", "Market-1501-v15.09.15"):
        assert entry in message
    assert f"{tmp_path} (missing bounding_box_train/, bounding_box_test/)" in message
    for place in ("Market-1501-v15.09.15", "market1501/Market-1501-v15.09.15", "market1501"):
        assert f"{tmp_path / place} (does not exist)" in message


def test_unparseable_name_and_camera_out_of_range(tmp_path):
    _tiny_market(tmp_path, names=("0002_c7s1_000451_03.jpg",))
    with pytest.raises(ValueError, match=r"camera 7 out of range 1\.\.6 in '.*0002_c7s1_000451_03.jpg'"):
        Market1501(tmp_path)
    folder = tmp_path / "other"
    folder.mkdir()
    _touch(folder / "person.jpg")
    with pytest.raises(ValueError, match="cannot read person id and camera from '.*person.jpg'"):
        parse_market_folder(folder, num_cameras=6)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"no images \(.jpg, .jpeg, .png\) in"):
        parse_market_folder(empty, num_cameras=6)


def test_load_dataset_names(tmp_path):
    assert set(DATASETS) == {"market1501", "dukemtmcreid", "msmt17", "synthmarket"}
    _tiny_market(tmp_path / "DukeMTMC-reID", names=("0005_c8_f0046985.jpg",))
    for name in ("duke", "DukeMTMC-reID", "dukemtmcreid"):
        dataset = load_dataset(name, tmp_path)
        assert isinstance(dataset, DukeMTMCreID)
        path = tmp_path / "DukeMTMC-reID" / "bounding_box_train" / "0005_c8_f0046985.jpg"
        assert dataset.train == [Record(str(path), 5, 7)]
    with pytest.raises(ValueError, match="unknown dataset 'cuhk03': valid names are market1501, dukemtmcreid, "
                                         "msmt17, synthmarket"):
        load_dataset("cuhk03", tmp_path)


def test_relabel():
    np.testing.assert_array_equal(relabel([7, 3, 7, 0, 3]), [2, 1, 2, 0, 1])


# -- SynthMarket -------------------------------------------------------------------------------------


def _tiny_synthmarket(root: Path, manifest: dict | None) -> None:
    _tiny_market(root, names=("0001_c1s1_000000_00.jpg", "0001_c2s1_000001_00.jpg", "0002_c6s1_000002_00.jpg"))
    for split in ("bounding_box_train", "query", "bounding_box_test"):
        (root / "masks" / split).mkdir(parents=True)
    if manifest is not None:
        (root / "synthmarket.json").write_text(json.dumps(manifest))


def test_synthmarket_records_have_masks(tmp_path):
    _tiny_synthmarket(tmp_path / "synthmarket", {"complete": True})
    dataset = SynthMarket(tmp_path)
    root = tmp_path / "synthmarket"
    assert dataset.root == root
    assert [(r.pid, r.camid) for r in dataset.gallery] == [(1, 0), (1, 1), (2, 5)]
    for split, records in (("bounding_box_train", dataset.train), ("query", dataset.query),
                           ("bounding_box_test", dataset.gallery)):
        assert len(records) == 3
        for r in records:
            assert r.mask_path == str(root / "masks" / split / (Path(r.path).stem + ".png"))


@pytest.mark.parametrize("manifest", [None, {"complete": False}, {"presets": "default"}])
def test_synthmarket_refuses_incomplete_generation(tmp_path, manifest):
    _tiny_synthmarket(tmp_path, manifest)
    with pytest.raises(RuntimeError, match="not a complete SynthMarket|the SynthMarket is incomplete") as error:
        load_dataset("synthmarket", tmp_path)
    assert f"`reidlab data --root {tmp_path} --preset default --seed 0" in str(error.value)  # the folder that failed


def test_synthmarket_interrupted_before_the_splits(tmp_path):
    (tmp_path / "bounding_box_train").mkdir()
    (tmp_path / "synthmarket.json").write_text(json.dumps({"complete": False}))
    with pytest.raises(RuntimeError, match="the SynthMarket is incomplete"):
        SynthMarket(tmp_path)
    with pytest.raises(FileNotFoundError, match="masks/query/"):
        SynthMarket(tmp_path / "nothing-here")


def test_synthmarket_generated_by_the_generator(tiny_synthmarket_root):
    dataset = load_dataset("synthmarket", tiny_synthmarket_root)
    assert dataset.root == tiny_synthmarket_root
    records = dataset.train + dataset.query + dataset.gallery
    assert all(os.path.isfile(r.path) and os.path.isfile(r.mask_path) for r in records)
    assert all(r.pid != -1 for r in records) and all(r.pid != 0 for r in dataset.train + dataset.query)
    assert {r.camid for r in records} <= set(range(6))
    assert {r.pid for r in dataset.train}.isdisjoint({r.pid for r in dataset.query})
