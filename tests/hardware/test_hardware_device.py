"""The device path of ``qkit run-hardware --backend ibm_<name>``, end to end: qiskit-ibm-runtime's
real client (service, backend, Batch, executor jobs, ``service.job``, usage) against a local IBM
Quantum service on 127.0.0.1 (``tests/hardware/ibm_service/``), which serves FakeTorino's and
FakeLagosV2's calibration as ibm_torino and ibm_lagos and runs the jobs on Aer with their noise.

Accounts are given the two documented ways: ``save_account`` into a temporary home folder (the
``qkit`` subprocesses) and the ``QISKIT_IBM_*`` variables (runs in this process).
"""

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qkit.cli import app

from ibm_service import LocalIBMQuantum

# Integration tests: each starts qkit processes and a local service, and they share a trained run
# (about 106 s together on 2 cores: interpreter start-ups and imports, the 19-copy emulation,
# real retry backoffs). `make test` runs them; `make test-fast` leaves them out.
pytestmark = pytest.mark.slow
runner = CliRunner()
TORINO = ["--backend", "ibm_torino", "--repeat", "4", "--mitigation", "readout"]
LAGOS = ["--backend", "ibm_lagos", "--max-rows-per-job", "60"]  # 156 rows: 3 jobs


@pytest.fixture
def ibm():
    with LocalIBMQuantum() as service:
        yield service


def _saved_account_env(service: LocalIBMQuantum, home: Path) -> dict:
    service.save_account(home)
    return {**os.environ, **service.env(), "HOME": str(home), "COLUMNS": "200"}


@pytest.fixture
def env_account(ibm, monkeypatch):
    """The account from the environment variables, for ``qkit`` run in this process."""
    for key, value in {
        **ibm.env(),
        "QISKIT_IBM_TOKEN": ibm.token,
        "QISKIT_IBM_URL": ibm.url,
        "QISKIT_IBM_INSTANCE": ibm.crn,
        "QISKIT_IBM_CHANNEL": "ibm_quantum_platform",
    }.items():
        monkeypatch.setenv(key, value)
    return ibm


