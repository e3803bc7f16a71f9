"""The service's state and its routes: jobs, the queue, the ledger and the test's levers."""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ibm_service.device import backend_json, digest, execute, now
from ibm_service.server import Handler, Server

API = "/experimental/api/v1"
PLAN_ID = "local-open-plan"
FAKES = {"ibm_torino": "fake_torino", "ibm_lagos": "fake_lagos", "ibm_fez": "fake_fez"}
WAIT_LIMIT_S = 120  # the worker never holds a job longer than this, whatever a test forgot


@dataclass
class Job:
    id: str
    backend: str
    session_id: str | None
    digest: str  # sha256 of the submitted program: the same job sent twice shows here
    params: dict
    tags: list[str] = field(default_factory=list)
    created: str = field(default_factory=now)
    status: str = "Queued"  # Queued | Running | Completed | Failed | Cancelled
    reason: str | None = None
    result: str | None = None
    qpu_seconds: float | None = None
    metrics_asked: int = 0
    number: int = 0  # its place in the ledger

    def view(self) -> dict:
        state = {"status": self.status, **({"reason": self.reason} if self.reason else {})}
        return {
            "id": self.id,
            "backend": self.backend,
            "status": self.status,
            "state": state,
            "program": {"id": "executor"},
            "created": self.created,
            "session_id": self.session_id,
            "runtime": "",
            "tags": self.tags,
            "private": False,
            "user_id": "local-user",
        }


@dataclass
class Fault:
    method: str
    path: str  # a regex on the request path
    status: int  # 0: drop the connection without an answer
    times: int
    retry_after: float | None = None
    after: bool = False  # drop only after the request was served (an answer lost on the way)


