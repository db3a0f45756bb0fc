"""Exact kNN by inner product: parity with brute-force NumPy, self at rank 0, inputs, errors."""

import faiss
import numpy as np
import pytest
import torch

from reidlab.cluster import neighbors
from reidlab.cluster.neighbors import faiss_gpu_available, knn_search


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


class FakeGpuFaiss:
    """faiss with ``num_gpus`` pretend GPUs: its GPU indexes are real CPU ``IndexFlatIP``s, and every
    constructor the search goes through is recorded in ``calls``."""

    METRIC_INNER_PRODUCT = faiss.METRIC_INNER_PRODUCT

    def __init__(self, num_gpus):
        self.num_gpus = num_gpus
        self.calls = []

    def get_num_gpus(self):
        return self.num_gpus

    def knn(self, *args, **kwargs):
        self.calls.append("knn")
        return faiss.knn(*args, **kwargs)

    def IndexFlatIP(self, dim):  # noqa: N802 (faiss's name)
        self.calls.append("IndexFlatIP")
        return faiss.IndexFlatIP(dim)

    def StandardGpuResources(self):  # noqa: N802
        self.calls.append("StandardGpuResources")
        return object()

    def GpuIndexFlatIP(self, resources, dim):  # noqa: N802
        self.calls.append("GpuIndexFlatIP")
        return faiss.IndexFlatIP(dim)

    class GpuMultipleClonerOptions:
        shard = False

    def index_cpu_to_all_gpus(self, index, co=None, ngpu=-1):
        self.calls.append(f"index_cpu_to_all_gpus(shard={co.shard})")
        return index


@pytest.mark.parametrize(
    "num_gpus, expected_calls",
    [
        (0, ["knn"]),
        (1, ["StandardGpuResources", "GpuIndexFlatIP"]),
        (4, ["IndexFlatIP", "index_cpu_to_all_gpus(shard=True)"]),
    ],
)
def test_gpu_index_choice_by_number_of_gpus(monkeypatch, num_gpus, expected_calls):
    fake = FakeGpuFaiss(num_gpus)
    monkeypatch.setattr(neighbors, "faiss", fake)
    x = unit_rows(200, 16, seed=3)
    assert faiss_gpu_available() == (num_gpus > 0)
    similarities, indices = knn_search(x, 7)
    assert fake.calls == expected_calls
    expected = np.argsort(-(x @ x.T), axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(indices, expected)
    # use_gpu=False stays on the CPU whatever is visible.
    fake.calls.clear()
    knn_search(x, 7, use_gpu=False)
    assert fake.calls == ["knn"]
