"""Training: ``TrainConfig`` in, run folder out.

The loop is deliberately plain (torchvision ``references/classification`` style)::

    for epoch in epochs:
        reseed from (seed, epoch)         # data order + augmentation independent of history
        train_one_epoch -> evaluate(val) -> scheduler.step()
        keep best-on-validation weights, early stopping, atomic checkpoint.pt
    reload best weights -> evaluate(test) -> test_metrics.json + figures

Everything that decides the next epoch is in ``checkpoint.pt`` (weights, optimizer, scheduler,
best weights, patience counter, history, RNG states), and each epoch's randomness is seeded
from ``(seed, epoch)`` rather than inherited from the previous epoch. So a run killed at any
point and continued with ``train(None, resume=run_dir)`` ends bit-for-bit like an
uninterrupted one: it simply redoes the unfinished epoch.

With ``freeze_backbone`` the backbone never changes, so its features are computed once per
split (no augmentation) and only the head trains, on cached feature tensors.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from qkit import runs
from qkit.errors import QkitError

BALANCE = ("none", "undersample", "oversample", "weighted")
NORMALIZE = ("none", "imagenet")
SCHEDULERS = ("cosine", "step", "none")
MONITORS = ("auc", "g_mean", "balanced_accuracy", "loss")
DEVICES = ("auto", "cpu", "cuda")
CURVE_METRICS = ("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "f1", "g_mean")
Callback = Callable[[str, dict], None]   # callback(event, info); event is "batch" or "epoch"


@dataclass
class TrainConfig:
    """Every option of ``qkit train``. ``None`` means "choose automatically" where noted."""

    # data (see qkit.data.DataSpec)
    dataset: str = "breastmnist"        # MedMNIST 2D flag or image-folder path
    size: int = 28                      # MedMNIST image size: 28, 64, 128, 224
    data_dir: str | None = None         # else $QKIT_DATA_DIR, else medmnist's default root
    resize: int | None = None           # resize images (e.g. 224 for ImageNet weights)
    classes: tuple[int, ...] | None = None   # keep only these labels, relabelled 0..k-1
    balance: str = "none"               # none | undersample | oversample | weighted
    augment: bool = True                # flips + rotations on train (off with a frozen backbone)
    normalize: str = "none"             # none | imagenet
    positive_class: int | None = None   # binary only; None: malignant for BreastMNIST, else 1
    download: bool = True
    # model (see qkit.models.build_model)
    backbone: str = "resnet18"
    pretrained: str = "none"            # none | imagenet | PATH to a qkit state dict
    freeze_backbone: bool = False
    head: str = "quantum"               # quantum | linear
    circuit: str = "dressed"
    n_qubits: int = 4
    depth: int = 1
    engine: str = "statevector"
    small_input: bool | None = None     # None: True for un-resized 28 px images
    # optimisation
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    scheduler: str = "cosine"           # cosine | step | none
    step_size: int = 10                 # StepLR only
    gamma: float = 0.1                  # StepLR only
    class_weighted_loss: bool = False   # also implied by balance="weighted"
    # early stopping on the validation set
    monitor: str = "auc"                # auc | g_mean | balanced_accuracy | loss
    patience: int = 5                   # epochs without improvement; 0 disables early stopping
    min_delta: float = 0.0
    # run
    seed: int = 0
    device: str = "auto"                # auto | cpu | cuda | cuda:N
    num_workers: int = 0
    name: str | None = None             # run folder name; None: <timestamp>-<preset>
    preset: str | None = None           # label in the run name; None: <dataset>-<backbone>-<head>

    def validate(self) -> TrainConfig:
        """Check every value up front; returns self. Problems are one-line QkitErrors."""
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise QkitError(message)

        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        def choice(field: str, allowed: tuple[str, ...]) -> None:
            need(getattr(self, field) in allowed,
                 f"{field} must be one of {', '.join(allowed)}, got {getattr(self, field)!r}")

        for f in ("size", "n_qubits", "depth", "epochs", "batch_size", "step_size"):
            need(is_int(getattr(self, f)) and getattr(self, f) >= 1,
                 f"{f} must be an integer >= 1, got {getattr(self, f)!r}")
        for f in ("patience", "num_workers"):
            need(is_int(getattr(self, f)) and getattr(self, f) >= 0,
                 f"{f} must be an integer >= 0, got {getattr(self, f)!r}")
        need(is_int(self.seed) and 0 <= self.seed < 2**32, f"seed must be an integer in [0, 2**32), got {self.seed!r}")
        need(self.resize is None or (is_int(self.resize) and self.resize >= 8),
             f"resize must be an integer >= 8, got {self.resize!r}")
        labels = self.classes if isinstance(self.classes, (tuple, list)) else ()
        need(self.classes is None or (len(labels) >= 2 and len(set(labels)) == len(labels)
                                      and all(is_int(c) and c >= 0 for c in labels)),
             f"classes must be 2 or more distinct labels >= 0, got {self.classes!r}")
        need(self.positive_class is None or (is_int(self.positive_class) and self.positive_class >= 0),
             f"positive_class must be an integer >= 0, got {self.positive_class!r}")
        need(isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0,
             f"lr must be a number > 0, got {self.lr!r}")
        need(isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0,
             f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        need(isinstance(self.gamma, (int, float)) and 0 < self.gamma <= 1,
             f"gamma must be a number in (0, 1], got {self.gamma!r}")
        need(isinstance(self.min_delta, (int, float)) and self.min_delta >= 0,
             f"min_delta must be a number >= 0, got {self.min_delta!r}")
        choice("balance", BALANCE)
        choice("normalize", NORMALIZE)
        choice("scheduler", SCHEDULERS)
        choice("monitor", MONITORS)
        need(self.device in DEVICES or str(self.device).startswith("cuda:"),
             f"device must be one of {', '.join(DEVICES)} (or cuda:N), got {self.device!r}")
        return self

    def resolved(self) -> TrainConfig:
        """A validated copy with the automatic choices made (what config.json records)."""
        self.validate()
        small_input = self.small_input
        if small_input is None:
            small_input = self.resize is None and self.size == 28
        dataset_label = Path(self.dataset).name if ("/" in self.dataset or os.sep in self.dataset) else self.dataset
        return replace(
            self,
            classes=tuple(self.classes) if self.classes is not None else None,
            small_input=bool(small_input),
            augment=self.augment and not self.freeze_backbone,   # cached features see no augmentation
            preset=self.preset or f"{dataset_label}-{self.backbone}-{self.head}",
        )

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Inverse of ``asdict`` (JSON turns tuples into lists); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise QkitError(f"unknown TrainConfig option(s): {', '.join(unknown)}")
        d = dict(d)
        if d.get("classes") is not None:
            d["classes"] = tuple(d["classes"])
        return cls(**d)

    def data_spec(self):
        from qkit.data import DataSpec

        return DataSpec(dataset=self.dataset, size=self.size, data_dir=self.data_dir, resize=self.resize,
                        classes=self.classes, balance=self.balance, augment=self.augment,
                        normalize=self.normalize, positive_class=self.positive_class,
                        download=self.download, seed=self.seed)

    def model_kwargs(self, n_classes: int) -> dict:
        return dict(backbone=self.backbone, pretrained=self.pretrained, freeze_backbone=self.freeze_backbone,
                    head=self.head, n_classes=n_classes, circuit=self.circuit, n_qubits=self.n_qubits,
                    depth=self.depth, engine=self.engine, small_input=bool(self.small_input))


# --------------------------------------------------------------------------- reproducibility

def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed seed for one epoch, a pure function of (seed, epoch)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; derive NumPy/Python from it.
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def _rng_state() -> dict:
    name, key, pos, has_gauss, gauss = np.random.get_state()
    return {"python": random.getstate(), "torch": torch.get_rng_state(),
            "numpy": [name, torch.from_numpy(key.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    name, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise QkitError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    return torch.device(device)


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool = False, num_workers: int = 0,
                generator: torch.Generator | None = None) -> DataLoader:
    """A DataLoader whose order and worker seeds depend only on ``generator``."""
    # A final batch of one sample breaks BatchNorm in train mode (1x1 feature maps): drop it.
    drop_last = shuffle and len(dataset) % batch_size == 1
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                      generator=generator, worker_init_fn=_seed_worker if num_workers else None,
                      drop_last=drop_last)


# --------------------------------------------------------------------------- one epoch

def train_one_epoch(model: nn.Module, loader: DataLoader, criterion: nn.Module,
                    optimizer: torch.optim.Optimizer, device: torch.device | str,
                    progress: Callable[[float], None] | None = None) -> float:
    """One pass over ``loader``; returns the mean training loss. ``progress(loss)`` per batch."""
    model.train()
    total, count = 0.0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device).view(-1).long()
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        count += len(y)
        if progress is not None:
            progress(loss.item())
    return total / max(count, 1)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device | str,
             criterion: nn.Module | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """(y_true [N], softmax probabilities [N, C], mean loss or NaN without a criterion)."""
    model.eval()
    labels, probs, total = [], [], 0.0
    for x, y in loader:
        x, y = x.to(device), y.to(device).view(-1).long()
        logits = model(x)
        if criterion is not None:
            total += criterion(logits, y).item() * len(y)
        labels.append(y.cpu())
        probs.append(torch.softmax(logits.float(), dim=1).cpu())
    y_true = torch.cat(labels).numpy() if labels else np.zeros(0, dtype=np.int64)
    p = torch.cat(probs).double().numpy() if probs else np.zeros((0, 0))
    loss = total / len(y_true) if (criterion is not None and len(y_true)) else math.nan
    return y_true, p, loss


@torch.no_grad()
def extract_features(backbone: nn.Module, loader: DataLoader, device: torch.device | str) -> TensorDataset:
    """Backbone features of a whole split as a TensorDataset (features on CPU, int64 labels)."""
    backbone.eval()
    feats, labels = [], []
    for x, y in loader:
        feats.append(backbone(x.to(device)).float().cpu())
        labels.append(y.view(-1).long())
    return TensorDataset(torch.cat(feats), torch.cat(labels))


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
            self.log(f"epoch {record['epoch']:>3}/{self.epochs}  train_loss {record['train_loss']:.4f}  "
                     f"val_loss {record['val_loss']:.4f}  val_{monitor} {shown}{'  *' if improved else ''}  "
                     f"({record['seconds']:.1f}s)")


# --------------------------------------------------------------------------- the run

def _loss_weights(cfg: TrainConfig, bundle: Any) -> torch.Tensor | None:
    if bundle.class_weights is not None:
        return bundle.class_weights.float()
    if not cfg.class_weighted_loss:
        return None
    counts = torch.bincount(bundle.train.labels, minlength=bundle.n_classes).float()
    if (counts == 0).any():
        raise QkitError("class_weighted_loss: a class has no training images")
    return len(bundle.train.labels) / (bundle.n_classes * counts)   # same formula as balance="weighted"


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
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad],
                                 lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = _scheduler(cfg, optimizer)
    state = _fresh_state()
    if checkpoint is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(checkpoint["scheduler"])
        state = {k: checkpoint[k] for k in state}
        _set_rng_state(checkpoint["rng"])
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
            train_loss = train_one_epoch(net, train_loader, criterion, optimizer, device, on_batch)
            y_val, p_val, val_loss = evaluate(net, val_loader, device, criterion)
            if scheduler is not None:
                scheduler.step()
            record = _epoch_record(epoch, train_loss, val_loss, y_val, p_val, bundle.positive_class, lr,
                                   time.perf_counter() - start)
            value = _monitor_value(cfg.monitor, record["_metrics"], val_loss)
            del record["_metrics"]
            improved = _improved(value, state["best_metric"], cfg.monitor, cfg.min_delta)
            if improved:
                state.update(best_metric=value, best_epoch=epoch, bad_epochs=0,
                             best_state={k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
                runs.atomic_torch_save(state["best_state"], run_dir / "model.pt")
            else:
                state["bad_epochs"] += 1
            state["epoch"] = epoch
            state["history"].append(record)
            runs.atomic_torch_save({**state, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                    "scheduler": scheduler.state_dict() if scheduler else None,
                                    "rng": _rng_state()}, run_dir / "checkpoint.pt")
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


# --------------------------------------------------------------------------- evaluation of a saved run

def evaluate_run(run_dir: str | Path, split: str = "test", engine: str | None = None,
                 batch_size: int = 256) -> dict:
    """Rebuild a finished run's model (optionally on another quantum engine) and score a split.

    Writes ``<run>/eval_<split>_<engine>.json`` and returns the same dict.
    """
    from qkit.metrics import classification_metrics
    from qkit.models import build_model_from_config

    run_dir = Path(run_dir)
    if split not in ("train", "val", "test"):
        raise QkitError(f"split must be train, val or test, got {split!r}")
    if not (run_dir / "model.pt").is_file():
        raise QkitError(f"{run_dir} has no model.pt (unfinished or not a qkit run folder)")
    saved = runs.read_json(run_dir / "config.json")
    cfg = replace(TrainConfig.from_dict(saved["config"]), augment=False)
    engine = engine or cfg.engine
    device = resolve_device(cfg.device)
    from qkit.data import build_data

    bundle = build_data(cfg.data_spec())
    model = build_model_from_config(saved["model"], engine=engine)
    try:
        model.load_state_dict(torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True))
    except RuntimeError as exc:
        raise QkitError(f"model.pt does not fit the model in config.json: {str(exc).splitlines()[0]}") from None
    model.to(device)
    start = time.perf_counter()
    y, p, loss = evaluate(model, make_loader(getattr(bundle, split), batch_size), device, nn.CrossEntropyLoss())
    result = classification_metrics(y, p, bundle.positive_class)
    result.update(split=split, engine=engine, loss=loss, seconds=round(time.perf_counter() - start, 3))
    test_metrics = run_dir / "test_metrics.json"
    if bundle.positive_class is not None and test_metrics.is_file():
        threshold = runs.read_json(test_metrics).get("val_threshold")
        if threshold is not None:
            result.update(val_threshold=threshold, at_val_threshold=classification_metrics(
                y, p, bundle.positive_class, threshold=threshold))
    runs.atomic_write_json(run_dir / f"eval_{split}_{engine}.json", result)
    return result
