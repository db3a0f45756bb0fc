"""The eps explorer of notebook 01: DBSCAN on the k-reciprocal Jaccard distance, one slider away.

:class:`ClusteringExplorer` computes the Jaccard distance (docs/methods.md, section 2) once per (k1, k2)
and the DBSCAN labels (docs/methods.md, section 3) once per (k1, k2, eps, min_samples), so moving eps only
re-runs DBSCAN (tens of milliseconds for 3,000 samples). :meth:`ClusteringExplorer.cluster` and
:meth:`ClusteringExplorer.sweep` are the computations without widgets; :meth:`ClusteringExplorer.widget`
puts sliders on them, and :meth:`ClusteringExplorer.static_figure` draws the current state, because an
executed notebook keeps figures but not the output of live widgets.

:class:`TrainingMonitor` is a :class:`reidlab.training.Trainer` callback that redraws the training curves
after every epoch (notebooks 02 and 03), and draws them again from a saved history.

DOM contract (tests/test_browser.py relies on it): the explorer's summary ``ipywidgets.HTML`` has the CSS
class ``reidlab-cluster-summary`` and its value starts with the plain text ``clusters: <N>``; the eps
slider has the class ``reidlab-eps-slider``. A training monitor's line of :meth:`TrainingMonitor.summary`
(``epoch <E> | loss ...``) is an ``ipywidgets.HTML`` with the class ``reidlab-monitor-summary``.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import logging
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import ipywidgets
import numpy as np
import scipy.sparse as sp
import torch
from matplotlib.axes import Axes

from reidlab.cluster import (
    ClusterQuality,
    DBSCANPseudoLabeler,
    EmptyClusteringError,
    cluster_quality,
    jaccard_distance,
)
from reidlab.cluster.neighbors import as_float32_array
from reidlab.lab.embedding import (
    EMBEDDINGS,
    EmbeddingCache,
    plot_embedding,
    plot_embeddings,
)
from reidlab.plotting import Figure, figure_png

logger = logging.getLogger(__name__)

__all__ = [
    "EPS_SLIDER_CLASS",
    "MONITOR_SUMMARY_CLASS",
    "SUMMARY_CLASS",
    "ClusterResult",
    "ClusteringExplorer",
    "TrainingMonitor",
    "plot_sweep",
]

# CSS classes of the DOM contract (see the module docstring).
SUMMARY_CLASS = "reidlab-cluster-summary"
EPS_SLIDER_CLASS = "reidlab-eps-slider"
MONITOR_SUMMARY_CLASS = "reidlab-monitor-summary"
# Cache keys hold eps rounded to this many decimals (slider values such as 0.5700000000000001).
_EPS_DECIMALS = 6


@dataclasses.dataclass(frozen=True, eq=False)
class ClusterResult:
    """DBSCAN pseudo-labels for one setting, with their quality when true identities are known.

    Attributes:
        labels: (N,) int64 cluster ids 0..n_clusters-1, -1 for outliers (all -1 when no cluster formed).
        n_clusters: number of clusters.
        n_outliers: samples labelled -1.
        quality: scores against the true identities (:func:`reidlab.cluster.cluster_quality`), or None.
        params: ``{"eps", "min_samples", "k1", "k2"}``.
        message: why no cluster formed (the :class:`reidlab.cluster.EmptyClusteringError` text), else None.
    """

    labels: np.ndarray
    n_clusters: int
    n_outliers: int
    quality: ClusterQuality | None
    params: dict[str, float | int]
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Parameters, counts and quality scores as one flat dict, e.g. ``record(**result.as_dict())``."""
        row: dict[str, Any] = {**self.params, "n_clusters": self.n_clusters, "n_outliers": self.n_outliers}
        if self.quality is not None:
            scores = self.quality.as_dict()
            row.update({k: v for k, v in scores.items() if k not in ("n_samples", "n_clusters", "n_outliers")})
        return row

    def summary(self) -> str:
        """One line that starts with ``clusters: <N>`` (the widget's summary, see the DOM contract above).

        Example: ``clusters: 23 | outliers: 41 | ARI 0.812 | NMI 0.930 | purity 0.950 | eps 0.60, min_samples 4,
        k1 30, k2 6`` (one line; without true labels no scores, without clusters the reason instead).
        """
        parts = [f"clusters: {self.n_clusters}", f"outliers: {self.n_outliers}"]
        if self.message is not None:
            parts.append(f"no cluster: {self.message}")
        elif self.quality is not None:
            q = self.quality
            parts += [f"ARI {q.ari:.3f}", f"NMI {q.nmi:.3f}", f"purity {q.purity:.3f}"]
        p = self.params
        parts.append(f"eps {p['eps']:.2f}, min_samples {p['min_samples']}, k1 {p['k1']}, k2 {p['k2']}")
        return " | ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.summary()})"


