"""k-reciprocal Jaccard distance: parity with a naive loop version of the reference (docs/methods.md, section 2)."""

import logging

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from reidlab.cluster.jaccard import entries_within, jaccard_distance
from reidlab.cluster.neighbors import knn_search


def clustered_features(n=300, n_centres=20, dim=64, seed=0):
    """Unit rows around random unit centres; same-centre cosine about 0.75."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_centres, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = rng.standard_normal((n, dim)) * np.sqrt(1 / 3 / dim)
    x = centres[rng.integers(0, n_centres, n)] + noise
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def naive_jaccard(x, k1, k2, initial_rank=None):
    """docs/methods.md, section 2 written as the authors' loops over dense float32 matrices."""
    n = len(x)
    if initial_rank is None:
        initial_rank = np.argsort(-(x @ x.T), axis=1, kind="stable")[:, :k1]

    def k_reciprocal(i, k):
        forward = initial_rank[i, : k + 1]
        backward = initial_rank[forward, : k + 1]
        return forward[np.where(backward == i)[0]]

    half = int(np.around(k1 / 2))
    reciprocal = [k_reciprocal(i, k1) for i in range(n)]
    reciprocal_half = [k_reciprocal(i, half) for i in range(n)]
    v = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        expansion = reciprocal[i]
        for candidate in reciprocal[i]:
            candidate_set = reciprocal_half[candidate]
            if len(np.intersect1d(candidate_set, reciprocal[i])) > 2 / 3 * len(candidate_set):
                expansion = np.append(expansion, candidate_set)
        expansion = np.unique(expansion)
        logits = -(2 - 2 * (x[expansion] @ x[i]))
        weights = np.exp(logits - logits.max())
        v[i, expansion] = weights / weights.sum()
    if k2 != 1:
        v = np.stack([v[initial_rank[i, :k2]].mean(axis=0) for i in range(n)])
    dist = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        minima = np.minimum(v[i][None, :], v).sum(axis=1)
        dist[i] = 1 - minima / (2 - minima)
    dist[dist < 0] = 0
    return dist


def densify(dist):
    """A sparse Jaccard distance as a dense array: pairs that are not stored are at distance 1."""
    dense = np.ones(dist.shape, dtype=np.float32)
    coo = dist.tocoo()
    dense[coo.row, coo.col] = coo.data
    return dense


@pytest.fixture(scope="module")
def features():
    return clustered_features()


@pytest.mark.parametrize("k1, k2", [(30, 6), (30, 1), (5, 2)])
def test_matches_naive_reference(features, k1, k2):
    expected = naive_jaccard(features, k1, k2)
    sparse = jaccard_distance(features, k1, k2)
    dense = jaccard_distance(features, k1, k2, output="dense")
    assert sp.isspmatrix_csr(sparse) and sparse.dtype == np.float32
    assert dense.dtype == np.float32 and dense.shape == (300, 300)
    np.testing.assert_allclose(densify(sparse), expected, atol=1e-5)
    np.testing.assert_allclose(dense, expected, atol=1e-5)
    # Stored entries are exactly the pairs with m > 0 (distance < 1 in the reference).
    stored = np.zeros((300, 300), dtype=bool)
    stored[np.repeat(np.arange(300), np.diff(sparse.indptr)), sparse.indices] = True
    np.testing.assert_array_equal(stored, (expected < 1) | np.eye(300, dtype=bool))
    assert 300 < sparse.nnz < 300**2 and (expected < 0.6).sum() > 300, "the test data should give some clusters"


def test_duplicate_features_match_naive_reference():
    base = clustered_features(n=200, seed=1)
    # Pairs and triples of exact duplicates, and one vector repeated more often than k1 = 10.
    x = np.concatenate([base, base[:30], base[:10], np.repeat(base[50:51], 12, axis=0)])
    _, initial_rank = knn_search(x, 10)
    assert (initial_rank[:, 0] == np.arange(len(x))).all()
    expected = naive_jaccard(x, 10, 6, initial_rank=initial_rank)
    np.testing.assert_allclose(jaccard_distance(x, 10, 6, output="dense"), expected, atol=1e-5)


def test_invariants(features):
    dist = jaccard_distance(features)
    np.testing.assert_array_equal(dist.diagonal(), 0)
    assert dist.diagonal().size == 300 and (np.diff(dist.indptr) > 0).all()
    assert dist.data.min() >= 0 and dist.data.max() <= 1
    assert abs(dist - dist.T).max() == 0
    assert dist.has_sorted_indices


def test_torch_input_and_unnormalised_rows(features, caplog):
    expected = jaccard_distance(features, output="dense")
    np.testing.assert_array_equal(jaccard_distance(torch.from_numpy(features), output="dense"), expected)
    scaled = features * np.linspace(0.5, 3, len(features), dtype=np.float32)[:, None]
    with caplog.at_level(logging.WARNING, logger="reidlab.cluster.jaccard"):
        result = jaccard_distance(scaled, output="dense")
    assert "not L2-normalised" in caplog.text
    np.testing.assert_allclose(result, expected, atol=1e-5)


