"""Command line: ``qkit train``, ``qkit evaluate RUN``, ``qkit runs``.

Commands are thin: parse options, call one library function, print a Rich table. Errors a
user can fix are one line on stderr without a traceback:

* bad option values (Click usage errors)          -> ``error: ...``, exit code 2
* ``QkitError`` from the library (missing data...) -> ``error: ...``, exit code 1
* Ctrl-C during training                           -> how to resume,  exit code 130
"""

from __future__ import annotations

import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer._click import exceptions as click_exceptions   # Typer >= 0.20 vendors Click here
from typer.core import TyperGroup

from qkit.config import BALANCE, DEVICES, MONITORS, NORMALIZE, SCHEDULERS, TrainConfig
from qkit.errors import QkitError

DEFAULTS = TrainConfig()  # option defaults come from the config: one source of truth


class _OneLineErrors(TyperGroup):
    """Print every usage error and QkitError as a single ``error:`` line (no panel, no traceback)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            result = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                                  standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
        except click_exceptions.NoArgsIsHelpError:
            code = 0                                   # the help text has been printed
        except click_exceptions.ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if isinstance(exc, click_exceptions.UsageError) and ctx else ""
            _error(exc.format_message() + hint)
            code = exc.exit_code
        except typer.Abort:
            _error("aborted")
            code = 1
        except QkitError as exc:
            _error(str(exc))
            code = 1
        except OSError as exc:        # disk full, permission denied...: the message says it all
            _error(f"{type(exc).__name__}: {exc}")
            code = 1
        if standalone_mode:
            sys.exit(code)
        return code


def _error(message: str) -> None:
    # soft_wrap: a long message must stay ONE line, not be wrapped at the terminal width.
    one_line = " ".join(str(message).split()).replace(": Value error, ", ": ")   # pydantic's prefix
    Console(stderr=True).print(f"[bold red]error:[/] {escape(one_line)}", soft_wrap=True, highlight=False)


app = typer.Typer(
    cls=_OneLineErrors,
    name="qkit",
    help="qkit: hybrid quantum-classical image classifiers for medical imaging.\n\n"
         "Train a torchvision backbone with a Qiskit circuit as its classification head on "
         "MedMNIST or your own image folder, then inspect and re-evaluate the runs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


# --------------------------------------------------------------------------- option types

def _choices(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A str Enum of a config's choices, so Typer validates them and lists them in --help."""
    return Enum(name, {v: v for v in values}, type=str)


# The choices live in qkit.config; the CLI only exposes them.
Balance = _choices("Balance", BALANCE)
Normalize = _choices("Normalize", NORMALIZE)
Scheduler = _choices("Scheduler", SCHEDULERS)
Monitor = _choices("Monitor", MONITORS)
Device = _choices("Device", DEVICES)


class Split(str, Enum):
    train = "train"
    val = "val"
    test = "test"


