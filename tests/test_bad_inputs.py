"""Bad inputs and faults, as a careless or unlucky user meets them: each is refused before work starts (or
where it is first knowable), with one message that names the problem, the path or field, and the fix; and
nothing is written, deleted or mixed on the way."""

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from reidlab.cli import main
from reidlab.cluster import DBSCANPseudoLabeler, jaccard_distance
from reidlab.config import NOTEBOOK_DIR
from reidlab.data import load_dataset, prepare_dataset
from reidlab.data.datasets import parse_market_folder
from reidlab.lab.notebook import run_notebook
from reidlab.models import build_model
from reidlab.training import Trainer, preset
from reidlab.utils import write_atomically


def labnet(seed=0):
    torch.manual_seed(seed)
    return build_model("labnet", pretrained=False)


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ----------------------------------------------------------------------------- config values
@pytest.mark.parametrize("field, value, expected", [
    ("epochs", 0, "TrainConfig.epochs must be an integer >= 1, got 0"),
    ("eval_step", 0, "TrainConfig.eval_step must be an integer >= 1, got 0"),
    ("num_instances", 0, "TrainConfig.num_instances must be an integer >= 1, got 0"),
    ("iters", 0, "TrainConfig.iters must be an integer >= 1, got 0"),
    ("batch_size", 0, "TrainConfig.batch_size must be an integer >= 1, got 0"),
    ("epochs", 2.5, "TrainConfig.epochs must be an integer >= 1, got 2.5"),
    ("lr", float("nan"), "TrainConfig.lr must be a number > 0, got nan"),
    ("eps", 1.0, r"TrainConfig.eps must be a number in \(0, 1\), got 1.0"),
    ("momentum", -0.1, r"TrainConfig.momentum must be a number in \[0, 1\], got -0.1"),
    ("cache_images", "yes", "TrainConfig.cache_images must be True or False, got 'yes'"),
    ("backbone", "vgg16", r"TrainConfig.backbone must be one of \('labnet', .*\), got 'vgg16'"),
    ("k2", 11, r"k2 \(11\) must be <= k1 \(10\)"),
    ("neighbour_search", "fast", (r"TrainConfig.neighbour_search must be one of \('exact', 'approximate', 'ivf', "
                                  r"'hnsw', 'auto'\), got 'fast'")),
])
def test_config_values_are_checked_when_the_config_is_made(field, value, expected):
    with pytest.raises(ValueError, match=expected):
        preset("cluster_contrast", scale="tiny", **{field: value})


def test_unknown_settings_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown TrainConfig field\(s\) \['epoch'\]; valid fields: method, epochs"):
        preset("hhcl", scale="tiny", epoch=3)


