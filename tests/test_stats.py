"""reidlab.lab.stats: the camera-bias measure (camera_predictability) against a naive version."""

import numpy as np
import pytest
import torch

from reidlab.lab.stats import camera_predictability, disjoint_pairs, percentile_rank


def _camera_data(n_ids=30, per_camera=3, cameras=4, bias=0.0, seed=0):
    """Identity features plus ``bias`` times a camera direction, and their cameras and identities."""
    rng = np.random.default_rng(seed)
    identity = rng.normal(size=(n_ids, 16))
    camera = rng.normal(size=(cameras, 16))
    rows, cams, pids = [], [], []
    for pid in range(n_ids):
        for cam in range(cameras):
            for _ in range(per_camera):
                rows.append(identity[pid] + bias * camera[cam] + 0.3 * rng.normal(size=16))
                cams.append(cam)
                pids.append(pid)
    return np.array(rows, dtype=np.float32), np.array(cams), np.array(pids)


def test_equals_a_naive_grouped_cross_validation():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold

    features, cameras, pids = _camera_data(bias=0.8)
    result = camera_predictability(torch.from_numpy(features), cameras, groups=pids, folds=3, seed=1)
    x = features / np.linalg.norm(features, axis=1, keepdims=True)
    naive = []
    for train, test in StratifiedGroupKFold(3, shuffle=True, random_state=1).split(x, cameras, pids):
        assert not set(pids[train]) & set(pids[test])  # people never seen in training
        model = LogisticRegression(max_iter=2000).fit(x[train], cameras[train])
        naive.append(np.mean(model.predict(x[test]) == cameras[test]))
    assert result.fold_accuracies == pytest.approx(naive)
    assert result.accuracy == pytest.approx(np.mean(naive)) and result.std == pytest.approx(np.std(naive))
    assert result.chance == pytest.approx(0.25) and result.folds == 3
    assert "chance 25.0%" in str(result)


def test_camera_bias_is_predictable_and_its_absence_is_at_chance():
    biased = camera_predictability(*_camera_data(bias=1.5)[:2], folds=3)
    unbiased_features, cameras, pids = _camera_data(bias=0.0)
    unbiased = camera_predictability(unbiased_features, cameras, groups=pids, folds=3)
    assert biased.accuracy > 0.95
    assert abs(unbiased.accuracy - unbiased.chance) < 0.12


def test_bad_inputs_are_explained():
    features, cameras, _ = _camera_data(n_ids=3, per_camera=1)
    with pytest.raises(ValueError, match="need features"):
        camera_predictability(features, cameras[:-1])
    with pytest.raises(ValueError, match="at least two cameras"):
        camera_predictability(features, np.zeros(len(cameras)))
    with pytest.raises(ValueError, match="folds must be"):
        camera_predictability(features, cameras, folds=1)
    with pytest.raises(ValueError, match="groups must be"):
        camera_predictability(features, cameras, groups=np.zeros(3))


def test_disjoint_pairs_take_each_index_at_most_once_in_order():
    pairs = np.array([[0, 1], [0, 2], [3, 1], [3, 4], [5, 5], [6, 7], [8, 9]])
    chosen = disjoint_pairs(pairs, 3)
    assert chosen.tolist() == [[0, 1], [3, 4], [6, 7]]
    assert disjoint_pairs(pairs, 10).tolist() == [[0, 1], [3, 4], [6, 7], [8, 9]]
    assert disjoint_pairs(np.empty((0, 2), dtype=int), 4).shape == (0, 2)
    assert disjoint_pairs(pairs, 2, exclude=[[0, 4]]).tolist() == [[3, 1], [6, 7]]


def test_percentile_rank_counts_ties_as_closer_and_spans_zero_to_one():
    population = np.array([0.1, 0.2, 1.0, 1.0])
    ranks = percentile_rank(population, [0.0, 0.1, 1.0, 2.0])
    np.testing.assert_allclose(ranks, [0.0, 0.25, 1.0, 1.0])  # a value tied with the farthest ranks farthest