def _parse_classes(value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    try:
        labels = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a comma-separated list of integer labels, e.g. 0,1") from None
    if len(labels) < 2 or len(set(labels)) != len(labels) or min(labels) < 0:
        raise typer.BadParameter(f"{value!r}: give 2 or more distinct labels >= 0, e.g. 0,1")
    return value


def _registry_check(list_names, what: str, default: str):
    """Callback that accepts registered names only (skips the import for the default)."""
    def check(value: str) -> str:
        if value != default:
            names = list_names()
            if value not in names:
                raise typer.BadParameter(f"unknown {what} {value!r}; choose from: {', '.join(names)}")
        return value
    return check


def _backbones() -> list[str]:
    from qkit.models import list_backbones
    return list_backbones()


def _heads() -> list[str]:
    from qkit.models import list_heads
    return list_heads()


def _circuits() -> list[str]:
    from qkit.circuits import list_circuits
    return list_circuits()


def _engines() -> list[str]:
    from qkit.quantum import ENGINE_NAMES
    return list(ENGINE_NAMES)


DATA, MODEL, OPTIM, STOP, RUN = "Data", "Model", "Optimisation", "Early stopping", "Run"
RunsDir = Annotated[Path, typer.Option("--runs-dir", help="Folder that holds one sub-folder per run.")]


def _positive(value: float) -> float:
    if not value > 0:
        raise typer.BadParameter(f"{value} must be > 0")
    return value


# --------------------------------------------------------------------------- qkit train

@app.command(no_args_is_help=False)
def train(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Option(help="MedMNIST 2D dataset name (breastmnist, pneumoniamnist, pathmnist, ...) "
                                         "or a folder with one sub-folder of images per class.", rich_help_panel=DATA)] = DEFAULTS.dataset,
    size: Annotated[int, typer.Option(help="MedMNIST image size in pixels: 28, 64, 128 or 224.", rich_help_panel=DATA)] = DEFAULTS.size,
    data_dir: Annotated[Optional[str], typer.Option(help="Where the dataset .npz files are (default: $QKIT_DATA_DIR, "
                                                    "else ~/.medmnist).", rich_help_panel=DATA)] = DEFAULTS.data_dir,
    resize: Annotated[Optional[int], typer.Option(min=8, help="Resize images to this many pixels (e.g. 224 for ImageNet "
                                                  "weights).", rich_help_panel=DATA)] = DEFAULTS.resize,
    classes: Annotated[Optional[str], typer.Option(callback=_parse_classes, help="Keep only these labels, e.g. \"0,1\"; "
                                                   "they become classes 0..k-1 in this order.", rich_help_panel=DATA)] = DEFAULTS.classes,
    balance: Annotated[Balance, typer.Option(help="Class balancing of the training set; 'weighted' weights the loss.",
                                             rich_help_panel=DATA)] = Balance(DEFAULTS.balance),
    augment: Annotated[bool, typer.Option(help="Random flips and rotations of training images (off with a frozen backbone).",
                                          rich_help_panel=DATA)] = DEFAULTS.augment,
    vertical_flip: Annotated[Optional[bool], typer.Option(help="Vertical flips in the augmentation; default: only for "
                                                          "images with no up and down (pathology, dermatoscopy, blood, "
                                                          "tissue), not ultrasound, X-ray or CT.", rich_help_panel=DATA)] = DEFAULTS.vertical_flip,
    normalize: Annotated[Normalize, typer.Option(help="Pixel normalisation; 'imagenet' for ImageNet-pretrained backbones.",
                                                 rich_help_panel=DATA)] = Normalize(DEFAULTS.normalize),
    positive_class: Annotated[Optional[int], typer.Option(min=0, help="Index of the positive class of a binary task "
                                                          "(default: malignant for BreastMNIST, else 1).", rich_help_panel=DATA)] = DEFAULTS.positive_class,
    download: Annotated[bool, typer.Option(help="Download a missing MedMNIST file (needs internet).", rich_help_panel=DATA)] = DEFAULTS.download,
    backbone: Annotated[str, typer.Option(callback=_registry_check(_backbones, "backbone", "resnet18"),
                                          help="Image feature extractor: resnet18, resnet50, efficientnet_b0, "
                                          "mobilenet_v3_small, small_cnn (fast on CPU), ...", rich_help_panel=MODEL)] = DEFAULTS.backbone,
    pretrained: Annotated[str, typer.Option(help="Backbone weights: none, imagenet (downloaded once) or the PATH of a "
                                            "qkit state dict such as runs/NAME/model.pt.", rich_help_panel=MODEL)] = DEFAULTS.pretrained,
    freeze_backbone: Annotated[bool, typer.Option(help="Train only the head; backbone features are computed once.",
                                                  rich_help_panel=MODEL)] = DEFAULTS.freeze_backbone,
    head: Annotated[str, typer.Option(callback=_registry_check(_heads, "head", "quantum"),
                                      help="Classifier head: quantum (a Qiskit circuit) or linear (classical baseline).",
                                      rich_help_panel=MODEL)] = DEFAULTS.head,
    circuit: Annotated[str, typer.Option(callback=_registry_check(_circuits, "circuit", "dressed"),
                                         help="Circuit of the quantum head (see circuits/ for the catalogue).",
                                         rich_help_panel=MODEL)] = DEFAULTS.circuit,
    n_qubits: Annotated[int, typer.Option(min=1, help="Qubits of the quantum head.", rich_help_panel=MODEL)] = DEFAULTS.n_qubits,
    depth: Annotated[int, typer.Option(min=1, help="Repetitions (layers) of the circuit's trainable block.",
                                       rich_help_panel=MODEL)] = DEFAULTS.depth,
    engine: Annotated[str, typer.Option(callback=_registry_check(_engines, "engine", "statevector"),
                                        help="How the circuit is simulated while training: statevector (fast, exact) "
                                        "or connector (qiskit-machine-learning reference, slow).", rich_help_panel=MODEL)] = DEFAULTS.engine,
    small_input: Annotated[Optional[bool], typer.Option(help="Backbone stem for small images (3x3 stride-1 first conv); "
                                                        "default: on for 28 px images that are not resized.", rich_help_panel=MODEL)] = DEFAULTS.small_input,
    epochs: Annotated[int, typer.Option(min=1, help="Maximum number of passes over the training set.", rich_help_panel=OPTIM)] = DEFAULTS.epochs,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per optimisation step.", rich_help_panel=OPTIM)] = DEFAULTS.batch_size,
    lr: Annotated[float, typer.Option(callback=_positive, help="Adam learning rate.", rich_help_panel=OPTIM)] = DEFAULTS.lr,
    head_lr_scale: Annotated[float, typer.Option(callback=_positive, help="The head learns at lr times this "
                                                 "(a quantum head's bounded outputs need larger steps).",
                                                 rich_help_panel=OPTIM)] = DEFAULTS.head_lr_scale,
    weight_decay: Annotated[float, typer.Option(min=0.0, help="Adam weight decay (L2 penalty).", rich_help_panel=OPTIM)] = DEFAULTS.weight_decay,
    scheduler: Annotated[Scheduler, typer.Option(help="Learning-rate schedule over the epochs.", rich_help_panel=OPTIM)] = Scheduler(DEFAULTS.scheduler),
    step_size: Annotated[int, typer.Option(min=1, help="StepLR: epochs between learning-rate drops.", rich_help_panel=OPTIM)] = DEFAULTS.step_size,
    gamma: Annotated[float, typer.Option(max=1.0, callback=_positive, help="StepLR: factor of each drop (0 < gamma <= 1).", rich_help_panel=OPTIM)] = DEFAULTS.gamma,
    class_weighted_loss: Annotated[bool, typer.Option(help="Weight the loss by inverse class frequency.",
                                                      rich_help_panel=OPTIM)] = DEFAULTS.class_weighted_loss,
    ema_decay: Annotated[float, typer.Option(min=0.0, max=0.9999, help="Keep an exponential moving average of the weights "
                                             "(per step, this decay; 0: off); validation scores it and model.pt holds it.",
                                             rich_help_panel=OPTIM)] = DEFAULTS.ema_decay,
    precise_bn: Annotated[bool, typer.Option(help="Recompute BatchNorm statistics on the un-augmented training images "
                                             "before each validation.", rich_help_panel=OPTIM)] = DEFAULTS.precise_bn,
    monitor: Annotated[Monitor, typer.Option(help="Validation metric that picks the best epoch and drives early stopping.",
                                             rich_help_panel=STOP)] = Monitor(DEFAULTS.monitor),
    patience: Annotated[int, typer.Option(min=0, help="Stop after this many epochs without improvement (0: never).",
                                          rich_help_panel=STOP)] = DEFAULTS.patience,
    min_delta: Annotated[float, typer.Option(min=0.0, help="Smallest change that counts as an improvement.",
                                             rich_help_panel=STOP)] = DEFAULTS.min_delta,
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="Random seed: same seed, same result.", rich_help_panel=RUN)] = DEFAULTS.seed,
    device: Annotated[Device, typer.Option(help="Where to train; auto picks cuda when available.", rich_help_panel=RUN)] = Device(DEFAULTS.device),
    num_workers: Annotated[int, typer.Option(min=0, help="DataLoader worker processes (0: load in the main process).",
                                             rich_help_panel=RUN)] = DEFAULTS.num_workers,
    name: Annotated[Optional[str], typer.Option(help="Run folder name (default: <date>-<time>-<preset>).", rich_help_panel=RUN)] = DEFAULTS.name,
    preset: Annotated[Optional[str], typer.Option(help="Short label used in the run name (default: <dataset>-<backbone>-<head>).",
                                                  rich_help_panel=RUN)] = DEFAULTS.preset,
    runs_dir: Annotated[Path, typer.Option(help="Folder that holds one sub-folder per run.", rich_help_panel=RUN)] = Path("runs"),
    resume: Annotated[Optional[str], typer.Option(help="Continue an interrupted run (its folder or name) with its saved options.",
                                                  rich_help_panel=RUN)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.", rich_help_panel=RUN)] = False,
) -> None:
    """Train a classifier and save everything about it in a new run folder.

    Example: qkit train --backbone small_cnn --epochs 10
    """
    from qkit import runs
    from qkit.train import TrainingInterrupted
    from qkit.train import train as run_training

    if resume is not None:
        given = [p.name for p in ctx.command.params if p.name not in ("runs_dir", "resume", "quiet")
                 and ctx.get_parameter_source(p.name).name in ("COMMANDLINE", "ENVIRONMENT")]
        if given:
            raise QkitError(f"--resume continues with the run's saved options; drop: "
                            f"{', '.join('--' + g.replace('_', '-') for g in given)}")
        cfg, resume_dir = None, runs.find_run(runs_dir, resume)
    else:
        options = {k: v.value if isinstance(v, Enum) else v for k, v in ctx.params.items()
                   if k not in ("runs_dir", "resume", "quiet")}
        if options["classes"] is not None:
            options["classes"] = tuple(int(c) for c in options["classes"].split(","))
        cfg, resume_dir = TrainConfig(**options), None
    console = Console()
    start = time.perf_counter()
    try:
        run_dir = run_training(cfg, runs_dir, resume=resume_dir, progress=not quiet)
    except TrainingInterrupted as stop:
        _error(f"interrupted; the run folder is {stop.run_dir}; continue it with: qkit train --resume {stop.run_dir}")
        raise typer.Exit(130) from None
    except KeyboardInterrupt:
        _error("interrupted before the run folder was created; nothing to resume")
        raise typer.Exit(130) from None
    metrics = runs.read_json(run_dir / "test_metrics.json")
    console.print(_metrics_table(metrics, "test metrics"))
    console.print(f"run: [bold]{escape(str(run_dir))}[/]  ({time.perf_counter() - start:.0f} s)", soft_wrap=True, highlight=False)


