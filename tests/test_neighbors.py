"""kNN by inner product: exact parity with brute-force NumPy, self at rank 0, inputs, errors; the approximate
searches' recall against exact, exact similarities, determinism, pseudo-label parity, the auto choice."""

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


# ----------------------------------------------------------------------------- approximate search
def identities(n=4000, n_ids=200, dim=96, latent=24, seed=0):
    """Unit rows of ``n_ids`` identities in a ``latent``-d subspace plus isotropic noise, and their labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_ids, n)
    basis = np.linalg.qr(rng.standard_normal((dim, latent)))[0].T
    centres = rng.standard_normal((n_ids, latent))
    x = (centres[labels] + 0.45 * rng.standard_normal((n, latent))) @ basis + 0.3 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def recall(approx, exact):
    return np.mean([len(np.intersect1d(a, e)) / len(e) for a, e in zip(approx, exact)])


@pytest.mark.parametrize("method, min_recall", [("ivf", 0.97), ("approximate", 0.97), ("hnsw", 0.97)])
def test_approximate_lists_recall_and_exact_similarities(method, min_recall):
    x, _ = identities()
    _, exact = knn_search(x, 20, use_gpu=False)
    similarities, indices = knn_search(x, 20, method=method, pca_dim=32, candidates=2, use_gpu=False)
    assert indices.shape == similarities.shape == (len(x), 20) and indices.dtype == np.int64
    assert recall(indices, exact) >= min_recall
    np.testing.assert_array_equal(indices[:, 0], np.arange(len(x)))
    assert all(len(set(row)) == 20 for row in indices.tolist())
    # The similarities are the exact inner products, in decreasing order: only recall is approximate.
    np.testing.assert_allclose(similarities, np.einsum("nd,nkd->nk", x, x[indices]), atol=1e-5)
    assert (np.diff(similarities, axis=1) <= 1e-6).all()


def test_approximate_is_deterministic_and_seeded():
    x, _ = identities(n=3000)
    first = knn_search(x, 10, method="ivf", pca_dim=32, nprobe=2, candidates=1, seed=1)
    again = knn_search(x, 10, method="ivf", pca_dim=32, nprobe=2, candidates=1, seed=1)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    # Without PCA (pca_dim=None) the index holds the rows themselves; the lists are at least as good.
    _, exact = knn_search(x, 10)
    _, no_pca = knn_search(x, 10, method="ivf", pca_dim=None, nprobe=2, candidates=1, seed=1)
    assert recall(no_pca, exact) >= recall(first[1], exact) - 0.01


def test_approximate_pseudo_labels_match_exact():
    """kNN -> Jaccard -> DBSCAN on the approximate lists: the pseudo-labels equal the exact ones (ARI)."""
    from sklearn.metrics import adjusted_rand_score

    from reidlab.cluster import dbscan_labels, jaccard_distance

    x, truth = identities()
    labels = {method: dbscan_labels(jaccard_distance(x, neighbour_search=method), eps=0.6)
              for method in ("exact", "ivf")}
    assert adjusted_rand_score(labels["exact"], labels["ivf"]) >= 0.98
    assert abs(adjusted_rand_score(truth, labels["exact"]) - adjusted_rand_score(truth, labels["ivf"])) <= 0.01
    assert adjusted_rand_score(truth, labels["exact"]) > 0.5


def test_short_candidate_lists_fall_back_to_exact():
    """A query whose probed IVF lists hold fewer than k rows is searched exactly, never padded."""
    x, _ = identities(n=1000, n_ids=400)
    similarities, indices = knn_search(x, 30, method="ivf", pca_dim=16, nprobe=1, candidates=1)
    assert np.isfinite(similarities).all() and (indices >= 0).all()
    assert all(len(set(row)) == 30 for row in indices.tolist())


def test_auto_choice():
    assert neighbors.resolve_method("auto", neighbors.AUTO_EXACT_MAX_N - 1) == "exact"
    assert neighbors.resolve_method("auto", neighbors.AUTO_EXACT_MAX_N) == "hnsw"
    assert neighbors.resolve_method("approximate", 10) == "hnsw"
    assert neighbors.resolve_method("ivf", 10) == "ivf"
    x = unit_rows(300, 16)
    for got, want in zip(knn_search(x, 5, method="auto"), knn_search(x, 5)):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="method must be one of 'exact', 'approximate', 'ivf', 'hnsw', 'auto', "
                                         "got 'fast'"):
        knn_search(x, 5, method="fast")
    with pytest.raises(ValueError, match="nprobe must be a positive integer, got 0"):
        knn_search(x, 5, method="ivf", nprobe=0)
    with pytest.raises(ValueError, match="pca_dim must be a positive integer or None"):
        knn_search(x, 5, method="ivf", pca_dim=0)


def test_approximate_on_a_gpu_moves_the_ivf_index(monkeypatch):
    """With a GPU visible, the IVF index goes to GPU 0 (faiss.index_cpu_to_gpu); HNSW stays on the CPU."""
    calls = []

    class GpuFaiss:
        def __getattr__(self, name):
            return getattr(faiss, name)

        def get_num_gpus(self):
            return 1

        def StandardGpuResources(self):
            calls.append("StandardGpuResources")
            return object()

        def index_cpu_to_gpu(self, resources, device, index):
            calls.append(f"index_cpu_to_gpu({device}, {type(index).__name__})")
            return index

    monkeypatch.setattr(neighbors, "faiss", GpuFaiss())
    x, _ = identities(n=2000)
    knn_search(x, 10, method="ivf", pca_dim=32)
    assert calls == ["StandardGpuResources", "index_cpu_to_gpu(0, IndexIVFFlat)"]
    calls.clear()
    knn_search(x, 10, method="hnsw", pca_dim=32)
    knn_search(x, 10, method="ivf", pca_dim=32, use_gpu=False)
    assert calls == []
