import copy
import json
from dataclasses import asdict

import numpy as np
import pytest
import torch

from reidlab.memory import ClusterMemory, HardHybridMemory, HybridMemory
from reidlab.models import build_model
from reidlab.training import (
    METHODS,
    NAMED_PRESETS,
    TrainConfig,
    Trainer,
    build_start_model,
    preset,
)
from reidlab.training.supervised import supervised_config
from reidlab.utils import seed_everything

MEMORY_TYPES = {"spcl": HybridMemory, "cluster_contrast": ClusterMemory, "cluster_contrast_hard": ClusterMemory,
                "hhcl": HardHybridMemory}


def make_model(seed=0):
    seed_everything(seed)
    return build_model("labnet", pretrained=False)


@pytest.mark.parametrize("method", list(MEMORY_TYPES))
def test_each_method_trains_at_tiny_scale(method, tiny_synthmarket, tmp_path):
    config = preset(method, scale="tiny")
    trainer = Trainer(make_model(), tiny_synthmarket, config, run_dir=tmp_path, progress=False)
    history = trainer.fit()
    assert [e["epoch"] for e in history] == list(range(config.epochs))
    assert isinstance(trainer.memory, MEMORY_TYPES[method])
    n = len(tiny_synthmarket.train)
    for entry in history:
        assert np.isfinite(entry["loss"]) and entry["loss"] > 0
        assert 0 < entry["n_clusters"] and entry["n_clusters"] + entry["n_outliers"] <= n
        assert 0 <= entry["mAP"] <= 1 and 0 <= entry["rank1"] <= 1  # eval_step=1 at tiny scale
    # Memory size: O(N) for SpCL, O(C) for Cluster Contrast, O((P + 1) C) for HHCL.
    last = history[-1]
    expected_rows = {"spcl": n, "hhcl": last["n_clusters"] * (config.num_instances + 1)}.get(method, last["n_clusters"])
    assert last["memory_rows"] == expected_rows
    assert json.loads((tmp_path / "history.json").read_text())[-1]["loss"] == pytest.approx(last["loss"])
    # Rows stay unit-norm through training.
    rows = trainer.memory.features if method == "spcl" else trainer.memory.centroids
    assert torch.allclose(rows.norm(dim=1), torch.ones(len(rows)), atol=1e-4)


class Interrupt(Exception):
    pass


@pytest.mark.slow
@pytest.mark.parametrize("method", [*METHODS, *NAMED_PRESETS])
def test_resumed_run_ends_like_an_uninterrupted_one(method, tiny_synthmarket, tmp_path):
    """Kill after the first epoch, resume from another start model: the history equals an uninterrupted run's."""
    config = preset(method, scale="tiny", epochs=3)

    def start(seed):
        return build_start_model(config, scale="tiny", seed=seed, init="random", progress=False)

    full = Trainer(start(0), tiny_synthmarket, config, run_dir=tmp_path / "full", progress=False).fit()

    def stop_after_first_epoch(entry):
        if entry["epoch"] == 0:
            raise Interrupt

    with pytest.raises(Interrupt):
        Trainer(start(0), tiny_synthmarket, config, run_dir=tmp_path / "cut", progress=False,
                callbacks=[stop_after_first_epoch]).fit()
    resumed = Trainer(start(123), tiny_synthmarket, config, run_dir=tmp_path / "cut", progress=False).fit(resume=True)
    strip = lambda history: [{k: v for k, v in e.items() if k != "seconds"} for e in history]  # noqa: E731
    assert strip(resumed) == strip(full)
    state = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and state["data"] == tiny_synthmarket.identity()


