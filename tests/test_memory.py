"""Memories (docs/methods.md, section 4): parity with naive loops written from the equations, invariants, errors."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reidlab.cluster import cluster_centroids
from reidlab.memory import (
    ClusterMemory,
    HardHybridMemory,
    HybridMemory,
    Memory,
    MinedSlots,
    cluster_nce,
    smoothed_cross_entropy,
)


def unit(*shape, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=generator, dtype=dtype), dim=-1)


# ----------------------------------------------------------------------------- naive references
def naive_spcl_loss(x, rows, labels, indexes, tau):
    """SpCL's loss with its epsilons (docs/methods.md, section 4.1).

    Classes = clusters (label >= 0) + one per label -1 sample.
    """
    n = len(labels)
    classes = [[j for j in range(n) if labels[j] == c] for c in sorted({int(v) for v in labels if v >= 0})]
    classes += [[j] for j in range(n) if labels[j] == -1]
    own = {j: k for k, members in enumerate(classes) for j in members}
    total = 0.0
    for b in range(x.shape[0]):
        logits = [sum(float(x[b] @ rows[j]) for j in members) / len(members) / tau for members in classes]
        p = math.exp(logits[own[int(indexes[b])]]) / (sum(math.exp(s) for s in logits) + 1e-6)
        total += -math.log(p + 1e-6)
    return total / x.shape[0]


def naive_sequential_update(rows, keys, x, m):
    rows = rows.clone()
    for xi, k in zip(x, keys.tolist()):
        rows[k] = m * rows[k] + (1 - m) * xi
        rows[k] = rows[k] / rows[k].norm()
    return rows


def naive_cluster_nce(x, centroids, targets, tau):
    total = 0.0
    for b in range(x.shape[0]):
        logits = [float(x[b] @ c) / tau for c in centroids]
        total += -logits[int(targets[b])] + math.log(sum(math.exp(s) for s in logits))
    return total / x.shape[0]


def naive_hard_update(rows, targets, x, m):
    rows = rows.clone()
    for y in dict.fromkeys(targets.tolist()):  # classes in order of first appearance, like CM_Hard
        members = [i for i in range(len(targets)) if targets[i] == y]
        similarities = [float(x[i] @ rows[y]) for i in members]
        hardest = members[int(np.argmin(similarities))]
        rows[y] = m * rows[y] + (1 - m) * x[hardest]
        rows[y] = rows[y] / rows[y].norm()
    return rows


def naive_instance_loss(x, instances, targets, tau):
    """HHCL Eqs. 5-7 with explicit loops."""
    total = 0.0
    num_clusters, num_slots = instances.shape[:2]
    for b in range(x.shape[0]):
        y = int(targets[b])
        logits = []
        for c in range(num_clusters):
            similarities = [float(x[b] @ instances[c, k]) for k in range(num_slots)]
            logits.append((min(similarities) if c == y else max(similarities)) / tau)
        total += -logits[y] + math.log(sum(math.exp(s) for s in logits))
    return total / x.shape[0]


def naive_hhcl_update(centroids, instances, targets, x, m):
    centroids, instances = centroids.clone(), instances.clone()
    for y in set(targets.tolist()):
        members = [i for i in range(len(targets)) if targets[i] == y]
        mean = torch.stack([x[i] for i in members]).mean(0)
        centroids[y] = m * centroids[y] + (1 - m) * mean
        centroids[y] = centroids[y] / centroids[y].norm()
        for k, i in enumerate(members[: instances.shape[1]]):
            instances[y, k] = x[i]
    return centroids, instances


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture
def labelled():
    """Features (N, D), DBSCAN-like labels with outliers and a cluster of one... no, of two."""
    labels = np.array([0, 0, 1, -1, 1, 2, 0, -1, 2, 2, 1, 0])
    features = unit(len(labels), 8, seed=1)
    return features, labels


def hhcl_memory(num_clusters=4, num_slots=3, dim=8, **options):
    return HardHybridMemory(
        unit(num_clusters, dim, seed=2), unit(num_clusters, num_slots, dim, seed=3), **options
    )


# ----------------------------------------------------------------------------- HybridMemory (SpCL)
def test_hybrid_loss_matches_naive_and_gradient(labelled):
    features, labels = labelled
    memory = HybridMemory(features * 3.0, temperature=0.05).set_labels(labels)  # stored normalised
    torch.testing.assert_close(memory.features, features)
    indexes = torch.tensor([0, 3, 5, 7, 11, 3])  # includes outliers and a repeated index
    x = unit(6, 8, seed=4).requires_grad_()
    loss = memory.loss(x, None, indexes=indexes)
    assert loss.item() == pytest.approx(naive_spcl_loss(x.detach(), features, labels, indexes, 0.05), abs=1e-6)

    # Gradient equals that of a direct transcription of hm.py (exp without shift, same epsilons).
    loss.backward()
    x_ref = x.detach().clone().requires_grad_()
    own = torch.as_tensor(memory.labels)
    logits = x_ref @ features.t() / 0.05
    sim = torch.zeros(int(own.max()) + 1, 6, dtype=x.dtype).index_add(0, own, logits.t())
    sim = sim / torch.bincount(own)[:, None]
    exps = torch.exp(sim.t())
    F.nll_loss(torch.log(exps / (exps.sum(1, keepdim=True) + 1e-6) + 1e-6), own[indexes]).backward()
    torch.testing.assert_close(x.grad, x_ref.grad)


def test_hybrid_outliers_are_own_classes(labelled):
    features, labels = labelled
    memory = HybridMemory(features).set_labels(labels)
    assert memory.labels.tolist() == [0, 0, 1, 3, 1, 2, 0, 4, 2, 2, 1, 0]
    assert memory.num_classes == 5
    assert memory.num_rows == len(labels)
    fresh = HybridMemory(features)
    assert fresh.labels.tolist() == list(range(len(labels)))  # every sample its own class before clustering


def test_hybrid_stable_for_small_temperature(labelled):
    features, labels = labelled
    memory = HybridMemory(features.float(), temperature=0.005).set_labels(labels)
    x = features[:4].float().requires_grad_()  # logits up to 200: exp overflows float32 without the shift
    loss = memory.loss(x, None, indexes=torch.arange(4))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def test_hybrid_update_sequential_per_index(labelled):
    features, labels = labelled
    memory = HybridMemory(features, momentum=0.2).set_labels(labels)
    indexes = torch.tensor([4, 1, 4, 9, 4])
    x = unit(5, 8, seed=5)
    expected = naive_sequential_update(memory.features, indexes, x, 0.2)
    memory.update(x, None, indexes=indexes)
    torch.testing.assert_close(memory.features, expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(memory.features.norm(dim=1), torch.ones(len(labels), dtype=x.dtype))
    untouched = [i for i in range(len(labels)) if i not in (1, 4, 9)]
    torch.testing.assert_close(memory.features[untouched], features[untouched])


def test_hybrid_loss_leaves_memory_unchanged(labelled):
    features, labels = labelled
    memory = HybridMemory(features).set_labels(labels)
    before = memory.features.clone()
    x = unit(3, 8, seed=6).requires_grad_()
    memory.loss(x, None, indexes=torch.tensor([0, 1, 2])).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(memory.features, before)


def test_hybrid_errors(labelled):
    features, labels = labelled
    memory = HybridMemory(features)
    x = unit(2, 8, seed=7)
    with pytest.raises(ValueError, match="needs indexes="):
        memory.loss(x, None)
    with pytest.raises(ValueError, match=r"indexes must be in \[0, 12\), got values from 3 to 12"):
        memory.update(x, None, indexes=torch.tensor([3, 12]))
    with pytest.raises(ValueError, match=r"features must be \(B, 8\).*got shape \(2, 5\)"):
        memory.loss(unit(2, 5), None, indexes=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"labels must be \(12,\) integers"):
        memory.set_labels(labels[:5])
    with pytest.raises(ValueError, match="got -2"):
        memory.set_labels(np.full(12, -2))
    with pytest.raises(ValueError, match="momentum must be in"):
        HybridMemory(features, momentum=1.5)


# ----------------------------------------------------------------------------- ClusterMemory
def test_cluster_from_labels_drops_outliers(labelled):
    features, labels = labelled
    memory = ClusterMemory.from_labels(features, labels)
    assert memory.num_rows == 3 and memory.update_mode == "mean"
    assert (memory.momentum, memory.temperature) == (0.1, 0.05)
    for c in range(3):
        mean = features[labels == c].mean(0)
        torch.testing.assert_close(memory.centroids[c], mean / mean.norm())
    from_numpy = ClusterMemory.from_labels(features.numpy(), labels)
    torch.testing.assert_close(from_numpy.centroids, memory.centroids)


def test_cluster_loss_matches_naive():
    centroids = unit(5, 8, seed=8)
    memory = ClusterMemory(centroids, temperature=0.05)
    stored = memory.centroids.clone()
    x = unit(7, 8, seed=9).requires_grad_()
    targets = torch.tensor([0, 4, 4, 2, 1, 0, 3])
    loss = memory.loss(x, targets)
    assert loss.item() == pytest.approx(naive_cluster_nce(x.detach(), centroids, targets, 0.05), abs=1e-6)
    loss.backward()
    assert x.grad.abs().sum() > 0
    assert torch.equal(memory.centroids, stored)  # backward does not update the memory


def test_cluster_mean_update_is_sequential():
    centroids = unit(4, 8, seed=10)
    targets = torch.tensor([2, 0, 2, 2, 3, 0])
    x = unit(6, 8, seed=11)
    memory = ClusterMemory(centroids, momentum=0.3, update="mean")
    memory.update(x, targets)
    expected = naive_sequential_update(centroids, targets, x, 0.3)
    torch.testing.assert_close(memory.centroids, expected, atol=1e-12, rtol=0)
    assert torch.equal(memory.centroids[1], centroids[1])

    batch_mean = F.normalize(0.3 * centroids[2] + 0.7 * x[targets == 2].mean(0), dim=0)
    assert (memory.centroids[2] - batch_mean).abs().max() > 1e-3  # not a single batch-mean step


def test_cluster_hard_update_uses_least_similar_sample():
    centroids = unit(3, 8, seed=12)
    close, far = F.normalize(centroids[1] + 0.1 * unit(8, seed=13), dim=0), -centroids[1]
    x = torch.stack([close, unit(8, seed=14), far, close])
    targets = torch.tensor([1, 0, 1, 1])
    memory = ClusterMemory(centroids, momentum=0.1, update="hard")
    torch.testing.assert_close(memory.hardest_positives(x, targets), torch.tensor([1, 2]))
    memory.update(x, targets)
    torch.testing.assert_close(memory.centroids[1], F.normalize(0.1 * centroids[1] + 0.9 * far, dim=0))

    x = unit(9, 8, seed=15)
    targets = torch.tensor([2, 0, 2, 1, 0, 2, 2, 1, 0])
    memory = ClusterMemory(centroids, momentum=0.2, update="hard")
    memory.update(x, targets)
    torch.testing.assert_close(memory.centroids, naive_hard_update(centroids, targets, x, 0.2), atol=1e-12, rtol=0)


@pytest.mark.parametrize("update", ["mean", "hard"])
def test_cluster_rows_stay_unit_norm(update):
    memory = ClusterMemory(unit(6, 16, seed=16, dtype=torch.float32), update=update)
    for step in range(5):
        x = unit(12, 16, seed=17 + step, dtype=torch.float32)
        memory.update(x.requires_grad_(), torch.randint(0, 6, (12,), generator=torch.Generator().manual_seed(step)))
    torch.testing.assert_close(memory.centroids.norm(dim=1), torch.ones(6))
    assert not memory.centroids.requires_grad


def test_cluster_errors():
    with pytest.raises(ValueError, match="update must be 'mean' or 'hard', got 'avg'"):
        ClusterMemory(unit(3, 4), update="avg")
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        ClusterMemory(unit(3, 4), temperature=0)
    memory = ClusterMemory(unit(3, 4))
    with pytest.raises(ValueError, match=r"targets must be in \[0, 3\), got values from 0 to 3"):
        memory.loss(unit(2, 4), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"targets must be in \[0, 3\), got values from -1 to 1"):
        memory.update(unit(2, 4), torch.tensor([-1, 1]))
    with pytest.raises(ValueError, match=r"features must be \(B, 4\)"):
        memory.loss(unit(2, 6), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"targets must be a \(2,\) integer tensor"):
        memory.loss(unit(2, 4), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="without gaps"):
        ClusterMemory.from_labels(unit(4, 4), np.array([0, 0, 2, 2]))


# ----------------------------------------------------------------------------- HardHybridMemory (HHCL)
def test_hhcl_loss_matches_naive():
    memory = hhcl_memory(mu=0.3, temperature=0.05, instance_temperature=0.07)
    x = unit(6, 8, seed=20).requires_grad_()
    targets = torch.tensor([0, 3, 3, 1, 2, 0])
    cls = naive_cluster_nce(x.detach(), memory.centroids, targets, 0.05)
    ins = naive_instance_loss(x.detach(), memory.instances, targets, 0.07)
    assert memory.cluster_loss(x, targets).item() == pytest.approx(cls, abs=1e-6)
    assert memory.instance_loss(x, targets).item() == pytest.approx(ins, abs=1e-6)
    loss = memory.loss(x, targets)
    assert loss.item() == pytest.approx(0.3 * cls + 0.7 * ins, abs=1e-6)

    before = [b.clone() for b in memory.buffers()]
    loss.backward()
    assert x.grad.abs().sum() > 0
    assert all(torch.equal(a, b) for a, b in zip(before, memory.buffers()))


def test_hhcl_mu_extremes():
    x = unit(5, 8, seed=21)
    targets = torch.tensor([1, 1, 0, 2, 3])
    only_cls = hhcl_memory(mu=1.0)
    only_ins = hhcl_memory(mu=0.0)
    torch.testing.assert_close(only_cls.loss(x, targets), cluster_nce(x, only_cls.centroids, targets, 0.05))
    torch.testing.assert_close(only_ins.loss(x, targets), only_ins.instance_loss(x, targets))
    assert only_ins.instance_temperature == 0.05  # defaults to temperature, as HHCL's single --temp


def test_hhcl_mining_picks_hardest_slots():
    memory = hhcl_memory(num_clusters=3, num_slots=4)
    x = unit(5, 8, seed=22)
    targets = torch.tensor([2, 0, 1, 2, 0])
    mined = memory.mine(x, targets)
    assert isinstance(mined, MinedSlots)
    assert mined.positive.shape == (5,) and mined.per_class.shape == (5, 3)
    for b in range(5):
        for c in range(3):
            similarities = [float(x[b] @ memory.instances[c, k]) for k in range(4)]
            expected = int(np.argmin(similarities)) if c == targets[b] else int(np.argmax(similarities))
            assert mined.per_class[b, c] == expected
        assert mined.positive[b] == mined.per_class[b, targets[b]]


def test_hhcl_update_matches_naive_and_overwrites_slots():
    memory = hhcl_memory(num_clusters=4, num_slots=3, momentum=0.1)
    centroids, instances = memory.centroids.clone(), memory.instances.clone()
    # class 1: 4 features (> P, the first 3 are stored); class 2: 2 (< P, slot 2 kept); class 0: absent
    targets = torch.tensor([1, 2, 1, 3, 1, 2, 3, 3, 1])
    x = unit(9, 8, seed=23)
    indexes = torch.arange(100, 109)
    memory.update(x, targets, indexes=indexes)
    expected_centroids, expected_instances = naive_hhcl_update(centroids, instances, targets, x, 0.1)
    torch.testing.assert_close(memory.centroids, expected_centroids, atol=1e-12, rtol=0)
    torch.testing.assert_close(memory.instances, expected_instances, atol=0, rtol=0)
    torch.testing.assert_close(memory.instances[1], x[[0, 2, 4]])
    torch.testing.assert_close(memory.instances[2, 2], instances[2, 2])
    assert memory.slot_indexes.tolist() == [[-1, -1, -1], [100, 102, 104], [101, 105, -1], [103, 106, 107]]
    torch.testing.assert_close(memory.centroids.norm(dim=1), torch.ones(4, dtype=x.dtype))
    torch.testing.assert_close(memory.instances.norm(dim=2), torch.ones(4, 3, dtype=x.dtype))

    memory.update(x[:1], targets[:1])  # without indexes the overwritten slot's image is unknown
    assert memory.slot_indexes[1].tolist() == [-1, 102, 104]


def test_hhcl_from_labels_samples_members_reproducibly(labelled):
    features, labels = labelled
    memory = HardHybridMemory.from_labels(features, labels, num_instances=5, seed=3)
    assert memory.num_rows == 3 * (5 + 1) and memory.num_clusters == 3 and memory.num_instances == 5
    assert (memory.mu, memory.momentum, memory.temperature) == (0.5, 0.1, 0.05)
    torch.testing.assert_close(memory.centroids, cluster_centroids(features, labels))
    slots = memory.slot_indexes.numpy()
    assert (labels[slots] == np.arange(3)[:, None]).all()  # every slot holds a member of its cluster
    torch.testing.assert_close(memory.instances, features[memory.slot_indexes])
    again = HardHybridMemory.from_labels(features, labels, num_instances=5, seed=3)
    assert torch.equal(again.slot_indexes, memory.slot_indexes)
    draws = [HardHybridMemory.from_labels(features, labels, seed=s).slot_indexes for s in range(4)]
    assert any(not torch.equal(draws[0], other) for other in draws[1:])
    many = HardHybridMemory.from_labels(features, labels, num_instances=200, seed=0).slot_indexes.numpy()
    for c in range(3):  # with replacement: every member of the cluster shows up
        assert set(many[c].tolist()) == set(np.flatnonzero(labels == c).tolist())


def test_hhcl_errors():
    with pytest.raises(ValueError, match=r"mu must be in \[0, 1\], got 1.5"):
        hhcl_memory(mu=1.5)
    with pytest.raises(ValueError, match=r"mu must be in \[0, 1\], got -0.1"):
        hhcl_memory(mu=-0.1)
    with pytest.raises(ValueError, match=r"instances must be \(2, P, 4\)"):
        HardHybridMemory(unit(2, 4), unit(3, 2, 4))
    memory = hhcl_memory(num_clusters=4, dim=8)
    with pytest.raises(ValueError, match=r"targets must be in \[0, 4\), got values from 0 to 4"):
        memory.loss(unit(2, 8), torch.tensor([0, 4]))
    with pytest.raises(ValueError, match=r"features must be \(B, 8\)"):
        memory.update(unit(2, 3), torch.tensor([0, 1]))
    before = memory.centroids.clone()
    with pytest.raises(ValueError, match=r"indexes must have the shape of targets \(2,\), got \(3,\)"):
        memory.update(unit(2, 8), torch.tensor([0, 1]), indexes=torch.arange(3))
    assert torch.equal(memory.centroids, before)  # checked before anything is written
    with pytest.raises(ValueError, match="num_instances must be a positive integer, got 0"):
        HardHybridMemory.from_labels(unit(4, 4), np.array([0, 0, 0, 0]), num_instances=0)


# ----------------------------------------------------------------------------- shared behaviour
def all_memories():
    features = unit(10, 6, seed=30, dtype=torch.float32)
    labels = np.array([0, 0, 1, 1, 1, -1, 2, 2, 0, -1])
    return [
        HybridMemory(features).set_labels(labels),
        ClusterMemory.from_labels(features, labels, update="hard"),
        HardHybridMemory.from_labels(features, labels, num_instances=4, seed=0),
    ]


def test_num_rows():
    hybrid, cluster, hard = all_memories()
    assert (hybrid.num_rows, cluster.num_rows, hard.num_rows) == (10, 3, 3 * 4 + 3)


@pytest.mark.parametrize("position", range(3))
def test_to_and_state_dict_round_trip(position):
    memory = all_memories()[position]
    assert isinstance(memory, Memory)
    memory.to(torch.float64)
    assert all(b.dtype in (torch.float64, torch.int64) for b in memory.buffers())
    assert any(b.dtype == torch.float64 for b in memory.buffers())
    x, targets, indexes = unit(4, 6, seed=31), torch.tensor([0, 2, 2, 1]), torch.tensor([0, 7, 6, 3])
    memory.update(x, targets, indexes=indexes)  # change the rows away from their initial values

    state = memory.state_dict()
    assert set(state) == {name for name, _ in memory.named_buffers()}
    copy = all_memories()[position].to(torch.float64)
    copy.load_state_dict(state)
    for (name, a), (_, b) in zip(memory.named_buffers(), copy.named_buffers()):
        assert torch.equal(a, b), name
    torch.testing.assert_close(copy.loss(x, targets, indexes=indexes), memory.loss(x, targets, indexes=indexes))
    assert memory(x, targets, indexes=indexes) == memory.loss(x, targets, indexes=indexes)  # forward = loss


# ------------------------------------------------------------ WeightedMemory (SCWM, docs/methods.md, section 4.4.5)
from reidlab.memory import WeightedMemory  # noqa: E402  (appended section; the class is new in this round)


def naive_class_weights(raw, targets):
    """Eq. 8 normalised within each class's samples of the batch, uniform where the class sums to 0."""
    weights = torch.zeros_like(raw)
    for i in range(raw.shape[0]):
        members = [j for j in range(raw.shape[0]) if targets[j] == targets[i]]
        for s in range(raw.shape[1]):
            total = sum(float(raw[j, s]) for j in members)
            weights[i, s] = float(raw[i, s]) / total if total > 0 else 1.0 / len(members)
    return weights


