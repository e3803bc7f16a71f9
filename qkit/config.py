"""``TrainConfig``: every option of ``qkit train`` as one dataclass.

Kept apart from the training loop so that code which only reads or writes a run's
``config.json`` (the CLI, ``qkit.evaluate``) does not need the loop. ``validate`` checks every
value up front with one-line ``QkitError``s; ``resolved`` makes the automatic choices that
``config.json`` records; ``from_dict`` reads it back.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from qkit.errors import QkitError

BALANCE = ("none", "undersample", "oversample", "weighted")
NORMALIZE = ("none", "imagenet")
SCHEDULERS = ("cosine", "step", "none")
MONITORS = ("auc", "g_mean", "balanced_accuracy", "loss")
DEVICES = ("auto", "cpu", "cuda")


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
    vertical_flip: bool | None = None   # None: only for orientation-free sets (qkit.data.ORIENTATION_FREE)
    normalize: str = "none"             # none | imagenet
    positive_class: int | None = None   # binary only; None: malignant for BreastMNIST, else 1
    download: bool = True
    # model (see qkit.models.build_model)
    backbone: str = "small_cnn"         # resnet18 is too slow on 2 CPU cores: see README
    pretrained: str = "none"            # none | imagenet | PATH to a qkit state dict
    freeze_backbone: bool = False
    head: str = "quantum"               # quantum | linear
    circuit: str = "dressed"
    n_qubits: int = 4
    depth: int = 1
    engine: str = "statevector"
    small_input: bool | None = None     # None: True for un-resized 28 px images
    # optimisation
    epochs: int = 150
    batch_size: int = 32
    lr: float = 1e-3
    head_lr_scale: float = 10.0         # the head learns at lr * head_lr_scale (see train._optimizer)
    weight_decay: float = 1e-4
    scheduler: str = "cosine"           # cosine | step | none
    step_size: int = 10                 # StepLR only
    gamma: float = 0.1                  # StepLR only
    class_weighted_loss: bool = False   # also implied by balance="weighted"
    precise_bn: bool = True             # BatchNorm statistics recomputed on un-augmented train images per epoch
    ema_decay: float = 0.998            # per-step EMA of the weights (scored, kept); 0 disables
    # early stopping on the validation set
    monitor: str = "loss"               # loss | auc | g_mean | balanced_accuracy
    patience: int = 40                  # epochs without improvement; 0 disables early stopping
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
        need(isinstance(self.head_lr_scale, (int, float)) and math.isfinite(self.head_lr_scale)
             and self.head_lr_scale > 0, f"head_lr_scale must be a number > 0, got {self.head_lr_scale!r}")
        need(isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0,
             f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        need(isinstance(self.ema_decay, (int, float)) and 0 <= self.ema_decay < 1,
             f"ema_decay must be a number in [0, 1), got {self.ema_decay!r}")
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
        from qkit.data import default_vertical_flip   # lazy: config stays light to import

        return replace(
            self,
            vertical_flip=default_vertical_flip(self.dataset) if self.vertical_flip is None else self.vertical_flip,
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
                        vertical_flip=self.vertical_flip,
                        normalize=self.normalize, positive_class=self.positive_class,
                        download=self.download, seed=self.seed)

    def model_kwargs(self, n_classes: int) -> dict:
        return dict(backbone=self.backbone, pretrained=self.pretrained, freeze_backbone=self.freeze_backbone,
                    head=self.head, n_classes=n_classes, circuit=self.circuit, n_qubits=self.n_qubits,
                    depth=self.depth, engine=self.engine, small_input=bool(self.small_input))
