"""CAP's camera-aware proxy memory (Wang et al., AAAI 2021), alone or with Cluster Contrast's cluster memory."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from reidlab.cluster.dbscan import cluster_centroids
from reidlab.memory.base import Memory, sequential_momentum_update
from reidlab.memory.cluster import ClusterMemory

__all__ = ["CameraProxyMemory", "camera_proxies"]


def camera_proxies(labels: np.ndarray, cameras: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split every cluster by camera: one proxy per (cluster, camera) pair that has images.

    Proxies are numbered camera by camera, clusters in increasing order within a camera, as CAP numbers
    its per-camera memories (``CAPMemory``'s ``percam_memory`` concatenated in camera order, and
    ``update_train_loader``'s accumulated labels in ``train_cap.py``).

    Args:
        labels: (N,) cluster ids 0..C-1, -1 for outliers.
        cameras: (N,) camera of every image.

    Returns:
        ``sample_proxies`` (N,) the proxy of every image (-1 for outliers), ``proxy_labels`` (P,) the
        cluster of every proxy and ``proxy_cameras`` (P,) its camera.
    """
    labels, cameras = np.asarray(labels, dtype=np.int64), np.asarray(cameras, dtype=np.int64)
    if labels.ndim != 1 or cameras.shape != labels.shape:
        raise ValueError(f"labels and cameras must be (N,) arrays of one length, got shapes {labels.shape} and "
                         f"{cameras.shape}")
    members = labels >= 0
    if not members.any():
        raise ValueError("labels hold no cluster (all are -1)")
    if cameras.min() < 0:
        raise ValueError(f"cameras must be >= 0, got {cameras.min()}")
    num_clusters = int(labels.max()) + 1
    keys, inverse = np.unique(cameras[members] * num_clusters + labels[members], return_inverse=True)
    sample_proxies = np.full(labels.shape, -1, dtype=np.int64)
    sample_proxies[members] = inverse.reshape(-1)
    return sample_proxies, keys % num_clusters, keys // num_clusters


