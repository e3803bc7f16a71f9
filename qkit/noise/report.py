"""A noise study's summary, figure and report, rebuilt from its ``points.jsonl`` alone."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

SHOWN = ("auc", "accuracy", "sensitivity", "specificity", "delta", "agreement")
NAMES = {
    "auc": "AUC",
    "accuracy": "accuracy",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "delta": "mean |Δ⟨O⟩| vs exact",
    "agreement": "agreement with exact",
}


def summarise(lines: list[dict], order: list, mitigations: list[str]) -> list[dict]:
    """Mean ± std of every shown metric per point and mitigation, in the study's order."""
    from qkit.hardware.results import mean_std

    groups: dict[tuple, list[dict]] = {}
    for line in lines:
        groups.setdefault((json.dumps(line["point"]), line.get("mitigation", "none")), []).append(line)
    rows = []
    for label in order:
        for mitigation in mitigations:
            group = groups.get((json.dumps(label), mitigation), [])
            if group:
                per_output = [g["metrics"]["delta_per_output"] for g in group if g["metrics"].get("delta_per_output")]
                rows.append(
                    {
                        "point": label,
                        "mitigation": mitigation,
                        "repetitions": len(group),
                        "settings": group[0]["settings"],
                        "metrics": {k: mean_std([g["metrics"].get(k) for g in group]) for k in SHOWN},
                        "delta_per_output": np.mean(per_output, axis=0).tolist() if per_output else None,
                    }
                )
    return rows


def _sentence(config: Any, all_rows: list[dict], exact: dict) -> str:
    """Which point costs the most (lowest AUC; largest |Δ⟨O⟩| breaks ties), in words."""
    rows = [r for r in all_rows if r["mitigation"] == "none"] or all_rows
    scored = [r for r in rows if r["metrics"]["auc"]["mean"] is not None]
    if not scored:
        return "No point could be scored (AUC undefined)."
    worst = min(scored, key=lambda r: (r["metrics"]["auc"]["mean"], -r["metrics"]["delta"]["mean"]))
    far = max(rows, key=lambda r: r["metrics"]["delta"]["mean"])
    base = f" (exact model: AUC {exact['auc']:.4f})" if exact.get("auc") is not None else ""
    what = {
        "scale": "noise scale",
        "source": "noise source",
        "shots": "shot count",
        "backend": "backend",
        "layout": "layout",
    }[config.vary]
    if exact.get("auc") is not None and worst["metrics"]["auc"]["mean"] >= exact["auc"]:
        # Noise can leave AUC as it is or even raise it: "costs the most" would then be false.
        lead = (
            f"None of the {what}s studied on {config.backend} lowers AUC below the exact model's "
            f"({exact['auc']:.4f}); the lowest is {worst['point']}: {worst['metrics']['auc']['mean']:.4f}; "
        )
    else:
        lead = (
            f"Of the {what}s studied on {config.backend}, {worst['point']} costs the most AUC: "
            f"{worst['metrics']['auc']['mean']:.4f}{base}; "
        )
    text = (
        f"{lead}{far['point']} moves the layer's outputs furthest "
        f"from exact (mean |Δ⟨O⟩| {far['metrics']['delta']['mean']:.4f})."
    )
    if config.vary == "source":
        ranked = sorted(
            (r for r in rows if r["point"] in ("gate", "readout", "relaxation")),
            key=lambda r: -r["metrics"]["delta"]["mean"],
        )
        if ranked:
            text += (
                " Alone at its calibrated level, by |Δ⟨O⟩|: "
                + ", ".join(f"{r['point']} {r['metrics']['delta']['mean']:.4f}" for r in ranked)
                + "."
            )
    mitigated = {
        json.dumps(r["point"]): r
        for r in all_rows
        if r["mitigation"] == "readout" and r["metrics"]["delta"]["mean"] is not None
    }
    pairs = [(r, mitigated[json.dumps(r["point"])]) for r in rows if json.dumps(r["point"]) in mitigated]
    if pairs:
        raw, fixed = max(pairs, key=lambda pair: pair[0]["metrics"]["delta"]["mean"])
        text += (
            f" Readout mitigation (mthree, same shots) at {raw['point']}: |Δ⟨O⟩| "
            f"{raw['metrics']['delta']['mean']:.4f} -> {fixed['metrics']['delta']['mean']:.4f}, AUC "
            f"{raw['metrics']['auc']['mean']:.4f} -> {fixed['metrics']['auc']['mean']:.4f}."
        )
    return text


