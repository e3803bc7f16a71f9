"""Figures of hardware runs: metrics over repetitions, and a comparison of settings against exact.

Each figure is drawn into its own ``matplotlib.figure.Figure`` (pyplot's global state and
backend are left alone) and written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

PANELS = (
    ("auc", "test AUC"),
    ("accuracy", "accuracy"),
    ("delta", "mean |Δ⟨O⟩| vs exact"),
    ("agreement", "agreement with exact"),
)


def _save(figure, path: Path) -> Path:
    from qkit.runs import atomic_write

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return atomic_write(Path(path), lambda f: f.write(buffer.getvalue()))


def _series(record: dict) -> dict[str, list[dict]]:
    """Label -> repetitions of each scored setting in a hardware record."""
    out = {}
    if record.get("unmitigated"):
        out["raw"] = record["unmitigated"]["repetitions"]
    out[record.get("mitigation", "none") if record.get("mitigation") != "none" else "raw"] = record["repetitions"]
    return out


def plot_repetitions(record: dict, path: str | Path) -> Path:
    """Box and points per metric over repetitions, raw and mitigated side by side; exact as a line."""
    from matplotlib.figure import Figure

    series = _series(record)
    figure = Figure(figsize=(3.0 * len(PANELS), 3.4))
    for i, (key, title) in enumerate(PANELS):
        ax = figure.add_subplot(1, len(PANELS), i + 1)
        data = [[r.get(key) for r in reps if r.get(key) is not None] for reps in series.values()]
        ax.boxplot(data, widths=0.5, showfliers=False)
        for j, points in enumerate(data, start=1):
            jitter = np.random.default_rng(j).uniform(-0.12, 0.12, len(points))
            ax.plot(np.full(len(points), j) + jitter, points, "o", ms=3, alpha=0.6)
        ax.set_xticks(range(1, len(series) + 1), list(series))
        exact = record.get("exact", {}).get(key)
        if exact is not None:
            ax.axhline(exact, ls="--", color="grey", lw=1, label="exact")
            ax.legend(fontsize=7, loc="best")
        ax.set_title(title, fontsize=9)
    figure.suptitle(
        f"{record['split']} split on {record['backend']}: {record['repeat']} repetition(s) x "
        f"{record['shots']} shots, qubits {record['physical_qubits']}",
        fontsize=10,
    )
    figure.tight_layout()
    return _save(figure, Path(path))


def plot_comparison(rows: list[dict], path: str | Path, title: str) -> Path:
    """Bars per setting (exact first): AUC, |Δ⟨O⟩| and agreement, with std over repetitions as error bars."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 3.6))
    labels = [r["setting"] for r in rows]
    for i, (key, name) in enumerate(
        (("auc", "test AUC"), ("delta", "mean |Δ⟨O⟩| vs exact"), ("agreement", "agreement with exact"))
    ):
        ax = figure.add_subplot(1, 3, i + 1)
        means = [np.nan if r["metrics"].get(key, {}).get("mean") is None else r["metrics"][key]["mean"] for r in rows]
        stds = [0.0 if r["metrics"].get(key, {}).get("std") is None else r["metrics"][key]["std"] for r in rows]
        ax.bar(range(len(rows)), means, yerr=stds, color=[f"C{k}" for k in range(len(rows))], capsize=3)
        ax.set_xticks(range(len(rows)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(name, fontsize=9)
        if key == "auc":
            finite = [m for m in means if np.isfinite(m)]
            if finite:
                ax.set_ylim(max(0.0, min(finite) - 0.05), min(1.0, max(finite) + 0.03))
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return _save(figure, Path(path))