def test_resume_refuses_another_config(tiny_synthmarket, tmp_path):
    config = preset("cluster_contrast", scale="tiny", epochs=1)
    Trainer(make_model(), tiny_synthmarket, config, run_dir=tmp_path, progress=False).fit()
    other = preset("cluster_contrast", scale="tiny", epochs=1, eps=0.55)
    with pytest.raises(ValueError, match=r"written by another run \(config.eps: 0.5 there, 0.55 here\)"):
        Trainer(make_model(), tiny_synthmarket, other, run_dir=tmp_path, progress=False).fit(resume=True)
    with pytest.raises(ValueError, match="needs a run_dir"):
        Trainer(make_model(), tiny_synthmarket, config, progress=False).fit(resume=True)


def test_presets_follow_the_papers():
    assert preset("hhcl", dataset="market1501").eps == 0.45
    assert preset("hhcl", dataset="msmt17").eps == 0.7
    spcl = preset("spcl")
    assert (spcl.momentum, spcl.batch_size, spcl.num_instances, spcl.iters) == (0.2, 64, 4, 400)
    cc = preset("cluster_contrast")
    assert (cc.momentum, cc.batch_size, cc.num_instances, cc.iters, cc.pooling) == (0.1, 256, 16, 200, "gem")
    assert preset("cluster_contrast", dataset="msmt17").iters == 400
    assert preset("hhcl").mu == 0.5 and preset("hhcl", scale="lab", mu=0.25).mu == 0.25
    # The papers' pipeline has no colour jitter and no background swap; the lab's ceiling augments as its methods do.
    for method in ("spcl", "cluster_contrast", "hhcl", "scwm"):
        assert (preset(method).colour_jitter, preset(method).background_swap) == (0, 0)
    lab, ceiling = preset("cluster_contrast", scale="lab"), supervised_config("lab")
    assert (ceiling.colour_jitter, ceiling.background_swap) == (lab.colour_jitter, lab.background_swap) == (0.4, 1.0)
    with pytest.raises(ValueError, match="method must be one of"):
        TrainConfig(method="spcl_v2")
    with pytest.raises(ValueError, match="multiple of num_instances"):
        TrainConfig(batch_size=100, num_instances=16)
    with pytest.raises(ValueError, match="scale must be"):
        preset("hhcl", scale="huge")


def test_trainer_checks_the_model_pooling(tiny_synthmarket):
    config = preset("cluster_contrast", scale="full")  # GeM in Cluster Contrast's reported setup
    with pytest.raises(ValueError, match="pools with 'avg' but the config says pooling='gem'"):
        Trainer(make_model(), tiny_synthmarket, config, progress=False)


def test_trainer_checks_the_model_against_ibn(tiny_synthmarket):
    config = preset("hhcl", scale="tiny", ibn=True, pooling="gem")  # HHCL Table 3's "IBN + GeM"
    with pytest.raises(ValueError, match="the model has no IBN layers but the config says ibn=True"):
        Trainer(build_model("labnet", pretrained=False, pooling="gem"), tiny_synthmarket, config, progress=False)
    Trainer(build_model("labnet_ibn_a", pretrained=False, pooling="gem"), tiny_synthmarket, config, progress=False)
    with pytest.raises(ValueError, match="label smoothing applies to the ClusterNCE-type losses of"):
        preset("spcl", scale="tiny", label_smoothing=0.1)


def test_trainer_checks_for_person_masks_before_background_swap(tiny_synthmarket):
    config = preset("cluster_contrast", scale="tiny", background_swap=0.5)
    Trainer(make_model(), tiny_synthmarket, config, progress=False)  # SynthMarket has every mask
    unmasked = copy.copy(tiny_synthmarket)
    unmasked.train = [r._replace(mask_path=None) if k % 3 == 0 else r for k, r in enumerate(tiny_synthmarket.train)]
    n = len(unmasked.train)
    with pytest.raises(ValueError, match=rf"but {(n + 2) // 3} of the {n} images of the training set have none.*"
                                         r"set background_swap=0"):
        Trainer(make_model(), unmasked, config, progress=False)


