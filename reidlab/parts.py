"""Part features for SCWM and its PPLR baseline: part head, cascaded parsing, mask smoothing, parsing losses.

SCWM (Spatial Cascaded clustering and Weighted Memory, ``papers/scwm.txt``; SPEC section 4.4) learns
to parse people without any part labels:

1. A part head ``G`` (a 3x3 convolution and a softmax over ``l`` channels, the background being the last
   one) predicts part probabilities ``P`` on the backbone feature map ``F``; the part features are
   ``f^pk = GAP(P_k * F)`` (SCWM Eq. 1, :class:`PartHead`, :func:`masked_part_features`).
2. Before every epoch, each training feature map is parsed without labels by a *spatial cascaded
   clustering* (SCWM section 3.2, :func:`cascaded_parsing`): step 1 splits the positions by the
   magnitude ``||v||`` of their feature vector with a K-means (three classes with the *foreground
   correction*: salient foreground, regular foreground, background; two without); step 2 clusters the
   foreground vectors into ``l - 1`` parts with an average-linkage agglomerative clustering on a
   feature distance that is made "infinite" between positions at least ``eta`` apart (the *space
   correction*, Eq. 2). Parts are numbered top to bottom; the background is part ``l - 1``. The two
   switches give the four rows of SCWM Table 2.
3. The pseudo masks are smoothed across epochs, ``M~ <- gamma M~ + (1 - gamma) M`` (Eq. 3,
   :class:`MaskSmoother`), and supervise the part head with a cross-entropy (Eq. 4,
   :func:`parsing_loss`) plus a diversity loss that penalises overlapping part maps (Eq. 5,
   :func:`diversity_loss`).

PPLR (Cho et al., CVPR 2022), SCWM's baseline, uses three equal horizontal stripes instead
(:func:`stripe_features`). :class:`PartReIDModel` gives either kind of part features next to the
global embedding. SynthMarket's ground-truth masks measure how good a parsing is
(:func:`parsing_iou`, :func:`load_part_masks`).

The paper leaves several choices open; reidlab's choices, each measured or argued where it is made:

* Step 1 is an *exact* 1-D K-means: in one dimension the optimal classes are intervals of the sorted
  magnitudes, so every pair of thresholds is tried and the one with the smallest within-class sum of
  squares kept (the optimum Lloyd's algorithm looks for, without random restarts). Equal magnitudes are
  never split between classes.
* Step 2's feature distance is the cosine distance ``1 - cos`` of the L2-normalised vectors (the
  magnitude has already been used by step 1); the spatial distance is the Euclidean distance between
  positions, in feature-map cells; "infinity" is the finite value :data:`FAR_DISTANCE`, so that a tree
  with exactly ``l - 1`` clusters always exists; the linkage is average (``scipy.cluster.hierarchy``,
  five times faster than scikit-learn's ``AgglomerativeClustering`` on these sizes).
* :data:`DEFAULT_ETA` was measured on SynthMarket (``benchmarks/bench_parsing.py --quality``).
* The smoothing factor decays linearly from ``gamma`` at epoch 0 to 0 at ``gamma_epochs``.
* Degenerate images (fewer foreground positions than ``l - 1``) give each foreground position its own
  part; constant magnitudes give no foreground at all.

Taught in ``notebooks/04_part_parsing.ipynb``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy.cluster.hierarchy import linkage
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import squareform
from torch import Tensor, nn
from tqdm.auto import tqdm

from reidlab.data.synthmarket import PART_NAMES
from reidlab.models import BNNeck, GeneralizedMeanPooling, ReIDModel

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_ETA",
    "FAR_DISTANCE",
    "PART_SOURCES",
    "CascadeSteps",
    "MaskSmoother",
    "PartHead",
    "PartOutput",
    "PartReIDModel",
    "ParsingScore",
    "cascade_steps",
    "cascaded_parsing",
    "diversity_loss",
    "kmeans_1d",
    "load_part_masks",
    "masked_part_features",
    "parsing_iou",
    "parsing_loss",
    "part_names",
    "stripe_features",
]

PART_SOURCES = ("parsing", "stripes")
NUM_STRIPES = 3  # PPLR's three horizontal stripes
# SCWM Eq. 2's threshold, in feature-map cells. reidlab's choice, measured with LabNet on SynthMarket
# (16 x 8 maps, benchmarks/bench_parsing.py --quality): mIoU against the ground-truth masks peaks at 6
# (see the docstring of cascaded_parsing).
DEFAULT_ETA = 6.0
# SCWM Eq. 2's "infinity": far above the largest cosine distance (2), so with average linkage the share
# of far pairs between two clusters decides first, yet finite so that l - 1 clusters always exist.
FAR_DISTANCE = 1e4


# --------------------------------------------------------------------------------------------------
# Part features (SCWM Eq. 1, PPLR stripes) and the model
# --------------------------------------------------------------------------------------------------


class PartHead(nn.Module):
    """SCWM's part classifier ``G``: a 3x3 convolution from ``C`` channels to ``l`` part logits (Eq. 1).

    The softmax over dim 1 of the logits gives the part probabilities ``P``; channel ``l - 1`` is the
    background.

    Args:
        in_channels: channels ``C`` of the feature map.
        num_parts: ``l``, the background included.
    """

    def __init__(self, in_channels: int, num_parts: int) -> None:
        super().__init__()
        if num_parts < 2:
            raise ValueError(f"num_parts must be >= 2 (the background is one part), got {num_parts}")
        self.conv = nn.Conv2d(in_channels, num_parts, kernel_size=3, padding=1, bias=True)

    def forward(self, fmap: Tensor) -> Tensor:
        """Part logits ``(B, l, h, w)`` of ``fmap (B, C, h, w)``."""
        return self.conv(fmap)


def masked_part_features(fmap: Tensor, probs: Tensor) -> Tensor:
    """``f^pk = GAP(P_k * F)`` for every part (SCWM Eq. 1).

    GAP is the mean over all ``h * w`` positions, as Eq. 1 writes it (not a mean weighted by the mask),
    so a part that covers little of the image has a small feature before its BN neck.

    Args:
        fmap: feature map ``(B, C, h, w)``.
        probs: part probabilities ``(B, l, h, w)``.

    Returns:
        part features ``(B, l, C)``.
    """
    if probs.shape[0] != fmap.shape[0] or probs.shape[2:] != fmap.shape[2:]:
        raise ValueError(f"probs (B, l, h, w) must match fmap (B, C, h, w), got {tuple(probs.shape)} "
                         f"and {tuple(fmap.shape)}")
    height, width = fmap.shape[2:]
    return torch.einsum("blhw,bchw->blc", probs, fmap) / (height * width)


def stripe_features(fmap: Tensor, num_stripes: int = NUM_STRIPES) -> Tensor:
    """PPLR's part features: the average of ``num_stripes`` horizontal stripes of the feature map.

    When ``h`` is not a multiple of ``num_stripes`` the stripes are those of adaptive average pooling:
    stripe ``i`` covers rows ``floor(i h / S)`` to ``ceil((i + 1) h / S)`` (neighbours may share a row).

    Args:
        fmap: feature map ``(B, C, h, w)``.
        num_stripes: ``S`` (PPLR: 3), at most ``h``.

    Returns:
        stripe features ``(B, S, C)``, top stripe first.
    """
    if not 1 <= num_stripes <= fmap.shape[2]:
        raise ValueError(f"num_stripes must be in 1..{fmap.shape[2]} (the map height), got {num_stripes}")
    return F.adaptive_avg_pool2d(fmap, (num_stripes, 1)).squeeze(3).transpose(1, 2)


class PartOutput(NamedTuple):
    """What :meth:`PartReIDModel.forward_parts` returns.

    Attributes:
        global_: unit-norm global embeddings ``(B, C)`` (the model's ``forward``).
        parts: unit-norm part embeddings ``(B, l, C)``, one BN neck per part.
        part_logits: part-head logits ``(B, l, h, w)``, or None for stripes.
        fmap: backbone feature map ``(B, C, h, w)``.
        global_bn: the global BN-neck output before L2 normalisation ``(B, C)`` (what PPLR's soft
            triplet loss sees).
    """

    global_: Tensor
    parts: Tensor
    part_logits: Tensor | None
    fmap: Tensor
    global_bn: Tensor


class PartReIDModel(ReIDModel):
    """A :class:`reidlab.models.ReIDModel` that also gives part embeddings (SCWM Eq. 1 or PPLR stripes).

    ``forward(images)`` is unchanged, the global unit-norm embedding, because SCWM and PPLR evaluate with
    the global feature. :meth:`forward_parts` (or ``forward(images, parts=True)``) adds one unit-norm
    embedding per part, each through its own BN neck: SCWM's parsed parts (``part_source="parsing"``, a
    :class:`PartHead` and :func:`masked_part_features`) or PPLR's horizontal stripes (``"stripes"``,
    :func:`stripe_features`).

    Args:
        backbone: maps images ``(B, 3, H, W)`` to ``(B, C, h, w)``, with ``out_channels``.
        pooling: ``"avg"`` or ``"gem"``, the global pooling.
        num_parts: for ``"parsing"`` the number ``l`` of parsed parts, background included (SCWM: 4 on
            Market-1501, 7 on MSMT17); for ``"stripes"`` the number of stripes (PPLR: 3). ``None`` takes
            those defaults (4 and 3).
        part_source: ``"parsing"`` or ``"stripes"``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        pooling: str = "avg",
        num_parts: int | None = None,
        part_source: str = "parsing",
    ) -> None:
        super().__init__(backbone, pooling=pooling)
        if part_source not in PART_SOURCES:
            raise ValueError(f"part_source must be one of {PART_SOURCES}, got {part_source!r}")
        if num_parts is None:
            num_parts = 4 if part_source == "parsing" else NUM_STRIPES
        if num_parts < (2 if part_source == "parsing" else 1):
            raise ValueError(f"num_parts must be >= 2 for parsing (background included) and >= 1 for stripes, "
                             f"got {num_parts}")
        self.part_source = part_source
        self.part_head = PartHead(self.feature_dim, num_parts) if part_source == "parsing" else None
        self.part_necks = nn.ModuleList(BNNeck(self.feature_dim) for _ in range(num_parts))

    @property
    def num_parts(self) -> int:
        """Number of part embeddings ``l`` (the background included for parsing)."""
        return len(self.part_necks)

    def forward(self, images: Tensor, *, parts: bool = False) -> Tensor | PartOutput:
        """The global unit-norm embedding ``(B, C)`` of ``images (B, 3, H, W)``; with ``parts``, :meth:`forward_parts`.

        ``parts=True`` is how a training step goes through ``nn.parallel.DistributedDataParallel``, which
        synchronises the gradients of what its wrapped ``forward`` computes (:class:`reidlab.scwm.PartTrainer`).
        """
        return self.forward_parts(images) if parts else super().forward(images)

    def part_features(self, fmap: Tensor) -> tuple[Tensor, Tensor | None]:
        """Pooled part features ``(B, l, C)`` (before the necks) and part logits ``(B, l, h, w)`` or None."""
        if self.part_head is None:
            return stripe_features(fmap, self.num_parts), None
        logits = self.part_head(fmap)
        return masked_part_features(fmap, logits.softmax(dim=1)), logits

    def forward_parts(self, images: Tensor) -> PartOutput:
        """Global and part embeddings of ``images (B, 3, H, W)``, with the part logits and the feature map."""
        fmap = self.forward_features(images)
        pooled, logits = self.part_features(fmap)
        parts = torch.stack([neck(pooled[:, k]) for k, neck in enumerate(self.part_necks)], dim=1)
        global_bn = self.neck.bn(self.pool(fmap))  # forward_head's steps, keeping the BN output
        return PartOutput(F.normalize(global_bn, dim=1), parts, logits, fmap, global_bn)

    @classmethod
    def from_model(
        cls, model: ReIDModel, *, num_parts: int | None = None, part_source: str = "parsing"
    ) -> PartReIDModel:
        """A part model that shares ``model``'s backbone, pooling and neck, with a fresh head and part necks.

        How a run starts from a trained :class:`ReIDModel` (e.g.
        :func:`reidlab.supervised.source_pretrained_model`): the shared modules are the same objects,
        not copies, so the new model's ``forward`` equals ``model``'s. The new modules are put on the
        device of ``model``'s parameters and in its train/eval mode.
        """
        pooling = "gem" if isinstance(model.pool, GeneralizedMeanPooling) else "avg"
        part_model = cls(model.backbone, pooling=pooling, num_parts=num_parts, part_source=part_source)
        part_model.pool = model.pool
        part_model.neck = model.neck
        device = next(model.parameters()).device
        return part_model.to(device).train(model.training)


