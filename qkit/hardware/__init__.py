"""The hardware path: backends (resolution), calibration snapshots, and (to come) layout,
jobs and mitigation. Imports nothing heavy: each module imports Qiskit when it is used."""

from qkit.hardware.backends import ResolvedBackend, fake_backend_names, resolve_backend
from qkit.hardware.snapshot import Snapshot, load_snapshot, save_snapshot

__all__ = ["ResolvedBackend", "Snapshot", "fake_backend_names", "load_snapshot", "resolve_backend", "save_snapshot"]
