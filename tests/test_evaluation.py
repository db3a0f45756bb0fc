"""Tests for reidlab.evaluation: parity with a naive per-query evaluation, a worked example, errors."""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from PIL import Image

from reidlab.evaluation import (
    evaluate,
    evaluate_rank,
    pairwise_distance,
    plot_ranked_results,
)


def naive_evaluate(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    """Textbook Market-1501 evaluation, one query at a time with a full stable sort."""
    max_rank = min(max_rank, distmat.shape[1])
    cmcs, aps, inps = [], [], []
    for q in range(distmat.shape[0]):
        order = np.argsort(distmat[q], kind="stable")
        junk = (g_pids[order] == q_pids[q]) & (g_camids[order] == q_camids[q])
        hits = g_pids[order][~junk] == q_pids[q]
        if not hits.any():
            continue
        positions = np.flatnonzero(hits)  # 0-based positions of the correct matches
        cmc = np.zeros(max_rank)
        cmc[positions[0] :] = 1.0
        cmcs.append(cmc)
        precisions = [hits[: k + 1].sum() / (k + 1) for k in positions]
        aps.append(np.mean(precisions))
        inps.append(hits.sum() / (positions[-1] + 1))
    return np.mean(cmcs, axis=0), np.mean(aps), np.mean(inps)


def random_case(seed, num_query=40, num_gallery=300, num_ids=12, num_cams=4, integer_dist=False):
    """Random labels with distractors (pid 0) and some query ids absent from the gallery."""
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(1, num_ids + 3, num_query)  # ids > num_ids have no gallery image
    g_pids = rng.integers(0, num_ids + 1, num_gallery)  # 0 = distractor
    q_camids = rng.integers(0, num_cams, num_query)
    g_camids = rng.integers(0, num_cams, num_gallery)
    if integer_dist:  # many ties, including ties between matches, junk and others
        distmat = rng.integers(0, 5, (num_query, num_gallery)).astype(np.float64)
    else:
        distmat = rng.random((num_query, num_gallery)).astype(np.float32)
    return distmat, q_pids, g_pids, q_camids, g_camids


@pytest.mark.parametrize(
    "seed, integer_dist, num_gallery, max_rank",
    [
        (0, False, 300, 50),
        (1, False, 300, 10),
        (2, True, 300, 50),
        (3, True, 60, 20),
        (4, False, 25, 50),  # max_rank > num_gallery
        (5, True, 25, 50),
    ],
)
def test_matches_naive_implementation(seed, integer_dist, num_gallery, max_rank):
    case = random_case(seed, num_gallery=num_gallery, integer_dist=integer_dist)
    expected_cmc, expected_map, expected_minp = naive_evaluate(*case, max_rank)

    cmc, mean_ap = evaluate_rank(*case, max_rank=max_rank)
    assert cmc.dtype == np.float32
    assert cmc.shape == (min(max_rank, num_gallery),)
    np.testing.assert_allclose(cmc, expected_cmc, atol=1e-6)
    assert isinstance(mean_ap, float)
    assert mean_ap == pytest.approx(expected_map, abs=1e-6)

    result = evaluate(*case, max_rank=max_rank)
    assert result["mAP"] == mean_ap
    assert result["mINP"] == pytest.approx(expected_minp, abs=1e-6)
    np.testing.assert_array_equal(result["cmc"], cmc)
    for k in (1, 5, 10):
        expected = expected_cmc[min(k, len(expected_cmc)) - 1]
        assert result[f"rank{k}"] == pytest.approx(expected, abs=1e-6)


def test_queries_without_a_valid_match_are_skipped():
    distmat, q_pids, g_pids, q_camids, g_camids = random_case(6)
    absent = ~np.isin(q_pids, g_pids)
    assert absent.any() and not absent.all()
    full = evaluate(distmat, q_pids, g_pids, q_camids, g_camids)
    present = evaluate(distmat[~absent], q_pids[~absent], g_pids, q_camids[~absent], g_camids)
    assert full["mAP"] == pytest.approx(present["mAP"], abs=1e-12)
    np.testing.assert_allclose(full["cmc"], present["cmc"], atol=1e-7)


def test_ties_are_broken_by_gallery_index():
    # All distances equal: the kept ranking is the gallery order g0 (wrong), g1 (right), g3 (right);
    # g2 shares the query's pid and camera and is dropped.
    distmat = np.zeros((1, 4))
    result = evaluate(distmat, [1], [2, 1, 1, 1], [0], [0, 1, 0, 2])
    assert result["rank1"] == 0.0
    assert result["mAP"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert result["mINP"] == pytest.approx(2 / 3)


def test_torch_inputs_give_the_same_result():
    case = random_case(7, integer_dist=True)
    cmc, mean_ap = evaluate_rank(*case)
    torch_cmc, torch_map = evaluate_rank(*(torch.from_numpy(np.asarray(a)) for a in case))
    np.testing.assert_array_equal(torch_cmc, cmc)
    assert torch_map == mean_ap


def test_worked_example():
    # gallery:        g0      g1      g2      g3            g4      g5
    g_pids = np.array([1, 2, 1, 0, 1, 3])  # g3 is a distractor
    g_camids = np.array([1, 2, 2, 3, 3, 1])
    q_pids = np.array([1, 3, 2, 1])
    q_camids = np.array([1, 2, 2, 2])
    distmat = np.array(
        [
            [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],  # q0: g0 dropped; kept g1 x, g2 v, g3 x, g4 v, g5 x
            [0.5, 0.4, 0.3, 0.2, 0.9, 0.1],  # q1: g5 v first
            [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],  # q2: its only image g1 is dropped -> skipped
            [0.3, 0.1, 0.6, 0.2, 0.4, 0.5],  # q3: g2 dropped; kept g1 x, g3 x, g0 v, g4 v, g5 x
        ]
    )
    # AP:  q0 (1/2 + 2/4) / 2 = 1/2,  q1 1,  q3 (1/3 + 2/4) / 2 = 5/12  -> mAP = 23/36
    # INP: q0 2/4,  q1 1/1,  q3 2/4                                      -> mINP = 2/3
    # first correct match at rank 2, 1, 3 -> CMC = [1/3, 2/3, 1, 1, 1, 1] (max_rank lowered to G=6)
    cmc, mean_ap = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids)
    np.testing.assert_allclose(cmc, [1 / 3, 2 / 3, 1, 1, 1, 1], atol=1e-7)
    assert mean_ap == pytest.approx(23 / 36)
    result = evaluate(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=3)
    assert result["mINP"] == pytest.approx(2 / 3)
    assert (result["rank1"], result["rank5"], result["rank10"]) == pytest.approx((1 / 3, 1, 1))
    np.testing.assert_allclose(result["cmc"], [1 / 3, 2 / 3, 1], atol=1e-7)


def test_small_gallery_lowers_max_rank_with_a_warning(caplog):
    case = random_case(8, num_gallery=30)
    with caplog.at_level(logging.WARNING, logger="reidlab.evaluation"):
        cmc, _ = evaluate_rank(*case, max_rank=50)
    assert cmc.shape == (30,)
    assert "smaller than max_rank" in caplog.text


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: (c[0][0], *c[1:]), r"distmat must be 2-D"),
        (lambda c: (c[0], c[1][:-1], *c[2:]), r"q_pids must have shape \(40,\)"),
        (lambda c: (*c[:4], c[4][:-1]), r"g_camids must have shape \(300,\)"),
        (lambda c: (np.where(np.eye(40, 300) > 0, np.nan, c[0]), *c[1:]), r"NaN or infinite"),
        (lambda c: (c[0], c[1] + 1000, *c[2:]), r"no query has a correct match"),
    ],
)
def test_invalid_inputs_raise(change, message):
    with pytest.raises(ValueError, match=message):
        evaluate_rank(*change(random_case(9)))


