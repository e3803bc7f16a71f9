"""A backend's calibrated noise as Aer builds it, with a scale per source.

Aer's ``NoiseModel.from_backend`` (``qiskit_aer.noise.device.basic_device_gate_errors``) puts
after every calibrated instruction a depolarizing channel composed with thermal relaxation
over the instruction's duration (T1, T2 truncated to 2 T1, zero temperature), the
depolarizing probability chosen so that the pair has the reported gate error; measurements
get a readout confusion instead. ``device_noise`` builds the same channels from Aer's public
constructors (``depolarizing_error``, ``thermal_relaxation_error``) so that each source can
be scaled on its own:

* ``gate``: the depolarizing probability (the part of the reported gate error that
  relaxation does not explain) times the scale;
* ``relaxation``: thermal relaxation over the duration times the scale (rates x scale);
* ``readout``: P(0|1) and P(1|0) times the scale (capped at 1/2).

Scale 1 is Aer's own model (tested instruction by instruction against
``basic_device_gate_errors``); 0 removes the source. The depolarizing probability always
comes from the calibrated relaxation, so the sources stay independent. Readout: a fake
backend's Target has one symmetric error per qubit, which is what the runtime's local mode
applies; a snapshot (or a live device) keeps both directions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from qkit.errors import QkitError

SOURCES = ("gate", "readout", "relaxation")
_NO_NOISE = {"measure", "delay", "barrier"}


@dataclass(frozen=True)
class NoiseScales:
    """How much of each calibrated noise source is applied (0 = none, 1 = calibrated)."""

    gate: float = 1.0
    readout: float = 1.0
    relaxation: float = 1.0

    @classmethod
    def of(cls, scale: float = 1.0, gate: float | None = None, readout: float | None = None,
           relaxation: float | None = None) -> "NoiseScales":
        """One scale for all sources, overridden per source; every value finite and >= 0."""
        values = {"scale": scale, "gate": gate, "readout": readout, "relaxation": relaxation}
        for name, value in values.items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0:
                raise QkitError(f"noise {name} scale must be a number >= 0, got {value!r}")
        return cls(*(float(scale if v is None else v) for v in (gate, readout, relaxation)))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DeviceNoise:
    """The channel after each instruction and the readout of each qubit, at given scales."""

    errors: dict                   # (instruction name, physical qubits) -> Aer QuantumError
    readout: dict                  # physical qubit -> (P(0|1), P(1|0)), scaled
    scales: NoiseScales
    basis_gates: list = field(default_factory=list)

    def error(self, name: str, qubits: tuple[int, ...]) -> Any:
        return self.errors.get((name, tuple(qubits)))

    def noise_model(self) -> Any:
        """The same noise as an Aer ``NoiseModel`` (the reference the density engine is checked against)."""
        from qiskit_aer.noise import NoiseModel, ReadoutError

        model = NoiseModel(basis_gates=list(self.basis_gates))
        for (name, qubits), error in self.errors.items():
            model.add_quantum_error(error, name, list(qubits))
        for q, (p01, p10) in self.readout.items():
            if p01 or p10:
                model.add_readout_error(ReadoutError([[1 - p10, p10], [p01, 1 - p01]]), [q])
        return model


def _relaxation(target: Any, qubits: tuple[int, ...], duration: float) -> Any:
    """Aer's thermal relaxation over ``duration`` on each qubit (tensored), or None."""
    from qiskit_aer.noise import thermal_relaxation_error

    error = None
    for q in qubits:
        props = target.qubit_properties[q] if target.qubit_properties else None
        t1 = getattr(props, "t1", None) or math.inf
        t2 = getattr(props, "t2", None) or math.inf
        t2 = min(t2, 2 * t1)
        single = thermal_relaxation_error(t1, t2, duration)
        error = single if error is None else error.expand(single)
    return error


def _depolarizing_probability(n_qubits: int, gate_error: float | None, relax: Any) -> float:
    """Aer's choice: the depolarizing p that, composed with ``relax``, has average gate error ``gate_error``.

    (``qiskit_aer.noise.device.models._device_depolarizing_error``, private in Aer, hence here.)
    """
    from qiskit.quantum_info import average_gate_fidelity

    relax_fid = float(average_gate_fidelity(relax)) if relax is not None else 1.0
    if gate_error is None or gate_error <= 1 - relax_fid:
        return 0.0
    dim = 2 ** n_qubits
    gate_error = min(gate_error, dim / (dim + 1))
    p = dim * (gate_error - (1 - relax_fid)) / (dim * relax_fid - 1)
    return min(p, 4 ** n_qubits / (4 ** n_qubits - 1))


def _channel(target: Any, op_name: str, qubits: tuple[int, ...], props: Any, scales: NoiseScales) -> Any:
    from qiskit.circuit import Gate
    from qiskit_aer.noise import depolarizing_error

    duration = props.duration or 0.0
    calibrated = _relaxation(target, qubits, duration) if duration else None
    relax = calibrated if scales.relaxation == 1.0 else (
        _relaxation(target, qubits, duration * scales.relaxation) if duration and scales.relaxation else None)
    depol = None
    if isinstance(target.operation_from_name(op_name), Gate) and scales.gate:
        p = _depolarizing_probability(len(qubits), props.error, calibrated) * scales.gate
        if p > 0:
            depol = depolarizing_error(min(p, 4 ** len(qubits) / (4 ** len(qubits) - 1)), len(qubits))
    if depol is not None and relax is not None:
        return depol.compose(relax)           # as Aer: depolarizing, then relaxation
    return depol if depol is not None else relax


def device_noise(target: Any, readout: dict, scales: NoiseScales | None = None,
                 qubits: set[int] | None = None) -> DeviceNoise:
    """The noise of ``target`` at ``scales``; ``readout``: physical qubit -> (P(0|1), P(1|0)) at scale 1.

    ``qubits``: only instructions on these physical qubits (a large device's active region).
    """
    scales = scales or NoiseScales()
    errors = {}
    for op_name, by_qubits in target.items():
        if op_name in _NO_NOISE or by_qubits is None:
            continue
        for qargs, props in by_qubits.items():
            if props is None or qargs is None or (qubits is not None and not set(qargs) <= qubits):
                continue
            error = _channel(target, op_name, tuple(qargs), props, scales)
            if error is not None:
                errors[(op_name, tuple(qargs))] = error
    scaled = {q: (min(0.5, p01 * scales.readout), min(0.5, p10 * scales.readout))
              for q, (p01, p10) in readout.items() if qubits is None or q in qubits}
    basis = [op for op in target.operation_names if op not in _NO_NOISE]
    return DeviceNoise(errors, scaled, scales, basis)


def readout_errors(resolved: Any) -> dict:
    """P(0|1), P(1|0) per physical qubit as the backend's emulation applies them (module docstring)."""
    if resolved.kind == "fake":
        measure = resolved.backend.target["measure"] if "measure" in resolved.backend.target.operation_names else {}
        return {q[0]: (float(p.error or 0.0), float(p.error or 0.0)) for q, p in measure.items()
                if q is not None and p is not None}
    out = {}
    for cal in resolved.calibration().qubits:
        p01 = cal.prob_meas0_prep1 if cal.prob_meas0_prep1 is not None else cal.readout_error
        p10 = cal.prob_meas1_prep0 if cal.prob_meas1_prep0 is not None else cal.readout_error
        out[cal.qubit] = (float(p01 or 0.0), float(p10 or 0.0))
    return out
