"""The estimator engine through the runtime's local testing mode on fake backends: no mocks.

The references are exact: the statevector engine (no noise), and Aer's density-matrix
simulation of the engine's own ISA circuit with the fake backend's noise model, readout
error applied from the same model (what the device emulation should reproduce). FakeLagosV2
reads qubits 0 and 1 out with 14-17 % error, so on it the engine agrees with the noisy
reference, not with the exact values; FakeManilaV2 reads out well enough (~2-3 %) for the
exact comparison.
"""

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from qiskit.circuit import ParameterVector, QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from qkit.engines import Capabilities, engine_option_names, get_engine_class
from qkit.errors import QkitError
from qkit.hardware.snapshot import BUILTIN_DIR
from qkit.quantum import QuantumLayer

WEIGHTS = [0.3, -0.5]


def small_layer_args(n=2):
    """RY embedding, a CX chain, RY weights; <Z> per qubit (qubit 0 first)."""
    x, w = ParameterVector("x", n), ParameterVector("w", n)
    qc = QuantumCircuit(n)
    for q in range(n):
        qc.ry(x[q], q)
    for q in range(n - 1):
        qc.cx(q, q + 1)
    for q in range(n):
        qc.ry(w[q], q)
    obs = [SparsePauliOp("I" * (n - 1 - q) + "Z" + "I" * q) for q in range(n)]
    return qc, x, w, obs


def estimator_layer(backend="fake_lagos", **options):
    options = {"backend": backend, "shots": 4000, "seed": 1, **options}
    qc, x, w, obs = small_layer_args()
    return QuantumLayer(
        qc, x, w, obs, engine="estimator", engine_options=options, initial_weights=WEIGHTS[:2], dtype=torch.float64
    )