def test_max_rank_must_be_positive():
    with pytest.raises(ValueError, match=r"max_rank must be a positive integer, got 0"):
        evaluate(*random_case(10), max_rank=0)


def test_pairwise_distance_is_squared_euclidean():
    rng = np.random.default_rng(11)
    query, gallery = rng.normal(size=(7, 5)), rng.normal(size=(9, 5))
    expected = ((query[:, None, :] - gallery[None, :, :]) ** 2).sum(-1)
    distmat = pairwise_distance(query, gallery, chunk_size=3)
    assert distmat.dtype == np.float32 and distmat.shape == (7, 9)
    np.testing.assert_allclose(distmat, expected, rtol=1e-5, atol=1e-5)
    from_torch = pairwise_distance(torch.from_numpy(query).float(), torch.from_numpy(gallery).float())
    np.testing.assert_allclose(from_torch, expected, rtol=1e-4, atol=1e-4)


def test_pairwise_distance_of_unit_features_is_two_minus_two_cos():
    generator = torch.Generator().manual_seed(0)
    features = torch.nn.functional.normalize(torch.randn(6, 8, generator=generator))
    distmat = pairwise_distance(features, features)
    np.testing.assert_allclose(distmat, (2 - 2 * features @ features.T).numpy(), atol=1e-5)
    assert (distmat >= 0).all()


