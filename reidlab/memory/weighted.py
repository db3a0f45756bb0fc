"""SCWM's weighted memory: global and part centroids updated with kNN-agreement weights (Eq. 8-11)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from reidlab.cluster.agreement import global_agreement
from reidlab.cluster.dbscan import cluster_centroids
from reidlab.memory.base import (
    Memory,
    cluster_nce,
    least_similar_per_class,
    momentum_update,
)

# SCWM Eq. 10 puts the sample weight inside the log; a weight of 0 is floored here (value only).
_LOG_WEIGHT_FLOOR = 1e-6
_WEIGHTED_UPDATES = ("mean", "hard", "weighted")


class WeightedMemory(Memory):
    """SCWM's weighted memory: one centroid per cluster for the global stream and for every part stream.

    Hong et al., "Spatial Cascaded Clustering and Weighted Memory for Unsupervised Person
    Re-identification" (SCWM), section 3.3, Eq. 8-12. SCWM has no public code; the
    open choices are documented here. Stream 0 is the global feature f^g, streams 1..l the part
    features f^pk: ``features (B, S, D)`` with ``S = 1 + l``.

    * Weights (Eq. 8): a sample's raw weights are ``1 - alpha^g`` (global) and ``alpha^pk`` (parts), from
      the kNN agreement of Eq. 7 (:func:`reidlab.cluster.agreement.knn_agreement`, :meth:`raw_weights`).
      The paper L1-normalises them "in a batch"; reidlab normalises them within each class's samples in
      the batch (:meth:`class_weights`), so every class's weights sum to 1 per stream. The memory keeps
      the training set's agreements (``difficulty``) and looks the batch's up by dataset index.
    * Update (Eq. 9, written per sample in the paper) as a weighted mean, per class ``j`` in the batch
      and stream ``s``:
      ``c_j^s <- m c_j^s + (1 - m) sum_{i: y_i = j} w_i^s f_i^s``, re-normalised. SCWM Table 3's variants
      ("average", "hardest", "weighted" in the paper): ``"mean"`` (uniform weights: the class batch mean,
      like HHCL's Eq. 4), ``"hard"`` (all weight
      on the class's sample least similar to the centroid of that stream, Cluster Contrast's hard
      update; the first sample wins a tie) and ``"weighted"`` (the Eq. 8 weights). Classes absent from
      the batch keep their rows.
    * Loss (Eq. 10): weighted ClusterNCE of the global stream plus the mean over the part streams. The
      weight sits inside the log, ``-log(w exp(s_+) / sum_j exp(s_j)) = ClusterNCE - log w``, so it only
      shifts the loss value: w does not depend on the features and the gradient equals plain
      ClusterNCE's. A weight of 0 (a part whose neighbours share nothing with the global ones) is
      floored at 1e-6 inside the log to keep the value finite.
    * Part separation (Eq. 11, :meth:`separation_loss`): each part feature against the l part
      centroids of its own cluster, cross-entropy towards its own part.

    Args:
        centroids: (S, K, D) initial rows, stored L2-normalised (a copy); K clusters.
        difficulty: (N, l) kNN agreements alpha^pk of every training sample (Eq. 7), looked up by the
            batch's dataset ``indexes`` to weight the loss and the update; None: pass ``weights=``.
        momentum: m, 0.2 (SCWM section 4.2).
        temperature: tau, 0.05 (SCWM section 4.2).
        update: ``"weighted"`` (default, SCWM), ``"mean"`` or ``"hard"`` (SCWM Table 3).

    Attributes:
        centroids: (S, K, D) buffer; ``centroids[0]`` the global centroids, ``centroids[k]`` part k's.
        difficulty: (N, l) buffer or None.
        update_mode: the ``update`` argument.
    """

    centroids: Tensor
    difficulty: Tensor | None

    def __init__(
        self,
        centroids: Tensor,
        *,
        difficulty: Tensor | None = None,
        momentum: float = 0.2,
        temperature: float = 0.05,
        update: str = "weighted",
    ) -> None:
        super().__init__(momentum=momentum, temperature=temperature)
        if update not in _WEIGHTED_UPDATES:
            raise ValueError(f"update must be 'mean', 'hard' or 'weighted', got {update!r}")
        centroids = torch.as_tensor(centroids)
        if centroids.ndim != 3 or 0 in centroids.shape:
            raise ValueError(
                f"centroids must be a non-empty (S, K, D) array (streams, clusters, dim), got shape "
                f"{tuple(centroids.shape)}"
            )
        if difficulty is not None:
            difficulty = torch.as_tensor(difficulty)
            if difficulty.ndim != 2 or difficulty.shape[1] != centroids.shape[0] - 1:
                raise ValueError(
                    f"difficulty must be (N, l) with l = {centroids.shape[0] - 1} part streams, got shape "
                    f"{tuple(difficulty.shape)}"
                )
        self.update_mode = update
        self.register_buffer("centroids", F.normalize(centroids.detach().clone(), dim=2))
        self.register_buffer("difficulty", None if difficulty is None else difficulty.detach().clone())

    @classmethod
    def from_labels(
        cls,
        features: np.ndarray | Tensor,
        labels: np.ndarray | Tensor,
        *,
        difficulty: Tensor | None = None,
        momentum: float = 0.2,
        temperature: float = 0.05,
        update: str = "weighted",
    ) -> WeightedMemory:
        """The memory of one epoch: every stream's L2-normalised cluster means; outliers (-1) dropped.

        Args:
            features: (N, S, D) global (stream 0) and part features of the training set (NumPy or torch).
            labels: (N,) cluster ids 0..K-1, -1 for outliers.
            difficulty, momentum, temperature, update: see the class.
        """
        features = torch.as_tensor(features)
        if features.ndim != 3:
            raise ValueError(
                f"features must be (N, S, D) (streams: global then parts), got shape {tuple(features.shape)}"
            )
        centroids = torch.stack([cluster_centroids(features[:, s], labels) for s in range(features.shape[1])])
        return cls(centroids, difficulty=difficulty, momentum=momentum, temperature=temperature, update=update)

    @property
    def num_rows(self) -> int:
        """K, one row per cluster (in every stream)."""
        return self.centroids.shape[1]

    @property
    def feature_dim(self) -> int:
        return self.centroids.shape[2]

    @property
    def num_streams(self) -> int:
        """S = 1 + l: the global stream and the l part streams."""
        return self.centroids.shape[0]

    @staticmethod
    def raw_weights(alpha: Tensor) -> Tensor:
        """The numerators of Eq. 8: ``[1 - alpha^g, alpha^p1, ..., alpha^pl]``.

        Args:
            alpha: (B, l) kNN agreements of the batch samples (Eq. 7); alpha^g is their mean.

        Returns:
            (B, 1 + l), column 0 the global stream.
        """
        alpha = torch.as_tensor(alpha)
        if alpha.ndim != 2:
            raise ValueError(f"alpha must be (B, l), got shape {tuple(alpha.shape)}")
        return torch.cat([1.0 - global_agreement(alpha)[:, None], alpha], dim=1)

    @staticmethod
    def class_weights(raw: Tensor, targets: Tensor) -> Tensor:
        """Eq. 8's L1 normalisation, within each class's samples in the batch.

        ``w_i^s = raw_i^s / sum_{j: y_j = y_i} raw_j^s``; where a class's raw weights of a stream sum to
        0, its samples get the uniform ``1 / n_class`` instead. Applying it twice changes nothing.

        Args:
            raw: (B, S) non-negative raw weights (:meth:`raw_weights`).
            targets: (B,) cluster ids.

        Returns:
            (B, S) weights; per class and stream they sum to 1.
        """
        raw = torch.as_tensor(raw)
        targets = torch.as_tensor(targets, device=raw.device)
        if raw.ndim != 2 or targets.shape != raw.shape[:1]:
            raise ValueError(
                f"need raw (B, S) and targets (B,), got shapes {tuple(raw.shape)} and {tuple(targets.shape)}"
            )
        if not bool(torch.isfinite(raw).all()) or bool((raw < 0).any()):
            raise ValueError("raw weights must be finite and >= 0")
        _, inverse, counts = torch.unique(targets, return_inverse=True, return_counts=True)
        totals = raw.new_zeros(counts.numel(), raw.shape[1]).index_add_(0, inverse, raw)[inverse]  # (B, S)
        uniform = (1.0 / counts[inverse].to(raw.dtype))[:, None].expand_as(raw)
        return torch.where(totals > 0, raw / torch.where(totals > 0, totals, 1.0), uniform)

    def batch_weights(self, targets: Tensor, indexes: Tensor) -> Tensor:
        """Eq. 8's weights of a batch from the stored ``difficulty``: :meth:`class_weights` of
        :meth:`raw_weights` at the batch's dataset ``indexes (B,)``; ``(B, S)``."""
        if self.difficulty is None:
            raise ValueError("this memory has no difficulty to weight with: build it with difficulty= or pass weights=")
        raw = self.raw_weights(self.difficulty[indexes.to(self.difficulty.device)])
        return self.class_weights(raw, targets)

    def loss(
        self, features: Tensor, targets: Tensor, *, indexes: Tensor | None = None, weights: Tensor | None = None
    ) -> Tensor:
        """L_wNCE (SCWM Eq. 10): the global stream's term plus the mean of the part streams' terms.

        Each term is :func:`cluster_nce` against that stream's centroids, plus ``-mean_i log w_i`` with the
        Eq. 8 weights (the weight inside the log is a constant shift; same gradient).

        Args:
            features: (B, S, D) L2-normalised global and part embeddings.
            targets: (B,) cluster ids in [0, K).
            indexes: (B,) dataset indices; with a stored ``difficulty`` they give the weights.
            weights: (B, S) class-normalised Eq. 8 weights (:meth:`class_weights`), instead of ``indexes``.
                With neither, plain ClusterNCE in every stream.

        Returns:
            Scalar loss, mean over the batch.
        """
        if weights is None and indexes is not None and self.difficulty is not None:
            weights = self.batch_weights(targets, indexes)
        self._check_batch(features, targets, weights)
        terms = torch.stack(
            [cluster_nce(features[:, s], self.centroids[s], targets, self.temperature) for s in range(self.num_streams)]
        )  # (S,)
        if weights is not None:
            floored = weights.detach().to(features).clamp_min(_LOG_WEIGHT_FLOOR)
            terms = terms - torch.log(floored).mean(dim=0)
        return terms[0] + terms[1:].mean() if self.num_streams > 1 else terms[0]

    def separation_loss(self, features: Tensor, targets: Tensor) -> Tensor:
        """L_sep (SCWM Eq. 11): part k of a sample should be closest to part k's centroid of its cluster.

        ``-(1/l) sum_k log( exp(f^pk . c_y^pk / tau) / sum_j exp(f^pk . c_y^pj / tau) )``, mean over the
        batch; the denominator runs over the l part centroids of the sample's own cluster y (the
        paper's sum index ``i`` and ``c_+^{p_j}`` read as one index j over parts).

        Args:
            features: (B, S, D) embeddings; only the part streams 1..S-1 are used.
            targets: (B,) cluster ids in [0, K).

        Returns:
            Scalar; 0 when there is no part stream (S == 1).
        """
        self._check_batch(features, targets)
        num_parts = self.num_streams - 1
        if num_parts == 0:
            return features.new_zeros(())
        parts = features[:, 1:]  # (B, l, D)
        own = self.centroids[1:, targets].transpose(0, 1).to(features.dtype)  # (B, l, D): c_y^pj
        logits = parts @ own.transpose(1, 2) / self.temperature  # (B, l, l): [b, k, j] = f^pk . c_y^pj
        part_ids = torch.arange(num_parts, device=features.device).repeat(features.shape[0])
        return F.cross_entropy(logits.reshape(-1, num_parts), part_ids)

    @torch.no_grad()
    def update(
        self, features: Tensor, targets: Tensor, *, indexes: Tensor | None = None, weights: Tensor | None = None
    ) -> None:
        """Eq. 9 as a weighted mean per class and stream (``update`` mode, see the class).

        Args:
            features: (B, S, D) batch embeddings (detached here).
            targets: (B,) cluster ids in [0, K).
            indexes: (B,) dataset indices; with a stored ``difficulty`` they give the Eq. 8 weights.
            weights: (B, S) Eq. 8 weights instead of ``indexes`` (re-normalised within each class, a no-op
                for :meth:`class_weights` output). ``"weighted"`` needs one of the two; ``"mean"`` and
                ``"hard"`` use neither.
        """
        if weights is None and indexes is not None and self.difficulty is not None and self.update_mode == "weighted":
            weights = self.batch_weights(targets, indexes)
        self._check_batch(features, targets, weights)
        if self.update_mode == "weighted" and weights is None:
            raise ValueError(
                "update='weighted' needs the batch's indexes= (with a stored difficulty) or weights=, the (B, S) "
                "Eq. 8 weights (WeightedMemory.class_weights); "
                "use update='mean' or 'hard' to update without them"
            )
        x = features.detach()
        if x.shape[0] == 0:
            return
        sample_weights = self._update_weights(x, targets, weights)  # (B, S)
        classes, inverse = torch.unique(targets, return_inverse=True)
        sums = x.new_zeros(classes.numel(), *x.shape[1:]).index_add_(0, inverse, sample_weights[:, :, None] * x)
        for s in range(self.num_streams):
            momentum_update(self.centroids[s], classes, sums[:, s], self.momentum)

    def _update_weights(self, x: Tensor, targets: Tensor, weights: Tensor | None) -> Tensor:
        """(B, S) per-sample weights of the update, summing to 1 per class and stream."""
        if self.update_mode == "weighted":
            return self.class_weights(weights.to(x), targets)
        if self.update_mode == "mean":
            return self.class_weights(x.new_ones(x.shape[:2]), targets)
        similarity = (x * self.centroids[:, targets].transpose(0, 1).to(x.dtype)).sum(dim=2)  # (B, S)
        hard = x.new_zeros(x.shape[:2])
        for s in range(self.num_streams):
            hard[least_similar_per_class(similarity[:, s], targets), s] = 1.0
        return hard

    def _check_features(self, features: Tensor) -> None:
        if features.ndim != 3 or features.shape[1:] != (self.num_streams, self.feature_dim):
            raise ValueError(
                f"features must be (B, {self.num_streams}, {self.feature_dim}) (streams: global then parts) "
                f"to match the memory, got shape {tuple(features.shape)}"
            )

    def _check_batch(self, features: Tensor, targets: Tensor, weights: Tensor | None = None) -> None:
        self._check_features(features)
        self._check_ids(targets, features.shape[0], self.num_rows, "targets")
        if weights is not None:
            if weights.shape != features.shape[:2]:
                raise ValueError(
                    f"weights must be (B, S) = {tuple(features.shape[:2])} like features, got shape "
                    f"{tuple(weights.shape)}"
                )
            if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
                raise ValueError("weights must be finite and >= 0")

    def extra_repr(self) -> str:
        return (
            f"streams={self.num_streams}, rows={self.num_rows}, dim={self.feature_dim}, "
            f"update={self.update_mode!r}, momentum={self.momentum}, temperature={self.temperature}"
        )
