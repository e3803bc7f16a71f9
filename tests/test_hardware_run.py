"""``qkit run-hardware``: plan, submit, save, resume and score on fake backends (runtime local mode, no mocks)."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from qkit.cli import app
from qkit.config import EnvConfig, TrainConfig
from qkit.errors import QkitError
from qkit.hardware.jobs import execute_hardware_run
from qkit.hardware.plan import MAX_EXECUTIONS_PER_JOB, make_plan, prepare_hardware_run

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_root):
    from qkit.train import train

    root = tmp_path_factory.mktemp("hwruns")
    return train(TrainConfig.from_options(backbone="small_cnn", head="quantum", epochs=1),
                 EnvConfig(data_dir=str(data_root)), root)


@pytest.fixture
def run_copy(trained, tmp_path):
    """A fresh copy of the trained run, so that each test has its own hardware/ folder."""
    dest = tmp_path / trained.name
    shutil.copytree(trained, dest, ignore=shutil.ignore_patterns("hardware"))
    return dest


def _jobs(run_dir, backend="fake_lagos"):
    return json.loads((run_dir / "hardware" / backend / "jobs.json").read_text())


def test_plan_splits_rows_and_respects_the_execution_limit():
    plan = make_plan(rows=312, samples=156, repeat=2, shots=1024, bases=1, seconds_per_shot=1e-4,
                     max_rows_per_job=100)
    assert plan.jobs == [(0, 100), (100, 200), (200, 300), (300, 312)]
    assert plan.executions == 312 * 1024
    default = make_plan(rows=3120, samples=156, repeat=20, shots=1024, bases=1, seconds_per_shot=1e-4)
    assert len(default.jobs) == 1 and default.max_rows_per_job * 1024 <= MAX_EXECUTIONS_PER_JOB
    with pytest.raises(QkitError, match="executions per job"):
        make_plan(rows=10, samples=10, repeat=1, shots=1024, bases=2, seconds_per_shot=1e-4,
                  max_rows_per_job=10_000)
    assert plan.qpu_seconds == pytest.approx(312 * 1024 * 1e-4 + 4 * 5.0)


@pytest.mark.slow
def test_end_to_end_on_fake_lagos_with_two_repetitions(run_copy):
    result = runner.invoke(app, ["run-hardware", str(run_copy), "--backend", "fake_lagos", "--repeat", "2",
                                 "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "fake_lagos: emulation" in result.output and "estimated QPU time" in result.output
    out = run_copy / "hardware" / "fake_lagos"
    record = json.loads((out / "hardware.json").read_text())
    assert record["source"].startswith("fake_lagos: emulation")
    assert record["repeat"] == 2 and record["shots"] == 1024 and len(record["repetitions"]) == 2
    assert len(record["physical_qubits"]) == 4
    assert record["job_ids"] and all(record["job_ids"]) and record["job_ids"] == [
        j["job_id"] for j in _jobs(run_copy)["jobs"]]
    assert abs(record["metrics"]["auc"]["mean"] - record["exact"]["auc"]) < 0.05
    lines = (out / "predictions-test-fake_lagos.csv").read_text().splitlines()
    assert len(lines) == 1 + 156
    # the two repetitions sampled independently
    aucs = [r["auc"] for r in record["repetitions"]]
    values = np.load(out / "job-0000.npy")
    assert values.shape == (312, 4) and not np.allclose(values[:156], values[156:])
    assert aucs[0] is not None


@pytest.mark.slow
def test_dry_run_plans_several_jobs_and_submits_nothing(run_copy):
    result = runner.invoke(app, ["run-hardware", str(run_copy), "--backend", "fake_lagos", "--repeat", "2",
                                 "--max-rows-per-job", "50", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "plan: 7 job(s), 7 PUB(s), 312 rows" in result.output
    assert "nothing submitted" in result.output
    assert not (run_copy / "hardware" / "fake_lagos" / "jobs.json").exists()


@pytest.mark.slow
def test_resume_sends_only_the_unfinished_jobs(run_copy, data_root):
    env = EnvConfig(data_dir=str(data_root))
    prep = prepare_hardware_run(run_copy, "fake_lagos", shots=256, repeat=1, max_rows_per_job=40, seed=1, env=env)
    assert len(prep.plan.jobs) == 4

    def stop_after_first(index, job_id):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute_hardware_run(prep, on_job=stop_after_first)
    first = _jobs(run_copy)["jobs"]
    assert [j["status"] for j in first] == ["done", "submitted", "submitted", "submitted"]
    assert all(j["job_id"] for j in first)          # every id was on disk before waiting
    done_id = first[0]["job_id"]
    record = execute_hardware_run(prep)
    second = _jobs(run_copy)["jobs"]
    assert record["submitted_now"] == 3
    assert second[0]["job_id"] == done_id and second[0]["earlier_ids"] == []
    for before, after in zip(first[1:], second[1:]):
        assert after["job_id"] != before["job_id"] and after["earlier_ids"] == [before["job_id"]]
    assert record["job_ids"] == [j["job_id"] for j in second]
    # a third run sends nothing at all
    assert execute_hardware_run(prep)["submitted_now"] == 0
    # deleting one job's saved result sends exactly that job again
    (run_copy / "hardware" / "fake_lagos" / "job-0003.npy").unlink()
    again = execute_hardware_run(prep)
    assert again["submitted_now"] == 1
    assert again["job_ids"][:3] == record["job_ids"][:3] and again["job_ids"][3] != record["job_ids"][3]


@pytest.mark.slow
def test_another_plan_in_the_same_folder_is_refused(run_copy, data_root):
    env = EnvConfig(data_dir=str(data_root))
    prep = prepare_hardware_run(run_copy, "fake_lagos", shots=64, max_rows_per_job=200, seed=1, env=env)
    execute_hardware_run(prep)
    other = prepare_hardware_run(run_copy, "fake_lagos", shots=128, max_rows_per_job=200, seed=1, env=env)
    with pytest.raises(QkitError, match="another plan"):
        execute_hardware_run(other)


def _error(args):
    result = runner.invoke(app, ["run-hardware", *args])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.output   # the plan may come first
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
    assert not (run_copy / "hardware" / "fake_lagos" / "jobs.json").exists()
    assert "has 1" in _error([str(run_copy), "--backend", "fake_armonk"])        # 4 qubits on a 1-qubit device
    assert "IBM Quantum" in _error([str(run_copy), "--backend", "ibm_nowhere"])
    bare = tmp_path / "bare"
    shutil.copytree(run_copy, bare)
    (bare / "model.pt").unlink()
    assert "model.pt" in _error([str(bare), "--backend", "fake_lagos"])
