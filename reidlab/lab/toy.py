"""A 2-D toy feature space for seeing the memories move and the HHCL loss terms pull.

With D = 2 every L2-normalised feature is a point on the unit circle, so a memory row, a batch sample
and a gradient can all be drawn. Everything here runs the real memories of :mod:`reidlab.memory` on such
features; nothing re-implements their maths:

* :func:`toy_clusters` makes clusters of angles; :func:`toy_batch` a P x K batch of them.
* :func:`toy_update_step` builds a memory with the class's own constructor and calls its ``update`` once
  (docs/methods.md, section 4: ``c <- m c + (1 - m) x``, re-normalised; HHCL Eq. 4 and Eq. 8);
  :func:`plot_memory_update` draws the rows before and after, :func:`row_softmax` /
  :func:`plot_row_softmax` what the temperature does to the logits ``x . row / tau``. Taught in
  ``notebooks/02_memory_banks.ipynb``.
* :func:`query_pull` differentiates HHCL's two loss terms (L_cls, HHCL Eq. 3; L_ins, Eqs. 5-7) with
  respect to one query and weighs them as Eq. 2 does; :func:`plot_query_pull` draws the pull of each.
  Taught in ``notebooks/03_hard_mining.ipynb``.
* :func:`toy_camera_clusters` adds cameras that shift every image of a camera the same way (camera bias);
  :func:`camera_pull` differentiates CAP's intra- and inter-camera losses (:class:`CameraProxyMemory`) with
  respect to one sample and :func:`plot_camera_pull` draws the proxies and both pulls. Taught in
  ``notebooks/06_domains_and_cameras.ipynb``.
* :class:`MemoryToy`, :class:`MuToy` and :class:`CameraToy` put sliders on them (ipywidgets); their
  ``static_figure`` draws the current state, because an executed notebook keeps figures but not the output
  of live widgets.

DOM contract (tests/test_browser.py relies on it): each toy's widget shows, above its plot, an
``ipywidgets.HTML`` with the CSS class ``reidlab-toy-summary`` holding the one line of its ``describe()``,
which names every setting as its control's readout shows it (``m 0.10``, ``tau 0.050``, ``mu 0.50``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any, Literal

import ipywidgets
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.patches import Circle

from reidlab.lab.palette import camera_colours
from reidlab.lab.widgets import png_output
from reidlab.memory import (
    CameraProxyMemory,
    ClusterMemory,
    HardHybridMemory,
    HybridMemory,
)
from reidlab.plotting import Figure

__all__ = [
    "MEMORY_KINDS",
    "TOY_SUMMARY_CLASS",
    "CameraToy",
    "MemoryToy",
    "MuToy",
    "camera_pull",
    "plot_camera_pull",
    "plot_memory_update",
    "plot_query_pull",
    "plot_row_softmax",
    "query_pull",
    "row_softmax",
    "toy_batch",
    "toy_camera_clusters",
    "toy_clusters",
    "toy_update_step",
]

# "mean" / "hard": Cluster Contrast's ClusterMemory (docs/methods.md, section 4.2); "hybrid": HHCL's
# HardHybridMemory (section 4.3); "instance": SpCL's HybridMemory (section 4.1).
MEMORY_KINDS = ("mean", "hard", "hybrid", "instance")
MemoryKind = Literal["mean", "hard", "hybrid", "instance"]

# CSS class of the toys' summary line (see the module docstring).
TOY_SUMMARY_CLASS = "reidlab-toy-summary"
# Axis half-width of the circle plots: the unit circle plus room for the markers.
_LIMIT = 1.3


# ---------------------------------------------------------------------------------------------- data


def toy_clusters(
    n_clusters: int = 4, per_cluster: int = 12, *, spread: float = 0.35, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Clusters of unit vectors on the circle: ``per_cluster`` noisy angles around each of ``n_clusters`` centres.

    The centres are evenly spaced with a random rotation; each point's angle is its centre's plus Gaussian
    noise of standard deviation ``spread`` (radians). Same arguments, same points.

    Args:
        n_clusters: number of clusters (>= 1).
        per_cluster: points per cluster (>= 1).
        spread: angle noise in radians (>= 0).
        seed: seed of the draw.

    Returns:
        ``features (N, 2)`` float32 unit rows and ``labels (N,)`` int64 cluster ids 0..n_clusters-1,
        cluster by cluster (N = n_clusters * per_cluster).
    """
    if int(n_clusters) != n_clusters or n_clusters < 1:
        raise ValueError(f"n_clusters must be a positive integer, got {n_clusters}")
    if int(per_cluster) != per_cluster or per_cluster < 1:
        raise ValueError(f"per_cluster must be a positive integer, got {per_cluster}")
    if not spread >= 0:
        raise ValueError(f"spread must be >= 0 (radians), got {spread}")
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.0, 2 * np.pi) + 2 * np.pi * np.arange(n_clusters) / n_clusters
    labels = np.repeat(np.arange(n_clusters, dtype=np.int64), per_cluster)
    angles = centres[labels] + spread * rng.standard_normal(labels.size)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32), labels


def toy_batch(labels: np.ndarray, *, num_classes: int = 2, per_class: int = 4, seed: int = 0) -> np.ndarray:
    """A P x K batch like the training sampler's (identities x images): dataset indices (B,).

    The sampler is described in docs/methods.md, section 1.

    Draws ``num_classes`` distinct clusters, then ``per_class`` distinct members of each (all members
    when a cluster is smaller); outliers (-1) are never drawn.

    Args:
        labels: (N,) cluster ids, -1 for outliers.
        num_classes: clusters in the batch (at most the number of clusters).
        per_class: samples per cluster.
        seed: seed of the draw.

    Returns:
        (B,) int64 indices into ``labels``, grouped by cluster.
    """
    labels = np.asarray(labels)
    classes = np.unique(labels[labels >= 0])
    if classes.size == 0:
        raise ValueError("labels hold no cluster (all are -1)")
    if not 1 <= num_classes <= classes.size:
        raise ValueError(f"num_classes must be in [1, {classes.size}] (the number of clusters), got {num_classes}")
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(classes, size=num_classes, replace=False)
    parts = []
    for c in chosen:
        members = np.flatnonzero(labels == c)
        parts.append(rng.choice(members, size=min(per_class, members.size), replace=False))
    return np.concatenate(parts).astype(np.int64)


# ---------------------------------------------------------------------------------------------- memory updates


