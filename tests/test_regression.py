"""tests/regression.py: flattening, default tolerances, comparisons, baseline files and recording."""

import hashlib
import json
import math
import os
from pathlib import Path

import pytest
import regression
from regression import (
    AVERAGE_PRECISION,
    CLUSTER_COUNT,
    EXACT,
    FRACTION,
    LOSS,
    OTHER_FLOAT,
    RERECORD_HINT,
    TIMING,
    Tolerance,
    check,
    compare,
    default_tolerance,
    flatten,
    make_baseline,
    metric_name,
    orphan_baselines,
    read_baseline,
    record_baselines,
    tolerance_for,
    write_baseline,
)


def test_flatten_nested_dicts_and_lists():
    metrics = {"histories": {"spcl": [{"mAP": 0.5}, {"mAP": 0.6, "ok": True}]}, "name": "x", "none": None, "n": 3}
    assert flatten(metrics) == {
        "histories.spcl.0.mAP": 0.5, "histories.spcl.1.mAP": 0.6, "histories.spcl.1.ok": True,
        "name": "x", "none": None, "n": 3,
    }
    assert flatten({"mu_sweep": {"0.5": {"mAP": 0.1}}}) == {"mu_sweep.0.5.mAP": 0.1}
    assert flatten({"empty": {}, "list": []}) == {}


def test_flatten_rejects_collisions_and_objects():
    with pytest.raises(ValueError, match="same key 'a.b'"):
        flatten({"a.b": 1, "a": {"b": 2}})
    with pytest.raises(TypeError, match="metric 'x' is a set"):
        flatten({"x": {1, 2}})


def test_metric_name_skips_list_indexes():
    assert metric_name("histories.spcl.1.mAP") == "mAP"
    assert metric_name("closest_precision_cosine.2") == "closest_precision_cosine"
    assert metric_name("seconds") == "seconds"


@pytest.mark.parametrize("key, value, expected", [
    ("histories.spcl.1.seconds", 2.5, TIMING),
    ("epoch_seconds", 1.0, TIMING),
    ("extract_s", 1.0, TIMING),
    ("dataset", "synthmarket", EXACT),
    ("config.cache_images", True, EXACT),
    ("spcl_threshold", None, EXACT),
    ("num_train_images", 125, EXACT),
    ("config.k1", 30, EXACT),
    ("histories.spcl.1.epoch", 1, EXACT),
    ("histories.spcl.1.n_clusters", 12, CLUSTER_COUNT),
    ("dbscan.n_outliers", 4, CLUSTER_COUNT),
    ("memory_rows", 65, CLUSTER_COUNT),
    ("spcl_kept", 120, CLUSTER_COUNT),
    ("toy_loss_ins", 3.5, LOSS),
    ("histories.spcl.0.loss", 3.2, LOSS),
    ("results.spcl.mAP", 0.04, AVERAGE_PRECISION),
    ("untrained_mINP", 0.05, AVERAGE_PRECISION),
    ("worked_example_AP", 0.55, AVERAGE_PRECISION),
    ("results.spcl.rank10", 0.03, FRACTION),
    ("best_ari", 0.09, FRACTION),
    ("sweep.0.nmi_clustered", 0.3, FRACTION),
    ("dbscan.pairwise_f1", 0.13, FRACTION),
    ("closest_precision_jaccard.2", 0.13, FRACTION),
    ("miou", 0.4, FRACTION),
    ("hard_positive_cosine", 1.75, OTHER_FLOAT),
    ("config.lr", 0.00035, OTHER_FLOAT),
])
def test_default_tolerance_by_name_and_type(key, value, expected):
    assert default_tolerance(key, value) == expected


def test_tolerance_allows():
    assert Tolerance(abs=0.05).allows(0.40, 0.45) and not Tolerance(abs=0.05).allows(0.40, 0.4501)
    assert Tolerance(rel=0.1).allows(10.0, 9.0) and not Tolerance(rel=0.1).allows(10.0, 8.99)
    assert Tolerance(abs=2, rel=0.1).allows(5, 7) and Tolerance(abs=2, rel=0.1).allows(50, 55)  # larger one wins
    assert not Tolerance(abs=2, rel=0.1).allows(5, 8)
    assert EXACT.allows(3, 3) and not EXACT.allows(3, 4) and EXACT.allows(1, 1.0)
    assert TIMING.allows(1.0, 100.0) and TIMING.allows(1.0, None)
    assert EXACT.allows("a", "a") and not FRACTION.allows("a", "b")
    assert not FRACTION.allows(True, 1) and not FRACTION.allows(0.5, None)  # bools and None are not numbers
    assert FRACTION.allows(math.nan, math.nan) and not FRACTION.allows(math.nan, 0.5)


@pytest.mark.parametrize("tolerance, text, as_json", [
    (Tolerance(ignore=True), "ignored", "ignore"),
    (Tolerance(), "exact", "exact"),
    (Tolerance(abs=0.05), "abs 0.05", {"abs": 0.05}),
    (Tolerance(rel=0.1), "rel 10%", {"rel": 0.1}),
    (Tolerance(abs=2, rel=0.1), "abs 2 or rel 10%", {"abs": 2, "rel": 0.1}),
])
def test_tolerance_text_and_json(tolerance, text, as_json):
    assert tolerance.describe() == text
    assert tolerance.to_json() == as_json
    assert Tolerance.from_json(as_json) == tolerance