def test_cli_refuses_bad_settings_before_any_work(tmp_path, capsys):
    run_dir = tmp_path / "run"
    for setting, message in (("epochs=0", "TrainConfig.epochs must be an integer >= 1, got 0"),
                             ("sacle=tiny", "unknown TrainConfig field 'sacle'; valid fields:"),
                             ("eval_step=x", "--set eval_step=x: int expected")):
        assert main(["train", "--method", "cluster_contrast", "--scale", "tiny", "--run-dir", str(run_dir),
                     "--set", setting]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert not run_dir.exists()


def test_negative_seed_is_refused(tiny_synthmarket, capsys, tmp_path):
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -1"):
        Trainer(labnet(), tiny_synthmarket, preset("cluster_contrast", scale="tiny"), seed=-1)
    with pytest.raises(SystemExit):
        main(["train", "--method", "hhcl", "--run-dir", str(tmp_path), "--seed", "-1"])
    assert "expected an integer >= 0, got -1" in capsys.readouterr().err


# ----------------------------------------------------------------------------- notebook parameters
def test_runners_refuse_unknown_notebook_parameters(tmp_path):
    with pytest.raises(ValueError, match=r"train_one_run.ipynb has no parameter 'sacle'; its parameters: method"):
        run_notebook(NOTEBOOK_DIR / "train_one_run.ipynb", tmp_path / "out.ipynb", {"sacle": "tiny"})
    assert not (tmp_path / "out.ipynb").exists()


@pytest.mark.slow
def test_a_mistyped_papermill_parameter_stops_the_notebook(tmp_path, tiny_synthmarket_root):
    """``papermill -p sacle tiny`` used to run the notebook at its default lab scale."""
    out = tmp_path / "out.ipynb"
    done = subprocess.run([sys.executable, "-m", "papermill", str(NOTEBOOK_DIR / "train_one_run.ipynb"), str(out),
                           "-p", "sacle", "tiny", "-p", "data_root", str(tiny_synthmarket_root), "--cwd",
                           str(NOTEBOOK_DIR)], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "unknown parameter(s) 'sacle' (papermill -p / -r); this notebook's parameters: method" in done.stderr
    executed = json.loads(out.read_text())
    assert not any("history" in json.dumps(cell.get("outputs", [])) for cell in executed["cells"][4:])


def test_a_mistyped_data_root_is_not_filled_with_a_new_dataset(tmp_path):
    typo = tmp_path / "synthmraket"
    with pytest.raises(FileNotFoundError, match=f"no SynthMarket at {typo}: check the path"):
        prepare_dataset("synthmarket", typo, scale="tiny")
    assert not typo.exists()


# ----------------------------------------------------------------------------- output folders and images
def test_a_read_only_run_folder_is_found_before_training(tiny_synthmarket, tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    write_bytes = Path.write_bytes

    def read_only(path, data):  # as a read-only mount answers (root ignores chmod, so it is simulated)
        if path.parent == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return write_bytes(path, data)

    monkeypatch.setattr(Path, "write_bytes", read_only)
    with pytest.raises(PermissionError, match=f"cannot write to the run folder {folder} \\(Permission denied\\)"):
        Trainer(labnet(), tiny_synthmarket, preset("cluster_contrast", scale="tiny"), run_dir=folder)
    assert tree(folder) == []


def test_a_run_folder_that_is_a_file_is_found_before_training(tiny_synthmarket, tmp_path):
    blocker = tmp_path / "run"
    blocker.write_text("a file where the run folder should be")
    with pytest.raises(OSError, match=f"cannot write to the run folder {blocker}"):
        Trainer(labnet(), tiny_synthmarket, preset("cluster_contrast", scale="tiny"), run_dir=blocker)
    assert blocker.read_text() == "a file where the run folder should be"


def test_an_unreadable_query_image_is_found_before_training(tiny_synthmarket_root, tmp_path, monkeypatch):
    root = tmp_path / "copy"
    shutil.copytree(tiny_synthmarket_root, root)
    data = load_dataset("synthmarket", root)
    broken = Path(data.query[3].path)
    broken.write_bytes(b"not a jpeg")
    trainer = Trainer(labnet(), data, preset("cluster_contrast", scale="tiny"), progress=False)
    monkeypatch.setattr(trainer, "clustering_stage", lambda: pytest.fail("training started"))
    with pytest.raises(OSError, match=rf"1 image\(s\) cannot be opened: {broken} "):
        trainer.fit()


# ----------------------------------------------------------------------------- data identity
def test_resume_refuses_a_checkpoint_made_on_other_data(tiny_synthmarket_root, tmp_path):
    config = preset("cluster_contrast", scale="tiny", epochs=2)
    data = load_dataset("synthmarket", tiny_synthmarket_root)
    run_dir = tmp_path / "run"

    class Stop(Exception):
        pass

    def stop(entry):
        raise Stop

    with pytest.raises(Stop):
        Trainer(labnet(), data, config, run_dir=run_dir, progress=False, callbacks=[stop]).fit()
    other = tmp_path / "other"
    shutil.copytree(tiny_synthmarket_root, other)
    moved = next((other / "bounding_box_train").iterdir())
    moved.rename(moved.with_name("0999" + moved.name[4:]))  # one label changed: other data
    before = (run_dir / "checkpoint.pt").read_bytes()
    with pytest.raises(ValueError, match=r"written by another run \(dataset fingerprint: '[0-9a-f]+' there"):
        Trainer(labnet(), load_dataset("synthmarket", other), config, run_dir=run_dir, progress=False).fit(resume=True)
    assert (run_dir / "checkpoint.pt").read_bytes() == before  # nothing mixed into the run
    # The same files under another root are the same data: the run resumes.
    same = tmp_path / "same"
    shutil.copytree(tiny_synthmarket_root, same)
    history = Trainer(labnet(), load_dataset("synthmarket", same), config, run_dir=run_dir,
                      progress=False).fit(resume=True)
    assert [e["epoch"] for e in history] == [0, 1]


def test_reproduce_refuses_a_done_run_made_on_other_data(tiny_synthmarket_root, tmp_path, capsys):
    from reidlab.reproduce import experiments

    results = tmp_path / "results"
    runs = experiments.EXPERIMENTS["cc_update"].plan("tiny")[:1]
    folder = runs[0].folder(results)
    folder.mkdir(parents=True)
    identity = runs[0].identity(0)
    data = load_dataset("synthmarket", tiny_synthmarket_root).identity()
    (folder / "config.json").write_text(json.dumps({**identity, "data": data}))
    (folder / "metrics.json").write_text(json.dumps({"epochs": 2, "mAP": 0.1, "rank1": 0.1,
                                                     "data": {**data, "fingerprint": "0123456789abcdef"}}))
    with pytest.raises(ValueError, match=r"other settings or data \(data fingerprint: 0123456789abcdef .* -> "):
        experiments.run_experiments(runs, results=results, data_root=tiny_synthmarket_root, seed=0,
                                    runner=lambda *a, **k: pytest.fail("must not run"))
    assert main(["reproduce", "cc_update", "--scale", "tiny", "--data-root", str(tiny_synthmarket_root),
                 "--results", str(results), "--dry-run"]) == 1
    assert "data fingerprint: 0123456789abcdef" in capsys.readouterr().err


def test_dry_run_shows_the_data(tiny_synthmarket_root, tmp_path, capsys):
    fingerprint = load_dataset("synthmarket", tiny_synthmarket_root).fingerprint()
    assert main(["reproduce", "cc_update", "--scale", "tiny", "--data-root", str(tiny_synthmarket_root),
                 "--results", str(tmp_path), "--dry-run"]) == 0
    assert f"(fingerprint {fingerprint})" in capsys.readouterr().out


# ----------------------------------------------------------------------------- corrupt files
def test_a_truncated_checkpoint_is_named_with_what_to_do(tiny_synthmarket, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint.pt").write_bytes(b"\x80\x02truncated")
    config = preset("cluster_contrast", scale="tiny")
    with pytest.raises(ValueError, match=f"{run_dir / 'checkpoint.pt'} is not a readable checkpoint .* delete it"):
        Trainer(labnet(), tiny_synthmarket, config, run_dir=run_dir, progress=False).fit(resume=True)
    (run_dir / "checkpoint.pt").write_bytes(b"")
    assert main(["train", "--method", "cluster_contrast", "--scale", "tiny", "--dataset", "synthmarket",
                 "--data-root", str(tiny_synthmarket.root), "--init", "random", "--run-dir", str(run_dir),
                 "--resume", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert f"{run_dir / 'checkpoint.pt'} is not a readable checkpoint" in err and "Traceback" not in err


def test_a_corrupt_metrics_file_is_named(tmp_path):
    from reidlab.reproduce import experiments

    run = experiments.EXPERIMENTS["cc_update"].plan("tiny")[0]
    folder = run.folder(tmp_path)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(run.identity(0)))
    (folder / "metrics.json").write_text('{"epochs": 2, "mAP"')
    with pytest.raises(ValueError, match=f"{folder / 'metrics.json'} is not a readable run metrics"):
        experiments.run_experiments([run], results=tmp_path, seed=0, runner=lambda *a, **k: None)


# ----------------------------------------------------------------------------- never delete what reidlab did not make
def test_a_failed_atomic_write_leaves_nothing(tmp_path):
    def full_disk(partial):
        partial.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    for _ in range(2):  # retries do not pile up partial files
        with pytest.raises(OSError, match="No space left"):
            write_atomically(tmp_path / "history.json", full_disk)
    assert tree(tmp_path) == []


def test_overwrite_never_replaces_what_is_not_a_synthmarket(tmp_path):
    from reidlab.data import generate_synthmarket

    mine = tmp_path / "mine"
    (mine / "bounding_box_train").mkdir(parents=True)
    (mine / "notes.txt").write_text("a user's half-copied dataset")
    with pytest.raises(FileExistsError, match="is not a SynthMarket"):
        generate_synthmarket(mine, preset="tiny", overwrite=True, workers=0, progress=False)
    assert tree(mine) == ["bounding_box_train", "notes.txt"]


def test_no_code_removes_paths_it_did_not_create():
    """Every removal in the library is one of the audited places, each proving its path is its own."""
    package = Path(__file__).resolve().parents[1] / "reidlab"
    audited = {  # file: removals and why each is safe
        "utils.py": 2,  # write_atomically's own unique partial file; check_writable's own unique probe file
        # stale folders that carry its marker; its own marker file (twice: before renaming its partial folder
        # to root, in both branches); the old copy it moved aside and marked; its own partial folder on failure
        "data/synthmarket/writer.py": 5,
    }
    found = {}
    for path in package.rglob("*.py"):
        text = path.read_text()
        count = sum(text.count(word) for word in ("rmtree(", ".unlink(", "os.remove(", ".rmdir(", "os.rmdir("))
        if count:
            found[str(path.relative_to(package))] = count
    assert found == audited


# ----------------------------------------------------------------------------- numbers
def test_nan_distances_are_refused_dense_and_sparse():
    dist = np.full((6, 6), 0.3)
    np.fill_diagonal(dist, 0)
    dist[2, 4] = np.nan
    for matrix in (dist, sp.csr_matrix(dist)):
        with pytest.raises(ValueError, match=r"the distance matrix holds 1 NaN or infinite entries \(first in row 2\)"):
            DBSCANPseudoLabeler(eps=0.5).fit(matrix)
    dist[2, 4] = -0.1
    with pytest.raises(ValueError, match="1 negative entries"):
        DBSCANPseudoLabeler(eps=0.5).fit(dist)


def test_nan_features_are_refused_before_the_neighbour_search():
    features = torch.nn.functional.normalize(torch.randn(50, 8), dim=1)
    features[7] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or inf in 1 of 50 rows \(first: row 7\)"):
        jaccard_distance(features, k1=5, k2=2)


def test_one_cluster_holding_every_image_is_named(tiny_synthmarket, monkeypatch):
    trainer = Trainer(labnet(), tiny_synthmarket, preset("cluster_contrast", scale="tiny"), progress=False)
    monkeypatch.setattr(trainer, "pseudo_label", lambda features: np.zeros(len(features), dtype=np.int64))
    with pytest.raises(ValueError, match=r"one cluster holds every training image: eps=0.5 is too large, lower it"):
        trainer.fit()


# ----------------------------------------------------------------------------- dataset files
def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def test_malformed_file_names_are_named(tmp_path):
    _touch(tmp_path / "-_c1s1_000001_00.jpg")
    with pytest.raises(ValueError, match=r"cannot read person id and camera from '.*-_c1s1_000001_00.jpg'"):
        parse_market_folder(tmp_path, num_cameras=6)


def test_other_image_extensions_load_and_other_files_are_reported(tmp_path, caplog):
    for name in ("0001_c1s1_000001_00.jpg", "0001_c2s1_000002_00.JPG", "0002_c1s1_000003_00.jpeg",
                 "0002_c3s1_000004_00.png", "Thumbs.db", "readme.txt"):
        _touch(tmp_path / name)
    with caplog.at_level(logging.WARNING, logger="reidlab.data.datasets"):
        records = parse_market_folder(tmp_path, num_cameras=6)
    assert [(Path(r.path).name, r.pid, r.camid) for r in records] == [
        ("0001_c1s1_000001_00.jpg", 1, 0), ("0001_c2s1_000002_00.JPG", 1, 1), ("0002_c1s1_000003_00.jpeg", 2, 0),
        ("0002_c3s1_000004_00.png", 2, 2)]
    assert "ignored 2 file(s) that are not .jpg/.jpeg/.png images: Thumbs.db, readme.txt" in caplog.text


def test_cli_runtime_failures_are_one_line(tmp_path, capsys):
    assert main(["demo", "--scale", "tiny", "--data-root", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("reidlab demo: error: no SynthMarket at") and err.count("\n") == 1
    assert not (tmp_path / "missing").exists() and not (tmp_path / "o").exists()
