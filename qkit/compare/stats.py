"""Paired statistics of a hybrid against its twin: over seeds, and over test images.

Two questions, two tests. Over seeds: does the hybrid beat its twin when training luck is
paired (same seed, same data order)? Wilcoxon's signed-rank test makes no normality
assumption, but with n seeds its smallest two-sided p-value is 2 / 2^n, so fewer than 6
seeds can never reach p < 0.05: the result says so rather than let "not significant" read
as evidence. Over images: 156 test images make one AUC uncertain by about ±0.02, so the
AUC difference gets a bootstrap interval from resampling the test images, the same
resample for hybrid and twin (paired) and for every seed.
"""

from __future__ import annotations

import math

RESAMPLES = 2000
LEVEL = 0.95
MIN_SEEDS_FOR_005 = 6


def wilcoxon_over_seeds(hybrid: list[float], twin: list[float]) -> dict:
    """Two-sided Wilcoxon signed-rank test of per-seed values (paired by seed).

    ``p`` is None when the test is undefined (one seed, or every difference zero); ``note``
    says when the seed count cannot reach p < 0.05.
    """
    diffs = [h - t for h, t in zip(hybrid, twin)]
    n = len(diffs)
    out = {
        "n": n,
        "mean_difference": sum(diffs) / n if n else None,
        "wins": sum(d > 0 for d in diffs),
        "losses": sum(d < 0 for d in diffs),
        "statistic": None,
        "p": None,
        "min_p": 2 / 2**n if n else None,
        "note": "",
    }
    if n < MIN_SEEDS_FOR_005:
        out["note"] = (
            f"{n} seed(s): the smallest possible two-sided p is {out['min_p']:.3g}, so this test "
            f"cannot reach p < 0.05 (needs {MIN_SEEDS_FOR_005} or more)"
        )
    if n < 2 or all(d == 0 for d in diffs):
        out["note"] = (out["note"] + "; " if out["note"] else "") + "undefined (too few or all-zero differences)"
        return out
    from scipy.stats import wilcoxon

    result = wilcoxon(hybrid, twin, alternative="two-sided")
    out.update(statistic=float(result.statistic), p=_finite(result.pvalue))
    return out


def paired_auc_difference(
    labels, hybrid_probs: list, twin_probs: list, resamples: int = RESAMPLES, seed: int = 0
) -> dict:
    """Bootstrap interval of mean-over-seeds AUC(hybrid) - AUC(twin), resampling test images.

    ``labels``: [N] booleans (positive class); ``hybrid_probs`` / ``twin_probs``: one [N] array
    of positive-class scores per seed, paired by position. Each resample draws N images with
    replacement and scores every run on the same images.
    """
    import numpy as np

    from qkit.report.stats import auc

    pos = np.asarray(labels, dtype=bool)
    h, t = np.asarray(hybrid_probs, dtype=float), np.asarray(twin_probs, dtype=float)  # [S, N]
    if h.shape != t.shape or h.ndim != 2 or h.shape[1] != len(pos):
        raise ValueError(f"paired scores need equal shapes [seeds, {len(pos)}], got {h.shape} and {t.shape}")
    point = float(np.mean(auc(pos, h) - auc(pos, t)))
    idx = np.random.default_rng(seed).integers(0, len(pos), size=(resamples, len(pos)))
    # [R, S, N]: the same image resample for every seed and both models.
    diffs = (
        auc(pos[idx][:, None, :], h[:, idx].transpose(1, 0, 2))
        - auc(pos[idx][:, None, :], t[:, idx].transpose(1, 0, 2))
    ).mean(-1)
    diffs = diffs[np.isfinite(diffs)]
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail]) if len(diffs) else (math.nan, math.nan)
    return {
        "difference": point,
        "low": _finite(low),
        "high": _finite(high),
        "level": LEVEL,
        "resamples": int(len(diffs)),
        "excludes_zero": bool(low > 0 or high < 0),
    }


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (0 for one value) of the finite values."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return None, None
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return mean, std


def _finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None
