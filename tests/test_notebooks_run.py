"""Every notebook executed by papermill at tiny scale, once per session: its recorded metrics are checked
by value (below) and against its baseline in tests/baselines/ (tests/regression.py)."""

import json

import numpy as np
import pytest
from regression import (
    RERECORD_HINT,
    check,
    environment,
    notebooks,
    orphan_baselines,
    run_tiny,
)

from reidlab.config import NOTEBOOK_DIR
from reidlab.data.synthmarket import PART_NAMES
from reidlab.parsing import DEFAULT_ETA, part_names
from reidlab.training import MEMORY_UPDATES, preset


@pytest.fixture(scope="session")
def tiny_run(tiny_synthmarket_root, tmp_path_factory):
    """``tiny_run(stem)``: the notebook's tiny-scale run, executed on first use and shared by its tests.

    A notebook that fails to execute fails each test that asks for it, without running again. The kernels
    get a data folder of their own, as ``make baselines`` does: the cached pretrained weights they use
    are then trained by a notebook kernel (single-threaded), never by another test of the session.
    """
    out_dir = tmp_path_factory.mktemp("notebooks")
    kernel_data = tmp_path_factory.mktemp("notebook-data")
    runs = {}

    def run(stem):
        if stem not in runs:
            try:
                with environment(REIDLAB_DATA=str(kernel_data)):
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
    assert m["naive_max_abs_diff"] < 1e-5 and m["naive_knn_max_gap"] < 1e-5
    assert 0 <= m["naive_knn_swapped_rows"] <= min(400, len(tiny_synthmarket.train))
    assert len(m["closest_pairs"]) == 3
    for name in ("closest_precision_cosine", "closest_precision_jaccard"):
        assert len(m[name]) == 3 and all(0 <= p <= 1 for p in m[name])
    dbscan = m["dbscan"]
    assert dbscan["n_clusters"] + dbscan["n_outliers"] <= len(tiny_synthmarket.train)
    counts = [row["n_clusters"] for row in m["sweep"]]
    assert len(counts) == 13 and m["best_eps"] in [row["eps"] for row in m["sweep"]]
    # One eps for every section: the sweep's best ARI, used by DBSCAN, the explorer and SpCL's criterion.
    assert m["best_ari"] == max(row["ari"] for row in m["sweep"])
    assert m["eps"] == m["best_eps"] == dbscan["eps"] == m["explorer"]["eps"]
    assert len(m["hard_pair_rank_shift"]) == 2
    # SpCL keeps a subset of the clustered samples (whether what it keeps is purer is the notebook's
    # check_claim: on the tiny set, at the eps of its sweep, it need not be).
    assert m["spcl_kept"] <= len(tiny_synthmarket.train) - dbscan["n_outliers"]
    shared = set(dbscan) & set(m["dbscan_quality"])  # SpCL's section scores the DBSCAN of the chosen eps
    assert shared >= {"n_clusters", "ari"} and all(dbscan[k] == m["dbscan_quality"][k] for k in shared)


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
    for row in ("untrained LabNet", "start model", "supervised (w/ GT)"):
        assert 0 <= m["results"][row]["mAP"] <= 1
    assert m["results"]["start model"]["mAP"] == pytest.approx(m["initial_mAP"])
    for method in methods:  # rows are the mean over the seeds (tests/regression.py runs seeds 0 and 1)
        finals = [m["seed_histories"][method][s][-1]["mAP"] for s in ("0", "1")]
        assert json.dumps(m["histories"][method]) == json.dumps(m["seed_histories"][method]["0"])
        assert m["results"][method]["mAP"] == pytest.approx(np.mean(finals))
        assert m["mAP_std"][method] == pytest.approx(np.std(finals))


@pytest.mark.slow
def test_notebook_03_hard_mining(tiny_run):
    m = tiny_run("03_hard_mining").metrics  # tiny parameters: mus="0,0.5,1", seeds="0,1" (regression.NOTEBOOK_PARAMETERS)
    assert m["toy_mu"] == 0.5 and m["toy_pull_cls_norm"] > 0 and m["toy_pull_ins_norm"] > 0
    slots = preset("hhcl", scale="tiny").num_instances
    assert m["memory_rows"] == m["n_clusters"] * (slots + 1)  # P slots per cluster + the centroids
    assert sorted(m["mu_sweep"]) == ["0.0", "0.5", "1.0"] and m["sweep_epochs"] == 2
    assert m["best_mu"] in (0.0, 0.5, 1.0)
    assert m["sweep_seeds"] == [0, 1]
    for mu, row in m["mu_sweep"].items():
        assert 0 <= row["mAP"] <= 1 and row["n_clusters"] > 0
        finals = [run["mAP"] for run in m["mu_sweep_seeds"][mu]]  # a row is the mean over the seeds
        assert len(finals) == 2 and row["mAP"] == pytest.approx(np.mean(finals))
        assert row["mAP_std"] == pytest.approx(np.std(finals)) and row["mAP_min"] == min(finals)
    assert m["best_mu"] == max((float(mu) for mu in m["mu_sweep"]), key=lambda mu: m["mu_sweep"][str(mu)]["mAP"])


