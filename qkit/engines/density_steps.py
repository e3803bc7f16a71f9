"""The density engine's steps: its ISA circuit as PTM steps, sorted into prefix, middle and suffix.

``plan_steps`` turns the reduced circuit's instructions into steps (each gate's PTM, its
noise channel fused in when the gate is constant), multiplies every run of single-qubit
instructions on one qubit into one step, and sorts the steps into the three phases
``DensityEngine`` applies differently (``_split_steps``): the prefix on each qubit's own
4 components, the input-dependent middle on the batch, and the batch-independent suffix in
the Heisenberg picture (``qkit.engines.density_suffix``). Buffers are registered on the engine.
"""

from __future__ import annotations

import torch

from qkit.engines.angles import GateAngles
from qkit.engines.base import LayerProgram
from qkit.engines.compiler import plan_angles
from qkit.engines.density_prefix import plan_rotation_prefix, rz_groups
from qkit.engines.density_suffix import stack_runs
from qkit.engines.gates import flatten
from qkit.engines.ptm import ptm
from qkit.errors import QkitError


def plan_steps(engine, instructions: list, local: dict) -> None:
    """``engine.steps`` (then ``prefix``, ``middle``, ``suffix``) and ``engine.angles`` from the
    ISA ``instructions`` (operation, physical qubits), ``local`` mapping them to active qubits."""
    from qiskit import QuantumCircuit

    reduced = QuantumCircuit(engine.k)
    for op, qubits in instructions:
        reduced.append(op, [local[q] for q in qubits])
    gates = flatten(reduced)
    if [g.name for g in gates] != [op.name for op, _ in instructions]:
        raise QkitError("engine 'density': the transpiled circuit has gates the density engine cannot map one to one")
    tables, groups, refs, constants = plan_angles(
        LayerProgram(reduced, engine.program.inputs, engine.program.weights, ()), gates
    )
    engine.angles = GateAngles(tables, groups, engine.dtype, engine.cdtype)
    engine._bases = {}
    pending: dict[int, list] = {}  # qubit -> items of its current single-qubit run
    engine.steps = []
    for gate, ref, (op, qubits) in zip(gates, refs, instructions):
        channel = engine.noise.channel(op.name, qubits)  # by its parts: a cheap PTM
        noise = None if channel is None else ptm(channel, len(qubits))
        if gate.is_parametric:
            item = ("param", ref, None if noise is None else engine._buffer(noise))
        else:
            fused = ptm(constants[ref.const], len(qubits))
            item = ("const", fused if noise is None else noise @ fused)
        if len(gate.qubits) == 1:
            pending.setdefault(gate.qubits[0], []).append(item)
            continue
        for q in gate.qubits:
            _flush(engine, pending, q)
        engine.steps.append(("gate", gate.qubits, [engine._load(item)]))
    for q in sorted(pending):
        _flush(engine, pending, q)
    _split_steps(engine)


def _flush(engine, pending: dict, q: int) -> None:
    """One step for qubit ``q``'s run of single-qubit items; constants multiplied now."""
    items = pending.pop(q, [])
    merged = []
    for item in items:
        if item[0] == "const" and merged and merged[-1][0] == "const":
            merged[-1] = ("const", item[1] @ merged[-1][1])
        else:
            merged.append(item)
    if merged:
        engine.steps.append(("gate", (q,), [engine._load(item) for item in merged]))


def _split_steps(engine) -> None:
    """Sort the steps into three phases that need less work than applying all to the batch.

    ``prefix``: each qubit's single-qubit run before any multi-qubit gate touches it. The
    state is still a product there, so the run acts on that qubit's 4 components, and the
    full state is built once (|0> is 1 on I and Z). ``middle``: up to the last
    input-dependent step, applied to the batch. ``suffix``: the batch-independent rest,
    applied in the Heisenberg picture: the observables' coefficient vectors go backwards
    through the transposed PTMs (a batch of n outputs, not of B samples), and the outputs
    are one matmul of the middle's states with them; ``qkit.engines.density_suffix`` plans
    that walk as constant blocks and Kronecker layers.
    """
    touched: set[int] = set()
    engine.prefix, rest, tails = [], [], []
    for step in engine.steps:
        qubits = step[1]
        if len(qubits) == 1 and qubits[0] not in touched:
            # Weight gates after a qubit's last input gate move to the weight layers (one
            # more layer there, with no per-pass work left here).
            inputs = [i for i, item in enumerate(step[2]) if item[0] == "param" and item[1].group[0] == "x"]
            cut = inputs[-1] + 1 if inputs else 0
            if any(item[0] == "param" for item in step[2][cut:]):
                tails.append(("gate", qubits, step[2][cut:]))
                step = ("gate", qubits, step[2][:cut])
            if step[2]:
                engine.prefix.append(step)
        else:
            rest.append(step)
            if len(qubits) > 1:
                touched.update(qubits)
    rest = tails + rest
    batched = [
        i for i, step in enumerate(rest) if any(item[0] == "param" and item[1].group[0] == "x" for item in step[2])
    ]
    cut = batched[-1] + 1 if batched else 0
    engine.middle, engine.suffix = rest[:cut], rest[cut:]
    engine.steps = engine.prefix + rest  # in an order equivalent to the circuit's
    engine.register_buffer("_local0", torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=engine.dtype), persistent=False)
    engine._stacked_prefix = _stack_prefix(engine)
    engine._rotation = plan_rotation_prefix(engine)  # the embedding's RZ in closed form
    engine._skip = frozenset() if engine._rotation is None else {engine._stacked_prefix[engine._rotation][1]}
    engine._rz = rz_groups(engine, engine._skip)


def _stack_prefix(engine) -> list | None:
    """The prefix runs as one chain over all their qubits (``density_suffix.stack_runs``)."""
    engine._prefix_qubits = [q for _, (q,), _ in engine.prefix]
    return stack_runs(engine, [items for _, _, items in engine.prefix], "prefix") if len(engine.prefix) > 1 else None