@pytest.mark.parametrize("bad", ["loose", {"abs": -1}, {"tol": 0.1}, {}, {"abs": "0.1"}, 0.1])
def test_tolerance_from_json_rejects(bad):
    with pytest.raises(ValueError, match="a tolerance must be 'ignore', 'exact' or"):
        Tolerance.from_json(bad)


def test_tolerance_for_prefers_exact_key_then_longest_pattern():
    overrides = {"histories.*.loss": Tolerance(rel=0.3), "histories.cc_hard.*.loss": Tolerance(rel=0.5),
                 "histories.cc_hard.1.loss": Tolerance(ignore=True)}
    assert tolerance_for("histories.cc_hard.1.loss", 3.0, overrides).ignore
    assert tolerance_for("histories.cc_hard.0.loss", 3.0, overrides) == Tolerance(rel=0.5)
    assert tolerance_for("histories.spcl.0.loss", 3.0, overrides) == Tolerance(rel=0.3)
    assert tolerance_for("histories.spcl.0.mAP", 0.1, overrides) == AVERAGE_PRECISION


def test_compare_lists_moved_new_and_removed_in_key_order():
    baseline = {"mAP": 0.40, "n_clusters": 10, "seconds": 5.0, "loss": 2.0, "gone": 1, "name": "a"}
    now = {"mAP": 0.43, "n_clusters": 13, "seconds": 50.0, "loss": 2.1, "added": 0.5, "name": "b"}
    changes = compare(baseline, now)
    assert [(c.key, c.kind) for c in changes] == [
        ("added", "new"), ("gone", "removed"), ("mAP", "moved"), ("n_clusters", "moved"), ("name", "moved")]
    moved = {c.key: c for c in changes if c.kind == "moved"}
    assert (moved["mAP"].baseline, moved["mAP"].now, moved["mAP"].tolerance) == (0.40, 0.43, AVERAGE_PRECISION)
    assert compare(baseline, now, {"mAP": Tolerance(abs=0.05)})[2].key == "n_clusters"
    assert compare(baseline, dict(baseline)) == []
    assert compare({}, {"extract_seconds": 1.0}) == []  # ignored keys are neither new nor removed
    assert compare({"x": 1}, {}, {"x": Tolerance(ignore=True)}) == []


def write(tmp_path, stem, metrics, tolerances=None):
    path = tmp_path / f"{stem}.json"
    write_baseline(path, make_baseline(f"{stem}.ipynb", metrics, tolerances))
    return path


def test_baseline_file_is_sorted_pretty_json_with_flat_metrics(tmp_path):
    metrics = {"results": {"spcl": {"mAP": 0.123456789, "seconds": 3.0}}, "b": [1, 2], "skip": 0.5}
    path = write(tmp_path, "02_x", metrics, {"b.*": {"abs": 1}, "skip": "ignore"})
    text = path.read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    baseline = read_baseline(path)
    assert baseline["notebook"] == "02_x.ipynb"
    # Floats to 6 significant digits; timings and ignored keys are not stored (no churn on re-recording).
    assert baseline["metrics"] == {"results.spcl.mAP": 0.123457, "b.0": 1, "b.1": 2}
    assert baseline["tolerances"] == {"b.*": {"abs": 1}, "skip": "ignore"}
    assert set(baseline["recorded_with"]) == {"torch", "python", "platform"}
    path.write_text('{"notebook": "02_x.ipynb"}')
    with pytest.raises(ValueError, match=r"lacks \['metrics', 'tolerances'\].*make baselines"):
        read_baseline(path)


def test_check_passes_within_tolerance_and_reports_every_change(tmp_path):
    write(tmp_path, "02_x", {"mAP": 0.40, "loss": 2.0, "gone": 3, "seconds": 1.0}, {"loss": {"rel": 0.01}})
    assert check("notebooks/02_x.ipynb", {"mAP": 0.41, "loss": 2.01, "gone": 3, "seconds": 9.0}, tmp_path) is None
    assert check("02_x.ipynb", {"mAP": 0.4200000001, "loss": 2.0, "gone": 3}, tmp_path) is None  # rounded like the file
    report = check("02_x.ipynb", {"mAP": 0.45, "loss": 2.1, "new": 1, "seconds": 9.0}, tmp_path)
    lines = report.splitlines()
    assert lines[0].startswith("02_x.ipynb: 4 metric(s) differ from 02_x.json (recorded with torch ")
    assert ", python 3." in lines[0] and ", platform " in lines[0]
    assert lines[1:] == [
        "  gone: removed (baseline 3), no longer recorded",
        "  loss: baseline 2.0, now 2.1, tolerance rel 1%",
        "  mAP: baseline 0.4, now 0.45, tolerance abs 0.02",
        "  new: new metric (now 1), not in the baseline",
        RERECORD_HINT,
    ]


