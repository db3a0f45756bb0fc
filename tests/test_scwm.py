import numpy as np
import pytest
import torch

from reidlab.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from reidlab.memory import WeightedMemory
from reidlab.models import PartReIDModel, build_model
from reidlab.training import Trainer, preset
from reidlab.training.parts import PartStage, flip_pad_crop
from reidlab.training.stages import Batch
from reidlab.utils import seed_everything


def part_model(config, seed=0):
    seed_everything(seed)
    model = build_model("labnet", pretrained=False)
    return PartReIDModel.from_model(model, num_parts=config.num_parts, part_source=config.part_source)


@pytest.mark.parametrize("method", ["scwm", "pplr_stripes"])
def test_each_part_method_trains_at_tiny_scale(method, tiny_synthmarket, tmp_path):
    config = preset(method, scale="tiny")
    trainer = Trainer(part_model(config), tiny_synthmarket, config, run_dir=tmp_path, progress=False)
    assert isinstance(trainer.stage, PartStage)
    history = trainer.fit()
    assert [e["epoch"] for e in history] == list(range(config.epochs))
    memory = trainer.memory
    assert isinstance(memory, WeightedMemory) and memory.num_streams == 1 + config.num_parts
    assert memory.num_rows == history[-1]["n_clusters"]
    norms = memory.centroids.norm(dim=-1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-4)
    for entry in history:
        # The recorded terms are exactly the configured ones and add up to the loss.
        terms = {k[len("loss_"):]: v for k, v in entry.items() if k.startswith("loss_")}
        assert set(terms) == set(config.losses)
        assert sum(terms.values()) == pytest.approx(entry["loss"], rel=1e-5)
        assert 0 <= entry["mean_alpha"] <= 1 and 0 <= entry["mAP"] <= 1
        if method == "scwm":  # SynthMarket has ground-truth masks
            assert 0 <= entry["pseudo_miou"] <= 1 and 0 <= entry["predicted_miou"] <= 1
        else:
            assert "pseudo_miou" not in entry
    # The classifier's Adam group is dropped after each epoch, so checkpoints hold the model's groups only.
    assert len(trainer.optimizer.param_groups) == 1


def test_scwm_resume_restores_the_smoothed_masks(tiny_synthmarket, tmp_path):
    config = preset("scwm", scale="tiny", epochs=2, gamma_epochs=3, eval_step=2)
    full = Trainer(part_model(config), tiny_synthmarket, config, run_dir=tmp_path / "full", progress=False)
    full_history = full.fit()

    class Interrupt(Exception):
        pass

    def stop(entry):
        if entry["epoch"] == 0:
            raise Interrupt

    with pytest.raises(Interrupt):
        Trainer(part_model(config), tiny_synthmarket, config, run_dir=tmp_path / "cut", progress=False,
                     callbacks=[stop]).fit()
    resumed = Trainer(part_model(config, seed=5), tiny_synthmarket, config, run_dir=tmp_path / "cut",
                           progress=False)
    history = resumed.fit(resume=True)
    for a, b in zip(full_history, history):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a.get("mAP") == pytest.approx(b.get("mAP"), abs=1e-6)
    assert torch.allclose(full.stage.smoother.masks, resumed.stage.smoother.masks, atol=1e-6)


def test_the_trainer_refuses_a_model_the_method_cannot_train(tiny_synthmarket):
    config = preset("scwm", scale="tiny")
    with pytest.raises(ValueError, match="needs a reidlab.models.PartReIDModel"):
        Trainer(build_model("labnet", pretrained=False), tiny_synthmarket, config, progress=False)
    stripes = preset("pplr_stripes", scale="tiny")
    with pytest.raises(ValueError, match="3 stripes parts but the config asks for 4 parsing"):
        Trainer(part_model(stripes), tiny_synthmarket, config, progress=False)
    with pytest.raises(ValueError, match="trains the global embedding, but the model is a PartReIDModel"):
        Trainer(part_model(config), tiny_synthmarket, preset("hhcl", scale="tiny"))


def test_part_config_errors():
    with pytest.raises(ValueError, match="losses must be names from"):
        preset("scwm", scale="tiny", losses=("wnce", "center"))
    with pytest.raises(ValueError, match="need part_source='parsing'"):
        preset("pplr_stripes", scale="tiny", losses=("id", "parsing"))
    with pytest.raises(ValueError, match="memory_update of method 'scwm' must be one of"):
        preset("scwm", scale="tiny", memory_update="average")
    assert preset("scwm", scale="tiny", losses=["id", "wnce"]).losses == ("id", "wnce")  # from JSON


