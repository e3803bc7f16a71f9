"""The circuit compiler: a validated LayerProgram planned, once, as a few batched steps.

This is the part of simulation that does not depend on what the state is. The
statevector engine executes the plan on a batch of state vectors; a density-matrix
engine would execute the same plan on ``rho`` (gate groups, prefix and permutations
carry over as they are). All of it runs at engine construction, in numpy:

1. Angles. Every gate angle is an expression of inputs and weights. Affine expressions
   (``x*pi/2``, ``w0 + 2*w1``, constants) become columns of two matrices, so all angles of
   a batch come from one matmul; other expressions are compiled through sympy to torch.
2. Groups. Parametric gates of one type whose angles come from the same table (inputs,
   or weights only) form a group, so one builder call makes all their matrices.
3. Product-state prefix. Until a qubit meets its first multi-qubit gate, it is in a
   product state, so its single-qubit gates up to its last input-dependent one can run on
   ``[B, n_qubits, 2]`` local vectors (leading constant gates even act on |0> here, at
   compile time); the weight-only gates after it go to the fused body.
4. Body. Constant gates with one nonzero per row (CNOT, CZ, SWAP, X, S, ...) become
   permutation-with-phase steps, and consecutive ones compose into one. A run of gates
   that depends on weights only is planned as one fused step, whose unitary does not
   depend on the batch; inside it, single-qubit gates on distinct qubits form layers
   (one Kronecker product each).
5. Observables. Pauli terms are grouped by their X-mask, so each group costs one gather.

Steps are tuples: ``("perm", src, phase | None)`` (``new[i] = phase[i] * old[src[i]]``),
``("gate", GateRef)``, ``("fused", [("layer", [GateRef, ...]) | gate | perm steps])`` (a layer's
single-qubit gates in time order; a qubit may have several).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from qiskit.circuit import ParameterExpression
from qiskit.quantum_info import Pauli

from qkit.engines.base import LayerProgram
from qkit.engines.gates import NATIVE, FlatGate, flatten

# Functions sympy may emit for non-affine angle expressions, as their torch versions so
# the angles stay differentiable.
_TORCH_FUNCS = {
    "sin": torch.sin,
    "cos": torch.cos,
    "tan": torch.tan,
    "exp": torch.exp,
    "log": torch.log,
    "sqrt": torch.sqrt,
    "Abs": torch.abs,
    "asin": torch.asin,
    "acos": torch.acos,
    "atan": torch.atan,
    "pi": math.pi,
    "E": math.e,
}


@dataclass
class AngleTable:
    """Angles ``theta = x @ a_in + w @ a_w + const`` plus non-affine extra terms."""

    n_inputs: int
    n_weights: int
    columns: list = field(default_factory=list)  # per slot: ({(role, j): coeff}, const)
    nonlinear: list = field(default_factory=list)  # (slot, fn, [("x"|"w", index), ...])

    def add(self, value, index: dict) -> int:
        slot = len(self.columns)
        if not isinstance(value, ParameterExpression) or not value.parameters:
            self.columns.append(({}, float(complex(value).real)))
            return slot
        coeffs = {}
        for p in value.parameters:
            grad = value.gradient(p)
            if isinstance(grad, ParameterExpression) and grad.parameters:
                self.columns.append(({}, 0.0))
                self.nonlinear.append((slot, *_lambdify(value, index)))
                return slot
            coeffs[index[p]] = float(complex(grad).real)
        const = value.bind({p: 0.0 for p in value.parameters})
        self.columns.append((coeffs, float(complex(const).real)))
        return slot

    def matrices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``a_in [n_inputs, slots]``, ``a_w [n_weights, slots]``, ``const [slots]``."""
        m = len(self.columns)
        a_in, a_w = np.zeros((self.n_inputs, m)), np.zeros((self.n_weights, m))
        const = np.zeros(m)
        for slot, (coeffs, c) in enumerate(self.columns):
            const[slot] = c
            for (role, j), value in coeffs.items():
                (a_in if role == "x" else a_w)[j, slot] = value
        return a_in, a_w, const

    @property
    def uses_weights(self) -> bool:
        """Whether any affine angle has a weight term (input gates rarely mix them in)."""
        return any(role == "w" and value != 0 for coeffs, _ in self.columns for (role, _), value in coeffs.items())


def _lambdify(expr: ParameterExpression, index: dict):
    # sympy (~1 s to import) only for the rare non-affine angle: every affine one is a matmul.
    import sympy

    params = sorted(expr.parameters, key=lambda p: p.name)
    sym = expr.sympify()
    symbols = {s.name: s for s in sym.free_symbols}
    fn = sympy.lambdify([symbols[p.name] for p in params], sym, modules=[_TORCH_FUNCS])
    return fn, [index[p] for p in params]


