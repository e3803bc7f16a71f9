"""Clinical classification metrics, computed by scikit-learn (binary ratios read off its confusion matrix).

Binary problems name their positive class explicitly: in BreastMNIST the class that matters
(malignant) is label 0, so "precision" or "sensitivity" computed with sklearn's default
``pos_label=1`` would silently describe the wrong class. Every number returned is a plain
Python ``int``/``float``/``None`` (never NaN, never a numpy scalar) so results go straight
into JSON files.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from sklearn import metrics as skm

from qkit.errors import QkitError

# Softmax outputs in float32 sum to 1 within ~1e-6; this only rejects clearly wrong inputs
# such as logits or independent sigmoid scores.
_PROB_TOL = 1e-3


def _as_labels(y_true: Any) -> np.ndarray:
    """Integer labels as a 1-D int64 array; accepts lists, numpy arrays, CPU tensors, [N, 1]."""
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] == 1:  # MedMNIST stores labels as [N, 1]
        y = y[:, 0]
    if y.ndim != 1:
        raise QkitError(f"y_true must be a 1-D array of labels, got shape {tuple(y.shape)}")
    if y.size == 0:
        raise QkitError("y_true is empty: metrics need at least one sample")
    if y.dtype.kind not in "iub":
        if y.dtype.kind != "f" or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise QkitError("y_true must contain integer class labels")
    return y.astype(np.int64)


def _as_probs(probs: Any) -> np.ndarray:
    """Class probabilities as a float64 [N, C] array, validated."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise QkitError(f"probs must have shape [N, C] with C >= 2, got {tuple(p.shape)}")
    if p.shape[0] == 0:
        raise QkitError("probs is empty: metrics need at least one sample")
    if not np.all(np.isfinite(p)):
        raise QkitError("probs contain NaN or infinite values")
    if p.min() < -_PROB_TOL or p.max() > 1 + _PROB_TOL:
        raise QkitError("probs must lie in [0, 1] (pass softmax outputs, not logits)")
    if np.max(np.abs(p.sum(axis=1) - 1.0)) > _PROB_TOL:
        raise QkitError("each row of probs must sum to 1 (pass softmax outputs)")
    return np.clip(p, 0.0, 1.0)


