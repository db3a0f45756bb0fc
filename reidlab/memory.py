"""Memory banks of the memory-based unsupervised re-ID methods (SPEC section 4).

Four memories share one interface (:class:`Memory`):

* :class:`HybridMemory` (SpCL, Ge et al. NeurIPS 2020): one row per training image; clusters and
  un-clustered instances are the classes of the loss (SPEC 4.1).
* :class:`ClusterMemory` (Cluster Contrast, Dai et al. ACCV 2022): one centroid per cluster, the
  ClusterNCE loss; ``update="mean"`` or ``"hard"`` (SPEC 4.2).
* :class:`HardHybridMemory` (HHCL, Hu et al. 2021): centroids plus P instance slots per cluster, the
  centroid loss mixed with a hard-instance loss (HHCL Eqs. 2-8, SPEC 4.3).
* :class:`WeightedMemory` (SCWM, Hong et al.): centroids of the global and of every part feature,
  updated with kNN-agreement weights (SCWM Eqs. 8-11, SPEC 4.4).

All rows are L2-normalised registered buffers (``.to(device)`` and ``state_dict`` carry them); logits are
dot products divided by a temperature. The loop calls ``loss`` (gradient to the features only), then
``backward`` and ``optimizer.step()``, then the explicit ``update`` with the batch features. The
research code hides the update inside an autograd ``backward``; here the memory is never changed by
``loss`` or by ``backward``. Taught in ``notebooks/02_memory_banks.ipynb`` and
``notebooks/03_hard_mining.ipynb``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from reidlab.cluster.agreement import global_agreement
from reidlab.cluster.dbscan import cluster_centroids, outliers_as_classes

__all__ = [
    "ClusterMemory",
    "HardHybridMemory",
    "HybridMemory",
    "Memory",
    "MinedSlots",
    "WeightedMemory",
    "cluster_nce",
]

# SpCL's hm.py adds these to the softmax denominator and inside the log (kept for parity).
_SPCL_EPSILON = 1e-6
# SCWM Eq. 10 puts the sample weight inside the log; a weight of 0 is floored here (value only).
_LOG_WEIGHT_FLOOR = 1e-6
_WEIGHTED_UPDATES = ("average", "hardest", "weighted")


class Memory(torch.nn.Module, ABC):
    """A memory bank: a contrastive loss against stored rows and an explicit update of those rows.

    Subclasses store their rows as registered buffers. ``features (B, D)`` are the model's
    L2-normalised batch embeddings, ``targets (B,)`` the batch pseudo-labels, ``indexes (B,)`` the
    dataset indices of the batch samples.

    Args:
        momentum: m of the momentum update ``row <- m row + (1 - m) x``, then re-normalised (SPEC 4).
        temperature: tau; logits are ``x . row / tau`` (0.05 in every method, SPEC 4).
    """

    temperature: float
    momentum: float

    def __init__(self, *, momentum: float, temperature: float) -> None:
        super().__init__()
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.momentum = float(momentum)
        self.temperature = float(temperature)

    @abstractmethod
    def loss(self, features: Tensor, targets: Tensor, *, indexes: Tensor | None = None) -> Tensor:
        """Scalar loss of the batch; differentiable in ``features``, leaves the rows unchanged."""

    @abstractmethod
    def update(self, features: Tensor, targets: Tensor, *, indexes: Tensor | None = None) -> None:
        """Update the rows with the batch features (called after ``optimizer.step()``, no gradient)."""

    @property
    @abstractmethod
    def num_rows(self) -> int:
        """Number of feature rows stored."""

    @property
    @abstractmethod
    def feature_dim(self) -> int:
        """D, the dimension of the stored rows."""

    def forward(self, features: Tensor, targets: Tensor, *, indexes: Tensor | None = None) -> Tensor:
        """Same as :meth:`loss`."""
        return self.loss(features, targets, indexes=indexes)

    def _check_features(self, features: Tensor) -> None:
        if features.ndim != 2 or features.shape[1] != self.feature_dim:
            raise ValueError(
                f"features must be (B, {self.feature_dim}) to match the memory rows, got shape {tuple(features.shape)}"
            )

    def _check_ids(self, ids: Tensor, batch: int, high: int, name: str) -> None:
        """``ids`` (B,) must be integers in [0, high)."""
        if ids.shape != (batch,) or ids.dtype.is_floating_point or ids.dtype == torch.bool:
            raise ValueError(f"{name} must be a ({batch},) integer tensor, got {ids.dtype} of shape {tuple(ids.shape)}")
        if batch and bool(((ids < 0) | (ids >= high)).any()):
            raise ValueError(
                f"{name} must be in [0, {high}), got values from {int(ids.min())} to {int(ids.max())}"
            )


def cluster_nce(features: Tensor, centroids: Tensor, targets: Tensor, temperature: float) -> Tensor:
    """ClusterNCE: cross-entropy of ``features . centroids^T / tau`` with ``targets``.

    Cluster Contrast's loss (SPEC 4.2) and HHCL's L_cls (HHCL Eq. 3).

    Args:
        features: (B, D) L2-normalised embeddings.
        centroids: (C, D) L2-normalised cluster rows.
        targets: (B,) cluster ids in [0, C).
        temperature: tau.

    Returns:
        Scalar mean loss over the batch.
    """
    return F.cross_entropy(features @ centroids.t() / temperature, targets)


def _occurrence_rank(keys: Tensor) -> Tensor:
    """(B,) for every entry of ``keys`` (B,), how many earlier entries hold the same value."""
    order = torch.argsort(keys, stable=True)
    _, counts = torch.unique_consecutive(keys[order], return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(keys)
    rank[order] = torch.arange(keys.numel(), device=keys.device) - torch.repeat_interleave(starts, counts)
    return rank


def _momentum_update(rows: Tensor, keys: Tensor, x: Tensor, momentum: float) -> None:
    """In place: ``rows[k] <- normalise(m rows[k] + (1 - m) x)`` for distinct ``keys`` (K,), ``x`` (K, D)."""
    rows[keys] = F.normalize(momentum * rows[keys] + (1.0 - momentum) * x.to(rows.dtype), dim=1)


def _sequential_momentum_update(rows: Tensor, keys: Tensor, x: Tensor, momentum: float) -> None:
    """In place, the same as the per-sample loop of the reference code::

        for x_i, k_i in zip(x, keys):
            rows[k_i] = m rows[k_i] + (1 - m) x_i;  rows[k_i] /= |rows[k_i]|

    Rows with different keys do not interact, so the loop runs in rounds: round r updates, at once,
    every key with its (r+1)-th sample in batch order (as many rounds as the most repeated key).
    """
    if keys.numel() == 0:
        return
    rank = _occurrence_rank(keys)
    for r in range(int(rank.max()) + 1):
        chosen = rank == r
        _momentum_update(rows, keys[chosen], x[chosen], momentum)


def _least_similar_per_class(similarity: Tensor, targets: Tensor) -> Tensor:
    """(K,) batch position of the lowest ``similarity`` (B,) of every distinct target, in increasing class
    order; the first position wins a tie."""
    _, inverse = torch.unique(targets, return_inverse=True)
    lowest = similarity.new_full((int(inverse.max()) + 1,), torch.inf).scatter_reduce(
        0, inverse, similarity, reduce="amin"
    )
    positions = torch.arange(targets.numel(), device=targets.device)
    candidates = torch.where(similarity == lowest[inverse], positions, targets.numel())
    return torch.full_like(lowest, targets.numel(), dtype=torch.long).scatter_reduce(
        0, inverse, candidates, reduce="amin"
    )


class HybridMemory(Memory):
    """SpCL's hybrid memory: one row per training image, clusters and un-clustered instances as classes.

    Ge et al., "Self-paced Contrastive Learning with Hybrid Memory for Domain Adaptive Object Re-ID",
    NeurIPS 2020; SPEC section 4.1; reference ``spcl/models/hm.py``. Taught in
    ``notebooks/02_memory_banks.ipynb``.

    The loss (the unified contrastive loss) scores the sample against every stored row, averages the
    logits per class, so a cluster's logit is ``x . mean(its stored rows) / tau`` (the mean is not
    re-normalised) and an un-clustered instance is its own class, then takes the softmax over all
    classes and the negative log-likelihood of the sample's own class. The update moves the sample's
    own row: ``f_i <- m f_i + (1 - m) x_i``, re-normalised.

    Numerics follow ``hm.py``: ``p = exp(s) / (sum exp(s) + 1e-6)`` over the classes that have members,
    loss ``-log(p_y + 1e-6)`` (this caps the per-sample loss at ``-log(1e-6)``, about 13.8). Unlike the
    reference, the exponentials are computed after subtracting the row maximum (with the epsilon
    scaled to match), which gives the same values without overflowing for small tau.

    SpCL extracts the training features once; afterwards it clusters the memory rows themselves
    (:attr:`features`) and calls :meth:`set_labels` with the result every epoch.

    Args:
        features: (N, D) features of the whole training set; stored L2-normalised (a copy).
        momentum: m, 0.2 (SpCL's default, SPEC 4.1).
        temperature: tau, 0.05 (SPEC 4).

    Attributes:
        features: (N, D) buffer, the instance rows (dataset order).
        labels: (N,) int64 buffer, the class of every sample: clusters 0..K-1, then one class per
            un-clustered sample. Before the first :meth:`set_labels` every sample is its own class.
    """

    features: Tensor
    labels: Tensor

    def __init__(self, features: Tensor, *, momentum: float = 0.2, temperature: float = 0.05) -> None:
        super().__init__(momentum=momentum, temperature=temperature)
        features = torch.as_tensor(features)
        if features.ndim != 2 or features.shape[0] == 0:
            raise ValueError(f"features must be a non-empty (N, D) matrix, got shape {tuple(features.shape)}")
        self.register_buffer("features", F.normalize(features.detach().clone(), dim=1))
        self.register_buffer("labels", torch.arange(features.shape[0], device=features.device))

    @property
    def num_rows(self) -> int:
        """N, one row per training image."""
        return self.features.shape[0]

    @property
    def feature_dim(self) -> int:
        return self.features.shape[1]

    @property
    def num_classes(self) -> int:
        """Clusters plus un-clustered instances."""
        return int(self.labels.max()) + 1

    def set_labels(self, labels: np.ndarray | Tensor) -> HybridMemory:
        """Set this epoch's classes from pseudo-labels; -1 samples become one-image classes.

        Args:
            labels: (N,) cluster ids 0..K-1 and -1 for un-clustered samples (e.g.
                ``SelfPacedRefiner.labels_``), NumPy or torch. Numbered as
                :func:`reidlab.cluster.outliers_as_classes` does, so the sampler's targets agree.

        Returns:
            self.
        """
        values = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
        if values.shape != (self.num_rows,) or not np.issubdtype(values.dtype, np.integer):
            raise ValueError(
                f"labels must be ({self.num_rows},) integers (one per memory row), got {values.dtype} "
                f"of shape {values.shape}"
            )
        if values.min() < -1:
            raise ValueError(f"labels must be cluster ids >= 0 or -1 for un-clustered samples, got {values.min()}")
        self.labels.copy_(torch.from_numpy(outliers_as_classes(values).astype(np.int64)))
        return self

    def loss(self, features: Tensor, targets: Tensor | None = None, *, indexes: Tensor | None = None) -> Tensor:
        """SpCL's unified contrastive loss (SPEC 4.1).

        Args:
            features: (B, D) L2-normalised embeddings.
            targets: ignored: the class of each sample is ``labels[indexes]``, as in ``hm.py`` (the
                loader's targets equal it when both come from the same pseudo-labels).
            indexes: (B,) dataset indices of the samples (required).

        Returns:
            Scalar mean loss over the batch.
        """
        indexes = self._check_batch(features, indexes)
        logits = features @ self.features.t() / self.temperature  # (B, N)
        sizes = torch.bincount(self.labels)  # (L,) members per class
        sums = logits.new_zeros(logits.shape[0], sizes.numel()).index_add(1, self.labels, logits)
        present = sizes > 0  # every class after set_labels; kept for labels with gaps (as hm.py)
        class_logits = sums / torch.where(present, sizes, 1).to(logits.dtype)  # (B, L)
        shift = class_logits.detach().masked_fill(~present, -torch.inf).amax(dim=1, keepdim=True)
        exps = torch.exp(class_logits - shift) * present
        probs = exps / (exps.sum(dim=1, keepdim=True) + _SPCL_EPSILON * torch.exp(-shift))
        return F.nll_loss(torch.log(probs + _SPCL_EPSILON), self.labels[indexes])

    @torch.no_grad()
    def update(self, features: Tensor, targets: Tensor | None = None, *, indexes: Tensor | None = None) -> None:
        """Per-sample momentum update of the sample's own row, in batch order (SPEC 4.1).

        Args:
            features: (B, D) batch embeddings (detached here).
            targets: ignored.
            indexes: (B,) dataset indices (required); a repeated index is updated once per occurrence.
        """
        indexes = self._check_batch(features, indexes)
        _sequential_momentum_update(self.features, indexes, features.detach(), self.momentum)

    def _check_batch(self, features: Tensor, indexes: Tensor | None) -> Tensor:
        self._check_features(features)
        if indexes is None:
            raise ValueError("HybridMemory needs indexes=, the (B,) dataset indices of the batch samples")
        self._check_ids(indexes, features.shape[0], self.num_rows, "indexes")
        return indexes.to(self.labels.device)

    def extra_repr(self) -> str:
        return f"rows={self.num_rows}, dim={self.feature_dim}, momentum={self.momentum}, temperature={self.temperature}"


class ClusterMemory(Memory):
    """Cluster Contrast's memory: one L2-normalised centroid per cluster and the ClusterNCE loss.

    Dai et al., "Cluster Contrast for Unsupervised Person Re-Identification", ACCV 2022; SPEC section
    4.2; reference ``clustercontrast/models/cm.py``. Re-created every epoch from the centroids
    (:meth:`from_labels`). Taught in ``notebooks/02_memory_banks.ipynb``.

    Update variants (each row re-normalised after every change):

    * ``"mean"``: sequential per sample in batch order, ``c_y <- m c_y + (1 - m) x`` (``CM``).
    * ``"hard"``: per class present in the batch, only the sample least similar to ``c_y`` (the
      hardest positive; ``CM_Hard``, where the variable ``median`` holds this argmin; ties go to the
      first such sample).

    Args:
        centroids: (C, D) initial rows, stored L2-normalised (a copy).
        momentum: m. Default 0.1, the value of the README's training commands (SPEC 4.2); the
            reference argparse default is 0.2.
        temperature: tau, 0.05 (SPEC 4).
        update: ``"mean"`` (default, the reported setup) or ``"hard"``.

    Attributes:
        centroids: (C, D) buffer.
        update_mode: the ``update`` argument.
    """

    centroids: Tensor

    def __init__(
        self, centroids: Tensor, *, momentum: float = 0.1, temperature: float = 0.05, update: str = "mean"
    ) -> None:
        super().__init__(momentum=momentum, temperature=temperature)
        if update not in ("mean", "hard"):
            raise ValueError(f"update must be 'mean' or 'hard', got {update!r}")
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
    ) -> ClusterMemory:
        """The memory of one epoch: the centroids of the clusters (SPEC 1 step 3); outliers dropped.

        Args:
            features: (N, D) L2-normalised training features (NumPy or torch; rows on its device).
            labels: (N,) cluster ids 0..C-1, -1 for outliers.
            momentum, temperature, update: see the class.
        """
        centroids = torch.as_tensor(cluster_centroids(features, labels))
        return cls(centroids, momentum=momentum, temperature=temperature, update=update)

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
        return cluster_nce(features, self.centroids, targets, self.temperature)

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
            _sequential_momentum_update(self.centroids, targets, x, self.momentum)
            return
        hardest = self.hardest_positives(x, targets)
        _momentum_update(self.centroids, targets[hardest], x[hardest], self.momentum)

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
        return _least_similar_per_class(similarity, targets)

    def extra_repr(self) -> str:
        return (
            f"rows={self.num_rows}, dim={self.feature_dim}, update={self.update_mode!r}, "
            f"momentum={self.momentum}, temperature={self.temperature}"
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
    Re-Identification", 2021 (HHCL Eqs. 2-8); SPEC section 4.3; the paper's memory is ``CMhybrid_v2``
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
        momentum: m of the centroid update, 0.1 (SPEC 4.3; HHCL's ``--momentum`` default).
        temperature: tau_c of L_cls, 0.05 (SPEC 4).
        instance_temperature: tau_ins of L_ins; None (default) uses ``temperature``, as HHCL's code does
            (one ``--temp`` for both; SPEC 4.3: 0.05).

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
    ) -> None:
        super().__init__(momentum=momentum, temperature=temperature)
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
    ) -> HardHybridMemory:
        """The memory of one epoch (HHCL Algorithm 1 line 4); outliers (-1) dropped.

        Centroids are the L2-normalised cluster means; each cluster's P slots hold P of its members
        drawn uniformly with replacement (``generate_random_features`` of HHCL's ``train.py``).

        Args:
            features: (N, D) L2-normalised training features (NumPy or torch).
            labels: (N,) cluster ids 0..C-1, -1 for outliers.
            num_instances: P, slots per cluster; HHCL sets it to the instances per identity of the
                batch (16, SPEC 4.3).
            seed: seed or ``numpy.random.Generator`` of the draw (same seed, same slots).
            mu, momentum, temperature, instance_temperature: see the class.
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
            temperature=temperature, instance_temperature=instance_temperature,
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
            total = total + self.mu * cluster_nce(features, self.centroids, targets, self.temperature)
        if self.mu < 1:
            total = total + (1.0 - self.mu) * self._instance_loss(features, targets)
        return total

    def cluster_loss(self, features: Tensor, targets: Tensor) -> Tensor:
        """L_cls (HHCL Eq. 3): ClusterNCE against the centroids."""
        self._check_batch(features, targets)
        return cluster_nce(features, self.centroids, targets, self.temperature)

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
        _momentum_update(self.centroids, classes, sums / counts[:, None].to(x.dtype), self.momentum)

        slot = _occurrence_rank(targets)  # k-th feature of its class in batch order -> slot k
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

    def _instance_loss(self, features: Tensor, targets: Tensor) -> Tensor:
        similarities = self._slot_similarities(features)  # (B, C, P)
        mined = self._mine(similarities.detach(), targets)
        logits = similarities.gather(2, mined.per_class.unsqueeze(2)).squeeze(2)  # (B, C)
        return F.cross_entropy(logits / self.instance_temperature, targets)

    def _check_batch(self, features: Tensor, targets: Tensor) -> None:
        self._check_features(features)
        self._check_ids(targets, features.shape[0], self.num_clusters, "targets")

    def extra_repr(self) -> str:
        return (
            f"clusters={self.num_clusters}, slots={self.num_instances}, dim={self.feature_dim}, mu={self.mu}, "
            f"momentum={self.momentum}, temperature={self.temperature}, "
            f"instance_temperature={self.instance_temperature}"
        )


class WeightedMemory(Memory):
    """SCWM's weighted memory: one centroid per cluster for the global stream and for every part stream.

    Hong et al., "Spatial Cascaded Clustering and Weighted Memory for Unsupervised Person
    Re-identification" (SCWM), section 3.3, Eq. 8-12; SPEC section 4.4. SCWM has no public code; the
    open choices are documented here. Stream 0 is the global feature f^g, streams 1..l the part
    features f^pk: ``features (B, S, D)`` with ``S = 1 + l``.

    * Weights (Eq. 8): a sample's raw weights are ``1 - alpha^g`` (global) and ``alpha^pk`` (parts), from
      the kNN agreement of Eq. 7 (:func:`reidlab.cluster.agreement.knn_agreement`, :meth:`raw_weights`).
      The paper L1-normalises them "in a batch"; following SPEC 4.4 they are normalised within each
      class's samples in the batch (:meth:`class_weights`), so every class's weights sum to 1 per stream.
    * Update (Eq. 9, written per sample in the paper) as a weighted mean (SPEC 4.4), per class ``j`` in
      the batch and stream ``s``:
      ``c_j^s <- m c_j^s + (1 - m) sum_{i: y_i = j} w_i^s f_i^s``, re-normalised. SCWM Table 3's variants:
      ``"average"`` (uniform weights: the class batch mean, like HHCL's Eq. 4), ``"hardest"`` (all weight
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
        momentum: m, 0.2 (SCWM section 4.2).
        temperature: tau, 0.05 (SCWM section 4.2, SPEC 4).
        update: ``"weighted"`` (default, SCWM), ``"average"`` or ``"hardest"`` (SCWM Table 3).

    Attributes:
        centroids: (S, K, D) buffer; ``centroids[0]`` the global centroids, ``centroids[k]`` part k's.
        update_mode: the ``update`` argument.
    """

    centroids: Tensor

    def __init__(
        self, centroids: Tensor, *, momentum: float = 0.2, temperature: float = 0.05, update: str = "weighted"
    ) -> None:
        super().__init__(momentum=momentum, temperature=temperature)
        if update not in _WEIGHTED_UPDATES:
            raise ValueError(f"update must be 'average', 'hardest' or 'weighted', got {update!r}")
        centroids = torch.as_tensor(centroids)
        if centroids.ndim != 3 or 0 in centroids.shape:
            raise ValueError(
                f"centroids must be a non-empty (S, K, D) array (streams, clusters, dim), got shape "
                f"{tuple(centroids.shape)}"
            )
        self.update_mode = update
        self.register_buffer("centroids", F.normalize(centroids.detach().clone(), dim=2))

    @classmethod
    def from_labels(
        cls,
        features: np.ndarray | Tensor,
        labels: np.ndarray | Tensor,
        *,
        momentum: float = 0.2,
        temperature: float = 0.05,
        update: str = "weighted",
    ) -> WeightedMemory:
        """The memory of one epoch: every stream's L2-normalised cluster means; outliers (-1) dropped.

        Args:
            features: (N, S, D) global (stream 0) and part features of the training set (NumPy or torch).
            labels: (N,) cluster ids 0..K-1, -1 for outliers.
            momentum, temperature, update: see the class.
        """
        features = torch.as_tensor(features)
        if features.ndim != 3:
            raise ValueError(
                f"features must be (N, S, D) (streams: global then parts), got shape {tuple(features.shape)}"
            )
        centroids = torch.stack([cluster_centroids(features[:, s], labels) for s in range(features.shape[1])])
        return cls(centroids, momentum=momentum, temperature=temperature, update=update)

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
        """Eq. 8's L1 normalisation, within each class's samples in the batch (SPEC 4.4).

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

    def loss(
        self, features: Tensor, targets: Tensor, *, weights: Tensor | None = None, indexes: Tensor | None = None
    ) -> Tensor:
        """L_wNCE (SCWM Eq. 10): the global stream's term plus the mean of the part streams' terms.

        Each term is :func:`cluster_nce` against that stream's centroids, plus ``-mean_i log w_i`` when
        ``weights`` are given (the weight inside the log is a constant shift; same gradient).

        Args:
            features: (B, S, D) L2-normalised global and part embeddings.
            targets: (B,) cluster ids in [0, K).
            weights: (B, S) the class-normalised Eq. 8 weights (:meth:`class_weights`); None gives
                plain ClusterNCE in every stream.
            indexes: not used.

        Returns:
            Scalar loss, mean over the batch.
        """
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

    def forward(
        self, features: Tensor, targets: Tensor, *, weights: Tensor | None = None, indexes: Tensor | None = None
    ) -> Tensor:
        """Same as :meth:`loss`."""
        return self.loss(features, targets, weights=weights, indexes=indexes)

    @torch.no_grad()
    def update(
        self, features: Tensor, targets: Tensor, *, weights: Tensor | None = None, indexes: Tensor | None = None
    ) -> None:
        """Eq. 9 as a weighted mean per class and stream (``update`` mode, see the class).

        Args:
            features: (B, S, D) batch embeddings (detached here).
            targets: (B,) cluster ids in [0, K).
            weights: (B, S) Eq. 8 weights, required by ``"weighted"`` (re-normalised within each class,
                a no-op for :meth:`class_weights` output); ignored by ``"average"`` and ``"hardest"``.
            indexes: not used.
        """
        self._check_batch(features, targets, weights)
        if self.update_mode == "weighted" and weights is None:
            raise ValueError(
                "update='weighted' needs weights=, the (B, S) Eq. 8 weights (WeightedMemory.class_weights); "
                "use update='average' or 'hardest' to update without them"
            )
        x = features.detach()
        if x.shape[0] == 0:
            return
        sample_weights = self._update_weights(x, targets, weights)  # (B, S)
        classes, inverse = torch.unique(targets, return_inverse=True)
        sums = x.new_zeros(classes.numel(), *x.shape[1:]).index_add_(0, inverse, sample_weights[:, :, None] * x)
        for s in range(self.num_streams):
            _momentum_update(self.centroids[s], classes, sums[:, s], self.momentum)

    def _update_weights(self, x: Tensor, targets: Tensor, weights: Tensor | None) -> Tensor:
        """(B, S) per-sample weights of the update, summing to 1 per class and stream."""
        if self.update_mode == "weighted":
            return self.class_weights(weights.to(x), targets)
        if self.update_mode == "average":
            return self.class_weights(x.new_ones(x.shape[:2]), targets)
        similarity = (x * self.centroids[:, targets].transpose(0, 1).to(x.dtype)).sum(dim=2)  # (B, S)
        hardest = x.new_zeros(x.shape[:2])
        for s in range(self.num_streams):
            hardest[_least_similar_per_class(similarity[:, s], targets), s] = 1.0
        return hardest

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
