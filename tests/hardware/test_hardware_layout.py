"""``qkit.hardware.layout.choose_layout`` and ``qkit transpile``: layouts scored by expected output error.

The estimate is checked against the error it predicts: Aer density-matrix simulation of each
ISA circuit (scheduled, so idle qubits relax) with the backend's calibrated noise, the
asymmetric readout confusion applied exactly to the simulated probabilities (infinite shots),
against the noiseless expectation values of the original circuit.
"""

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from qkit.circuits import build_circuit
from qkit.cli import app
from qkit.config import EnvConfig, TrainConfig
from qkit.errors import QkitError
from qkit.hardware.emulate import emulated_error
from qkit.hardware.layout import choose_layout, ideal_values, transpile_with_layout, vf2_layouts
from qkit.hardware.layout_error import _expected_abs
from qkit.runs import RunRecord, atomic_write_json

runner = CliRunner()


@pytest.fixture(scope="module")
def lagos():
    from qiskit_ibm_runtime.fake_provider import FakeLagosV2

    from qkit.hardware.snapshot import Snapshot

    backend = FakeLagosV2()
    return backend, Snapshot.from_backend(backend)


@pytest.fixture(scope="module")
def dressed():
    return build_circuit("dressed", 4, 1)


def _rows(spec, n=4, seed=0):
    """Random inputs in [-1, 1], near-zero weights; columns in program order (inputs, weights)."""
    rng = np.random.default_rng(seed)
    return [
        np.concatenate([rng.uniform(-1, 1, len(spec.inputs)), rng.normal(0, 0.05, len(spec.weights))]) for _ in range(n)
    ]


# ---------------------------------------------------------------------- pieces


def test_expected_abs_matches_the_average_over_uniform_z():
    z = np.linspace(-1, 1, 200001)
    for shrink, shift in ((0.7, 0.1), (0.9, -0.3), (1.0, 0.05), (0.5, 0.0)):
        assert _expected_abs(shrink, shift) == pytest.approx(np.mean(np.abs((shrink - 1) * z + shift)), abs=1e-4)
    assert _expected_abs(0.8, 0.1, ideal=[1.0, -1.0]) == pytest.approx((0.1 + 0.3) / 2)


def test_ideal_values_are_the_noiseless_expectations(dressed):
    zero = [[0.0] * dressed.circuit.num_parameters]
    values = ideal_values(dressed.circuit, dressed.observables, zero)
    # x = w = 0: H on each qubit, CNOT chain: every <Z_k> is 0
    assert np.allclose(np.array(values).ravel(), 0.0, atol=1e-12)


def test_vf2_layouts_are_the_chains_through_1_3_5(lagos, dressed):
    backend, _ = lagos
    layouts = vf2_layouts(dressed.circuit, backend)
    edges = {tuple(sorted(e)) for e in backend.coupling_map.get_edges()}
    assert len(layouts) == 8 and len({tuple(x) for x in layouts}) == 8  # 4 paths, both directions
    for layout in layouts:
        assert {1, 3, 5} <= set(layout)
        assert all(tuple(sorted(pair)) in edges for pair in zip(layout, layout[1:]))


def test_bad_arguments_are_one_line_errors(lagos, dressed):
    backend, snapshot = lagos
    wide = build_circuit("dressed", 8, 1)
    with pytest.raises(QkitError, match="8 qubits but fake_lagos has 7"):
        choose_layout(wide.circuit, wide.observables, backend, snapshot=snapshot)
    with pytest.raises(QkitError, match="observables"):
        choose_layout(dressed.circuit, None, backend, snapshot=snapshot)
    with pytest.raises(QkitError, match="top"):
        choose_layout(dressed.circuit, dressed.observables, backend, snapshot=snapshot, top=0)


def test_transpile_with_layout_compiles_once_and_hands_out_copies(lagos):
    from qiskit import QuantumCircuit

    backend = lagos[0]
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    first = transpile_with_layout(circuit, backend, [3, 5])
    again = transpile_with_layout(circuit, backend, [3, 5])
    assert again == first and again is not first  # the same ISA circuit, a copy each
    assert again.layout.initial_index_layout()[:2] == [3, 5]
    first.x(3)  # a caller's edit stays its own
    assert transpile_with_layout(circuit, backend, [3, 5]) == again
    assert transpile_with_layout(circuit, backend, [1, 3]).layout.initial_index_layout()[:2] == [1, 3]
    circuit.measure_all()  # grown in place: compiled again
    assert transpile_with_layout(circuit, backend, [3, 5]).count_ops().get("measure") == 2


def test_a_circuit_that_needs_routing_gets_the_pass_managers_layouts(lagos):
    backend, snapshot = lagos
    spec = build_circuit("strongly_entangling", 4, 1)  # CNOT ring: no subgraph of heavy hex
    assert vf2_layouts(spec.circuit, backend) == []
    choice = choose_layout(spec.circuit, spec.observables, backend, snapshot=snapshot, top=3)
    assert choice.n_considered >= 2 and choice.candidates[0] is choice.chosen
    assert choice.chosen.estimate <= choice.default.estimate
    assert [c.estimate for c in choice.candidates] == sorted(c.estimate for c in choice.candidates)
    assert all(len(c.layout) == 4 and c.two_qubit_gates >= 4 for c in choice.candidates)
    assert json.dumps(choice.to_dict())  # JSON-ready


