"""Training: ``TrainConfig`` (``qkit.config``) in, run folder out.

The loop is deliberately plain (torchvision ``references/classification`` style)::

    for epoch in epochs:
        reseed from (seed, epoch)         # data order + augmentation independent of history
        train_one_epoch (also updates the weight EMA) -> recompute BatchNorm statistics
        -> evaluate(val) (the EMA weights when on) -> scheduler.step()
        keep best-on-validation weights, early stopping, atomic checkpoint.pt
    reload best weights -> evaluate(test) -> test_metrics.json + figures

Everything that decides the next epoch is in ``checkpoint.pt`` (weights, optimizer, scheduler,
best weights, patience counter, history, RNG states), and each epoch's randomness is seeded
from ``(seed, epoch)`` rather than inherited from the previous epoch. So a run killed at any
point and continued with ``train(None, resume=run_dir)`` ends bit-for-bit like an
uninterrupted one: it simply redoes the unfinished epoch (seeding helpers: ``qkit.repro``).

With ``freeze_backbone`` the backbone never changes, so its features are computed once per
split (no augmentation) and only the head trains, on cached feature tensors.

Scoring a finished run folder again (``evaluate_run``) lives in ``qkit.evaluate``.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from qkit import runs
from qkit.config import TrainConfig
from qkit.epoch import evaluate, extract_features, make_ema, recompute_batchnorm, train_one_epoch
from qkit.errors import QkitError
from qkit.repro import epoch_seed, make_loader, resolve_device, rng_state, seed_everything, set_rng_state

CURVE_METRICS = ("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "f1", "g_mean")
Callback = Callable[[str, dict], None]   # callback(event, info); event is "batch" or "epoch"


# --------------------------------------------------------------------------- progress display

class _Bars:
    """Rich progress bars for epochs and batches plus one line per epoch; silent when disabled."""

    def __init__(self, enabled: bool, epochs: int, done: int):
        self.enabled, self.epochs, self.done = enabled, epochs, done

    def __enter__(self) -> _Bars:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[info]}"), TimeElapsedColumn(), transient=True)
            self.bar.__enter__()
            self.epoch_task = self.bar.add_task("epochs", total=self.epochs, completed=self.done, info="")
            self.batch_task = self.bar.add_task("batches", total=1, info="")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)

    def log(self, message: str) -> None:
        if self.enabled:
            self.bar.console.print(message, highlight=False)

    def start_epoch(self, epoch: int, n_batches: int) -> None:
        if self.enabled:
            self.bar.reset(self.batch_task, total=n_batches, description=f"epoch {epoch}", info="")

    def batch(self, loss: float) -> None:
        if self.enabled:
            self.bar.update(self.batch_task, advance=1, info=f"loss {loss:.4f}")

    def end_epoch(self, record: dict, monitor: str, improved: bool) -> None:
        if self.enabled:
            self.bar.update(self.epoch_task, advance=1)
            value = record.get("val_loss" if monitor == "loss" else f"val_{monitor}")
            shown = "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"
            watched = "" if monitor == "loss" else f"  val_{monitor} {shown}"
            self.log(f"epoch {record['epoch']:>3}/{self.epochs}  train_loss {record['train_loss']:.4f}  "
                     f"val_loss {record['val_loss']:.4f}{watched}{'  *' if improved else ''}  "
                     f"({record['seconds']:.1f}s)")


# --------------------------------------------------------------------------- the run

def _loss_weights(cfg: TrainConfig, bundle: Any) -> torch.Tensor | None:
    if bundle.class_weights is not None:
        return bundle.class_weights.float()
    if not cfg.class_weighted_loss:
        return None
    from qkit.balancing import class_weights

    return class_weights(bundle.train.labels, bundle.class_names)


def _optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Adam with the head at ``lr * head_lr_scale``.

    BreastMNIST gives about nine steps per epoch; a quantum head's outputs are bounded in
    [-1, 1], so its post-net must grow its weights to several units before predictions are
    confident, which takes thousands of steps at the backbone's rate.
    """
    def trainable(module):
        return [p for p in module.parameters() if p.requires_grad]

    return torch.optim.Adam([{"params": trainable(model.backbone), "lr": cfg.lr},
                             {"params": trainable(model.head), "lr": cfg.lr * cfg.head_lr_scale}],
                            lr=cfg.lr, weight_decay=cfg.weight_decay)


