"""``effnet-qnn`` (seed 004): EfficientNet (b0 default, b5 the paper's best) or ResNet-50 with a
quantum head, on BreastMNIST.

The source (a summary of an open-source notebook) gives neither the circuit nor the training
recipe: qkit uses 4 qubits, angle embedding + 2 basic-entangler layers (seed 001's PennyLane
pattern) and its own optimiser defaults with 30 epochs (patience 10). Backbones train from
scratch by default (offline); ``--pretrained imagenet`` with internet, or ``--pretrained PATH``.
"""

from __future__ import annotations

from typing import Any

from qkit.presets.registry import Preset, register_preset


def build(
    n_classes: int,
    *,
    backbone: str = "efficientnet_b0",
    pretrained: str = "none",
    freeze_backbone: bool = False,
    n_qubits: int = 4,
    depth: int = 2,
    small_input: bool = True,
    **engine: Any,
):
    from qkit.presets.common import backbone_with_head

    net, head, n_features, settings = backbone_with_head(
        n_classes,
        backbone=backbone,
        pretrained=pretrained,
        small_input=small_input,
        circuit="basic_entangler",
        n_qubits=n_qubits,
        depth=depth,
        **engine,
    )
    return net, head, n_features, {**settings, "freeze_backbone": bool(freeze_backbone)}


register_preset(
    Preset(
        name="effnet-qnn",
        source="004_f98e3cf4788fa45b.txt",
        paper="BreastMNIST accuracy: EfficientNet-B5+QNN 90.5% vs 88.5%; ResNet50+QNN 89.0% vs 86.0%; "
        "EfficientNetV2-S+QNN 88.0% vs 85.5% (BreakHis: 72.5% vs 77.5%)",
        description="efficientnet_b0 (b5, resnet50 selectable) -> Linear -> 4 qubits, angle embedding + 2 "
        "basic-entangler layers -> Linear; qkit's optimiser defaults, 30 epochs",
        builder=build,
        model={
            "backbone": "efficientnet_b0",
            "head": "quantum",
            "circuit": "basic_entangler",
            "n_qubits": 4,
            "depth": 2,
        },
        train={"epochs": 30, "patience": 10},
        tunable=("backbone", "pretrained", "freeze_backbone", "n_qubits", "depth", "small_input"),
        choices={"backbone": ("efficientnet_b0", "efficientnet_b5", "resnet50")},
    )
)
