"""Which images to explain: chosen by outcome (TP/TN/FP/FN) from a split's per-sample predictions.

A clinician asks "where did it look when it was right, and when it was wrong?", so images
are drawn in turn from each requested outcome, the most confident first (the clearest hits
and the most confident mistakes). For multi-class runs the outcomes are ``correct`` and
``wrong``. The choice is deterministic: the same run and options give the same images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qkit.errors import QkitError

BINARY_OUTCOMES = ("tp", "tn", "fp", "fn")
MULTI_OUTCOMES = ("correct", "wrong")


def parse_select(text: str, binary: bool) -> list[str]:
    allowed = BINARY_OUTCOMES if binary else MULTI_OUTCOMES
    names = list(dict.fromkeys(s.strip().lower() for s in text.split(",") if s.strip()))
    bad = [s for s in names if s not in allowed]
    if not names or bad:
        kind = "a binary" if binary else "a multi-class"
        raise QkitError(f"--select for {kind} run takes a comma-separated subset of {','.join(allowed)}; got {text!r}")
    return names


def outcomes(labels: np.ndarray, predicted: np.ndarray, positive_class: int | None) -> np.ndarray:
    """Per-sample outcome names: tp/tn/fp/fn (binary, positive class given) or correct/wrong."""
    if positive_class is None:
        return np.where(labels == predicted, "correct", "wrong")
    pos_true, pos_pred = labels == positive_class, predicted == positive_class
    return np.select([pos_true & pos_pred, ~pos_true & ~pos_pred, ~pos_true & pos_pred], ["tp", "tn", "fp"], "fn")


@dataclass
class Selection:
    indices: list[int]  # rows of the split's dataset
    outcomes: list[str]  # tp/tn/fp/fn or correct/wrong, per chosen image


def select_images(labels, probs, positive_class: int | None, wanted: list[str], n: int) -> Selection:
    """Up to ``n`` images, taken in turn from each outcome in ``wanted``, most confident first."""
    if n < 1:
        raise QkitError(f"--n must be >= 1, got {n}")
    labels, probs = np.asarray(labels), np.asarray(probs, dtype=float)
    predicted = probs.argmax(1)
    kinds = outcomes(labels, predicted, positive_class)
    confidence = probs.max(1)
    queues = {k: [int(i) for i in np.argsort(-confidence, kind="stable") if kinds[i] == k] for k in wanted}
    chosen: list[int] = []
    while len(chosen) < n and any(queues.values()):
        for k in wanted:
            if queues[k] and len(chosen) < n:
                chosen.append(queues[k].pop(0))
    if not chosen:
        raise QkitError(f"the split has no {'/'.join(s.upper() for s in wanted)} images to explain")
    return Selection(chosen, [str(kinds[i]) for i in chosen])
