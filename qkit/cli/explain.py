"""``qkit explain RUN``: class-activation heatmaps of chosen images, or (``--quantum``) the quantum feature space.

Thin over ``qkit.explain.heatmaps``; everything goes to ``<run>/explain/``. Method names and
``--n`` are checked before the run is loaded, so a typo answers at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from qkit.cli.app import app
from qkit.cli.evaluate import Split
from qkit.cli.train import env_with


@app.command()
def explain(
    run: Annotated[str, typer.Argument(help="Run folder, or its name inside --runs-dir (a unique prefix is enough).")],
    split: Annotated[Split, typer.Option(help="Which split's images to explain.")] = Split.test,
    n: Annotated[int, typer.Option("--n", help="How many images (rows of the grid).")] = 8,
    method: Annotated[
        str,
        typer.Option(
            help="Comma-separated: gradcam, gradcam++, hirescam, xgradcam, layercam, eigencam, eigengradcam, scorecam."
        ),
    ] = "gradcam,gradcam++",
    select: Annotated[
        Optional[str],
        typer.Option(
            help="Outcomes to draw images from, in turn, most confident "
            "first: tp,tn,fp,fn (binary) or correct,wrong "
            "[default: all]."
        ),
    ] = None,
    quantum: Annotated[
        bool,
        typer.Option(
            "--quantum",
            help="Instead: the quantum layer's feature space (output distributions, PCA, Bloch vectors, separability).",
        ),
    ] = False,
    data_dir: Annotated[
        Optional[str], typer.Option(help="Where the data is (default: where the run recorded it).")
    ] = None,
    runs_dir: Annotated[Path, typer.Option(help="Folder that holds one sub-folder per run.")] = Path("runs"),
) -> None:
    """Show what a trained run looks at: GradCAM-style heatmaps through the whole hybrid model.

    Writes <run>/explain/heatmaps-<split>.png (original, heatmap and overlay per method), one
    <method>-<split>.npy per method and explain-<split>.json. With --quantum: figures and
    quantum.json under <run>/explain/quantum-<split>/.
    """
    from qkit import runs
    from qkit.explain.heatmaps import check_options, explain_heatmaps, explain_quantum

    if not quantum:
        check_options(split.value, n, method)
    run_dir = runs.find_run(runs_dir, run)
    env = env_with(runs.read_record(run_dir).env, {"data_dir": data_dir} if data_dir else {})
    console = Console()
    if quantum:
        record = explain_quantum(run_dir, split=split.value, env=env)
        sep = record["separability"]
        for key in ("prenet_inputs", "prenet_outputs", "quantum_outputs"):
            s = sep[key]
            console.print(
                f"{key:16s} probe AUC {_num(s['probe_auc'])}  silhouette {_num(s['silhouette'])}", highlight=False
            )
    else:
        record = explain_heatmaps(run_dir, split=split.value, n=n, methods=method, select=select, env=env)
        outcomes = ", ".join(f"{s['id']} {s['outcome'].upper()}" for s in record["samples"])
        console.print(f"target layer {record['target_layer']}; images: {outcomes}", soft_wrap=True, highlight=False)
    console.print(f"saved: [bold]{escape(record['path'])}[/]", soft_wrap=True, highlight=False)


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
