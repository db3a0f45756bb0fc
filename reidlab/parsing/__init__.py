"""SCWM's part parsing without labels: spatial cascaded clustering, mask smoothing, parsing losses, scoring.

SCWM (Spatial Cascaded clustering and Weighted Memory, Hong et al.; docs/methods.md, section 4.4) learns
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

from reidlab.parsing.cascade import (
    DEFAULT_ETA,
    FAR_DISTANCE,
    CascadeSteps,
    MaskSmoother,
    cascade_steps,
    cascaded_parsing,
    kmeans_1d,
)
from reidlab.parsing.losses import diversity_loss, parsing_loss
from reidlab.parsing.scoring import (
    ParsingScore,
    foreground_scores,
    load_part_masks,
    parsing_iou,
    part_map_measures,
    part_names,
    parts_in_pieces,
)

__all__ = [
    "DEFAULT_ETA",
    "FAR_DISTANCE",
    "CascadeSteps",
    "MaskSmoother",
    "ParsingScore",
    "cascade_steps",
    "cascaded_parsing",
    "diversity_loss",
    "foreground_scores",
    "kmeans_1d",
    "load_part_masks",
    "parsing_iou",
    "parsing_loss",
    "part_map_measures",
    "part_names",
    "parts_in_pieces",
]
