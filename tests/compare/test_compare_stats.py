"""Paired statistics of qkit compare on synthetic data (fast, no training)."""

import numpy as np
import pytest

from qkit.compare.stats import mean_std, paired_auc_difference, wilcoxon_over_seeds
from qkit.report.stats import auc


def synthetic(seed=0, n=156, seeds=3):
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.27
    strong = [labels * 0.6 + rng.random(n) for _ in range(seeds)]  # AUC ~0.9
    weak = [labels * 0.1 + rng.random(n) for _ in range(seeds)]  # AUC ~0.6
    return labels, strong, weak


def test_bootstrap_interval_of_a_real_difference_excludes_zero_and_holds_the_point():
    labels, strong, weak = synthetic()
    result = paired_auc_difference(labels, strong, weak)
    point = np.mean([auc(labels, s) - auc(labels, w) for s, w in zip(strong, weak)])
    assert result["difference"] == pytest.approx(point)
    assert 0 < result["low"] < point < result["high"]
    assert result["excludes_zero"] and result["resamples"] == 2000


def test_bootstrap_of_identical_models_is_exactly_zero_and_reversal_flips_the_sign():
    labels, strong, weak = synthetic()
    same = paired_auc_difference(labels, strong, strong)
    assert same["difference"] == same["low"] == same["high"] == 0 and not same["excludes_zero"]
    forward, backward = paired_auc_difference(labels, strong, weak), paired_auc_difference(labels, weak, strong)
    assert backward["low"] == pytest.approx(-forward["high"]) and backward["high"] == pytest.approx(-forward["low"])


def test_pairing_makes_the_interval_narrower_than_the_unpaired_spread():
    """Hybrid = twin + small noise: the paired interval is far narrower than either AUC's own interval."""
    rng = np.random.default_rng(3)
    labels = rng.random(156) < 0.27
    twin = [labels * 0.5 + rng.random(156)]
    hybrid = [twin[0] + rng.normal(0, 0.02, 156)]
    paired = paired_auc_difference(labels, hybrid, twin)
    alone = paired_auc_difference(labels, hybrid, [np.zeros(156)])  # constant scores: AUC 0.5 every resample
    assert paired["high"] - paired["low"] < (alone["high"] - alone["low"]) / 4


def test_bootstrap_is_seeded_and_checks_shapes():
    labels, strong, weak = synthetic()
    assert paired_auc_difference(labels, strong, weak) == paired_auc_difference(labels, strong, weak)
    with pytest.raises(ValueError):
        paired_auc_difference(labels, strong, weak[:2])


def test_wilcoxon_says_when_few_seeds_cannot_reach_005():
    few = wilcoxon_over_seeds([0.9, 0.8, 0.85], [0.7, 0.75, 0.8])
    assert few["p"] == pytest.approx(0.25) and few["wins"] == 3 and "cannot reach p < 0.05" in few["note"]
    six = wilcoxon_over_seeds([0.9] * 6, [0.8] * 6)
    assert six["p"] == pytest.approx(2 / 2**6) and six["p"] < 0.05 and six["note"] == ""
    one = wilcoxon_over_seeds([0.9], [0.8])
    assert one["p"] is None and "undefined" in one["note"]
    assert wilcoxon_over_seeds([0.8, 0.7], [0.8, 0.7])["p"] is None


def test_mean_std_uses_the_sample_deviation():
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(2**0.5))
    assert mean_std([0.5]) == (0.5, 0.0) and mean_std([None]) == (None, None)
