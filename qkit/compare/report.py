"""The sweep's report: ``summary.json`` (everything), ``summary.md`` (for people), ``compare.png``.

Everything is read back from the run folders (test metrics, predictions, records), never
from the processes that trained them, so the report of a resumed or half-finished sweep is
the same as that of an uninterrupted one, and ``write_report`` can be re-run at any time.
"""

from __future__ import annotations

from pathlib import Path

from qkit.compare.plan import Sweep
from qkit.compare.stats import mean_std

METRICS = (
    "auc",
    "accuracy",
    "balanced_accuracy",
    "sensitivity",
    "specificity",
    "precision",
    "f1",
    "g_mean",
    "loss",
    "epochs_run",
)


def collect(sweep: Sweep) -> dict[str, dict[int, object]]:
    """``{preset: {seed: Run}}`` of the finished runs."""
    from qkit.runs import load_run

    found: dict[str, dict[int, object]] = {p: {} for p in sweep.presets}
    for job in sweep.jobs():
        if (job.run_dir / "test_metrics.json").is_file():
            found[job.preset][job.seed] = load_run(job.run_dir)
    return found


def summarise(sweep: Sweep) -> dict:
    """The whole comparison as one JSON-ready dict (what summary.json holds)."""
    from qkit.compare.execute import read_sessions, read_timings

    runs = collect(sweep)
    timings = read_timings(sweep.root)
    first = next((r for by_seed in runs.values() for r in by_seed.values()), None)
    dataset = first.config.data.dataset if first else sweep.options.get("dataset", "breastmnist")
    pixels = first.config.data.pixels if first else None
    summary = {
        "name": sweep.name,
        "root": str(sweep.root),
        "seeds": sweep.seeds,
        "dataset": dataset,
        "pixels": pixels,
        "options": sweep.options,
        "threads_per_run": sweep.threads,
        "presets": {},
        "pairs": [],
        "claims": [],
    }
    for preset, by_seed in runs.items():
        summary["presets"][preset] = _preset_summary(preset, by_seed, timings)
    for hybrid, twin in sweep.pairs():
        summary["pairs"].append(_pair(hybrid, twin, runs[hybrid], runs[twin]))
    summary["claims"] = _claims(sweep, summary, dataset)
    summary["total_wall_seconds"] = round(
        sum(s for p in summary["presets"].values() for s in p["wall_seconds"]["values"]), 1
    )
    sessions = read_sessions(sweep.root)
    summary["elapsed_seconds"] = round(sum(s["seconds"] for s in sessions), 1) if sessions else None
    summary["sessions"] = sessions
    return summary


def _preset_summary(preset: str, by_seed: dict, timings: dict) -> dict:
    metrics = {}
    for key in METRICS:
        values = [run.test_metrics.get(key) for run in by_seed.values()]
        if any(v is not None for v in values):
            mean, std = mean_std(values)
            metrics[key] = {"mean": mean, "std": std, "values": values}
    walls = [timings.get(f"{preset}/seed{s}", _epoch_seconds(run)) for s, run in by_seed.items()]
    mean_wall, _ = mean_std(walls)
    return {
        "seeds_finished": sorted(by_seed),
        "metrics": metrics,
        "parameters": _parameters(preset, by_seed),
        "wall_seconds": {"mean": mean_wall, "values": walls},
    }


def _epoch_seconds(run) -> float:
    """Fallback wall time (no timing recorded): the epochs' own seconds."""
    return round(sum(r.get("seconds", 0.0) for r in run.history), 2)


def _parameters(preset: str, by_seed: dict) -> dict:
    """Trainable parameters as the runs recorded them, split quantum / classical on the preset's network."""
    if not by_seed:
        return {}
    run = next(iter(by_seed.values()))
    recorded = dict(run.record.parameters)
    from qkit.presets.factory import parameter_counts

    counts = parameter_counts(preset, max(2, len(run.record.class_names)))
    if counts["trainable"] == recorded.get("trainable"):
        recorded.update(quantum=counts["quantum"], classical=counts["classical"])
    return recorded


