"""DBSCAN pseudo-labels: parity with scikit-learn on the dense distance, sparse input, helpers."""

import numpy as np
import pytest
import torch
from sklearn.cluster import DBSCAN

from reidlab.cluster.dbscan import (
    DBSCANPseudoLabeler,
    EmptyClusteringError,
    cluster_centroids,
    dbscan_labels,
    outliers_as_classes,
)
from reidlab.cluster.jaccard import jaccard_distance


def clustered_features(n=300, n_centres=20, dim=64, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_centres, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[rng.integers(0, n_centres, n)] + rng.standard_normal((n, dim)) * np.sqrt(1 / 3 / dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def features():
    base = clustered_features()
    return np.concatenate([base, base[:20]])  # exact duplicates give stored zero distances


@pytest.fixture(scope="module")
def distances(features):
    return jaccard_distance(features), jaccard_distance(features, output="dense")


@pytest.mark.parametrize("eps", [0.3, 0.5, 0.6, 0.7])
def test_sparse_and_dense_match_sklearn_on_dense(distances, eps):
    sparse, dense = distances
    expected = DBSCAN(eps=eps, min_samples=4, metric="precomputed").fit_predict(dense)
    from_sparse = DBSCANPseudoLabeler(eps).fit(sparse)
    from_dense = DBSCANPseudoLabeler(eps).fit(dense)
    np.testing.assert_array_equal(from_sparse.labels_, expected)
    np.testing.assert_array_equal(from_dense.labels_, expected)
    assert from_sparse.n_clusters_ == len(set(expected) - {-1}) > 1
    np.testing.assert_array_equal(from_sparse.outliers_, expected == -1)
    assert from_sparse.n_outliers_ == (expected == -1).sum()


def test_duplicates_share_a_cluster(distances):
    labels = DBSCANPseudoLabeler(0.6).fit_predict(distances[0])
    clustered = labels[:20] >= 0
    assert clustered.any()
    np.testing.assert_array_equal(labels[:20][clustered], labels[300:][clustered])


def test_other_metric_on_features(features):
    expected = DBSCAN(eps=0.8, min_samples=4).fit_predict(features)
    labeler = DBSCANPseudoLabeler(0.8, metric="euclidean").fit(features)
    np.testing.assert_array_equal(labeler.labels_, expected)


def test_no_cluster_raises_with_a_suggested_eps(distances):
    sparse, dense = distances
    expected = np.median(np.sort(dense + np.diag(np.full(len(dense), np.inf)), axis=1)[:, 2])
    for dist in (sparse, dense):
        message = r"eps=0.01 and min_samples=4 formed no cluster among 320"
        with pytest.raises(EmptyClusteringError, match=message) as info:
            DBSCANPseudoLabeler(0.01).fit(dist)
        assert isinstance(info.value, ValueError)
        assert f"half the samples have 3 others (min_samples - 1) within {expected:.3f}" in str(info.value)
    assert (dbscan_labels(sparse, eps=0.01) == -1).all()  # the function itself does not raise


def test_invalid_arguments(distances):
    sparse, dense = distances
    with pytest.raises(ValueError, match="eps must be < 1 with a sparse distance, got 1.0"):
        dbscan_labels(sparse, eps=1.0)
    with pytest.raises(ValueError, match="square"):
        dbscan_labels(dense[:10], eps=0.5)
    with pytest.raises(ValueError, match="eps must be > 0, got 0"):
        dbscan_labels(dense, eps=0)
    with pytest.raises(ValueError, match="min_samples must be a positive integer, got 0"):
        dbscan_labels(dense, eps=0.5, min_samples=0)


def test_outliers_as_classes():
    labels = np.array([1, -1, 0, -1, 1, -1])
    np.testing.assert_array_equal(outliers_as_classes(labels), [1, 2, 0, 3, 1, 4])
    np.testing.assert_array_equal(labels, [1, -1, 0, -1, 1, -1])  # input untouched
    result = outliers_as_classes(torch.tensor(labels))
    assert isinstance(result, torch.Tensor) and result.tolist() == [1, 2, 0, 3, 1, 4]
    np.testing.assert_array_equal(outliers_as_classes(np.array([-1, -1])), [0, 1])


def test_cluster_centroids_numpy_and_torch():
    rng = np.random.default_rng(0)
    features = rng.standard_normal((50, 8)).astype(np.float32)
    labels = rng.integers(-1, 5, 50)
    expected = np.stack([features[labels == c].mean(axis=0) for c in range(5)])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    centroids = cluster_centroids(features, labels)
    assert centroids.dtype == np.float32 and centroids.shape == (5, 8)
    np.testing.assert_allclose(centroids, expected, rtol=1e-5, atol=1e-6)
    as_torch = cluster_centroids(torch.from_numpy(features).double(), torch.from_numpy(labels))
    assert isinstance(as_torch, torch.Tensor) and as_torch.dtype == torch.float64
    np.testing.assert_allclose(as_torch.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1, rtol=1e-6)


def test_cluster_centroids_errors():
    features = np.ones((4, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="ids with no member: \\[1\\]"):
        cluster_centroids(features, np.array([0, 2, -1, 0]))
    with pytest.raises(ValueError, match="no cluster"):
        cluster_centroids(features, np.full(4, -1))
    with pytest.raises(ValueError, match=r"shapes \(4, 3\) and \(3,\)"):
        cluster_centroids(features, np.zeros(3, dtype=int))


def test_jaccard_and_dbscan_never_densify(monkeypatch):
    """kNN -> Jaccard -> DBSCAN at N = 20,000 stays sparse: no call densifies a sparse matrix, and the peak
    of NumPy's traced allocations (tracemalloc, which sees NumPy's and so SciPy's and scikit-learn's arrays) stays
    below one dense N x N array."""
    import tracemalloc

    import scipy.sparse as sp

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"a {self.shape} sparse matrix was densified")

    for name in ("toarray", "todense"):
        monkeypatch.setattr(sp._base._spbase, name, refuse)  # every SciPy sparse class inherits them
    n = 20_000
    x = clustered_features(n=n, n_centres=1000, dim=128, seed=1)
    tracemalloc.start()
    try:
        dist = jaccard_distance(x, neighbour_search="ivf")
        labels = dbscan_labels(dist, eps=0.6)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sp.issparse(dist) and dist.nnz < 400 * n  # about 260 per row: 1.3% of the N x N pairs
    assert labels.shape == (n,) and labels.max() > 100
    # About 130 MB; a dense N x N bool array alone would be 400 MB, a float32 one 1.6 GB.
    assert peak < n * n / 2, f"peak traced allocation {peak / 1e6:.0f} MB: something dense N x N was built"
