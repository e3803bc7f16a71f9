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
    t = np.einsum("iab,jcd->bcadij", basis, basis) / 2 ** n
    return t.reshape(4 ** (2 * n), 16 ** n)


def ptm(channel: Any, n: int) -> np.ndarray:
    """The real PTM of a unitary matrix or a Qiskit/Aer channel on ``n`` qubits, in this module's order."""
    from qiskit.quantum_info import PTM, Operator

    data = PTM(channel if not isinstance(channel, np.ndarray) else Operator(channel)).data
    return np.real(np.asarray(data)).reshape(4 ** n, 4 ** n)


def apply_ptm(state: torch.Tensor, matrix: torch.Tensor, qubits: tuple[int, ...], k: int) -> torch.Tensor:
    """A PTM on Pauli components ``[B, 4^k]``. One qubit: an einsum over the 4 Pauli digits
    (2-3x faster than a broadcast matmul of B * 4^(k-1) tiny products); more: the
    statevector engine's ``apply_gate`` in base 4."""
    if len(qubits) > 1:
        return apply_gate(state, matrix, qubits, k, base=4)
    q = qubits[0]
    s = state.reshape(state.shape[0], 4 ** (k - 1 - q), 4, 4 ** q)
    return torch.einsum("bij,bajc->baic", matrix, s).reshape(s.shape[0], -1)
