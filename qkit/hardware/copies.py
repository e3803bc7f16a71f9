"""Parallel copies of the layer's circuit on one device: more rows per shot, the same QPU seconds.

A 4-qubit layer uses 3% of a 133-qubit device; the idle qubits cost the same QPU time. One
wide circuit holding N copies on disjoint physical qubits evaluates N rows per shot, so the
parameter array has N times fewer rows and the QPU time drops by about N.

``choose_copies`` picks the copies from the calibration:

* candidates are the VF2 mappings of the circuit's interaction graph onto the coupling graph
  (``qkit.hardware.layout.vf2_layouts``), minus any that touch ``--exclude-qubits``;
* the first copy is the layout ``choose_layout`` picks (the single-copy choice); the others
  are taken greedily in the order of the layout scorer's cheap pre-score (readout of the
  read qubits, two-qubit gate errors), each only if none of its qubits is a chosen qubit or
  a neighbour of one: every coupler between two copies is left idle, since crosstalk over an
  active coupler is the risk a real device adds (the emulation does not model crosstalk);
* every chosen copy is then transpiled on its layout and scored as a single layout is
  (``estimate_error``); ``auto`` keeps every copy but the outliers, whose estimate is above
  ``AUTO_OUTLIER`` times the copies' median (a copy through a bad qubit scores far worse).

Rows are dealt round-robin: row r is served by copy ``r % N`` in wide row ``r // N``, so each
repetition of the split mixes every copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from qkit.errors import QkitError

AUTO_OUTLIER = 3.0  # auto skips a copy whose estimated error is above 3x the copies' median


@dataclass
class CopyChoice:
    """The copies' initial layouts (first = the single-copy choice) and their estimated errors."""

    layouts: list[list[int]]
    estimates: list[float]
    fit: int  # how many copies fit apart on the device (before ``auto``'s cut)
    reason: str  # one line: why this many

    @property
    def n(self) -> int:
        return len(self.layouts)

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "layouts": self.layouts,
            "estimates": [round(e, 6) for e in self.estimates],
            "fit": self.fit,
            "reason": self.reason,
            "rows": "row r is served by copy r % n, in wide row r // n",
            "isolation": "no coupler joins two copies (neighbours of a copy are left idle); crosstalk on a "
            "device is not modelled by the emulation",
        }


