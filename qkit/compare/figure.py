"""``compare.png``: per-seed test metrics of every preset as box plots, hybrids beside their twins.

Box plots with every seed drawn as a point: with 2-5 seeds the points are the data and the
box only a guide. Built with matplotlib's object API (no pyplot: no global figure registry,
no backend change), written atomically like every run file.
"""

from __future__ import annotations

from pathlib import Path

from qkit.compare.markdown import data_label

PANELS = (("auc", "test AUC"), ("accuracy", "test accuracy"), ("g_mean", "test G-mean"))


def plot_compare(summary: dict, path: str | Path) -> Path:
    """One panel per metric in ``PANELS`` that the summary has; presets along the x axis."""
    from matplotlib.figure import Figure

    presets = summary["presets"]
    names = list(presets)
    panels = [(k, label) for k, label in PANELS if any(presets[p]["metrics"].get(k, {}).get("values") for p in names)]
    fig = Figure(figsize=(max(4.0, 1.1 * len(names) + 1.5) * len(panels), 4.2))
    for i, (key, label) in enumerate(panels or [("auc", "test AUC")]):
        ax = fig.add_subplot(1, max(1, len(panels)), i + 1)
        data = [[v for v in presets[p]["metrics"].get(key, {}).get("values", []) if v is not None] for p in names]
        ax.boxplot([d or [float("nan")] for d in data], widths=0.5, showfliers=False)
        for x, values in enumerate(data, start=1):
            colour = "tab:grey" if names[x - 1].endswith("-classical") else "tab:blue"
            ax.scatter([x] * len(values), values, s=18, color=colour, zorder=3)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(
        f"{summary['name']}: {summary['seeds']} seed(s) on {data_label(summary)} (blue: hybrid, grey: classical twin)",
        fontsize=10,
    )
    fig.tight_layout()
    from qkit.runs import atomic_write

    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120, bbox_inches="tight"))
