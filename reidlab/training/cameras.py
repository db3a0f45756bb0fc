"""The stage of the camera-aware methods: CAP and CAP + Cluster Contrast.

CAP (Wang et al., "Camera-aware Proxies for Unsupervised Person Re-Identification", AAAI 2021; code
``Terminator8758/CAP-master``, ``train_cap.py``) clusters as every method does, then splits every cluster
by camera into proxies (:class:`reidlab.memory.CameraProxyMemory`). Within the shared loop
(:class:`reidlab.training.Trainer`), :class:`CameraStage` differs from the global stage in two places:

* the P x K batches are drawn by proxy (``TrainConfig.sample_by="proxy"``: P proxies x K images, CAP's
  ``ClassUniformlySampler`` over the (cluster, camera) labels) or, for CAP + Cluster Contrast, by cluster as
  Cluster Contrast draws them (``sample_by="cluster"``, the Cluster Contrast authors'
  ``camera_cluster_contrast_train_usl.py``);
* the memory's loss is a sum of named terms (intra-camera, inter-camera and, with the cluster memory,
  ClusterNCE), recorded per epoch as ``loss_intra``, ``loss_inter`` (``loss_cluster``).

reidlab's choice: the P x K sampler is the shared one (:class:`reidlab.data.PKSampler`, SpCL's and Cluster
Contrast's ``RandomMultipleGallerySampler``) fed with proxy labels. CAP's ``ClassUniformlySampler`` differs
in two corners: a proxy with exactly K images gives all K (PKSampler: the anchor and K - 1 draws with
replacement among the other K - 1), and a proxy with one image gives it K times (PKSampler: once).

To be taught in notebook 06 (domain adaptation and camera-aware proxies).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from reidlab.training.stages import Batch, GlobalStage

__all__ = ["SAMPLE_BY", "CameraStage"]

# How the P x K sampler groups the training images: by cluster (pseudo-identity), or by camera proxy.
SAMPLE_BY = ("cluster", "proxy")


class CameraStage(GlobalStage):
    """The global-feature stage with proxy sampling and the camera-aware loss terms (see the module)."""

    def batches(self, epoch: int, labels: np.ndarray) -> Iterable[Batch]:
        """P x K batches by cluster (``labels``) or by the memory's camera proxies."""
        if self.trainer.config.sample_by == "proxy":
            labels = self.trainer.memory.sample_proxies.cpu().numpy()
        return super().batches(epoch, labels)

    def loss_terms(self, out: torch.Tensor, batch: Batch, epoch: int) -> dict[str, torch.Tensor]:
        """The memory's named terms (:meth:`reidlab.memory.CameraProxyMemory.loss_terms`)."""
        return self.trainer.memory.loss_terms(out.float(), indexes=batch.indexes)

    def epoch_metrics(self, loss_terms: dict[str, float]) -> dict[str, Any]:
        """The mean of every term, ``loss_<term>``."""
        return {f"loss_{name}": value for name, value in loss_terms.items()}
