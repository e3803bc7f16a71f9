"""The heatmap grid: per image, the original, and per method the heatmap and its overlay.

Images are drawn at their real resolution (nearest-neighbour: a 28 px image shows its 28
pixels, nothing invented); heatmaps are drawn smoothly (bilinear), because a class-activation
map is a coarse field (7x7 for small_cnn on 28 px) whose blocky cells would suggest structure
it does not have. Each row says the true class, the predicted probability and the outcome;
the caption says which class the maps explain. Built with ``matplotlib.figure.Figure``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from qkit.explain.cam import LABELS
from qkit.runs import atomic_write

DPI = 100
CELL = 1.55  # inches per panel


def display_image(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """[3, H, W] float -> an array imshow draws ([H, W] gray or [H, W, 3] RGB in [0, 1]) and its cmap."""
    img = np.asarray(image, dtype=np.float32)
    lo, hi = float(img.min()), float(img.max())
    img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    if img.shape[0] == 1 or np.allclose(img[0], img[1:]):
        return img[0], "gray"
    return np.transpose(img, (1, 2, 0)), None


def save_png(fig: Any, path: str | Path, dpi: int = DPI) -> Path:
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.1))


def row_label(sample_id: str, true_name: str, prob: float, prob_name: str, outcome: str) -> str:
    return f"{sample_id}\ntrue: {true_name}\np({prob_name}) = {prob:.2f}\n{outcome.upper()}"


def heatmap_grid(images: np.ndarray, maps: dict[str, np.ndarray], rows: list[str], caption: str) -> Any:
    """A Figure: one row per image; columns original, then heatmap and overlay per method."""
    from matplotlib.figure import Figure

    methods = list(maps)
    n, cols = len(images), 1 + 2 * len(methods)
    height = CELL * n + 0.9
    fig = Figure(figsize=(CELL * cols + 1.2, height))
    axes = np.asarray(fig.subplots(n, cols, squeeze=False))
    fig.subplots_adjust(bottom=0.15 / height, top=1 - 0.35 / height, wspace=0.06, hspace=0.08)
    side = images.shape[-1]
    heat = None
    for r in range(n):
        img, cmap = display_image(images[r])
        axes[r, 0].imshow(img, cmap=cmap, interpolation="nearest", vmin=0, vmax=1)
        axes[r, 0].set_ylabel(rows[r], rotation=0, ha="right", va="center", fontsize=7.5, labelpad=4)
        for j, m in enumerate(methods):
            cam = maps[m][r]
            heat = axes[r, 1 + 2 * j].imshow(cam, cmap="jet", vmin=0, vmax=1, interpolation="bilinear")
            over = axes[r, 2 + 2 * j]
            over.imshow(img, cmap=cmap, interpolation="nearest", vmin=0, vmax=1)
            over.imshow(cam, cmap="jet", vmin=0, vmax=1, alpha=0.45, interpolation="bilinear")
    titles = [f"image ({images.shape[-2]}×{side} px)"]
    for m in methods:
        titles += [LABELS[m], f"{LABELS[m]} overlay"]
    for j, t in enumerate(titles):
        axes[0, j].set_title(t, fontsize=8.5)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if heat is not None:
        bar = fig.colorbar(heat, ax=axes.ravel().tolist(), fraction=0.02, pad=0.01, shrink=0.6)
        bar.set_label("relevance (per image, 0–1)", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    fig.text(0.5, 0.0, caption, ha="center", va="top", fontsize=8.5, wrap=True)
    return fig