def toy_update_step(
    memory_kind: MemoryKind,
    features: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    batch_idx: np.ndarray | torch.Tensor,
    *,
    momentum: float,
    temperature: float,
    seed: int = 0,
    batch_noise: float = 0.1,
    num_instances: int | None = None,
) -> dict[str, Any]:
    """Build a memory from ``features`` with the class's own constructor, then call its ``update`` once.

    * ``"mean"``: :meth:`ClusterMemory.from_labels` with ``update="mean"``: every batch sample moves its
      centroid in turn, ``c <- m c + (1 - m) x``, re-normalised (docs/methods.md, section 4.2).
    * ``"hard"``: ``update="hard"``: only the batch sample least similar to its centroid (the hardest
      positive, :meth:`ClusterMemory.hardest_positives`) moves it (docs/methods.md, section 4.2).
    * ``"hybrid"``: HHCL's :meth:`HardHybridMemory.from_labels`: the centroid moves towards the class's
      batch mean (HHCL Eq. 4) and the class's instance slots are overwritten by its batch features
      (Eq. 8; docs/methods.md, section 4.3).
    * ``"instance"``: SpCL's :class:`HybridMemory` (one row per sample, :meth:`HybridMemory.set_labels`):
      each batch sample moves its own row (docs/methods.md, section 4.1).

    Args:
        memory_kind: one of :data:`MEMORY_KINDS`.
        features: (N, D) L2-normalised features (D = 2 in the toy).
        labels: (N,) cluster ids 0..C-1 (-1: outlier; SpCL makes it its own class).
        batch_idx: (B,) dataset indices of the batch (clustered samples, except for ``"instance"``).
        momentum: m of the update.
        temperature: tau of the memory (the update does not use it; :func:`row_softmax` does).
        seed: seed of the batch noise and of HHCL's slot draw (``"hybrid"``).
        batch_noise: the batch features are the stored ones plus Gaussian noise of this standard deviation,
            re-normalised: the model has changed, and the images are augmented, since the memory was
            filled. With 0, SpCL's rows would not move (the batch would equal them).
        num_instances: P, HHCL's slots per cluster; None: the most batch samples of one class (HHCL sets P
            to the batch's images per identity, docs/methods.md, section 4.3).

    Returns:
        A dict: ``kind``, ``momentum``, ``temperature``; ``features (N, D)``, ``labels (N,)``;
        ``batch_idx (B,)``, ``batch (B, D)`` (the features the update used), ``batch_labels (B,)``;
        ``rows_before`` and ``rows_after (R, D)``, the rows the loss scores (centroids, or SpCL's instance
        rows) and ``row_labels (R,)`` their class; ``moved (R,)`` the rows the update touched; for
        ``"hybrid"`` ``slots_before`` and ``slots_after (C, P, D)`` and ``slot_indexes_before`` /
        ``slot_indexes_after (C, P)`` (else None); for ``"hard"`` ``hardest (K,)``, the batch position of
        the sample each class present was updated with, in increasing class order (else None); ``memory``,
        the memory after the update. Arrays are NumPy.
    """
    if memory_kind not in MEMORY_KINDS:
        raise ValueError(f"memory_kind must be one of {MEMORY_KINDS}, got {memory_kind!r}")
    x = torch.as_tensor(features)
    y = torch.as_tensor(labels).long()
    idx = torch.as_tensor(batch_idx).long()
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"need features (N, D) and labels (N,), got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    if idx.ndim != 1 or idx.numel() == 0 or bool(((idx < 0) | (idx >= x.shape[0])).any()):
        raise ValueError(
            f"batch_idx must be a non-empty (B,) array of indices in [0, {x.shape[0]}), got {idx.tolist()}"
        )
    if not batch_noise >= 0:
        raise ValueError(f"batch_noise must be >= 0, got {batch_noise}")
    noise = torch.from_numpy(np.random.default_rng(seed).standard_normal((idx.numel(), x.shape[1])))
    batch, batch_labels = F.normalize(x[idx] + batch_noise * noise.to(x), dim=1), y[idx]
    if memory_kind != "instance" and bool((batch_labels < 0).any()):
        raise ValueError(f"batch_idx must select clustered samples (label >= 0) for {memory_kind!r}")

    slots_before = slots_after = slot_indexes_before = slot_indexes_after = hardest = None
    if memory_kind in ("mean", "hard"):
        memory = ClusterMemory.from_labels(x, y, momentum=momentum, temperature=temperature, update=memory_kind)
        rows_before = memory.centroids.clone()
        if memory_kind == "hard":
            hardest = memory.hardest_positives(batch, batch_labels).cpu().numpy()
        memory.update(batch, batch_labels)
        rows_after, row_labels = memory.centroids, torch.arange(memory.num_rows)
        moved = torch.isin(row_labels, batch_labels)
    elif memory_kind == "hybrid":
        if num_instances is None:
            num_instances = int(torch.bincount(batch_labels).max())
        memory = HardHybridMemory.from_labels(
            x, y, num_instances=num_instances, seed=seed, momentum=momentum, temperature=temperature
        )
        rows_before, slots_before = memory.centroids.clone(), memory.instances.clone()
        slot_indexes_before = memory.slot_indexes.clone()
        memory.update(batch, batch_labels, indexes=idx)
        rows_after, slots_after, slot_indexes_after = memory.centroids, memory.instances, memory.slot_indexes
        row_labels = torch.arange(memory.num_clusters)
        moved = torch.isin(row_labels, batch_labels)
    else:
        memory = HybridMemory(x, momentum=momentum, temperature=temperature).set_labels(y)
        rows_before = memory.features.clone()
        memory.update(batch, indexes=idx)
        rows_after, row_labels = memory.features, memory.labels
        moved = torch.isin(torch.arange(memory.num_rows), idx)

    def numpy(t: torch.Tensor | None) -> np.ndarray | None:
        return None if t is None else t.detach().cpu().numpy().copy()

    return {
        "kind": memory_kind,
        "momentum": float(momentum),
        "temperature": float(temperature),
        "features": numpy(x),
        "labels": numpy(y),
        "batch_idx": numpy(idx),
        "batch": numpy(batch),
        "batch_labels": numpy(batch_labels),
        "rows_before": numpy(rows_before),
        "rows_after": numpy(rows_after),
        "row_labels": numpy(row_labels),
        "moved": numpy(moved),
        "slots_before": numpy(slots_before),
        "slots_after": numpy(slots_after),
        "slot_indexes_before": numpy(slot_indexes_before),
        "slot_indexes_after": numpy(slot_indexes_after),
        "hardest": hardest,
        "memory": memory,
    }


