"""``qkit run-hardware RUN --backend NAME``: a trained run's circuit on a device (or its emulation).

Thin over ``qkit.hardware.prepare`` (read the run, compute the circuit inputs, choose the
qubits, plan the jobs) and ``qkit.hardware.results`` (submit in one Batch, save as results
arrive, resume, score). The plan is printed before anything is submitted; ``--dry-run``
stops there.
"""

from __future__ import annotations

from enum import Enum
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


class Mitigation(str, Enum):
    none = "none"
    readout = "readout"
    trex = "trex"


class ReadoutFrom(str, Enum):
    device = "device"
    calibration = "calibration"


# Options that every hardware command declares the same way (run-hardware, compare-hardware).
RunArg = Annotated[str, typer.Argument(help="Run folder, or its name inside --runs-dir (a unique prefix is enough).")]
ShotsOption = Annotated[int, typer.Option(help="Shots per row and measurement basis.")]
RepeatOption = Annotated[int, typer.Option(help="Repetitions of the whole split (mean ± std).")]
LayoutOption = Annotated[
    str,
    typer.Option(
        help="calibrated (least estimated output error, as `qkit transpile`), "
        "default (the preset pass manager's) or physical qubits, e.g. 1,3,5,4."
    ),
]
ChannelOption = Annotated[
    Optional[str], typer.Option(help="IBM Quantum channel (default: as qiskit-ibm-runtime resolves the saved account).")
]
InstanceOption = Annotated[Optional[str], typer.Option(help="IBM Quantum instance (CRN).")]
DataDirOption = Annotated[Optional[str], typer.Option(help="Where the data is (default: where the run recorded it).")]
RunsDirOption = Annotated[Path, typer.Option(help="Folder that holds one sub-folder per run.")]


def plan_text(prep) -> str:
    p = prep.plan.to_dict()
    how = prep.layout["method"]
    if how == "calibrated":
        how += (
            f": estimated error {prep.layout['estimate']:.4f} vs {prep.layout['default_estimate']:.4f} on the "
            f"preset default {prep.layout['default']}"
        )
    elif how == "trained":
        how = "the layout the run was trained through (density engine on this backend)"
    mitigation = {
        "none": "none (executor Sampler, raw shots)",
        "readout": f"readout (mthree on executor Sampler shots; matrices from the {prep.readout_from})",
        "trex": "TREX (executor Estimator, resilience level 1)",
    }[prep.mitigation]
    calibration = f" + {p['calibration_shots']:,} calibration shots" if p["calibration_shots"] else ""
    copies, per_copy = "", ""
    if prep.n_copies > 1:
        c = prep.copies
        copies = (
            f"copies: {c.n} ({c.reason}); no coupler joins two copies; row r runs on copy r % {c.n}; "
            f"estimated error per copy {min(c.estimates):.4f}..{max(c.estimates):.4f}\n"
        )
        per_copy = f" / {c.n} copies"
    delay = "" if prep.rep_delay is None else f"; rep delay {prep.rep_delay * 1e6:g} us"
    return (
        f"{prep.backend.source}\n"
        f"qubits {prep.physical_qubits} ({how})\n"
        f"{copies}"
        f"mitigation: {mitigation}{delay}\n"
        f"plan: {p['jobs']} job(s), {p['pubs']} PUB(s), {p['rows']} rows ({p['samples']} samples x "
        f"{p['repeat']} repetitions{per_copy}) x {p['bases']} basis/bases x {p['shots']} shots{calibration} = "
        f"{p['executions']:,} executions\n"
        f"estimated QPU time: {p['estimated_qpu_seconds']:.1f} s (an estimate: {p['estimate']})"
    )


def _cell(m) -> str:
    return "-" if not m or m.get("mean") is None else f"{m['mean']:.4f} ± {m['std']:.4f}"


def hardware_table(record: dict) -> Table:
    table = Table(title=f"{record['split']} on {record['source']}")
    table.add_column("metric")
    scored = [("raw", record["unmitigated"])] if record.get("unmitigated") else []
    name = "raw" if record["mitigation"] == "none" else record["mitigation"]
    scored.append((name, record))
    for label, _ in scored:
        table.add_column(f"{label}: mean ± std over {record['repeat']}", justify="right")
    table.add_column("exact (statevector)", justify="right")
    for key in SHOWN + ("delta", "agreement"):
        if key in record["metrics"]:
            exact = {"delta": 0.0, "agreement": 1.0}.get(key, record["exact"].get(key))
            table.add_row(
                {"delta": "mean |Δ⟨O⟩| vs exact", "agreement": "agreement with exact"}.get(key, key),
                *[_cell(s["metrics"].get(key)) for _, s in scored],
                fmt(exact),
            )
    return table


