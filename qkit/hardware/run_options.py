"""The options of a hardware run (``qkit run-hardware``, ``qkit compare-hardware``), checked up front.

``check_options`` checks every option before anything is read, and returns the parsed
``--layout`` (``parse_layout``); ``check_run`` reads only a run's record to tell whether it can
go to hardware; ``check_rep_delay`` checks ``--rep-delay`` against the backend's range. Imports
nothing heavy (no torch, no Qiskit): a bad option answers at once. ``qkit.hardware.prepare``
re-exports these functions.
"""

from __future__ import annotations

import numbers
import re
from pathlib import Path
from typing import Any

from qkit.errors import QkitError
from qkit.fields import SPLITS
from qkit.hardware.plan import check_counts

MITIGATIONS = ("none", "readout", "trex")
LAYOUTS = ("calibrated", "default")


def parse_layout(layout: Any) -> str | list[int]:
    """``calibrated``, ``default``, or physical qubits as a list or ``"1,3,5,4"``."""
    if isinstance(layout, str):
        text = layout.strip().removeprefix("[").removesuffix("]")
        if text in LAYOUTS:
            return text
        if not re.fullmatch(r"\s*\d+\s*(,\s*\d+\s*)*", text):
            raise QkitError(f"--layout must be calibrated, default or physical qubits such as 1,3,5,4; got {layout!r}")
        layout = [int(q) for q in text.split(",")]
    if not isinstance(layout, (list, tuple)) or not all(isinstance(q, numbers.Integral) for q in layout):
        raise QkitError(f"--layout must be calibrated, default or a list of physical qubits; got {layout!r}")
    if len(set(layout)) != len(layout):
        raise QkitError(f"--layout repeats a physical qubit: {list(layout)}")
    return [int(q) for q in layout]


def check_options(
    shots, repeat, seed, split, mitigation, readout_from, layout, copies="auto", rep_delay=None
) -> str | list[int]:
    """Every option a hardware run takes, checked before anything is read; returns the parsed layout.
    Imports nothing heavy (no torch, no Qiskit): a bad option answers at once."""
    from qkit.hardware.copies import parse_copies
    from qkit.hardware.mitigation import READOUT_SOURCES

    check_counts(shots, repeat, seed)
    copies = parse_copies(copies)
    if mitigation == "trex" and copies not in ("auto", 1):
        raise QkitError(f"--copies {copies} needs the sampler path: --mitigation trex runs one copy")
    if rep_delay is not None and (
        isinstance(rep_delay, bool) or not isinstance(rep_delay, (int, float)) or not rep_delay >= 0
    ):
        raise QkitError(f"--rep-delay must be a number of microseconds >= 0, got {rep_delay!r}")
    if split not in SPLITS:
        raise QkitError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if mitigation not in MITIGATIONS:
        raise QkitError(f"--mitigation must be one of {', '.join(MITIGATIONS)}, got {mitigation!r}")
    if readout_from not in READOUT_SOURCES:
        raise QkitError(f"--readout-from must be one of {', '.join(READOUT_SOURCES)}, got {readout_from!r}")
    if readout_from != "device" and mitigation != "readout":
        raise QkitError(f"--readout-from {readout_from} needs --mitigation readout")
    return parse_layout(layout)


def check_run(run_dir: str | Path) -> Any:
    """The run (``qkit.runs.Run``) if it can go to hardware: a finished run with a quantum head.
    Reads only its record (no torch)."""
    from qkit import runs

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise QkitError(f"run folder {run_dir} does not exist")
    run = runs.load_run(run_dir)
    if not run.model_path.is_file():
        raise QkitError(f"{run.path} has no model.pt (unfinished run?)")
    if dict(run.record.model).get("head") != "quantum":
        raise QkitError(f"{run.path} has a {run.record.model.get('head')!r} head: only quantum heads run on hardware")
    return run


def check_rep_delay(rep_delay_us: float | None, device: Any) -> float | None:
    """``--rep-delay`` (microseconds) -> seconds, within the backend's ``rep_delay_range``."""
    from qkit.hardware.plan import rep_delay_range

    if rep_delay_us is None:
        return None
    low, high = rep_delay_range(device)
    seconds = float(rep_delay_us) * 1e-6
    if low is None:
        raise QkitError(f"{device.name} reports no repetition delay range: --rep-delay cannot be set there")
    if not low - 1e-12 <= seconds <= high + 1e-12:
        raise QkitError(
            f"--rep-delay {rep_delay_us:g} us is outside {device.name}'s range [{low * 1e6:g}, {high * 1e6:g}] us"
        )
    return seconds