def row_softmax(step: dict[str, Any], *, sample: int = 0) -> np.ndarray:
    """Softmax of one batch sample's logits ``x . row / tau`` over the rows before the update, (R,).

    The logits the loss sees (docs/methods.md, section 4): ClusterNCE's for the centroids, SpCL's per-row
    logits (which its loss averages per class) for ``"instance"``. A small tau makes the softmax peaked, a
    large one flat.

    Args:
        step: a :func:`toy_update_step` result.
        sample: position in the batch.
    """
    if not 0 <= sample < len(step["batch"]):
        raise ValueError(f"sample must be in [0, {len(step['batch'])}) (a batch position), got {sample}")
    logits = torch.from_numpy(step["rows_before"]) @ torch.from_numpy(step["batch"][sample]) / step["temperature"]
    return torch.softmax(logits.double(), dim=0).numpy()


def plot_memory_update(step: dict[str, Any], *, ax: Axes | None = None, title: str | None = None) -> Figure:
    """One memory update on the unit circle (notebook ``02_memory_banks``).

    All points faint, coloured by cluster; the batch marked with black edges; each memory row before the
    update hollow and after filled (diamonds), an arrow for every row that moved. SpCL's instance memory
    (``"instance"``) draws only the batch's rows; HHCL's slots (``"hybrid"``) are small squares, arrows
    for the overwritten ones; ``"hard"`` rings the hardest positive each centroid was updated with.

    Args:
        step: a :func:`toy_update_step` result (D = 2).
        ax: axes to draw into; a new figure when None.
        title: axes title; default names the memory and the momentum.
    """
    fig, ax = _circle_axes(ax)
    ax.scatter(*step["features"].T, color=_colours(step["labels"]), s=18, alpha=0.35, linewidths=0)
    ax.scatter(*step["batch"].T, color=_colours(step["batch_labels"]), s=45, edgecolors="k", linewidths=0.8,
               label="batch", zorder=3)
    if step["hardest"] is not None:
        ax.scatter(*step["batch"][step["hardest"]].T, s=200, facecolors="none", edgecolors="k", linewidths=1.6,
                   label="hardest positive (used)", zorder=3)
    if step["slots_before"] is not None:
        slot_labels = np.broadcast_to(np.arange(step["slots_before"].shape[0])[:, None], step["slots_before"].shape[:2])
        changed = np.any(step["slots_before"] != step["slots_after"], axis=-1)
        ax.scatter(*step["slots_before"][changed].T, marker="s", s=28, facecolors="none",
                   edgecolors=_colours(slot_labels[changed]), linewidths=1.0, label="slot before", zorder=4)
        ax.scatter(*step["slots_after"].reshape(-1, 2).T, marker="s", s=28, color=_colours(slot_labels.ravel()),
                   edgecolors="0.3", linewidths=0.5, label="slot after", zorder=4)
        for b, a, c in zip(step["slots_before"][changed], step["slots_after"][changed], _colours(slot_labels[changed])):
            _arrow(ax, b, a, c, lw=0.8, style="dashed")
    shown = step["moved"] if step["kind"] == "instance" else np.ones_like(step["moved"])
    before, after = step["rows_before"][shown], step["rows_after"][shown]
    row_colours = _colours(step["row_labels"][shown])
    ax.scatter(*before.T, marker="D", s=75, facecolors="none", edgecolors=row_colours, linewidths=1.5,
               label="row before", zorder=5)
    ax.scatter(*after.T, marker="D", s=75, color=row_colours, edgecolors="k", linewidths=0.8,
               label="row after", zorder=6)
    for b, a, c in zip(before, after, row_colours):
        _arrow(ax, b, a, c, lw=1.6)
    default = f"{_KIND_NAMES[step['kind']]}: m = {step['momentum']:.2f}, one update with {len(step['batch'])} samples"
    ax.set_title(default if title is None else title, fontsize=9)
    _legend_below(ax, markerscale=0.7)
    return fig


def plot_row_softmax(step: dict[str, Any], *, sample: int = 0, ax: Axes | None = None) -> Figure:
    """Bar chart of :func:`row_softmax`: one batch sample's probabilities over the memory rows.

    Bars are coloured by the row's class; the sample's own class is named in the title.
    """
    probs = row_softmax(step, sample=sample)
    if ax is None:
        fig = Figure(figsize=(4.5, 3), layout="constrained")
        ax = fig.add_subplot()
    ax.bar(np.arange(probs.size), probs, color=_colours(step["row_labels"]), width=0.8)
    ax.set_ylim(0, 1.05)
    if probs.size <= 20:
        ax.set_xticks(np.arange(probs.size))
    ax.set_xlabel("memory row" if step["kind"] == "instance" else "centroid")
    ax.set_ylabel("softmax probability")
    ax.set_title(
        f"batch sample {sample} (class {int(step['batch_labels'][sample])}): "
        f"softmax(x . row / tau), tau = {step['temperature']:.3g}",
        fontsize=8,
    )
    return ax.get_figure()


# ---------------------------------------------------------------------------------------------- HHCL's pull


