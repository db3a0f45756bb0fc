"""The interface every memory bank shares, ClusterNCE and the row updates the memories are built from."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor


class Memory(torch.nn.Module, ABC):
    """A memory bank: a contrastive loss against stored rows and an explicit update of those rows.

    Subclasses store their rows as registered buffers. ``features (B, D)`` are the model's
    L2-normalised batch embeddings, ``targets (B,)`` the batch pseudo-labels, ``indexes (B,)`` the
    dataset indices of the batch samples.

    Args:
        momentum: m of the momentum update ``row <- m row + (1 - m) x``, then re-normalised
            (docs/methods.md, section 4).
        temperature: tau; logits are ``x . row / tau`` (0.05 in every method, docs/methods.md, section 4).
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

    def forward(self, features: Tensor, targets: Tensor, **options) -> Tensor:
        """Same as :meth:`loss`."""
        return self.loss(features, targets, **options)

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


def check_label_smoothing(label_smoothing: float) -> float:
    """``label_smoothing`` as a float if it is in [0, 1), else a ``ValueError``."""
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    return float(label_smoothing)


def smoothed_cross_entropy(logits: Tensor, targets: Tensor, label_smoothing: float = 0.0, *,
                           topk: bool = False) -> Tensor:
    """Cross-entropy of ``logits`` (B, C) with ``targets`` (B,), with label smoothing epsilon.

    The target distribution is ``(1 - eps)`` on the sample's class and ``eps`` spread over classes
    (Szegedy et al., "Rethinking the Inception Architecture", CVPR 2016), the "LS" of HHCL Table 3:

    * uniformly over all C classes (``topk=False``): ``(1 - eps) one_hot + eps / C``;
    * ``topk=True``: as HHCL's released ``CrossEntropyLabelSmooth(num_classes, 0.1, topk_smoothing=True)``
      (``hhcl/models/losses.py``), over the ``k = C // 50`` classes the sample scores highest (which may
      include its own), ``eps / k`` each; uniformly as above when ``k <= 1`` (fewer than 100 classes).

    ``label_smoothing=0`` is the plain cross-entropy.

    Returns:
        Scalar mean loss over the batch.
    """
    check_label_smoothing(label_smoothing)
    if label_smoothing == 0.0:
        return F.cross_entropy(logits, targets)
    k = logits.shape[1] // 50
    if not topk or k <= 1:
        return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)
    log_probs = F.log_softmax(logits, dim=1)
    top = log_probs.detach().topk(k, dim=1).indices
    target = torch.zeros_like(log_probs).scatter_(1, targets[:, None], 1.0 - label_smoothing)
    target = target + torch.zeros_like(log_probs).scatter_(1, top, label_smoothing / k)
    return -(target * log_probs).sum(dim=1).mean()


def cluster_nce(features: Tensor, centroids: Tensor, targets: Tensor, temperature: float, *,
                label_smoothing: float = 0.0, smoothing_topk: bool = False) -> Tensor:
    """ClusterNCE: cross-entropy of ``features . centroids^T / tau`` with ``targets``.

    Cluster Contrast's loss (docs/methods.md, section 4.2) and HHCL's L_cls (HHCL Eq. 3).
    With label smoothing (:func:`smoothed_cross_entropy`), HHCL Table 3's "LS".

    Args:
        features: (B, D) L2-normalised embeddings.
        centroids: (C, D) L2-normalised cluster rows.
        targets: (B,) cluster ids in [0, C).
        temperature: tau.
        label_smoothing: epsilon; 0 (default) is the plain cross-entropy.
        smoothing_topk: spread epsilon over the top-scoring classes, as HHCL's code (see
            :func:`smoothed_cross_entropy`).

    Returns:
        Scalar mean loss over the batch.
    """
    return smoothed_cross_entropy(features @ centroids.t() / temperature, targets, label_smoothing,
                                  topk=smoothing_topk)


def occurrence_rank(keys: Tensor) -> Tensor:
    """(B,) for every entry of ``keys`` (B,), how many earlier entries hold the same value."""
    order = torch.argsort(keys, stable=True)
    _, counts = torch.unique_consecutive(keys[order], return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(keys)
    rank[order] = torch.arange(keys.numel(), device=keys.device) - torch.repeat_interleave(starts, counts)
    return rank


def momentum_update(rows: Tensor, keys: Tensor, x: Tensor, momentum: float) -> None:
    """In place: ``rows[k] <- normalise(m rows[k] + (1 - m) x)`` for distinct ``keys`` (K,), ``x`` (K, D)."""
    rows[keys] = F.normalize(momentum * rows[keys] + (1.0 - momentum) * x.to(rows.dtype), dim=1)


def sequential_momentum_update(rows: Tensor, keys: Tensor, x: Tensor, momentum: float) -> None:
    """In place, the same as the per-sample loop of the reference code::

        for x_i, k_i in zip(x, keys):
            rows[k_i] = m rows[k_i] + (1 - m) x_i;  rows[k_i] /= |rows[k_i]|

    Rows with different keys do not interact, so the loop runs in rounds: round r updates, at once,
    every key with its (r+1)-th sample in batch order (as many rounds as the most repeated key).
    """
    if keys.numel() == 0:
        return
    rank = occurrence_rank(keys)
    for r in range(int(rank.max()) + 1):
        chosen = rank == r
        momentum_update(rows, keys[chosen], x[chosen], momentum)


def least_similar_per_class(similarity: Tensor, targets: Tensor) -> Tensor:
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
