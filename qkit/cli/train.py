"""``qkit train``: every option comes from the config declarations (``qkit.config``)."""

from __future__ import annotations

import time
from dataclasses import fields, replace
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from qkit.cli.app import app, error, usage_error
from qkit.cli.options import flag_of, with_config_options
from qkit.cli.tables import metrics_table
from qkit.config import GROUPS, ConfigError, EnvConfig, validate
from qkit.errors import QkitError
from qkit.resolve import check_config, config_from_options

RUN = "Run"
ENV_OPTIONS = tuple(f.name for f in fields(EnvConfig))


def env_with(base: EnvConfig, given: dict) -> EnvConfig:
    """``base`` with the environment options the user gave; bad values are usage errors."""
    try:
        return validate(replace(base, **{k: v for k, v in given.items() if k in ENV_OPTIONS}))
    except ConfigError as exc:
        raise usage_error(f"invalid value for '{flag_of(exc.field)}': {exc.detail}") from None


@app.command(no_args_is_help=False)
@with_config_options({**GROUPS, "env": EnvConfig})
def train(
    ctx: typer.Context,
    given: dict,
    runs_dir: Annotated[
        Path, typer.Option(help="Folder that holds one sub-folder per run.", rich_help_panel=RUN)
    ] = Path("runs"),
    resume: Annotated[
        Optional[str],
        typer.Option(
            help="Continue an interrupted run (its folder or name) with its "
            "saved options; environment options may change.",
            rich_help_panel=RUN,
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.", rich_help_panel=RUN)] = False,
    backend: Annotated[
        Optional[str],
        typer.Option(
            help="Noise-aware training: train through this device's "
            "calibrated noise (fake_lagos, snapshot:ibm_lagos, ...), i.e. "
            "--engine density --engine-option backend=NAME.",
            rich_help_panel=RUN,
        ),
    ] = None,
) -> None:
    """Train a classifier and save everything about it in a new run folder.

    Example: qkit train --backbone small_cnn --epochs 10
    """
    from qkit import runs

    options = {k: v for k, v in given.items() if k not in ENV_OPTIONS}
    if backend is not None:
        options = _with_backend(options, backend)
    if resume is not None:
        if options:
            raise QkitError(
                f"--resume continues with the run's saved options; drop: {', '.join(flag_of(k) for k in options)}"
            )
        run_dir = runs.find_run(runs_dir, resume)
        cfg, env = None, env_with(runs.read_record(run_dir).env, given)
    else:
        try:
            cfg = check_config(config_from_options(**options))
        except ConfigError as exc:
            raise usage_error(f"invalid value for '{flag_of(exc.field)}': {exc.detail}") from None
        run_dir, env = None, env_with(EnvConfig(), given)
    _run(cfg, env, runs_dir, run_dir, quiet)


def _with_backend(options: dict, backend: str) -> dict:
    """``--backend NAME``: the density engine on NAME (the only engine that trains through noise)."""
    engine = options.get("engine", "density")
    engine_options = dict(options.get("engine_options") or {})
    if engine != "density" or engine_options.get("backend", backend) != backend:
        raise usage_error(
            "--backend trains through a device's noise with the density engine; it cannot be "
            "combined with another --engine or another backend option"
        )
    return {**options, "engine": "density", "engine_options": {**engine_options, "backend": backend}}


def _run(cfg, env, runs_dir: Path, resume_dir: Path | None, quiet: bool) -> None:
    from qkit import runs
    from qkit.cli.progress import TrainProgress
    from qkit.train import TrainingInterrupted
    from qkit.train import train as run_training

    start = time.perf_counter()
    try:
        with TrainProgress(enabled=not quiet) as progress:
            run_dir = run_training(cfg, env, runs_dir, resume=resume_dir, callback=progress)
    except TrainingInterrupted as stop:
        error(f"interrupted; the run folder is {stop.run_dir}; continue it with: qkit train --resume {stop.run_dir}")
        raise typer.Exit(130) from None
    except KeyboardInterrupt:
        error("interrupted before the run folder was created; nothing to resume")
        raise typer.Exit(130) from None
    metrics = runs.read_json(run_dir / "test_metrics.json")
    console = Console()
    console.print(metrics_table(metrics, "test metrics"))
    if metrics.get("weights") == "last":
        console.print(
            f"[yellow]note:[/] validation {metrics.get('monitor')} was never defined: "
            "model.pt holds the last epoch's weights, not a best epoch's"
        )
    console.print(
        f"run: [bold]{escape(str(run_dir))}[/]  ({time.perf_counter() - start:.0f} s)", soft_wrap=True, highlight=False
    )