def query_pull(
    memory: HardHybridMemory, query: np.ndarray | torch.Tensor, target: int, *, mu: float
) -> dict[str, Any]:
    """The pull of HHCL's two loss terms on one query: their negative gradients, weighted as in Eq. 2.

    ``L = mu L_cls + (1 - mu) L_ins`` (HHCL Eq. 2, docs/methods.md, section 4.3). The query is copied,
    L2-normalised and made a leaf tensor; ``torch.autograd`` differentiates
    :meth:`HardHybridMemory.cluster_loss` (L_cls, ClusterNCE against the centroids, Eq. 3) and
    :meth:`HardHybridMemory.instance_loss` (L_ins, Eq. 5, over the hardest positive slot of Eq. 6 and the
    hardest negative slots of Eq. 7) with respect to it.
    ``memory.mu`` is not used: ``mu`` is the argument. Taught in notebook ``03_hard_mining``.

    The gradients are those of the unconstrained query; only their component tangent to the sphere
    (``v - (v . q) q``) moves a unit vector once it is re-normalised.

    Args:
        memory: an HHCL memory.
        query: (D,) the query feature.
        target: its cluster id in [0, C).
        mu: weight of L_cls in [0, 1].

    Returns:
        A dict of NumPy values: ``query (D,)`` (normalised), ``target``, ``mu``; ``loss_cls``, ``loss_ins``
        (unweighted) and ``loss`` (= mu L_cls + (1 - mu) L_ins); ``grad_cls``, ``grad_ins (D,)`` the
        unweighted gradients; ``pull_cls = -mu grad_cls``, ``pull_ins = -(1 - mu) grad_ins`` and
        ``pull_total`` their sum; ``positive_slot`` (Eq. 6) and ``hardest_positive (D,)`` its row;
        ``negative_classes (C-1,)``, ``negative_slots (C-1,)`` (Eq. 7) and ``hardest_negatives (C-1, D)``.
    """
    if not 0.0 <= mu <= 1.0:
        raise ValueError(f"mu must be in [0, 1], got {mu}")
    reference = memory.centroids
    q = torch.as_tensor(query).to(device=reference.device, dtype=reference.dtype).detach().clone()
    if q.shape != (memory.feature_dim,):
        raise ValueError(
            f"query must be a ({memory.feature_dim},) vector like the memory rows, got shape {tuple(q.shape)}"
        )
    if not 0 <= int(target) < memory.num_clusters:
        raise ValueError(f"target must be a cluster id in [0, {memory.num_clusters}), got {target}")
    q = F.normalize(q, dim=0)[None].requires_grad_(True)  # (1, D) leaf
    targets = torch.tensor([int(target)], device=reference.device)
    loss_cls = memory.cluster_loss(q, targets)
    (grad_cls,) = torch.autograd.grad(loss_cls, q)
    loss_ins = memory.instance_loss(q, targets)
    (grad_ins,) = torch.autograd.grad(loss_ins, q)
    loss_cls, loss_ins = float(loss_cls.detach()), float(loss_ins.detach())
    mined = memory.mine(q.detach(), targets)
    positive = int(mined.positive[0])
    negative_classes = torch.tensor([c for c in range(memory.num_clusters) if c != int(target)], dtype=torch.long)
    negative_slots = mined.per_class[0].cpu()[negative_classes]
    instances = memory.instances.detach().cpu()
    pull_cls = -mu * grad_cls[0]
    pull_ins = -(1.0 - mu) * grad_ins[0]
    return {
        "query": q.detach()[0].cpu().numpy(),
        "target": int(target),
        "mu": float(mu),
        "loss_cls": loss_cls,
        "loss_ins": loss_ins,
        "loss": mu * loss_cls + (1.0 - mu) * loss_ins,
        "grad_cls": grad_cls[0].cpu().numpy(),
        "grad_ins": grad_ins[0].cpu().numpy(),
        "pull_cls": pull_cls.cpu().numpy(),
        "pull_ins": pull_ins.cpu().numpy(),
        "pull_total": (pull_cls + pull_ins).cpu().numpy(),
        "positive_slot": positive,
        "hardest_positive": instances[int(target), positive].numpy(),
        "negative_classes": negative_classes.numpy(),
        "negative_slots": negative_slots.numpy(),
        "hardest_negatives": instances[negative_classes, negative_slots].numpy(),
    }


def plot_query_pull(
    memory: HardHybridMemory,
    query: np.ndarray | torch.Tensor,
    target: int,
    *,
    mu: float,
    ax: Axes | None = None,
    tangent: bool = False,
) -> Figure:
    """HHCL's two pulls on a query in the 2-D toy (notebook ``03_hard_mining``; HHCL Eqs. 2, 6-7).

    Draws the centroids (diamonds), the instance slots (squares), the query (black star), the hardest
    positive slot (green ring, Eq. 6) and the hardest negative slots (red rings, Eq. 7), and from the query
    arrows for ``mu * pull_cls``, ``(1 - mu) * pull_ins`` and their sum (:func:`query_pull`).

    The two terms can differ by more than 20x, so arrow lengths are not to scale (:func:`_pull_arrows`): every
    non-zero pull is drawn at least 0.15 long, plus up to 0.45 in proportion to the longest unweighted pull
    (which does not depend on mu), so moving mu still shows each term growing and shrinking while the shorter
    one stays visible; the legend gives the true lengths. A term weighted by zero has no arrow.

    Args:
        memory: an HHCL memory with D = 2.
        query: (2,) the query.
        target: its cluster id.
        mu: weight of L_cls in [0, 1].
        ax: axes to draw into; a new figure when None.
        tangent: draw only the component tangent to the circle, the part that moves a unit vector once
            re-normalised (in 2-D the three tangent arrows lie on one line); False (default) draws the raw
            negative gradients, whose directions show what each term pulls towards and pushes away from.
    """
    if memory.feature_dim != 2:
        raise ValueError(f"plot_query_pull draws 2-D memories, got feature dimension {memory.feature_dim}")
    pull = query_pull(memory, query, target, mu=mu)
    q = pull["query"]

    def shown(v: np.ndarray) -> np.ndarray:
        return v - (v @ q) * q if tangent else v

    fig, ax = _circle_axes(ax)
    centroids = memory.centroids.detach().cpu().numpy()
    instances = memory.instances.detach().cpu().numpy()
    colours = _colours(np.arange(memory.num_clusters))
    slot_labels = np.repeat(np.arange(memory.num_clusters), memory.num_instances)
    ax.scatter(*instances.reshape(-1, 2).T, marker="s", s=26, color=_colours(slot_labels), alpha=0.7,
               linewidths=0, label="instance slots")
    ax.scatter(*centroids.T, marker="D", s=80, color=colours, edgecolors="k", linewidths=0.8, label="centroids")
    ax.scatter(*pull["hardest_positive"], s=190, facecolors="none", edgecolors="tab:green", linewidths=2,
               label="hardest positive (Eq. 6)", zorder=4)
    ax.scatter(*pull["hardest_negatives"].T, s=190, facecolors="none", edgecolors="tab:red", linewidths=2,
               label="hardest negatives (Eq. 7)", zorder=4)
    ax.scatter(*q, marker="*", s=220, color="k", label=f"query (class {int(target)})", zorder=6)
    longest = max(np.linalg.norm(shown(-pull["grad_cls"])), np.linalg.norm(shown(-pull["grad_ins"])))
    # The total underneath, wide and grey, so a term that points the same way stays visible on top.
    _pull_arrows(ax, q, [(shown(pull["pull_total"]), "0.35", 4.0, "total"),
                         (shown(pull["pull_cls"]), "tab:blue", 1.8, "mu pull L_cls"),
                         (shown(pull["pull_ins"]), "tab:orange", 1.8, "(1-mu) pull L_ins")], longest=longest)
    ax.set_title(
        f"mu = {mu:.2f}: L_cls {pull['loss_cls']:.2f}, L_ins {pull['loss_ins']:.2f}"
        + (" (tangent pulls)" if tangent else " (raw -grad)"),
        fontsize=9,
    )
    _legend_below(ax)
    return fig