def _scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer):
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    return None


def _monitor_value(monitor: str, metrics: dict, loss: float) -> float | None:
    value = loss if monitor == "loss" else metrics.get(monitor)
    return None if value is None or not math.isfinite(value) else float(value)


def _improved(value: float | None, best: float | None, monitor: str, min_delta: float) -> bool:
    if value is None:       # undefined metric (e.g. one class in val): never "better"
        return False
    if best is None:
        return True
    return value < best - min_delta if monitor == "loss" else value > best + min_delta


def _scored_state(model: nn.Module, net: nn.Module, ema: AveragedModel | None) -> dict:
    """A CPU copy of the whole model's state as validation scored it (the EMA weights when on)."""
    state = model.state_dict()
    if ema is not None:
        prefix = "" if net is model else "head."     # frozen backbone: net is model.head
        state.update({prefix + k: v for k, v in ema.module.state_dict().items()})
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def _fresh_state() -> dict:
    return {"epoch": 0, "best_metric": None, "best_epoch": None, "best_state": None,
            "bad_epochs": 0, "history": []}


def _finished_training(state: dict, cfg: TrainConfig) -> bool:
    return state["epoch"] >= cfg.epochs or (cfg.patience > 0 and state["bad_epochs"] >= cfg.patience)


def _prepare(cfg: TrainConfig, device: torch.device, pretrained_override: str | None = None):
    """Seeded data and model build: identical on a fresh start and on resume."""
    from qkit.data import build_data
    from qkit.models import build_model

    seed_everything(cfg.seed)
    bundle = build_data(cfg.data_spec())
    if bundle.positive_class is None and cfg.monitor == "g_mean":
        raise QkitError("monitor g_mean needs a binary task; use auc, balanced_accuracy or loss")
    kwargs = cfg.model_kwargs(bundle.n_classes)
    if pretrained_override is not None:
        kwargs["pretrained"] = pretrained_override
    model = build_model(**kwargs).to(device)
    return bundle, model


def _record_run(run_dir: Path, cfg: TrainConfig, bundle: Any, model: nn.Module, device: torch.device) -> None:
    from qkit.data import describe
    from qkit.models import count_parameters

    trainable, total = count_parameters(model)
    env = runs.environment_info(str(device))
    record = {"config": asdict(cfg), "created": dt.datetime.now().isoformat(timespec="seconds"),
              "seed": cfg.seed, "device_used": str(device), "git": env.get("git"),
              "model": dict(model.config), "data": {"source": bundle.source, **describe(bundle)},
              "class_names": list(bundle.class_names), "positive_class": bundle.positive_class,
              "parameters": {"trainable": trainable, "total": total}}
    runs.atomic_write_json(run_dir / "config.json", runs.redact(record))
    runs.atomic_write_json(run_dir / "env.json", runs.redact(env))


