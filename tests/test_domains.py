"""Domain adaptation: domain-specific BatchNorm (reidlab.models.domains), the two-domain stage and the source
dataset (reidlab.training.domains), and the SpCL / SpCL + Cluster Contrast domain-adaptation methods."""

import copy
import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reidlab.data import load_dataset
from reidlab.memory import ClusterMemory, HybridMemory
from reidlab.models import (
    DomainBatchNorm,
    build_model,
    convert_domain_batchnorm,
    domain_model,
    domain_split,
    has_domain_batchnorm,
)
from reidlab.models.domains import use_domain
from reidlab.training import METHODS, Trainer, build_start_model, preset
from reidlab.training.domains import (
    LAB_SOURCE,
    DomainStage,
    lab_source_root,
    load_source_dataset,
)
from reidlab.training.methods import MemoryInputs
from reidlab.training.stages import EpochFeatures

UDA = ("spcl_uda", "cluster_contrast_uda")


# ----------------------------------------------------------------------------- domain-specific BatchNorm
def plain_copy(converted, name, domain):
    """A fresh model of backbone ``name`` holding ``domain``'s BatchNorms of ``converted`` (renamed keys)."""
    plain = build_model(name, pretrained=False)
    state = {}
    for key, value in converted.state_dict().items():
        if ".norms." in key:
            head, rest = key.split(".norms.", 1)
            which, tail = rest.split(".", 1)
            if which != domain:
                continue
            key = f"{head}.{tail}"
        state[key] = value
    plain.load_state_dict(state)
    return plain


def scramble_norms(model, domain, seed):
    """Give ``domain``'s BatchNorms their own weights and running statistics."""
    generator = torch.Generator().manual_seed(seed)
    for layer in model.modules():
        if isinstance(layer, DomainBatchNorm):
            norm = layer.norms[domain]
            with torch.no_grad():
                norm.weight.copy_(1 + 0.3 * torch.randn(norm.weight.shape, generator=generator))
                if norm.bias.requires_grad:
                    norm.bias.copy_(0.3 * torch.randn(norm.bias.shape, generator=generator))
                norm.running_mean.copy_(0.3 * torch.randn(norm.running_mean.shape, generator=generator))
                norm.running_var.copy_(1 + torch.rand(norm.running_var.shape, generator=generator))


@pytest.mark.parametrize("name", ["labnet", "labnet_ibn_a", "resnet18"])
def test_a_converted_model_computes_what_the_original_did(name):
    torch.manual_seed(0)
    original = build_model(name, pretrained=False)
    converted = convert_domain_batchnorm(copy.deepcopy(original))
    assert has_domain_batchnorm(converted) and not has_domain_batchnorm(original)
    bns = sum(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in original.modules())
    assert sum(isinstance(m, DomainBatchNorm) for m in converted.modules()) == bns  # backbone and neck
    images = torch.randn(4, 3, 64, 32)
    assert torch.allclose(original.eval()(images), converted.eval()(images), atol=1e-6)
    original.train(), converted.train()
    with domain_split(converted, {"source": 2, "target": 2}):
        both = converted(images)
    assert torch.allclose(both[:2], original(images[:2]), atol=1e-5)
    assert not converted.neck.bn.norms["source"].bias.requires_grad  # the neck's frozen bias stays frozen
    assert not converted.neck.bn.norms["target"].bias.requires_grad