# ---------------------------------------------------------------------------------------------- widgets


class MemoryToy:
    """Sliders on one memory update in the 2-D toy (notebook ``02_memory_banks``; docs/methods.md, section 4).

    A dropdown picks the memory (mean / hard: Cluster Contrast, docs/methods.md, section 4.2; hybrid:
    HHCL, Eq. 4 and Eq. 8; instance: SpCL, section 4.1), sliders set the momentum and the temperature, a
    button draws the next batch. The output shows :func:`plot_memory_update` next to
    :func:`plot_row_softmax` of the first batch sample, under the line of :meth:`describe`.

    Args:
        features: (N, 2) unit features; default :func:`toy_clusters`.
        labels: (N,) cluster ids (required with ``features``).
        kind: initial memory kind, one of :data:`MEMORY_KINDS`.
        momentum: initial m.
        temperature: initial tau (0.05 in every paper, docs/methods.md, section 4).
        num_classes, per_class: batch shape (:func:`toy_batch`).
        seed: seed of the first batch; the button adds one.

    Attributes:
        kind: the memory dropdown (``kind.value`` is the current kind).
        momentum_slider, temperature_slider, batch_button, summary, output: the other widgets.
        seed: seed of the current batch.
        last_step_: the :func:`toy_update_step` result shown.
    """

    def __init__(
        self,
        features: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        *,
        kind: MemoryKind = "mean",
        momentum: float = 0.1,
        temperature: float = 0.05,
        num_classes: int = 2,
        per_class: int = 4,
        seed: int = 0,
    ) -> None:
        if (features is None) != (labels is None):
            raise ValueError("pass features and labels together, or neither (toy_clusters() is used)")
        if features is None:
            features, labels = toy_clusters()
        if kind not in MEMORY_KINDS:
            raise ValueError(f"kind must be one of {MEMORY_KINDS}, got {kind!r}")
        self.features, self.labels = np.asarray(features, dtype=np.float32), np.asarray(labels)
        self.num_classes, self.per_class, self.seed = num_classes, per_class, seed
        style = {"description_width": "initial"}
        self.kind = ipywidgets.Dropdown(options=list(MEMORY_KINDS), value=kind, description="memory")
        self.momentum_slider = ipywidgets.FloatSlider(
            value=momentum, min=0.0, max=0.99, step=0.01, description="momentum m", readout_format=".2f", style=style
        )
        self.temperature_slider = ipywidgets.FloatLogSlider(
            value=temperature, base=10, min=-2, max=0, step=0.05, description="temperature tau",
            readout_format=".3f", style=style,
        )
        self.batch_button = ipywidgets.Button(description="new batch")
        self.summary = ipywidgets.HTML()
        self.summary.add_class(TOY_SUMMARY_CLASS)
        self.output = ipywidgets.Output()
        self.last_step_: dict[str, Any] | None = None
        for control in (self.kind, self.momentum_slider, self.temperature_slider):
            control.observe(self._on_change, names="value")
        self.batch_button.on_click(self._on_batch)
        self._box = ipywidgets.VBox(
            [ipywidgets.HBox([self.kind, self.batch_button]),
             ipywidgets.HBox([self.momentum_slider, self.temperature_slider]), self.summary, self.output]
        )
        self._refresh()

    def step(self) -> dict[str, Any]:
        """The update of the current setting (:func:`toy_update_step`); also stored as ``last_step_``."""
        batch_idx = toy_batch(self.labels, num_classes=self.num_classes, per_class=self.per_class, seed=self.seed)
        self.last_step_ = toy_update_step(
            self.kind.value, self.features, self.labels, batch_idx, momentum=float(self.momentum_slider.value),
            temperature=float(self.temperature_slider.value), seed=self.seed,
        )
        return self.last_step_

    def static_figure(self) -> Figure:
        """The current state: the update on the circle and the softmax of batch sample 0."""
        step = self.step()
        fig = Figure(figsize=(11.5, 5.2), layout="constrained")
        left, right = fig.subplots(1, 2, width_ratios=(1.1, 1))
        plot_memory_update(step, ax=left)
        left.annotate("sample 0", step["batch"][0], xytext=(8, 8), textcoords="offset points", fontsize=7)
        plot_row_softmax(step, sample=0, ax=right)
        return fig

    def describe(self) -> str:
        """One line on the update shown (``last_step_``, computed first if needed): the setting, how far the
        rows it touched moved, and the softmax probability batch sample 0 gives its own class.

        Example: ``mean memory | m 0.10 | tau 0.050 | batch seed 0 | 2 of 4 rows moved, by 0.153 on average |
        sample 0: p(own class) 0.97``.
        """
        step = self.last_step_ if self.last_step_ is not None else self.step()
        moved = step["moved"]
        shift = np.linalg.norm(step["rows_after"] - step["rows_before"], axis=1)[moved]
        p_own = float(row_softmax(step, sample=0)[step["row_labels"] == step["batch_labels"][0]].sum())
        return (
            f"{step['kind']} memory | m {step['momentum']:.2f} | tau {step['temperature']:.3f} | "
            f"batch seed {self.seed} | {int(moved.sum())} of {moved.size} rows moved, by "
            f"{float(shift.mean()) if shift.size else 0.0:.3f} on average | sample 0: p(own class) {p_own:.2f}"
        )

    def widget(self) -> ipywidgets.VBox:
        """The controls above the output."""
        return self._box

    def _on_change(self, change: dict[str, Any]) -> None:
        self._refresh()

    def _on_batch(self, button: ipywidgets.Button) -> None:
        self.seed += 1
        self._refresh()

    def _refresh(self) -> None:
        figure = self.static_figure()
        self.summary.value = html.escape(self.describe())
        self.output.outputs = (png_output(figure),)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(N={len(self.labels)}, kind={self.kind.value!r}, "
            f"momentum={self.momentum_slider.value}, temperature={self.temperature_slider.value}, seed={self.seed})"
        )


