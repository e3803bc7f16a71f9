"""Hybrid image classifiers: a torchvision backbone followed by a linear or quantum head.

``build_model`` is the one entry point. A model is ``HybridModel(backbone, head)``:

* the **backbone** maps images ``[B, 3, H, W]`` to features ``[B, F]``; it comes from a
  registry (``@register_backbone``) of torchvision networks with their classifier removed,
  plus ``small_cnn``, a light network that trains quickly on a CPU;
* the **head** maps features to logits ``[B, n_classes]``; ``linear`` is the classical
  baseline, ``quantum`` is ``QuantumHead``: Linear(F -> circuit inputs) -> tanh * input_scale
  -> QuantumLayer (a Qiskit circuit) -> Linear(observables -> n_classes).

``small_input=True`` (the default) gives the backbones a MedMNIST-style stem for 28 px
images: ResNets get a 3x3 stride-1 first convolution and no max-pool, EfficientNet and
MobileNet get stride 1 in their first convolution. Without it a 28 px image is reduced to
one pixel before the last stage; with it the last stage still sees a 2x2 to 4x4 map. The
ResNet stem is *replaced*, so with ``pretrained="imagenet"`` its first convolution starts
from random weights (everything after it is pretrained); EfficientNet and MobileNet keep
their pretrained first convolution, only its stride changes. For the full ImageNet stem,
resize the images to 224 px and pass ``small_input=False``.

``pretrained`` is ``"none"``, ``"imagenet"`` (torchvision's default ImageNet-1k weights of
that network, ``<Weights>.DEFAULT``, downloaded by torchvision into its cache, $TORCH_HOME) or the path of a state dict saved by qkit: either a whole
``HybridModel`` state dict (its ``backbone.*`` entries are loaded, the head is ignored) or a
backbone-only one. Keys and shapes must match the backbone exactly.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torchvision.models as tvm
from torch import nn

from qkit.errors import QkitError

BackboneBuilder = Callable[[bool, bool], tuple[nn.Module, int]]
HeadBuilder = Callable[..., nn.Module]

_BACKBONES: dict[str, BackboneBuilder] = {}
_HEADS: dict[str, HeadBuilder] = {}
PRETRAINED_CHOICES = ("none", "imagenet")


# --------------------------------------------------------------------------- registries

def register_backbone(name: str) -> Callable[[BackboneBuilder], BackboneBuilder]:
    """Register ``builder(imagenet: bool, small_input: bool) -> (module, n_features)``.

    The module must map ``[B, 3, H, W]`` images to ``[B, n_features]`` features.
    """
    def decorator(builder: BackboneBuilder) -> BackboneBuilder:
        _BACKBONES[name] = builder
        return builder
    return decorator


def register_head(name: str) -> Callable[[HeadBuilder], HeadBuilder]:
    """Register ``builder(in_features, n_classes, *, circuit, n_qubits, depth, engine) -> module``."""
    def decorator(builder: HeadBuilder) -> HeadBuilder:
        _HEADS[name] = builder
        return builder
    return decorator


def list_backbones() -> list[str]:
    """Names accepted by ``build_model(backbone=...)``, in registration order."""
    return list(_BACKBONES)


def list_heads() -> list[str]:
    """Names accepted by ``build_model(head=...)``, in registration order."""
    return list(_HEADS)


# --------------------------------------------------------------------------- backbones

def _torchvision(constructor: Callable[..., nn.Module], weights_enum: Any, imagenet: bool) -> nn.Module:
    """Build a torchvision network, turning a failed weight download into a QkitError."""
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


def _resnet(constructor: Callable[..., nn.Module], weights_enum: Any,
            imagenet: bool, small_input: bool) -> tuple[nn.Module, int]:
    net = _torchvision(constructor, weights_enum, imagenet)
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
    small = nn.functional.interpolate(weight, size=(size, size), mode="bilinear",
                                      antialias=True, align_corners=False)
    return small * (k * k) / (size * size)


def _stride_one_stem(net: nn.Module) -> None:
    """Set the first convolution of an EfficientNet/MobileNet to stride 1 (keeps its weights)."""
    first_conv = net.features[0][0]
    first_conv.stride = (1, 1)


@register_backbone("resnet18")
def resnet18(imagenet: bool, small_input: bool) -> tuple[nn.Module, int]:
    """ResNet-18, 512 features."""
    return _resnet(tvm.resnet18, tvm.ResNet18_Weights, imagenet, small_input)


@register_backbone("resnet34")
def resnet34(imagenet: bool, small_input: bool) -> tuple[nn.Module, int]:
    """ResNet-34, 512 features."""
    return _resnet(tvm.resnet34, tvm.ResNet34_Weights, imagenet, small_input)


@register_backbone("resnet50")
def resnet50(imagenet: bool, small_input: bool) -> tuple[nn.Module, int]:
    """ResNet-50, 2048 features."""
    return _resnet(tvm.resnet50, tvm.ResNet50_Weights, imagenet, small_input)


@register_backbone("efficientnet_b0")
def efficientnet_b0(imagenet: bool, small_input: bool) -> tuple[nn.Module, int]:
    """EfficientNet-B0, 1280 features (its dropout + classifier removed)."""
    net = _torchvision(tvm.efficientnet_b0, tvm.EfficientNet_B0_Weights, imagenet)
    if small_input:
        _stride_one_stem(net)
    n_features = net.classifier[-1].in_features
    net.classifier = nn.Identity()
    return net, n_features


@register_backbone("mobilenet_v3_small")
def mobilenet_v3_small(imagenet: bool, small_input: bool) -> tuple[nn.Module, int]:
    """MobileNetV3-Small, 576 features (the pooled features, before its 1024-wide classifier MLP)."""
    net = _torchvision(tvm.mobilenet_v3_small, tvm.MobileNet_V3_Small_Weights, imagenet)
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
            layers += [nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
                       nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)]
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


# --------------------------------------------------------------------------- heads

class QuantumHead(nn.Module):
    """Linear(F -> circuit inputs) -> BatchNorm -> tanh * input_scale -> QuantumLayer -> Linear(observables -> classes).

    The tanh bounds the circuit inputs to the embedding's natural range (``spec.input_scale``,
    e.g. pi for angle encoding) so the pre-net cannot push them around the circle many times.
    The BatchNorm keeps the tanh out of saturation: trained from scratch, a ResNet's pooled
    features drift and Adam moves all F pre-net weights together, so without it the
    pre-activations grew from std 0.2 to 3.5 within three steps, 94% of the angles sat at
    the rails, every image got the same circuit input and training stalled at the class
    prior (measured on BreastMNIST; see the README). Only the ``quantum`` sub-module changes
    when the circuit is run on another engine.
    """

    def __init__(self, in_features: int, n_classes: int, circuit: str = "dressed",
                 n_qubits: int = 4, depth: int = 1, engine: str = "statevector"):
        super().__init__()
        # Imported here so classical models work even where the quantum stack is broken.
        from qkit.circuits import build_circuit
        from qkit.quantum import QuantumLayer

        self.spec = build_circuit(circuit, n_qubits, depth)
        self.input_scale = float(self.spec.input_scale)
        self.pre = nn.Linear(in_features, len(self.spec.inputs))
        self.norm = nn.BatchNorm1d(len(self.spec.inputs))
        self.quantum = QuantumLayer.from_spec(self.spec, engine=engine)
        self.post = nn.Linear(self.quantum.n_outputs, n_classes)

    def encode(self, features: torch.Tensor) -> torch.Tensor:
        """Pre-net: features -> circuit input angles (what a hardware run sends as parameters)."""
        return torch.tanh(self.norm(self.pre(features))) * self.input_scale

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.post(self.quantum(self.encode(features)))


@register_head("linear")
def linear_head(in_features: int, n_classes: int, **_quantum_options: Any) -> nn.Module:
    """Classical baseline: one Linear layer (the quantum options are ignored)."""
    return nn.Linear(in_features, n_classes)


@register_head("quantum")
def quantum_head(in_features: int, n_classes: int, *, circuit: str = "dressed", n_qubits: int = 4,
                 depth: int = 1, engine: str = "statevector") -> nn.Module:
    """QuantumHead on ``qkit.circuits.build_circuit(circuit, n_qubits, depth)``."""
    return QuantumHead(in_features, n_classes, circuit, n_qubits, depth, engine)


# --------------------------------------------------------------------------- model

class HybridModel(nn.Module):
    """``head(backbone(images))``; ``.config`` holds the ``build_model`` arguments.

    With ``freeze_backbone`` the backbone's parameters do not train and the backbone stays in
    eval mode even inside ``model.train()``: otherwise BatchNorm running statistics would keep
    drifting towards the new data while the weights that depend on them stay fixed.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, n_features: int,
                 freeze_backbone: bool = False, config: dict | None = None):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.n_features = n_features
        self.freeze_backbone = freeze_backbone
        self.config = dict(config or {})
        if freeze_backbone:
            for p in self.backbone.parameters():
                p.requires_grad_(False)
            self.backbone.eval()

    def train(self, mode: bool = True) -> HybridModel:
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images))


