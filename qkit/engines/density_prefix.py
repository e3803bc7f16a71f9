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
    exactly one and it is an RZ group used by the prefix alone, else None."""
    stacked = engine._stacked_prefix
    if stacked is None:
        return None
    inputs = [j for j, step in enumerate(stacked) if step[0] == "param" and step[1][0] == "x"]
    if len(inputs) != 1:
        return None
    group = stacked[inputs[0]][1]
    if group[1] != "rz" or len(engine.angles.groups[group].slots) != len(stacked_qubits(engine)):
        return None
    t = 0.7
    rz = np.diag([np.exp(-0.5j * t), np.exp(0.5j * t)])
    if not np.allclose(ptm(rz, 1), _P[0] + np.cos(t) * _P[1] + np.sin(t) * _P[2]):
        return None     # the PTM order changed: keep the general path
    engine.register_buffer("_rz_parts", torch.tensor(_P.reshape(12, 4), dtype=engine.dtype), persistent=False)
    return inputs[0]


def stacked_qubits(engine) -> list[int]:
    return [q for _, (q,), _ in engine.prefix]


def rotation_prefix_local(engine, position: int, ptms: dict) -> torch.Tensor:
    """``[B, m, 4]``: the prefix qubits' Pauli vectors, ``u + cos(t) v + sin(t) w``."""
    stacked, m = engine._stacked_prefix, len(engine.prefix)

    def factor(step):
        return getattr(engine, step[1]) if step[0] == "const" else ptms[step[1]][:, getattr(engine, step[2])]

    b = engine._local0.expand(1, m, 4)[..., None]                     # [1, m, 4, 1]
    for step in stacked[:position]:
        b = factor(step) @ b
    parts = (engine._rz_parts @ b).view(1, m, 3, 4).transpose(-1, -2)  # [1, m, 4, 3]: P0 b, P1 b, P2 b
    for step in stacked[position + 1:]:
        parts = factor(step) @ parts
    _, group, positions = stacked[position]
    theta = ptms[group][..., getattr(engine, positions), 0]           # [B, m] (raw angles)
    u, v, w = parts.unbind(-1)
    return u + torch.cos(theta)[..., None] * v + torch.sin(theta)[..., None] * w
