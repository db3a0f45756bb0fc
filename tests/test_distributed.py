"""The distributed path on the CPU: gloo, two processes, tiny scale; and the single-process no-ops.

Run as a script under ``torchrun`` this file is the worker of ``test_two_processes_train_identically`` (it
trains through ``reidlab.training.run.train_run``), with ``scwm`` as its first argument of
``test_two_processes_train_scwm_identically`` and with ``method`` of
``test_two_processes_train_the_domain_and_camera_methods_identically``; it saves what each rank ends with.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from reidlab.training import distributed
from reidlab.training.distributed import (
    World,
    all_gather_tensors,
    broadcast_array,
    broadcast_object,
    current_world,
    data_parallel,
    gather_shards,
    init_distributed,
    rank_seed,
    shard_bounds,
    sync_buffers,
)

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- one process
def test_single_process_world_and_no_op_helpers(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    world = init_distributed()
    assert world == World(0, 1, 0, torch.device("cpu")) == current_world("cpu")
    assert world.is_main and not world.is_distributed and not dist.is_initialized()
    x = torch.arange(6.0).view(3, 2)
    assert all_gather_tensors(x) is x and gather_shards(x, 3) is x
    labels = np.array([3, -1, 0])
    assert broadcast_array(labels) is labels and broadcast_object({"a": 1}) == {"a": 1}
    model = nn.Linear(2, 2)
    assert data_parallel(model, world) is model
    with pytest.raises(TypeError, match="sends a NumPy array, got list"):
        broadcast_array([1, 2])


def test_shard_bounds_split_evenly_and_in_order():
    for n in (0, 1, 7, 100):
        for world_size in (1, 2, 3, 4):
            bounds = [shard_bounds(n, r, world_size) for r in range(world_size)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            sizes = [b - a for a, b in bounds]
            assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError, match=r"rank must be in \[0, 2\), got 2"):
        shard_bounds(10, 2, 2)
    assert rank_seed(7, 0) == 7 and len({rank_seed(7, r) for r in range(4)}) == 4


# ----------------------------------------------------------------------------- collectives, 2 processes
def _collectives_worker(rank: int, world_size: int, init_file: str, results: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        out = {}
        # all_gather_tensors: rank order.
        out["gathered"] = all_gather_tensors(torch.full((2, 3), float(rank)))
        # gather_shards: unequal shards (n=7 -> 3 + 4 rows) come back as the whole matrix.
        whole = torch.arange(21.0).view(7, 3)
        start, stop = shard_bounds(7, rank, world_size)
        out["shards"] = gather_shards(whole[start:stop], 7)
        # broadcast_array / broadcast_object: rank 0's value everywhere.
        sent = np.array([[5, -1], [2, 9]], dtype=np.int64) if rank == 0 else None
        out["array"] = broadcast_array(sent)
        out["mask"] = broadcast_array(np.array([True, False, True]) if rank == 0 else np.zeros(1))
        out["object"] = broadcast_object({"epoch": 3} if rank == 0 else None)
        # sync_buffers: rank 0's BatchNorm statistics everywhere.
        bn = nn.BatchNorm1d(4)
        bn.running_mean.fill_(float(rank + 1))
        sync_buffers(bn)
        out["running_mean"] = bn.running_mean.clone()
        # DistributedDataParallel: a mean loss over each rank's half of the batch steps with the gradient
        # of the mean over the whole batch.
        torch.manual_seed(rank)  # different initial weights: DDP must copy rank 0's
        model = nn.Linear(4, 3)
        world = World(rank, world_size, rank, torch.device("cpu"))
        wrapped = data_parallel(model, world)
        assert isinstance(wrapped, nn.parallel.DistributedDataParallel)
        batch = torch.linspace(-1, 1, 32).view(8, 4)
        wrapped(batch[rank * 4:(rank + 1) * 4]).square().mean().backward()
        out["weight"] = model.weight.detach().clone()
        out["grad"] = model.weight.grad.clone()
        reference = nn.Linear(4, 3)
        reference.load_state_dict(model.state_dict())
        reference(batch).square().mean().backward()
        out["full_batch_grad"] = reference.weight.grad.clone()
        torch.save(out, os.path.join(results, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_collectives_with_two_gloo_processes(tmp_path):
    # fork: the children need not import torch again (seconds each on two cores).
    mp.start_processes(_collectives_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2,
                       start_method="fork")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    for out in ranks:
        assert torch.equal(out["gathered"], torch.tensor([[0.0] * 3] * 2 + [[1.0] * 3] * 2))
        assert torch.equal(out["shards"], torch.arange(21.0).view(7, 3))
        np.testing.assert_array_equal(out["array"], [[5, -1], [2, 9]])
        assert out["array"].dtype == np.int64
        np.testing.assert_array_equal(out["mask"], [True, False, True])
        assert out["object"] == {"epoch": 3}
        assert torch.equal(out["running_mean"], torch.ones(4))
        torch.testing.assert_close(out["grad"], out["full_batch_grad"])
    assert torch.equal(ranks[0]["weight"], ranks[1]["weight"])
    assert torch.equal(ranks[0]["grad"], ranks[1]["grad"])


# ----------------------------------------------------------------------------- training
TRAIN_ARGS = ["--method", "cluster_contrast", "--scale", "tiny", "--dataset", "synthmarket", "--init", "random",
              "--no-progress"]


@pytest.mark.slow
def test_two_processes_train_identically(tiny_synthmarket_root, tmp_path):
    run_dir, dumps = tmp_path / "run", tmp_path / "dumps"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               __file__, str(dumps), *TRAIN_ARGS, "--data-root", str(tiny_synthmarket_root),
               "--run-dir", str(run_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(dumps / f"rank{r}.pt", weights_only=False) for r in range(2)]
    assert [r["world"] for r in ranks] == [(0, 2), (1, 2)]
    # Same model (parameters and BatchNorm statistics) and same memory on both ranks.
    for name, value in ranks[0]["model"].items():
        assert torch.equal(value, ranks[1]["model"][name]), name
    assert torch.equal(ranks[0]["centroids"], ranks[1]["centroids"])
    assert torch.allclose(ranks[0]["centroids"].norm(dim=1), torch.ones(len(ranks[0]["centroids"])), atol=1e-4)
    # Each rank's loss saw its own 8 of the 16 images; every update saw all 16, rank 0's first.
    steps = [r["batches"] for r in ranks]
    assert len(steps[0]) == len(steps[1]) == 2 * 3
    for (loss_0, update_0), (loss_1, update_1) in zip(*steps):
        assert len(loss_0) == len(loss_1) == 8 and loss_0 != loss_1
        assert update_0 == update_1 == loss_0 + loss_1
    # Rank 0's history, written by rank 0 only, is every rank's.
    history = json.loads((run_dir / "history.json").read_text())
    assert [e["epoch"] for e in history] == [0, 1]
    for entry in history:
        assert np.isfinite(entry["loss"]) and entry["loss"] > 0 and entry["n_clusters"] > 0
        assert 0 <= entry["mAP"] <= 1 and 0 <= entry["rank1"] <= 1
        assert entry["memory_rows"] == entry["n_clusters"]
    assert ranks[0]["history"] == ranks[1]["history"] == history
    assert ranks[0]["writes"] == ["checkpoint.pt", "history.json"] * 2 and ranks[1]["writes"] == []
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint.pt", "history.json"]
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1
    for name, value in state["model"].items():
        assert torch.equal(value, ranks[0]["model"][name]), name


@pytest.mark.slow
def test_two_processes_train_scwm_identically(tiny_synthmarket_root, tmp_path):
    run_dir, dumps = tmp_path / "run", tmp_path / "dumps"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               __file__, "scwm", str(dumps), str(tiny_synthmarket_root), str(run_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(dumps / f"rank{r}.pt", weights_only=False) for r in range(2)]
    assert [r["world"] for r in ranks] == [(0, 2), (1, 2)]
    # The ranks started from different weights; DDP gave them rank 0's and kept them equal, part head and
    # part necks included.
    model = ranks[0]["model"]
    assert {"part_head.conv.weight", "part_necks.3.bn.weight", "part_necks.3.bn.running_mean"} <= set(model)
    for name, value in model.items():
        assert torch.equal(value, ranks[1]["model"][name]), name
    # Same clustering stage (gathered shards), memory, smoothed masks and classifier everywhere.
    for key in ("global", "pseudo_masks", "predicted_masks", "alpha", "centroids", "masks", "classifier"):
        assert torch.equal(ranks[0][key], ranks[1][key]), key
    assert ranks[0]["pseudo_masks"].shape == (len(ranks[0]["global"]), 16, 8)
    assert bool(ranks[0]["masks"].sum(dim=1).sub(1).abs().max() < 1e-5)  # soft masks: one per position
    # Each rank's loss saw its own 8 of the 16 images; every memory update saw all 16, rank 0's first.
    steps = [r["batches"] for r in ranks]
    assert len(steps[0]) == len(steps[1]) == 2 * 3
    for (loss_0, update_0), (loss_1, update_1) in zip(*steps):
        assert len(loss_0) == len(loss_1) == 8
        assert update_0 == update_1 == loss_0 + loss_1
    # Rank 0's history (with its mIoU and evaluation), written by rank 0 only, is every rank's.
    history = json.loads((run_dir / "history.json").read_text())
    assert [e["epoch"] for e in history] == [0, 1]
    for entry in history:
        assert np.isfinite(entry["loss"]) and entry["n_clusters"] > 0 and 0 <= entry["mAP"] <= 1
        assert sum(entry[f"loss_{name}"] for name in ("parsing", "diversity", "wnce", "sep", "id")) == \
            pytest.approx(entry["loss"], rel=1e-5)
        assert 0 <= entry["pseudo_miou"] <= 1 and 0 <= entry["predicted_miou"] <= 1
    assert ranks[0]["history"] == ranks[1]["history"] == history
    assert ranks[0]["writes"] == ["checkpoint.pt", "history.json"] * 2 and ranks[1]["writes"] == []
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1 and torch.equal(state["mask_smoother"]["masks"], ranks[0]["masks"])
    for name, value in state["model"].items():
        assert torch.equal(value, model[name]), name


@pytest.mark.slow
@pytest.mark.parametrize("method", ["spcl_uda", "cap_cluster_contrast"])  # the two-domain and the camera stage
def test_two_processes_train_the_domain_and_camera_methods_identically(method, tiny_synthmarket_root, tmp_path):
    run_dir, dumps = tmp_path / "run", tmp_path / "dumps"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", __file__,
               "method", str(dumps), *TRAIN_ARGS, "--data-root", str(tiny_synthmarket_root), "--run-dir", str(run_dir)]
    command[command.index("cluster_contrast")] = method
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(dumps / f"rank{r}.pt", weights_only=False) for r in range(2)]
    assert [r["world"] for r in ranks] == [(0, 2), (1, 2)]
    # Same model (both domains' BatchNorms, for SpCL's domain adaptation) and same memory on both ranks.
    for name, value in ranks[0]["model"].items():
        assert torch.equal(value, ranks[1]["model"][name]), name
    if method == "spcl_uda":
        assert any(".norms.source." in name for name in ranks[0]["model"])
    for name, value in ranks[0]["memory"].items():
        assert torch.equal(value, ranks[1]["memory"][name]), name
    # Each rank's loss saw its own half batch (SpCL: 8 source rows, then 8 target rows; CAP: 8 target images);
    # every update saw both ranks' batches, rank 0's first.
    steps = [r["steps"] for r in ranks]
    assert len(steps[0]) == len(steps[1]) == 2 * 3
    for (losses_0, update_0), (losses_1, update_1) in zip(*steps):
        assert [len(rows) for rows in losses_0] == [len(rows) for rows in losses_1] == (
            [8, 8] if method == "spcl_uda" else [8])
        assert update_0 == update_1 == [row for rows in losses_0 + losses_1 for row in rows]
    history = json.loads((run_dir / "history.json").read_text())
    assert [e["epoch"] for e in history] == [0, 1] and ranks[0]["history"] == ranks[1]["history"] == history
    terms = ("source", "target") if method == "spcl_uda" else ("intra", "inter", "cluster")
    for entry in history:
        assert np.isfinite(entry["loss"]) and 0 <= entry["mAP"] <= 1
        assert sum(entry[f"loss_{t}"] for t in terms) == pytest.approx(entry["loss"], rel=1e-5)


def test_single_process_command_is_the_plain_trainer(tiny_synthmarket, tiny_synthmarket_root, tmp_path,
                                                     monkeypatch, capsys):
    from reidlab.cli import main
    from reidlab.models import build_model
    from reidlab.training import Trainer, preset
    from reidlab.utils import seed_everything

    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    argv = [*TRAIN_ARGS, "--data-root", str(tiny_synthmarket_root), "--run-dir", str(tmp_path / "cli"),
            "--seed", "3", "--set", "epochs=1", "--set", "eval_step=1"]
    assert main(["train", *argv]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    seed_everything(3)
    model = build_model("labnet", pretrained=False)
    direct = Trainer(model, tiny_synthmarket, preset("cluster_contrast", scale="tiny", epochs=1), seed=3,
                     progress=False).fit()
    strip = lambda entry: {k: v for k, v in entry.items() if k != "seconds"}  # noqa: E731
    assert strip(printed) == strip(direct[-1])
    assert json.loads((tmp_path / "cli" / "history.json").read_text())[-1]["loss"] == printed["loss"]


def test_overrides_are_typed_and_checked():
    from reidlab.training.run import parse_overrides

    assert parse_overrides(["epochs=60", "eps=0.55", "cache_images=true", "pooling=avg"]) == {
        "epochs": 60, "eps": 0.55, "cache_images": True, "pooling": "avg"}
    with pytest.raises(ValueError, match="unknown TrainConfig field 'epoch'; valid fields: .*epochs"):
        parse_overrides(["epoch=3"])
    with pytest.raises(ValueError, match="--set takes key=value, got 'epochs'"):
        parse_overrides(["epochs"])
    with pytest.raises(ValueError, match="--set epochs=ten: int expected"):
        parse_overrides(["epochs=ten"])


def test_batch_must_split_over_the_processes(tiny_synthmarket, monkeypatch):
    from reidlab.models import build_model
    from reidlab.training import Trainer, preset

    monkeypatch.setattr("reidlab.training.trainer.current_world", lambda device: World(0, 3, 0, torch.device("cpu")))
    with pytest.raises(ValueError, match=r"batch_size \(16\) must split into 3 processes x P identities x "
                                         r"num_instances \(4\)"):
        Trainer(build_model("labnet", pretrained=False), tiny_synthmarket, preset("cluster_contrast", scale="tiny"),
                progress=False)


def test_part_trainer_tells_ddp_when_its_losses_leave_parameters_unused(tiny_synthmarket):
    """leaves_parameters_unused (DDP's find_unused_parameters) agrees with the gradients of a real step."""
    from dataclasses import replace

    from reidlab.models import PartReIDModel, build_model
    from reidlab.training import Trainer, preset
    from reidlab.training.config import SCWM_LOSSES
    from reidlab.training.stages import Batch

    PPLR_LOSSES = ("id", "triplet")

    cases = {
        "scwm": [SCWM_LOSSES, ("wnce",), ("sep",), ("id",), ("parsing", "diversity"), ("triplet",),
                 ("parsing", "triplet"), ("diversity", "wnce")],
        "pplr_stripes": [PPLR_LOSSES, ("id",), ("triplet",)],
    }
    for method, loss_sets in cases.items():
        every_loss = ("wnce", "sep", "id", "triplet") + (("parsing", "diversity") if method == "scwm" else ())
        config = preset(method, scale="tiny", losses=every_loss)
        torch.manual_seed(0)
        model = PartReIDModel.from_model(build_model("labnet", pretrained=False), num_parts=config.num_parts,
                                         part_source=config.part_source)
        trainer = Trainer(model, tiny_synthmarket, config, progress=False)
        features = trainer.clustering_features()
        labels = trainer.build_memory(features, trainer.pseudo_label(features.global_), 0)
        indexes = torch.from_numpy(np.flatnonzero(labels >= 0)[:8])
        targets = torch.from_numpy(labels[indexes.numpy()]).long()
        images = torch.randn(8, 3, config.height, config.width, generator=torch.Generator().manual_seed(0))
        masks = trainer.stage.smoother(indexes) if trainer.stage.parse else None
        for losses in loss_sets:
            trainer.config = replace(config, losses=losses)
            model.zero_grad(set_to_none=True)
            out = trainer.train_model.train()(images, parts=True)
            batch = Batch(images, targets, indexes, {"masks": masks})
            sum(trainer.stage.loss_terms(out, batch, 0).values()).backward()
            unused = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
            assert bool(unused) == trainer.stage.leaves_parameters_unused(), (method, losses, unused)
            if losses in (SCWM_LOSSES, PPLR_LOSSES):  # the papers' runs use every parameter
                assert unused == []


# ----------------------------------------------------------------------------- torchrun worker
def _torchrun_worker(argv: list[str]) -> None:
    """Train like ``python -m reidlab.train`` and save what this rank ends with into ``argv[0]``."""
    from reidlab.cli import _parser
    from reidlab.memory import ClusterMemory
    from reidlab.training import trainer as trainer_module
    from reidlab.training.run import parse_overrides, train_run

    dumps, args = Path(argv[0]), _parser().parse_args(["train", *argv[1:]])
    writes, batches = [], []
    write_atomically, loss, update = trainer_module.write_atomically, ClusterMemory.loss, ClusterMemory.update

    def recording_write(path, write):
        writes.append(Path(path).name)
        write_atomically(path, write)

    def recording_loss(memory, features, targets, *, indexes=None):
        batches.append([indexes.tolist()])
        return loss(memory, features, targets, indexes=indexes)

    def recording_update(memory, features, targets, *, indexes=None):
        batches[-1].append(indexes.tolist())
        update(memory, features, targets, indexes=indexes)

    trainer_module.write_atomically = recording_write
    ClusterMemory.loss, ClusterMemory.update = recording_loss, recording_update
    world = init_distributed()
    try:
        trainer = train_run(args.method, run_dir=args.run_dir, scale=args.scale, dataset=args.dataset,
                            data_root=args.data_root, seed=args.seed, overrides=parse_overrides(args.overrides),
                            init=args.init, progress=not args.no_progress)
        dumps.mkdir(exist_ok=True)
        torch.save({"world": (world.rank, world.world_size), "model": trainer.model.state_dict(),
                    "centroids": trainer.memory.centroids, "batches": batches, "history": trainer.history,
                    "writes": writes}, dumps / f"rank{world.rank}.pt")
    finally:
        distributed.cleanup_distributed()


def _scwm_torchrun_worker(argv: list[str]) -> None:
    """Train SCWM at tiny scale from a random LabNet (a different one per rank) and save what this rank ends
    with into ``argv[0]``; ``argv[1:]`` are the SynthMarket root and the run folder."""
    from reidlab.data import load_dataset
    from reidlab.memory import WeightedMemory
    from reidlab.models import PartReIDModel, build_model
    from reidlab.training import Trainer, preset
    from reidlab.training import trainer as trainer_module
    from reidlab.utils import seed_everything

    dumps, data_root, run_dir = (Path(arg) for arg in argv)
    writes, batches = [], []
    write_atomically, loss, update = trainer_module.write_atomically, WeightedMemory.loss, WeightedMemory.update

    def recording_write(path, write):
        writes.append(Path(path).name)
        write_atomically(path, write)

    def recording_loss(memory, features, targets, **kwargs):
        batches.append([targets.tolist()])
        return loss(memory, features, targets, **kwargs)

    def recording_update(memory, features, targets, **kwargs):
        batches[-1].append(targets.tolist())
        update(memory, features, targets, **kwargs)

    trainer_module.write_atomically = recording_write
    WeightedMemory.loss, WeightedMemory.update = recording_loss, recording_update
    world = init_distributed()
    try:
        config = preset("scwm", scale="tiny")
        seed_everything(world.rank)
        model = PartReIDModel.from_model(build_model("labnet", pretrained=False), num_parts=config.num_parts,
                                         part_source=config.part_source)
        trainer = Trainer(model, load_dataset("synthmarket", data_root), config, run_dir=run_dir, progress=False)
        trainer.fit()
        dumps.mkdir(exist_ok=True)
        stage = trainer.stage
        feats = stage.features_
        torch.save({"world": (world.rank, world.world_size), "model": trainer.model.state_dict(),
                    "global": feats.global_, "pseudo_masks": feats.pseudo_masks,
                    "predicted_masks": feats.predicted_masks, "alpha": feats.difficulty,
                    "centroids": trainer.memory.centroids, "masks": stage.smoother.masks,
                    "classifier": stage.classifier.weight.detach(), "batches": batches,
                    "history": trainer.history, "writes": writes}, dumps / f"rank{world.rank}.pt")
    finally:
        distributed.cleanup_distributed()


def _method_torchrun_worker(argv: list[str]) -> None:
    """Train like ``python -m reidlab.train`` (a method of the domain or the camera stage) and save what this rank
    ends with into ``argv[0]``: its model, memory, history, and the memory rows every loss and update saw."""
    from reidlab.cli import _parser
    from reidlab.memory import CameraProxyMemory, HybridMemory
    from reidlab.training.run import parse_overrides, train_run

    dumps, args = Path(argv[0]), _parser().parse_args(["train", *argv[1:]])
    steps = []
    hybrid_loss, camera_terms = HybridMemory.loss, CameraProxyMemory.loss_terms
    updates = {cls: cls.update for cls in (HybridMemory, CameraProxyMemory)}

    def recording_hybrid_loss(memory, features, targets=None, *, indexes=None):
        if not steps or len(steps[-1]) == 2:
            steps.append([[]])
        steps[-1][0].append(indexes.tolist())
        return hybrid_loss(memory, features, targets, indexes=indexes)

    def recording_camera_terms(memory, features, *, indexes=None):
        steps.append([[indexes.tolist()]])
        return camera_terms(memory, features, indexes=indexes)

    def recording_update(cls):
        def update(memory, features, targets=None, *, indexes=None):
            steps[-1].append(indexes.tolist())
            updates[cls](memory, features, targets, indexes=indexes)
        return update

    HybridMemory.loss, CameraProxyMemory.loss_terms = recording_hybrid_loss, recording_camera_terms
    for cls in updates:
        cls.update = recording_update(cls)
    world = init_distributed()
    try:
        trainer = train_run(args.method, run_dir=args.run_dir, scale=args.scale, dataset=args.dataset,
                            data_root=args.data_root, seed=args.seed, overrides=parse_overrides(args.overrides),
                            init=args.init, progress=not args.no_progress)
        dumps.mkdir(exist_ok=True)
        torch.save({"world": (world.rank, world.world_size), "model": trainer.model.state_dict(),
                    "memory": trainer.memory.state_dict(), "steps": steps, "history": trainer.history},
                   dumps / f"rank{world.rank}.pt")
    finally:
        distributed.cleanup_distributed()


if __name__ == "__main__":
    if sys.argv[1] == "scwm":
        _scwm_torchrun_worker(sys.argv[2:])
    elif sys.argv[1] == "method":
        _method_torchrun_worker(sys.argv[2:])
    else:
        _torchrun_worker(sys.argv[1:])
