"""The hardware path: backends (resolution), calibration snapshots (``snapshot``, built-in ones
in ``snapshots/``), layout and copies, the plan and its price, jobs on a device or an emulation
(``jobs``, ``device``, ``wide``), readout mitigation and scoring (``results``). Imports nothing
heavy: each module imports Qiskit when it is used."""

from qkit.hardware.backends import ResolvedBackend, fake_backend_names, resolve_backend
from qkit.hardware.snapshot import Snapshot, load_snapshot, save_snapshot

__all__ = ["ResolvedBackend", "Snapshot", "fake_backend_names", "load_snapshot", "resolve_backend", "save_snapshot"]
