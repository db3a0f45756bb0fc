"""SCWM's spatial cascaded clustering (section 3.2, Eq. 2) and the smoothing of its masks (Eq. 3).

See :mod:`reidlab.parsing` for the method and the choices reidlab made where the paper is silent.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy.cluster.hierarchy import linkage
from scipy.spatial.distance import squareform
from torch import Tensor, nn
from tqdm.auto import tqdm

# SCWM Eq. 2's threshold, in feature-map cells. reidlab's choice, measured with LabNet on SynthMarket
# (16 x 8 maps, benchmarks/bench_parsing.py --quality): mIoU against the ground-truth masks peaks at 6
# (see the docstring of cascaded_parsing).
DEFAULT_ETA = 6.0
# SCWM Eq. 2's "infinity": far above the largest cosine distance (2), so with average linkage the share
# of far pairs between two clusters decides first, yet finite so that l - 1 clusters always exist.
FAR_DISTANCE = 1e4


class CascadeSteps(NamedTuple):
    """The intermediate results of the cascaded clustering, for one image or a batch (leading ``B``).

    Attributes:
        magnitude: feature-vector magnitude ``||v||`` per position ``(h, w)``.
        magnitude_classes: step 1's K-means class per position ``(h, w)``, 0 = lowest centre (three
            classes with foreground correction, two without; fewer when the magnitudes take fewer
            distinct values).
        foreground: ``(h, w)`` bool, every class but the lowest.
        labels: the parsing ``(h, w)`` int64, parts ``0..l-2`` top to bottom, ``l - 1`` = background.
    """

    magnitude: Tensor
    magnitude_classes: Tensor
    foreground: Tensor
    labels: Tensor


def kmeans_1d(values: Tensor, num_classes: int) -> Tensor:
    """Exact 1-D K-means with 2 or 3 classes for every row of ``values (B, n)`` at once.

    In one dimension the optimal K-means classes are intervals of the sorted values, so all thresholds
    (``n - 1`` for two classes, all pairs for three) are scored and the best kept: the global optimum,
    deterministic, no initialisation. The within-class sum of squares equals the total sum of squares
    (fixed) minus ``sum_c S_c^2 / n_c`` (``S_c``, ``n_c``: sum and size of class ``c``), so the best
    thresholds maximise that score, computed from prefix sums. Thresholds lie only between distinct
    values; a row with fewer distinct values than ``num_classes`` gets as many classes as it has
    distinct values (one class, 0, for a constant row).

    Returns:
        classes ``(B, n)`` int64, 0 = lowest centre.
    """
    if num_classes not in (2, 3):
        raise ValueError(f"num_classes must be 2 or 3, got {num_classes}")
    batch, n = values.shape
    values = values.double()
    ordered = values.sort(dim=1).values
    prefix = torch.cat([ordered.new_zeros(batch, 1), ordered.cumsum(1)], 1)  # (B, n + 1)
    bounds = torch.arange(n + 1, device=values.device, dtype=torch.float64)
    # Boundary i (1..n-1) puts ordered[:i] below it and ordered[i:] above; allowed between distinct values.
    allowed = torch.zeros(batch, n + 1, dtype=torch.bool, device=values.device)
    allowed[:, 1:n] = ordered[:, 1:] > ordered[:, :-1]
    below = prefix**2 / bounds.clamp(min=1)  # score of the class ordered[:i]
    above = (prefix[:, -1:] - prefix) ** 2 / (n - bounds).clamp(min=1)  # ... of ordered[i:]
    score2 = (below + above).masked_fill_(~allowed, -torch.inf)  # (B, n + 1)
    best2, lower = score2.max(1)
    lower = torch.where(torch.isfinite(best2), lower, n)  # n: no threshold
    upper = torch.full_like(lower, n)
    if num_classes == 3:  # score3[:, a, b]: classes ordered[:a], ordered[a:b], ordered[b:]
        count = (bounds[None, :] - bounds[:, None]).clamp_(min=1)  # (n + 1, n + 1)
        score3 = (prefix[:, None, :] - prefix[:, :, None]).square_().div_(count)
        score3.add_(below[:, :, None]).add_(above[:, None, :])
        valid = allowed[:, :, None] & allowed[:, None, :] & (bounds[None, :] > bounds[:, None])
        best3, pair = score3.masked_fill_(~valid, -torch.inf).flatten(1).max(1)
        has3 = torch.isfinite(best3)
        lower = torch.where(has3, pair // (n + 1), lower)
        upper = torch.where(has3, pair % (n + 1), upper)
    padded = torch.cat([ordered, ordered.new_full((batch, 1), torch.inf)], 1)  # index n: never reached
    return (values >= padded.gather(1, lower[:, None])).long() + (values >= padded.gather(1, upper[:, None])).long()


def _spatial_distance(height: int, width: int, device: torch.device) -> Tensor:
    """Euclidean distance in feature-map cells between all positions, ``(h*w, h*w)``, row-major order."""
    rows, cols = torch.meshgrid(torch.arange(height, device=device), torch.arange(width, device=device),
                                indexing="ij")
    coords = torch.stack([rows.flatten(), cols.flatten()], 1).float()
    return torch.cdist(coords, coords)


def _cut_tree(merges: np.ndarray, num_points: int, num_clusters: int) -> np.ndarray:
    """Flat clusters ``(m,)`` of a scipy linkage matrix after undoing its last ``num_clusters - 1`` merges.

    (``scipy.cluster.hierarchy.fcluster(criterion="maxclust")`` may return fewer clusters when merge
    heights tie, as they do between clusters whose pairs are all "infinitely" far.)
    """
    kept = num_points - num_clusters
    owner = np.full(2 * num_points - 1, -1)
    next_label = 0
    for step in range(kept - 1, -1, -1):  # top-down over the kept merges
        node = num_points + step
        if owner[node] < 0:  # not inside a later kept merge: the root of a flat cluster
            owner[node] = next_label
            next_label += 1
        owner[int(merges[step, 0])] = owner[node]
        owner[int(merges[step, 1])] = owner[node]
    leaves = owner[:num_points]
    singletons = leaves < 0  # never merged
    leaves[singletons] = np.arange(next_label, next_label + singletons.sum())
    return leaves


def _foreground_parts(dist: np.ndarray, rows: np.ndarray, num_parts: int) -> np.ndarray:
    """Step 2 for one image: average-linkage clusters of the foreground, numbered top to bottom.

    Args:
        dist: corrected distance ``(m, m)`` between the foreground positions.
        rows: row of each foreground position ``(m,)``.
        num_parts: ``l - 1``.

    Returns:
        part labels ``(m,)`` in ``0..l-2``, ordered by the mean row of their cluster (ties: first position).
    """
    m = len(rows)
    if m <= num_parts:  # degenerate: each position its own part (reidlab's choice)
        clusters = np.arange(m)
    else:
        merges = linkage(squareform(dist, checks=False), method="average")
        clusters = _cut_tree(merges, m, num_parts)
    count = np.bincount(clusters)
    height = np.bincount(clusters, weights=rows) / count
    first = np.full(len(count), m)
    np.minimum.at(first, clusters, np.arange(m))
    order = np.lexsort((first, height))  # top to bottom
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[clusters]


def _check_cascade_options(num_parts: int, eta: float) -> None:
    if num_parts < 2:
        raise ValueError(f"num_parts must be >= 2 (the background is one part), got {num_parts}")
    if not eta > 0:
        raise ValueError(f"eta must be a positive distance in feature-map cells (or inf), got {eta}")


def _cascade_batch(
    fmaps: Tensor, num_parts: int, foreground_correction: bool, space_correction: bool, eta: float
) -> CascadeSteps:
    """Both steps of the cascade for a batch ``(B, C, h, w)``; every field gets a leading ``B``."""
    batch, _, height, width = fmaps.shape
    vectors = fmaps.detach().float().flatten(2).transpose(1, 2)  # (B, n, C)
    magnitude = vectors.norm(dim=2)
    classes = kmeans_1d(magnitude, 3 if foreground_correction else 2)
    foreground = classes > 0
    unit = vectors / magnitude.clamp(min=1e-12)[:, :, None]  # zero vectors stay zero
    dist = (unit @ unit.transpose(1, 2)).neg_().add_(1).clamp_(min=0)  # cosine distance (B, n, n)
    if space_correction and np.isfinite(eta):
        far = _spatial_distance(height, width, fmaps.device) >= eta  # SCWM Eq. 2
        dist.masked_fill_(far, FAR_DISTANCE)
    dist = dist.cpu().numpy()  # float32; scipy's linkage works in float64
    fg = foreground.cpu().numpy()
    rows = np.repeat(np.arange(height), width)
    labels = np.full((batch, height * width), num_parts - 1, dtype=np.int64)
    for b in range(batch):
        idx = np.flatnonzero(fg[b])
        if len(idx):
            labels[b, idx] = _foreground_parts(dist[b][np.ix_(idx, idx)], rows[idx], num_parts - 1)
    shape = (batch, height, width)
    return CascadeSteps(
        magnitude.view(shape),
        classes.view(shape),
        foreground.view(shape),
        torch.from_numpy(labels).view(shape).to(fmaps.device),
    )


def cascade_steps(
    fmap: Tensor,
    *,
    num_parts: int,
    foreground_correction: bool = True,
    space_correction: bool = True,
    eta: float = DEFAULT_ETA,
    seed: int = 0,
) -> CascadeSteps:
    """The spatial cascaded clustering of one feature map, step by step (SCWM section 3.2).

    Same options as :func:`cascaded_parsing`, which runs the same code on batches.

    Args:
        fmap: one feature map ``(C, h, w)``.

    Returns:
        :class:`CascadeSteps` with ``(h, w)`` fields on ``fmap``'s device.
    """
    if fmap.dim() != 3:
        raise ValueError(f"fmap must be one (C, h, w) feature map, got shape {tuple(fmap.shape)}")
    _check_cascade_options(num_parts, eta)
    steps = _cascade_batch(fmap[None], num_parts, foreground_correction, space_correction, eta)
    return CascadeSteps(*(field[0] for field in steps))


def cascaded_parsing(
    fmaps: Tensor,
    *,
    num_parts: int,
    foreground_correction: bool = True,
    space_correction: bool = True,
    eta: float = DEFAULT_ETA,
    seed: int = 0,
    batch_size: int = 256,
    progress: bool = False,
) -> Tensor:
    """Pseudo parsing masks of feature maps by SCWM's spatial cascaded clustering (section 3.2, Eq. 2).

    Step 1: a K-means on the magnitude ``||v||`` of every position's feature vector; with
    ``foreground_correction`` three classes (salient foreground, regular foreground, background: the
    salient class keeps a few very strong responses from pulling the foreground threshold up), without
    it two. The class with the lowest centre is the background. Step 2: the foreground vectors are
    clustered into ``l - 1`` parts by average-linkage agglomerative clustering on a precomputed
    distance: the cosine distance of the L2-normalised vectors, replaced by :data:`FAR_DISTANCE` for
    pairs whose spatial distance is at least ``eta`` cells with ``space_correction`` (Eq. 2; without it
    there is no spatial constraint, as with a very large ``eta``). The four combinations of the two
    switches are the rows of SCWM Table 2.

    reidlab's choices where the paper is silent: an exact 1-D K-means (:func:`kmeans_1d`), cosine
    distance, Euclidean spatial distance in feature-map cells, parts numbered by the mean row of their
    positions (top first, ties by first position), and for degenerate images (fewer foreground
    positions than ``l - 1``) one part per foreground position, the remaining parts left empty. The
    default ``eta`` (:data:`DEFAULT_ETA` = 6 cells) is the best of 2..8 and inf by mIoU against
    SynthMarket's ground-truth masks for the source-pretrained LabNet's 16 x 8 maps of the 3,088
    lab-scale training images (``python benchmarks/bench_parsing.py --quality``): with both corrections
    0.245 (eta = inf), 0.276 (2), 0.287 (4), 0.293 (6), 0.284 (8); without foreground correction the
    same shape, peaking at 0.311 for eta = 6. For a 24 x 8 map (ResNet-50 at SCWM's 384 x 128) a part
    spans 1.5 times as many rows; scale ``eta`` accordingly.

    Args:
        fmaps: feature maps ``(B, C, h, w)``, on any device (step 1 and the distances run there, the
            clustering on the CPU).
        num_parts: ``l``, the background included (SCWM: 4 on Market-1501).
        foreground_correction: three magnitude classes instead of two.
        space_correction: cut the distance of pairs at least ``eta`` apart.
        eta: spatial threshold of Eq. 2 in feature-map cells; ``inf`` = no constraint.
        seed: accepted for reproducible call sites; the cascade has no random step (exact K-means,
            deterministic linkage), so the labels never depend on it.
        batch_size: maps per chunk (the chunk's ``(B, hw, hw)`` distances are held in memory).
        progress: show a progress bar over the chunks.

    Returns:
        labels ``(B, h, w)`` int64 on ``fmaps``' device, parts ``0..l-2`` top to bottom, ``l - 1`` =
        background.
    """
    if fmaps.dim() != 4:
        raise ValueError(f"fmaps must be (B, C, h, w), got shape {tuple(fmaps.shape)}")
    _check_cascade_options(num_parts, eta)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    chunks = [
        _cascade_batch(fmaps[start:start + batch_size], num_parts, foreground_correction, space_correction,
                       eta).labels
        for start in tqdm(range(0, len(fmaps), batch_size), desc="parsing", disable=not progress, leave=False)
    ]
    if not chunks:
        return torch.zeros(0, *fmaps.shape[2:], dtype=torch.long, device=fmaps.device)
    return torch.cat(chunks)


# --------------------------------------------------------------------------------------------------
# Mask smoothing and parsing losses (SCWM Eq. 3-5)
# --------------------------------------------------------------------------------------------------


class MaskSmoother(nn.Module):
    """Pseudo parsing masks smoothed across epochs, one per training image (SCWM Eq. 3).

    ``M~ <- gamma M~ + (1 - gamma) onehot(labels)``; an image seen for the first time takes
    ``onehot(labels)``. SCWM sets gamma to 0.2 and writes that it "decreases to 0 after 20 epochs";
    reidlab's reading is a linear decay, ``gamma_t = gamma * max(0, 1 - t / gamma_epochs)`` for the
    0-based epoch ``t``: 0.2 at epoch 0, 0.1 at epoch 10, 0 from epoch 20 on (the pseudo masks are used
    as they are). ``masks`` and ``seen`` are buffers, so ``state_dict`` carries them into checkpoints.

    Args:
        num_samples: ``N``, training images.
        num_parts: ``l``, the background included.
        map_size: ``(h, w)`` of the feature maps.
        gamma: momentum at epoch 0, in [0, 1).
        gamma_epochs: epoch from which gamma is 0, >= 1.
    """

    def __init__(
        self,
        num_samples: int,
        num_parts: int,
        map_size: tuple[int, int],
        *,
        gamma: float = 0.2,
        gamma_epochs: int = 20,
    ) -> None:
        super().__init__()
        if not 0 <= gamma < 1:
            raise ValueError(f"gamma must be in [0, 1), got {gamma}")
        if gamma_epochs < 1:
            raise ValueError(f"gamma_epochs must be >= 1, got {gamma_epochs}")
        if num_parts < 2:
            raise ValueError(f"num_parts must be >= 2 (the background is one part), got {num_parts}")
        self.gamma = gamma
        self.gamma_epochs = gamma_epochs
        self.num_parts = num_parts
        self.register_buffer("masks", torch.zeros(num_samples, num_parts, *map_size))
        self.register_buffer("seen", torch.zeros(num_samples, dtype=torch.bool))

    def gamma_at(self, epoch: int) -> float:
        """The smoothing factor of 0-based ``epoch``: linear from ``gamma`` to 0 at ``gamma_epochs``."""
        return self.gamma * max(0.0, 1.0 - epoch / self.gamma_epochs)

    @torch.no_grad()
    def update(self, indexes: Tensor, labels: Tensor, epoch: int) -> None:
        """Fold this epoch's pseudo labels ``(B, h, w)`` of images ``indexes (B,)`` into the masks (Eq. 3)."""
        indexes = torch.as_tensor(indexes, device=self.masks.device).long()
        labels = torch.as_tensor(labels, device=self.masks.device).long()
        if labels.shape[1:] != self.masks.shape[2:] or labels.shape[0] != indexes.shape[0]:
            raise ValueError(f"labels must be (B, h, w) = ({len(indexes)}, {self.masks.shape[2]}, "
                             f"{self.masks.shape[3]}), got {tuple(labels.shape)}")
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_parts):
            raise ValueError(f"labels must be in 0..{self.num_parts - 1}, got {labels.min()}..{labels.max()}")
        onehot = F.one_hot(labels, self.num_parts).permute(0, 3, 1, 2).float()
        gamma = self.gamma_at(epoch)
        smoothed = gamma * self.masks[indexes] + (1 - gamma) * onehot
        self.masks[indexes] = torch.where(self.seen[indexes, None, None, None], smoothed, onehot)
        self.seen[indexes] = True

    def forward(self, indexes: Tensor) -> Tensor:
        """The smoothed masks ``(B, l, h, w)`` of images ``indexes (B,)``; every one must have been updated."""
        indexes = torch.as_tensor(indexes, device=self.masks.device).long()
        if not bool(self.seen[indexes].all()):
            missing = indexes[~self.seen[indexes]].tolist()
            raise ValueError(f"no pseudo mask yet for samples {missing[:5]}: call update() with them first")
        return self.masks[indexes]

    lookup = forward
