"""Backbones and the re-ID embedding model shared by every method.

Blocks first (pooling, neck, instance-batch normalisation, the small lab network), the assembled
:class:`ReIDModel` next, the :func:`build_model` factory last.

The model follows docs/methods.md, section 5 (the recipe of SpCL, Cluster Contrast and HHCL): a convolutional
backbone with its last stride set to 1, global pooling (average or GeM), a ``BatchNorm1d`` neck whose
bias is frozen, and an L2-normalised embedding. ``forward`` returns that normalised embedding in train
and eval mode alike, because every memory of the family compares normalised features in both; the
feature map, which SCWM's part head parses, comes from :meth:`ReIDModel.forward_features`.

Taught in ``notebooks/00_data_and_evaluation.ipynb``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)

PLAIN_BACKBONES = ("labnet", "resnet18", "resnet34", "resnet50")
IBN_SUFFIX = "_ibn_a"  # IBN-Net's names: resnet50_ibn_a (Pan et al., ECCV 2018)
BACKBONES = PLAIN_BACKBONES + tuple(name + IBN_SUFFIX for name in PLAIN_BACKBONES)
POOLINGS = ("avg", "gem")
# IBN-Net's ImageNet checkpoints (its hubconf.py release files), looked for in the local torch cache.
_IBN_CHECKPOINTS = {
    "resnet18_ibn_a": "resnet18_ibn_a-2f571257.pth",
    "resnet34_ibn_a": "resnet34_ibn_a-94bc1577.pth",
    "resnet50_ibn_a": "resnet50_ibn_a-d9d0bb7b.pth",
}


def ibn_backbone(name: str) -> str:
    """The IBN-a variant of backbone ``name`` (``"resnet50"`` -> ``"resnet50_ibn_a"``); an IBN name stays."""
    return name if name.endswith(IBN_SUFFIX) else name + IBN_SUFFIX


class GeneralizedMeanPooling(nn.Module):
    """Generalised-mean (GeM) pooling with a learnable exponent.

    ``GeM(F) = (mean_hw F^p)^(1/p)``; p = 1 is average pooling and p -> inf max pooling
    (Radenovic et al., TPAMI 2019). Cluster Contrast reports its best results with it (appendix
    Table 1; docs/methods.md, section 4.2), starting from p = 3.

    Args:
        p: initial exponent.
        eps: lower clamp of the activations before the power.
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        """Pool ``fmap (B, C, H, W)`` to ``(B, C)``."""
        return fmap.clamp(min=self.eps).pow(self.p).mean(dim=(2, 3)).pow(1.0 / self.p)


class AveragePooling(nn.Module):
    """Global average pooling, ``(B, C, H, W) -> (B, C)``."""

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return fmap.mean(dim=(2, 3))


class BNNeck(nn.Module):
    """BatchNorm1d neck with a frozen bias followed by L2 normalisation (docs/methods.md, section 5).

    The bias is fixed at zero as in the re-ID "BNNeck" (Luo et al., CVPRW 2019) used by SpCL and
    Cluster Contrast, so the normalised feature stays centred.

    Args:
        dim: feature dimension.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)
        self.bn.bias.requires_grad_(False)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """Map pooled features ``(B, D)`` to unit-norm embeddings ``(B, D)``."""
        return F.normalize(self.bn(pooled), dim=1)


class IBN(nn.Module):
    """Instance-batch normalisation of IBN-Net-a (Pan et al., "Two at Once: Enhancing Learning and
    Generalization Capacities via IBN-Net", ECCV 2018): instance normalisation of the first half of the
    channels, batch normalisation of the rest.

    IBN-a puts it in place of the BatchNorm after the first convolution of every residual block of the
    early stages (``resnet50_ibn_a``: layers 1-3 of 4). Instance normalisation removes per-image
    appearance (colour, contrast, style), which is what changes from camera to camera and from dataset
    to dataset; the batch-normalised half keeps the content. HHCL Table 3 (row "IBN") trains HHCL with
    it.

    The submodules keep IBN-Net's names (``IN``, ``BN``), so IBN-Net's ImageNet checkpoint loads as it is.

    Args:
        channels: channels of the input.
        ratio: fraction of the channels that are instance-normalised (IBN-Net: 0.5).
    """

    def __init__(self, channels: int, ratio: float = 0.5) -> None:
        super().__init__()
        self.half = int(channels * ratio)
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(channels - self.half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, C, H, W)`` -> ``(B, C, H, W)``."""
        first, rest = x.split([self.half, x.shape[1] - self.half], dim=1)
        return torch.cat([self.IN(first.contiguous()), self.BN(rest.contiguous())], dim=1)


def _use_ibn(blocks: nn.Module) -> None:
    """Replace the BatchNorm after the first convolution of every residual block in ``blocks`` by
    :class:`IBN` (IBN-a)."""
    for block in list(blocks.modules()):
        if isinstance(getattr(block, "bn1", None), nn.BatchNorm2d) and hasattr(block, "conv1"):
            block.bn1 = IBN(block.bn1.num_features)


def has_ibn(model: nn.Module) -> bool:
    """Whether ``model`` holds instance-batch normalisation (:class:`IBN`)."""
    return any(isinstance(module, IBN) for module in model.modules())


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (He et al., CVPR 2016)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x), inplace=True)


