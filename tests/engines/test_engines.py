"""The statevector engine agrees with Qiskit on the path training takes.

Training runs batches of 32+ on 4-5 qubits, so the statevector engine evaluates the
weight-only part of the circuit as one fused unitary (it does for batches >= 2^n). The
parity tests below run every built-in circuit at batches below and above that threshold
and compare outputs with ``qiskit.quantum_info.Statevector`` and gradients with central
finite differences of the same Qiskit expectation values: every derivative in the slow
tier, derivatives along random directions (a few Qiskit runs per sample) in the fast one.
Registry, EngineSpec, options and capabilities: ``test_engines_api.py``.
"""

import functools
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from qiskit.circuit import ParameterVector, QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector

from qkit.circuits import build_circuit, list_circuits, pauli_observables
from qkit.quantum import QuantumLayer

from test_quantum import random_circuit

FD_STEP = 1e-5  # central differences: truncation ~1e-10, rounding ~1e-11 in float64
TOLERANCES = {torch.float64: (1e-9, 1e-6), torch.float32: (1e-5, 1e-3)}  # outputs, grads


# ------------------------------------------------------------------ Qiskit reference
def reuploading(n_qubits: int = 4):
    """Inputs re-uploaded between weight blocks, so fused runs sit between input gates;
    the blocks hold a two-qubit weight gate, a non-affine weight angle and a complex
    constant gate that is not a permutation."""
    x, w = ParameterVector("x", n_qubits), ParameterVector("w", 3 * n_qubits)
    qc = QuantumCircuit(n_qubits)
    for k in range(n_qubits):
        qc.ry(x[k], k)
    for block in range(2):
        for k in range(n_qubits - 1):
            qc.cx(k, k + 1)
        for k in range(n_qubits):
            qc.rx(w[block * n_qubits + k], k)
        qc.crz(w[2 * n_qubits] * w[2 * n_qubits + 1], 0, n_qubits - 1)
        qc.sx(1)
        qc.rzz(w[2 * n_qubits + 2 + block], 1, 2)
        for k in range(n_qubits):
            qc.rz(0.5 * x[k] + 0.1, k)  # re-upload
    used = set(qc.parameters)
    mixed = SparsePauliOp(["XX" + "I" * (n_qubits - 2), "Y" * n_qubits], [0.5, -0.25])
    obs = pauli_observables(n_qubits) + [mixed]
    return SimpleNamespace(circuit=qc, inputs=list(x), weights=[p for p in w if p in used], observables=obs)


def make_spec(case):
    name, n_qubits, depth, options = case
    return reuploading(n_qubits) if name == "reuploading" else build_circuit(name, n_qubits, depth, **dict(options))


def qiskit_outputs(spec, x_rows: np.ndarray, w_rows: np.ndarray) -> np.ndarray:
    """Statevector expectation values for each (inputs, weights) row pair."""
    params = list(spec.circuit.parameters)  # assign_parameters binds a sequence in this order
    at_x = [params.index(p) for p in spec.inputs]
    at_w = [params.index(p) for p in spec.weights]
    values = np.empty((len(x_rows), len(params)))
    values[:, at_x], values[:, at_w] = x_rows, w_rows
    rows = []
    for row in values:
        state = Statevector(spec.circuit.assign_parameters(row))
        rows.append([state.expectation_value(o).real for o in spec.observables])
    return np.array(rows)


@dataclass
class Parity:
    """Inputs, weights and what Qiskit says about them, per sample.

    The loss is ``sum_b coeffs[b] . out[b]``. ``fd_x[b, k]`` is its central-difference
    derivative along input direction ``dirs_x[k]`` of sample b, ``fd_w[b, k]`` sample b's
    share of the derivative along weight direction ``dirs_w[k]``. With identity directions
    these are the full gradients; random directions are a cheaper check of the same thing.
    """

    spec: object
    inputs: np.ndarray
    weights: np.ndarray
    coeffs: np.ndarray
    outputs: np.ndarray
    dirs_x: np.ndarray
    dirs_w: np.ndarray
    fd_x: np.ndarray
    fd_w: np.ndarray

    @property
    def batches(self):  # below the fused threshold, at it, and above it
        dim = 2**self.spec.circuit.num_qubits
        return 3, dim, dim + 3