class LocalIBMQuantum:
    """The service: ``start()``, ``stop()``, ``save_account(home)``, ``env()`` and the test levers."""

    def __init__(self, token: str = "local-token-6f1c2d", devices: dict[str, str] | None = None):
        self.token = token
        self.devices = dict(devices or FAKES)
        self.crn = "crn:v1:bluemix:public:quantum-computing:us-east:a/local:local-instance::"
        self.jobs: dict[str, Job] = {}
        self.ledger: list[dict] = []  # every job accepted, in order
        self.requests: list[tuple[str, str, int]] = []
        self.sessions: dict[str, dict] = {}
        self.faults: list[Fault] = []
        self.fail_at: dict[int, str] = {}  # accepted job number (0-based) -> the reason it fails with
        self.cancel_at: set[int] = set()  # accepted job numbers the service cancels
        self.usage_pending_polls = 0  # a finished job's usage reads "pending" this many times first
        self.seconds_per_shot = 60e-6  # billed: executions x (rep delay + this) + 2 s per job
        self._held = threading.Event()
        self._held.set()  # set: the queue runs; cleared: jobs wait in the queue
        self._lock = threading.Lock()
        self._queue: list[str] = []
        self._wake = threading.Condition(self._lock)
        self._stop = False
        self._server: Server | None = None

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> "LocalIBMQuantum":
        service = self

        class Serving(Handler):
            owner = service

        self._server = Server(("127.0.0.1", 0), Serving)
        # shutdown() waits for serve_forever to look at its flag again: every 0.05 s, not the default 0.5.
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        threading.Thread(target=self._work, daemon=True).start()
        return self

    def stop(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        self._held.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "LocalIBMQuantum":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """The account's URL: the runtime API's base, kept as it is since it contains "experimental"."""
        return f"{self.base}{API}"

    def env(self) -> dict[str, str]:
        """The IBM Cloud SDK's endpoint variables for IAM, Global Search and Global Catalog."""
        return {
            "IAM_URL": f"{self.base}/iam",
            "GLOBAL_SEARCH_URL": f"{self.base}/search",
            "GLOBAL_CATALOG_URL": f"{self.base}/catalog",
            "USAGE_DATA_OPT_OUT": "True",
        }

    def save_account(self, home: Path, token: str | None = None) -> Path:
        """``QiskitRuntimeService.save_account`` into ``home/.qiskit/qiskit-ibm.json``."""
        from qiskit_ibm_runtime import QiskitRuntimeService

        path = Path(home) / ".qiskit" / "qiskit-ibm.json"
        QiskitRuntimeService.save_account(
            channel="ibm_quantum_platform",
            token=token or self.token,
            url=self.url,
            instance=self.crn,
            filename=str(path),
            set_as_default=True,
            overwrite=True,
        )
        return path

    # ---- levers ---------------------------------------------------------------------------
    def hold(self) -> None:
        """Accepted jobs stay queued until ``release()``."""
        self._held.clear()

    def release(self) -> None:
        self._held.set()

    def answer(
        self,
        status: int,
        times: int,
        method: str = "POST",
        path: str = r"/jobs$",
        retry_after: float | None = None,
        after: bool = False,
    ) -> None:
        """The next ``times`` requests matching ``method`` and ``path`` get ``status``; 0 drops the
        connection instead, before serving the request or (``after``) once it was served."""
        self.faults.append(Fault(method, path, status, times, retry_after, after))

    def accepted(self) -> list[str]:
        return [entry["id"] for entry in self.ledger]

    def wait_for(self, predicate, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > end:
                raise TimeoutError("the local IBM Quantum service waited too long")
            time.sleep(0.05)

    # ---- the queue ------------------------------------------------------------------------
    def _submit(self, body: dict, session_id: str | None) -> Job:
        job = Job(
            id=f"local{uuid.uuid4().hex[:16]}",
            backend=body["backend"],
            session_id=session_id,
            digest=digest(body["params"]),
            params=body["params"],
            tags=list(body.get("tags") or []),
        )
        with self._wake:
            job.number = len(self.ledger)
            self.jobs[job.id] = job
            self.ledger.append(
                {
                    "id": job.id,
                    "backend": job.backend,
                    "digest": job.digest,
                    "tags": job.tags,
                    "session_id": session_id,
                    "created": job.created,
                }
            )
            self._queue.append(job.id)
            self._wake.notify_all()
        return job

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._stop:
                    self._wake.wait(timeout=1.0)
                if self._stop:
                    return
                job = self.jobs[self._queue[0]]
            self._held.wait(timeout=WAIT_LIMIT_S)
            with self._wake:
                self._queue.pop(0)
                if job.status != "Queued" or self._stop:
                    continue
                if job.number in self.cancel_at:
                    job.status, job.reason = "Cancelled", "Cancelled by the service"
                    continue
                failure = self.fail_at.get(job.number)
                job.status = "Running"
            if failure:
                job.status, job.reason, job.result = "Failed", failure, f"Job failed: {failure}"
                continue
            try:
                job.result, job.qpu_seconds = execute(
                    job.params, self.devices[job.backend], int(job.digest[:8], 16), self.seconds_per_shot
                )
                job.status = "Completed"
            except Exception as exc:  # the client reads the reason, as from a device
                job.status, job.reason = "Failed", f"{type(exc).__name__}: {exc}"
                job.result = job.reason

    # ---- HTTP -----------------------------------------------------------------------------
    def _fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and re.search(fault.path, path):
                    fault.times -= 1
                    return fault
        return None

    def route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        """One request: (HTTP status, JSON or text)."""
        if path == "/iam/identity/token":
            if (body or {}).get("apikey") != self.token:
                return 400, {"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found."}
            import jwt

            now = int(time.time())
            token = jwt.encode(
                {"iat": now, "exp": now + 3600, "sub": "local"},
                "local-secret-of-the-local-ibm-quantum-stand-in",
                algorithm="HS256",
            )
            return 200, {
                "access_token": token,
                "refresh_token": "not-used",
                "token_type": "Bearer",
                "expires_in": 3600,
                "expiration": now + 3600,
            }
        if path == "/search/v3/resources/search":
            return 200, {
                "items": [
                    {
                        "crn": self.crn,
                        "service_plan_unique_id": PLAN_ID,
                        "name": "local-instance",
                        "doc": {"extensions": {"backends": list(self.devices)}},
                        "tags": [],
                    }
                ],
                "search_cursor": None,
            }
        if path == f"/catalog/{PLAN_ID}":
            return 200, {"overview_ui": {"en": {"display_name": "Open"}}, "metadata": {"pricing": {"type": "free"}}}
        if not path.startswith(API):
            return 404, {"errors": [{"message": f"no route {path}"}]}
        return self._runtime(method, path[len(API) :], query, body)

    def _runtime(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        if parts == ["instances", "usage"]:  # the Open Plan: 10 QPU minutes per period
            used = sum(job.qpu_seconds or 0.0 for job in self.jobs.values())
            return 200, {
                "instance_id": self.crn,
                "plan_id": PLAN_ID,
                "usage_consumed_seconds": used,
                "usage_limit_seconds": 600,
                "usage_limit_reached": used >= 600,
            }
        if parts == ["backends"]:
            return 200, {"devices": [{"name": name, "class": "device"} for name in self.devices]}
        if len(parts) == 3 and parts[0] == "backends":
            if parts[1] not in self.devices:
                return 404, {"errors": [{"message": f"backend {parts[1]} not found", "code": 1216}]}
            if parts[2] == "status":
                return 200, {
                    "state": True,
                    "status": "active",
                    "length_queue": len(self._queue),
                    "backend_version": "1.0.0",
                }
            return 200, backend_json(parts[1], self.devices[parts[1]], parts[2])
        if parts == ["sessions"] and method == "POST":
            sid = f"session{uuid.uuid4().hex[:12]}"
            self.sessions[sid] = {"id": sid, **(body or {}), "accepting_jobs": True, "state": "open"}
            return 200, self.sessions[sid]
        if parts[:1] == ["sessions"] and len(parts) >= 2:
            session = self.sessions.get(parts[1])
            if session is None:
                return 404, {"errors": [{"message": "session not found", "code": 1217}]}
            if method == "PATCH":
                session.update(body or {})
            elif method == "DELETE":
                session["state"] = "closed"
            return 200, session
        if parts == ["jobs"] and method == "POST":
            if body.get("backend") not in self.devices:
                return 400, {"errors": [{"message": f"backend {body.get('backend')} not available", "code": 1216}]}
            job = self._submit(body, body.get("session_id"))
            return 200, {"id": job.id, "backend": job.backend, "session_id": job.session_id}
        if parts == ["jobs"] and method == "GET":  # newest first, filtered as the client asks
            tags, backend = query.get("tags", []), (query.get("backend") or [None])[0]
            found = [
                j.view()
                for j in reversed(list(self.jobs.values()))
                if set(tags) <= set(j.tags) and backend in (None, j.backend)
            ]
            limit = int((query.get("limit") or [len(found) or 1])[0])
            return 200, {"jobs": found[:limit], "count": len(found)}
        if parts[:1] == ["jobs"] and len(parts) >= 2:
            job = self.jobs.get(parts[1])
            if job is None:
                return 404, {"errors": [{"message": f"job {parts[1]} not found", "code": 1291}]}
            what = parts[2] if len(parts) > 2 else ""
            if what == "" and method == "GET":
                return 200, job.view()
            if what == "results":
                return (200, job.result or "") if job.status in ("Completed", "Failed") else (204, "")
            if what == "cancel" and method == "POST":
                if job.status not in ("Queued", "Running"):
                    return 409, {"errors": [{"message": "job in a final state", "code": 3211}]}
                job.status, job.reason = "Cancelled", "Cancelled by the user"
                return 204, ""
            if what == "metrics":
                job.metrics_asked += 1
                done = job.status == "Completed" and job.metrics_asked > self.usage_pending_polls
                return 200, {
                    "usage": {
                        "status": "done" if done else "pending",
                        "qpu_charge_time_seconds": job.qpu_seconds if done else None,
                        "quantum_seconds": job.qpu_seconds if done else None,
                        "seconds": job.qpu_seconds if done else None,
                    },
                    "timestamps": {"created": job.created},
                }
            if what == "logs":
                return 200, ""
        return 404, {"errors": [{"message": f"no route {method} {path}"}]}
