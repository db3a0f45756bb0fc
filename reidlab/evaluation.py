"""Re-ID evaluation: distances, CMC, mAP and mINP under the Market-1501 protocol (docs/methods.md, section 6).

For every query the gallery is ranked by distance; gallery images with the query's identity AND
camera are dropped (they would be trivial matches); the remaining images of the query's identity are
its correct matches. Queries without a correct match are skipped. Distractors (pid 0) stay in the
gallery as wrong matches.

Every metric depends only on the 0-based positions ("ranks") of the correct matches in that kept
ranking, so :func:`_match_ranks` computes those positions without sorting the gallery: the position
of a correct match is the number of kept gallery images ranked before it, which is a count of
smaller distances. Ties are broken by gallery index, exactly as a stable ``np.argsort`` would.

Taught in ``notebooks/00_data_and_evaluation.ipynb``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)


def pairwise_distance(
    query_features: torch.Tensor | np.ndarray,
    gallery_features: torch.Tensor | np.ndarray,
    *,
    chunk_size: int = 4096,
) -> np.ndarray:
    """Squared Euclidean distance between every query and every gallery feature (docs/methods.md, section 5).

    Computed as ``|q|^2 + |g|^2 - 2 q.g`` with one matrix product per chunk of ``chunk_size`` query
    rows, on the device of the inputs. For L2-normalised features this is ``2 - 2 cos(q, g)``.
    Rounding can make the formula dip below zero; such values are clamped to 0.

    Args:
        query_features: ``(Q, D)`` tensor or array.
        gallery_features: ``(G, D)`` tensor or array, on the same device as ``query_features``.
        chunk_size: query rows per matrix product (bounds the memory of one block to
            ``chunk_size * G`` values).

    Returns:
        distmat ``(Q, G)`` float32 numpy array.
    """
    query = torch.as_tensor(query_features)
    gallery = torch.as_tensor(gallery_features)
    if query.ndim != 2 or gallery.ndim != 2:
        raise ValueError(
            "query_features and gallery_features must be 2-D (N, D), got shapes "
            f"{tuple(query.shape)} and {tuple(gallery.shape)}"
        )
    if query.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"query and gallery features must have the same dimension, got {query.shape[1]} and "
            f"{gallery.shape[1]}"
        )
    if query.device != gallery.device:
        raise ValueError(
            f"query and gallery features must be on the same device, got {query.device} and "
            f"{gallery.device}"
        )
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
    dtype = torch.float64 if torch.float64 in (query.dtype, gallery.dtype) else torch.float32
    query, gallery = query.to(dtype), gallery.to(dtype)
    gallery_sq_norms = gallery.pow(2).sum(dim=1)
    distmat = np.empty((query.shape[0], gallery.shape[0]), dtype=np.float32)
    for start in range(0, query.shape[0], chunk_size):
        block = query[start : start + chunk_size]
        dist = block.pow(2).sum(dim=1, keepdim=True) + gallery_sq_norms - 2.0 * (block @ gallery.T)
        distmat[start : start + chunk_size] = dist.clamp_(min=0).cpu().numpy()
    return distmat


def evaluate_rank(
    distmat: np.ndarray | torch.Tensor,
    q_pids: np.ndarray | torch.Tensor,
    g_pids: np.ndarray | torch.Tensor,
    q_camids: np.ndarray | torch.Tensor,
    g_camids: np.ndarray | torch.Tensor,
    max_rank: int = 50,
) -> tuple[np.ndarray, float]:
    """CMC curve and mAP under the Market-1501 protocol; a drop-in for torchreid's function.

    Same arguments and results as ``torchreid.metrics.rank.evaluate_rank`` (its ``eval_market1501``),
    so code written for torchreid can switch. With tied distances the ranking is the one of a stable
    sort (ties broken by gallery index). See :func:`evaluate` for mINP and named Rank-k values.

    Args:
        distmat: ``(Q, G)`` query-to-gallery distances, smaller is more similar.
        q_pids: ``(Q,)`` query identities.
        g_pids: ``(G,)`` gallery identities (distractors have pid 0).
        q_camids: ``(Q,)`` query cameras.
        g_camids: ``(G,)`` gallery cameras.
        max_rank: length of the CMC curve; lowered to ``G`` (with a logged warning) when the
            gallery is smaller.

    Returns:
        ``(cmc, mAP)``: ``cmc`` is a float32 array ``(max_rank,)`` whose entry ``k`` is the fraction
        of valid queries with a correct match within the top ``k + 1``; ``mAP`` is the mean average
        precision. Both are fractions in [0, 1], not percentages.

    Raises:
        ValueError: on inconsistent shapes, non-finite distances, ``max_rank < 1``, or when no query
            has a correct match in the gallery.
    """
    match_ranks = _match_ranks(distmat, q_pids, g_pids, q_camids, g_camids)
    cmc = _cmc_curve(match_ranks, _effective_max_rank(max_rank, np.shape(distmat)[1]))
    return cmc, float(_average_precisions(match_ranks).mean())


def evaluate(
    distmat: np.ndarray | torch.Tensor,
    q_pids: np.ndarray | torch.Tensor,
    g_pids: np.ndarray | torch.Tensor,
    q_camids: np.ndarray | torch.Tensor,
    g_camids: np.ndarray | torch.Tensor,
    *,
    max_rank: int = 50,
) -> dict[str, Any]:
    """mAP, mINP and Rank-1/5/10 under the Market-1501 protocol (docs/methods.md, section 6).

    Uses the same computation as :func:`evaluate_rank`. mINP is the mean inverse negative penalty of
    Ye et al., "Deep Learning for Person Re-identification: A Survey and Outlook", TPAMI 2021
    (its evaluation section): per query, ``INP = |correct matches| / R_hard`` where ``R_hard`` is
    the 1-based position of the last (hardest) correct match: the fraction of correct images among
    those one must inspect to find every correct match.

    Args:
        distmat: ``(Q, G)`` query-to-gallery distances, smaller is more similar.
        q_pids: ``(Q,)`` query identities.
        g_pids: ``(G,)`` gallery identities (distractors have pid 0).
        q_camids: ``(Q,)`` query cameras.
        g_camids: ``(G,)`` gallery cameras.
        max_rank: length of the returned CMC curve (lowered to ``G`` for a smaller gallery).

    Returns:
        ``{"mAP", "mINP", "rank1", "rank5", "rank10"}`` as python floats and ``"cmc"`` as a float32
        array ``(max_rank,)``; all are fractions in [0, 1] (multiply by 100 for the percentages
        papers report), averaged over the queries that have a correct match.

    Raises:
        ValueError: as :func:`evaluate_rank`.
    """
    match_ranks = _match_ranks(distmat, q_pids, g_pids, q_camids, g_camids)
    max_rank = _effective_max_rank(max_rank, np.shape(distmat)[1])
    cmc = _cmc_curve(match_ranks, max(max_rank, 10))
    return {
        "mAP": float(_average_precisions(match_ranks).mean()),
        "mINP": float(_inverse_negative_penalties(match_ranks).mean()),
        "rank1": float(cmc[0]),
        "rank5": float(cmc[4]),
        "rank10": float(cmc[9]),
        "cmc": cmc[:max_rank],
    }


def evaluate_model(
    model: torch.nn.Module,
    dataset: Any,
    *,
    height: int,
    width: int,
    batch_size: int = 128,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    cache: bool | dict = False,
    progress: bool = True,
) -> tuple[dict[str, Any], np.ndarray]:
    """Embed ``dataset.query`` and ``dataset.gallery`` with ``model`` and evaluate (docs/methods.md, sections 5-6).

    Args:
        model: maps images to L2-normalised features.
        dataset: has ``query`` and ``gallery`` record lists (a :class:`reidlab.data.ReIDDataset`).
        height: input height of the test transform.
        width: input width of the test transform.
        batch_size: images per forward pass.
        num_workers: DataLoader worker processes.
        device: where to run; ``None`` picks CUDA when available.
        cache: keep the query and gallery images in memory between calls: a dict kept by the caller (a
            training run passes its store, see :class:`reidlab.data.ImageDataset`).
        progress: show progress bars.

    Returns:
        The metrics of :func:`evaluate` and the ``(Q, G)`` distance matrix (for ranked-results figures).
    """
    from reidlab.models.features import extract_features

    kwargs = dict(height=height, width=width, batch_size=batch_size, num_workers=num_workers, device=device,
                  cache=cache, progress=progress)
    distmat = pairwise_distance(extract_features(model, dataset.query, **kwargs),
                                extract_features(model, dataset.gallery, **kwargs))
    ids = {name: np.array([[r.pid, r.camid] for r in getattr(dataset, name)]) for name in ("query", "gallery")}
    metrics = evaluate(distmat, ids["query"][:, 0], ids["gallery"][:, 0], ids["query"][:, 1], ids["gallery"][:, 1])
    return metrics, distmat


def plot_ranked_results(
    distmat: np.ndarray | torch.Tensor,
    query_records: Sequence[Any],
    gallery_records: Sequence[Any],
    *,
    query_indices: Sequence[int] | None = None,
    num_queries: int = 4,
    topk: int = 10,
    drop_same_camera: bool = True,
    image_size: tuple[int, int] = (128, 64),
) -> tuple[Any, list[list[str]]]:
    """Draw each query next to its top-k gallery images, bordered by whether they match.

    A green border marks a correct match (same pid), red a wrong one and gray a distractor or junk
    image (pid 0 or -1). Titles give the 1-based rank and the pid. Ties are broken by gallery index.

    Args:
        distmat: ``(Q, G)`` query-to-gallery distances.
        query_records: ``Q`` records with ``.path``, ``.pid`` and ``.camid`` (e.g. ``dataset.query``).
        gallery_records: ``G`` such records (e.g. ``dataset.gallery``).
        query_indices: which queries to show, one row each; by default ``num_queries`` spread
            evenly over the query set.
        num_queries: number of rows when ``query_indices`` is not given.
        topk: gallery images per row.
        drop_same_camera: drop gallery images with the query's pid and camera first, as the
            evaluation protocol does (docs/methods.md, section 6).
        image_size: ``(height, width)`` every image is resized to.

    Returns:
        ``(figure, names)``: a ``matplotlib.figure.Figure`` (displayed by Jupyter when it is the last
        expression of a cell) and, per row, the file names shown, the query's first.
    """
    from PIL import Image

    from reidlab.plotting import Figure

    distmat = _to_numpy(distmat)
    if distmat.ndim != 2 or distmat.shape != (len(query_records), len(gallery_records)):
        raise ValueError(
            f"distmat must have shape (len(query_records), len(gallery_records)) = "
            f"({len(query_records)}, {len(gallery_records)}), got {distmat.shape}"
        )
    if topk < 1:
        raise ValueError(f"topk must be a positive integer, got {topk}")
    if query_indices is None:
        if num_queries < 1:
            raise ValueError(f"num_queries must be a positive integer, got {num_queries}")
        spread = np.linspace(0, len(query_records) - 1, min(num_queries, len(query_records)))
        query_indices = np.unique(spread.round().astype(int)).tolist()
    bad = [q for q in query_indices if not 0 <= q < len(query_records)]
    if bad:
        raise ValueError(f"query_indices must lie in [0, {len(query_records)}), got {bad}")

    g_pids = np.array([record.pid for record in gallery_records])
    g_camids = np.array([record.camid for record in gallery_records])
    height, width = image_size
    figure = Figure(figsize=(1.1 * (topk + 1), 2.3 * len(query_indices)), layout="constrained")
    axes = figure.subplots(len(query_indices), topk + 1, squeeze=False)
    names = []
    for row, q in enumerate(query_indices):
        query = query_records[q]
        order = np.argsort(distmat[q], kind="stable")
        if drop_same_camera:
            order = order[(g_pids[order] != query.pid) | (g_camids[order] != query.camid)]
        shown = [query] + [gallery_records[g] for g in order[:topk]]
        names.append([os.path.basename(record.path) for record in shown])
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(shown):
                ax.set_axis_off()
                continue
            record = shown[col]
            with Image.open(record.path) as image:
                ax.imshow(image.convert("RGB").resize((width, height)))
            if col == 0:
                ax.set_title(f"query\npid {record.pid}", fontsize=8)
                color = "black"
            else:
                ax.set_title(f"#{col}\npid {record.pid}", fontsize=8)
                color = _match_color(record.pid, query.pid)
            for spine in ax.spines.values():
                spine.set_color(color)
                spine.set_linewidth(3)
    return figure, names


def _match_color(gallery_pid: Any, query_pid: Any) -> str:
    """Border colour of a ranked gallery image: green correct, gray distractor/junk, red wrong."""
    if gallery_pid == query_pid:
        return "green"
    if gallery_pid in (0, -1):
        return "gray"
    return "red"


def _to_numpy(array: np.ndarray | torch.Tensor | Sequence[Any]) -> np.ndarray:
    """A numpy view or copy of an array, tensor (any device) or sequence."""
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def _effective_max_rank(max_rank: int, num_gallery: int) -> int:
    """``max_rank``, lowered to the gallery size as torchreid does."""
    if max_rank < 1:
        raise ValueError(f"max_rank must be a positive integer, got {max_rank}")
    if num_gallery < max_rank:
        logger.warning(
            "number of gallery samples (%d) is smaller than max_rank (%d); using max_rank=%d",
            num_gallery,
            max_rank,
            num_gallery,
        )
        return num_gallery
    return max_rank


def _match_ranks(
    distmat: np.ndarray | torch.Tensor,
    q_pids: np.ndarray | torch.Tensor,
    g_pids: np.ndarray | torch.Tensor,
    q_camids: np.ndarray | torch.Tensor,
    g_camids: np.ndarray | torch.Tensor,
) -> list[np.ndarray]:
    """Positions of the correct matches in each query's kept ranking: the core of the evaluation.

    The kept ranking of a query is the gallery sorted by (distance, gallery index) without the
    images that share the query's pid and camera ("junk"). A correct match ``p`` is at position
    ``#{g : (d_g, g) < (d_p, p)} - #{junk j : (d_j, j) < (d_p, p)}``. The first count is a comparison
    of the row with the few correct-match distances, ``O(G * matches)`` without a sort; the exact
    tie-break by index is only needed when a distance occurs more than once.

    Args:
        distmat: ``(Q, G)`` distances.
        q_pids, g_pids, q_camids, g_camids: ``(Q,)``, ``(G,)``, ``(Q,)``, ``(G,)`` labels.

    Returns:
        One sorted int64 array of 0-based positions per query that has a correct match (queries
        without one are skipped), in query order.
    """
    distmat = _to_numpy(distmat)
    q_pids, g_pids = _to_numpy(q_pids), _to_numpy(g_pids)
    q_camids, g_camids = _to_numpy(q_camids), _to_numpy(g_camids)
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be 2-D (num_query, num_gallery), got shape {distmat.shape}")
    num_query, num_gallery = distmat.shape
    for name, labels, size in [
        ("q_pids", q_pids, num_query),
        ("q_camids", q_camids, num_query),
        ("g_pids", g_pids, num_gallery),
        ("g_camids", g_camids, num_gallery),
    ]:
        if labels.shape != (size,):
            raise ValueError(
                f"{name} must have shape ({size},) to match distmat {distmat.shape}, "
                f"got {labels.shape}"
            )
    if not np.issubdtype(distmat.dtype, np.floating):
        distmat = distmat.astype(np.float64)
    if not np.isfinite(distmat).all():
        raise ValueError("distmat contains NaN or infinite distances; all distances must be finite")

    # Gallery indices of each pid, ascending within a pid (the sort is stable).
    by_pid = np.argsort(g_pids, kind="stable")
    sorted_pids = g_pids[by_pid]
    starts = np.searchsorted(sorted_pids, q_pids, side="left")
    stops = np.searchsorted(sorted_pids, q_pids, side="right")

    match_ranks = []
    for q in range(num_query):
        same_pid = by_pid[starts[q] : stops[q]]
        is_junk = g_camids[same_pid] == q_camids[q]
        matches, junk = same_pid[~is_junk], same_pid[is_junk]
        if matches.size == 0:
            continue
        row = distmat[q]
        match_dist = row[matches]
        order = np.argsort(match_dist, kind="stable")  # sorted by (distance, index)
        matches, match_dist = matches[order], match_dist[order]

        thresholds = match_dist[:, None]
        ahead = np.count_nonzero(row < thresholds, axis=1)
        num_equal = np.count_nonzero(row <= thresholds, axis=1) - ahead
        for i in np.flatnonzero(num_equal > 1):  # other images at exactly this distance
            ahead[i] += np.count_nonzero(np.flatnonzero(row == match_dist[i]) < matches[i])
        if junk.size:
            junk_dist = row[junk]
            junk_ahead = (junk_dist < thresholds) | (
                (junk_dist == thresholds) & (junk < matches[:, None])
            )
            ahead -= np.count_nonzero(junk_ahead, axis=1)
        match_ranks.append(ahead)

    if not match_ranks:
        raise ValueError(
            "no query has a correct match in the gallery (same pid, different camera); "
            "check that query and gallery pids/camids are aligned with distmat"
        )
    return match_ranks


def _cmc_curve(match_ranks: list[np.ndarray], max_rank: int) -> np.ndarray:
    """CMC ``(max_rank,)`` float32: entry k = fraction of queries whose first match is at <= k."""
    first = np.array([ranks[0] for ranks in match_ranks])
    hits = np.bincount(np.minimum(first, max_rank), minlength=max_rank + 1)[:max_rank]
    return np.cumsum(hits).astype(np.float32) / np.float32(len(match_ranks))


def _average_precisions(match_ranks: list[np.ndarray]) -> np.ndarray:
    """Per-query non-interpolated AP: mean over matches i of ``(i + 1) / (rank_i + 1)``."""
    return np.array([np.mean(np.arange(1, ranks.size + 1) / (ranks + 1)) for ranks in match_ranks])


def _inverse_negative_penalties(match_ranks: list[np.ndarray]) -> np.ndarray:
    """Per-query INP (Ye et al. TPAMI 2021): ``matches / (rank_last + 1)``."""
    return np.array([ranks.size / (ranks[-1] + 1) for ranks in match_ranks])
