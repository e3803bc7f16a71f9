"""``qkit hardware``: calibration snapshots of devices (write, list, show with an error map).

Thin commands over ``qkit.hardware.snapshot`` and ``qkit.hardware.errormap``; Qiskit is
imported inside the commands only, so ``qkit --help`` stays fast.
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
from qkit.cli.tables import fmt
from qkit.errors import QkitError

hardware_app = typer.Typer(
    help="Calibration snapshots of quantum devices: write one from a backend, list them, show one.",
    no_args_is_help=True,
)
app.add_typer(
    hardware_app,
    name="hardware",
    help="Calibration snapshots of quantum devices (hardware/*.json): snapshot, list, show.",
)

_DIR = Path("hardware")


def _percent(value: Optional[float], digits: int = 2) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


@hardware_app.command("snapshot")
def snapshot(
    name: Annotated[str, typer.Argument(help="Backend: fake_lagos, ibm_torino (needs an account)...")],
    out: Annotated[Optional[Path], typer.Option(help="JSON file to write [default: hardware/<device>.json].")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write the calibration of backend NAME as a JSON snapshot."""
    from qkit.hardware.backends import snapshot_from_name
    from qkit.hardware.snapshot import save_snapshot

    if out is not None and out.exists() and not force:  # answer before building anything
        raise QkitError(f"{out} exists; pass --force to overwrite it")
    snap = snapshot_from_name(name)
    out = out if out is not None else _DIR / f"{snap.name}.json"
    if out.exists() and not force:
        raise QkitError(f"{out} exists; pass --force to overwrite it")
    save_snapshot(snap, out)
    Console().print(
        f"wrote {escape(str(out))}: {escape(snap.name)}, {snap.num_qubits} qubits, calibrated "
        f"{escape(snap.calibration_date or 'on an unknown date')} ({escape(snap.source)})",
        soft_wrap=True,
    )


def _snapshots_table(title: str, found: list) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("name", "qubits", "basis gates", "calibration date", "source"):
        table.add_column(
            header,
            overflow="fold",
            justify="right" if header == "qubits" else "left",
            no_wrap=header in ("name", "calibration date"),
        )
    for path, snap in found:
        if isinstance(snap, QkitError):
            table.add_row(path.stem, "-", "-", "-", f"unreadable: {snap}")
        else:
            table.add_row(
                snap.name if path.stem == snap.name else f"{snap.name} ({path.name})",
                str(snap.num_qubits),
                " ".join(snap.basis_gates),
                snap.calibration_date or "-",
                snap.source,
            )
    return table


@hardware_app.command("list")
def list_snapshots(
    folder: Annotated[Path, typer.Option("--dir", help="Folder of snapshot JSON files.")] = _DIR,
    fake: Annotated[bool, typer.Option("--fake", help="Also list every fake backend name.")] = False,
) -> None:
    """List the calibration snapshots in --dir, those qkit ships, and with --fake the fake backends."""
    from qkit.hardware.snapshot import BUILTIN_DIR
    from qkit.hardware.snapshot import list_snapshots as find

    console = Console()
    found = find(folder)
    if not found:
        console.print(f"no calibration snapshots in {escape(str(folder))}")
    else:
        console.print(_snapshots_table(f"calibration snapshots in {folder}", found))
    if Path(folder).resolve() != BUILTIN_DIR.resolve():
        console.print(
            _snapshots_table("built into qkit (snapshot:<name> finds them from any folder)", find(BUILTIN_DIR))
        )
    if fake:
        from qkit.hardware.backends import fake_backend_names

        names = fake_backend_names()
        console.print(f"fake backends ({len(names)}): " + ", ".join(names), soft_wrap=False)


@hardware_app.command("show")
def show(
    name: Annotated[
        str, typer.Argument(help="Snapshot: a name in --dir or built into qkit (ibm_lagos), or a path to a .json file.")
    ],
    folder: Annotated[Path, typer.Option("--dir", help="Folder of snapshot JSON files.")] = _DIR,
    plot: Annotated[Optional[Path], typer.Option(help="Write a PNG error map (coupling graph) here.")] = None,
) -> None:
    """Show a snapshot's per-qubit calibration and two-qubit gate errors."""
    from qkit.hardware.snapshot import load_snapshot, snapshot_path

    snap = load_snapshot(snapshot_path(name, folder))
    console = Console()
    title = f"{snap.name}: {snap.num_qubits} qubits, calibrated {snap.calibration_date or 'on an unknown date'}"
    table = Table(title=title, caption=snap.source, box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("qubit", "T1 (us)", "T2 (us)", "freq (GHz)", "p(0|1)", "p(1|0)", "sx error", "x error"):
        table.add_column(header, justify="right", no_wrap=True)
    for q in snap.qubits:
        table.add_row(
            str(q.qubit),
            fmt(q.t1_us, 1),
            fmt(q.t2_us, 1),
            fmt(q.frequency_ghz, 3),
            fmt(q.prob_meas0_prep1, 4),
            fmt(q.prob_meas1_prep0, 4),
            _percent(snap.gate_error("sx", [q.qubit]), 3),
            _percent(snap.gate_error("x", [q.qubit]), 3),
        )
    console.print(table)
    pairs = snap.two_qubit_gates
    if pairs:
        gates = Table(title="two-qubit gates", box=box.SIMPLE_HEAD, pad_edge=False)
        for header in ("gate", "qubits", "error", "duration (ns)"):
            gates.add_column(header, justify="right", no_wrap=True)
        for g in pairs:
            gates.add_row(g.gate, f"{g.qubits[0]}-{g.qubits[1]}", _percent(g.error), fmt(g.duration_ns, 1))
        console.print(gates)
    if plot is not None:
        from qkit.hardware.errormap import plot_error_map

        plot_error_map(snap, plot)
        console.print(f"wrote {escape(str(plot))}")
