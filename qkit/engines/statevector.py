"""The statevector engine: a Qiskit circuit run as batched torch operations on state vectors.

``qkit.engines.compiler`` plans the circuit once, at construction (angle tables, gate
groups, product-state prefix, permutations, fusable weight-only runs); this module turns
the plan into torch buffers and executes it on a batch of state vectors ``[B, 2^n]``:

- the prefix runs on ``[B, n_qubits, 2]`` local vectors, and the full state is their
  Kronecker product;
- permutation/phase steps are one gather (and a multiply); other gates act through a
  reshape and a matmul;
- a fused weight-only run becomes one dense ``[2^n, 2^n]`` unitary per forward pass,
  built on the identity so its cost does not depend on the batch, when the batch is at
  least ``2^n`` (below that, applying its gates to the batch is cheaper) and the register
  is at most ``fuse_max_qubits`` wide;
- expectation values: one gather and one matmul per X-mask group of Pauli terms.

Gate matrices are batched over gates of the same type, so the number of torch operations
per forward pass depends on the circuit's structure, not on its width or the batch size.
Circuits whose gates are all real (RY, CNOT, H, ...) run in real arithmetic.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from qkit.engines.angles import GateAngles
from qkit.engines.base import Engine, LayerProgram
from qkit.engines.compiler import GateRef, compile_program
from qkit.engines.gates import NATIVE
from qkit.engines.real_prefix import plan_real_prefix
from qkit.engines.spec import Capabilities
from qkit.errors import QkitError

# Fuse weight-only runs into a dense unitary up to this many qubits (a [2^n, 2^n] matrix
# per forward pass). Above it the per-gate path on the batch is cheaper.
FUSE_MAX_QUBITS = 7


class StatevectorEngine(Engine):
    """Exact expectation values by batched statevector simulation in torch (autograd).

    Option ``fuse_max_qubits``: fuse weight-only runs into one unitary up to this register
    width (0 never fuses).
    """

    name = "statevector"
    capabilities = Capabilities(differentiable=True)

    def __init__(
        self, program: LayerProgram, dtype: torch.dtype = torch.float32, fuse_max_qubits: int = FUSE_MAX_QUBITS
    ):
        super().__init__(program, dtype)
        if isinstance(fuse_max_qubits, bool) or not isinstance(fuse_max_qubits, int) or fuse_max_qubits < 0:
            raise QkitError(f"engine 'statevector': fuse_max_qubits must be an integer >= 0, got {fuse_max_qubits!r}")
        self.n = program.n_qubits
        self.dim = 2**self.n
        self.fuse = self.n <= fuse_max_qubits
        self.compiled = compile_program(program, fuse=self.fuse)
        self.real = self.compiled.real
        self.cdtype = dtype if self.real else (torch.complex128 if dtype == torch.float64 else torch.complex64)
        self._n_buffers = 0
        self._constants: dict[int, str] = {}  # CompiledCircuit.constants index -> buffer
        self.angles = GateAngles(self.compiled.tables, self.compiled.groups, dtype, self.cdtype)
        self._v0 = self._buffer(self._complex(self.compiled.v0)[None])
        self._v0_is_zero = bool(np.all(self.compiled.v0 == np.array([1.0, 0.0])))
        self.prefix_layers = self.compiled.prefix_layers
        for layer in self.prefix_layers:
            for _, ref in layer:
                self._load_constant(ref)
        self.steps = self._load_steps(self.compiled.steps)
        self._has_fused = self.compiled.fused
        self._load_observables(self.compiled.observable_blocks)
        # Angle embeddings: a real product state, phases folded into the next unitary.
        columns, phases = plan_real_prefix(self.compiled)
        self._column_groups = {
            group: None if offsets is None else self._buffer(offsets.to(dtype)) for group, offsets in columns.items()
        }
        self._phases = (
            None
            if phases is None
            else (
                self._buffer(phases.conj().to(self.cdtype)),
                self._buffer(kron_rows([p[None] for p in phases.flip(0)])[0].to(self.cdtype)),
            )
        )

    def fused_for(self, batch: int) -> bool:
        """Whether a batch of this size runs fused steps as one unitary (else gate by gate)."""
        return self._has_fused and batch >= self.dim

    # ------------------------------------------------------- the plan as buffers
    def _buffer(self, tensor: torch.Tensor) -> str:
        # Non-persistent: the layer's state dict holds its weight only, whatever the engine.
        name = f"_const{self._n_buffers}"
        self._n_buffers += 1
        self.register_buffer(name, tensor, persistent=False)
        return name

    def _complex(self, array: np.ndarray) -> torch.Tensor:
        return torch.tensor(array.real if self.real else array, dtype=self.cdtype)

    def _load_constant(self, ref: GateRef) -> None:
        if ref.const is not None and ref.const not in self._constants:
            self._constants[ref.const] = self._buffer(self._complex(self.compiled.constants[ref.const]))

    def _load_steps(self, steps) -> list:
        """The compiled steps with their arrays replaced by buffer names."""
        loaded = []
        for step in steps:
            if step[0] == "perm":
                src, phase = step[1], step[2]
                phase = None if phase is None else self._buffer(self._complex(phase))
                step = ("perm", self._buffer(torch.tensor(src, dtype=torch.long)), phase)
            elif step[0] == "fused":
                step = ("fused", self._load_steps(step[1]), self._kron_plan(step[1]))
            elif step[0] == "layer":
                for ref in step[1]:
                    self._load_constant(ref)
            else:
                self._load_constant(step[1])
            loaded.append(step)
        return loaded

    def _kron_plan(self, steps) -> tuple | None:
        """How ``_layer_krons`` gathers a fused run's single-qubit matrices in a few indexing ops.

        A bank ``[identity, constants..., each weight group's matrices...]`` is concatenated per
        forward pass; ``index[j, l, i]`` is the bank row of the j-th gate (in time order) on the
        i-th qubit (most significant first) of layer l, identity where a qubit has fewer gates.
        Selecting the matrices one by one instead cost two ops per gate, in forward and backward.
        """
        layers = [step[1] for step in steps if step[0] == "layer"]
        if not layers:
            return None
        consts = sorted({ref.const for refs in layers for ref in refs if ref.const is not None})
        groups = sorted({ref.group for refs in layers for ref in refs if ref.const is None})
        offsets, row = {}, 1 + len(consts)
        for group in groups:
            offsets[group] = row
            row += len(self.compiled.groups[group].slots)
        rows = [[[] for _ in range(self.n)] for _ in layers]
        for layer_no, refs in enumerate(layers):
            for ref in refs:
                i = self.n - 1 - ref.qubits[0]
                rows[layer_no][i].append(
                    1 + consts.index(ref.const) if ref.const is not None else offsets[ref.group] + ref.position
                )
        depth = max(len(r) for layer in rows for r in layer)
        index = torch.zeros(depth, len(layers), self.n, dtype=torch.long)
        for layer_no, layer in enumerate(rows):
            for i, gates in enumerate(layer):
                index[: len(gates), layer_no, i] = torch.tensor(gates, dtype=torch.long)
        static = torch.cat(
            [torch.eye(2, dtype=self.cdtype)[None]] + [self._complex(self.compiled.constants[c])[None] for c in consts]
        )
        return self._buffer(static), tuple(groups), tuple(self._buffer(row) for row in index)

    def _load_observables(self, blocks) -> None:
        self.observable_blocks = []
        for mask, block in blocks:
            gather = None if mask == 0 else self._buffer(torch.arange(self.dim) ^ mask)
            real_part = torch.tensor(block.real, dtype=self.dtype)
            if gather is None and not self.real:
                # |amplitude|^2 @ C as (re, im interleaved)^2 @ C with every row twice: the
                # sum over (re, im) happens inside the matmul, one op less forward and backward.
                real_part = real_part.repeat_interleave(2, dim=0)
            real_part = self._buffer(real_part)
            imag = (
                None
                if self.real or np.allclose(block.imag, 0)
                else self._buffer(torch.tensor(block.imag, dtype=self.dtype))
            )
            self.observable_blocks.append((gather, real_part, imag))

    # ------------------------------------------------------------------ execution
    def execute(self, inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Expectation values ``[B, n_observables]`` of the exact state, differentiable in both arguments."""
        x, w = inputs.to(self.dtype), weights.to(self.dtype)
        columns = {
            group: partial(_column, group, None if name is None else getattr(self, name))
            for group, name in self._column_groups.items()
        }  # the embedding's real columns
        mats = self.angles.matrices(x, w, columns)
        local = self._prefix_local(mats)
        steps = self.steps
        if self._phases is None:
            state = self._product(local, x.shape[0])
        else:
            state, steps = self._phased_product(local, mats, x.shape[0])
        state = self._run(steps, state, mats)
        return self._expectations(state).to(inputs.dtype)

    def _phased_product(self, local: torch.Tensor, mats: dict, batch: int):
        """The product state as ``d`` times a real product (``qkit.engines.real_prefix``), and
        the steps left to run: ``d`` goes into the first fused unitary when there is one."""
        conj_d, d = (getattr(self, name) for name in self._phases)
        real = local if self._column_groups else (local * conj_d).real
        state = self._product(real, batch)
        first = self.steps[0] if self.steps else None
        if first is None or first[0] != "fused" or not self.fused_for(batch):
            return state * d, self.steps
        fused = d[:, None] * self._fused_matrix(first[1], mats, state.device, first[2])
        # real [B, dim] @ complex [dim, dim], as one real matmul on the (re, im) pairs
        flat = torch.view_as_real(fused).reshape(self.dim, 2 * self.dim)
        return torch.view_as_complex((state @ flat).view(batch, self.dim, 2)), self.steps[1:]

    def _matrix(self, ref: GateRef, mats: dict):
        if ref.const is not None:
            return getattr(self, self._constants[ref.const])[None]
        m = mats[ref.group]
        return m[None, ref.position] if m.dim() == 3 else m[:, ref.position]

    def _prefix_local(self, mats: dict) -> torch.Tensor:
        """``[b|1, n, 2]``: every qubit's local state after the product-state prefix."""
        if self._column_groups:  # an angle embedding's real first columns, built as such
            return self._layer_matrices(self.prefix_layers[0], mats, item_dims=1)
        local = v0 = getattr(self, self._v0)  # [1, n, 2]
        for layer in self.prefix_layers:
            qubits = [q for q, _ in layer]  # ascending
            if len(qubits) == self.n and local is v0 and self._v0_is_zero:
                # Every qubit still in |0>: the gates' first columns are the new local states
                # (a view; a batched matmul of B*n tiny matrices costs ~1 ms at B = 4096).
                local = self._layer_matrices(layer, mats)[..., 0]
            elif len(qubits) == self.n:  # the common case: one gate on every qubit, no gather
                local = (self._layer_matrices(layer, mats) @ local[..., None])[..., 0]
            else:
                new = (self._layer_matrices(layer, mats) @ local[:, qubits, :, None])[..., 0]
                size = max(new.shape[0], local.shape[0])
                local = local.expand(size, -1, -1).index_copy(
                    1, torch.tensor(qubits, device=new.device), new.expand(size, -1, -1)
                )
        return local

    def _product(self, local: torch.Tensor, batch: int) -> torch.Tensor:
        state = kron_rows(local.unbind(1)[::-1])  # qubit n-1 the most significant
        return state.expand(batch, -1) if state.shape[0] != batch else state

    def _layer_matrices(self, layer, mats: dict, item_dims: int = 2):
        """Matrices ``[b|1, len(layer), 2, 2]`` of one prefix layer (one gate per qubit), or their
        first columns ``[b|1, len(layer), 2]`` (``item_dims=1``, a ``_column_groups`` layer)."""
        group = layer[0][1].group
        if group is not None and all(ref.group == group for _, ref in layer):
            m = mats[group]
            m = m[None] if m.dim() == 1 + item_dims else m
            start = layer[0][1].position
            positions = [ref.position for _, ref in layer]
            if positions == list(range(start, start + len(positions))):
                return m[:, start : start + len(positions)]  # a view, no copy
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
                state = apply_gate(state, self._matrix(step[1], mats), step[1].qubits, self.n)
            elif kind == "layer":
                for ref in step[1]:
                    state = apply_gate(state, self._matrix(ref, mats), ref.qubits, self.n)
            elif self.fused_for(state.shape[0]):
                state = state @ self._fused_matrix(step[1], mats, state.device, step[2])
            else:  # a small batch: applying the run's gates costs less than building it
                state = self._run(step[1], state, mats)
        return state

    def _fused_matrix(self, steps, mats, device, plan) -> torch.Tensor:
        """F with ``state @ F`` equal to running ``steps``; its cost is independent of B."""
        krons = iter(self._layer_krons(plan, mats).unbind(0)) if plan is not None else iter(())
        fused = None
        for step in steps:
            if step[0] == "layer":
                kron_t = next(krons)
                fused = kron_t if fused is None else fused @ kron_t
                continue
            if fused is None:
                fused = torch.eye(self.dim, dtype=self.cdtype, device=device)
            fused = self._run([step], fused, mats)
        return fused

    def _layer_krons(self, plan: tuple, mats) -> torch.Tensor:
        """``[L, dim, dim]``: kron(M_{n-1}, ..., M_0)^T of every layer's weight-only single-qubit
        gates (identity elsewhere), all layers at once (see ``_kron_plan``)."""
        static, groups, index = plan
        bank = torch.cat([getattr(self, static)] + [mats[g] for g in groups]) if groups else getattr(self, static)
        m = bank[getattr(self, index[0])]  # [L, n, 2, 2], most significant qubit first
        for row in index[1:]:  # a later gate on a qubit multiplies from the left
            m = bank[getattr(self, row)] @ m
        return kron_matrices(m.unbind(1)).transpose(1, 2)  # a view: state @ kron^T

    def _expectations(self, state: torch.Tensor) -> torch.Tensor:
        out = None
        for gather, real_part, imag in self.observable_blocks:
            partner = state if gather is None else state[:, getattr(self, gather)]
            if self.real:
                term = (state * partner) @ getattr(self, real_part)
            elif gather is None:  # diagonal terms: |amplitude|^2, without a complex product
                parts = torch.view_as_real(state).reshape(state.shape[0], 2 * self.dim)
                term = (parts * parts) @ getattr(self, real_part)
            else:
                v = state.conj() * partner
                term = v.real @ getattr(self, real_part)
                if imag is not None:
                    term = term - v.imag @ getattr(self, imag)
            out = term if out is None else out + term
        return out


def _column(group: tuple[str, str], offset: torch.Tensor | None, theta: torch.Tensor) -> torch.Tensor:
    """A ``_column_groups`` group's real first columns at its angles (plus the start's offset)."""
    return NATIVE[group[1]].column0[0](theta if offset is None else theta + offset)


def kron_rows(parts) -> torch.Tensor:
    """Row-wise Kronecker product of ``[b|1, d_i]`` factors, the first the most significant.

    Built as a balanced tree: the two halves' products, then one outer product of those. The
    last op is then ``[B, 2^(n/2)] x [B, 2^(n/2)]`` rather than ``[B, 2^(n-1)] x [B, 2]``, whose
    broadcast over a short inner axis, and its backward sum, cost ~30% more at a few hundred rows.
    """
    if len(parts) == 1:
        return parts[0]
    mid = len(parts) // 2
    hi, lo = kron_rows(parts[:mid]), kron_rows(parts[mid:])
    return (hi[:, :, None] * lo[:, None, :]).reshape(max(hi.shape[0], lo.shape[0]), -1)


def kron_matrices(parts) -> torch.Tensor:
    """Batched Kronecker product of ``[L, d_i, d_i]`` factors, the first the most significant,
    as a balanced tree of broadcast products (like ``kron_rows``)."""
    if len(parts) == 1:
        return parts[0]
    mid = len(parts) // 2
    hi, lo = kron_matrices(parts[:mid]), kron_matrices(parts[mid:])
    return (hi[:, :, None, :, None] * lo[:, None, :, None, :]).reshape(
        hi.shape[0], hi.shape[1] * lo.shape[1], hi.shape[2] * lo.shape[2]
    )


def apply_gate(state: torch.Tensor, matrix: torch.Tensor, qubits: tuple[int, ...], n: int, base: int = 2):
    """Apply a gate matrix ``[b|1, base^k, base^k]`` (Qiskit order) to states ``[b, base^n]``.

    ``base`` 2: state vectors; 4: density matrices in the Pauli basis (``qkit.engines.density``).
    """
    b = state.shape[0]
    if len(qubits) == 1:
        q = qubits[0]
        s = state.reshape(b, base ** (n - 1 - q), base, base**q)
        return (matrix[:, None] @ s).reshape(b, -1)
    k = len(qubits)
    axes = [1 + (n - 1 - q) for q in reversed(qubits)]
    s = state.reshape((b,) + (base,) * n).movedim(axes, list(range(1, k + 1)))
    shape = s.shape
    s = (matrix @ s.reshape(b, base**k, -1)).reshape(shape)
    return s.movedim(list(range(1, k + 1)), axes).reshape(b, -1)