def copies_table(record: dict) -> Table | None:
    """Each copy's |Δ⟨O⟩| and agreement with exact over the rows it served: a bad copy shows here."""
    rows = record.get("per_copy") or []
    if len(rows) < 2:
        return None
    raw = {r["copy"]: r for r in (record.get("per_copy_raw") or [])}
    label = "raw" if record["mitigation"] == "none" else record["mitigation"]
    table = Table(title="per copy (exclude a bad one with --exclude-qubits)")
    for name in ("copy", "qubits", "rows", f"{label} |Δ⟨O⟩|", f"{label} agreement"):
        table.add_column(name, justify="right")
    if raw:
        table.add_column("raw |Δ⟨O⟩|", justify="right")
    for r in rows:
        cells = [
            str(r["copy"]),
            ",".join(map(str, r["layout"])),
            str(r["rows"]),
            f"{r['delta']:.4f}",
            f"{r['agreement']:.1%}",
        ]
        if raw:
            cells.append(f"{raw[r['copy']]['delta']:.4f}")
        table.add_row(*cells)
    return table


def qpu_line(record: dict) -> str:
    """What IBM billed next to qkit's estimate (emulations bill nothing)."""
    estimate = record["plan"]["estimated_qpu_seconds"]
    if record["kind"] != "ibm":
        return f"QPU time: none billed (an emulation); on the device about {estimate:.1f} s (estimate)"
    billed = record.get("qpu_seconds")
    earlier = record.get("qpu_seconds_earlier_attempts")
    said = "not reported yet (rerun the same command to read it)" if billed is None else f"{billed:.1f} s billed"
    return f"QPU time: {said} by IBM Quantum, estimate {estimate:.1f} s" + (
        f"; earlier failed attempts billed {earlier:.1f} s more" if earlier else ""
    )


class JobProgress:
    """A spinner per job while it runs; one line per job when its result is saved."""

    def __init__(self, console: Console):
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = console
        self.bar = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True
        )
        self.tasks = {}

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)

    def __call__(self, event: str, label: str, job_id: str) -> None:
        name = "readout calibration" if label == "calibration" else f"job {label}"
        if event == "submitted":
            self.tasks[label] = self.bar.add_task(f"{name}: {job_id}", total=1)
        else:
            self.bar.update(self.tasks[label], completed=1, visible=False)
            self.bar.console.print(f"{name}: {job_id} done", highlight=False)


