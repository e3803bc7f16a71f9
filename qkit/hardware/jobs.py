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
under ``earlier_ids``. Submitting and waiting are retried with backoff on transient errors
(network, HTTP 429/5xx); a failed job is reported by id and the run stops, nothing dropped.
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
from qkit.errors import QkitError
from qkit.hardware.prepare import Prepared

JobHook = Callable[[str, str, str], None]     # (event "submitted" | "done", job label, job id)
RETRIES = 4
BACKOFF_S = 2.0
TRANSIENT_HTTP = {-1, 408, 429, 500, 502, 503, 504}
CALIBRATION = "calibration"


def _fingerprint(prep: Prepared) -> dict:
    p = prep.plan
    return {"backend": prep.backend.name, "split": prep.split, "shots": p.shots, "repeat": p.repeat,
            "rows": p.rows, "slices": [list(s) for s in p.jobs], "seed": prep.seed,
            "physical_qubits": prep.physical_qubits, "primitive": prep.primitive.name,
            "mitigation": prep.mitigation, "readout_from": prep.readout_from,
            "calibration_shots": p.calibration_shots,
            **({"copies": prep.copies.layouts} if prep.n_copies > 1 else {}),
            **({"rep_delay": prep.rep_delay} if prep.rep_delay is not None else {})}


def _entry(index, rows=None) -> dict:
    return {"index": index, "rows": rows, "job_id": None, "status": "planned", "earlier_ids": []}


def _load_state(prep: Prepared) -> dict:
    path = prep.out_dir / "jobs.json"
    fingerprint = _fingerprint(prep)
    if path.is_file():
        state = runs.read_json(path)
        if state.get("plan") != fingerprint:
            raise QkitError(f"{path} belongs to another plan (e.g. another --max-rows-per-job); rerun with the "
                            f"same options or move {prep.out_dir} away")
        return state
    return {"plan": fingerprint,
            "calibration": _entry(CALIBRATION) if prep.plan.calibration_shots else None,
            "jobs": [_entry(i, list(s)) for i, s in enumerate(prep.plan.jobs)]}


def result_path(prep: Prepared, index: int | str) -> Path:
    return prep.out_dir / (f"{CALIBRATION}.npz" if index == CALIBRATION else f"job-{index:04d}.npz")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_transient(exc: BaseException) -> bool:
    """Network trouble or an HTTP status worth retrying (not a failed job, not bad input)."""
    from qiskit_ibm_runtime.api.exceptions import RequestsApiError

    if isinstance(exc, RequestsApiError):
        return exc.status_code in TRANSIENT_HTTP
    try:
        import requests

        if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
            return True
    except ImportError:           # requests comes with qiskit-ibm-runtime; be safe anyway
        pass
    return isinstance(exc, (ConnectionError, TimeoutError))


def with_retries(call: Callable[[], Any], retries: int = RETRIES, backoff: float = BACKOFF_S,
                 sleep: Callable[[float], None] = time.sleep) -> Any:
    """``call()``, retried up to ``retries`` times with exponential backoff on transient errors."""
    for attempt in range(retries + 1):
        try:
            return call()
        except Exception as exc:
            if attempt == retries or not is_transient(exc):
                raise
            sleep(backoff * 2 ** attempt)


def _options(prep: Prepared, index: int) -> dict:
    options = {"default_shots": prep.plan.shots}
    if prep.rep_delay is not None:
        options["execution"] = {"rep_delay": prep.rep_delay}
    if prep.seed is not None:
        options["simulator"] = {"seed_simulator": int(prep.seed) + 7919 * index}
    return options


def _retrieve(prep: Prepared, job_id: str | None) -> Any:
    """A device job sent by an earlier, interrupted call, if IBM Quantum still has it and it did not fail."""
    service = getattr(prep.backend.backend, "service", None)
    if not prep.backend.is_hardware or not job_id or service is None:
        return None                # local jobs live only in the process that ran them
    try:
        job = with_retries(lambda: service.job(job_id))
        status = job.status()
    except Exception:
        return None
    return None if str(getattr(status, "name", status)).upper() in ("ERROR", "CANCELLED") else job


