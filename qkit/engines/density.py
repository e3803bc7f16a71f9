"""The density engine: the layer's circuit as a device runs it, with the device's calibrated noise, in torch.

The circuit is transpiled for a backend (``fake_<name>``, ``snapshot:<name>`` or an IBM
device, resolved as in the hardware path) on a chosen layout (the calibrated one by default,
``qkit.hardware.layout``), reduced to the physical qubits it touches, and compiled once:

* the state is the density matrix's Pauli components over the k active qubits, and each
  gate or channel acts through its Pauli transfer matrix (``qkit.engines.ptm``);
* every instruction is followed by its channel from ``qkit.noise.model`` (Aer's depolarizing
  and thermal relaxation, each source scaled); constant gates are fused with their channel
  at compile time, parametric ones get their PTM each forward pass (RZ, the only one in IBM
  ISA circuits, in closed form: ``qkit.engines.density_prefix``), and a run of single-qubit
  instructions on one qubit is multiplied into one 4x4 PTM before it touches the state
  (the steps are planned in ``qkit.engines.density_steps``);
* an observable term is read in its basis with the readout error of every read qubit:
  ``<Z>`` becomes ``(P(0|1) - P(1|0)) + (1 - P(0|1) - P(1|0)) <Z>`` per qubit, expanded
  over subsets of the term's qubits, so outputs are a gather and a matmul of ``v``
  (``qkit.engines.density_readout``).

Exact noisy expectation values with autograd gradients (inputs and weights), float32 or
float64, CPU or CUDA. ``shots=N`` returns estimates from N shots per row and measurement
basis, sampled from the exact noisy outcome distribution; gradients then flow through the
exact values (straight-through). Aer's density-matrix simulation of the same ISA circuit
with ``DeviceNoise.noise_model()`` is the reference (tests/engines/test_engine_density.py).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch

from qkit.engines.base import Engine, LayerProgram
from qkit.engines.density_prefix import apply_chain, plan_prefix_parts, rotation_prefix_local, rz_ptms
from qkit.engines.density_readout import plan_readout
from qkit.engines.density_steps import plan_steps
from qkit.engines.density_suffix import plan_suffix, readout_of_product, readout_rows
from qkit.engines.ptm import apply_ptm, ptm_map
from qkit.engines.spec import Capabilities
from qkit.engines.statevector import kron_rows
from qkit.errors import QkitError

MAX_QUBITS = 10  # 4^10 Pauli components per sample: 8 MB in float64
_SKIPPED = {"barrier", "delay", "measure"}


def _error(message: str) -> QkitError:
    return QkitError(f"engine 'density': {message}")


class DensityEngine(Engine):
    """Exact noisy expectation values from density matrices under a device's calibrated noise.

    Options:
        backend: ``fake_<name>``, ``snapshot:<name>``, a snapshot ``.json`` or an IBM device.
        layout: ``calibrated`` (least estimated output error), ``default`` (the preset pass
            manager's) or the physical qubits of the circuit's qubits.
        scale: noise scale of every source (0 noiseless, 1 calibrated, 2 twice the error rates);
            gate_scale, readout_scale, relaxation_scale override it per source.
        shots: estimates from this many shots per row and basis (None: exact values).
        seed: seeds the shot sampling.
    """

    name = "density"
    capabilities = Capabilities(differentiable=True, shots=True, noise=True)

    def __init__(
        self,
        program: LayerProgram,
        dtype: torch.dtype = torch.float32,
        *,
        backend: str | None = None,
        layout: Any = "calibrated",
        scale: float = 1.0,
        gate_scale: float | None = None,
        readout_scale: float | None = None,
        relaxation_scale: float | None = None,
        shots: int | None = None,
        seed: int | None = None,
    ):
        super().__init__(program, dtype)
        from qkit.noise.model import NoiseScales

        if backend is None or not isinstance(backend, str):
            raise _error("option backend is required (fake_lagos, snapshot:ibm_lagos, ...)")
        if shots is not None and (isinstance(shots, bool) or not isinstance(shots, int) or shots < 1):
            raise _error(f"shots must be an integer >= 1 or null, got {shots!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise _error(f"seed must be an integer or null, got {seed!r}")
        try:
            self.scales = NoiseScales.of(scale, gate_scale, readout_scale, relaxation_scale)
        except QkitError as exc:
            raise _error(str(exc)) from None
        from qkit.hardware.prepare import parse_layout

        layout = parse_layout(layout)
        self.shots, self.seed = shots, seed
        self.cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        self._compile(backend, layout)
        self._generator = None

    # ------------------------------------------------------------------ compile
    def _compile(self, backend: str, layout: Any) -> None:
        from qkit.hardware.backends import resolve_backend
        from qkit.hardware.layout import transpile_with_layout
        from qkit.hardware.prepare import choose_physical_qubits
        from qkit.noise.model import device_noise, readout_errors

        resolved = resolve_backend(backend)
        device = resolved.backend
        chosen = choose_physical_qubits(self.program, resolved, layout, None)
        isa = transpile_with_layout(self.program.circuit, device, chosen["physical_qubits"])
        self.backend_name, self.backend_kind, self.backend_source = resolved.name, resolved.kind, resolved.source
        self.layout_info, self.physical_qubits, self.isa_circuit = chosen, chosen["physical_qubits"], isa
        observables = [op.apply_layout(isa.layout) for op in self.program.observables]
        read = {i for op in observables for p in op.paulis for i in np.flatnonzero(p.x | p.z)}
        instructions = [
            (inst.operation, tuple(isa.find_bit(q).index for q in inst.qubits))
            for inst in isa.data
            if inst.operation.name not in _SKIPPED
        ]
        active = sorted({q for _, qubits in instructions for q in qubits} | {int(q) for q in read})
        if len(active) > MAX_QUBITS:
            raise _error(
                f"the transpiled circuit touches {len(active)} qubits; at most {MAX_QUBITS} fit in "
                "density matrices (use the estimator engine)"
            )
        self.active_qubits, self.k = active, len(active)
        self.noise = device_noise(device.target, readout_errors(resolved), self.scales, set(active))
        self.calibration_date = resolved.calibration().calibration_date
        plan_steps(self, instructions, {q: j for j, q in enumerate(active)})
        plan_readout(self, observables)
        self._prefix_parts = plan_prefix_parts(self)
        self._suffix_plan = plan_suffix(self)
        # Groups read only by the suffix's runs in closed form get no matrices (those read angles).
        outside = self.prefix + self.middle + [data for kind, data in self._suffix_plan[0] if kind == "step"]
        used = {item[1].group for _, _, items in outside for item in items if item[0] == "param"}
        self._rows_only = frozenset(self.angles.groups) - used if self._suffix_closed else frozenset()

    def _chain(self, items: list) -> list:
        """A run as ``[("const", [4, 4]) | ("param", GateRef), ...]`` in time order, noise
        split off its gate and neighbouring constants multiplied together."""
        out = []
        for item in items:
            parts = (
                [("const", getattr(self, item[1])[0])]
                if item[0] == "const"
                else [("param", item[1])] + ([("const", getattr(self, item[2]))] if item[2] is not None else [])
            )
            for kind, value in parts:
                if kind == "const" and out and out[-1][0] == "const":
                    out[-1] = ("const", value @ out[-1][1])
                else:
                    out.append((kind, value))
        return out

    def _buffer(self, array: np.ndarray) -> str:
        name = f"_ptm{len(self._buffers)}"
        self.register_buffer(name, torch.tensor(array, dtype=self.dtype), persistent=False)
        return name

    def _load(self, item: tuple) -> tuple:
        if item[0] == "const":
            return ("const", self._buffer(item[1][None]))
        n = len(item[1].qubits)
        if n not in self._bases:
            self.register_buffer(f"_ptm_map{n}", torch.tensor(ptm_map(n), dtype=self.cdtype), persistent=False)
            self._bases[n] = 2**n
        return item

    # ------------------------------------------------------------------ execution
    def _group_ptms(self, mats: dict) -> dict:
        """PTMs of every parametric gate, one batched computation per group:
        ``R_ij = Tr(P_i U P_j U^dagger) / 2^n`` from the unitaries ``[B|1, gates, 2^n, 2^n]``,
        as one constant matrix times the entries of U (x) conj(U) (see ``ptm_map``): a few
        elementwise ops and one matmul, instead of batched products of tiny matrices."""
        out = {key: u for key, u in mats.items() if key in self._rz}  # PTMs already (``rz_ptms``)
        for key, u in ((key, u) for key, u in mats.items() if key not in self._rz):
            u = u if u.dim() == 4 else u[None]
            n = u.shape[-1].bit_length() - 1
            pairs = (u[..., :, :, None, None] * u.conj()[..., None, None, :, :]).flatten(-4)  # [.., (b c a d)]
            r = (pairs @ getattr(self, f"_ptm_map{n}")).real
            out[key] = r.unflatten(-1, (4**n, 4**n))
        return out

    def _builders(self, rows: bool = False) -> dict:
        """The embedding's RZ is left to density_prefix, RZ PTMs are in closed form, and with
        ``rows`` the groups only the suffix's closed-form runs read are left out."""
        rz = partial(rz_ptms, basis=self._rz_basis) if self._rz else None
        skip = self._skip | (self._rows_only if rows else frozenset())
        return {**{key: rz for key in self._rz}, **{key: None for key in skip}}

    def _run_ptm(self, items: list, ptms: dict) -> torch.Tensor:
        """The product of a run's PTMs, first item applied first. Batch-independent neighbours
        (constants, noise, weight-only gates) are multiplied together before any batched one,
        so a run costs one batched matmul per input-dependent gate, not one per item."""
        factors = []
        for item in items:
            if item[0] == "const":
                factors.append(getattr(self, item[1]))
                continue
            _, ref, noise = item
            factors.append(ptms[ref.group][:, ref.position])
            if noise is not None:
                factors.append(getattr(self, noise)[None])
        merged = []
        for f in factors:
            if merged and f.shape[0] == 1 and merged[-1].shape[0] == 1:
                merged[-1] = f @ merged[-1]
            else:
                merged.append(f)
        matrix = merged[0]
        for f in merged[1:]:
            matrix = f @ matrix
        return matrix

    def _product_state(self, x: torch.Tensor, ptms: dict) -> torch.Tensor:
        """``[b|1, 4^k]`` after the prefix: the Kronecker product of the local states (qubit 0
        the least significant digit)."""
        return kron_rows(self._local_states(x, ptms)[::-1])

    def _local_states(self, x: torch.Tensor, ptms: dict, absorbed: torch.Tensor | None = None) -> list:
        """``[b|1, 4]`` per qubit after the prefix: each qubit's run on its own 4 components."""
        local = [self._local0[None] for _ in range(self.k)]
        if self._rotation is not None:
            v = rotation_prefix_local(self, self._rotation, x, ptms, absorbed)
            for q, vq in zip(self._prefix_qubits, v.unbind(1)):
                local[q] = vq
        elif self._stacked_prefix is not None:
            v = apply_chain(self, self._stacked_prefix, ptms, self._local0.expand(1, len(self.prefix), 4)[..., None])
            for q, vq in zip(self._prefix_qubits, v[..., 0].unbind(1)):
                local[q] = vq
        else:
            for _, (q,), items in self.prefix:
                local[q] = (self._run_ptm(items, ptms) @ local[q][..., None])[..., 0]
        return local

    def _run_steps(self, steps: list, state: torch.Tensor, ptms: dict) -> torch.Tensor:
        for _, qubits, items in steps:
            matrix = self._run_ptm(items, ptms)
            if matrix.shape[0] > state.shape[0]:  # the first input-dependent step
                state = state.expand(matrix.shape[0], -1)
            state = apply_ptm(state, matrix, qubits, self.k)
        return state

    def noisy_state(self, inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Pauli components ``[B, 4^k]`` of the final density matrix (before readout)."""
        x, w = inputs.to(self.dtype), weights.to(self.dtype)
        ptms = self._group_ptms(self.angles.matrices(x, w, self._builders()))
        state = self._run_steps(self.middle + self.suffix, self._product_state(x, ptms), ptms)
        return state.expand(x.shape[0], -1) if state.shape[0] != x.shape[0] else state

    def execute(self, inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Expectation values ``[B, n_observables]`` of the noisy state (exact, or sampled with ``shots``)."""
        if self.shots is not None:
            state = self.noisy_state(inputs, weights)
            exact = state[:, self._obs_idx] @ self._obs_coef
            from qkit.noise.shots import sample_values

            sampled = sample_values(self, state.detach())
            return (exact + (sampled - exact).detach()).to(inputs.dtype)
        x, w = inputs.to(self.dtype), weights.to(self.dtype)
        ptms = self._group_ptms(self.angles.matrices(x, w, self._builders(rows=True)))
        rows, absorbed = readout_rows(self, ptms, x, w)  # the batch-independent rest, Heisenberg picture
        if self.middle:
            exact = self._run_steps(self.middle, self._product_state(x, ptms), ptms) @ rows.T
        else:  # a product state: never built in full
            exact = readout_of_product(
                self._local_states(x, ptms, absorbed)[::-1], rows, getattr(self, "_suffix_split", None)
            )
        return (exact.expand(x.shape[0], -1) if exact.shape[0] != x.shape[0] else exact).to(inputs.dtype)

    def reseed(self, seed: int | None) -> None:
        """Restart shot sampling from ``seed`` (a study's repetition r uses seed + r)."""
        self.seed, self._generator = seed, None

    def generator(self, device: torch.device) -> torch.Generator | None:
        if self.seed is None:
            return None
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
        return self._generator

    def describe(self) -> dict:
        """What this engine simulates, for run records: device, calibration, layout, noise, shots."""
        return {
            "engine": self.name,
            "backend": self.backend_name,
            "kind": self.backend_kind,
            "source": self.backend_source,
            "calibration_date": self.calibration_date,
            "physical_qubits": self.physical_qubits,
            "active_qubits": self.active_qubits,
            "layout": {k: v for k, v in self.layout_info.items() if k != "candidates"},
            "scales": self.scales.to_dict(),
            "shots": self.shots,
            "readout": {str(q): list(p) for q, p in sorted(self.noise.readout.items())},
        }

    def extra_repr(self) -> str:
        return (
            f"backend={self.backend_name}, qubits={self.physical_qubits}, active={self.active_qubits}, "
            f"scales={self.scales.to_dict()}, shots={self.shots}"
        )