# --------------------------------------------------------------------------------------------------
# Spatial cascaded clustering (SCWM section 3.2, Eq. 2)
# --------------------------------------------------------------------------------------------------


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


def parsing_loss(part_logits: Tensor, target: Tensor) -> Tensor:
    """``-sum_k M~_k log P_k`` averaged over positions and images (SCWM Eq. 4).

    Args:
        part_logits: part-head logits ``(B, l, h, w)`` (``log_softmax`` gives ``log P`` stably).
        target: smoothed masks ``(B, l, h, w)``, summing to 1 over ``l``.
    """
    if part_logits.shape != target.shape:
        raise ValueError(f"part_logits and target must have the same (B, l, h, w) shape, got "
                         f"{tuple(part_logits.shape)} and {tuple(target.shape)}")
    return -(target * part_logits.log_softmax(dim=1)).sum(dim=1).mean()


def diversity_loss(part_logits: Tensor) -> Tensor:
    """``2 / (l (l - 1)) sum_{i<j} sum_{x,y} P_i P_j`` per position, averaged over images (SCWM Eq. 5).

    The overlap of every pair of predicted part maps. reidlab's choice: the sum over positions of Eq. 5
    is divided by ``h * w``, the same reduction as :func:`parsing_loss` (Eq. 4, a mean over positions).
    Eq. 5 as written is ``h * w`` times larger (128 at lab scale, 192 at 384 x 128) and then dominates
    Eq. 4: measured at lab scale, the part head collapsed to one part everywhere (no overlap at all)
    instead of following the pseudo masks. With equal reductions the cheapest way to lower both terms
    is one confident part per position that agrees with the pseudo mask. At most ``1 / l^2`` per
    position, reached by uniform ``P``; 0 for one-hot maps.

    Args:
        part_logits: part-head logits ``(B, l, h, w)``.
    """
    num_parts = part_logits.shape[1]
    if num_parts < 2:
        raise ValueError(f"part_logits must have at least 2 parts, got {num_parts}")
    probs = part_logits.softmax(dim=1).flatten(2)  # (B, l, hw)
    overlap = probs @ probs.transpose(1, 2) / probs.shape[-1]  # (B, l, l): mean over positions of P_i P_j
    upper = torch.triu(torch.ones(num_parts, num_parts, dtype=torch.bool, device=probs.device), diagonal=1)
    return overlap[:, upper].sum(dim=1).mean() * 2 / (num_parts * (num_parts - 1))