def _load_for_resume(resume: str | Path, cfg: TrainConfig | None) -> tuple[Path, TrainConfig]:
    run_dir = Path(resume)
    if not (run_dir / "config.json").is_file():
        raise QkitError(f"cannot resume {run_dir}: no config.json there (not a qkit run folder?)")
    saved = TrainConfig.from_dict(runs.read_json(run_dir / "config.json")["config"])
    if cfg is not None:
        asked = asdict(replace(cfg.resolved(), name=saved.name))
        differ = [k for k, v in asdict(saved).items() if asked[k] != v]
        if differ:
            raise QkitError(f"cannot resume {run_dir.name} with different options ({', '.join(differ)}); "
                            "resume without options to use the saved config")
    return run_dir, saved


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``train``; ``run_dir`` is the folder to pass to ``resume``."""

    def __init__(self, run_dir: Path):
        super().__init__(str(run_dir))
        self.run_dir = run_dir


def train(cfg: TrainConfig | None, runs_root: str | Path = "runs", resume: str | Path | None = None,
          progress: bool = True, callback: Callback | None = None) -> Path:
    """Train a model as ``cfg`` says and return its run folder.

    ``resume``: a run folder to continue from its last checkpoint with its saved config
    (``cfg`` may be None; if given it must match). ``callback(event, info)`` is called after
    every batch (``"batch"``, info: epoch, batch, loss) and after every finished epoch
    (``"epoch"``, info: the metrics.jsonl record), e.g. to stop a run from outside.
    Ctrl-C raises ``TrainingInterrupted`` (a KeyboardInterrupt) carrying the run folder.
    """
    run_dir = None
    if resume is not None:
        run_dir, cfg = _load_for_resume(resume, cfg)
        if (run_dir / "test_metrics.json").is_file():
            return run_dir            # finished already: nothing to redo
    elif cfg is None:
        raise QkitError("train needs a TrainConfig (or resume=RUN_DIR)")
    else:
        cfg = cfg.resolved()
    device = resolve_device(cfg.device)
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")   # deterministic cuBLAS
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        checkpoint = None
        if run_dir is not None and (run_dir / "checkpoint.pt").is_file():
            # CPU first: RNG states must stay CPU tensors; load_state_dict moves weights to the model.
            checkpoint = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
        # With a checkpoint every weight comes from it: the pretrained source is not needed again.
        bundle, model = _prepare(cfg, device, "none" if checkpoint else None)
        if checkpoint is not None:
            model.load_state_dict(checkpoint["model"])   # before any frozen-feature extraction
        if run_dir is None:
            run_dir = runs.create_run_dir(runs_root, cfg.name, cfg.preset)
            cfg = replace(cfg, name=run_dir.name)
            _record_run(run_dir, cfg, bundle, model, device)
        _fit(cfg, run_dir, bundle, model, device, checkpoint, progress, callback)
    except KeyboardInterrupt:
        if run_dir is None:
            raise
        raise TrainingInterrupted(run_dir) from None
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
    return run_dir


def _fit(cfg: TrainConfig, run_dir: Path, bundle: Any, model: nn.Module, device: torch.device,
         checkpoint: dict | None, progress: bool, callback: Callback | None) -> None:
    """Epoch loop with checkpoints, then the final evaluation."""
    weights = _loss_weights(cfg, bundle)
    criterion = nn.CrossEntropyLoss(weight=weights.to(device) if weights is not None else None)
    optimizer = _optimizer(cfg, model)
    scheduler = _scheduler(cfg, optimizer)
    state = _fresh_state()
    if checkpoint is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(checkpoint["scheduler"])
        state = {k: checkpoint[k] for k in state}
        set_rng_state(checkpoint["rng"])
    # metrics.jsonl may hold a line for an epoch whose checkpoint never got written: rewrite it.
    runs.atomic_write_text(run_dir / "metrics.jsonl", "")
    for record in state["history"]:
        runs.append_jsonl(run_dir / "metrics.jsonl", record)

    net, splits = model, {"train": bundle.train, "val": bundle.val, "test": bundle.test}
    workers = cfg.num_workers
    if cfg.freeze_backbone:
        # The backbone never changes: one pass per split, then epochs only touch the head.
        splits = {k: extract_features(model.backbone, make_loader(ds, cfg.batch_size, num_workers=workers), device)
                  for k, ds in splits.items()}
        net, workers = model.head, 0
    # The EMA copy averages the trained module (parameters and BatchNorm statistics); when on,
    # it is what validation scores, what early stopping keeps and what model.pt holds.
    ema = make_ema(net, cfg.ema_decay)
    if ema is not None and checkpoint is not None:
        ema.load_state_dict(checkpoint["ema"])
    scored = ema.module if ema is not None else net
    # BatchNorm statistics come from the training images as validation sees them (cached
    # features with a frozen backbone are never augmented).
    plain_train = splits["train"] if cfg.freeze_backbone else splits["train"].without_augmentation()
    shuffle_gen = torch.Generator()
    train_loader = make_loader(splits["train"], cfg.batch_size, True, workers, shuffle_gen)
    val_loader = make_loader(splits["val"], cfg.batch_size, num_workers=workers)

    with _Bars(progress, cfg.epochs, state["epoch"]) as bars:
        if checkpoint is not None:
            bars.log(f"resuming {run_dir} after epoch {state['epoch']}")
        while not _finished_training(state, cfg):
            epoch, start = state["epoch"] + 1, time.perf_counter()
            seed = epoch_seed(cfg.seed, epoch)
            seed_everything(seed)            # dropout + augmentation of this epoch
            shuffle_gen.manual_seed(seed)    # sample order of this epoch
            bars.start_epoch(epoch, len(train_loader))
            n_batch = iter(range(1, len(train_loader) + 1))

            def on_batch(loss: float) -> None:
                bars.batch(loss)
                if callback is not None:
                    callback("batch", {"epoch": epoch, "batch": next(n_batch), "loss": loss})

            lr = optimizer.param_groups[0]["lr"]
            train_loss = train_one_epoch(net, train_loader, criterion, optimizer, device, on_batch, ema)
            if cfg.precise_bn:
                recompute_batchnorm(scored, plain_train, cfg.batch_size, device, workers)
            y_val, p_val, val_loss = evaluate(scored, val_loader, device, criterion)
            if scheduler is not None:
                scheduler.step()
            record = _epoch_record(epoch, train_loss, val_loss, y_val, p_val, bundle.positive_class, lr,
                                   time.perf_counter() - start)
            value = _monitor_value(cfg.monitor, record["_metrics"], val_loss)
            del record["_metrics"]
            improved = _improved(value, state["best_metric"], cfg.monitor, cfg.min_delta)
            if improved:
                state.update(best_metric=value, best_epoch=epoch, bad_epochs=0,
                             best_state=_scored_state(model, net, ema))
            else:
                state["bad_epochs"] += 1
            state["epoch"] = epoch
            state["history"].append(record)
            runs.atomic_torch_save({**state, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                    "scheduler": scheduler.state_dict() if scheduler else None,
                                    "ema": ema.state_dict() if ema else None,
                                    "rng": rng_state()}, run_dir / "checkpoint.pt")
            runs.append_jsonl(run_dir / "metrics.jsonl", record)
            bars.end_epoch(record, cfg.monitor, improved)
            if callback is not None:
                callback("epoch", dict(record))
        if cfg.patience and state["bad_epochs"] >= cfg.patience and state["epoch"] < cfg.epochs:
            bars.log(f"early stopping after epoch {state['epoch']}: no better val {cfg.monitor} "
                     f"for {cfg.patience} epochs (best at epoch {state['best_epoch']})")
    _finish(cfg, run_dir, bundle, model, net, splits, device, criterion, state)


def _epoch_record(epoch: int, train_loss: float, val_loss: float, y_val: np.ndarray, p_val: np.ndarray,
                  positive_class: int | None, lr: float, seconds: float) -> dict:
    from qkit.metrics import classification_metrics

    metrics = classification_metrics(y_val, p_val, positive_class)
    record = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss}
    record.update({f"val_{k}": metrics[k] for k in CURVE_METRICS if k in metrics})
    record.update(lr=lr, seconds=round(seconds, 3), _metrics=metrics)
    return record


def _finish(cfg: TrainConfig, run_dir: Path, bundle: Any, model: nn.Module, net: nn.Module, splits: dict,
            device: torch.device, criterion: nn.Module, state: dict) -> None:
    """Best weights -> model.pt, figures, test_metrics.json (written last: it marks a finished run)."""
    from qkit import plots
    from qkit.metrics import choose_threshold, classification_metrics

    if state["best_state"] is not None:   # None only if the monitored metric was never defined
        model.load_state_dict(state["best_state"])
    runs.atomic_torch_save({k: v.detach().cpu() for k, v in model.state_dict().items()}, run_dir / "model.pt")
    y_val, p_val, _ = evaluate(net, make_loader(splits["val"], cfg.batch_size), device, criterion)
    y_test, p_test, test_loss = evaluate(net, make_loader(splits["test"], cfg.batch_size), device, criterion)
    pos = bundle.positive_class
    result = classification_metrics(y_test, p_test, pos)
    result.update(loss=test_loss, best_epoch=state["best_epoch"], epochs_run=state["epoch"],
                  monitor=cfg.monitor, best_val=state["best_metric"])
    if pos is not None:
        threshold = choose_threshold(y_val, p_val, pos)
        result.update(val_threshold=threshold,
                      at_val_threshold=classification_metrics(y_test, p_test, pos, threshold=threshold))
    plots.plot_training_curves(state["history"], run_dir / "training_curves.png")
    plots.plot_roc(y_test, p_test, pos, run_dir / "roc.png", class_names=bundle.class_names)
    plots.plot_confusion_matrix(result["confusion_matrix"], bundle.class_names, run_dir / "confusion_matrix.png")
    runs.atomic_write_json(run_dir / "test_metrics.json", result)
    # The checkpoint (weights + optimizer state + best weights) is only needed to resume.
    (run_dir / "checkpoint.pt").unlink(missing_ok=True)
