"""The estimated output error of a layout: what ``qkit.hardware.layout`` ranks candidates by.

``estimate_error`` scores an ISA circuit per observable term on the physical qubits it reads,
from a backend's calibration (``Calibration``: readout in both directions, T1/T2, gate
errors): asymmetric readout (``<Z>`` becomes ``(1 - p01 - p10) <Z> + p01 - p10``), the error
of every gate in the term's backward light cone (as depolarizing shrinkage), and decoherence
over the circuit's scheduled duration (T1 relaxation of the measured qubits, T2 dephasing of
the rest of the light cone). The error is the expected absolute error of ``s z + b`` against
``z``, over ``z`` uniform in [-1, 1] or over the layer's noiseless outputs on sample inputs.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

# Operations that are not gates: no error of their own, no part of a light cone or coupling.
NOT_GATES = {"measure", "barrier", "delay", "reset"}


# ---------------------------------------------------------------------- calibration lookups


class Calibration:
    """Readout (both directions), T1/T2 and gate errors of a backend, from a Snapshot."""

    def __init__(self, backend: Any, snapshot: Any):
        from qkit.hardware.snapshot import Snapshot

        snap = snapshot if snapshot is not None else Snapshot.from_backend(backend)
        self.target = backend.target
        self.readout = {}
        self.t1, self.t2 = {}, {}
        for q in snap.qubits:
            p01, p10 = q.prob_meas0_prep1, q.prob_meas1_prep0
            p01 = q.readout_error if p01 is None else p01
            p10 = q.readout_error if p10 is None else p10
            self.readout[q.qubit] = (p01 or 0.0, p10 or 0.0)
            self.t1[q.qubit] = q.t1_us * 1e-6 if q.t1_us else math.inf
            self.t2[q.qubit] = min(q.t2_us * 1e-6, 2 * self.t1[q.qubit]) if q.t2_us else self.t1[q.qubit]

    def gate_error(self, name: str, qubits: tuple[int, ...]) -> float:
        try:
            props = self.target[name].get(qubits)
        except KeyError:
            return 0.0
        error = getattr(props, "error", None)
        return float(error) if error else 0.0

    def mean_two_qubit_error(self, a: int, b: int) -> float:
        errors = [
            self.gate_error(op, pair)
            for op in self.target.operation_names
            if self.target.operation_from_name(op).num_qubits == 2
            for pair in ((a, b), (b, a))
        ]
        errors = [e for e in errors if e > 0]
        return min(errors) if errors else 0.0


def _expected_abs(shrink: float, shift: float, ideal: Any = None) -> float:
    """E|(shrink - 1) z + shift|: over the ideal values ``z`` given, else z uniform in [-1, 1]."""
    if ideal is not None:
        return float(sum(abs((shrink - 1.0) * z + shift) for z in ideal) / len(ideal))
    a, b = abs(1.0 - shrink), abs(shift)
    if a <= b:
        return b
    return (a * a + b * b) / (2 * a)


def _depolarizing_shrink(error: float, n_qubits: int) -> float:
    d = 2**n_qubits
    return max(0.0, 1.0 - error * d / (d - 1))


def _light_cone(isa: Any, qubits: set[int]) -> tuple[list[tuple[str, tuple[int, ...]]], set[int]]:
    """Gates (name, physical qubits) that can affect ``qubits`` at the end, and the qubits they touch."""
    index = {bit: i for i, bit in enumerate(isa.qubits)}
    cone, gates = set(qubits), []
    for inst in reversed(isa.data):
        name = inst.operation.name
        if name in NOT_GATES:
            continue
        qargs = tuple(index[q] for q in inst.qubits)
        if cone.intersection(qargs):
            gates.append((name, qargs))
            cone.update(qargs)
    return gates, cone


# ---------------------------------------------------------------------- scoring


def _term_error(
    cal: Calibration, isa: Any, measured: list[int], duration: float, ideal: Any = None
) -> tuple[float, dict]:
    """Expected error of one Pauli term read on physical ``measured`` qubits, and its parts."""
    readout_shrink, readout_shift = 1.0, 0.0
    for q in measured:
        p01, p10 = cal.readout[q]
        readout_shrink *= 1.0 - p01 - p10
    if len(measured) == 1:
        p01, p10 = cal.readout[measured[0]]
        readout_shift = p01 - p10
    gates, cone = _light_cone(isa, set(measured))
    gate_shrink = 1.0
    for name, qargs in gates:
        gate_shrink *= _depolarizing_shrink(cal.gate_error(name, qargs), len(qargs))
    relax, dephase, t1_shift = 1.0, 1.0, 0.0
    for q in cone:
        if q in measured:
            decay = math.exp(-duration / cal.t1[q])
            relax *= decay
            if len(measured) == 1:
                t1_shift = 1.0 - decay  # amplitude damping pulls <Z> towards +1
        else:
            dephase *= math.exp(-duration / cal.t2[q]) ** 0.5  # coherences feed the observable partly
    shrink = readout_shrink * gate_shrink * relax * dephase
    shift = readout_shrink * gate_shrink * t1_shift + readout_shift
    parts = {
        "readout": _expected_abs(readout_shrink, readout_shift, ideal),
        "gates": _expected_abs(gate_shrink, 0.0, ideal),
        "decoherence": _expected_abs(relax * dephase, t1_shift, ideal),
    }
    return _expected_abs(shrink, shift, ideal), parts


def estimate_error(
    isa: Any, observables: Sequence[Any], cal: Calibration, ideal: list[list[Any]] | None = None
) -> tuple[float, dict, list[int]]:
    """Expected mean absolute error of ``observables`` (on virtual qubits) measured from ``isa``.

    ``ideal[i][j]``: the noiseless values of observable i's term j on sample inputs (optional).
    """
    measured_of = [int(q) for q in isa.layout.final_index_layout()]
    try:
        duration = float(isa.estimate_duration(cal.target, unit="s"))
    except Exception:  # a target without durations: no decoherence estimate
        duration = 0.0
    total, parts = 0.0, {"readout": 0.0, "gates": 0.0, "decoherence": 0.0}
    for i, obs in enumerate(observables):
        weight = sum(abs(complex(c)) for c in obs.coeffs) or 1.0
        for j, (pauli, coeff) in enumerate(zip(obs.paulis, obs.coeffs)):
            support = [measured_of[k] for k in range(pauli.num_qubits) if pauli.z[k] or pauli.x[k]]
            if not support:
                continue  # identity: exact
            err, term_parts = _term_error(cal, isa, support, duration, None if ideal is None else ideal[i][j])
            share = abs(complex(coeff)) / weight / len(observables)
            total += share * weight * err
            for key, value in term_parts.items():
                parts[key] += share * weight * value
    return total, parts, measured_of
