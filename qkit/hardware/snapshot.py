"""Calibration snapshots: a device as it was on its calibration date, in plain JSON.

A snapshot holds what a noisy emulation needs and nothing else: per qubit T1, T2, frequency
and the readout error in BOTH directions (``prob_meas0_prep1`` = p(0|1) and
``prob_meas1_prep0`` = p(1|0): real devices are asymmetric), per gate and qubit(s) the error
and duration, the coupling map, basis gates, ``dt``, the calibration date and where the
numbers came from. Units are written into the key names (``t1_us``, ``frequency_ghz``,
``duration_ns``) so the file reads on its own.

``Snapshot.from_backend`` reads a fake or live ``BackendV2`` (its ``properties()`` when it has
them, for the asymmetric readout; else its ``Target``); ``target()``, ``noise_model()`` and
``backend()`` rebuild the Qiskit objects; ``backend()`` is an ``AerSimulator`` that the
qiskit-ibm-runtime primitives run in local testing mode like a fake backend. Qiskit is imported
only inside the functions that need it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qkit.errors import QkitError
from qkit.hardware.snapshot_schema import FORMAT, FORMAT_VERSION, checked
from qkit.runs.files import atomic_write_json, read_json

READOUT_MODES = ("asymmetric", "symmetric", "none")
_NON_GATES = {"measure", "reset", "delay", "barrier"}


@dataclass
class QubitCalibration:
    """One qubit: coherence, frequency, readout (``None`` where the device reports nothing)."""

    qubit: int
    t1_us: float | None
    t2_us: float | None
    frequency_ghz: float | None
    readout_error: float | None  # the symmetric summary the Target keeps
    prob_meas0_prep1: float | None  # p(0|1): prepared 1, read 0
    prob_meas1_prep0: float | None  # p(1|0): prepared 0, read 1
    readout_duration_ns: float | None


@dataclass
class GateCalibration:
    """One gate on one qubit or qubit pair."""

    gate: str
    qubits: list[int]
    error: float | None
    duration_ns: float | None


@dataclass
class Snapshot:
    """A device's calibration (see module docstring); ``save_snapshot`` writes it as JSON."""

    name: str
    num_qubits: int
    calibration_date: str | None
    source: str
    dt: float | None
    basis_gates: list[str]
    operations: list[str]
    coupling_map: list[list[int]]
    qubits: list[QubitCalibration]
    gates: list[GateCalibration]
    format_version: int = FORMAT_VERSION
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ reading a backend

    @classmethod
    def from_backend(cls, backend: Any, *, source: str | None = None) -> "Snapshot":
        """The calibration of a ``BackendV2`` (fake or live)."""
        target = backend.target
        n = backend.num_qubits
        try:
            props = backend.properties()
        except Exception:  # a BackendV2 without properties (AerSimulator, GenericBackendV2...)
            props = None
        qubits = [_qubit_from_target(target, q) for q in range(n)]
        if props is not None:
            for q, cal in enumerate(qubits):
                _update_from_properties(cal, props, q)
        gates = []
        for op in sorted(target.operation_names):
            if op in ("measure", "delay") or target[op] is None:
                continue
            for qargs, inst in sorted((k, v) for k, v in target[op].items() if k is not None):
                gates.append(
                    GateCalibration(
                        op,
                        list(qargs),
                        _num(getattr(inst, "error", None)),
                        _scaled(getattr(inst, "duration", None), 1e9),
                    )
                )
        from qiskit.circuit.controlflow import CONTROL_FLOW_OP_NAMES

        operations = sorted(target.operation_names)
        basis = [op for op in operations if op not in _NON_GATES and op not in CONTROL_FLOW_OP_NAMES]
        name = getattr(props, "backend_name", None) or backend.name
        name = name.removeprefix("fake_")
        date = getattr(props, "last_update_date", None)
        if source is None:
            source = _describe_source(backend)
        coupling = sorted(
            [int(a), int(b)] for a, b in (backend.coupling_map.get_edges() if backend.coupling_map is not None else [])
        )
        return cls(
            name=name,
            num_qubits=n,
            calibration_date=date.isoformat() if date else None,
            source=source,
            dt=_num(backend.dt),
            basis_gates=basis,
            operations=operations,
            coupling_map=coupling,
            qubits=qubits,
            gates=gates,
        )

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict:
        data = {"format": FORMAT, "format_version": self.format_version}
        data.update({k: v for k, v in asdict(self).items() if k not in ("_cache", "format_version")})
        return data

    @classmethod
    def from_dict(cls, data: Any, origin: str = "snapshot") -> "Snapshot":
        """A snapshot from parsed JSON; anything malformed is a one-line QkitError naming ``origin``."""
        fields = checked(data, origin)
        return cls(
            **{
                **fields,
                "qubits": [QubitCalibration(**q) for q in fields["qubits"]],
                "gates": [GateCalibration(**g) for g in fields["gates"]],
            }
        )

    # ------------------------------------------------------------------ lookups

    def gate_error(self, gate: str, qubits: list[int] | tuple[int, ...]) -> float | None:
        for g in self.gates:
            if g.gate == gate and list(g.qubits) == list(qubits):
                return g.error
        return None

    @property
    def two_qubit_gates(self) -> list[GateCalibration]:
        return [g for g in self.gates if len(g.qubits) == 2 and g.gate in self.basis_gates]

    # ------------------------------------------------------------------ Qiskit objects

    def target(self) -> Any:
        """A Qiskit ``Target`` with the calibrated errors and durations (SI units)."""
        if "target" in self._cache:
            return self._cache["target"]
        from qiskit.circuit import Delay, Measure, Parameter, Reset
        from qiskit.circuit.controlflow import get_control_flow_name_mapping
        from qiskit.circuit.library import get_standard_gate_name_mapping
        from qiskit.transpiler import InstructionProperties, QubitProperties, Target

        qubit_props = [
            QubitProperties(
                t1=_scaled(q.t1_us, 1e-6), t2=_scaled(q.t2_us, 1e-6), frequency=_scaled(q.frequency_ghz, 1e9)
            )
            for q in self.qubits
        ]
        target = Target(
            description=f"{self.name} calibrated {self.calibration_date} ({self.source})",
            num_qubits=self.num_qubits,
            dt=self.dt,
            qubit_properties=qubit_props,
        )
        by_gate: dict[str, dict] = {}
        for g in self.gates:
            by_gate.setdefault(g.gate, {})[tuple(g.qubits)] = InstructionProperties(
                duration=_scaled(g.duration_ns, 1e-9), error=g.error
            )
        gates = get_standard_gate_name_mapping()
        flow = get_control_flow_name_mapping()
        for op in self.operations:
            if op in flow:
                target.add_instruction(flow[op], name=op)
            elif op == "measure":
                target.add_instruction(
                    Measure(),
                    {
                        (q.qubit,): InstructionProperties(
                            duration=_scaled(q.readout_duration_ns, 1e-9), error=q.readout_error
                        )
                        for q in self.qubits
                    },
                )
            elif op == "delay":
                target.add_instruction(Delay(Parameter("t")), {(q,): None for q in range(self.num_qubits)})
            elif op == "reset" or op in gates:
                target.add_instruction(Reset() if op == "reset" else gates[op], by_gate.get(op) or None)
            # any other (custom) operation name is listed in the JSON but cannot be rebuilt
        self._cache["target"] = target
        return target

    def noise_model(self, readout: str = "asymmetric") -> Any:
        """An Aer ``NoiseModel`` as Aer builds one from calibration data.

        Per gate a depolarizing error followed by thermal relaxation over the gate's duration
        (``basic_device_gate_errors``), relaxation on delays, and per-qubit readout errors:
        ``asymmetric`` keeps p(0|1) and p(1|0) apart (as the fake backends' own noise does),
        ``symmetric`` uses the one readout error for both (as ``NoiseModel.from_backend`` does),
        ``none`` leaves readout perfect.
        """
        if readout not in READOUT_MODES:
            raise QkitError(f"readout must be one of {', '.join(READOUT_MODES)}, got {readout!r}")
        from qiskit.circuit import Delay
        from qiskit_aer.noise import NoiseModel, ReadoutError
        from qiskit_aer.noise.device.models import basic_device_gate_errors
        from qiskit_aer.noise.passes import RelaxationNoisePass

        target = self.target()
        model = NoiseModel(basis_gates=list(self.basis_gates) + (["reset"] if "reset" in self.operations else []))
        for q in self.qubits if readout != "none" else []:
            p10, p01 = (q.prob_meas1_prep0, q.prob_meas0_prep1) if readout == "asymmetric" else (None, None)
            p10 = q.readout_error if p10 is None else p10
            p01 = q.readout_error if p01 is None else p01
            if p10 is None or p01 is None or (p10 == 0 and p01 == 0):
                continue
            model.add_readout_error(ReadoutError([[1 - p10, p10], [p01, 1 - p01]]), [q.qubit])
        for name, qargs, error in basic_device_gate_errors(target=target):
            model.add_quantum_error(error, name, qargs)
        t1s = [math.inf if q.t1_us is None else q.t1_us * 1e-6 for q in self.qubits]
        t2s = [math.inf if q.t2_us is None else q.t2_us * 1e-6 for q in self.qubits]
        t2s = [min(t2, 2 * t1) for t1, t2 in zip(t1s, t2s)]
        model._custom_noise_passes.append(
            RelaxationNoisePass(  # as NoiseModel.from_backend does
                t1s=t1s,
                t2s=t2s,
                dt=self.dt,
                op_types=Delay,
                excited_state_populations=[0.0] * self.num_qubits,
                target=target,
            )
        )
        return model

    def backend(self, readout: str = "asymmetric") -> Any:
        """An ``AerSimulator`` (a ``BackendV2``) with this target and noise model.

        ``SamplerV2(mode=snapshot.backend())`` runs it in the runtime's local testing mode,
        exactly as it runs a fake backend.
        """
        from qiskit_aer import AerSimulator
        from qiskit_aer.backends.backendconfiguration import AerBackendConfiguration

        config = AerBackendConfiguration(
            backend_name=f"aer_simulator_from(snapshot:{self.name})",
            backend_version=str(self.format_version),
            n_qubits=self.num_qubits,
            basis_gates=list(self.operations),
            gates=[],
            max_shots=int(1e6),
            coupling_map=[list(e) for e in self.coupling_map],
            max_experiments=None,
            description=f"{self.name} calibrated {self.calibration_date} ({self.source})",
        )
        return AerSimulator(configuration=config, target=self.target(), noise_model=self.noise_model(readout))


