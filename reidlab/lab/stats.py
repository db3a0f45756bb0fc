"""Small statistics the notebooks use to relate a method's numbers to the ground truth."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from reidlab.cluster.neighbors import knn_search

__all__ = ["group_means", "knn_precision", "rank_correlation", "relative_to_identity"]


def knn_precision(features: torch.Tensor | np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """``(N,)`` share of each sample's ``k`` nearest other samples (cosine) that have its label."""
    labels = np.asarray(labels)
    _, neighbours = knn_search(F.normalize(torch.as_tensor(features).float(), dim=1), k + 1)
    return (labels[neighbours[:, 1:]] == labels[:, None]).mean(1)


def rank_correlation(a, b) -> float:
    """Spearman's rank correlation of two ``(N,)`` sequences; NaN when one is constant."""
    rho = spearmanr(np.asarray(a), np.asarray(b)).statistic
    return float(rho) if np.isfinite(rho) else float("nan")


def group_means(values, mask) -> tuple[float, float]:
    """Mean of ``values`` (N,) inside and outside the boolean ``mask`` (N,); NaN for an empty group."""
    values, mask = np.asarray(values), np.asarray(mask, dtype=bool)
    return (float(values[mask].mean()) if mask.any() else float("nan"),
            float(values[~mask].mean()) if (~mask).any() else float("nan"))


def relative_to_identity(values, pids) -> np.ndarray:
    """``values`` (N,) divided by the median of the same identity's values (``pids`` (N,))."""
    values, pids = np.asarray(values), np.asarray(pids)
    medians = {p: np.median(values[pids == p]) for p in np.unique(pids)}
    return values / np.maximum([medians[p] for p in pids], 1e-6)