def naive_weighted_nce(x, centroids, targets, tau, weights=None):
    """Eq. 10 with loops: global term + mean over parts of -log(w exp(s+) / sum_j exp(s_j)), batch mean."""
    streams, batch = centroids.shape[0], x.shape[0]
    per_stream = []
    for s in range(streams):
        total = 0.0
        for b in range(batch):
            logits = [float(x[b, s] @ c) / tau for c in centroids[s]]
            w = 1.0 if weights is None else max(float(weights[b, s]), 1e-6)
            total += -math.log(w * math.exp(logits[int(targets[b])]) / sum(math.exp(v) for v in logits))
        per_stream.append(total / batch)
    return per_stream[0] + (sum(per_stream[1:]) / (streams - 1) if streams > 1 else 0.0)


def naive_separation(x, centroids, targets, tau):
    """Eq. 11 with loops: part k against the l part centroids of the sample's cluster."""
    num_parts, batch = centroids.shape[0] - 1, x.shape[0]
    total = 0.0
    for b in range(batch):
        y = int(targets[b])
        for k in range(1, num_parts + 1):
            logits = [float(x[b, k] @ centroids[j, y]) / tau for j in range(1, num_parts + 1)]
            total += -(logits[k - 1] - math.log(sum(math.exp(v) for v in logits))) / num_parts
    return total / batch