# ---------------------------------------------------------------------- files


def save_snapshot(snapshot: Snapshot, path: str | Path) -> Path:
    """Write ``snapshot`` as indented JSON, atomically."""
    return atomic_write_json(path, snapshot.to_dict())


BUILTIN_DIR = Path(__file__).parent / "snapshots"  # shipped in the package: found from any folder


def snapshot_path(name: str, folder: str | Path) -> Path:
    """The snapshot called ``name``: a ``.json`` path as given, else ``folder/name.json`` (the
    user's workspace, ``./hardware``), else the one qkit ships under that name."""
    name = name.removeprefix("snapshot:")
    if name.endswith(".json"):
        return Path(name)
    mine = Path(folder) / f"{Path(name).name}.json"
    shipped = BUILTIN_DIR / mine.name
    return shipped if not mine.is_file() and shipped.is_file() else mine


def load_snapshot(path: str | Path) -> Snapshot:
    """Read a snapshot; a missing file, bad JSON, missing keys or wrong types are one-line QkitErrors."""
    path = Path(path)
    if not path.is_file():
        raise QkitError(
            f"calibration snapshot not found: {path} (write one with `qkit hardware snapshot fake_<name> --out {path}`)"
        )
    return Snapshot.from_dict(read_json(path), origin=str(path))


