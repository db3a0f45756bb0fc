"""Classification and metric losses of the part-based methods: PPLR's and SCWM's identity losses.

SCWM (Hong et al., section 3.4, Eq. 13-15) takes its classification constraints from PPLR (Cho et al.,
"Part-based Pseudo Label Refinement for Unsupervised Person Re-identification", CVPR 2022): every stream
(global, each part) has an identity classifier over the current clusters; the part classifiers learn
from agreement-aware smoothed labels (PPLR's AALS, SCWM Eq. 13) and the global classifier from labels
refined by the part predictions (PPLR's PGLR, SCWM Eq. 14). PPLR's baseline metric loss is the
soft-margin batch-hard triplet loss (:func:`soft_triplet_loss`). docs/methods.md, section 4.4.6.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "IdentityClassifier",
    "agreement_label_smoothing_loss",
    "part_guided_refinement_loss",
    "soft_triplet_loss",
]


class IdentityClassifier(nn.Module):
    """One cosine classifier per stream over the clusters of the epoch (q^g, q^pk of SCWM Eq. 14-15).

    ``logits[b, s, k] = normalise(f_b^s) . normalise(w_k^s) / tau``. PPLR (``train_pplr.py``) copies
    the L2-normalised cluster centroids into the first K rows of each bias-free linear classifier at
    every epoch and applies it to the un-normalised BNNeck features. reidlab's features are unit norm,
    so it uses a cosine classifier with a temperature instead (reidlab's choice; both weights and
    features are normalised, so the logits are cosines / tau), built each epoch from the memory's
    centroids as PPLR re-initialises its classifier; the weights are then trained with the model.

    Args:
        centroids: (S, K, D) initial weights, e.g. ``WeightedMemory.centroids`` (copied).
        temperature: tau; 0.05, the memory's temperature (docs/methods.md, section 4).

    Attributes:
        weight: (S, K, D) parameter.
    """

    def __init__(self, centroids: Tensor, *, temperature: float = 0.05) -> None:
        super().__init__()
        centroids = torch.as_tensor(centroids)
        if centroids.ndim != 3 or 0 in centroids.shape:
            raise ValueError(
                f"centroids must be a non-empty (S, K, D) array (streams, clusters, dim), got shape "
                f"{tuple(centroids.shape)}"
            )
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.weight = nn.Parameter(F.normalize(centroids.detach().clone(), dim=2))

    @property
    def num_streams(self) -> int:
        """S."""
        return self.weight.shape[0]

    @property
    def num_classes(self) -> int:
        """K."""
        return self.weight.shape[1]

    def forward(self, features: Tensor) -> Tensor:
        """Logits of every stream.

        Args:
            features: (B, S, D) global (stream 0) and part embeddings.

        Returns:
            logits (B, S, K).
        """
        if features.ndim != 3 or features.shape[1:] != (self.num_streams, self.weight.shape[2]):
            raise ValueError(
                f"features must be (B, {self.num_streams}, {self.weight.shape[2]}) to match the classifier, "
                f"got shape {tuple(features.shape)}"
            )
        weight = F.normalize(self.weight, dim=2)
        return torch.einsum("bsd,skd->bsk", F.normalize(features, dim=2), weight) / self.temperature

    def extra_repr(self) -> str:
        return f"streams={self.num_streams}, classes={self.num_classes}, temperature={self.temperature}"


def agreement_label_smoothing_loss(logits: Tensor, targets: Tensor, alpha: Tensor) -> Tensor:
    """Cross-entropy against agreement-smoothed labels: SCWM Eq. 13 and Eq. 15's part term (PPLR's AALS).

    ``y = alpha onehot(target) + (1 - alpha) uniform``; loss ``-sum_k y_k log softmax(logits)_k``, mean
    over the batch. A part whose neighbours disagree with the global feature's (small alpha) is pushed
    towards "no class". PPLR writes it as ``alpha CE + (1 - alpha) KL(uniform || p)``, which is this
    value minus ``(1 - alpha) log K`` (the entropy of the uniform label): same gradient. Eq. 15 averages
    this over the l parts; call it once per part.

    Args:
        logits: (B, K) one part classifier's logits.
        targets: (B,) cluster ids in [0, K).
        alpha: (B,) the part's kNN agreement (Eq. 7), in [0, 1]; 1 gives plain cross-entropy.

    Returns:
        Scalar.
    """
    _check_logits(logits, targets)
    if alpha.shape != targets.shape:
        raise ValueError(f"alpha must be (B,) = {tuple(targets.shape)} like targets, got shape {tuple(alpha.shape)}")
    _check_unit_interval(alpha, "alpha")
    log_probs = F.log_softmax(logits, dim=1)
    own = -log_probs.gather(1, targets[:, None]).squeeze(1)  # -log q_y
    uniform = -log_probs.mean(dim=1)  # -sum_k (1/K) log q_k
    alpha = alpha.detach().to(logits)
    return (alpha * own + (1.0 - alpha) * uniform).mean()


def part_guided_refinement_loss(
    global_logits: Tensor, part_logits: Tensor, targets: Tensor, alpha: Tensor, *, beta: float = 0.35
) -> Tensor:
    """Cross-entropy of the global classifier against part-refined labels: SCWM Eq. 14-15 (PPLR's PGLR).

    ``y^g = beta onehot(target) + (1 - beta) sum_k softmax(alpha)_k q^pk`` with ``q^pk`` the part
    classifiers' softmax predictions (detached: the parts teach the global feature, not the reverse)
    and ``softmax(alpha)`` over the parts of each sample (Eq. 14's omega~); loss
    ``-sum_c y^g_c log q^g_c``, mean over the batch.

    Args:
        global_logits: (B, K) logits of the global classifier.
        part_logits: (B, l, K) logits of the part classifiers (no gradient flows into them here).
        targets: (B,) cluster ids in [0, K).
        alpha: (B, l) kNN agreements of the parts (Eq. 7).
        beta: weight of the one-hot label; 0.35 (SCWM section 4.2); PPLR's default is 0.5.

    Returns:
        Scalar.
    """
    _check_logits(global_logits, targets)
    batch, num_classes = global_logits.shape
    if part_logits.ndim != 3 or part_logits.shape[0] != batch or part_logits.shape[2] != num_classes:
        raise ValueError(
            f"part_logits must be ({batch}, l, {num_classes}) like global_logits (B, K), got shape "
            f"{tuple(part_logits.shape)}"
        )
    if alpha.shape != part_logits.shape[:2]:
        raise ValueError(f"alpha must be (B, l) = {tuple(part_logits.shape[:2])}, got shape {tuple(alpha.shape)}")
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    with torch.no_grad():
        part_weights = torch.softmax(alpha.to(global_logits), dim=1)  # (B, l)
        ensemble = (part_weights[:, :, None] * torch.softmax(part_logits.to(global_logits), dim=2)).sum(1)
        refined = beta * F.one_hot(targets, num_classes).to(global_logits.dtype) + (1.0 - beta) * ensemble
    return -(refined * F.log_softmax(global_logits, dim=1)).sum(dim=1).mean()


def soft_triplet_loss(features: Tensor, targets: Tensor) -> Tensor:
    """Batch-hard soft-margin triplet loss, PPLR's baseline metric loss (its ``SoftTripletLoss``, margin 0).

    For every anchor: ``log(1 + exp(d_ap - d_an))`` with d_ap the largest Euclidean distance to a
    sample of its class (itself when it is alone, distance 0) and d_an the smallest to another class
    (Hermans et al. 2017's batch-hard mining; the soft margin as in MMT, Ge et al. ICLR 2020). An
    anchor with no other class in the batch contributes 0. Distances are ``sqrt(max(d^2, 1e-12))``
    as in the reference, so the zero self-distance has a finite gradient. Mean over the batch.

    Args:
        features: (B, D) embeddings (PPLR feeds the global BN feature before L2 normalisation; the
            distances of unit-norm rows lie in [0, 2]).
        targets: (B,) labels.

    Returns:
        Scalar.
    """
    if features.ndim != 2 or targets.shape != features.shape[:1]:
        raise ValueError(
            f"need features (B, D) and targets (B,), got shapes {tuple(features.shape)} and {tuple(targets.shape)}"
        )
    squared = features.pow(2).sum(dim=1)
    dist = (squared[:, None] + squared[None, :] - 2.0 * features @ features.t()).clamp_min(1e-12).sqrt()  # (B, B)
    same = targets[:, None] == targets[None, :]
    hardest_positive = dist.masked_fill(~same, -torch.inf).amax(dim=1)
    hardest_negative = dist.masked_fill(same, torch.inf).amin(dim=1)  # inf: no negative, loss 0
    return F.softplus(hardest_positive - hardest_negative).mean()


def _check_logits(logits: Tensor, targets: Tensor) -> None:
    if logits.ndim != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(
            f"need logits (B, K) and targets (B,), got shapes {tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    if targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise ValueError(f"targets must be integer class ids, got {targets.dtype}")
    if targets.numel() and bool(((targets < 0) | (targets >= logits.shape[1])).any()):
        raise ValueError(
            f"targets must be in [0, {logits.shape[1]}), got values from {int(targets.min())} to {int(targets.max())}"
        )


def _check_unit_interval(values: Tensor, name: str) -> None:
    if values.numel() and bool(((values < 0) | (values > 1)).any()):
        raise ValueError(f"{name} must be in [0, 1], got values from {float(values.min())} to {float(values.max())}")
