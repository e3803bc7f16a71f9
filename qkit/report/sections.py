"""The core sections of a run report, read from the run folder alone: metrics with intervals,
ROC and confusion matrix, operating points, training curves, configuration and environment.

Figures the run folder already holds (training writes ``roc.png``, ``confusion_matrix.png``,
``training_curves.png``) are used as they are; a missing one is redrawn from the recorded
predictions or history into ``<run>/report-figures/``. Metrics come from
``predictions-test-<engine>.csv`` (the per-image scores), so the intervals describe exactly
the numbers in ``test_metrics.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qkit.errors import QkitError
from qkit.report import stats
from qkit.report.document import Code, Image, Section, Table, Text

METRICS = ("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "precision", "npv", "f1", "g_mean")
FIGURES_DIR = "report-figures"


def fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def test_predictions(run) -> Any | None:
    path = run.predictions_path("test")
    return run.predictions("test") if path.is_file() else None


def summary_section(run) -> Section:
    r, m = run.record, run.record.model
    head = (
        f"quantum head: {m.get('circuit')} circuit, {m.get('n_qubits')} qubits, depth {m.get('depth')}, "
        f"{m.get('engine')} engine"
        if m.get("head") == "quantum"
        else f"{m.get('head')} head"
    )
    data = r.data
    splits = ", ".join(f"{s} {data[s]['n']}" for s in ("train", "val", "test") if isinstance(data.get(s), dict))
    lines = [
        f"{r.config.data.dataset} at {r.config.data.pixels} ({', '.join(r.class_names)}; positive class: "
        f"{r.class_names[r.positive_class] if r.positive_class is not None else 'none'}); images: {splits}.",
        f"Model: {m.get('backbone')} backbone ({'frozen' if m.get('freeze_backbone') else 'trained'}, "
        f"pretrained: {m.get('pretrained')}) → {head}; {r.parameters.get('trainable', '?')} trainable parameters.",
        f"Status: {run.status}; created {r.created} on {r.device_used or '?'}.",
    ]
    return Section("Run", [Text(t) for t in lines], id="run")


def metrics_section(run) -> Section:
    tm, preds = run.test_metrics, test_predictions(run)
    if tm is None:
        return Section("Test metrics", [Text("No test metrics: the run did not finish.")], id="metrics-section")
    pos = tm.get("positive_class")
    blocks = []
    if preds is not None and pos is not None:
        ci = stats.bootstrap(preds.labels, preds.probs, pos)
        at_val = tm.get("at_val_threshold") or {}
        ci_val = stats.bootstrap(preds.labels, preds.probs, pos, tm["val_threshold"]) if at_val else {}
        headers = ["metric", "threshold 0.50", "95% CI"]
        if at_val:
            headers += [f"val threshold {tm['val_threshold']:.3f}", "95% CI"]
        rows = []
        for k in METRICS:
            row = [k, fmt(ci[k]["value"]), _interval(ci[k])]
            if at_val:
                row += [fmt(ci_val[k]["value"]), _interval(ci_val[k])]
            rows.append(row)
        caption = (
            f"Test split, {len(preds)} images ({sum(1 for y in preds.labels if y == pos)} positive). "
            f"95% intervals: percentile bootstrap over test images ({stats.RESAMPLES} resamples, seed 0)."
        )
        blocks.append(Table(headers, rows, caption, id="metrics"))
    else:
        rows = [[k, fmt(tm.get(k))] for k in METRICS if k in tm]
        blocks.append(
            Table(["metric", "value"], rows, "Test split (no per-image predictions: no intervals).", id="metrics")
        )
    if "loss" in tm:
        blocks.append(
            Text(
                f"Test loss {tm['loss']:.4f}; weights: {tm.get('weights', '?')} (epoch "
                f"{tm.get('best_epoch', '?')} of {tm.get('epochs_run', '?')}, monitored "
                f"{tm.get('monitor', '?')})."
            )
        )
    return Section("Test metrics", blocks, id="metrics-section")


def _interval(c: dict) -> str:
    return "-" if c["low"] is None else f"{c['low']:.3f} – {c['high']:.3f}"


def figure(run, name: str, draw) -> Path | None:
    """``<run>/<name>`` if training wrote it, else redrawn by ``draw(path)`` into report-figures/."""
    path = run.path / name
    if path.is_file():
        return path
    try:
        return draw(run.path / FIGURES_DIR / name)
    except (QkitError, AttributeError, KeyError, TypeError):  # nothing to draw from: the report says so
        return None


def roc_section(run) -> Section:
    from qkit import plots

    preds, tm = test_predictions(run), run.test_metrics or {}
    names = run.record.class_names
    roc = figure(
        run, "roc.png", lambda p: plots.plot_roc(preds.labels, preds.probs, tm.get("positive_class"), p, names or None)
    )
    cm = figure(run, "confusion_matrix.png", lambda p: plots.plot_confusion_matrix(tm["confusion_matrix"], names, p))
    blocks = [
        Image(p, c, half=True)
        for p, c in ((roc, "ROC curve (test)"), (cm, "Confusion matrix (test, threshold 0.5)"))
        if p is not None
    ]
    return Section("ROC and confusion matrix", blocks or [Text("No test predictions recorded.")], id="roc")


def threshold_section(run) -> Section | None:
    preds, tm = test_predictions(run), run.test_metrics or {}
    pos = tm.get("positive_class")
    if preds is None or pos is None:
        return None
    rows = stats.threshold_table(preds.labels, preds.probs, pos, {"default": 0.5, "val": tm.get("val_threshold")})
    keys = ("sensitivity", "specificity", "precision", "npv", "balanced_accuracy", "accuracy")
    table = Table(
        ["threshold", *keys, "TP", "FP", "TN", "FN"],
        [
            [
                f"{r['threshold']:.3f}" + (f" ({r['name']})" if r["name"] else ""),
                *(fmt(r[k], 3) for k in keys),
                *(str(int(r[k])) for k in ("tp", "fp", "tn", "fn")),
            ]
            for r in rows
        ],
        f"Operating points on the test split: positive ({run.record.class_names[pos]}) when "
        f"p({run.record.class_names[pos]}) ≥ threshold; 'val' is the threshold chosen on validation "
        "(G-mean).",
        id="thresholds",
    )
    return Section("Thresholds", [table], id="thresholds-section")


def training_section(run) -> Section:
    from qkit import plots

    curves = figure(run, "training_curves.png", lambda p: plots.plot_training_curves(run.history, p))
    blocks = (
        [Image(curves, f"Training curves ({len(run.history)} epochs)")]
        if curves
        else [Text("No training history recorded.")]
    )
    return Section("Training", blocks, id="training")


def config_section(run) -> Section:
    rows = []
    for group, values in run.record.config.to_dict().items():
        for key, value in values.items():
            rows.append([f"{group}.{key}", json.dumps(value) if not isinstance(value, str) else value])
    model = run.record.model
    blocks = [
        Table(["option", "value"], rows, "config.json: the options that decide the result", id="config"),
        Code(json.dumps({"model": model, "parameters": run.record.parameters}, indent=2)),
    ]
    return Section("Configuration", blocks, id="configuration")


def environment_section(run) -> Section:
    from qkit.runs import read_json

    path = run.path / "env.json"
    if not path.is_file():
        return Section("Environment", [Text("No env.json recorded.")], id="environment")
    env = read_json(path)
    rows = [
        [k, str(env[k])]
        for k in ("python", "platform", "device", "cpu_count", "cpu_capability", "torch_threads", "cuda_device", "qkit")
        if k in env
    ]
    rows += [[f"package {name}", str(version)] for name, version in (env.get("packages") or {}).items()]
    git = env.get("git") or {}
    if git:
        rows.append(["git commit", f"{git.get('commit')}{' (dirty)' if git.get('dirty') else ''}"])
    return Section(
        "Environment", [Table(["item", "value"], rows, "env.json", id="environment-table")], id="environment"
    )
