"""Tests of reidlab.data.sampler.PKSampler (docs/methods.md, section 1)."""

from collections import defaultdict

import numpy as np
import pytest

from reidlab.data.sampler import PKSampler


def _naive_reference(labels, camids, num_instances, rng):
    """RandomMultipleGallerySampler of SpCL / Cluster Contrast, one pass, drawing from ``rng``."""
    pid_index, pid_cam = defaultdict(list), defaultdict(list)
    for index, (pid, cam) in enumerate(zip(labels, camids)):
        if pid < 0:
            continue
        pid_index[pid].append(index)
        pid_cam[pid].append(cam)
    pids = sorted(pid_index)
    ret = []
    for kid in rng.permutation(len(pids)):
        index, cams = pid_index[pids[kid]], pid_cam[pids[kid]]
        i = index[rng.integers(len(index))]
        ret.append(i)
        select_cams = [j for j, cam in enumerate(cams) if cam != camids[i]]
        if select_cams:
            replace = not len(select_cams) >= num_instances
            ret.extend(index[kk] for kk in rng.choice(select_cams, size=num_instances - 1, replace=replace))
        else:
            select_indexes = [j for j, value in enumerate(index) if value != i]
            if not select_indexes:
                continue
            replace = not len(select_indexes) >= num_instances
            ret.extend(index[kk] for kk in rng.choice(select_indexes, size=num_instances - 1, replace=replace))
    return ret


def _groups(indices, labels):
    """Split a pass into runs of equal label (one run per identity)."""
    groups = []
    for index in indices:
        if groups and labels[groups[-1][0]] == labels[index]:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def _random_dataset(seed=0, size=300):
    rng = np.random.default_rng(seed)
    labels = rng.integers(-1, 40, size=size)
    camids = rng.integers(0, 6, size=size)
    labels[:5] = 100, 101, 101, 101, 101  # a singleton and a single-camera identity
    camids[1:5] = 3
    return labels, camids


@pytest.mark.parametrize("num_instances", [1, 4, 16])
def test_parity_with_reference(num_instances):
    labels, camids = _random_dataset()
    sampler = PKSampler(labels, camids, num_instances, seed=7)
    rng = np.random.default_rng(7)
    for _ in range(3):  # successive passes continue the same generator
        assert list(sampler) == _naive_reference(labels, camids, num_instances, rng)


def test_indices_have_valid_labels_and_outliers_are_ignored():
    labels, camids = _random_dataset()
    sampler = PKSampler(labels, camids, 4, seed=0)
    indices = list(sampler)
    assert all(isinstance(i, int) for i in indices)
    assert all(labels[i] != -1 for i in indices)
    num_ids = len(set(labels.tolist()) - {-1})
    assert sampler.num_identities == num_ids
    assert len(sampler) == num_ids * 4


def test_consecutive_groups_share_a_label_and_cover_each_identity_once():
    labels = np.repeat(np.arange(10), 6)
    camids = np.tile(np.arange(3), 20)
    indices = list(PKSampler(labels, camids, 4, seed=1))
    assert len(indices) == 40
    groups = [indices[k : k + 4] for k in range(0, 40, 4)]
    assert all(len({labels[i] for i in g}) == 1 for g in groups)
    assert sorted(labels[g[0]] for g in groups) == list(range(10))


def test_other_cameras_are_preferred_and_drawn_without_replacement_when_enough():
    # identity 0: 10 images on cameras 0..4 (8 other-camera images for any anchor, >= K = 4)
    labels = np.zeros(10, dtype=int)
    camids = np.repeat(np.arange(5), 2)
    sampler = PKSampler(labels, camids, 4, seed=2)
    for _ in range(50):
        anchor, *rest = list(sampler)
        assert len(rest) == 3
        assert all(camids[i] != camids[anchor] for i in rest)
        assert len(set(rest)) == 3


def test_with_replacement_when_fewer_than_num_instances():
    # camera 0 holds 5 images, camera 1 holds 3: an anchor on camera 0 has exactly K - 1 = 3 other-camera
    # images, which the reference still draws WITH replacement (its test is ">= num_instances")
    labels = np.zeros(8, dtype=int)
    camids = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    sampler = PKSampler(labels, camids, 4, seed=3)
    repeated = 0
    for _ in range(100):
        anchor, *rest = list(sampler)
        assert len(rest) == 3
        assert all(camids[i] != camids[anchor] for i in rest)
        repeated += len(set(rest)) < 3
    assert repeated > 0


def test_single_camera_identity_falls_back_to_its_other_images():
    labels = np.zeros(3, dtype=int)
    camids = np.zeros(3, dtype=int)
    sampler = PKSampler(labels, camids, 4, seed=4)
    for _ in range(20):
        anchor, *rest = list(sampler)
        assert len(rest) == 3
        assert anchor not in rest
        assert set(rest) <= {0, 1, 2}


def test_singleton_identity_yields_only_its_anchor():
    labels = np.array([5, 6, 6, 6, 6])
    camids = np.array([0, 0, 1, 2, 3])
    sampler = PKSampler(labels, camids, 4, seed=5)
    assert len(sampler) == 8
    for _ in range(10):
        groups = _groups(list(sampler), labels)
        assert sorted(len(g) for g in groups) == [1, 4]
        assert [0] in groups


def test_deterministic_given_seed():
    labels, camids = _random_dataset(seed=1)
    first, second = PKSampler(labels, camids, 4, seed=11), PKSampler(labels, camids, 4, seed=11)
    passes = [list(first) for _ in range(3)]
    assert passes == [list(second) for _ in range(3)]
    assert passes[0] != passes[1]  # each pass draws anew
    assert list(PKSampler(labels, camids, 4, seed=12)) != passes[0]


def test_all_outliers_give_an_empty_sampler():
    sampler = PKSampler([-1, -1, -1], [0, 1, 2], 4, seed=0)
    assert len(sampler) == 0 and list(sampler) == []


def test_argument_errors():
    with pytest.raises(ValueError, match=r"must be 1-D of the same length, got shapes \(3,\) and \(2,\)"):
        PKSampler([0, 0, 1], [0, 1], 4)
    with pytest.raises(ValueError, match="num_instances must be >= 1, got 0"):
        PKSampler([0, 0], [0, 1], 0)
