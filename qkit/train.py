"""Training: ``TrainConfig`` (+ ``EnvConfig``) in, run folder out.

The loop is deliberately plain (torchvision ``references/classification`` style)::

    for epoch in epochs:
        reseed from (seed, epoch)         # data order + augmentation independent of history
        train_one_epoch (also updates the weight EMA) -> recompute BatchNorm statistics
        -> evaluate(val) (the EMA weights when on) -> scheduler.step()
        keep best-on-validation weights, early stopping, atomic checkpoint.pt
    reload best weights -> score val and test -> predictions, test_metrics.json, figures

Everything that decides the next epoch is in ``checkpoint.pt`` (weights, optimizer, scheduler,
EMA, best weights, patience counter, history, RNG states), and each epoch's randomness is
seeded from ``(seed, epoch)``. So a run killed at any point and continued with
``train(None, resume=run_dir)`` ends bit-for-bit like an uninterrupted one (``qkit.repro``).
A NaN or infinite loss stops the run with a one-line error; ``checkpoint.pt`` then still holds
the last finished epoch.

Progress goes to ``callback(event, info)`` (the CLI draws bars from it): ``start``
(run_dir, epochs, done), ``epoch_start`` (epoch, batches), ``batch`` (epoch, batch, loss),
``epoch`` (the metrics.jsonl record plus ``improved``), ``message`` (text).

The run's record (config.json, env.json, engine.json; checked again on resume) is written and
read in ``qkit.train_record``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from qkit import runs
from qkit.config import EnvConfig, TrainConfig, validate
from qkit.engines import engine_class
from qkit.epoch import NonFiniteLoss, evaluate, make_ema, recompute_batchnorm, train_one_epoch
from qkit.errors import QkitError
from qkit.features import cached_features
from qkit.optim import (
    improved,
    learning_rates,
    loss_weights,
    make_optimizer,
    make_scheduler,
    monitor_value,
    training_budget,
    with_budget,
)
from qkit.repro import epoch_seed, make_loader, resolve_device, rng_state, seed_everything, set_rng_state
from qkit.resolve import engine_spec, resolve_config
from qkit.train_record import load_for_resume, record_run

CURVE_METRICS = ("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "f1", "g_mean")
Callback = Callable[[str, dict], None]


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``train``; ``run_dir`` is the folder to pass to ``resume``."""

    def __init__(self, run_dir: Path):
        super().__init__(str(run_dir))
        self.run_dir = run_dir


def train(
    cfg: TrainConfig | None,
    env: EnvConfig | None = None,
    runs_root: str | Path = "runs",
    resume: str | Path | None = None,
    callback: Callback | None = None,
) -> Path:
    """Train a model as ``cfg`` says and return its run folder.

    ``env``: data folder, device, workers, threads (default ``EnvConfig()``; on resume, the
    environment the run recorded). ``resume``: a run folder to continue from its last
    checkpoint with its saved config (``cfg`` may be None; if given it must match). Ctrl-C
    raises ``TrainingInterrupted`` (a KeyboardInterrupt) carrying the run folder.
    """
    record = None
    if resume is not None:
        record = load_for_resume(Path(resume), cfg)
        if (Path(resume) / "test_metrics.json").is_file():
            return Path(resume)  # finished already: nothing to redo
        cfg, env = record.config, env or record.env
    elif cfg is None:
        raise QkitError("train needs a TrainConfig (or resume=RUN_DIR)")
    else:
        cfg, env = resolve_config(cfg), env or EnvConfig()
    validate(env)
    engine = engine_class(engine_spec(cfg.model))
    if cfg.model.head == "quantum" and not engine.capabilities.differentiable:
        raise QkitError(
            f"engine {cfg.model.engine!r} cannot train (no gradients); train with statevector "
            f"and score with it later: qkit evaluate RUN --engine {cfg.model.engine}"
        )
    run_dir = Path(resume) if resume is not None else None
    device = resolve_device(env.device)
    if env.threads:
        torch.set_num_threads(env.threads)
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        checkpoint = None
        if run_dir is not None and (run_dir / "checkpoint.pt").is_file():
            # CPU first: RNG states must stay CPU tensors; load_state_dict moves weights to the model.
            checkpoint = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
        # With a checkpoint every weight comes from it: the pretrained source is not needed again.
        bundle, model = _prepare(cfg, env, device, "none" if checkpoint else None)
        if record is not None:
            from qkit.data import check_source

            check_source(record.source, bundle.source)
        if checkpoint is not None:
            model.load_state_dict(checkpoint["model"])  # before any frozen-feature extraction
        if run_dir is None:
            run_dir = runs.create_run_dir(runs_root, cfg.run.name, cfg.run.label)
            cfg = replace(cfg, run=replace(cfg.run, name=run_dir.name))
            record_run(run_dir, cfg, env, bundle, model, device)
        _fit(cfg, env, run_dir, bundle, model, device, checkpoint, callback or _silent)
    except KeyboardInterrupt:
        if run_dir is None:
            raise
        raise TrainingInterrupted(run_dir) from None
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
    return run_dir


