"""``qkit compare-hardware``: exact vs raw vs readout-mitigated on fake backends and snapshots (no mocks)."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from qkit.cli import app

runner = CliRunner()
# A run record without a model: enough for option errors.
V0_RUN = Path(__file__).resolve().parents[1] / "fixtures" / "v0_run"


def _compare(run_dir, *extra):
    result = runner.invoke(
        app, ["compare-hardware", str(run_dir), "--shots", "256", "--seed", "1", "--split", "val", *extra]
    )
    assert result.exit_code == 0, result.output
    return result


def _own_val_auc(run_dir) -> float:
    """The AUC of the run's own (statevector) validation predictions, written when it trained."""
    from qkit.metrics import score

    rows = list(csv.DictReader((run_dir / "predictions-val-statevector.csv").open()))
    labels = np.array([int(r["label"]) for r in rows])
    probs = np.array([[float(r["prob_0"]), float(r["prob_1"])] for r in rows])
    positive = json.loads((run_dir / "test_metrics.json").read_text())["positive_class"]
    return score(labels, probs, positive)["auc"]


@pytest.mark.slow
def test_fake_lagos_exact_raw_readout_and_a_free_rerun(run_copy):
    result = _compare(run_copy, "--backend", "fake_lagos")
    assert "fake_lagos: emulation" in result.output and "plan:" in result.output
    assert "readout calibration" in result.output and "readout mitigation changed" in result.output
    out = run_copy / "hardware" / "fake_lagos" / "compare-val-256shots-x1-seed1"
    assert {p.name for p in out.iterdir()} >= {"compare.json", "compare.png", "compare.md"}
    saved = json.loads((out / "compare.json").read_text())
    rows = {r["setting"]: r for r in saved["rows"]}
    assert [r["setting"] for r in saved["rows"]] == ["exact", "fake_lagos raw", "fake_lagos readout"]
    raw, readout, exact = rows["fake_lagos raw"], rows["fake_lagos readout"], rows["exact"]
    assert readout["metrics"]["delta"]["mean"] < raw["metrics"]["delta"]["mean"]
    assert exact["metrics"]["auc"]["mean"] == pytest.approx(_own_val_auc(run_copy), abs=1e-9)
    assert exact["metrics"]["delta"] == {"mean": 0.0, "std": 0.0}
    assert exact["metrics"]["agreement"] == {"mean": 1.0, "std": 0.0}
    # raw and readout are the same shots: one hardware folder, one set of jobs
    assert raw["path"] == readout["path"] and raw["job_ids"] == readout["job_ids"] and raw["job_ids"]
    hardware = json.loads((Path(raw["path"]) / "hardware.json").read_text())
    assert raw["metrics"] == hardware["unmitigated"]["metrics"] and readout["metrics"] == hardware["metrics"]
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "compare.md").read_text()
    assert "| fake_lagos readout |" in md and "readout mitigation changed mean" in md
    assert md.splitlines()[2].count(" | ") == 6  # |Δ⟨O⟩| did not split a column
    # the same command again submits nothing and gives the same numbers
    again = _compare(run_copy, "--backend", "fake_lagos")
    assert " done" not in again.output
    assert json.loads((out / "compare.json").read_text())["rows"] == saved["rows"]


@pytest.mark.slow
def test_a_calibration_snapshot_is_compared_like_a_fake_backend(run_copy):
    _compare(run_copy, "--backend", "snapshot:ibm_lagos")
    out = run_copy / "hardware" / "ibm_lagos" / "compare-val-256shots-x1-seed1"
    rows = json.loads((out / "compare.json").read_text())["rows"]
    assert [r["setting"] for r in rows] == ["exact", "snapshot:ibm_lagos raw", "snapshot:ibm_lagos readout"]
    assert "calibration snapshot" in rows[1]["source"] and rows[1]["calibration_date"]
    assert rows[2]["metrics"]["delta"]["mean"] < rows[1]["metrics"]["delta"]["mean"]
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"


def test_an_ibm_device_is_compared_with_a_snapshot_of_its_own_calibration(tmp_path):
    """The live-device branch, on a real ResolvedBackend of kind ibm (no account here to reach one)."""
    from qiskit_ibm_runtime.fake_provider import FakeLagosV2

    from qkit.hardware.backends import ResolvedBackend, resolve_backend
    from qkit.hardware.compare import targets

    device = ResolvedBackend("ibm_lagos", "ibm", FakeLagosV2(), "ibm_lagos: IBM Quantum hardware")
    (emulation, path, seed), (real, name, device_seed) = targets(device, tmp_path, 7)
    assert emulation == "snapshot:ibm_lagos" and (seed, real, name, device_seed) == (7, "ibm_lagos", "ibm_lagos", None)
    assert path.startswith(str(tmp_path / "hardware" / "ibm_lagos" / "snapshots" / "ibm_lagos-"))
    resolved = resolve_backend(path)
    assert resolved.kind == "snapshot" and resolved.backend.num_qubits == 7
    assert resolved.snapshot.qubits[5].prob_meas0_prep1 is not None  # asymmetric readout kept
    assert targets(device, tmp_path, 7)[0][1] == path  # same calibration, same file


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backend", "fake_nosuch"], "unknown fake backend 'fake_nosuch'"),
        (["--backend", "fake_lagos", "--shots", "0"], "--shots must be >= 1"),
        (["--backend", "fake_lagos", "--layout", "1,1,2,3"], "--layout repeats a physical qubit"),
    ],
)
def test_bad_options_are_one_line_errors(args, message, tmp_path):
    run = shutil.copytree(V0_RUN, tmp_path / "v0_run")
    result = runner.invoke(app, ["compare-hardware", str(run), *args])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.output
    assert not (run / "hardware").exists()


def test_a_missing_run_folder_is_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["compare-hardware", "nosuch", "--backend", "fake_lagos", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "run 'nosuch' not found" in lines[0]