@pytest.fixture(scope="module")
def inputs():
    return torch.rand(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 3


@pytest.fixture(scope="module")
def exact(inputs):
    qc, x, w, obs = small_layer_args()
    layer = QuantumLayer(qc, x, w, obs, initial_weights=WEIGHTS, dtype=torch.float64)
    with torch.no_grad():
        return layer(inputs).numpy()


def noisy_reference(engine, inputs) -> np.ndarray:
    """<Z_q> of the engine's ISA circuit under the backend's Aer noise model, without sampling.

    Gate noise by density-matrix simulation; readout error then applied per measured qubit
    from the same noise model's readout matrices (rows: prepared 0/1, columns: read 0/1).
    """
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import NoiseModel

    from qkit.hardware import resolve_backend

    noise = NoiseModel.from_backend(resolve_backend(engine.backend_name).backend)
    readout = {
        e["gate_qubits"][0][0]: np.array(e["probabilities"])
        for e in noise.to_dict()["errors"]
        if e["type"] == "roerror"
    }
    sim = AerSimulator(method="density_matrix", noise_model=noise)
    values = np.concatenate([inputs.numpy(), np.repeat([WEIGHTS], len(inputs), 0)], axis=1)
    circuits = []
    for row in values:
        bound = engine.isa_circuit.assign_parameters(dict(zip(engine.isa_circuit.parameters, row[engine._columns])))
        bound.save_probabilities(engine.physical_qubits)
        circuits.append(bound)
    result = sim.run(circuits).result()
    out = np.zeros((len(values), len(engine.physical_qubits)))
    for i in range(len(values)):
        probs = result.data(i)["probabilities"]  # little-endian over physical_qubits
        for k, q in enumerate(engine.physical_qubits):
            p0 = sum(p for b, p in enumerate(probs) if not (b >> k) & 1)
            r = readout.get(q, np.eye(2))
            out[i, k] = p0 * (r[0, 0] - r[0, 1]) + (1 - p0) * (r[1, 0] - r[1, 1])
    return out


@pytest.fixture(scope="module")
def lagos():
    return estimator_layer()


# ------------------------------------------------------------------------ agreement
def test_lagos_agrees_with_the_noisy_emulation_reference(lagos, inputs, exact):
    out = lagos(inputs).detach().numpy()
    reference = noisy_reference(lagos.engine, inputs)
    # 4000 shots: sigma <= 1/sqrt(4000) = 0.016 per value; 0.08 is 5 sigma.
    assert np.abs(out - reference).max() < 0.08
    # The emulation includes readout error (Aer's EstimatorV2 would not): 14-17 % on qubits
    # 0 and 1 shrink <Z> by about a third, far beyond the shot noise.
    assert lagos.engine.physical_qubits == [0, 1]
    assert np.abs(reference - exact).max() > 0.2


@pytest.mark.slow
def test_manila_agrees_with_exact_values(inputs, exact):
    layer = estimator_layer("fake_manila")
    out = layer(inputs).detach().numpy()
    # Shot noise (5 sigma = 0.08) plus ~2-3 % readout error and one CX's noise.
    assert np.abs(out - exact).max() < 0.15


@pytest.mark.slow
def test_more_shots_come_closer_to_the_reference(inputs):
    few, many = estimator_layer(shots=250), estimator_layer(shots=16000)
    reference = noisy_reference(few.engine, inputs)
    err_few = np.abs(few(inputs).detach().numpy() - reference).mean()
    err_many = np.abs(many(inputs).detach().numpy() - reference).mean()
    # Expected mean |error| ~0.8/sqrt(shots): 0.05 at 250 shots, 0.006 at 16000.
    assert err_many < 0.02 and err_many < err_few / 2


@pytest.mark.slow
def test_trex_mitigates_readout_error_on_lagos(inputs, exact):
    layer = estimator_layer(resilience_level=1)
    out = layer(inputs).detach().numpy()
    assert np.abs(out - exact).max() < 0.15  # level 0 is off by 0.3 here (readout)


# ------------------------------------------------------------------------ behaviour
@pytest.mark.slow
def test_one_pub_per_call_and_shapes(lagos, inputs):
    before = len(lagos.engine.job_ids)
    out = lagos(inputs)
    assert out.shape == (8, 2) and out.dtype == torch.float64
    assert len(lagos.engine.job_ids) == before + 1  # one primitive job for the batch
    assert lagos(inputs[0]).shape == (2,)
    assert len(lagos.engine.job_ids) == before + 2
    assert lagos(inputs[:0]).shape == (0, 2)  # no job for an empty batch
    assert len(lagos.engine.job_ids) == before + 2
    assert len(set(lagos.engine.job_ids)) == len(lagos.engine.job_ids)
    # float32 in, float32 out
    assert lagos(inputs.float()).dtype == torch.float32


@pytest.mark.slow
def test_seed_makes_results_reproducible(lagos, inputs):
    again = estimator_layer()
    assert torch.equal(again(inputs), lagos(inputs))
    other = estimator_layer(seed=2)
    assert not torch.equal(other(inputs), lagos(inputs))


def test_backward_is_a_clear_error(lagos, inputs):
    out = lagos(inputs)
    assert out.requires_grad  # the weight does; backward must say no
    with pytest.raises(QkitError, match="forward-only; train with statevector"):
        out.sum().backward()


def test_records_what_ran_where(lagos):
    engine = lagos.engine
    assert engine.backend_source.startswith("fake_lagos: emulation")
    assert engine.physical_qubits == [0, 1]
    assert isinstance(engine.job_ids, list)
    assert "engine=estimator(backend=fake_lagos, seed=1, shots=4000)" in repr(lagos)


@pytest.mark.slow
def test_layout_places_the_circuit_and_binds_by_parameter(inputs):
    # A layout as the CLI passes it (text); 3 and 5 are coupled on Lagos and read out at
    # 1.7 % and 26 %. The ISA circuit orders parameters w, x: binding goes by Parameter.
    layer = estimator_layer(layout="[3, 5]")
    assert layer.engine.physical_qubits == [3, 5]
    assert [p.name for p in layer.engine.isa_circuit.parameters][:2] == ["w[0]", "w[1]"]
    out = layer(inputs).detach().numpy()
    assert np.abs(out - noisy_reference(layer.engine, inputs)).max() < 0.08


def test_options_and_capabilities():
    cls = get_engine_class("estimator")
    assert engine_option_names("estimator") == (
        "backend",
        "layout",
        "optimization_level",
        "resilience_level",
        "seed",
        "shots",
    )
    assert cls.capabilities == Capabilities(differentiable=False, shots=True, noise=True)


# ------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "options, message",
    [
        ({"backend": None}, "option backend is required"),
        ({"shots": 0}, "shots must be an integer >= 1, got 0"),
        ({"shots": 10.5}, "shots must be an integer >= 1"),
        ({"seed": "abc"}, "seed must be an integer"),
        ({"optimization_level": 4}, "optimization_level must be 0, 1, 2 or 3"),
        ({"resilience_level": 2}, "resilience_level must be 0 .none. or 1 .TREX"),
        ({"layout": [0]}, "layout has 1 qubits but the circuit has 2"),
        ({"layout": [1, 1]}, "layout repeats a physical qubit"),
        ({"layout": [0, 9]}, "names a qubit that fake_lagos lacks"),
        ({"layout": "zero,one"}, "layout must list physical qubits"),
        ({"backend": "fake_nowhere"}, "unknown fake backend 'fake_nowhere'"),
    ],
)
def test_bad_options_are_one_line_errors(options, message):
    with pytest.raises(QkitError, match=message) as info:
        estimator_layer(**options)
    assert "\n" not in str(info.value)