STRIPES = ("top", "middle", "bottom")  # notebook 04's PPLR stripes
VARIANTS = ("plain", "foreground", "space", "both")  # notebook 04's cascade variants (SCWM Table 2)


@pytest.mark.slow
def test_notebook_04_part_parsing(tiny_synthmarket, tiny_run):
    m = tiny_run("04_part_parsing").metrics
    assert m["num_parts"] == 4 and m["eta"] == DEFAULT_ETA
    # Stripes: every stripe's pixels (and its person pixels) are shared among the regions.
    assert sorted(m["stripe_person_share"]) == sorted(STRIPES) == sorted(m["stripe_region_share"])
    for stripe in STRIPES:
        assert sorted(m["stripe_region_share"][stripe]) == sorted(PART_NAMES)  # (the notebook stores keys sorted)
        assert sorted(m["stripe_person_share"][stripe]) == sorted(PART_NAMES[1:])
        assert sum(m["stripe_region_share"][stripe].values()) == pytest.approx(1.0, abs=1e-5)
        assert sum(m["stripe_person_share"][stripe].values()) == pytest.approx(1.0, abs=1e-5)
        assert 1 / (len(PART_NAMES) - 1) <= m["stripe_purity"][stripe] <= 1  # the main region's share
    assert m["stripe_person_share"]["top"]["shoes"] < 0.01 and m["stripe_person_share"]["bottom"]["head"] < 0.01
    low, median, high = m["waist_row_percentiles"]
    assert 0 <= low <= median <= high <= 1
    # The written-out step 2 (Eq. 2 + scikit-learn) partitions exactly as the library does.
    assert m["naive_step2_compared"] > 0 and m["naive_step2_identical"] == m["naive_step2_compared"]
    # Table 2's variants: step 1 alone decides the foreground, so variants that share it share its scores.
    assert sorted(m["variant_miou"]) == sorted(VARIANTS) == sorted(m["variant_details"])
    details = m["variant_details"]
    for name in VARIANTS:
        assert 0 <= m["variant_miou"][name] <= 1
        assert sorted(details[name]["part_iou"]) == ["background", "part0", "part1", "part2"]
        assert set(details[name]["matched_region"].values()) <= set(PART_NAMES)
        assert 0 <= details[name]["parts_in_pieces"] <= 1
    for with_space, without in (("space", "plain"), ("both", "foreground")):
        for key in ("foreground_recall", "foreground_precision"):
            assert details[with_space][key] == pytest.approx(details[without][key])
    # The tiny training set fits in the probe set, so the eta sweep repeats two of the variants.
    assert len(tiny_synthmarket.train) <= 256
    # (abs 1e-3: the maps come from batches of another composition; one flipped cell moves an mIoU by ~1e-4)
    sweep = {row["eta"]: row["miou"] for row in m["eta_sweep"]}
    assert sweep["inf"] == pytest.approx(m["variant_miou"]["foreground"], abs=1e-3)  # no spatial constraint
    assert sweep[DEFAULT_ETA] == pytest.approx(m["variant_miou"]["both"], abs=1e-3)
    assert all(0 <= miou <= 1 for miou in sweep.values())
    assert m["widget_batch_size"] == 8 and 0 <= m["widget_batch_miou"] <= 1
    # Figure 4: two runs of the tiny preset's epochs from the same start; the probe set is the training set.
    epochs = preset("scwm", scale="tiny").epochs
    assert m["fig4_epochs"] == epochs
    histories, probes = m["fig4_histories"], m["fig4_probe"]
    assert sorted(histories) == sorted(probes) == ["with L_div", "without L_div"]
    assert "loss_diversity" in histories["with L_div"] and "loss_diversity" not in histories["without L_div"]
    for name in histories:
        history, probe = histories[name], probes[name]
        assert len(history["predicted_miou"]) == len(history["pseudo_miou"]) == epochs
        assert all(len(values) == epochs + 1 for values in probe.values())  # the start, then every epoch
        # The history scores the predictions at the start of each epoch, the probe after each epoch.
        assert probe["miou"][:epochs] == pytest.approx(history["predicted_miou"], abs=1e-3)
        assert history["pseudo_miou"][0] == pytest.approx(m["variant_miou"]["both"], abs=1e-3)  # the start's masks
        assert all(1 <= used <= 4 for used in probe["parts_used"])
        assert all(0 <= similarity <= 1 + 1e-6 for similarity in probe["map_similarity"])
        assert all(0 <= overlap <= 1 / 4**2 + 1e-6 for overlap in probe["overlap"])  # at most 1 / l^2 per position
        assert 0 <= m["fig4_final_mAP"][name] <= 1
    for key in probes["with L_div"]:  # the same start
        assert probes["with L_div"][key][0] == pytest.approx(probes["without L_div"][key][0])


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
    assert m["seeds"] == [0, 1]  # tests/regression.py: a row is the mean over the two seeds' runs
    for name, runs in m["seed_results"].items():
        row = m["update_results"].get(name, baseline if name == "pplr_stripes" else None)
        finals = [run["mAP"] for run in runs]
        assert len(runs) == 2 and row["mAP"] == pytest.approx(np.mean(finals)) and row["mAP_std"] == pytest.approx(np.std(finals))
    assert m["update_seed_spread"] == pytest.approx(max(row["mAP_std"] for row in m["update_results"].values()))
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
def test_notebook_06_domains_and_cameras(tiny_synthmarket, tiny_run):
    m = tiny_run("06_domains_and_cameras").metrics
    assert (m["target_cameras"], m["source_cameras"]) == (6, 8)  # SynthMarket and its campus domain
    assert m["target_train_images"] == len(tiny_synthmarket.train) and m["source_train_images"] > 0
    # Camera bias: cross-validated accuracies are fractions, chance is the most common camera's share.
    cameras = np.bincount([r.camid for r in tiny_synthmarket.train])
    assert sorted(m["camera_bias"]) == ["cap", "cap_cluster_contrast", "cluster_contrast", "start"]
    for row in m["camera_bias"].values():
        assert 0 <= row["accuracy"] <= 1 and row["chance"] == pytest.approx(cameras.max() / cameras.sum())
    assert m["camera_bias"]["start"] == m["camera_bias_start"]
    assert m["same_camera_pairs"] == pytest.approx(float((cameras / cameras.sum()) @ (cameras / cameras.sum())))
    for row in m["neighbours"].values():
        assert 0 <= row["same_camera"] <= 1 and 0 <= row["same_identity"] <= 1
    # The toy's pulls, the proxies equal to the per-camera means, every run and the Table 1 rows.
    assert m["toy_pull_intra_norm"] > 0 and m["toy_pull_inter_norm"] > 0
    assert m["proxy_naive_max_diff"] < 1e-5 and m["proxies_per_cluster"] >= 1
    methods = ["cap", "cap_cluster_contrast", "cluster_contrast", "cluster_contrast_uda", "spcl_uda"]
    assert sorted(m["runs"]) == sorted(m["summary"]) == methods
    for method in methods:
        assert m["summary"][method]["mAP"] == pytest.approx(m["runs"][method][0]["mAP"])
    assert sorted(m["domain_gap"]) == ["source-only, on the source", "source-only, on the target",
                                       "supervised on the target (ceiling)"]
    assert [row["method"] for row in m["table1"]] == ["Cluster Contrast", "GeM + Cluster Contrast", "SpCL",
                                                      "SpCL + Cluster Contrast", "CAP", "CAP + Cluster Contrast"]
    assert m["table1"][1]["lab"] is None and m["table1"][4]["paper"]["market1501"] == [79.2, 91.4]
    assert sorted(m["orderings_shown"]) == ["cap>cluster_contrast", "cap_cluster_contrast>cluster_contrast",
                                            "cluster_contrast_uda>spcl_uda", "spcl_uda>cluster_contrast"]