class MuToy:
    """A mu slider on HHCL's two pulls on one query (notebook ``03_hard_mining``; HHCL Eq. 2).

    docs/methods.md, section 4.3.

    Args:
        memory: an HHCL memory with D = 2; default :meth:`HardHybridMemory.from_labels` on
            ``toy_clusters(spread=0.25)`` (4 clusters, well apart) with 4 slots per cluster.
        query: (2,) the query; default the member of cluster ``target`` least similar to its centroid
            (from the default toy data; required with a given ``memory``).
        target: the query's cluster id.
        mu: initial weight of L_cls.
        seed: seed of the toy data and of the slot draw (default memory only).

    Attributes:
        mu_slider, summary, output: the widgets (the summary holds :meth:`describe`).
        last_pull_: the :func:`query_pull` result shown.
    """

    def __init__(
        self,
        memory: HardHybridMemory | None = None,
        query: np.ndarray | None = None,
        *,
        target: int = 0,
        mu: float = 0.5,
        seed: int = 0,
    ) -> None:
        if memory is None:
            features, labels = toy_clusters(spread=0.25, seed=seed)
            memory = HardHybridMemory.from_labels(features, labels, num_instances=4, seed=seed)
            if query is None:
                members = np.flatnonzero(labels == target)
                similarity = features[members] @ memory.centroids[target].numpy()
                query = features[members[np.argmin(similarity)]]
        elif query is None:
            raise ValueError("pass the query (2,) with a memory")
        self.memory, self.query, self.target = memory, np.asarray(query, dtype=np.float32), int(target)
        self.mu_slider = ipywidgets.FloatSlider(
            value=mu, min=0.0, max=1.0, step=0.05, description="mu", readout_format=".2f"
        )
        self.summary = ipywidgets.HTML()
        self.summary.add_class(TOY_SUMMARY_CLASS)
        self.output = ipywidgets.Output()
        self.last_pull_: dict[str, Any] | None = None
        self.mu_slider.observe(self._on_change, names="value")
        self._box = ipywidgets.VBox([self.mu_slider, self.summary, self.output])
        self._refresh()

    def static_figure(self) -> Figure:
        """The current state (:func:`plot_query_pull`); stores the pull as ``last_pull_``."""
        mu = float(self.mu_slider.value)
        self.last_pull_ = query_pull(self.memory, self.query, self.target, mu=mu)
        fig = Figure(figsize=(5.6, 6.0), layout="constrained")
        plot_query_pull(self.memory, self.query, self.target, mu=mu, ax=fig.add_subplot())
        return fig

    def describe(self) -> str:
        """One line on the pull shown (``last_pull_``, computed first if needed): mu, both losses (unweighted)
        and the length of each weighted pull, ``mu |grad L_cls|`` and ``(1 - mu) |grad L_ins|``.

        Example: ``mu 0.50 | L_cls 0.41, L_ins 1.38 | pull on the query: L_cls term 0.019, L_ins term 0.427``.
        """
        if self.last_pull_ is None:
            self.last_pull_ = query_pull(self.memory, self.query, self.target, mu=float(self.mu_slider.value))
        pull = self.last_pull_
        return (
            f"mu {pull['mu']:.2f} | L_cls {pull['loss_cls']:.2f}, L_ins {pull['loss_ins']:.2f} | pull on the query: "
            f"L_cls term {np.linalg.norm(pull['pull_cls']):.3f}, L_ins term {np.linalg.norm(pull['pull_ins']):.3f}"
        )

    def widget(self) -> ipywidgets.VBox:
        """The slider above the summary line and the output."""
        return self._box

    def _on_change(self, change: dict[str, Any]) -> None:
        self._refresh()

    def _refresh(self) -> None:
        figure = self.static_figure()
        self.summary.value = html.escape(self.describe())
        self.output.outputs = (png_output(figure),)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(target={self.target}, mu={self.mu_slider.value})"


# ---------------------------------------------------------------------------------------------- camera proxies