class ClusteringExplorer:
    """Explore DBSCAN's eps (and min_samples, k1, k2) on the k-reciprocal Jaccard distance of ``features``.

    No distance, clustering or embedding is computed at construction. The Jaccard distance is computed once per (k1, k2) and kept
    (sparse, :func:`reidlab.cluster.jaccard_distance`); DBSCAN results once per (k1, k2, eps, min_samples).
    The defaults are those of SpCL and Cluster Contrast on Market-1501 (docs/methods.md, sections 2-3: k1=30, k2=6,
    eps=0.6, min_samples=4).

    Args:
        features: (N, D) training features (NumPy or torch), meant to be L2-normalised.
        true_labels: (N,) true identities; when given, every result carries its quality.
        k1, k2: Jaccard distance parameters (docs/methods.md, section 2).
        eps, min_samples: DBSCAN parameters (docs/methods.md, section 3); eps in (0, 1) on the sparse distance.
        coords: (N, 2) embedding for the scatter; if None, computed once with ``embedding``.
        embedding: ``"tsne"``, ``"umap"`` (:func:`reidlab.lab.embedding.embed_2d`) or None (no scatter).
        seed: random state of the embedding.

    Attributes:
        eps, min_samples, k1, k2: the current setting (the sliders move it).
        result_: the :class:`ClusterResult` of the current setting, once computed (None before).
        n_jaccard_computations_: Jaccard distances computed so far (each (k1, k2) once).
        n_dbscan_computations_: DBSCAN runs so far (each setting once).
        eps_slider, min_samples_slider, k1_slider, k2_slider, summary, plot_output: the widgets, built by
            :meth:`widget` (None before).

    Example:
        >>> explorer = ClusteringExplorer(features, true_labels=pids)
        >>> explorer.widget()                                   # in a notebook
        >>> rows = explorer.sweep(np.arange(0.40, 0.81, 0.05))
        >>> plot_sweep(rows, mark_eps=0.6)
    """

    def __init__(
        self,
        features: np.ndarray | torch.Tensor,
        *,
        true_labels: np.ndarray | torch.Tensor | Sequence[int] | None = None,
        k1: int = 30,
        k2: int = 6,
        eps: float = 0.6,
        min_samples: int = 4,
        coords: np.ndarray | None = None,
        embedding: Literal["tsne", "umap"] | None = "tsne",
        seed: int = 0,
    ) -> None:
        self.features = as_float32_array(features)
        n = self.features.shape[0]
        if true_labels is not None:
            true_labels = (
                true_labels.detach().cpu().numpy() if isinstance(true_labels, torch.Tensor) else np.asarray(true_labels)
            )
            if true_labels.shape != (n,):
                raise ValueError(f"true_labels must have shape ({n},) like the features, got {true_labels.shape}")
        if coords is not None:
            coords = np.asarray(coords, dtype=np.float64)
            if coords.shape != (n, 2):
                raise ValueError(f"coords must have shape ({n}, 2), got {coords.shape}")
        self.true_labels = true_labels
        self.k1, self.k2, self.eps, self.min_samples = k1, k2, eps, min_samples
        if embedding is not None and embedding not in EMBEDDINGS:
            raise ValueError(f"embedding must be one of {EMBEDDINGS} or None, got {embedding!r}")
        self.coords = coords
        self._embeddings = None
        if coords is None and embedding is not None:
            self._embeddings = EmbeddingCache(self.features, seed=seed)
        self.embedding = embedding
        self.seed = seed
        self._distances: dict[tuple[int, int], sp.csr_matrix] = {}
        self._results: dict[tuple[int, int, float, int], ClusterResult] = {}
        self.n_jaccard_computations_ = 0
        self.n_dbscan_computations_ = 0
        self.result_: ClusterResult | None = None
        self._box: ipywidgets.VBox | None = None
        self.eps_slider = self.min_samples_slider = self.k1_slider = self.k2_slider = None
        self.summary = self.plot_output = None

    # ---- computations (no widgets) ----

    def distance(self, k1: int | None = None, k2: int | None = None) -> sp.csr_matrix:
        """The sparse Jaccard distance (N, N) for (k1, k2) (current values for None), computed once."""
        key = (self.k1 if k1 is None else int(k1), self.k2 if k2 is None else int(k2))
        if key not in self._distances:
            self._distances[key] = jaccard_distance(self.features, k1=key[0], k2=key[1])
            self.n_jaccard_computations_ += 1
        return self._distances[key]

    def cluster(
        self,
        *,
        eps: float | None = None,
        min_samples: int | None = None,
        k1: int | None = None,
        k2: int | None = None,
    ) -> ClusterResult:
        """DBSCAN pseudo-labels for a setting (None = the current value), cached; the current setting is unchanged.

        A setting where no cluster forms gives a result with ``n_clusters=0``, all labels -1 and the
        :class:`reidlab.cluster.EmptyClusteringError` text in ``message``, instead of raising.

        Raises:
            ValueError: invalid parameters (eps outside (0, 1), min_samples < 1, k1 >= N, k2 > k1...).
        """
        k1 = self.k1 if k1 is None else int(k1)
        k2 = self.k2 if k2 is None else int(k2)
        eps = round(float(self.eps if eps is None else eps), _EPS_DECIMALS)
        min_samples = self.min_samples if min_samples is None else int(min_samples)
        key = (k1, k2, eps, min_samples)
        if key not in self._results:
            self._results[key] = self._dbscan(self.distance(k1, k2), key)
        return self._results[key]

    def _dbscan(self, dist: sp.csr_matrix, key: tuple[int, int, float, int]) -> ClusterResult:
        k1, k2, eps, min_samples = key
        params = {"eps": eps, "min_samples": min_samples, "k1": k1, "k2": k2}
        self.n_dbscan_computations_ += 1
        try:
            labeler = DBSCANPseudoLabeler(eps=eps, min_samples=min_samples).fit(dist)
        except EmptyClusteringError as error:
            labels, n_clusters, message = np.full(dist.shape[0], -1, dtype=np.int64), 0, str(error)
        else:
            labels, n_clusters, message = labeler.labels_, labeler.n_clusters_, None
        quality = cluster_quality(labels, self.true_labels) if self.true_labels is not None else None
        return ClusterResult(labels, n_clusters, int((labels == -1).sum()), quality, params, message)

    def sweep(
        self,
        eps_values: Iterable[float],
        *,
        k1: int | None = None,
        k2: int | None = None,
        min_samples: int | None = None,
    ) -> list[dict[str, Any]]:
        """:meth:`cluster` for every eps (one Jaccard distance, cached DBSCAN runs): one row per eps.

        Returns:
            Rows of :meth:`ClusterResult.as_dict`: eps, min_samples, k1, k2, n_clusters, n_outliers, and
            with true labels ari, nmi, purity and the other :class:`reidlab.cluster.ClusterQuality` scores.
        """
        return [self.cluster(eps=eps, k1=k1, k2=k2, min_samples=min_samples).as_dict() for eps in eps_values]

    def current(self) -> ClusterResult:
        """The result of the current setting; also stored as ``result_``."""
        self.result_ = self.cluster()
        return self.result_

    def coordinates(self) -> np.ndarray | None:
        """(N, 2) coordinates of the scatter: ``coords``, else the ``embedding`` computed once, else None."""
        if self.coords is not None:
            return self.coords
        return None if self._embeddings is None else self._embeddings.get(self.embedding)

    def static_figure(self, *, truth: bool = True) -> Figure:
        """The current state as a figure: the scatter coloured by cluster (next to the true identities when
        known and ``truth``), titled by the summary line. Without coordinates: the cluster sizes.
        """
        result = self.current()
        coords = self.coordinates()
        if coords is None:
            fig = Figure(figsize=(7, 3.5), layout="constrained")
            ax = fig.add_subplot()
            sizes = np.sort(np.bincount(result.labels[result.labels >= 0]))[::-1]
            ax.bar(np.arange(sizes.size), sizes, width=1.0)
            ax.set_xlabel("cluster (largest first)")
            ax.set_ylabel("images")
        elif truth and self.true_labels is not None:
            fig = plot_embeddings(coords, {"true identities": self.true_labels, "pseudo-labels": result.labels})
        else:
            fig = plot_embedding(coords, result.labels, title="pseudo-labels")
        fig.suptitle(result.summary(), fontsize=8)
        return fig

    # ---- widgets ----

    def widget(self) -> ipywidgets.VBox:
        """Sliders for eps, min_samples, k1, k2, the summary line and the scatter (built once, then reused).

        Moving eps re-runs DBSCAN only (its slider updates continuously); k1 and k2 trigger a Jaccard
        distance when that (k1, k2) is new, so their sliders update on release, like min_samples.
        """
        if self._box is not None:
            return self._box
        n = self.features.shape[0]
        layout = {"style": {"description_width": "initial"}}
        self.eps_slider = ipywidgets.FloatSlider(
            value=self.eps, min=min(0.30, self.eps), max=max(0.90, self.eps), step=0.01, description="eps",
            continuous_update=True, readout_format=".2f", **layout,
        )
        self.min_samples_slider = ipywidgets.IntSlider(
            value=self.min_samples, min=min(2, self.min_samples), max=max(10, self.min_samples),
            description="min_samples", continuous_update=False, **layout,
        )
        self.k1_slider = ipywidgets.IntSlider(
            value=self.k1, min=min(10, self.k1), max=max(min(40, n - 1), self.k1), description="k1",
            continuous_update=False, **layout,
        )
        # k2 <= k1 on the whole slider ranges (jaccard_distance requires it).
        self.k2_slider = ipywidgets.IntSlider(
            value=self.k2, min=1, max=min(max(10, self.k2), self.k1_slider.min), description="k2",
            continuous_update=False, **layout,
        )
        self.summary = ipywidgets.HTML()
        self.plot_output = ipywidgets.Output()
        self.summary.add_class(SUMMARY_CLASS)
        self.eps_slider.add_class(EPS_SLIDER_CLASS)
        for slider in (self.eps_slider, self.min_samples_slider, self.k1_slider, self.k2_slider):
            slider.observe(self._on_slider, names="value")
        self._box = ipywidgets.VBox(
            [
                ipywidgets.HBox([self.eps_slider, self.min_samples_slider]),
                ipywidgets.HBox([self.k1_slider, self.k2_slider]),
                self.summary,
                self.plot_output,
            ]
        )
        self._refresh()
        return self._box

    def _on_slider(self, change: dict[str, Any]) -> None:
        self.eps = round(float(self.eps_slider.value), _EPS_DECIMALS)
        self.min_samples = int(self.min_samples_slider.value)
        self.k1 = int(self.k1_slider.value)
        self.k2 = int(self.k2_slider.value)
        self._refresh()

    def _refresh(self) -> None:
        """Recompute the current result and redraw the summary and the scatter."""
        result = self.current()
        self.summary.value = html.escape(result.summary())
        coords = self.coordinates()
        if coords is None:
            return
        fig = plot_embedding(coords, result.labels, title="pseudo-labels (grey x: outliers)")
        self.plot_output.outputs = (png_output(fig),)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(N={self.features.shape[0]}, k1={self.k1}, k2={self.k2}, eps={self.eps}, "
            f"min_samples={self.min_samples}, jaccard computed for {sorted(self._distances)})"
        )


