"""TrainingMonitor: a Trainer callback that keeps the history and redraws its panels into an Output."""

import base64

import ipywidgets
import numpy as np
import pytest
from matplotlib.figure import Figure

from reidlab.lab.widgets import TrainingMonitor


def fake_history(epochs=5, eval_every=2):
    """Entries shaped like Trainer.fit's: mAP, Rank-k and mINP only on evaluation epochs."""
    history = []
    for epoch in range(epochs):
        entry = {
            "epoch": epoch, "loss": 4.0 - 0.5 * epoch, "n_clusters": 10 + epoch, "n_outliers": 20 - 2 * epoch,
            "ari": 0.2 + 0.1 * epoch, "nmi": 0.5 + 0.05 * epoch, "memory_rows": 10 + epoch, "lr": 3.5e-4,
            "seconds": 1.5,
        }
        if (epoch + 1) % eval_every == 0 or epoch + 1 == epochs:
            entry.update(mAP=0.1 * epoch, rank1=0.2 + 0.1 * epoch, rank5=0.5, rank10=0.6, mINP=0.05)
        history.append(entry)
    return history


def line_data(ax):
    """{legend label: (x, y)} of the plotted lines of an axes."""
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()}


def test_calls_append_entries_and_redraw_the_output():
    monitor = TrainingMonitor()
    assert monitor.entries == [] and monitor.output.outputs == ()
    history = fake_history()
    for k, entry in enumerate(history, start=1):
        monitor(entry)
        assert monitor.entries == history[:k] and monitor.entries[-1] is not entry  # a copy
        (output,) = monitor.output.outputs
        assert base64.b64decode(output["data"]["image/png"]).startswith(b"\x89PNG")
    assert monitor.summary() == "epoch 4 | loss 2 | clusters 14 | outliers 12 | mAP 0.4 | Rank-1 0.6"
    monitor(dict(history[0], epoch=5))  # a non-evaluation epoch: the last mAP is dated
    assert monitor.summary().endswith("mAP 0.4 (epoch 4) | Rank-1 0.6 (epoch 4)")


def test_figure_has_the_expected_panels_and_series():
    monitor = TrainingMonitor.from_history(fake_history(), title="run")
    fig = monitor.figure()
    assert isinstance(fig, Figure)
    loss_ax, cluster_ax, eval_ax, twin = fig.axes  # the pseudo-label panel has a twin axis for ARI / NMI
    assert [ax.get_title() for ax in (loss_ax, cluster_ax, eval_ax)] == ["training loss", "pseudo-labels", "evaluation"]
    assert line_data(loss_ax) == {"loss": ([0, 1, 2, 3, 4], [4.0, 3.5, 3.0, 2.5, 2.0])}
    assert line_data(cluster_ax)["clusters"] == ([0, 1, 2, 3, 4], [10, 11, 12, 13, 14])
    assert line_data(cluster_ax)["outliers"][1] == [20, 18, 16, 14, 12]
    np.testing.assert_allclose(line_data(twin)["ARI"][1], [0.2, 0.3, 0.4, 0.5, 0.6])
    assert set(line_data(twin)) == {"ARI", "NMI"}
    evaluation = line_data(eval_ax)
    assert evaluation["mAP"][0] == [1, 3, 4]  # evaluation epochs only
    np.testing.assert_allclose(evaluation["Rank-1"][1], [0.3, 0.5, 0.6])
    assert fig.get_suptitle().startswith("run\nepoch 4")
    assert len(monitor.output.outputs) == 1  # from_history drew once


def test_widget_title_metrics_and_empty_state():
    monitor = TrainingMonitor(title="Cluster Contrast <tiny>", metrics=("lr", "mAP"))
    box = monitor.widget()
    assert isinstance(box, ipywidgets.VBox) and monitor.widget() is box
    assert box.children[1:] == (monitor.summary_line, monitor.output)
    assert "Cluster Contrast &lt;tiny&gt;" in box.children[0].value
    assert "reidlab-monitor-summary" in monitor.summary_line._dom_classes
    assert monitor.summary_line.value == "no epoch yet"
    untitled = TrainingMonitor()
    assert untitled.widget().children == (untitled.summary_line, untitled.output)
    fig = monitor.figure()  # nothing yet: placeholders, no lines
    assert [ax.get_title() for ax in fig.axes] == ["lr", "evaluation"]
    assert [t.get_text() for t in fig.axes[1].texts] == ["no evaluation yet"]
    monitor(fake_history(1)[0] | {"mAP": None})
    assert line_data(monitor.figure().axes[0]) == {"lr": ([0], [3.5e-4])}
    # The line follows every epoch, as text (HTML-escaped).
    assert monitor.summary_line.value == monitor.summary() == "epoch 0 | lr 0.00035 | Rank-1 0.2"


def test_errors():
    with pytest.raises(ValueError, match="metrics must be a non-empty sequence of history keys"):
        TrainingMonitor(metrics="loss")
    with pytest.raises(ValueError, match="metrics must be a non-empty sequence"):
        TrainingMonitor(metrics=())
    with pytest.raises(TypeError, match="entry must be a dict .a Trainer history entry., got list"):
        TrainingMonitor()([1.0])
