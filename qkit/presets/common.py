"""Builder pieces the preset families share (torch: imported only when a model is built)."""

from __future__ import annotations

from typing import Any

from torch import nn

from qkit.models import QuantumHead, make_backbone


def backbone_with_head(
    n_classes: int,
    *,
    backbone: str,
    pretrained: str = "none",
    small_input: bool = True,
    circuit: str = "dressed",
    n_qubits: int = 4,
    depth: int = 1,
    engine: Any = "statevector",
    engine_options: dict | None = None,
    circuit_options: dict | None = None,
) -> tuple[nn.Module, QuantumHead, int, dict]:
    """A registered backbone (with its weights) and a QuantumHead; the settings to record."""
    net, n_features, recorded = make_backbone(backbone, pretrained, small_input)
    head = QuantumHead(n_features, n_classes, circuit, n_qubits, depth, engine, engine_options, circuit_options)
    settings = dict(
        backbone=backbone, pretrained=recorded, small_input=bool(small_input), n_qubits=n_qubits, depth=depth
    )
    return net, head, n_features, settings


def mlp_post(n_in: int, hidden: int, n_classes: int) -> nn.Module:
    """Two FC layers after the circuit (seed 002's FC2 -> ReLU -> FC3)."""
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
