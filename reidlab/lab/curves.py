"""Training curves of several methods on one figure, with the start model and the supervised ceiling.

A run's history (:meth:`reidlab.training.Trainer.fit`) has one record per epoch: the pseudo-labels'
quality (``ari``, ``n_clusters``) every epoch and the retrieval metrics (``mAP``...) every ``eval_step``
epochs. :func:`plot_training_curves` draws, per method, the mean over its seeds and the band between the
lowest and highest seed; :func:`summarise_runs` gives the final numbers that the notebooks print and check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator

from reidlab.plotting import Figure

__all__ = ["as_seed_runs", "curve", "plot_training_curves", "summarise_runs"]

History = Sequence[Mapping[str, Any]]


def as_seed_runs(runs: History | Sequence[History]) -> list[History]:
    """One history, or a list of them (one per seed), as a list of histories."""
    if len(runs) and isinstance(runs[0], Mapping):
        return [runs]
    return list(runs)


def curve(runs: History | Sequence[History], key: str) -> tuple[np.ndarray, np.ndarray]:
    """The epochs (1-based) where every seed recorded ``key``, and the values ``(seeds, epochs)`` there."""
    runs = as_seed_runs(runs)
    epochs = sorted(set.intersection(*({e["epoch"] for e in h if e.get(key) is not None} for h in runs)))
    values = np.array([[next(e[key] for e in h if e["epoch"] == epoch) for epoch in epochs] for h in runs], float)
    return np.array(epochs) + 1, values.reshape(len(runs), len(epochs))


def summarise_runs(runs: Mapping[str, History | Sequence[History]], key: str = "mAP") -> dict[str, dict[str, float]]:
    """Per method: the mean, lowest and highest final ``key`` over its seeds, and the number of seeds."""
    summary = {}
    for name, method_runs in runs.items():
        _, values = curve(method_runs, key)
        final = values[:, -1]
        summary[name] = {"mean": float(final.mean()), "min": float(final.min()), "max": float(final.max()),
                         "seeds": len(final)}
    return summary


def plot_training_curves(
    runs: Mapping[str, History | Sequence[History]],
    *,
    start: float | None = None,
    ceiling: float | None = None,
    title: str | None = None,
) -> Figure:
    """mAP, pseudo-label ARI and number of clusters per epoch for every method of ``runs``.

    Args:
        runs: method name -> its history, or a list of histories (one per seed): the line is their mean,
            the shaded band spans the lowest to the highest seed.
        start: mAP (a fraction) of the start model, drawn as a dotted line on the mAP panel.
        ceiling: mAP (a fraction) of the supervised ceiling, drawn as a dashed line.
        title: figure title.
    """
    fig = Figure(figsize=(13, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    colours = {name: f"C{i}" for i, name in enumerate(runs)}
    for ax, key, label, scale in ((axes[0], "mAP", "mAP (%)", 100), (axes[1], "ari", "pseudo-label ARI", 1),
                                  (axes[2], "n_clusters", "clusters", 1)):
        for name, method_runs in runs.items():
            epochs, values = curve(method_runs, key)
            if not len(epochs):
                continue
            values = values * scale
            seeds = len(values)
            ax.plot(epochs, values.mean(0), marker="o", ms=3, color=colours[name],
                    label=name if seeds == 1 else f"{name} ({seeds} seeds)")
            if seeds > 1:
                ax.fill_between(epochs, values.min(0), values.max(0), color=colours[name], alpha=0.2, lw=0)
        ax.set_xlabel("epoch")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    if start is not None:
        axes[0].axhline(100 * start, color="grey", ls=":", label=f"start model {100 * start:.1f}")
    if ceiling is not None:
        axes[0].axhline(100 * ceiling, color="black", ls="--", label=f"supervised ceiling {100 * ceiling:.1f}")
    top = max(axes[0].get_ylim()[1], 100 * (ceiling or 0) * 1.08)
    axes[0].set_ylim(0, top)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    return fig
