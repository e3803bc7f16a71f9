"""Real product-state prefixes of complex circuits, planned once per engine.

Angle embeddings put every qubit in a state that is a constant phase times a real vector:
``RX(x)|0> = diag(1, -i) (cos x/2, sin x/2)``, ``RY(x)|0> = (cos x/2, sin x/2)``. When every
prefix local state is ``D_q r_q`` with ``D_q`` a constant diagonal phase and ``r_q`` real, the
product state is ``d * kron(r)`` with ``d = kron(D_q)``: the statevector engine builds the
product in real arithmetic (half the work of the complex one, forward and backward) and folds
``d`` into the next fused unitary, a ``[2^n, 2^n]`` multiply whose cost does not depend on the
batch. When the prefix is one RX or RY layer (on |0>, or on a constant state such as H|0>),
its real vectors come straight from ``GateKind.column0`` instead of from complex 2x2
matrices, in real circuits too.
"""

from __future__ import annotations

import torch

from qkit.engines.angles import GateAngles
from qkit.engines.compiler import CompiledCircuit
from qkit.engines.gates import NATIVE

_PROBES, _TOL = 8, 1e-9


def plan_real_prefix(compiled: CompiledCircuit) -> tuple[dict, torch.Tensor | None]:
    """``(columns, D)``: ``{group: angle offsets | None}`` for a prefix built from its gates'
    real first columns (empty when it is not), and the phases ``D [n, 2]`` (complex128) of a
    complex circuit, None when its prefix is not real up to constant phases or the circuit is
    real (nothing to factor)."""
    phases = None if compiled.real else probe_phases(compiled)
    if not compiled.real and phases is None:
        return {}, None
    planned = _column_plan(compiled)
    if planned is None:
        return {}, phases
    group, offsets, known = planned
    return {group: offsets}, None if compiled.real else known


def probe_phases(compiled: CompiledCircuit) -> torch.Tensor | None:
    """``D [n, 2]`` with every prefix local state ``D_q`` times a real vector, else None.

    Found by running the prefix in float64 at random angles: a phase that varies with the
    angles shows up at once. Each phase is fixed up to a sign.
    """
    if not compiled.prefix_layers:
        return None
    angles = GateAngles(compiled.tables, compiled.groups, torch.float64, torch.complex128)
    gen = torch.Generator().manual_seed(0)
    table = compiled.tables["x"]
    local = torch.tensor(compiled.v0).expand(_PROBES, -1, -1).clone()
    for k in range(_PROBES):  # weights vary too: a phase set by a weight is not constant
        x = torch.rand(1, table.n_inputs, generator=gen, dtype=torch.float64) * 4 - 2
        w = torch.rand(table.n_weights, generator=gen, dtype=torch.float64) * 6 - 3
        mats = angles.matrices(x, w)
        for layer in compiled.prefix_layers:
            for q, ref in layer:
                m = (
                    torch.tensor(compiled.constants[ref.const])
                    if ref.const is not None
                    else mats[ref.group][..., ref.position, :, :]
                )
                local[k, q] = (m @ local[k, q, :, None]).reshape(2)
    nonzero = local.abs() > 1e-6
    first = nonzero.to(torch.uint8).argmax(0)  # a probe where the component is nonzero
    ref = local.gather(0, first[None]).squeeze(0)
    phase = torch.where(nonzero.any(0), ref / ref.abs().clamp_min(1e-300), 1.0 + 0j)
    phase = torch.where(phase.real < -_TOL, -phase, phase)
    if (local * phase.conj()).imag.abs().max() > _TOL:
        return None
    return phase


def _column_plan(compiled: CompiledCircuit):
    """``(group, offsets, D)`` when the prefix is one layer of one input-gate kind with a
    ``column0``, that group's only gates, on every qubit, and each qubit starts in ``D_q`` times
    a real unit vector ``(cos a, sin a)``: the layer's real columns are then ``column0`` at the
    angles plus ``2 a`` (RY(t) (cos a, sin a) = RY(t + 2a)|0>; H|0> gives a = pi/4), else None."""
    layers, n = compiled.prefix_layers, compiled.n_qubits
    if len(layers) != 1 or len(layers[0]) != n:
        return None
    groups = {ref.group for _, ref in layers[0]}
    group = groups.pop() if len(groups) == 1 else None
    if (
        group is None or group[0] != "x" or NATIVE[group[1]].column0 is None or len(compiled.groups[group].slots) != n
    ):  # no other gate reads these matrices
        return None
    known = torch.tensor(NATIVE[group[1]].column0[1], dtype=torch.complex128).expand(n, 2)
    start = torch.tensor(compiled.v0) * known.conj()
    if (compiled.real and (known != 1).any()) or (start.imag.abs() > _TOL).any():
        return None
    offsets = torch.zeros(n, 1, dtype=torch.float64)
    for q, ref in layers[0]:
        offsets[ref.position, 0] = 2 * torch.atan2(start[q, 1].real, start[q, 0].real)
    return group, None if (offsets == 0).all() else offsets, known