@app.command("run-hardware")
def run_hardware(
    run: RunArg,
    backend: Annotated[str, typer.Option(help="fake_<name>, snapshot:<name> or an IBM device (ibm_<name>).")],
    split: Annotated[Split, typer.Option(help="Which split to send.")] = Split.test,
    shots: ShotsOption = 1024,
    repeat: RepeatOption = 1,
    mitigation: Annotated[
        Mitigation,
        typer.Option(
            help="none; readout: mthree on the shots (raw values are scored too); trex: the runtime's TREX (Estimator)."
        ),
    ] = Mitigation.none,
    readout_from: Annotated[
        ReadoutFrom,
        typer.Option(
            help="Readout mitigation: calibration circuits run on the "
            "device in the same Batch, or the calibration data's "
            "readout errors (no shots)."
        ),
    ] = ReadoutFrom.device,
    layout: LayoutOption = "calibrated",
    max_rows_per_job: Annotated[
        Optional[int],
        typer.Option(
            help="Rows per job (with copies, a row holds one "
            "sample x repetition per copy; default: under 10 "
            "million executions a job)."
        ),
    ] = None,
    max_qpu_seconds: Annotated[
        Optional[float], typer.Option(help="Refuse a plan whose estimated QPU time is above this.")
    ] = None,
    copies: Annotated[
        str,
        typer.Option(
            help="Parallel copies of the circuit on disjoint qubits, each shot "
            "evaluating one row per copy: auto (as many as fit apart on good "
            "qubits) or N."
        ),
    ] = "auto",
    exclude_qubits: Annotated[Optional[str], typer.Option(help="Physical qubits no copy may use, e.g. 3,17.")] = None,
    rep_delay: Annotated[
        Optional[float],
        typer.Option(help="Microseconds between shots, within the backend's range (default: the backend's)."),
    ] = None,
    budget: Annotated[
        Optional[float],
        typer.Option(
            help="Pick the most accurate plan of the --dry-run table whose estimate is at most this many QPU seconds."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and a table of priced plans; submit nothing.")
    ] = False,
    seed: Annotated[Optional[int], typer.Option(help="Seed the emulation (not for IBM hardware).")] = None,
    channel: ChannelOption = None,
    instance: InstanceOption = None,
    data_dir: DataDirOption = None,
    runs_dir: RunsDirOption = Path("runs"),
) -> None:
    """Send a trained run's circuit for every sample of a split to a backend and score the results.

    Results go to <run>/hardware/<backend>/<plan>/ (jobs.json, one .npz per job, hardware.json,
    hardware.png, predictions-<split>-<backend>.csv). Re-running the same command continues:
    finished jobs are not sent again.
    """
    from qkit import runs
    from qkit.hardware.backends import check_backend_name
    from qkit.hardware.plan import check_budget
    from qkit.hardware.run_options import check_options, check_run

    # Every check that needs no Qiskit or torch answers before they are imported.
    check_options(shots, repeat, seed, split.value, mitigation.value, readout_from.value, layout, copies, rep_delay)
    check_budget(budget, max_qpu_seconds)
    run_dir = runs.find_run(runs_dir, run)
    check_run(run_dir)
    check_backend_name(backend)

    from qkit.hardware.prepare import prepare_hardware_run, replan
    from qkit.hardware.pricing import choose_plan, plan_table, priced_text
    from qkit.hardware.results import execute_hardware_run

    env = env_with(runs.read_record(run_dir).env, {"data_dir": data_dir} if data_dir else {})
    console = Console()
    options = dict(
        split=split.value,
        shots=shots,
        repeat=repeat,
        max_rows_per_job=max_rows_per_job,
        seed=seed,
        env=env,
        mitigation=mitigation.value,
        readout_from=readout_from.value,
        layout=layout,
        channel=channel,
        instance=instance,
        copies=copies,
        exclude_qubits=exclude_qubits,
        rep_delay=rep_delay,
    )
    prep = prepare_hardware_run(run_dir, backend, **options)
    table = plan_table(prep) if (dry_run or budget is not None) and mitigation.value != "trex" else None
    if budget is not None:
        picked, said = choose_plan(table, budget, prep)
        console.print(escape(said), soft_wrap=True, highlight=False)
        if not picked.is_prepared:
            prep = replan(prep, **picked.options())
    if prep.copies is not None and prep.copies.fit == 1 and prep.mitigation != "trex":
        console.print(escape(prep.copies.reason), soft_wrap=True, highlight=False)
    console.print(escape(plan_text(prep)), soft_wrap=True, highlight=False)
    if dry_run:
        if table is not None:
            console.print(priced_text(table, prep), soft_wrap=True, highlight=False)
        console.print("dry run: nothing submitted")
        return
    try:
        with JobProgress(console) as progress:
            record = execute_hardware_run(prep, max_qpu_seconds=max_qpu_seconds, on_event=progress)
    except KeyboardInterrupt:
        error(f"interrupted; job ids are in {prep.out_dir / 'jobs.json'}; rerun the same command to continue")
        raise typer.Exit(130) from None
    console.print(hardware_table(record))
    per_copy = copies_table(record)
    if per_copy is not None:
        console.print(per_copy)
    ids = record["job_ids"] + (
        [f"{record['calibration_job_id']} (readout calibration)"] if record["calibration_job_id"] else []
    )
    console.print(
        f"jobs: {', '.join(ids)}; {record['submitted_now']} submitted now; "
        f"{record['wall_seconds']:.1f} s from submitting to scores, "
        f"{record['primitive_seconds']:.1f} s of it in primitive calls",
        soft_wrap=True,
        highlight=False,
    )
    console.print(qpu_line(record), soft_wrap=True, highlight=False)
    console.print(f"saved: [bold]{escape(record['path'])}[/]", soft_wrap=True, highlight=False)
