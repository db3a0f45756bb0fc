"""Calibrate the lab: SynthMarket, the start model and the schedule, measured together.

For one configuration (a SynthMarket config and difficulty, an input size, a start recipe) it

1. generates the target SynthMarket (seed 0) and the source SynthMarket the start model learns from
   (seed 1), with the same config;
2. trains the start model with labels on the source (reidlab's stand-in for ImageNet weights; 0 epochs keep
   the initialisation), optionally pretrains it further by instance discrimination (``--start-instance-epochs``,
   no labels), and evaluates it on the target;
3. trains the supervised ceiling: the start fine-tuned with the target's true identities;
4. runs each method at lab scale from the same start with the same budget, recording per-epoch mAP,
   pseudo-label ARI, purity and cluster count;

and writes everything to ``benchmarks/calibration/<name>.json`` (and prints a one-line summary per run).
The configurations tried, with what they showed, are listed in ``benchmarks/CALIBRATION.md``.

Examples::

    python benchmarks/calibrate_lab.py --name shipped --methods cluster_contrast,spcl,hhcl,scwm --seeds 0,1,2
    python benchmarks/calibrate_lab.py --name hard --difficulty 1.0 --synth cameras_per_id=[2,6] \\
        --start-jitter 0 --methods cluster_contrast

``--one-thread`` keeps torch to one thread (two experiments side by side on two cores). Every dataset and
start model is cached under ``$REIDLAB_DATA`` (default ``data/``), keyed by its
settings, so a second configuration sharing them skips that work.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from reidlab.config import data_dir
from reidlab.data.prepare import prepare_dataset
from reidlab.data.synthmarket import PRESETS, generate_synthmarket
from reidlab.data.synthmarket.appearance import Appearance
from reidlab.data.synthmarket.config import CAMPUS
from reidlab.data.synthmarket.plan import plan_samples
from reidlab.evaluation import evaluate_model
from reidlab.models import build_model
from reidlab.training import Trainer, preset
from reidlab.training.methods import get_method
from reidlab.training.run import parse_overrides
from reidlab.training.supervised import (
    SupervisedConfig,
    supervised_model,
    train_supervised,
)
from reidlab.utils import seed_everything

OUT = Path(__file__).resolve().parent / "calibration"
# The lab presets' schedule and augmentation when the calibration began, under every run here, so that each
# command in CALIBRATION.md still measures what it measured; the shipped lab adds `--set iters=120 --set
# colour_jitter=0.4 --set background_swap=1` (its own presets since, reidlab.training.config.SCALED_SETTINGS).
CALIBRATION_BASE = {"iters": 30, "colour_jitter": 0.0, "background_swap": 0.0}


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def synth_config(pairs: list[str]):
    """The default preset with ``key=value`` overrides (JSON values; lists become tuples)."""
    base = PRESETS["default"]
    values = {}
    for pair in pairs:
        key, _, text = pair.partition("=")
        value = _value(text)
        values[key] = tuple(value) if isinstance(value, list) else value
    return dataclasses.replace(base, **values)


def dataset(config, *, seed: int, difficulty: float):
    """SynthMarket of ``config`` (generated once, cached under a folder named by the config's hash)."""
    tag = "default" if config == PRESETS["default"] else hashlib.sha1(repr(config).encode()).hexdigest()[:8]
    root = data_dir() / "calibration" / f"synthmarket-{tag}-d{difficulty:g}-seed{seed}"
    generate_synthmarket(root, config=config, seed=seed, difficulty=difficulty, progress=False)
    return prepare_dataset("synthmarket", root, scale="lab", progress=False)


def relabelled_by_look(source, config, *, seed: int, difficulty: float, attributes: list[str]):
    """``source`` with every identity replaced by the class of its look: the tuple of its appearance's
    ``attributes`` (e.g. upper and lower colour), so that a start trained on it learns what clothes look like
    (a generic task, as ImageNet's categories are) rather than who each person is."""
    specs, _ = plan_samples(config, seed=seed, difficulty=difficulty)
    look = {s.pid: tuple(getattr(s.appearance, a) for a in attributes) for s in specs if s.pid > 0}
    classes = {key: i + 1 for i, key in enumerate(sorted(set(look.values()), key=repr))}
    relabelled = copy.copy(source)
    relabelled.train = [r._replace(pid=classes[look[r.pid]]) for r in source.train]
    return relabelled, len(classes)


def measure(model, data, height: int, width: int) -> float:
    metrics, _ = evaluate_model(model, data, height=height, width=width, progress=False)
    return round(100 * metrics["mAP"], 2)


LABELS = ("dbscan", "true", "true-split-by-camera", "true-20pct-noise", "dbscan-purified", "dbscan-merges-only",
          "instance")


def one_camera_share(labels, cameras) -> float:
    """Share of the clustered images (label >= 0) whose cluster holds a single camera."""
    labels, cameras = np.asarray(labels), np.asarray(cameras)
    kept = labels >= 0
    if not kept.any():
        return 0.0
    per_cluster = {}
    for label, camera in zip(labels[kept], cameras[kept]):
        per_cluster.setdefault(label, set()).add(camera)
    return float(np.mean([len(per_cluster[label]) == 1 for label in labels[kept]]))


class DiagnosticTrainer(Trainer):
    """The Trainer with its pseudo-labels replaced (diagnostics of what breaks training; not a method):
    ``true`` the identities, ``true-split-by-camera`` one class per identity and camera (pure clusters that
    never cross cameras), ``true-20pct-noise`` the identities with 20% of the labels drawn at random,
    ``dbscan-purified`` DBSCAN's clusters split by identity (its splits and outliers kept, its merges undone),
    ``dbscan-merges-only`` each identity as a whole in the DBSCAN cluster most of its images fall in (merges
    kept, splits and outliers undone), ``instance`` every image its own class (instance discrimination against a
    memory of every image, Wu et al. CVPR 2018: a self-supervised objective, used to pretrain a start)."""

    def __init__(self, *args, labels: str = "dbscan", **kwargs):
        super().__init__(*args, **kwargs)
        self.labels = labels
        self.one_camera_share: list[float] = []

    def pseudo_label(self, features):
        labels = self._replaced(super().pseudo_label(features))
        self.one_camera_share.append(one_camera_share(labels, [r.camid for r in self.dataset.train]))
        return labels

    def _replaced(self, labels):
        true = np.unique(self.true_pids, return_inverse=True)[1]
        if self.labels == "true":
            return true
        if self.labels == "instance":
            return np.arange(len(true))
        if self.labels == "true-split-by-camera":
            cameras = np.array([r.camid for r in self.dataset.train])
            return np.unique(true * 100 + cameras, return_inverse=True)[1]
        if self.labels == "true-20pct-noise":
            rng = np.random.default_rng(len(self.history))
            flip = rng.random(len(true)) < 0.2
            true = true.copy()
            true[flip] = rng.integers(0, true.max() + 1, flip.sum())
            return true
        if self.labels == "dbscan-purified":
            kept, pure = labels >= 0, np.full_like(labels, -1)
            pure[kept] = np.unique(labels[kept] * (true.max() + 1) + true[kept], return_inverse=True)[1]
            return pure
        if self.labels == "dbscan-merges-only":
            home = {}
            for pid in np.unique(true):
                clustered = labels[(true == pid) & (labels >= 0)]
                home[pid] = np.bincount(clustered).argmax() if len(clustered) else labels.max() + 1 + pid
            return np.unique([home[pid] for pid in true], return_inverse=True)[1]
        return labels


def instance_pretrained(start, data, *, epochs: int, options: dict):
    """``start`` trained for ``epochs`` x the lab's iterations by instance discrimination on ``data``'s
    training images (Cluster Contrast's loop with every image its own class; no label is read)."""
    cfg = preset("cluster_contrast", scale="lab", **{**options, "epochs": epochs, "step_size": epochs + 1,
                                                      "eval_step": epochs})
    seed_everything(0)
    trainer = DiagnosticTrainer(model_from(start, cfg, seed=0), data, cfg, seed=0, progress=False, labels="instance")
    trainer.fit()
    return trainer.model


def model_from(start, cfg, *, seed: int):
    """The model a run of ``cfg`` trains: ``start``'s weights in the method's model."""
    model = build_model(cfg.backbone, pooling=cfg.pooling, pretrained=False)
    model.load_state_dict(start.state_dict(), strict=False)
    return get_method(cfg.method).stage.build_model(model, cfg, seed=seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="name of this configuration (output file name)")
    parser.add_argument("--difficulty", type=float, default=1.0)
    parser.add_argument("--synth", action="append", default=[], help="SynthMarketConfig key=value (JSON value)")
    parser.add_argument("--size", default="64x32", help="input height x width")
    parser.add_argument("--start-jitter", type=float, default=0.4, help="colour jitter of the start's pretraining")
    parser.add_argument("--start-epochs", type=int, default=12)
    parser.add_argument("--sources", type=int, default=1, help="source SynthMarkets (seeds 1..n) the start learns from")
    parser.add_argument("--source-difficulty", type=float, default=None,
                        help="difficulty of the source SynthMarket(s) (default: the target's)")
    parser.add_argument("--source-domain", choices=("same", "campus"), default="same",
                        help="the source's world: the target's, or the campus domain (other cameras, "
                             "backgrounds, light and clothes; the start then transfers across domains)")
    parser.add_argument("--start-labels", default="identity",
                        help="what the start learns on the source: 'identity', or comma-separated appearance "
                             "attributes whose combination is the class (e.g. upper,lower)")
    parser.add_argument("--start-instance-epochs", type=int, default=0,
                        help="then pretrain the start for this many epochs by instance discrimination (no labels)")
    parser.add_argument("--start-instance-data", choices=("target", "source"), default="target",
                        help="the images the instance discrimination sees")
    parser.add_argument("--ceiling-epochs", type=int, default=8)
    parser.add_argument("--methods", default="cluster_contrast")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--labels", choices=LABELS, default="dbscan", help="replace the pseudo-labels (diagnostics)")
    parser.add_argument("--set", action="append", default=[], help="TrainConfig override for every method")
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.size.split("x"))
    config = synth_config(args.synth)
    if args.start_labels != "identity":  # checked before any data is generated
        unknown = sorted(set(args.start_labels.split(",")) - {f.name for f in dataclasses.fields(Appearance)})
        if unknown:
            raise SystemExit(f"--start-labels: {unknown} are not appearance attributes; choose from "
                             f"{[f.name for f in dataclasses.fields(Appearance)]} (or 'identity')")
        if args.sources != 1:
            raise SystemExit("--start-labels other than 'identity' needs --sources 1")
    began = time.perf_counter()
    target = dataset(config, seed=0, difficulty=args.difficulty)
    source_difficulty = args.difficulty if args.source_difficulty is None else args.source_difficulty
    source_config = config
    if args.source_domain == "campus":
        source_config = dataclasses.replace(config, cameras=8, cameras_per_id=(2, 8), domain=CAMPUS)
    source = dataset(source_config, seed=1, difficulty=source_difficulty)
    for k in range(1, args.sources):  # more source SynthMarkets: other people, other cameras
        more = dataset(source_config, seed=1 + k, difficulty=source_difficulty)
        source.train = source.train + [r._replace(pid=r.pid + 10000 * k, camid=r.camid + 10 * k) for r in more.train]
    start_cfg = SupervisedConfig(epochs=args.start_epochs, height=height, width=width,
                                 colour_jitter=args.start_jitter)
    cache_dir = None
    if args.start_labels != "identity":
        source, n_classes = relabelled_by_look(source, source_config, seed=1, difficulty=source_difficulty,
                                               attributes=args.start_labels.split(","))
        print(f"[{args.name}] start learns {n_classes} looks ({args.start_labels})", flush=True)
        cache_dir = data_dir() / "pretrained" / ("look-" + args.start_labels.replace(",", "-"))
    start = supervised_model(source, config=start_cfg, seed=1 if args.sources == 1 else 1000 + args.sources,
                             cache_dir=cache_dir, progress=False)
    overrides = parse_overrides(args.set)
    if args.start_instance_epochs:
        start = instance_pretrained(start, target if args.start_instance_data == "target" else source,
                                    epochs=args.start_instance_epochs,
                                    options={**CALIBRATION_BASE, "height": height, "width": width, **overrides})
    start_mAP = measure(start, target, height, width)
    print(f"[{args.name}] start {start_mAP}, {time.perf_counter() - began:.0f}s", flush=True)
    # The ceiling trains with the methods' background swap (it already shares their colour jitter).
    ceiling_cfg = dataclasses.replace(start_cfg, epochs=args.ceiling_epochs,
                                      background_swap=overrides.get("background_swap", 0.0))
    ceiling = copy.deepcopy(start)
    if args.ceiling_epochs:  # fine-tune with the target's labels (0: skip, the ceiling is known)
        seed_everything(0)
        train_supervised(ceiling, target.train, ceiling_cfg, seed=0, progress=False)
    result = {
        "name": args.name, "argv": sys.argv[1:], "synthmarket": dataclasses.asdict(config),
        "difficulty": args.difficulty, "source_difficulty": source_difficulty,
        "source_domain": args.source_domain, "size": [height, width],
        "start_config": dataclasses.asdict(start_cfg), "start_labels": args.start_labels,
        "sources": args.sources,
        "start_instance": {"epochs": args.start_instance_epochs, "data": args.start_instance_data},
        "start_mAP": start_mAP,
        "ceiling_mAP": measure(ceiling, target, height, width) if args.ceiling_epochs else None, "runs": [],
    }
    print(f"[{args.name}] start {result['start_mAP']}, "
          f"ceiling {result['ceiling_mAP']}, {time.perf_counter() - began:.0f}s", flush=True)
    OUT.mkdir(exist_ok=True)
    for method in args.methods.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            cfg = preset(method, scale="lab", **{**CALIBRATION_BASE, "height": height, "width": width, **overrides})
            seed_everything(seed)
            model = model_from(start, cfg, seed=seed)
            t0 = time.perf_counter()
            trainer = DiagnosticTrainer(model, target, cfg, seed=seed, progress=False, labels=args.labels)
            history = trainer.fit()
            seconds = time.perf_counter() - t0
            curve = [{**{k: e.get(k) for k in ("epoch", "mAP", "ari", "nmi", "n_clusters", "n_outliers", "seconds")},
                      "one_camera_share": share} for e, share in zip(history, trainer.one_camera_share)]
            final = next(e["mAP"] for e in reversed(history) if e.get("mAP") is not None)
            result["runs"].append({"method": method, "seed": seed, "labels": args.labels, "seconds": round(seconds, 1),
                                   "final_mAP": round(100 * final, 2), "curve": curve})
            epochs = " ".join(f"e{e['epoch']}:{100 * (e.get('mAP') or 0):.1f}/{e['ari']:.2f}/{e['n_clusters']}"
                              f"/{e['one_camera_share']:.2f}" for e in curve)
            # per epoch: mAP (0: not evaluated) / ARI / clusters / share of clustered images in one-camera clusters
            print(f"[{args.name}] {method} seed {seed}: mAP {100 * final:.1f} in {seconds:.0f}s; {epochs}", flush=True)
            (OUT / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    (OUT / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1 if "--one-thread" in sys.argv else torch.get_num_threads())
    raise SystemExit(main([a for a in sys.argv[1:] if a != "--one-thread"]))
