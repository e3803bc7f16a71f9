"""The engine interface and the validation every QuantumLayer runs before any compute.

An engine is one way to evaluate a parameterised Qiskit circuit: ``execute(inputs,
weights)`` maps a batch of input values ``[B, n_inputs]`` and the weight vector
``[n_weights]`` to expectation values ``[B, n_observables]``. Engines are registered by
name in ``qkit.engines`` so the layer, the CLI and the tests find them in one place; an
engine's options are its constructor's keyword arguments after ``program`` and ``dtype``,
and its ``capabilities`` say which circuits the layer may hand it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np
import torch
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.quantum_info import Pauli, SparsePauliOp

from qkit.engines.gates import check_unitary
from qkit.engines.spec import Capabilities
from qkit.errors import QkitError


@dataclass(frozen=True)
class LayerProgram:
    """A validated circuit with its ordered inputs, weights and observables."""

    circuit: QuantumCircuit
    inputs: tuple[Parameter, ...]
    weights: tuple[Parameter, ...]
    observables: tuple[SparsePauliOp, ...]

    @property
    def n_qubits(self) -> int:
        return self.circuit.num_qubits

    def columns(self, parameters) -> list[int]:
        """Where each of ``parameters`` sits in a row ``[inputs..., weights...]``.

        A transpiled circuit orders its parameters by name (w before x), so rows are bound by
        Parameter, never by position. A parameter the layer does not have is a QkitError."""
        index = {p: i for i, p in enumerate(tuple(self.inputs) + tuple(self.weights))}
        unknown = [p.name for p in parameters if p not in index]
        if unknown:
            raise QkitError(f"the transpiled circuit has unexpected parameters: {', '.join(unknown)}")
        return [index[p] for p in parameters]


class Engine(torch.nn.Module, ABC):
    """Evaluates a LayerProgram. Subclasses implement ``execute``, set ``name`` and declare
    ``capabilities`` (the default promises nothing: unitary circuits only, no gradients)."""

    name: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, program: LayerProgram, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.program = program
        self.dtype = dtype

    @abstractmethod
    def execute(self, inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Expectation values ``[B, n_observables]`` for inputs ``[B, n_inputs]``."""


def _as_parameters(params, role: str) -> tuple[Parameter, ...]:
    params = tuple(params)
    for p in params:
        if not isinstance(p, Parameter):
            raise QkitError(f"{role} parameters must be qiskit Parameters, got {type(p).__name__}")
    if len(set(params)) != len(params):
        raise QkitError(f"{role} parameters contain duplicates")
    return params


def _as_observables(observables, n_qubits: int) -> tuple[SparsePauliOp, ...]:
    if isinstance(observables, (SparsePauliOp, Pauli, str)):
        observables = [observables]
    result = []
    for i, obs in enumerate(observables):
        op = obs if isinstance(obs, SparsePauliOp) else SparsePauliOp(obs)
        if op.num_qubits != n_qubits:
            raise QkitError(f"observable {i} acts on {op.num_qubits} qubits but the circuit has {n_qubits}")
        if not np.allclose(op.simplify().coeffs.imag, 0.0, atol=1e-12):
            # Pauli strings are Hermitian, so a Hermitian SparsePauliOp has real coefficients.
            raise QkitError(
                f"observable {i} is not Hermitian (complex coefficients): expectation values would not be real"
            )
        result.append(op)
    if not result:
        raise QkitError("at least one observable is needed")
    return tuple(result)


def validate_layer(
    circuit,
    input_params: Sequence[Parameter],
    weight_params: Sequence[Parameter],
    observables,
    capabilities: Capabilities | None = None,
) -> LayerProgram:
    """Check that circuit, parameters and observables fit together, before any compute.

    Non-unitary instructions (measure, reset, classical control) pass only when
    ``capabilities`` declares ``non_unitary``; by default they are rejected.
    """
    if not isinstance(circuit, QuantumCircuit):
        raise QkitError(f"circuit must be a qiskit QuantumCircuit, got {type(circuit).__name__}")
    inputs = _as_parameters(input_params, "input")
    weights = _as_parameters(weight_params, "weight")
    if set(inputs) & set(weights):
        shared = sorted(p.name for p in set(inputs) & set(weights))
        raise QkitError(f"parameters are both inputs and weights: {', '.join(shared)}")
    declared, used = set(inputs) | set(weights), set(circuit.parameters)
    if used - declared:
        names = sorted(p.name for p in used - declared)
        raise QkitError(f"circuit parameters are neither inputs nor weights: {', '.join(names)}")
    if declared - used:
        names = sorted(p.name for p in declared - used)
        raise QkitError(
            f"{len(inputs)} inputs + {len(weights)} weights declared but the circuit "
            f"has {len(used)} parameters; unused: {', '.join(names)}"
        )
    if capabilities is None or not capabilities.non_unitary:
        check_unitary(circuit)
    return LayerProgram(circuit, inputs, weights, _as_observables(observables, circuit.num_qubits))
