"""Every notebook executed by papermill at tiny scale, with its recorded metrics checked."""

import pytest

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
    assert 0.5 <= m["auc_cosine"] <= 1 and 0.5 <= m["auc_jaccard"] <= 1
    dbscan = m["dbscan"]
    assert dbscan["eps"] == 0.6 and dbscan["n_clusters"] >= 1
    assert dbscan["n_clusters"] + dbscan["n_outliers"] <= len(tiny_synthmarket.train)
    counts = [row["n_clusters"] for row in m["sweep"]]
    assert len(counts) == 13 and m["best_eps"] in [row["eps"] for row in m["sweep"]]
    # SpCL keeps a subset of the clustered samples, and what it keeps is at least as pure.
    assert m["spcl_kept"] <= len(tiny_synthmarket.train) - dbscan["n_outliers"]
    assert m["spcl"]["pairwise_precision"] >= m["dbscan_quality"]["pairwise_precision"] - 1e-9
