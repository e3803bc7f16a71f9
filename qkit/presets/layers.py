"""Torch building blocks the presets add to ``qkit.models``: parallel circuits, quanvolution,
the classical twin layer, and the surgery that turns a hybrid network into its twin.

Everything quantum here is a ``QuantumLayer`` called once per forward pass on a batch:
the four parallel circuits of seed 003 and every 2x2 patch of every image are rows of that
one batch, never a Python loop over circuits or patches.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from qkit.models.heads import QuantumHead
from qkit.quantum import WEIGHT_INIT_STD, QuantumLayer


class ParallelCircuits(nn.Module):
    """``c`` copies of one q-qubit circuit, each with its own weights, as ONE batched call.

    Inputs ``[B, c*q]`` are cut into ``[B*c, q]`` rows; each row is extended by its circuit's
    weights, and one ``QuantumLayer`` whose circuit takes both as inputs evaluates all rows.
    This equals c independent circuits (seed 003: "the variational parameters ... are
    different ... for each of c quantum circuits") at the cost of one q-qubit simulation,
    where a single 20-qubit circuit would cost 2^20 amplitudes per image. Gradients reach
    ``weight`` (``[c, n_weights]``) through the input path.
    """

    def __init__(self, spec: Any, n_circuits: int, engine: Any = "statevector", engine_options: dict | None = None):
        super().__init__()
        self.layer = QuantumLayer(
            spec.circuit,
            list(spec.inputs) + list(spec.weights),
            [],
            spec.observables,
            engine=engine,
            engine_options=engine_options,
        )
        self.layer.weight.requires_grad_(False)  # empty: the weights are this module's, fed as inputs
        self.weight = nn.Parameter(torch.randn(n_circuits, spec.n_weights) * WEIGHT_INIT_STD)
        self.n_circuits, self.width = n_circuits, spec.n_inputs
        self.n_inputs, self.n_outputs = n_circuits * spec.n_inputs, n_circuits * spec.n_outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        rows = x.reshape(batch * self.n_circuits, self.width)  # row b*c + j: circuit j of image b
        weights = self.weight.unsqueeze(0).expand(batch, -1, -1).reshape(batch * self.n_circuits, -1)
        return self.layer(torch.cat([rows, weights.to(rows.dtype)], 1)).reshape(batch, -1)


class ParallelQuantumHead(nn.Module):
    """Seed 003's dense part: Linear(F -> c*q) -> BatchNorm -> ReLU -> c parallel circuits -> Linear.

    The paper applies BatchNorm and ReLU after each classical dense layer, so the RX angles
    are the ReLU outputs. The circuits sit in ``circuits`` (not ``quantum``): run-hardware,
    noise studies and explain need one QuantumLayer there and refuse this head in one line.
    """

    def __init__(self, in_features: int, n_classes: int, circuits: ParallelCircuits):
        super().__init__()
        self.pre = nn.Linear(in_features, circuits.n_inputs)
        self.norm = nn.BatchNorm1d(circuits.n_inputs)
        self.circuits = circuits
        self.post = nn.Linear(circuits.n_outputs, n_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.post(self.circuits(F.relu(self.norm(self.pre(features)))))


class Quanvolution(nn.Module):
    """Seed 003's quanvolution: grayscale -> resize to ``size`` -> 2x2 patches (stride 2) through a
    4-qubit kernel -> 4 channels, flattened channel-major (``4 * (size/2)^2`` features).

    All patches of all images are the rows of one ``kernel`` call. Pixels stay in [0, 1]
    (the ``quanv`` circuit rotates by pi * pixel, as in the paper).
    """

    def __init__(self, kernel: nn.Module, size: int = 14):
        super().__init__()
        self.kernel, self.size = kernel, size
        self.n_features = 4 * (size // 2) ** 2

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        gray = images.mean(dim=1, keepdim=True)
        small = F.interpolate(gray, size=(self.size, self.size), mode="bilinear", align_corners=False)
        patches = F.unfold(small, kernel_size=2, stride=2)  # [B, 4, L]
        batch, k, n = patches.shape
        out = self.kernel(patches.transpose(1, 2).reshape(batch * n, k))  # [B*L, 4]
        return out.reshape(batch, n, -1).transpose(1, 2).reshape(batch, -1)


# --------------------------------------------------------------------------- classical twins


def twin_candidates(n_in: int, n_out: int, target: int) -> list[tuple[str, int, int]]:
    """``(kind, hidden, trainable count)`` of the classical layers a twin may use, simplest first.

    Each maps ``n_in`` -> ``n_out`` and ends in tanh, bounded like expectation values:
    ``scale`` tanh(w*x) and ``affine`` tanh(w*x + b) (n_in == n_out), ``linear`` tanh(Wx + b),
    ``mlp`` tanh(W2 relu(W1 x + b1) + b2) with any hidden width.
    """
    out = []
    if n_in == n_out:
        out += [("scale", 0, n_out), ("affine", 0, 2 * n_out)]
    out.append(("linear", 0, n_in * n_out + n_out))
    per_unit = n_in + 1 + n_out
    for hidden in range(1, max(1, (target - n_out) // per_unit) + 2):
        out.append(("mlp", hidden, hidden * per_unit + n_out))
    return out


def nearest_twin(n_in: int, n_out: int, target: int) -> tuple[str, int, int]:
    """The candidate whose trainable count is nearest ``target`` (the simplest on a tie)."""
    return min(twin_candidates(n_in, n_out, target), key=lambda c: abs(c[2] - target))


class ClassicalTwin(nn.Module):
    """The classical stand-in for a quantum layer with ``target`` weights (see ``twin_candidates``)."""

    def __init__(self, n_in: int, n_out: int, target: int):
        super().__init__()
        self.kind, hidden, self.n_parameters = nearest_twin(n_in, n_out, target)
        self.n_inputs, self.n_outputs, self.target = n_in, n_out, target
        if self.kind in ("scale", "affine"):
            self.scale = nn.Parameter(torch.ones(n_out))
            self.bias = nn.Parameter(torch.zeros(n_out)) if self.kind == "affine" else None
        elif self.kind == "linear":
            self.net = nn.Linear(n_in, n_out)
        else:
            self.net = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind in ("scale", "affine"):
            y = x * self.scale
            return torch.tanh(y if self.bias is None else y + self.bias)
        return torch.tanh(self.net(x))

    def extra_repr(self) -> str:
        return f"{self.kind}, {self.n_inputs}->{self.n_outputs}, params={self.n_parameters} (quantum: {self.target})"


class ClassicalTwinHead(nn.Module):
    """A QuantumHead's pre-net and post-net around a ClassicalTwin (``classical``, not ``quantum``:
    commands that need a circuit see no ``head.quantum`` and refuse in one line)."""

    def __init__(self, head: QuantumHead):
        super().__init__()
        self.pre, self.norm, self.post, self.input_scale = head.pre, head.norm, head.post, head.input_scale
        layer = head.quantum
        self.classical = ClassicalTwin(layer.n_inputs, layer.n_outputs, layer.weight.numel())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.post(self.classical(torch.tanh(self.norm(self.pre(features))) * self.input_scale))


def _quantum_size(module: nn.Module) -> tuple[int, int, int] | None:
    if isinstance(module, ParallelCircuits):
        return module.n_inputs, module.n_outputs, module.weight.numel()
    if isinstance(module, QuantumLayer):
        return module.n_inputs, module.n_outputs, module.weight.numel()
    return None


def make_twin(model: nn.Module) -> nn.Module:
    """Replace, in place, every quantum layer of ``model`` by its ClassicalTwin; returns ``model``."""
    if isinstance(getattr(model, "head", None), QuantumHead):
        model.head = ClassicalTwinHead(model.head)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            size = _quantum_size(child)
            if size is not None:
                setattr(parent, name, ClassicalTwin(*size))
    return model


def quantum_parameter_ids(model: nn.Module) -> set[int]:
    """ids of the parameters that belong to quantum layers (parallel circuits' weights included)."""
    ids: set[int] = set()
    for module in model.modules():
        if _quantum_size(module) is not None:
            ids |= {id(p) for p in module.parameters()}
    return ids


def parameter_split(model: nn.Module) -> tuple[int, int]:
    """(quantum, classical) trainable parameter counts; shared parameters counted once."""
    quantum_ids = quantum_parameter_ids(model)
    seen: dict[int, nn.Parameter] = {id(p): p for p in model.parameters() if p.requires_grad}
    quantum = sum(p.numel() for i, p in seen.items() if i in quantum_ids)
    return quantum, sum(p.numel() for p in seen.values()) - quantum