def naive_weighted_update(centroids, targets, x, m, weights):
    """Eq. 9 as a weighted mean per class present and stream, then re-normalised."""
    centroids = centroids.clone()
    for y in set(targets.tolist()):
        members = [i for i in range(len(targets)) if targets[i] == y]
        for s in range(centroids.shape[0]):
            mean = sum(weights[i, s] * x[i, s] for i in members)
            centroids[s, y] = m * centroids[s, y] + (1 - m) * mean
            centroids[s, y] = centroids[s, y] / centroids[s, y].norm()
    return centroids


def hardest_weights(centroids, targets, x):
    """One-hot per class and stream on the member least similar to the stream's centroid (first on ties)."""
    weights = torch.zeros(x.shape[:2], dtype=x.dtype)
    for y in set(targets.tolist()):
        members = [i for i in range(len(targets)) if targets[i] == y]
        for s in range(centroids.shape[0]):
            similarities = [float(x[i, s] @ centroids[s, y]) for i in members]
            weights[members[int(np.argmin(similarities))], s] = 1.0
    return weights


def weighted_memory(streams=3, clusters=5, dim=8, **options):
    return WeightedMemory(unit(streams, clusters, dim, seed=40), **options)


@pytest.fixture
def weighted_batch():
    """Features (B, S, D), targets with class 4 absent and class 2 appearing once, raw weights with zeros."""
    targets = torch.tensor([0, 1, 0, 3, 2, 1, 0, 3])
    x = unit(len(targets), 3, 8, seed=41)
    raw = torch.rand(len(targets), 3, generator=torch.Generator().manual_seed(42), dtype=torch.float64)
    raw[targets == 1, 2] = 0.0  # class 1 has no weight in stream 2: uniform fallback
    raw[0, 1] = 0.0  # one zero weight in a class that has others
    return x, targets, raw


