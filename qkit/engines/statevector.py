"""The statevector engine: a Qiskit circuit compiled once into batched torch operations.

Compilation (at construction) turns the circuit into a short program:

1. Angles. Every gate angle is an expression of inputs and weights. Affine expressions
   (``x*pi/2``, ``w0 + 2*w1``, constants) become two matrices, so all angles of a batch
   come from one matmul; other expressions are compiled through sympy to torch.
2. Product-state prefix. Until a qubit meets its first multi-qubit gate, it is in a
   product state, so embeddings run on ``[B, n_qubits, 2]`` local vectors and the full
   state is their Kronecker product: no full-state gate application for them.
3. Body. Constant permutation/phase gates (CNOT, CZ, SWAP, X, S, ...) in a row compose
   into one gather; other gates act on the state through a reshape and a matmul. A run of
   gates that depends on weights only is fused into one dense unitary per forward pass
   (built on a ``[dim, dim]`` identity, so its cost does not depend on the batch) when the
   register is small enough for that to pay off.
4. Observables. Any SparsePauliOp: Pauli terms are grouped by their X-mask, so each group
   costs one gather and one matmul over the whole batch.

Gate matrices are batched over gates of the same type, so the number of torch operations
per forward pass depends on the circuit's structure, not on its width or the batch size.
Circuits whose gates are all real (RY, CNOT, H, ...) run in real arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import sympy
import torch
from qiskit.circuit import ParameterExpression
from qiskit.quantum_info import Pauli

from qkit.engines.base import Engine, LayerProgram, register_engine
from qkit.engines.gates import NATIVE, FlatGate, flatten

# Fuse weight-only runs into a dense unitary up to this many qubits (a [2^n, 2^n] matrix
# per forward pass). Above it the per-gate path on the batch is cheaper.
FUSE_MAX_QUBITS = 7
_TORCH_FUNCS = {"sin": torch.sin, "cos": torch.cos, "tan": torch.tan, "exp": torch.exp,
                "log": torch.log, "sqrt": torch.sqrt, "Abs": torch.abs, "asin": torch.asin,
                "acos": torch.acos, "atan": torch.atan, "pi": math.pi, "E": math.e}


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

    def matrices(self, dtype):
        m = len(self.columns)
        a_in, a_w = np.zeros((self.n_inputs, m)), np.zeros((self.n_weights, m))
        const = np.zeros(m)
        for slot, (coeffs, c) in enumerate(self.columns):
            const[slot] = c
            for (role, j), value in coeffs.items():
                (a_in if role == "x" else a_w)[j, slot] = value
        as_t = lambda a: torch.tensor(a, dtype=dtype)  # noqa: E731
        return as_t(a_in), as_t(a_w), as_t(const)


def _lambdify(expr: ParameterExpression, index: dict):
    params = sorted(expr.parameters, key=lambda p: p.name)
    sym = expr.sympify()
    symbols = {s.name: s for s in sym.free_symbols}
    fn = sympy.lambdify([symbols[p.name] for p in params], sym, modules=[_TORCH_FUNCS])
    return fn, [index[p] for p in params]


@dataclass
class GateRef:
    """Where a gate's matrix comes from at run time: a constant buffer or a batched group."""

    qubits: tuple[int, ...]
    const: str | None = None  # buffer name of a constant matrix
    group: tuple | None = None  # (table, gate name) of a batched group
    position: int = 0  # index inside the group


