"""Exact kNN by inner product: parity with brute-force NumPy, self at rank 0, inputs, errors."""

import numpy as np
import pytest
import torch

from reidlab.neighbors import faiss_gpu_available, knn_search


def unit_rows(n, dim, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_matches_brute_force():
    x = unit_rows(500, 32)
    similarities, indices = knn_search(x, 12, use_gpu=False)
    all_similarities = x @ x.T
    expected = np.argsort(-all_similarities, axis=1, kind="stable")[:, :12]
    assert indices.dtype == np.int64 and similarities.dtype == np.float32
    assert indices.shape == similarities.shape == (500, 12)
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(similarities, np.take_along_axis(all_similarities, expected, axis=1), atol=1e-5)
    assert (np.diff(similarities, axis=1) <= 0).all()


def test_self_first_with_exact_duplicates():
    base = unit_rows(100, 16, seed=1)
    # Pairs of twins, and one vector 8 times with k = 5: it can be missing from its own list.
    x = np.concatenate([base, base[:30], np.repeat(base[40:41], 7, axis=0)])
    similarities, indices = knn_search(x, 5)
    np.testing.assert_array_equal(indices[:, 0], np.arange(len(x)))
    assert all(len(set(row)) == 5 for row in indices.tolist())
    all_similarities = x @ x.T
    np.testing.assert_allclose(similarities, np.take_along_axis(all_similarities, indices, axis=1), atol=1e-5)
    # Apart from the order of tied twins, the lists are the brute-force top 5.
    kth_best = -np.sort(-all_similarities, axis=1)[:, 4]
    assert (similarities >= kth_best[:, None] - 1e-5).all()


def test_torch_input_and_errors():
    x = unit_rows(50, 8)
    expected = knn_search(x, 4)
    for got, want in zip(knn_search(torch.from_numpy(x).double().requires_grad_(), 4), expected):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="k must be between 1 and the number of samples N=50, got k=51"):
        knn_search(x, 51)
    with pytest.raises(ValueError, match=r"2-D \(N, D\)"):
        knn_search(x[0], 1)
    if not faiss_gpu_available():
        with pytest.raises(RuntimeError, match="use_gpu=True but faiss has no GPU support"):
            knn_search(x, 4, use_gpu=True)