def test_weighted_from_labels_is_per_stream_class_means(labelled):
    features2d, labels = labelled
    features = torch.stack([features2d, features2d.flip(0), -features2d], dim=1)  # (N, 3, D)
    memory = WeightedMemory.from_labels(features, labels, update="mean")
    assert memory.centroids.shape == (3, 3, 8)
    assert (memory.num_streams, memory.num_rows, memory.feature_dim) == (3, 3, 8)
    for s in range(3):
        for c in range(3):
            mean = features[labels == c, s].mean(0)
            torch.testing.assert_close(memory.centroids[s, c], mean / mean.norm())
    assert memory.update_mode == "mean" and memory.momentum == 0.2 and memory.temperature == 0.05
    from_numpy = WeightedMemory.from_labels(features.numpy(), labels)
    torch.testing.assert_close(from_numpy.centroids, memory.centroids)


def test_weighted_raw_weights():
    alpha = torch.tensor([[0.2, 0.4, 0.6], [1.0, 1.0, 0.7]])
    raw = WeightedMemory.raw_weights(alpha)
    expected = torch.tensor([[1 - 0.4, 0.2, 0.4, 0.6], [1 - 0.9, 1.0, 1.0, 0.7]])
    torch.testing.assert_close(raw, expected)
    with pytest.raises(ValueError, match=r"alpha must be \(B, l\), got shape \(3,\)"):
        WeightedMemory.raw_weights(torch.ones(3))


