"""Training curves over seeds: which epochs count, the mean / spread, and the figure."""

from __future__ import annotations

import numpy as np
import pytest

from reidlab.lab.curves import curve, plot_training_curves, summarise_runs


def _history(maps, aris):
    return [{"epoch": e, "ari": a, "n_clusters": 10 + e, **({"mAP": m} if m is not None else {})}
            for e, (m, a) in enumerate(zip(maps, aris))]


def test_curve_keeps_epochs_every_seed_evaluated_and_summary_spans_the_seeds():
    seeds = [_history([None, 0.2, None, 0.4], [0.1, 0.2, 0.3, 0.4]),
             _history([None, 0.1, 0.3, 0.6], [0.3, 0.2, 0.1, 0.0])]
    epochs, values = curve(seeds, "mAP")
    np.testing.assert_array_equal(epochs, [2, 4])  # 1-based; epoch 3 only one seed evaluated
    np.testing.assert_allclose(values, [[0.2, 0.4], [0.1, 0.6]])
    epochs, values = curve(seeds[0], "ari")  # one history is one seed
    assert values.shape == (1, 4)
    summary = summarise_runs({"a": seeds, "b": seeds[0]})
    assert summary["a"] == pytest.approx({"mean": 0.5, "min": 0.4, "max": 0.6, "seeds": 2})
    assert summary["b"]["seeds"] == 1 and summary["b"]["mean"] == pytest.approx(0.4)


def test_figure_draws_start_ceiling_and_a_band_per_multi_seed_method():
    seeds = [_history([0.1, 0.2], [0.1, 0.2]), _history([0.2, 0.3], [0.2, 0.3])]
    fig = plot_training_curves({"cc": seeds, "spcl": seeds[0]}, start=0.05, ceiling=0.5)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["cc (2 seeds)", "spcl", "start model 5.0", "supervised ceiling 50.0"]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [15.0, 25.0])
    assert len(ax.collections) == 1  # one spread band: only cc has several seeds
    assert fig._repr_png_()[:4] == b"\x89PNG"
