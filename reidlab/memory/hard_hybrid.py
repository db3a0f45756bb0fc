"""HHCL's hybrid memory: cluster centroids plus hard instances (Hu et al., Eq. 2-8)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from reidlab.cluster.dbscan import cluster_centroids
from reidlab.memory.base import (
    Memory,
    check_label_smoothing,
    cluster_nce,
    momentum_update,
    occurrence_rank,
    smoothed_cross_entropy,
)


class MinedSlots(NamedTuple):
    """Instance slots picked by HHCL's hard mining (HHCL Eqs. 6-7) for a batch.

    Attributes:
        positive: (B,) slot of the sample's own class with the lowest similarity (Eq. 6).
        per_class: (B, C) the slot each class contributes to the logits of Eq. 5: the slot with the
            highest similarity (Eq. 7, hardest negative) for every other class, and ``positive`` in the
            column of the sample's own class. ``slot_indexes[c, per_class[b, c]]`` is the dataset image.
    """

    positive: Tensor
    per_class: Tensor


class HardHybridMemory(Memory):
    """HHCL's hybrid memory: cluster centroids plus P hard-instance slots per cluster.

    Hu et al., "Hard-sample Guided Hybrid Contrast Learning for Unsupervised Person
    Re-Identification", 2021 (HHCL Eqs. 2-8); docs/methods.md, section 4.3; the paper's memory is ``CMhybrid_v2``
    in ``hhcl/models/cm.py`` (``CMhybrid``, two centroid sets, is another variant). Taught in
    ``notebooks/03_hard_mining.ipynb``.

    * Loss (Eq. 2): ``L = mu L_cls + (1 - mu) L_ins``; a term whose weight is 0 is not computed.
    * L_cls (Eq. 3): ClusterNCE against the centroids (:func:`cluster_nce`).
    * L_ins (Eq. 5): logits over the C classes, one slot per class: the own class's slot with the
      lowest similarity to the query (hardest positive, Eq. 6), every other class's slot with the
      highest (hardest negative, Eq. 7); divided by tau_ins; cross-entropy.
    * Update, after the optimiser step: every class in the batch moves its centroid towards the batch
      mean of its features (Eq. 4), ``c_y <- m c_y + (1 - m) mean_{i: y_i = y} x_i``, re-normalised;
      and its slots are overwritten by its batch features, no momentum (Eq. 8): the class's k-th
      feature in batch order goes to slot k. With fewer than P features in the batch, the remaining
      slots keep their rows (as ``CMhybrid_v2``); with more than P, only the first P are stored (the
      reference raises an index error then). ``CMhybrid_v2`` stores slot rows as given (the features
      are L2-normalised), and so does this class.

    Args:
        centroids: (C, D) initial centroids, stored L2-normalised.
        instances: (C, P, D) initial slot rows, stored L2-normalised.
        slot_indexes: (C, P) dataset index of the image in each slot (-1: unknown); default all -1.
        mu: weight of L_cls, in [0, 1]; 0.5 (HHCL Eq. 2, the paper's default).
        momentum: m of the centroid update, 0.1 (HHCL's ``--momentum`` default; docs/methods.md, section 4.3).
        temperature: tau_c of L_cls, 0.05 (docs/methods.md, section 4).
        instance_temperature: tau_ins of L_ins; None (default) uses ``temperature``, as HHCL's code does
            (one ``--temp`` for both, 0.05; docs/methods.md, section 4.3).
        label_smoothing: epsilon of both cross-entropies (HHCL Table 3's "LS": HHCL's ``ClusterMemory`` uses
            its smoothed cross-entropy for both terms); 0 (default) is off.
        smoothing_topk: spread epsilon over the top-scoring classes, as HHCL's code
            (:func:`reidlab.memory.base.smoothed_cross_entropy`).

    Attributes:
        centroids: (C, D) buffer.
        instances: (C, P, D) buffer; ``instances[c, k]`` is slot k of cluster c (row ``C * (k + 1) + c``
            of ``CMhybrid_v2``'s memory).
        slot_indexes: (C, P) int64 buffer, dataset index of each slot's image; -1 after an update
            without ``indexes``.
    """

    centroids: Tensor
    instances: Tensor
    slot_indexes: Tensor

    def __init__(
        self,
        centroids: Tensor,
        instances: Tensor,
        *,
        slot_indexes: Tensor | None = None,
        mu: float = 0.5,
        momentum: float = 0.1,
        temperature: float = 0.05,
        instance_temperature: float | None = None,
        label_smoothing: float = 0.0,
        smoothing_topk: bool = False,
    ) -> None:
        super().__init__(momentum=momentum, temperature=temperature)
        self.label_smoothing = check_label_smoothing(label_smoothing)
        self.smoothing_topk = bool(smoothing_topk)
        if not 0.0 <= mu <= 1.0:
            raise ValueError(f"mu must be in [0, 1], got {mu}")
        instance_temperature = temperature if instance_temperature is None else instance_temperature
        if not instance_temperature > 0:
            raise ValueError(f"instance_temperature must be > 0, got {instance_temperature}")
        centroids, instances = torch.as_tensor(centroids), torch.as_tensor(instances)
        if centroids.ndim != 2 or centroids.shape[0] == 0:
            raise ValueError(f"centroids must be a non-empty (C, D) matrix, got shape {tuple(centroids.shape)}")
        num_clusters, dim = centroids.shape
        if instances.ndim != 3 or instances.shape[::2] != (num_clusters, dim) or instances.shape[1] == 0:
            raise ValueError(
                f"instances must be ({num_clusters}, P, {dim}) with P >= 1 to match centroids (C, D), "
                f"got shape {tuple(instances.shape)}"
            )
        if slot_indexes is None:
            slot_indexes = torch.full(instances.shape[:2], -1, dtype=torch.long, device=instances.device)
        slot_indexes = torch.as_tensor(slot_indexes)
        if slot_indexes.shape != instances.shape[:2]:
            raise ValueError(
                f"slot_indexes must be {tuple(instances.shape[:2])} (C, P), got shape {tuple(slot_indexes.shape)}"
            )
        self.mu = float(mu)
        self.instance_temperature = float(instance_temperature)
        self.register_buffer("centroids", F.normalize(centroids.detach().clone(), dim=1))
        self.register_buffer("instances", F.normalize(instances.detach().clone(), dim=2))
        self.register_buffer("slot_indexes", slot_indexes.detach().clone().long())

    @classmethod
    def from_labels(
        cls,
        features: np.ndarray | Tensor,
        labels: np.ndarray | Tensor,
        *,
        num_instances: int = 16,
        seed: int | np.random.Generator | None = None,
        mu: float = 0.5,
        momentum: float = 0.1,
        temperature: float = 0.05,
        instance_temperature: float | None = None,
        label_smoothing: float = 0.0,
        smoothing_topk: bool = False,
    ) -> HardHybridMemory:
        """The memory of one epoch (HHCL Algorithm 1 line 4); outliers (-1) dropped.

        Centroids are the L2-normalised cluster means; each cluster's P slots hold P of its members
        drawn uniformly with replacement (``generate_random_features`` of HHCL's ``train.py``).

        Args:
            features: (N, D) L2-normalised training features (NumPy or torch).
            labels: (N,) cluster ids 0..C-1, -1 for outliers.
            num_instances: P, slots per cluster; HHCL sets it to the instances per identity of the
                batch (16, docs/methods.md, section 4.3).
            seed: seed or ``numpy.random.Generator`` of the draw (same seed, same slots).
            mu, momentum, temperature, instance_temperature, label_smoothing, smoothing_topk: see the class.
        """
        if int(num_instances) != num_instances or num_instances < 1:
            raise ValueError(f"num_instances must be a positive integer, got {num_instances}")
        features = torch.as_tensor(features)
        centroids = cluster_centroids(features, labels)
        label_values = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
        members = np.flatnonzero(label_values >= 0)
        by_cluster = members[np.argsort(label_values[members], kind="stable")]  # members grouped by id
        sizes = np.bincount(label_values[members])
        starts = np.cumsum(sizes) - sizes
        draws = np.random.default_rng(seed).integers(0, sizes[:, None], size=(sizes.size, int(num_instances)))
        slot_indexes = torch.from_numpy(by_cluster[starts[:, None] + draws]).to(features.device)
        return cls(
            centroids, features[slot_indexes], slot_indexes=slot_indexes, mu=mu, momentum=momentum,
            temperature=temperature, instance_temperature=instance_temperature, label_smoothing=label_smoothing,
            smoothing_topk=smoothing_topk,
        )

    @property
    def num_clusters(self) -> int:
        """C."""
        return self.centroids.shape[0]

    @property
    def num_instances(self) -> int:
        """P, slots per cluster."""
        return self.instances.shape[1]

    @property
    def num_rows(self) -> int:
        """C * (P + 1): the centroids and the instance slots (``CMhybrid_v2``'s memory size)."""
        return self.num_clusters * (self.num_instances + 1)

    @property
    def feature_dim(self) -> int:
        return self.centroids.shape[1]

    def loss(self, features: Tensor, targets: Tensor, *, indexes: Tensor | None = None) -> Tensor:
        """``mu L_cls + (1 - mu) L_ins`` (HHCL Eq. 2) of ``features`` (B, D), ``targets`` (B,) in [0, C).

        ``indexes`` is not used.
        """
        self._check_batch(features, targets)
        total = features.new_zeros(())
        if self.mu > 0:
            total = total + self.mu * self._cluster_loss(features, targets)
        if self.mu < 1:
            total = total + (1.0 - self.mu) * self._instance_loss(features, targets)
        return total

    def cluster_loss(self, features: Tensor, targets: Tensor) -> Tensor:
        """L_cls (HHCL Eq. 3): ClusterNCE against the centroids."""
        self._check_batch(features, targets)
        return self._cluster_loss(features, targets)

    def instance_loss(self, features: Tensor, targets: Tensor) -> Tensor:
        """L_ins (HHCL Eq. 5): cross-entropy over the hardest positive and the hardest negatives."""
        self._check_batch(features, targets)
        return self._instance_loss(features, targets)

    @torch.no_grad()
    def mine(self, features: Tensor, targets: Tensor) -> MinedSlots:
        """The slots HHCL's hard mining picks for a batch (Eqs. 6-7); see :class:`MinedSlots`.

        Args:
            features: (B, D) embeddings.
            targets: (B,) cluster ids in [0, C).
        """
        self._check_batch(features, targets)
        return self._mine(self._slot_similarities(features), targets)

    @torch.no_grad()
    def update(self, features: Tensor, targets: Tensor, *, indexes: Tensor | None = None) -> None:
        """Centroids by the class batch mean (Eq. 4), slots overwritten by the batch (Eq. 8).

        Args:
            features: (B, D) batch embeddings (detached here).
            targets: (B,) cluster ids in [0, C).
            indexes: (B,) dataset indices; stored in :attr:`slot_indexes` for the overwritten slots
                (-1 there when not given).
        """
        self._check_batch(features, targets)
        if indexes is not None and indexes.shape != targets.shape:
            raise ValueError(
                f"indexes must have the shape of targets {tuple(targets.shape)}, got {tuple(indexes.shape)}"
            )
        x = features.detach()
        classes, inverse, counts = torch.unique(targets, return_inverse=True, return_counts=True)
        sums = x.new_zeros(classes.numel(), x.shape[1]).index_add_(0, inverse, x)
        momentum_update(self.centroids, classes, sums / counts[:, None].to(x.dtype), self.momentum)

        slot = occurrence_rank(targets)  # k-th feature of its class in batch order -> slot k
        stored = slot < self.num_instances
        self.instances[targets[stored], slot[stored]] = x[stored].to(self.instances.dtype)
        if indexes is None:
            self.slot_indexes[targets[stored], slot[stored]] = -1
        else:
            self.slot_indexes[targets[stored], slot[stored]] = indexes[stored].to(self.slot_indexes)

    def _slot_similarities(self, features: Tensor) -> Tensor:
        """(B, C, P) cosine similarity of every sample to every slot."""
        return torch.einsum("bd,cpd->bcp", features, self.instances)

    @staticmethod
    def _mine(similarities: Tensor, targets: Tensor) -> MinedSlots:
        rows = torch.arange(targets.numel(), device=targets.device)
        positive = similarities[rows, targets].argmin(dim=1)  # Eq. 6 (first slot on ties)
        per_class = similarities.argmax(dim=2)  # Eq. 7
        per_class[rows, targets] = positive
        return MinedSlots(positive, per_class)

    def _cluster_loss(self, features: Tensor, targets: Tensor) -> Tensor:
        return cluster_nce(features, self.centroids, targets, self.temperature, label_smoothing=self.label_smoothing,
                           smoothing_topk=self.smoothing_topk)

    def _instance_loss(self, features: Tensor, targets: Tensor) -> Tensor:
        similarities = self._slot_similarities(features)  # (B, C, P)
        mined = self._mine(similarities.detach(), targets)
        logits = similarities.gather(2, mined.per_class.unsqueeze(2)).squeeze(2)  # (B, C)
        return smoothed_cross_entropy(logits / self.instance_temperature, targets, self.label_smoothing,
                                      topk=self.smoothing_topk)

    def _check_batch(self, features: Tensor, targets: Tensor) -> None:
        self._check_features(features)
        self._check_ids(targets, features.shape[0], self.num_clusters, "targets")

    def extra_repr(self) -> str:
        return (
            f"clusters={self.num_clusters}, slots={self.num_instances}, dim={self.feature_dim}, mu={self.mu}, "
            f"momentum={self.momentum}, temperature={self.temperature}, "
            f"instance_temperature={self.instance_temperature}"
        )
