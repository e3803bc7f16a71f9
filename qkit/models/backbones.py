"""Backbones: torchvision networks (classifier removed) and ``small_cnn``, by name.

A backbone builder ``f(imagenet: bool, small_input: bool) -> (module, n_features)`` returns a
module mapping images ``[B, 3, H, W]`` to features ``[B, n_features]``.

``small_input=True`` gives the backbones a MedMNIST-style stem for 28 px images: ResNets get
a 3x3 stride-1 first convolution and no max-pool, EfficientNet and MobileNet get stride 1 in
their first convolution. Without it a 28 px image is reduced to one pixel before the last
stage; with it the last stage still sees a 2x2 to 4x4 map. The ResNet stem is *replaced*, so
with ImageNet weights its first convolution starts from the pretrained filters resampled to
3x3 (everything after it is pretrained); EfficientNet and MobileNet keep their pretrained
first convolution, only its stride changes. For the full ImageNet stem, resize the images to
224 px and pass ``small_input=False``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from qkit.errors import QkitError

BackboneBuilder = Callable[[bool, bool], tuple[nn.Module, int]]
_BACKBONES: dict[str, BackboneBuilder] = {}


def register_backbone(name: str) -> Callable[[BackboneBuilder], BackboneBuilder]:
    """Register ``builder(imagenet: bool, small_input: bool) -> (module, n_features)``.

    The module must map ``[B, 3, H, W]`` images to ``[B, n_features]`` features.
    """

    def decorator(builder: BackboneBuilder) -> BackboneBuilder:
        _BACKBONES[name] = builder
        return builder

    return decorator


def list_backbones() -> list[str]:
    """Names accepted by ``build_model(backbone=...)``, in registration order."""
    return list(_BACKBONES)


def _torchvision(name: str, weights: str, imagenet: bool) -> nn.Module:
    """Build ``torchvision.models.<name>`` (weights ``<weights>.DEFAULT`` when ``imagenet``), turning a
    failed weight download into a QkitError. torchvision is imported here, not at the top: its import
    pulls in ``torch._dynamo`` (about 3 s on 2 cores), which the small CNNs never need."""
    import torchvision.models as tvm

    constructor, weights_enum = getattr(tvm, name), getattr(tvm, weights)
    if not imagenet:
        return constructor(weights=None)
    try:
        return constructor(weights=weights_enum.DEFAULT)
    except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError; bad hash is RuntimeError
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise QkitError(
            f"ImageNet weights for {constructor.__name__} could not be downloaded ({reason}); "
            "use --pretrained PATH (a qkit state dict) or --pretrained none"
        ) from None


def _resnet(name: str, weights: str, imagenet: bool, small_input: bool) -> tuple[nn.Module, int]:
    net = _torchvision(name, weights, imagenet)
    if small_input:
        # 28 px images: a 7x7 stride-2 conv plus max-pool would discard 15/16 of the pixels.
        old = net.conv1
        net.conv1 = nn.Conv2d(3, old.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
        if imagenet:
            # Start from the pretrained filters rather than noise (it matters most when the
            # backbone is frozen): resample 7x7 -> 3x3, keeping each filter's response to flat
            # regions, and hence the next BatchNorm's statistics, roughly unchanged.
            with torch.no_grad():
                net.conv1.weight.copy_(shrink_kernel(old.weight, 3))
        net.maxpool = nn.Identity()
    n_features = net.fc.in_features
    net.fc = nn.Identity()
    return net, n_features


def shrink_kernel(weight: torch.Tensor, size: int) -> torch.Tensor:
    """Resample conv filters ``[out, in, k, k]`` to ``[out, in, size, size]``.

    Antialiased bilinear resampling averages neighbouring taps; multiplying by the area ratio
    (k/size)^2 keeps each filter's sum, i.e. its response to a flat patch, about the same.
    (Dividing by the exact sums instead would blow up edge filters whose taps sum to ~0.)
    """
    k = weight.shape[-1]
    small = nn.functional.interpolate(weight, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return small * (k * k) / (size * size)


def _stride_one_stem(net: nn.Module) -> None:
    """Set the first convolution of an EfficientNet/MobileNet to stride 1 (keeps its weights)."""
    first_conv = net.features[0][0]
    first_conv.stride = (1, 1)


@register_backbone("resnet18")
def resnet18(imagenet: bool, small_input: bool) -> tuple[nn.Module, int]:
    """ResNet-18, 512 features."""
    return _resnet("resnet18", "ResNet18_Weights", imagenet, small_input)


@register_backbone("resnet34")
def resnet34(imagenet: bool, small_input: bool) -> tuple[nn.Module, int]:
    """ResNet-34, 512 features."""
    return _resnet("resnet34", "ResNet34_Weights", imagenet, small_input)


@register_backbone("resnet50")
def resnet50(imagenet: bool, small_input: bool) -> tuple[nn.Module, int]:
    """ResNet-50, 2048 features."""
    return _resnet("resnet50", "ResNet50_Weights", imagenet, small_input)


def _efficientnet(name: str, weights: str, imagenet: bool, small_input: bool) -> tuple[nn.Module, int]:
    net = _torchvision(name, weights, imagenet)
    if small_input:
        _stride_one_stem(net)
    n_features = net.classifier[-1].in_features
    net.classifier = nn.Identity()
    return net, n_features


@register_backbone("efficientnet_b0")
def efficientnet_b0(imagenet: bool, small_input: bool) -> tuple[nn.Module, int]:
    """EfficientNet-B0, 1280 features (its dropout + classifier removed)."""
    return _efficientnet("efficientnet_b0", "EfficientNet_B0_Weights", imagenet, small_input)


@register_backbone("efficientnet_b5")
def efficientnet_b5(imagenet: bool, small_input: bool) -> tuple[nn.Module, int]:
    """EfficientNet-B5, 2048 features (seed 004's best backbone; ~28M parameters)."""
    return _efficientnet("efficientnet_b5", "EfficientNet_B5_Weights", imagenet, small_input)


@register_backbone("resnext50_32x4d")
def resnext50_32x4d(imagenet: bool, small_input: bool) -> tuple[nn.Module, int]:
    """ResNeXt-50 32x4d, 2048 features (one of seed 000's transfer-learning backbones)."""
    return _resnet("resnext50_32x4d", "ResNeXt50_32X4D_Weights", imagenet, small_input)


@register_backbone("mobilenet_v3_small")
def mobilenet_v3_small(imagenet: bool, small_input: bool) -> tuple[nn.Module, int]:
    """MobileNetV3-Small, 576 features (the pooled features, before its 1024-wide classifier MLP)."""
    net = _torchvision("mobilenet_v3_small", "MobileNet_V3_Small_Weights", imagenet)
    if small_input:
        _stride_one_stem(net)
    n_features = net.classifier[0].in_features
    net.classifier = nn.Identity()
    return net, n_features


class SmallCNN(nn.Module):
    """Three conv-BN-ReLU blocks (32, 64, 128 channels) with 2x2 max-pools, then global average pool.

    About 93k parameters: a fast CPU baseline for 28 px MedMNIST. ``small_input=False``
    makes the first convolution stride 2 so that 224 px images stay cheap.
    """

    def __init__(self, small_input: bool = True, channels: tuple[int, ...] = (32, 64, 128)):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for i, out_ch in enumerate(channels):
            stride = 2 if (i == 0 and not small_input) else 1
            layers += [
                nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.ReLU(inplace=True),
            ]
            if i < len(channels) - 1:
                layers.append(nn.MaxPool2d(2))
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.n_features = in_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.features(x)), 1)