@pytest.mark.parametrize("name", ["labnet", "labnet_ibn_a", "resnet18"])
def test_each_domain_goes_through_its_own_batchnorms(name):
    torch.manual_seed(0)
    model = convert_domain_batchnorm(build_model(name, pretrained=False))
    scramble_norms(model, "source", seed=1)
    scramble_norms(model, "target", seed=2)
    source_net, target_net = plain_copy(model, name, "source"), plain_copy(model, name, "target")
    xs, xt = torch.randn(3, 3, 64, 32), torch.randn(5, 3, 64, 32)
    # Training mode: one forward of [source; target], each chunk with its own batch statistics and running averages.
    model.train(), source_net.train(), target_net.train()
    with domain_split(model, {"source": 3, "target": 5}):
        out = model(torch.cat([xs, xt]))
    assert torch.allclose(out, torch.cat([source_net(xs), target_net(xt)]), atol=1e-5)
    for domain, reference in (("source", source_net), ("target", target_net)):
        collapsed = domain_model(model, domain)
        for (key, value), (ref_key, ref_value) in zip(collapsed.state_dict().items(), reference.state_dict().items()):
            assert key == ref_key and torch.allclose(value.float(), ref_value.float(), atol=1e-6), (domain, key)
    # Evaluation (and any forward outside domain_split) is the target's; use_domain picks another.
    model.eval(), source_net.eval(), target_net.eval()
    images = torch.cat([xs, xt])
    assert torch.allclose(model(images), target_net(images), atol=1e-5)
    assert not torch.allclose(model(images), source_net(images), atol=1e-3)
    with use_domain(model, "source"):
        assert torch.allclose(model(images), source_net(images), atol=1e-5)
    assert torch.allclose(model(images), target_net(images), atol=1e-5)


def test_domain_routes_are_checked():
    model = convert_domain_batchnorm(build_model("labnet", pretrained=False))
    with pytest.raises(ValueError, match=r"the domain route \(\('source', 2\), \('target', 3\)\) covers 5 rows, the batch "
                                         r"has 4"), domain_split(model, {"source": 2, "target": 3}):
        model(torch.randn(4, 3, 64, 32))
    with pytest.raises(ValueError, match=r"unknown domain\(s\) \['other'\]"), domain_split(model, {"other": 4}):
        pass
    with pytest.raises(ValueError, match="has no domain-specific BatchNorm layers"), \
            domain_split(build_model("labnet", pretrained=False), {"source": 4}):
        pass
    with pytest.raises(ValueError, match="already has domain-specific BatchNorm"):
        convert_domain_batchnorm(model)
    assert all(layer.route is None for layer in model.modules() if isinstance(layer, DomainBatchNorm))


# ----------------------------------------------------------------------------- the source dataset
def test_the_lab_source_is_the_campus_domain_at_the_targets_size(tiny_synthmarket, reidlab_data_dir):
    config = preset("spcl_uda", scale="tiny")
    assert config.source_dataset == "synthmarket" and config.source_root == ""
    source = load_source_dataset(config, tiny_synthmarket, progress=False)
    assert source.root.resolve() == lab_source_root("tiny").resolve()
    assert source.root.resolve().is_relative_to(reidlab_data_dir.resolve())
    assert (LAB_SOURCE.seed, LAB_SOURCE.preset, LAB_SOURCE.domain) == (2, None, "campus")
    manifest = json.loads((source.root / "synthmarket.json").read_text())
    assert (manifest["preset"], manifest["seed"]) == ("tiny_campus", 2)
    assert source.stats()["train"]["cameras"] == 8 > tiny_synthmarket.stats()["train"]["cameras"]
    assert lab_source_root("default").name == "synthmarket-campus-uda-source-seed2"
    assert LAB_SOURCE.preset_for("campus") == "campus"  # a target of the campus domain: the source's seed differs
    assert len(source.train) > 0 and [r.path for r in source.train] != [r.path for r in tiny_synthmarket.train]
    assert load_source_dataset(config, tiny_synthmarket).root == source.root  # generated once, then loaded


def _market_layout(root):
    for split in ("bounding_box_train", "query", "bounding_box_test"):
        (root / "Market-1501-v15.09.15" / split).mkdir(parents=True)
        for name in ("0001_c1s1_000001_00.jpg", "0002_c2s1_000001_00.jpg"):
            (root / "Market-1501-v15.09.15" / split / name).write_bytes(b"")


