"""Optimiser, schedule, loss weights and the early-stopping rule of a training run."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from qkit.config import OptimConfig


def loss_weights(optim: OptimConfig, bundle: Any) -> torch.Tensor | None:
    """Class weights of the loss: from ``balance="weighted"``, or inverse frequency on request."""
    if bundle.class_weights is not None:
        return bundle.class_weights.float()
    if not optim.class_weighted_loss:
        return None
    from qkit.balancing import class_weights

    return class_weights(bundle.train.labels, bundle.class_names)


def make_optimizer(optim: OptimConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Adam with two named parameter groups, ``backbone`` at lr and ``head`` at ``lr * head_lr_scale``.

    BreastMNIST gives about nine steps per epoch; a quantum head's outputs are bounded in
    [-1, 1], so its post-net must grow its weights to several units before predictions are
    confident, which takes thousands of steps at the backbone's rate. A group with nothing to
    train (a frozen backbone) is left out, so the logged learning rates are the ones in use.
    """
    groups = []
    for name, module, lr in (
        ("backbone", model.backbone, optim.lr),
        ("head", model.head, optim.lr * optim.head_lr_scale),
    ):
        params = [p for p in module.parameters() if p.requires_grad]
        if params:
            groups.append({"params": params, "lr": lr, "name": name})
    return torch.optim.Adam(groups, lr=optim.lr, weight_decay=optim.weight_decay)


def learning_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """``{"lr_backbone": ..., "lr_head": ...}``: the rate of each group in use this epoch."""
    return {f"lr_{group.get('name', i)}": group["lr"] for i, group in enumerate(optimizer.param_groups)}


# The default schedule (150 epochs, patience 40) was tuned on BreastMNIST's 546 training
# images. Scaled schedules keep it there and shrink the epochs on larger sets so that the number
# of optimizer steps grows as n^(1 - 0.75) = n^0.25: validation AUC on a larger set plateaus
# within fewer epochs, and 2 cores must finish a 5,000-image set in minutes, not an hour.
REFERENCE_IMAGES = 546
SCALE_EXPONENT = 0.75
MIN_PATIENCE = 3


def training_budget(optim: OptimConfig, n_train: int) -> dict:
    """The epochs, patience and StepLR step a run uses on ``n_train`` training images, with its
    step budget; ``optim.schedule == "fixed"`` or a set of at most 546 images keeps them as given."""
    small = optim.schedule == "fixed" or n_train <= REFERENCE_IMAGES
    factor = 1.0 if small else (REFERENCE_IMAGES / n_train) ** SCALE_EXPONENT
    epochs = max(1, round(optim.epochs * factor))
    patience = (
        optim.patience
        if optim.patience == 0
        else min(optim.patience, max(MIN_PATIENCE, round(optim.patience * factor)))
    )
    steps = math.ceil(n_train / optim.batch_size)
    return {
        "schedule": optim.schedule,
        "n_train": n_train,
        "factor": round(factor, 6),
        "epochs": epochs,
        "patience": patience,
        "step_size": max(1, round(optim.step_size * factor)),
        "steps_per_epoch": steps,
        "max_steps": epochs * steps,
    }


def with_budget(optim: OptimConfig, budget: dict) -> OptimConfig:
    """``optim`` with the budget's epochs, patience and step size in place of the stated ones."""
    return replace(optim, epochs=budget["epochs"], patience=budget["patience"], step_size=budget["step_size"])


def make_scheduler(optim: OptimConfig, optimizer: torch.optim.Optimizer):
    if optim.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=optim.epochs)
    if optim.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=optim.step_size, gamma=optim.gamma)
    return None


def monitor_value(monitor: str, metrics: dict, loss: float) -> float | None:
    """The monitored validation value; None when it is undefined (e.g. AUC with one class)."""
    value = loss if monitor == "loss" else metrics.get(monitor)
    return None if value is None or not math.isfinite(value) else float(value)


def improved(value: float | None, best: float | None, monitor: str, min_delta: float) -> bool:
    if value is None:  # undefined metric: never "better"
        return False
    if best is None:
        return True
    return value < best - min_delta if monitor == "loss" else value > best + min_delta
