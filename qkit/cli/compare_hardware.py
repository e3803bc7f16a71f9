"""``qkit compare-hardware RUN --backend NAME``: exact vs raw vs mitigated, side by side.

Thin over ``qkit.hardware.compare.compare_hardware``; options, run lookup and progress mirror
``qkit run-hardware``, whose plan text is printed before each hardware run.
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
from qkit.cli.run_hardware import (
    ChannelOption,
    DataDirOption,
    InstanceOption,
    JobProgress,
    LayoutOption,
    RepeatOption,
    RunArg,
    RunsDirOption,
    ShotsOption,
    plan_text,
)
from qkit.cli.train import env_with


def compare_table(result: dict, repeat: int) -> Table:
    from qkit.hardware.compare import HEADERS, SHOWN, cell, has_spread, spread_note

    table = Table(title=result["title"], caption=spread_note(repeat))
    # on a narrow terminal the numbers wrap and fold rather than lose a backend name or a header to "…"
    table.add_column("setting", no_wrap=True)
    for key in SHOWN:
        table.add_column(HEADERS[key], justify="right", overflow="fold")
    for row in result["rows"]:
        spread = has_spread(row, repeat)
        table.add_row(escape(row["setting"]), *[cell(row["metrics"].get(k), spread) for k in SHOWN])
    return table


@app.command("compare-hardware")
def compare_hardware(
    run: RunArg,
    backend: Annotated[
        str,
        typer.Option(
            help="fake_<name>, snapshot:<name> or an IBM device (ibm_<name>: "
            "compared with a snapshot of its calibration, too)."
        ),
    ],
    split: Annotated[Split, typer.Option(help="Which split to send.")] = Split.test,
    shots: ShotsOption = 1024,
    repeat: RepeatOption = 1,
    trex: Annotated[
        bool, typer.Option("--trex/--no-trex", help="Also run TREX (executor Estimator, resilience level 1; slower).")
    ] = False,
    layout: LayoutOption = "calibrated",
    seed: Annotated[
        Optional[int], typer.Option(help="Seed the emulation (an IBM device itself is never seeded).")
    ] = None,
    channel: ChannelOption = None,
    instance: InstanceOption = None,
    data_dir: DataDirOption = None,
    runs_dir: RunsDirOption = Path("runs"),
) -> None:
    """Compare a trained run's exact model with the backend's raw, readout-mitigated (and TREX) results.

    Each hardware run goes to its usual <run>/hardware/<backend>/<plan>/ folder (a rerun reuses
    finished jobs); the comparison to <run>/hardware/<backend>/compare-.../ (compare.json,
    compare.png, compare.md).
    """
    from qkit import runs
    from qkit.errors import QkitError
    from qkit.hardware.compare import compare_hardware as compare
    from qkit.hardware.run_options import check_options

    if shots < 1:
        raise QkitError(f"--shots must be >= 1, got {shots}")
    if repeat < 1:
        raise QkitError(f"--repeat must be >= 1, got {repeat}")
    check_options(shots, repeat, seed, split.value, "readout", "device", layout)
    run_dir = runs.find_run(runs_dir, run)
    env = env_with(runs.read_record(run_dir).env, {"data_dir": data_dir} if data_dir else {})
    console = Console()

    def show_plan(label: str, prep) -> None:
        console.print(f"\n[bold]{escape(label)}[/]", highlight=False)
        console.print(escape(plan_text(prep)), soft_wrap=True, highlight=False)

    try:
        with JobProgress(console) as progress:
            result = compare(
                run_dir,
                backend,
                split=split.value,
                shots=shots,
                repeat=repeat,
                trex=trex,
                layout=layout,
                seed=seed,
                env=env,
                channel=channel,
                instance=instance,
                on_plan=show_plan,
                on_event=progress,
            )
    except KeyboardInterrupt:
        error(f"interrupted; job ids are in {run_dir / 'hardware'}/*/*/jobs.json; rerun the same command to continue")
        raise typer.Exit(130) from None
    console.print()
    console.print(compare_table(result, repeat))
    for sentence in result["summary"]:
        console.print(escape(sentence), soft_wrap=True, highlight=False)
    console.print(f"saved: [bold]{escape(result['paths']['dir'])}[/]", soft_wrap=True, highlight=False)
