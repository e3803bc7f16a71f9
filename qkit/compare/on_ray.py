"""Sweep runs as Ray tasks: the same ``train_task`` a local worker runs, on a Ray cluster.

``address`` is what ``ray.init`` takes: ``local`` starts a Ray instance on this machine (the
tests use it), ``auto`` joins the cluster this machine belongs to, ``HOST:PORT`` or
``ray://HOST:PORT`` reach a running head. Each task asks for ``threads`` CPUs, so Ray places
as many runs per node as its cores allow and a run never shares its cores; the run sets the
same torch thread count as under ``--workers``, so its metrics are identical whichever
executor ran it. Runs write their folders themselves: on a cluster of several machines the
runs folder and the data folder must be on a shared file system at the same paths.

A head that does not answer is found by a socket probe of a few seconds before ``ray.init``
(which would otherwise retry for a minute), and reported in one line.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Callable

from qkit.errors import QkitError

PROBE_SECONDS = 5.0


def check_ray_address(address: str) -> None:
    """One-line QkitError when ray is missing or ``address`` names a head that does not answer."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise QkitError("ray is not installed (pip install 'qkit[ray]' or pip install ray); use --workers N")
    if address in ("local", "auto"):
        return
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=PROBE_SECONDS):
            pass
    except OSError as exc:
        raise QkitError(
            f"no Ray head answers at {address} ({exc.strerror or type(exc).__name__}); start one with "
            "`ray start --head`, or use --ray local for a Ray instance on this machine"
        ) from None


def _host_port(address: str) -> tuple[str, int]:
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise QkitError(f"invalid Ray address {address!r}: give HOST:PORT, ray://HOST:PORT, auto or local")
    return host, int(port)


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 to /dev/null for the duration (C++ code writes there, not to sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def run_on_ray(
    tasks: list[dict],
    address: str,
    threads: int,
    train: Callable[[dict], dict],
    on_done: Callable[[dict], None],
    local_cpus: int | None = None,
) -> None:
    """Submit every task, call ``on_done(result)`` as each finishes; the first failure is raised
    (what has not started is cancelled). A Ray instance this call started is shut down after.

    ``local_cpus``: the CPUs a ``local`` Ray instance may use (the caller's affinity mask, so
    that Ray does not place more runs than the cores this process may use); None: Ray's count.
    """
    import logging

    import ray

    check_ray_address(address)
    started_here = not ray.is_initialized()
    if started_here:
        kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
        if address == "local" and local_cpus is not None:
            kwargs["num_cpus"] = local_cpus
        try:
            with _quiet_stderr():  # Ray's C++ client logs every failed attempt to connect
                ray.init(address=address, **kwargs)
        except Exception as exc:  # something answers the port but is not a usable Ray head
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise QkitError(f"cannot use the Ray cluster at {address}: {first}") from None
    try:
        remote = ray.remote(train).options(num_cpus=threads, max_retries=0)
        refs = {remote.remote(task): task for task in tasks}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            try:
                result = ray.get(done[0])
            except ray.exceptions.RayError as exc:
                for ref in pending:
                    ray.cancel(ref)
                cause = getattr(exc, "cause", None) or exc
                message = str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__
                raise QkitError(f"{refs[done[0]]['key']}: {message}") from None
            on_done(result)
    finally:
        if started_here:
            ray.shutdown()