def test_full_scale_presets_follow_the_papers():
    market, msmt = preset("scwm", dataset="market1501"), preset("scwm", dataset="msmt17")
    assert (market.num_parts, market.eps, msmt.num_parts, msmt.eps) == (4, 0.5, 7, 0.7)  # SCWM 4.2
    assert (market.height, market.width, market.epochs, market.iters, market.momentum, market.beta) == (
        384, 128, 60, 400, 0.2, 0.35)
    # SCWM 4.2: gamma 0.2 -> 0 after 20 epochs, tau 0.05, Adam 3.5e-4 / 5e-4, x0.1 every 20 epochs, GAP.
    assert (market.gamma, market.gamma_epochs, market.temperature, market.lr, market.weight_decay,
            market.step_size, market.pooling) == (0.2, 20, 0.05, 3.5e-4, 5e-4, 20, "avg")
    assert (market.part_source, market.memory_update, market.losses) == (
        "parsing", "weighted", ("parsing", "diversity", "wnce", "sep", "id"))  # Eq. 16, Table 3's weighted update
    pplr = preset("pplr_stripes", dataset="market1501")
    assert (pplr.part_source, pplr.num_parts, pplr.losses, pplr.beta, pplr.aals_start_epoch) == (
        "stripes", 3, ("id", "triplet"), 0.5, 5)
    with pytest.raises(ValueError, match="full-scale presets of 'scwm' exist for"):
        preset("scwm", dataset="dukemtmcreid")


def naive_flip_pad_crop(image, mask, flip, top, left, padding):
    """One image (3, H, W) and its hard mask (H, W) through flip, pad and crop, pixel by pixel."""
    _, height, width = image.shape
    black = -torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD)
    out = torch.empty_like(image)
    out_mask = torch.empty_like(mask)
    for y in range(height):
        for x in range(width):
            sy, sx = y + top - padding, x + left - padding  # position in the unpadded image
            if 0 <= sy < height and 0 <= sx < width:
                sx = width - 1 - sx if flip else sx
                out[:, y, x], out_mask[y, x] = image[:, sy, sx], mask[sy, sx]
            else:
                out[:, y, x], out_mask[y, x] = black, -1  # padding: background
    return out, out_mask


