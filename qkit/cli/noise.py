"""``qkit noise study RUN``: sweeps and ablations of a device's noise on a trained run, from the command line.

Thin over ``qkit.noise.study.run_study``; torch and Qiskit are imported inside the command.
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
from qkit.cli.run_hardware import DataDirOption, LayoutOption, RunArg, RunsDirOption
from qkit.cli.train import env_with

noise_app = typer.Typer(
    help="Noise studies: how much each part of a device's noise costs a trained model.", no_args_is_help=True
)
app.add_typer(noise_app, name="noise", help="Noise studies on a trained run (density engine): qkit noise study.")


class StudyEngine(str, Enum):
    density = "density"
    runtime = "runtime"


class Vary(str, Enum):
    scale = "scale"
    source = "source"
    shots = "shots"
    backend = "backend"
    layout = "layout"


def summary_table(summary: dict) -> Table:
    from qkit.noise.report import NAMES, SHOWN

    study = summary["study"]
    table = Table(
        title=f"noise study on {study['backend']}: {study['vary']} "
        f"({study['shots'] or 'exact'} shots, {study['repeat']} repetition(s))"
    )
    table.add_column(study["vary"])
    mitigated = len(study.get("mitigation") or ["none"]) > 1
    if mitigated:
        table.add_column("mitigation")
    for key in SHOWN:
        table.add_column(NAMES[key], justify="right")
    for row in summary["points"]:
        cells = [
            "-"
            if row["metrics"][k]["mean"] is None
            else (
                f"{row['metrics'][k]['mean']:.4f}"
                + (f" ± {row['metrics'][k]['std']:.4f}" if row["repetitions"] > 1 else "")
            )
            for k in SHOWN
        ]
        table.add_row(escape(str(row["point"])), *([row["mitigation"]] if mitigated else []), *cells)
    exact = summary["exact"]
    if exact.get("auc") is not None:
        table.add_row(
            "exact",
            *([""] if mitigated else []),
            *[
                f"{exact[k]:.4f}"
                if isinstance(exact.get(k), float)
                else {"delta": "0.0000", "agreement": "1.0000"}.get(k, "-")
                for k in SHOWN
            ],
        )
    return table


@noise_app.command("study")
def study(
    run: RunArg,
    vary: Annotated[Vary, typer.Option(help="What changes between points.")] = Vary.scale,
    values: Annotated[
        Optional[str],
        typer.Option(
            help="Comma-separated points [scale: 0,0.25,0.5,1,2,4,8; "
            "source: none,gate,readout,relaxation,all; shots: "
            "64,256,1024,4096; layout: best,default,worst; backend: "
            "fake_lagos,fake_quito,fake_manila,fake_belem]."
        ),
    ] = None,
    backend: Annotated[
        str, typer.Option(help="Device whose calibration is studied: fake_<name>, snapshot:<name>, ibm_<name>.")
    ] = "fake_lagos",
    shots: Annotated[
        Optional[int],
        typer.Option(
            help="Shots per row and basis, sampled from the exact noisy distribution [default: exact values]."
        ),
    ] = None,
    repeat: Annotated[int, typer.Option(help="Shot-noise repetitions per point (needs --shots).")] = 1,
    layout: LayoutOption = "calibrated",
    mitigation: Annotated[
        str,
        typer.Option(
            help="none, readout, or none,readout: readout mitigation (mthree, with "
            "the readout errors the emulation applied) on the same shots."
        ),
    ] = "none",
    engine: Annotated[
        StudyEngine,
        typer.Option(
            help="density (fast, exact noisy values or shots from them) or "
            "runtime (the runtime's local mode, as run-hardware; the slower "
            "reference; --vary shots, backend or layout)."
        ),
    ] = StudyEngine.density,
    split: Annotated[Split, typer.Option(help="Which split to score.")] = Split.test,
    seed: Annotated[int, typer.Option(help="Seed of the shot sampling (repetition r uses seed + r).")] = 0,
    name: Annotated[
        Optional[str], typer.Option(help="Study folder under <run>/noise/ [default: <vary>-<backend>].")
    ] = None,
    data_dir: DataDirOption = None,
    runs_dir: RunsDirOption = Path("runs"),
) -> None:
    """Evaluate a trained run's test split under a device's calibrated noise, varied point by point.

    Each point is the density engine (exact noisy values, or --shots sampled from them) with
    the run's trained weights. Writes <run>/noise/<study>/ (points.jsonl, summary.json,
    study.png, report.md); re-running the same command continues an interrupted study.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from qkit import runs
    from qkit.noise.study import StudyConfig, check_config, parse_mitigation, parse_values, run_study

    config = StudyConfig(
        vary=vary.value,
        values=parse_values(vary.value, values),
        backend=backend,
        layout=layout,
        shots=shots,
        repeat=repeat,
        split=split.value,
        seed=seed,
        mitigation=parse_mitigation(mitigation),
        engine=engine.value,
    )
    check_config(config)
    run_dir = runs.find_run(runs_dir, run)
    env = env_with(runs.read_record(run_dir).env, {"data_dir": data_dir} if data_dir else {})
    console = Console()
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    try:
        with bar:
            task = bar.add_task("preparing (model, data, layouts, engines)", total=None)

            def progress(done: int, total: int, label: str) -> None:
                bar.update(task, completed=done, total=total, description=f"{vary.value} {label}")

            summary = run_study(run_dir, config, name=name, env=env, on_progress=progress)
    except KeyboardInterrupt:
        error("interrupted; finished points are saved; rerun the same command to continue")
        raise typer.Exit(130) from None
    console.print(summary_table(summary))
    console.print(summary["finding"], soft_wrap=True, highlight=False)
    console.print(f"saved: [bold]{escape(summary['path'])}[/]", soft_wrap=True, highlight=False)
