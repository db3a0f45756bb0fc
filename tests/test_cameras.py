"""Camera-aware proxies: CAP's memory (reidlab.memory.camera), the camera stage (reidlab.training.cameras) and the
CAP / CAP + Cluster Contrast methods."""

import bisect
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reidlab.memory import CameraProxyMemory, ClusterMemory, camera_proxies
from reidlab.training import Trainer, build_start_model, preset
from reidlab.training.cameras import CameraStage

CAMERA_METHODS = ("cap", "cap_cluster_contrast")


def toy(seed=0, n=48, dim=8, clusters=5, cameras=3):
    generator = torch.Generator().manual_seed(seed)
    features = F.normalize(torch.randn(n, dim, generator=generator), dim=1)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, clusters, n)
    labels[rng.choice(n, 6, replace=False)] = -1
    cams = rng.integers(0, cameras, n)
    return features, labels, cams


# ----------------------------------------------------------------------------- the proxies
def test_proxies_are_the_per_camera_means_of_each_cluster():
    features, labels, cams = toy()
    memory = CameraProxyMemory.from_labels(features, labels, cams)
    pairs = sorted({(int(c), int(y)) for c, y in zip(cams, labels) if y >= 0})  # camera by camera, as CAP numbers them
    assert memory.num_proxies == len(pairs)
    for p, (camera, cluster) in enumerate(pairs):
        members = [i for i in range(len(labels)) if labels[i] == cluster and cams[i] == camera]
        mean = sum(features[i] for i in members) / len(members)
        assert torch.allclose(memory.proxies[p], mean / mean.norm(), atol=1e-6)
        assert (int(memory.proxy_labels[p]), int(memory.proxy_cameras[p])) == (cluster, camera)
        assert all(int(memory.sample_proxies[i]) == p for i in members)
    assert (memory.sample_proxies[torch.from_numpy(labels < 0)] == -1).all()
    sample_proxies, proxy_labels, proxy_cameras = camera_proxies(labels, cams)
    assert sample_proxies.tolist() == memory.sample_proxies.tolist()
    assert proxy_labels.tolist() == memory.proxy_labels.tolist() and proxy_cameras.tolist() == memory.proxy_cameras.tolist()
    with pytest.raises(ValueError, match="labels hold no cluster"):
        camera_proxies(np.full(4, -1), np.zeros(4))


# ----------------------------------------------------------------------------- the loss and the update
def logsumexp(values):
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def naive_cap_terms(memory, x, indexes, cross_camera):
    """CAPMemory.loss_using_pseudo_percam_proxy, camera by camera and sample by sample."""
    proxies, tau = memory.proxies.double(), memory.temperature
    labels, cameras = memory.proxy_labels.tolist(), memory.proxy_cameras.tolist()
    own = [int(memory.sample_proxies[i]) for i in indexes]
    x = x.double()
    intra = inter = 0.0
    for camera in sorted({cameras[p] for p in own}):
        members = [b for b in range(len(x)) if cameras[own[b]] == camera]
        in_camera = [p for p in range(len(cameras)) if cameras[p] == camera]
        total = 0.0
        for b in members:
            logits = [float(x[b] @ proxies[p]) / tau for p in in_camera]
            total += -(logits[in_camera.index(own[b])] - logsumexp(logits))
        intra += total / len(members)
        if cross_camera:
            total = 0.0
            for b in members:
                positives = [p for p in range(len(labels)) if labels[p] == labels[own[b]]]
                others = sorted((p for p in range(len(labels)) if labels[p] != labels[own[b]]),
                                key=lambda p: float(x[b] @ proxies[p]))
                chosen = positives + others[-memory.negatives:]
                logits = [float(x[b] @ proxies[p]) / tau for p in chosen]
                total += -sum(logits[i] - logsumexp(logits) for i in range(len(positives))) / len(positives)
            inter += memory.cross_camera_weight * total / len(members)
    return intra, inter