def test_check_without_baseline_says_how_to_record(tmp_path):
    report = check("05_new.ipynb", {"mAP": 0.4}, tmp_path)
    assert report == f"05_new.ipynb has no baseline {tmp_path / '05_new.json'}; {RERECORD_HINT}"
    assert RERECORD_HINT.endswith("run `make baselines` and commit tests/baselines/")


def test_orphan_baselines_and_notebook_order(tmp_path):
    notebooks_dir, baselines = tmp_path / "notebooks", tmp_path / "baselines"
    notebooks_dir.mkdir()
    for name in ("train_one_run.ipynb", "01_b.ipynb", "00_a.ipynb"):
        (notebooks_dir / name).write_text("{}")
    for stem in ("00_a", "train_one_run", "02_removed"):
        write(baselines, stem, {"x": 1})
    assert [p.name for p in regression.notebooks(notebooks_dir)] == ["00_a.ipynb", "01_b.ipynb", "train_one_run.ipynb"]
    assert orphan_baselines(notebooks_dir, baselines) == [baselines / "02_removed.json"]


def test_the_real_baselines_are_readable_and_recorded_for_existing_notebooks():
    paths = sorted(regression.BASELINE_DIR.glob("*.json"))
    assert paths, "tests/baselines/ is empty"
    for path in paths:
        baseline = read_baseline(path)
        assert baseline["notebook"] == f"{path.stem}.ipynb"
        assert baseline["metrics"] == flatten(baseline["metrics"])  # flat already
        for value in baseline["tolerances"].values():
            Tolerance.from_json(value)


def test_tiny_parameters_and_select():
    assert regression.tiny_parameters("notebooks/03_hard_mining.ipynb", "/d") == {
        "scale": "tiny", "data_root": "/d", "mus": "0,0.5,1", "seeds": "0,1"}
    assert regression.tiny_parameters("00_data_and_evaluation.ipynb", "/d") == {"scale": "tiny", "data_root": "/d"}
    assert [p.name for p in regression.select(["00"])] == ["00_data_and_evaluation.ipynb"]
    with pytest.raises(ValueError, match=r"no notebook starts with \['99'\]; available: 00_data_and_evaluation"):
        regression.select(["00", "99"])


def test_environment_sets_and_restores(monkeypatch):
    monkeypatch.setenv("REIDLAB_TEST_A", "old")
    monkeypatch.delenv("REIDLAB_TEST_B", raising=False)
    with regression.environment(REIDLAB_TEST_A="new", REIDLAB_TEST_B="set"):
        assert (os.environ["REIDLAB_TEST_A"], os.environ["REIDLAB_TEST_B"]) == ("new", "set")
    assert os.environ["REIDLAB_TEST_A"] == "old" and "REIDLAB_TEST_B" not in os.environ


def test_record_keeps_overrides_summarises_changes_and_deletes_orphans(tmp_path, monkeypatch):
    stem = "00_data_and_evaluation"
    write(tmp_path, stem, {"mAP": 0.40, "rank1": 0.5, "gone": 1, "seconds": 3.0}, {"rank1": {"abs": 0.2}})
    write(tmp_path, "99_removed", {"x": 1})
    fresh = {"mAP": 0.45, "rank1": 0.6, "new": 2, "seconds": 4.0}

    def fake_run_all(chosen, work_dir):
        return {path: dict(fresh) for path in chosen}

    monkeypatch.setattr(regression, "run_all", fake_run_all)
    summary = record_baselines(["00"], tmp_path).splitlines()
    baseline = read_baseline(tmp_path / f"{stem}.json")
    assert baseline["metrics"] == {"mAP": 0.45, "rank1": 0.6, "new": 2}  # timings are not stored
    assert baseline["tolerances"] == {"rank1": {"abs": 0.2}}  # kept
    assert summary == [
        f"{stem}.json: 4 change(s), 3 metrics recorded",
        "  gone: removed (baseline 1), no longer recorded",
        "  mAP: 0.4 -> 0.45  BEYOND tolerance abs 0.02",
        "  new: new metric (now 2), not in the baseline",
        "  rank1: 0.5 -> 0.6",
    ]
    assert (tmp_path / "99_removed.json").exists()  # only a full recording deletes orphans
    summary = record_baselines([], tmp_path)
    assert "99_removed.json: deleted, its notebook no longer exists" in summary
    assert not (tmp_path / "99_removed.json").exists()
    assert "00_data_and_evaluation.json: 0 change(s), 3 metrics recorded" in summary


def tree_digest(root):
    files = sorted(p for p in Path(root).rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + hashlib.sha256(path.read_bytes()).digest())
    return len(files), digest.hexdigest()


def test_recording_uses_the_test_sessions_tiny_synthmarket(tiny_synthmarket_root, tmp_path):
    """`make baselines` must see the same data as the notebook tests (tests/conftest.py)."""
    assert tree_digest(regression.generate_tiny_synthmarket(tmp_path)) == tree_digest(tiny_synthmarket_root)
