"""qkit explain --quantum: the quantum feature space of a trained run, checked against Qiskit."""

import json

import numpy as np
from typer.testing import CliRunner

from qkit.cli import app
from qkit.explain import quantum as qx

runner = CliRunner()


def test_bloch_vectors_agree_with_the_layer_outputs(quantum_run, data_root):
    from qkit.explain.heatmaps import load_explainable

    run, model, bundle = load_explainable(quantum_run)
    qf = qx.collect(model, bundle.val)
    assert qf.observables == ["Z0", "Z1", "Z2", "Z3"]
    # Qiskit's Statevector of the bound circuit gives each qubit's <Z>: the layer's own outputs
    np.testing.assert_allclose(qf.bloch[:, :, 2], qf.outputs, atol=1e-4)
    lengths = np.linalg.norm(qf.bloch, axis=2)
    assert (lengths <= 1 + 1e-9).all() and lengths.min() < 0.999  # the circuit entangles
    scores = qx.separability(qf, bundle.positive_class)
    for rep in ("prenet_inputs", "prenet_outputs", "quantum_outputs"):
        assert 0 <= scores[rep]["probe_auc"] <= 1 and -1 <= scores[rep]["silhouette"] <= 1


def test_explain_quantum_writes_figures_and_record(run_copy):
    result = runner.invoke(app, ["explain", str(run_copy), "--quantum", "--split", "val"])
    assert result.exit_code == 0, result.output
    assert "quantum_outputs" in result.output and "probe AUC" in result.output
    out = run_copy / "explain" / "quantum-val"
    record = json.loads((out / "quantum.json").read_text())
    assert record["split"] == "val" and record["n"] == 78 and record["n_qubits"] == 4
    assert set(record["per_class"]) == {"malignant", "normal, benign"}
    for name in record["figures"].values():
        assert (out / name).stat().st_size > 10_000
