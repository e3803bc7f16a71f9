"""Per-sample predictions: ``predictions-<split>-<engine>.csv`` in a run or evaluation folder.

One row per image: ``sample_id`` (stable: ``test/17`` for MedMNIST, the relative file path
for image folders), ``label``, ``prob_0`` .. ``prob_{C-1}`` (softmax) and ``prediction``
(argmax). Everything later stages need (comparisons across seeds and engines, bootstrap
intervals, explanations of chosen images, hardware re-scoring) starts from these files, so
they are plain CSV that any tool reads.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from qkit.errors import QkitError
from qkit.runs.files import atomic_write_text


def predictions_name(split: str, engine: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", str(engine))
    return f"predictions-{split}-{safe}.csv"


@dataclass
class Predictions:
    """Rows of a predictions file: ids, integer labels, probabilities (``N x C``), predictions."""

    ids: list[str]
    labels: list[int]
    probs: list[list[float]]

    @property
    def predicted(self) -> list[int]:
        return [max(range(len(row)), key=row.__getitem__) for row in self.probs]

    def __len__(self) -> int:
        return len(self.ids)


def write_predictions(path: str | Path, ids, labels, probs) -> Path:
    """Write ``predictions-*.csv`` atomically; ``probs`` is [N, C] (array or nested lists)."""
    labels, probs = [int(v) for v in labels], [[float(p) for p in row] for row in probs]
    if not len(ids) == len(labels) == len(probs):
        raise QkitError(f"predictions: {len(ids)} ids, {len(labels)} labels, {len(probs)} rows")
    n_classes = len(probs[0]) if probs else 0
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["sample_id", "label", *(f"prob_{c}" for c in range(n_classes)), "prediction"])
    for sample_id, label, row in zip(ids, labels, probs):
        predicted = max(range(n_classes), key=row.__getitem__)
        writer.writerow([sample_id, label, *(repr(p) for p in row), predicted])
    return atomic_write_text(path, buffer.getvalue())


def read_predictions(path: str | Path) -> Predictions:
    """Read a predictions file; a missing or malformed file is a one-line QkitError."""
    path = Path(path)
    if not path.is_file():
        raise QkitError(f"no predictions file {path}")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0][:2] != ["sample_id", "label"] or rows[0][-1] != "prediction":
        raise QkitError(f"{path} is not a qkit predictions file (bad header)")
    n_probs = len(rows[0]) - 3
    ids, labels, probs = [], [], []
    try:
        for row in rows[1:]:
            ids.append(row[0])
            labels.append(int(row[1]))
            probs.append([float(v) for v in row[2 : 2 + n_probs]])
    except (ValueError, IndexError):
        raise QkitError(f"{path} line {len(ids) + 2} is malformed") from None
    return Predictions(ids, labels, probs)