def png_output(fig: Figure) -> dict[str, Any]:
    """``fig`` as a PNG ``display_data`` output for ``ipywidgets.Output.outputs``.

    Rendering the PNG here, rather than ``display(fig)`` inside the output, works the same in any kernel
    and without one (tests), whatever matplotlib backend is active.
    """
    return {
        "output_type": "display_data",
        "data": {"image/png": base64.b64encode(figure_png(fig)).decode("ascii"), "text/plain": repr(fig)},
        "metadata": {},
    }


def plot_sweep(rows: Sequence[dict[str, Any]], *, mark_eps: float | None = None, ax: Axes | None = None) -> Figure:
    """Number of clusters and ARI against eps on twin axes (rows of :meth:`ClusteringExplorer.sweep`).

    Small eps leaves most samples as outliers, large eps merges identities; the ARI (outliers as
    singletons) peaks in between. Without an ``ari`` column only the cluster count is drawn.

    Args:
        rows: dicts with ``eps`` and ``n_clusters`` (and ``ari``), in any order.
        mark_eps: draw a vertical line at this eps (e.g. the paper's 0.6).
        ax: axes to draw into; a new figure when None.

    Raises:
        ValueError: ``rows`` is empty.
    """
    if not rows:
        raise ValueError("rows is empty: pass the output of ClusteringExplorer.sweep(eps_values)")
    rows = sorted(rows, key=lambda row: row["eps"])
    eps = [row["eps"] for row in rows]
    if ax is None:
        fig = Figure(figsize=(6, 3.5), layout="constrained")
        ax = fig.add_subplot()
    ax.plot(eps, [row["n_clusters"] for row in rows], "o-", color="tab:blue", label="clusters")
    ax.set_xlabel("eps")
    ax.set_ylabel("clusters", color="tab:blue")
    if all(row.get("ari") is not None for row in rows):
        twin = ax.twinx()
        twin.plot(eps, [row["ari"] for row in rows], "s--", color="tab:orange", label="ARI")
        twin.set_ylabel("ARI (outliers as singletons)", color="tab:orange")
        twin.set_ylim(-0.05, 1.05)
    if mark_eps is not None:
        ax.axvline(mark_eps, color="0.5", linestyle=":", linewidth=1)
    return ax.get_figure()


