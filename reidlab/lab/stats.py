"""Small statistics the notebooks use to relate a method's numbers to the ground truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from reidlab.cluster.neighbors import knn_search

__all__ = ["CameraPrediction", "camera_predictability", "disjoint_pairs", "group_means", "knn_precision",
           "percentile_rank", "rank_correlation", "relative_to_identity"]


def knn_precision(features: torch.Tensor | np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """``(N,)`` share of each sample's ``k`` nearest other samples (cosine) that have its label."""
    labels = np.asarray(labels)
    _, neighbours = knn_search(F.normalize(torch.as_tensor(features).float(), dim=1), k + 1)
    return (labels[neighbours[:, 1:]] == labels[:, None]).mean(1)


def rank_correlation(a, b) -> float:
    """Spearman's rank correlation of two ``(N,)`` sequences; NaN when one is constant."""
    rho = spearmanr(np.asarray(a), np.asarray(b)).statistic
    return float(rho) if np.isfinite(rho) else float("nan")


def disjoint_pairs(pairs, limit: int, *, exclude=()) -> np.ndarray:
    """The first ``limit`` of ``pairs`` (P, 2), in their order, that share no index with a pair taken before
    nor with ``exclude``.

    Sorted by hardness, the hardest pairs often repeat one image (an outlier far from all of its identity's
    images); taking each image at most once shows ``limit`` different cases instead (notebook
    ``01_clustering``). Returns a ``(min(limit, available), 2)`` array.
    """
    used, chosen = set(np.asarray(exclude).ravel().tolist()), []
    for i, j in np.asarray(pairs).reshape(-1, 2).tolist():
        if len(chosen) == limit:
            break
        if i != j and i not in used and j not in used:
            chosen.append((i, j))
            used.update((i, j))
    return np.array(chosen, dtype=np.int64).reshape(-1, 2)


def percentile_rank(population, values) -> np.ndarray:
    """Where each of ``values`` falls in ``population`` (1-D): the share of the population at or below it
    (0: smaller than all, 1: no smaller than any). Puts distances on different scales (cosine, Jaccard) on
    one footing. Ties count as closer: a pair at the Jaccard distance 1 that most pairs share (no common
    neighbour) ranks with the farthest pairs, not in the middle of its ties."""
    ordered = np.sort(np.asarray(population).ravel())
    return np.searchsorted(ordered, np.asarray(values), side="right") / max(1, ordered.size)


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


@dataclass(frozen=True)
class CameraPrediction:
    """How well the camera of an image can be told from its feature (:func:`camera_predictability`).

    Attributes:
        accuracy: mean held-out accuracy over the folds.
        fold_accuracies: ``(folds,)`` the accuracy of every fold.
        chance: the accuracy of always guessing the most common camera.
        folds: number of folds.
    """

    accuracy: float
    fold_accuracies: tuple[float, ...]
    chance: float
    folds: int

    @property
    def std(self) -> float:
        """Standard deviation of the fold accuracies."""
        return float(np.std(self.fold_accuracies))

    def __str__(self) -> str:
        return (f"camera accuracy {100 * self.accuracy:.1f}% +- {100 * self.std:.1f} ({self.folds} folds), "
                f"chance {100 * self.chance:.1f}%")


def camera_predictability(features, cameras, *, groups=None, folds: int = 5, seed: int = 0) -> CameraPrediction:
    """Cross-validated accuracy of a linear classifier that predicts the camera from the feature.

    A measure of *camera bias* (CAP, Wang et al. AAAI 2021, section 1; docs/methods.md, section 4.6): if a
    logistic regression on the L2-normalised features names the camera of held-out images well above chance,
    the features still encode the camera (its colour cast, background, sensor), which a re-ID feature should
    ignore. With ``groups`` (the identities), folds are split by group (scikit-learn's
    ``StratifiedGroupKFold``): the classifier is tested on people it has not seen, so it cannot name the
    camera by recognising a person filmed there.

    Args:
        features: ``(N, D)`` features (NumPy or torch), L2-normalised here.
        cameras: ``(N,)`` the camera of every image.
        groups: ``(N,)`` identities (or None: stratified folds by camera).
        folds: number of cross-validation folds, at least 2.
        seed: shuffles the folds.

    Returns:
        A :class:`CameraPrediction` (``accuracy``, ``fold_accuracies``, ``chance``).

    Raises:
        ValueError: shapes disagree, fewer than two cameras, or too few samples for ``folds``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    x = F.normalize(torch.as_tensor(features).float(), dim=1).numpy()
    cameras = np.asarray(cameras)
    if x.ndim != 2 or cameras.shape != (x.shape[0],):
        raise ValueError(f"need features (N, D) and cameras (N,), got shapes {x.shape} and {cameras.shape}")
    values, counts = np.unique(cameras, return_counts=True)
    if len(values) < 2:
        raise ValueError(f"need at least two cameras to predict one, got {values.tolist()}")
    if int(folds) != folds or folds < 2 or len(cameras) < 2 * folds:
        raise ValueError(f"folds must be an integer >= 2 with at least 2 samples per fold, got folds={folds} for "
                         f"N={len(cameras)}")
    if groups is None:
        splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, cameras)
    else:
        groups = np.asarray(groups)
        if groups.shape != cameras.shape:
            raise ValueError(f"groups must be (N,) like cameras, got shape {groups.shape}")
        splits = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(x, cameras, groups)
    accuracies = []
    for train, test in splits:
        classifier = LogisticRegression(max_iter=2000).fit(x[train], cameras[train])
        accuracies.append(float((classifier.predict(x[test]) == cameras[test]).mean()))
    return CameraPrediction(float(np.mean(accuracies)), tuple(accuracies), float(counts.max() / counts.sum()),
                            int(folds))