def test_pairwise_distance_rejects_mismatched_dimensions():
    with pytest.raises(ValueError, match=r"same dimension, got 4 and 5"):
        pairwise_distance(np.zeros((2, 4)), np.zeros((3, 5)))


class Record(NamedTuple):
    path: str
    pid: int
    camid: int


def test_plot_ranked_results_shows_the_kept_ranking(tmp_path):
    g_pids, g_camids = [1, 2, 1, 0, 1, 3], [1, 2, 2, 3, 3, 1]
    gallery = []
    for g, (pid, camid) in enumerate(zip(g_pids, g_camids)):
        path = tmp_path / f"g{g}.jpg"
        Image.new("RGB", (8, 16), (40 * g, 0, 0)).save(path)
        gallery.append(Record(str(path), pid, camid))
    query = []
    for q, (pid, camid) in enumerate([(1, 1), (3, 2)]):
        path = tmp_path / f"q{q}.jpg"
        Image.new("RGB", (8, 16), (0, 0, 200)).save(path)
        query.append(Record(str(path), pid, camid))
    distmat = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.5, 0.4, 0.3, 0.2, 0.9, 0.1]])

    figure, names = plot_ranked_results(distmat, query, gallery, topk=4, image_size=(32, 16))
    # q0: g0 shares pid and camera and is dropped; q1 keeps everything.
    assert names == [
        ["q0.jpg", "g1.jpg", "g2.jpg", "g3.jpg", "g4.jpg"],
        ["q1.jpg", "g5.jpg", "g3.jpg", "g2.jpg", "g1.jpg"],
    ]
    borders = [ax.spines["left"].get_edgecolor() for ax in figure.axes[1:5]]
    assert borders == [to_rgba(c) for c in ["red", "green", "gray", "green"]]
    assert figure.axes[1].get_title() == "#1\npid 2"

    _, names = plot_ranked_results(
        distmat, query, gallery, query_indices=[0], topk=10, drop_same_camera=False
    )
    assert names == [["q0.jpg"] + [f"g{g}.jpg" for g in range(6)]]


def test_evaluate_model_equals_the_manual_pipeline(tiny_synthmarket):
    from reidlab.evaluation import evaluate_model
    from reidlab.models import build_model
    from reidlab.models.features import extract_features

    torch.manual_seed(0)
    model = build_model("labnet", pretrained=False)
    metrics, distmat = evaluate_model(model, tiny_synthmarket, height=128, width=64, progress=False)
    qf = extract_features(model, tiny_synthmarket.query, height=128, width=64, progress=False)
    gf = extract_features(model, tiny_synthmarket.gallery, height=128, width=64, progress=False)
    expected = pairwise_distance(qf, gf)
    np.testing.assert_allclose(distmat, expected, atol=1e-6)
    q, g = tiny_synthmarket.query, tiny_synthmarket.gallery
    cmc, mAP = evaluate_rank(expected, np.array([r.pid for r in q]), np.array([r.pid for r in g]),
                             np.array([r.camid for r in q]), np.array([r.camid for r in g]))
    assert metrics["mAP"] == pytest.approx(mAP) and metrics["rank1"] == pytest.approx(cmc[0])
    store = {}
    for _ in range(2):  # the first call fills the store, the second reads from it: the same distances both times
        _, cached = evaluate_model(model, tiny_synthmarket, height=128, width=64, cache=store, progress=False)
        np.testing.assert_array_equal(cached, distmat)
    assert len(store) == len({r.path for r in (*q, *g)})  # query and gallery images side by side, each once
