"""Pseudo-labels: k-reciprocal Jaccard distance, DBSCAN, SpCL's self-paced reliability, quality scores,
and the kNN agreement of part and global features (SCWM Eq. 7)."""

from reidlab.cluster.agreement import global_agreement, knn_agreement
from reidlab.cluster.dbscan import (
    DBSCANPseudoLabeler,
    EmptyClusteringError,
    cluster_centroids,
    dbscan_labels,
    outliers_as_classes,
)
from reidlab.cluster.jaccard import jaccard_distance
from reidlab.cluster.neighbors import knn_search
from reidlab.cluster.quality import ClusterQuality, cluster_quality
from reidlab.cluster.reliability import SelfPacedRefiner, one_minus_iou

__all__ = [
    "ClusterQuality",
    "DBSCANPseudoLabeler",
    "EmptyClusteringError",
    "SelfPacedRefiner",
    "cluster_centroids",
    "cluster_quality",
    "dbscan_labels",
    "global_agreement",
    "jaccard_distance",
    "knn_agreement",
    "knn_search",
    "one_minus_iou",
    "outliers_as_classes",
]
