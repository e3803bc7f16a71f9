"""Run-folder files: atomic writes, JSON and JSON-lines I/O, redaction of secrets.

A run folder must never hold a half-written file: a crash or Ctrl-C mid-write would leave a
config or checkpoint that later fails to load, or worse loads wrong. Every whole-file write
goes to a temporary file in the same directory (same filesystem, so the rename is atomic),
is flushed and fsync'ed, then replaces the target with ``os.replace``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

from qkit.errors import QkitError

_SECRET_KEY = re.compile(r"token|api[_-]?key|password|passwd|secret", re.IGNORECASE)
# mkstemp creates files 0600; run files should get the permissions a plain open() would give.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


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
        return {
            k: ("***" if isinstance(k, str) and _SECRET_KEY.search(k) and v not in (None, "") else redact(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact(v) for v in obj)
    return obj
