"""SpCL's self-paced cluster reliability criterion (docs/methods.md, section 4.1).

Ge et al., "Self-paced Contrastive Learning with Hybrid Memory for Domain Adaptive Object Re-ID", NeurIPS
2020, as released in ``examples/spcl_train_usl.py``.

Each epoch SpCL clusters at eps, eps - gap (tight) and eps + gap (loose). With S_i the cluster of sample i
(an outlier's set is {i} alone, as SpCL numbers outliers as one-image classes):

* R_comp(i) = 1 - IoU(S_i, tight set of i), R_indep(i) = 1 - IoU(S_i, loose set of i) (lower is better);
* per cluster, the minimum of each over its members;
* the independence threshold is the 90th percentile of the clusters' R_indep (clusters with more than
  one member), taken at the first clustering (epoch 0) and kept afterwards;
* a sample keeps its cluster if its cluster's R_indep <= threshold and its own R_comp <= its cluster's
  minimum R_comp (so only the members of the most compact part survive); otherwise it becomes an
  un-clustered instance.

The released code builds N x N label-equality matrices; here the IoUs come from counts of label pairs.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from reidlab.cluster.dbscan import (
    DBSCANPseudoLabeler,
    dbscan_labels,
    outliers_as_classes,
)

__all__ = ["SelfPacedRefiner", "one_minus_iou"]


def one_minus_iou(labels: np.ndarray, other: np.ndarray) -> np.ndarray:
    """1 - IoU of the sets {j : labels[j] == labels[i]} and {j : other[j] == other[i]} for every i.

    -1 (outlier) is a class of its own per sample in both labelings. Computed in float32 like SpCL
    (``1 - min(...).sum() / max(...).sum()`` on float label-equality matrices).

    Args:
        labels: (N,) int cluster ids, -1 for outliers.
        other: (N,) int cluster ids of another clustering of the same samples.

    Returns:
        (N,) float32 in [0, 1].
    """
    a = outliers_as_classes(np.asarray(labels))
    b = outliers_as_classes(np.asarray(other))
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"labels must be two (N,) arrays of the same length, got shapes {a.shape} and {b.shape}")
    _, joint, joint_count = np.unique(a * (b.max() + 1) + b, return_inverse=True, return_counts=True)
    intersection = joint_count[joint]
    union = np.bincount(a)[a] + np.bincount(b)[b] - intersection
    return np.float32(1) - intersection.astype(np.float32) / union.astype(np.float32)


class SelfPacedRefiner:
    """Pseudo-labels with SpCL's self-paced reliability criterion, scikit-learn style.

    The first call to :meth:`fit` fixes ``indep_threshold_`` (SpCL computes it at epoch 0 only); later
    calls reuse it. Use a new refiner to start over.

    Args:
        eps: DBSCAN radius (SpCL default 0.6, docs/methods.md, section 3).
        eps_gap: the tight and loose clusterings use eps - eps_gap and eps + eps_gap (SpCL's
            ``--eps-gap``, default 0.02).
        percentile: percentile of the clusters' R_indep used as the threshold (SpCL: 90), taken as SpCL
            does: ``sorted(values)[min(n - 1, round(n * percentile / 100))]``, no interpolation.
        min_samples: DBSCAN ``min_samples`` (4 in SpCL).
        n_jobs: parallel jobs of scikit-learn's neighbour search.

    Attributes:
        labels_: (N,) refined labels: the kept members of each cluster, clusters renumbered 0..C-1 in the
            order of their DBSCAN ids; -1 for un-clustered samples (DBSCAN outliers and rejected members;
            :func:`reidlab.cluster.dbscan.outliers_as_classes` turns them into SpCL's one-image classes).
        n_clusters_: number of clusters left in ``labels_``.
        dbscan_labels_, tight_labels_, loose_labels_: (N,) DBSCAN labels at eps, eps - gap, eps + gap.
        r_comp_, r_indep_: (N,) float32 per-sample 1 - IoU with the tight and the loose clusters.
        cluster_r_comp_, cluster_r_indep_: (K,) minimum of the above over the members of each of the K
            DBSCAN clusters (indexed by ``dbscan_labels_``).
        indep_threshold_: the fixed R_indep threshold.
    """

    def __init__(
        self,
        eps: float = 0.6,
        *,
        eps_gap: float = 0.02,
        percentile: float = 90,
        min_samples: int = 4,
        n_jobs: int | None = None,
    ) -> None:
        self.eps = eps
        self.eps_gap = eps_gap
        self.percentile = percentile
        self.min_samples = min_samples
        self.n_jobs = n_jobs

    def fit(self, dist: np.ndarray | sp.spmatrix) -> SelfPacedRefiner:
        """Cluster ``dist`` (N, N) (dense or sparse, see :func:`dbscan_labels`) at the three radii and refine.

        Raises:
            ValueError: eps_gap not in (0, eps), percentile not in [0, 100].
            EmptyClusteringError: DBSCAN at eps forms no cluster.
        """
        if not 0 < self.eps_gap < self.eps:
            raise ValueError(f"eps_gap must be in (0, eps={self.eps}), got {self.eps_gap}")
        if not 0 <= self.percentile <= 100:
            raise ValueError(f"percentile must be in [0, 100], got {self.percentile}")
        labels = DBSCANPseudoLabeler(self.eps, self.min_samples, n_jobs=self.n_jobs).fit_predict(dist)
        options = dict(min_samples=self.min_samples, n_jobs=self.n_jobs)
        tight = dbscan_labels(dist, eps=self.eps - self.eps_gap, **options)
        loose = dbscan_labels(dist, eps=self.eps + self.eps_gap, **options)
        r_comp, r_indep = one_minus_iou(labels, tight), one_minus_iou(labels, loose)

        members = labels >= 0
        n_clusters = int(labels.max()) + 1
        cluster_r_comp = np.full(n_clusters, np.inf, dtype=np.float32)
        cluster_r_indep = np.full(n_clusters, np.inf, dtype=np.float32)
        np.minimum.at(cluster_r_comp, labels[members], r_comp[members])
        np.minimum.at(cluster_r_indep, labels[members], r_indep[members])
        if not hasattr(self, "indep_threshold_"):
            self.indep_threshold_ = self._threshold(cluster_r_indep[np.bincount(labels[members]) > 1])

        kept = members.copy()
        kept[members] = (cluster_r_indep[labels[members]] <= self.indep_threshold_) & (
            r_comp[members] <= cluster_r_comp[labels[members]]
        )
        _, refined = np.unique(labels[kept], return_inverse=True)
        self.labels_ = np.full_like(labels, -1)
        self.labels_[kept] = refined
        self.n_clusters_ = int(refined.max(initial=-1)) + 1
        self.dbscan_labels_, self.tight_labels_, self.loose_labels_ = labels, tight, loose
        self.r_comp_, self.r_indep_ = r_comp, r_indep
        self.cluster_r_comp_, self.cluster_r_indep_ = cluster_r_comp, cluster_r_indep
        return self

    def fit_predict(self, dist: np.ndarray | sp.spmatrix) -> np.ndarray:
        """``fit(dist)`` and return ``labels_``."""
        return self.fit(dist).labels_

    def _threshold(self, values: np.ndarray) -> float:
        """SpCL's percentile: the sorted value at index min(n - 1, round(n * p / 100)), round half to even."""
        if values.size == 0:
            raise ValueError("no cluster has more than one member, so the R_indep threshold is undefined")
        position = min(values.size - 1, int(np.round(values.size * (self.percentile / 100))))
        return float(np.sort(values)[position])

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(eps={self.eps}, eps_gap={self.eps_gap}, percentile={self.percentile}, "
            f"min_samples={self.min_samples}, n_jobs={self.n_jobs})"
        )
