import sys, collections, numpy as np, torch
sys.path.insert(0, '/work/main/benchmarks')
import calibrate_lab as c
from reidlab.data.synthmarket.plan import plan_samples
from reidlab.training import preset, Trainer
from reidlab.training.supervised import SupervisedConfig, supervised_model
from reidlab.models import build_model
torch.set_num_threads(1)
d = float(sys.argv[1]); eps = float(sys.argv[2]); synth = sys.argv[3:]
config = c.synth_config(synth)
import hashlib
tag = hashlib.sha1(repr(config).encode()).hexdigest()[:8]
target = c.dataset(config, seed=0, difficulty=d, tag=tag); source = c.dataset(config, seed=1, difficulty=d, tag=tag)
start = supervised_model(source, config=SupervisedConfig(epochs=12, height=64, width=32, colour_jitter=0.4), seed=1, progress=False)
specs, cams = plan_samples(config, seed=0, difficulty=d)
by_stem = {s.stem: s for s in specs}
def scene(s):
    key = s.track_key if s.track_key is not None else s.key
    rng = np.random.default_rng(np.random.SeedSequence(list(key)).spawn(4)[0])
    cam = cams[s.camera - 1]
    return int(rng.integers(len(cam.other_scenes) + 1)) if cam.other_scenes else 0
from pathlib import Path
info = [by_stem[Path(r.path).stem] for r in target.train]
view = np.array([s.view for s in info]); sc = np.array([(s.camera, scene(s)) for s in info]); 
bgkind = np.array([([cams[s.camera-1].background] + [k for k, _ in cams[s.camera-1].other_scenes])[scene(s)] for s in info])
track = np.array([hash(s.track_key) for s in info]); cam = np.array([s.camera for s in info]); pid = np.array([s.pid for s in info])
cfg = preset('cluster_contrast', scale='lab', height=64, width=32, eps=eps)
model = build_model(cfg.backbone, pooling=cfg.pooling, pretrained=False); model.load_state_dict(start.state_dict(), strict=False)
tr = Trainer(model, target, cfg, seed=0, progress=False)
_, labels = tr.clustering_stage()
print('clusters', labels.max()+1, 'outliers', (labels<0).sum(), 'ids', len(set(pid)))
# for each pair of same-id clustered images: same cluster or not, vs same view / bg kind / camera / tracklet
rows = []
for p in np.unique(pid):
    idx = np.flatnonzero((pid == p) & (labels >= 0))
    for i in range(len(idx)):
        for j in range(i+1, len(idx)):
            a, b = idx[i], idx[j]
            rows.append((labels[a]==labels[b], view[a]==view[b], bgkind[a]==bgkind[b], cam[a]==cam[b], track[a]==track[b]))
rows = np.array(rows)
print('same-id pairs', len(rows), 'together', rows[:,0].mean().round(3))
for k, name in enumerate(['view','background kind','camera','tracklet'], start=1):
    m = rows[:, k]
    print(f'{name:16s} same: together {rows[m,0].mean():.3f} (n={m.sum()}); differ: together {rows[~m,0].mean():.3f} (n={(~m).sum()})')
# merges: how many ids per cluster
ids_per = [len(set(pid[labels==l])) for l in range(labels.max()+1)]
print('ids per cluster', collections.Counter(ids_per).most_common(6))
frag = [len(set(labels[(pid==p)&(labels>=0)])) for p in np.unique(pid)]
print('clusters per id', collections.Counter(frag).most_common(6))