def test_a_real_source_is_found_beside_the_target_or_at_its_root(tmp_path):
    _market_layout(tmp_path / "datasets")
    target = SimpleNamespace(root=tmp_path / "datasets" / "MSMT17_V1")  # only its folder is used
    config = preset("cluster_contrast_uda", dataset="msmt17")
    assert config.source_dataset == "market1501"
    source = load_source_dataset(config, target)
    assert source.root == tmp_path / "datasets" / "Market-1501-v15.09.15" and len(source.train) == 2
    elsewhere = SimpleNamespace(root=tmp_path / "far" / "away" / "MSMT17_V1")
    with pytest.raises(FileNotFoundError, match="the source dataset 'market1501' is not beside the target .* "
                                                "source_root"):
        load_source_dataset(config, elsewhere)
    explicit = dataclasses.replace(config, source_root=str(tmp_path / "datasets"))
    assert load_source_dataset(explicit, elsewhere).root == source.root
    itself = SimpleNamespace(root=source.root)
    with pytest.raises(ValueError, match="is the target itself"):
        load_source_dataset(explicit, itself)


def test_configs_say_where_the_source_is_needed():
    with pytest.raises(ValueError, match="method 'spcl_uda' trains on a labelled source dataset: set source_dataset"):
        preset("spcl_uda", scale="tiny", source_dataset="")
    with pytest.raises(ValueError, match=r"source_dataset and source_root are for the domain-adaptation methods "
                                         r"\['spcl_uda', 'cluster_contrast_uda'\], not 'cluster_contrast'"):
        preset("cluster_contrast", scale="tiny", source_dataset="msmt17")
    for name in UDA:  # Cluster Contrast appendix Table 1's pairs, SpCL's script settings
        assert preset(name, dataset="market1501").source_dataset == "msmt17"
        assert preset(name, dataset="msmt17").source_dataset == "market1501"
        assert preset(name, dataset="dukemtmcreid").source_dataset == "market1501"
        full = preset(name)
        assert (full.batch_size, full.num_instances, full.iters, full.epochs, full.eps, full.k1, full.k2,
                full.temperature, full.momentum) == (64, 4, 400, 50, 0.6, 30, 6, 0.05, 0.2)


# ----------------------------------------------------------------------------- the memories
def naive_centroids(features, labels):
    rows = []
    for label in range(int(labels.max()) + 1):
        members = [features[i] for i in range(len(labels)) if labels[i] == label]
        total = members[0].clone()
        for member in members[1:]:
            total = total + member
        rows.append(total / len(members) / (total / len(members)).norm())
    return torch.stack(rows)


