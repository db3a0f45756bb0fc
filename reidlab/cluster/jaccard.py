"""k-reciprocal Jaccard distance (Zhong et al., "Re-ranking Person Re-identification with k-reciprocal
Encoding", CVPR 2017), as SpCL, Cluster Contrast, HHCL and SCWM compute it before DBSCAN (docs/methods.md, section 2).

The authors' ``compute_jaccard_distance`` fills dense N x N float32 matrices in Python loops. Only a small
fraction of the entries is non-zero, so this module keeps every stage sparse and vectorised:

1. kNN lists of length k1, the sample itself at rank 0 (:func:`reidlab.cluster.neighbors.knn_search`).
2. k-reciprocal sets R(i, k) = {j in kNN(i)[:k+1] : i in kNN(j)[:k+1]}, for k = k1 and k = round(k1 / 2);
   the lists hold only k1 entries, so for k = k1 the slice is in effect [:k1] (as in the reference).
3. Expansion R*(i) = R(i, k1) plus every R(c, round(k1/2)), c in R(i, k1), that shares more than 2/3 of
   its members with R(i, k1). The overlaps of all (i, c) pairs come from one sparse product.
4. V[i, j] = softmax over j in R*(i) of -(2 - 2 cos(i, j)), a sparse matrix whose rows sum to 1.
5. Local query expansion: V[i] <- mean of V[j] over the first k2 entries of kNN(i), a sparse product.
6. d(i, j) = 1 - m / (2 - m), m = sum_k min(V[i, k], V[j, k]), clipped at 0. m is non-zero only for pairs
   that share a column of V; those pairs are generated column by column (the reference's inverted
   index), each unordered pair once, and summed by SciPy's COO -> CSC conversion.

Steps 2-6 run on blocks of rows, so that no temporary array grows with N times anything larger than the
kNN lists; what is held for every row is the kNN lists, the sets, V and the result (docs/methods.md,
section 2, "Neighbour search at scale").
"""

from __future__ import annotations

import logging
import time
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from reidlab.cluster.neighbors import as_float32_array, knn_search

logger = logging.getLogger(__name__)

__all__ = ["ROWS_PER_CHUNK", "entries_within", "jaccard_distance"]

# Rows of every stage after the kNN search processed at once (jaccard_distance(chunk_rows=...)).
ROWS_PER_CHUNK = 65_536
# Pairs (i, j) generated at once when summing minima (~40 MB of working memory), at least N.
_PAIRS_PER_BLOCK = 1_000_000
# Dot products gathered at once for pairs of R*(i) that are not in kNN(i).
_DOTS_PER_BLOCK = 1024
# Rows whose norm differs from 1 by more than this are re-normalised (with a logged warning).
_NORM_TOLERANCE = 1e-3