def test_weighted_class_weights(weighted_batch):
    _, targets, raw = weighted_batch
    weights = WeightedMemory.class_weights(raw, targets)
    torch.testing.assert_close(weights, naive_class_weights(raw, targets))
    for c in targets.unique():
        torch.testing.assert_close(weights[targets == c].sum(0), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(weights[targets == 1, 2], torch.full((2,), 0.5, dtype=torch.float64))
    assert weights[0, 1] == 0 and weights[4].tolist() == [1.0, 1.0, 1.0]  # class 2 is alone
    torch.testing.assert_close(WeightedMemory.class_weights(weights, targets), weights)  # idempotent
    with pytest.raises(ValueError, match="raw weights must be finite and >= 0"):
        WeightedMemory.class_weights(-raw, targets)
    with pytest.raises(ValueError, match=r"need raw \(B, S\) and targets \(B,\), got shapes \(8, 3\) and \(7,\)"):
        WeightedMemory.class_weights(raw, targets[:7])


@pytest.mark.parametrize("use_weights", [False, True])
def test_weighted_loss_matches_naive_eq10(weighted_batch, use_weights):
    x, targets, raw = weighted_batch
    memory = weighted_memory().double()
    weights = WeightedMemory.class_weights(raw, targets) if use_weights else None
    loss = memory.loss(x, targets, weights=weights)
    expected = naive_weighted_nce(x, memory.centroids, targets, 0.05, weights)
    assert math.isfinite(float(loss))  # a zero weight is floored inside the log
    assert float(loss) == pytest.approx(expected, rel=1e-9)
    assert float(memory(x, targets, weights=weights)) == float(loss)  # forward = loss


def test_weighted_loss_gradient_equals_plain_cluster_nce(weighted_batch):
    x, targets, raw = weighted_batch
    memory = weighted_memory().double()
    weights = WeightedMemory.class_weights(raw, targets)
    gradients = []
    for loss_fn in (
        lambda f: memory.loss(f, targets, weights=weights),
        lambda f: memory.loss(f, targets),
        lambda f: cluster_nce(f[:, 0], memory.centroids[0], targets, 0.05)
        + sum(cluster_nce(f[:, s], memory.centroids[s], targets, 0.05) for s in (1, 2)) / 2,
    ):
        f = x.clone().requires_grad_(True)
        loss_fn(f).backward()
        gradients.append(f.grad)
    torch.testing.assert_close(gradients[0], gradients[1], rtol=0, atol=1e-12)
    torch.testing.assert_close(gradients[1], gradients[2])
    assert float(memory.loss(x, targets, weights=weights)) > float(memory.loss(x, targets))  # only the value moves


def test_weighted_global_only_memory_is_cluster_nce(weighted_batch):
    x, targets, _ = weighted_batch
    memory = weighted_memory(streams=1).double()
    plain = cluster_nce(x[:, 0], memory.centroids[0], targets, 0.05)
    torch.testing.assert_close(memory.loss(x[:, :1], targets), plain)
    assert float(memory.separation_loss(x[:, :1], targets)) == 0.0


def test_weighted_separation_loss_matches_naive_eq11(weighted_batch):
    x, targets, _ = weighted_batch
    memory = weighted_memory().double()
    loss = memory.separation_loss(x, targets)
    assert float(loss) == pytest.approx(naive_separation(x, memory.centroids, targets, 0.05), rel=1e-9)
    # Parts that sit exactly on their own part centroids, far from the other part's, separate well.
    aligned = memory.centroids[:, targets].transpose(0, 1).clone()
    assert float(memory.separation_loss(aligned, targets)) < float(loss)


@pytest.mark.parametrize("mode", ["mean", "hard", "weighted"])
def test_weighted_update_matches_naive(weighted_batch, mode):
    x, targets, raw = weighted_batch
    memory = weighted_memory(update=mode).double()
    before = memory.centroids.clone()
    class_weights = WeightedMemory.class_weights(raw, targets)
    if mode == "mean":
        weights = naive_class_weights(torch.ones_like(raw), targets)
    elif mode == "hard":
        weights = hardest_weights(before, targets, x)
    else:
        weights = class_weights
    memory.update(x, targets, weights=class_weights)
    torch.testing.assert_close(memory.centroids, naive_weighted_update(before, targets, x, 0.2, weights))
    assert torch.equal(memory.centroids[:, 4], before[:, 4])  # class 4 is not in the batch
    torch.testing.assert_close(memory.centroids.norm(dim=2), torch.ones(3, 5, dtype=torch.float64))


def test_weighted_update_renormalises_raw_weights_and_needs_them(weighted_batch):
    x, targets, raw = weighted_batch
    from_raw, from_normalised = weighted_memory().double(), weighted_memory().double()
    from_raw.update(x, targets, weights=raw)
    from_normalised.update(x, targets, weights=WeightedMemory.class_weights(raw, targets))
    torch.testing.assert_close(from_raw.centroids, from_normalised.centroids)
    before = from_raw.centroids.clone()
    with pytest.raises(ValueError, match=r"update='weighted' needs the batch's indexes= \(with a stored difficulty\) or weights="):
        from_raw.update(x, targets)
    assert torch.equal(from_raw.centroids, before)
    mean = weighted_memory(update="mean").double()
    mean.update(x, targets)  # the other modes need no weights
    assert not torch.equal(mean.centroids, weighted_memory().double().centroids)


def test_weighted_memory_weights_the_batch_by_its_stored_difficulty(weighted_batch):
    """With the training set's agreements stored, ``indexes`` give Eq. 8's weights: the loop's interface."""
    x, targets, _ = weighted_batch
    difficulty = torch.rand(20, 2, generator=torch.Generator().manual_seed(43), dtype=torch.float64)  # (N, l)
    indexes = torch.tensor([3, 17, 0, 9, 12, 5, 19, 8])
    expected = WeightedMemory.class_weights(WeightedMemory.raw_weights(difficulty[indexes]), targets)
    memory = weighted_memory(difficulty=difficulty).double()
    torch.testing.assert_close(memory.batch_weights(targets, indexes), expected)
    torch.testing.assert_close(memory.loss(x, targets, indexes=indexes), memory.loss(x, targets, weights=expected))
    by_weights = weighted_memory().double()
    memory.update(x, targets, indexes=indexes)
    by_weights.update(x, targets, weights=expected)
    torch.testing.assert_close(memory.centroids, by_weights.centroids)
    features = unit(20, 3, 8, seed=44)
    labels = np.arange(20) % 5
    from_labels = WeightedMemory.from_labels(features, labels, difficulty=difficulty)
    assert torch.equal(from_labels.difficulty, difficulty)


def test_weighted_loss_leaves_memory_unchanged(weighted_batch):
    x, targets, raw = weighted_batch
    memory = weighted_memory().double()
    before = memory.centroids.clone()
    f = x.clone().requires_grad_(True)
    (memory.loss(f, targets, weights=raw) + memory.separation_loss(f, targets)).backward()
    assert torch.equal(memory.centroids, before) and memory.centroids.grad is None


def test_weighted_errors(weighted_batch):
    x, targets, raw = weighted_batch
    with pytest.raises(ValueError, match="update must be 'mean', 'hard' or 'weighted', got 'average'"):
        weighted_memory(update="average")
    with pytest.raises(ValueError, match=r"difficulty must be \(N, l\) with l = 2 part streams, got shape \(4, 3\)"):
        weighted_memory(difficulty=torch.rand(4, 3))
    with pytest.raises(ValueError, match="no difficulty to weight with"):
        weighted_memory().batch_weights(targets, torch.arange(len(targets)))
    with pytest.raises(ValueError, match=r"centroids must be a non-empty \(S, K, D\) array .*got shape \(5, 8\)"):
        WeightedMemory(unit(5, 8))
    with pytest.raises(ValueError, match=r"features must be \(N, S, D\)"):
        WeightedMemory.from_labels(unit(5, 8), np.zeros(5, dtype=int))
    memory = weighted_memory().double()
    with pytest.raises(ValueError, match=r"features must be \(B, 3, 8\) \(streams: global then parts\)"):
        memory.loss(x[:, :2], targets)
    with pytest.raises(ValueError, match=r"features must be \(B, 3, 8\)"):
        memory.update(x[:, 0], targets, weights=raw)
    with pytest.raises(ValueError, match=r"targets must be in \[0, 5\)"):
        memory.separation_loss(x, targets + 2)
    with pytest.raises(ValueError, match=r"weights must be \(B, S\) = \(8, 3\) like features, got shape \(8, 2\)"):
        memory.loss(x, targets, weights=raw[:, :2])
    with pytest.raises(ValueError, match="weights must be finite and >= 0"):
        memory.update(x, targets, weights=raw - 1)


def test_weighted_state_dict_round_trip(weighted_batch):
    x, targets, raw = weighted_batch
    memory = weighted_memory().double()
    memory.update(x, targets, weights=raw)
    copy = weighted_memory().double()
    copy.load_state_dict(memory.state_dict())
    assert set(memory.state_dict()) == {"centroids"} and torch.equal(copy.centroids, memory.centroids)
    assert "update='weighted'" in repr(memory)


# ----------------------------------------------------------------------------- label smoothing (HHCL Table 3's "LS")
def naive_smoothed_ce(logits, targets, epsilon, *, topk=False):
    """(1 - eps) on the class, eps over all C classes, or (HHCL's code, C >= 100) over the C // 50 top-scoring ones."""
    total = 0.0
    for row, y in zip(logits.tolist(), targets.tolist()):
        top = max(row)
        log_probs = [v - top - math.log(sum(math.exp(u - top) for u in row)) for v in row]
        k = len(row) // 50
        if topk and k > 1:
            best = sorted(range(len(row)), key=lambda c: -row[c])[:k]
            target = [(1 - epsilon) * (c == y) + (epsilon / k) * (c in best) for c in range(len(row))]
        else:
            target = [(1 - epsilon) * (c == y) + epsilon / len(row) for c in range(len(row))]
        total += -sum(t * lp for t, lp in zip(target, log_probs))
    return total / len(targets)


@pytest.mark.parametrize("classes,topk", [(7, False), (7, True), (160, False), (160, True)])
def test_label_smoothing_matches_a_naive_smoothed_cross_entropy(classes, topk):
    logits = torch.randn(6, classes, generator=torch.Generator().manual_seed(classes), dtype=torch.float64) * 3
    targets = torch.arange(6) % classes
    value = smoothed_cross_entropy(logits, targets, 0.1, topk=topk)
    assert value.item() == pytest.approx(naive_smoothed_ce(logits, targets, 0.1, topk=topk), rel=1e-9)
    assert torch.equal(smoothed_cross_entropy(logits, targets, 0.0, topk=topk), F.cross_entropy(logits, targets))
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\), got 1.0"):
        smoothed_cross_entropy(logits, targets, 1.0)


