"""``summary.md``: the sweep's summary for people, rendered from the summary dict alone."""

from __future__ import annotations

TABLE = (
    ("auc", "AUC"),
    ("accuracy", "accuracy"),
    ("balanced_accuracy", "bal. acc."),
    ("sensitivity", "sens."),
    ("specificity", "spec."),
    ("f1", "F1"),
    ("g_mean", "G-mean"),
    ("loss", "loss"),
)


def fmt(stat: dict | None, digits: int = 3) -> str:
    if not stat or stat.get("mean") is None:
        return "n/a"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def params(p: dict) -> str:
    if "quantum" in p:
        return f"{p['quantum']:,} / {p['classical']:,}"
    return f"{p['trainable']:,} (total)" if p.get("trainable") is not None else "n/a"


def data_label(summary: dict) -> str:
    """What the sweep ran on, e.g. "breastmnist at 64 px" (the markdown's and the figure's words)."""
    return f"{summary['dataset']} at {summary['pixels']}" if summary.get("pixels") else summary["dataset"]


def render(summary: dict) -> str:
    lines = [
        f"# qkit compare: {summary['name']}",
        "",
        f"{summary['seeds']} seed(s) (0..{summary['seeds'] - 1}) on {data_label(summary)}, "
        "same splits for every "
        f"run; options {summary['options'] or 'none beyond the presets'}; {_times(summary)}.",
        "",
        *metrics_table(summary),
        "",
        *pairs_section(summary),
        "",
        *claims_section(summary),
    ]
    if summary.get("figure"):
        lines += ["", f"![per-seed test metrics]({summary['figure']})"]
    return "\n".join(lines) + "\n"


def metrics_table(summary: dict) -> list[str]:
    head = ["preset", "seeds", *(label for _, label in TABLE), "trainable quantum / classical", "wall s / run"]
    lines = [
        "## Test metrics (mean ± std over seeds, threshold 0.5)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name, p in summary["presets"].items():
        wall = p["wall_seconds"]["mean"]
        cells = [
            f"`{name}`",
            str(len(p["seeds_finished"])),
            *(fmt(p["metrics"].get(k)) for k, _ in TABLE),
            params(p["parameters"]) if p["parameters"] else "n/a",
            f"{wall:.0f}" if wall is not None else "n/a",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def pairs_section(summary: dict) -> list[str]:
    lines = ["## Hybrid vs classical twin (paired by seed)", ""]
    if not summary["pairs"]:
        return lines + ["No hybrid with its twin in this sweep."]
    lines += [
        "| hybrid | twin | AUC diff (mean over seeds) | wins / losses | Wilcoxon p | "
        "AUC diff 95% CI (bootstrap over test images) |",
        "|---|---|---|---|---|---|",
    ]
    notes = set()
    for pair in summary["pairs"]:
        w = pair["wilcoxon"].get("auc")
        if not w:
            lines.append(f"| `{pair['hybrid']}` | `{pair['twin']}` | n/a | | | |")
            continue
        boot = pair["bootstrap_auc"] or {}
        ci = (
            f"{boot['difference']:+.4f} [{boot['low']:+.4f}, {boot['high']:+.4f}]"
            if boot.get("low") is not None
            else boot.get("note", "n/a")
        )
        p = f"{w['p']:.3g}" if w["p"] is not None else "undefined"
        lines.append(
            f"| `{pair['hybrid']}` | `{pair['twin']}` | {w['mean_difference']:+.4f} | "
            f"{w['wins']} / {w['losses']} | {p} | {ci} |"
        )
        if w["note"]:
            notes.add(w["note"])
    return lines + [""] + [f"- {note}" for note in sorted(notes)]


def claims_section(summary: dict) -> list[str]:
    lines = ["## Did the papers' claims hold here?", ""]
    for c in summary["claims"]:
        lines.append(f"- **`{c['preset']}`** ({c['source']}); paper: {c['paper']}.")
        if c["claim"]:
            lines.append(f"  Claim: {c['claim']}. **Here: {c['verdict']}**: {c['detail']}.")
        else:
            lines.append(f"  {c['detail']}.")
        if c["epochs"]:
            lines.append(f"  Note: {c['epochs']}, so this is not the paper's schedule.")
    return lines


def _times(summary: dict) -> str:
    runs = f"the runs' wall times sum to {summary['total_wall_seconds']:.0f} s"
    if not summary.get("elapsed_seconds"):
        return runs
    sessions = summary.get("sessions") or []
    executors = ", ".join(sorted({s["executor"] for s in sessions}))
    return (
        f"the sweep took {summary['elapsed_seconds']:.0f} s from start to end "
        f"({len(sessions)} session(s), {executors}); {runs}"
    )
