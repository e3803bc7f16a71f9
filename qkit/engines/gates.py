"""Gate matrices as batched torch functions, and flattening of circuits onto them.

Every parametric gate the statevector engine evaluates natively has a builder here that
maps its angles ``[..., n_params]`` to matrices ``[..., 2**k, 2**k]`` in Qiskit's own
convention (gate qubit 0 is the least significant bit of the matrix index), so the
matrices agree with ``qiskit.quantum_info.Operator`` of the bound gate. Gates without
free parameters never need a builder: their matrix is read once from Qiskit. Any other
parametric gate is decomposed through its Qiskit definition until only these remain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from qiskit.circuit import Gate, ParameterExpression, QuantumCircuit
from qiskit.quantum_info import Operator

from qkit.errors import QkitError

# Instructions that change the state non-unitarily or depend on classical bits: the
# layer computes exact expectation values of a pure state, so these have no meaning.
NON_UNITARY = {
    "measure",
    "reset",
    "initialize",
    "delay",
    "store",
    "if_else",
    "while_loop",
    "for_loop",
    "switch_case",
    "break_loop",
    "continue_loop",
    "box",
}
IGNORED = {"barrier", "global_phase"}  # no effect on expectation values


def _cs(t):
    h = t * 0.5
    return torch.cos(h), torch.sin(h)


def _mat(entries, k=2):
    return torch.stack(entries, dim=-1).unflatten(-1, (k, k))


def _cmat(re, im, k=2):
    return torch.complex(_mat(re, k), _mat(im, k))


def _complex_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.complex128 if t.dtype == torch.float64 else torch.complex64


# RX, RY and RZ are built in as few torch ops as possible: a layer of a few hundred samples
# pays per op (forward and backward), not per element.
def _rx(p):
    c, s = _cs(p[..., 0])
    c, ms = c.to(_complex_dtype(c)), s * -1j  # cos(t/2) I - i sin(t/2) X
    return _mat([c, ms, ms, c])


def _ry(p):
    c, s = _cs(p[..., 0])
    return _mat([c, -s, s, c])


def _cos_sin_column(p):
    """RX(t)|0> = diag(1, -i) (cos t/2, sin t/2) and RY(t)|0> = (cos t/2, sin t/2): the real part."""
    return torch.stack(_cs(p[..., 0]), dim=-1)


def _rz(p):
    c, s = _cs(p[..., 0])
    e = torch.complex(c, -s)  # diag(e^{-it/2}, e^{it/2})
    return torch.diag_embed(torch.stack([e, e.conj()], dim=-1))


def _phase(p):
    t = p[..., 0]
    o, z = torch.ones_like(t), torch.zeros_like(t)
    return _cmat([o, z, z, torch.cos(t)], [z, z, z, torch.sin(t)])


def _u(p):
    th, ph, la = p[..., 0], p[..., 1], p[..., 2]
    c, s = _cs(th)
    re = [c, -torch.cos(la) * s, torch.cos(ph) * s, torch.cos(ph + la) * c]
    im = [torch.zeros_like(c), -torch.sin(la) * s, torch.sin(ph) * s, torch.sin(ph + la) * c]
    return _cmat(re, im)


def _u2(p):
    return _u(torch.stack([torch.full_like(p[..., 0], np.pi / 2), p[..., 0], p[..., 1]], -1))


def _r(p):
    c, s = _cs(p[..., 0])
    ph = p[..., 1]
    z = torch.zeros_like(c)
    re = [c, -torch.sin(ph) * s, torch.sin(ph) * s, c]
    im = [z, -torch.cos(ph) * s, -torch.cos(ph) * s, z]
    return _cmat(re, im)


def _two_qubit_rotation(pauli_pair: str):
    """exp(-i t/2 P) = cos(t/2) I - i sin(t/2) P for a fixed two-qubit Pauli P."""
    from qiskit.quantum_info import Pauli

    pauli = torch.from_numpy(Pauli(pauli_pair).to_matrix())

    def build(p):
        c, s = _cs(p[..., 0])
        cdtype = torch.complex128 if p.dtype == torch.float64 else torch.complex64
        pm = pauli.to(device=p.device, dtype=cdtype)
        eye = torch.eye(4, dtype=cdtype, device=p.device)
        return c[..., None, None] * eye - 1j * s[..., None, None] * pm

    return build


def _controlled(single):
    """Qiskit's controlled gate: control is gate qubit 0, so it acts on indices 1 and 3."""

    def build(p):
        m = single(p)
        one = torch.ones_like(p[..., 0]).to(m.dtype)
        zero = torch.zeros_like(one)
        rows = [
            [one, zero, zero, zero],
            [zero, m[..., 0, 0], zero, m[..., 0, 1]],
            [zero, zero, one, zero],
            [zero, m[..., 1, 0], zero, m[..., 1, 1]],
        ]
        return torch.stack([torch.stack(r, -1) for r in rows], -2)

    return build


