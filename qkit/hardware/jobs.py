"""``qkit run-hardware``, part 2: submit the planned jobs in one Batch, save as they arrive, resume.

Everything lands in ``<run>/hardware/<backend>/<plan key>/`` (``Prepared.key``: split, shots,
repetitions, mitigation, qubits, seed; the same command finds the same folder):

- ``jobs.json``: the plan's fingerprint and one entry per job (rows, job id, status). A job's
  id is written BEFORE its result is awaited, so an interrupted run says what it sent;
- ``calibration.npz`` (readout mitigation from the device): the shots of the |0...0> and
  |1...1> calibration circuits, run first in the same Batch;
- ``job-<i>.npz``: a job's result as it came back (packed shots per basis, or the Estimator's
  values), written as soon as the job finishes (local jobs cannot be retrieved later).

Re-running continues: jobs whose results are saved are not sent again. A job that was sent
but not saved is fetched by id from IBM Quantum when the backend is a device and the job did
not fail; otherwise (local jobs cannot be fetched) it is submitted anew, its earlier id kept
under ``earlier_ids`` (with what IBM billed for it, ``earlier_qpu_seconds``). Before a job is
sent its entry is "sending" with a tag (``qkit.hardware.device``): a device job whose id never
reached the disk is found by that tag instead of being sent twice. Submitting and waiting are
retried with backoff on transient errors (network, HTTP 429/5xx); a failed or cancelled job is
reported by id with the service's reason and the run stops, nothing dropped. Each device job's
billed QPU seconds (``qpu_seconds``) are read from IBM's usage data once it is computed.
The jobs run inside one ``qiskit_ibm_runtime.Batch``; emulations are seeded per job (the
seed advanced by the job index) so that jobs sample independently.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from qkit import runs
from qkit.errors import QkitError, first_line
from qkit.hardware import device
from qkit.hardware.prepare import Prepared

JobHook = Callable[[str, str, str], None]  # (event "submitted" | "done", job label, job id)
RETRIES = 4
BACKOFF_S = 2.0
TRANSIENT_HTTP = {-1, 408, 429, 500, 502, 503, 504}
CALIBRATION = "calibration"


def _fingerprint(prep: Prepared) -> dict:
    p = prep.plan
    return {
        "backend": prep.backend.name,
        "split": prep.split,
        "shots": p.shots,
        "repeat": p.repeat,
        "rows": p.rows,
        "slices": [list(s) for s in p.jobs],
        "seed": prep.seed,
        "physical_qubits": prep.physical_qubits,
        "primitive": prep.primitive.name,
        "mitigation": prep.mitigation,
        "readout_from": prep.readout_from,
        "calibration_shots": p.calibration_shots,
        **({"copies": prep.copies.layouts} if prep.n_copies > 1 else {}),
        **({"rep_delay": prep.rep_delay} if prep.rep_delay is not None else {}),
    }


def _entry(index, rows=None) -> dict:
    return {"index": index, "rows": rows, "job_id": None, "status": "planned", "earlier_ids": []}


def _load_state(prep: Prepared) -> dict:
    path = prep.out_dir / "jobs.json"
    fingerprint = _fingerprint(prep)
    if path.is_file():
        state = runs.read_json(path)
        if state.get("plan") != fingerprint:
            raise QkitError(
                f"{path} belongs to another plan (e.g. another --max-rows-per-job); rerun with the "
                f"same options or move {prep.out_dir} away"
            )
        return state
    return {
        "plan": fingerprint,
        "calibration": _entry(CALIBRATION) if prep.plan.calibration_shots else None,
        "jobs": [_entry(i, list(s)) for i, s in enumerate(prep.plan.jobs)],
    }


def entries_of(state: dict) -> list[dict]:
    """The readout calibration's entry (if the plan has one), then the jobs', in sending order."""
    return ([state["calibration"]] if state["calibration"] else []) + state["jobs"]


def result_path(prep: Prepared, index: int | str) -> Path:
    return prep.out_dir / (f"{CALIBRATION}.npz" if index == CALIBRATION else f"job-{index:04d}.npz")


def _is_transient(exc: BaseException) -> bool | None:
    from qiskit_ibm_runtime.api.exceptions import RequestsApiError

    if isinstance(exc, RequestsApiError):
        return exc.status_code in TRANSIENT_HTTP
    try:
        import requests

        if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
            return True
    except ImportError:  # requests comes with qiskit-ibm-runtime; be safe anyway
        pass
    return True if isinstance(exc, (ConnectionError, TimeoutError)) else None


def is_transient(exc: BaseException) -> bool:
    """Network trouble or an HTTP status worth retrying (not a failed job, not bad input), also
    when the runtime wrapped it (``IBMRuntimeError("Failed to run program: ...") from None`` keeps
    the HTTP error as its context)."""
    seen = 0
    while exc is not None and seen < 8:
        verdict = _is_transient(exc)
        if verdict is not None:
            return verdict
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def with_retries(
    call: Callable[[], Any],
    retries: int = RETRIES,
    backoff: float = BACKOFF_S,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """``call()``, retried up to ``retries`` times with exponential backoff on transient errors."""
    for attempt in range(retries + 1):
        try:
            return call()
        except Exception as exc:
            if attempt == retries or not is_transient(exc):
                raise
            sleep(backoff * 2**attempt)


def _options(prep: Prepared, index: int, tag: str | None = None) -> dict:
    options = {"default_shots": prep.plan.shots}
    if prep.rep_delay is not None:
        options["execution"] = {"rep_delay": prep.rep_delay}
    if prep.seed is not None:
        options["simulator"] = {"seed_simulator": int(prep.seed) + 7919 * index}
    if tag is not None:
        options["environment"] = {"job_tags": [tag]}
    return options


def _send(prep: Prepared, entry: dict, submit: Callable[[], Any]) -> Any:
    """``submit()`` with retries; on a device, a retry first asks whether IBM accepted the lost
    attempt (by its tag), so a dropped answer never makes a second job."""
    tried = []

    def attempt():
        if tried:
            found = device.find_by_tag(prep, entry.get("tag"), lambda call: call())
            if found is not None:
                return found
        tried.append(1)
        return submit()

    return with_retries(attempt)


def _submit_calibration(prep: Prepared, mode: Any, tag: str | None = None) -> Any:
    from qkit.hardware.mitigation import CALIBRATION_SHOTS, calibration_circuits
    from qkit.hardware.wide import sample

    circuits = calibration_circuits(prep.backend.backend, prep.primitive.read_qubits)
    return sample(
        mode,
        [(c, None, CALIBRATION_SHOTS) for c in circuits],
        _options(prep, 10_007, tag),
        getattr(prep.primitive, "noise_of", None),
    )


def _collect_calibration(job: Any) -> dict[str, np.ndarray]:
    """The packed shots of the |0...0> and |1...1> circuits (classical register ``c``)."""
    return {f"prepare{k}": np.asarray(pub.data.c.array) for k, pub in enumerate(job.result())}


def _save(path: Path, arrays: dict) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def load_result(prep: Prepared, index: int | str) -> dict:
    with np.load(result_path(prep, index)) as data:
        return {k: data[k] for k in data.files}


def _failure(prep: Prepared, entry: dict, handle: Any, exc: BaseException, total: int) -> QkitError:
    """One line: the job's id, what happened to it (the service's reason), and what to do."""
    what = "readout calibration" if entry["index"] == CALIBRATION else f"job {entry['index']}"
    status = ""
    try:
        status = device.status_name(handle) if device.service_of(prep) is not None else ""
    except Exception:
        pass
    happened = "was cancelled" if status == "CANCELLED" else "failed"
    return QkitError(
        f"job {entry['job_id']} ({what} of {total}) on {prep.backend.name} {happened}: "
        f"{first_line(exc)}; rerun the same command to send only this job again"
    )


def _start(prep: Prepared, entry: dict, mode: Any, state: dict, save: Callable[[], None]) -> tuple[Any, bool]:
    """The job of ``entry`` and whether it was sent now: fetched back when a device job an earlier
    call sent is still there, else sent (its state "sending" and its tag on disk first)."""
    handle = device.retrieve(prep, entry["job_id"], with_retries)
    if handle is None and entry["status"] == "sending":  # killed before the id was saved
        handle = device.find_by_tag(prep, entry.get("tag"), with_retries)
    if handle is not None:
        return handle, False
    if entry["job_id"]:  # failed, cancelled, or an emulation's job (gone with its process)
        entry["earlier_ids"].append(entry["job_id"])
        spent = device.billed_by_id(prep, entry["job_id"])
        if spent:
            entry["earlier_qpu_seconds"] = round(entry.get("earlier_qpu_seconds", 0.0) + spent, 3)
        entry["job_id"] = None
    tag = device.job_tag(state["plan"], entry["index"], len(entry["earlier_ids"])) if prep.backend.is_hardware else None
    entry.update(status="sending", tag=tag)
    save()
    if entry["index"] == CALIBRATION:
        submit = lambda: _submit_calibration(prep, mode, tag)  # noqa: E731
    else:
        start, stop = entry["rows"]
        submit = (  # noqa: E731
            lambda: prep.primitive.submit(
                mode,
                prep.values[start:stop],
                _options(prep, entry["index"], tag),
                prep.plan.shots,
            )
        )
    return _send(prep, entry, submit), True


def qpu_seconds_so_far(prep: Prepared) -> tuple[float, float]:
    """(QPU seconds IBM already billed for this plan, earlier attempts included; the estimate of
    what the rest still needs). Emulations bill nothing: (0, the whole plan's estimate)."""
    path = prep.out_dir / "jobs.json"
    if device.service_of(prep) is None or not path.is_file():
        return 0.0, prep.plan.qpu_seconds
    state = _load_state(prep)
    billed, needed = 0.0, 0.0
    for entry in entries_of(state):
        billed += entry.get("earlier_qpu_seconds", 0.0)
        seconds = entry.get("qpu_seconds")
        if seconds is None and entry["job_id"]:  # sent, then interrupted: finished (and billed) since?
            seconds = device.billed_by_id(prep, entry["job_id"])
        if entry["status"] == "failed":  # billed for what it ran, and sent again
            billed += seconds or 0.0
            seconds = None
        if seconds is None:
            needed += prep.plan.job_seconds(entry["index"])
        else:
            billed += seconds
    return round(billed, 3), round(needed, 3)


def settle_usage(prep: Prepared, state: dict, tries: int = device.USAGE_TRIES) -> bool:
    """Fill in IBM's billed seconds of finished device jobs that had none yet (asked a few times);
    True if any was found."""
    if device.service_of(prep) is None:
        return False
    found = False
    for entry in entries_of(state):
        if entry["status"] == "done" and entry.get("qpu_seconds") is None:
            entry["qpu_seconds"] = device.billed_by_id(prep, entry["job_id"], tries)
            found |= entry["qpu_seconds"] is not None
    return found


def run_jobs(prep: Prepared, on_event: JobHook | None = None) -> dict:
    """Submit what has no saved result, wait in order and save each; returns the jobs state.

    Counts in ``state["submitted_now"]`` how many jobs this call sent, and the time spent
    inside the primitives (submitting and waiting) in ``state["primitive_seconds"]``.
    """
    from qiskit_ibm_runtime import Batch

    prep.out_dir.mkdir(parents=True, exist_ok=True)
    state = _load_state(prep)
    path = prep.out_dir / "jobs.json"
    save = lambda: runs.atomic_write_json(path, state)  # noqa: E731
    entries = entries_of(state)
    todo = [e for e in entries if not (e["status"] == "done" and result_path(prep, e["index"]).is_file())]
    state["submitted_now"], state["primitive_seconds"] = 0, 0.0
    if not todo:
        if settle_usage(prep, state, tries=1):
            save()
        return state
    notify = on_event or (lambda *args: None)
    with Batch(backend=prep.backend.backend) as batch:
        handles = {}
        for entry in todo:
            label = str(entry["index"])
            began = time.perf_counter()
            try:
                handle, sent = _start(prep, entry, batch, state, save)
            except Exception as exc:  # not transient, or still failing after the retries
                save()
                what = "the readout calibration" if label == CALIBRATION else f"job {label}"
                raise QkitError(
                    f"sending {what} to {prep.backend.name} failed: {first_line(exc)}; rerun the "
                    "same command (jobs already sent are fetched, not sent again)"
                ) from None
            state["submitted_now"] += sent
            state["primitive_seconds"] += time.perf_counter() - began
            entry.update(job_id=handle.job_id(), status="submitted")
            handles[label] = handle
            save()  # the id is on disk before we wait
            notify("submitted", label, entry["job_id"])
        for entry in todo:
            label = str(entry["index"])
            began = time.perf_counter()
            try:
                collect = _collect_calibration if entry["index"] == CALIBRATION else prep.primitive.collect
                arrays = with_retries(lambda: collect(handles[label]))
            except Exception as exc:
                state["primitive_seconds"] += time.perf_counter() - began
                entry.update(status="failed", error=first_line(exc))
                save()
                raise _failure(prep, entry, handles[label], exc, len(entries)) from None
            state["primitive_seconds"] += time.perf_counter() - began
            _save(result_path(prep, entry["index"]), arrays)
            entry.update(status="done", qpu_seconds=device.billed(prep, handles[label]))
            entry.pop("error", None)
            save()
            notify("done", label, entry["job_id"])
    settle_usage(prep, state)
    save()
    return state
