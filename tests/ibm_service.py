"""A local IBM Quantum Platform for tests: qiskit-ibm-runtime's real client, every class of it,
talks HTTP to this server on 127.0.0.1 instead of IBM's.

Not shipped with qkit; tests start one per test (``LocalIBMQuantum().start()``, a free port),
point an account at it the documented way (``save_account`` into a temporary home folder, plus
the IBM Cloud SDK's own endpoint variables) and stop it afterwards. What is served is the
subset of the REST API the client calls for what qkit does, found by reading
``qiskit_ibm_runtime/api/`` (0.51) and the IBM Cloud SDK it uses:

- IAM (``IAM_URL``): ``POST /iam/identity/token``, an API key for a JWT access token;
- Global Search and Global Catalog (``GLOBAL_SEARCH_URL``, ``GLOBAL_CATALOG_URL``, which the
  SDK's ``configure_service`` reads): the account's one instance and its plan;
- the Qiskit Runtime API under ``/experimental/api/v1`` (an account URL containing
  "experimental" is used as it is by the runtime's URL resolver, so the port survives):
  backends (list, configuration, properties, status: a fake backend's own calibration files
  served under an ``ibm_`` name), batch sessions, jobs (submit, status, results, cancel,
  metrics with the billed usage).

Submitted jobs are executor programs (the runtime's ``QuantumProgramModel`` v2.0, decoded with
the runtime's own converters); a worker thread runs them in order, like a device's queue, on
Aer with the fake backend's calibrated noise (``qkit.hardware.wide``: each independent part of
a wide circuit on its own qubits, the emulation ``--backend fake_<name>`` uses), and answers in
the runtime's ``QuantumProgramResultModel``. The ledger records every job accepted. A test
can hold jobs in the queue, fail or cancel the next job, answer an HTTP status a number of
times, or drop connections. Loopback only; every loop is bounded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

API = "/experimental/api/v1"
PLAN_ID = "local-open-plan"
FAKES = {"ibm_torino": "fake_torino", "ibm_lagos": "fake_lagos", "ibm_fez": "fake_fez"}
WAIT_LIMIT_S = 120          # the worker never holds a job longer than this, whatever a test forgot


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _utc_dates(data: Any) -> Any:
    """IBM's API gives calibration dates in UTC (the client converts them to local time); the fake
    backends' files hold them in the local time of whoever saved them (-03:00, -05:00)."""
    if isinstance(data, dict):
        return {k: (dt.datetime.fromisoformat(v).astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
                    if k in ("date", "last_update_date") and isinstance(v, str) else _utc_dates(v))
                for k, v in data.items()}
    return [_utc_dates(v) for v in data] if isinstance(data, list) else data


def _digest(params: dict) -> str:
    """What the job asks for (circuits as OpenQASM 3, arguments, shots), not how it was encoded:
    QPY carries each Parameter's random UUID, so one job sent by two processes differs in bytes."""
    from ibm_quantum_schemas.executor.version_2_0 import ParamsModel
    from qiskit import qasm3
    from qiskit_ibm_runtime.quantum_program.converters.converters_2_0 import quantum_program_from_2_0

    program, _ = quantum_program_from_2_0(ParamsModel.model_validate(params))
    digest = hashlib.sha256(str(program.shots).encode())
    for item in program.items:
        digest.update(qasm3.dumps(item.circuit).encode())
        digest.update(np.ascontiguousarray(getattr(item, "circuit_arguments", None)).tobytes())
    return digest.hexdigest()


@dataclass
class Job:
    id: str
    backend: str
    session_id: str | None
    digest: str                       # sha256 of the submitted program: the same job sent twice shows here
    params: dict
    tags: list[str] = field(default_factory=list)
    created: str = field(default_factory=_now)
    status: str = "Queued"            # Queued | Running | Completed | Failed | Cancelled
    reason: str | None = None
    result: str | None = None
    qpu_seconds: float | None = None
    metrics_asked: int = 0
    number: int = 0                   # its place in the ledger

    def view(self) -> dict:
        state = {"status": self.status, **({"reason": self.reason} if self.reason else {})}
        return {"id": self.id, "backend": self.backend, "status": self.status, "state": state,
                "program": {"id": "executor"}, "created": self.created, "session_id": self.session_id,
                "runtime": "", "tags": self.tags, "private": False, "user_id": "local-user"}


@dataclass
class Fault:
    method: str
    path: str                         # a regex on the request path
    status: int                       # 0: drop the connection without an answer
    times: int
    retry_after: float | None = None
    after: bool = False               # drop only after the request was served (an answer lost on the way)