def test_flip_pad_crop_moves_images_and_masks_together():
    torch.manual_seed(0)
    batch, parts, height, width, stride, padding = 4, 3, 16, 8, 4, 3
    images = torch.randn(batch, 3, height, width)
    hard = torch.randint(0, parts, (batch, height // stride, width // stride))
    soft = torch.nn.functional.one_hot(hard, parts).permute(0, 3, 1, 2).float()
    generator = torch.Generator().manual_seed(7)
    out, out_masks = flip_pad_crop(images, soft, flip_p=0.5, padding=padding, generator=generator)
    # Replay the same random draws to know what each sample got.
    replay = torch.Generator().manual_seed(7)
    flip = torch.rand(batch, generator=replay) < 0.5
    top = torch.randint(0, 2 * padding + 1, (batch,), generator=replay)
    left = torch.randint(0, 2 * padding + 1, (batch,), generator=replay)
    assert flip.any() and not flip.all()
    for b in range(batch):
        pixel_mask = hard[b].repeat_interleave(stride, 0).repeat_interleave(stride, 1)
        expected, expected_mask = naive_flip_pad_crop(images[b], pixel_mask, flip[b], top[b], left[b], padding)
        assert torch.allclose(out[b], expected)
        onehot = torch.zeros(parts, height, width)
        for k in range(parts):
            onehot[k] = (expected_mask == k).float()
        onehot[-1] += (expected_mask == -1).float()  # padding counts as background (the last part)
        pooled = torch.nn.functional.avg_pool2d(onehot[None], stride)[0]
        assert torch.allclose(out_masks[b], pooled, atol=1e-6)
    assert torch.allclose(out_masks.sum(1), torch.ones(batch, height // stride, width // stride))
    # Without masks only the images come back.
    images_only, none = flip_pad_crop(images, None, padding=padding, generator=torch.Generator().manual_seed(7))
    assert none is None and torch.allclose(images_only, out)


def test_extracted_part_features_match_the_model(tiny_synthmarket):
    from reidlab.data.loaders import build_test_loader
    from reidlab.training.parts import extract_part_features

    config = preset("scwm", scale="tiny")
    model = part_model(config).eval()
    records = tiny_synthmarket.train[:20]
    feats = extract_part_features(model, records, height=128, width=64, parse=True, num_parts=4, batch_size=8,
                                  progress=False)
    images = next(iter(build_test_loader(records, height=128, width=64, batch_size=20)))[0]
    with torch.no_grad():
        out = model.forward_parts(images)
    assert torch.allclose(feats.global_, out.global_, atol=1e-5)
    assert torch.allclose(feats.parts, out.parts, atol=1e-5)
    assert feats.pseudo_masks.shape == (20, 16, 8) and int(feats.pseudo_masks.max()) < 4
    assert np.array_equal(feats.predicted_masks.numpy(), out.part_logits.argmax(1).numpy())


def test_loss_terms_follow_eq_13_to_15_and_the_aals_switch(tiny_synthmarket):
    import torch.nn.functional as F

    from reidlab.training.losses import (
        agreement_label_smoothing_loss,
        part_guided_refinement_loss,
    )

    config = preset("scwm", scale="tiny", aals_start_epoch=1)
    trainer = Trainer(part_model(config), tiny_synthmarket, config, progress=False)
    features = trainer.clustering_features()
    labels = trainer.build_memory(features, trainer.pseudo_label(features.global_), 0)
    indexes = torch.from_numpy(np.flatnonzero(labels >= 0)[:12])
    targets = torch.from_numpy(labels[indexes.numpy()]).long()
    images = torch.randn(len(indexes), 3, config.height, config.width, generator=torch.Generator().manual_seed(0))
    out = trainer.model.train().forward_parts(images)
    stage = trainer.stage
    masks = stage.smoother(indexes)
    weights = trainer.memory.class_weights(WeightedMemory.raw_weights(features.difficulty[indexes]), targets)
    logits = stage.classifier(torch.cat([out.global_[:, None], out.parts], dim=1))
    alpha = features.difficulty[indexes]
    refinement = part_guided_refinement_loss(logits[:, 0], logits[:, 1:], targets, alpha, beta=config.beta)
    # Before aals_start_epoch the parts use PPLR's CrossEntropyLabelSmooth (epsilon 0.1), then AALS (Eq. 13).
    smoothed = sum(F.cross_entropy(logits[:, 1 + k], targets, label_smoothing=0.1) for k in range(4)) / 4
    aals = sum(agreement_label_smoothing_loss(logits[:, 1 + k], targets, alpha[:, k]) for k in range(4)) / 4
    for epoch, part_term in ((0, smoothed), (1, aals)):
        terms = stage.loss_terms(out, Batch(images, targets, indexes, {"masks": masks}), epoch)
        assert set(terms) == set(config.losses)
        torch.testing.assert_close(terms["id"], refinement + part_term)
    assert not torch.allclose(smoothed, aals)  # the switch is visible
    streams = torch.cat([out.global_[:, None], out.parts], dim=1)
    torch.testing.assert_close(terms["wnce"], trainer.memory.loss(streams, targets, weights=weights))
    torch.testing.assert_close(terms["sep"], trainer.memory.separation_loss(streams, targets))


def test_memory_is_updated_after_each_optimiser_step_without_gradient(tiny_synthmarket, monkeypatch):
    config = preset("scwm", scale="tiny", epochs=1)
    trainer = Trainer(part_model(config), tiny_synthmarket, config, progress=False)
    first = next(p for p in trainer.model.parameters() if p.requires_grad)
    calls = []
    original = WeightedMemory.update

    def spy(self, features, targets, **kwargs):
        weights = self.batch_weights(targets, kwargs["indexes"])  # Eq. 8 from the stored difficulty
        calls.append((int(trainer.optimizer.state[first]["step"]), features.requires_grad, weights))
        return original(self, features, targets, **kwargs)

    monkeypatch.setattr(WeightedMemory, "update", spy)
    trainer.fit()
    assert [step for step, _, _ in calls] == list(range(1, config.iters + 1))  # Adam has stepped each time
    assert not any(grad for _, grad, _ in calls)
    assert all(w is not None for _, _, w in calls)  # "weighted" gets the Eq. 8 weights