def uda_inputs(seed=0, n_source=12, n_target=20, dim=8):
    generator = torch.Generator().manual_seed(seed)
    source = F.normalize(torch.randn(n_source, dim, generator=generator), dim=1)
    target = F.normalize(torch.randn(n_target, dim, generator=generator), dim=1)
    source_labels = torch.arange(n_source) % 4
    labels = np.array([0, 1, 2, -1] * (n_target // 4))
    labels[-2] = -1
    return EpochFeatures(target, source=source, source_labels=source_labels), labels


def test_spcl_uda_memory_holds_source_centroids_then_target_instances():
    features, labels = uda_inputs()
    config = preset("spcl_uda", scale="tiny")
    memory = METHODS["spcl_uda"].instance_memory(features, config)
    assert isinstance(memory, HybridMemory) and memory.num_source == 4 and memory.num_rows == 4 + 20
    assert torch.allclose(memory.features[:4], naive_centroids(features.source, features.source_labels), atol=1e-6)
    assert torch.allclose(memory.instance_features, features.global_, atol=1e-6)
    memory = METHODS["spcl_uda"].make_memory(MemoryInputs(features, labels, config, 0, 0, memory))
    # spcl_train_uda.py: source class c is class c; clusters after them; un-clustered images their own classes.
    outliers = np.flatnonzero(labels == -1)
    expected = list(range(4)) + [4 + label if label >= 0 else 4 + 3 + int(np.flatnonzero(outliers == i)[0])
                                 for i, label in enumerate(labels)]
    assert memory.labels.tolist() == expected


def naive_hybrid_loss(memory, x, rows):
    """SpCL's hm.py, one sample and one class at a time (source classes have a single row)."""
    total = 0.0
    for b in range(len(x)):
        logits = {}
        for cls in sorted(set(memory.labels.tolist())):
            members = [r for r in range(memory.num_rows) if memory.labels[r] == cls]
            logits[cls] = sum(float(x[b] @ memory.features[r]) for r in members) / len(members) / memory.temperature
        top = max(logits.values())
        exps = {cls: np.exp(value - top) for cls, value in logits.items()}
        p = exps[int(memory.labels[rows[b]])] / (sum(exps.values()) + 1e-6 * np.exp(-top))
        total += -np.log(p + 1e-6)
    return total / len(x)


def test_spcl_uda_loss_and_update_match_a_naive_version():
    features, labels = uda_inputs(seed=1)
    config = preset("spcl_uda", scale="tiny")
    memory = METHODS["spcl_uda"].instance_memory(features, config)
    memory = METHODS["spcl_uda"].make_memory(MemoryInputs(features, labels, config, 0, 0, memory))
    x = F.normalize(torch.randn(6, 8, generator=torch.Generator().manual_seed(2)), dim=1)
    # SpCLTrainer_UDA: the source batch by its labels (the source rows), the target's by S + dataset index.
    rows = torch.tensor([1, 1, 3, 4 + 0, 4 + 3, 4 + 3])
    assert memory.loss(x[:3], None, indexes=rows[:3]).item() == pytest.approx(naive_hybrid_loss(memory, x[:3], rows[:3]),
                                                                              rel=1e-5)
    assert memory.loss(x[3:], None, indexes=rows[3:]).item() == pytest.approx(naive_hybrid_loss(memory, x[3:], rows[3:]),
                                                                              rel=1e-5)
    expected = memory.features.clone()
    for x_i, row in zip(x, rows.tolist()):  # every feature moves its row: the class centroid or its instance
        expected[row] = 0.2 * expected[row] + 0.8 * x_i
        expected[row] = expected[row] / expected[row].norm()
    memory.update(x, None, indexes=rows)
    assert torch.allclose(memory.features, expected, atol=1e-6)


def test_cluster_contrast_uda_memory_is_one_cluster_memory_of_both_domains():
    features, labels = uda_inputs(seed=3)
    config = preset("cluster_contrast_uda", scale="tiny")
    memory = METHODS["cluster_contrast_uda"].make_memory(MemoryInputs(features, labels, config, 0, 0, None))
    assert isinstance(memory, ClusterMemory) and memory.num_rows == 4 + 3  # 4 identities, 3 clusters, no outliers
    target = naive_centroids(features.global_[labels >= 0], labels[labels >= 0])
    assert torch.allclose(memory.centroids, torch.cat([naive_centroids(features.source, features.source_labels), target]),
                          atol=1e-6)
    x = F.normalize(torch.randn(5, 8, generator=torch.Generator().manual_seed(4)), dim=1)
    targets = torch.tensor([0, 3, 4, 6, 6])  # two source identities, then target clusters 0 and 2 (offset by 4)
    naive = 0.0
    for x_i, y in zip(x, targets.tolist()):
        logits = [float(x_i @ row) / 0.05 for row in memory.centroids]
        naive += -(logits[y] - np.log(sum(np.exp(v) for v in logits)))
    assert memory.loss(x, targets).item() == pytest.approx(naive / 5, rel=1e-5)


# ----------------------------------------------------------------------------- the stage and the methods
def uda_model(method, seed=0):
    return build_start_model(preset(method, scale="tiny"), scale="tiny", seed=seed, init="random", progress=False)


def test_the_trainer_wants_a_domain_specific_model(tiny_synthmarket):
    config = preset("spcl_uda", scale="tiny")
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="trains a model with domain-specific BatchNorm"):
        Trainer(build_model("labnet", pretrained=False), tiny_synthmarket, config, progress=False)
    assert has_domain_batchnorm(uda_model("spcl_uda"))


def test_a_batch_is_a_source_batch_then_a_target_batch(tiny_synthmarket):
    config = preset("cluster_contrast_uda", scale="tiny")
    trainer = Trainer(uda_model("cluster_contrast_uda"), tiny_synthmarket, config, progress=False)
    stage = trainer.stage
    assert isinstance(stage, DomainStage) and stage.num_source_classes == len({r.pid for r in stage.source.train})
    features, labels = trainer.clustering_stage()
    assert features.source.shape == (len(stage.source.train), trainer.model.feature_dim)
    train_labels = trainer.build_memory(features, labels, 0)
    batch = next(iter(stage.batches(0, train_labels)))
    n, s = batch.extras["num_source"], stage.num_source_classes
    assert n == config.batch_size and len(batch.images) == 2 * config.batch_size
    # Source: true identities, P x K; its row in the memory is its class.
    assert torch.equal(batch.targets[:n], batch.indexes[:n]) and bool((batch.targets[:n] < s).all())
    assert all(len(set(batch.targets[i:i + 4].tolist())) == 1 for i in range(0, n, 4))
    # Target: pseudo-labels and dataset indices, both after the source classes.
    target_rows = (batch.indexes[n:] - s).numpy()
    assert (train_labels[target_rows] == (batch.targets[n:] - s).numpy()).all()
    terms = stage.loss_terms(stage.forward(batch), batch, 0)
    assert set(terms) == {"source", "target"} and all(torch.isfinite(v) for v in terms.values())


@pytest.mark.parametrize("method", UDA)
def test_each_domain_adaptation_method_trains_at_tiny_scale(method, tiny_synthmarket, tmp_path):
    config = preset(method, scale="tiny")
    model = uda_model(method)
    start = copy.deepcopy(model)
    trainer = Trainer(model, tiny_synthmarket, config, run_dir=tmp_path, progress=False)
    history = trainer.fit()
    s, n = trainer.stage.num_source_classes, len(tiny_synthmarket.train)
    for entry in history:
        assert np.isfinite(entry["loss"]) and entry["loss"] == pytest.approx(entry["loss_source"] + entry["loss_target"])
        assert entry["source_classes"] == s and 0 <= entry["mAP"] <= 1
        assert entry["memory_rows"] == (s + n if method == "spcl_uda" else s + entry["n_clusters"])
    rows = trainer.memory.features if method == "spcl_uda" else trainer.memory.centroids
    assert torch.allclose(rows.norm(dim=1), torch.ones(len(rows)), atol=1e-4)
    # Both domains' BatchNorms trained, apart: the source's statistics moved with the source images only.
    for layer, before in zip(trainer.model.modules(), start.modules()):
        if isinstance(layer, DomainBatchNorm) and isinstance(before.norms["source"], nn.BatchNorm2d):
            source, target = layer.norms["source"].running_mean, layer.norms["target"].running_mean
            assert not torch.equal(source, before.norms["source"].running_mean) and not torch.equal(source, target)


def test_a_given_source_dataset_is_used(tiny_synthmarket, tmp_path):
    from reidlab.data import generate_synthmarket

    other = load_dataset("synthmarket", generate_synthmarket(tmp_path / "other", preset="tiny", seed=5, progress=False))
    trainer = Trainer(uda_model("cluster_contrast_uda"), tiny_synthmarket, preset("cluster_contrast_uda", scale="tiny"),
                      source=other, progress=False)
    assert trainer.stage.source is other