_SHOWN = ("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "precision", "f1", "g_mean", "loss")


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "-" if value is None else str(value)


def _metrics_table(metrics: dict, title: str) -> Table:
    """Metric rows; a second column at the threshold chosen on validation when there is one."""
    at_val = metrics.get("at_val_threshold")
    table = Table(title=title)
    table.add_column("metric")
    table.add_column(f"threshold {metrics['threshold']:.2f}" if "threshold" in metrics else "value", justify="right")
    if at_val:
        table.add_column(f"val threshold {metrics['val_threshold']:.3f}", justify="right")
    for key in _SHOWN:
        if key in metrics:
            row = [key, _fmt(metrics[key])]
            if at_val:
                row.append(_fmt(at_val.get(key)) if key != "loss" else "")
            table.add_row(*row)
    return table


# --------------------------------------------------------------------------- qkit evaluate

@app.command()
def evaluate(
    run: Annotated[str, typer.Argument(help="Run folder, or its name inside --runs-dir (a unique prefix is enough).")],
    split: Annotated[Split, typer.Option(help="Which split to score.")] = Split.test,
    engine: Annotated[Optional[str], typer.Option(help="Simulate the quantum head with another engine, e.g. connector "
                                                  "(default: the engine it was trained with).")] = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Re-score a trained run on a data split, optionally on another quantum engine.

    Writes <run>/eval_<split>_<engine>.json.
    """
    from qkit import runs
    from qkit.evaluate import evaluate_run

    if engine is not None:
        _registry_check(_engines, "engine", None)(engine)
    run_dir = runs.find_run(runs_dir, run)
    metrics = evaluate_run(run_dir, split=split.value, engine=engine)
    Console().print(_metrics_table(metrics, f"{run_dir.name}: {split.value} ({metrics['engine']})"))


# --------------------------------------------------------------------------- qkit runs

@app.command(name="runs")
def list_runs(runs_dir: RunsDir = Path("runs")) -> None:
    """List the runs in --runs-dir with their key test metrics."""
    from qkit import runs

    found = runs.list_runs(runs_dir)
    if not found:
        Console().print(f"no runs in {escape(str(runs_dir))}")
        return
    table = Table(title=f"runs in {runs_dir}", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("name", overflow="fold", min_width=16)
    table.add_column("status", overflow="fold")
    table.add_column("model", overflow="fold")
    metrics = {"auc": "AUC", "accuracy": "acc", "sensitivity": "sens", "specificity": "spec"}
    for header in metrics.values():
        table.add_column(header, justify="right", no_wrap=True)   # numbers never wrap
    for r in found:
        model = f"{r.get('backbone') or '?'} + {r.get('head') or '?'}"
        table.add_row(r["name"], r["status"], model, *(_fmt(r.get(k), digits=3) for k in metrics))
    Console().print(table)


def main() -> None:
    """Console-script entry point."""
    app()