def test_errors(features):
    with pytest.raises(ValueError, match=r"2-D \(N, D\)"):
        jaccard_distance(features[0])
    bad = features.copy()
    bad[3, 1] = np.nan
    bad[7, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or inf in 2 of 300 rows"):
        jaccard_distance(bad)
    with pytest.raises(ValueError, match="N=20 samples with k1=30; use a smaller k1"):
        jaccard_distance(features[:20])
    with pytest.raises(ValueError, match="k2 must be an integer between 1 and k1=30, got 31"):
        jaccard_distance(features, k2=31)
    with pytest.raises(ValueError, match="output must be 'sparse' or 'dense', got 'full'"):
        jaccard_distance(features, output="full")
    zero = features.copy()
    zero[0] = 0
    with pytest.raises(ValueError, match="1 all-zero rows"):
        jaccard_distance(zero)


def test_precomputed_neighbours_and_neighbour_search(features):
    """Lists from knn_search (any k >= k1) give the same distance as the search inside; bad ones are named."""
    expected = jaccard_distance(features)
    for neighbours in (knn_search(features, 30), knn_search(features, 40)):
        got = jaccard_distance(features, neighbours=neighbours)
        assert (got != expected).nnz == 0
    # "auto" is exact at this size.
    assert (jaccard_distance(features, neighbour_search="auto") != expected).nnz == 0
    with pytest.raises(ValueError, match=r"neighbours must be \(similarities, indices\) of shape \(N=300, >= k1=30\)"):
        jaccard_distance(features, neighbours=knn_search(features, 20))
    with pytest.raises(ValueError, match="method must be one of"):
        jaccard_distance(features, neighbour_search="fast")


def test_max_distance_keeps_the_pairs_dbscan_needs(features):
    from reidlab.cluster.dbscan import dbscan_labels

    full = jaccard_distance(features)
    cut = jaccard_distance(features, max_distance=0.6)
    assert cut.nnz == np.count_nonzero(full.data <= 0.6) < full.nnz
    dense_full, dense_cut = densify(full), densify(cut)
    kept = dense_full <= 0.6
    np.testing.assert_array_equal(dense_cut[kept], dense_full[kept])
    assert (dense_cut[~kept] == 1).all()
    np.testing.assert_array_equal(dbscan_labels(cut, eps=0.6), dbscan_labels(full, eps=0.6))
    with pytest.raises(ValueError, match=r"max_distance must be in \(0, 1\], got 0"):
        jaccard_distance(features, max_distance=0)
    with pytest.raises(ValueError, match="use output='sparse' or max_distance=1"):
        jaccard_distance(features, max_distance=0.5, output="dense")


def identical(a, b):
    """Two CSR matrices with the same stored entries, in the same order, bit for bit."""
    return (a.shape == b.shape and np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
            and np.array_equal(a.data, b.data))


@pytest.mark.parametrize("max_distance", [1.0, 0.6])
def test_chunked_rows_give_the_same_distance(max_distance):
    """Every stage after the kNN search runs chunk_rows rows at a time; the result does not depend on it."""
    base = clustered_features(n=240, seed=2)
    x = np.concatenate([base, base[:20]])  # exact duplicates: zero distances off the diagonal
    one_chunk = jaccard_distance(x, 10, 4, max_distance=max_distance, chunk_rows=len(x))
    assert sp.isspmatrix_csr(one_chunk) and one_chunk.has_sorted_indices
    assert (one_chunk.data == 0).sum() > len(x), "duplicates should store zero distances off the diagonal"
    for chunk_rows in (1, 7, 64, 259, 10_000):
        chunked = jaccard_distance(x, 10, 4, max_distance=max_distance, chunk_rows=chunk_rows)
        assert identical(chunked, one_chunk), f"chunk_rows={chunk_rows}"
    np.testing.assert_allclose(densify(one_chunk)[densify(one_chunk) <= max_distance],
                               naive_jaccard(x, 10, 4, knn_search(x, 10)[1])[densify(one_chunk) <= max_distance],
                               atol=1e-5)


def test_chunked_rows_with_many_pair_blocks(monkeypatch):
    """Rows split into many blocks of pairs (a few hundred pairs each), inside and across row chunks."""
    x = clustered_features(n=400, n_centres=12, seed=3)
    expected = jaccard_distance(x, 20, 6)
    monkeypatch.setattr("reidlab.cluster.jaccard._PAIRS_PER_BLOCK", 300)
    for chunk_rows in (13, 400):
        got = jaccard_distance(x, 20, 6, chunk_rows=chunk_rows)
        assert identical(got, expected)
        cut = jaccard_distance(x, 20, 6, max_distance=0.5, chunk_rows=chunk_rows)
        assert identical(cut, entries_within(expected, 0.5))
    with pytest.raises(ValueError, match="chunk_rows must be a positive integer, got 0"):
        jaccard_distance(x, chunk_rows=0)