@register_engine
class StatevectorEngine(Engine):
    """Exact expectation values by batched statevector simulation in torch (autograd)."""

    name = "statevector"

    def __init__(self, program: LayerProgram, dtype: torch.dtype = torch.float32,
                 fuse_max_qubits: int = FUSE_MAX_QUBITS):
        super().__init__(program, dtype)
        self.n = program.n_qubits
        self.dim = 2 ** self.n
        gates = flatten(program.circuit)
        self.real = all(g.name in NATIVE and NATIVE[g.name].real if g.is_parametric
                        else np.allclose(g.matrix.imag, 0) for g in gates)
        self.cdtype = dtype if self.real else (torch.complex128 if dtype == torch.float64
                                               else torch.complex64)
        self.fuse = self.n <= fuse_max_qubits
        self._n_buffers = 0
        self._compile_angles(gates)
        prefix, body = self._split_prefix(gates)
        self._compile_prefix(prefix)
        self._compile_body(body)
        self._compile_observables(program.observables)

    # ---------------------------------------------------------------- compilation
    def _buffer(self, tensor: torch.Tensor) -> str:
        name = f"_const{self._n_buffers}"
        self._n_buffers += 1
        self.register_buffer(name, tensor, persistent=False)
        return name

    def _matrix_buffer(self, matrix: np.ndarray) -> str:
        data = matrix.real if self.real else matrix
        return self._buffer(torch.tensor(data, dtype=self.cdtype))

    def _compile_angles(self, gates: list[FlatGate]) -> None:
        """Give each parametric gate a slot in the input or weight angle table."""
        p = self.program
        index = {q: ("x", j) for j, q in enumerate(p.inputs)}
        index.update({q: ("w", j) for j, q in enumerate(p.weights)})
        self.tables = {"x": AngleTable(len(p.inputs), len(p.weights)),
                       "w": AngleTable(len(p.inputs), len(p.weights))}
        self.groups: dict[tuple, list[list[int]]] = {}  # (table, name) -> slots per gate
        self.refs: dict[int, GateRef] = {}
        for i, g in enumerate(gates):
            if not g.is_parametric:
                self.refs[i] = GateRef(g.qubits, const=self._matrix_buffer(g.matrix))
                continue
            roles = {index[q][0] for v in g.params if isinstance(v, ParameterExpression)
                     for q in v.parameters}
            table = "x" if "x" in roles else "w"
            slots = [self.tables[table].add(v, index) for v in g.params]
            members = self.groups.setdefault((table, g.name), [])
            self.refs[i] = GateRef(g.qubits, group=(table, g.name), position=len(members))
            members.append(slots)
        self._slot_views = {}  # contiguous slots are read as a view instead of a gather
        for key, members in self.groups.items():
            slots = np.asarray(members)
            start = int(slots.flat[0])
            if (slots.ravel() == np.arange(start, start + slots.size)).all():
                self._slot_views[key] = (start, start + slots.size, slots.shape)
            else:
                self.register_buffer(f"_slots_{key[0]}_{key[1]}", torch.tensor(members),
                                     persistent=False)
        for role, table in self.tables.items():
            a_in, a_w, const = table.matrices(self.dtype)
            self.register_buffer(f"_a_in_{role}", a_in, persistent=False)
            self.register_buffer(f"_a_w_{role}", a_w, persistent=False)
            self.register_buffer(f"_const_{role}", const, persistent=False)
        # Input gates rarely mix in weights; skipping the zero term saves autograd ops.
        self._x_uses_weights = bool(self._a_w_x.abs().sum() > 0)
        self._gates = gates

    def _split_prefix(self, gates):
        """Single-qubit gates before a qubit's first multi-qubit gate act on a product state."""
        entangled = [False] * self.n
        prefix: list[list[int]] = [[] for _ in range(self.n)]
        body: list[int] = []
        for i, g in enumerate(gates):
            if len(g.qubits) == 1 and not entangled[g.qubits[0]]:
                prefix[g.qubits[0]].append(i)
            else:
                body.append(i)
                for q in g.qubits:
                    entangled[q] = True
        return prefix, body

    def _compile_prefix(self, prefix: list[list[int]]) -> None:
        # Leading constant gates act on |0> at compile time; the rest run as layers: the
        # k-th remaining gate of every qubit, batched by gate group.
        v0 = np.zeros((self.n, 2), dtype=complex)
        v0[:, 0] = 1.0
        remaining = []
        for q, idx in enumerate(prefix):
            while idx and not self._gates[idx[0]].is_parametric:
                v0[q] = self._gates[idx[0]].matrix @ v0[q]
                idx = idx[1:]
            remaining.append(idx)
        self._v0 = self._buffer(torch.tensor(v0.real if self.real else v0, dtype=self.cdtype)[None])
        self.prefix_layers = []
        for k in range(max((len(r) for r in remaining), default=0)):
            layer = [(q, self.refs[r[k]]) for q, r in enumerate(remaining) if len(r) > k]
            self.prefix_layers.append(layer)

    def _compile_body(self, body: list[int]) -> None:
        """Steps: ("perm", index, phase), ("gate", ref), ("fused", [steps])."""
        steps, static = [], []
        for i in body:
            g = self._gates[i]
            step = self._monomial_step(g) or ("gate", self.refs[i])
            static_gate = not g.is_parametric or self.refs[i].group[0] == "w"
            if static_gate and self.fuse:
                static.append(step)
                continue
            steps += _static_block(static)
            static = []
            steps.append(step)
        steps += _static_block(static)
        self.steps = _merge_perms(steps)
        self._register_perms(self.steps)

    def _monomial_step(self, g: FlatGate):
        """A constant gate with one nonzero per row is a gather plus phases on the full state."""
        if g.is_parametric or (np.count_nonzero(np.abs(g.matrix) > 1e-12, axis=1) != 1).any():
            return None
        local_src = np.abs(g.matrix).argmax(axis=1)
        local_phase = g.matrix[np.arange(len(local_src)), local_src]
        basis = np.arange(self.dim)
        local = sum(((basis >> q) & 1) << j for j, q in enumerate(g.qubits))
        src = basis.copy()
        for j, q in enumerate(g.qubits):
            bit = (local_src[local] >> j) & 1
            src = (src & ~(1 << q)) | (bit << q)
        return ("perm", src, local_phase[local])

    def _register_perms(self, steps) -> None:
        for k, step in enumerate(steps):
            if step[0] == "perm" and isinstance(step[1], np.ndarray):
                src, phase = step[1], step[2]
                trivial = np.allclose(phase, 1.0)
                phase_name = None if trivial else self._buffer(
                    torch.tensor(phase.real if self.real else phase, dtype=self.cdtype))
                steps[k] = ("perm", self._buffer(torch.tensor(src, dtype=torch.long)), phase_name)
            elif step[0] == "fused":
                self._register_perms(step[1])

    def _compile_observables(self, observables) -> None:
        # <P> = sum_i conj(psi_i) P[i, i^m] psi_{i^m} for a Pauli with X-mask m, so terms
        # sharing m share one gather; C_m[i, k] sums coefficient * P[i, i^m] for output k.
        blocks: dict[int, np.ndarray] = {}
        for k, op in enumerate(observables):
            for label, coeff in op.to_list():
                mat = Pauli(label).to_matrix(sparse=True).tocsr()
                mask = int(mat.indices[0])  # row 0's nonzero column is 0 ^ m = m
                block = blocks.setdefault(mask, np.zeros((self.dim, len(observables)), complex))
                block[:, k] += coeff * mat.data
        self.observable_blocks = []
        for mask, block in sorted(blocks.items()):
            gather = None if mask == 0 else self._buffer(torch.arange(self.dim) ^ mask)
            real_part = self._buffer(torch.tensor(block.real, dtype=self.dtype))
            imag = None if self.real or np.allclose(block.imag, 0) else self._buffer(
                torch.tensor(block.imag, dtype=self.dtype))
            self.observable_blocks.append((gather, real_part, imag))

    # ------------------------------------------------------------------ execution
    def execute(self, inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        x, w = inputs.to(self.dtype), weights.to(self.dtype)
        mats = self._gate_matrices(x, w)
        state = self._prefix_state(mats, x.shape[0])
        state = self._run(self.steps, state, mats)
        return self._expectations(state).to(inputs.dtype)

    def _angles(self, role: str, x, w, table: AngleTable):
        theta = getattr(self, f"_const_{role}")
        if role == "w" or self._x_uses_weights:
            theta = torch.addmv(theta, getattr(self, f"_a_w_{role}").T, w)
        if role == "x":
            theta = torch.addmm(theta, x, self._a_in_x)
        for slot, fn, args in table.nonlinear:
            values = [x[:, j] if r == "x" else w[j] for r, j in args]
            onehot = torch.zeros(theta.shape[-1], dtype=self.dtype, device=theta.device)
            onehot[slot] = 1.0
            theta = theta + fn(*values)[..., None] * onehot
        return theta

    def _gate_matrices(self, x, w) -> dict:
        thetas = {role: self._angles(role, x, w, t) for role, t in self.tables.items()
                  if t.columns}
        mats = {}
        for role, name in self.groups:
            theta = thetas[role]
            if (role, name) in self._slot_views:
                start, stop, shape = self._slot_views[(role, name)]
                theta = theta[..., start:stop].unflatten(-1, shape)
            else:
                theta = theta[..., getattr(self, f"_slots_{role}_{name}")]
            mats[(role, name)] = NATIVE[name].build(theta).to(self.cdtype)
        return mats

    def _matrix(self, ref: GateRef, mats: dict):
        if ref.const is not None:
            return getattr(self, ref.const)[None]
        m = mats[ref.group]
        return m[None, ref.position] if m.dim() == 3 else m[:, ref.position]

    def _prefix_state(self, mats: dict, batch: int) -> torch.Tensor:
        local = getattr(self, self._v0)  # [1, n, 2]
        for layer in self.prefix_layers:
            qubits = [q for q, _ in layer]  # ascending
            if len(qubits) == self.n:  # the common case: one gate on every qubit, no gather
                local = (self._layer_matrices(layer, mats) @ local[..., None])[..., 0]
            else:
                new = (self._layer_matrices(layer, mats) @ local[:, qubits, :, None])[..., 0]
                size = max(new.shape[0], local.shape[0])
                local = local.expand(size, -1, -1).index_copy(
                    1, torch.tensor(qubits, device=new.device), new.expand(size, -1, -1))
        state = local[:, self.n - 1]
        for q in range(self.n - 2, -1, -1):
            state = (state[:, :, None] * local[:, q, None, :]).reshape(local.shape[0], -1)
        return state.expand(batch, -1) if state.shape[0] != batch else state

    def _layer_matrices(self, layer, mats: dict):
        """Matrices ``[b|1, len(layer), 2, 2]`` of one prefix layer (one gate per qubit)."""
        group = layer[0][1].group
        if group is not None and all(ref.group == group for _, ref in layer):
            m = mats[group]
            m = m[None] if m.dim() == 3 else m
            start = layer[0][1].position
            positions = [ref.position for _, ref in layer]
            if positions == list(range(start, start + len(positions))):
                return m[:, start:start + len(positions)]  # a view, no copy
            return m[:, positions]
        parts = [self._matrix(ref, mats) for _, ref in layer]
        size = max(p.shape[0] for p in parts)
        return torch.stack([p.expand(size, -1, -1) for p in parts], dim=1)

    def _run(self, steps, state, mats):
        for step in steps:
            kind = step[0]
            if kind == "perm":
                state = state[:, getattr(self, step[1])]
                if step[2] is not None:
                    state = state * getattr(self, step[2])
            elif kind == "gate":
                state = _apply(state, self._matrix(step[1], mats), step[1].qubits, self.n)
            elif kind == "layer":
                for ref in step[1]:
                    state = _apply(state, self._matrix(ref, mats), ref.qubits, self.n)
            elif state.shape[0] < self.dim:  # fused run, but a small batch: gate by gate
                state = self._run(step[1], state, mats)
            else:
                state = state @ self._fused_matrix(step[1], mats, state.device)
        return state

    def _fused_matrix(self, steps, mats, device) -> torch.Tensor:
        """F with ``state @ F`` equal to running ``steps``; its cost is independent of B."""
        fused = None
        for step in steps:
            if step[0] == "layer":
                kron_t = self._layer_kron(step[1], mats, device).transpose(0, 1)
                fused = kron_t if fused is None else fused @ kron_t
                continue
            if fused is None:
                fused = torch.eye(self.dim, dtype=self.cdtype, device=device)
            fused = self._run([step], fused, mats)
        return fused

    def _layer_kron(self, refs: list[GateRef], mats, device) -> torch.Tensor:
        """kron(M_{n-1}, ..., M_0) of weight-only single-qubit gates, identity elsewhere."""
        by_qubit = {ref.qubits[0]: self._matrix(ref, mats)[0] for ref in refs}
        eye = None
        kron = None
        for q in range(self.n - 1, -1, -1):
            if q in by_qubit:
                m = by_qubit[q]
            else:
                eye = eye if eye is not None else torch.eye(2, dtype=self.cdtype, device=device)
                m = eye
            if kron is None:
                kron = m
            else:
                size = kron.shape[0] * 2
                kron = (kron[:, None, :, None] * m[None, :, None, :]).reshape(size, size)
        return kron

    def _expectations(self, state: torch.Tensor) -> torch.Tensor:
        out = None
        for gather, real_part, imag in self.observable_blocks:
            partner = state if gather is None else state[:, getattr(self, gather)]
            if self.real:
                term = (state * partner) @ getattr(self, real_part)
            else:
                v = state.conj() * partner
                term = v.real @ getattr(self, real_part)
                if imag is not None:
                    term = term - v.imag @ getattr(self, imag)
            out = term if out is None else out + term
        return out


def _apply(state: torch.Tensor, matrix: torch.Tensor, qubits: tuple[int, ...], n: int):
    """Apply a gate matrix ``[b|1, 2^k, 2^k]`` (Qiskit order) to states ``[b, 2^n]``."""
    b = state.shape[0]
    if len(qubits) == 1:
        q = qubits[0]
        s = state.reshape(b, 2 ** (n - 1 - q), 2, 2 ** q)
        return (matrix[:, None] @ s).reshape(b, -1)
    k = len(qubits)
    axes = [1 + (n - 1 - q) for q in reversed(qubits)]
    s = state.reshape((b,) + (2,) * n).movedim(axes, list(range(1, k + 1)))
    shape = s.shape
    s = (matrix @ s.reshape(b, 2 ** k, -1)).reshape(shape)
    return s.movedim(list(range(1, k + 1)), axes).reshape(b, -1)


def _static_block(steps):
    """A weight-only run becomes one fused step, unless it is only permutations.

    Inside it, single-qubit gates on distinct qubits are grouped into layers, which the
    fused path turns into one Kronecker product instead of one gate application each.
    """
    steps = _merge_perms(steps)
    if not any(step[0] == "gate" for step in steps):
        return steps
    grouped = []
    for step in steps:
        single = step[0] == "gate" and len(step[1].qubits) == 1
        if single and grouped and grouped[-1][0] == "layer" \
                and step[1].qubits[0] not in {r.qubits[0] for r in grouped[-1][1]}:
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
        if step[0] == "perm" and merged and merged[-1][0] == "perm" \
                and isinstance(merged[-1][1], np.ndarray):
            _, src1, ph1 = merged[-1]
            _, src2, ph2 = step
            # (G2 G1 psi)_i = ph2_i * ph1_{src2_i} * psi_{src1[src2_i]}
            merged[-1] = ("perm", src1[src2], ph2 * ph1[src2])
        else:
            merged.append(step)
    return merged
