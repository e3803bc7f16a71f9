"""Shot noise for the density engine: outcomes sampled from the exact noisy distribution.

The observables' Pauli terms are grouped into qubit-wise commuting measurement bases (as the
hardware sampler path groups them). For a
basis reading qubits M (m of them), the outcome distribution with readout error is linear in
the Pauli components ``<Q_U>`` of the subsets U of M:
``p = v[:, idx] @ K`` with ``K = K_{m-1} (x) ... (x) K_0`` and, per qubit,
``K_j = 1/2 [[1 + a_j, 1 - a_j], [b_j, -b_j]]`` (rows: I or Q; columns: outcome 0 or 1;
``a = P(0|1) - P(1|0)``, ``b = 1 - P(0|1) - P(1|0)``). Shots are drawn with
``torch.multinomial`` (seeded by the engine's ``seed``), and every term is the shot average of
its parity, as a device's estimate would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class BasisPlan:
    idx: str  # buffer names on the engine
    kernel: str
    signs: str
    measured: list  # local qubits read in this basis; outcome bit j is measured[j]


def plan_sampling(engine: Any, observables: list) -> list[BasisPlan]:
    """Buffers on ``engine`` for every measurement basis of ``observables`` (``SparsePauliOp`` on the
    engine's k active qubits, grouped as the hardware sampler path groups them:
    ``qkit.hardware.measure.measurement_bases``); identity terms become ``_shot_const``."""
    from qkit.hardware.measure import measurement_bases

    dtype = engine.dtype
    labels, terms = measurement_bases(observables)
    const = np.zeros(len(observables))
    for term in terms:
        if term.basis < 0:
            const[term.observable] += term.coeff
    engine.register_buffer("_shot_const", torch.tensor(const, dtype=dtype)[None], persistent=False)
    plans = []
    for b, label in enumerate(labels):
        measured = [q for q in range(len(label)) if label[-1 - q] != "I"]
        m = len(measured)
        digit = {q: "IXYZ".index(label[-1 - q]) for q in measured}
        idx = [sum(digit[q] << (2 * q) for j, q in enumerate(measured) if u >> j & 1) for u in range(2**m)]
        kernel = np.ones((1, 1))
        for q in measured:  # kron(K_new, K_old): qubit j of M is bit j
            p01, p10 = engine.noise.readout.get(engine.active_qubits[q], (0.0, 0.0))
            a, s = p01 - p10, 1 - p01 - p10
            kernel = np.kron(0.5 * np.array([[1 + a, 1 - a], [s, -s]]), kernel)
        signs = np.zeros((2**m, len(observables)))
        outcomes = np.arange(2**m)
        for term in terms:
            if term.basis == b:  # the term's qubits as outcome bits of this basis
                mask = sum(1 << j for j, q in enumerate(measured) if term.mask >> q & 1)
                signs[:, term.observable] += term.coeff * (1.0 - 2.0 * (np.bitwise_count(outcomes & mask) & 1))
        names = []
        for name, array, kind in (
            ("idx", np.array(idx), torch.long),
            ("kernel", kernel, dtype),
            ("signs", signs, dtype),
        ):
            engine.register_buffer(f"_shot_{name}{b}", torch.tensor(array, dtype=kind), persistent=False)
            names.append(f"_shot_{name}{b}")
        plans.append(BasisPlan(*names, measured))
    return plans


def sample_counts(engine: Any, state: torch.Tensor) -> list[torch.Tensor]:
    """Shot frequencies ``[B, 2^m]`` per basis, drawn from Pauli components ``state [B, 4^k]``."""
    generator = engine.generator(state.device)
    out = []
    for plan in engine.sampling:
        probs = (state[:, getattr(engine, plan.idx)] @ getattr(engine, plan.kernel)).clamp_min(0)
        probs = probs / probs.sum(dim=1, keepdim=True)
        draws = torch.multinomial(probs, engine.shots, replacement=True, generator=generator)
        counts = torch.zeros_like(probs).scatter_add_(1, draws, torch.ones_like(draws, dtype=probs.dtype))
        out.append(counts / engine.shots)
    return out


def values_from_counts(engine: Any, frequencies: list[torch.Tensor]) -> torch.Tensor:
    """Every output as the shot average of its terms' parities."""
    values = engine._shot_const.expand(frequencies[0].shape[0] if frequencies else 1, -1).clone()
    for plan, freq in zip(engine.sampling, frequencies):
        values = values + freq @ getattr(engine, plan.signs)
    return values


def sample_values(engine: Any, state: torch.Tensor) -> torch.Tensor:
    """Shot estimates ``[B, n_obs]`` from Pauli components ``state [B, 4^k]``."""
    return values_from_counts(engine, sample_counts(engine, state)).expand(state.shape[0], -1)


def mitigated_values(engine: Any, frequencies: list[torch.Tensor]) -> torch.Tensor:
    """The same shots through mthree's readout correction, with the readout errors the emulation
    applied (``qkit.hardware.mitigation``: the "calibration" source of ``run-hardware``)."""
    from qkit.hardware.mitigation import correct, readout_matrix

    values = engine._shot_const.expand(frequencies[0].shape[0] if frequencies else 1, -1).clone()
    for plan, freq in zip(engine.sampling, frequencies):
        m = len(plan.measured)
        physical = [engine.active_qubits[q] for q in plan.measured]
        matrices = {p: readout_matrix(*engine.noise.readout.get(p, (0.0, 0.0))) for p in physical}
        counts = (freq * engine.shots).round().long().cpu().numpy()
        dicts = [{format(b, f"0{m}b"): int(n) for b, n in enumerate(row) if n} for row in counts]
        quasis = correct(dicts, dict(enumerate(physical)), matrices, max(physical) + 1)
        dense = np.zeros((len(quasis), 2**m))
        for r, quasi in enumerate(quasis):
            for key, value in quasi.items():
                dense[r, int(key, 2)] = value
        values = values + torch.as_tensor(dense, dtype=freq.dtype) @ getattr(engine, plan.signs)
    return values