def _silent(event: str, info: dict) -> None:
    pass


def _prepare(cfg: TrainConfig, env: EnvConfig, device: torch.device, pretrained_override: str | None = None):
    """Seeded data and model build: identical on a fresh start and on resume."""
    from qkit.data import DataSpec, build_data
    from qkit.network import build_network

    seed_everything(cfg.run.seed)
    bundle = build_data(DataSpec.from_config(cfg, env))
    if bundle.positive_class is None and cfg.optim.monitor == "g_mean":
        raise QkitError("monitor g_mean needs a binary task; use auc, balanced_accuracy or loss")
    kwargs = cfg.model_kwargs(bundle.n_classes)
    if pretrained_override is not None:
        kwargs["pretrained"] = pretrained_override
    model = build_network(**kwargs).to(device)
    return bundle, model


def _fresh_state() -> dict:
    return {"epoch": 0, "best_metric": None, "best_epoch": None, "best_state": None, "bad_epochs": 0, "history": []}


def _finished_training(state: dict, cfg: TrainConfig) -> bool:
    o = cfg.optim
    return state["epoch"] >= o.epochs or (o.patience > 0 and state["bad_epochs"] >= o.patience)


def scored_state(model: nn.Module, net: nn.Module, ema: AveragedModel | None) -> dict:
    """A CPU copy of the whole model's state as validation scored it (the EMA weights when on)."""
    state = model.state_dict()
    if ema is not None:
        prefix = "" if net is model else "head."  # frozen backbone: net is model.head
        state.update({prefix + k: v for k, v in ema.module.state_dict().items()})
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def _fit(
    cfg: TrainConfig,
    env: EnvConfig,
    run_dir: Path,
    bundle: Any,
    model: nn.Module,
    device: torch.device,
    checkpoint: dict | None,
    callback: Callback,
) -> None:
    """Epoch loop with checkpoints, then the final evaluation."""
    # Epochs, patience and StepLR step as the training-set size makes them (see training_budget).
    cfg = replace(cfg, optim=with_budget(cfg.optim, training_budget(cfg.optim, len(bundle.train))))
    o = cfg.optim
    weights = loss_weights(o, bundle)
    criterion = nn.CrossEntropyLoss(weight=weights.to(device) if weights is not None else None)
    optimizer = make_optimizer(o, model)
    scheduler = make_scheduler(o, optimizer)
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
    workers = env.num_workers
    if cfg.model.freeze_backbone:
        # The backbone never changes: one pass per split, then epochs only touch the head.
        splits = {
            k: cached_features(
                model.backbone, make_loader(ds, o.batch_size, num_workers=workers), device, env.feature_cache
            )
            for k, ds in splits.items()
        }
        net, workers = model.head, 0
    # The EMA copy averages the trained module (parameters and BatchNorm statistics); when on,
    # it is what validation scores, what early stopping keeps and what model.pt holds.
    ema = make_ema(net, o.ema_decay)
    if ema is not None and checkpoint is not None:
        ema.load_state_dict(checkpoint["ema"])
    scored = ema.module if ema is not None else net
    # BatchNorm statistics come from the training images as validation sees them (cached
    # features with a frozen backbone are never augmented).
    plain_train = splits["train"] if cfg.model.freeze_backbone else splits["train"].without_augmentation()
    shuffle_gen = torch.Generator()
    train_loader = make_loader(splits["train"], o.batch_size, True, workers, shuffle_gen)
    val_loader = make_loader(splits["val"], o.batch_size, num_workers=workers)

    callback("start", {"run_dir": run_dir, "epochs": o.epochs, "done": state["epoch"]})
    if checkpoint is not None:
        callback("message", {"text": f"resuming {run_dir} after epoch {state['epoch']}"})
    while not _finished_training(state, cfg):
        epoch, start = state["epoch"] + 1, time.perf_counter()
        seed = epoch_seed(cfg.run.seed, epoch)
        seed_everything(seed)  # dropout + augmentation of this epoch
        shuffle_gen.manual_seed(seed)  # sample order of this epoch
        callback("epoch_start", {"epoch": epoch, "batches": len(train_loader)})
        n_batch = iter(range(1, len(train_loader) + 1))
        lrs = learning_rates(optimizer)
        try:
            train_loss = train_one_epoch(
                net,
                train_loader,
                criterion,
                optimizer,
                device,
                lambda loss: callback("batch", {"epoch": epoch, "batch": next(n_batch), "loss": loss}),
                ema,
            )
        except NonFiniteLoss as bad:
            _stop_non_finite(run_dir, f"training loss became {bad.value} at epoch {epoch}, batch {bad.batch}", state)
        if o.precise_bn:
            recompute_batchnorm(scored, plain_train, o.batch_size, device, workers)
        y_val, p_val, val_loss = evaluate(scored, val_loader, device, criterion)
        if not math.isfinite(val_loss):
            _stop_non_finite(run_dir, f"validation loss became {val_loss} at epoch {epoch}", state)
        if scheduler is not None:
            scheduler.step()
        record, metrics = _epoch_record(
            epoch, train_loss, val_loss, y_val, p_val, bundle.positive_class, lrs, time.perf_counter() - start
        )
        better = improved(monitor_value(o.monitor, metrics, val_loss), state["best_metric"], o.monitor, o.min_delta)
        if better:
            state.update(
                best_metric=monitor_value(o.monitor, metrics, val_loss),
                best_epoch=epoch,
                bad_epochs=0,
                best_state=scored_state(model, net, ema),
            )
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch
        state["history"].append(record)
        runs.atomic_torch_save(
            {
                **state,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler else None,
                "ema": ema.state_dict() if ema else None,
                "rng": rng_state(),
            },
            run_dir / "checkpoint.pt",
        )
        runs.append_jsonl(run_dir / "metrics.jsonl", record)
        callback("epoch", {**record, "improved": better, "monitor": o.monitor, "epochs": o.epochs})
    if o.patience and state["bad_epochs"] >= o.patience and state["epoch"] < o.epochs:
        callback(
            "message",
            {
                "text": f"early stopping after epoch {state['epoch']}: no better val {o.monitor} "
                f"for {o.patience} epochs (best at epoch {state['best_epoch']})"
            },
        )
    _finish(cfg, run_dir, bundle, model, net, splits, device, criterion, state, scored_state(model, net, ema))


