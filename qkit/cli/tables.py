"""Rich tables shared by commands."""

from __future__ import annotations

from typing import Any

from rich.table import Table

SHOWN = ("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "precision", "f1", "g_mean", "loss")


def fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "-" if value is None else str(value)


def metrics_table(metrics: dict, title: str) -> Table:
    """Metric rows; a second column at the threshold chosen on validation when there is one."""
    at_val = metrics.get("at_val_threshold")
    table = Table(title=title)
    table.add_column("metric")
    table.add_column(f"threshold {metrics['threshold']:.2f}" if "threshold" in metrics else "value", justify="right")
    if at_val:
        table.add_column(f"val threshold {metrics['val_threshold']:.3f}", justify="right")
    for key in SHOWN:
        if key in metrics:
            row = [key, fmt(metrics[key])]
            if at_val:
                row.append(fmt(at_val.get(key)) if key != "loss" else "")
            table.add_row(*row)
    return table
