"""P x K identity sampler preferring other cameras (docs/methods.md, section 1).

Behaves as ``RandomMultipleGallerySampler`` of SpCL and Cluster Contrast
(``utils/data/sampler.py``), which HHCL reuses, with its own seeded generator instead of the global
``random`` / ``numpy`` / ``torch`` generators.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
from torch.utils.data import Sampler

__all__ = ["PKSampler"]


class PKSampler(Sampler[int]):
    """Dataset indices grouped by identity: one anchor and ``num_instances - 1`` more per identity.

    Each pass over the identities (pseudo-labels) in random order yields, for every identity:

    1. one anchor drawn uniformly among its images;
    2. ``num_instances - 1`` images drawn among the identity's images whose camera differs from the
       anchor's. They are drawn without replacement when there are at least ``num_instances`` such
       images and with replacement otherwise: the reference tests ``>= num_instances``, not
       ``>= num_instances - 1``, so exactly ``num_instances - 1`` other-camera images are still drawn
       with replacement (and may repeat);
    3. when no other-camera image exists, the same draw among the identity's other images (any
       camera, the anchor excluded), with the same rule;
    4. an identity with a single image yields only its anchor, as the reference does, so a pass can
       be shorter than ``len(self)`` and a group can be shorter than ``num_instances``.

    Consecutive groups therefore share a label, and a batch of ``P * num_instances`` indices holds
    ``P`` identities when every identity has more than one image. Labels -1 (DBSCAN outliers) are
    ignored. ``len(self)`` is ``num_identities * num_instances`` as in the reference.

    Args:
        labels: Identity or pseudo-label per dataset index ``(N,)``; -1 means "do not sample".
        camids: Camera per dataset index ``(N,)``.
        num_instances: K, images per identity (16 in Cluster Contrast and HHCL, 4 in SpCL).
        seed: Seed of the sampler's own generator; the same seed gives the same sequence of passes.
    """

    def __init__(
        self,
        labels: npt.ArrayLike,
        camids: npt.ArrayLike,
        num_instances: int = 16,
        *,
        seed: int | None = None,
    ) -> None:
        labels = np.asarray(labels)
        camids = np.asarray(camids)
        if labels.ndim != 1 or camids.shape != labels.shape:
            raise ValueError(
                "labels and camids must be 1-D of the same length, "
                f"got shapes {labels.shape} and {camids.shape}"
            )
        if num_instances < 1:
            raise ValueError(f"num_instances must be >= 1, got {num_instances}")
        self.num_instances = num_instances
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        valid = np.flatnonzero(labels != -1)
        order = valid[np.argsort(labels[valid], kind="stable")]  # indices grouped by label, ascending
        _, starts = np.unique(labels[order], return_index=True)
        # one array of dataset indices per identity, in increasing label order
        self._identities = np.split(order, starts[1:]) if len(order) else []
        self._camids = camids

    @property
    def num_identities(self) -> int:
        return len(self._identities)

    def __len__(self) -> int:
        return self.num_identities * self.num_instances

    def _draw(self, candidates: np.ndarray) -> np.ndarray:
        """``num_instances - 1`` of ``candidates``, with replacement when fewer than ``num_instances``."""
        replace = len(candidates) < self.num_instances
        return self._rng.choice(candidates, size=self.num_instances - 1, replace=replace)

    def __iter__(self) -> Iterator[int]:
        indices: list[int] = []
        for identity in self._rng.permutation(self.num_identities):
            members = self._identities[identity]
            anchor = members[self._rng.integers(len(members))]
            indices.append(int(anchor))
            other_cameras = members[self._camids[members] != self._camids[anchor]]
            if len(other_cameras) > 0:
                indices.extend(self._draw(other_cameras).tolist())
                continue
            others = members[members != anchor]
            if len(others) > 0:
                indices.extend(self._draw(others).tolist())
        return iter(indices)