def build_model(backbone: str = "resnet18", pretrained: str = "none", freeze_backbone: bool = False,
                head: str = "quantum", n_classes: int = 2, circuit: str = "dressed", n_qubits: int = 4,
                depth: int = 1, engine: str = "statevector", small_input: bool = True) -> HybridModel:
    """Build a HybridModel; see the module docstring for the meaning of each option."""
    config = dict(backbone=backbone, pretrained=str(pretrained), freeze_backbone=bool(freeze_backbone),
                  head=head, n_classes=n_classes, circuit=circuit, n_qubits=n_qubits, depth=depth,
                  engine=engine, small_input=bool(small_input))
    if backbone not in _BACKBONES:
        raise QkitError(f"unknown backbone {backbone!r}; choose from: {', '.join(list_backbones())}")
    if head not in _HEADS:
        raise QkitError(f"unknown head {head!r}; choose from: {', '.join(list_heads())}")
    if not isinstance(n_classes, int) or n_classes < 2:
        raise QkitError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    state_path = _resolve_pretrained(pretrained)
    if state_path is not None:
        config["pretrained"] = str(state_path.resolve())  # a run must record where weights came from

    net, n_features = _BACKBONES[backbone](pretrained == "imagenet", bool(small_input))
    if state_path is not None:
        load_backbone_state(net, state_path, backbone)
    head_module = _HEADS[head](n_features, n_classes, circuit=circuit, n_qubits=n_qubits,
                               depth=depth, engine=engine)
    return HybridModel(net, head_module, n_features, bool(freeze_backbone), config)