def jaccard_distance(
    features: np.ndarray | torch.Tensor,
    k1: int = 30,
    k2: int = 6,
    *,
    use_gpu: bool | None = None,
    neighbour_search: str = "exact",
    neighbours: tuple[np.ndarray, np.ndarray] | None = None,
    max_distance: float = 1.0,
    output: Literal["sparse", "dense"] = "sparse",
    chunk_rows: int = ROWS_PER_CHUNK,
    progress: bool = False,
) -> sp.csr_matrix | np.ndarray:
    """k-reciprocal Jaccard distance between all rows of ``features`` (docs/methods.md, section 2).

    Same numbers as the authors' ``compute_jaccard_distance`` (SpCL, Cluster Contrast, HHCL) up to float32
    rounding, without any dense N x N array. The defaults k1=30, k2=6 are those of every training script of the four
    methods (``--k1 30 --k2 6``; the reference function's own default k1=20 is always overridden).

    Args:
        features: (N, D) NumPy array or torch tensor (any device), meant to be L2-normalised. Rows whose
            norm is not 1 (tolerance 1e-3) are L2-normalised with a logged warning, because the distance
            is defined on cosine similarities.
        k1: length of the kNN lists, the sample included; k-reciprocal sets use k1 and round(k1 / 2)
            (round half to even, as ``np.around`` in the reference: 30 -> 15).
        k2: number of nearest neighbours (the sample included) averaged in the local query expansion;
            1 switches it off.
        use_gpu: faiss on the GPU for the kNN search; see :func:`reidlab.cluster.neighbors.knn_search`.
        neighbour_search: the kNN search, ``method`` of :func:`reidlab.cluster.neighbors.knn_search`:
            "exact" (default), "ivf" / "approximate", "hnsw", or "auto" (exact below 50,000 samples). The
            approximate searches change only which neighbours are found; every later stage is the same.
        neighbours: the kNN lists ``(similarities, indices)`` (N, >= k1) of ``knn_search(features, k)``
            for some k >= k1, when the caller already has them; the search is then skipped (their first
            k1 columns are used).
        max_distance: store only the pairs at distance <= ``max_distance`` (in (0, 1]). DBSCAN with any
            eps <= ``max_distance`` gives the same clusters; on clustered features almost every stored pair
            is above eps = 0.6 (99% on 2048-d synthetic identities), so ``max_distance=eps`` divides the
            memory of the result by about 100 at a million images. 1 (default) stores every pair with m > 0.
        output: ``"sparse"`` returns a ``scipy.sparse.csr_matrix`` (N, N) float32 whose stored entries are
            every pair with m > 0, i.e. distance < 1, the zero diagonal and zero distances included as
            explicit entries; a pair that is not stored is at distance exactly 1. scikit-learn's
            ``DBSCAN(metric="precomputed")`` and ``NearestNeighbors`` take stored entries as the only
            neighbour candidates, so for any eps < 1 they give the same result as on the dense matrix.
            ``"dense"`` returns the full (N, N) float32 NumPy array (4 N^2 bytes: 4.3 GB for N = 32,621).
        chunk_rows: rows processed at once by every stage after the kNN search, so that their temporary
            arrays grow with ``chunk_rows``, not with N (a few hundred MB at the default and k1 = 30); the result
            does not depend on it. What is held for all N rows: the kNN lists, the sets R and R*, V in row
            and column order (about 70 entries a row at k1 = 30, k2 = 6) and the stored result.
        progress: show a progress bar over the rows of the last step.

    Returns:
        dist (N, N): symmetric, in [0, 1], exactly 0 on the diagonal (the reference leaves float32
        rounding of order 1e-7 there).

    Raises:
        ValueError: ``features`` is not 2-D, has non-finite values or zero rows; ``k1``/``k2`` out of
            range; N <= k1; ``output`` or ``neighbour_search`` unknown; ``neighbours`` of the wrong shape;
            ``chunk_rows`` < 1.
    """
    if output not in ("sparse", "dense"):
        raise ValueError(f"output must be 'sparse' or 'dense', got {output!r}")
    if not 0 < max_distance <= 1:
        raise ValueError(f"max_distance must be in (0, 1], got {max_distance}")
    if max_distance < 1 and output == "dense":
        raise ValueError("max_distance < 1 drops pairs whose distance a dense output would have to show: "
                         "use output='sparse' or max_distance=1")
    if not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    x = as_float32_array(features)
    n = x.shape[0]
    if not isinstance(k1, (int, np.integer)) or k1 < 1:
        raise ValueError(f"k1 must be a positive integer, got {k1!r}")
    if not isinstance(k2, (int, np.integer)) or not 1 <= k2 <= k1:
        raise ValueError(f"k2 must be an integer between 1 and k1={k1}, got {k2!r}")
    if n <= k1:
        raise ValueError(
            f"need more samples than k1: got N={n} samples with k1={k1}; use a smaller k1 (k1 < N)"
        )
    x = _unit_rows(x)

    timer = _StageTimer()
    if neighbours is None:
        similarities, knn = knn_search(x, k1, method=neighbour_search, use_gpu=use_gpu)
    else:
        similarities, knn = (np.asarray(a)[:, :k1] for a in neighbours)
        if knn.shape != (n, k1) or similarities.shape != (n, k1):
            raise ValueError(f"neighbours must be (similarities, indices) of shape (N={n}, >= k1={k1}) from "
                             f"knn_search, got shapes {similarities.shape} and {knn.shape}")
    timer.done("kNN search")
    recip = _reciprocal_sets(knn, k1, chunk_rows)
    recip_half = _reciprocal_sets(knn, round(k1 / 2) + 1, chunk_rows)
    expanded = _expand(recip, recip_half, chunk_rows)
    del recip, recip_half
    timer.done("k-reciprocal sets and expansion")
    weights = _softmax_weights(x, similarities, knn, expanded, chunk_rows)
    del expanded
    if k2 > 1:
        weights = _query_expansion(weights, knn[:, :k2], chunk_rows)
    timer.done("weights V and query expansion")
    dist = _distance_from_minima(weights, max_distance, chunk_rows=chunk_rows, progress=progress)
    timer.done("sum of minima")
    if output == "sparse":
        return dist
    dense = np.ones((n, n), dtype=np.float32)
    dense[np.repeat(np.arange(n), np.diff(dist.indptr)), dist.indices] = dist.data
    return dense


