"""Hybrid image classifiers: a torchvision backbone followed by a linear or quantum head.

``build_model`` builds one from registered parts; ``HybridModel.config`` holds its arguments,
which a run folder records so that ``qkit.network.build_model_from_config`` rebuilds the same
network (optionally with the circuit on another engine) to load ``model.pt`` into. The
presets' networks are built on these parts by ``qkit.presets``, above this package.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from qkit.engines import EngineSpec
from qkit.errors import QkitError
from qkit.models.backbones import _BACKBONES, list_backbones
from qkit.models.heads import _HEADS, list_heads
from qkit.models.pretrained import load_backbone_state, resolve_pretrained


class HybridModel(nn.Module):
    """``head(backbone(images))``; ``.config`` holds the ``build_model`` arguments.

    With ``freeze_backbone`` the backbone's parameters do not train and the backbone stays in
    eval mode even inside ``model.train()``: otherwise BatchNorm running statistics would keep
    drifting towards the new data while the weights that depend on them stay fixed.
    """

    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Module,
        n_features: int,
        freeze_backbone: bool = False,
        config: dict | None = None,
    ):
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


def engine_arguments(engine: Any, engine_options: dict | None, n_classes: Any) -> tuple[str, dict]:
    """``(engine name, options)`` from an engine name or ``EngineSpec`` plus ``engine_options``
    (a key given both ways is an error), after checking ``n_classes``; presets build with them too."""
    spec = EngineSpec.parse(engine).with_options(engine_options)
    if not isinstance(n_classes, int) or n_classes < 2:
        raise QkitError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    return spec.name, spec.to_dict()["options"]


def build_model(
    backbone: str = "resnet18",
    pretrained: str = "none",
    freeze_backbone: bool = False,
    head: str = "quantum",
    n_classes: int = 2,
    circuit: str = "dressed",
    n_qubits: int = 4,
    depth: int = 1,
    engine: Any = "statevector",
    engine_options: dict | None = None,
    small_input: bool = True,
) -> HybridModel:
    """Build a HybridModel (backbone options: ``qkit.models.backbones``; head: ``qkit.models.heads``).

    ``engine`` is an engine name or ``qkit.engines.EngineSpec``; ``engine_options`` are merged
    into the spec's options and reach the engine's constructor. A preset's network (a name
    from ``qkit.presets``) is built from the same options by ``qkit.network.build_network``.
    """
    engine, options = engine_arguments(engine, engine_options, n_classes)
    config = dict(
        backbone=backbone,
        pretrained=str(pretrained),
        freeze_backbone=bool(freeze_backbone),
        head=head,
        n_classes=n_classes,
        circuit=str(circuit),
        n_qubits=n_qubits,
        depth=depth,
        engine=engine,
        engine_options=options,
        small_input=bool(small_input),
    )
    if head not in _HEADS:
        raise QkitError(f"unknown head {head!r}; choose from: {', '.join(list_heads())}")
    net, n_features, config["pretrained"] = make_backbone(backbone, pretrained, small_input)
    head_module = _HEADS[head](
        n_features, n_classes, circuit=circuit, n_qubits=n_qubits, depth=depth, engine=engine, engine_options=options
    )
    return HybridModel(net, head_module, n_features, bool(freeze_backbone), config)


def make_backbone(backbone: str, pretrained: str = "none", small_input: bool = True) -> tuple[nn.Module, int, str]:
    """``(module, n_features, pretrained as recorded)``: a registered backbone with its weights.

    The recorded ``pretrained`` is the absolute path of a state dict (a run must record where
    its weights came from), else ``"none"``/``"imagenet"``.
    """
    if backbone not in _BACKBONES:
        raise QkitError(f"unknown backbone {backbone!r}; choose from: {', '.join(list_backbones())}")
    state_path = resolve_pretrained(pretrained)
    net, n_features = _BACKBONES[backbone](str(pretrained) == "imagenet", bool(small_input))
    if state_path is None:
        return net, n_features, str(pretrained)
    load_backbone_state(net, state_path, backbone)
    return net, n_features, str(state_path.resolve())


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; shared parameters are counted once."""
    params = list(model.parameters())
    return (sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params))