def build_model_from_config(config: Mapping[str, Any], **overrides: Any) -> HybridModel:
    """Rebuild a model from ``HybridModel.config`` to load a saved state dict into.

    ``pretrained`` is forced to ``"none"`` (the saved state dict supplies every weight, and the
    original file or download may be gone); ``overrides`` replace entries, e.g. ``engine=``.
    """
    allowed = inspect.signature(build_model).parameters
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise QkitError(f"unknown model config keys: {', '.join(unknown)}")
    args = {**dict(config), "pretrained": "none", **overrides}
    model = build_model(**args)
    model.config["pretrained"] = config.get("pretrained", "none")
    return model


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; shared parameters are counted once."""
    params = list(model.parameters())
    return (sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params))


# --------------------------------------------------------------------------- pretrained files

def _resolve_pretrained(pretrained: str | Path) -> Path | None:
    """Validate ``pretrained``: None for "none"/"imagenet", else the existing file's Path."""
    if str(pretrained) in PRETRAINED_CHOICES:
        return None
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise QkitError(f"pretrained must be 'none', 'imagenet' or a path to a qkit state dict; "
                        f"no such file: {path}")
    return path


def _extract_backbone_state(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """Backbone entries of a HybridModel state dict, or the whole dict if it is backbone-only."""
    if isinstance(obj, Mapping) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        # A training checkpoint wraps the state dict next to optimizer state etc.
        for key in ("model", "state_dict", "model_state_dict", "model_state"):
            if isinstance(obj.get(key), Mapping):
                return _extract_backbone_state(obj[key], path)
        raise QkitError(f"{path} is not a state dict (a mapping of names to tensors)")
    if not isinstance(obj, Mapping):
        raise QkitError(f"{path} is not a state dict (found {type(obj).__name__})")
    if any(k.startswith("backbone.") for k in obj):
        return {k[len("backbone."):]: v for k, v in obj.items() if k.startswith("backbone.")}
    return dict(obj)


def load_backbone_state(net: nn.Module, path: str | Path, backbone: str = "backbone") -> None:
    """Load a qkit-saved state dict into ``net`` with strict key and shape matching."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise QkitError(f"pretrained state dict not found: {path}") from None
    except Exception as exc:  # pickle, zip and unsafe-type errors all mean "not a usable state dict"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise QkitError(f"cannot read state dict {path}: {first}") from None
    state = _extract_backbone_state(obj, path)
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or mismatched:
        def sample(keys: list[str]) -> str:
            return f"{len(keys)} (e.g. {keys[0]})" if keys else "0"
        raise QkitError(
            f"state dict {path} does not fit backbone {backbone!r}: missing keys {sample(missing)}, "
            f"unexpected keys {sample(unexpected)}, shape mismatches {sample(mismatched)}; "
            "was it saved with another backbone or small_input setting?"
        )
    net.load_state_dict(state, strict=True)
