"""Engines: parity of the statevector engine with Qiskit on the path training takes, and the
engine registry, EngineSpec, options and capabilities.

Training runs batches of 32+ on 4-5 qubits, so the statevector engine evaluates the
weight-only part of the circuit as one fused unitary (it does for batches >= 2^n). The
parity tests below run every built-in circuit at batches below and above that threshold
and compare outputs with ``qiskit.quantum_info.Statevector`` and gradients with central
finite differences of the same Qiskit expectation values: every derivative in the slow
tier, derivatives along random directions (a few Qiskit runs per sample) in the fast one.
"""

import functools
import json
import subprocess
import sys
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from qiskit.circuit import ParameterVector, QuantumCircuit
from qiskit.quantum_info import DensityMatrix, Kraus, Operator, SparsePauliOp, Statevector

import qkit.engines
from qkit.circuits import build_circuit, list_circuits, pauli_observables
from qkit.engines import (Capabilities, EngineSpec, engine_names, engine_option_names,
                          get_engine_class, parse_engine_option, register_engine)
from qkit.engines.base import Engine, validate_layer
from qkit.errors import QkitError
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
    return SimpleNamespace(circuit=qc, inputs=list(x), weights=[p for p in w if p in used],
                           observables=obs)


def make_spec(case):
    name, n_qubits, depth, options = case
    return reuploading(n_qubits) if name == "reuploading" else \
        build_circuit(name, n_qubits, depth, **dict(options))


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
        dim = 2 ** self.spec.circuit.num_qubits
        return 3, dim, dim + 3


@functools.cache
def parity(case, full: bool) -> Parity:
    spec = make_spec(case)
    n_in, n_w = len(spec.inputs), len(spec.weights)
    rng = np.random.default_rng(len(spec.weights) * 31 + n_in)
    batch = 2 ** spec.circuit.num_qubits + 3
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
    return Parity(spec, inputs, weights, coeffs, values[:batch], dirs_x, dirs_w,
                  fd[:, :len(dirs_x)], fd[:, len(dirs_x):])


def check_parity(p: Parity, dtype: torch.dtype) -> None:
    atol_out, atol_grad = TOLERANCES[dtype]
    spec = p.spec
    layer = QuantumLayer(spec.circuit, spec.inputs, spec.weights, spec.observables,
                         dtype=dtype, initial_weights=p.weights)
    dim = 2 ** spec.circuit.num_qubits
    assert layer.engine.compiled.fused  # every case has a weight-only run to fuse
    for batch in p.batches:
        # The fused unitary is used exactly when the batch reaches 2^n: both paths are checked.
        assert layer.engine.fused_for(batch) == (batch >= dim)
        layer.weight.grad = None
        x = torch.tensor(p.inputs[:batch], dtype=dtype, requires_grad=True)
        out = layer(x)
        (out * torch.tensor(p.coeffs[:batch], dtype=dtype)).sum().backward()
        where = f"batch {batch}, {dtype}"
        np.testing.assert_allclose(out.detach().double().numpy(), p.outputs[:batch],
                                   atol=atol_out, rtol=0, err_msg=f"outputs, {where}")
        np.testing.assert_allclose(x.grad.double().numpy() @ p.dirs_x.T, p.fd_x[:batch],
                                   atol=atol_grad, rtol=0, err_msg=f"input grads, {where}")
        np.testing.assert_allclose(p.dirs_w @ layer.weight.grad.double().numpy(),
                                   p.fd_w[:batch].sum(0), atol=atol_grad, rtol=0,
                                   err_msg=f"weight grads, {where}")


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
    return [pytest.param(seed, marks=[pytest.mark.slow] if n >= 7 else [])
            for seed, n in widths.items()]


