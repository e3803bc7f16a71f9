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

Each instruction's channel is kept by its parts (a ``Channel``: the depolarizing probability
and each qubit's T1, T2 and duration); its Aer ``QuantumError`` (``DeviceNoise.errors``, for
Aer's ``NoiseModel``) is composed on first use, and its Pauli transfer matrix (what the density
engine needs: ``Channel.to_quantumchannel``) is the product of the parts' PTMs, each converted
once by Qiskit from Aer's own error and cached by its parameters, instead of Qiskit's generic
conversion of the composed error's every circuit (up to 144 per two-qubit channel).

Scale 1 is Aer's own model (tested instruction by instruction against
``basic_device_gate_errors``); 0 removes the source. The depolarizing probability always
comes from the calibrated relaxation, so the sources stay independent. Readout: a fake
backend's Target has one symmetric error per qubit, which is what the runtime's local mode
applies; a snapshot (or a live device) keeps both directions.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

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
    def of(
        cls,
        scale: float = 1.0,
        gate: float | None = None,
        readout: float | None = None,
        relaxation: float | None = None,
    ) -> "NoiseScales":
        """One scale for all sources, overridden per source; every value finite and >= 0."""
        values = {"scale": scale, "gate": gate, "readout": readout, "relaxation": relaxation}
        for name, value in values.items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise QkitError(f"noise {name} scale must be a number >= 0, got {value!r}")
        return cls(*(float(scale if v is None else v) for v in (gate, readout, relaxation)))

    def to_dict(self) -> dict:
        return asdict(self)


@functools.lru_cache(maxsize=4096)
def _thermal_ptm(t1: float, t2: float, duration: float) -> Any:
    """The PTM of Aer's single-qubit ``thermal_relaxation_error(t1, t2, duration)`` (a Qiskit ``PTM``)."""
    from qiskit_aer.noise import thermal_relaxation_error

    return _error_ptm(thermal_relaxation_error(t1, t2, duration))


@functools.lru_cache(maxsize=4096)
def _depolarizing_ptm(p: float, n_qubits: int) -> Any:
    """The PTM of Aer's ``depolarizing_error(p, n_qubits)`` (a Qiskit ``PTM``)."""
    from qiskit_aer.noise import depolarizing_error

    return _error_ptm(depolarizing_error(p, n_qubits))


def _error_ptm(error: Any) -> Any:
    """``PTM(error)``, through ``qkit.engines.ptm.error_ptm`` (its circuits' PTMs cached)."""
    from qiskit.quantum_info import PTM

    from qkit.engines.ptm import error_ptm

    return PTM(error_ptm(error))


def _relaxation_ptm(relaxation: tuple) -> Any:
    """The PTM of thermal relaxation ``(t1, t2, duration)`` per qubit, tensored (qubit 0 first, as
    ``QuantumError.expand``), or None for none."""
    out = None
    for spec in relaxation:
        single = _thermal_ptm(*spec)
        out = single if out is None else out.expand(single)
    return out


