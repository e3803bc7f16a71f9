"""``qkit noise study``: points, resume, report, agreement with run-hardware, one-line errors."""

import json

import pytest
from typer.testing import CliRunner

from qkit.cli import app
from qkit.errors import QkitError
from qkit.noise.study import StudyConfig, check_config, parse_mitigation, parse_values, points

runner = CliRunner()


def _error(args):
    result = runner.invoke(app, ["noise", "study", *args])
    assert result.exit_code != 0
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


@pytest.mark.parametrize(
    "vary, values, message",
    [
        ("source", "gate,cosmic", "must be none, gate, readout, relaxation, all; cannot read 'cosmic'"),
        ("scale", "0,-1", "must be numbers >= 0; cannot read '-1'"),
        ("scale", "0,,x", "cannot read 'x'"),
        ("shots", "64,0", "integers >= 1"),
        ("layout", "best,random", "best, default, worst"),
    ],
)
def test_values_that_do_not_parse_are_one_line(vary, values, message, tmp_path):
    with pytest.raises(QkitError, match=message.replace("(", r"\(")):
        parse_values(vary, values)
    assert message.split(";")[0] in _error([str(tmp_path), "--vary", vary, "--values", values])


def test_points_set_one_source_at_a_time():
    config = StudyConfig("source", parse_values("source", None), shots=100)
    opts = {p.label: p.options for p in points(config, {"best": [1, 3, 5, 4]})}
    assert opts["none"]["scale"] == 0.0 and "gate_scale" not in opts["none"]
    assert opts["readout"] == {
        "backend": "fake_lagos",
        "layout": [1, 3, 5, 4],
        "shots": 100,
        "scale": 0.0,
        "readout_scale": 1.0,
    }
    assert opts["all"]["scale"] == 1.0
    with pytest.raises(QkitError, match="--repeat needs --shots"):
        check_config(StudyConfig("scale", [1.0], repeat=3))


def test_bad_options_are_one_line_before_the_run_is_read(tmp_path):
    assert "--repeat needs --shots" in _error([str(tmp_path), "--repeat", "2"])
    assert "--mitigation readout corrects shot counts" in _error([str(tmp_path), "--mitigation", "none,readout"])
    assert "--mitigation must list none, readout" in _error([str(tmp_path), "--mitigation", "zne"])
    assert parse_mitigation("readout,none") == ["readout", "none"]
    assert "--engine runtime emulates the calibrated noise as it is" in _error(
        [str(tmp_path), "--engine", "runtime", "--vary", "scale", "--shots", "64"]
    )
    assert "--vary" in _error([str(tmp_path), "--vary", "weather"])


@pytest.mark.slow
def test_study_end_to_end_with_resume_and_report(run_copy):
    args = [
        "noise",
        "study",
        str(run_copy),
        "--vary",
        "scale",
        "--values",
        "0,1",
        "--shots",
        "256",
        "--repeat",
        "2",
        "--split",
        "val",
        "--name",
        "small",
    ]
    first = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    out = run_copy / "noise" / "small"
    lines = (out / "points.jsonl").read_text().splitlines()
    assert len(lines) == 4
    records = [json.loads(line) for line in lines]
    assert [(r["point"], r["repetition"]) for r in records] == [(0.0, 0), (0.0, 1), (1.0, 0), (1.0, 1)]
    assert records[2]["settings"]["scales"] == {"gate": 1.0, "readout": 1.0, "relaxation": 1.0}
    assert records[2]["settings"]["shots"] == 256 and records[0]["settings"]["physical_qubits"]
    assert records[2]["metrics"] != records[3]["metrics"]  # fresh shots per repetition
    summary = json.loads((out / "summary.json").read_text())
    zero, one = summary["points"]
    assert zero["metrics"]["delta"]["mean"] < one["metrics"]["delta"]["mean"]
    assert "costs the most AUC" in (out / "report.md").read_text() and "| 1.0 |" in (out / "report.md").read_text()
    assert (out / "study.png").read_bytes()[:4] == b"\x89PNG"
    # interrupted after three points: the rerun computes only the missing one
    (out / "points.jsonl").write_text("\n".join(lines[:3]) + "\n")
    again = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert again.exit_code == 0, again.output
    resumed = (out / "points.jsonl").read_text().splitlines()
    assert resumed[:3] == lines[:3] and len(resumed) == 4
    assert json.loads(resumed[3])["metrics"] == records[3]["metrics"]  # same seed, same shots
    other = runner.invoke(app, args[:-2] + ["--name", "small", "--seed", "9"])
    assert other.exit_code == 1 and "holds a study with other settings" in other.output


@pytest.mark.slow
def test_readout_mitigation_of_the_same_shots(run_copy):
    args = [
        "noise",
        "study",
        str(run_copy),
        "--vary",
        "scale",
        "--values",
        "1,2",
        "--shots",
        "512",
        "--split",
        "val",
        "--mitigation",
        "none,readout",
        "--name",
        "mit",
    ]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = json.loads((run_copy / "noise" / "mit" / "summary.json").read_text())["points"]
    by = {(r["point"], r["mitigation"]): r["metrics"]["delta"]["mean"] for r in rows}
    assert by[(1.0, "readout")] < 0.5 * by[(1.0, "none")]
    assert by[(2.0, "readout")] is None  # readout at 2x lagos is a coin flip on one qubit
    lines = [json.loads(line) for line in (run_copy / "noise" / "mit" / "points.jsonl").read_text().splitlines()]
    assert [(r["point"], r["mitigation"]) for r in lines] == [
        (1.0, "none"),
        (1.0, "readout"),
        (2.0, "none"),
        (2.0, "readout"),
    ]
    assert "cannot be mitigated" in lines[3]["note"]


