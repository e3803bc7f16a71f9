"""``qkit hardware`` through Typer's CliRunner: list, show (+ error map PNG), snapshot."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from qkit.cli import app
from qkit.hardware.snapshot import BUILTIN_DIR

SHIPPED = BUILTIN_DIR  # the snapshots qkit ships (package data)
runner = CliRunner()


def test_list_shows_the_shipped_snapshots():
    result = runner.invoke(app, ["hardware", "list", "--dir", str(SHIPPED)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("ibm_lagos", "ibmq_quito", "cx id rz sx x", "2024-05-27T15:51:15-03:00", "FakeQuitoV2"):
        assert text in result.output


def test_list_with_fake_names_and_an_unreadable_file(tmp_path):
    shutil.copy(SHIPPED / "ibmq_quito.json", tmp_path)
    (tmp_path / "broken.json").write_text("{")
    result = runner.invoke(app, ["hardware", "list", "--dir", str(tmp_path), "--fake"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "ibmq_quito" in result.output and "unreadable" in result.output
    assert "fake_lagos" in result.output and "fake_torino" in result.output
    empty = runner.invoke(app, ["hardware", "list", "--dir", str(tmp_path / "none")])
    assert empty.exit_code == 0 and "no calibration snapshots" in empty.output


def test_show_prints_both_readout_directions_and_writes_an_error_map(tmp_path):
    png = tmp_path / "map.png"
    result = runner.invoke(
        app, ["hardware", "show", "ibm_lagos", "--dir", str(SHIPPED), "--plot", str(png)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "p(0|1)" in result.output and "p(1|0)" in result.output
    assert "0.3040" in result.output and "0.6236" in result.output  # qubit 2, both directions
    assert "two-qubit gates" in result.output and "0.94%" in result.output  # cx 0-1
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    from matplotlib.image import imread

    assert imread(png).shape[0] > 300


def test_snapshot_writes_json_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "quito.json"
    first = runner.invoke(app, ["hardware", "snapshot", "fake_quito", "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert json.loads(out.read_text()) == json.loads((SHIPPED / "ibmq_quito.json").read_text())
    out.write_text("{}")
    again = runner.invoke(app, ["hardware", "snapshot", "fake_quito", "--out", str(out)])
    assert again.exit_code == 1 and "exists; pass --force" in again.output
    assert out.read_text() == "{}"
    forced = runner.invoke(app, ["hardware", "snapshot", "fake_quito", "--out", str(out), "--force"])
    assert forced.exit_code == 0 and json.loads(out.read_text())["name"] == "ibmq_quito"


def test_snapshot_default_path_is_hardware_slash_device_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["hardware", "snapshot", "fake_quito"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "hardware" / "ibmq_quito.json").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["hardware", "snapshot", "fake_nosuch"], "unknown fake backend 'fake_nosuch'"),
        (["hardware", "show", "nosuch"], "calibration snapshot not found"),
    ],
)
def test_unknown_names_are_one_line_errors(args, message, tmp_path):
    result = runner.invoke(app, args + (["--dir", str(tmp_path)] if args[1] == "show" else []))
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]


def test_hardware_help_imports_no_qiskit():
    import subprocess
    import sys

    code = (
        "import sys\nfrom qkit.cli import app\nrc = app(['hardware', '--help'], standalone_mode=False)\n"
        "print('LOADED', [m for m in ('torch', 'qiskit', 'qiskit_aer', 'matplotlib') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "snapshot" in out and "show" in out and "LOADED []" in out


def test_built_in_snapshots_are_found_from_any_folder(tmp_path, monkeypatch):
    """snapshot:ibm_lagos and `hardware show ibm_lagos` work outside a checkout; ./hardware comes first."""
    from qkit.hardware.backends import resolve_backend

    monkeypatch.chdir(tmp_path)
    shown = runner.invoke(app, ["hardware", "show", "ibm_lagos"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "ibm_lagos: 7 qubits" in shown.output
    listed = runner.invoke(app, ["hardware", "list"], env={"COLUMNS": "200"})
    assert "no calibration snapshots in hardware" in listed.output and "built into qkit" in listed.output
    assert "ibmq_quito" in listed.output
    assert str(BUILTIN_DIR) in resolve_backend("snapshot:ibm_lagos").source
    mine = json.loads((BUILTIN_DIR / "ibm_lagos.json").read_text())
    mine["calibration_date"] = "2030-01-01T00:00:00Z"  # a user's own snapshot of the same name wins
    (tmp_path / "hardware").mkdir()
    (tmp_path / "hardware" / "ibm_lagos.json").write_text(json.dumps(mine))
    assert "2030-01-01" in resolve_backend("snapshot:ibm_lagos").source