@dataclass(frozen=True)
class Channel:
    """The channel after one instruction by its parts, as Aer composes them: a depolarizing channel
    on all ``n_qubits`` (probability ``depolarizing``), then thermal relaxation on each qubit.

    ``relaxation``: ``(t1, t2, duration)`` per qubit at the applied scale (``()``: none);
    ``calibrated``: the same at scale 1, the reference of the depolarizing probability;
    ``gate_error``: the reported error, and ``gate_scale`` its scale (0: no depolarizing part,
    e.g. not a gate). ``error()`` is the Aer ``QuantumError``; ``to_quantumchannel()`` the same
    channel as a Qiskit ``PTM``, so ``PTM(channel)``, ``SuperOp(channel)`` and
    ``average_gate_fidelity(channel)`` take a Channel as they take the error.
    """

    n_qubits: int
    relaxation: tuple = ()
    calibrated: tuple = ()
    gate_error: float | None = None
    gate_scale: float = 0.0

    @functools.cached_property
    def depolarizing(self) -> float:
        """Aer's depolarizing probability at ``gate_scale`` (0: none)."""
        if not self.gate_scale:
            return 0.0
        calibrated = _relaxation_ptm(self.calibrated)
        p = _depolarizing_probability(self.n_qubits, self.gate_error, calibrated) * self.gate_scale
        return min(p, 4**self.n_qubits / (4**self.n_qubits - 1)) if p > 0 else 0.0

    @property
    def is_identity(self) -> bool:
        return not self.relaxation and not self.depolarizing

    def error(self) -> Any:
        """Aer's ``QuantumError``: ``depolarizing_error(p, n).compose(relaxation)``, relaxation the
        qubits' ``thermal_relaxation_error`` expanded in qubit order (None if the identity)."""
        from qiskit_aer.noise import depolarizing_error, thermal_relaxation_error

        relax = None
        for spec in self.relaxation:
            single = thermal_relaxation_error(*spec)
            relax = single if relax is None else relax.expand(single)
        depol = depolarizing_error(self.depolarizing, self.n_qubits) if self.depolarizing else None
        if depol is not None and relax is not None:
            return depol.compose(relax)  # as Aer: depolarizing, then relaxation
        return depol if depol is not None else relax

    def to_quantumchannel(self) -> Any:
        """The channel as a Qiskit ``PTM``: the parts' PTMs (each cached by its parameters) composed."""
        return self._ptm

    @functools.cached_property
    def _ptm(self) -> Any:
        from qiskit.quantum_info import PTM

        relax = _relaxation_ptm(self.relaxation)
        depol = _depolarizing_ptm(self.depolarizing, self.n_qubits) if self.depolarizing else None
        if depol is not None and relax is not None:
            return depol.compose(relax)
        if depol is None and relax is None:
            return PTM(np.eye(4**self.n_qubits))
        return depol if depol is not None else relax


class ChannelErrors(Mapping):
    """(instruction name, physical qubits) -> Aer ``QuantumError``, each composed from its
    ``Channel`` (``channels``) on first use and kept."""

    def __init__(self, channels: dict):
        self.channels = dict(channels)
        self._errors: dict = {}

    def __getitem__(self, key: Any) -> Any:
        if key not in self._errors:
            self._errors[key] = self.channels[key].error()
        return self._errors[key]

    def __iter__(self) -> Iterator:
        return iter(self.channels)

    def __len__(self) -> int:
        return len(self.channels)

    def __contains__(self, key: object) -> bool:
        return key in self.channels

    def __repr__(self) -> str:
        return f"ChannelErrors({list(self.channels)!r})"


@dataclass
class DeviceNoise:
    """The channel after each instruction and the readout of each qubit, at given scales."""

    errors: Mapping  # (instruction name, physical qubits) -> Aer QuantumError
    readout: dict  # physical qubit -> (P(0|1), P(1|0)), scaled
    scales: NoiseScales
    basis_gates: list = field(default_factory=list)

    def error(self, name: str, qubits: tuple[int, ...]) -> Any:
        return self.errors.get((name, tuple(qubits)))

    def channel(self, name: str, qubits: tuple[int, ...]) -> Any:
        """The channel after an instruction by its parts (a ``Channel``, whose PTM is cheap), or
        its error where ``errors`` holds plain errors; None if none."""
        key = (name, tuple(qubits))
        channels = getattr(self.errors, "channels", None)
        return channels.get(key) if channels is not None else self.errors.get(key)

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


def _relaxation(target: Any, qubits: tuple[int, ...], duration: float) -> tuple:
    """Aer's thermal relaxation over ``duration`` on each qubit: ``(t1, t2, duration)`` per qubit,
    T2 truncated to 2 T1 (the arguments of ``thermal_relaxation_error``)."""
    out = []
    for q in qubits:
        props = target.qubit_properties[q] if target.qubit_properties else None
        t1 = getattr(props, "t1", None) or math.inf
        t2 = getattr(props, "t2", None) or math.inf
        out.append((t1, min(t2, 2 * t1), duration))
    return tuple(out)


