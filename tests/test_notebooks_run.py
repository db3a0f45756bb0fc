"""Every notebook executed by papermill at tiny scale, once per session: its recorded metrics are checked
by value (below) and against its baseline in tests/baselines/ (tests/regression.py)."""

import pytest

from regression import RERECORD_HINT, check, notebooks, orphan_baselines, run_tiny
from reidlab.engine import MEMORY_UPDATES, preset
from reidlab.parts import part_names
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
def test_notebook_05_weighted_memory(tiny_synthmarket, tiny_run):
    m = tiny_run("05_weighted_memory").metrics
    config = preset("scwm", scale="tiny")
    assert m["schedule"] == {"epochs": config.epochs, "iters": config.iters, "batch_size": config.batch_size,
                             "num_instances": config.num_instances, "num_parts": config.num_parts,
                             "agreement_k": config.agreement_k}
    parts = list(part_names(config.num_parts))
    # Eq. 7: the naive IoU of two kNN sets equals knn_agreement.
    assert m["alpha_naive_max_diff"] < 1e-6
    assert sorted(m["start_alpha_mean"]) == sorted(parts)
    assert sorted(m["alpha_stats"]) == sorted(["global", *parts])
    for row in m["alpha_stats"].values():
        assert 0.0 <= row["min"] <= row["mean"] <= row["max"] <= 1.0 and row["std"] >= 0.0
    # Eq. 8: weights are the class-normalised raw weights [1 - alpha^g, alpha^pk].
    assert m["weight_naive_max_diff"] < 1e-6 and m["batch_weight_sum_max_dev"] < 1e-5
    example = m["weight_examples"]
    for alpha, raw in zip(example["alpha"], example["raw"]):
        assert raw[0] == pytest.approx(1 - sum(alpha) / len(alpha), abs=1e-6)
        assert raw[1:] == pytest.approx(alpha, abs=1e-6)
    for stream in range(config.num_parts + 1):
        column = [w[stream] for w in example["weights"]]
        assert sum(column) == pytest.approx(1.0, abs=1e-5) and min(column) >= 0.0
    # Eq. 9 by hand equals WeightedMemory.update; Eq. 10's weight shifts the loss, not the gradient.
    assert m["update_naive_max_diff"] < 1e-5
    assert m["wnce_grad_max_diff"] < 1e-6
    assert m["wnce_shift"] == pytest.approx(m["wnce_shift_expected"], rel=1e-5, abs=1e-5) and m["wnce_shift"] >= 0.0
    # One result per update strategy; the full SCWM is the weighted run, not a second training.
    assert sorted(m["update_results"]) == sorted(MEMORY_UPDATES)
    for row in m["update_results"].values():
        assert 0.0 <= row["mAP"] <= 1.0 and 0.0 <= row["rank1"] <= 1.0 and row["n_clusters"] > 0
        assert 0.0 <= row["mean_alpha"] <= 1.0
    assert m["scwm_vs_baseline"]["scwm"] == m["update_results"]["weighted"]
    baseline = m["scwm_vs_baseline"]["pplr_stripes"]
    assert 0.0 <= baseline["mAP"] <= 1.0 and baseline["n_clusters"] > 0
    assert m["scwm_minus_baseline_mAP"] == pytest.approx(m["update_results"]["weighted"]["mAP"] - baseline["mAP"])
    spread = [row["mAP"] for row in m["update_results"].values()]
    assert m["update_mAP_spread"] == pytest.approx(max(spread) - min(spread), abs=1e-9)
    assert 0.0 <= m["start_mAP"] <= 1.0
    # Difficulty evidence and separation scores are in their ranges.
    for key, value in m["difficulty_evidence"].items():
        if key.startswith("spearman") and value is not None:
            assert -1.0 <= value <= 1.0
    assert 0 <= m["difficulty_evidence"]["accessory_images"] <= len(tiny_synthmarket.train)
    expected = [f"SCWM {name}" for name in ["global", *parts]] + [f"PPLR {name}" for name in
                                                                   ("global", "stripe0", "stripe1", "stripe2")]
    assert sorted(m["separation"]) == sorted(expected)
    for row in m["separation"].values():
        assert -1.0 <= row["silhouette"] <= 1.0 and 0.0 <= row["knn_purity"] <= 1.0
    assert 0 < m["embedded_images"] <= len(tiny_synthmarket.train)
    assert 0.0 <= m["top_stripe_background_share"] <= 1.0 and 0.0 <= m["part0_background_share"] <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("notebook", notebooks(), ids=lambda path: path.stem)
def test_notebook_matches_baseline(notebook, tiny_run):
    report = check(notebook, tiny_run(notebook.stem).metrics)
    if report:
        pytest.fail(report, pytrace=False)


def test_every_baseline_has_a_notebook():
    orphans = [path.name for path in orphan_baselines()]
    assert not orphans, f"baselines without a notebook: {orphans}; {RERECORD_HINT}"
