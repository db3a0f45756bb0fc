"""Pseudo-labels by DBSCAN on a precomputed distance, and what the memories need from them.

docs/methods.md, section 1 steps 2-3 and section 3: every method runs scikit-learn's DBSCAN with ``min_samples=4`` on
the k-reciprocal Jaccard distance (:func:`reidlab.cluster.jaccard.jaccard_distance`); label -1 marks an
outlier. Cluster Contrast, HHCL and SCWM drop outliers from training (keep ``labels >= 0``); SpCL keeps
each as a one-image class (:func:`outliers_as_classes`). Memories start from :func:`cluster_centroids`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.cluster import DBSCAN

from reidlab.cluster.jaccard import entries_within

__all__ = [
    "DBSCANPseudoLabeler",
    "EmptyClusteringError",
    "cluster_centroids",
    "dbscan_labels",
    "outliers_as_classes",
]


class EmptyClusteringError(ValueError):
    """DBSCAN put every sample in the outlier class: there is nothing to train on."""


def dbscan_labels(
    dist: np.ndarray | sp.spmatrix,
    *,
    eps: float,
    min_samples: int = 4,
    metric: str = "precomputed",
    n_jobs: int | None = None,
) -> np.ndarray:
    """DBSCAN labels (N,) int64, -1 for outliers, possibly all -1.

    A sparse precomputed distance is never densified. Its stored entries are the only neighbour
    candidates (scikit-learn's convention); for the sparse Jaccard distance a pair that is not stored is
    at distance 1, so the labels equal those of the dense matrix for any eps < 1, and eps >= 1 is refused.
    Only entries <= eps are handed to scikit-learn, which spares it sorting every row by value.

    Args:
        dist: (N, N) distance (dense array or SciPy sparse matrix) for ``metric="precomputed"``,
            otherwise (N, D) features.
        eps: neighbourhood radius (> 0).
        min_samples: neighbours within eps, the sample itself included, that make a core sample.
        metric: ``"precomputed"`` or any metric ``sklearn.cluster.DBSCAN`` accepts.
        n_jobs: parallel jobs of the neighbour search (scikit-learn's meaning).

    Raises:
        ValueError: eps <= 0, min_samples < 1, a non-square precomputed distance, NaN, infinite or
            negative distances, or a sparse distance with eps >= 1.
    """
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    if int(min_samples) != min_samples or min_samples < 1:
        raise ValueError(f"min_samples must be a positive integer, got {min_samples}")
    if metric == "precomputed":
        if dist.ndim != 2 or dist.shape[0] != dist.shape[1]:
            raise ValueError(f"a precomputed distance must be a square (N, N) matrix, got shape {dist.shape}")
        _check_distances(dist)
        if sp.issparse(dist):
            if eps >= 1:
                raise ValueError(
                    f"eps must be < 1 with a sparse distance, got {eps}: pairs that are not stored are at "
                    "distance 1 and DBSCAN cannot count them as neighbours; use a dense distance for eps >= 1"
                )
            dist = entries_within(sp.csr_matrix(dist), eps)
    labels = DBSCAN(eps=eps, min_samples=int(min_samples), metric=metric, n_jobs=n_jobs).fit_predict(dist)
    return labels.astype(np.int64, copy=False)


def _check_distances(dist: np.ndarray | sp.spmatrix) -> None:
    """Refuse NaN, infinite or negative distances (dense or sparse), naming how many and where."""
    values = dist.data if sp.issparse(dist) else np.asarray(dist)
    bad = ~np.isfinite(values)
    negative = ~bad & (values < 0)
    if not (bad.any() or negative.any()):
        return
    rows = (sp.coo_matrix(dist).row[(bad | negative).ravel()] if sp.issparse(dist)
            else np.argwhere(bad | negative)[:, 0])
    what = f"{int(bad.sum())} NaN or infinite" if bad.any() else f"{int(negative.sum())} negative"
    raise ValueError(f"the distance matrix holds {what} entries (first in row {int(rows.min())}): DBSCAN needs "
                     "finite distances >= 0. NaN usually comes from NaN features (a diverged model or a broken "
                     "image): check the features with torch.isfinite before clustering")


class DBSCANPseudoLabeler:
    """DBSCAN pseudo-labels with the settings of the four methods (docs/methods.md, section 3), scikit-learn style.

    Args:
        eps: neighbourhood radius on the Jaccard distance. 0.6 is the Market-1501 default of SpCL and
            Cluster Contrast (HHCL uses 0.45 on Market, SCWM 0.5; 0.7 on MSMT17 for both).
        min_samples: 4, as in every training script of the four methods.
        metric: ``"precomputed"`` (default): ``fit`` takes an (N, N) dense or sparse distance.
        n_jobs: parallel jobs of scikit-learn's neighbour search.

    Attributes:
        labels_: (N,) int64 cluster id per sample, 0..n_clusters_-1, -1 for outliers.
        n_clusters_: number of clusters.
        outliers_: (N,) bool, True for outliers (``labels_ == -1``).
        n_outliers_: number of outliers.
    """

    def __init__(
        self, eps: float = 0.6, min_samples: int = 4, *, metric: str = "precomputed", n_jobs: int | None = None
    ) -> None:
        self.eps = eps
        self.min_samples = min_samples
        self.metric = metric
        self.n_jobs = n_jobs

    def fit(self, dist: np.ndarray | sp.spmatrix) -> DBSCANPseudoLabeler:
        """Cluster ``dist`` (N, N) (or (N, D) features for another metric); see :func:`dbscan_labels`.

        Raises:
            EmptyClusteringError: every sample is an outlier.
        """
        labels = dbscan_labels(dist, eps=self.eps, min_samples=self.min_samples, metric=self.metric, n_jobs=self.n_jobs)
        if labels.max(initial=-1) < 0:
            raise EmptyClusteringError(_empty_message(dist, self.eps, self.min_samples, self.metric))
        self.labels_ = labels
        self.n_clusters_ = int(labels.max()) + 1
        self.outliers_ = labels == -1
        self.n_outliers_ = int(self.outliers_.sum())
        return self

    def fit_predict(self, dist: np.ndarray | sp.spmatrix) -> np.ndarray:
        """``fit(dist)`` and return ``labels_``."""
        return self.fit(dist).labels_

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(eps={self.eps}, min_samples={self.min_samples}, "
            f"metric={self.metric!r}, n_jobs={self.n_jobs})"
        )


def _empty_message(dist: np.ndarray | sp.spmatrix, eps: float, min_samples: int, metric: str) -> str:
    n = dist.shape[0]
    message = f"DBSCAN with eps={eps} and min_samples={min_samples} formed no cluster among {n} samples"
    if metric != "precomputed" or min_samples < 2 or n < min_samples:
        return message + "; try a larger eps or a smaller min_samples"
    k = min_samples - 1
    suggestion = float(np.median(_kth_neighbour_distance(dist, k)))
    return (
        message + f"; try a larger eps: half the samples have {k} others (min_samples - 1) within "
        f"{suggestion:.3f}, so they would be core samples at that eps"
    )


def _kth_neighbour_distance(dist: np.ndarray | sp.spmatrix, k: int) -> np.ndarray:
    """(N,) distance of every sample to its k-th nearest other sample (1 where a sparse row has fewer)."""
    if not sp.issparse(dist):
        others = np.array(dist, dtype=np.float64)
        np.fill_diagonal(others, np.inf)
        return np.partition(others, k - 1, axis=1)[:, k - 1]
    dist = sp.csr_matrix(dist)
    result = np.ones(dist.shape[0])
    for row in range(dist.shape[0]):
        span = slice(dist.indptr[row], dist.indptr[row + 1])
        values = dist.data[span][dist.indices[span] != row]
        if values.size >= k:
            result[row] = np.partition(values, k - 1)[k - 1]
    return result


def outliers_as_classes(labels: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Give every outlier (-1) its own new class, numbered after the clusters in sample order.

    SpCL keeps outliers as one-image classes (``generate_pseudo_labels`` in ``spcl_train_usl.py``).
    New ids start at ``labels.max() + 1``, which equals SpCL's number of clusters for DBSCAN labels.

    Args:
        labels: (N,) int cluster ids, -1 for outliers (NumPy or torch).

    Returns:
        (N,) labels of the same type and device, without -1.
    """
    is_torch = isinstance(labels, torch.Tensor)
    values = labels.detach().cpu().numpy() if is_torch else np.asarray(labels)
    outliers = values == -1
    result = values.copy()
    result[outliers] = values.max(initial=-1) + 1 + np.arange(int(outliers.sum()))
    return torch.as_tensor(result, device=labels.device) if is_torch else result


def cluster_centroids(
    features: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor
) -> np.ndarray | torch.Tensor:
    """L2-normalised mean feature of every cluster (docs/methods.md, section 1 step 3); outliers (-1) are left out.

    Args:
        features: (N, D) NumPy array or torch tensor (any device).
        labels: (N,) cluster ids 0..C-1 (every id used), -1 for outliers; NumPy or torch.

    Returns:
        centroids (C, D), same type, dtype and device as ``features``; row c belongs to cluster c.

    Raises:
        ValueError: shapes disagree, there is no cluster, or some id in 0..C-1 has no member.
    """
    label_values = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if features.ndim != 2 or label_values.shape != (features.shape[0],):
        raise ValueError(
            f"need features (N, D) and labels (N,), got shapes {tuple(features.shape)} and {label_values.shape}"
        )
    if label_values.min(initial=0) < -1:
        raise ValueError(f"labels must be cluster ids >= 0 or -1 for outliers, got {label_values.min()}")
    members = label_values >= 0
    if not members.any():
        raise ValueError("labels hold no cluster (all are -1)")
    counts = np.bincount(label_values[members])
    if (counts == 0).any():
        raise ValueError(
            f"cluster ids must run from 0 to {counts.size - 1} without gaps; ids with no member: "
            f"{np.flatnonzero(counts == 0)[:10].tolist()}"
        )
    if isinstance(features, torch.Tensor):
        keep = torch.from_numpy(np.flatnonzero(members)).to(features.device)
        ids = torch.from_numpy(label_values[members]).to(features.device)
        sums = features.new_zeros(counts.size, features.shape[1]).index_add_(0, ids, features[keep])
        return F.normalize(sums / torch.from_numpy(counts).to(sums)[:, None], dim=1)
    features = np.asarray(features)
    membership = sp.csr_matrix(
        (np.ones(int(members.sum()), dtype=features.dtype), (label_values[members], np.flatnonzero(members))),
        shape=(counts.size, features.shape[0]),
    )
    means = np.asarray(membership @ features) / counts[:, None].astype(features.dtype)
    return (means / np.linalg.norm(means, axis=1, keepdims=True)).astype(features.dtype, copy=False)
