"""Backend names, resolved in one place: what runs where is always said, never guessed.

- ``fake_<name>``: a fake backend of ``qiskit_ibm_runtime.fake_provider`` (old 5-7 qubit
  Falcons and current 127-156 qubit devices alike): a calibrated emulation, run through the
  runtime's local testing mode;
- ``snapshot:<name>`` or a path to a ``.json`` file: a calibration snapshot (``hardware/``),
  an emulation of a device as it was on its calibration date (``qkit.hardware.snapshot``);
- ``ibm_<name>`` (or any other name): the real device through ``QiskitRuntimeService()``,
  with credentials exactly as qiskit-ibm-runtime resolves them (saved account, environment
  variables, ``channel``/``instance``). No account, or a device the account lacks, is a
  one-line error naming the ways out; qkit never falls back from hardware to emulation.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qkit.errors import QkitError, first_line
from qkit.hardware.snapshot import Snapshot, load_snapshot, snapshot_path

SNAPSHOT_DIR = Path("hardware")  # the user's workspace folder of calibration snapshots
KINDS = ("fake", "snapshot", "ibm")


@dataclass
class ResolvedBackend:
    """A backend object (``BackendV2``) with where it came from."""

    name: str  # as asked: fake_lagos, snapshot:ibm_lagos, ibm_torino, path
    kind: str  # fake | snapshot | ibm
    backend: Any  # qiskit BackendV2 the primitives run on
    source: str  # one line for every output: what runs where
    snapshot: Snapshot | None = None  # the calibration a snapshot backend was built from

    @property
    def is_hardware(self) -> bool:
        return self.kind == "ibm"

    def calibration(self) -> Snapshot:
        """The backend's calibration as a ``Snapshot`` (both readout directions where known)."""
        if self.snapshot is None:
            self.snapshot = Snapshot.from_backend(self.backend)
        return self.snapshot


def folder_name(backend: str) -> str:
    """A backend name as a folder name: ``snapshot:ibm_lagos`` -> ``ibm_lagos``, a path -> its stem."""
    backend = backend.removeprefix("snapshot:")
    backend = Path(backend).stem if backend.endswith(".json") else backend
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", backend) or "backend"


def _fake_class_name(name: str) -> str:
    """``fake_lagos`` -> ``FakeLagosV2`` or ``FakeLagos`` (whichever the provider has)."""
    return "Fake" + "".join(part.title() for part in name[len("fake_") :].split("_"))


def fake_backend_names() -> list[str]:
    """Names of every fake backend, without instantiating them (that takes seconds)."""
    import qiskit_ibm_runtime.fake_provider as fp

    names = set()
    for attr in dir(fp):
        match = re.fullmatch(r"Fake([A-Z][a-z]+)(V2)?", attr)
        if match and match.group(1) not in ("Provider",):
            names.add("fake_" + match.group(1).lower())
    return sorted(names)


@functools.lru_cache(maxsize=8)
def _fake(name: str) -> ResolvedBackend:
    """Cached per process: building a fake backend parses its calibration (1-3 s for a 133-qubit one),
    and the density engines of a priced plan ask for the same backend once per copy."""
    import qiskit_ibm_runtime.fake_provider as fp

    base = _fake_class_name(name)
    cls = getattr(fp, base + "V2", None) or getattr(fp, base, None)
    if cls is None or not isinstance(cls, type):
        close = [n for n in fake_backend_names() if n[5:8] == name[5:8]]
        hint = f"; did you mean {', '.join(close)}" if close else ""
        raise QkitError(f"unknown fake backend {name!r}{hint} (qkit hardware list --fake shows them all)")
    backend = cls()
    backend.target  # built lazily: once here, not inside whichever caller reads it first
    return ResolvedBackend(
        name, "fake", backend, f"{backend.name}: emulation (qiskit-ibm-runtime fake backend, local testing mode)"
    )


def _snapshot(name: str, snapshot_dir: Path) -> ResolvedBackend:
    path = snapshot_path(name, snapshot_dir)
    snapshot = load_snapshot(path)
    return ResolvedBackend(
        name,
        "snapshot",
        snapshot.backend(),
        f"{snapshot.name}: emulation from the calibration snapshot {path} "
        f"(calibrated {snapshot.calibration_date or 'on an unknown date'})",
        snapshot,
    )


