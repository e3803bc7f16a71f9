"""Figures for a run folder: training curves, ROC curve, confusion matrix (PNG).

Figures are built with matplotlib's object API (``matplotlib.figure.Figure``), never pyplot:
no backend is chosen or changed (a notebook importing qkit keeps its own), nothing needs a
display, and no global figure registry keeps figures alive through a long sweep. PNGs are
written atomically like every other file in a run folder.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure
from sklearn import metrics as skm

from qkit.errors import QkitError
from qkit.metrics import validate_inputs
from qkit.runs import atomic_write

_DPI = 120


def _save(fig: Any, path: str | Path) -> Path:
    """Save ``fig`` as PNG atomically."""
    fig.tight_layout()
    # bbox_inches="tight" as well: long class names must never be cut off at the edge.
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=_DPI, bbox_inches="tight", pad_inches=0.1))


def _number(value: Any) -> float:
    """A plottable float; missing or non-numeric values become NaN (a gap in the line)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        return math.nan
    return float(value)


def _series(history: list[dict], keys: list[str]) -> dict[str, list[float]]:
    return {k: [_number(rec.get(k)) for rec in history] for k in keys}


def _label(key: str) -> str:
    return key.replace("val_", "val ").replace("train_", "train ").replace("_", " ")


def plot_training_curves(history: list[dict], path: str | Path) -> Path:
    """Two panels from per-epoch records: losses, and the validation metrics present.

    Records look like ``{"epoch": 1, "train_loss": .., "val_loss": .., "val_auc": ..}``;
    loss keys are those ending in ``loss``, metric keys those starting with ``val_``.
    """
    if not isinstance(history, (list, tuple)) or not history or not all(isinstance(r, dict) for r in history):
        raise QkitError("training history must be a non-empty list of per-epoch dicts")
    keys: list[str] = []
    for rec in history:  # keep first-seen order so colours are stable across runs
        keys += [k for k in rec if k not in keys]
    numeric = [k for k in keys if any(not math.isnan(_number(r.get(k))) for r in history)]
    loss_keys = [k for k in numeric if k.endswith("loss")]
    metric_keys = [k for k in numeric if k.startswith("val_") and k not in loss_keys]
    epochs = [_number(r.get("epoch", i + 1)) for i, r in enumerate(history)]

    fig = Figure(figsize=(10, 4))
    ax_loss, ax_metric = fig.subplots(1, 2)
    for panel, ks, title in ((ax_loss, loss_keys, "Loss"), (ax_metric, metric_keys, "Validation metrics")):
        for key, values in _series(history, ks).items():
            panel.plot(epochs, values, marker="o", markersize=3, label=_label(key))
        panel.set_title(title)
        panel.set_xlabel("epoch")
        panel.grid(alpha=0.3)
        if ks:
            panel.legend(fontsize=8)
        else:
            panel.text(0.5, 0.5, "no data recorded", ha="center", va="center", transform=panel.transAxes, color="gray")
    ax_loss.set_ylabel("loss")
    ax_metric.set_ylabel("score")
    if metric_keys:
        ax_metric.set_ylim(-0.02, 1.02)  # AUC, accuracy etc. live in [0, 1]
    if len(epochs) <= 20:
        ax_loss.xaxis.get_major_locator().set_params(integer=True)
        ax_metric.xaxis.get_major_locator().set_params(integer=True)
    return _save(fig, path)


def plot_roc(
    y_true: Any, probs: Any, positive_class: int | None, path: str | Path, class_names: Sequence[str] | None = None
) -> Path:
    """ROC curve of the positive class with its AUC in the legend, plus the chance diagonal.

    With ``positive_class=None`` (multi-class) draws one one-vs-rest curve per class. A class
    that is absent from ``y_true`` has no ROC curve; the figure says so instead of failing.
    """
    y, p = validate_inputs(y_true, probs, positive_class)
    n_classes = p.shape[1]
    if class_names is not None and len(class_names) != n_classes:
        raise QkitError(f"got {len(class_names)} class names for {n_classes} classes")
    names = list(class_names) if class_names is not None else [f"class {i}" for i in range(n_classes)]
    classes = [positive_class] if positive_class is not None else list(range(n_classes))

    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", linewidth=1, label="chance")
    skipped = []
    for c in classes:
        is_c = y == c
        if not 0 < is_c.sum() < len(y):
            skipped.append(names[c])
            continue
        fpr, tpr, _ = skm.roc_curve(is_c, p[:, c])
        auc = skm.auc(fpr, tpr)
        ax.plot(fpr, tpr, linewidth=2, label=f"{names[c]} (AUC = {auc:.3f})")
    if skipped:
        ax.text(
            0.03,
            0.93,
            "ROC undefined (only one class present):\n" + ", ".join(skipped),
            ha="left",
            va="top",
            fontsize=9,
            color="firebrick",
            transform=ax.transAxes,
        )
    title = "ROC curve" if positive_class is not None else "ROC curves (one-vs-rest)"
    ax.set(
        title=title,
        xlabel="false positive rate (1 - specificity)",
        ylabel="true positive rate (sensitivity)",
        xlim=(-0.01, 1.01),
        ylim=(-0.01, 1.01),
    )
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_confusion_matrix(
    cm: Any, class_names: Sequence[str], path: str | Path, title: str = "Confusion matrix"
) -> Path:
    """Heat map of a confusion matrix (rows = true, cols = predicted) annotated with counts."""
    m = np.asarray(cm)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise QkitError(f"confusion matrix must be square, got shape {tuple(m.shape)}")
    if m.dtype.kind not in "iuf" or np.any(m < 0) or np.any(m != np.round(m)):
        raise QkitError("confusion matrix must hold non-negative counts")
    if len(class_names) != m.shape[0]:
        raise QkitError(f"got {len(class_names)} class names for a {m.shape[0]}x{m.shape[0]} matrix")
    m = m.astype(np.int64)
    k = m.shape[0]
    row_totals = m.sum(axis=1, keepdims=True)
    share = np.divide(m, row_totals, out=np.zeros(m.shape), where=row_totals > 0)

    size = max(4.0, 1.0 + 1.1 * k)
    fig = Figure(figsize=(size + 1.0, size))
    ax = fig.subplots()
    # Colour by the share of each true class, so a rare class's errors are as visible as a
    # common class's; the annotations give the raw counts.
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    font = 11 if k <= 6 else 8
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                f"{m[i, j]}\n{share[i, j]:.0%}",
                ha="center",
                va="center",
                fontsize=font,
                color="white" if share[i, j] > 0.5 else "black",
            )
    ax.set_xticks(
        range(k), [str(n) for n in class_names], rotation=30 if k > 2 else 0, ha="right" if k > 2 else "center"
    )
    ax.set_yticks(range(k), [str(n) for n in class_names])
    ax.set(title=f"{title} (n = {int(m.sum())})", xlabel="predicted", ylabel="true")
    return _save(fig, path)
