"""What only a job on an IBM device has: an id to fetch it back by, a tag to find it when its id was
lost, and the QPU seconds IBM bills for it. Emulations (fake backends, snapshots) have none of
these: their jobs live in the process that ran them, and nothing is billed.

- ``retrieve``: a job an earlier, interrupted call sent, fetched by id (``service.job``), unless
  it failed or was cancelled (that one is sent again).
- ``job_tag`` / ``find_by_tag``: every device job carries a tag naming its plan, its place in the
  plan and its attempt. A submission whose answer never came (the connection dropped after IBM
  accepted the job, or the process was killed between the two) is looked up by that tag before
  anything is sent again, so the same job is never accepted twice.
- ``billed``: the job's ``usage`` as IBM reports it (``metrics()["usage"]``), None while IBM has
  not computed it yet (it reports 0 then; a 0 must not be recorded as a price).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Callable

FINAL_FAILURES = ("ERROR", "CANCELLED")
USAGE_TRIES = 3  # usage is computed shortly after a job ends: ask a few times, then record None
USAGE_WAIT_S = 1.0


def service_of(prep: Any) -> Any | None:
    """The ``QiskitRuntimeService`` of a device backend; None for emulations."""
    if not prep.backend.is_hardware:
        return None
    return getattr(prep.backend.backend, "service", None)


def job_tag(plan: dict, index: int | str, attempt: int) -> str:
    """``qkit-<plan hash>-<job index>-<attempt>``: unique per plan (``jobs.json``'s fingerprint),
    job and attempt."""
    digest = hashlib.sha1(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:12]
    return f"qkit-{digest}-{index}-{attempt}"


def status_name(job: Any) -> str:
    status = job.status()
    return str(getattr(status, "name", status)).upper()


def retrieve(prep: Any, job_id: str | None, call: Callable[[Callable], Any]) -> Any | None:
    """The device job ``job_id`` if IBM Quantum still has it and it did not fail; ``call`` wraps
    each request (retries on transient errors)."""
    service = service_of(prep)
    if service is None or not job_id:
        return None
    try:
        job = call(lambda: service.job(job_id))
        return None if call(lambda: status_name(job)) in FINAL_FAILURES else job
    except Exception:
        return None


def find_by_tag(prep: Any, tag: str | None, call: Callable[[Callable], Any]) -> Any | None:
    """The job IBM accepted under ``tag`` (newest first), unless it failed; None if there is none."""
    service = service_of(prep)
    if service is None or not tag:
        return None
    jobs = call(lambda: service.jobs(job_tags=[tag], backend_name=prep.backend.name, limit=1))
    if not jobs or call(lambda: status_name(jobs[0])) in FINAL_FAILURES:
        return None
    return jobs[0]


def billed(prep: Any, job: Any, tries: int = 1, wait: float = USAGE_WAIT_S) -> float | None:
    """QPU seconds IBM billed for ``job``; None for emulations and while IBM has not computed it."""
    if service_of(prep) is None or job is None:
        return None
    for attempt in range(tries):
        try:
            usage = job.metrics().get("usage") or {}
        except Exception:  # the network, or a job IBM no longer shows: unknown
            return None
        seconds = usage.get("qpu_charge_time_seconds", usage.get("quantum_seconds"))
        if usage.get("status", "done") != "pending" and seconds is not None:
            return float(seconds)
        if attempt + 1 < tries:
            time.sleep(wait)
    return None


def billed_by_id(prep: Any, job_id: str | None, tries: int = 1) -> float | None:
    service = service_of(prep)
    if service is None or not job_id:
        return None
    try:
        return billed(prep, service.job(job_id), tries)
    except Exception:
        return None
