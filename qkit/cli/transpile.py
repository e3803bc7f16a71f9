"""``qkit transpile RUN --backend NAME``: a run's circuit on a device, on the layout with least expected error.

A thin command over ``qkit.hardware.transpile.transpile_run``; Qiskit, torch and numpy are
imported inside the command only, so ``qkit --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from qkit.cli.app import app


def _qubits(qubits: list[int]) -> str:
    return "[" + ", ".join(str(q) for q in qubits) + "]"


@app.command()
def transpile(
    run: Annotated[str, typer.Argument(help="Run folder, or its name inside --runs-dir (a unique prefix is enough).")],
    backend: Annotated[str, typer.Option(help="Device: fake_lagos, snapshot:ibm_lagos, a snapshot .json, ibm_torino.")],
    top: Annotated[int, typer.Option(min=1, help="How many candidate layouts to show and record.")] = 5,
    out: Annotated[
        Optional[Path], typer.Option(help="Folder to write into [default: <run>/hardware/<backend>/].")
    ] = None,
    runs_dir: Annotated[Path, typer.Option(help="Folder that holds one sub-folder per run.")] = Path("runs"),
) -> None:
    """Transpile a run's circuit for a device on the layout with the least estimated output error.

    Candidate layouts (Qiskit's VF2 mappings of the circuit onto the coupling map, and the
    preset pass manager's own choice) are scored by the expected error of the layer's outputs:
    asymmetric readout of the qubits the observables read, gate errors in their light cones and
    decoherence over the circuit's duration. Writes circuit.qasm (OpenQASM 3 of the ISA
    circuit), layout.json and circuit.png.
    """
    from qkit import runs
    from qkit.hardware.transpile import transpile_run

    run_dir = runs.find_run(runs_dir, run)
    result = transpile_run(run_dir, backend, top=top, out=out)
    choice = result.choice
    console = Console()
    table = Table(
        title=f"{result.run} on {choice.backend}: best {len(choice.candidates)} of "
        f"{choice.n_considered} layouts by estimated output error",
        caption=result.backend_source,
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for header in ("#", "layout", "est. error", "readout", "gates", "decoh.", "2q", "note"):
        table.add_column(header, justify="left" if header in ("layout", "note") else "right", no_wrap=header != "note")
    rows = list(choice.candidates)
    if not any(c.is_default for c in rows):
        rows.append(choice.default)
    for rank, c in enumerate(rows, start=1):
        shown_rank = str(rank) if c in choice.candidates else "-"
        notes = [n for n, on in (("chosen", c is choice.chosen), ("default", c.is_default)) if on]
        if c.measured_qubits != c.layout:  # routing moved qubits: say where each is read
            notes.append(f"read on {_qubits(c.measured_qubits)}")
        table.add_row(
            shown_rank,
            _qubits(c.layout),
            f"{c.estimate:.4f}",
            f"{c.parts['readout']:.4f}",
            f"{c.parts['gates']:.4f}",
            f"{c.parts['decoherence']:.4f}",
            str(c.two_qubit_gates),
            ", ".join(notes),
        )
    console.print(table)
    console.print(
        "est. error: expected mean |error| of the layer's outputs (readout, gates, decoherence alone "
        "alongside); default: the preset pass manager's own layout",
        soft_wrap=True,
        highlight=False,
    )
    chosen = choice.chosen
    duration = "-" if chosen.duration_s is None else f"{chosen.duration_s * 1e6:.3f} us"
    console.print(
        f"chosen layout {_qubits(chosen.layout)}: depth {chosen.depth}, {chosen.two_qubit_gates} two-qubit "
        f"gates, duration {duration}; estimated error {chosen.estimate:.4f} vs {choice.default.estimate:.4f} "
        f"on the preset default {_qubits(choice.default.layout)}",
        soft_wrap=True,
        highlight=False,
    )
    console.print(
        f"wrote [bold]{escape(str(result.out_dir))}[/]: {', '.join(result.files)}", soft_wrap=True, highlight=False
    )
