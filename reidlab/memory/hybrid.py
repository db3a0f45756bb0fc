"""SpCL's hybrid memory (Ge et al., NeurIPS 2020): one row per training image."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from reidlab.cluster.dbscan import outliers_as_classes
from reidlab.memory.base import Memory, sequential_momentum_update

# SpCL's hm.py adds these to the softmax denominator and inside the log (kept for parity).
_SPCL_EPSILON = 1e-6


class HybridMemory(Memory):
    """SpCL's hybrid memory: one row per training image, clusters and un-clustered instances as classes.

    Ge et al., "Self-paced Contrastive Learning with Hybrid Memory for Domain Adaptive Object Re-ID",
    NeurIPS 2020; docs/methods.md, section 4.1; reference ``spcl/models/hm.py``. Taught in
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
    (:attr:`instance_features`) and calls :meth:`set_labels` with the result every epoch.

    Domain adaptation (SpCL's own main setting, ``examples/spcl_train_uda.py``): with ``source_centroids``
    the memory starts with one row per identity of the labelled source dataset (its class centroid),
    followed by the target's instance rows. Source row c is class c, fixed; the target's classes are
    numbered after them (``spcl_train_uda.py``'s ``source_classes + id``). A source sample's row is its
    class (the loss and the update take it as its "index", as ``SpCLTrainer_UDA`` passes the source
    labels), so the update moves the class centroid with the same momentum.

    Args:
        features: (N, D) features of the whole (target) training set; stored L2-normalised (a copy).
        source_centroids: (S, D) class centroids of the labelled source dataset, stored L2-normalised
            before the instance rows; None (default): no source (SpCL's unsupervised setting).
        momentum: m, 0.2 (SpCL's default, docs/methods.md, section 4.1).
        temperature: tau, 0.05 (docs/methods.md, section 4).

    Attributes:
        features: (S + N, D) buffer: the source class rows, then the instance rows (dataset order).
        labels: (S + N,) int64 buffer, the class of every row: source classes 0..S-1, then the target
            clusters, then one class per un-clustered sample. Before the first :meth:`set_labels` every row
            is its own class.
        num_source: S, the source rows (0 without a source).
    """

    features: Tensor
    labels: Tensor

    def __init__(self, features: Tensor, *, source_centroids: Tensor | None = None, momentum: float = 0.2,
                 temperature: float = 0.05) -> None:
        super().__init__(momentum=momentum, temperature=temperature)
        features = torch.as_tensor(features)
        if features.ndim != 2 or features.shape[0] == 0:
            raise ValueError(f"features must be a non-empty (N, D) matrix, got shape {tuple(features.shape)}")
        rows = F.normalize(features.detach().clone(), dim=1)
        self.num_source = 0
        if source_centroids is not None:
            source = torch.as_tensor(source_centroids)
            if source.ndim != 2 or source.shape[1] != features.shape[1] or source.shape[0] == 0:
                raise ValueError(f"source_centroids must be a non-empty (S, {features.shape[1]}) matrix, got "
                                 f"shape {tuple(source.shape)}")
            rows = torch.cat([F.normalize(source.detach().to(rows), dim=1), rows])
            self.num_source = source.shape[0]
        self.register_buffer("features", rows)
        self.register_buffer("labels", torch.arange(rows.shape[0], device=rows.device))

    @property
    def num_rows(self) -> int:
        """S + N: one row per source class and per (target) training image."""
        return self.features.shape[0]

    @property
    def num_instances(self) -> int:
        """N, the instance rows."""
        return self.num_rows - self.num_source

    @property
    def instance_features(self) -> Tensor:
        """(N, D) the instance rows (dataset order), what SpCL clusters every epoch."""
        return self.features[self.num_source:]

    @property
    def feature_dim(self) -> int:
        return self.features.shape[1]

    @property
    def num_classes(self) -> int:
        """Source classes plus clusters plus un-clustered instances."""
        return int(self.labels.max()) + 1

    def set_labels(self, labels: np.ndarray | Tensor) -> HybridMemory:
        """Set this epoch's classes from pseudo-labels; -1 samples become one-image classes.

        Args:
            labels: (N,) cluster ids 0..K-1 and -1 for un-clustered samples (e.g.
                ``SelfPacedRefiner.labels_``) of the instance rows, NumPy or torch. Numbered as
                :func:`reidlab.cluster.outliers_as_classes` does, so the sampler's targets agree; with
                source rows, offset by S (the source classes keep 0..S-1).

        Returns:
            self.
        """
        values = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
        if values.shape != (self.num_instances,) or not np.issubdtype(values.dtype, np.integer):
            raise ValueError(
                f"labels must be ({self.num_instances},) integers (one per instance row), got {values.dtype} "
                f"of shape {values.shape}"
            )
        if values.min() < -1:
            raise ValueError(f"labels must be cluster ids >= 0 or -1 for un-clustered samples, got {values.min()}")
        classes = torch.from_numpy(outliers_as_classes(values).astype(np.int64))
        if self.num_source:
            classes = torch.cat([torch.arange(self.num_source), classes + self.num_source])
        self.labels.copy_(classes)
        return self

    def loss(self, features: Tensor, targets: Tensor | None = None, *, indexes: Tensor | None = None) -> Tensor:
        """SpCL's unified contrastive loss (docs/methods.md, section 4.1).

        Args:
            features: (B, D) L2-normalised embeddings.
            targets: ignored: the class of each sample is ``labels[indexes]``, as in ``hm.py`` (the
                loader's targets equal it when both come from the same pseudo-labels).
            indexes: (B,) memory rows of the samples (required): their dataset indices, offset by S with
                source rows; a source sample's row is its class.

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
        """Per-sample momentum update of the sample's own row, in batch order (docs/methods.md, section 4.1).

        Args:
            features: (B, D) batch embeddings (detached here).
            targets: ignored.
            indexes: (B,) memory rows (required, as in :meth:`loss`); a repeated row is updated once per
                occurrence.
        """
        indexes = self._check_batch(features, indexes)
        sequential_momentum_update(self.features, indexes, features.detach(), self.momentum)

    def _check_batch(self, features: Tensor, indexes: Tensor | None) -> Tensor:
        self._check_features(features)
        if indexes is None:
            raise ValueError("HybridMemory needs indexes=, the (B,) memory rows (dataset indices) of the batch samples")
        self._check_ids(indexes, features.shape[0], self.num_rows, "indexes")
        return indexes.to(self.labels.device)

    def extra_repr(self) -> str:
        source = f", source_rows={self.num_source}" if self.num_source else ""
        return (f"rows={self.num_rows}{source}, dim={self.feature_dim}, momentum={self.momentum}, "
                f"temperature={self.temperature}")
