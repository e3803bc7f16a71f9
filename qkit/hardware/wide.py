"""Wide circuits on an emulator: run in independent parts, assembled as the device would return them.

A circuit with parallel copies of a layer spans 40-100 physical qubits: a device runs it as
one circuit, but no simulator holds that state. The copies share no gate, though, and the
calibrated noise of a fake backend (Aer's model from the backend: gate errors on the gates'
own qubits, readout per qubit) acts on each copy alone, so the copies' outcomes are
independent and each copy can be simulated on its own physical qubits with the same noise.

``sample(mode, pubs, options, noise_of)`` is the executor Sampler for every circuit qkit
sends: on a device (``noise_of`` None) the PUBs go as they are, wide ones included; on an
emulation a PUB whose circuit falls into independent parts (qubits joined by no multi-qubit
instruction, a classical bit read from one part only) runs as one Aer simulation per group
of parts, each keeping the device width and its physical qubits, with the calibrated noise
of those qubits only (``noise_for``: ``qkit.noise.model.device_noise``, Aer's own channels,
the model the runtime's local mode builds from the whole device). That is exact and fast:
the runtime's local mode pays ~4 s per PUB on a 133-qubit device to carry the whole
device's noise model, so 19 copies as 19 local PUBs would take minutes. Circuits in one
part (a single copy) still go through the runtime's local mode, as before.
``PartsJob.result()`` puts the parts' bits back where the whole circuit would have written
them: a real ``PrimitiveResult`` of ``SamplerPubResult`` with one ``BitArray`` per classical
register, the layout a device returns. What this does not model: crosstalk between neighbouring copies on a device (the
copies are kept apart by idle qubits for that reason) and anything correlating the parts
that the fake backend's noise model lacks.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

MAX_GROUP_QUBITS = 5  # small parts are simulated together up to this many active qubits
_IGNORED = {"barrier", "delay"}


def parts_of(circuit: Any) -> list[list[int]]:
    """Groups of active qubit indices that no multi-qubit instruction (nor a shared clbit) joins."""
    parent = list(range(circuit.num_qubits))

    def find(q: int) -> int:
        while parent[q] != q:
            parent[q] = parent[parent[q]]
            q = parent[q]
        return q

    active, clbit_owner = set(), {}
    for inst in circuit.data:
        if inst.operation.name in _IGNORED:
            continue
        qubits = [circuit.find_bit(q).index for q in inst.qubits]
        active.update(qubits)
        for c in inst.clbits:  # a clbit written from two parts joins them
            qubits.append(clbit_owner.setdefault(circuit.find_bit(c).index, qubits[0]))
        for q in qubits[1:]:
            parent[find(q)] = find(qubits[0])
    groups: dict[int, list[int]] = {}
    for q in sorted(active):
        groups.setdefault(find(q), []).append(q)
    return list(groups.values())


def _grouped(parts: list[list[int]], limit: int = MAX_GROUP_QUBITS) -> list[list[int]]:
    """Small parts merged (in qubit order) into groups of at most ``limit`` qubits."""
    out: list[list[int]] = []
    for part in parts:
        if out and len(out[-1]) + len(part) <= limit:
            out[-1] = sorted(out[-1] + part)
        else:
            out.append(list(part))
    return out


def restrict(circuit: Any, qubits: list[int]) -> tuple[Any, dict[str, list[int]]]:
    """``circuit``'s instructions on ``qubits`` only, at full width; and per classical register
    the clbit indices (within the register) that the part writes, in order."""
    from qiskit import ClassicalRegister, QuantumCircuit

    keep = set(qubits)
    written: dict[str, set[int]] = {reg.name: set() for reg in circuit.cregs}
    for inst in circuit.data:
        if inst.clbits and keep.issuperset(circuit.find_bit(q).index for q in inst.qubits):
            for c in inst.clbits:
                reg, index = circuit.find_bit(c).registers[0]
                written[reg.name].add(index)
    owned = {name: sorted(bits) for name, bits in written.items() if bits}
    part = QuantumCircuit(circuit.num_qubits, name=circuit.name)
    regs = {name: ClassicalRegister(len(bits), name) for name, bits in owned.items()}
    for reg in regs.values():
        part.add_register(reg)
    for inst in circuit.data:
        index = [circuit.find_bit(q).index for q in inst.qubits]
        if inst.operation.name == "barrier":
            inside = [q for q in index if q in keep]
            if inside:
                part.barrier(inside)
            continue
        if not keep.issuperset(index):
            continue
        clbits = []
        for c in inst.clbits:
            reg, i = circuit.find_bit(c).registers[0]
            clbits.append(regs[reg.name][owned[reg.name].index(i)])
        part.append(inst.operation, [part.qubits[q] for q in index], clbits)
    return part, owned


@dataclass
class _Piece:
    pub: int  # index of the original PUB
    owned: dict[str, list[int]]  # register -> clbits of the original register this part wrote
    qubits: list[int]  # the part's active physical qubits (its noise is theirs)


class PartsJob:
    """The parts of some PUBs, run on Aer when the result is asked for (module docstring)."""

    def __init__(
        self,
        parts: list[tuple],
        pieces: list[_Piece],
        registers: list[dict[str, int]],
        shapes: list[tuple],
        noise_of: Callable[[list[int]], Any],
        seed: int | None,
        shots: list[int],
    ):
        self.parts, self.pieces, self.registers, self.shapes = parts, pieces, registers, shapes
        self.shots = shots
        self.noise_of, self.seed = noise_of, seed
        self._id = f"local-parts-{uuid.uuid4()}"
        self._result = None

    def job_id(self) -> str:
        return self._id

    def status(self) -> str:
        return "DONE" if self._result is not None else "QUEUED"

    def _run_parts(self) -> list:
        from qiskit_aer.primitives import SamplerV2

        out = []
        for k, (piece, pub) in enumerate(zip(self.pieces, self.parts)):
            seed = None if self.seed is None else int(self.seed) + 104_729 * k  # parts sample independently
            operations = set(pub[0].count_ops())
            sampler = SamplerV2(
                seed=seed,
                options={
                    "backend_options": {
                        "noise_model": self.noise_of(piece.qubits, operations),
                        "method": "density_matrix",
                    }
                },
            )
            out.append(sampler.run([pub]).result()[0])
        return out

    def result(self) -> Any:
        from qiskit.primitives.containers import BitArray, DataBin, PrimitiveResult, SamplerPubResult

        if self._result is not None:
            return self._result
        bits: list[dict[str, np.ndarray]] = [{} for _ in self.registers]
        for piece, part in zip(self.pieces, self._run_parts()):
            for name, clbits in piece.owned.items():
                got = getattr(part.data, name).to_bool_array(order="little")  # [..., shots, len(clbits)]
                whole = bits[piece.pub].get(name)
                if whole is None:
                    shape = self.shapes[piece.pub] + got.shape[-2:-1] + (self.registers[piece.pub][name],)
                    whole = bits[piece.pub][name] = np.zeros(shape, dtype=bool)
                whole[..., clbits] = got  # a part without parameters broadcasts over the rows
        out = []
        for i, arrays in enumerate(bits):
            for name, size in self.registers[i].items():  # a register no part writes reads all zeros
                if name not in arrays:
                    arrays[name] = np.zeros(self.shapes[i] + (self.shots[i], size), dtype=bool)
            arrays = {name: arrays[name] for name in self.registers[i]}  # the circuit's register order
            data = {name: BitArray.from_bool_array(a, order="little") for name, a in arrays.items()}
            shape = next(iter(data.values())).shape if data else ()
            out.append(SamplerPubResult(DataBin(**data, shape=shape), metadata={"assembled_from_parts": True}))
        self._result = PrimitiveResult(out, metadata={"job_id": self._id, "parts": len(self.pieces)})
        return self._result


def split_pub(pub: tuple) -> list[tuple[tuple, dict[str, list[int]], list[int]]] | None:
    """Part PUBs of one PUB ``(circuit, values or None, shots)`` with the clbits and qubits each
    owns; None when the circuit is one part (or small enough to simulate whole)."""
    circuit, values, shots = pub
    groups = _grouped(parts_of(circuit))
    if len(groups) < 2:
        return None
    index = {p: i for i, p in enumerate(circuit.parameters)}
    out = []
    for qubits in groups:
        part, owned = restrict(circuit, qubits)
        bound = None  # a part without parameters: one result, broadcast over rows
        if values is not None and part.num_parameters:
            bound = np.asarray(values)[..., [index[p] for p in part.parameters]]
        out.append(((part, bound, shots), owned, qubits))
    return out


def sample(mode: Any, pubs: list[tuple], options: dict, noise_of: Callable[[list[int]], Any] | None = None) -> Any:
    """The executor Sampler on ``pubs``; on an emulation (``noise_of``: physical qubits -> the
    backend's Aer noise model on them) PUBs that fall into several parts run part by part."""
    from qiskit_ibm_runtime.executor_sampler import Sampler

    if noise_of is None:
        return Sampler(mode=mode, options=options).run(pubs)
    default = int(options.get("default_shots") or 1024)  # the runtime Sampler's default too
    whole = [
        (pub[0], pub[1] if len(pub) > 1 else None, pub[2] if len(pub) > 2 and pub[2] is not None else default)
        for pub in pubs
    ]
    splits = [split_pub(pub) for pub in whole]
    if all(split is None for split in splits):
        return Sampler(mode=mode, options=options).run(pubs)
    pieces, parts, registers, shapes = [], [], [], []
    for i, (pub, split) in enumerate(zip(whole, splits)):
        circuit, values = pub[0], pub[1]
        registers.append({reg.name: reg.size for reg in circuit.cregs})
        shapes.append(() if values is None else tuple(np.shape(values)[:-1]))
        if split is None:  # one part: simulated whole, on all its active qubits
            split = [
                (
                    pub,
                    {reg.name: list(range(reg.size)) for reg in circuit.cregs},
                    sorted(q for group in parts_of(circuit) for q in group),
                )
            ]
        for part_pub, owned, qubits in split:
            parts.append(part_pub)
            pieces.append(_Piece(i, owned, qubits))
    pubs = whole
    seed = (options.get("simulator") or {}).get("seed_simulator")
    return PartsJob(parts, pieces, registers, shapes, noise_of, seed, [int(pub[2]) for pub in pubs])


def noise_for(resolved: Any) -> Callable[[list[int]], Any]:
    """Physical qubits -> the Aer noise model the runtime's local mode applies to them on ``resolved``
    (``qkit.noise.model.device_noise`` at scale 1: Aer's own ``NoiseModel.from_backend`` channels,
    restricted to those qubits, so a part simulates in milliseconds instead of carrying the
    whole device's model)."""
    from qkit.noise.model import device_noise, readout_errors

    target, readout = resolved.backend.target, readout_errors(resolved)

    @functools.lru_cache(maxsize=None)
    def model(qubits: tuple[int, ...], operations: frozenset[str]) -> Any:
        return device_noise(target, readout, qubits=set(qubits), operations=set(operations)).noise_model()

    def noise_of(qubits: list[int], operations: Any = None) -> Any:
        """Only the channels of ``operations`` (the part's instructions): building channels is the cost."""
        return model(tuple(sorted(qubits)), frozenset(operations or target.operation_names))

    return noise_of
