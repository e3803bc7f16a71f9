"""The snapshot JSON format: its name, version and keys, and the check of a parsed file.

Every problem is one line that names the file and the key. ``checked`` returns plain values
(qubits and gates as dicts) that ``qkit.hardware.snapshot.Snapshot.from_dict`` turns into
objects, so this module needs nothing from the one that reads and writes snapshots.
"""

from __future__ import annotations

import math
from typing import Any

from qkit.errors import QkitError

FORMAT = "qkit-calibration-snapshot"
FORMAT_VERSION = 1
_TOP = {  # key: (types, nullable)
    "name": (str, False),
    "num_qubits": (int, False),
    "calibration_date": (str, True),
    "source": (str, False),
    "dt": (float, True),
    "basis_gates": (list, False),
    "operations": (list, False),
    "coupling_map": (list, False),
    "qubits": (list, False),
    "gates": (list, False),
}
_QUBIT = (
    "t1_us",
    "t2_us",
    "frequency_ghz",
    "readout_error",
    "prob_meas0_prep1",
    "prob_meas1_prep0",
    "readout_duration_ns",
)
_PROBABILITIES = ("readout_error", "prob_meas0_prep1", "prob_meas1_prep0")


def _fail(origin: str, message: str) -> QkitError:
    return QkitError(f"invalid calibration snapshot {origin}: {message}")


def _number(value: Any, where: str, origin: str, nullable: bool = True) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(origin, f"{where} must be a number{' or null' if nullable else ''}, got {value!r}")
    return float(value)


def _int(value: Any, where: str, origin: str, below: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (below is not None and value >= below):
        bound = f" in 0..{below - 1}" if below is not None else " >= 0"
        raise _fail(origin, f"{where} must be an integer{bound}, got {value!r}")
    return value


def _strings(value: list, where: str, origin: str) -> list[str]:
    if not all(isinstance(v, str) for v in value):
        raise _fail(origin, f"{where} must be a list of strings")
    return list(value)


def checked(data: Any, origin: str) -> dict:
    """``Snapshot``'s fields from ``data`` (qubits and gates as dicts), or a one-line QkitError naming ``origin``."""
    if not isinstance(data, dict):
        raise _fail(origin, f"expected a JSON object, got {type(data).__name__}")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise _fail(origin, f"format_version must be {FORMAT_VERSION}, got {version!r}")
    for key, (kind, nullable) in _TOP.items():
        if key not in data:
            raise _fail(origin, f"missing key {key!r}")
        value = data[key]
        if value is None and nullable:
            continue
        if kind is float:
            _number(value, key, origin, nullable)
        elif isinstance(value, bool) or not isinstance(value, kind):
            raise _fail(
                origin,
                f"{key!r} must be {'a string' if kind is str else kind.__name__}"
                f"{' or null' if nullable else ''}, got {type(value).__name__}",
            )
    n = _int(data["num_qubits"], "num_qubits", origin)
    qubits = []
    if len(data["qubits"]) != n:
        raise _fail(origin, f"'qubits' lists {len(data['qubits'])} qubits, num_qubits is {n}")
    for i, q in enumerate(data["qubits"]):
        if not isinstance(q, dict):
            raise _fail(origin, f"qubits[{i}] must be an object")
        missing = [k for k in ("qubit", *_QUBIT) if k not in q]
        if missing:
            raise _fail(origin, f"qubits[{i}] is missing {', '.join(map(repr, missing))}")
        if _int(q["qubit"], f"qubits[{i}].qubit", origin, n) != i:
            raise _fail(origin, f"qubits[{i}].qubit must be {i}, got {q['qubit']}")
        values = {k: _number(q[k], f"qubits[{i}].{k}", origin) for k in _QUBIT}
        for k in _PROBABILITIES:
            if values[k] is not None and not 0 <= values[k] <= 1:
                raise _fail(origin, f"qubits[{i}].{k} must be a probability in [0, 1], got {values[k]}")
        qubits.append({"qubit": i, **values})
    gates = []
    for i, g in enumerate(data["gates"]):
        if not isinstance(g, dict) or any(k not in g for k in ("gate", "qubits", "error", "duration_ns")):
            raise _fail(origin, f"gates[{i}] must be an object with gate, qubits, error, duration_ns")
        if not isinstance(g["gate"], str) or not isinstance(g["qubits"], list) or not g["qubits"]:
            raise _fail(origin, f"gates[{i}] needs a gate name and a non-empty list of qubits")
        qargs = [_int(q, f"gates[{i}].qubits", origin, n) for q in g["qubits"]]
        gates.append(
            {
                "gate": g["gate"],
                "qubits": qargs,
                "error": _number(g["error"], f"gates[{i}].error", origin),
                "duration_ns": _number(g["duration_ns"], f"gates[{i}].duration_ns", origin),
            }
        )
    coupling = []
    for i, edge in enumerate(data["coupling_map"]):
        if not isinstance(edge, list) or len(edge) != 2:
            raise _fail(origin, f"coupling_map[{i}] must be a pair of qubits, got {edge!r}")
        coupling.append([_int(q, f"coupling_map[{i}]", origin, n) for q in edge])
    return dict(
        name=data["name"],
        num_qubits=n,
        calibration_date=data["calibration_date"],
        source=data["source"],
        dt=_number(data["dt"], "dt", origin),
        basis_gates=_strings(data["basis_gates"], "basis_gates", origin),
        operations=_strings(data["operations"], "operations", origin),
        coupling_map=coupling,
        qubits=qubits,
        gates=gates,
        format_version=version,
    )
