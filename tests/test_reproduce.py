"""reidlab.reproduce: the experiment registry, --list / --dry-run, datasets, resume logic, the results table."""

import json
from dataclasses import asdict, fields

import pytest
from papermill.exceptions import PapermillExecutionError

from reidlab import reproduce
from reidlab.cli import main
from reidlab.lab.notebook import NotebookRun
from reidlab.reproduce import (
    EXPERIMENTS,
    Experiment,
    Run,
    plan_experiments,
    run_experiments,
    write_table,
)
from reidlab.reproduce.paper_results import PAPER_RESULTS, find_paper_result
from reidlab.training import METHODS, NAMED_PRESETS, TrainConfig, preset

RUNNABLE = (*METHODS, *NAMED_PRESETS)  # what a reproduction run may name

RUN_COUNTS = {  # experiment: (runs at lab/tiny scale, runs at full scale)
    "main": (4, 11),
    "hhcl_mu": (5, 5),
    "scwm_parsing": (4, 8),
    "scwm_update": (3, 6),
    "scwm_components": (3, 6),
    "cc_update": (2, 4),
    "cc_appendix": (6, 12),
    "hhcl_tricks": (3, 6),
}
# Runs the papers' texts report no number for (reidlab/paper_results.py's docstring).
NOT_REPORTED = {("cluster_contrast_hard", "market1501"), ("cluster_contrast_hard", "msmt17"), ("hhcl", "msmt17")}


# ----------------------------------------------------------------------------- registry
@pytest.mark.parametrize("scale", ["tiny", "lab", "full"])
def test_registry_expansion(scale):
    assert list(EXPERIMENTS) == list(RUN_COUNTS)
    config_fields = {f.name for f in fields(TrainConfig)}
    for name, experiment in EXPERIMENTS.items():
        runs = experiment.plan(scale)
        assert len(runs) == RUN_COUNTS[name][scale == "full"], name
        assert len({run.label for run in runs}) == len(runs)  # one folder per run
        assert len({run.folder("r") for run in runs}) == len(runs)
        for run in runs:
            assert run.method in RUNNABLE and set(run.overrides) <= config_fields
            assert run.folder("r").parts == ("r", name, scale, run.label)
            if scale == "full":
                assert run.dataset == run.paper_dataset and run.label.endswith(f"-{run.dataset}")
            else:  # SynthMarket stands in for Market-1501
                assert (run.dataset, run.paper_dataset) == ("synthmarket", "market1501")
                assert run.label.endswith("-synthmarket")
            paper = find_paper_result(run.method, run.paper_dataset, run.paper_settings)
            assert (paper is None) == ((run.method, run.paper_dataset) in NOT_REPORTED), run
    main_full = EXPERIMENTS["main"].plan("full")
    assert ("scwm", "dukemtmcreid") not in {(r.method, r.dataset) for r in main_full}  # SCWM reports no Duke


def test_every_run_builds_its_config():
    for scale in ("lab", "full"):
        for run in plan_experiments(["all"], scale=scale):
            identity = run.identity(seed=3)
            config = preset(run.method, scale=scale, dataset=run.dataset, **run.overrides)
            assert identity["config"] == json.loads(json.dumps(asdict(config)))
            assert identity["seed"] == 3 and identity["overrides"] == json.loads(json.dumps(dict(run.overrides)))


