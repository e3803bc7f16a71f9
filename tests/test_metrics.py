"""Metrics on small cases computed by hand, degenerate inputs, JSON output, thresholds."""

import json
import math

import numpy as np
import pytest

from qkit.errors import QkitError
from qkit.metrics import choose_threshold, classification_metrics

# 4 malignant (label 0) and 6 benign (label 1); column 0 is P(malignant).
Y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
P0 = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1, 0.1, 0.05])
PROBS = np.stack([P0, 1 - P0], axis=1)
# At 0.5 on P(malignant): samples 0,1,2 (malignant) and 4 (benign) are called malignant.
# Rows true, cols predicted, order [0, 1]: TP(0)=3 FN(0)=1 / FP(0)=1 TN(0)=5.
CM = [[3, 1], [1, 5]]


def test_binary_positive_class_0_by_hand():
    m = classification_metrics(Y, PROBS, positive_class=0)
    assert m["confusion_matrix"] == CM
    assert m["accuracy"] == pytest.approx(0.8)
    assert m["sensitivity"] == m["recall"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(5 / 6)
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(3 / 4)
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 5 / 6) / 2)
    assert m["g_mean"] == pytest.approx(math.sqrt(3 / 4 * 5 / 6))
    # 21 of the 24 (malignant, benign) pairs are ranked correctly.
    assert m["auc"] == pytest.approx(21 / 24)
    assert (m["positive_class"], m["threshold"], m["n"], m["n_positive"]) == (0, 0.5, 10, 4)


def test_binary_positive_class_1_swaps_sensitivity_and_specificity():
    m0 = classification_metrics(Y, PROBS, positive_class=0)
    m1 = classification_metrics(Y, PROBS, positive_class=1)
    # Same predictions (no score sits at 0.5), so the same matrix, viewed from class 1.
    assert m1["confusion_matrix"] == CM
    assert m1["sensitivity"] == pytest.approx(m0["specificity"]) == pytest.approx(5 / 6)
    assert m1["specificity"] == pytest.approx(m0["sensitivity"]) == pytest.approx(3 / 4)
    assert m1["precision"] == pytest.approx(5 / 6)  # 5 of 6 called benign are benign
    assert m1["auc"] == pytest.approx(21 / 24)
    assert m1["accuracy"] == m0["accuracy"]


def test_threshold_moves_the_decision():
    m = classification_metrics(Y, PROBS, positive_class=0, threshold=0.3)
    # P(malignant) >= 0.3 catches all 4 malignant and 2 benign (0.7, 0.4).
    assert m["confusion_matrix"] == [[4, 0], [2, 4]]
    assert m["sensitivity"] == 1.0
    assert m["specificity"] == pytest.approx(4 / 6)
    # The threshold is inclusive: a score equal to it counts as positive.
    assert classification_metrics(Y, PROBS, 0, threshold=0.9)["confusion_matrix"] == [[1, 3], [0, 6]]


def test_results_are_plain_json():
    for m in (
        classification_metrics(Y, PROBS, 0),
        classification_metrics(Y, PROBS.astype(np.float32), 1),
        classification_metrics(Y, PROBS, None),
    ):
        text = json.dumps(m, allow_nan=False)
        assert json.loads(text) == m
        for key, value in m.items():
            if key not in ("confusion_matrix", "per_class"):
                assert value is None or type(value) in (int, float), key


def test_single_class_present_is_degenerate_not_nan():
    y = np.ones(4, dtype=int)
    probs = np.array([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9], [0.3, 0.7]])
    m = classification_metrics(y, probs, positive_class=0)
    assert m["auc"] is None
    assert m["sensitivity"] == 0.0  # no malignant case: zero_division -> 0
    assert m["precision"] == 0.0  # the one malignant call is wrong
    assert m["specificity"] == pytest.approx(3 / 4)
    assert m["g_mean"] == 0.0
    assert m["confusion_matrix"] == [[0, 0], [1, 3]]
    json.dumps(m, allow_nan=False)


def test_no_positive_predictions_gives_zero_precision():
    m = classification_metrics(Y, PROBS, positive_class=0, threshold=1.0)
    assert m["precision"] == 0.0 and m["f1"] == 0.0 and m["sensitivity"] == 0.0
    assert m["specificity"] == 1.0


def _sklearn_binary(y, probs, pos, threshold):
    """What sklearn's own scorers say for the binary metrics ``_binary`` reads off one confusion matrix."""
    import warnings

    from sklearn import metrics as skm

    pred = np.where(probs[:, pos] >= threshold, pos, 1 - pos)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # single-class y_true: sklearn warns, the value is what we want
        return {
            "accuracy": skm.accuracy_score(y, pred),
            "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
            "precision": skm.precision_score(y, pred, pos_label=pos, zero_division=0),
            "recall": skm.recall_score(y, pred, pos_label=pos, zero_division=0),
            "specificity": skm.recall_score(y, pred, pos_label=1 - pos, zero_division=0),
            "f1": skm.f1_score(y, pred, pos_label=pos, zero_division=0),
        }


