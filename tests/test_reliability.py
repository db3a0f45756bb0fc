"""SpCL self-paced reliability: parity with a naive set-based version of spcl_train_usl.py.

docs/methods.md, section 4.1.
"""

import numpy as np
import pytest
from sklearn.cluster import DBSCAN

from reidlab.cluster.jaccard import jaccard_distance
from reidlab.cluster.reliability import SelfPacedRefiner, one_minus_iou


def nested_features(n=300, n_groups=8, subs=3, dim=64, seed=0, n_random=20):
    """Unit rows around 8 groups of 3 nearby centres, plus 20 random rows: clusters split and merge with eps."""
    rng = np.random.default_rng(seed)
    groups = rng.standard_normal((n_groups, dim))
    groups /= np.linalg.norm(groups, axis=1, keepdims=True)
    centres = groups.repeat(subs, axis=0) + rng.standard_normal((n_groups * subs, dim)) * np.sqrt(0.7 / dim)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[rng.integers(0, len(centres), n - n_random)]
    x = x + rng.standard_normal(x.shape) * np.sqrt(1 / 3 / dim)
    x = np.concatenate([x, rng.standard_normal((n_random, dim))])
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def naive_sets(labels):
    """Set of samples sharing i's label; an outlier's set is {i}."""
    return [{i} if labels[i] == -1 else set(np.flatnonzero(labels == labels[i])) for i in range(len(labels))]


def naive_one_minus_iou(labels, other):
    a, b = naive_sets(labels), naive_sets(other)
    # float32 like SpCL's torch code
    return np.array([np.float32(1) - np.float32(len(s & t)) / np.float32(len(s | t)) for s, t in zip(a, b)])


def naive_self_paced(dist, eps, gap, threshold=None):
    """SpCL's criterion with Python sets; returns (DBSCAN labels, R_comp, R_indep, kept mask, threshold)."""
    labels, tight, loose = (
        DBSCAN(eps=e, min_samples=4, metric="precomputed").fit_predict(dist) for e in (eps, eps - gap, eps + gap)
    )
    r_comp, r_indep = naive_one_minus_iou(labels, tight), naive_one_minus_iou(labels, loose)
    clusters = sorted(set(labels.tolist()) - {-1})
    cluster_comp = {c: min(r_comp[labels == c]) for c in clusters}
    cluster_indep = {c: min(r_indep[labels == c]) for c in clusters}
    if threshold is None:
        values = sorted(cluster_indep[c] for c in clusters if (labels == c).sum() > 1)
        threshold = values[min(len(values) - 1, int(np.round(len(values) * 0.9)))]
    kept = np.array([
        lab != -1 and cluster_indep[lab] <= threshold and r_comp[i] <= cluster_comp[lab]
        for i, lab in enumerate(labels)
    ])
    return labels, r_comp, r_indep, kept, threshold


@pytest.fixture(scope="module")
def dense():
    return jaccard_distance(nested_features(), output="dense")


def test_one_minus_iou_matches_sets():
    rng = np.random.default_rng(0)
    labels, other = rng.integers(-1, 6, 200), rng.integers(-1, 9, 200)
    np.testing.assert_array_equal(one_minus_iou(labels, other), naive_one_minus_iou(labels, other))
    np.testing.assert_array_equal(one_minus_iou(labels, labels), 0)
    with pytest.raises(ValueError, match="same length"):
        one_minus_iou(labels, other[:10])


@pytest.mark.parametrize("eps, gap", [(0.6, 0.02), (0.6, 0.05), (0.4, 0.1)])
def test_matches_naive_spcl(dense, eps, gap):
    labels, r_comp, r_indep, kept, threshold = naive_self_paced(dense, eps, gap)
    refiner = SelfPacedRefiner(eps, eps_gap=gap).fit(dense)
    np.testing.assert_array_equal(refiner.dbscan_labels_, labels)
    np.testing.assert_array_equal(refiner.r_comp_, r_comp)
    np.testing.assert_array_equal(refiner.r_indep_, r_indep)
    assert refiner.indep_threshold_ == threshold
    np.testing.assert_array_equal(refiner.labels_ >= 0, kept)
    # Kept samples keep their DBSCAN grouping, renumbered 0..C-1 in the order of the DBSCAN ids.
    _, expected = np.unique(labels[kept], return_inverse=True)
    np.testing.assert_array_equal(refiner.labels_[kept], expected)
    assert refiner.n_clusters_ == len(set(labels[kept].tolist()))
    for c in range(refiner.dbscan_labels_.max() + 1):
        assert refiner.cluster_r_comp_[c] == r_comp[labels == c].min()
        assert refiner.cluster_r_indep_[c] == r_indep[labels == c].min()
    if gap > 0.02:
        assert 0 < (~kept & (labels >= 0)).sum(), "the test should reject some clustered samples"
    if gap == 0.1:
        assert refiner.n_clusters_ < labels.max() + 1, "the test should reject a whole cluster"


def test_threshold_is_fixed_at_the_first_fit(dense):
    refiner = SelfPacedRefiner(0.5, eps_gap=0.1).fit(dense)
    first = refiner.indep_threshold_
    other = jaccard_distance(nested_features(seed=3), output="dense")
    refiner.fit(other)
    assert refiner.indep_threshold_ == first
    _, _, _, kept, _ = naive_self_paced(other, 0.5, 0.1, threshold=first)
    np.testing.assert_array_equal(refiner.labels_ >= 0, kept)
    assert SelfPacedRefiner(0.5, eps_gap=0.1).fit(other).indep_threshold_ != first


def test_sparse_input_and_errors(dense):
    sparse = jaccard_distance(nested_features())
    np.testing.assert_array_equal(SelfPacedRefiner().fit_predict(sparse), SelfPacedRefiner().fit_predict(dense))
    with pytest.raises(ValueError, match=r"eps_gap must be in \(0, eps=0.6\), got 0.7"):
        SelfPacedRefiner(eps_gap=0.7).fit(dense)
    with pytest.raises(ValueError, match="percentile must be in"):
        SelfPacedRefiner(percentile=101).fit(dense)