def validate_inputs(y_true: Any, probs: Any, positive_class: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Labels [N] (int64) and probabilities [N, C] (float64), validated together (QkitError)."""
    p = _as_probs(probs)
    y = _as_labels(y_true)
    if len(y) != len(p):
        raise QkitError(f"y_true has {len(y)} labels but probs has {len(p)} rows")
    n_classes = p.shape[1]
    if y.min() < 0 or y.max() >= n_classes:
        raise QkitError(f"labels must lie in 0..{n_classes - 1}, got {y.min()}..{y.max()}")
    if positive_class is not None:
        if n_classes != 2:
            raise QkitError(f"positive_class applies to binary problems only, probs has {n_classes} classes")
        if positive_class not in (0, 1):
            raise QkitError(f"positive_class must be 0 or 1, got {positive_class!r}")
    return y, p


def _f(x: Any) -> float | None:
    """Plain float, with NaN/inf (undefined metric) mapped to None for JSON."""
    x = float(x)
    return x if math.isfinite(x) else None


def _binary(y: np.ndarray, p: np.ndarray, pos: int, threshold: float) -> dict:
    neg = 1 - pos
    pred = np.where(p[:, pos] >= threshold, pos, neg)
    is_pos = y == pos
    # One sklearn confusion matrix, and the ratios sklearn's recall/precision/f1/accuracy/
    # balanced-accuracy scorers would give (zero_division=0) read off it: each scorer re-validates
    # its inputs (~10 ms a call), and hardware runs score 20 repetitions twice at two thresholds.
    # tests/test_metrics.py checks the two agree, degenerate splits included.
    cm = skm.confusion_matrix(y, pred, labels=[0, 1])
    tp, fn, fp, tn = int(cm[pos, pos]), int(cm[pos, neg]), int(cm[neg, pos]), int(cm[neg, neg])
    sens, spec = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
    present = [r for r, n in ((sens, tp + fn), (spec, tn + fp)) if n]  # classes in y_true
    out = {
        "accuracy": (tp + tn) / len(y),
        "balanced_accuracy": sum(present) / len(present),
        "precision": _ratio(tp, tp + fp),
        "recall": sens,
        "sensitivity": sens,
        "specificity": spec,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "g_mean": math.sqrt(sens * spec),
        # AUC is undefined unless both classes occur in y_true.
        "auc": skm.roc_auc_score(is_pos, p[:, pos]) if 0 < is_pos.sum() < len(y) else None,
    }
    out = {k: (None if v is None else _f(v)) for k, v in out.items()}
    out["confusion_matrix"] = cm.tolist()
    out.update(positive_class=int(pos), threshold=float(threshold), n=int(len(y)), n_positive=int(is_pos.sum()))
    return out


def _ratio(num: int, den: int) -> float:
    """num / den, 0 when den is 0 (sklearn's ``zero_division=0``)."""
    return num / den if den else 0.0


def _multiclass(y: np.ndarray, p: np.ndarray) -> dict:
    labels = list(range(p.shape[1]))
    pred = p.argmax(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # Renormalise: sklearn checks the rows sum to 1 tighter than our tolerance.
            auc = _f(
                skm.roc_auc_score(
                    y, p / p.sum(axis=1, keepdims=True), multi_class="ovr", average="macro", labels=labels
                )
            )
        except ValueError:  # a class absent from y_true: one-vs-rest AUC is undefined
            auc = None
        out = {
            "accuracy": _f(skm.accuracy_score(y, pred)),
            "balanced_accuracy": _f(skm.balanced_accuracy_score(y, pred)),
            "auc": auc,
            "confusion_matrix": skm.confusion_matrix(y, pred, labels=labels).tolist(),
            "per_class": skm.classification_report(y, pred, labels=labels, output_dict=True, zero_division=0),
        }
    out.update(n=int(len(y)), n_classes=len(labels))
    return out


def classification_metrics(y_true: Any, probs: Any, positive_class: int | None, threshold: float = 0.5) -> dict:
    """Metrics for predictions ``probs`` [N, C] against integer labels ``y_true`` [N].

    Binary (C == 2 and ``positive_class`` given): a sample is predicted positive iff
    ``probs[:, positive_class] >= threshold``; returns accuracy, balanced_accuracy,
    precision, recall, sensitivity (= recall), specificity, f1, g_mean, auc,
    confusion_matrix (rows = true, cols = predicted, labels [0, 1]), positive_class,
    threshold, n, n_positive. Otherwise (multi-class, or binary without a positive class):
    argmax prediction; accuracy, balanced_accuracy, auc (macro one-vs-rest), confusion_matrix,
    per_class (sklearn classification report), n, n_classes. Undefined values (an AUC with one
    class present) are None; divisions by zero give 0.
    """
    y, p = validate_inputs(y_true, probs, positive_class)
    if positive_class is None:
        return _multiclass(y, p)
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float, np.floating))
        or not 0.0 <= float(threshold) <= 1.0
    ):
        raise QkitError(f"threshold must be a number in [0, 1], got {threshold!r}")
    return _binary(y, p, int(positive_class), float(threshold))


def choose_threshold(y_true: Any, probs: Any, positive_class: int) -> float:
    """Decision threshold on ``probs[:, positive_class]`` maximising G-mean on this data.

    G-mean = sqrt(sensitivity * specificity) balances the two error types, which matters on
    imbalanced clinical data where a 0.5 cut-off can miss most of the minority class. Every
    ROC point is considered (no dropped intermediate points: the optimum can lie between two
    collinear corners). The returned value, used with ``>=``, reproduces the best ROC point;
    it is clipped to [0, 1]. Falls back to 0.5 when only one class is present.
    """
    if positive_class is None:
        raise QkitError("choose_threshold needs a positive_class (binary problems only)")
    y, p = validate_inputs(y_true, probs, positive_class)
    is_pos = y == positive_class
    if not 0 < is_pos.sum() < len(y):
        return 0.5
    fpr, tpr, thresholds = skm.roc_curve(is_pos, p[:, positive_class], drop_intermediate=False)
    g_mean = np.sqrt(tpr * (1.0 - fpr))
    best = int(np.argmax(g_mean))  # first maximum = highest threshold among ties
    return float(np.clip(thresholds[best], 0.0, 1.0))


def score(y_true: Any, probs: Any, positive_class: int | None, val_threshold: float | None = None) -> dict:
    """The metrics a run reports for one split, computed in one place for training and evaluation.

    ``classification_metrics`` at the 0.5 cut-off, plus, for a binary task with a threshold
    chosen on validation (``choose_threshold``), ``val_threshold`` and the same metrics at it
    under ``at_val_threshold``.
    """
    result = classification_metrics(y_true, probs, positive_class)
    if positive_class is not None and val_threshold is not None:
        result.update(
            val_threshold=float(val_threshold),
            at_val_threshold=classification_metrics(y_true, probs, positive_class, threshold=val_threshold),
        )
    return result
