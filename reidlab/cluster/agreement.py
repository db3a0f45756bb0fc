"""Cross-agreement of global and part features: how much a part's neighbourhood matches the global one.

SCWM Eq. 7 (the difficulty level alpha) and PPLR's cross-agreement score (Cho et al., "Part-based Pseudo
Label Refinement for Unsupervised Person Re-identification", CVPR 2022) are the same quantity: for every
sample, the IoU of the k-nearest-neighbour set of its global feature and that of its k-th part feature.
SCWM uses it to weight the memory update (Eq. 8-9) and the part labels (Eq. 13-14); PPLR uses it for the
same label smoothing and refinement. docs/methods.md, section 4.4.4.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from reidlab.cluster.neighbors import knn_search

__all__ = ["global_agreement", "knn_agreement"]


def knn_agreement(
    global_features: np.ndarray | Tensor, part_features: np.ndarray | Tensor, *, k: int = 20
) -> np.ndarray | Tensor:
    """alpha^pk, the IoU of the kNN sets of the global feature and of each part feature (SCWM Eq. 7).

    Neighbours are found with :func:`reidlab.cluster.neighbors.knn_search` by cosine similarity (every row is
    L2-normalised here first; for unit-norm rows this is the Euclidean ranking PPLR searches). As in
    PPLR's ``compute_cross_agreement`` / ``compute_ranked_list``, a sample's set is its ``k`` nearest
    OTHER samples: the search asks for ``k + 1`` and drops rank 0, the sample itself. Both sets have ``k``
    members, so ``IoU = |A & B| / (2k - |A & B|)``.

    Args:
        global_features: (N, D) global features, NumPy or torch (any device).
        part_features: (N, l, D) part features, same N and D.
        k: neighbours per set, the sample itself excluded; 20 is PPLR's default (``--k``), the paper
            gives no value. Needs ``k < N``.

    Returns:
        alpha (N, l) float32 in [0, 1], the same type as ``global_features`` (a torch tensor on its
        device, or a NumPy array). 1 means the part ranks the same neighbours as the global feature.

    Raises:
        ValueError: shapes disagree or ``k`` is out of range.
    """
    global_ = _as_tensor(global_features)
    parts = _as_tensor(part_features)
    if global_.ndim != 2 or parts.ndim != 3 or parts.shape[::2] != global_.shape:
        raise ValueError(
            f"need global_features (N, D) and part_features (N, l, D) with the same N and D, got shapes "
            f"{tuple(global_.shape)} and {tuple(parts.shape)}"
        )
    n = global_.shape[0]
    if int(k) != k or not 1 <= k < n:
        raise ValueError(f"k must be an integer between 1 and N - 1 = {n - 1} (the sample is excluded), got {k}")
    k = int(k)
    global_sets = _neighbour_sets(global_, k)  # (N, k)
    alpha = np.empty((n, parts.shape[1]), dtype=np.float32)
    for part in range(parts.shape[1]):
        part_sets = _neighbour_sets(parts[:, part], k)
        shared = (global_sets[:, :, None] == part_sets[:, None, :]).sum(axis=(1, 2))  # (N,) |A & B|
        alpha[:, part] = shared / (2 * k - shared)
    if isinstance(global_features, Tensor):
        return torch.from_numpy(alpha).to(global_features.device)
    return alpha


def global_agreement(alpha: np.ndarray | Tensor) -> np.ndarray | Tensor:
    """alpha^g, the mean of a sample's part agreements (SCWM Eq. 7, second line).

    Args:
        alpha: (N, l) part agreements from :func:`knn_agreement`, NumPy or torch.

    Returns:
        (N,) of the same type.
    """
    if alpha.ndim != 2:
        raise ValueError(f"alpha must be (N, l), got shape {tuple(alpha.shape)}")
    return alpha.mean(1)


def _as_tensor(features: np.ndarray | Tensor) -> Tensor:
    return features.detach() if isinstance(features, Tensor) else torch.as_tensor(np.asarray(features))


def _neighbour_sets(features: Tensor, k: int) -> np.ndarray:
    """(N, k) indices of each row's k nearest other rows by cosine similarity."""
    _, indices = knn_search(F.normalize(features.float(), dim=-1), k + 1)
    return indices[:, 1:]  # knn_search puts the sample itself at rank 0
