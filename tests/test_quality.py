"""Pseudo-label quality: pairwise scores and purity against naive O(N^2) counting."""

from collections import Counter

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from reidlab.cluster.quality import ClusterQuality, cluster_quality


def naive_pairwise(pred, true):
    """Precision, recall over all unordered pairs; an outlier (-1) is never in a pair with anyone."""
    together = predicted = same_id = 0
    for i in range(len(pred)):
        for j in range(i + 1, len(pred)):
            in_cluster = pred[i] == pred[j] != -1
            predicted += in_cluster
            same_id += true[i] == true[j]
            together += in_cluster and true[i] == true[j]
    return together / predicted, together / same_id


def naive_purity(pred, true):
    clusters = set(pred.tolist()) - {-1}
    majority = sum(Counter(true[pred == c].tolist()).most_common(1)[0][1] for c in clusters)
    return majority / (pred != -1).sum()


@pytest.fixture(scope="module")
def labels():
    rng = np.random.default_rng(0)
    true = rng.integers(0, 15, 400)
    pred = np.where(rng.random(400) < 0.8, true, rng.integers(0, 15, 400))  # 20% mistakes
    pred = np.where(rng.random(400) < 0.1, -1, pred)  # 10% outliers
    pred = np.where(pred == 3, 4, pred)  # one merge, which leaves a gap in the ids
    return pred, true


def test_matches_naive_counts(labels):
    pred, true = labels
    quality = cluster_quality(pred, true)
    precision, recall = naive_pairwise(pred, true)
    assert quality.pairwise_precision == pytest.approx(precision, abs=1e-12)
    assert quality.pairwise_recall == pytest.approx(recall, abs=1e-12)
    assert quality.pairwise_f1 == pytest.approx(2 * precision * recall / (precision + recall), abs=1e-12)
    assert quality.purity == pytest.approx(naive_purity(pred, true), abs=1e-12)
    assert quality.n_samples == 400 and quality.n_outliers == (pred == -1).sum()
    assert quality.n_clusters == len(set(pred.tolist()) - {-1}) == 14
    singletons = pred.copy()
    singletons[pred == -1] = 100 + np.arange((pred == -1).sum())
    assert quality.ari == pytest.approx(adjusted_rand_score(true, singletons))
    assert quality.nmi == pytest.approx(normalized_mutual_info_score(true, singletons))
    kept = pred != -1
    assert quality.ari_clustered == pytest.approx(adjusted_rand_score(true[kept], pred[kept]))
    assert quality.nmi_clustered == pytest.approx(normalized_mutual_info_score(true[kept], pred[kept]))
    assert quality.ari < quality.ari_clustered


def test_perfect_and_all_outliers():
    true = np.repeat(np.arange(5), 4)
    perfect = cluster_quality(true + 10, true)
    assert (perfect.ari, perfect.nmi, perfect.purity, perfect.pairwise_f1) == (1.0, 1.0, 1.0, 1.0)
    nothing = cluster_quality(np.full(20, -1), true)
    assert nothing.n_clusters == 0 and nothing.n_outliers == 20
    assert nothing.pairwise_precision == nothing.pairwise_recall == nothing.pairwise_f1 == 0.0
    assert np.isnan(nothing.purity) and np.isnan(nothing.ari_clustered)


def test_torch_input_and_display(labels):
    pred, true = labels
    quality = cluster_quality(torch.from_numpy(pred), torch.from_numpy(true))
    assert quality == cluster_quality(pred, true)
    assert isinstance(quality, ClusterQuality)
    header, row = str(quality).splitlines()
    assert header.split() == list(quality.as_dict())
    assert row.split()[:3] == ["400", "14", str(quality.n_outliers)]
    assert f"<td>{quality.pairwise_f1:.4f}</td>" in quality._repr_html_()


def test_errors():
    with pytest.raises(ValueError, match="same length, got 3 and 2"):
        cluster_quality([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="pred_labels must be a 1-D array of integer labels"):
        cluster_quality(np.zeros((2, 2), dtype=int), [0, 1])
    with pytest.raises(ValueError, match=r"true_labels must be .* integer labels, got shape \(2,\) and dtype float64"):
        cluster_quality([0, 1], [0.0, 1.0])