@dataclass(frozen=True)
class GateKind:
    """A natively supported parametric gate: its builder and whether it is real-valued."""

    build: object
    real: bool = False
    # (f, phases): the first column (the gate on |0>) is diag(phases) f(angles), f real. An
    # angle embedding on |0> then builds [B, n, 2] real vectors, not [B, n, 2, 2] complex matrices.
    column0: tuple | None = None


NATIVE = {
    "rx": GateKind(_rx, column0=(_cos_sin_column, (1, -1j))),
    "ry": GateKind(_ry, real=True, column0=(_cos_sin_column, (1, 1))),
    "rz": GateKind(_rz),
    "p": GateKind(_phase),
    "u1": GateKind(_phase),
    "u": GateKind(_u),
    "u3": GateKind(_u),
    "u2": GateKind(_u2),
    "r": GateKind(_r),
    "rxx": GateKind(_two_qubit_rotation("XX")),
    "ryy": GateKind(_two_qubit_rotation("YY")),
    "rzz": GateKind(_two_qubit_rotation("ZZ")),
    "crx": GateKind(_controlled(_rx)),
    "cry": GateKind(_controlled(_ry), real=True),
    "crz": GateKind(_controlled(_rz)),
    "cp": GateKind(_controlled(_phase)),
    "cu1": GateKind(_controlled(_phase)),
}


@dataclass
class FlatGate:
    """One gate of a flattened circuit: name, qubit indices and parameters."""

    name: str
    qubits: tuple[int, ...]
    params: tuple  # floats or ParameterExpressions, in the gate's own order
    matrix: np.ndarray | None = None  # set for gates without free parameters

    @property
    def is_parametric(self) -> bool:
        return self.matrix is None


def _is_free(value) -> bool:
    return isinstance(value, ParameterExpression) and len(value.parameters) > 0


def check_unitary(circuit: QuantumCircuit) -> None:
    """QkitError unless every instruction, inside custom instructions too, is unitary."""
    for instruction in circuit.data:
        op = instruction.operation
        if op.name in IGNORED:
            continue
        if op.name in NON_UNITARY or instruction.clbits:
            raise QkitError(
                f"circuit contains non-unitary instruction '{op.name}' (measure/"
                "reset/classical control); the engine takes unitary circuits only"
            )
        if not isinstance(op, Gate) and op.definition is not None:
            check_unitary(op.definition)


def flatten(circuit: QuantumCircuit) -> list[FlatGate]:
    """Unroll a circuit (``check_unitary`` passed) into native parametric and constant-matrix gates.

    Decomposition happens once, at layer construction: a parametric gate qkit has no
    builder for (``cu``, ``rzx``, ``xx_plus_yy``, a user's custom gate, ...) is replaced by
    its Qiskit definition, recursively.
    """
    gates: list[FlatGate] = []
    _flatten_into(circuit, list(range(circuit.num_qubits)), gates)
    return gates


def _flatten_into(circuit: QuantumCircuit, qubit_map: list[int], out: list[FlatGate]) -> None:
    for instruction in circuit.data:
        op = instruction.operation
        qubits = tuple(qubit_map[circuit.find_bit(q).index] for q in instruction.qubits)
        if op.name in IGNORED:
            continue
        params = tuple(op.params)
        parametric = any(_is_free(p) for p in params)
        if parametric and op.name in NATIVE:
            out.append(FlatGate(op.name, qubits, params))
        elif not parametric and isinstance(op, Gate):
            out.append(FlatGate(op.name, qubits, params, matrix=_constant_matrix(op)))
        elif op.definition is not None:
            _flatten_into(op.definition, list(qubits), out)
        else:
            raise QkitError(f"gate '{op.name}' has no matrix and no definition; qkit cannot simulate it")


def _constant_matrix(op: Gate) -> np.ndarray:
    try:
        return np.asarray(Operator(op).data, dtype=np.complex128)
    except Exception as exc:  # Qiskit raises several types here
        raise QkitError(f"cannot get the matrix of gate '{op.name}': {exc}") from exc