class LabNet(nn.Module):
    """A small residual network that trains on 2 CPU cores (SynthMarket's 128 x 64 images, 64 x 32 at lab scale).

    Overall stride 8 with ``last_stride=1`` (16 x 8 feature map for a 128 x 64 image, the map size of
    ResNet-50 with last stride 1 at 256 x 128), stride 16 with ``last_stride=2``.

    With ``ibn`` it is the lab-scale counterpart of IBN-ResNet-50-a: :class:`IBN` in the blocks of its
    first two stages, not in the last (``resnet50_ibn_a`` has it in layers 1-3, not in layer 4).

    Args:
        widths: channels of the stem and the three stages.
        last_stride: stride of the last stage (1 as in docs/methods.md, section 5, or 2).
        ibn: instance-batch normalisation (IBN-a) in the first two stages.
    """

    def __init__(self, widths: tuple[int, int, int, int] = (32, 64, 128, 128), last_stride: int = 1,
                 ibn: bool = False) -> None:
        super().__init__()
        stem, w1, w2, w3 = widths
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True)
        )
        self.layer1 = BasicBlock(stem, w1, stride=2)
        self.layer2 = BasicBlock(w1, w2, stride=2)
        self.layer3 = BasicBlock(w2, w3, stride=last_stride)
        self.out_channels = w3
        if ibn:
            _use_ibn(self.layer1)
            _use_ibn(self.layer2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map ``images (B, 3, H, W)`` to the feature map ``(B, C, H/8, W/8)``."""
        return self.layer3(self.layer2(self.layer1(self.stem(images))))


class TorchvisionResNet(nn.Module):
    """A torchvision ResNet trunk (no pooling, no classifier) with an optional last stride of 1.

    Args:
        arch: ``"resnet18"``, ``"resnet34"`` or ``"resnet50"``.
        last_stride: stride of ``layer4`` (1 as in docs/methods.md, section 5, or 2 as in ImageNet ResNets).
        ibn: IBN-a (IBN-Net's ``resnet50_ibn_a``): :class:`IBN` after the first convolution of every block
            of layers 1-3.
    """

    def __init__(self, arch: str, last_stride: int = 1, ibn: bool = False) -> None:
        super().__init__()
        import torchvision

        net = getattr(torchvision.models, arch)(weights=None)
        if ibn:
            for layer in (net.layer1, net.layer2, net.layer3):
                _use_ibn(layer)
        if last_stride != 2:
            block = net.layer4[0]
            conv = block.conv2 if hasattr(block, "conv3") else block.conv1  # Bottleneck strides conv2
            conv.stride = (last_stride, last_stride)
            block.downsample[0].stride = (last_stride, last_stride)
        self.body = nn.Sequential(
            net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4
        )
        self.out_channels = net.fc.in_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map ``images (B, 3, H, W)`` to the feature map ``(B, C, H/16, W/16)`` (last stride 1)."""
        return self.body(images)


class ReIDModel(nn.Module):
    """Backbone -> pooling -> BN neck -> L2-normalised embedding (docs/methods.md, section 5).

    Args:
        backbone: module mapping images ``(B, 3, H, W)`` to a feature map ``(B, C, h, w)``, with an
            ``out_channels`` attribute.
        pooling: ``"avg"`` or ``"gem"``.
    """

    def __init__(self, backbone: nn.Module, pooling: str = "avg") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.backbone = backbone
        self.pool = GeneralizedMeanPooling() if pooling == "gem" else AveragePooling()
        self.neck = BNNeck(backbone.out_channels)
        self.feature_dim = backbone.out_channels

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """The backbone feature map ``(B, C, h, w)`` (what SCWM's part head parses)."""
        return self.backbone(images)

    def forward_head(self, fmap: torch.Tensor) -> torch.Tensor:
        """Pool a feature map ``(B, C, h, w)`` into the unit-norm embedding ``(B, C)``."""
        return self.neck(self.pool(fmap))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The unit-norm embedding ``(B, C)`` of ``images (B, 3, H, W)``, in train and eval mode."""
        return self.forward_head(self.forward_features(images))


def _cached_imagenet_weights(arch: str) -> Path | None:
    """The newest torchvision ImageNet checkpoint of ``arch`` already in the local torch cache (IBN-Net's
    release file for an IBN-a ResNet)."""
    import torchvision

    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    if arch.endswith(IBN_SUFFIX):
        path = checkpoints / _IBN_CHECKPOINTS[arch]
        return path if path.is_file() else None
    enum = getattr(torchvision.models, f"ResNet{arch[len('resnet'):]}_Weights")
    for weights in (enum.IMAGENET1K_V1, getattr(enum, "IMAGENET1K_V2", None)):
        if weights is not None:
            path = checkpoints / Path(weights.url).name
            if path.is_file():
                return path
    return None


def _load_trunk_weights(trunk: TorchvisionResNet, path: Path) -> None:
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    # torchvision names (conv1, layer1.0...) -> positions in the Sequential body.
    names = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
    renamed = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        renamed[f"body.{names.index(head)}.{rest}"] = value
    trunk.load_state_dict(renamed)


def build_model(
    name: str = "resnet50",
    *,
    pooling: str = "avg",
    last_stride: int = 1,
    pretrained: bool | str | Path = True,
) -> ReIDModel:
    """Build a re-ID model: backbone, pooling, frozen-bias BN neck, L2-normalised embedding.

    ImageNet weights are never downloaded: with ``pretrained=True`` a ResNet uses the torchvision
    checkpoint (IBN-Net's, ``resnet50_ibn_a-d9d0bb7b.pth``, for an IBN-a ResNet) only if it is already in
    the local torch cache (``torch.hub.get_dir()``) and otherwise starts from random weights with a log
    line saying so; a path loads that file.

    Args:
        name: one of ``"labnet"`` (small, CPU lab scale), ``"resnet18"``, ``"resnet34"``, ``"resnet50"``
            (the papers' backbone, docs/methods.md, section 5).
            With the suffix ``"_ibn_a"``, its IBN-a variant (:class:`IBN`; ``"resnet50_ibn_a"`` is HHCL Table 3's
            IBN-ResNet50).
        pooling: ``"avg"`` (SpCL, HHCL) or ``"gem"`` (Cluster Contrast's best setting).
        last_stride: stride of the last stage; 1 in every method of the family.
        pretrained: ``True`` for cached ImageNet weights when available, ``False`` for random
            initialisation, or a path to a torchvision-format ResNet state dict. LabNet has no
            ImageNet weights and always starts from random weights unless a path is given.

    Returns:
        The model, in training mode, on the CPU.
    """
    if name not in BACKBONES:
        raise ValueError(f"backbone must be one of {BACKBONES}, got {name!r}")
    if last_stride not in (1, 2):
        raise ValueError(f"last_stride must be 1 or 2, got {last_stride!r}")
    arch, ibn = name.removesuffix(IBN_SUFFIX), name.endswith(IBN_SUFFIX)
    if arch == "labnet":
        model = ReIDModel(LabNet(last_stride=last_stride, ibn=ibn), pooling=pooling)
        if isinstance(pretrained, (str, Path)):
            model.load_state_dict(torch.load(Path(pretrained), map_location="cpu", weights_only=True))
        return model

    trunk = TorchvisionResNet(arch, last_stride=last_stride, ibn=ibn)
    if isinstance(pretrained, (str, Path)):
        path = Path(pretrained)
        if not path.is_file():
            raise FileNotFoundError(f"pretrained weights file {str(path)!r} does not exist")
        _load_trunk_weights(trunk, path)
        logger.info("%s: loaded weights from %s", name, path)
    elif pretrained:
        path = _cached_imagenet_weights(name)
        if path is None:
            logger.warning(
                "%s: no ImageNet weights in the local torch cache (%s); starting from random weights. "
                "Put %s checkpoint there or pass pretrained=PATH.",
                name,
                Path(torch.hub.get_dir()) / "checkpoints",
                f"IBN-Net's {_IBN_CHECKPOINTS[name]}" if ibn else "torchvision's",
            )
        else:
            _load_trunk_weights(trunk, path)
            logger.info("%s: loaded ImageNet weights from %s", name, path)
    return ReIDModel(trunk, pooling=pooling)