class CameraProxyMemory(Memory):
    """CAP's camera-aware proxy memory: one proxy per (cluster, camera); intra- and inter-camera losses.

    Wang et al., "Camera-aware Proxies for Unsupervised Person Re-Identification", AAAI 2021; reference
    ``reid/loss/CamAwareMemory.py`` and ``train_cap.py`` (``Terminator8758/CAP-master``). Re-created every
    epoch from the pseudo-labels (:meth:`from_labels`): every cluster is split by camera, and each
    (cluster, camera) proxy starts as the L2-normalised mean feature of the cluster's images from that
    camera; outliers are dropped. The memory stores the proxy of every training image
    (:attr:`sample_proxies`) and looks samples up by their dataset ``indexes``.

    Loss (:meth:`loss_terms`, logits ``x . p / tau``):

    * ``intra`` (intra-camera): for a sample of camera c, cross-entropy over the proxies of camera c only,
      target its own proxy; as ``CAPMemory``, the mean over the batch's samples of each camera, summed over
      the cameras in the batch.
    * ``inter`` (inter-camera, from ``crosscam_epoch``; :meth:`from_labels`'s ``cross_camera``): the
      positives are every proxy of the sample's cluster (every camera), the negatives the ``negatives``
      (CAP: 50) proxies of other clusters most similar to the sample; cross-entropy over positives and
      negatives with the target spread uniformly, ``1 / |positives|``, over the positives; as ``CAPMemory``,
      per-camera means summed over cameras, times ``cross_camera_weight`` (CAP: 0.5). reidlab's choice:
      with fewer than ``negatives`` proxies of other clusters, all of them are the negatives (``CAPMemory``'s
      sort would then also pick the sample's own positives, masked at -10000, as negatives).
    * ``cluster`` (with ``clusters``, CAP + Cluster Contrast, the Cluster Contrast appendix 1.3): Cluster
      Contrast's ClusterNCE against the cluster centroids (:class:`ClusterMemory`).

    Update, after the optimiser step: every sample moves its own proxy, ``p <- m p + (1 - m) x``,
    re-normalised, one sample after the other in batch order (``ExemplarMemory.backward``); with
    ``clusters``, the cluster memory's own update too.

    CAP + Cluster Contrast: the appendix (1.3) says only that it adopts the cluster-level memory into CAP.
    Where it is silent, reidlab follows the Cluster Contrast authors' ``camera_cluster_contrast_train_usl.py``
    and ``CameraMemory`` (``clustercontrast/models/cm.py``): every epoch both memories start from the same
    clusters (the script's ``generate_cluster_features`` makes one centre per (cluster, camera), normalised,
    as CAP does), batches are drawn by cluster (its ``RandomIdentitySampler`` over the cluster labels), the
    proxy temperature is ``CameraMemory``'s 0.05 and the proxy momentum the script's 0.2. reidlab's choice for
    the loss: Cluster Contrast's ClusterNCE plus CAP's intra- and inter-camera terms as above. The authors'
    ``CameraMemory`` computes an unpublished loss instead (``log(1 + sum_pos * sum_neg)`` of margin-weighted
    exponentials, with negatives from the sample's camera, and no ClusterNCE); the appendix names CAP's
    camera-aware contrastive loss, which is what is kept.

    Args:
        proxies: (P, D) initial proxies, stored L2-normalised.
        proxy_labels: (P,) the cluster of every proxy.
        proxy_cameras: (P,) the camera of every proxy.
        sample_proxies: (N,) the proxy of every training image, -1 for outliers (never in a batch).
        momentum: m of the proxy update; 0.2 (CAP's ``--inv_alpha``).
        temperature: tau of the proxy logits; 0.07 (CAP's ``--inv_beta``); the Cluster Contrast authors'
            ``CameraMemory`` uses 0.05.
        cross_camera: compute the inter-camera term (CAP: from epoch 5 on).
        cross_camera_weight: its weight, 0.5 (``CAPMemory``).
        negatives: hard negatives of the inter-camera term, 50 (``CAPMemory``'s ``bg_knn``).
        clusters: Cluster Contrast's cluster memory trained alongside (CAP + Cluster Contrast), or None.

    Attributes:
        proxies: (P, D) buffer.
        proxy_labels, proxy_cameras: (P,) int64 buffers.
        sample_proxies: (N,) int64 buffer.
        clusters: the :class:`ClusterMemory`, or None.
    """

    proxies: Tensor
    proxy_labels: Tensor
    proxy_cameras: Tensor
    sample_proxies: Tensor

    def __init__(
        self,
        proxies: Tensor,
        proxy_labels: Tensor,
        proxy_cameras: Tensor,
        sample_proxies: Tensor,
        *,
        momentum: float = 0.2,
        temperature: float = 0.07,
        cross_camera: bool = True,
        cross_camera_weight: float = 0.5,
        negatives: int = 50,
        clusters: ClusterMemory | None = None,
    ) -> None:
        super().__init__(momentum=momentum, temperature=temperature)
        proxies = torch.as_tensor(proxies)
        if proxies.ndim != 2 or proxies.shape[0] == 0:
            raise ValueError(f"proxies must be a non-empty (P, D) matrix, got shape {tuple(proxies.shape)}")
        num_proxies = proxies.shape[0]
        proxy_labels, proxy_cameras = torch.as_tensor(proxy_labels), torch.as_tensor(proxy_cameras)
        if proxy_labels.shape != (num_proxies,) or proxy_cameras.shape != (num_proxies,):
            raise ValueError(f"proxy_labels and proxy_cameras must be ({num_proxies},) like the proxies, got shapes "
                             f"{tuple(proxy_labels.shape)} and {tuple(proxy_cameras.shape)}")
        sample_proxies = torch.as_tensor(sample_proxies)
        if sample_proxies.ndim != 1 or int(sample_proxies.max()) >= num_proxies or int(sample_proxies.min()) < -1:
            raise ValueError(f"sample_proxies must be (N,) proxy ids in [-1, {num_proxies})")
        if int(negatives) != negatives or negatives < 1:
            raise ValueError(f"negatives must be a positive integer, got {negatives}")
        if clusters is not None and (clusters.feature_dim != proxies.shape[1]
                                     or clusters.num_rows != int(proxy_labels.max()) + 1):
            raise ValueError(f"clusters must hold one ({proxies.shape[1]},) row per cluster of the proxies "
                             f"({int(proxy_labels.max()) + 1}), got {clusters.num_rows} of dim {clusters.feature_dim}")
        self.cross_camera = bool(cross_camera)
        self.cross_camera_weight = float(cross_camera_weight)
        self.negatives = int(negatives)
        self.clusters = clusters
        device = proxies.device
        self.register_buffer("proxies", F.normalize(proxies.detach().clone(), dim=1))
        self.register_buffer("proxy_labels", proxy_labels.detach().clone().long().to(device))
        self.register_buffer("proxy_cameras", proxy_cameras.detach().clone().long().to(device))
        self.register_buffer("sample_proxies", sample_proxies.detach().clone().long().to(device))

    @classmethod
    def from_labels(
        cls,
        features: np.ndarray | Tensor,
        labels: np.ndarray,
        cameras: np.ndarray,
        *,
        momentum: float = 0.2,
        temperature: float = 0.07,
        cross_camera: bool = True,
        cross_camera_weight: float = 0.5,
        negatives: int = 50,
        with_clusters: bool = False,
        cluster_momentum: float = 0.1,
        cluster_temperature: float = 0.05,
        cluster_update: str = "mean",
        label_smoothing: float = 0.0,
        smoothing_topk: bool = False,
    ) -> CameraProxyMemory:
        """The memory of one epoch: the proxies of :func:`camera_proxies`, each the normalised mean of its
        images' features (``img_association``'s ``intra_id_reinitialize`` in CAP's ``img_grouping.py``).

        Args:
            features: (N, D) L2-normalised training features.
            labels: (N,) cluster ids 0..C-1, -1 for outliers.
            cameras: (N,) camera of every training image.
            momentum, temperature, cross_camera, cross_camera_weight, negatives: see the class.
            with_clusters: add Cluster Contrast's cluster memory (CAP + Cluster Contrast), built by
                :meth:`ClusterMemory.from_labels` with ``cluster_momentum``, ``cluster_temperature``,
                ``cluster_update``, ``label_smoothing`` and ``smoothing_topk``.
        """
        features = torch.as_tensor(features)
        label_values = np.asarray(labels)
        sample_proxies, proxy_labels, proxy_cameras = camera_proxies(label_values, cameras)
        proxies = cluster_centroids(features, sample_proxies)
        clusters = None
        if with_clusters:
            clusters = ClusterMemory.from_labels(features, label_values, momentum=cluster_momentum,
                                                 temperature=cluster_temperature, update=cluster_update,
                                                 label_smoothing=label_smoothing, smoothing_topk=smoothing_topk)
        return cls(proxies, torch.from_numpy(proxy_labels), torch.from_numpy(proxy_cameras),
                   torch.from_numpy(sample_proxies), momentum=momentum, temperature=temperature,
                   cross_camera=cross_camera, cross_camera_weight=cross_camera_weight, negatives=negatives,
                   clusters=clusters)

    @property
    def num_proxies(self) -> int:
        """P."""
        return self.proxies.shape[0]

    @property
    def num_rows(self) -> int:
        """P proxies, plus the C centroids of the cluster memory when there is one."""
        return self.num_proxies + (self.clusters.num_rows if self.clusters is not None else 0)

    @property
    def feature_dim(self) -> int:
        return self.proxies.shape[1]

    def loss(self, features: Tensor, targets: Tensor | None = None, *, indexes: Tensor | None = None) -> Tensor:
        """The sum of :meth:`loss_terms`."""
        return torch.stack(list(self.loss_terms(features, indexes=indexes).values())).sum()

    def loss_terms(self, features: Tensor, *, indexes: Tensor | None = None) -> dict[str, Tensor]:
        """``intra``, ``inter`` (0 without ``cross_camera``) and, with the cluster memory, ``cluster``.

        Args:
            features: (B, D) L2-normalised embeddings.
            indexes: (B,) dataset indices of the samples (required; none may be an outlier).
        """
        proxy = self._proxies_of(features, indexes)
        logits = features @ self.proxies.t() / self.temperature  # (B, P)
        cameras = self.proxy_cameras[proxy]
        _, camera_index, camera_counts = torch.unique(cameras, return_inverse=True, return_counts=True)
        per_camera = 1.0 / camera_counts[camera_index].to(logits.dtype)  # the mean within each camera
        own_camera = cameras[:, None] == self.proxy_cameras[None, :]
        intra = F.cross_entropy(logits.masked_fill(~own_camera, float("-inf")), proxy, reduction="none")
        terms = {"intra": (intra * per_camera).sum()}
        if self.cross_camera:
            inter = self._inter_camera(logits, self.proxy_labels[proxy])
            terms["inter"] = self.cross_camera_weight * (inter * per_camera).sum()
        else:
            terms["inter"] = logits.new_zeros(())
        if self.clusters is not None:
            terms["cluster"] = self.clusters.loss(features, self.proxy_labels[proxy])
        return terms

    def _inter_camera(self, logits: Tensor, labels: Tensor) -> Tensor:
        """(B,) CAP's inter-camera loss of every sample (before the per-camera mean and the weight)."""
        positive = labels[:, None] == self.proxy_labels[None, :]  # (B, P): the sample's cluster, every camera
        others = logits.detach().masked_fill(positive, float("-inf"))
        top = others.topk(min(self.negatives, self.num_proxies), dim=1)
        hard = torch.zeros_like(positive).scatter_(1, top.indices, top.values > float("-inf"))
        chosen = positive | hard
        log_probs = logits - torch.logsumexp(logits.masked_fill(~chosen, float("-inf")), dim=1, keepdim=True)
        return -(log_probs * positive).sum(dim=1) / positive.sum(dim=1)

    @torch.no_grad()
    def update(self, features: Tensor, targets: Tensor | None = None, *, indexes: Tensor | None = None) -> None:
        """Every sample's proxy moves towards it, in batch order; the cluster memory updates too.

        Args:
            features: (B, D) batch embeddings (detached here).
            targets: ignored (the proxies and clusters come from ``indexes``).
            indexes: (B,) dataset indices (required).
        """
        proxy = self._proxies_of(features, indexes)
        x = features.detach()
        sequential_momentum_update(self.proxies, proxy, x, self.momentum)
        if self.clusters is not None:
            self.clusters.update(x, self.proxy_labels[proxy])

    def _proxies_of(self, features: Tensor, indexes: Tensor | None) -> Tensor:
        self._check_features(features)
        if indexes is None:
            raise ValueError("CameraProxyMemory needs indexes=, the (B,) dataset indices of the batch samples")
        self._check_ids(indexes, features.shape[0], self.sample_proxies.numel(), "indexes")
        proxy = self.sample_proxies[indexes.to(self.sample_proxies.device)]
        if bool((proxy < 0).any()):
            raise ValueError("a sample of the batch is an outlier (no proxy): outliers are not trained on")
        return proxy

    def extra_repr(self) -> str:
        return (f"proxies={self.num_proxies}, dim={self.feature_dim}, momentum={self.momentum}, "
                f"temperature={self.temperature}, cross_camera={self.cross_camera}, "
                f"cross_camera_weight={self.cross_camera_weight}, negatives={self.negatives}")
