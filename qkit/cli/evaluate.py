"""``qkit evaluate RUN``: re-score a trained run, optionally with its circuit on another engine."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from qkit.cli.app import app, usage_error
from qkit.cli.options import with_config_options
from qkit.cli.tables import metrics_table
from qkit.cli.train import env_with
from qkit.config import EnvConfig


class Split(str, Enum):
    train = "train"
    val = "val"
    test = "test"


def _engine_choice(value: Optional[str]) -> Optional[str]:
    from qkit.engines import engine_names

    if value is not None and value not in engine_names():
        raise typer.BadParameter(f"unknown engine {value!r}; choose from: {', '.join(engine_names())}")
    return value


@app.command()
@with_config_options({"env": EnvConfig})
def evaluate(
    ctx: typer.Context,
    given: dict,
    run: Annotated[str, typer.Argument(help="Run folder, or its name inside --runs-dir (a unique prefix is enough).")],
    split: Annotated[Split, typer.Option(help="Which split to score.")] = Split.test,
    engine: Annotated[
        Optional[str],
        typer.Option(
            callback=_engine_choice,
            help="Evaluate the circuit with another "
            "engine, e.g. connector (default: the run's own engine and "
            "options).",
        ),
    ] = None,
    engine_option: Annotated[
        Optional[list[str]], typer.Option(help="Engine option KEY=VALUE (repeat for several).")
    ] = None,
    backend: Annotated[
        Optional[str],
        typer.Option(
            help="Score on a device or its emulation (fake_lagos, "
            "snapshot:ibm_lagos, ibm_<name>): --engine estimator "
            "--engine-option backend=NAME."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = 256,
    runs_dir: Annotated[Path, typer.Option(help="Folder that holds one sub-folder per run.")] = Path("runs"),
) -> None:
    """Re-score a trained run on a data split, optionally on another quantum engine.

    The data is read where the run recorded it (--data-dir overrides). Each evaluation gets its
    own folder <run>/evaluations/<time>-<split>-<engine>/ with metrics.json and
    predictions-<split>-<engine>.csv; earlier evaluations are never overwritten.
    """
    from qkit import runs
    from qkit.engines import parse_engine_option
    from qkit.evaluate import evaluate_run

    options = dict(parse_engine_option(item) for item in engine_option or [])
    run_dir = runs.find_run(runs_dir, run)
    env = env_with(runs.read_record(run_dir).env, given)
    if backend is not None:
        if engine not in (None, "estimator") or options.get("backend", backend) != backend:
            raise usage_error(
                "--backend runs the estimator engine on that backend; it cannot be combined "
                "with another --engine or another backend option"
            )
        engine, options["backend"] = "estimator", backend
    if options and engine is None:
        raise usage_error("--engine-option needs --engine (the run's own engine keeps its recorded options)")
    metrics = evaluate_run(
        run_dir, split=split.value, engine=engine, engine_options=options, env=env, batch_size=batch_size
    )
    console = Console()
    console.print(metrics_table(metrics, f"{run_dir.name}: {split.value} ({metrics['engine']})"))
    console.print(f"saved: [bold]{escape(metrics['path'])}[/]", soft_wrap=True, highlight=False)
