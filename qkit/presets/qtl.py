"""``qtl`` (seed 000, Azevedo et al. after Mari et al.): quantum transfer learning on mammograms.

A frozen pretrained backbone (ResNet-18; ResNeXt-50 32x4d as in the paper's comparison, or
ResNet-50; the paper's DenseNet-161 is not a qkit backbone yet) feeds Mari's dressed quantum
circuit: Linear(F -> 4) -> tanh -> 4 qubits, depth 1 (the paper's best of 1-4) ->
Linear(4 -> classes). Adam lr 4e-4, StepLR(step 15, gamma 0.1),
42 epochs, batch 32 (the paper's Table 1). Backbone features are computed once per split.
Offline, ``--pretrained PATH`` takes the backbone of an earlier qkit run (e.g. a classical
resnet18 trained by ``qkit train --backbone resnet18 --head linear``); with internet, ImageNet.
qkit's head adds a BatchNorm before the tanh (see ``QuantumHead``).
"""

from __future__ import annotations

from typing import Any

from qkit.presets.registry import Preset, register_preset

PAPER_TRAINING = {"head_lr_scale": 1.0, "weight_decay": 0.0, "ema_decay": 0.0}


def build(
    n_classes: int,
    *,
    backbone: str = "resnet18",
    pretrained: str = "imagenet",
    n_qubits: int = 4,
    depth: int = 1,
    small_input: bool = True,
    **engine: Any,
):
    from qkit.presets.common import backbone_with_head

    return backbone_with_head(
        n_classes,
        backbone=backbone,
        pretrained=pretrained,
        small_input=small_input,
        circuit="dressed",
        n_qubits=n_qubits,
        depth=depth,
        **engine,
    )


register_preset(
    Preset(
        name="qtl",
        source="000_db9755a405824f75.txt",
        paper="BCDR mammograms: AUC 0.77 (CQ1, depth 1) vs 0.58 classical TL (C+TL), 0.70 from scratch; accuracy 0.84",
        description="frozen pretrained resnet18 -> dressed circuit (4 qubits, depth 1) -> classes; Adam 4e-4, "
        "StepLR 15/0.1, 42 epochs",
        builder=build,
        model={
            "backbone": "resnet18",
            "pretrained": "imagenet",
            "freeze_backbone": True,
            "head": "quantum",
            "circuit": "dressed",
            "n_qubits": 4,
            "depth": 1,
        },
        train={
            **PAPER_TRAINING,
            "lr": 4e-4,
            "scheduler": "step",
            "step_size": 15,
            "gamma": 0.1,
            "epochs": 42,
            "batch_size": 32,
            "patience": 0,
            "schedule": "fixed",
        },  # the paper's Table 1
        tunable=("backbone", "pretrained", "n_qubits", "depth", "small_input"),
        choices={"backbone": ("resnet18", "resnext50_32x4d", "resnet50")},
    )
)
