"""Calibration snapshots: JSON round trip with both readout directions, the shipped files,
one-line errors for broken files, and the Qiskit objects rebuilt from a snapshot."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from qkit.errors import QkitError
from qkit.hardware import resolve_backend
from qkit.hardware.snapshot import BUILTIN_DIR, Snapshot, load_snapshot, save_snapshot

REPO = Path(__file__).resolve().parents[2]
SHIPPED = BUILTIN_DIR  # the snapshots qkit ships (package data)


@pytest.fixture(scope="module")
def lagos():
    from qiskit_ibm_runtime.fake_provider import FakeLagosV2

    return FakeLagosV2()


@pytest.fixture(scope="module")
def snapshot(lagos):
    return Snapshot.from_backend(lagos)


def test_round_trip_keeps_every_number_and_both_readout_directions(snapshot, lagos, tmp_path):
    path = save_snapshot(snapshot, tmp_path / "lagos.json")
    loaded = load_snapshot(path)
    assert loaded == snapshot
    assert loaded.name == "ibm_lagos" and loaded.num_qubits == 7
    assert loaded.source.startswith("FakeLagosV2 (qiskit-ibm-runtime ")
    assert loaded.calibration_date == lagos.properties().last_update_date.isoformat()
    q2 = loaded.qubits[2]  # asymmetric readout: the Target keeps only the mean 0.4638
    assert (q2.prob_meas1_prep0, q2.prob_meas0_prep1, q2.readout_error) == pytest.approx((0.6236, 0.304, 0.4638))
    raw = json.loads(path.read_text())
    assert raw["format_version"] == 1 and raw["qubits"][2]["prob_meas1_prep0"] == pytest.approx(0.6236)
    for q in range(7):
        qp = lagos.target.qubit_properties[q]
        assert loaded.qubits[q].t1_us * 1e-6 == pytest.approx(qp.t1, rel=1e-12)
        assert loaded.qubits[q].t2_us * 1e-6 == pytest.approx(qp.t2, rel=1e-12)
        assert loaded.qubits[q].frequency_ghz * 1e9 == pytest.approx(qp.frequency, rel=1e-12)
    assert sorted(map(tuple, loaded.coupling_map)) == sorted(lagos.coupling_map.get_edges())
    assert loaded.basis_gates == ["cx", "id", "rz", "sx", "x"] and loaded.dt == lagos.dt


def test_target_carries_the_calibrated_errors_and_durations(snapshot, lagos):
    target = snapshot.target()
    assert set(target.operation_names) == set(lagos.target.operation_names)
    for op in ("cx", "sx", "x", "id", "measure", "reset"):
        for qargs, props in lagos.target[op].items():
            mine = target[op][qargs]
            assert mine.duration == pytest.approx(props.duration, rel=1e-12)
            assert (mine.error is None and props.error is None) or mine.error == pytest.approx(props.error)
    assert target.dt == lagos.dt and target.num_qubits == 7


def test_noise_model_readout_is_asymmetric_or_symmetric_as_asked(snapshot):
    def readout(model, qubit):
        return np.asarray(model._local_readout_errors[(qubit,)].probabilities)

    assert readout(snapshot.noise_model(), 2) == pytest.approx(np.array([[1 - 0.6236, 0.6236], [0.304, 1 - 0.304]]))
    assert readout(snapshot.noise_model("symmetric"), 2) == pytest.approx(
        np.array([[0.5362, 0.4638], [0.4638, 0.5362]])
    )
    assert not snapshot.noise_model("none")._local_readout_errors
    assert {"cx", "sx", "x", "id", "reset"} <= set(snapshot.noise_model().noise_instructions)
    with pytest.raises(QkitError, match="readout must be one of"):
        snapshot.noise_model("sideways")


@pytest.mark.parametrize("name, qubits, p10_q0", [("ibm_lagos", 7, 0.1744), ("ibmq_quito", 5, 0.021)])
def test_shipped_snapshots_load(name, qubits, p10_q0):
    snap = load_snapshot(SHIPPED / f"{name}.json")
    assert snap.name == name and snap.num_qubits == qubits and snap.calibration_date
    assert snap.qubits[0].prob_meas1_prep0 == pytest.approx(p10_q0)
    assert all(g.error is not None and g.error > 0 for g in snap.two_qubit_gates)


def test_resolve_backend_runs_a_snapshot_in_local_testing_mode():
    from qiskit import QuantumCircuit, transpile
    from qiskit_ibm_runtime import SamplerV2

    resolved = resolve_backend("snapshot:ibm_lagos", snapshot_dir=SHIPPED)
    assert resolved.kind == "snapshot" and not resolved.is_hardware
    assert "ibm_lagos" in resolved.source and "2024-05-27" in resolved.source
    backend = resolved.backend
    assert backend.num_qubits == 7 and "cx" in backend.operation_names
    qc = QuantumCircuit(2)
    qc.x(0)
    qc.measure_all()
    circuit = transpile(qc, backend, initial_layout=[2, 3], seed_transpiler=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # SamplerV2 is deprecated in 0.50+
        counts = SamplerV2(mode=backend).run([circuit], shots=2000).result()[0].data.meas.get_counts()
    assert sum(counts.values()) == 2000
    # qubit 2 prepared in 1 reads 0 with p(0|1) = 0.304 (plus a little T1 decay)
    p0 = sum(v for k, v in counts.items() if k[-1] == "0") / 2000
    assert 0.25 < p0 < 0.38
    assert resolve_backend(str(SHIPPED / "ibmq_quito.json")).backend.num_qubits == 5


def _write(path, data):
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: "{not json", "invalid JSON in"),
        (lambda d: [1, 2], "expected a JSON object"),
        (lambda d: {k: v for k, v in d.items() if k != "qubits"}, "missing key 'qubits'"),
        (lambda d: {**d, "format_version": 99}, "format_version must be 1"),
        (lambda d: {**d, "num_qubits": "7"}, "'num_qubits' must be int"),
        (lambda d: {**d, "qubits": d["qubits"][:3]}, "lists 3 qubits, num_qubits is 5"),
        (
            lambda d: {**d, "qubits": [{**d["qubits"][0], "t1_us": "long"}] + d["qubits"][1:]},
            r"qubits\[0\].t1_us must be a number",
        ),
        (
            lambda d: {**d, "qubits": [{**d["qubits"][0], "prob_meas1_prep0": 1.5}] + d["qubits"][1:]},
            "must be a probability",
        ),
        (
            lambda d: {
                **d,
                "qubits": [{k: v for k, v in d["qubits"][0].items() if k != "prob_meas0_prep1"}] + d["qubits"][1:],
            },
            r"qubits\[0\] is missing 'prob_meas0_prep1'",
        ),
        (
            lambda d: {**d, "gates": d["gates"] + [{"gate": "cx", "qubits": [0, 9], "error": 0.1, "duration_ns": 1}]},
            "must be an integer in 0..4",
        ),
        (lambda d: {**d, "coupling_map": [[0]]}, "must be a pair of qubits"),
    ],
)
def test_broken_files_are_one_line_errors_naming_the_file(tmp_path, mutate, message):
    data = json.loads((SHIPPED / "ibmq_quito.json").read_text())
    out = mutate(data)
    path = _write(tmp_path / "broken.json", out)
    with pytest.raises(QkitError, match=message) as err:
        load_snapshot(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_missing_file_is_a_one_line_error(tmp_path):
    with pytest.raises(QkitError, match="calibration snapshot not found: .*nothing.json") as err:
        load_snapshot(tmp_path / "nothing.json")
    assert "\n" not in str(err.value)


def test_a_backend_without_properties_falls_back_to_its_target():
    from qiskit.providers.fake_provider import GenericBackendV2

    backend = GenericBackendV2(3, seed=5)
    snap = Snapshot.from_backend(backend)
    assert snap.source.startswith("GenericBackendV2 (qiskit ") and snap.calibration_date is None
    q0 = snap.qubits[0]
    assert q0.prob_meas0_prep1 is None and q0.readout_error == pytest.approx(backend.target["measure"][(0,)].error)
    p = q0.readout_error  # one number: both directions use it
    assert np.asarray(snap.noise_model()._local_readout_errors[(0,)].probabilities) == pytest.approx(
        np.array([[1 - p, p], [p, 1 - p]])
    )
    assert Snapshot.from_dict(json.loads(json.dumps(snap.to_dict()))) == snap