# --------------------------------------------------------------------------------------------------
# Parsing quality against ground-truth masks (SynthMarket)
# --------------------------------------------------------------------------------------------------


class ParsingScore(NamedTuple):
    """How a parsing matches ground-truth regions (:func:`parsing_iou`).

    Attributes:
        iou: IoU over the whole set between every part and every region ``(l, R)``.
        matching: the one-to-one ``(part, region)`` index pairs chosen by the Hungarian algorithm.
        per_part: ``"part0" ... "background"`` -> IoU with its matched region, e.g.
            ``{"part0": 0.61, ...}``; ``matching`` says which region.
        miou: mean IoU of the matched pairs.
    """

    iou: np.ndarray
    matching: list[tuple[int, int]]
    per_part: dict[str, float]
    miou: float


def part_names(num_parts: int) -> tuple[str, ...]:
    """Names of the ``l`` parsed parts: ``("part0", ..., "part{l-2}", "background")``."""
    return tuple(f"part{k}" for k in range(num_parts - 1)) + ("background",)


def parsing_iou(
    pred: Tensor | np.ndarray,
    gt: Tensor | np.ndarray,
    *,
    num_parts: int,
    region_names: Sequence[str] = PART_NAMES,
) -> ParsingScore:
    """IoU of a parsing against ground-truth regions, parts matched to regions one to one.

    Unsupervised parts have no names, so each part is matched to one region by the Hungarian algorithm
    (``scipy.optimize.linear_sum_assignment``) maximising the summed IoU; the IoU of a pair is counted
    over the whole set (intersection and union summed over all images). With more regions than parts
    (SynthMarket: 6 regions, SCWM: 4 parts) the least matched regions stay unmatched; the background
    part is matched like any other.

    Args:
        pred: predicted labels ``(N, h, w)`` in ``0..l-1``; upsampled (nearest) to the ground-truth size.
        gt: ground-truth labels ``(N, H, W)`` in ``0..R-1``, e.g. from :func:`load_part_masks`.
        num_parts: ``l``.
        region_names: names of the ``R`` ground-truth regions (SynthMarket's
            :data:`reidlab.data.synthmarket.PART_NAMES`).

    Returns:
        :class:`ParsingScore`.
    """
    pred = torch.as_tensor(pred).long().cpu()
    gt = torch.as_tensor(gt).long().cpu()
    if pred.dim() != 3 or gt.dim() != 3 or len(pred) != len(gt):
        raise ValueError(f"pred (N, h, w) and gt (N, H, W) must have the same N, got {tuple(pred.shape)} "
                         f"and {tuple(gt.shape)}")
    num_regions = len(region_names)
    if pred.numel() and (pred.min() < 0 or pred.max() >= num_parts):
        raise ValueError(f"pred labels must be in 0..{num_parts - 1}, got {pred.min()}..{pred.max()}")
    if gt.numel() and (gt.min() < 0 or gt.max() >= num_regions):
        raise ValueError(f"gt labels must be in 0..{num_regions - 1}, got {gt.min()}..{gt.max()}")
    if pred.shape[1:] != gt.shape[1:]:
        pred = F.interpolate(pred[:, None].float(), size=tuple(gt.shape[1:]), mode="nearest")[:, 0].long()
    joint = torch.bincount((pred * num_regions + gt).flatten(), minlength=num_parts * num_regions)
    intersection = joint.view(num_parts, num_regions).double().numpy()
    union = intersection.sum(1, keepdims=True) + intersection.sum(0, keepdims=True) - intersection
    iou = np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)
    parts, regions = linear_sum_assignment(iou, maximize=True)
    matching = [(int(k), int(r)) for k, r in zip(parts, regions)]
    names = part_names(num_parts)
    per_part = {names[k]: float(iou[k, r]) for k, r in matching}
    return ParsingScore(iou, matching, per_part, float(np.mean([iou[k, r] for k, r in matching])))


def load_part_masks(records: Sequence, size: tuple[int, int] | None = None) -> Tensor:
    """Ground-truth part masks of ``records`` as labels ``(N, H, W)`` int64.

    Only SynthMarket has them (``Record.mask_path``; labels as in
    :data:`reidlab.data.synthmarket.PART_NAMES`).

    Args:
        records: :class:`reidlab.data.Record` items with a ``mask_path``.
        size: ``(H, W)`` to resize to (nearest neighbour); ``None`` keeps the files' size.
    """
    from PIL import Image

    masks = []
    for record in records:
        if getattr(record, "mask_path", None) is None:
            raise ValueError(f"record {record.path!r} has no mask_path: only SynthMarket has ground-truth part "
                             "masks (load it with reidlab.data.load_dataset('synthmarket', root))")
        with Image.open(record.mask_path) as image:
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.NEAREST)
            masks.append(np.asarray(image, dtype=np.int64))
    if not masks:
        raise ValueError("no records to load masks for: the record list is empty")
    shapes = {m.shape for m in masks}
    if len(shapes) > 1:
        raise ValueError(f"masks have different sizes {sorted(shapes)}: pass size=(H, W)")
    return torch.from_numpy(np.stack(masks))