@pytest.mark.parametrize("topk", [False, True])
def test_memories_smooth_their_cross_entropies(topk):
    centroids, x = unit(120, 8, seed=1), unit(10, 8, seed=2)
    targets = torch.arange(10) * 7
    memory = ClusterMemory(centroids, label_smoothing=0.1, smoothing_topk=topk)
    logits = x @ memory.centroids.t() / 0.05
    assert memory.loss(x, targets).item() == pytest.approx(naive_smoothed_ce(logits, targets, 0.1, topk=topk), rel=1e-9)
    assert cluster_nce(x, memory.centroids, targets, 0.05, label_smoothing=0.1, smoothing_topk=topk).item() == \
        pytest.approx(memory.loss(x, targets).item(), rel=1e-12)
    # HHCL: both terms of Eq. 2 use the smoothed cross-entropy.
    hhcl = HardHybridMemory(centroids, unit(120, 3, 8, seed=3), label_smoothing=0.1, smoothing_topk=topk)
    mined = hhcl.mine(x, targets)
    slots = torch.stack([hhcl.instances[c, mined.per_class[:, c]] for c in range(120)], dim=1)  # (B, C, D)
    hard_logits = torch.einsum("bd,bcd->bc", x, slots) / 0.05
    naive = 0.5 * naive_smoothed_ce(logits, targets, 0.1, topk=topk) + 0.5 * naive_smoothed_ce(hard_logits, targets, 0.1,
                                                                                                 topk=topk)
    assert hhcl.loss(x, targets).item() == pytest.approx(naive, rel=1e-9)
    plain = HardHybridMemory(centroids, unit(120, 3, 8, seed=3))
    assert plain.loss(x, targets).item() != pytest.approx(hhcl.loss(x, targets).item())


