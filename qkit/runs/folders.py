"""Run folders: creating them (never overwriting), finding them by name, listing them."""

from __future__ import annotations

import datetime as _dt
import os
import re
import time
from pathlib import Path
from typing import Any

from qkit.errors import QkitError
from qkit.runs.record import load_run

_NAME_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_METRIC_KEYS = ("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "f1", "g_mean", "threshold")


def create_run_dir(runs_root: str | Path, name: str | None, label: str) -> Path:
    """Create and return a new, empty run folder under ``runs_root`` (created if needed).

    ``name=None`` gives ``<YYYYmmdd-HHMMSS>-<label>`` with ``-2``, ``-3`` ... appended on
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
    return create_unique_dir(runs_root, label)


def create_unique_dir(root: str | Path, label: str) -> Path:
    """A new folder ``<root>/<YYYYmmdd-HHMMSS>-<label>[-N]``; never an existing one."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    label = re.sub(r"[^A-Za-z0-9._-]+", "_", str(label)).strip("._-") or "run"
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{label}"
    for i in range(1, 1000):
        candidate = root / (base if i == 1 else f"{base}-{i}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise QkitError(f"could not find a free folder name for {base!r} in {root}")


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


def _summarise(run: Path) -> dict:
    summary: dict[str, Any] = {
        "name": run.name,
        "path": str(run),
        "status": "broken",
        "created": _dt.datetime.fromtimestamp(run.stat().st_mtime).isoformat(timespec="seconds"),
    }
    try:
        loaded = load_run(run)
    except QkitError as exc:
        summary["error"] = str(exc)
        return summary
    cfg = loaded.config
    summary.update(
        created=loaded.record.created or summary["created"],
        status=loaded.status,
        label=cfg.run.label,
        dataset=cfg.data.dataset,
        pixels=cfg.data.pixels,
        backbone=cfg.model.backbone,
        head=cfg.model.head,
        circuit=cfg.model.circuit,
        engine=cfg.model.engine,
        seed=cfg.run.seed,
    )
    for key in _METRIC_KEYS:
        summary[key] = (loaded.test_metrics or {}).get(key)
    return summary


def list_runs(runs_root: str | Path) -> list[dict]:
    """One summary dict per run folder under ``runs_root``, sorted by name.

    Keys: name, path, created, status (finished | incomplete | broken), label, dataset,
    pixels (``DataConfig.pixels``: "64 px", ...), backbone, head, circuit, engine, seed, and for
    finished runs the test metrics (auc, accuracy, balanced_accuracy, sensitivity, specificity,
    f1, g_mean, threshold). Broken folders get an ``error`` line instead of raising. A missing
    ``runs_root`` means no runs.
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