@pytest.mark.parametrize("negatives", [3, 50])  # fewer than the other clusters' proxies, and more
@pytest.mark.parametrize("cross_camera", [False, True])
def test_loss_terms_match_capmemory_written_as_loops(negatives, cross_camera):
    features, labels, cams = toy(seed=1)
    memory = CameraProxyMemory.from_labels(features, labels, cams, negatives=negatives, cross_camera=cross_camera,
                                           temperature=0.07)
    indexes = torch.from_numpy(np.flatnonzero(labels >= 0)[:16])
    x = F.normalize(torch.randn(16, 8, generator=torch.Generator().manual_seed(2)), dim=1)
    terms = memory.loss_terms(x, indexes=indexes)
    intra, inter = naive_cap_terms(memory, x, indexes.tolist(), cross_camera)
    assert set(terms) == {"intra", "inter"}
    assert terms["intra"].item() == pytest.approx(intra, rel=1e-5)
    assert terms["inter"].item() == pytest.approx(inter, rel=1e-5, abs=1e-7)
    assert memory.loss(x, indexes=indexes).item() == pytest.approx(intra + inter, rel=1e-5)
    x.requires_grad_(True)
    memory.loss(x, indexes=indexes).backward()
    assert torch.isfinite(x.grad).all()


def test_with_clusters_clusternce_is_added_and_both_memories_update():
    features, labels, cams = toy(seed=3)
    memory = CameraProxyMemory.from_labels(features, labels, cams, with_clusters=True, cluster_momentum=0.1,
                                           cluster_temperature=0.05, momentum=0.2)
    assert isinstance(memory.clusters, ClusterMemory)
    assert memory.num_rows == memory.num_proxies + int(labels.max()) + 1
    indexes = torch.from_numpy(np.flatnonzero(labels >= 0)[:12])
    x = F.normalize(torch.randn(12, 8, generator=torch.Generator().manual_seed(4)), dim=1)
    clusters = torch.from_numpy(labels[indexes.numpy()])
    terms = memory.loss_terms(x, indexes=indexes)
    assert terms["cluster"].item() == pytest.approx(
        F.cross_entropy(x @ memory.clusters.centroids.t() / 0.05, clusters).item(), rel=1e-6)
    proxies, centroids = memory.proxies.clone(), memory.clusters.centroids.clone()
    for x_i, i in zip(x, indexes.tolist()):  # CAP's ExemplarMemory and Cluster Contrast's CM, sample by sample
        p, y = int(memory.sample_proxies[i]), int(labels[i])
        proxies[p] = 0.2 * proxies[p] + 0.8 * x_i
        proxies[p] = proxies[p] / proxies[p].norm()
        centroids[y] = 0.1 * centroids[y] + 0.9 * x_i
        centroids[y] = centroids[y] / centroids[y].norm()
    memory.update(x, indexes=indexes)
    assert torch.allclose(memory.proxies, proxies, atol=1e-6)
    assert torch.allclose(memory.clusters.centroids, centroids, atol=1e-6)


def test_the_memory_looks_samples_up_by_index():
    features, labels, cams = toy(seed=5)
    memory = CameraProxyMemory.from_labels(features, labels, cams)
    x = features[:2]
    with pytest.raises(ValueError, match="needs indexes="):
        memory.loss(x)
    outlier = int(np.flatnonzero(labels < 0)[0])
    with pytest.raises(ValueError, match="is an outlier"):
        memory.loss(x, indexes=torch.tensor([int(np.flatnonzero(labels >= 0)[0]), outlier]))


# ----------------------------------------------------------------------------- presets and the schedule
def test_presets_follow_cap_and_the_cluster_contrast_appendix():
    cap = preset("cap")  # train_cap.py
    assert (cap.batch_size, cap.num_instances, cap.k1, cap.k2, cap.eps, cap.pooling, cap.sample_by) == \
        (32, 4, 20, 6, 0.5, "avg", "proxy")
    assert (cap.proxy_momentum, cap.proxy_temperature, cap.crosscam_epoch, cap.crosscam_weight,
            cap.crosscam_negatives, cap.warmup_epochs, cap.epochs, cap.step_size) == (0.2, 0.07, 5, 0.5, 50, 10, 50, 20)
    cc = preset("cap_cluster_contrast")
    assert (cc.batch_size, cc.num_instances, cc.eps, cc.k1, cc.pooling, cc.sample_by, cc.proxy_temperature) == \
        (256, 16, 0.6, 30, "gem", "cluster", 0.05)
    assert preset("cap", dataset="msmt17").iters == 1000 and preset("cap_cluster_contrast", dataset="msmt17").iters == 400
    with pytest.raises(ValueError, match="sample_by='proxy' draws by camera proxy"):
        preset("cluster_contrast", scale="tiny", sample_by="proxy")
    with pytest.raises(ValueError, match="sample_by must be one of"):
        preset("cap", scale="tiny", sample_by="camera")


