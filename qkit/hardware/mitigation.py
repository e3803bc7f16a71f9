"""Readout-error mitigation on the client: calibration matrices in, mthree's M3 correction out.

Two ways to know the readout errors of the qubits a run reads:

* ``device`` (default): two calibration circuits run on the backend itself, in the same
  ``Batch`` as the data: every read qubit prepared in |0> and every read qubit in |1>
  (mthree's "marginal" calibration). Per qubit, P(1|0) and P(0|1) are the shares of flipped
  outcomes. On an emulation this measures the readout the emulator actually applies;
* ``calibration``: the P(0|1), P(1|0) the backend (or snapshot) reports, no shots spent.
  They can be stale on a device, and a fake backend's local mode applies its Target's
  symmetric error rather than the asymmetric numbers its properties report.

The correction itself is mthree's (``M3Mitigation.cals_from_matrices`` then
``apply_correction`` with one classical-bit -> physical-qubit mapping per distribution), never
a hand-written inversion; its quasi-probabilities feed the same parity averages as raw shots.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from qkit.errors import QkitError

READOUT_SOURCES = ("device", "calibration")
CALIBRATION_SHOTS = 8192


def calibration_circuits(backend: Any, qubits: Sequence[int]) -> list:
    """ISA circuits preparing all ``qubits`` in |0> and all in |1>, each read into clbit k = qubits[k]."""
    from qiskit import QuantumCircuit

    circuits = []
    for prepare_one in (False, True):
        qc = QuantumCircuit(backend.num_qubits, len(qubits), name=f"m3-cal-{int(prepare_one)}")
        if prepare_one:
            for q in qubits:
                qc.x(q)
        qc.barrier()
        qc.measure(list(qubits), list(range(len(qubits))))
        circuits.append(qc)
    if "x" not in backend.target.operation_names:
        raise QkitError(f"{backend.name} has no 'x' gate: readout calibration circuits cannot be built")
    return circuits


def matrices_from_outcomes(zero: np.ndarray, one: np.ndarray, qubits: Sequence[int]) -> dict[int, np.ndarray]:
    """Per physical qubit, mthree's 2x2 matrix [[P(0|0), P(0|1)], [P(1|0), P(1|1)]] from calibration shots.

    ``zero``/``one``: integer outcomes (bit k = qubits[k]) of the |0...0> and |1...1> circuits.
    """
    n = len(qubits)
    return matrices_from_bits((zero[..., None] >> np.arange(n)) & 1, (one[..., None] >> np.arange(n)) & 1, qubits)


def matrices_from_bits(zero: np.ndarray, one: np.ndarray, qubits: Sequence[int]) -> dict[int, np.ndarray]:
    """The same from bits ``[shots, len(qubits)]`` (calibration registers wider than an int64 holds)."""
    p10 = np.asarray(zero).reshape(-1, len(qubits)).mean(axis=0)
    p01 = 1.0 - np.asarray(one).reshape(-1, len(qubits)).mean(axis=0)
    return {int(q): readout_matrix(float(p01[k]), float(p10[k])) for k, q in enumerate(qubits)}


def matrices_from_snapshot(snapshot: Any, qubits: Sequence[int]) -> dict[int, np.ndarray]:
    """Per physical qubit, the matrix from the reported readout errors (both directions when known)."""
    out = {}
    for q in qubits:
        cal = snapshot.qubits[q]
        p01 = cal.prob_meas0_prep1 if cal.prob_meas0_prep1 is not None else cal.readout_error
        p10 = cal.prob_meas1_prep0 if cal.prob_meas1_prep0 is not None else cal.readout_error
        if p01 is None or p10 is None:
            raise QkitError(f"{snapshot.name} reports no readout error for qubit {q}; use --readout-from device")
        out[int(q)] = readout_matrix(float(p01), float(p10))
    return out


def readout_matrix(p01: float, p10: float) -> np.ndarray:
    if p01 + p10 >= 1.0:
        raise QkitError(
            f"readout is no better than a coin (P(0|1) {p01:.3f} + P(1|0) {p10:.3f} >= 1): it cannot be mitigated"
        )
    return np.array([[1.0 - p10, p01], [p10, 1.0 - p01]], dtype=np.float32)


def correct(
    counts: list[dict], mapping: dict | list[dict], matrices: dict[int, np.ndarray], num_qubits: int
) -> list[dict]:
    """mthree's quasi-distributions for ``counts`` read through ``mapping`` (clbit -> physical qubit),
    one for all rows or one per row (parallel copies read other qubits)."""
    import mthree

    mappings = mapping if isinstance(mapping, list) else [mapping] * len(counts)
    missing = sorted({q for m in mappings for q in m.values()} - set(matrices))
    if missing:
        raise QkitError(f"no readout calibration for physical qubit(s) {missing}")
    mit = mthree.M3Mitigation()
    mit.cals_from_matrices([matrices.get(q) for q in range(num_qubits)])
    # mthree's "auto" takes "direct" for distributions this small, after reading the free memory
    # (psutil) once per distribution: ~1 ms each, a second for 19 copies x 165 rows. Same solver.
    small = all(len(c) <= mit.iter_threshold for c in counts)
    quasis = mit.apply_correction(counts, mappings, method="direct" if small else "auto")
    return [dict(q) for q in quasis]


def as_json(matrices: dict[int, np.ndarray]) -> dict:
    """P(0|1) and P(1|0) per qubit, for the run record."""
    return {
        str(q): {"p01": round(float(m[0, 1]), 6), "p10": round(float(m[1, 0]), 6)} for q, m in sorted(matrices.items())
    }


def from_json(data: dict) -> dict[int, np.ndarray]:
    return {int(q): readout_matrix(v["p01"], v["p10"]) for q, v in data.items()}
