"""What each seed paper claims about its quantum layer, in a form a sweep can check.

The registry keeps each paper's headline numbers as text (``Preset.paper``); a claim here
adds what can be tested against a twin that differs only in the quantum layer: the metric
the paper argues with, the direction (+1: the hybrid is better, -1: worse) and the data the
paper measured on. A sweep's verdict says whether the direction held on this sweep's data and
whether the paired statistics make it more than seed and image luck.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Claim:
    metric: str
    direction: int
    statement: str
    datasets: tuple[str, ...] = ()


CLAIMS = {
    "qtl": Claim(
        "auc", 1, "quantum transfer learning lifts test AUC over classical transfer learning (0.77 vs 0.58)", ("bcdr",)
    ),
    "quantum-end": Claim(
        "g_mean",
        1,
        "Quantum-End beats ResNet18 on G-mean (0.788 vs 0.770; not on AUC: 0.829 vs 0.859)",
        ("breastmnist",),
    ),
    "quantum-mid": Claim(
        "g_mean", -1, "Quantum-Mid falls behind ResNet18 on G-mean (0.655 vs 0.770)", ("breastmnist",)
    ),
    "hqcnn": Claim(
        "accuracy",
        1,
        "the hybrid beats a CNN benchmark by a wide margin (97.8-99.1% vs 69-98% accuracy on binary MedMNIST subsets)",
        ("pathmnist", "organamnist", "bloodmnist"),
    ),
    "hqnn-parallel": Claim(
        "accuracy",
        1,
        "the hybrid matches or beats a CNN with far more parameters (MNIST 99.21% vs 98.71%)",
        ("mnist", "medical mnist", "cifar-10"),
    ),
    "hqnn-quanv": Claim(
        "accuracy", 1, "a 4-weight quanvolution beats a 4-weight classical convolution (0.67 vs CNN1 0.53)", ("mnist",)
    ),
    "effnet-qnn": Claim(
        "accuracy",
        1,
        "the QNN head lifts accuracy over the classical head (EfficientNet-B5 90.5% vs 88.5%)",
        ("breastmnist", "breakhis"),
    ),
}


def verdict(claim: Claim, measured: dict, dataset: str) -> dict:
    """``measured``: the hybrid-vs-twin pair of the claim's metric (``wilcoxon`` entry of a pair)
    plus the AUC bootstrap interval. Returns ``{"verdict", "detail"}``."""
    w = measured["wilcoxon"][claim.metric]
    diff = w["mean_difference"]
    if diff is None:
        return {"verdict": "not tested", "detail": "no finished runs"}
    agrees = diff * claim.direction > 0
    boot = measured.get("bootstrap_auc") or {}
    significant = (w["p"] is not None and w["p"] < 0.05) or (
        claim.metric == "auc" and boot.get("excludes_zero") and (boot.get("difference") or 0) * claim.direction > 0
    )
    if diff == 0:
        word = "did not hold (no difference)"
    elif agrees:
        word = "held" if significant else "direction held, not significant"
    else:
        word = "contradicted" if significant else "did not hold"
    detail = f"{claim.metric} hybrid - twin = {diff:+.4f} over {w['n']} seed(s) ({w['wins']} wins, {w['losses']} losses"
    detail += f", Wilcoxon p = {w['p']:.3g})" if w["p"] is not None else ", Wilcoxon undefined)"
    if claim.datasets and dataset.lower() not in claim.datasets:
        detail += f"; the paper measured on {', '.join(claim.datasets)}, this sweep on {dataset}"
    return {"verdict": word, "detail": detail}