def test_sweeps_map_to_the_papers_rows():
    mu_runs = EXPERIMENTS["hhcl_mu"].plan("lab")
    assert [run.overrides["mu"] for run in mu_runs] == [0.0, 0.25, 0.5, 0.75, 1.0]
    papers = [find_paper_result("hhcl", "market1501", run.paper_settings) for run in mu_runs]
    assert [p.mAP for p in papers] == [78.5, 82.7, 84.2, 81.7, 80.8]  # HHCL Table 2
    assert {p.source for p in papers} == {"HHCL (Hu et al.) Table 2"}
    parsing = EXPERIMENTS["scwm_parsing"].plan("full", ["msmt17"])
    assert [(r.overrides["foreground_correction"], r.overrides["space_correction"]) for r in parsing] == [
        (False, False), (True, False), (False, True), (True, True)]
    assert [find_paper_result("scwm", "msmt17", r.paper_settings).mAP for r in parsing] == [48.8, 48.7, 49.3, 49.1]
    updates = EXPERIMENTS["scwm_update"].plan("full", ["market1501"])
    assert [r.overrides["memory_update"] for r in updates] == ["mean", "hard", "weighted"]
    assert [find_paper_result("scwm", "market1501", r.paper_settings).mAP for r in updates] == [87.2, 87.4, 87.5]
    mean, hard = EXPERIMENTS["cc_update"].plan("full", ["market1501"])
    assert (mean.method, hard.method) == ("cluster_contrast", "cluster_contrast_hard")
    assert find_paper_result(mean.method, "market1501", mean.paper_settings).setting == "GeM pooling"


def test_appendix_and_hhcl_table_3_map_to_the_papers_rows():
    for dataset, maps in (("market1501", [83.0, 84.2, 77.5, 83.3, 79.2, 83.5]),
                          ("msmt17", [33.0, 33.6, 26.8, 35.1, 36.9, 40.1])):  # Cluster Contrast appendix Table 1
        runs = EXPERIMENTS["cc_appendix"].plan("full", [dataset])
        assert [find_paper_result(r.method, dataset, r.paper_settings).mAP for r in runs] == maps
        assert [r.overrides.get("pooling") for r in runs[:2]] == ["avg", "gem"]
        source = {"market1501": "msmt17", "msmt17": "market1501"}[dataset]  # the table's "source" column
        assert [r.datasets_needed() for r in runs] == [(dataset,)] * 2 + [(dataset, source)] * 2 + [(dataset,)] * 2
    for dataset, maps in (("market1501", [84.2, 87.8, 88.2]), ("dukemtmcreid", [73.3, 76.8, 77.3])):  # HHCL Table 3
        runs = EXPERIMENTS["hhcl_tricks"].plan("full", [dataset])
        papers = [find_paper_result("hhcl", dataset, r.paper_settings) for r in runs]
        assert [p.mAP for p in papers] == maps and {p.source for p in papers} == {"HHCL (Hu et al.) Table 3"}
        assert [(r.overrides.get("ibn", False), r.overrides.get("label_smoothing", 0.0)) for r in runs] == [
            (False, 0.0), (True, 0.0), (True, 0.1)]
    lab = EXPERIMENTS["cc_appendix"].plan("lab")  # the lab source SynthMarket is generated: no --data-root needed
    assert [r.source_dataset() for r in lab] == ["", "", "synthmarket", "synthmarket", "", ""]
    assert {r.datasets_needed() for r in lab} == {("synthmarket",)}


def test_plan_selection_and_errors():
    assert len(plan_experiments(["all"], scale="lab")) == sum(lab for lab, _ in RUN_COUNTS.values())
    assert len(plan_experiments(["cc_update", "cc_update"], scale="tiny")) == 2
    assert [r.dataset for r in EXPERIMENTS["main"].plan("full", ["msmt17"])] == ["msmt17"] * 4
    assert len(EXPERIMENTS["main"].plan("lab", ["market1501"])) == 4
    # Several experiments: each runs on the chosen datasets it has; one without them is left out.
    msmt = plan_experiments(["hhcl_mu", "cc_update", "scwm_update"], scale="full", datasets=["msmt17"])
    assert [(r.experiment, r.label) for r in msmt] == [("cc_update", "mean-msmt17"), ("cc_update", "hard-msmt17")] + [
        ("scwm_update", f"{u}-msmt17") for u in ("mean", "hard", "weighted")]
    with pytest.raises(ValueError, match="none of hhcl_mu, scwm_update has runs on dukemtmcreid"):
        plan_experiments(["hhcl_mu", "scwm_update"], scale="full", datasets=["dukemtmcreid"])
    with pytest.raises(ValueError, match="unknown experiment 'nope'; valid: main, hhcl_mu"):
        plan_experiments(["nope"], scale="lab")
    with pytest.raises(ValueError, match="name at least one experiment"):
        plan_experiments([], scale="lab")
    with pytest.raises(ValueError, match="at lab and tiny scale every run trains on SynthMarket.*got msmt17"):
        EXPERIMENTS["main"].plan("lab", ["msmt17"])
    with pytest.raises(ValueError, match="datasets must be among market1501, dukemtmcreid, msmt17, got cuhk03"):
        EXPERIMENTS["main"].plan("full", ["cuhk03"])
    with pytest.raises(ValueError, match="experiment 'hhcl_mu' has no runs on msmt17; its datasets are market1501"):
        EXPERIMENTS["hhcl_mu"].plan("full", ["msmt17"])
    with pytest.raises(ValueError, match="scale must be one of"):
        EXPERIMENTS["main"].plan("huge")
    with pytest.raises(ValueError, match="repeats a \\(dataset, label\\) pair"):
        Experiment("x", "", "", (Run("hhcl", "market1501", "a"), Run("spcl", "market1501", "a")))