def parse_copies(value: Any) -> int | str:
    """``auto`` or an integer >= 1."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        n = int(str(value).strip())
    except ValueError:
        raise QkitError(f"--copies must be auto or an integer >= 1, got {value!r}") from None
    if n < 1:
        raise QkitError(f"--copies must be auto or an integer >= 1, got {value!r}")
    return n


def parse_qubits(value: Any) -> list[int]:
    """``--exclude-qubits 3,17,40`` (or a list) -> [3, 17, 40]."""
    if value is None or value == "":
        return []
    items = value if isinstance(value, (list, tuple)) else str(value).replace(" ", "").split(",")
    try:
        qubits = sorted({int(q) for q in items if str(q) != ""})
    except ValueError:
        raise QkitError(f"--exclude-qubits must be physical qubits such as 3,17,40; got {value!r}") from None
    if any(q < 0 for q in qubits):
        raise QkitError(f"--exclude-qubits must be physical qubits >= 0; got {value!r}")
    return qubits


def _neighbours(backend: Any) -> dict[int, set[int]]:
    out = {q: set() for q in range(backend.num_qubits)}
    for a, b in backend.coupling_map.get_edges() if backend.coupling_map is not None else []:
        out[a].add(b)
        out[b].add(a)
    return out


def apart(first: list[int], candidates: Sequence[list[int]], backend: Any, exclude: set[int]) -> list[list[int]]:
    """``first``, then each candidate that shares no qubit and no coupler with those already taken."""
    near = _neighbours(backend)
    taken, blocked = [list(first)], set(first) | {n for q in first for n in near[q]}
    for layout in candidates:
        if blocked.isdisjoint(layout) and exclude.isdisjoint(layout):
            taken.append(list(layout))
            blocked |= set(layout) | {n for q in layout for n in near[q]}
    return taken


def choose_copies(
    program: Any,
    backend: Any,
    snapshot: Any,
    first: list[int],
    copies: int | str,
    exclude: Sequence[int] = (),
    shots_rows: int | None = None,
) -> CopyChoice:
    """Copies of ``program``'s circuit on ``backend`` (module docstring); ``first``: the single-copy
    layout. ``shots_rows``: rows to evaluate (no more copies than rows)."""
    from qkit.hardware.layout import _pre_score, vf2_layouts
    from qkit.hardware.layout_error import Calibration

    circuit, observables, name = program.circuit, program.observables, backend.name
    exclude = set(int(q) for q in exclude)
    cal = Calibration(backend, snapshot)
    candidates = sorted(
        vf2_layouts(circuit, backend, limit=20_000), key=lambda lay: _pre_score(lay, circuit, observables, cal)
    )
    layouts = apart(first, candidates, backend, exclude)
    fit = len(layouts)
    if copies != "auto" and copies > fit > 1:
        raise QkitError(
            f"--copies {copies} does not fit on {name}: at most {fit} copies of the "
            f"{program.n_qubits}-qubit circuit fit apart (no coupler between copies)"
        )
    if fit == 1:
        why = (
            f"every other placement shares a qubit or a coupler with {list(first)}"
            + (" or uses an excluded qubit" if exclude else "")
            if candidates
            else "the circuit needs routing there (no placement maps its gates onto couplers)"
        )
        if copies != "auto" and copies > 1:
            raise QkitError(
                f"--copies {copies} does not fit on {name}: it holds one copy of the "
                f"{program.n_qubits}-qubit circuit ({why})"
            )
        return CopyChoice(
            [list(first)],
            [_estimate(program, backend, first, cal)],
            1,
            f"{name} holds one copy of the {program.n_qubits}-qubit circuit: {why}",
        )
    wanted = fit if copies == "auto" else copies
    if shots_rows is not None:
        wanted = min(wanted, max(1, shots_rows))
    layouts = layouts[:wanted]
    estimates = [_estimate(program, backend, layout, cal) for layout in layouts]
    if copies == "auto":
        cut = AUTO_OUTLIER * float(np.median(estimates))
        keep = [i for i, e in enumerate(estimates) if e <= cut or i == 0]
        skipped = len(layouts) - len(keep)
        layouts, estimates = [layouts[i] for i in keep], [estimates[i] for i in keep]
        reason = f"auto: {len(layouts)} of the {fit} copies that fit apart on {name}" + (
            f" ({skipped} skipped: estimated error above {AUTO_OUTLIER:g}x the copies' median)" if skipped else ""
        )
    else:
        reason = f"--copies {copies} of the {fit} that fit apart on {name}"
    return CopyChoice(layouts, estimates, fit, reason)


def _estimate(program: Any, backend: Any, layout: list[int], cal: Any) -> float:
    from qkit.hardware.layout import estimate_error, transpile_with_layout

    return estimate_error(transpile_with_layout(program.circuit, backend, layout), program.observables, cal)[0]


def widen(isas: list[Any], n_bits: int, columns: list[np.ndarray], row_width: int) -> tuple[Any, np.ndarray]:
    """One circuit holding every copy's ISA circuit (each on its own physical qubits, the device's
    width), copy k's measurements in clbits ``k*n_bits ...``; and, per parameter of it, the column
    of a wide row ``[row of copy 0, row of copy 1, ...]`` (``row_width`` columns a copy) it reads.
    ``columns[k]``: the row column of each of copy k's ISA parameters."""
    from qiskit import ClassicalRegister, QuantumCircuit
    from qiskit.circuit import Parameter

    width = isas[0].num_qubits
    wide = QuantumCircuit(width, name=f"{len(isas)}-copies")
    wide.add_register(ClassicalRegister(n_bits * len(isas), "meas"))
    source = {}
    for k, (isa, cols) in enumerate(zip(isas, columns)):
        renamed = {p: Parameter(f"c{k:03d}_{p.name}") for p in isa.parameters}
        for p, col in zip(isa.parameters, cols):
            source[renamed[p].name] = k * row_width + int(col)
        wide.compose(
            isa.assign_parameters(renamed) if renamed else isa,
            qubits=range(width),
            clbits=range(k * n_bits, (k + 1) * n_bits),
            inplace=True,
        )
    return wide, np.array([source[p.name] for p in wide.parameters], dtype=np.int64)
