"""``qkit compare-hardware``: one table of how far a run's circuit moves from exact, and what mitigation wins back.

A single ``run-hardware`` answers "what does this backend give"; deciding whether a device
(or its emulation) is good enough needs the settings side by side, on the same split, the
same shots and the same repetitions: the exact statevector model, the raw shots, the shots
through mthree (both from ONE readout-mitigated run, so the only difference is mitigation),
and optionally TREX. For an IBM device the calibrated emulation is a snapshot of that
device's calibration read now, so emulation and device are compared on the same day.

Each hardware run is an ordinary ``prepare_hardware_run``/``execute_hardware_run`` in its own
folder, so a rerun reuses every finished job. The comparison itself goes to
``<run>/hardware/<backend>/compare-<split>-<shots>shots-x<repeat>[-seed<k>]/``:
``compare.json`` (the rows), ``compare.png`` and ``compare.md``.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from qkit.errors import QkitError

SHOWN = ("auc", "accuracy", "sensitivity", "specificity", "delta", "agreement")
HEADERS = {
    "auc": "AUC",
    "accuracy": "accuracy",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "delta": "mean |Δ⟨O⟩| vs exact",
    "agreement": "agreement with exact",
}


def compare_dir(run_dir: Path, backend: str, split: str, shots: int, repeat: int, seed: int | None) -> Path:
    """Where the comparison is written: beside the backend's hardware runs."""
    from qkit.hardware.backends import folder_name

    key = f"compare-{split}-{shots}shots-x{repeat}" + (f"-seed{seed}" if seed is not None else "")
    return Path(run_dir) / "hardware" / folder_name(backend) / key


def device_snapshot(resolved: Any, run_dir: Path) -> Path:
    """The live device's calibration as a snapshot file the emulation resolves by path.

    Named after the device and its calibration date, so a rerun on the same calibration
    finds the same file (and so the same emulation folder, whose finished jobs are reused)."""
    from qkit.hardware.backends import folder_name
    from qkit.hardware.snapshot import Snapshot, save_snapshot

    snapshot = Snapshot.from_backend(resolved.backend)
    date = snapshot.calibration_date or datetime.now(timezone.utc).isoformat()
    stamp = re.sub(r"\D", "", date[:19])  # 2024-03-05T12:34:56+00:00 -> 20240305123456
    path = Path(run_dir) / "hardware" / folder_name(resolved.name) / "snapshots" / f"{resolved.name}-{stamp}.json"
    if not path.is_file():
        save_snapshot(snapshot, path)
    return path


def targets(resolved: Any, run_dir: Path, seed: int | None) -> list[tuple[str, str, int | None]]:
    """(label, backend name as prepare_hardware_run takes it, seed) of each backend to run.

    An emulation is the backend itself; an IBM device is its snapshot, then the device (unseeded)."""
    if not resolved.is_hardware:
        return [(resolved.name, resolved.name, seed)]
    return [
        (f"snapshot:{resolved.name}", str(device_snapshot(resolved, run_dir)), seed),
        (resolved.name, resolved.name, None),
    ]


def exact_row(record: dict, run_dir: Path) -> dict:
    """The statevector model's own metrics: no spread, no distance from itself."""
    from qkit.hardware.results import METRICS

    metrics = {k: {"mean": record["exact"][k], "std": 0.0} for k in METRICS if k in record["exact"]}
    metrics.update(delta={"mean": 0.0, "std": 0.0}, agreement={"mean": 1.0, "std": 0.0})
    return {
        "setting": "exact",
        "backend": "statevector",
        "mitigation": None,
        "metrics": metrics,
        "path": str(run_dir),
        "job_ids": [],
    }


def hardware_rows(label: str, record: dict) -> list[dict]:
    """One row per scored setting of a hardware record: raw and readout from one run, or trex."""
    base = {
        "backend": record["backend"],
        "source": record["source"],
        "path": record["path"],
        "physical_qubits": record["physical_qubits"],
        "calibration_date": record["calibration_date"],
        "job_ids": record["job_ids"] + ([record["calibration_job_id"]] if record["calibration_job_id"] else []),
    }
    scored = [("raw", record["unmitigated"])] if record.get("unmitigated") else []
    scored.append((record["mitigation"] if record["mitigation"] != "none" else "raw", record))
    return [{"setting": f"{label} {name}", "mitigation": name, **base, "metrics": s["metrics"]} for name, s in scored]


def mitigation_sentence(rows: list[dict], label: str) -> str | None:
    """How much readout mitigation moved mean |Δ⟨O⟩| and AUC on one backend (same shots)."""
    by = {r["setting"]: r["metrics"] for r in rows}
    raw, fixed = by.get(f"{label} raw"), by.get(f"{label} readout")
    if raw is None or fixed is None or raw["delta"]["mean"] is None:
        return None
    d0, d1 = raw["delta"]["mean"], fixed["delta"]["mean"]
    a0, a1 = raw.get("auc", {}).get("mean"), fixed.get("auc", {}).get("mean")
    change = f"{(d1 - d0) / d0:+.0%}" if d0 else "n/a"
    auc = (
        f"AUC from {a0:.4f} to {a1:.4f} ({a1 - a0:+.4f})"
        if a0 is not None and a1 is not None
        else "AUC could not be scored"
    )
    return (
        f"On {label}, readout mitigation changed mean |Δ⟨O⟩| vs exact from {d0:.4f} to {d1:.4f} "
        f"({change}) and {auc}, from the same shots."
    )