def _pair(hybrid: str, twin: str, h_runs: dict, t_runs: dict) -> dict:
    """Paired by seed: Wilcoxon over seeds for every metric, bootstrap of the AUC difference over images."""
    from qkit.compare.stats import wilcoxon_over_seeds

    seeds = sorted(set(h_runs) & set(t_runs))
    out = {"hybrid": hybrid, "twin": twin, "seeds": seeds, "wilcoxon": {}, "bootstrap_auc": None}
    for key in METRICS[:-2]:
        h = [h_runs[s].test_metrics.get(key) for s in seeds]
        t = [t_runs[s].test_metrics.get(key) for s in seeds]
        if all(v is not None for v in h + t):
            out["wilcoxon"][key] = wilcoxon_over_seeds(h, t)
    if seeds:
        out["bootstrap_auc"] = _bootstrap(hybrid, [h_runs[s] for s in seeds], [t_runs[s] for s in seeds])
    return out


def _bootstrap(hybrid: str, h_runs: list, t_runs: list) -> dict | None:
    """Paired image resampling over the runs' test predictions (binary tasks only)."""
    from qkit.compare.stats import paired_auc_difference
    from qkit.errors import QkitError

    positive = h_runs[0].record.positive_class
    if positive is None:
        return {"note": "multi-class task: no bootstrap of the AUC difference"}
    preds = [r.predictions("test") for r in h_runs + t_runs]
    ids = preds[0].ids
    if any(p.ids != ids for p in preds):
        raise QkitError(f"{hybrid}: the runs' test images differ; a paired comparison needs the same split")
    labels = [label == positive for label in preds[0].labels]
    scores = [[row[positive] for row in p.probs] for p in preds]
    n = len(h_runs)
    return paired_auc_difference(labels, scores[:n], scores[n:])


def _claims(sweep: Sweep, summary: dict, dataset: str) -> list[dict]:
    from qkit.compare.claims import CLAIMS, verdict
    from qkit.presets import get_preset

    pairs = {p["hybrid"]: p for p in summary["pairs"]}
    out = []
    for name in sweep.presets:
        preset = get_preset(name)
        if preset.classical:
            continue
        entry = {"preset": name, "source": preset.source, "paper": preset.paper}
        claim = CLAIMS.get(name)
        if claim is None:
            auc = summary["presets"][name]["metrics"].get("auc", {})
            entry.update(claim=None, verdict="reference", detail=_reference(auc, pairs.get(name)))
        elif name not in pairs:
            entry.update(claim=claim.statement, verdict="not tested", detail="no twin in this sweep (--no-twins)")
        else:
            entry.update(claim=claim.statement, **verdict(claim, pairs[name], dataset))
        entry["epochs"] = _epochs_note(preset, sweep.options)
        out.append(entry)
    return out


def _reference(auc: dict, pair: dict | None) -> str:
    text = "no paper claim; measured test AUC " + (f"{auc['mean']:.3f} ± {auc['std']:.3f}" if auc else "n/a")
    if pair and pair["wilcoxon"].get("auc"):
        text += f", hybrid - twin AUC {pair['wilcoxon']['auc']['mean_difference']:+.4f}"
    return text


def _epochs_note(preset, options: dict) -> str:
    recipe = preset.train.get("epochs")
    asked = options.get("epochs")
    if asked is not None and recipe is not None and asked < recipe:
        return f"trained {asked} epoch(s) instead of the recipe's {recipe}"
    return ""


def write_report(sweep: Sweep, figure: bool = True) -> dict:
    """Write summary.json, summary.md and compare.png into the sweep folder; return the summary."""
    from qkit.compare.figure import plot_compare
    from qkit.compare.markdown import render
    from qkit.runs import atomic_write_json, atomic_write_text

    summary = summarise(sweep)
    root = Path(sweep.root)
    if figure and any(p["metrics"] for p in summary["presets"].values()):
        plot_compare(summary, root / "compare.png")
        summary["figure"] = "compare.png"
    atomic_write_json(root / "summary.json", summary)
    atomic_write_text(root / "summary.md", render(summary))
    return summary
