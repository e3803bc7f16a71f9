"""``qkit run-hardware RUN --backend NAME``: a trained run's circuit on a device (or its emulation).

Thin over ``qkit.hardware.plan`` (read the run, compute the circuit inputs, plan the jobs)
and ``qkit.hardware.jobs`` (submit in one Batch, save as results arrive, resume, score).
The plan is printed before anything is submitted; ``--dry-run`` stops there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from qkit.cli.app import app, error
from qkit.cli.evaluate import Split
from qkit.cli.tables import SHOWN, fmt
from qkit.cli.train import env_with


def plan_text(prep) -> str:
    p = prep.plan.to_dict()
    return (f"{prep.backend.source}\n"
            f"plan: {p['jobs']} job(s), {p['pubs']} PUB(s), {p['rows']} rows ({p['samples']} samples x "
            f"{p['repeat']} repetitions), {p['shots']} shots, {p['bases']} basis/bases, {p['executions']:,} "
            f"executions, qubits {prep.engine.physical_qubits}\n"
            f"estimated QPU time: {p['estimated_qpu_seconds']:.1f} s (an estimate: {p['estimate']})")


def hardware_table(record: dict) -> Table:
    table = Table(title=f"{record['split']} on {record['source']}")
    table.add_column("metric")
    table.add_column(f"mean ± std over {record['repeat']}", justify="right")
    table.add_column("exact (statevector)", justify="right")
    at_val = record["exact"].get("val_threshold")
    if at_val is not None:
        table.add_column(f"mean ± std at val threshold {at_val:.3f}", justify="right")

    def cell(m):
        return "-" if not m or m["mean"] is None else f"{m['mean']:.4f} ± {m['std']:.4f}"

    for key in SHOWN:
        if key in record["metrics"]:
            row = [key, cell(record["metrics"][key]), fmt(record["exact"].get(key))]
            if at_val is not None:
                row.append(cell(record["metrics"].get(f"{key}@val_threshold")))
            table.add_row(*row)
    return table


@app.command("run-hardware")
def run_hardware(
    run: Annotated[str, typer.Argument(help="Run folder, or its name inside --runs-dir (a unique prefix is enough).")],
    backend: Annotated[str, typer.Option(help="fake_<name>, snapshot:<name> or an IBM device (ibm_<name>).")],
    split: Annotated[Split, typer.Option(help="Which split to send.")] = Split.test,
    shots: Annotated[int, typer.Option(help="Shots per row and measurement basis.")] = 1024,
    repeat: Annotated[int, typer.Option(help="Repetitions of the whole split (mean ± std).")] = 1,
    max_rows_per_job: Annotated[Optional[int], typer.Option(help="Rows (samples x repetitions) per job "
                                                            "[default: under 10 million executions a job].")] = None,
    max_qpu_seconds: Annotated[Optional[float], typer.Option(help="Refuse a plan whose estimated QPU time "
                                                             "is above this.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and submit nothing.")] = False,
    seed: Annotated[Optional[int], typer.Option(help="Seed the emulation (not for IBM hardware).")] = None,
    data_dir: Annotated[Optional[str], typer.Option(help="Where the data is (default: where the run recorded it).")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Folder that holds one sub-folder per run.")] = Path("runs"),
) -> None:
    """Send a trained run's circuit for every sample of a split to a backend and score the results.

    Results go to <run>/hardware/<backend>/ (jobs.json, one .npy per job, hardware.json,
    predictions-<split>-<backend>.csv). Re-running the same command continues: finished jobs
    are not sent again.
    """
    from qkit import runs
    from qkit.errors import QkitError
    from qkit.hardware.jobs import execute_hardware_run
    from qkit.hardware.plan import prepare_hardware_run

    if shots < 1:
        raise QkitError(f"--shots must be >= 1, got {shots}")
    if repeat < 1:
        raise QkitError(f"--repeat must be >= 1, got {repeat}")
    run_dir = runs.find_run(runs_dir, run)
    env = env_with(runs.read_record(run_dir).env, {"data_dir": data_dir} if data_dir else {})
    console = Console()
    prep = prepare_hardware_run(run_dir, backend, split=split.value, shots=shots, repeat=repeat,
                                max_rows_per_job=max_rows_per_job, seed=seed, env=env)
    console.print(escape(plan_text(prep)), soft_wrap=True, highlight=False)
    if dry_run:
        console.print("dry run: nothing submitted")
        return
    try:
        record = execute_hardware_run(prep, max_qpu_seconds=max_qpu_seconds,
                                      on_job=lambda i, job_id: console.print(f"job {i}: {job_id} done",
                                                                            highlight=False))
    except KeyboardInterrupt:
        error(f"interrupted; job ids are in {prep.out_dir / 'jobs.json'}; rerun the same command to continue")
        raise typer.Exit(130) from None
    console.print(hardware_table(record))
    console.print(f"jobs: {', '.join(record['job_ids'])} ({record['submitted_now']} submitted now); "
                  f"{record['wall_seconds']:.1f} s wall, {record['primitive_seconds']:.1f} s in primitive calls",
                  soft_wrap=True, highlight=False)
    console.print(f"saved: [bold]{escape(record['path'])}[/]", soft_wrap=True, highlight=False)
