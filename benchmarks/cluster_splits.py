"""What separates one person's images into different clusters: the first clustering of a calibration config.

For the start model of a ``calibrate_lab.py`` configuration (same data, same cached start), it clusters the
target's training images as the first epoch of a lab run does, then, over every pair of images of one
identity that DBSCAN kept, prints how often the pair lands in one cluster when the two images share a
tracklet / background scene / camera / viewpoint, and when they do not. A factor whose "differ" share is far
below its "same" share is what splits people. It also prints how many identities each cluster holds
(merges) and how many clusters each identity falls into (splits).

Example (the e10 configuration of benchmarks/CALIBRATION.md)::

    python benchmarks/cluster_splits.py --difficulty 0.5 --synth 'tracklet_length=[2,4]' \\
        --synth scenes_per_camera=6 --synth camera_views=false
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import calibrate_lab  # noqa: E402  (the same data and start model as the calibration)

from reidlab.data.synthmarket.plan import plan_samples  # noqa: E402
from reidlab.models import build_model  # noqa: E402
from reidlab.training import Trainer, preset  # noqa: E402
from reidlab.training.supervised import SupervisedConfig, supervised_model  # noqa: E402


def scene_index(spec, camera) -> int:
    """The scene (0: the camera's own background, i: its i-th other scene) ``render_sample`` draws for ``spec``:
    the first draw of the background generator, keyed by the tracklet when there is one."""
    if not camera.other_scenes:
        return 0
    key = spec.track_key if spec.track_key is not None else spec.key
    rng = np.random.default_rng(np.random.SeedSequence(list(key)).spawn(4)[0])
    return int(rng.integers(len(camera.other_scenes) + 1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--difficulty", type=float, default=1.0)
    parser.add_argument("--synth", action="append", default=[], help="SynthMarketConfig key=value (JSON value)")
    parser.add_argument("--size", default="64x32", help="input height x width")
    parser.add_argument("--start-jitter", type=float, default=0.4)
    parser.add_argument("--eps", type=float, default=None, help="DBSCAN eps (default: the lab preset's)")
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.size.split("x"))
    config = calibrate_lab.synth_config(args.synth)
    target = calibrate_lab.dataset(config, seed=0, difficulty=args.difficulty)
    source = calibrate_lab.dataset(config, seed=1, difficulty=args.difficulty)
    start = supervised_model(source, config=SupervisedConfig(epochs=12, height=height, width=width,
                                                             colour_jitter=args.start_jitter), seed=1, progress=False)

    specs, cameras = plan_samples(config, seed=0, difficulty=args.difficulty)
    by_stem = {spec.stem: spec for spec in specs}
    info = [by_stem[Path(r.path).stem] for r in target.train]
    factors = {
        "tracklet": [spec.track_key or spec.key for spec in info],
        "background scene": [(spec.camera, scene_index(spec, cameras[spec.camera - 1])) for spec in info],
        "camera": [spec.camera for spec in info],
        "viewpoint": [spec.view for spec in info],
    }
    pids = np.array([spec.pid for spec in info])

    overrides = {"height": height, "width": width, **({"eps": args.eps} if args.eps is not None else {})}
    cfg = preset("cluster_contrast", scale="lab", **overrides)
    model = build_model(cfg.backbone, pooling=cfg.pooling, pretrained=False)
    model.load_state_dict(start.state_dict(), strict=False)
    _, labels = Trainer(model, target, cfg, seed=0, progress=False).clustering_stage()
    print(f"eps {cfg.eps}: {labels.max() + 1} clusters, {(labels < 0).sum()} outliers, {len(set(pids))} identities")

    together, same = [], {name: [] for name in factors}
    for pid in np.unique(pids):
        kept = np.flatnonzero((pids == pid) & (labels >= 0))
        for a, i in enumerate(kept):
            for j in kept[a + 1:]:
                together.append(labels[i] == labels[j])
                for name, values in factors.items():
                    same[name].append(values[i] == values[j])
    together = np.array(together)
    print(f"{len(together)} pairs of one identity, {100 * together.mean():.0f}% in one cluster")
    for name, flags in same.items():
        flags = np.array(flags)
        print(f"  {name:<17} same: {100 * together[flags].mean():3.0f}% together (n={flags.sum()}); "
              f"differ: {100 * together[~flags].mean():3.0f}% together (n={(~flags).sum()})")
    merges = collections.Counter(len(set(pids[labels == c])) for c in range(labels.max() + 1))
    splits = collections.Counter(len(set(labels[(pids == p) & (labels >= 0)])) for p in np.unique(pids))
    print("identities per cluster (count: clusters):", dict(sorted(merges.items())))
    print("clusters per identity (count: identities):", dict(sorted(splits.items())))
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    raise SystemExit(main())