def toy_camera_clusters(
    n_clusters: int = 5, cameras: int = 3, per_camera: int = 4, *, camera_shift: float = 0.6, spread: float = 0.08,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clusters of unit vectors seen by cameras that bias them: camera bias on the circle.

    Cluster centres are evenly spaced with a random rotation (as :func:`toy_clusters`); camera ``c`` adds the
    same angle ``camera_shift * (c - (cameras - 1) / 2)`` to every image it sees, as a colour cast moves every
    feature of a camera the same way; each image adds Gaussian noise of ``spread`` radians.

    Returns:
        ``features (N, 2)`` float32 unit rows, ``labels (N,)`` cluster ids and ``cameras (N,)`` camera ids
        0..cameras-1, cluster by cluster and camera by camera (N = n_clusters * cameras * per_camera).
    """
    if min(n_clusters, cameras, per_camera) < 1:
        raise ValueError(f"n_clusters, cameras and per_camera must be >= 1, got {n_clusters}, {cameras}, {per_camera}")
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.0, 2 * np.pi) + 2 * np.pi * np.arange(n_clusters) / n_clusters
    labels = np.repeat(np.arange(n_clusters, dtype=np.int64), cameras * per_camera)
    camera_ids = np.tile(np.repeat(np.arange(cameras, dtype=np.int64), per_camera), n_clusters)
    angles = centres[labels] + camera_shift * (camera_ids - (cameras - 1) / 2) + spread * rng.standard_normal(
        labels.size)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32), labels, camera_ids


def camera_pull(memory: CameraProxyMemory, query: np.ndarray | torch.Tensor, index: int) -> dict[str, Any]:
    """The pull of CAP's two losses on one sample: the negative gradients of ``intra`` and of the weighted ``inter``.

    ``memory.loss_terms`` (docs/methods.md, section 4.6) is differentiated with respect to a copy of the
    sample's feature; the sample's proxy (and so its cluster and camera) comes from its dataset ``index``.
    The inter-camera term carries the memory's ``cross_camera_weight``, as in training.

    Returns:
        NumPy values: ``query (D,)`` (normalised), ``proxy`` (its own proxy), ``loss_intra``, ``loss_inter``;
        ``pull_intra``, ``pull_inter`` and ``pull_total`` (D,); ``positives`` (proxy ids of its cluster, every
        camera), ``negatives`` (the hard negative proxies the inter-camera term uses) and ``own_camera`` (the
        proxies the intra-camera term contrasts with).
    """
    q = F.normalize(torch.as_tensor(query, dtype=memory.proxies.dtype).detach().clone(), dim=0)[None]
    q.requires_grad_(True)
    indexes = torch.tensor([int(index)])
    terms = memory.loss_terms(q, indexes=indexes)
    (grad_intra,) = torch.autograd.grad(terms["intra"], q, retain_graph=True)
    grad_inter = torch.autograd.grad(terms["inter"], q)[0] if terms["inter"].requires_grad else torch.zeros_like(q)
    proxy = int(memory.sample_proxies[int(index)])
    cluster, camera = memory.proxy_labels[proxy], memory.proxy_cameras[proxy]
    positives = torch.nonzero(memory.proxy_labels == cluster).flatten()
    similarity = (q.detach() @ memory.proxies.t())[0].masked_fill(memory.proxy_labels == cluster, float("-inf"))
    top = similarity.topk(min(memory.negatives, memory.num_proxies))
    negatives = top.indices[top.values > float("-inf")] if memory.cross_camera else top.indices[:0]
    return {
        "query": q.detach()[0].numpy(), "proxy": proxy,
        "loss_intra": float(terms["intra"].detach()), "loss_inter": float(terms["inter"].detach()),
        "pull_intra": -grad_intra[0].numpy(), "pull_inter": -grad_inter[0].numpy(),
        "pull_total": -(grad_intra + grad_inter)[0].numpy(),
        "positives": positives.numpy(), "negatives": negatives.numpy(),
        "own_camera": torch.nonzero(memory.proxy_cameras == camera).flatten().numpy(),
    }


def plot_camera_pull(
    memory: CameraProxyMemory, features: np.ndarray, labels: np.ndarray, cameras: np.ndarray, index: int, *,
    ax: Axes | None = None,
) -> Figure:
    """CAP's proxies and its two pulls on one sample in the 2-D toy (notebook ``06_domains_and_cameras``).

    Images are small dots, proxies large markers, both in their camera's colour, with the cluster id written
    beside each proxy; the sample is a black star; green rings mark its positives (every proxy of its
    cluster), red rings the hard negative proxies of the inter-camera term. Arrows: the intra-camera pull,
    the (weighted) inter-camera pull and their sum, not to scale so that a short one stays visible
    (:func:`_pull_arrows`; the legend gives the true lengths).
    """
    if memory.feature_dim != 2:
        raise ValueError(f"plot_camera_pull draws 2-D memories, got feature dimension {memory.feature_dim}")
    pull = camera_pull(memory, features[index], index)
    fig, ax = _circle_axes(ax)
    palette = camera_colours(int(max(cameras.max(), memory.proxy_cameras.max())) + 1)
    ax.scatter(*np.asarray(features).T, s=12, color=palette[cameras], alpha=0.6, linewidths=0)
    proxies = memory.proxies.numpy()
    ax.scatter(*proxies.T, s=90, marker="D", color=palette[memory.proxy_cameras.numpy()], edgecolors="k",
               linewidths=0.6, zorder=3)
    for p, (x, y) in enumerate(proxies):
        ax.annotate(str(int(memory.proxy_labels[p])), (1.13 * x, 1.13 * y), ha="center", va="center", fontsize=7)
    ax.scatter(*proxies[pull["positives"]].T, s=230, facecolors="none", edgecolors="tab:green", linewidths=2,
               zorder=4, label="positives: its cluster's proxies")
    if len(pull["negatives"]):
        ax.scatter(*proxies[pull["negatives"]].T, s=230, facecolors="none", edgecolors="tab:red", linewidths=2,
                   zorder=4, label=f"{len(pull['negatives'])} hard negative proxies")
    q = pull["query"]
    ax.scatter(*q, marker="*", s=220, color="k", zorder=6,
               label=f"sample (cluster {int(labels[index])}, camera {int(cameras[index])})")
    longest = max(np.linalg.norm(pull["pull_intra"]), np.linalg.norm(pull["pull_inter"]))
    _pull_arrows(ax, q, [(pull["pull_total"], "0.35", 4.0, "total pull"), (pull["pull_intra"], "tab:blue", 1.8, "intra pull"),
                         (pull["pull_inter"], "tab:orange", 1.8, "weight x inter pull")], longest=longest)
    for camera in range(len(palette)):
        ax.scatter([], [], marker="D", color=palette[camera], label=f"camera {camera}")
    ax.set_title(f"weight {memory.cross_camera_weight:g}, k = {memory.negatives}: L_intra {pull['loss_intra']:.2f}, "
                 f"weighted L_inter {pull['loss_inter']:.2f}", fontsize=9)
    _legend_below(ax)
    return fig


class CameraToy:
    """Sliders for the inter-camera weight and the number of hard negative proxies on CAP's pulls (notebook 06).

    The toy (:func:`toy_camera_clusters`) has clusters whose cameras shift their images the same way, so a
    camera's proxies of *different* clusters lie close together: they are the hard negatives. The intra-camera
    loss only separates clusters within a camera; the inter-camera loss pulls the sample towards its cluster's
    proxies in the other cameras and away from the k hardest negatives.

    Args:
        weight: initial inter-camera weight (CAP: 0.5).
        negatives: initial k (CAP: 50; the toy has few proxies, so the slider stops at their number).
        temperature: tau of the proxy logits (CAP: 0.07).
        seed: seed of the toy data.

    Attributes:
        weight_slider, negatives_slider, summary, output: the widgets (the summary holds :meth:`describe`).
        last_pull_: the :func:`camera_pull` result shown.
    """

    def __init__(self, *, weight: float = 0.5, negatives: int = 3, temperature: float = 0.2, seed: int = 0) -> None:
        self.features, self.labels, self.cameras = toy_camera_clusters(seed=seed)
        self.temperature = float(temperature)
        proxies = CameraProxyMemory.from_labels(self.features, self.labels, self.cameras)
        members = np.flatnonzero((self.labels == 0) & (self.cameras == 0))
        self.index = int(members[0])  # a sample of cluster 0 in the first camera
        self.weight_slider = ipywidgets.FloatSlider(value=weight, min=0.0, max=2.0, step=0.1,
                                                    description="crosscam_weight", readout_format=".1f",
                                                    style={"description_width": "initial"})
        self.negatives_slider = ipywidgets.IntSlider(value=negatives, min=1, max=proxies.num_proxies,
                                                     description="crosscam_negatives",
                                                     style={"description_width": "initial"})
        self.output = ipywidgets.Output()
        self.summary = ipywidgets.HTML()
        self.summary.add_class(TOY_SUMMARY_CLASS)
        self.last_pull_: dict[str, Any] | None = None
        for slider in (self.weight_slider, self.negatives_slider):
            slider.observe(self._on_change, names="value")
        self._box = ipywidgets.VBox([ipywidgets.HBox([self.weight_slider, self.negatives_slider]), self.summary,
                                     self.output])
        self._refresh()

    def memory(self) -> CameraProxyMemory:
        """The proxy memory of the toy at the sliders' values."""
        return CameraProxyMemory.from_labels(
            self.features, self.labels, self.cameras, temperature=self.temperature, cross_camera=True,
            cross_camera_weight=float(self.weight_slider.value), negatives=int(self.negatives_slider.value))

    def static_figure(self) -> Figure:
        """The current state (:func:`plot_camera_pull`); stores the pull as ``last_pull_``."""
        memory = self.memory()
        self.last_pull_ = camera_pull(memory, self.features[self.index], self.index)
        fig = Figure(figsize=(6.0, 6.6), layout="constrained")
        plot_camera_pull(memory, self.features, self.labels, self.cameras, self.index, ax=fig.add_subplot())
        return fig

    def describe(self) -> str:
        """One line on the pull shown (``last_pull_``): the settings, both losses and the length of each pull.

        Example: ``crosscam_weight 0.5, crosscam_negatives 3 | L_intra 0.81, L_inter 1.20 | pull: intra 0.412,
        inter 0.655, 3 hard negatives``.
        """
        if self.last_pull_ is None:
            self.static_figure()
        pull = self.last_pull_
        return (f"crosscam_weight {self.weight_slider.value:.1f}, crosscam_negatives {self.negatives_slider.value} | "
                f"L_intra {pull['loss_intra']:.2f}, L_inter {pull['loss_inter']:.2f} | pull: intra "
                f"{np.linalg.norm(pull['pull_intra']):.3f}, inter {np.linalg.norm(pull['pull_inter']):.3f}, "
                f"{len(pull['negatives'])} hard negatives")

    def widget(self) -> ipywidgets.VBox:
        """The sliders above the summary line and the output."""
        return self._box

    def _on_change(self, change: dict[str, Any]) -> None:
        self._refresh()

    def _refresh(self) -> None:
        self.output.outputs = (png_output(self.static_figure()),)
        self.summary.value = html.escape(self.describe())

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(weight={self.weight_slider.value}, "
                f"negatives={self.negatives_slider.value})")


# ---------------------------------------------------------------------------------------------- helpers

_KIND_NAMES = {
    "mean": "Cluster Contrast, mean update",
    "hard": "Cluster Contrast, hard update",
    "hybrid": "HHCL, centroids + slots",
    "instance": "SpCL, instance memory",
}


def _circle_axes(ax: Axes | None) -> tuple[Figure, Axes]:
    """Axes (new figure when None) with the unit circle, equal aspect and no ticks."""
    if ax is None:
        fig = Figure(figsize=(5.6, 6.0), layout="constrained")
        ax = fig.add_subplot()
    ax.add_patch(Circle((0.0, 0.0), 1.0, fill=False, color="0.75", linewidth=1.0))
    ax.set_xlim(-_LIMIT, _LIMIT)
    ax.set_ylim(-_LIMIT, _LIMIT)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax.get_figure(), ax


def _colours(ids: np.ndarray) -> np.ndarray:
    """(len(ids), 4) RGBA: tab10 by class id (cycled), grey for -1 (outliers)."""
    ids = np.asarray(ids)
    colours = colormaps["tab10"](np.maximum(ids, 0) % 10)
    colours[ids < 0] = (0.5, 0.5, 0.5, 1.0)
    return colours


# Drawn arrow length of a pull: at least _MIN_ARROW for any non-zero pull, plus up to _ARROW_RANGE in proportion.
_MIN_ARROW, _ARROW_RANGE = 0.15, 0.45


def _pull_arrows(ax: Axes, start: np.ndarray, pulls: Sequence[tuple[np.ndarray, Any, float, str]], *,
                 longest: float) -> None:
    """Arrows from ``start`` for ``(vector (2,), colour, line width, name)`` pulls, with the true lengths in the
    legend. Each arrow points along its vector and is ``0.15 + 0.45 * |v| / longest`` long: the order of the
    lengths is kept, and a pull 20x shorter than another is still visible. A zero pull gets no arrow."""
    for vector, colour, width, name in pulls:
        norm = float(np.linalg.norm(vector))
        if norm > 1e-9:
            length = _MIN_ARROW + _ARROW_RANGE * min(norm / max(longest, norm), 1.0)
            ax.annotate("", xy=start + length * np.asarray(vector) / norm, xytext=start, zorder=7,
                        arrowprops={"arrowstyle": "-|>", "color": colour, "lw": width, "shrinkA": 0, "shrinkB": 0})
        ax.plot([], [], color=colour, lw=width, label=f"{name} |{norm:.2f}|")


def _legend_below(ax: Axes, *, markerscale: float = 0.6) -> None:
    """The axes' legend under it, in two columns, inside the figure: a figure without a layout engine gets
    the constrained layout, which makes room for it (a legend beside the axes ran into the next panel)."""
    fig = ax.get_figure()
    if fig.get_layout_engine() is None:
        fig.set_layout_engine("constrained")
    ax.set_anchor("N")  # an equal-aspect axes shrunk in its cell moves up, never onto its legend
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.01), ncols=2, fontsize=7, frameon=False,
              markerscale=markerscale)


def _arrow(ax: Axes, start: np.ndarray, end: np.ndarray, colour: Any, *, lw: float, style: str = "solid") -> None:
    """An arrow from ``start`` to ``end`` (2,); nothing when they coincide."""
    if np.linalg.norm(np.asarray(end) - np.asarray(start)) < 1e-6:
        return
    ax.annotate("", xy=end, xytext=start, zorder=5,
                arrowprops={"arrowstyle": "->", "color": colour, "lw": lw, "linestyle": style,
                            "shrinkA": 0, "shrinkB": 4})
