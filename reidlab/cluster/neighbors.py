"""k-nearest-neighbour search by inner product (cosine for L2-normalised rows) with faiss: exact, or
approximate for large N.

The k-reciprocal Jaccard distance (``reidlab.cluster.jaccard``, docs/methods.md, section 2) starts from these lists.
The exact search is exhaustive (cost N^2 D); the approximate one (docs/methods.md, section 2, "Neighbour search at
scale") finds candidates in an inverted-file (IVF) or HNSW index over PCA-reduced vectors and ranks them by
their exact inner product, so its cost grows about linearly with N. faiss runs on the GPU when the installed
build has GPU support and a GPU is visible (the exact database sharded over all visible GPUs when there are
several), on the CPU otherwise.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.linalg
import torch

try:
    import faiss
except ImportError as error:  # faiss comes as an extra: faiss-cpu or faiss-gpu
    raise ImportError(
        "reidlab needs faiss for its neighbour search and it is not installed: run `pip install -e '.[cpu]'` "
        "(or '.[gpu]' on a CUDA machine), or `make setup`, which picks the right one"
    ) from error

logger = logging.getLogger(__name__)

__all__ = ["AUTO_EXACT_MAX_N", "NEIGHBOUR_SEARCHES", "as_float32_array", "faiss_gpu_available", "knn_search",
           "resolve_method"]

# Values of ``knn_search(method=...)``: "approximate" is an alias of "hnsw".
NEIGHBOUR_SEARCHES = ("exact", "approximate", "ivf", "hnsw", "auto")
# "auto" searches exactly below this N and with "hnsw" from it on. Measured on 2 shared CPU cores, 2048-d
# clustered features, k = 30 (benchmarks/bench_scale.py): the approximate search is about 2x faster than the
# exact one at 30k and the gap grows as N; 50k keeps Market-1501 (12,936) and MSMT17 (32,621) exact.
AUTO_EXACT_MAX_N = 50_000
PCA_DIM = 128  # dimensions kept by the PCA in front of the approximate index (when D is larger)
_TRAIN_PER_LIST = 40  # k-means training rows per IVF list (faiss warns below 39)
_KMEANS_ITERATIONS = 10  # of the IVF k-means (faiss's default 25 costs 2.5x more for the same recall here)
_QUERY_CHUNK = 8192  # queries searched at once in the approximate index
_HNSW_LINKS = 16  # M of HNSW: links per node and layer (32 on layer 0)
_PCA_SAMPLE = 20_000  # rows the PCA is fitted on


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


def resolve_method(method: str, n: int) -> str:
    """The search ``knn_search(method=...)`` runs for N = ``n`` samples: "exact", "ivf" or "hnsw".

    "auto" is "exact" below :data:`AUTO_EXACT_MAX_N` samples and "hnsw" from there on; "approximate" is "hnsw".

    Raises:
        ValueError: ``method`` is not one of :data:`NEIGHBOUR_SEARCHES`.
    """
    if method not in NEIGHBOUR_SEARCHES:
        raise ValueError(f"method must be one of {', '.join(map(repr, NEIGHBOUR_SEARCHES))}, got {method!r}")
    if method == "auto":
        return "exact" if n < AUTO_EXACT_MAX_N else "hnsw"
    return "hnsw" if method == "approximate" else method


def knn_search(
    features: np.ndarray | torch.Tensor,
    k: int,
    *,
    method: str = "exact",
    use_gpu: bool | None = None,
    pca_dim: int | None = PCA_DIM,
    nprobe: int = 16,
    candidates: int = 1,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar rows of ``features`` for every row, by inner product: exact or approximate.

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

    The approximate searches ("hnsw", "ivf"; docs/methods.md, section 2, "Neighbour search at scale") index
    PCA-reduced copies of the rows (the ``pca_dim`` principal axes of a seeded sample of 20,000 rows), the
    only copy of the data they hold: N x 128 float32 is 0.5 GB for N = 1M against 8 GB for the 2048-d
    features; rows are reduced chunk by chunk when added and when searched. "hnsw" is
    ``faiss.IndexHNSWFlat`` (Malkov and Yashunin, "Efficient and robust approximate nearest neighbor search
    using Hierarchical Navigable Small World graphs", TPAMI 2018) with M = 16 links and a search depth
    efSearch of ``max(4 * nprobe, candidates * k)``; "ivf" is ``faiss.IndexIVFFlat`` (Jegou et al., "Product
    quantization for nearest neighbor search", TPAMI 2011, section 4) with about 4 sqrt(N) k-means lists,
    ``nprobe`` of them scanned per query. Each returns ``candidates * k`` candidates per query (squared L2
    in the reduced space), which are re-ranked by their exact inner product on ``features``
    (``faiss.fvec_inner_products_by_idx``, in place); the returned similarities are therefore exact and
    only the recall of the lists is approximate. A query with fewer than k candidates is searched exactly.
    The PCA sample, the k-means training sample and seed come from ``seed``, so "ivf" is deterministic;
    "hnsw" inserts rows on several threads, so its graph (and a few lists) can differ from run to run
    unless faiss runs on one thread (``faiss.omp_set_num_threads(1)``). HNSW finds more of the true
    neighbours than IVF at the same cost on clustered re-ID-like features (benchmarks/bench_scale.py), hence
    the default. On a GPU "ivf" runs on GPU 0 (``faiss.index_cpu_to_gpu``); "hnsw" has no GPU version and
    stays on the CPU.

    Args:
        features: (N, D) NumPy array or torch tensor on any device; it is copied to CPU float32.
        k: number of neighbours per row, the sample itself included (1 <= k <= N).
        method: "exact" (default), "hnsw" (alias "approximate"), "ivf", or "auto": exact below
            :data:`AUTO_EXACT_MAX_N` samples, "hnsw" from there on (:func:`resolve_method`).
        use_gpu: ``None`` uses a GPU when faiss can (see :func:`faiss_gpu_available`), ``True`` requires
            one, ``False`` stays on the CPU.
        pca_dim: dimensions the approximate index keeps when D is larger; ``None`` keeps all D (the index
            then holds a second full copy of the features).
        nprobe: IVF lists scanned per query ("ivf"); HNSW's search depth efSearch is ``4 * nprobe``.
        candidates: the approximate index returns ``candidates * k`` neighbours (capped at N) per query,
            from which the exact re-ranking keeps k.
        seed: seed of the PCA and k-means training samples and of faiss's k-means.

    Returns:
        similarities (N, k) float32 in decreasing order after rank 0, and indices (N, k) int64.

    Raises:
        ValueError: ``features`` is not 2-D, ``k`` or an option is out of range, or ``method`` is unknown.
        RuntimeError: ``use_gpu=True`` but faiss has no GPU support or sees no GPU.
    """
    x = as_float32_array(features)
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of samples N={n}, got k={k}")
    method = resolve_method(method, n)
    for name, value in (("nprobe", nprobe), ("candidates", candidates)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if pca_dim is not None and (not isinstance(pca_dim, (int, np.integer)) or pca_dim < 1):
        raise ValueError(f"pca_dim must be a positive integer or None (no PCA), got {pca_dim!r}")
    gpu = faiss_gpu_available()
    if use_gpu and not gpu:
        raise RuntimeError(
            "use_gpu=True but faiss has no GPU support or sees no GPU "
            "(install faiss-gpu on a machine with CUDA, or pass use_gpu=None or False)"
        )
    on_gpu = gpu and use_gpu is not False
    if method != "exact":
        similarities, indices = _approximate_search(
            x, k, method=method, on_gpu=on_gpu, pca_dim=pca_dim, nprobe=nprobe, candidates=candidates, seed=seed
        )
    elif on_gpu:
        similarities, indices = _gpu_search(x, k)
    else:
        similarities, indices = faiss.knn(x, x, k, metric=faiss.METRIC_INNER_PRODUCT)
    return _self_first(x, similarities, indices.astype(np.int64, copy=False))


def _approximate_search(
    x: np.ndarray, k: int, *, method: str, on_gpu: bool, pca_dim: int | None, nprobe: int, candidates: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidates from an IVF-Flat or HNSW index over PCA-reduced ``x`` (N, D), re-ranked exactly (see knn_search).

    The rows are reduced chunk by chunk when they are added and again when they are searched, so the index
    holds the only reduced copy. A query whose probed lists hold fewer than ``k`` rows is searched exactly.
    """
    n, dim = x.shape
    rng = np.random.default_rng(seed)
    n_lists = int(np.clip(round(4 * np.sqrt(n)), 1, max(1, n // _TRAIN_PER_LIST)))
    train = x[np.sort(rng.choice(n, size=min(n, max(_TRAIN_PER_LIST * n_lists, _PCA_SAMPLE)), replace=False))]
    reduce = _identity
    if pca_dim is not None and pca_dim < dim:
        projection = _pca_projection(train[:_PCA_SAMPLE], pca_dim)

        def reduce(rows: np.ndarray) -> np.ndarray:
            return rows @ projection

        train = reduce(train)
    width = train.shape[1]
    resources = None
    if method == "hnsw":
        index = faiss.IndexHNSWFlat(width, _HNSW_LINKS)
        index.hnsw.efSearch = max(4 * nprobe, candidates * k)
    else:
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(width), width, n_lists, faiss.METRIC_L2)
        index.cp.seed = seed
        index.cp.niter = _KMEANS_ITERATIONS
        index.train(train)
        index.nprobe = min(nprobe, n_lists)
        if on_gpu:
            resources = faiss.StandardGpuResources()  # must outlive the GPU index: a local of this function
            index = faiss.index_cpu_to_gpu(resources, 0, index)
    del train
    for start in range(0, n, _QUERY_CHUNK):
        index.add(reduce(x[start:start + _QUERY_CHUNK]))
    n_candidates = min(n, candidates * k)
    indices = np.empty((n, k), dtype=np.int64)
    similarities = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, _QUERY_CHUNK):
        stop = min(n, start + _QUERY_CHUNK)
        _, found = index.search(reduce(x[start:stop]), n_candidates)
        similarities[start:stop], indices[start:stop] = _rerank(x, start, found, k)
    short = np.flatnonzero(np.isneginf(similarities[:, -1]))
    if short.size:
        logger.debug("%d queries had fewer than k=%d candidates: searched exactly", short.size, k)
        similarities[short], short_indices = faiss.knn(x[short], x, k, metric=faiss.METRIC_INNER_PRODUCT)
        indices[short] = short_indices
    logger.debug("%s search: N=%d, %d-d index, %d candidates per query", method, n, width, n_candidates)
    return similarities, indices


def _identity(x: np.ndarray) -> np.ndarray:
    return x


def _pca_projection(sample: np.ndarray, dim: int) -> np.ndarray:
    """(D, dim) float32: the ``dim`` principal axes of ``sample`` (M, D), by decreasing variance.

    Squared L2 distances between projected rows are those of the centred projections, so the mean is not
    subtracted. Only the top ``dim`` eigenvectors of the D x D covariance are computed (LAPACK ``syevr``),
    a few seconds for D = 2048 where a full decomposition (``faiss.PCAMatrix``) takes ten times longer.
    """
    centred = sample - sample.mean(axis=0)
    covariance = centred.T @ centred
    _, axes = scipy.linalg.eigh(covariance, subset_by_index=(sample.shape[1] - dim, sample.shape[1] - 1))
    return np.ascontiguousarray(axes[:, ::-1], dtype=np.float32)


def _rerank(x: np.ndarray, start: int, found: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` candidates ``found`` (Q, C) of the queries ``x[start:start + Q]`` with the largest exact
    inner product, by decreasing similarity; faiss's missing results (-1) rank last, at -inf."""
    queries, n_found = found.shape
    missing = found < 0
    found = np.where(missing, 0, found)  # any valid row: its score is masked below
    found = np.ascontiguousarray(found, dtype=np.int64)
    scores = np.empty(found.shape, dtype=np.float32)
    queries_x = x[start:start + queries]  # a view: x is C-contiguous
    # scores[i, j] = x[start + i] . x[found[i, j]], read in place (no gathered copy), in parallel
    faiss.fvec_inner_products_by_idx(faiss.swig_ptr(scores), faiss.swig_ptr(queries_x), faiss.swig_ptr(x),
                                     faiss.swig_ptr(found), x.shape[1], queries, n_found)
    scores[missing] = -np.inf
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < n_found else np.argsort(-scores, axis=1)
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    return np.take_along_axis(top_scores, order, axis=1), np.take_along_axis(found, top, axis=1)


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
