"""Memory banks of the memory-based unsupervised re-ID methods (docs/methods.md, section 4).

Five memories share one interface (:class:`Memory`):

* :class:`HybridMemory` (SpCL, Ge et al. NeurIPS 2020): one row per training image; clusters and
  un-clustered instances are the classes of the loss (docs/methods.md, section 4.1).
  For domain adaptation (SpCL's ``spcl_train_uda.py``), one row per source identity comes first.
* :class:`ClusterMemory` (Cluster Contrast, Dai et al. ACCV 2022): one centroid per cluster, the
  ClusterNCE loss; ``update="mean"`` or ``"hard"`` (docs/methods.md, section 4.2).
* :class:`HardHybridMemory` (HHCL, Hu et al. 2021): centroids plus P instance slots per cluster, the
  centroid loss mixed with a hard-instance loss (HHCL Eqs. 2-8, docs/methods.md, section 4.3).
* :class:`WeightedMemory` (SCWM, Hong et al.): centroids of the global and of every part feature,
  updated with kNN-agreement weights (SCWM Eqs. 8-11, docs/methods.md, section 4.4.5).
* :class:`CameraProxyMemory` (CAP, Wang et al. AAAI 2021): one proxy per (cluster, camera), intra- and
  inter-camera losses; with a :class:`ClusterMemory` alongside for CAP + Cluster Contrast.

All rows are L2-normalised registered buffers (``.to(device)`` and ``state_dict`` carry them); logits are
dot products divided by a temperature. The loop calls ``loss`` (gradient to the features only), then
``backward`` and ``optimizer.step()``, then the explicit ``update`` with the batch features. The
research code hides the update inside an autograd ``backward``; here the memory is never changed by
``loss`` or by ``backward``. Taught in ``notebooks/02_memory_banks.ipynb`` and
``notebooks/03_hard_mining.ipynb``.
"""

from reidlab.memory.base import Memory, cluster_nce, smoothed_cross_entropy
from reidlab.memory.camera import CameraProxyMemory, camera_proxies
from reidlab.memory.cluster import ClusterMemory
from reidlab.memory.hard_hybrid import HardHybridMemory, MinedSlots
from reidlab.memory.hybrid import HybridMemory
from reidlab.memory.weighted import WeightedMemory

__all__ = [
    "CameraProxyMemory",
    "ClusterMemory",
    "HardHybridMemory",
    "HybridMemory",
    "Memory",
    "MinedSlots",
    "WeightedMemory",
    "camera_proxies",
    "cluster_nce",
    "smoothed_cross_entropy",
]