# Panels of TrainingMonitor: metric name -> (title, left-axis series, right-axis series, y label); a series
# is (history key, legend label). Keys are those of a Trainer history entry (reidlab.training.Trainer.fit).
_MONITOR_PANELS: dict[str, tuple[str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...], str]] = {
    "loss": ("training loss", (("loss", "loss"),), (), "mean loss of the epoch"),
    "n_clusters": (
        "pseudo-labels",
        (("n_clusters", "clusters"), ("n_outliers", "outliers")),
        (("ari", "ARI"), ("nmi", "NMI")),
        "count",
    ),
    "mAP": ("evaluation", (("mAP", "mAP"), ("rank1", "Rank-1")), (), "score"),
}


class TrainingMonitor:
    """Live training plots in a notebook: a :class:`reidlab.training.Trainer` callback.

    Every call with an epoch's history entry (keys ``epoch``, ``loss``, ``n_clusters``, ``n_outliers``,
    ``ari``, ``nmi``, ``memory_rows``, ``lr``, ``seconds``, and ``mAP``, ``rank1``... on evaluation epochs)
    appends it, writes :meth:`summary` into a line of text and redraws one row of panels into an
    ``ipywidgets.Output`` (a PNG, as :class:`ClusteringExplorer` does, so no ``display`` is needed). Panels,
    one per name in ``metrics``:

    * ``"loss"``: the mean loss per epoch;
    * ``"n_clusters"``: clusters and outliers of the pseudo-labels, with their ARI and NMI against the
      true identities on a second axis (docs/methods.md, section 3);
    * ``"mAP"``: mAP and Rank-1 on the evaluation epochs (docs/methods.md, section 6);
    * any other history key (``"lr"``, ``"seconds"``, ``"memory_rows"``...): that value per epoch.

    :meth:`figure` draws the same as a static figure, for the executed notebook (widget output is not
    kept) or after training from a saved history (:meth:`from_history`).

    Args:
        title: shown above the plots and as the figure's title.
        metrics: the panels, in order.

    Attributes:
        entries: the history entries received, in order (copies).
        summary_line: the ``ipywidgets.HTML`` holding :meth:`summary` (CSS class ``reidlab-monitor-summary``).
        output: the ``ipywidgets.Output`` holding the latest plot.

    Example:
        >>> monitor = TrainingMonitor(title="Cluster Contrast on SynthMarket")
        >>> monitor.widget()                                    # in a notebook cell
        >>> Trainer(model, dataset, config, callbacks=[monitor]).fit()
        >>> monitor.figure()                                    # the static figure of the whole run
    """

    def __init__(self, *, title: str | None = None, metrics: Sequence[str] = ("loss", "n_clusters", "mAP")) -> None:
        if isinstance(metrics, str) or not metrics or not all(isinstance(m, str) for m in metrics):
            raise ValueError(
                f"metrics must be a non-empty sequence of history keys such as {tuple(_MONITOR_PANELS)}, "
                f"got {metrics!r}"
            )
        self.title = title
        self.metrics = tuple(metrics)
        self.entries: list[dict[str, Any]] = []
        self.summary_line = ipywidgets.HTML(self.summary())
        self.summary_line.add_class(MONITOR_SUMMARY_CLASS)
        self.output = ipywidgets.Output()
        self._box: ipywidgets.Widget | None = None

    @classmethod
    def from_history(
        cls,
        history: Iterable[dict[str, Any]],
        *,
        title: str | None = None,
        metrics: Sequence[str] = ("loss", "n_clusters", "mAP"),
    ) -> TrainingMonitor:
        """A monitor holding a finished run's history (``Trainer.history`` or its ``history.json``), drawn once."""
        monitor = cls(title=title, metrics=metrics)
        for entry in history:
            monitor.entries.append(monitor._checked(entry))
        if monitor.entries:
            monitor._redraw()
        return monitor

    def __call__(self, entry: dict[str, Any]) -> None:
        """Append one epoch's history entry and redraw the output."""
        self.entries.append(self._checked(entry))
        self._redraw()

    def widget(self) -> ipywidgets.VBox:
        """The summary line above the output (under a bold title when there is one); built once."""
        if self._box is None:
            title = [] if self.title is None else [ipywidgets.HTML(f"<b>{html.escape(self.title)}</b>")]
            self._box = ipywidgets.VBox([*title, self.summary_line, self.output])
        return self._box

    def figure(self) -> Figure:
        """The whole history so far: one panel per metric, titled by the last values."""
        fig = Figure(figsize=(3.6 * len(self.metrics), 3.0), layout="constrained")
        for ax, metric in zip(fig.subplots(1, len(self.metrics), squeeze=False)[0], self.metrics):
            self._draw_panel(ax, metric)
        heading = self.summary()
        fig.suptitle(heading if self.title is None else f"{self.title}\n{heading}", fontsize=9)
        return fig

    def summary(self) -> str:
        """The latest value of every plotted series, one line.

        Example: ``epoch 5 | loss 2.31 | clusters 40 | outliers 12 | mAP 0.452 (epoch 4)``.
        """
        if not self.entries:
            return "no epoch yet"
        parts = [f"epoch {self._epochs()[-1]}"]
        for metric in self.metrics:
            for key, label in self._panel(metric)[1]:
                epochs, values = self._series(key)
                if values:
                    late = "" if epochs[-1] == self._epochs()[-1] else f" (epoch {epochs[-1]})"
                    parts.append(f"{label} {values[-1]:.4g}{late}")
        return " | ".join(parts)

    # ---- drawing ----

    @staticmethod
    def _checked(entry: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(entry, dict):
            raise TypeError(f"entry must be a dict (a Trainer history entry), got {type(entry).__name__}")
        return dict(entry)

    @staticmethod
    def _panel(metric: str) -> tuple[str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...], str]:
        return _MONITOR_PANELS.get(metric, (metric, ((metric, metric),), (), metric))

    def _epochs(self) -> list[int]:
        return [entry.get("epoch", i) for i, entry in enumerate(self.entries)]

    def _series(self, key: str) -> tuple[list[int], list[float]]:
        """(epochs, values) of the entries that hold ``key`` (evaluation keys only on evaluation epochs)."""
        pairs = [(e, entry[key]) for e, entry in zip(self._epochs(), self.entries) if entry.get(key) is not None]
        return [e for e, _ in pairs], [float(v) for _, v in pairs]

    def _draw_panel(self, ax: Axes, metric: str) -> None:
        title, left, right, ylabel = self._panel(metric)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        handles = self._plot_series(ax, left, ("-", "--"))
        top = ax  # the axes drawn last, which holds the legend
        if right:
            top = ax.twinx()
            handles += self._plot_series(top, right, (":", "-."), colours=("tab:green", "tab:red"))
            top.set_ylim(-0.05, 1.05)
            top.set_ylabel("ARI / NMI" if metric == "n_clusters" else "")
        if len(handles) > 1:
            top.legend(handles=handles, fontsize=7, loc="best")
        elif not handles:
            ax.text(0.5, 0.5, "no evaluation yet" if metric == "mAP" else f"no {metric} yet", ha="center",
                    va="center", transform=ax.transAxes, color="0.5")
        ax.xaxis.get_major_locator().set_params(integer=True)

    def _plot_series(
        self,
        ax: Axes,
        series: Sequence[tuple[str, str]],
        styles: Sequence[str],
        colours: Sequence[str] = ("tab:blue", "tab:orange"),
    ) -> list[Any]:
        handles = []
        for (key, label), style, colour in zip(series, styles, colours):
            epochs, values = self._series(key)
            if values:
                (line,) = ax.plot(epochs, values, style, marker="o", markersize=3, color=colour, label=label)
                handles.append(line)
        return handles

    def _redraw(self) -> None:
        self.summary_line.value = html.escape(self.summary())
        self.output.outputs = (png_output(self.figure()),)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(epochs={len(self.entries)}, metrics={self.metrics}, {self.summary()})"