def test_the_warm_up_is_caps_warmup_multistep_lr(tiny_synthmarket):
    config = preset("cap", scale="tiny", warmup_epochs=10, step_size=20, epochs=50, lr=3.5e-4)
    trainer = Trainer(build_start_model(config, scale="tiny", init="random", progress=False), tiny_synthmarket, config,
                      progress=False)
    rates = []
    for _ in range(50):
        rates.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.optimizer.step()  # no gradients: nothing moves; the scheduler wants a step before its own
        trainer.scheduler.step()
    for epoch, rate in enumerate(rates):  # WarmupMultiStepLR(milestones=[20, 40], warmup_factor=0.01, warmup_iters=10)
        warm = 0.01 * (1 - epoch / 10) + epoch / 10 if epoch < 10 else 1.0
        assert rate == pytest.approx(3.5e-4 * warm * 0.1 ** bisect.bisect_right([20, 40], epoch), rel=1e-9), epoch


# ----------------------------------------------------------------------------- the stage and the methods
def camera_model(method, seed=0):
    return build_start_model(preset(method, scale="tiny"), scale="tiny", seed=seed, init="random", progress=False)


@pytest.mark.parametrize("method", CAMERA_METHODS)
def test_batches_are_drawn_by_proxy_or_by_cluster(method, tiny_synthmarket):
    config = preset(method, scale="tiny")
    trainer = Trainer(camera_model(method), tiny_synthmarket, config, progress=False)
    assert isinstance(trainer.stage, CameraStage)
    features, labels = trainer.clustering_stage()
    train_labels = trainer.build_memory(features, labels, 0)
    memory = trainer.memory
    batch = next(iter(trainer.stage.batches(0, train_labels)))
    expected = memory.sample_proxies[batch.indexes] if method == "cap" else torch.from_numpy(labels)[batch.indexes]
    assert torch.equal(batch.targets, expected) and bool((memory.sample_proxies[batch.indexes] >= 0).all())
    if method == "cap":  # every group of the P x K batch comes from one camera
        cameras = memory.proxy_cameras[batch.targets]
        assert all(len(set(cameras[batch.targets == t].tolist())) == 1 for t in batch.targets.unique())


@pytest.mark.parametrize("method", CAMERA_METHODS)
def test_each_camera_aware_method_trains_at_tiny_scale(method, tiny_synthmarket, tmp_path):
    config = preset(method, scale="tiny")
    assert config.crosscam_epoch == 1
    trainer = Trainer(camera_model(method), tiny_synthmarket, config, run_dir=tmp_path, progress=False)
    history = trainer.fit()
    terms = ("intra", "inter") + (("cluster",) if method == "cap_cluster_contrast" else ())
    for entry in history:
        assert np.isfinite(entry["loss"]) and 0 <= entry["mAP"] <= 1
        assert entry["loss"] == pytest.approx(sum(entry[f"loss_{t}"] for t in terms))
    assert history[0]["loss_inter"] == 0 < history[1]["loss_inter"]  # the inter-camera loss from crosscam_epoch
    memory = trainer.memory
    clusters = history[-1]["n_clusters"]
    assert history[-1]["memory_rows"] == memory.num_proxies + (clusters if method == "cap_cluster_contrast" else 0)
    assert memory.num_proxies >= clusters and int(memory.proxy_labels.max()) + 1 == clusters
    assert torch.allclose(memory.proxies.norm(dim=1), torch.ones(memory.num_proxies), atol=1e-4)
