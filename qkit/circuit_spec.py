"""``CircuitSpec``: a parameterised Qiskit circuit with its inputs, weights and observables.

What a circuit is, apart from where it comes from: the built-in catalogue (``qkit.circuits``)
and OpenQASM 3 files (``qkit.qasm``) both produce it, so both import it from here and neither
needs the other to describe a circuit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.quantum_info import SparsePauliOp

from qkit.engines.base import validate_layer
from qkit.errors import QkitError

__all__ = ["CircuitSpec", "pauli_observables"]


@dataclass(frozen=True)
class CircuitSpec:
    """A parameterised circuit ready to become a ``QuantumLayer``.

    ``inputs`` and ``weights`` together are exactly the circuit's parameters (checked on
    construction), so binding ``inputs`` to a pre-net output row and ``weights`` to the
    layer's weight vector leaves nothing free.
    """

    name: str
    circuit: QuantumCircuit
    inputs: list[Parameter]
    weights: list[Parameter]
    observables: list[SparsePauliOp]
    input_scale: float

    def __post_init__(self) -> None:
        _validate_spec(self)

    @property
    def n_qubits(self) -> int:
        return self.circuit.num_qubits

    @property
    def n_inputs(self) -> int:
        return len(self.inputs)

    @property
    def n_weights(self) -> int:
        return len(self.weights)

    @property
    def n_outputs(self) -> int:
        return len(self.observables)


def _validate_spec(spec: CircuitSpec) -> None:
    """Reject inconsistent specs early, with a message that names the circuit.

    The checks are the QuantumLayer's own (``validate_layer``), so a spec that builds is a
    spec every engine accepts.
    """
    try:
        validate_layer(spec.circuit, spec.inputs, spec.weights, spec.observables)
    except QkitError as exc:
        raise QkitError(f"circuit {spec.name!r}: {exc}") from None
    if not math.isfinite(spec.input_scale) or spec.input_scale <= 0:
        raise QkitError(f"circuit {spec.name!r}: input_scale must be a positive number")


def pauli_observables(n_qubits: int, pauli: str = "Z") -> list[SparsePauliOp]:
    """One single-qubit ``pauli`` observable per qubit, qubit k first (little-endian labels)."""
    return [SparsePauliOp.from_sparse_list([(pauli, [k], 1.0)], num_qubits=n_qubits) for k in range(n_qubits)]
