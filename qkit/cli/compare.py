"""``qkit compare PRESET... --seeds N``: a multi-seed sweep of presets and their classical twins.

Thin over ``qkit.compare``: plan the sweep, train what is not finished (one progress bar for
the whole sweep), write the report, print its table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from qkit.cli.app import app
from qkit.cli.options import with_config_options
from qkit.config import DataConfig, EnvConfig, ModelConfig, OptimConfig

SWEEP = "Sweep"


@app.command()
@with_config_options(
    {"data": DataConfig, "model": ModelConfig, "optim": OptimConfig, "env": EnvConfig}, exclude=("preset",)
)
def compare(
    ctx: typer.Context,
    given: dict,
    presets: Annotated[
        list[str],
        typer.Argument(
            help="Preset names (qkit presets lists them); each hybrid brings its classical twin unless --no-twins."
        ),
    ],
    seeds: Annotated[
        int,
        typer.Option(
            help="Training seeds 0..N-1 per preset (the paired test needs 6 to reach p < 0.05).", rich_help_panel=SWEEP
        ),
    ] = 5,
    name: Annotated[
        Optional[str],
        typer.Option(
            help="Sweep name: runs go to <runs-dir>/compare-<name>/ (default: the hybrid presets' names).",
            rich_help_panel=SWEEP,
        ),
    ] = None,
    workers: Annotated[
        Optional[int],
        typer.Option(
            help="Local processes training runs at once (default: cores // threads).", min=1, rich_help_panel=SWEEP
        ),
    ] = None,
    twins: Annotated[
        bool, typer.Option("--twins/--no-twins", help="Also train each hybrid's classical twin.", rich_help_panel=SWEEP)
    ] = True,
    ray: Annotated[
        Optional[str],
        typer.Option(
            help="Run the sweep as Ray tasks: HOST:PORT or ray://HOST:PORT of a "
            "running head, auto (this machine's cluster) or local (a Ray "
            "instance started here). Needs the ray extra.",
            rich_help_panel=SWEEP,
        ),
    ] = None,
    runs_dir: Annotated[Path, typer.Option(help="Folder that holds the runs.", rich_help_panel=SWEEP)] = Path("runs"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.", rich_help_panel=SWEEP)] = False,
) -> None:
    """Train presets (and their classical twins) over several seeds on the same splits, then compare.

    Every qkit train option below applies to every run (each preset's own recipe otherwise).

    --threads (default 1) is fixed per sweep: the thread count changes a CPU run's sums.

    Re-running the same command continues a sweep: finished runs are skipped, interrupted ones resumed.

    Writes summary.json, summary.md and compare.png in the sweep folder.

    Example: qkit compare hqcnn qkit-default --seeds 5 --workers 2
    """
    from qkit.cli.train import ENV_OPTIONS, env_with
    from qkit.compare import plan_sweep, run_sweep, write_report

    options = {k: v for k, v in given.items() if k not in ENV_OPTIONS}
    env = env_with(EnvConfig(), given)
    env_fields = {k: v for k, v in vars(env).items() if k != "threads"}  # threads: fixed per sweep
    sweep = plan_sweep(presets, seeds, name, runs_dir, twins, options, env_fields, env.threads or 1)
    with SweepProgress(enabled=not quiet) as progress:
        run_sweep(sweep, workers, progress, ray=ray)
    summary = write_report(sweep)
    print_summary(summary)


class SweepProgress:
    """One bar for the whole sweep (runs done / total) and one line per finished run."""

    def __init__(self, enabled: bool = True):
        self.enabled, self.bar, self.task = enabled, None, None

    def __enter__(self) -> SweepProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def __call__(self, event: str, info: dict) -> None:
        if not self.enabled:
            return
        if event == "start":
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            self.bar.__enter__()
            self.task = self.bar.add_task("runs", total=info["total"], completed=info["done"])
            where = (
                f"as Ray tasks ({info['ray']}) of {info['threads']} CPU(s) each"
                if info.get("ray")
                else f"{info['workers']} worker(s) x {info['threads']} thread(s)"
            )
            self.bar.console.print(
                f"{info['total'] - info['done']} of {info['total']} runs to train, {where}", highlight=False
            )
        elif event == "run_done":
            self.bar.update(self.task, advance=1)
            auc = f"AUC {info['auc']:.4f}" if info.get("auc") is not None else "AUC n/a"
            self.bar.console.print(
                f"{info['key']}: {auc} ({info['seconds']:.0f} s{', resumed' if info['resumed'] else ''})",
                highlight=False,
            )


def print_summary(summary: dict) -> None:
    from rich import box
    from rich.table import Table

    from qkit.compare.markdown import fmt, params

    table = Table(title=f"compare-{summary['name']}: test metrics, mean ± std over seeds", box=box.SIMPLE_HEAD)
    for column in ("preset", "seeds", "AUC", "accuracy", "G-mean", "quantum / classical", "s / run"):
        table.add_column(column, justify="left" if column == "preset" else "right", no_wrap=True)
    for preset, p in summary["presets"].items():
        wall = p["wall_seconds"]["mean"]
        table.add_row(
            preset,
            str(len(p["seeds_finished"])),
            fmt(p["metrics"].get("auc")),
            fmt(p["metrics"].get("accuracy")),
            fmt(p["metrics"].get("g_mean")),
            params(p["parameters"]) if p["parameters"] else "n/a",
            f"{wall:.0f}" if wall else "n/a",
        )
    console = Console() if Console().is_terminal else Console(width=160)
    console.print(table)
    for pair in summary["pairs"]:
        w, boot = pair["wilcoxon"].get("auc"), pair["bootstrap_auc"] or {}
        if w:
            p = f"{w['p']:.3g}" if w["p"] is not None else "undefined"
            ci = f"[{boot['low']:+.4f}, {boot['high']:+.4f}]" if boot.get("low") is not None else "n/a"
            console.print(
                f"{pair['hybrid']} - {pair['twin']}: AUC {w['mean_difference']:+.4f}, Wilcoxon p {p}, "
                f"95% CI over test images {ci}",
                highlight=False,
            )
    for claim in summary["claims"]:
        console.print(f"{claim['preset']}: {claim['verdict']}", highlight=False)
    console.print(f"report: {Path(summary['root']) / 'summary.md'}", highlight=False)
