import logging

import pytest
import torch
import torchvision

from reidlab.models import (
    IBN,
    GeneralizedMeanPooling,
    build_model,
    has_ibn,
    ibn_backbone,
)


@pytest.mark.parametrize("pooling", ["avg", "gem"])
def test_labnet_embedding_is_unit_norm_in_train_and_eval(pooling):
    model = build_model("labnet", pooling=pooling, pretrained=False)
    images = torch.randn(4, 3, 128, 64)
    assert model.forward_features(images).shape == (4, 128, 16, 8)
    for mode in (True, False):
        model.train(mode)
        out = model(images)
        assert out.shape == (4, model.feature_dim)
        assert torch.allclose(out.norm(dim=1), torch.ones(4), atol=1e-5)


@pytest.mark.parametrize("name,channels", [("resnet18", 512), ("resnet50", 2048)])
def test_resnet_last_stride(name, channels):
    images = torch.randn(2, 3, 256, 128)
    one = build_model(name, pretrained=False, last_stride=1).eval()
    two = build_model(name, pretrained=False, last_stride=2).eval()
    assert one.forward_features(images).shape == (2, channels, 16, 8)
    assert two.forward_features(images).shape == (2, channels, 8, 4)


def test_bn_neck_bias_is_frozen_at_zero():
    model = build_model("labnet", pretrained=False)
    assert not model.neck.bn.bias.requires_grad
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(torch.randn(4, 3, 128, 64)).sum().backward()
    optimizer.step()
    assert torch.count_nonzero(model.neck.bn.bias) == 0


def test_gem_matches_formula_and_reduces_to_average():
    fmap = torch.rand(2, 3, 4, 5) + 0.1
    gem = GeneralizedMeanPooling(p=3.0)
    naive = (fmap**3).mean(dim=(2, 3)) ** (1 / 3)
    assert torch.allclose(gem(fmap), naive, atol=1e-6)
    gem.p.data.fill_(1.0)
    assert torch.allclose(gem(fmap), fmap.mean(dim=(2, 3)), atol=1e-6)


def test_missing_imagenet_weights_fall_back_to_random_with_a_log_line(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="reidlab.models"):
        build_model("resnet18", pretrained=True)
    assert "no ImageNet weights" in caplog.text


def test_cached_imagenet_weights_are_loaded(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    reference = torchvision.models.resnet18(weights=None)
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    (tmp_path / "checkpoints").mkdir()
    torch.save(reference.state_dict(), tmp_path / "checkpoints" / url.rsplit("/", 1)[1])
    model = build_model("resnet18", pretrained=True)
    assert torch.equal(model.backbone.body[0].weight, reference.conv1.weight)
    assert torch.equal(model.backbone.body[7][1].conv2.weight, reference.layer4[1].conv2.weight)


def test_weights_from_a_path(tmp_path):
    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "r18.pth")
    model = build_model("resnet18", pretrained=tmp_path / "r18.pth")
    assert torch.equal(model.backbone.body[4][0].conv1.weight, reference.layer1[0].conv1.weight)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_model("resnet18", pretrained=tmp_path / "missing.pth")


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="backbone must be one of .* got 'resnet51'"):
        build_model("resnet51")
    with pytest.raises(ValueError, match="pooling must be one of .* got 'max'"):
        build_model("labnet", pooling="max")
    with pytest.raises(ValueError, match="last_stride must be 1 or 2"):
        build_model("labnet", last_stride=3)


# ----------------------------------------------------------------------------- IBN-a (HHCL Table 3's "IBN")
def test_ibn_a_sits_after_the_first_convolution_of_the_early_blocks():
    resnet = build_model("resnet50_ibn_a", pretrained=False).backbone.body
    layers = {name: resnet[index] for name, index in (("layer1", 4), ("layer2", 5), ("layer3", 6), ("layer4", 7))}
    for name, layer in layers.items():  # IBN-Net's resnet50_ibn_a: ibn_cfg=('a', 'a', 'a', None)
        assert all(isinstance(block.bn1, IBN) == (name != "layer4") for block in layer), name
        assert not any(isinstance(m, IBN) for block in layer for m in (block.bn2, block.bn3))
    assert sum(isinstance(m, IBN) for m in resnet.modules()) == 3 + 4 + 6
    labnet = build_model("labnet_ibn_a", pretrained=False).backbone
    assert isinstance(labnet.layer1.bn1, IBN) and isinstance(labnet.layer2.bn1, IBN)
    assert not isinstance(labnet.layer3.bn1, IBN) and not has_ibn(build_model("labnet", pretrained=False))
    assert ibn_backbone("resnet50") == ibn_backbone("resnet50_ibn_a") == "resnet50_ibn_a"
    images = torch.randn(2, 3, 128, 64)
    assert build_model("labnet_ibn_a", pretrained=False).eval()(images).shape == (2, 128)


def test_ibn_normalises_half_the_channels_per_image_and_the_rest_per_batch():
    ibn = IBN(6)
    with torch.no_grad():
        ibn.IN.weight.copy_(torch.tensor([1.5, 0.5, 2.0]))
        ibn.IN.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    x = torch.randn(4, 6, 5, 3) * 3 + 1
    out = ibn.train()(x)
    for b in range(4):
        for c in range(3):  # instance norm: statistics of one image and channel
            v = x[b, c]
            expected = (v - v.mean()) / torch.sqrt(v.var(unbiased=False) + 1e-5) * ibn.IN.weight[c] + ibn.IN.bias[c]
            assert torch.allclose(out[b, c], expected, atol=1e-4)
    for c in range(3, 6):  # batch norm: statistics of the channel over the batch
        v = x[:, c]
        assert torch.allclose(out[:, c], (v - v.mean()) / torch.sqrt(v.var(unbiased=False) + 1e-5), atol=1e-4)


def test_cached_ibn_net_weights_are_loaded(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    reference = build_model("resnet18_ibn_a", pretrained=False).backbone
    names = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
    state = {}  # IBN-Net's names: conv1..., layer1.0.bn1.IN.weight, fc.*
    for key, value in reference.state_dict().items():
        _, index, rest = key.split(".", 2)
        state[f"{names[int(index)]}.{rest}"] = value
    state["fc.weight"] = torch.zeros(1000, 512)
    (tmp_path / "checkpoints").mkdir()
    torch.save(state, tmp_path / "checkpoints" / "resnet18_ibn_a-2f571257.pth")
    model = build_model("resnet18_ibn_a", pretrained=True)
    assert torch.equal(model.backbone.body[4][0].bn1.IN.weight, reference.body[4][0].bn1.IN.weight)
    assert torch.equal(model.backbone.body[6][1].conv2.weight, reference.body[6][1].conv2.weight)
