"""Every notebook executed by papermill at tiny scale, with its recorded metrics checked."""

import pytest

from reidlab.engine import preset
from reidlab.notebook import NOTEBOOK_DIR, run_notebook


def run_tiny(name, root, tmp_path, **parameters):
    return run_notebook(NOTEBOOK_DIR / name, tmp_path / name,
                        {"scale": "tiny", "data_root": str(root), **parameters}, progress=False)


@pytest.mark.slow
def test_notebook_00_data_and_evaluation(tiny_synthmarket, tiny_synthmarket_root, tmp_path):
    run = run_tiny("00_data_and_evaluation.ipynb", tiny_synthmarket_root, tmp_path)
    m = run.metrics
    assert m["dataset"] == "synthmarket"
    assert m["num_train_ids"] == tiny_synthmarket.num_train_pids
    assert m["num_query_images"] == len(tiny_synthmarket.query)
    # The worked example: the same-camera match is dropped, correct matches at kept ranks 2, 3 and 6.
    assert m["worked_example_AP"] == pytest.approx((1 / 2 + 2 / 3 + 3 / 6) / 3)
    assert m["worked_example_INP"] == pytest.approx(3 / 6)
    for key in ("untrained_mAP", "untrained_rank1", "supervised_mAP", "supervised_rank1"):
        assert 0.0 <= m[key] <= 1.0


@pytest.mark.slow
def test_notebook_01_clustering(tiny_synthmarket, tiny_synthmarket_root, tmp_path):
    run = run_tiny("01_clustering.ipynb", tiny_synthmarket_root, tmp_path)
    m = run.metrics
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
def test_notebook_02_memory_banks(tiny_synthmarket, tiny_synthmarket_root, tmp_path):
    run = run_tiny("02_memory_banks.ipynb", tiny_synthmarket_root, tmp_path)
    m = run.metrics
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
def test_notebook_03_hard_mining(tiny_synthmarket, tiny_synthmarket_root, tmp_path):
    run = run_tiny("03_hard_mining.ipynb", tiny_synthmarket_root, tmp_path, mus="0,0.5,1")
    m = run.metrics
    assert m["toy_mu"] == 0.5 and m["toy_pull_cls_norm"] > 0 and m["toy_pull_ins_norm"] > 0
    slots = preset("hhcl", scale="tiny").num_instances
    assert m["memory_rows"] == m["n_clusters"] * (slots + 1)  # P slots per cluster + the centroids
    assert sorted(m["mu_sweep"]) == ["0.0", "0.5", "1.0"] and m["sweep_epochs"] == 2
    assert m["best_mu"] in (0.0, 0.5, 1.0)
    for row in m["mu_sweep"].values():
        assert 0 <= row["mAP"] <= 1 and row["n_clusters"] > 0