@pytest.mark.slow
def test_scale_one_agrees_with_run_hardware_on_fake_lagos(run_copy, data_root):
    """The density engine's calibrated point against the runtime's local mode, same layout and shots."""
    from qkit.config import EnvConfig
    from qkit.hardware.prepare import prepare_hardware_run
    from qkit.hardware.results import execute_hardware_run
    from qkit.noise.study import run_study

    env = EnvConfig(data_dir=str(data_root))
    prep = prepare_hardware_run(run_copy, "fake_lagos", split="val", shots=1024, repeat=4, seed=3, env=env)
    hardware = execute_hardware_run(prep)["metrics"]
    config = StudyConfig(
        "scale", [1.0], layout=",".join(map(str, prep.physical_qubits)), shots=1024, repeat=4, split="val"
    )
    study = run_study(run_copy, config, env=env)["points"][0]["metrics"]
    assert abs(study["delta"]["mean"] - hardware["delta"]["mean"]) < 0.01
    assert abs(study["auc"]["mean"] - hardware["auc"]["mean"]) < 0.03


@pytest.mark.slow
def test_errors_on_a_real_run_are_one_line(run_copy):
    assert "has 1" in _error([str(run_copy), "--backend", "fake_armonk"])
    assert "unknown fake backend" in _error([str(run_copy), "--vary", "backend", "--values", "fake_lagos,fake_x"])


def test_train_backend_is_the_density_engine_and_clashes_are_one_line(tmp_path):
    result = runner.invoke(
        app, ["train", "--backend", "fake_lagos", "--engine", "connector", "--runs-dir", str(tmp_path)]
    )
    assert result.exit_code == 2 and "--backend trains through a device's noise" in result.output
    clash = runner.invoke(
        app, ["train", "--backend", "fake_lagos", "--engine-option", "backend=fake_quito", "--runs-dir", str(tmp_path)]
    )
    assert clash.exit_code == 2 and "another backend option" in clash.output
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_noise_aware_training_records_the_device_and_run_hardware_keeps_its_layout(data_root, tmp_path):
    args = [
        "train",
        "--backend",
        "fake_lagos",
        "--engine-option",
        "layout=0,1,3,5",
        "--epochs",
        "1",
        "-q",
        "--data-dir",
        str(data_root),
        "--runs-dir",
        str(tmp_path),
        "--name",
        "na",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    run = tmp_path / "na"
    config = json.loads((run / "config.json").read_text())["model"]
    assert config["engine"] == "density" and config["engine_options"]["backend"] == "fake_lagos"
    engine = json.loads((run / "engine.json").read_text())
    assert engine["backend"] == "fake_lagos" and engine["physical_qubits"] == [0, 1, 3, 5]
    assert engine["calibration_date"] and engine["scales"] == {"gate": 1.0, "readout": 1.0, "relaxation": 1.0}
    plan = runner.invoke(app, ["run-hardware", str(run), "--backend", "fake_lagos", "--dry-run"])
    assert plan.exit_code == 0, plan.output
    assert "qubits [0, 1, 3, 5] (the layout the run was trained through" in plan.output


@pytest.mark.slow
def test_runtime_engine_is_the_reference_for_layout_studies(run_copy):
    """The same layout study through the runtime's local mode and through the density engine."""
    common = [
        "noise",
        "study",
        str(run_copy),
        "--vary",
        "layout",
        "--values",
        "best,worst",
        "--shots",
        "1024",
        "--split",
        "val",
    ]
    for engine in ("runtime", "density"):
        result = runner.invoke(app, [*common, "--engine", engine, "--name", engine], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
    summaries = {
        e: json.loads((run_copy / "noise" / e / "summary.json").read_text())["points"] for e in ("runtime", "density")
    }
    runtime, density = ({r["point"]: r for r in summaries[e]} for e in ("runtime", "density"))
    assert runtime["best"]["settings"]["engine"] == "runtime" and runtime["best"]["settings"]["job_ids"]
    for point in ("best", "worst"):
        assert runtime[point]["settings"]["physical_qubits"] == density[point]["settings"]["physical_qubits"]
        assert abs(runtime[point]["metrics"]["delta"]["mean"] - density[point]["metrics"]["delta"]["mean"]) < 0.015
    assert runtime["worst"]["metrics"]["delta"]["mean"] > runtime["best"]["metrics"]["delta"]["mean"] + 0.05


def test_the_finding_never_says_a_point_costs_auc_when_none_lowers_it():
    from types import SimpleNamespace

    from qkit.noise.report import _sentence

    def row(point, auc, delta):
        return {"point": point, "mitigation": "none", "metrics": {"auc": {"mean": auc}, "delta": {"mean": delta}}}

    config = SimpleNamespace(vary="scale", backend="fake_lagos")
    # Measured on a 64 px run: the calibrated noise raised test AUC from 0.9154 to 0.9213.
    text = _sentence(config, [row(0.0, 0.9154, 0.0), row(1.0, 0.9213, 0.126)], {"auc": 0.9154})
    assert (
        text.startswith(
            "None of the noise scales studied on fake_lagos lowers AUC below the exact model's "
            "(0.9154); the lowest is 0.0: 0.9154;"
        )
        and "costs the most" not in text
    )
    text = _sentence(config, [row(0.0, 0.9154, 0.0), row(1.0, 0.9000, 0.126)], {"auc": 0.9154})
    assert text.startswith(
        "Of the noise scales studied on fake_lagos, 1.0 costs the most AUC: 0.9000 (exact model: AUC 0.9154); 1.0 moves"
    )