def _depolarizing_probability(n_qubits: int, gate_error: float | None, relax: Any) -> float:
    """Aer's choice: the depolarizing p that, composed with ``relax`` (a channel or None), has
    average gate error ``gate_error``.

    (``qiskit_aer.noise.device.models._device_depolarizing_error``, private in Aer, hence here.)
    """
    from qiskit.quantum_info import average_gate_fidelity

    relax_fid = float(average_gate_fidelity(relax)) if relax is not None else 1.0
    if gate_error is None or gate_error <= 1 - relax_fid:
        return 0.0
    dim = 2**n_qubits
    gate_error = min(gate_error, dim / (dim + 1))
    p = dim * (gate_error - (1 - relax_fid)) / (dim * relax_fid - 1)
    return min(p, 4**n_qubits / (4**n_qubits - 1))


def _channel(target: Any, op_name: str, qubits: tuple[int, ...], props: Any, scales: NoiseScales) -> Any:
    """The ``Channel`` after ``op_name`` on ``qubits`` at ``scales``, or None for the identity."""
    from qiskit.circuit import Gate

    duration = props.duration or 0.0
    calibrated = _relaxation(target, qubits, duration) if duration else ()
    relax = (
        calibrated
        if scales.relaxation == 1.0
        else (_relaxation(target, qubits, duration * scales.relaxation) if duration and scales.relaxation else ())
    )
    gate_scale = scales.gate if isinstance(target.operation_from_name(op_name), Gate) else 0.0
    channel = Channel(len(qubits), relax, calibrated, props.error, gate_scale)
    return None if channel.is_identity else channel


def device_noise(
    target: Any,
    readout: dict,
    scales: NoiseScales | None = None,
    qubits: set[int] | None = None,
    operations: set[str] | None = None,
) -> DeviceNoise:
    """The noise of ``target`` at ``scales``; ``readout``: physical qubit -> (P(0|1), P(1|0)) at scale 1.

    ``qubits``: only instructions on these physical qubits (a large device's active region);
    ``operations``: only these instructions (those a circuit uses: building channels is the cost).
    The channels are kept by their parts (``Channel``); ``errors`` composes each Aer error on first use.
    """
    scales = scales or NoiseScales()
    channels = {}
    for op_name, by_qubits in target.items():
        if op_name in _NO_NOISE or by_qubits is None or (operations is not None and op_name not in operations):
            continue
        for qargs, props in by_qubits.items():
            if props is None or qargs is None or (qubits is not None and not set(qargs) <= qubits):
                continue
            channel = _channel(target, op_name, tuple(qargs), props, scales)
            if channel is not None:
                channels[(op_name, tuple(qargs))] = channel
    scaled = {
        q: (min(0.5, p01 * scales.readout), min(0.5, p10 * scales.readout))
        for q, (p01, p10) in readout.items()
        if qubits is None or q in qubits
    }
    basis = [op for op in target.operation_names if op not in _NO_NOISE]
    return DeviceNoise(ChannelErrors(channels), scaled, scales, basis)


def readout_errors(resolved: Any) -> dict:
    """P(0|1), P(1|0) per physical qubit as the backend's emulation applies them (module docstring)."""
    if resolved.kind == "fake":
        measure = resolved.backend.target["measure"] if "measure" in resolved.backend.target.operation_names else {}
        return {
            q[0]: (float(p.error or 0.0), float(p.error or 0.0))
            for q, p in measure.items()
            if q is not None and p is not None
        }
    out = {}
    for cal in resolved.calibration().qubits:
        p01 = cal.prob_meas0_prep1 if cal.prob_meas0_prep1 is not None else cal.readout_error
        p10 = cal.prob_meas1_prep0 if cal.prob_meas1_prep0 is not None else cal.readout_error
        out[cal.qubit] = (float(p01 or 0.0), float(p10 or 0.0))
    return out