@pytest.mark.parametrize("seed", _random_seeds())
def test_fused_path_matches_gate_by_gate_on_random_circuits(seed):
    """Random circuits over the whole standard gate set, at a batch that takes the fused
    path, against the same engine told never to fuse (which test_quantum checks against
    Qiskit and the connector)."""
    qc, x, w, obs = random_circuit(seed)
    # Up to 8 qubits here, one more than the default fusion limit, so every circuit fuses.
    fused = QuantumLayer(qc, x, w, obs, dtype=torch.float64, engine_options={"fuse_max_qubits": 8})
    plain = QuantumLayer(qc, x, w, obs, dtype=torch.float64, initial_weights=fused.weight.detach(),
                         engine_options={"fuse_max_qubits": 0})
    assert not plain.engine.compiled.fused
    batch = 2 ** qc.num_qubits + 1
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


# ------------------------------------------------------------------------ registry
@pytest.fixture
def registry(monkeypatch):
    """Engines a test registers disappear with it."""
    monkeypatch.setattr(qkit.engines, "_REGISTRY", dict(qkit.engines._REGISTRY))


def test_importing_the_registry_loads_neither_torch_nor_qiskit():
    code = ("import sys, qkit.engines as e; print(e.engine_names()); "
            "print(sorted(m for m in ('torch', 'qiskit', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["('connector', 'statevector')", "[]"]


def test_unknown_engine_is_a_one_line_error():
    with pytest.raises(QkitError) as info:
        get_engine_class("quantum_magic")
    assert str(info.value) == "unknown engine 'quantum_magic'; choose from: connector, statevector"
    spec = build_circuit("dressed", 2)
    with pytest.raises(QkitError, match="unknown engine 'quantum_magic'"):
        QuantumLayer.from_spec(spec, engine=EngineSpec("quantum_magic"))


def test_unknown_option_names_the_valid_ones():
    spec = build_circuit("dressed", 2)
    with pytest.raises(QkitError) as info:
        QuantumLayer.from_spec(spec, engine_options={"shots": 1024})
    assert str(info.value) == ("engine 'statevector' has no option shots "
                               "(options: fuse_max_qubits)")
    with pytest.raises(QkitError, match=r"'connector' has no option shots \(it takes no options\)"):
        QuantumLayer.from_spec(spec, engine=EngineSpec("connector", {"shots": 1}))
    with pytest.raises(QkitError, match="fuse_max_qubits must be an integer >= 0"):
        QuantumLayer.from_spec(spec, engine_options={"fuse_max_qubits": "seven"})


def test_option_given_twice_is_an_error():
    spec = build_circuit("dressed", 2)
    engine = EngineSpec("statevector", {"fuse_max_qubits": 3})
    with pytest.raises(QkitError, match="fuse_max_qubits given both") as info:
        QuantumLayer.from_spec(spec, engine=engine, engine_options={"fuse_max_qubits": 3})
    assert "\n" not in str(info.value)


def test_engine_options_reach_the_statevector_engine():
    spec = build_circuit("dressed", 4, 2)
    default = QuantumLayer.from_spec(spec, dtype=torch.float64)
    plain = QuantumLayer.from_spec(spec, dtype=torch.float64, engine_options={"fuse_max_qubits": 3},
                                   initial_weights=default.weight.detach())
    assert default.engine.fused_for(16) and not plain.engine.fused_for(16)
    assert plain.engine_spec == EngineSpec("statevector", {"fuse_max_qubits": 3})
    assert "engine=statevector(fuse_max_qubits=3)" in repr(plain)
    assert list(plain.state_dict()) == ["weight"]
    x = torch.rand(16, 4, dtype=torch.float64)
    torch.testing.assert_close(plain(x), default(x), atol=1e-12, rtol=0)


def test_builtin_engines_declare_their_options_and_capabilities():
    assert engine_names() == ("connector", "statevector")
    assert engine_option_names("statevector") == ("fuse_max_qubits",)
    assert engine_option_names("connector") == ()
    for name in engine_names():
        assert get_engine_class(name).capabilities == Capabilities(differentiable=True)


def test_register_a_module_class_string(registry):
    register_engine("qkit.engines.statevector:StatevectorEngine", name="sv2")
    assert "sv2" in engine_names()
    spec = build_circuit("dressed", 2)
    layer = QuantumLayer.from_spec(spec, engine="sv2", engine_options={"fuse_max_qubits": 0})
    assert type(layer.engine) is get_engine_class("statevector")
    register_engine("qkit.engines.nowhere:Engine", name="broken")
    with pytest.raises(QkitError, match="engine 'broken': cannot import qkit.engines.nowhere"):
        QuantumLayer.from_spec(spec, engine="broken")
    with pytest.raises(QkitError, match="engine 'statevector' is already registered"):
        register_engine("mypkg:Engine", name="statevector")
    with pytest.raises(QkitError, match="needs name="):
        register_engine("mypkg:Engine")


# ----------------------------------------------------------------------- EngineSpec
def test_engine_spec_round_trips():
    spec = EngineSpec("estimator", {"shots": 1024, "backend": "fake_lagos"})
    assert str(spec) == "estimator(backend=fake_lagos, shots=1024)"
    assert str(EngineSpec("statevector")) == "statevector"
    data = spec.to_dict()
    assert data == {"name": "estimator", "options": {"backend": "fake_lagos", "shots": 1024}}
    assert EngineSpec.parse(json.loads(json.dumps(data))) == spec
    assert EngineSpec.parse(spec) is spec
    assert EngineSpec.parse("statevector") == EngineSpec("statevector", {})
    assert hash(EngineSpec("e", {"a": 1, "b": 2})) == hash(EngineSpec("e", {"b": 2, "a": 1}))
    with pytest.raises(TypeError):
        spec.options["shots"] = 1  # read-only
    # What __str__ prints for a scalar option parses back to the same value.
    tricky = EngineSpec("e", {"a": "1024", "b": True, "c": None, "d": 0.5, "e": "text",
                              "f": [1, 2]})
    assert str(tricky) == 'e(a="1024", b=true, c=null, d=0.5, e=text, f=[1, 2])'
    scalars = str(tricky)[2:-len(", f=[1, 2])")].split(", ")
    assert dict(map(parse_engine_option, scalars)) == {k: tricky.options[k] for k in "abcde"}
    assert tricky.to_dict()["options"]["f"] == [1, 2]


@pytest.mark.parametrize("text, expected", [
    ("shots=1024", ("shots", 1024)), ("p=0.25", ("p", 0.25)), ("eps=1e-3", ("eps", 1e-3)),
    ("flag=true", ("flag", True)), ("flag=false", ("flag", False)), ("seed=null", ("seed", None)),
    ("backend=fake_lagos", ("backend", "fake_lagos")), ("name=\"42\"", ("name", "42")),
    ("x=nan", ("x", "nan")), ("expr=a=b", ("expr", "a=b")), (" k = -3 ", ("k", -3)),
])
def test_parse_engine_option(text, expected):
    assert parse_engine_option(text) == expected


@pytest.mark.parametrize("bad", [
    "shots", "=3", {"name": "x", "shots": 1}, {"options": {}}, {"name": ""},
    {"name": "x", "options": [1]}, {"name": "x", "options": {"not valid": 1}}, 42])
def test_bad_engine_specs_are_one_line_errors(bad):
    with pytest.raises(QkitError) as info:
        parse_engine_option(bad) if isinstance(bad, str) else EngineSpec.parse(bad)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------- capabilities
class DensityMatrixEngine(Engine):
    """A small, real non-unitary engine: Qiskit DensityMatrix, sample by sample.

    ``measure`` is the non-selective measurement channel (the average over outcomes,
    which is what expectation values see), with an optional symmetric readout error.
    No gradients: it computes in numpy.
    """

    name = "test_density"
    capabilities = Capabilities(noise=True, non_unitary=True)

    def __init__(self, program, dtype=torch.float32, readout_error: float = 0.0):
        super().__init__(program, dtype)
        p = readout_error
        flip = np.array([[0, 1], [1, 0]])
        p0, p1 = np.diag([1.0, 0.0]), np.diag([0.0, 1.0])
        # Kraus operators of "measure, then report the wrong bit with probability p".
        self.measure = Kraus([np.sqrt(1 - p) * p0, np.sqrt(1 - p) * p1,
                              np.sqrt(p) * flip @ p0, np.sqrt(p) * flip @ p1])

    def execute(self, inputs, weights):
        prog = self.program
        w = weights.detach().double().cpu().numpy()
        rows = []
        for sample in inputs.detach().double().cpu().numpy():
            bound = prog.circuit.assign_parameters(
                {**dict(zip(prog.inputs, sample)), **dict(zip(prog.weights, w))})
            rho = DensityMatrix.from_int(0, 2 ** bound.num_qubits)
            for instruction in bound.data:
                op = instruction.operation
                qubits = [bound.find_bit(q).index for q in instruction.qubits]
                if op.name == "measure":
                    rho = rho.evolve(self.measure, qubits)
                elif op.name == "reset":
                    rho = rho.reset(qubits)
                elif op.name != "barrier":
                    rho = rho.evolve(Operator(op), qubits)
            rows.append([rho.expectation_value(o).real for o in prog.observables])
        return torch.tensor(rows, dtype=inputs.dtype, device=inputs.device)


def _measured_circuit():
    x, w = ParameterVector("x", 2), ParameterVector("w", 2)
    qc = QuantumCircuit(2)
    qc.ry(x[0], 0)
    qc.ry(x[1], 1)
    qc.cx(0, 1)
    qc.rx(w[0], 0)
    qc.ry(w[1], 1)
    unitary = qc.copy()
    qc.measure_all()
    return qc, unitary, list(x), list(w)


def test_non_unitary_engine_accepts_measure_and_statevector_rejects_it(registry):
    register_engine(DensityMatrixEngine)
    qc, unitary, x, w = _measured_circuit()
    obs = [SparsePauliOp("IZ"), SparsePauliOp("ZI"), SparsePauliOp("ZZ"), SparsePauliOp("IX")]
    with pytest.raises(QkitError, match="non-unitary instruction 'measure'") as info:
        QuantumLayer(qc, x, w, obs)  # statevector: unitary circuits only
    assert "\n" not in str(info.value)
    with pytest.raises(QkitError, match="non-unitary"):
        validate_layer(qc, x, w, obs)
    validate_layer(qc, x, w, obs, capabilities=Capabilities(non_unitary=True))

    weights = [0.3, -1.1]
    measured = QuantumLayer(qc, x, w, obs, engine="test_density", dtype=torch.float64,
                            initial_weights=weights)
    noisy = QuantumLayer(qc, x, w, obs, engine="test_density", dtype=torch.float64,
                         initial_weights=weights, engine_options={"readout_error": 0.1})
    pure = QuantumLayer(unitary, x, w, obs, dtype=torch.float64, initial_weights=weights)
    assert list(measured.state_dict()) == ["weight"]
    assert "engine=test_density(readout_error=0.1)" in repr(noisy)
    inputs = torch.tensor([[0.2, 0.9], [-1.0, 0.4], [1.3, -0.7]], dtype=torch.float64)
    expected = pure(inputs).detach()
    got = measured(inputs)
    # Measuring in Z leaves Z-diagonal expectation values alone and erases coherences.
    torch.testing.assert_close(got[:, :3], expected[:, :3], atol=1e-12, rtol=0)
    assert expected[:, 3].abs().max() > 0.1 and got[:, 3].abs().max() < 1e-12
    # The option reached the constructor: each Z flips with probability 0.1, so <Z> shrinks
    # by 0.8, and <ZZ> by 0.8^2 (independent errors).
    shrink = torch.tensor([0.8, 0.8, 0.64], dtype=torch.float64)
    torch.testing.assert_close(noisy(inputs)[:, :3], expected[:, :3] * shrink, atol=1e-12, rtol=0)


def test_registering_a_class_by_decorator(registry):
    @register_engine(name="density_alias")
    class Alias(DensityMatrixEngine):
        pass

    assert get_engine_class("density_alias") is Alias
    assert engine_option_names("density_alias") == ("readout_error",)
    with pytest.raises(QkitError, match="is not a qkit.engines.base.Engine subclass"):
        register_engine(dict)
