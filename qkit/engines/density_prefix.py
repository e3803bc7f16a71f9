"""The density engine's input embedding in closed form, when it is one RZ per qubit.

Transpiled for an IBM device, an angle embedding becomes, on every qubit, constants (SX, fixed
RZ, their noise), one RZ whose angle depends on the input, then weight-only gates. The PTM of
``RZ(t)`` is ``P0 + cos(t) P1 + sin(t) P2``, so each qubit's local Pauli vector after the prefix
is ``u + cos(t) v + sin(t) w`` with ``u, v, w`` independent of the batch: two multiplies and two
adds on ``[B, m, 4]``, instead of building a PTM per sample and gate from its unitary and a
chain of ``[B, m, 4, 4]`` matmuls through the rest of the run.
"""

from __future__ import annotations

import numpy as np
import torch

from qkit.engines.ptm import ptm

# RZ(t)'s PTM (I, X, Y, Z order): X -> cos t X + sin t Y, Y -> cos t Y - sin t X.
_P = np.zeros((3, 4, 4))
_P[0, 0, 0] = _P[0, 3, 3] = 1.0
_P[1, 1, 1] = _P[1, 2, 2] = 1.0
_P[2, 2, 1], _P[2, 1, 2] = 1.0, -1.0


def plan_rotation_prefix(engine) -> int | None:
    """The chain position of the prefix's one input-dependent gate, when the stacked prefix has
    exactly one, it is an RZ group that is the whole input angle table, and each of its angles
    is one input times a constant plus a constant (``x``, ``x * pi/2 + c``). The prefix runs are
    then reordered by the input they read, so the angles are ``x * scale + offset`` with no
    gather. None otherwise (the general PTM chain is used)."""
    stacked = engine._stacked_prefix
    if stacked is None:
        return None
    inputs = [j for j, step in enumerate(stacked) if step[0] == "param" and step[1][0] == "x"]
    if len(inputs) != 1:
        return None
    position, group = inputs[0], stacked[inputs[0]][1]
    table, slots = engine.angles.tables["x"], engine.angles.groups[group].slots
    a_in, _, const = table.matrices()
    m = len(engine.prefix)
    if (
        group[1] != "rz"
        or slots.shape != (m, 1)
        or a_in.shape != (m, m)
        or table.nonlinear
        or table.uses_weights
        or (np.count_nonzero(a_in, axis=0) != 1).any()
    ):
        return None
    if not _register_rz_basis(engine):
        return None  # the PTM order changed: keep the general path
    gate = getattr(engine, stacked[position][2]).numpy()  # run r uses gate gate[r]
    source = np.abs(a_in).argmax(axis=0)[slots[gate, 0]]  # ... which reads input source[r]
    if sorted(source) != list(range(m)):
        return None
    _reorder_runs(engine, np.argsort(source))  # run i now reads input i
    slot = slots[gate[np.argsort(source)], 0]
    for name, value in (("scale", a_in[np.arange(m), slot]), ("offset", const[slot])):
        engine.register_buffer(f"_rz_{name}", torch.tensor(value, dtype=engine.dtype), persistent=False)
    return position


def _reorder_runs(engine, order: np.ndarray) -> None:
    """Put the stacked prefix's runs (and the qubits they belong to) in ``order``."""
    index = torch.as_tensor(order)
    for step in engine._stacked_prefix:
        name = step[1] if step[0] == "const" else step[2]
        value = getattr(engine, name)
        engine.register_buffer(name, value[:, index] if step[0] == "const" else value[index], persistent=False)
    engine._prefix_qubits = [engine._prefix_qubits[i] for i in order]


def plan_prefix_parts(engine) -> str:
    """``"const"`` when the embedding's RZ is the only parametric gate of the prefix runs (weight
    gates after it are moved to the suffix, ``density_steps._split_steps``): ``(u, v, w)`` are
    then a buffer, ``_rz_parts``. Else ``"general"``: the chain of PTMs every pass."""
    stacked, position = engine._stacked_prefix, engine._rotation
    if position is None or any(step[0] == "param" for j, step in enumerate(stacked) if j != position):
        return "general"
    with torch.no_grad():
        parts = _parts(engine, stacked[:position], None, engine._local0.double(), engine._rz_basis.double())
        parts = apply_chain(engine, stacked[position + 1 :], None, parts)
    engine.register_buffer("_rz_parts", parts.to(engine.dtype), persistent=False)
    return "const"