def _qkit(args: list[str], env: dict, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qkit", "run-hardware", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


def _inprocess(run: Path, args: list[str]):
    return runner.invoke(app, ["run-hardware", str(run), *args], env={"COLUMNS": "200"})


def _record(run: Path, backend: str) -> dict:
    (path,) = (run / "hardware" / backend).glob("*/hardware.json")
    return json.loads(path.read_text())


def _jobs(run: Path, backend: str) -> dict | None:
    files = list((run / "hardware" / backend).glob("*/jobs.json"))
    return json.loads(files[0].read_text()) if files else None


def _sent_all(run: Path, backend: str) -> bool:
    state = _jobs(run, backend)
    entries = (state or {}).get("jobs", []) + ([state["calibration"]] if state and state["calibration"] else [])
    return bool(entries) and all(e["status"] == "submitted" and e["job_id"] for e in entries)


def _digests(service: LocalIBMQuantum) -> list[str]:
    return [entry["digest"] for entry in service.ledger]


def _metrics(record: dict) -> dict:
    return {k: record["metrics"][k]["mean"] for k in ("auc", "accuracy", "delta", "agreement")}


@pytest.fixture(scope="module")
def uninterrupted(quantum_run, tmp_path_factory):
    """One uninterrupted ``--backend ibm_torino`` run (a subprocess, saved account): record, ledger."""
    import shutil

    run = tmp_path_factory.mktemp("device") / quantum_run.name
    shutil.copytree(quantum_run, run, ignore=shutil.ignore_patterns("hardware"))
    with LocalIBMQuantum() as service:
        done = _qkit([str(run), *TORINO], _saved_account_env(service, tmp_path_factory.mktemp("home")))
        return done, run, list(service.ledger), {j.id: j.qpu_seconds for j in service.jobs.values()}


def test_ibm_torino_runs_through_the_real_client_and_matches_the_emulation(uninterrupted):
    done, run, ledger, billed = uninterrupted
    assert done.returncode == 0, done.stderr
    record = _record(run, "ibm_torino")
    assert record["kind"] == "ibm" and record["copies"]["n"] > 1  # a multi-copy run, on the device path
    ids = record["job_ids"] + [record["calibration_job_id"]]
    assert sorted(ids) == sorted(e["id"] for e in ledger)  # every job the service accepted, once
    assert len({e["digest"] for e in ledger}) == len(ledger)
    import qiskit_ibm_runtime.fake_provider as fp

    props = json.loads((Path(fp.__file__).parent / "backends/torino/props_torino.json").read_text())
    reported = dt.datetime.fromisoformat(record["calibration_date"])
    assert reported == dt.datetime.fromisoformat(props["last_update_date"])  # what the service reported
    assert record["qpu_seconds"] == pytest.approx(sum(billed.values()), abs=1e-6)  # IBM's usage, not qkit's estimate
    assert record["qpu_seconds"] != record["plan"]["estimated_qpu_seconds"]
    assert f"{record['qpu_seconds']:.1f} s billed by IBM Quantum" in done.stdout

    emulated = _inprocess(run, [*TORINO[:1], "fake_torino", *TORINO[2:], "--seed", "3"])
    assert emulated.exit_code == 0, emulated.output
    fake = _record(run, "fake_torino")
    assert fake["copies"]["layouts"] == record["copies"]["layouts"]
    device, emulation = _metrics(record), _metrics(fake)
    assert device["delta"] == pytest.approx(emulation["delta"], abs=0.003)  # shot noise: ~0.0005
    assert device["agreement"] == pytest.approx(emulation["agreement"], abs=0.02)
    assert device["auc"] == pytest.approx(emulation["auc"], abs=0.02)


def test_kill_9_after_sending_then_rerun_fetches_by_id_and_sends_nothing_twice(uninterrupted, run_copy, env_account):
    ibm = env_account
    ibm.hold()  # the jobs queue on the device
    proc = subprocess.Popen(
        [sys.executable, "-m", "qkit", "run-hardware", str(run_copy), *TORINO],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not _sent_all(run_copy, "ibm_torino"):
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before its jobs were sent"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sent = list(ibm.accepted())
    assert len(sent) == 2  # calibration + one job, both accepted
    ibm.release()

    again = _inprocess(run_copy, TORINO)
    assert again.exit_code == 0, again.output
    assert "0 submitted now" in again.output
    assert ibm.accepted() == sent and len(set(_digests(ibm))) == len(sent)  # no job accepted twice
    fetched = {path.split("/")[-2] for method, path, status in ibm.requests if path.endswith("/results")}
    assert fetched == set(sent)  # the results came from service.job(id)
    done, run, ledger, _ = uninterrupted
    assert _digests(ibm) == [e["digest"] for e in ledger]  # the same jobs as the uninterrupted run ...
    assert _record(run_copy, "ibm_torino")["metrics"] == _record(run, "ibm_torino")["metrics"]  # ... and scores


@pytest.mark.parametrize("what", ["failed", "cancelled"])
def test_a_failed_or_cancelled_job_is_named_and_only_it_is_sent_again(env_account, run_copy, what):
    ibm = env_account
    if what == "failed":
        ibm.fail_at[1] = "Error code 8041; the device lost its calibration"
    else:
        ibm.cancel_at.add(1)
    first = _inprocess(run_copy, LAGOS)
    assert first.exit_code == 1
    line = first.output.strip().splitlines()[-1]  # after the plan and the jobs done
    bad = ibm.ledger[1]["id"]
    assert line.startswith("error: job ") and bad in line and "rerun the same command" in line
    assert ("was cancelled" if what == "cancelled" else "failed:") in line
    if what == "failed":
        assert "the device lost its calibration" in line  # the service's reason
    sent = list(ibm.accepted())
    assert len(sent) == 3

    again = _inprocess(run_copy, LAGOS)
    assert again.exit_code == 0, again.output
    assert "1 submitted now" in again.output
    assert ibm.accepted()[:3] == sent and len(ibm.accepted()) == 4
    assert ibm.ledger[3]["digest"] == ibm.ledger[1]["digest"]  # only that job, again
    state = _jobs(run_copy, "ibm_lagos")
    assert state["jobs"][1]["earlier_ids"] == [bad]


def test_ctrl_c_leaves_queued_jobs_to_finish_and_the_next_run_fetches_them(env_account, run_copy):
    ibm = env_account
    ibm.hold()
    proc = subprocess.Popen(
        [sys.executable, "-m", "qkit", "run-hardware", str(run_copy), *LAGOS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not _sent_all(run_copy, "ibm_lagos"):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "rerun the same command" in err
    sent = list(ibm.accepted())
    assert len(sent) == 3 and all(ibm.jobs[i].status == "Queued" for i in sent)  # not cancelled
    ibm.release()
    again = _inprocess(run_copy, LAGOS)
    assert again.exit_code == 0, again.output
    assert "0 submitted now" in again.output and ibm.accepted() == sent
    assert all(ibm.jobs[i].status == "Completed" for i in sent)


def test_429_503_and_a_lost_answer_are_retried_and_end_in_success(env_account, run_copy):
    ibm = env_account
    ibm.answer(429, 1, "POST", r"/jobs$")  # rate limited: qkit's own backoff
    ibm.answer(503, 2, "GET", r"/jobs/[^/]+$")  # maintenance: the runtime's retries
    ibm.answer(0, 1, "POST", r"/jobs$", after=True)  # accepted, but the answer never came
    ibm.usage_pending_polls = 1  # IBM computes usage a little after the job
    result = _inprocess(run_copy, LAGOS)
    assert result.exit_code == 0, result.output
    statuses = [status for method, path, status in ibm.requests]
    assert 429 in statuses and 503 in statuses and 0 in statuses
    assert len(ibm.accepted()) == 3 and len(set(_digests(ibm))) == 3  # the lost answer's job was found, not resent
    assert ("GET", "/experimental/api/v1/jobs", 200) in ibm.requests  # ... by its tag
    assert "3 submitted now" in result.output
    record = _record(run_copy, "ibm_lagos")
    assert record["qpu_seconds"] == pytest.approx(sum(j.qpu_seconds for j in ibm.jobs.values()), abs=1e-6)


def test_a_job_whose_answer_was_lost_is_found_by_its_tag_on_the_next_run(env_account, run_copy):
    ibm = env_account
    ibm.answer(0, 1, "POST", r"/jobs$", after=True)  # job 0 accepted, its answer lost ...
    ibm.answer(400, 1, "GET", r"/jobs$")  # ... and the lookup by tag refused this time
    first = _inprocess(run_copy, LAGOS)
    assert first.exit_code == 1
    line = first.output.strip().splitlines()[-1]
    assert line.startswith("error: sending job 0 to ibm_lagos failed:") and "rerun the same command" in line
    entry = _jobs(run_copy, "ibm_lagos")["jobs"][0]
    assert entry["status"] == "sending" and entry["job_id"] is None and entry["tag"] in ibm.ledger[0]["tags"]
    assert len(ibm.accepted()) == 1

    again = _inprocess(run_copy, LAGOS)
    assert again.exit_code == 0, again.output
    assert "2 submitted now" in again.output  # job 0 found by its tag; jobs 1 and 2 sent
    assert len(ibm.accepted()) == 3 and len(set(_digests(ibm))) == 3
    assert _record(run_copy, "ibm_lagos")["job_ids"][0] == ibm.accepted()[0]


def test_a_refused_token_is_one_line_naming_save_account_and_is_written_nowhere(ibm, run_copy, tmp_path, monkeypatch):
    wrong = "a-wrong-token-7d1e99"
    home = tmp_path / "home"
    ibm.save_account(home, token=wrong)
    bad = _qkit([str(run_copy), *LAGOS], {**os.environ, **ibm.env(), "HOME": str(home)})
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "refused the account's token" in bad.stderr
    assert "save_account" in bad.stderr and wrong not in bad.stderr

    for key, value in {
        **ibm.env(),
        "QISKIT_IBM_TOKEN": ibm.token,
        "QISKIT_IBM_URL": ibm.url,
        "QISKIT_IBM_INSTANCE": ibm.crn,
    }.items():
        monkeypatch.setenv(key, value)
    ibm.answer(401, 100, "GET", r"/api/v1/")  # a good key, then the API answers 401
    refused = _inprocess(run_copy, LAGOS)
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1, refused.output
    assert "refused the account's token" in refused.stderr and ibm.token not in refused.output
    ibm.faults.clear()

    ok = _inprocess(run_copy, LAGOS)
    assert ok.exit_code == 0, ok.output
    assert ibm.token not in ok.output
    for path in run_copy.rglob("*"):  # the run folder holds no token, anywhere
        if path.is_file():
            data = path.read_bytes()
            assert ibm.token.encode() not in data and wrong.encode() not in data, path


def test_max_qpu_seconds_counts_what_earlier_attempts_billed(env_account, run_copy):
    from qkit.hardware.jobs import qpu_seconds_so_far
    from qkit.hardware.prepare import prepare_hardware_run

    ibm = env_account
    ibm.seconds_per_shot = 600e-6  # this device bills well above qkit's estimate
    ibm.fail_at[1] = "Error code 1305; ran too long"
    assert _inprocess(run_copy, LAGOS).exit_code == 1  # jobs 0 and 2 done and billed; job 1 failed
    ibm.wait_for(lambda: all(j.status in ("Completed", "Failed") for j in ibm.jobs.values()))
    billed = sum(j.qpu_seconds or 0.0 for j in ibm.jobs.values())

    prep = prepare_hardware_run(run_copy, "ibm_lagos", max_rows_per_job=60)
    assert qpu_seconds_so_far(prep) == (
        pytest.approx(billed, abs=1e-3),
        pytest.approx(prep.plan.job_seconds(1), abs=1e-3),
    )
    # The whole plan's estimate fits the limit (the old check passed); billed + what is left does not.
    limit = round((prep.plan.qpu_seconds + billed + prep.plan.job_seconds(1)) / 2, 1)
    assert prep.plan.qpu_seconds < limit < billed + prep.plan.job_seconds(1)
    refused = _inprocess(run_copy, [*LAGOS, "--max-qpu-seconds", str(limit)])
    assert refused.exit_code == 1
    assert f"already used {billed:.1f} QPU seconds (billed by IBM Quantum)" in refused.output
    assert len(ibm.accepted()) == 3  # nothing sent
    enough = _inprocess(run_copy, [*LAGOS, "--max-qpu-seconds", str(round(billed + prep.plan.job_seconds(1) + 1))])
    assert enough.exit_code == 0, enough.output
    assert len(ibm.accepted()) == 4


def test_a_snapshot_of_the_device_is_its_calibration_as_the_service_reports_it(env_account, tmp_path):
    device = runner.invoke(app, ["hardware", "snapshot", "ibm_lagos", "--out", str(tmp_path / "device.json")])
    assert device.exit_code == 0, device.output
    fake = runner.invoke(app, ["hardware", "snapshot", "fake_lagos", "--out", str(tmp_path / "fake.json")])
    assert fake.exit_code == 0, fake.output
    mine, theirs = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("device", "fake"))
    assert mine["name"] == "ibm_lagos" and "IBM Quantum" in mine["source"]
    same_instant = dt.datetime.fromisoformat(mine["calibration_date"]) == dt.datetime.fromisoformat(
        theirs["calibration_date"]
    )
    assert same_instant, (mine["calibration_date"], theirs["calibration_date"])
    assert mine["qubits"] == theirs["qubits"] and mine["gates"] == theirs["gates"]
    assert ("GET", "/experimental/api/v1/backends/ibm_lagos/properties", 200) in env_account.requests
