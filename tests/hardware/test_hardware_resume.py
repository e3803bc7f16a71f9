"""Resuming a hardware run after the process is killed (kill -9), and retries of transient errors.

The killed run is a real ``qkit run-hardware`` process on a fake backend (the runtime's local
testing mode); nothing of IBM's services is imitated.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qkit.cli import app
from qkit.hardware.jobs import is_transient, with_retries


def _state(run_dir: Path) -> dict | None:
    files = list((run_dir / "hardware").glob("fake_lagos/*/jobs.json"))
    if not files:
        return None
    try:
        return json.loads(files[0].read_text())
    except json.JSONDecodeError:  # never: writes are atomic; a half file would fail here
        raise


@pytest.mark.slow
def test_kill_9_in_the_middle_then_resume_submits_only_unfinished_jobs(run_copy):
    run_dir = run_copy
    args = [
        sys.executable,
        "-m",
        "qkit",
        "run-hardware",
        str(run_dir),
        "--backend",
        "fake_lagos",
        "--repeat",
        "3",
        "--max-rows-per-job",
        "78",
        "--seed",
        "4",
        "--mitigation",
        "readout",
    ]
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    killed_at = None
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        state = _state(run_dir)
        if state and sum(j["status"] == "done" for j in state["jobs"]) >= 2:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed_at = _state(run_dir)
            break
        time.sleep(0.01)
    assert killed_at is not None, "the run finished (or never started) before it could be killed"
    jobs = killed_at["jobs"]
    done = [j for j in jobs if j["status"] == "done"]
    assert len(jobs) == 6 and 2 <= len(done) < len(jobs)
    assert all(j["job_id"] for j in jobs)  # every id was saved before any wait
    assert killed_at["calibration"]["status"] == "done"

    again = CliRunner().invoke(app, args[3:], env={"COLUMNS": "200"})  # the same command, in this process
    assert again.exit_code == 0, again.output
    submitted = int(re.search(r"; (\d+) submitted now;", again.output).group(1))
    assert submitted == len(jobs) - len(done)  # counted: nothing finished was sent twice
    after = _state(run_dir)
    assert after["calibration"]["job_id"] == killed_at["calibration"]["job_id"]
    for before, now in zip(jobs, after["jobs"]):
        if before["status"] == "done":
            assert now["job_id"] == before["job_id"] and now["earlier_ids"] == []
        else:
            assert now["job_id"] != before["job_id"] and now["earlier_ids"] == [before["job_id"]]
    record = json.loads(next((run_dir / "hardware").glob("fake_lagos/*/hardware.json")).read_text())
    assert len(record["repetitions"]) == 3 and record["job_ids"] == [j["job_id"] for j in after["jobs"]]


def test_transient_errors_are_retried_with_backoff_and_others_are_not():
    from qiskit_ibm_runtime.api.exceptions import RequestsApiError

    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RequestsApiError("503 Service Unavailable", status_code=503)
        return "job"

    assert with_retries(flaky, sleep=sleeps.append) == "job"
    assert len(calls) == 3 and sleeps == [2.0, 4.0]

    def refused():
        raise RequestsApiError("401 Unauthorized", status_code=401)

    with pytest.raises(RequestsApiError):
        with_retries(refused, sleep=sleeps.append)
    assert sleeps == [2.0, 4.0]  # no retry of a non-transient error

    def down():
        raise ConnectionError("connection reset")

    with pytest.raises(ConnectionError):
        with_retries(down, retries=2, sleep=sleeps.append)
    assert sleeps[2:] == [2.0, 4.0]
    assert is_transient(TimeoutError()) and not is_transient(ValueError("bad PUB"))
