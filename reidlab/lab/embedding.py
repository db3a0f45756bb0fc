"""2-D embeddings of re-ID features for plots: t-SNE and UMAP, cached, and scatter plots by label.

Notebook 01 colours one embedding of the training features by the true identities and by the
pseudo-labels of DBSCAN (docs/methods.md, sections 2-3). The embedding is the slow part (seconds to a minute) and does
not depend on the labels, so :class:`EmbeddingCache` computes it once and every recolouring afterwards
only redraws (:func:`plot_embedding`, :func:`plot_embeddings`).

References:
    van der Maaten and Hinton, "Visualizing Data using t-SNE", JMLR 2008 (``sklearn.manifold.TSNE``).
    McInnes, Healy and Melville, "UMAP: Uniform Manifold Approximation and Projection", 2018 (umap-learn).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, Literal

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from reidlab.cluster.neighbors import as_float32_array
from reidlab.lab.palette import OUTLIER_COLOUR, camera_colours, identity_colours
from reidlab.plotting import Figure

__all__ = ["EMBEDDINGS", "EmbeddingCache", "embed_2d", "plot_camera_proxies", "plot_embedding", "plot_embeddings"]

EMBEDDINGS = ("tsne", "umap")
# Fewest samples embed_2d accepts: t-SNE's perplexity (N - 1) / 3 must stay >= 1, UMAP needs neighbours.
MIN_SAMPLES = 5
# Outliers (DBSCAN label -1): small grey crosses under the clusters.
OUTLIER_STYLE = {"marker": "x", "color": OUTLIER_COLOUR, "linewidths": 0.8}


def embed_2d(
    features: np.ndarray | torch.Tensor,
    *,
    embedding: Literal["tsne", "umap"] = "tsne",
    seed: int = 0,
    **kwargs: Any,
) -> np.ndarray:
    """A 2-D embedding of ``features`` (N, D) for scatter plots, by t-SNE or UMAP.

    Rows are L2-normalised first: re-ID features are compared by cosine similarity, and on unit vectors the
    squared Euclidean distance is ``2 - 2 cos`` (the test distance, docs/methods.md, section 5).

    * ``"tsne"``: ``sklearn.manifold.TSNE`` with ``init="pca"``, Euclidean distance on the normalised rows
      and perplexity ``min(30, (N - 1) / 3)`` (30 is scikit-learn's default; the cap keeps it below
      N / 3 on small sets, where the affinities would otherwise be near-uniform).
    * ``"umap"``: ``umap.UMAP`` with ``n_neighbors=15`` (at most N - 1), ``min_dist=0.1``, cosine metric,
      ``random_state=seed`` (umap-learn's defaults, with the metric of re-ID). umap-learn is imported here,
      not with reidlab, because its import (numba) takes seconds; its first call also compiles.

    Args:
        features: (N, D) NumPy array or torch tensor (any device), N >= 5.
        embedding: ``"tsne"`` or ``"umap"``.
        seed: random state of the embedding; the same seed gives the same coordinates.
        **kwargs: options of ``TSNE`` or ``UMAP`` that replace the defaults above (``perplexity=50``...).

    Returns:
        coords (N, 2) float64.

    Raises:
        ValueError: unknown ``embedding``, non-finite or all-zero rows, N < 5 or D < 2.
    """
    if embedding not in EMBEDDINGS:
        raise ValueError(f"embedding must be one of {EMBEDDINGS}, got {embedding!r}")
    x = _unit_rows(features)
    n = x.shape[0]
    if embedding == "tsne":
        from sklearn.manifold import TSNE

        options = {"perplexity": min(30.0, (n - 1) / 3), "init": "pca", "random_state": seed, **kwargs}
        coords = TSNE(n_components=2, **options).fit_transform(x)
    else:
        import umap

        # An explicit n_jobs=1 avoids umap-learn's warning that random_state forces one thread.
        options = {"n_neighbors": min(15, n - 1), "min_dist": 0.1, "metric": "cosine", "n_jobs": 1, **kwargs}
        coords = umap.UMAP(n_components=2, random_state=seed, **options).fit_transform(x)
    return np.asarray(coords, dtype=np.float64)


def _unit_rows(features: np.ndarray | torch.Tensor) -> np.ndarray:
    """``features`` (N, D) as float32 with unit rows, after checking what the embeddings need."""
    x = as_float32_array(features)
    n, dim = x.shape
    if n < MIN_SAMPLES:
        raise ValueError(f"need at least {MIN_SAMPLES} samples to embed, got N={n}")
    if dim < 2:
        raise ValueError(f"need features of dimension D >= 2 to embed in 2-D, got D={dim}")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise ValueError(
            f"features must be finite; {int(bad.sum())} rows hold NaN or inf (first: row {int(np.flatnonzero(bad)[0])})"
        )
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(
            f"features have {int((norms == 0).sum())} all-zero rows, which have no direction to embed "
            f"(first: row {int(np.flatnonzero(norms[:, 0] == 0)[0])})"
        )
    return x / norms


class EmbeddingCache:
    """The 2-D embeddings of one feature matrix, each computed once (recolouring is then instant).

    Args:
        features: (N, D) features (NumPy or torch); checked now, embedded on first request.
        seed: random state passed to :func:`embed_2d`.

    Attributes:
        n_computed_: how many embeddings were computed (not served from the cache).

    Example:
        >>> cache = EmbeddingCache(features)
        >>> fig = plot_embedding(cache.get("tsne"), true_ids)   # computes t-SNE
        >>> fig = plot_embedding(cache.get("tsne"), pseudo)     # cached
    """

    def __init__(self, features: np.ndarray | torch.Tensor, *, seed: int = 0) -> None:
        self.features = _unit_rows(features)
        self.seed = seed
        self.n_computed_ = 0
        self._coords: dict[tuple, np.ndarray] = {}

    def get(self, embedding: Literal["tsne", "umap"] = "tsne", **kwargs: Hashable) -> np.ndarray:
        """coords (N, 2) of ``embedding`` with options ``kwargs`` (see :func:`embed_2d`); a fresh copy."""
        key = (embedding, tuple(sorted(kwargs.items())))
        if key not in self._coords:
            self._coords[key] = embed_2d(self.features, embedding=embedding, seed=self.seed, **kwargs)
            self.n_computed_ += 1
        return self._coords[key].copy()

    def __contains__(self, embedding: str) -> bool:
        """Whether ``embedding`` with default options is already computed."""
        return (embedding, ()) in self._coords

    def __repr__(self) -> str:
        computed = sorted({embedding for embedding, _ in self._coords})
        return f"{type(self).__name__}(N={self.features.shape[0]}, seed={self.seed}, computed={computed})"


def plot_embedding(
    coords: np.ndarray,
    labels: np.ndarray | torch.Tensor | list,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    outlier_label: Hashable | None = -1,
    legend: bool = False,
    max_colours: int = 20,
    s: float = 8,
    colours: np.ndarray | None = None,
) -> Figure:
    """Scatter ``coords`` coloured by ``labels`` (true identities, pseudo-labels or cameras).

    Labels are sorted and the k-th label gets colour ``k mod max_colours`` of :func:`reidlab.lab.palette.identity_colours`, so the
    colours are deterministic, and DBSCAN's pseudo-labels 0..C-1 get colour ``label mod max_colours``.
    With more labels than colours, colours repeat. Samples with ``outlier_label`` (DBSCAN's -1) are drawn
    as small grey crosses under the clusters (the collection with gid ``"outliers"``; the others have gid
    ``"labelled"``).

    Args:
        coords: (N, 2) embedding, e.g. from :func:`embed_2d`.
        labels: (N,) one label per sample.
        ax: axes to draw into; a new figure when ``None``.
        title: axes title.
        outlier_label: the label drawn as an outlier; ``None`` for no outliers (e.g. true identities).
        legend: add a legend (one entry per label up to ``max_colours`` labels, plus the outliers).
        max_colours: palette size (1..54).
        s: marker size of the labelled samples (outliers use 0.75 s).
        colours: ``(k, 4)`` RGBA palette instead of the identity palette, e.g.
            :func:`reidlab.lab.palette.camera_colours` to colour by camera (``max_colours`` is then ``k``).

    Returns:
        The figure that holds the axes.

    Raises:
        ValueError: shapes disagree or ``max_colours`` is out of range.
    """
    coords = np.asarray(coords, dtype=np.float64)
    labels = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if coords.ndim != 2 or coords.shape[1] != 2 or labels.shape != (coords.shape[0],):
        raise ValueError(f"need coords (N, 2) and labels (N,), got shapes {coords.shape} and {labels.shape}")
    palette = identity_colours(max_colours) if colours is None else np.asarray(colours)
    max_colours = len(palette)
    if ax is None:
        fig = Figure(figsize=(5, 5), layout="constrained")
        ax = fig.add_subplot()
    is_outlier = labels == outlier_label if outlier_label is not None else np.zeros(labels.shape, dtype=bool)
    names, rank = np.unique(labels[~is_outlier], return_inverse=True)
    if is_outlier.any():
        outliers = ax.scatter(*coords[is_outlier].T, s=0.75 * s, zorder=1, **OUTLIER_STYLE)
        outliers.set_gid("outliers")
    labelled = ax.scatter(*coords[~is_outlier].T, s=s, c=palette[rank % len(palette)], linewidths=0, zorder=2)
    labelled.set_gid("labelled")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")
    if title is not None:
        ax.set_title(title, fontsize=10)
    if legend:
        handles = [
            Line2D([], [], linestyle="", marker="o", markersize=5, color=palette[k % len(palette)], label=str(name))
            for k, name in enumerate(names[:max_colours])
        ]
        if len(names) > max_colours:
            handles.append(Line2D([], [], linestyle="", label=f"+{len(names) - max_colours} more (colours repeat)"))
        if is_outlier.any():
            handles.append(Line2D([], [], linestyle="", marker="x", color="0.6", label=f"outliers ({outlier_label})"))
        ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return ax.get_figure()


def plot_embeddings(
    coords: np.ndarray,
    labelings: Mapping[str, np.ndarray | torch.Tensor | list],
    *,
    panel_size: float = 4.5,
    **kwargs: Any,
) -> Figure:
    """Side-by-side :func:`plot_embedding` panels of one embedding, one per labelling.

    Example: ``plot_embeddings(coords, {"ground truth": pids, "pseudo-labels": labels})``.

    Args:
        coords: (N, 2) embedding.
        labelings: panel title -> (N,) labels.
        panel_size: inches per panel (square).
        **kwargs: options of :func:`plot_embedding` for every panel (``outlier_label``, ``s``...).

    Raises:
        ValueError: ``labelings`` is empty.
    """
    if not labelings:
        raise ValueError("labelings must hold at least one labelling, e.g. {'ground truth': pids}")
    fig = Figure(figsize=(panel_size * len(labelings), panel_size), layout="constrained")
    axes = fig.subplots(1, len(labelings), squeeze=False)[0]
    for ax, (name, labels) in zip(axes, labelings.items()):
        plot_embedding(coords, labels, ax=ax, title=name, **kwargs)
    return fig


def plot_camera_proxies(
    coords: np.ndarray,
    labels: np.ndarray,
    cameras: np.ndarray,
    proxy_coords: np.ndarray,
    proxy_labels: np.ndarray,
    proxy_cameras: np.ndarray,
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """CAP's camera-aware proxies on a 2-D embedding: images and their (cluster, camera) proxies.

    Every image is a dot, every proxy a large diamond with a black edge, both in their camera's colour
    (:func:`reidlab.lab.palette.camera_colours`); each proxy is labelled with its cluster id, and the members of
    one cluster are joined to their proxy by thin lines (docs/methods.md, section 4.6). Embed the images and
    the proxies *together* (one :func:`embed_2d` call on the stacked features), so that both share the map.

    Args:
        coords: (N, 2) the images' coordinates; labels (N,) their clusters; cameras (N,) their cameras (0-based).
        proxy_coords: (P, 2) the proxies' coordinates; proxy_labels, proxy_cameras (P,) their cluster and camera.
        ax: axes to draw into; a new figure when None.
        title: axes title.
    """
    coords, proxy_coords = np.asarray(coords, dtype=np.float64), np.asarray(proxy_coords, dtype=np.float64)
    labels, cameras = np.asarray(labels), np.asarray(cameras)
    proxy_labels, proxy_cameras = np.asarray(proxy_labels), np.asarray(proxy_cameras)
    if coords.shape != (len(labels), 2) or cameras.shape != labels.shape:
        raise ValueError(f"need coords (N, 2), labels and cameras (N,), got {coords.shape}, {labels.shape}, "
                         f"{cameras.shape}")
    if proxy_coords.shape != (len(proxy_labels), 2) or proxy_cameras.shape != proxy_labels.shape:
        raise ValueError(f"need proxy_coords (P, 2), proxy_labels and proxy_cameras (P,), got {proxy_coords.shape}, "
                         f"{proxy_labels.shape}, {proxy_cameras.shape}")
    palette = camera_colours(int(max(cameras.max(), proxy_cameras.max())) + 1)
    if ax is None:
        fig = Figure(figsize=(6.5, 5), layout="constrained")
        ax = fig.add_subplot()
    for p, (cluster, camera) in enumerate(zip(proxy_labels, proxy_cameras)):
        for point in coords[(labels == cluster) & (cameras == camera)]:
            ax.plot(*np.stack([point, proxy_coords[p]]).T, color=palette[camera], lw=0.5, alpha=0.5, zorder=1)
    ax.scatter(*coords.T, s=14, c=palette[cameras], linewidths=0, zorder=2)
    ax.scatter(*proxy_coords.T, s=110, marker="D", c=palette[proxy_cameras], edgecolors="k", linewidths=0.8,
               zorder=3)
    for (x, y), cluster in zip(proxy_coords, proxy_labels):
        ax.annotate(str(int(cluster)), (x, y), xytext=(5, 5), textcoords="offset points", fontsize=7, zorder=4)
    handles = [Line2D([], [], linestyle="", marker="o", markersize=5, color=palette[c], label=f"camera {c + 1}")
               for c in np.unique(np.concatenate([cameras, proxy_cameras]))]
    handles.append(Line2D([], [], linestyle="", marker="D", markersize=7, color="w", markeredgecolor="k",
                          label="proxy (cluster id beside)"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")
    if title is not None:
        ax.set_title(title, fontsize=10)
    return ax.get_figure()
