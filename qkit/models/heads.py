"""Heads: features ``[B, F]`` -> logits ``[B, n_classes]``, by name.

``linear`` is the classical baseline; ``quantum`` is ``QuantumHead``: Linear(F -> circuit
inputs) -> BatchNorm -> tanh * input_scale -> QuantumLayer (a Qiskit circuit evaluated by an
engine) -> Linear(observables -> n_classes). Only the ``quantum`` sub-module changes when a
trained model is re-scored on another engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

HeadBuilder = Callable[..., nn.Module]
_HEADS: dict[str, HeadBuilder] = {}


def register_head(name: str) -> Callable[[HeadBuilder], HeadBuilder]:
    """Register ``builder(in_features, n_classes, *, circuit, n_qubits, depth, engine, engine_options)``."""

    def decorator(builder: HeadBuilder) -> HeadBuilder:
        _HEADS[name] = builder
        return builder

    return decorator


def list_heads() -> list[str]:
    """Names accepted by ``build_model(head=...)``, in registration order."""
    return list(_HEADS)


class QuantumHead(nn.Module):
    """Linear(F -> circuit inputs) -> BatchNorm -> tanh * input_scale -> QuantumLayer -> Linear(observables -> classes).

    The tanh bounds the circuit inputs to the embedding's natural range (``spec.input_scale``,
    e.g. pi for angle encoding) so the pre-net cannot push them around the circle many times.
    The BatchNorm keeps the tanh out of saturation: trained from scratch, a ResNet's pooled
    features drift and Adam moves all F pre-net weights together, so without it the
    pre-activations grew from std 0.2 to 3.5 within three steps, 94% of the angles sat at
    the rails, every image got the same circuit input and training stalled at the class
    prior (measured on BreastMNIST; see the README).

    ``circuit`` is a built-in name or the path of an OpenQASM 3 file (``qkit.circuits.resolve_circuit``,
    with ``circuit_options`` for a built-in's builder); ``engine`` a name or ``EngineSpec``, with
    ``engine_options`` passed to the engine.
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        circuit: str = "dressed",
        n_qubits: int = 4,
        depth: int = 1,
        engine: Any = "statevector",
        engine_options: dict | None = None,
        circuit_options: dict | None = None,
    ):
        super().__init__()
        # Imported here so classical models work even where the quantum stack is broken.
        from qkit.circuits import resolve_circuit
        from qkit.quantum import QuantumLayer

        # circuit_options: builder options such as strongly_entangling's rotation/readout (presets).
        self.spec = resolve_circuit(circuit, n_qubits, depth, **(circuit_options or {}))
        self.input_scale = float(self.spec.input_scale)
        self.pre = nn.Linear(in_features, len(self.spec.inputs))
        self.norm = nn.BatchNorm1d(len(self.spec.inputs))
        self.quantum = QuantumLayer.from_spec(self.spec, engine=engine, engine_options=engine_options)
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
def quantum_head(
    in_features: int,
    n_classes: int,
    *,
    circuit: str = "dressed",
    n_qubits: int = 4,
    depth: int = 1,
    engine: Any = "statevector",
    engine_options: dict | None = None,
) -> nn.Module:
    """QuantumHead on ``qkit.circuits.resolve_circuit(circuit, n_qubits, depth)``."""
    return QuantumHead(in_features, n_classes, circuit, n_qubits, depth, engine, engine_options)
