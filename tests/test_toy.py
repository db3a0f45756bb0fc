"""The 2-D toy: data, one update of each real memory, HHCL's pulls (autograd vs finite differences), widgets."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from reidlab.lab.toy import (
    MEMORY_KINDS,
    MemoryToy,
    MuToy,
    plot_memory_update,
    plot_query_pull,
    plot_row_softmax,
    query_pull,
    row_softmax,
    toy_batch,
    toy_clusters,
    toy_update_step,
)
from reidlab.memory import ClusterMemory, HardHybridMemory, HybridMemory


@pytest.fixture(scope="module")
def toy():
    features, labels = toy_clusters(4, 12, seed=3)
    return features, labels, toy_batch(labels, num_classes=3, per_class=4, seed=1)


def normalise(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def angle_between(a, b):
    return float(np.arccos(np.clip(np.dot(a, b), -1.0, 1.0)))


# ---- data


def test_toy_clusters_unit_rows_deterministic():
    features, labels = toy_clusters(5, 7, spread=0.2, seed=1)
    assert features.shape == (35, 2) and features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(labels, np.repeat(np.arange(5), 7))
    again, _ = toy_clusters(5, 7, spread=0.2, seed=1)
    np.testing.assert_array_equal(features, again)
    assert not np.allclose(features, toy_clusters(5, 7, spread=0.2, seed=2)[0])
    # Each cluster sits around its own angle, the centres evenly spaced (2 pi / 5 apart).
    means = normalise(np.stack([features[labels == c].mean(0) for c in range(5)]))
    gaps = sorted(angle_between(means[i], means[j]) for i in range(5) for j in range(i + 1, 5))[:5]
    np.testing.assert_allclose(gaps, 2 * np.pi / 5, atol=0.25)
    still, _ = toy_clusters(3, 4, spread=0.0)  # no noise: a cluster is one point
    np.testing.assert_allclose(still[:4], np.repeat(still[:1], 4, axis=0))


def test_toy_clusters_errors():
    with pytest.raises(ValueError, match="n_clusters must be a positive integer, got 0"):
        toy_clusters(0)
    with pytest.raises(ValueError, match="spread must be >= 0"):
        toy_clusters(spread=-0.1)


def test_toy_batch_is_p_by_k(toy):
    _, labels, _ = toy
    batch = toy_batch(labels, num_classes=3, per_class=4, seed=5)
    assert batch.shape == (12,) and len(set(batch.tolist())) == 12
    assert sorted(np.bincount(labels[batch], minlength=4).tolist()) == [0, 4, 4, 4]
    np.testing.assert_array_equal(batch, toy_batch(labels, num_classes=3, per_class=4, seed=5))
    with pytest.raises(ValueError, match=r"num_classes must be in \[1, 4\]"):
        toy_batch(labels, num_classes=5)


# ---- one memory update


def test_mean_update_equals_cluster_memory_and_naive_loop(toy):
    features, labels, batch_idx = toy
    step = toy_update_step("mean", features, labels, batch_idx, momentum=0.3, temperature=0.05, seed=2)
    memory = ClusterMemory.from_labels(features, labels, momentum=0.3, update="mean")
    np.testing.assert_allclose(step["rows_before"], memory.centroids.numpy())
    memory.update(torch.from_numpy(step["batch"]), torch.from_numpy(step["batch_labels"]))
    np.testing.assert_allclose(step["rows_after"], memory.centroids.numpy(), atol=1e-6)
    # Naive: sequential c <- m c + (1 - m) x, re-normalised (docs/methods.md, section 4.2).
    rows = step["rows_before"].astype(np.float64)
    for x, y in zip(step["batch"], step["batch_labels"]):
        rows[y] = normalise(0.3 * rows[y] + 0.7 * x)
    np.testing.assert_allclose(step["rows_after"], rows, atol=1e-5)
    np.testing.assert_array_equal(step["moved"], np.isin(np.arange(4), labels[batch_idx]))
    np.testing.assert_array_equal(step["rows_after"][~step["moved"]], step["rows_before"][~step["moved"]])
    # The batch: the stored features with noise, re-normalised; noise 0 gives them exactly.
    np.testing.assert_allclose(np.linalg.norm(step["batch"], axis=1), 1.0, atol=1e-6)
    exact = toy_update_step("mean", features, labels, batch_idx, momentum=0.3, temperature=0.05, batch_noise=0.0)
    np.testing.assert_allclose(exact["batch"], features[batch_idx], atol=1e-6)


def test_hard_update_uses_least_similar_sample(toy):
    features, labels, batch_idx = toy
    step = toy_update_step("hard", features, labels, batch_idx, momentum=0.2, temperature=0.05, seed=4)
    batch, batch_labels, before = step["batch"], step["batch_labels"], step["rows_before"]
    expected, rows = [], before.astype(np.float64)
    for c in np.unique(batch_labels):
        positions = np.flatnonzero(batch_labels == c)
        hardest = positions[np.argmin(batch[positions] @ before[c])]
        expected.append(hardest)
        rows[c] = normalise(0.2 * before[c] + 0.8 * batch[hardest])
    np.testing.assert_array_equal(step["hardest"], expected)
    np.testing.assert_allclose(step["rows_after"], rows, atol=1e-5)
    memory = ClusterMemory.from_labels(features, labels, momentum=0.2, update="hard")
    memory.update(torch.from_numpy(batch), torch.from_numpy(batch_labels))
    np.testing.assert_allclose(step["rows_after"], memory.centroids.numpy(), atol=1e-6)
    # The plot rings exactly the hardest samples.
    ax = plot_memory_update(step).axes[0]
    (rings,) = [c for c in ax.collections if c.get_label() == "hardest positive (used)"]
    np.testing.assert_allclose(rings.get_offsets(), batch[expected])


def test_hybrid_update_equals_hhcl_memory(toy):
    features, labels, batch_idx = toy
    step = toy_update_step("hybrid", features, labels, batch_idx, momentum=0.1, temperature=0.05, seed=7)
    memory = HardHybridMemory.from_labels(features, labels, num_instances=4, seed=7, momentum=0.1)
    np.testing.assert_allclose(step["slots_before"], memory.instances.numpy())
    np.testing.assert_array_equal(step["slot_indexes_before"], memory.slot_indexes.numpy())
    memory.update(
        torch.from_numpy(step["batch"]), torch.from_numpy(step["batch_labels"]), indexes=torch.from_numpy(batch_idx)
    )
    np.testing.assert_allclose(step["rows_after"], memory.centroids.numpy(), atol=1e-6)
    np.testing.assert_allclose(step["slots_after"], memory.instances.numpy())
    # Naive: Eq. 4 (class batch mean with momentum) and Eq. 8 (slots overwritten in batch order).
    for c in np.unique(step["batch_labels"]):
        own = step["batch"][step["batch_labels"] == c]
        np.testing.assert_allclose(
            step["rows_after"][c], normalise(0.1 * step["rows_before"][c] + 0.9 * own.mean(0)), atol=1e-5
        )
        np.testing.assert_allclose(step["slots_after"][c], own)
        np.testing.assert_array_equal(step["slot_indexes_after"][c], batch_idx[labels[batch_idx] == c])
    assert isinstance(plot_memory_update(step), Figure)


def test_instance_update_moves_only_the_batch_rows(toy):
    features, labels, batch_idx = toy
    step = toy_update_step("instance", features, labels, batch_idx, momentum=0.2, temperature=0.05, seed=1)
    assert isinstance(step["memory"], HybridMemory)
    np.testing.assert_allclose(step["rows_before"], features, atol=1e-6)
    expected = step["rows_before"].astype(np.float64)
    expected[batch_idx] = normalise(0.2 * expected[batch_idx] + 0.8 * step["batch"])
    np.testing.assert_allclose(step["rows_after"], expected, atol=1e-5)
    np.testing.assert_array_equal(np.flatnonzero(step["moved"]), np.sort(batch_idx))
    np.testing.assert_array_equal(step["row_labels"], labels)


def test_update_step_errors(toy):
    features, labels, batch_idx = toy
    kinds = r"\('mean', 'hard', 'hybrid', 'instance'\)"
    with pytest.raises(ValueError, match=rf"memory_kind must be one of {kinds}, got 'avg'"):
        toy_update_step("avg", features, labels, batch_idx, momentum=0.1, temperature=0.05)
    with pytest.raises(ValueError, match=r"batch_idx must be a non-empty \(B,\) array of indices in \[0, 48\)"):
        toy_update_step("mean", features, labels, [48], momentum=0.1, temperature=0.05)
    outliers = labels.copy()
    outliers[batch_idx[0]] = -1
    with pytest.raises(ValueError, match="clustered samples"):
        toy_update_step("hard", features, outliers, batch_idx, momentum=0.1, temperature=0.05)


def test_row_softmax_is_the_temperature_softmax(toy):
    features, labels, batch_idx = toy
    peaked, flat = (
        toy_update_step("mean", features, labels, batch_idx, momentum=0.1, temperature=tau) for tau in (0.05, 1.0)
    )
    logits = peaked["rows_before"].astype(np.float64) @ peaked["batch"][2] / 0.05
    naive = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(row_softmax(peaked, sample=2), naive, rtol=1e-5)
    assert row_softmax(peaked).max() > row_softmax(flat).max()
    np.testing.assert_allclose(row_softmax(flat).sum(), 1.0)
    assert len(plot_row_softmax(flat).axes[0].patches) == 4
    with pytest.raises(ValueError, match=r"sample must be in \[0, 12\)"):
        row_softmax(flat, sample=12)


# ---- HHCL's pull on a query


@pytest.fixture(scope="module")
def hhcl():
    features, labels = toy_clusters(4, 10, spread=0.3, seed=0)
    memory = HardHybridMemory.from_labels(torch.from_numpy(features).double(), labels, num_instances=4, seed=0)
    # A query of cluster 0 two thirds of the way to cluster 1, where both terms have a sizeable gradient.
    centroids = memory.centroids.numpy()
    return memory, normalise(centroids[0] + 2 * centroids[1]), 0


def finite_difference(f, q, h=1e-6):
    return np.array([(f(q + h * e) - f(q - h * e)) / (2 * h) for e in np.eye(q.size)])


def test_query_pull_equals_finite_differences(hhcl):
    memory, query, target = hhcl
    t = torch.tensor([target])

    def loss(q, mu):
        x = torch.from_numpy(q)[None]
        return float(mu * memory.cluster_loss(x, t) + (1 - mu) * memory.instance_loss(x, t))

    grads = query_pull(memory, query, target, mu=0.5)
    assert np.linalg.norm(grads["grad_cls"]) > 1 and np.linalg.norm(grads["grad_ins"]) > 1
    for mu in (0.0, 0.3, 1.0):
        pull = query_pull(memory, query, target, mu=mu)
        np.testing.assert_allclose(-pull["pull_total"], finite_difference(lambda q: loss(q, mu), query), atol=1e-5)
        np.testing.assert_allclose(pull["pull_total"], pull["pull_cls"] + pull["pull_ins"])
        np.testing.assert_allclose(pull["loss"], loss(query, mu), rtol=1e-10)
    # ClusterNCE's gradient in closed form: (sum_c p_c c - c_y) / tau.
    centroids = memory.centroids.numpy()
    logits = centroids @ query / 0.05
    p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    expected = (p @ centroids - centroids[target]) / 0.05
    np.testing.assert_allclose(query_pull(memory, query, target, mu=0.5)["grad_cls"], expected)


def test_query_pull_mu_extremes_and_mining(hhcl):
    memory, query, target = hhcl
    only_cls, only_ins = query_pull(memory, query, target, mu=1.0), query_pull(memory, query, target, mu=0.0)
    np.testing.assert_array_equal(only_cls["pull_ins"], 0.0)
    np.testing.assert_array_equal(only_ins["pull_cls"], 0.0)
    assert np.linalg.norm(only_cls["pull_cls"]) > 0 and np.linalg.norm(only_ins["pull_ins"]) > 0
    np.testing.assert_allclose(query_pull(memory, query, target, mu=0.25)["pull_cls"], 0.25 * only_cls["pull_cls"])
    # Eq. 6: own slot with the lowest similarity; Eq. 7: every other class's slot with the highest.
    slots = memory.instances.numpy()
    assert only_cls["positive_slot"] == np.argmin(slots[target] @ query)
    others = [c for c in range(4) if c != target]
    np.testing.assert_array_equal(only_cls["negative_classes"], others)
    np.testing.assert_array_equal(only_cls["negative_slots"], [np.argmax(slots[c] @ query) for c in others])
    np.testing.assert_allclose(only_cls["hardest_positive"], slots[target, only_cls["positive_slot"]])
    with pytest.raises(ValueError, match=r"mu must be in \[0, 1\], got 1.5"):
        query_pull(memory, query, target, mu=1.5)
    with pytest.raises(ValueError, match=r"target must be a cluster id in \[0, 4\), got 4"):
        query_pull(memory, query, 4, mu=0.5)
    with pytest.raises(ValueError, match=r"query must be a \(2,\) vector"):
        query_pull(memory, np.ones(3), target, mu=0.5)


def test_plot_query_pull_marks_mined_slots(hhcl):
    memory, query, target = hhcl
    pull = query_pull(memory, query, target, mu=0.5)
    ax = plot_query_pull(memory, query, target, mu=0.5).axes[0]
    by_label = {c.get_label(): c for c in ax.collections}
    np.testing.assert_allclose(by_label["hardest positive (Eq. 6)"].get_offsets(), [pull["hardest_positive"]])
    np.testing.assert_allclose(by_label["hardest negatives (Eq. 7)"].get_offsets(), pull["hardest_negatives"])
    assert len([t for t in ax.texts if t.arrow_patch is not None]) == 3  # mu cls, (1-mu) ins, total


# ---- widgets


def test_memory_toy_sliders_drive_the_update():
    toy = MemoryToy(kind="mean", momentum=0.5)
    step = toy.last_step_
    assert len(toy.output.outputs) == 1 and "image/png" in toy.output.outputs[0]["data"]
    toy.momentum_slider.value = 0.0  # each row jumps onto its class's last batch sample
    step = toy.last_step_
    assert step["momentum"] == 0.0
    for c in np.unique(step["batch_labels"]):
        last = step["batch"][np.flatnonzero(step["batch_labels"] == c)[-1]]
        np.testing.assert_allclose(step["rows_after"][c], last, atol=1e-6)
    toy.momentum_slider.value = 0.99  # rows barely move
    step = toy.last_step_
    moved = [angle_between(a, b) for a, b in zip(step["rows_before"], step["rows_after"])]
    assert 0 < max(moved) < 0.03
    toy.kind.value = "hard"
    assert toy.last_step_["kind"] == "hard" and toy.last_step_["hardest"] is not None
    toy.temperature_slider.value = 0.5
    assert toy.last_step_["temperature"] == pytest.approx(0.5)
    before = toy.last_step_["batch_idx"]
    toy.batch_button.click()
    assert toy.seed == 1 and not np.array_equal(toy.last_step_["batch_idx"], before)
    # The summary line names the setting as the controls' readouts do, with values computed here naively.
    step = toy.last_step_
    shifts = [np.linalg.norm(a - b) for a, b, m in zip(step["rows_after"], step["rows_before"], step["moved"]) if m]
    logits = step["rows_before"] @ step["batch"][0] / step["temperature"]
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    own = probs[step["row_labels"] == step["batch_labels"][0]].sum()
    assert toy.summary.value == toy.describe() == (
        f"hard memory | m 0.99 | tau 0.500 | batch seed 1 | {len(shifts)} of {len(step['moved'])} rows moved, "
        f"by {np.mean(shifts):.3f} on average | sample 0: p(own class) {own:.2f}"
    )
    assert "reidlab-toy-summary" in toy.summary._dom_classes and toy.summary in toy.widget().children
    fig = toy.static_figure()
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert set(MEMORY_KINDS) == set(toy.kind.options)


def test_mu_toy_slider_drives_the_pull():
    toy = MuToy(mu=0.5)
    assert toy.last_pull_["mu"] == 0.5 and len(toy.output.outputs) == 1
    toy.mu_slider.value = 1.0
    np.testing.assert_array_equal(toy.last_pull_["pull_ins"], 0.0)
    toy.mu_slider.value = 0.0
    np.testing.assert_array_equal(toy.last_pull_["pull_cls"], 0.0)
    assert np.linalg.norm(toy.last_pull_["pull_total"]) > 0
    pull = toy.last_pull_
    assert toy.summary.value == toy.describe() == (
        f"mu 0.00 | L_cls {pull['loss_cls']:.2f}, L_ins {pull['loss_ins']:.2f} | pull on the query: "
        f"L_cls term 0.000, L_ins term {np.linalg.norm(pull['grad_ins']):.3f}"
    )
    assert "reidlab-toy-summary" in toy.summary._dom_classes and toy.summary in toy.widget().children
    assert isinstance(toy.static_figure(), Figure)
    with pytest.raises(ValueError, match="pass the query"):
        MuToy(memory=HardHybridMemory.from_labels(*toy_clusters(), num_instances=2))


# ----------------------------------------------------------------------------- CAP's camera pulls (notebook 06)
def test_camera_pull_equals_the_naive_gradients_of_cap_losses():
    from reidlab.lab.toy import CameraToy, camera_pull, toy_camera_clusters
    from reidlab.memory import CameraProxyMemory

    features, labels, cameras = toy_camera_clusters(seed=1)
    assert features.shape == (5 * 3 * 4, 2) and np.allclose(np.linalg.norm(features, axis=1), 1, atol=1e-6)
    memory = CameraProxyMemory.from_labels(features, labels, cameras, temperature=0.2, cross_camera_weight=0.5,
                                           negatives=4)
    index = 7
    pull = camera_pull(memory, features[index], index)
    # Naive CAP losses for one sample, from docs/methods.md 4.6.
    q = torch.tensor(features[index]).requires_grad_(True)
    proxies, proxy_labels, proxy_cameras = memory.proxies, memory.proxy_labels, memory.proxy_cameras
    own = int(memory.sample_proxies[index])
    logits = proxies @ q / 0.2
    same_camera = proxy_cameras == proxy_cameras[own]
    intra = -(logits[own] - torch.logsumexp(logits[same_camera], 0))
    positive = proxy_labels == proxy_labels[own]
    others = torch.where(~positive)[0]
    hard = others[torch.argsort(logits.detach()[others], descending=True)[:4]]
    chosen = torch.cat([torch.where(positive)[0], hard])
    inter = -(logits[positive] - torch.logsumexp(logits[chosen], 0)).mean()
    (g_intra,) = torch.autograd.grad(intra, q, retain_graph=True)
    (g_inter,) = torch.autograd.grad(0.5 * inter, q)
    assert np.allclose(pull["pull_intra"], -g_intra.numpy(), atol=1e-5)
    assert np.allclose(pull["pull_inter"], -g_inter.numpy(), atol=1e-5)
    assert np.allclose(pull["pull_total"], pull["pull_intra"] + pull["pull_inter"], atol=1e-6)
    assert sorted(pull["negatives"].tolist()) == sorted(hard.tolist())
    assert sorted(pull["positives"].tolist()) == torch.where(positive)[0].tolist()
    toy = CameraToy()
    toy.weight_slider.value = 0.0  # no inter-camera pull without its weight
    toy.static_figure()
    assert np.allclose(toy.last_pull_["pull_inter"], 0)
    toy.weight_slider.value, toy.negatives_slider.value = 1.0, 2
    toy.static_figure()
    assert len(toy.last_pull_["negatives"]) == 2 and np.linalg.norm(toy.last_pull_["pull_inter"]) > 0


def test_camera_toy_summary_names_the_settings_and_the_pulls():
    from reidlab.lab.toy import CameraToy

    toy = CameraToy()
    toy.weight_slider.value, toy.negatives_slider.value = 1.0, 2
    pull = toy.last_pull_
    line = toy.summary.value
    assert line.startswith("crosscam_weight 1.0, crosscam_negatives 2 |") and "2 hard negatives" in line
    assert f"inter {np.linalg.norm(pull['pull_inter']):.3f}" in line
    assert f"L_intra {pull['loss_intra']:.2f}" in line
