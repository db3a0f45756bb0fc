"""Pseudo-labels: k-reciprocal Jaccard distance, DBSCAN, SpCL's self-paced reliability, quality scores."""

from reidlab.cluster.dbscan import (
    DBSCANPseudoLabeler,
    EmptyClusteringError,
    cluster_centroids,
    dbscan_labels,
    outliers_as_classes,
)
from reidlab.cluster.jaccard import jaccard_distance
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
    "jaccard_distance",
    "one_minus_iou",
    "outliers_as_classes",
]