class LocalIBMQuantum:
    """The service: ``start()``, ``stop()``, ``save_account(home)``, ``env()`` and the test levers."""

    def __init__(self, token: str = "local-token-6f1c2d", devices: dict[str, str] | None = None):
        self.token = token
        self.devices = dict(devices or FAKES)
        self.crn = "crn:v1:bluemix:public:quantum-computing:us-east:a/local:local-instance::"
        self.jobs: dict[str, Job] = {}
        self.ledger: list[dict] = []     # every job accepted, in order
        self.requests: list[tuple[str, str, int]] = []
        self.sessions: dict[str, dict] = {}
        self.faults: list[Fault] = []
        self.fail_at: dict[int, str] = {}   # accepted job number (0-based) -> the reason it fails with
        self.cancel_at: set[int] = set()    # accepted job numbers the service cancels
        self.usage_pending_polls = 0     # a finished job's usage reads "pending" this many times first
        self.seconds_per_shot = 60e-6    # billed: executions x (rep delay + this) + 2 s per job
        self._held = threading.Event()
        self._held.set()                 # set: the queue runs; cleared: jobs wait in the queue
        self._lock = threading.Lock()
        self._queue: list[str] = []
        self._wake = threading.Condition(self._lock)
        self._stop = False
        self._server: ThreadingHTTPServer | None = None
        self._resolved: dict[str, Any] = {}

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> "LocalIBMQuantum":
        service = self

        class Handler(_Handler):
            owner = service

        self._server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
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
        return {"IAM_URL": f"{self.base}/iam", "GLOBAL_SEARCH_URL": f"{self.base}/search",
                "GLOBAL_CATALOG_URL": f"{self.base}/catalog", "USAGE_DATA_OPT_OUT": "True"}

    def save_account(self, home: Path, token: str | None = None) -> Path:
        """``QiskitRuntimeService.save_account`` into ``home/.qiskit/qiskit-ibm.json``."""
        from qiskit_ibm_runtime import QiskitRuntimeService

        path = Path(home) / ".qiskit" / "qiskit-ibm.json"
        QiskitRuntimeService.save_account(channel="ibm_quantum_platform", token=token or self.token,
                                          url=self.url, instance=self.crn, filename=str(path),
                                          set_as_default=True, overwrite=True)
        return path

    # ---- levers ---------------------------------------------------------------------------
    def hold(self) -> None:
        """Accepted jobs stay queued until ``release()``."""
        self._held.clear()

    def release(self) -> None:
        self._held.set()

    def answer(self, status: int, times: int, method: str = "POST", path: str = r"/jobs$",
               retry_after: float | None = None, after: bool = False) -> None:
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
        job = Job(id=f"local{uuid.uuid4().hex[:16]}", backend=body["backend"], session_id=session_id,
                  digest=_digest(body["params"]), params=body["params"], tags=list(body.get("tags") or []))
        with self._wake:
            job.number = len(self.ledger)
            self.jobs[job.id] = job
            self.ledger.append({"id": job.id, "backend": job.backend, "digest": job.digest, "tags": job.tags,
                                "session_id": session_id, "created": job.created})
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
                job.result, job.qpu_seconds = self._execute(job)
                job.status = "Completed"
            except Exception as exc:          # the client reads the reason, as from a device
                job.status, job.reason = "Failed", f"{type(exc).__name__}: {exc}"
                job.result = job.reason

    def _emulation(self, name: str) -> tuple[Any, Any]:
        from qkit.hardware.backends import resolve_backend
        from qkit.hardware.wide import noise_for

        if name not in self._resolved:
            resolved = resolve_backend(self.devices[name])
            self._resolved[name] = (resolved, noise_for(resolved))
        return self._resolved[name]

    def _execute(self, job: Job) -> tuple[str, float]:
        """Run the executor program on Aer with the fake backend's noise; the result as JSON."""
        from ibm_quantum_schemas.executor.version_2_0 import ParamsModel, QuantumProgramResultModel
        from qiskit_ibm_runtime.quantum_program.converters.converters_2_0 import (
            passthrough_data_to_2_0, quantum_program_from_2_0)
        from qiskit_ibm_runtime.quantum_program.quantum_program import CircuitItem
        from ibm_quantum_schemas.common import CompressedTensorModel

        from qkit.hardware.wide import sample

        program, options = quantum_program_from_2_0(ParamsModel.model_validate(job.params))
        resolved, noise_of = self._emulation(job.backend)
        pubs = []
        for item in program.items:
            if not isinstance(item, CircuitItem):
                raise ValueError("this local service runs circuit items only")
            args = item.circuit_arguments
            pubs.append((item.circuit, args if args is not None and args.size else None, program.shots))
        seed = int(job.digest[:8], 16)
        started = _now()
        result = sample(resolved.backend, pubs, {"default_shots": program.shots,
                                                 "simulator": {"seed_simulator": seed}}, noise_of).result()
        data = []
        for pub in result:
            arrays = {name: CompressedTensorModel.from_numpy(bits.to_bool_array(order="little"))
                      for name, bits in pub.data.items()}
            data.append({"results": arrays, "metadata": {}})
        model = QuantumProgramResultModel(
            data=data, metadata={"chunk_timing": [{"start": started, "stop": _now(), "parts": []}]},
            passthrough_data=passthrough_data_to_2_0(program.passthrough_data),
            semantic_role=program._semantic_role)
        rep_delay = options.execution.rep_delay or 250e-6
        executions = sum(int(np.prod(np.shape(p[1])[:-1])) if p[1] is not None else 1 for p in pubs) * program.shots
        return model.model_dump_json(), round(executions * (rep_delay + self.seconds_per_shot) + 2.0, 3)

    # ---- HTTP -----------------------------------------------------------------------------
    def _fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and re.search(fault.path, path):
                    fault.times -= 1
                    return fault
        return None

    def _backend_json(self, name: str, what: str) -> dict:
        import qiskit_ibm_runtime.fake_provider as fp

        fake = self.devices[name].removeprefix("fake_")
        folder = Path(fp.__file__).parent / "backends" / fake
        data = json.loads((folder / f"{'conf' if what == 'configuration' else 'props'}_{fake}.json").read_text())
        data["backend_name"] = name
        return _utc_dates(data) if what == "properties" else data

    def route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        """One request: (HTTP status, JSON or text)."""
        if path == "/iam/identity/token":
            if (body or {}).get("apikey") != self.token:
                return 400, {"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found."}
            import jwt

            now = int(time.time())
            token = jwt.encode({"iat": now, "exp": now + 3600, "sub": "local"}, "local-secret-of-the-local-ibm-quantum-stand-in", algorithm="HS256")
            return 200, {"access_token": token, "refresh_token": "not-used", "token_type": "Bearer",
                         "expires_in": 3600, "expiration": now + 3600}
        if path == "/search/v3/resources/search":
            return 200, {"items": [{"crn": self.crn, "service_plan_unique_id": PLAN_ID, "name": "local-instance",
                                    "doc": {"extensions": {"backends": list(self.devices)}}, "tags": []}],
                         "search_cursor": None}
        if path == f"/catalog/{PLAN_ID}":
            return 200, {"overview_ui": {"en": {"display_name": "Open"}}, "metadata": {"pricing": {"type": "free"}}}
        if not path.startswith(API):
            return 404, {"errors": [{"message": f"no route {path}"}]}
        return self._runtime(method, path[len(API):], query, body)

    def _runtime(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        if parts == ["instances", "usage"]:        # the Open Plan: 10 QPU minutes per period
            used = sum(job.qpu_seconds or 0.0 for job in self.jobs.values())
            return 200, {"instance_id": self.crn, "plan_id": PLAN_ID, "usage_consumed_seconds": used,
                         "usage_limit_seconds": 600, "usage_limit_reached": used >= 600}
        if parts == ["backends"]:
            return 200, {"devices": [{"name": name, "class": "device"} for name in self.devices]}
        if len(parts) == 3 and parts[0] == "backends":
            if parts[1] not in self.devices:
                return 404, {"errors": [{"message": f"backend {parts[1]} not found", "code": 1216}]}
            if parts[2] == "status":
                return 200, {"state": True, "status": "active", "length_queue": len(self._queue),
                             "backend_version": "1.0.0"}
            return 200, self._backend_json(parts[1], parts[2])
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
        if parts == ["jobs"] and method == "GET":          # newest first, filtered as the client asks
            tags, backend = query.get("tags", []), (query.get("backend") or [None])[0]
            found = [j.view() for j in reversed(list(self.jobs.values()))
                     if set(tags) <= set(j.tags) and backend in (None, j.backend)]
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
                return 200, {"usage": {"status": "done" if done else "pending",
                                       "qpu_charge_time_seconds": job.qpu_seconds if done else None,
                                       "quantum_seconds": job.qpu_seconds if done else None,
                                       "seconds": job.qpu_seconds if done else None},
                             "timestamps": {"created": job.created}}
            if what == "logs":
                return 200, ""
        return 404, {"errors": [{"message": f"no route {method} {path}"}]}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client killed mid-request (the kill -9 tests) resets its connection: not an error here."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    owner: LocalIBMQuantum
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:     # quiet: the ledger and ``requests`` are the log
        pass

    def _serve(self, method: str) -> None:
        service = self.owner
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        fault = service._fault(method, url.path)
        if fault is not None and fault.status == 0 and fault.after:
            body = json.loads(raw) if raw else None
            status, _ = service.route(method, url.path, parse_qs(url.query), body)
            fault = dataclasses.replace(fault, after=False)
        if fault is not None and fault.status == 0:
            service.requests.append((method, url.path, 0))
            self.close_connection = True
            self.connection.close()
            return
        if fault is not None:
            status, payload = fault.status, {"errors": [{"message": f"local fault {fault.status}",
                                                        "code": fault.status}]}
        else:
            body: Any = None
            if raw:
                kind = self.headers.get("Content-Type", "")
                body = ({k: v[0] for k, v in parse_qs(raw.decode()).items()} if "urlencoded" in kind
                        else json.loads(raw))
            status, payload = service.route(method, url.path, parse_qs(url.query), body)
        service.requests.append((method, url.path, status))
        text = payload if isinstance(payload, str) else json.dumps(payload)
        data = text.encode() if status != 204 else b""
        self.send_response(status)
        if fault is not None and fault.retry_after is not None:
            self.send_header("Retry-After", str(fault.retry_after))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")
