"""Exact k-nearest-neighbour search by inner product (cosine for L2-normalised rows) with faiss.

The k-reciprocal Jaccard distance (``reidlab.cluster.jaccard``, docs/methods.md, section 2) starts from these lists.
faiss runs on the GPU when the installed build has GPU support and a GPU is visible (the database sharded
over all visible GPUs when there are several), on the CPU otherwise.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

try:
    import faiss
except ImportError as error:  # faiss comes as an extra: faiss-cpu or faiss-gpu
    raise ImportError(
        "reidlab needs faiss for its neighbour search and it is not installed: run `pip install -e '.[cpu]'` "
        "(or '.[gpu]' on a CUDA machine), or `make setup`, which picks the right one"
    ) from error

logger = logging.getLogger(__name__)

__all__ = ["as_float32_array", "faiss_gpu_available", "knn_search"]


def as_float32_array(features: np.ndarray | torch.Tensor) -> np.ndarray:
    """A C-contiguous float32 NumPy view or copy of ``features`` (N, D), on the CPU.

    Args:
        features: NumPy array or torch tensor on any device (gradients are ignored).

    Raises:
        ValueError: ``features`` is not 2-D, or holds NaN or infinite values.
    """
    if isinstance(features, torch.Tensor):
        features = features.detach().to(device="cpu", dtype=torch.float32).numpy()
    features = np.ascontiguousarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise ValueError(f"features must be a 2-D (N, D) array, got shape {features.shape}")
    finite = np.isfinite(features).all(axis=1)
    if not finite.all():
        rows = np.flatnonzero(~finite)
        raise ValueError(f"features hold NaN or inf in {len(rows)} of {len(features)} rows (first: row {rows[0]}): "
                         "a diverged model or a broken image; neighbours and distances are undefined for them")
    return features


def faiss_gpu_available() -> bool:
    """Whether the installed faiss build has GPU support and sees at least one GPU."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def knn_search(
    features: np.ndarray | torch.Tensor, k: int, *, use_gpu: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar rows of ``features`` for every row, by exact inner product.

    For L2-normalised rows the inner product is the cosine similarity, and the order is the same as by
    squared Euclidean distance (the authors' code searches a ``faiss.IndexFlatL2``; docs/methods.md, section 2 step 1).

    Rank 0 is always the sample itself. faiss breaks ties arbitrarily, so with exact duplicates a twin
    can come first or, with more than ``k`` twins, the sample can be missing from its own list. Where that
    happens the sample is moved to rank 0 and the others keep their relative order (those ranked before
    it move down one rank; if it was missing, the last neighbour is dropped).

    On one GPU the search runs in a ``faiss.GpuIndexFlatIP``; with several visible GPUs a
    ``faiss.IndexFlatIP`` is sharded over all of them (``faiss.index_cpu_to_all_gpus`` with
    ``GpuMultipleClonerOptions.shard``: each GPU holds N / n_gpus rows and the partial results are
    merged), so a database that does not fit one GPU still can be searched; on the CPU ``faiss.knn``
    runs the same exhaustive search as ``faiss.IndexFlatIP.search`` without copying the database into
    an index (which would cost another N x D float32 array).

    Args:
        features: (N, D) NumPy array or torch tensor on any device; it is copied to CPU float32.
        k: number of neighbours per row, the sample itself included (1 <= k <= N).
        use_gpu: ``None`` uses a GPU when faiss can (see :func:`faiss_gpu_available`), ``True`` requires
            one, ``False`` stays on the CPU.

    Returns:
        similarities (N, k) float32 in decreasing order after rank 0, and indices (N, k) int64.

    Raises:
        ValueError: ``features`` is not 2-D, or ``k`` is out of range.
        RuntimeError: ``use_gpu=True`` but faiss has no GPU support or sees no GPU.
    """
    x = as_float32_array(features)
    n, dim = x.shape
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of samples N={n}, got k={k}")
    gpu = faiss_gpu_available()
    if use_gpu and not gpu:
        raise RuntimeError(
            "use_gpu=True but faiss has no GPU support or sees no GPU "
            "(install faiss-gpu on a machine with CUDA, or pass use_gpu=None or False)"
        )
    if gpu and use_gpu is not False:
        similarities, indices = _gpu_search(x, k)
    else:
        similarities, indices = faiss.knn(x, x, k, metric=faiss.METRIC_INNER_PRODUCT)
    return _self_first(x, similarities, indices.astype(np.int64, copy=False))


def _gpu_search(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product search of ``x`` (N, D) in itself on the GPU(s): one GPU, or shards on all."""
    if faiss.get_num_gpus() > 1:
        options = faiss.GpuMultipleClonerOptions()
        options.shard = True  # split the rows over the GPUs rather than copy them to each
        index = faiss.index_cpu_to_all_gpus(faiss.IndexFlatIP(x.shape[1]), co=options)  # holds its resources
    else:
        resources = faiss.StandardGpuResources()  # must outlive the index: a local of this function
        index = faiss.GpuIndexFlatIP(resources, x.shape[1])
    index.add(x)
    return index.search(x, k)


def _self_first(x: np.ndarray, similarities: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move every sample to rank 0 of its own list, keeping the order of the other neighbours."""
    n, k = indices.shape
    rows = np.arange(n)
    misplaced = np.flatnonzero(indices[:, 0] != rows)
    if misplaced.size == 0:
        return similarities, indices
    logger.debug("moving %d samples to rank 0 of their own neighbour list (exact duplicates)", misplaced.size)
    sub_idx, sub_sim = indices[misplaced], similarities[misplaced]
    is_self = sub_idx == misplaced[:, None]
    found = is_self.any(axis=1)
    # The column to drop: where the sample sits, or the last one when it is missing.
    drop = np.where(found, is_self.argmax(axis=1), k - 1)
    keep = np.ones_like(is_self)
    keep[np.arange(misplaced.size), drop] = False
    self_sim = np.where(
        found,
        sub_sim[np.arange(misplaced.size), drop],
        np.einsum("ij,ij->i", x[misplaced], x[misplaced]),
    ).astype(np.float32)
    indices = indices.copy()
    similarities = similarities.copy()
    indices[misplaced] = np.column_stack([misplaced, sub_idx[keep].reshape(-1, k - 1)])
    similarities[misplaced] = np.column_stack([self_sim, sub_sim[keep].reshape(-1, k - 1)])
    return similarities, indices
