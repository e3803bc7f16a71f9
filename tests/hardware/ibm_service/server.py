"""HTTP for the stand-in: a threading server on 127.0.0.1 and a handler that applies the test's
faults (an HTTP status, or a dropped connection before or after the request is served)."""

from __future__ import annotations

import dataclasses
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client killed mid-request (the kill -9 tests) resets its connection: not an error here."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    owner: Any  # the LocalIBMQuantum serving
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet: the ledger and ``requests`` are the log
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
            status, payload = (
                fault.status,
                {"errors": [{"message": f"local fault {fault.status}", "code": fault.status}]},
            )
        else:
            body: Any = None
            if raw:
                kind = self.headers.get("Content-Type", "")
                body = {k: v[0] for k, v in parse_qs(raw.decode()).items()} if "urlencoded" in kind else json.loads(raw)
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
