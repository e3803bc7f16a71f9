"""Optimiser, schedule, loss weights and the early-stopping rule of a training run."""

from __future__ import annotations

import math
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
    for name, module, lr in (("backbone", model.backbone, optim.lr),
                             ("head", model.head, optim.lr * optim.head_lr_scale)):
        params = [p for p in module.parameters() if p.requires_grad]
        if params:
            groups.append({"params": params, "lr": lr, "name": name})
    return torch.optim.Adam(groups, lr=optim.lr, weight_decay=optim.weight_decay)


def learning_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """``{"lr_backbone": ..., "lr_head": ...}``: the rate of each group in use this epoch."""
    return {f"lr_{group.get('name', i)}": group["lr"] for i, group in enumerate(optimizer.param_groups)}


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
    if value is None:       # undefined metric: never "better"
        return False
    if best is None:
        return True
    return value < best - min_delta if monitor == "loss" else value > best + min_delta
