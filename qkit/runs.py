"""Run folders: atomic file writes, JSON/JSON-lines I/O, naming, environment capture, listing.

A run folder must never hold a half-written file: a crash or Ctrl-C mid-write would leave a
config or checkpoint that later fails to load, or worse loads wrong. Every whole-file write
goes to a temporary file in the same directory (same filesystem, so the rename is atomic),
is flushed and fsync'ed, then replaces the target with ``os.replace``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.metadata
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Callable

from qkit.errors import QkitError

PACKAGES = ("torch", "torchvision", "qiskit", "qiskit-machine-learning", "qiskit-aer",
            "qiskit-ibm-runtime", "medmnist", "scikit-learn", "numpy", "matplotlib",
            "typer", "rich")
_SECRET_KEY = re.compile(r"token|api[_-]?key|password|passwd|secret", re.IGNORECASE)
_NAME_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# mkstemp creates files 0600; run files should get the permissions a plain open() would give.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_METRIC_KEYS = ("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "f1",
                "g_mean", "threshold")


# --------------------------------------------------------------------------- atomic writes

def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself (POSIX); harmless no-op where directories can't be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, writer: Callable[[IO[bytes]], None]) -> Path:
    """Call ``writer(binary_file)`` on a temp file next to ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # includes KeyboardInterrupt: never leave the temp file behind
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data))


def _jsonable(obj: Any) -> Any:
    """Plain JSON values: numpy/torch scalars -> numbers, Paths -> str, NaN/inf -> None."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy arrays/scalars and torch tensors, without importing them
        return _jsonable(obj.tolist())
    raise TypeError(f"cannot store {type(obj).__name__} in JSON")


def _dumps(obj: Any, indent: int | None) -> str:
    # allow_nan=False: strict JSON that other tools can read; _jsonable already mapped NaN.
    return json.dumps(_jsonable(obj), indent=indent, allow_nan=False, ensure_ascii=False)


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically. Does NOT redact: call ``redact`` first."""
    return atomic_write_text(path, _dumps(obj, indent=2) + "\n")


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (argument order as torch.save)."""
    import torch  # lazy: `qkit runs` should not pay for importing torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def append_jsonl(path: str | Path, record: dict) -> Path:
    """Append ``record`` as one JSON line, flushed and fsync'ed.

    One ``write`` of one line: a crash can at worst truncate the last line, which
    ``read_jsonl`` tolerates. If an earlier crash left such a partial line, start on a new
    line so the new record stays readable.
    """
    if not isinstance(record, dict):
        raise TypeError(f"record must be a dict, got {type(record).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = _dumps(record, indent=None) + "\n"
    with open(path, "ab+") as f:
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                line = "\n" + line
        f.write(line.encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())
    return path


# --------------------------------------------------------------------------- reading

def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QkitError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise QkitError(f"cannot read {path}: {exc}") from None


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a missing or invalid file is a one-line QkitError."""
    path = Path(path)
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise QkitError(f"invalid JSON in {path}: {exc.msg} (line {exc.lineno})") from None


def read_jsonl(path: str | Path) -> list[dict]:
    """Records of a JSON-lines file; skips blank lines and a truncated final line."""
    path = Path(path)
    text = _read_text(path)
    lines = text.split("\n")
    records = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines):  # no trailing newline: the write was cut off by a crash
                continue
            raise QkitError(f"invalid JSON in {path} line {i}") from None
        if not isinstance(rec, dict):
            raise QkitError(f"{path} line {i} is not a JSON object")
        records.append(rec)
    return records


# --------------------------------------------------------------------------- secrets

def redact(obj: Any) -> Any:
    """Copy of ``obj`` with values under secret-looking keys replaced by ``"***"``.

    Keys containing token, api_key/apikey, password or secret (any case) are redacted at any
    depth of nested dicts/lists. ``None`` and empty values stay as they are: they hide
    nothing and show that no credential was set.
    """
    if isinstance(obj, dict):
        return {k: ("***" if isinstance(k, str) and _SECRET_KEY.search(k)
                    and v not in (None, "") else redact(v))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact(v) for v in obj)
    return obj


# --------------------------------------------------------------------------- run folders

