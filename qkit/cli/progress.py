"""Training progress on the terminal: epoch and batch bars plus one line per epoch.

A ``qkit.train`` callback: the training loop only reports events; how they look is decided
here, so library users get no output unless they ask for it.
"""

from __future__ import annotations

import math
from typing import Any


class TrainProgress:
    """Rich progress bars for ``train(..., callback=TrainProgress())``; silent when disabled."""

    def __init__(self, enabled: bool = True):
        self.enabled, self.bar = enabled, None

    def __enter__(self) -> TrainProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
            self.bar = None

    def __call__(self, event: str, info: dict) -> None:
        if not self.enabled:
            return
        if event == "start":
            self._start(info["epochs"], info["done"])
        elif event == "message":
            self._log(info["text"])
        elif event == "epoch_start":
            self.bar.reset(self.batch_task, total=info["batches"], description=f"epoch {info['epoch']}", info="")
        elif event == "batch":
            self.bar.update(self.batch_task, advance=1, info=f"loss {info['loss']:.4f}")
        elif event == "epoch":
            self.bar.update(self.epoch_task, advance=1)
            self._log(_epoch_line(info))

    def _start(self, epochs: int, done: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            transient=True,
        )
        self.bar.__enter__()
        self.epoch_task = self.bar.add_task("epochs", total=epochs, completed=done, info="")
        self.batch_task = self.bar.add_task("batches", total=1, info="")

    def _log(self, message: str) -> None:
        if self.bar is not None:
            self.bar.console.print(message, highlight=False)


def _epoch_line(info: dict) -> str:
    monitor = info["monitor"]
    value = info.get("val_loss" if monitor == "loss" else f"val_{monitor}")
    shown = "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"
    watched = "" if monitor == "loss" else f"  val_{monitor} {shown}"
    return (
        f"epoch {info['epoch']:>3}/{info['epochs']}  train_loss {info['train_loss']:.4f}  "
        f"val_loss {info['val_loss']:.4f}{watched}{'  *' if info['improved'] else ''}  "
        f"({info['seconds']:.1f}s)"
    )