@pytest.mark.parametrize("case", range(40))
def test_binary_metrics_equal_sklearns_scorers(case):
    rng = np.random.default_rng(case)
    n = int(rng.integers(1, 30))
    y = rng.integers(0, 2, n) if case % 4 else np.full(n, case % 8 // 4)  # every 4th case: one class only
    p0 = rng.random(n)
    probs = np.stack([p0, 1 - p0], axis=1)
    pos, threshold = case % 2, float(rng.choice([0.0, 0.3, 0.5, 0.9, 1.0]))
    ours = classification_metrics(y, probs, pos, threshold=threshold)
    for key, value in _sklearn_binary(y, probs, pos, threshold).items():
        assert ours[key] == pytest.approx(value, abs=1e-12), key


def test_labels_as_column_and_float_accepted():
    a = classification_metrics(Y.reshape(-1, 1), PROBS, 0)
    b = classification_metrics(Y.astype(float).tolist(), PROBS.tolist(), 0)
    assert a == b == classification_metrics(Y, PROBS, 0)


def test_multiclass_by_hand():
    y = [0, 1, 2, 2]
    probs = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.2, 0.6, 0.2],
            [0.1, 0.5, 0.4],  # a class-2 sample predicted as 1
            [0.0, 0.3, 0.7],
        ]
    )
    m = classification_metrics(y, probs, positive_class=None)
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert m["accuracy"] == pytest.approx(3 / 4)
    assert m["balanced_accuracy"] == pytest.approx((1 + 1 + 0.5) / 3)
    # Every class's own score ranks its samples above all others: perfect OvR AUC.
    assert m["auc"] == pytest.approx(1.0)
    assert m["per_class"]["2"]["recall"] == pytest.approx(0.5)
    assert m["per_class"]["1"]["precision"] == pytest.approx(0.5)
    assert (m["n"], m["n_classes"]) == (4, 3)


def test_multiclass_missing_class_auc_none():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1]])
    m = classification_metrics([0, 1, 0], probs, None)  # class 2 never occurs
    assert m["auc"] is None
    assert m["accuracy"] == 1.0
    json.dumps(m, allow_nan=False)


@pytest.mark.parametrize(
    "y, probs, pos, match",
    [
        (Y[:5], PROBS, 0, "10 rows"),
        (Y, PROBS[:, :1], 0, "shape"),
        (Y, PROBS * 3 - 1, 0, r"\[0, 1\]"),
        (Y, PROBS * 0.5, 0, "sum to 1"),
        (Y + 1, PROBS, 0, "labels must lie"),
        (Y, PROBS, 2, "positive_class"),
        (Y[:0], PROBS[:0], 0, "empty"),
        ([0.5] * 10, PROBS, 0, "integer"),
        (Y, np.full((10, 2), np.nan), 0, "NaN"),
        ([0, 1, 2], np.full((3, 3), 1 / 3), 0, "binary problems only"),
    ],
)
def test_invalid_inputs_raise_qkit_error(y, probs, pos, match):
    with pytest.raises(QkitError, match=match):
        classification_metrics(y, probs, pos)


def test_invalid_threshold():
    with pytest.raises(QkitError, match="threshold"):
        classification_metrics(Y, PROBS, 0, threshold=1.5)


def test_choose_threshold_by_hand():
    # ROC points on P(malignant): the best G-mean sqrt(1 * 4/6) is reached at 0.3
    # (all malignant caught, 2 of 6 benign flagged); 0.6 gives only sqrt(3/4 * 5/6).
    t = choose_threshold(Y, PROBS, positive_class=0)
    assert t == pytest.approx(0.3)
    m = classification_metrics(Y, PROBS, 0, threshold=t)
    assert m["g_mean"] == pytest.approx(math.sqrt(4 / 6))
    # For class 1 the score is 1 - P(malignant); the same cut seen from the other side.
    t1 = choose_threshold(Y, PROBS, positive_class=1)
    assert classification_metrics(Y, PROBS, 1, threshold=t1)["g_mean"] == pytest.approx(math.sqrt(4 / 6))


def test_choose_threshold_beats_every_other_cut():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    score = np.clip(0.25 * y + rng.random(200) * 0.75, 0, 1)
    probs = np.stack([1 - score, score], axis=1)
    t = choose_threshold(y, probs, 1)
    assert 0.0 <= t <= 1.0
    best = classification_metrics(y, probs, 1, threshold=t)["g_mean"]
    for cut in np.linspace(0, 1, 101):
        assert classification_metrics(y, probs, 1, threshold=float(cut))["g_mean"] <= best + 1e-12


def test_choose_threshold_degenerate_and_perfect():
    assert choose_threshold([1, 1, 1], [[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]], 1) == 0.5
    t = choose_threshold([0, 0, 1, 1], [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]], 1)
    m = classification_metrics([0, 0, 1, 1], [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]], 1, t)
    assert m["g_mean"] == 1.0
    with pytest.raises(QkitError):
        choose_threshold(Y, PROBS, None)