def list_snapshots(folder: str | Path) -> list[tuple[Path, Snapshot | QkitError]]:
    """Every ``*.json`` in ``folder`` with its snapshot, or the error that stops it loading."""
    found: list[tuple[Path, Snapshot | QkitError]] = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            found.append((path, load_snapshot(path)))
        except QkitError as exc:
            found.append((path, exc))
    return found


# ---------------------------------------------------------------------- helpers


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _scaled(value: Any, factor: float) -> float | None:
    value = _num(value)
    return None if value is None else value * factor


def _qubit_from_target(target: Any, q: int) -> QubitCalibration:
    qp = target.qubit_properties[q] if target.qubit_properties else None
    meas = target["measure"].get((q,)) if "measure" in target.operation_names else None
    error = _num(getattr(meas, "error", None))
    return QubitCalibration(
        qubit=q,
        t1_us=_scaled(getattr(qp, "t1", None), 1e6),
        t2_us=_scaled(getattr(qp, "t2", None), 1e6),
        frequency_ghz=_scaled(getattr(qp, "frequency", None), 1e-9),
        readout_error=error,
        prob_meas0_prep1=_num(getattr(meas, "prob_meas0_prep1", None)),
        prob_meas1_prep0=_num(getattr(meas, "prob_meas1_prep0", None)),
        readout_duration_ns=_scaled(getattr(meas, "duration", None), 1e9),
    )


def _update_from_properties(cal: QubitCalibration, props: Any, q: int) -> None:
    """Fill in from ``BackendProperties`` what the Target drops (the two readout directions)."""
    values = {item.name: item.value for item in (props.qubits[q] if q < len(props.qubits) else [])}
    for key in ("prob_meas0_prep1", "prob_meas1_prep0"):
        if _num(values.get(key)) is not None:
            setattr(cal, key, _num(values[key]))
    if cal.readout_error is None and _num(values.get("readout_error")) is not None:
        cal.readout_error = _num(values["readout_error"])


def _describe_source(backend: Any) -> str:
    cls = type(backend)
    module = cls.__module__.split(".")[0]
    try:
        from importlib.metadata import version

        ver = version(module.replace("_", "-"))
    except Exception:
        ver = None
    package = f"{module.replace('_', '-')}{' ' + ver if ver else ''}"
    if cls.__name__ == "IBMBackend":  # a live device: say which, and when it was read
        from datetime import datetime, timezone

        return f"{backend.name} on IBM Quantum, read {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC ({package})"
    return f"{cls.__name__} ({package})"
