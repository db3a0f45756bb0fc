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
    assert len(m["supervised_losses"]) == 1 and m["supervised_losses"][0] > 0