def _usage(prep: Prepared, job: Any) -> float | None:
    """QPU seconds IBM billed for a device job; None for emulations (local jobs have no usage)."""
    if not prep.backend.is_hardware:
        return None
    try:
        return float(job.usage())
    except Exception:              # usage not computed yet, or the network: the record says None
        return None


def _submit_calibration(prep: Prepared, mode: Any) -> Any:
    from qkit.hardware.mitigation import CALIBRATION_SHOTS, calibration_circuits
    from qkit.hardware.wide import sample

    circuits = calibration_circuits(prep.backend.backend, prep.primitive.read_qubits)
    return sample(mode, [(c, None, CALIBRATION_SHOTS) for c in circuits], _options(prep, 10_007),
                  getattr(prep.primitive, "noise_of", None))


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


def run_jobs(prep: Prepared, on_event: JobHook | None = None) -> dict:
    """Submit what has no saved result, wait in order and save each; returns the jobs state.

    Counts in ``state["submitted_now"]`` how many jobs this call sent, and the time spent
    inside the primitives (submitting and waiting) in ``state["primitive_seconds"]``.
    """
    from qiskit_ibm_runtime import Batch

    prep.out_dir.mkdir(parents=True, exist_ok=True)
    state = _load_state(prep)
    path = prep.out_dir / "jobs.json"
    entries = ([state["calibration"]] if state["calibration"] else []) + state["jobs"]
    todo = [e for e in entries if not (e["status"] == "done" and result_path(prep, e["index"]).is_file())]
    state["submitted_now"], state["primitive_seconds"] = 0, 0.0
    if not todo:
        return state
    notify = on_event or (lambda *args: None)
    with Batch(backend=prep.backend.backend) as batch:
        handles = {}
        for entry in todo:
            label = str(entry["index"])
            began = time.perf_counter()
            handle = _retrieve(prep, entry["job_id"])
            if handle is None:
                if entry["index"] == CALIBRATION:
                    handle = with_retries(lambda: _submit_calibration(prep, batch))
                else:
                    start, stop = entry["rows"]
                    handle = with_retries(lambda: prep.primitive.submit(batch, prep.values[start:stop],
                                                                        _options(prep, entry["index"]),
                                                                        prep.plan.shots))
                if entry["job_id"]:
                    entry["earlier_ids"].append(entry["job_id"])
                state["submitted_now"] += 1
            state["primitive_seconds"] += time.perf_counter() - began
            entry.update(job_id=handle.job_id(), status="submitted")
            handles[label] = handle
            runs.atomic_write_json(path, state)            # the id is on disk before we wait
            notify("submitted", label, entry["job_id"])
        for entry in todo:
            label = str(entry["index"])
            began = time.perf_counter()
            try:
                collect = _collect_calibration if entry["index"] == CALIBRATION else prep.primitive.collect
                arrays = with_retries(lambda: collect(handles[label]))
            except Exception as exc:
                state["primitive_seconds"] += time.perf_counter() - began
                entry.update(status="failed", error=_first_line(exc))
                runs.atomic_write_json(path, state)
                raise QkitError(f"job {entry['job_id']} ({'readout calibration' if label == CALIBRATION else 'job ' + label}"
                                f" of {len(entries)}) on {prep.backend.name} failed: {_first_line(exc)}; rerun the "
                                "same command to submit it again") from None
            state["primitive_seconds"] += time.perf_counter() - began
            _save(result_path(prep, entry["index"]), arrays)
            entry.update(status="done", qpu_seconds=_usage(prep, handles[label]))
            entry.pop("error", None)
            runs.atomic_write_json(path, state)
            notify("done", label, entry["job_id"])
    return state
