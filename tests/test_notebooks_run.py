"""Every notebook executed by papermill at tiny scale, once per session: its recorded metrics are checked
by value (below) and against its baseline in tests/baselines/ (tests/regression.py)."""

import pytest

from regression import RERECORD_HINT, check, notebooks, orphan_baselines, run_tiny
from reidlab.engine import preset
from reidlab.notebook import NOTEBOOK_DIR


@pytest.fixture(scope="session")
def tiny_run(tiny_synthmarket_root, tmp_path_factory):
    """``tiny_run(stem)``: the notebook's tiny-scale run, executed on first use and shared by its tests.

    A notebook that fails to execute fails each test that asks for it, without running again.
    """
    out_dir = tmp_path_factory.mktemp("notebooks")
    runs = {}

    def run(stem):
        if stem not in runs:
            try:
                runs[stem] = run_tiny(NOTEBOOK_DIR / f"{stem}.ipynb", out_dir, tiny_synthmarket_root)
            except Exception as error:  # kept, and raised again by each test of this notebook
                runs[stem] = error
        if isinstance(runs[stem], Exception):
            raise runs[stem]
        return runs[stem]

    return run


@pytest.mark.slow
def test_notebook_00_data_and_evaluation(tiny_synthmarket, tiny_run):
    m = tiny_run("00_data_and_evaluation").metrics
    assert m["dataset"] == "synthmarket"
    assert m["num_train_ids"] == tiny_synthmarket.num_train_pids
    assert m["num_query_images"] == len(tiny_synthmarket.query)
    # The worked example: the same-camera match is dropped, correct matches at kept ranks 2, 3 and 6.
    assert m["worked_example_AP"] == pytest.approx((1 / 2 + 2 / 3 + 3 / 6) / 3)
    assert m["worked_example_INP"] == pytest.approx(3 / 6)
    for key in ("untrained_mAP", "untrained_rank1", "supervised_mAP", "supervised_rank1"):
        assert 0.0 <= m[key] <= 1.0


@pytest.mark.slow
def test_notebook_01_clustering(tiny_synthmarket, tiny_run):
    m = tiny_run("01_clustering").metrics
    assert m["num_train_images"] == len(tiny_synthmarket.train)
    assert m["naive_max_abs_diff"] < 1e-5
    assert len(m["closest_pairs"]) == 3
    for name in ("closest_precision_cosine", "closest_precision_jaccard"):
        assert len(m[name]) == 3 and all(0 <= p <= 1 for p in m[name])
    dbscan = m["dbscan"]
    assert dbscan["eps"] == 0.6 and dbscan["n_clusters"] >= 1
    assert dbscan["n_clusters"] + dbscan["n_outliers"] <= len(tiny_synthmarket.train)
    counts = [row["n_clusters"] for row in m["sweep"]]
    assert len(counts) == 13 and m["best_eps"] in [row["eps"] for row in m["sweep"]]
    # SpCL keeps a subset of the clustered samples, and what it keeps is at least as pure.
    assert m["spcl_kept"] <= len(tiny_synthmarket.train) - dbscan["n_outliers"]
    assert m["spcl"]["pairwise_precision"] >= m["dbscan_quality"]["pairwise_precision"] - 1e-9


@pytest.mark.slow
def test_notebook_02_memory_banks(tiny_synthmarket, tiny_run):
    m = tiny_run("02_memory_banks").metrics
    n = len(tiny_synthmarket.train)
    assert m["memory_rows"]["spcl"][0] == n and m["memory_rows"]["cluster_contrast"][0] == tiny_synthmarket.num_train_pids
    methods = ["spcl", "cluster_contrast", "cluster_contrast_hard"]
    assert sorted(m["histories"]) == sorted(methods)
    for method in methods:
        history = m["histories"][method]
        assert len(history) == 2  # the tiny preset's epochs
        assert history[-1]["memory_rows"] == (n if method == "spcl" else history[-1]["n_clusters"])
        assert m["results"][method]["mAP"] == pytest.approx(history[-1]["mAP"])
    for row in ("untrained LabNet", "source-pretrained start", "supervised (w/ GT)"):
        assert 0 <= m["results"][row]["mAP"] <= 1
    assert m["results"]["source-pretrained start"]["mAP"] == pytest.approx(m["initial_mAP"])


@pytest.mark.slow
def test_notebook_03_hard_mining(tiny_run):
    m = tiny_run("03_hard_mining").metrics  # tiny parameters: mus="0,0.5,1" (regression.NOTEBOOK_PARAMETERS)
    assert m["toy_mu"] == 0.5 and m["toy_pull_cls_norm"] > 0 and m["toy_pull_ins_norm"] > 0
    slots = preset("hhcl", scale="tiny").num_instances
    assert m["memory_rows"] == m["n_clusters"] * (slots + 1)  # P slots per cluster + the centroids
    assert sorted(m["mu_sweep"]) == ["0.0", "0.5", "1.0"] and m["sweep_epochs"] == 2
    assert m["best_mu"] in (0.0, 0.5, 1.0)
    for row in m["mu_sweep"].values():
        assert 0 <= row["mAP"] <= 1 and row["n_clusters"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("notebook", notebooks(), ids=lambda path: path.stem)
def test_notebook_matches_baseline(notebook, tiny_run):
    report = check(notebook, tiny_run(notebook.stem).metrics)
    if report:
        pytest.fail(report, pytrace=False)


def test_every_baseline_has_a_notebook():
    orphans = [path.name for path in orphan_baselines()]
    assert not orphans, f"baselines without a notebook: {orphans}; {RERECORD_HINT}"