def _markdown(config: Any, rows: list[dict], sentence: str) -> str:
    head = f"# Noise study: {config.vary} on {config.backend}\n\n"
    shots = f"{config.shots} shots" if config.shots else "exact noisy values (no shots)"
    head += (
        f"Split {config.split}, {shots}, {config.repeat} repetition(s) per point; layout {config.layout}. "
        "Mean ± std over repetitions.\n\n"
    )
    table = "| " + config.vary + " | mitigation | " + " | ".join(NAMES[k].replace("|", "\\|") for k in SHOWN) + " |\n"
    table += "|---" * (len(SHOWN) + 2) + "|\n"
    for r in rows:
        cells = [
            f"{r['metrics'][k]['mean']:.4f} ± {r['metrics'][k]['std']:.4f}"
            if r["metrics"][k]["mean"] is not None
            else "-"
            for k in SHOWN
        ]
        table += f"| {r['point']} | {r['mitigation']} | " + " | ".join(cells) + " |\n"
    return head + table + "\n" + sentence + "\n"


def plot(config: Any, rows: list[dict], exact: dict, path: Path) -> Path:
    """AUC, |Δ⟨O⟩| and agreement against the varied quantity, with std error bars."""
    from matplotlib.figure import Figure

    from qkit.runs import atomic_write

    per_qubit = config.vary == "source" and any(r.get("delta_per_output") for r in rows)
    figure = Figure(figsize=(16 if per_qubit else 12, 3.6))
    # shots on a log2 axis; other points (scales 0..8, names) evenly spaced with their labels
    numeric = config.vary == "shots"
    labels = list(dict.fromkeys(json.dumps(r["point"]) for r in rows))
    for i, key in enumerate(("auc", "delta", "agreement")):
        ax = figure.add_subplot(1, 4 if per_qubit else 3, i + 1)
        for mitigation in dict.fromkeys(r["mitigation"] for r in rows):
            part = [r for r in rows if r["mitigation"] == mitigation]
            xs = [r["point"] if numeric else labels.index(json.dumps(r["point"])) for r in part]
            means = [np.nan if r["metrics"][key]["mean"] is None else r["metrics"][key]["mean"] for r in part]
            stds = [r["metrics"][key]["std"] or 0.0 for r in part]
            ax.errorbar(
                xs,
                means,
                yerr=stds,
                marker="o",
                capsize=3,
                label="raw" if mitigation == "none" else f"{mitigation} mitigated",
            )
        if key == "auc" and exact.get("auc") is not None:
            ax.axhline(exact["auc"], ls="--", color="grey", lw=1, label="exact")
        if key == "auc":
            ax.legend(fontsize=8)
        if numeric:
            ax.set_xscale("log", base=2)
        else:
            ax.set_xticks(
                range(len(labels)),
                [json.loads(v) if isinstance(json.loads(v), str) else str(json.loads(v)) for v in labels],
                rotation=20 if config.vary != "scale" else 0,
            )
        ax.set_xlabel(config.vary)
        ax.set_title(NAMES[key], fontsize=9)
    if per_qubit:
        _per_qubit_panel(figure.add_subplot(1, 4, 4), rows)
    figure.suptitle(f"noise study on {config.backend}: {config.vary}", fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return atomic_write(path, lambda f: f.write(buffer.getvalue()))


def _per_qubit_panel(ax: Any, rows: list[dict]) -> None:
    """Each source alone: mean |Δ⟨O_k⟩| of every output, labelled with the physical qubit it reads."""
    sources = [
        r
        for r in rows
        if r["point"] in ("gate", "readout", "relaxation") and r["mitigation"] == "none" and r.get("delta_per_output")
    ]
    if not sources:
        return
    n = len(sources[0]["delta_per_output"])
    qubits = sources[0]["settings"].get("physical_qubits") or []
    width = 0.8 / len(sources)
    for j, r in enumerate(sources):
        ax.bar(np.arange(n) + (j - (len(sources) - 1) / 2) * width, r["delta_per_output"], width, label=r["point"])
    ax.set_xticks(range(n), [f"⟨O{k}⟩ q{qubits[k]}" if len(qubits) == n else f"⟨O{k}⟩" for k in range(n)], fontsize=8)
    ax.set_title("per output: each source alone", fontsize=9)
    ax.set_ylabel("mean |Δ⟨O⟩|")
    ax.legend(fontsize=8)


def write_report(out: Path, config: Any, exact: dict) -> dict:
    """summary.json, study.png and report.md from ``points.jsonl``; returns the summary."""
    from qkit.runs import atomic_write_json, atomic_write_text

    lines = [json.loads(line) for line in (out / "points.jsonl").read_text().splitlines() if line.strip()]
    rows = summarise(lines, config.values, config.mitigation)
    sentence = _sentence(config, rows, exact)
    summary = {
        "study": config.to_dict(),
        "exact": {k: exact.get(k) for k in SHOWN if k in exact},
        "points": rows,
        "finding": sentence,
        "path": str(out),
    }
    atomic_write_json(out / "summary.json", summary)
    plot(config, rows, exact, out / "study.png")
    atomic_write_text(out / "report.md", _markdown(config, rows, sentence))
    return summary
