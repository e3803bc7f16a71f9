"""The density engine's outputs with readout error: each output as a gather and a matmul.

An observable term is read in its basis with the readout error of every read qubit: ``<Z>``
becomes ``(P(0|1) - P(1|0)) + (1 - P(0|1) - P(1|0)) <Z>`` per qubit, expanded over the subsets
of the term's qubits, so every output is ``v[:, idx] @ C`` for the final Pauli components
``v`` (``_obs_idx``, ``_obs_coef``), or ``v @ _readout_rows.T`` with the rows dense.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch


def plan_readout(engine, observables) -> None:
    """Registers ``_obs_idx``, ``_obs_coef`` and ``_readout_rows`` on the engine, and the
    shot sampling plan (``qkit.noise.shots``) when it samples shots."""
    rows: dict[int, np.ndarray] = {}
    engine._terms = [local_terms(engine, op) for op in observables]
    for k, terms in enumerate(engine._terms):
        for digits, coeff in terms:
            for subset in itertools.product((False, True), repeat=len(digits)):
                weight, idx = coeff, 0
                for keep, (q, d) in zip(subset, digits):
                    p01, p10 = engine.noise.readout.get(engine.active_qubits[q], (0.0, 0.0))
                    weight *= (1 - p01 - p10) if keep else (p01 - p10)
                    idx += d << (2 * q) if keep else 0
                if weight:
                    rows.setdefault(idx, np.zeros(len(observables)))[k] += weight
    idx = sorted(rows)
    engine.register_buffer("_obs_idx", torch.tensor(idx, dtype=torch.long), persistent=False)
    engine.register_buffer(
        "_obs_coef", torch.tensor(np.array([rows[i] for i in idx]), dtype=engine.dtype), persistent=False
    )
    dense = np.zeros((len(observables), 4**engine.k))  # output k = state @ dense[k]
    dense[:, idx] = np.array([rows[i] for i in idx]).T
    engine.register_buffer("_readout_rows", torch.tensor(dense, dtype=engine.dtype), persistent=False)
    if engine.shots is not None:
        from qkit.noise.shots import plan_sampling

        engine.sampling = plan_sampling(engine, [local_observable(engine, terms) for terms in engine._terms])


def local_terms(engine, op) -> list[tuple[list[tuple[int, int]], float]]:
    """``[([(local qubit, pauli digit), ...], coeff)]`` of an observable on the device's qubits."""
    index = {q: j for j, q in enumerate(engine.active_qubits)}
    terms = []
    for pauli, coeff in zip(op.paulis, op.coeffs):
        digits = [
            (index[int(q)], 2 if pauli.x[q] and pauli.z[q] else (1 if pauli.x[q] else 3))
            for q in np.flatnonzero(pauli.x | pauli.z)
        ]
        terms.append((digits, float(np.real(coeff))))
    return terms


def local_observable(engine, terms: list) -> Any:
    """An output's terms as a ``SparsePauliOp`` on the k active qubits (qubit j = active_qubits[j])."""
    from qiskit.quantum_info import SparsePauliOp

    sparse = [("".join("IXYZ"[d] for _, d in digits), [q for q, _ in digits], coeff) for digits, coeff in terms]
    return SparsePauliOp.from_sparse_list(sparse, num_qubits=engine.k)