@dataclass
class GateRef:
    """Where a gate's matrix comes from at run time: a constant or a batched group."""

    qubits: tuple[int, ...]
    const: int | None = None  # index into CompiledCircuit.constants
    group: tuple[str, str] | None = None  # (table, gate name) of a batched group
    position: int = 0  # index inside the group


@dataclass
class GateGroup:
    """Angle-table slots ``[n_gates, n_params]`` of the gates one builder call makes."""

    slots: np.ndarray

    @property
    def view(self) -> tuple[int, int, tuple[int, ...]] | None:
        """``(start, stop, shape)`` when the slots are contiguous: read as a view, no gather."""
        start = int(self.slots.flat[0])
        if (self.slots.ravel() == np.arange(start, start + self.slots.size)).all():
            return start, start + self.slots.size, self.slots.shape
        return None


@dataclass
class CompiledCircuit:
    """The plan an engine executes; see the module docstring for the step kinds."""

    n_qubits: int
    real: bool  # every gate matrix is real: the state can stay real
    tables: dict[str, AngleTable]  # "x": angles that depend on inputs, "w": weights only
    groups: dict[tuple[str, str], GateGroup]
    constants: list[np.ndarray]  # constant gate matrices that GateRefs point to
    v0: np.ndarray  # [n_qubits, 2] local states after the leading constant gates
    prefix_layers: list[list[tuple[int, GateRef]]]  # k-th prefix gate of each qubit
    steps: list
    observable_blocks: list[tuple[int, np.ndarray]]  # (X-mask, coefficients [dim, n_obs])

    @property
    def dim(self) -> int:
        return 2**self.n_qubits

    @property
    def fused(self) -> bool:
        """Whether any weight-only run was planned as a fused unitary."""
        return any(step[0] == "fused" for step in self.steps)


def compile_program(program: LayerProgram, fuse: bool = True) -> CompiledCircuit:
    """Plan ``program``; ``fuse=False`` keeps weight-only runs gate by gate."""
    gates = flatten(program.circuit)
    n = program.n_qubits
    real = all(
        g.name in NATIVE and NATIVE[g.name].real if g.is_parametric else np.allclose(g.matrix.imag, 0) for g in gates
    )
    tables, groups, refs, constants = plan_angles(program, gates)
    prefix, body = _split_prefix(gates, refs, n, fuse)
    v0, prefix_layers = _plan_prefix(gates, refs, prefix, n)
    steps = _plan_body(gates, refs, body, n, fuse)
    return CompiledCircuit(
        n, real, tables, groups, constants, v0, prefix_layers, steps, _plan_observables(program.observables, n)
    )


def plan_angles(program: LayerProgram, gates: list[FlatGate]):
    """Give each parametric gate a slot in the input or weight angle table, and a group."""
    index = {q: ("x", j) for j, q in enumerate(program.inputs)}
    index.update({q: ("w", j) for j, q in enumerate(program.weights)})
    n_in, n_w = len(program.inputs), len(program.weights)
    tables = {"x": AngleTable(n_in, n_w), "w": AngleTable(n_in, n_w)}
    members: dict[tuple[str, str], list[list[int]]] = {}
    refs: list[GateRef] = []
    constants: list[np.ndarray] = []
    for g in gates:
        if not g.is_parametric:
            refs.append(GateRef(g.qubits, const=len(constants)))
            constants.append(g.matrix)
            continue
        roles = {index[q][0] for v in g.params if isinstance(v, ParameterExpression) for q in v.parameters}
        # A gate with any input in its angles varies per sample; only pure-weight gates
        # are the same for the whole batch, which is what makes them fusable.
        table = "x" if "x" in roles else "w"
        slots = [tables[table].add(v, index) for v in g.params]
        group = members.setdefault((table, g.name), [])
        refs.append(GateRef(g.qubits, group=(table, g.name), position=len(group)))
        group.append(slots)
    groups = {key: GateGroup(np.asarray(slots)) for key, slots in members.items()}
    return tables, groups, refs, constants


def _split_prefix(gates: list[FlatGate], refs: list[GateRef], n: int, fuse: bool):
    """Single-qubit gates before a qubit's first multi-qubit gate act on a product state.

    When weight-only runs are fused, only up to the qubit's last input-dependent gate: the
    weight-only and constant gates after it (the first layer of an ansatz, e.g. Rot = RZ RY RZ
    on every qubit) join the body, where the fused path multiplies them into the
    batch-independent unitary instead of applying them to every sample's local state. Without
    fusion (wide registers) they stay here: on [B, n, 2] local states they cost far less than
    gate by gate on [B, 2^n] (a 12-qubit dressed circuit ran at 60% of the speed without them).
    """
    entangled = [False] * n
    prefix: list[list[int]] = [[] for _ in range(n)]
    body: list[int] = []
    for i, g in enumerate(gates):
        if len(g.qubits) == 1 and not entangled[g.qubits[0]]:
            prefix[g.qubits[0]].append(i)
        else:
            body.append(i)
            for q in g.qubits:
                entangled[q] = True
    for q, idx in enumerate(prefix):
        if not fuse:
            continue
        inputs = [k for k, i in enumerate(idx) if refs[i].group is not None and refs[i].group[0] == "x"]
        keep = inputs[-1] + 1 if inputs else 0
        body.extend(idx[keep:])
        prefix[q] = idx[:keep]
    return prefix, sorted(body)