def create_run_dir(runs_root: str | Path, name: str | None, preset: str) -> Path:
    """Create and return a new, empty run folder under ``runs_root`` (created if needed).

    ``name=None`` gives ``<YYYYmmdd-HHMMSS>-<preset>`` with ``-2``, ``-3`` ... appended on
    collision. An explicit ``name`` that already exists is an error. ``mkdir`` without
    ``exist_ok`` is atomic, so two processes can never get the same folder.
    """
    runs_root = Path(runs_root)
    if runs_root.exists() and not runs_root.is_dir():
        raise QkitError(f"runs root {runs_root} exists and is not a directory")
    runs_root.mkdir(parents=True, exist_ok=True)
    if name is not None:
        if not _NAME_OK.fullmatch(name):
            raise QkitError(f"invalid run name {name!r}: use letters, digits, '.', '_', '-'")
        try:
            (runs_root / name).mkdir()
        except FileExistsError:
            raise QkitError(f"run {name!r} already exists in {runs_root}; choose another name") from None
        return runs_root / name
    preset = re.sub(r"[^A-Za-z0-9._-]+", "_", str(preset)).strip("._-") or "run"
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{preset}"
    for i in range(1, 1000):
        candidate = runs_root / (base if i == 1 else f"{base}-{i}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise QkitError(f"could not find a free run name for {base!r} in {runs_root}")


def find_run(runs_root: str | Path, name_or_path: str | Path) -> Path:
    """A run folder from a name in ``runs_root``, a path, or a unique name prefix."""
    runs_root, text = Path(runs_root), str(name_or_path)
    plain = os.sep not in text and "/" not in text
    candidates = [runs_root / text, Path(text)] if plain else [Path(text), runs_root / text]
    for c in candidates:
        if c.is_dir():
            return c
    if plain and text and runs_root.is_dir():
        matches = sorted(p for p in runs_root.iterdir() if p.is_dir() and p.name.startswith(text))
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(p.name for p in matches[:4]) + (" ..." if len(matches) > 4 else "")
            raise QkitError(f"run {text!r} is ambiguous in {runs_root}: {names}")
    raise QkitError(f"run {text!r} not found in {runs_root} (`qkit runs` lists runs)")


def _lookup(cfg: Any, key: str, depth: int = 3) -> Any:
    """``cfg[key]`` at the top level, else in nested dicts (configs may group options)."""
    if not isinstance(cfg, dict) or depth < 0:
        return None
    if key in cfg and not isinstance(cfg[key], dict):
        return cfg[key]
    for value in cfg.values():
        found = _lookup(value, key, depth - 1)
        if found is not None:
            return found
    return None


def _summarise(run: Path) -> dict:
    summary: dict[str, Any] = {
        "name": run.name, "path": str(run), "status": "broken",
        "created": _dt.datetime.fromtimestamp(run.stat().st_mtime).isoformat(timespec="seconds"),
    }
    try:
        cfg = read_json(run / "config.json")
    except QkitError as exc:
        summary["error"] = "no config.json" if not (run / "config.json").exists() else str(exc)
        return summary
    if not isinstance(cfg, dict):
        summary["error"] = "config.json is not a JSON object"
        return summary
    summary["created"] = _lookup(cfg, "created") or summary["created"]
    for key in ("preset", "dataset", "backbone", "head", "circuit", "engine"):
        summary[key] = _lookup(cfg, key)
    if not (run / "test_metrics.json").exists():
        summary["status"] = "incomplete"
        return summary
    try:
        metrics = read_json(run / "test_metrics.json")
    except QkitError as exc:
        summary["error"] = str(exc)
        return summary
    summary["status"] = "finished"
    for key in _METRIC_KEYS:
        summary[key] = _lookup(metrics, key, depth=1)
    return summary


def list_runs(runs_root: str | Path) -> list[dict]:
    """One summary dict per run folder under ``runs_root``, sorted by name.

    Keys: name, path, created, status (finished | incomplete | broken), preset, dataset,
    backbone, head, circuit, engine, and for finished runs the test metrics (auc, accuracy,
    balanced_accuracy, sensitivity, specificity, f1, g_mean, threshold). Broken folders get
    an ``error`` line instead of raising. A missing ``runs_root`` means no runs.
    """
    runs_root = Path(runs_root)
    if not runs_root.exists():
        return []
    if not runs_root.is_dir():
        raise QkitError(f"runs root {runs_root} is not a directory")
    runs = []
    for run in sorted(runs_root.iterdir(), key=lambda p: p.name):
        if run.name.startswith(".") or not run.is_dir():  # .gitkeep, temp files
            continue
        try:
            runs.append(_summarise(run))
        except OSError as exc:  # unreadable folder: report it, keep listing the others
            runs.append({"name": run.name, "path": str(run), "status": "broken", "error": str(exc)})
    return runs


# --------------------------------------------------------------------------- environment

def _package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _git(args: list[str], cwd: Path) -> str | None:
    # GIT_OPTIONAL_LOCKS=0: `git status` must not take the index lock of a repo in use.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                             timeout=10, env=env, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_info() -> dict | None:
    """Commit and dirty flag of the repo holding the qkit package, else the working directory.

    The package comes first because its commit identifies the code that ran; a pip-installed
    qkit is not in a repo, and then the user's workspace repo is the next best record.
    """
    for where in (Path(__file__).resolve().parent, Path.cwd()):
        root = _git(["rev-parse", "--show-toplevel"], where)
        if not root:
            continue
        commit = _git(["rev-parse", "HEAD"], where)  # None in a repo without commits
        status = _git(["status", "--porcelain", "--untracked-files=no"], where)
        return {"root": root, "commit": commit, "dirty": None if status is None else bool(status)}
    return None


def environment_info(device: str) -> dict:
    """What ran where: Python, platform, package versions, git state, device and threads."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "packages": _package_versions(),
        "git": git_info(),
        "device": str(device),
        "cpu_count": os.cpu_count(),
        "torch_threads": None,
        "cuda_available": False,
        "cuda_device": None,
    }
    try:
        from qkit import __version__
        info["qkit"] = __version__
    except ImportError:
        info["qkit"] = None
    try:
        import torch
    except ImportError:
        return info
    info["torch_threads"] = torch.get_num_threads()
    info["cuda_available"] = bool(torch.cuda.is_available())
    if info["cuda_available"]:
        try:
            dev = torch.device(device) if str(device).startswith("cuda") else torch.device("cuda")
            info["cuda_device"] = torch.cuda.get_device_name(dev)
            info["cuda_version"] = torch.version.cuda
        except (RuntimeError, ValueError):
            pass
    return info