def _stop_non_finite(run_dir: Path, what: str, state: dict) -> None:
    kept = f"checkpoint.pt keeps epoch {state['epoch']}" if state["epoch"] else "no epoch finished"
    raise QkitError(f"{what}; stopped ({kept}, in {run_dir}): try a lower --lr or check the data")


def _epoch_record(
    epoch: int, train_loss: float, val_loss: float, y_val, p_val, positive_class: int | None, lrs: dict, seconds: float
) -> tuple[dict, dict]:
    from qkit.metrics import classification_metrics

    metrics = classification_metrics(y_val, p_val, positive_class)
    record = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss}
    record.update({f"val_{k}": metrics[k] for k in CURVE_METRICS if k in metrics})
    record.update(lrs, seconds=round(seconds, 3))
    return record, metrics


def final_state(state: dict, last_scored: dict) -> tuple[dict, str]:
    """The weights model.pt gets and what they are: the best epoch's, or, when the monitored
    metric was never defined (nothing could improve), the last epoch's as validation scored them."""
    if state["best_state"] is not None:
        return state["best_state"], "best"
    return last_scored, "last"


def _finish(
    cfg: TrainConfig,
    run_dir: Path,
    bundle: Any,
    model: nn.Module,
    net: nn.Module,
    splits: dict,
    device: torch.device,
    criterion: nn.Module,
    state: dict,
    last_scored: dict,
) -> None:
    """Final weights -> model.pt, predictions, figures, test_metrics.json (written last: it marks a finished run)."""
    weights, which = final_state(state, last_scored)
    model.load_state_dict(weights)
    runs.atomic_torch_save({k: v.detach().cpu() for k, v in model.state_dict().items()}, run_dir / "model.pt")
    from qkit import plots
    from qkit.evaluate import score_split
    from qkit.metrics import choose_threshold

    batch, pos, engine = cfg.optim.batch_size, bundle.positive_class, cfg.model.engine
    y_val, p_val, val_loss = evaluate(net, make_loader(splits["val"], batch), device, criterion)
    y_test, p_test, test_loss = evaluate(net, make_loader(splits["test"], batch), device, criterion)
    threshold = choose_threshold(y_val, p_val, pos) if pos is not None else None
    score_split(run_dir, "val", engine, bundle.val.ids, y_val, p_val, val_loss, pos, threshold)
    result = score_split(run_dir, "test", engine, bundle.test.ids, y_test, p_test, test_loss, pos, threshold)
    result.update(
        best_epoch=state["best_epoch"],
        epochs_run=state["epoch"],
        monitor=cfg.optim.monitor,
        best_val=state["best_metric"],
        weights=which,
    )
    plots.plot_training_curves(state["history"], run_dir / "training_curves.png")
    plots.plot_roc(y_test, p_test, pos, run_dir / "roc.png", class_names=bundle.class_names)
    plots.plot_confusion_matrix(result["confusion_matrix"], bundle.class_names, run_dir / "confusion_matrix.png")
    runs.atomic_write_json(run_dir / "test_metrics.json", result)
    # The checkpoint (weights + optimizer state + best weights) is only needed to resume.
    (run_dir / "checkpoint.pt").unlink(missing_ok=True)
