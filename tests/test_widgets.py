"""The eps explorer: results equal direct DBSCAN on the Jaccard distance, caching, sliders, DOM contract."""

import base64
import re

import ipywidgets
import numpy as np
import pytest
from matplotlib.figure import Figure

import reidlab.lab.embedding as embedding
from reidlab.cluster import (
    DBSCANPseudoLabeler,
    EmptyClusteringError,
    cluster_quality,
    jaccard_distance,
)
from reidlab.lab.notebook import record
from reidlab.lab.widgets import ClusteringExplorer, ClusterResult, plot_sweep


def clustered_features(n=200, n_centres=12, dim=32, noise=1.0, seed=0):
    """Unit features around random centres; noise 1.0 makes eps matter (merges above ~0.7)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_centres, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, n_centres, n)
    x = centres[labels] + rng.standard_normal((n, dim)) * noise / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


@pytest.fixture(scope="module")
def data():
    return clustered_features()


@pytest.fixture(scope="module")
def direct_distance(data):
    """Jaccard distances computed here, independently of the explorer, per (k1, k2)."""
    cache = {}

    def get(k1=30, k2=6):
        if (k1, k2) not in cache:
            cache[k1, k2] = jaccard_distance(data[0], k1=k1, k2=k2)
        return cache[k1, k2]

    return get


def make_explorer(data, **kwargs):
    x, labels = data
    return ClusteringExplorer(x, true_labels=labels, coords=x[:, :2], **kwargs)


def summary_count(explorer):
    match = re.match(r"clusters: (\d+) \| outliers: (\d+)", explorer.summary.value)
    assert match, explorer.summary.value
    return int(match[1]), int(match[2])


def test_dom_contract(data):
    explorer = make_explorer(data)
    box = explorer.widget()
    assert isinstance(box, ipywidgets.VBox) and explorer.widget() is box
    assert "reidlab-cluster-summary" in explorer.summary._dom_classes
    assert "reidlab-eps-slider" in explorer.eps_slider._dom_classes
    assert isinstance(explorer.summary, ipywidgets.HTML) and isinstance(explorer.plot_output, ipywidgets.Output)
    assert explorer.summary.value.startswith(f"clusters: {explorer.result_.n_clusters} | ")
    slider = explorer.eps_slider
    assert (slider.min, slider.max, slider.step, slider.value) == (0.30, 0.90, 0.01, 0.6)
    assert (explorer.min_samples_slider.min, explorer.min_samples_slider.max) == (2, 10)
    assert (explorer.k1_slider.min, explorer.k1_slider.max) == (10, 40)
    assert (explorer.k2_slider.min, explorer.k2_slider.max) == (1, 10)
    assert not any(s.continuous_update for s in (explorer.min_samples_slider, explorer.k1_slider, explorer.k2_slider))
    # the scatter is a PNG in the output widget
    (output,) = explorer.plot_output.outputs
    assert base64.b64decode(output["data"]["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"


def test_eps_slider_reclusters_without_new_jaccard(data, direct_distance):
    _, true_labels = data
    explorer = make_explorer(data)
    explorer.widget()
    assert explorer.n_jaccard_computations_ == 1 and explorer.n_dbscan_computations_ == 1
    counts = set()
    for step, eps in enumerate([0.45, 0.7, 0.8], start=2):
        explorer.eps_slider.value = eps
        expected = DBSCANPseudoLabeler(eps=eps, min_samples=4).fit(direct_distance())
        result = explorer.result_
        np.testing.assert_array_equal(result.labels, expected.labels_)
        assert (result.n_clusters, result.n_outliers) == (expected.n_clusters_, expected.n_outliers_)
        assert summary_count(explorer) == (expected.n_clusters_, expected.n_outliers_)
        assert result.quality == cluster_quality(expected.labels_, true_labels)
        assert f"ARI {result.quality.ari:.3f}" in explorer.summary.value
        assert explorer.eps == eps and result.params == {"eps": eps, "min_samples": 4, "k1": 30, "k2": 6}
        assert explorer.n_jaccard_computations_ == 1 and explorer.n_dbscan_computations_ == step
        counts.add(result.n_clusters)
    assert len(counts) == 3  # the features make eps matter
    explorer.eps_slider.value = 0.45  # seen before: no DBSCAN either
    assert explorer.n_dbscan_computations_ == 4 and summary_count(explorer)[0] in counts


def test_k1_k2_change_computes_jaccard_once_per_pair(data, direct_distance):
    explorer = make_explorer(data)
    explorer.widget()
    explorer.k1_slider.value = 20
    assert explorer.n_jaccard_computations_ == 2
    expected = DBSCANPseudoLabeler(eps=0.6).fit(direct_distance(20, 6))
    np.testing.assert_array_equal(explorer.result_.labels, expected.labels_)
    assert summary_count(explorer)[0] == expected.n_clusters_
    explorer.eps_slider.value = 0.75
    assert explorer.n_jaccard_computations_ == 2
    explorer.k1_slider.value = 30  # back to an old (k1, k2): cached
    assert explorer.n_jaccard_computations_ == 2
    expected = DBSCANPseudoLabeler(eps=0.75).fit(direct_distance(30, 6))
    np.testing.assert_array_equal(explorer.result_.labels, expected.labels_)
    explorer.k2_slider.value = 3
    assert explorer.n_jaccard_computations_ == 3
    expected = DBSCANPseudoLabeler(eps=0.75).fit(direct_distance(30, 3))
    np.testing.assert_array_equal(explorer.result_.labels, expected.labels_)
    assert explorer.result_.params == {"eps": 0.75, "min_samples": 4, "k1": 30, "k2": 3}


def test_min_samples_slider(data, direct_distance):
    explorer = make_explorer(data, eps=0.45)
    explorer.widget()
    explorer.min_samples_slider.value = 9
    expected = DBSCANPseudoLabeler(eps=0.45, min_samples=9).fit(direct_distance())
    np.testing.assert_array_equal(explorer.result_.labels, expected.labels_)
    assert summary_count(explorer) == (expected.n_clusters_, expected.n_outliers_)
    assert "min_samples 9" in explorer.summary.value and explorer.n_jaccard_computations_ == 1


def test_eps_without_cluster_shows_the_error(data):
    x = np.random.default_rng(1).standard_normal((200, 32)).astype(np.float32)  # no structure
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    explorer = ClusteringExplorer(x, true_labels=data[1], coords=x[:, :2], eps=0.5)
    explorer.widget()
    assert explorer.result_.n_clusters >= 1
    explorer.eps_slider.value = 0.30
    with pytest.raises(EmptyClusteringError) as error:
        DBSCANPseudoLabeler(eps=0.30).fit(jaccard_distance(x))
    result = explorer.result_
    assert (result.n_clusters, result.n_outliers) == (0, 200) and (result.labels == -1).all()
    assert result.message == str(error.value)
    assert explorer.summary.value.startswith("clusters: 0 | outliers: 200 | no cluster: DBSCAN with eps=0.3")
    assert "formed no cluster" in explorer.summary.value and len(explorer.plot_output.outputs) == 1
    assert isinstance(explorer.static_figure(), Figure)


def test_sweep_equals_direct_computations(data, direct_distance):
    _, true_labels = data
    explorer = make_explorer(data)
    eps_values = [0.3, 0.5, 0.7, 0.85]
    rows = explorer.sweep(eps_values, min_samples=5)
    assert explorer.n_jaccard_computations_ == 1 and explorer.result_ is None
    for row, eps in zip(rows, eps_values):
        expected = DBSCANPseudoLabeler(eps=eps, min_samples=5).fit(direct_distance())
        quality = cluster_quality(expected.labels_, true_labels)
        assert row["eps"] == eps and row["min_samples"] == 5 and (row["k1"], row["k2"]) == (30, 6)
        assert (row["n_clusters"], row["n_outliers"]) == (expected.n_clusters_, expected.n_outliers_)
        assert (row["ari"], row["nmi"], row["purity"]) == (quality.ari, quality.nmi, quality.purity)
    fig = plot_sweep(rows, mark_eps=0.6)
    clusters_ax, ari_ax = fig.axes
    np.testing.assert_array_equal(clusters_ax.lines[0].get_xdata(), eps_values)
    np.testing.assert_array_equal(clusters_ax.lines[0].get_ydata(), [r["n_clusters"] for r in rows])
    np.testing.assert_array_equal(ari_ax.lines[0].get_ydata(), [r["ari"] for r in rows])
    with pytest.raises(ValueError, match="rows is empty"):
        plot_sweep([])


def test_cluster_without_widgets_and_record(data):
    x, _ = data
    explorer = ClusteringExplorer(x, embedding=None)  # no true labels, no scatter
    result = explorer.cluster(eps=0.5)
    assert isinstance(result, ClusterResult) and result.quality is None
    assert explorer.cluster(eps=0.5000000001) is result  # slider float noise hits the cache
    assert result.as_dict() == {
        "eps": 0.5, "min_samples": 4, "k1": 30, "k2": 6,
        "n_clusters": result.n_clusters, "n_outliers": result.n_outliers,
    }
    assert explorer.eps == 0.6 and explorer.coordinates() is None  # cluster() leaves the setting alone
    record(**result.as_dict())  # JSON-like: record() accepts it
    fig = explorer.static_figure()  # no scatter: cluster sizes
    assert fig.get_suptitle() == explorer.result_.summary() and explorer.result_.params["eps"] == 0.6
    labels = explorer.result_.labels
    assert sorted(p.get_height() for p in fig.axes[0].patches) == sorted(np.bincount(labels[labels >= 0]))


def test_static_figure_shows_truth_and_pseudo_labels(data):
    explorer = make_explorer(data, eps=0.7)
    fig = explorer.static_figure()
    assert [ax.get_title() for ax in fig.axes] == ["true identities", "pseudo-labels"]
    assert fig.get_suptitle().startswith(f"clusters: {explorer.result_.n_clusters} | ")
    assert len(explorer.static_figure(truth=False).axes) == 1


def test_embedding_is_computed_once(data, monkeypatch):
    calls = []

    def fake_embed_2d(features, *, embedding, seed, **kwargs):
        calls.append(embedding)
        return features[:, :2].astype(np.float64)

    monkeypatch.setattr(embedding, "embed_2d", fake_embed_2d)
    explorer = ClusteringExplorer(data[0], embedding="umap", seed=2)
    explorer.widget()
    for eps in (0.5, 0.55, 0.65):
        explorer.eps_slider.value = eps
    explorer.static_figure()
    assert calls == ["umap"]


def test_constructor_checks_shapes(data):
    x, labels = data
    with pytest.raises(ValueError, match=r"true_labels must have shape \(200,\) like the features, got \(199,\)"):
        ClusteringExplorer(x, true_labels=labels[:-1])
    with pytest.raises(ValueError, match=r"coords must have shape \(200, 2\), got \(200, 3\)"):
        ClusteringExplorer(x, coords=x[:, :3])
    with pytest.raises(ValueError, match=r"embedding must be one of \('tsne', 'umap'\) or None, got 'pca'"):
        ClusteringExplorer(x, embedding="pca")
    with pytest.raises(ValueError, match="eps must be < 1 with a sparse distance"):
        ClusteringExplorer(x).cluster(eps=1.2)
