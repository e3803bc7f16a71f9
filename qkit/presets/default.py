"""``qkit-default``: today's ``qkit train`` network (small_cnn + dressed quantum head), so that
comparisons include it. Its training options are qkit's defaults (README, Quickstart)."""

from __future__ import annotations

from typing import Any

from qkit.presets.registry import Preset, register_preset


def build(
    n_classes: int,
    *,
    backbone: str = "small_cnn",
    pretrained: str = "none",
    freeze_backbone: bool = False,
    circuit: str = "dressed",
    n_qubits: int = 4,
    depth: int = 1,
    small_input: bool = True,
    **engine: Any,
):
    from qkit.presets.common import backbone_with_head

    net, head, n_features, settings = backbone_with_head(
        n_classes,
        backbone=backbone,
        pretrained=pretrained,
        small_input=small_input,
        circuit=circuit,
        n_qubits=n_qubits,
        depth=depth,
        **engine,
    )
    return net, head, n_features, {**settings, "circuit": str(circuit), "freeze_backbone": bool(freeze_backbone)}


register_preset(
    Preset(
        name="qkit-default",
        source="qkit (README: Quickstart)",
        paper="qkit, 3 seeds on BreastMNIST: test AUC 0.887 ± 0.016, accuracy 0.876 ± 0.013",
        description="small_cnn -> Linear(128->4) -> BatchNorm -> tanh -> dressed circuit (4 qubits, depth 1) -> "
        "Linear(4->classes); Adam 1e-3 (head x10), cosine, EMA, early stopping on val loss",
        builder=build,
        tunable=("backbone", "pretrained", "freeze_backbone", "circuit", "n_qubits", "depth", "small_input"),
    )
)
