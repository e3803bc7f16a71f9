"""``quantum-end`` and ``quantum-mid`` (seed 001, Nowak): a quantum layer in ResNet-18 on BreastMNIST.

Quantum-End: the quantum layer replaces the FC head (512 features -> Linear -> 4 qubits,
angle embedding + 2 BasicEntanglerLayers -> Linear -> classes). Quantum-Mid: the layer sits
after the third residual block: layer3's maps are pooled and projected to 4, and since a
4-value output cannot feed layer4 again, layer4 is dropped (qkit's reading of "followed by
dimensionality reduction and classification"). Both keep qkit's head interface.
Training as in the paper: Adam lr 1e-5 for the quantum variants (the paper's classical
ResNet-18 used 1e-4; the twins share the hybrids' 1e-5 so that only the layer differs),
a training set undersampled to balance, best epoch and early stopping on validation G-mean.
The paper gives neither epochs nor batch size: 50 epochs, patience 10, batch 32 here.
"""

from __future__ import annotations

from typing import Any

from qkit.presets.registry import Preset, register_preset

TRAINING = {
    "head_lr_scale": 1.0,
    "weight_decay": 0.0,
    "ema_decay": 0.0,
    "lr": 1e-5,
    "scheduler": "none",
    "balance": "undersample",
    "monitor": "g_mean",
    "patience": 10,
    "epochs": 50,
    "batch_size": 32,
}
MODEL = {"backbone": "resnet18", "head": "quantum", "circuit": "basic_entangler", "n_qubits": 4, "depth": 2}
TUNABLE = ("pretrained", "n_qubits", "depth", "small_input")
PAPER = (
    "BreastMNIST test: G-mean 0.788 / AUC 0.829 (Quantum-End), 0.655 / 0.826 (Quantum-Mid) vs 0.770 / 0.859 (ResNet18)"
)


def _build(n_classes: int, pretrained: str, n_qubits: int, depth: int, small_input: bool, mid: bool, engine: dict):
    from torch import nn

    from qkit.models import QuantumHead, make_backbone

    net, n_features, recorded = make_backbone("resnet18", pretrained, small_input)
    if mid:
        net.layer4 = nn.Identity()  # after loading weights, so a full resnet18 state dict fits
        n_features = net.layer3[-1].conv2.out_channels  # 256, pooled by the ResNet's avgpool
    head = QuantumHead(n_features, n_classes, "basic_entangler", n_qubits, depth, **engine)
    settings = dict(pretrained=recorded, small_input=bool(small_input), n_qubits=n_qubits, depth=depth)
    return net, head, n_features, settings


def build_end(
    n_classes: int,
    *,
    pretrained: str = "none",
    n_qubits: int = 4,
    depth: int = 2,
    small_input: bool = True,
    **engine: Any,
):
    return _build(n_classes, pretrained, n_qubits, depth, small_input, False, engine)


def build_mid(
    n_classes: int,
    *,
    pretrained: str = "none",
    n_qubits: int = 4,
    depth: int = 2,
    small_input: bool = True,
    **engine: Any,
):
    return _build(n_classes, pretrained, n_qubits, depth, small_input, True, engine)


register_preset(
    Preset(
        name="quantum-end",
        source="001_0b120341caa69647.txt",
        paper=PAPER,
        builder=build_end,
        description="resnet18 (28 px stem) -> Linear(512->4) -> angle embedding + 2 basic-entangler layers -> "
        "Linear(4->classes); Adam 1e-5, undersampled, early stopping on val G-mean",
        model=MODEL,
        train=TRAINING,
        tunable=TUNABLE,
    )
)
register_preset(
    Preset(
        name="quantum-mid",
        source="001_0b120341caa69647.txt",
        paper=PAPER,
        builder=build_mid,
        description="resnet18 up to layer3 -> pool -> Linear(256->4) -> angle embedding + 2 basic-entangler "
        "layers -> Linear(4->classes) (layer4 dropped); training as quantum-end",
        model=MODEL,
        train=TRAINING,
        tunable=TUNABLE,
    )
)
