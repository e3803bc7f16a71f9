"""``qkit runs``: list the run folders with their key test metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from qkit.cli.app import app
from qkit.cli.tables import fmt


@app.command(name="runs")
def list_runs(
    runs_dir: Annotated[Path, typer.Option(help="Folder that holds one sub-folder per run.")] = Path("runs"),
) -> None:
    """List the runs in --runs-dir with their key test metrics."""
    from qkit import runs

    found = runs.list_runs(runs_dir)
    if not found:
        Console().print(f"no runs in {escape(str(runs_dir))}")
        return
    table = Table(title=f"runs in {runs_dir}", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("name", overflow="fold", min_width=16)
    table.add_column("status", overflow="fold")
    table.add_column("data", overflow="fold")
    table.add_column("model", overflow="fold")
    table.add_column("seed", justify="right")
    metrics = {"auc": "AUC", "accuracy": "acc", "sensitivity": "sens", "specificity": "spec"}
    for header in metrics.values():
        table.add_column(header, justify="right", no_wrap=True)  # numbers never wrap
    for r in found:
        model = f"{r.get('backbone') or '?'} + {r.get('head') or '?'}"
        status = r["status"] if r["status"] != "broken" else f"broken: {r.get('error', '')}"
        data = f"{Path(r['dataset']).name} {r['pixels']}" if r.get("dataset") else "?"
        table.add_row(r["name"], status, data, model, fmt(r.get("seed")), *(fmt(r.get(k), digits=3) for k in metrics))
    Console().print(table)
