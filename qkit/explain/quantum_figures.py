"""Figures of the quantum feature space (``qkit explain --quantum``), one concern per figure.

* outputs: the distribution of each quantum output (⟨Z_i⟩ for the built-in circuits) per
  class, one panel per output, on the observable's whole range [-1, 1];
* projection: PCA to 2-D of the pre-net outputs (circuit inputs) and of the quantum outputs,
  side by side, coloured by class: what the circuit did to the geometry;
* bloch: per qubit the X–Z plane of its Bloch ball (each image a point, the class means as
  arrows), and the class means of ⟨X⟩, ⟨Y⟩, ⟨Z⟩ with their spread;
* separability: probe AUC and silhouette of each representation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
REP_LABELS = {
    "prenet_inputs": "pre-net inputs\n(backbone features)",
    "prenet_outputs": "pre-net outputs\n(circuit inputs)",
    "quantum_outputs": "quantum outputs",
    "bloch_vectors": "Bloch vectors\n(all qubits)",
}


def _classes(labels: np.ndarray, names: list[str]):
    return [(c, name, COLORS[c % len(COLORS)]) for c, name in enumerate(names) if (labels == c).any()]


def outputs_figure(qf: Any, names: list[str]) -> Any:
    from matplotlib.figure import Figure

    m = qf.outputs.shape[1]
    fig = Figure(figsize=(2.8 * m, 2.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, m, sharey=True))
    bins = np.linspace(-1, 1, 31)
    for i, ax in enumerate(axes):
        for c, name, color in _classes(qf.labels, names):
            ax.hist(qf.outputs[qf.labels == c, i], bins=bins, density=True, alpha=0.5, color=color, label=name)
        ax.set_title(f"⟨{qf.observables[i]}⟩", fontsize=10)
        ax.set_xlim(-1, 1)
        ax.set_xlabel("expectation value")
    axes[0].set_ylabel("density")
    axes[0].legend(fontsize=8)
    fig.suptitle("Quantum layer outputs per class", fontsize=11)
    return fig


def _pca(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.decomposition import PCA

    k = min(2, x.shape[1], len(x))
    pca = PCA(n_components=k).fit(x)
    points = pca.transform(x)
    if k == 1:
        points = np.column_stack([points, np.zeros(len(points))])
    return points, np.pad(pca.explained_variance_ratio_, (0, 2 - k))


def projection_figure(qf: Any, names: list[str], scores: dict) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4), layout="constrained")
    for ax, (key, x) in zip(fig.subplots(1, 2), (("prenet_outputs", qf.angles), ("quantum_outputs", qf.outputs))):
        points, ratio = _pca(x)
        for c, name, color in _classes(qf.labels, names):
            sel = qf.labels == c
            ax.scatter(points[sel, 0], points[sel, 1], s=12, alpha=0.7, color=color, label=name)
        auc = scores[key]["probe_auc"]
        ax.set_title(
            f"{REP_LABELS[key].replace(chr(10), ' ')}: probe AUC {'n/a' if auc is None else f'{auc:.3f}'}", fontsize=10
        )
        ax.set_xlabel(f"PC1 ({ratio[0]:.0%} of variance)")
        ax.set_ylabel(f"PC2 ({ratio[1]:.0%})")
        ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle("2-D projection (PCA), coloured by true class", fontsize=11)
    return fig


def bloch_figure(qf: Any, names: list[str]) -> Any:
    from matplotlib.figure import Figure

    q = qf.bloch.shape[1]
    fig = Figure(figsize=(2.9 * q, 5.6), layout="constrained")
    axes = fig.subplots(2, q, squeeze=False)
    circle = np.linspace(0, 2 * np.pi, 200)
    classes = _classes(qf.labels, names)
    for k in range(q):
        top, bottom = axes[0, k], axes[1, k]
        top.plot(np.cos(circle), np.sin(circle), color="gray", lw=0.8)
        width = 0.8 / max(len(classes), 1)
        for j, (c, name, color) in enumerate(classes):
            b = qf.bloch[qf.labels == c, k]
            top.scatter(b[:, 0], b[:, 2], s=8, alpha=0.45, color=color, label=name)
            mean = b.mean(0)
            top.annotate(
                "", xy=(mean[0], mean[2]), xytext=(0, 0), arrowprops={"arrowstyle": "->", "color": color, "lw": 2}
            )
            bottom.bar(
                np.arange(3) + (j - (len(classes) - 1) / 2) * width,
                mean,
                width,
                yerr=b.std(0),
                color=color,
                alpha=0.8,
                capsize=2,
                label=name,
            )
        length = np.linalg.norm(qf.bloch[:, k], axis=1).mean()
        top.set(xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), aspect="equal", xlabel="⟨X⟩", ylabel="⟨Z⟩")
        top.set_title(f"qubit {k}: mean |r| = {length:.2f}", fontsize=10)
        bottom.set_xticks(range(3), ["⟨X⟩", "⟨Y⟩", "⟨Z⟩"])
        bottom.set_ylim(-1.05, 1.05)
        bottom.axhline(0, color="gray", lw=0.8)
    axes[0, 0].legend(fontsize=7, loc="lower left")
    axes[1, 0].set_ylabel("class mean ± std")
    fig.suptitle("Per-qubit Bloch vectors (reduced states; |r| < 1: entangled with the other qubits)", fontsize=11)
    return fig


def separability_figure(scores: dict) -> Any:
    from matplotlib.figure import Figure

    keys = list(scores)
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    ax_auc, ax_sil = fig.subplots(1, 2)
    labels = [f"{REP_LABELS[k]}\n{scores[k]['dims']} dims" for k in keys]
    for ax, metric, title in (
        (ax_auc, "probe_auc", "linear probe AUC (5-fold CV)"),
        (ax_sil, "silhouette", "silhouette score"),
    ):
        values = [np.nan if scores[k][metric] is None else scores[k][metric] for k in keys]
        bars = ax.bar(range(len(keys)), values, color=["#7f7f7f", "#9467bd", "#17becf", "#bcbd22"][: len(keys)])
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
        ax.set_xticks(range(len(keys)), labels, fontsize=7.5)
        ax.set_title(title, fontsize=10)
        ax.axhline(0.5 if metric == "probe_auc" else 0, color="gray", lw=0.8, ls="--")
    ax_auc.set_ylim(0, 1.05)
    fig.suptitle("Class separability of each representation", fontsize=11)
    return fig