def _plan_prefix(gates, refs, prefix: list[list[int]], n: int):
    # Leading constant gates act on |0> at compile time; the rest run as layers: the k-th
    # remaining gate of every qubit, so gates of one group run as one batched matmul.
    v0 = np.zeros((n, 2), dtype=complex)
    v0[:, 0] = 1.0
    remaining = []
    for q, idx in enumerate(prefix):
        while idx and not gates[idx[0]].is_parametric:
            v0[q] = gates[idx[0]].matrix @ v0[q]
            idx = idx[1:]
        remaining.append(idx)
    layers = []
    for k in range(max((len(r) for r in remaining), default=0)):
        layers.append([(q, refs[r[k]]) for q, r in enumerate(remaining) if len(r) > k])
    return v0, layers


def _plan_body(gates, refs, body: list[int], n: int, fuse: bool) -> list:
    steps, static = [], []
    for i in body:
        g = gates[i]
        step = _monomial_step(g, n) or ("gate", refs[i])
        static_gate = not g.is_parametric or refs[i].group[0] == "w"
        if static_gate and fuse:
            static.append(step)
            continue
        steps += _static_block(static)
        static = []
        steps.append(step)
    steps += _static_block(static)
    return _drop_trivial_phases(_merge_perms(steps))


def _monomial_step(g: FlatGate, n: int):
    """A constant gate with one nonzero per row is a gather plus phases on the full state."""
    if g.is_parametric or (np.count_nonzero(np.abs(g.matrix) > 1e-12, axis=1) != 1).any():
        return None
    local_src = np.abs(g.matrix).argmax(axis=1)
    local_phase = g.matrix[np.arange(len(local_src)), local_src]
    basis = np.arange(2**n)
    local = sum(((basis >> q) & 1) << j for j, q in enumerate(g.qubits))
    src = basis.copy()
    for j, q in enumerate(g.qubits):
        bit = (local_src[local] >> j) & 1
        src = (src & ~(1 << q)) | (bit << q)
    return ("perm", src, local_phase[local])


def _static_block(steps):
    """A weight-only run becomes one fused step, unless it is only permutations.

    Inside it, the single-qubit gates between two multi-qubit steps form one layer (several
    gates on one qubit are multiplied first, e.g. Rot = RZ RY RZ), which the fused path turns
    into one Kronecker product instead of one gate application each.
    """
    steps = _merge_perms(steps)
    if not any(step[0] == "gate" for step in steps):
        return steps
    grouped = []
    for step in steps:
        single = step[0] == "gate" and len(step[1].qubits) == 1
        if single and grouped and grouped[-1][0] == "layer":
            grouped[-1][1].append(step[1])
        elif single:
            grouped.append(("layer", [step[1]]))
        else:
            grouped.append(step)
    return [("fused", grouped)]


def _merge_perms(steps):
    """Compose consecutive constant permutation/phase steps into one gather."""
    merged = []
    for step in steps:
        if step[0] == "perm" and merged and merged[-1][0] == "perm":
            _, src1, ph1 = merged[-1]
            _, src2, ph2 = step
            # (G2 G1 psi)_i = ph2_i * ph1_{src2_i} * psi_{src1[src2_i]}
            merged[-1] = ("perm", src1[src2], ph2 * ph1[src2])
        else:
            merged.append(step)
    return merged


def _drop_trivial_phases(steps):
    """Phases that are all 1 (CNOT, SWAP, X) become None: a gather, no multiply."""
    out = []
    for step in steps:
        if step[0] == "perm":
            step = ("perm", step[1], None if np.allclose(step[2], 1.0) else step[2])
        elif step[0] == "fused":
            step = ("fused", _drop_trivial_phases(step[1]))
        out.append(step)
    return out


def _plan_observables(observables, n: int) -> list[tuple[int, np.ndarray]]:
    # <P> = sum_i conj(psi_i) P[i, i^m] psi_{i^m} for a Pauli with X-mask m, so terms
    # sharing m share one gather; C_m[i, k] sums coefficient * P[i, i^m] for output k.
    blocks: dict[int, np.ndarray] = {}
    for k, op in enumerate(observables):
        for label, coeff in op.to_list():
            mat = Pauli(label).to_matrix(sparse=True).tocsr()
            mask = int(mat.indices[0])  # row 0's nonzero column is 0 ^ m = m
            block = blocks.setdefault(mask, np.zeros((2**n, len(observables)), complex))
            block[:, k] += coeff * mat.data
    return sorted(blocks.items(), key=lambda item: item[0])
