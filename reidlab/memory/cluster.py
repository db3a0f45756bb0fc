"""Cluster Contrast's cluster memory and ClusterNCE (Dai et al., ACCV 2022)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from reidlab.cluster.dbscan import cluster_centroids
from reidlab.memory.base import (
    Memory,
    check_label_smoothing,
    cluster_nce,
    least_similar_per_class,
    momentum_update,
    sequential_momentum_update,
)


class ClusterMemory(Memory):
    """Cluster Contrast's memory: one L2-normalised centroid per cluster and the ClusterNCE loss.

    Dai et al., "Cluster Contrast for Unsupervised Person Re-Identification", ACCV 2022; docs/methods.md,
    section 4.2; reference ``clustercontrast/models/cm.py``. Re-created every epoch from the centroids
    (:meth:`from_labels`). Taught in ``notebooks/02_memory_banks.ipynb``.

    Update variants (each row re-normalised after every change):

    * ``"mean"``: sequential per sample in batch order, ``c_y <- m c_y + (1 - m) x`` (``CM``).
    * ``"hard"``: per class present in the batch, only the sample least similar to ``c_y`` (the
      hardest positive; ``CM_Hard``, where the variable ``median`` holds this argmin; ties go to the
      first such sample).

    Args:
        centroids: (C, D) initial rows, stored L2-normalised (a copy).
        momentum: m. Default 0.1, the value of the README's training commands (docs/methods.md, section 4.2); the
            reference argparse default is 0.2.
        temperature: tau, 0.05 (docs/methods.md, section 4).
        update: ``"mean"`` (default, the reported setup) or ``"hard"``.
        label_smoothing: epsilon of the cross-entropy (HHCL Table 3's "LS"); 0 (default) is Cluster
            Contrast's plain ClusterNCE.
        smoothing_topk: spread epsilon over the top-scoring clusters, as HHCL's code
            (:func:`reidlab.memory.base.smoothed_cross_entropy`).

    Attributes:
        centroids: (C, D) buffer.
        update_mode: the ``update`` argument.
    """

    centroids: Tensor

    def __init__(
        self, centroids: Tensor, *, momentum: float = 0.1, temperature: float = 0.05, update: str = "mean",
        label_smoothing: float = 0.0, smoothing_topk: bool = False,
    ) -> None:
        super().__init__(momentum=momentum, temperature=temperature)
        if update not in ("mean", "hard"):
            raise ValueError(f"update must be 'mean' or 'hard', got {update!r}")
        self.label_smoothing = check_label_smoothing(label_smoothing)
        self.smoothing_topk = bool(smoothing_topk)
        centroids = torch.as_tensor(centroids)
        if centroids.ndim != 2 or centroids.shape[0] == 0:
            raise ValueError(f"centroids must be a non-empty (C, D) matrix, got shape {tuple(centroids.shape)}")
        self.update_mode = update
        self.register_buffer("centroids", F.normalize(centroids.detach().clone(), dim=1))

    @classmethod
    def from_labels(
        cls,
        features: np.ndarray | Tensor,
        labels: np.ndarray | Tensor,
        *,
        momentum: float = 0.1,
        temperature: float = 0.05,
        update: str = "mean",
        label_smoothing: float = 0.0,
        smoothing_topk: bool = False,
    ) -> ClusterMemory:
        """The memory of one epoch: the centroids of the clusters (docs/methods.md, section 1 step 3); outliers dropped.

        Args:
            features: (N, D) L2-normalised training features (NumPy or torch; rows on its device).
            labels: (N,) cluster ids 0..C-1, -1 for outliers.
            momentum, temperature, update, label_smoothing, smoothing_topk: see the class.
        """
        centroids = torch.as_tensor(cluster_centroids(features, labels))
        return cls(centroids, momentum=momentum, temperature=temperature, update=update,
                   label_smoothing=label_smoothing, smoothing_topk=smoothing_topk)

    @property
    def num_rows(self) -> int:
        """C, one row per cluster."""
        return self.centroids.shape[0]

    @property
    def feature_dim(self) -> int:
        return self.centroids.shape[1]

    def loss(self, features: Tensor, targets: Tensor, *, indexes: Tensor | None = None) -> Tensor:
        """ClusterNCE (:func:`cluster_nce`) of ``features`` (B, D) with ``targets`` (B,) in [0, C).

        ``indexes`` is not used.
        """
        self._check_features(features)
        self._check_ids(targets, features.shape[0], self.num_rows, "targets")
        return cluster_nce(features, self.centroids, targets, self.temperature,
                           label_smoothing=self.label_smoothing, smoothing_topk=self.smoothing_topk)

    @torch.no_grad()
    def update(self, features: Tensor, targets: Tensor, *, indexes: Tensor | None = None) -> None:
        """Momentum update of the batch's classes (``update="mean"`` or ``"hard"``, see the class).

        Args:
            features: (B, D) batch embeddings (detached here).
            targets: (B,) cluster ids in [0, C).
            indexes: not used.
        """
        self._check_features(features)
        self._check_ids(targets, features.shape[0], self.num_rows, "targets")
        x = features.detach()
        if x.shape[0] == 0:
            return
        if self.update_mode == "mean":
            sequential_momentum_update(self.centroids, targets, x, self.momentum)
            return
        hardest = self.hardest_positives(x, targets)
        momentum_update(self.centroids, targets[hardest], x[hardest], self.momentum)

    @torch.no_grad()
    def hardest_positives(self, features: Tensor, targets: Tensor) -> Tensor:
        """Batch positions of the sample least similar to its centroid, one per class in the batch.

        Args:
            features: (B, D) embeddings.
            targets: (B,) cluster ids.

        Returns:
            (K,) positions in the batch, one per distinct target in increasing class order; the first
            position wins a tie.
        """
        similarity = (features * self.centroids[targets].to(features.dtype)).sum(dim=1)  # (B,)
        return least_similar_per_class(similarity, targets)

    def extra_repr(self) -> str:
        smoothing = f", label_smoothing={self.label_smoothing}" if self.label_smoothing else ""
        return (
            f"rows={self.num_rows}, dim={self.feature_dim}, update={self.update_mode!r}, "
            f"momentum={self.momentum}, temperature={self.temperature}{smoothing}"
        )