@register_backbone("small_cnn")
def small_cnn(imagenet: bool, small_input: bool) -> tuple[nn.Module, int]:
    """SmallCNN, 128 features; there are no ImageNet weights for it."""
    if imagenet:
        raise QkitError("small_cnn has no ImageNet weights; use --pretrained none or a qkit state dict PATH")
    net = SmallCNN(small_input=small_input)
    return net, net.n_features


@register_backbone("small_cnn4")
def small_cnn4(imagenet: bool, small_input: bool) -> tuple[nn.Module, int]:
    """SmallCNN with a fourth block (256 channels), 256 features: a 4x4 map at 64 px; ~390k parameters.

    Over seeds 0-4 at 64 px it reached test AUC 0.905 +- 0.013 against small_cnn's 0.898 +- 0.014 on
    the same seeds (paired Wilcoxon p = 0.625; docs/training.md, "Image sizes"): not the default.
    """
    if imagenet:
        raise QkitError("small_cnn4 has no ImageNet weights; use --pretrained none or a qkit state dict PATH")
    net = SmallCNN(small_input=small_input, channels=(32, 64, 128, 256))
    return net, net.n_features


class PlainCNN(nn.Module):
    """Conv-BN-ReLU layers with max-pools after the chosen ones, then the flattened map.

    The seed papers' feature extractors flatten a 7x7 map (28 px in, two 2x2 pools);
    an adaptive pool to 7x7 keeps that size for larger images and is the identity at 28 px.
    """

    def __init__(self, channels: tuple[int, ...], kernel: int, pool_after: tuple[int, ...], small_input: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for i, out_ch in enumerate(channels):
            stride = 2 if (i == 0 and not small_input) else 1  # as SmallCNN: large images stay cheap
            layers += [
                nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2),
                nn.BatchNorm2d(out_ch),
                nn.ReLU(inplace=True),
            ]
            if i in pool_after:
                layers.append(nn.MaxPool2d(2))
            in_ch = out_ch
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(7))
        self.n_features = in_ch * 49

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.features(x), 1)


def _plain(
    channels: tuple[int, ...], kernel: int, pool_after: tuple[int, ...], imagenet: bool, small_input: bool, name: str
) -> tuple[nn.Module, int]:
    if imagenet:
        raise QkitError(f"{name} has no ImageNet weights; use --pretrained none or a qkit state dict PATH")
    net = PlainCNN(channels, kernel, pool_after, small_input)
    return net, net.n_features


@register_backbone("hqcnn_cnn")
def hqcnn_cnn(imagenet: bool, small_input: bool) -> tuple[nn.Module, int]:
    """Seed 002's extractor: 3x3 convs 16, 16 (pool), 64, 64, 64 (pool), BN + ReLU; 3136 features."""
    return _plain((16, 16, 64, 64, 64), 3, (1, 4), imagenet, small_input, "hqcnn_cnn")


@register_backbone("hqnn_cnn")
def hqnn_cnn(imagenet: bool, small_input: bool) -> tuple[nn.Module, int]:
    """Seed 003's extractor: 5x5 convs 16 and 32, each BN + ReLU + pool; 1568 features."""
    return _plain((16, 32), 5, (0, 1), imagenet, small_input, "hqnn_cnn")
