"""2-D embeddings: t-SNE/UMAP settings and determinism, the cache, the scatter's colours and outliers."""

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.markers import MarkerStyle

import reidlab.lab.embedding as embedding
from reidlab.lab.embedding import (
    EmbeddingCache,
    embed_2d,
    plot_embedding,
    plot_embeddings,
)
from reidlab.lab.palette import identity_colours


def clustered_features(n=80, n_centres=6, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_centres, dim))
    labels = np.arange(n) % n_centres
    return (centres[labels] + 0.3 * rng.standard_normal((n, dim))).astype(np.float32), labels


def nearest_neighbour_agreement(coords, labels):
    """Fraction of points whose nearest other point in ``coords`` has the same label."""
    d = ((coords[:, None] - coords[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return float((labels[d.argmin(1)] == labels).mean())


class FakeTSNE:
    """Records its options and the data it embeds; returns the first two columns."""

    calls = []

    def __init__(self, **options):
        self.options = options

    def fit_transform(self, x):
        FakeTSNE.calls.append((self.options, x))
        return x[:, :2]


def test_tsne_is_deterministic_and_keeps_clusters():
    x, labels = clustered_features()
    coords = embed_2d(x, embedding="tsne", seed=0, max_iter=300)
    assert coords.shape == (80, 2) and coords.dtype == np.float64
    np.testing.assert_array_equal(coords, embed_2d(torch.from_numpy(x), embedding="tsne", seed=0, max_iter=300))
    assert nearest_neighbour_agreement(coords, labels) >= 0.95


def test_tsne_defaults_normalise_rows_and_take_overrides(monkeypatch):
    monkeypatch.setattr("sklearn.manifold.TSNE", FakeTSNE)
    FakeTSNE.calls.clear()
    x, _ = clustered_features(n=40)
    embed_2d(x * 7.0, seed=3)
    options, data = FakeTSNE.calls[-1]
    assert options == {"n_components": 2, "perplexity": 13.0, "init": "pca", "random_state": 3}
    np.testing.assert_allclose(np.linalg.norm(data, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(data, x / np.linalg.norm(x, axis=1, keepdims=True), rtol=1e-6)
    embed_2d(clustered_features(n=200)[0])
    assert FakeTSNE.calls[-1][0]["perplexity"] == 30.0  # min(30, (N - 1) / 3)
    embed_2d(x, perplexity=5, max_iter=300)
    assert FakeTSNE.calls[-1][0]["perplexity"] == 5 and FakeTSNE.calls[-1][0]["max_iter"] == 300


def test_umap_is_deterministic_and_keeps_clusters():
    # The only UMAP test: the first call compiles numba code (seconds).
    x, labels = clustered_features()
    coords = embed_2d(x, embedding="umap", seed=1)
    assert coords.shape == (80, 2) and np.isfinite(coords).all()
    np.testing.assert_array_equal(coords, embed_2d(x, embedding="umap", seed=1))
    assert nearest_neighbour_agreement(coords, labels) >= 0.95


def test_embed_2d_errors():
    x, _ = clustered_features(n=10)
    with pytest.raises(ValueError, match=r"embedding must be one of \('tsne', 'umap'\), got 'pca'"):
        embed_2d(x, embedding="pca")
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf in 1 of 10 rows \(first: row 3\)"):
        embed_2d(bad)
    with pytest.raises(ValueError, match="at least 5 samples to embed, got N=4"):
        embed_2d(x[:4])
    with pytest.raises(ValueError, match="D >= 2"):
        embed_2d(x[:, :1])
    zero = x.copy()
    zero[2] = 0
    with pytest.raises(ValueError, match="1 all-zero rows"):
        embed_2d(zero)
    with pytest.raises(ValueError, match="2-D"):
        embed_2d(x[0])


def test_cache_computes_each_embedding_once(monkeypatch):
    calls = []

    def fake_embed_2d(features, *, embedding, seed, **kwargs):
        calls.append((embedding, seed, kwargs))
        return np.full((features.shape[0], 2), float(len(calls)))

    monkeypatch.setattr(embedding, "embed_2d", fake_embed_2d)
    x, _ = clustered_features(n=20)
    cache = EmbeddingCache(x, seed=4)
    assert "tsne" not in cache
    first = cache.get("tsne")
    first[:] = -1  # a copy: the cache is not changed
    np.testing.assert_array_equal(cache.get("tsne"), np.ones((20, 2)))
    assert "tsne" in cache and cache.n_computed_ == 1
    cache.get("umap")
    cache.get("umap")
    cache.get("tsne", perplexity=5)
    assert calls == [("tsne", 4, {}), ("umap", 4, {}), ("tsne", 4, {"perplexity": 5})]
    assert cache.n_computed_ == 3


def test_cache_checks_features_at_construction():
    with pytest.raises(ValueError, match="NaN or inf"):
        EmbeddingCache(np.full((10, 3), np.inf))


def test_outliers_get_the_outlier_style():
    rng = np.random.default_rng(0)
    coords = rng.standard_normal((30, 2))
    labels = np.arange(30) % 4 - 1  # -1, 0, 1, 2
    fig = plot_embedding(coords, labels, title="pseudo-labels")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    collections = {c.get_gid(): c for c in ax.collections}
    assert set(collections) == {"outliers", "labelled"}
    outliers, labelled = collections["outliers"], collections["labelled"]
    np.testing.assert_array_equal(outliers.get_offsets(), coords[labels == -1])
    np.testing.assert_array_equal(labelled.get_offsets(), coords[labels >= 0])
    np.testing.assert_allclose(outliers.get_edgecolor()[0], to_rgba("0.6"))
    cross = MarkerStyle("x")
    np.testing.assert_allclose(
        outliers.get_paths()[0].vertices, cross.get_path().transformed(cross.get_transform()).vertices
    )
    assert outliers.get_sizes()[0] == pytest.approx(6.0) and labelled.get_sizes()[0] == 8
    assert outliers.get_zorder() < labelled.get_zorder()
    assert ax.get_title() == "pseudo-labels"
    # no outlier label: everything is labelled
    fig = plot_embedding(coords, labels, outlier_label=None)
    assert [c.get_gid() for c in fig.axes[0].collections] == ["labelled"]


def test_colours_are_deterministic_per_label():
    palette = identity_colours(20)
    coords = np.zeros((25, 2))
    labels = np.arange(25)[::-1]
    colours = plot_embedding(coords, labels).axes[0].collections[0].get_facecolor()
    # pseudo-labels 0..C-1 get colour label mod 20, so labels 20..24 repeat 0..4
    np.testing.assert_allclose(colours, palette[labels % 20])
    # arbitrary label values: colour by rank among the sorted labels
    pids = np.array([507, 3, 3, 88, 507])
    colours = plot_embedding(np.zeros((5, 2)), pids).axes[0].collections[0].get_facecolor()
    np.testing.assert_allclose(colours, palette[[2, 0, 0, 1, 2]])


def test_palette_has_no_grey_and_checks_its_size():
    palette = identity_colours(54)
    assert len(palette) == 54 and len({tuple(c) for c in palette}) == 54
    assert (np.ptp(palette[:, :3], axis=1) > 0.05).all()
    with pytest.raises(ValueError, match="max_colours must be between 1 and 54, got 55"):
        identity_colours(55)


def test_plot_into_given_axes_with_legend():
    fig = Figure()
    ax = fig.add_subplot()
    labels = torch.tensor([0, 1, 2, -1, 0, 1])
    assert plot_embedding(np.zeros((6, 2)), labels, ax=ax, legend=True, max_colours=2) is fig
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["0", "1", "+1 more (colours repeat)", "outliers (-1)"]
    with pytest.raises(ValueError, match=r"need coords \(N, 2\) and labels \(N,\), got shapes \(6, 2\) and \(5,\)"):
        plot_embedding(np.zeros((6, 2)), labels[:5])


def test_plot_embeddings_side_by_side():
    coords = np.random.default_rng(0).standard_normal((12, 2))
    truth, pseudo = np.arange(12) // 3, np.where(np.arange(12) < 9, np.arange(12) // 3, -1)
    fig = plot_embeddings(coords, {"ground truth": truth, "pseudo-labels": pseudo})
    assert [ax.get_title() for ax in fig.axes] == ["ground truth", "pseudo-labels"]
    assert [len(ax.collections) for ax in fig.axes] == [1, 2]
    with pytest.raises(ValueError, match="at least one labelling"):
        plot_embeddings(coords, {})


def test_camera_colours_and_camera_proxies():
    from reidlab.lab.palette import camera_colours

    rng = np.random.default_rng(0)
    coords = rng.normal(size=(12, 2))
    cameras = np.array([0, 1, 2] * 4)
    fig = plot_embedding(coords, cameras + 1, outlier_label=None, colours=camera_colours(3), legend=True)
    scatter = next(c for c in fig.axes[0].collections if c.get_gid() == "labelled")
    assert np.allclose(scatter.get_facecolors(), camera_colours(3)[cameras])  # camera c gets colour c
    labels = np.repeat([0, 1], 6)
    proxy_labels, proxy_cameras = np.array([0, 0, 0, 1, 1, 1]), np.array([0, 1, 2, 0, 1, 2])
    fig = embedding.plot_camera_proxies(coords, labels, cameras, rng.normal(size=(6, 2)), proxy_labels, proxy_cameras)
    ax = fig.axes[0]
    assert len(ax.lines) == 12  # every image joined to its (cluster, camera) proxy
    assert [t.get_text() for t in ax.texts] == ["0", "0", "0", "1", "1", "1"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["camera 1", "camera 2", "camera 3",
                                                                    "proxy (cluster id beside)"]
    with pytest.raises(ValueError, match="need coords"):
        embedding.plot_camera_proxies(coords[:3], labels, cameras, coords[:6], proxy_labels, proxy_cameras)
