"""How good are the pseudo-labels? Compare them with the true identities (docs/methods.md, section 1 step 2).

Conventions (the training sees outliers either dropped or as one-image classes, so both views count):

* ``ari``, ``nmi`` and the pairwise scores are computed on all samples, every outlier (-1) being a
  class of its own, so outliers cost recall and nothing else;
* ``ari_clustered``, ``nmi_clustered`` and ``purity`` only on the clustered samples (label >= 0), the
  view of the methods that drop outliers.

Pairwise precision / recall: among the pairs of samples that share a predicted cluster, the fraction
that share the true identity, and among the pairs that share the true identity, the fraction in one
predicted cluster. All counts come from the contingency table, never from the O(N^2) pairs.
"""

from __future__ import annotations

import dataclasses
import html

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from reidlab.cluster.dbscan import outliers_as_classes

__all__ = ["ClusterQuality", "cluster_quality"]


@dataclasses.dataclass(frozen=True)
class ClusterQuality:
    """Quality of pseudo-labels against true identities; prints as a one-row table.

    Attributes:
        n_samples: number of samples.
        n_clusters: predicted clusters (outliers not counted).
        n_outliers: samples labelled -1.
        ari: adjusted Rand index, all samples, outliers as singletons.
        nmi: normalised mutual information (arithmetic mean), all samples, outliers as singletons.
        ari_clustered: ARI on the clustered samples only (NaN if there are none).
        nmi_clustered: NMI on the clustered samples only (NaN if there are none).
        purity: fraction of clustered samples whose identity is the majority identity of their cluster.
        pairwise_precision: same-cluster pairs that share the identity / same-cluster pairs (0 if none).
        pairwise_recall: same-identity pairs in one cluster / same-identity pairs (0 if none).
        pairwise_f1: harmonic mean of the two (0 if both are 0).
    """

    n_samples: int
    n_clusters: int
    n_outliers: int
    ari: float
    nmi: float
    ari_clustered: float
    nmi_clustered: float
    purity: float
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float

    def as_dict(self) -> dict[str, int | float]:
        """The fields as a plain dict (e.g. for logging)."""
        return dataclasses.asdict(self)

    def _cells(self) -> list[tuple[str, str]]:
        return [
            (name, f"{value:.4f}" if isinstance(value, float) else str(value))
            for name, value in self.as_dict().items()
        ]

    def __str__(self) -> str:
        cells = self._cells()
        widths = [max(len(name), len(value)) for name, value in cells]
        header = "  ".join(name.rjust(width) for (name, _), width in zip(cells, widths))
        row = "  ".join(value.rjust(width) for (_, value), width in zip(cells, widths))
        return f"{header}\n{row}"

    def _repr_html_(self) -> str:
        cells = self._cells()
        header = "".join(f"<th>{html.escape(name)}</th>" for name, _ in cells)
        row = "".join(f"<td>{value}</td>" for _, value in cells)
        return f"<table><thead><tr>{header}</tr></thead><tbody><tr>{row}</tr></tbody></table>"


def _as_labels(labels: np.ndarray | torch.Tensor | list[int], name: str) -> np.ndarray:
    values = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(
            f"{name} must be a 1-D array of integer labels, got shape {values.shape} and dtype {values.dtype}"
        )
    return values.astype(np.int64, copy=False)


def _pairs(counts: np.ndarray) -> int:
    """Number of unordered pairs within groups of the given sizes."""
    counts = counts.astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


def cluster_quality(
    pred_labels: np.ndarray | torch.Tensor | list[int], true_labels: np.ndarray | torch.Tensor | list[int]
) -> ClusterQuality:
    """Scores of predicted cluster labels (-1 = outlier) against true identity labels.

    Args:
        pred_labels: (N,) predicted cluster ids, -1 for outliers.
        true_labels: (N,) true identity ids (any integers; -1 has no special meaning here).

    Returns:
        A :class:`ClusterQuality` (``str()`` gives a one-row table, notebooks render it as HTML).

    Raises:
        ValueError: the label arrays are not 1-D integer arrays of the same length.
    """
    pred = _as_labels(pred_labels, "pred_labels")
    true = _as_labels(true_labels, "true_labels")
    if pred.shape != true.shape:
        raise ValueError(f"pred_labels and true_labels must have the same length, got {pred.size} and {true.size}")
    singletons = outliers_as_classes(pred)
    clustered = pred >= 0

    _, true_ids = np.unique(true, return_inverse=True)
    _, cell_counts = np.unique(singletons * (true_ids.max(initial=0) + 1) + true_ids, return_counts=True)
    together = _pairs(cell_counts)
    predicted_pairs = _pairs(np.bincount(singletons))
    true_pairs = _pairs(np.bincount(true_ids))
    precision = together / predicted_pairs if predicted_pairs else 0.0
    recall = together / true_pairs if true_pairs else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    if clustered.any():
        cells = np.unique(np.stack([pred[clustered], true_ids[clustered]]), axis=1, return_counts=True)
        (cluster_of_cell, _), counts = cells
        majority = np.zeros(pred.max() + 1, dtype=np.int64)
        np.maximum.at(majority, cluster_of_cell, counts)
        purity = majority.sum() / clustered.sum()
        ari_clustered = adjusted_rand_score(true[clustered], pred[clustered])
        nmi_clustered = normalized_mutual_info_score(true[clustered], pred[clustered])
    else:
        purity = ari_clustered = nmi_clustered = float("nan")
    return ClusterQuality(
        n_samples=int(pred.size),
        n_clusters=int(np.unique(pred[clustered]).size),
        n_outliers=int((~clustered).sum()),
        ari=float(adjusted_rand_score(true, singletons)),
        nmi=float(normalized_mutual_info_score(true, singletons)),
        ari_clustered=float(ari_clustered),
        nmi_clustered=float(nmi_clustered),
        purity=float(purity),
        pairwise_precision=float(precision),
        pairwise_recall=float(recall),
        pairwise_f1=float(f1),
    )