def spread_note(repeat: int) -> str:
    return f"mean ± std over {repeat} repetitions" if repeat > 1 else "one repetition (no spread)"


def cell(m: dict | None, spread: bool = True) -> str:
    """``mean ± std``; the exact row has no spread to show (``spread=False``)."""
    if not m or m.get("mean") is None:
        return "-"
    return f"{m['mean']:.4f} ± {m['std']:.4f}" if spread else f"{m['mean']:.4f}"


def has_spread(row: dict, repeat: int) -> bool:
    """Whether a row's cells show ± std: not for exact, and not from a single repetition."""
    return row["mitigation"] is not None and repeat > 1


def markdown(rows: list[dict], title: str, sentences: list[str], repeat: int) -> str:
    headers = [HEADERS[k].replace("|", "\\|") for k in SHOWN]  # |Δ⟨O⟩| must not split the column
    lines = [f"# {title}", "", "| setting | " + " | ".join(headers) + " |", "|---|" + "---|" * len(SHOWN)]
    lines += [
        "| " + " | ".join([r["setting"]] + [cell(r["metrics"].get(k), has_spread(r, repeat)) for k in SHOWN]) + " |"
        for r in rows
    ]
    lines += ["", f"{spread_note(repeat)}; the exact row is the run's own statevector model.", ""]
    return "\n".join(lines + sentences) + "\n"


def write_outputs(out: Path, rows: list[dict], title: str, sentences: list[str], info: dict) -> dict:
    from qkit.hardware.figures import plot_comparison
    from qkit.runs import atomic_write_json, atomic_write_text, redact

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "compare.json", redact({**info, "rows": rows, "summary": sentences}))
    plot_comparison(rows, out / "compare.png", title)
    atomic_write_text(out / "compare.md", markdown(rows, title, sentences, info["repeat"]))
    return {
        "dir": str(out),
        "json": str(out / "compare.json"),
        "png": str(out / "compare.png"),
        "md": str(out / "compare.md"),
    }


def compare_hardware(
    run_dir: str | Path,
    backend: str,
    *,
    split: str = "test",
    shots: int = 1024,
    repeat: int = 1,
    trex: bool = False,
    layout: Any = "calibrated",
    seed: int | None = None,
    env: Any = None,
    channel: str | None = None,
    instance: str | None = None,
    on_plan: Callable[[str, Any], None] | None = None,
    on_event: Callable[[str, str, str], None] | None = None,
) -> dict:
    """Run exact vs raw vs readout (vs trex) on ``backend`` (and, for an IBM device, its snapshot).

    ``on_plan(label, prep)`` is called before each hardware run, ``on_event`` is the job hook of
    ``execute_hardware_run``. Returns ``{"rows": [...], "summary": [...], "paths": {...}}``."""
    from qkit.hardware.backends import resolve_backend
    from qkit.hardware.prepare import prepare_hardware_run
    from qkit.hardware.results import execute_hardware_run
    from qkit.hardware.run_options import check_options

    for mitigation in ("readout", "trex") if trex else ("readout",):
        check_options(shots, repeat, seed, split, mitigation, "device", layout)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise QkitError(f"run folder {run_dir} does not exist")
    resolved = resolve_backend(backend, channel=channel, instance=instance)
    rows: list[dict] = []
    sentences: list[str] = []
    for label, name, target_seed in targets(resolved, run_dir, seed):
        for mitigation in ("readout", "trex") if trex else ("readout",):
            prep = prepare_hardware_run(
                run_dir,
                name,
                split=split,
                shots=shots,
                repeat=repeat,
                seed=target_seed,
                env=env,
                mitigation=mitigation,
                layout=layout,
                channel=channel,
                instance=instance,
            )
            if on_plan is not None:
                on_plan(f"{label}, {mitigation} mitigation", prep)
            record = execute_hardware_run(prep, on_event=on_event)
            if not rows:
                rows.append(exact_row(record, prep.run_dir))
            rows += hardware_rows(label, record)
        sentence = mitigation_sentence(rows, label)
        if sentence:
            sentences.append(sentence)
    title = f"{split} split of {run_dir.name}: {shots} shots x {repeat} repetition(s)"
    info = {
        "run": str(run_dir),
        "backend": backend,
        "split": split,
        "shots": shots,
        "repeat": repeat,
        "seed": seed,
        "layout": layout,
        "trex": trex,
    }
    paths = write_outputs(compare_dir(run_dir, backend, split, shots, repeat, seed), rows, title, sentences, info)
    return {"rows": rows, "summary": sentences, "title": title, "paths": paths}
