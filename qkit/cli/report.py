"""``qkit report RUN``: one self-contained HTML page (or GitHub markdown) of everything a run folder holds.

Thin over ``qkit.report.build``; ``--open`` shows the page in the default browser.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from qkit.cli.app import app


class Format(str, Enum):
    html = "html"
    md = "md"


@app.command()
def report(
    run: Annotated[str, typer.Argument(help="Run folder, or its name inside --runs-dir (a unique prefix is enough).")],
    format: Annotated[
        Format,
        typer.Option(
            "--format",
            help="html: one self-contained file (images embedded); md: markdown for GitHub (links the run's PNGs).",
        ),
    ] = Format.html,
    open_: Annotated[bool, typer.Option("--open", help="Open the report in the default browser.")] = False,
    runs_dir: Annotated[Path, typer.Option(help="Folder that holds one sub-folder per run.")] = Path("runs"),
) -> None:
    """Write <run>/report.html (or report.md): config, environment, training curves, test metrics
    with bootstrap intervals, ROC, confusion matrix, thresholds, explanations, hardware runs,
    noise studies and comparisons, from the run folder alone.
    """
    from qkit import runs
    from qkit.report.build import build_report

    run_dir = runs.find_run(runs_dir, run)
    path = build_report(run_dir, format.value)
    size = path.stat().st_size
    Console().print(f"saved: [bold]{escape(str(path))}[/] ({size / 1024:.0f} KiB)", soft_wrap=True, highlight=False)
    if open_:
        import webbrowser

        if not webbrowser.open(path.resolve().as_uri()):
            Console(stderr=True).print("no browser found; open the file yourself", highlight=False)
