"""QuantumLayer engines agree with Qiskit: outputs with Statevector, gradients with the
qiskit-machine-learning connector, on the built-in circuits and on random circuits over
Qiskit's whole standard gate set."""

import numpy as np
import pytest
import torch
from qiskit.circuit import ParameterVector, QuantumCircuit
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.quantum_info import SparsePauliOp, Statevector

from qkit.circuits import build_circuit, list_circuits, load_qasm, save_qasm
from qkit.errors import QkitError
from qkit.quantum import ENGINE_NAMES, QuantumLayer

GATES = {
    name: g
    for name, g in get_standard_gate_name_mapping().items()
    if name not in {"measure", "reset", "delay", "global_phase"}
}


def random_circuit(seed: int):
    """A random circuit over the standard gates with input/weight angle expressions."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 9))
    n_in, n_w = int(rng.integers(1, 5)), int(rng.integers(1, 6))
    x, w = ParameterVector("x", n_in), ParameterVector("w", n_w)
    qc = QuantumCircuit(n)
    choices = sorted(name for name, g in GATES.items() if g.num_qubits <= n)
    for _ in range(int(rng.integers(3, 16))):
        gate = GATES[str(rng.choice(choices))]
        params = [_random_angle(rng, x, w) for _ in gate.params]
        qubits = [int(q) for q in rng.choice(n, size=gate.num_qubits, replace=False)]
        qc.append(type(gate)(*params) if params else gate, qubits)
    for p in list(x) + list(w):  # every declared parameter must appear in the circuit
        if p not in qc.parameters:
            qc.rx(p * 0.7 + 0.1, int(rng.integers(n)))
    return qc, list(x), list(w), _random_observables(rng, n)


def _random_angle(rng, x, w):
    kind = rng.integers(5)
    xi, wj = x[int(rng.integers(len(x)))], w[int(rng.integers(len(w)))]
    if kind == 0:
        return float(rng.uniform(-3, 3))  # a constant angle
    if kind == 1:
        return xi * float(rng.uniform(0.5, 2)) + float(rng.uniform(-1, 1))
    if kind == 2:
        return wj
    if kind == 3:
        return xi + 2 * wj  # inputs and weights mixed in one angle
    return xi * wj  # not affine: compiled through sympy


def _random_observables(rng, n):
    observables = []
    for _ in range(int(rng.integers(1, 4))):
        labels = ["".join(rng.choice(list("IXYZ"), size=n)) for _ in range(int(rng.integers(1, 4)))]
        observables.append(SparsePauliOp(labels, rng.uniform(-1, 1, len(labels))))
    return observables


def reference(qc, x, w, obs, inputs, weights):
    rows = []
    for sample in inputs:
        bound = qc.assign_parameters({**dict(zip(x, sample)), **dict(zip(w, weights))})
        state = Statevector(bound)
        rows.append([state.expectation_value(o).real for o in obs])
    return np.array(rows)


def outputs_and_grads(layer, inputs):
    x = torch.tensor(inputs, dtype=torch.float64, requires_grad=True)
    out = layer(x)
    out.sum().backward()
    return out.detach().double().numpy(), x.grad.double().numpy(), layer.weight.grad.double().numpy()


def assert_engines_agree(qc, x, w, obs, batch, seed=0):
    rng = np.random.default_rng(seed)
    inputs = rng.uniform(-2, 2, (batch, len(x)))
    weights = rng.uniform(-np.pi, np.pi, len(w))
    fast = QuantumLayer(qc, x, w, obs, dtype=torch.float64, initial_weights=weights)
    ref = QuantumLayer(qc, x, w, obs, engine="connector", initial_weights=weights)
    out, gx, gw = outputs_and_grads(fast, inputs)
    out_ref, gx_ref, gw_ref = outputs_and_grads(ref, inputs)
    np.testing.assert_allclose(out, reference(qc, x, w, obs, inputs, weights), atol=1e-6)
    np.testing.assert_allclose(gx, gx_ref, atol=1e-5)
    np.testing.assert_allclose(gw, gw_ref, atol=1e-5)


# 60 random circuits against the connector's parameter-shift gradients; the first 5 in the fast loop.
@pytest.mark.parametrize("seed", [pytest.param(s, marks=[pytest.mark.slow] if s >= 5 else []) for s in range(60)])
def test_random_circuits_match_statevector_and_connector(seed):
    qc, x, w, obs = random_circuit(seed)
    assert_engines_agree(qc, x, w, obs, batch=3, seed=seed)


@pytest.mark.parametrize("name", list_circuits())
@pytest.mark.parametrize("batch", [1, pytest.param(9, marks=pytest.mark.slow)])
def test_builtin_circuits_match(name, batch):
    # Batch 9 costs seconds of parameter shift; test_engines checks these circuits against
    # Qiskit at batches 3, 16 and 19 (the fused path) in the fast tier.
    spec = build_circuit(name, n_qubits=4, depth=2)
    assert_engines_agree(spec.circuit, spec.inputs, spec.weights, spec.observables, batch)


@pytest.mark.parametrize("name", list_circuits())
def test_float32_default_close_to_float64(name):
    spec = build_circuit(name, n_qubits=4, depth=2)
    layer64 = QuantumLayer.from_spec(spec, dtype=torch.float64)
    layer32 = QuantumLayer.from_spec(spec, initial_weights=layer64.weight.detach())
    x = torch.rand(64, spec.n_inputs, dtype=torch.float64)
    out32 = layer32(x.float())
    assert out32.dtype == torch.float32 and layer32.weight.dtype == torch.float32
    torch.testing.assert_close(out32.double(), layer64(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("n_qubits", [8, 10])
def test_wide_circuits_match_statevector(n_qubits):
    """Wide registers take the unfused per-gate path; check it against Qiskit."""
    spec = build_circuit("strongly_entangling", n_qubits=n_qubits, depth=2)
    rng = np.random.default_rng(n_qubits)
    inputs, weights = rng.uniform(-1, 1, (4, n_qubits)), rng.uniform(-3, 3, spec.n_weights)
    layer = QuantumLayer.from_spec(spec, dtype=torch.float64, initial_weights=weights)
    out = layer(torch.tensor(inputs)).detach().numpy()
    expected = reference(spec.circuit, spec.inputs, spec.weights, spec.observables, inputs, weights)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_large_batch_takes_fused_path_and_agrees_with_small_batches():
    spec = build_circuit("dressed", n_qubits=4, depth=3)
    layer = QuantumLayer.from_spec(spec, dtype=torch.float64)
    x = torch.rand(40, 4, dtype=torch.float64)  # 40 >= 16 = 2^4: fused weight unitary
    small = torch.cat([layer(x[i : i + 5]) for i in range(0, 40, 5)])  # 5 < 16: gate by gate
    torch.testing.assert_close(layer(x), small, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", list_circuits())
def test_qasm_round_trip_gives_identical_outputs(name, tmp_path):
    spec = build_circuit(name, n_qubits=4, depth=2)
    loaded = load_qasm(save_qasm(spec, tmp_path / f"{name}.qasm"))
    original = QuantumLayer.from_spec(spec, dtype=torch.float64)
    again = QuantumLayer.from_spec(loaded, dtype=torch.float64, initial_weights=original.weight.detach())
    x = torch.rand(7, spec.n_inputs, dtype=torch.float64)
    torch.testing.assert_close(again(x), original(x), atol=1e-12, rtol=0)


def test_weight_vector_follows_weight_params_order():
    spec = build_circuit("strongly_entangling", n_qubits=3, depth=1)
    order = np.random.default_rng(0).permutation(spec.n_weights)
    values = np.random.default_rng(1).uniform(-1, 1, spec.n_weights)
    layer = QuantumLayer.from_spec(spec, dtype=torch.float64, initial_weights=values)
    shuffled = QuantumLayer(
        spec.circuit,
        spec.inputs,
        [spec.weights[i] for i in order],
        spec.observables,
        dtype=torch.float64,
        initial_weights=values[order],
    )
    x = torch.rand(5, 3, dtype=torch.float64)
    torch.testing.assert_close(shuffled(x), layer(x))


def test_single_sample_without_batch_dimension():
    spec = build_circuit("dressed", n_qubits=3)
    layer = QuantumLayer.from_spec(spec)
    x = torch.rand(3)
    torch.testing.assert_close(layer(x), layer(x[None])[0])


def test_state_dict_is_the_same_for_every_engine():
    spec = build_circuit("dressed", n_qubits=2)
    options = {"estimator": {"backend": "fake_manila"}, "density": {"backend": "fake_manila"}}  # required options
    keys = {
        tuple(QuantumLayer.from_spec(spec, engine=e, engine_options=options.get(e)).state_dict()) for e in ENGINE_NAMES
    }
    assert keys == {("weight",)}


def test_weights_train_towards_a_target():
    """Gradients are usable: a few Adam steps fit a target expectation value."""
    torch.manual_seed(0)
    spec = build_circuit("dressed", n_qubits=2, depth=1)
    layer = QuantumLayer.from_spec(spec)
    opt = torch.optim.Adam(layer.parameters(), lr=0.1)
    x, target = torch.zeros(8, 2), torch.full((8, 2), -0.5)
    first = None
    for _ in range(60):
        loss = ((layer(x) - target) ** 2).mean()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.01 * first


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    spec = build_circuit("strongly_entangling", n_qubits=5, depth=2)
    cpu = QuantumLayer.from_spec(spec, dtype=torch.float64)
    gpu = QuantumLayer.from_spec(spec, dtype=torch.float64, device="cuda", initial_weights=cpu.weight.detach())
    x = torch.rand(33, 5, dtype=torch.float64)
    torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x))
    gpu(x.cuda()).sum().backward()
    assert gpu.weight.grad.device.type == "cuda"


# --------------------------------------------------------------------- validation
def _small():
    x, w = ParameterVector("x", 2), ParameterVector("w", 2)
    qc = QuantumCircuit(2)
    qc.ry(x[0], 0)
    qc.ry(x[1], 1)
    qc.cx(0, 1)
    qc.rx(w[0], 0)
    qc.rz(w[1], 1)
    return qc, list(x), list(w)


@pytest.mark.parametrize(
    "case, message",
    [
        ("extra_weight", "unused"),
        ("missing_weight", "neither inputs nor weights"),
        ("overlap", "both inputs and weights"),
        ("wide_observable", "acts on 3 qubits"),
        ("complex_observable", "not Hermitian"),
        ("measure", "non-unitary"),
        ("reset", "non-unitary"),
        ("nested_reset", "non-unitary"),
        ("engine", "unknown engine"),
        ("initial_weights", "initial_weights has"),
    ],
)
def test_invalid_layers_fail_before_compute(case, message):
    qc, x, w = _small()
    obs = [SparsePauliOp("ZI")]
    kwargs = {}
    if case == "extra_weight":
        w = w + list(ParameterVector("v", 1))
    elif case == "missing_weight":
        w = w[:1]
    elif case == "overlap":
        w = w + x[:1]
    elif case == "wide_observable":
        obs = [SparsePauliOp("ZII")]
    elif case == "complex_observable":
        obs = [SparsePauliOp(["XY"], [1j])]
    elif case == "measure":
        qc.measure_all()
    elif case == "reset":
        qc.reset(0)
    elif case == "nested_reset":  # hidden inside a custom instruction
        inner = QuantumCircuit(2)
        inner.reset(1)
        qc.append(inner.to_instruction(), [0, 1])
    elif case == "engine":
        kwargs["engine"] = "quantum_magic"
    elif case == "initial_weights":
        kwargs["initial_weights"] = [0.1, 0.2, 0.3]
    with pytest.raises(QkitError, match=message) as info:
        QuantumLayer(qc, x, w, obs, **kwargs)
    assert "\n" not in str(info.value)


def test_wrong_input_width_is_a_clear_error():
    qc, x, w = _small()
    layer = QuantumLayer(qc, x, w, ["ZI"])
    with pytest.raises(QkitError, match=r"shape \[batch, 2\]"):
        layer(torch.rand(4, 3))
