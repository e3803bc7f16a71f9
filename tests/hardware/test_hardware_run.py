"""``qkit run-hardware``: plan, submit, save, resume and score on fake backends (runtime local mode, no mocks)."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from qkit.cli import app
from qkit.config import EnvConfig
from qkit.errors import QkitError
from qkit.hardware.plan import MAX_EXECUTIONS_PER_JOB, make_plan
from qkit.hardware.prepare import prepare_hardware_run
from qkit.hardware.results import execute_hardware_run

runner = CliRunner()


def _out(run_dir, backend="fake_lagos"):
    """The one plan folder under hardware/<backend>/ (tests run one plan per run copy)."""
    folders = [p for p in (run_dir / "hardware" / backend).iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def _jobs(run_dir, backend="fake_lagos"):
    return json.loads((_out(run_dir, backend) / "jobs.json").read_text())


def test_plan_splits_rows_and_respects_the_execution_limit():
    plan = make_plan(rows=312, samples=156, repeat=2, shots=1024, bases=1, seconds_per_shot=1e-4, max_rows_per_job=100)
    assert plan.jobs == [(0, 100), (100, 200), (200, 300), (300, 312)]
    assert plan.executions == 312 * 1024
    default = make_plan(rows=3120, samples=156, repeat=20, shots=1024, bases=1, seconds_per_shot=1e-4)
    assert len(default.jobs) == 1 and default.max_rows_per_job * 1024 <= MAX_EXECUTIONS_PER_JOB
    with pytest.raises(QkitError, match="executions per job"):
        make_plan(rows=10, samples=10, repeat=1, shots=1024, bases=2, seconds_per_shot=1e-4, max_rows_per_job=10_000)
    assert plan.qpu_seconds == pytest.approx(312 * 1024 * 1e-4 + 4 * 5.0)


def test_calibration_job_counts_in_the_plan():
    plan = make_plan(
        rows=156, samples=156, repeat=1, shots=1024, bases=1, seconds_per_shot=1e-4, calibration_shots=2 * 8192
    )
    assert plan.n_jobs == 2 and plan.executions == 156 * 1024 + 16384
    assert plan.qpu_seconds == pytest.approx(plan.executions * 1e-4 + 2 * 5.0)
    assert plan.to_dict()["pubs"] == 1 + 2


@pytest.mark.slow
def test_end_to_end_on_fake_lagos_with_readout_mitigation(run_copy):
    result = runner.invoke(
        app,
        [
            "run-hardware",
            str(run_copy),
            "--backend",
            "fake_lagos",
            "--repeat",
            "2",
            "--seed",
            "5",
            "--mitigation",
            "readout",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "fake_lagos: emulation" in result.output and "estimated QPU time" in result.output
    assert "readout calibration" in result.output and "calibrated" in result.output
    out = _out(run_copy)
    assert (
        out.name
        == "test-1024shots-x2-readout-q"
        + ".".join(map(str, json.loads((out / "hardware.json").read_text())["physical_qubits"]))
        + "-seed5"
    )
    record = json.loads((out / "hardware.json").read_text())
    assert record["source"].startswith("fake_lagos: emulation") and record["primitive"] == "sampler"
    assert record["calibration_date"] and record["layout"]["method"] == "calibrated"
    assert record["repeat"] == 2 and record["shots"] == 1024 and len(record["repetitions"]) == 2
    assert len(record["physical_qubits"]) == 4 and 2 not in record["physical_qubits"]  # 46% readout error
    state = _jobs(run_copy)
    assert record["job_ids"] == [j["job_id"] for j in state["jobs"]] and all(record["job_ids"])
    assert record["calibration_job_id"] == state["calibration"]["job_id"]
    # the calibration circuits measured the readout the local emulation applies (the Target's error)
    from qiskit_ibm_runtime.fake_provider import FakeLagosV2

    target = FakeLagosV2().target
    for q, m in record["readout"].items():
        expected = target["measure"][(int(q),)].error
        assert abs(m["p01"] - expected) < 0.02 and abs(m["p10"] - expected) < 0.02
    # mthree brings the outputs much closer to exact; the raw values were scored from the same shots
    raw, mitigated = record["unmitigated"]["metrics"], record["metrics"]
    assert mitigated["delta"]["mean"] < 0.6 * raw["delta"]["mean"]
    assert mitigated["agreement"]["mean"] >= 0.95
    assert abs(mitigated["auc"]["mean"] - record["exact"]["auc"]) < 0.05
    lines = (out / "predictions-test-fake_lagos.csv").read_text().splitlines()
    assert len(lines) == 1 + 156
    assert (out / "hardware.png").read_bytes()[:4] == b"\x89PNG"
    # the two repetitions sampled independently
    assert record["repetitions"][0]["delta"] != record["repetitions"][1]["delta"]


@pytest.mark.slow
def test_trex_runs_the_estimator_at_resilience_level_one(run_copy, data_root):
    env = EnvConfig(data_dir=str(data_root))
    prep = prepare_hardware_run(
        run_copy, "fake_lagos", split="val", shots=64, seed=3, env=env, mitigation="trex", layout="default"
    )
    assert prep.primitive.name == "estimator" and prep.primitive.engine.resilience_level == 1
    assert prep.layout["method"] == "default" and prep.plan.calibration_shots == 0
    record = execute_hardware_run(prep)
    assert record["mitigation"] == "trex" and record["unmitigated"] is None
    assert record["metrics"]["delta"]["mean"] < 0.15 and len(record["job_ids"]) == 1


@pytest.mark.slow
def test_readout_from_calibration_spends_no_calibration_shots(run_copy, data_root):
    env = EnvConfig(data_dir=str(data_root))
    prep = prepare_hardware_run(
        run_copy,
        "snapshot:ibm_lagos",
        split="val",
        shots=512,
        seed=2,
        env=env,
        mitigation="readout",
        readout_from="calibration",
        layout=[1, 3, 5, 4],
    )
    assert prep.plan.calibration_shots == 0 and prep.layout == {"method": "given", "physical_qubits": [1, 3, 5, 4]}
    record = execute_hardware_run(prep)
    assert record["calibration_job_id"] is None and record["readout_from"] == "calibration"
    lagos5 = prep.backend.snapshot.qubits[5]  # the snapshot's own numbers, both directions
    assert record["readout"]["5"] == {
        "p01": pytest.approx(lagos5.prob_meas0_prep1, abs=1e-6),
        "p10": pytest.approx(lagos5.prob_meas1_prep0, abs=1e-6),
    }
    assert record["metrics"]["delta"]["mean"] < 0.7 * record["unmitigated"]["metrics"]["delta"]["mean"]


@pytest.mark.slow
def test_dry_run_plans_several_jobs_and_submits_nothing(run_copy):
    result = runner.invoke(
        app,
        [
            "run-hardware",
            str(run_copy),
            "--backend",
            "fake_lagos",
            "--repeat",
            "2",
            "--max-rows-per-job",
            "50",
            "--dry-run",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "plan: 7 job(s), 7 PUB(s), 312 rows" in result.output
    assert "nothing submitted" in result.output
    assert not (run_copy / "hardware").exists()


@pytest.mark.slow
def test_resume_sends_only_the_unfinished_jobs(run_copy, data_root):
    env = EnvConfig(data_dir=str(data_root))
    prep = prepare_hardware_run(
        run_copy, "fake_lagos", shots=256, repeat=1, max_rows_per_job=40, seed=1, env=env, mitigation="readout"
    )
    assert len(prep.plan.jobs) == 4 and prep.plan.n_jobs == 5

    def stop_after_first(event, label, job_id):
        if event == "done" and label == "0":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute_hardware_run(prep, on_event=stop_after_first)
    first = _jobs(run_copy)
    assert first["calibration"]["status"] == "done"
    assert [j["status"] for j in first["jobs"]] == ["done", "submitted", "submitted", "submitted"]
    assert all(j["job_id"] for j in first["jobs"])  # every id was on disk before waiting
    record = execute_hardware_run(prep)
    second = _jobs(run_copy)
    assert record["submitted_now"] == 3
    assert second["calibration"]["job_id"] == first["calibration"]["job_id"]
    assert second["jobs"][0]["job_id"] == first["jobs"][0]["job_id"] and second["jobs"][0]["earlier_ids"] == []
    for before, after in zip(first["jobs"][1:], second["jobs"][1:]):
        assert after["job_id"] != before["job_id"] and after["earlier_ids"] == [before["job_id"]]
    assert record["job_ids"] == [j["job_id"] for j in second["jobs"]]
    # a third run sends nothing at all and scores the same shots to the same numbers
    third = execute_hardware_run(prep)
    assert third["submitted_now"] == 0 and third["metrics"] == record["metrics"]
    # deleting one job's saved result sends exactly that job again
    (_out(run_copy) / "job-0003.npz").unlink()
    again = execute_hardware_run(prep)
    assert again["submitted_now"] == 1
    assert again["job_ids"][:3] == record["job_ids"][:3] and again["job_ids"][3] != record["job_ids"][3]


@pytest.mark.slow
def test_other_options_get_their_own_folder_and_another_slicing_is_refused(run_copy, data_root):
    env = EnvConfig(data_dir=str(data_root))
    prep = prepare_hardware_run(run_copy, "fake_lagos", shots=64, max_rows_per_job=200, seed=1, env=env)
    execute_hardware_run(prep)
    other = prepare_hardware_run(run_copy, "fake_lagos", shots=128, max_rows_per_job=200, seed=1, env=env)
    assert other.out_dir != prep.out_dir
    execute_hardware_run(other)
    assert sorted(p.name for p in prep.out_dir.parent.iterdir()) == sorted([prep.key, other.key])
    sliced = prepare_hardware_run(run_copy, "fake_lagos", shots=64, max_rows_per_job=100, seed=1, env=env)
    assert sliced.out_dir == prep.out_dir
    with pytest.raises(QkitError, match="another plan"):
        execute_hardware_run(sliced)


def _error(args):
    result = runner.invoke(app, ["run-hardware", *args])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.output  # the plan may come first
    return errors[0]


def test_missing_run_folder_is_one_line(tmp_path):
    assert "not found" in _error([str(tmp_path / "nope"), "--backend", "fake_lagos", "--runs-dir", str(tmp_path)])


def test_bad_counts_are_one_line(tmp_path):
    assert "--shots" in _error([str(tmp_path), "--backend", "fake_lagos", "--shots", "0"])
    assert "--repeat" in _error([str(tmp_path), "--backend", "fake_lagos", "--repeat", "0"])


@pytest.mark.slow
def test_errors_on_a_real_run_are_one_line(run_copy, tmp_path):
    assert "unknown fake backend" in _error([str(run_copy), "--backend", "fake_nowhere"])
    assert "max-qpu-seconds" in _error([str(run_copy), "--backend", "fake_lagos", "--max-qpu-seconds", "1"])
    assert not (run_copy / "hardware").exists()
    assert "has 1" in _error([str(run_copy), "--backend", "fake_armonk"])  # 4 qubits on a 1-qubit device
    assert "IBM Quantum" in _error([str(run_copy), "--backend", "ibm_nowhere"])
    bare = tmp_path / "bare"
    shutil.copytree(run_copy, bare)
    (bare / "model.pt").unlink()
    assert "model.pt" in _error([str(bare), "--backend", "fake_lagos"])
    assert "--layout has 2 qubits" in _error([str(run_copy), "--backend", "fake_lagos", "--layout", "0,1"])
    assert "lacks" in _error([str(run_copy), "--backend", "fake_lagos", "--layout", "0,1,2,99"])
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "qkit-calibration-snapshot", "num_qubits": ')
    assert "broken.json" in _error([str(run_copy), "--backend", str(broken)])
    assert not (run_copy / "hardware").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--mitigation", "zne"], "--mitigation"),
        (["--readout-from", "calibration"], "--readout-from calibration needs --mitigation readout"),
        (["--layout", "1,1,2,3"], "repeats a physical qubit"),
        (["--layout", "best"], "--layout must be calibrated, default or physical qubits"),
    ],
)
def test_bad_options_are_one_line_before_the_run_is_read(tmp_path, args, message):
    assert message in _error([str(tmp_path / "never-read"), "--backend", "fake_lagos", *args])