SAVE_ACCOUNT = (
    "save one with QiskitRuntimeService.save_account(token=..., instance=..., overwrite=True) "
    "or set QISKIT_IBM_TOKEN and QISKIT_IBM_INSTANCE"
)


def _refused(exc: BaseException) -> bool:
    """IBM did not accept the account's token (IAM refused the key, or the API answered 401)."""
    from qiskit_ibm_runtime.accounts import InvalidAccountError
    from qiskit_ibm_runtime.exceptions import IBMNotAuthorizedError

    return isinstance(exc, (InvalidAccountError, IBMNotAuthorizedError)) or "401" in str(exc)


@contextlib.contextmanager
def _quiet_runtime():
    """The runtime logs a warning ("Invalid instance") where qkit reports the cause in one line."""
    logger = logging.getLogger("qiskit_ibm_runtime")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _ibm(name: str, channel: str | None, instance: str | None) -> ResolvedBackend:
    from qiskit_ibm_runtime import QiskitRuntimeService

    ways_out = (
        f"use --backend fake_{name.removeprefix('ibm_').removeprefix('ibmq_')} or "
        f"--backend snapshot:{name} to emulate it"
    )
    kwargs = {k: v for k, v in (("channel", channel), ("instance", instance)) if v}
    with _quiet_runtime():
        try:
            service = QiskitRuntimeService(**kwargs)
        except Exception as exc:  # AccountNotFoundError, invalid credentials, no network...
            what = "IBM Quantum refused the account's token" if _refused(exc) else "cannot reach IBM Quantum"
            raise QkitError(f"{what} for {name!r} ({first_line(exc)}); {SAVE_ACCOUNT}; or {ways_out}") from None
        try:
            backend = service.backend(name)
        except Exception as exc:
            try:  # the runtime reports "no backend" when the API refused the token
                service.usage()
            except Exception as why:
                if _refused(why):
                    raise QkitError(
                        f"IBM Quantum refused the account's token for {name!r} ({first_line(why)}); "
                        f"{SAVE_ACCOUNT}; or {ways_out}"
                    ) from None
            raise QkitError(
                f"backend {name!r} is not available to this account ({first_line(exc)}); {ways_out}"
            ) from None
    return ResolvedBackend(name, "ibm", backend, f"{backend.name}: IBM Quantum hardware")


def check_backend_name(name: Any) -> str:
    """A well-formed backend name (no Qiskit imported): fake_<name>, snapshot:<name>, a .json path
    or an IBM device name."""
    if not isinstance(name, str) or not name.strip():
        raise QkitError(f"a backend name is needed (fake_lagos, snapshot:ibm_lagos, ibm_torino), got {name!r}")
    name = name.strip()
    if name.startswith("snapshot:") or name.endswith(".json"):
        return name
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name) or name == "fake_":
        raise QkitError(
            f"{name!r} is not a backend name: use fake_<name>, snapshot:<name>, a snapshot .json "
            "or an IBM device such as ibm_torino"
        )
    return name


def resolve_backend(
    name: str, *, channel: str | None = None, instance: str | None = None, snapshot_dir: str | Path = SNAPSHOT_DIR
) -> ResolvedBackend:
    """The backend called ``name`` (see module docstring); problems are one-line QkitErrors."""
    name = check_backend_name(name)
    if name.startswith("fake_"):
        return _fake(name)
    if name.startswith("snapshot:") or name.endswith(".json"):
        return _snapshot(name, Path(snapshot_dir))
    return _ibm(name, channel, instance)


def snapshot_from_name(name: str, **resolve_kwargs: Any) -> Snapshot:
    """The calibration of the backend ``name`` resolves to (``fake_lagos``, ``ibm_x``...), as a snapshot."""
    resolved = resolve_backend(name, **resolve_kwargs)
    if resolved.kind == "snapshot":
        raise QkitError(f"{name!r} is already a snapshot; copy its JSON file instead")
    return Snapshot.from_backend(resolved.backend)