# ----------------------------------------------------------------------------- command line
def test_list(capsys):
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for name, (lab, full) in RUN_COUNTS.items():
        assert f"\n{name}" in f"\n{out}" and f"runs: {lab} at tiny/lab scale (on SynthMarket), {full} at full" in out
    assert "HHCL Table 2" in out and "SCWM Table 3" in out


def test_dry_run_prints_and_runs_nothing(tmp_path, capsys):
    results = tmp_path / "results"
    assert main(["reproduce", "cc_update", "--scale", "tiny", "--dry-run", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "2 run(s), seed 0" in out
    assert "cc_update/tiny/mean-synthmarket" in out and "cc_update/tiny/hard-synthmarket" in out
    assert out.count(": run\n") == 2 and "dataset: SynthMarket in " in out
    assert not results.exists()
    # A done run and a partial one are shown as such.
    done = results / "cc_update" / "tiny" / "mean-synthmarket"
    done.mkdir(parents=True)
    (done / "metrics.json").write_text(json.dumps({"epochs": 2}))
    partial = results / "cc_update" / "tiny" / "hard-synthmarket" / "train"
    partial.mkdir(parents=True)
    (partial / "checkpoint.pt").write_bytes(b"")
    (partial / "history.json").write_text(json.dumps([{"epoch": 0}]))
    assert main(["reproduce", "cc_update", "--scale", "tiny", "--dry-run", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "mean-synthmarket" in out and ": skip (done)" in out and ": resume after epoch 1" in out


def test_cli_errors(tmp_path, capsys):
    assert main(["reproduce"]) == 2  # a usage error
    assert "reidlab reproduce: error: name at least one experiment" in capsys.readouterr().err
    assert main(["reproduce", "--table", "--results", str(tmp_path)]) == 1  # a runtime error: nothing to tabulate
    assert f"no finished run under {tmp_path}/" in capsys.readouterr().err
    assert main(["reproduce", "hhcl_mu", "--scale", "lab", "--dataset", "dukemtmcreid"]) == 2
    assert "--dataset can only be market1501 or synthmarket" in capsys.readouterr().err


def _market_layout(root):
    """A Market-1501 folder the loader accepts (names only: no image is opened)."""
    for split in ("bounding_box_train", "query", "bounding_box_test"):
        (root / "Market-1501-v15.09.15" / split).mkdir(parents=True)
        (root / "Market-1501-v15.09.15" / split / "0001_c1s1_000001_00.jpg").write_bytes(b"")


def test_missing_dataset_says_where_to_put_it(tmp_path, capsys):
    assert main(["reproduce", "hhcl_mu", "--scale", "full", "--data-root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"reidlab reproduce: error: Market-1501 not found under {tmp_path}: put its folder Market-1501-v15.09.15/ (holding "
        f"bounding_box_train/, query/, bounding_box_test/) into {tmp_path}/"
    )
    assert main(["reproduce", "cc_update", "--scale", "full"]) == 1
    err = capsys.readouterr().err
    assert "full scale trains on the real datasets, which reidlab cannot download: pass --data-root DIR" in err
    assert "Market-1501-v15.09.15/" in err and "MSMT17_V1/ (holding train/, test/, list_train.txt" in err
    assert "MSMT17_V2/ (holding mask_train_v2/" in err
    _market_layout(tmp_path)
    runs = EXPERIMENTS["cc_update"].plan("full")
    reproduce.check_datasets(runs[:2], tmp_path)  # Market-1501 runs: found
    with pytest.raises(FileNotFoundError, match=f"^MSMT17 not found under {tmp_path}: put its folder MSMT17_V1/"):
        reproduce.check_datasets(runs, tmp_path)
    uda = [r for r in EXPERIMENTS["cc_appendix"].plan("full", ["market1501"]) if r.method == "spcl_uda"]
    with pytest.raises(FileNotFoundError, match=f"^MSMT17 not found under {tmp_path}"):  # the source, MSMT17
        reproduce.check_datasets(uda, tmp_path)
    with pytest.raises(FileNotFoundError, match=f"^SynthMarket not found under {tmp_path}: omit --data-root to "
                                                "generate it in .*synthmarket-lab, or generate it at .* --preset lab`$"):
        reproduce.check_datasets(EXPERIMENTS["cc_update"].plan("lab"), tmp_path)


# ----------------------------------------------------------------------------- running and resuming
class FakeRunner:
    """Stands in for run_notebook: records its calls and returns the metrics the notebook would record."""

    def __init__(self, fail=(), config_change=None):
        self.calls = []
        self.fail = set(fail)
        self.config_change = config_change or {}

    def __call__(self, notebook, output, parameters, *, progress=True):
        self.calls.append(dict(parameters))
        output.write_text("{}")
        if parameters["method"] in self.fail:
            raise PapermillExecutionError(7, 1, "fit()", "ValueError", "boom", [])
        overrides = json.loads(parameters["overrides"])
        config = asdict(preset(parameters["method"], scale=parameters["scale"], dataset=parameters["dataset"],
                               **{**overrides, **self.config_change}))
        m = 0.5 if parameters["method"] == "cluster_contrast" else 0.25
        metrics = {"mAP": m, "rank1": m + 0.1, "rank5": 0.8, "rank10": 0.9, "mINP": 0.1, "n_clusters": 12,
                   "epochs": config["epochs"], "seconds": 3.0, "config": json.loads(json.dumps(config)), "history": []}
        return NotebookRun(notebook, output, 1.5, metrics)


def _run(tmp_path, runner, *, seed=0, lines=None):
    runs = EXPERIMENTS["cc_update"].plan("tiny")
    return run_experiments(runs, results=tmp_path, seed=seed, runner=runner, progress=False,
                           report=(lines if lines is not None else []).append)


def test_runs_write_their_files_and_are_skipped_when_done(tmp_path):
    runner, lines = FakeRunner(), []
    outcomes = _run(tmp_path, runner, lines=lines)
    assert [o.status for o in outcomes] == ["ran", "ran"]
    assert lines[0] == "[1/2] cc_update/tiny/mean-synthmarket: running (cluster_contrast, 2 epochs)"
    assert lines[1].startswith("[1/2] cc_update/tiny/mean-synthmarket: done, mAP 50.0%, Rank-1 60.0%")
    folder = tmp_path / "cc_update" / "tiny" / "mean-synthmarket"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "metrics.json", "notebook.ipynb"]
    params = runner.calls[0]
    assert params == {"method": "cluster_contrast", "dataset": "synthmarket", "data_root": None, "scale": "tiny",
                      "seed": 0, "overrides": "{}", "run_dir": str(folder.resolve() / "train")}
    config = json.loads((folder / "config.json").read_text())
    assert config["config"] == json.loads(json.dumps(asdict(preset("cluster_contrast", scale="tiny"))))
    assert config["notebook"].endswith("notebooks/train_one_run.ipynb")
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["mAP"] == 0.5 and metrics["run"] == "mean-synthmarket" and metrics["paper_dataset"] == "market1501"
    assert "config" not in metrics and "history" not in metrics  # they live in config.json and train/
    lines.clear()
    outcomes = _run(tmp_path, runner, lines=lines)
    assert [o.status for o in outcomes] == ["skipped", "skipped"] and len(runner.calls) == 2
    assert lines == ["[1/2] cc_update/tiny/mean-synthmarket: skipped (done)",
                     "[2/2] cc_update/tiny/hard-synthmarket: skipped (done)"]
    assert outcomes[0].metrics == metrics


def test_partial_run_is_resumed(tmp_path):
    runner, lines = FakeRunner(), []
    _run(tmp_path, runner)
    folder = tmp_path / "cc_update" / "tiny" / "hard-synthmarket"
    (folder / "metrics.json").unlink()  # interrupted after its first epoch's checkpoint
    (folder / "train").mkdir()
    (folder / "train" / "checkpoint.pt").write_bytes(b"")
    (folder / "train" / "history.json").write_text(json.dumps([{"epoch": 0}]))
    assert reproduce.run_status(folder) == ("partial", 1)
    outcomes = _run(tmp_path, runner, lines=lines)
    assert [o.status for o in outcomes] == ["skipped", "resumed"]
    assert lines[1] == "[2/2] cc_update/tiny/hard-synthmarket: resuming after epoch 1 of 2"
    assert len(runner.calls) == 3 and runner.calls[-1]["run_dir"] == str(folder.resolve() / "train")
    assert reproduce.run_status(folder) == ("done", 2)


def test_failed_run_leaves_no_metrics_and_the_others_go_on(tmp_path):
    lines = []
    folder = (tmp_path / "cc_update" / "tiny" / "mean-synthmarket").resolve()
    outcomes = _run(tmp_path, FakeRunner(fail={"cluster_contrast"}), lines=lines)
    assert [o.status for o in outcomes] == ["failed", "ran"]
    assert outcomes[0].error == "ValueError: boom"
    assert lines[1] == f"[1/2] cc_update/tiny/mean-synthmarket: failed (ValueError: boom); see {folder}/notebook.ipynb"
    assert not (tmp_path / "cc_update" / "tiny" / "mean-synthmarket" / "metrics.json").exists()
    assert reproduce.run_status(tmp_path / "cc_update" / "tiny" / "mean-synthmarket") == ("new", 0)
    assert [o.status for o in _run(tmp_path, FakeRunner())] == ["ran", "skipped"]


def test_other_settings_are_refused_before_anything_runs(tmp_path):
    _run(tmp_path, FakeRunner())
    runner = FakeRunner()
    with pytest.raises(ValueError, match=r"mean-synthmarket holds a run made with other settings or data \(seed: 0 -> 1\)"):
        _run(tmp_path, runner, seed=1)
    assert runner.calls == []
    # A done run made with other config values (reidlab's defaults changed) stays done, with a note ...
    config_path = tmp_path / "cc_update" / "tiny" / "hard-synthmarket" / "config.json"
    config = json.loads(config_path.read_text())
    config["config"]["eta"] = 1.5
    config_path.write_text(json.dumps(config))
    lines = []
    assert [o.status for o in _run(tmp_path, runner, lines=lines)] == ["skipped", "skipped"]
    assert lines[1] == ("[2/2] cc_update/tiny/hard-synthmarket: skipped (done); made with an earlier config: "
                        f"eta 1.5 -> {TrainConfig.eta}; delete the folder to run it again")
    # ... but a partial one cannot be resumed with them.
    (config_path.parent / "metrics.json").unlink()
    (config_path.parent / "train").mkdir()
    (config_path.parent / "train" / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"hard-synthmarket holds a run made with other settings or data \(config: eta 1.5 -> "):
        _run(tmp_path, runner)
    assert runner.calls == []
    outcomes = _run(tmp_path / "other", FakeRunner(config_change={"momentum": 0.9}))
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert outcomes[0].error.endswith("trained with another config than config.json (fields ['momentum'])")
    assert not (tmp_path / "other" / "cc_update" / "tiny" / "mean-synthmarket" / "metrics.json").exists()


# ----------------------------------------------------------------------------- the table
def _fake_metrics(results, experiment, scale, label, **values):
    run = next(r for r in EXPERIMENTS[experiment].plan(scale) if r.label == label)
    folder = run.folder(results)
    folder.mkdir(parents=True)
    identity = {k: v for k, v in run.identity(0).items() if k != "config"}
    metrics = {**identity, "paper_settings": list(run.paper_settings),
               "index": run.index, "backbone": "labnet" if scale != "full" else "resnet50", "rank5": 0.5,
               "rank10": 0.6, "mINP": 0.05, "n_clusters": 10, "epochs": 8, "seconds": 60.0, **values}
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_table_puts_paper_numbers_next_to_ours(tmp_path):
    _fake_metrics(tmp_path, "cc_update", "lab", "hard-synthmarket", mAP=0.031, rank1=0.021)
    _fake_metrics(tmp_path, "hhcl_mu", "lab", "mu0.25-synthmarket", mAP=0.052, rank1=0.061)
    _fake_metrics(tmp_path, "main", "lab", "cluster_contrast-synthmarket", mAP=0.037, rank1=0.023)
    md, page, png = write_table(tmp_path)
    rows = [line for line in md.read_text().splitlines() if line.startswith("| ") and "experiment" not in line]
    # Registry order: main, hhcl_mu, ..., cc_update.
    assert [row.split(" | ")[0] for row in rows] == ["| main", "| hhcl_mu", "| cc_update"]
    assert rows[0] == (
        "| main | cluster_contrast-synthmarket | cluster_contrast | SynthMarket (for Market-1501) | lab | "
        "LabNet (seed-1 init) | 3.7 | 2.3 | Market-1501, GeM pooling | ResNet-50 (ImageNet) | "
        "84.2 | 93.4 | Cluster Contrast appendix (Dai et al.) Table 1 |"
    )
    assert "| 5.2 | 6.1 | Market-1501, mu=0.25 | ResNet-50 (ImageNet) | 82.7 | 92.9 | HHCL (Hu et al.) Table 2 |" \
        in rows[1]
    assert "| 3.1 | 2.1 | Market-1501 |  | n/r | n/r | not reported in the papers' texts |" in rows[2]
    assert "![mAP: reidlab vs the papers](results.png)" in md.read_text()
    text = page.read_text()
    assert text.count("<tr>") == 4 and "<td>82.7</td>" in text and "<td>5.2</td>" in text
    assert "<img src=\"results.png\"" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_names_the_source_and_the_ibn_backbone(tmp_path):
    _fake_metrics(tmp_path, "cc_appendix", "full", "spcl_uda-market1501", mAP=0.7, rank1=0.8, source="msmt17")
    _fake_metrics(tmp_path, "hhcl_tricks", "full", "ibn_gem-market1501", mAP=0.8, rank1=0.9, ibn=True)
    text = write_table(tmp_path)[0].read_text()
    assert ("| cc_appendix | spcl_uda-market1501 | spcl_uda | MSMT17 -> Market-1501 | full | ResNet-50 (ImageNet) | "
            "70.0 | 80.0 | Market-1501, from MSMT17 | ResNet-50 (ImageNet) | 77.5 | 89.7 | Cluster Contrast appendix "
            "(Dai et al.) Table 1 (row SPCL [2]) |") in text
    assert ("| hhcl_tricks | ibn_gem-market1501 | hhcl | Market-1501 | full | ResNet-50-IBN-a (ImageNet) | 80.0 | 90.0 | "
            "Market-1501, IBN + GeM | ResNet-50-IBN-a (ImageNet) | 87.8 | 95.1 | HHCL (Hu et al.) Table 3 |") in text


def test_table_marks_full_scale_runs(tmp_path):
    _fake_metrics(tmp_path, "main", "full", "hhcl-dukemtmcreid", mAP=0.7, rank1=0.8)
    _fake_metrics(tmp_path, "main", "full", "hhcl-msmt17", mAP=0.3, rank1=0.5)
    md, _, _ = write_table(tmp_path)
    text = md.read_text()
    assert ("| main | hhcl-dukemtmcreid | hhcl | DukeMTMC-reID | full | ResNet-50 (ImageNet) | 70.0 | 80.0 | "
            "DukeMTMC-reID | ResNet-50 (ImageNet) | 73.3 | 85.1 | HHCL (Hu et al.) Table 1 |") in text
    assert "| hhcl-msmt17 | hhcl | MSMT17 | full |" in text and "| 30.0 | 50.0 | MSMT17 |  | n/r |" in text


# ----------------------------------------------------------------------------- paper numbers
def test_paper_results_are_sane():
    keys = [(r.paper, r.table, r.method, r.dataset, r.setting) for r in PAPER_RESULTS]
    assert len(set(keys)) == len(keys)
    for result in PAPER_RESULTS:
        assert result.paper and result.table.startswith("Table ") and result.source == f"{result.paper} {result.table}"
        assert result.method in RUNNABLE and result.dataset in reproduce.PAPER_DATASETS
        assert 0 <= result.mAP <= 100 and 0 <= result.rank1 <= 100
        assert result.mAP < result.rank1  # true of every row copied; catches swapped columns
        assert result.backbone.startswith("ResNet-50")
    # The method's own paper is preferred; settings are tried in order.
    assert find_paper_result("spcl", "market1501").source == "HHCL (Hu et al.) Table 1"
    assert find_paper_result("spcl", "msmt17").mAP == 19.1  # only SCWM's Table 4 lists SpCL on MSMT17
    assert find_paper_result("cluster_contrast", "dukemtmcreid", ("GeM pooling", "average pooling")).mAP == 72.8
    assert find_paper_result("cluster_contrast", "market1501", ("average pooling",)).mAP == 83.0
    assert find_paper_result("scwm", "dukemtmcreid") is None
    assert find_paper_result("hhcl", "market1501", ("mu=0.75",)).rank1 == 92.1


# ----------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_cc_update_end_to_end_at_tiny_scale(tiny_synthmarket_root, tmp_path, capsys):
    args = ["reproduce", "cc_update", "--scale", "tiny", "--data-root", str(tiny_synthmarket_root),
            "--results", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "[1/2] cc_update/tiny/mean-synthmarket: running" in out
    assert "[2/2] cc_update/tiny/hard-synthmarket: done, mAP" in out
    for label, method in (("mean-synthmarket", "cluster_contrast"), ("hard-synthmarket", "cluster_contrast_hard")):
        folder = tmp_path / "cc_update" / "tiny" / label
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["method"] == method and metrics["epochs"] == preset(method, scale="tiny").epochs
        assert 0 <= metrics["mAP"] <= 1 and metrics["n_clusters"] > 0
        history = json.loads((folder / "train" / "history.json").read_text())
        assert metrics["mAP"] == history[-1]["mAP"]
        config = json.loads((folder / "config.json").read_text())
        assert config["config"]["method"] == preset(method, scale="tiny").method and config["data_root"] == str(tiny_synthmarket_root.resolve())
        notebook = (folder / "notebook.ipynb").read_text()
        assert "image/png" in notebook  # the training curves
    table = (tmp_path / "results.md").read_text()
    assert "| cc_update | mean-synthmarket | cluster_contrast | SynthMarket (for Market-1501) | tiny |" in table
    assert "| 84.2 | 93.4 |" in table and "| n/r | n/r |" in table
    assert (tmp_path / "results.html").is_file() and (tmp_path / "results.png").is_file()
    assert main(args) == 0  # everything is done: both runs are skipped
    out = capsys.readouterr().out
    assert "mean-synthmarket: skipped (done)" in out and "hard-synthmarket: skipped (done)" in out
    assert "running" not in out
