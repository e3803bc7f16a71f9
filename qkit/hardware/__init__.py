"""The hardware path: backends (resolution), calibration snapshots, and (to come) layout,
jobs and mitigation. Imports nothing heavy: each module imports Qiskit when it is used."""

from qkit.hardware.backends import ResolvedBackend, fake_backend_names, resolve_backend

__all__ = ["ResolvedBackend", "fake_backend_names", "resolve_backend"]