class _StageTimer:
    """Logs the duration of each stage at DEBUG level."""

    def __init__(self) -> None:
        self._last = time.perf_counter()

    def done(self, stage: str) -> None:
        now = time.perf_counter()
        logger.debug("jaccard_distance: %s took %.3f s", stage, now - self._last)
        self._last = now


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """``x`` (N, D) if its rows are unit vectors, else an L2-normalised copy (logged); checks finiteness."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))  # no (N, D) temporary, unlike np.linalg.norm
    finite = np.isfinite(norms)
    if not finite.all():
        bad_rows = int((~np.isfinite(x[~finite])).any(axis=1).sum())
        if bad_rows:
            raise ValueError(
                f"features contain NaN or inf in {bad_rows} of {x.shape[0]} rows; all values must be finite"
            )
        raise ValueError("features have values so large that their norms overflow float32; rescale them")
    if (norms == 0).any():
        raise ValueError(f"features have {int((norms == 0).sum())} all-zero rows, which cannot be L2-normalised")
    off = np.abs(norms - 1) > _NORM_TOLERANCE
    if not off.any():
        return x
    logger.warning(
        "features are not L2-normalised (%d of %d rows have a norm away from 1, e.g. %.4g); "
        "normalising them, since the Jaccard distance is defined on cosine similarities",
        int(off.sum()), x.shape[0], float(norms[off][0]),
    )
    return x / norms[:, None]


def _row_chunks(n: int, chunk_rows: int) -> list[tuple[int, int]]:
    """(first, last) row ranges of at most ``chunk_rows`` rows covering 0..n."""
    return [(first, min(n, first + chunk_rows)) for first in range(0, n, chunk_rows)]


def _stack_rows(chunks: list[sp.csr_matrix]) -> sp.csr_matrix:
    """The CSR row blocks ``chunks`` (same number of columns) stacked in order, without any conversion."""
    if len(chunks) == 1:
        return chunks[0]
    indptr = np.zeros(sum(chunk.shape[0] for chunk in chunks) + 1, dtype=np.int64)
    np.cumsum(np.concatenate([np.diff(chunk.indptr) for chunk in chunks]), out=indptr[1:])
    indices = np.concatenate([chunk.indices for chunk in chunks])
    data = np.concatenate([chunk.data for chunk in chunks])
    matrix = sp.csr_matrix((data, indices, indptr), shape=(indptr.size - 1, chunks[0].shape[1]))
    matrix.has_sorted_indices = all(chunk.has_sorted_indices for chunk in chunks)
    return matrix


def _reciprocal_sets(knn: np.ndarray, length: int, chunk_rows: int) -> sp.csr_matrix:
    """R(i, k) as a boolean CSR pattern (N, N): j in kNN(i)[:length] and i in kNN(j)[:length].

    ``length`` is k + 1 as in the reference's ``initial_rank[i, :k + 1]``, capped by the list length. The
    keys i * N + j of every (i, j in kNN(i)) are sorted once (N x length int64); the reverse pairs are
    looked up ``chunk_rows`` rows at a time.
    """
    n = knn.shape[0]
    length = min(length, knn.shape[1])
    keys = np.sort(knn[:, :length], axis=1)
    keys += np.arange(n, dtype=np.int64)[:, None] * n
    keys = keys.ravel()  # sorted: by row, then by column
    chunks = []
    for first, last in _row_chunks(n, chunk_rows):
        rows = np.repeat(np.arange(first, last, dtype=np.int64), length)
        cols = keys[first * length:last * length] - rows * n
        reverse = cols * n + rows
        pos = np.minimum(np.searchsorted(keys, reverse), keys.size - 1)
        reciprocal = keys[pos] == reverse
        chunks.append(_pattern(rows[reciprocal] - first, cols[reciprocal], (last - first, n)))
    return _stack_rows(chunks)


def _pattern(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """Boolean CSR of ``shape`` with True at (rows, cols); ``rows`` must be sorted, columns sorted within rows."""
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    matrix = sp.csr_matrix((np.ones(rows.size, dtype=bool), cols.astype(np.int32), indptr), shape=shape)
    matrix.has_sorted_indices = True
    return matrix


def _expand(recip: sp.csr_matrix, recip_half: sp.csr_matrix, chunk_rows: int) -> sp.csr_matrix:
    """R*(i): R(i, k1) plus each R(c, k1/2), c in R(i, k1), with |R(c, k1/2) & R(i, k1)| > 2/3 |R(c, k1/2)|.

    Computed ``chunk_rows`` rows i at a time; only the pattern of the result is used.
    """
    recip_i = recip.astype(np.int32)
    half_i = recip_half.astype(np.int32)
    half_t = half_i.T.tocsr()
    half_size = np.diff(half_i.indptr)
    chunks = []
    for first, last in _row_chunks(recip.shape[0], chunk_rows):
        rows = recip_i[first:last]
        # overlap[i, c] = |R(i, k1) & R(c, k1/2)|; restricted to c in R(i, k1), where it is >= 1 (c is in both).
        overlap = (rows @ half_t).multiply(rows).tocsr()
        # The reference's float comparison, kept literally: len(intersection) > 2/3 * len(candidate set).
        overlap.data = (overlap.data > 2 / 3 * half_size[overlap.indices]).astype(np.int32)
        overlap.eliminate_zeros()
        expanded = rows + overlap @ half_i
        expanded.sort_indices()
        chunks.append(expanded)
    return _stack_rows(chunks)


def _softmax_weights(
    x: np.ndarray, similarities: np.ndarray, knn: np.ndarray, expanded: sp.csr_matrix, chunk_rows: int
) -> sp.csr_matrix:
    """V (N, N) CSR float32: softmax over j in R*(i) of -(2 - 2 x_i . x_j), zero elsewhere; ``chunk_rows`` rows
    at a time."""
    n = x.shape[0]
    chunks, outside = [], 0
    for first, last in _row_chunks(n, chunk_rows):
        pattern = expanded[first:last]
        rows = np.repeat(np.arange(last - first, dtype=np.int64), np.diff(pattern.indptr))
        cos, missing = _pair_similarities(x, similarities[first:last], knn[first:last], first, rows,
                                          pattern.indices.astype(np.int64))
        outside += missing
        logits = -(np.float32(2) - np.float32(2) * cos)
        starts = pattern.indptr[:-1]  # every row holds at least the sample itself
        logits -= np.maximum.reduceat(logits, starts)[rows]
        weights = np.exp(logits)
        weights /= np.add.reduceat(weights, starts)[rows]
        chunks.append(sp.csr_matrix((weights, pattern.indices, pattern.indptr), shape=pattern.shape))
    logger.debug("%d of %d pairs of R* were outside the kNN lists", outside, expanded.nnz)
    return _stack_rows(chunks)


def _pair_similarities(
    x: np.ndarray, similarities: np.ndarray, knn: np.ndarray, first: int, rows: np.ndarray, cols: np.ndarray
) -> tuple[np.ndarray, int]:
    """x_i . x_j for the pairs (first + rows, cols), and how many were computed: from the kNN search where j is
    in kNN(i), computed otherwise. ``similarities`` and ``knn`` are the lists of rows first, first + 1..."""
    n = x.shape[0]
    order = np.argsort(knn, axis=1)
    local = np.arange(knn.shape[0], dtype=np.int64)[:, None]
    knn_keys = (local * n + np.take_along_axis(knn, order, axis=1)).ravel()
    knn_sims = np.take_along_axis(similarities, order, axis=1).ravel()
    keys = rows * n + cols
    pos = np.minimum(np.searchsorted(knn_keys, keys), knn_keys.size - 1)
    found = knn_keys[pos] == keys
    cos = np.where(found, knn_sims[pos], np.float32(0)).astype(np.float32)
    missing = np.flatnonzero(~found)
    for start in range(0, missing.size, _DOTS_PER_BLOCK):
        block = missing[start:start + _DOTS_PER_BLOCK]
        cos[block] = np.einsum("ij,ij->i", x[first + rows[block]], x[cols[block]])
    return cos, missing.size


def _query_expansion(weights: sp.csr_matrix, first_neighbours: np.ndarray, chunk_rows: int) -> sp.csr_matrix:
    """V[i] <- mean of V[j] over j in ``first_neighbours[i]`` (N, k2): a sparse averaging product, ``chunk_rows``
    rows at a time."""
    n, k2 = first_neighbours.shape
    chunks = []
    for first, last in _row_chunks(n, chunk_rows):
        count = (last - first) * k2
        averaging = sp.csr_matrix(
            (np.ones(count, dtype=np.float32), first_neighbours[first:last].ravel(), np.arange(0, count + 1, k2)),
            shape=(last - first, n),
        )
        expanded = averaging @ weights
        expanded.data /= np.float32(k2)
        expanded.sort_indices()
        chunks.append(expanded)
    return _stack_rows(chunks)


def _distance_from_minima(
    weights: sp.csr_matrix, max_distance: float, *, chunk_rows: int, progress: bool
) -> sp.csr_matrix:
    """d = 1 - m / (2 - m), m[i, j] = sum_k min(V[i, k], V[j, k]), for every pair sharing a column of V.

    Each entry (i, k) of V is paired with the entries (j, k), j > i, of its column (the reference's
    inverted index: V in CSC form, rows ascending in every column), block by block of rows i with about
    max(1M, N) pairs each. Pairs are generated with i non-decreasing and, for each i, k increasing, so the
    stable COO -> CSC conversion leaves equal (i, j) adjacent and sums them in that order, in linear time.
    Where an entry sits in the column-major order is found ``chunk_rows`` rows at a time. The blocks of
    the upper triangle, less their pairs above ``max_distance`` (joined until they hold N entries), are
    then written, with their mirror and the zero diagonal, into one CSR matrix.
    """
    n = weights.shape[0]
    by_column = weights.tocsc()
    column_start, column_end = by_column.indptr[:-1].astype(np.int64), by_column.indptr[1:].astype(np.int64)
    entries_above = np.zeros(n, dtype=np.int64)  # per column: its entries in the rows before the chunk
    pairs_per_block = max(_PAIRS_PER_BLOCK, n)  # building a block costs O(pairs + N)
    blocks, pending, pending_entries = [], [], 0  # pending: blocks to join until they hold N entries
    bar = tqdm(total=n, desc="Jaccard distance", unit="row", disable=not progress)
    for first, last in _row_chunks(n, chunk_rows):
        lo, hi = weights.indptr[first], weights.indptr[last]
        indptr = weights.indptr[first:last + 1] - lo
        columns = weights.indices[lo:hi]
        # The chunk's entries in column-major order (a stable counting sort): their place in by_column is
        # the column's start, its entries in the rows above the chunk, then their rank in the chunk.
        chunk = sp.csr_matrix((np.arange(hi - lo), columns, indptr), shape=(last - first, n)).tocsc()
        in_chunk = np.diff(chunk.indptr)
        position = np.empty(hi - lo, dtype=np.int64)
        position[chunk.data] = np.arange(hi - lo) + np.repeat(column_start + entries_above - chunk.indptr[:-1],
                                                               in_chunk)
        entries_above += in_chunk
        del chunk
        n_partners = column_end[columns] - position - 1
        row_pairs = np.cumsum(np.add.reduceat(n_partners, indptr[:-1]))
        cuts = np.searchsorted(row_pairs, np.arange(pairs_per_block, row_pairs[-1], pairs_per_block)) + 1
        bounds = np.unique(np.concatenate([[0], cuts, [last - first]]))
        for start, stop in zip(bounds[:-1], bounds[1:]):
            entries = slice(indptr[start], indptr[stop])
            pending.append(_block_distance(weights, by_column, first + start, first + stop, position[entries],
                                           n_partners[entries], max_distance))
            pending_entries += pending[-1].nnz
            if pending_entries >= n or first + stop == n:  # writing a block costs O(its entries + N)
                blocks.append((first + stop - sum(block.shape[0] for block in pending), _stack_rows(pending)))
                pending, pending_entries = [], 0
            bar.update(stop - start)
        del position, n_partners
    bar.close()
    return _symmetric_with_zero_diagonal(blocks, n)


def _block_distance(
    weights: sp.csr_matrix, by_column: sp.csc_matrix, first: int, last: int, position: np.ndarray,
    n_partners: np.ndarray, max_distance: float,
) -> sp.csr_matrix:
    """Rows first..last of the strict upper triangle of d <= ``max_distance``, CSR (last - first, N).

    ``position`` and ``n_partners`` hold, for each entry (i, k) of V in those rows, its place in
    ``by_column`` and the number of entries below it in its column.
    """
    lo, hi = weights.indptr[first], weights.indptr[last]
    partner = _ragged_ranges(position + 1, n_partners)
    minima = np.minimum(np.repeat(weights.data[lo:hi], n_partners), by_column.data[partner])
    rows = np.repeat(np.repeat(np.arange(last - first, dtype=np.int32), np.diff(weights.indptr[first:last + 1])),
                     n_partners)
    block = sp.coo_matrix((minima, (rows, by_column.indices[partner])), shape=(last - first, weights.shape[1])).tocsc()
    del partner, minima, rows
    m = block.data
    block.data = np.maximum(np.float32(1) - m / (np.float32(2) - m), np.float32(0))
    if max_distance < 1:
        block = entries_within(block, max_distance)
    return block.tocsr()


def _symmetric_with_zero_diagonal(blocks: list[tuple[int, sp.csr_matrix]], n: int) -> sp.csr_matrix:
    """CSR (n, n) from row blocks of a strict upper triangle, its mirror and explicit zeros on the diagonal.

    ``blocks`` holds (first row, CSR block of rows first..) in row order; it is emptied as they are written.
    Row r of the result is its lower part (column r of the blocks, in block order), the diagonal, then its
    upper part: sorted without any sort. Written by hand because sparse addition would drop the stored
    zero distances. Each block costs O(its entries + n).
    """
    lower_count = np.zeros(n, dtype=np.int64)
    upper_count = np.zeros(n, dtype=np.int64)
    for first, block in blocks:
        lower_count += np.bincount(block.indices, minlength=n)
        upper_count[first:first + block.shape[0]] = np.diff(block.indptr)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lower_count + upper_count + 1, out=indptr[1:])
    indices = np.empty(indptr[-1], dtype=np.int32)
    data = np.empty(indptr[-1], dtype=np.float32)
    diagonal = indptr[:-1] + lower_count
    indices[diagonal], data[diagonal] = np.arange(n), 0
    lower_next = indptr[:-1].copy()  # where the next lower-triangle entry of each row goes
    blocks.reverse()
    while blocks:
        first, block = blocks.pop()
        by_column = block.tocsc()  # column r: the pairs (i, r), rows ascending
        column_count = np.diff(by_column.indptr)
        target = np.arange(by_column.nnz) + np.repeat(lower_next - by_column.indptr[:-1], column_count)
        indices[target], data[target] = by_column.indices + first, by_column.data
        lower_next += column_count
        del by_column
        rows = slice(first, first + block.shape[0])
        target = np.arange(block.nnz) + np.repeat(diagonal[rows] + 1 - block.indptr[:-1], np.diff(block.indptr))
        indices[target], data[target] = block.indices, block.data
    dist = sp.csr_matrix((data, indices, indptr), shape=(n, n))
    dist.has_sorted_indices = True
    return dist


def entries_within(matrix: sp.csr_matrix | sp.csc_matrix, limit: float) -> sp.csr_matrix | sp.csc_matrix:
    """The stored entries <= ``limit`` of a CSR or CSC ``matrix`` (explicit zeros kept), same shape and format."""
    keep = matrix.data <= limit
    kept_before = np.concatenate([[0], np.cumsum(keep)])
    return type(matrix)((matrix.data[keep], matrix.indices[keep], kept_before[matrix.indptr]), shape=matrix.shape)


def _ragged_ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` over (starts, counts), built with one cumulative sum."""
    keep = counts > 0
    starts, counts = starts[keep], counts[keep]
    ends = np.cumsum(counts)
    steps = np.ones(int(ends[-1]) if ends.size else 0, dtype=np.int64)
    if ends.size:
        steps[0] = starts[0]
        steps[ends[:-1]] = starts[1:] - (starts[:-1] + counts[:-1] - 1)
    return np.cumsum(steps, out=steps)
