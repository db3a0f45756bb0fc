from reidlab.models import build_model
from reidlab.training.supervised import SupervisedConfig, train_supervised
from reidlab.utils import seed_everything


def test_supervised_training_lowers_the_loss_and_repeats(tiny_synthmarket):
    config = SupervisedConfig(epochs=3, iters=6, batch_size=16, num_instances=4)

    def run():
        seed_everything(1)
        model = build_model("labnet", pretrained=False)
        return train_supervised(model, tiny_synthmarket.train, config, seed=1, progress=False), model

    losses, model = run()
    assert len(losses) == 3 and losses[-1] < losses[0]
    again, _ = run()
    assert again == losses  # seeded CPU runs repeat exactly
    assert model.training


def test_supervised_model_is_cached(tiny_synthmarket, tmp_path, monkeypatch):
    import torch

    from reidlab.training import supervised

    config = SupervisedConfig(epochs=1, iters=2, batch_size=16)
    first = supervised.supervised_model(tiny_synthmarket, config=config, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("labnet-*.pt"))) == 1 and not list(tmp_path.glob("*partial*"))

    def no_training(*args, **kwargs):
        raise AssertionError("a cached model must not be trained again")

    monkeypatch.setattr(supervised, "train_supervised", no_training)
    again = supervised.supervised_model(tiny_synthmarket, config=config, cache_dir=tmp_path, progress=False)
    for a, b in zip(first.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