@functools.cache
def parity(case, full: bool) -> Parity:
    spec = make_spec(case)
    n_in, n_w = len(spec.inputs), len(spec.weights)
    rng = np.random.default_rng(len(spec.weights) * 31 + n_in)
    batch = 2**spec.circuit.num_qubits + 3
    inputs, weights = rng.uniform(-1.5, 1.5, (batch, n_in)), rng.uniform(-np.pi, np.pi, n_w)
    coeffs = rng.normal(size=(batch, len(spec.observables)))
    if full:
        dirs_x, dirs_w = np.eye(n_in), np.eye(n_w)
    else:
        dirs_x, dirs_w = rng.normal(size=(2, n_in)), rng.normal(size=(2, n_w))
    x_rows, w_rows = [inputs], [np.tile(weights, (batch, 1))]
    for d in dirs_x:  # +step, then -step, for every sample
        x_rows += [inputs + FD_STEP * d, inputs - FD_STEP * d]
        w_rows += [w_rows[0]] * 2
    for d in dirs_w:
        x_rows += [inputs] * 2
        w_rows += [w_rows[0] + FD_STEP * d, w_rows[0] - FD_STEP * d]
    values = qiskit_outputs(spec, np.concatenate(x_rows), np.concatenate(w_rows))
    loss = (values.reshape(-1, batch, values.shape[-1]) * coeffs).sum(-1)  # [1 + 2K, batch]
    fd = (loss[1::2] - loss[2::2]).T / (2 * FD_STEP)  # [batch, K]
    return Parity(
        spec, inputs, weights, coeffs, values[:batch], dirs_x, dirs_w, fd[:, : len(dirs_x)], fd[:, len(dirs_x) :]
    )


def check_parity(p: Parity, dtype: torch.dtype) -> None:
    atol_out, atol_grad = TOLERANCES[dtype]
    spec = p.spec
    layer = QuantumLayer(
        spec.circuit, spec.inputs, spec.weights, spec.observables, dtype=dtype, initial_weights=p.weights
    )
    dim = 2**spec.circuit.num_qubits
    assert layer.engine.compiled.fused  # every case has a weight-only run to fuse
    for batch in p.batches:
        # The fused unitary is used exactly when the batch reaches 2^n: both paths are checked.
        assert layer.engine.fused_for(batch) == (batch >= dim)
        layer.weight.grad = None
        x = torch.tensor(p.inputs[:batch], dtype=dtype, requires_grad=True)
        out = layer(x)
        (out * torch.tensor(p.coeffs[:batch], dtype=dtype)).sum().backward()
        where = f"batch {batch}, {dtype}"
        np.testing.assert_allclose(
            out.detach().double().numpy(), p.outputs[:batch], atol=atol_out, rtol=0, err_msg=f"outputs, {where}"
        )
        np.testing.assert_allclose(
            x.grad.double().numpy() @ p.dirs_x.T,
            p.fd_x[:batch],
            atol=atol_grad,
            rtol=0,
            err_msg=f"input grads, {where}",
        )
        np.testing.assert_allclose(
            p.dirs_w @ layer.weight.grad.double().numpy(),
            p.fd_w[:batch].sum(0),
            atol=atol_grad,
            rtol=0,
            err_msg=f"weight grads, {where}",
        )


CASES_4 = [(name, 4, 2, ()) for name in list_circuits()] + [("reuploading", 4, 0, ())]
CASES_5 = [("strongly_entangling", 5, 2, (("readout", "y"),)), ("real_amplitudes", 5, 1, ())]


def _cases(cases):
    return [pytest.param(case, id=f"{case[0]}-q{case[1]}") for case in cases]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", _cases(CASES_4 + CASES_5[:1]))
def test_statevector_matches_qiskit_along_random_directions(case, dtype):
    """Outputs, and gradients projected on random directions, at batches 3, 2^n, 2^n + 3."""
    check_parity(parity(case, full=False), dtype)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", _cases(CASES_4 + CASES_5))
def test_statevector_gradients_match_qiskit_finite_differences(case, dtype):
    """Every input and weight derivative against central differences of Qiskit's values."""
    check_parity(parity(case, full=True), dtype)


def _random_seeds():
    # 7-8 qubit circuits (a 256x256 fused unitary, batch 257) take seconds: slow tier.
    widths = {seed: random_circuit(seed)[0].num_qubits for seed in range(60)}
    return [pytest.param(seed, marks=[pytest.mark.slow] if n >= 7 else []) for seed, n in widths.items()]


@pytest.mark.parametrize("seed", _random_seeds())
def test_fused_path_matches_gate_by_gate_on_random_circuits(seed):
    """Random circuits over the whole standard gate set, at a batch that takes the fused
    path, against the same engine told never to fuse (which test_quantum checks against
    Qiskit and the connector)."""
    qc, x, w, obs = random_circuit(seed)
    # Up to 8 qubits here, one more than the default fusion limit, so every circuit fuses.
    fused = QuantumLayer(qc, x, w, obs, dtype=torch.float64, engine_options={"fuse_max_qubits": 8})
    plain = QuantumLayer(
        qc, x, w, obs, dtype=torch.float64, initial_weights=fused.weight.detach(), engine_options={"fuse_max_qubits": 0}
    )
    assert not plain.engine.compiled.fused
    batch = 2**qc.num_qubits + 1
    assert fused.engine.fused_for(batch) == fused.engine.compiled.fused
    inputs = torch.rand(batch, len(x), dtype=torch.float64) * 4 - 2
    results = []
    for layer in (fused, plain):
        xi = inputs.clone().requires_grad_(True)
        out = layer(xi)
        out.sum().backward()
        results.append((out.detach(), xi.grad, layer.weight.grad))
    for got, expected in zip(*results):
        torch.testing.assert_close(got, expected, atol=1e-10, rtol=0)