@pytest.mark.slow
@pytest.mark.parametrize("notebook", notebooks(), ids=lambda path: path.stem)
def test_notebook_matches_baseline(notebook, tiny_run):
    report = check(notebook, tiny_run(notebook.stem).metrics)
    if report:
        pytest.fail(report, pytrace=False)


def test_every_baseline_has_a_notebook():
    orphans = [path.name for path in orphan_baselines()]
    assert not orphans, f"baselines without a notebook: {orphans}; {RERECORD_HINT}"


def figure_outputs(notebook_path):
    """(image outputs, outputs whose only picture of a figure is its text) of an executed notebook."""
    import nbformat

    images, text_only = 0, []
    for index, cell in enumerate(nbformat.read(str(notebook_path), as_version=4).cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = output.get("data", {})
            if "image/png" in data or "image/svg+xml" in data:
                images += 1
            elif str(data.get("text/plain", "")).startswith("<Figure size"):
                text_only.append(index)
    return images, text_only


@pytest.mark.slow
@pytest.mark.parametrize("notebook", notebooks(), ids=lambda path: path.stem)
def test_every_figure_renders_as_an_image(notebook, tiny_run):
    """No figure shows as ``<Figure size ...>`` text, and the HTML export shows every figure as an image."""
    from nbconvert import HTMLExporter

    executed = tiny_run(notebook.stem).output
    images, text_only = figure_outputs(executed)
    assert not text_only, f"{notebook.name}: cells {text_only} show a figure as text only, not as an image"
    html, _ = HTMLExporter().from_filename(str(executed))
    assert html.count("<img ") == images, f"{notebook.name}: {images} image outputs, {html.count('<img ')} in HTML"
