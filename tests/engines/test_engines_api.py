"""Engine registry, EngineSpec, engine options and capabilities, through real engines:
the built-ins, and a small density-matrix engine that accepts measurements."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from qiskit.quantum_info import DensityMatrix, Kraus, Operator, SparsePauliOp

import qkit.engines
from qkit.circuits import build_circuit
from qkit.engines import (
    Capabilities,
    EngineSpec,
    engine_names,
    engine_option_names,
    get_engine_class,
    parse_engine_option,
    register_engine,
)
from qkit.engines.base import Engine, validate_layer
from qkit.errors import QkitError
from qkit.quantum import QuantumLayer


# ------------------------------------------------------------------------ registry
@pytest.fixture
def registry(monkeypatch):
    """Engines a test registers disappear with it."""
    monkeypatch.setattr(qkit.engines, "_REGISTRY", dict(qkit.engines._REGISTRY))


def test_importing_the_registry_loads_neither_torch_nor_qiskit():
    code = (
        "import sys, qkit.engines as e; print(e.engine_names()); "
        "print(sorted(m for m in ('torch', 'qiskit', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["('connector', 'density', 'estimator', 'statevector')", "[]"]


def test_unknown_engine_is_a_one_line_error():
    with pytest.raises(QkitError) as info:
        get_engine_class("quantum_magic")
    assert str(info.value) == "unknown engine 'quantum_magic'; choose from: connector, density, estimator, statevector"
    spec = build_circuit("dressed", 2)
    with pytest.raises(QkitError, match="unknown engine 'quantum_magic'"):
        QuantumLayer.from_spec(spec, engine=EngineSpec("quantum_magic"))


def test_unknown_option_names_the_valid_ones():
    spec = build_circuit("dressed", 2)
    with pytest.raises(QkitError) as info:
        QuantumLayer.from_spec(spec, engine_options={"shots": 1024})
    assert str(info.value) == ("engine 'statevector' has no option shots (options: fuse_max_qubits)")
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
    plain = QuantumLayer.from_spec(
        spec, dtype=torch.float64, engine_options={"fuse_max_qubits": 3}, initial_weights=default.weight.detach()
    )
    assert default.engine.fused_for(16) and not plain.engine.fused_for(16)
    assert plain.engine_spec == EngineSpec("statevector", {"fuse_max_qubits": 3})
    assert "engine=statevector(fuse_max_qubits=3)" in repr(plain)
    assert list(plain.state_dict()) == ["weight"]
    x = torch.rand(16, 4, dtype=torch.float64)
    torch.testing.assert_close(plain(x), default(x), atol=1e-12, rtol=0)


def test_builtin_engines_declare_their_options_and_capabilities():
    assert engine_names() == ("connector", "density", "estimator", "statevector")
    assert engine_option_names("statevector") == ("fuse_max_qubits",)
    assert engine_option_names("connector") == ()
    assert set(engine_option_names("density")) == {
        "backend",
        "layout",
        "scale",
        "gate_scale",
        "readout_scale",
        "relaxation_scale",
        "shots",
        "seed",
    }
    assert get_engine_class("density").capabilities == Capabilities(differentiable=True, shots=True, noise=True)
    for name in ("connector", "statevector"):  # estimator: tests/engines/test_engine_estimator.py
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
    tricky = EngineSpec("e", {"a": "1024", "b": True, "c": None, "d": 0.5, "e": "text", "f": [1, 2]})
    assert str(tricky) == 'e(a="1024", b=true, c=null, d=0.5, e=text, f=[1, 2])'
    scalars = str(tricky)[2 : -len(", f=[1, 2])")].split(", ")
    assert dict(map(parse_engine_option, scalars)) == {k: tricky.options[k] for k in "abcde"}
    assert tricky.to_dict()["options"]["f"] == [1, 2]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("shots=1024", ("shots", 1024)),
        ("p=0.25", ("p", 0.25)),
        ("eps=1e-3", ("eps", 1e-3)),
        ("flag=true", ("flag", True)),
        ("flag=false", ("flag", False)),
        ("seed=null", ("seed", None)),
        ("backend=fake_lagos", ("backend", "fake_lagos")),
        ('name="42"', ("name", "42")),
        ("x=nan", ("x", "nan")),
        ("expr=a=b", ("expr", "a=b")),
        (" k = -3 ", ("k", -3)),
    ],
)
def test_parse_engine_option(text, expected):
    assert parse_engine_option(text) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "shots",
        "=3",
        {"name": "x", "shots": 1},
        {"options": {}},
        {"name": ""},
        {"name": "x", "options": [1]},
        {"name": "x", "options": {"not valid": 1}},
        42,
    ],
)
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
        self.measure = Kraus([np.sqrt(1 - p) * p0, np.sqrt(1 - p) * p1, np.sqrt(p) * flip @ p0, np.sqrt(p) * flip @ p1])

    def execute(self, inputs, weights):
        prog = self.program
        w = weights.detach().double().cpu().numpy()
        rows = []
        for sample in inputs.detach().double().cpu().numpy():
            bound = prog.circuit.assign_parameters({**dict(zip(prog.inputs, sample)), **dict(zip(prog.weights, w))})
            rho = DensityMatrix.from_int(0, 2**bound.num_qubits)
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
    from test_quantum import _small

    unitary, x, w = _small()
    qc = unitary.copy()
    qc.measure_all()
    return qc, unitary, x, w


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
    measured = QuantumLayer(qc, x, w, obs, engine="test_density", dtype=torch.float64, initial_weights=weights)
    noisy = QuantumLayer(
        qc,
        x,
        w,
        obs,
        engine="test_density",
        dtype=torch.float64,
        initial_weights=weights,
        engine_options={"readout_error": 0.1},
    )
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