@pytest.mark.parametrize("search", ["exact", "approximate", "auto"])
def test_neighbour_search_reaches_the_knn_and_the_saved_config(search, tiny_synthmarket, tmp_path, monkeypatch):
    """TrainConfig.neighbour_search is the kNN method of every clustering, and is saved with the run."""
    from reidlab.cluster import neighbors
    methods = []
    knn_search = neighbors.knn_search

    def recording_knn_search(*args, method="exact", **kwargs):
        methods.append(method)
        return knn_search(*args, method=method, **kwargs)

    monkeypatch.setattr("reidlab.cluster.jaccard.knn_search", recording_knn_search)
    config = preset("cluster_contrast", scale="tiny", neighbour_search=search)
    trainer = Trainer(make_model(), tiny_synthmarket, config, run_dir=tmp_path / "run", progress=False)
    features = torch.nn.functional.normalize(torch.randn(200, 16), dim=1)
    labels = trainer.pseudo_label(features)
    assert methods == [search] and labels.shape == (200,)
    assert asdict(trainer.config)["neighbour_search"] == search  # what the checkpoint's "config" holds


def clustered_features(n=240, n_centres=12, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = torch.nn.functional.normalize(torch.from_numpy(rng.standard_normal((n_centres, dim))), dim=1)
    noise = torch.from_numpy(rng.standard_normal((n, dim))) * (1 / 3 / dim) ** 0.5
    return torch.nn.functional.normalize(centres[rng.integers(0, n_centres, n)] + noise, dim=1).float()


@pytest.mark.parametrize("method", ["cluster_contrast", "spcl"])
def test_pseudo_labels_store_only_pairs_within_eps(method, tiny_synthmarket, tmp_path, monkeypatch):
    """The Jaccard distance keeps the pairs within DBSCAN's largest eps; the labels are those of every pair."""
    from reidlab.cluster import DBSCANPseudoLabeler, SelfPacedRefiner, jaccard_distance

    cuts = []

    def recording_jaccard_distance(*args, max_distance=1.0, **kwargs):
        cuts.append(max_distance)
        return jaccard_distance(*args, max_distance=max_distance, **kwargs)

    monkeypatch.setattr("reidlab.training.trainer.jaccard_distance", recording_jaccard_distance)
    config = preset(method, scale="tiny")
    trainer = Trainer(make_model(), tiny_synthmarket, config, run_dir=tmp_path / "run", progress=False)
    features = clustered_features()
    labels = trainer.pseudo_label(features)
    every_pair = jaccard_distance(features, k1=config.k1, k2=config.k2)
    if method == "spcl":
        assert cuts == [config.eps + config.eps_gap]
        expected = SelfPacedRefiner(config.eps, eps_gap=config.eps_gap, min_samples=config.min_samples).fit(every_pair)
    else:
        assert cuts == [config.eps]
        expected = DBSCANPseudoLabeler(eps=config.eps, min_samples=config.min_samples).fit(every_pair)
    np.testing.assert_array_equal(labels, expected.labels_)
    assert labels.max() >= 5 and (every_pair.data > cuts[0]).sum() > every_pair.nnz / 2


def test_no_cluster_error_suggests_an_eps_from_every_pair(tiny_synthmarket, tmp_path):
    """With no cluster within eps, the error's suggested eps comes from the pairs beyond eps too."""
    from reidlab.cluster import DBSCANPseudoLabeler, EmptyClusteringError, jaccard_distance

    config = preset("cluster_contrast", scale="tiny", eps=0.02)
    trainer = Trainer(make_model(), tiny_synthmarket, config, run_dir=tmp_path / "run", progress=False)
    features = clustered_features(seed=1)
    with pytest.raises(EmptyClusteringError) as expected:
        DBSCANPseudoLabeler(eps=0.02).fit(jaccard_distance(features, k1=config.k1, k2=config.k2))
    assert "within 1.000" not in str(expected.value)
    with pytest.raises(EmptyClusteringError) as error:
        trainer.pseudo_label(features)
    assert str(error.value) == str(expected.value)