# ---------------------------------------------------------------------- against the noisy emulation


@pytest.mark.slow
def test_estimate_ranks_chains_by_measured_error_and_beats_the_default(lagos, dressed):
    from scipy.stats import spearmanr

    backend, snapshot = lagos
    rows = _rows(dressed)
    order = {p: i for i, p in enumerate(list(dressed.inputs) + list(dressed.weights))}
    values = [[row[order[p]] for p in dressed.circuit.parameters] for row in rows]
    isa, errors = {}, {}  # per layout: its ISA circuit, and that circuit's emulated error
    for sample in (None, values):  # z uniform in [-1, 1]; the layer's own outputs
        choice = choose_layout(dressed.circuit, dressed.observables, backend, snapshot=snapshot, top=50, values=sample)
        assert choice.n_considered == 8 and len(choice.candidates) == 8
        assert choice.default.layout == [1, 3, 5, 4]
        for c in choice.candidates:  # the values change the estimates, not the circuits: each
            key = tuple(c.layout)  # layout's circuit is emulated once (about 1 s each)
            if key in isa:
                assert c.isa_circuit == isa[key], key
            else:
                isa[key] = c.isa_circuit
                errors[key] = emulated_error(c.isa_circuit, dressed, backend, snapshot, rows)
        measured = {tuple(c.layout): errors[tuple(c.layout)] for c in choice.candidates}
        rho = spearmanr([c.estimate for c in choice.candidates], list(measured.values())).statistic
        assert rho >= 0.7, (sample is None, rho)
        assert measured[tuple(choice.chosen.layout)] <= measured[tuple(choice.default.layout)] + 1e-9
        assert all(c.two_qubit_gates == 3 and c.duration_s > 0 for c in choice.candidates)


# ---------------------------------------------------------------------- the command


def _write_run(root, name="r1", **model):
    spec = {
        "backbone": "small_cnn",
        "head": "quantum",
        "n_classes": 2,
        "circuit": "dressed",
        "n_qubits": 4,
        "depth": 1,
        "engine": "statevector",
        "small_input": True,
        **model,
    }
    record = RunRecord(
        name=name,
        config=TrainConfig.from_options(backbone="small_cnn", head="quantum"),
        env=EnvConfig(),
        model={k: v for k, v in spec.items() if v is not None},
    )
    atomic_write_json(root / name / "config.json", record.to_dict())
    return root / name


@pytest.mark.parametrize(
    "model, backend, message",
    [
        ({"n_qubits": 8}, "fake_lagos", "8 qubits but fake_lagos has 7"),
        ({}, "fake_nowhere", "unknown fake backend"),
        ({"head": "linear"}, "fake_lagos", "no quantum head"),
    ],
)
def test_transpile_errors_are_one_line(tmp_path, model, backend, message):
    _write_run(tmp_path, **model)
    result = runner.invoke(app, ["transpile", "r1", "--runs-dir", str(tmp_path), "--backend", backend])
    assert result.exit_code == 1
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "r1" / "hardware").exists()


def test_transpile_missing_run_or_model(tmp_path):
    result = runner.invoke(app, ["transpile", "nope", "--runs-dir", str(tmp_path), "--backend", "fake_lagos"])
    assert result.exit_code == 1 and "not found" in result.output
    run = _write_run(tmp_path, name="empty")
    data = json.loads((run / "config.json").read_text())
    data["model"] = {}
    (run / "config.json").write_text(json.dumps(data))
    result = runner.invoke(app, ["transpile", "empty", "--runs-dir", str(tmp_path), "--backend", "fake_lagos"])
    assert result.exit_code == 1 and "records no model" in result.output
    result = runner.invoke(
        app, ["transpile", "empty", "--runs-dir", str(tmp_path), "--backend", "fake_lagos", "--top", "0"]
    )
    assert result.exit_code == 2


@pytest.mark.slow
def test_transpile_a_trained_run(run_copy, tmp_path):
    import matplotlib

    backend_before = matplotlib.get_backend()
    run = run_copy  # a trained small_cnn + quantum head, in tmp_path
    result = runner.invoke(
        app,
        ["transpile", run.name, "--runs-dir", str(tmp_path), "--backend", "fake_lagos", "--top", "3"],
        env={"COLUMNS": "120"},
    )
    assert result.exit_code == 0, result.output
    assert "[1, 3, 5, 4]" in result.output and "default" in result.output and "chosen layout" in result.output
    out = run / "hardware" / "fake_lagos"
    assert (out / "circuit.qasm").read_text().startswith("OPENQASM 3")
    assert (out / "circuit.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((out / "layout.json").read_text())
    assert record["physical_qubits"] == record["chosen"]["layout"] and len(record["candidates"]) == 3
    assert record["default"]["layout"] == [1, 3, 5, 4] and record["default"]["is_default"]
    assert record["chosen"]["estimate"] <= record["default"]["estimate"]
    assert record["chosen"]["two_qubit_gates"] == 3 and math.isfinite(record["chosen"]["duration_s"])
    assert matplotlib.get_backend() == backend_before
    custom = tmp_path / "elsewhere"
    result = runner.invoke(app, ["transpile", str(run), "--backend", "fake_lagos", "--out", str(custom)])
    assert result.exit_code == 0 and (custom / "layout.json").is_file()