# ----------------------------------------------------------------------------- SpCL's hybrid memory with source rows
def test_hybrid_memory_puts_source_rows_first():
    source, target = unit(3, 6, seed=4) * 2, unit(8, 6, seed=5)
    memory = HybridMemory(target, source_centroids=source)
    assert (memory.num_source, memory.num_instances, memory.num_rows) == (3, 8, 11)
    assert torch.allclose(memory.features[:3], F.normalize(source, dim=1)) and torch.equal(memory.instance_features,
                                                                                          memory.features[3:])
    labels = np.array([0, 0, 1, -1, 1, 0, -1, 1])
    memory.set_labels(labels)
    assert memory.labels.tolist() == [0, 1, 2, 3, 3, 4, 5, 4, 3, 6, 4]
    # The loss is SpCL's over the source classes and the target's; a source sample's row is its class.
    x, rows = unit(4, 6, seed=6), torch.tensor([2, 0, 3 + 3, 3 + 4])
    row_labels = np.concatenate([[100, 101, 102], labels])  # the source rows: clusters of one row each
    assert memory.loss(x, None, indexes=rows).item() == pytest.approx(
        naive_spcl_loss(x, memory.features, row_labels, rows, 0.05), rel=1e-9)
    with pytest.raises(ValueError, match=r"labels must be \(8,\) integers \(one per instance row\)"):
        memory.set_labels(np.zeros(11, dtype=np.int64))
    with pytest.raises(ValueError, match=r"source_centroids must be a non-empty \(S, 6\) matrix"):
        HybridMemory(target, source_centroids=unit(3, 5))
