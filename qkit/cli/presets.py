"""``qkit presets``: the named architectures of the seed papers, their sizes and the papers' numbers."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from qkit.cli.app import app


@app.command(name="presets")
def list_presets_command(
    classes: Annotated[int, typer.Option(help="Output classes the parameter counts assume.", min=2)] = 2,
) -> None:
    """List the presets (qkit train --preset NAME): source, trainable parameters, the paper's numbers.

    Trainable parameters are counted on each preset's default network (a frozen backbone's are
    not trainable), built without weights; nothing is trained or downloaded.
    """
    from qkit.presets import get_preset, list_presets
    from qkit.presets.factory import parameter_counts

    table = Table(title="presets (qkit train --preset NAME)", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("name", no_wrap=True)
    table.add_column("source", no_wrap=True)
    table.add_column("trainable quantum / classical", justify="right", no_wrap=True)
    table.add_column("paper's numbers", overflow="fold", min_width=40)
    for name in list_presets():
        preset = get_preset(name)
        counts = parameter_counts(name, classes)
        source = f"twin of {preset.twin_of}" if preset.classical else preset.source
        table.add_row(
            name, source, f"{counts['quantum']:,} / {counts['classical']:,}", "" if preset.classical else preset.paper
        )
    console = Console()
    if not console.is_terminal:  # piped or captured: no 80-column default squeezing the papers' text
        console = Console(width=200)
    console.print(table)