def _parts(engine, steps: list, ptms: dict | None, local0: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``[1, m, 4, 3]``: P0 b, P1 b, P2 b for ``b`` the prefix runs' vectors before the embedding."""
    m = len(engine.prefix)
    b = apply_chain(engine, steps, ptms, local0.expand(1, m, 4)[..., None])  # [1, m, 4, 1]
    return (basis.view(12, 4) @ b).view(1, m, 3, 4).transpose(-1, -2)


def apply_chain(engine, steps: list, ptms: dict | None, v: torch.Tensor) -> torch.Tensor:
    """``steps`` of the stacked prefix chain (``density_suffix.stack_runs``) applied to ``v``
    ``[.., m, 4, j]``, one matmul per position for all m runs: a constant buffer, or the
    parametric gates' PTMs gathered by position from ``ptms``."""
    for kind, *ref in steps:
        factor = getattr(engine, ref[0]) if kind == "const" else ptms[ref[0]][:, getattr(engine, ref[1])]
        v = factor.to(v.dtype) @ v
    return v


def rotation_prefix_local(
    engine, position: int, x: torch.Tensor, ptms: dict, absorbed: torch.Tensor | None = None
) -> torch.Tensor:
    """``[B, m, 4]``: the prefix qubits' Pauli vectors, ``u + cos(t) v + sin(t) w``, with the
    suffix's ``absorbed`` run PTMs ``[m, 4, 4]`` (``density_suffix.plan_suffix``) applied."""
    parts, stacked = getattr(engine, "_rz_parts", None), engine._stacked_prefix
    if engine._prefix_parts == "general":
        parts = _parts(engine, stacked[:position], ptms, engine._local0, engine._rz_basis)
        parts = apply_chain(engine, stacked[position + 1 :], ptms, parts)
    if absorbed is not None:
        parts = absorbed @ parts[0]
    theta = torch.addcmul(engine._rz_offset, x, engine._rz_scale)[..., None]  # [B, m, 1]: run i reads input i
    u, v, w = parts.unbind(-1)
    return torch.addcmul(torch.addcmul(u, torch.cos(theta), v), torch.sin(theta), w)


def rz_groups(engine, skip: frozenset) -> frozenset:
    """The RZ groups (every parametric gate of an IBM ISA circuit) whose PTMs ``rz_ptms`` builds
    from their angles, instead of from unitaries through ``ptm_map``: 4 ops, not ~12."""
    if not _register_rz_basis(engine):
        return frozenset()
    return frozenset(key for key in engine.angles.groups if key[1] == "rz" and key not in skip)


def rz_ptms(theta: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``[B|1, n_gates, 4, 4]``: ``P0 + cos(t) P1 + sin(t) P2`` for a group's angles
    ``[B|-, n_gates, 1]`` (inputs or weights), as ``DensityEngine._group_ptms`` returns PTMs."""
    t = theta[..., 0]
    r = (torch.stack([torch.ones_like(t), torch.cos(t), torch.sin(t)], -1) @ basis).unflatten(-1, (4, 4))
    return r if r.dim() == 4 else r[None]


def _register_rz_basis(engine) -> bool:
    """``_rz_basis [3, 16]`` (P0, P1, P2) on the engine, once, if RZ's PTM in this module's Pauli
    order is indeed ``P0 + cos t P1 + sin t P2`` (checked against Qiskit's PTM); else False."""
    if not hasattr(engine, "_rz_basis"):
        t = 0.7
        rz = np.diag([np.exp(-0.5j * t), np.exp(0.5j * t)])
        if not np.allclose(ptm(rz, 1), _P[0] + np.cos(t) * _P[1] + np.sin(t) * _P[2]):
            return False
        engine.register_buffer("_rz_basis", torch.tensor(_P.reshape(3, 16), dtype=engine.dtype), persistent=False)
    return True
