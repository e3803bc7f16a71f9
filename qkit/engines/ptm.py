"""Pauli transfer matrices: the Pauli basis, a channel's PTM, PTMs of unitaries, applying one.

The density engine keeps a density matrix as its Pauli components ``v_P = Tr(rho P)`` over the
4^k Pauli strings (string i = sum_j d_j 4^j, qubit 0 the least significant digit, I X Y Z =
0 1 2 3), and every gate and channel acts on them through its PTM
``R_ij = Tr(P_i E(P_j)) / 2^n``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from qkit.engines.statevector import apply_gate

_SIGMA = np.array([[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=complex)


def pauli_basis(n: int) -> np.ndarray:
    """``[4^n, 2^n, 2^n]``: Pauli string i = sum_j d_j 4^j (qubit 0 least significant, I X Y Z = 0 1 2 3)."""
    basis = _SIGMA
    for _ in range(n - 1):
        basis = np.einsum("iab,jcd->ijacbd", _SIGMA, basis).reshape(len(basis) * 4, basis.shape[1] * 2, -1)
    return basis


def ptm_map(n: int) -> np.ndarray:
    """``[(2^n)^4, 16^n]``: the PTM of an n-qubit unitary U, flattened, is
    ``vec(U[b, c] conj(U[a, d])) @ ptm_map(n)``, since
    ``Tr(P_i U P_j U^dagger) / 2^n = sum P_i[a, b] U[b, c] P_j[c, d] conj(U[a, d]) / 2^n``."""
    basis = pauli_basis(n)
    t = np.einsum("iab,jcd->bcadij", basis, basis) / 2**n
    return t.reshape(4 ** (2 * n), 16**n)


def ptm(channel: Any, n: int) -> np.ndarray:
    """The real PTM of a unitary matrix or a Qiskit/Aer channel on ``n`` qubits, in this module's order.

    An Aer ``QuantumError`` goes through ``error_ptm`` (the same matrix, from cached PTMs of its
    circuits); anything else (a matrix, a Qiskit channel, an object with ``to_quantumchannel``
    such as ``qkit.noise.model.Channel``) through Qiskit's ``PTM``."""
    from qiskit.quantum_info import PTM, Operator

    if hasattr(channel, "circuits") and hasattr(channel, "probabilities"):
        return error_ptm(channel).reshape(4**n, 4**n)
    data = PTM(channel if not isinstance(channel, np.ndarray) else Operator(channel)).data
    return np.array(np.real(data)).reshape(4**n, 4**n)  # a copy: a Channel's parts are cached


_CIRCUIT_PTMS: dict = {}  # circuit key (``_circuit_key``) -> its real PTM, read-only
_MAX_CACHED = 4096


def error_ptm(error: Any) -> np.ndarray:
    """The real PTM of an Aer ``QuantumError`` (Qiskit's order), equal to ``PTM(error)``.

    A QuantumError is the mixture ``sum_i p_i circuit_i`` and Qiskit converts it that way
    (``QuantumError.to_quantumchannel``: one ``SuperOp`` per circuit, summed); here each
    circuit's PTM is Qiskit's ``PTM(circuit)``, converted once and cached by the circuit's
    instructions. Aer's errors are mixtures of a few circuits (Paulis, resets, I, Z, X) that
    recur in every error of a device, so a new error mostly costs one weighted sum."""
    out = None
    for circuit, p in zip(error.circuits, error.probabilities):
        term = p * _circuit_ptm(circuit)
        out = term if out is None else out + term
    return out


def _circuit_ptm(circuit: Any) -> np.ndarray:
    from qiskit.quantum_info import PTM

    key = _circuit_key(circuit)
    matrix = _CIRCUIT_PTMS.get(key) if key is not None else None
    if matrix is None:
        matrix = np.real(np.asarray(PTM(circuit).data))
        if key is not None:
            if len(_CIRCUIT_PTMS) >= _MAX_CACHED:
                _CIRCUIT_PTMS.clear()
            matrix.setflags(write=False)
            _CIRCUIT_PTMS[key] = matrix
    return matrix


def _circuit_key(circuit: Any) -> tuple | None:
    """What fixes a circuit's channel, as Qiskit's ``SuperOp`` reads it: per instruction, a reset;
    a ``kraus`` instruction's matrices; a library gate's class and parameters (its ``to_matrix``);
    and the qubits. None (not cached) for anything else, e.g. a gate defined by its instance's
    own definition or with symbolic parameters."""
    from qiskit.circuit import ControlledGate, Gate

    key: list = [circuit.num_qubits]
    for inst in circuit.data:
        op = inst.operation
        if inst.clbits:
            return None
        if op.name == "reset":
            entry: tuple = ("reset",)
        elif op.name == "kraus":
            entry = ("kraus",) + tuple(_param_key(np.asarray(k)) for k in op.params)
        elif isinstance(op, Gate) and type(op) not in (Gate, ControlledGate):
            entry = (type(op), op.name) + tuple(_param_key(v) for v in op.params)
        else:
            return None
        if any(v is None for v in entry):
            return None
        key.append((entry, tuple(circuit.find_bit(q).index for q in inst.qubits)))
    return tuple(key)


def _param_key(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (str, int, float, complex)):
        return (type(value).__name__, value)
    return None


def apply_ptm(state: torch.Tensor, matrix: torch.Tensor, qubits: tuple[int, ...], k: int) -> torch.Tensor:
    """A PTM on Pauli components ``[B, 4^k]``. One qubit: an einsum over the 4 Pauli digits
    (2-3x faster than a broadcast matmul of B * 4^(k-1) tiny products); more: the
    statevector engine's ``apply_gate`` in base 4."""
    if len(qubits) > 1:
        return apply_gate(state, matrix, qubits, k, base=4)
    q = qubits[0]
    s = state.reshape(state.shape[0], 4 ** (k - 1 - q), 4, 4**q)
    return torch.einsum("bij,bajc->baic", matrix, s).reshape(s.shape[0], -1)