def test_circuit_wider_than_the_device():
    qc, x, w, obs = small_layer_args(6)
    with pytest.raises(QkitError, match="the circuit has 6 qubits but fake_manila has 5"):
        QuantumLayer(qc, x, w, obs, engine="estimator", engine_options={"backend": "fake_manila"})


def test_unknown_option_is_rejected_by_the_spec():
    qc, x, w, obs = small_layer_args()
    with pytest.raises(QkitError, match="engine 'estimator' has no option precision"):
        QuantumLayer(qc, x, w, obs, engine="estimator", engine_options={"backend": "fake_lagos", "precision": 0.01})


# ------------------------------------------------------------------------ a trained run
@pytest.mark.slow
def test_evaluate_a_trained_run_on_fake_lagos(run_copy):
    from qkit import runs
    from qkit.evaluate import evaluate_run

    run_dir = run_copy  # small_cnn + quantum head, 1 epoch on BreastMNIST (tests/conftest.py)
    exact = runs.read_json(run_dir / "test_metrics.json")
    start = time.perf_counter()
    result = evaluate_run(
        run_dir, "test", engine="estimator", engine_options={"backend": "fake_lagos", "shots": 1024, "seed": 0}
    )
    seconds = time.perf_counter() - start
    print(
        f"\nexact AUC {exact['auc']:.4f}, estimator AUC {result['auc']:.4f}, "
        f"evaluate_run {seconds:.1f} s, scoring {result['seconds']:.1f} s for {result['n']} samples"
    )
    assert abs(result["auc"] - exact["auc"]) < 0.05
    assert result["engine_spec"] == {
        "name": "estimator",
        "options": {"backend": "fake_lagos", "seed": 0, "shots": 1024},
    }
    predictions = runs.read_predictions(Path(result["path"]) / "predictions-test-estimator.csv")
    assert len(predictions.ids) == result["n"] == exact["n"]
    saved = runs.read_json(Path(result["path"]) / "metrics.json")  # what ran where, recorded
    assert "fake_lagos" in saved["backend_source"] and len(saved["physical_qubits"]) == 4
    assert len(saved["job_ids"]) >= 1
    # the command line's shorthand: --backend NAME is the estimator engine on NAME
    from typer.testing import CliRunner

    from qkit.cli import app

    cli = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(run_dir),
            "--backend",
            "fake_lagos",
            "--engine-option",
            "seed=0",
            "--engine-option",
            "shots=1024",
        ],
    )
    assert cli.exit_code == 0, cli.output
    latest = runs.read_json(runs.load_run(run_dir).evaluations()[-1] / "metrics.json")
    assert latest["engine_spec"] == result["engine_spec"] and latest["auc"] == pytest.approx(result["auc"])
    clash = CliRunner().invoke(app, ["evaluate", str(run_dir), "--backend", "fake_lagos", "--engine", "connector"])
    assert clash.exit_code == 2 and "--backend runs the estimator engine" in clash.output


@pytest.mark.slow
def test_a_calibration_snapshot_emulates_like_its_fake_backend(lagos, inputs):
    """`backend=snapshot:...` runs the same code path; its asymmetric readout (as the fake
    backend's own noise) stays within shot noise of the fake backend's local-mode results."""
    snapshot = BUILTIN_DIR / "ibm_lagos.json"
    layer = estimator_layer(backend=f"snapshot:{snapshot}")
    assert "calibration snapshot" in layer.engine.backend_source
    assert layer.engine.physical_qubits == lagos.engine.physical_qubits
    out, fake = layer(inputs).detach().numpy(), lagos(inputs).detach().numpy()
    # 4000 shots each: the difference of two estimates has sigma <= 0.023; 0.12 is 5 sigma.
    # Qubits 0 and 1 have near-symmetric readout, so the two noise models agree here.
    assert np.abs(out - fake).max() < 0.12
