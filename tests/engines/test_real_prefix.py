"""Real product-state prefixes of complex circuits (``qkit.engines.real_prefix``).

The statevector engine builds an angle embedding's product state in real arithmetic and
folds its constant phases into the next fused unitary. These tests check which prefixes it
plans that way, that a prefix whose phase moves with the inputs or the weights is left
complex, and that every plan gives Qiskit's values and the connector's gradients, on the
fused path (batch >= 2^n) and gate by gate (batch < 2^n).
"""

import numpy as np
import pytest
import torch
from qiskit.circuit import ParameterVector, QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from qkit.circuits import build_circuit, pauli_observables
from qkit.quantum import QuantumLayer

from test_quantum import reference


def _ansatz(qc: QuantumCircuit, w: ParameterVector, n: int) -> None:
    """A complex weight-only block: Rot-like rotations, then a CNOT ring."""
    for k in range(n):
        qc.rz(w[3 * k], k)
        qc.ry(w[3 * k + 1], k)
        qc.rz(w[3 * k + 2], k)
    for k in range(n):
        qc.cx(k, (k + 1) % n)


def embedded(embedding: str, n: int = 3):
    """``embedding`` on every qubit, then ``_ansatz``; observables <Z_k> and a mixed term."""
    x, w = ParameterVector("x", n), ParameterVector("w", 3 * n + 1)
    qc = QuantumCircuit(n)
    for k in range(n):
        if embedding == "rx":
            qc.rx(x[k], k)
        elif embedding == "ry-scaled":
            qc.ry(0.5 * x[k] + 0.2, k)
        elif embedding == "rx-twice":  # two layers: the probe's factoring, no column path
            qc.rx(x[k], k)
            qc.rx(2 * x[k] - 0.3, k)
        elif embedding == "sx-rz":  # RZ(x) SX|0>: the phase moves with x
            qc.sx(k)
            qc.rz(x[k], k)
        elif embedding == "u2-weight":  # U2(w, x)|0> = (1, e^{i w})/sqrt2: set by a weight
            qc.u(np.pi / 2, w[3 * n], x[k], k)
        elif embedding == "h-ry":  # RY on H|0>: columns at the angle + pi/2
            qc.h(k)
            qc.ry(x[k], k)
        elif embedding == "sx-rx":  # SX|0> = e^{i pi/4} RX(pi/2)|0>: a global phase more
            qc.sx(k)
            qc.rx(x[k], k)
        elif embedding == "rx-reupload":  # the RX group also has a gate after the CNOTs
            qc.rx(x[k], k)
    if embedding == "rx-reupload":
        qc.cx(0, 1)
        qc.rx(x[0] + w[0], 1)
    _ansatz(qc, w, n)
    used = set(qc.parameters)
    obs = pauli_observables(n) + [SparsePauliOp(["XY" + "Z" * (n - 2)], [0.7])]
    return qc, list(x), [p for p in w if p in used], obs


# embedding -> (prefix built from real columns, phases factored out)
PLANS = {
    "rx": (True, True),
    "ry-scaled": (True, True),
    "rx-twice": (False, True),
    "sx-rz": (False, False),
    "u2-weight": (False, False),
    "h-ry": (True, True),
    "sx-rx": (False, True),
    "rx-reupload": (False, True),
}


@pytest.mark.parametrize("embedding", sorted(PLANS))
def test_plan_and_values_match_qiskit_and_connector(embedding):
    qc, x, w, obs = embedded(embedding)
    rng = np.random.default_rng(7)
    weights = rng.uniform(-np.pi, np.pi, len(w))
    layer = QuantumLayer(qc, x, w, obs, dtype=torch.float64, initial_weights=weights)
    columns, phased = PLANS[embedding]
    assert bool(layer.engine._column_groups) == columns
    assert (layer.engine._phases is not None) == phased
    # The fused path (batch >= 2^n) on 9 rows equals the gate-by-gate path on the same rows in
    # chunks of 3, which equals Qiskit's values and the connector's gradients: the connector's
    # parameter-shift gradients, the cost of this test, are taken on one chunk only.
    inputs = rng.uniform(-2, 2, (2**qc.num_qubits + 1, len(x)))
    fused = _outputs_and_grads(layer, inputs)
    chunks = [_outputs_and_grads(layer, inputs[i : i + 3]) for i in range(0, len(inputs), 3)]
    assert layer.engine.fused_for(len(inputs)) and not layer.engine.fused_for(3)
    np.testing.assert_allclose(fused[0], np.concatenate([c[0] for c in chunks]), atol=1e-12)
    np.testing.assert_allclose(fused[1], np.concatenate([c[1] for c in chunks]), atol=1e-12)
    np.testing.assert_allclose(fused[2], sum(c[2] for c in chunks), atol=1e-12)
    np.testing.assert_allclose(fused[0], reference(qc, x, w, obs, inputs, weights), atol=1e-9)
    connector = QuantumLayer(qc, x, w, obs, engine="connector", initial_weights=weights)
    _, gx_ref, gw_ref = _outputs_and_grads(connector, inputs[:3])
    np.testing.assert_allclose(chunks[0][1], gx_ref, atol=1e-5)
    np.testing.assert_allclose(chunks[0][2], gw_ref, atol=1e-5)


def _outputs_and_grads(model, inputs):
    """Outputs, input gradients and weight gradients of a weighted sum of the outputs."""
    model.weight.grad = None
    xi = torch.tensor(inputs, requires_grad=True)
    out = model(xi)
    (out * torch.arange(1.0, out.shape[1] + 1, dtype=out.dtype)).sum().backward()
    return out.detach().double().numpy(), xi.grad.numpy(), model.weight.grad.double().numpy()


@pytest.mark.parametrize(
    "name, options, columns",
    [
        ("strongly_entangling", {"rotation": "x"}, True),
        ("strongly_entangling", {}, True),
        ("basic_entangler", {}, True),
        ("efficient_su2", {}, True),
        ("quanv", {}, True),
        ("real_amplitudes", {}, True),
        ("dressed", {}, True),
    ],
)
def test_builtin_embeddings_take_the_real_path(name, options, columns):
    """Every built-in angle embedding builds real columns (dressed's RY acts on H|0>)."""
    spec = build_circuit(name, 4, 2, **options)
    engine = QuantumLayer(spec.circuit, spec.inputs, spec.weights, spec.observables).engine
    assert bool(engine._column_groups) == columns
    # Complex circuits factor their phases; real ones have none to factor.
    assert (engine._phases is not None) == (not engine.real and columns)


def test_float32_real_prefix_matches_float64():
    qc, x, w, obs = embedded("rx", n=4)
    weights = torch.linspace(-2, 2, len(w), dtype=torch.float64)
    inputs = torch.linspace(-1.5, 1.5, 40 * len(x), dtype=torch.float64).reshape(40, len(x))
    outs = [
        QuantumLayer(qc, x, w, obs, dtype=dtype, initial_weights=weights)(inputs.to(dtype))
        for dtype in (torch.float32, torch.float64)
    ]
    torch.testing.assert_close(outs[0].double(), outs[1], atol=1e-5, rtol=0)
