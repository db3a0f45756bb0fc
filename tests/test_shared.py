"""reidlab.training.shared: the models several notebooks share, built once up front and then found cached."""

import pytest
import torch

from reidlab.training import build_start_model, preset, supervised
from reidlab.training.shared import build_shared_models, shared_models, supervised_ceiling


def test_after_the_up_front_build_the_notebooks_calls_hit_the_cache(tiny_synthmarket, tmp_path, monkeypatch):
    monkeypatch.setenv("REIDLAB_DATA", str(tmp_path))  # an empty cache: the build trains both
    lines = []
    built = build_shared_models(tiny_synthmarket, scale="tiny", progress=False, report=lines.append)
    assert [model.name for model in built] == ["start", "ceiling"]
    assert all(model.cached and model.seconds > 0 for model in built)
    assert lines[0].startswith("shared models: training start and ceiling now") and "s per iteration measured" in lines[0]
    assert sorted(p.name for p in (tmp_path / "pretrained").glob("*.pt")) == sorted(m.path.name for m in built)

    def no_training(*args, **kwargs):
        raise AssertionError("a notebook trained a shared model that the up-front build had cached")

    monkeypatch.setattr(supervised, "train_supervised", no_training)
    # What the notebooks call: the start model of every run and the ceiling of notebooks 00, 02 and 06.
    start = build_start_model(preset("cluster_contrast", scale="tiny"), scale="tiny", progress=False)
    ceiling = supervised_ceiling(tiny_synthmarket, scale="tiny", progress=False)
    cached_start = torch.load(built[0].path, weights_only=True)
    for key, value in cached_start.items():
        assert torch.equal(start.state_dict()[key], value)
    for a, b in zip(ceiling.state_dict().values(), torch.load(built[1].path, weights_only=True).values()):
        assert torch.equal(a, b)
    lines.clear()
    again = build_shared_models(tiny_synthmarket, scale="tiny", progress=False, report=lines.append)
    assert [model.seconds for model in again] == [0.0, 0.0] and lines[0].startswith("shared models: cached")
    assert len(list((tmp_path / "pretrained").glob("*.pt"))) == 2


def test_shared_models_by_name_and_none_at_full_scale(tiny_synthmarket):
    assert [m.name for m in shared_models(tiny_synthmarket, scale="tiny", models=("start",))] == ["start"]
    assert shared_models(tiny_synthmarket, scale="full") == []
    # At lab scale the start is an initialisation: only the ceiling is trained.
    assert [m.name for m in shared_models(tiny_synthmarket, scale="lab")] == ["ceiling"]
    with pytest.raises(ValueError, match="models must be names from"):
        shared_models(tiny_synthmarket, scale="tiny", models=("bound",))


def test_lab_start_is_the_seeded_initialisation_for_every_run():
    """At lab scale every run, whatever its training seed and method, starts from the network drawn with
    LAB_START_SEED; init="random" draws from the run's seed instead."""
    from reidlab.models import build_model
    from reidlab.training.start import LAB_START_SEED

    torch.manual_seed(LAB_START_SEED)
    expected = build_model("labnet", pooling="avg", pretrained=False).state_dict()
    for method, seed in (("cluster_contrast", 0), ("spcl", 3), ("hhcl", 7)):
        start = build_start_model(preset(method, scale="lab"), scale="lab", seed=seed, progress=False).state_dict()
        assert all(torch.equal(start[key], value) for key, value in expected.items())
    other = build_start_model(preset("cluster_contrast", scale="lab"), scale="lab", seed=0, init="random").state_dict()
    assert not torch.equal(other["backbone.stem.0.weight"], expected["backbone.stem.0.weight"])
