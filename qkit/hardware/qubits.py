"""Where a hardware run's circuit goes: its physical qubits and its parallel copies.

``choose_physical_qubits`` takes the initial layout as ``--layout`` says (``parse_layout`` in
``qkit.hardware.run_options``): the qubits given, the preset pass manager's (``default``), or
the layout with the least estimated output error on the run's own inputs (``calibrated``,
``qkit.hardware.layout.choose_layout``). ``run_copies`` then decides how many copies of the
circuit run side by side (``qkit.hardware.copies``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qkit.errors import QkitError

LAYOUT_SAMPLES = 32  # rows the calibrated layout is scored on (the run's own inputs)


def layout_sample(program: Any, rows: np.ndarray | None) -> np.ndarray | None:
    """The first rows (inputs then weights) in ``circuit.parameters`` order, as ``choose_layout``
    scores them; None (outputs taken uniform in [-1, 1]) without rows."""
    return None if rows is None else rows[:LAYOUT_SAMPLES][:, program.columns(program.circuit.parameters)]


def choose_physical_qubits(
    program: Any, resolved: Any, layout: str | list[int], rows: np.ndarray | None, exclude: Any = ()
) -> dict:
    """The initial layout and how it was chosen (``rows``: sample parameter rows, inputs then weights;
    ``exclude``: physical qubits the calibrated choice must not use)."""
    from qkit.hardware.layout import choose_layout, transpile_with_layout

    device, n = resolved.backend, program.n_qubits
    if n > device.num_qubits:
        raise QkitError(f"the circuit has {n} qubits but {device.name} has {device.num_qubits}")
    if isinstance(layout, list):
        if len(layout) != n:
            raise QkitError(f"--layout has {len(layout)} qubits but the circuit has {n}")
        if max(layout) >= device.num_qubits:
            raise QkitError(
                f"--layout {layout} names a qubit that {device.name} lacks (it has 0..{device.num_qubits - 1})"
            )
        return {"method": "given", "physical_qubits": layout}
    if layout == "default":
        isa = transpile_with_layout(program.circuit, device)
        return {"method": "default", "physical_qubits": [int(q) for q in isa.layout.initial_index_layout()[:n]]}
    choice = choose_layout(
        program, None, device, snapshot=resolved.calibration(), values=layout_sample(program, rows), exclude=exclude
    )
    return {
        "method": "calibrated",
        "physical_qubits": choice.physical_qubits,
        "estimate": choice.chosen.estimate,
        "default": choice.default.layout,
        "default_estimate": choice.default.estimate,
        "candidates": [c.to_dict() for c in choice.candidates],
    }


def run_copies(program, resolved, mitigation, copies, exclude, chosen, n_rows):
    """The copies a run gets: one on the Estimator path (trex) or, with ``--copies auto``, for a
    noise-aware run on its trained qubits; else as ``qkit.hardware.copies.choose_copies`` spreads them."""
    from qkit.hardware.copies import CopyChoice, choose_copies

    first = chosen["physical_qubits"]
    if mitigation == "trex":
        return CopyChoice([list(first)], [], 1, "--mitigation trex runs one copy (the Estimator path)")
    if chosen["method"] == "trained" and copies == "auto":
        return CopyChoice(
            [list(first)],
            [],
            1,
            "a noise-aware run goes to the qubits it trained through: one copy (--copies N to spread it anyway)",
        )
    return choose_copies(program, resolved.backend, resolved.calibration(), first, copies, exclude, n_rows)
