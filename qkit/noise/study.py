"""``qkit noise study``: how much each part of a device's noise costs a trained model, measured.

The run's classical part runs once (circuit inputs of the split, exact outputs), then every
point of the study is the ``density`` engine on those inputs, with the trained weights, under
one noise setting: the calibrated noise scaled (``--vary scale``), one source alone at its
calibrated level (``source``: gate, readout, relaxation; plus none and all), another shot
count (``shots``), another backend (``backend``) or layout (``layout``: best, default and
worst by the calibrated estimate). With shots, each point is repeated ``--repeat`` times with
fresh shots (seed advanced per repetition).

``runs/<run>/noise/<study>/``: ``study.json`` (the settings), ``points.jsonl`` (one line per
point and repetition: the full noise settings and every metric, written as each finishes, so
an interrupted study resumes and skips finished points), ``summary.json`` (mean ± std per
point), ``study.png`` (metrics against the varied quantity with error bars) and ``report.md``
(which setting costs the most, in words).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from qkit.errors import QkitError

VARY = ("scale", "source", "shots", "backend", "layout")
DEFAULT_VALUES = {
    "scale": "0,0.25,0.5,1,2,4,8",
    "source": "none,gate,readout,relaxation,all",
    "shots": "64,256,1024,4096",
    "backend": "fake_lagos,fake_quito,fake_manila,fake_belem",
    "layout": "best,default,worst",
}
SOURCES = ("none", "gate", "readout", "relaxation", "all")
MITIGATIONS = ("none", "readout")
LAYOUTS = ("best", "default", "worst")


@dataclass
class StudyConfig:
    """Everything that decides a study's numbers (the folder refuses another config)."""

    vary: str
    values: list
    backend: str = "fake_lagos"
    layout: str = "calibrated"
    shots: int | None = None
    repeat: int = 1
    split: str = "test"
    seed: int = 0
    mitigation: list = field(default_factory=lambda: ["none"])
    engine: str = "density"

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Point:
    """One noise setting: its label on the varied axis and the density engine's options."""

    label: Any
    options: dict = field(default_factory=dict)


def parse_values(vary: str, text: str | None) -> list:
    """``--values`` for ``--vary``; one line naming the bad item otherwise."""
    if vary not in VARY:
        raise QkitError(f"--vary must be one of {', '.join(VARY)}, got {vary!r}")
    items = [t.strip() for t in (text or DEFAULT_VALUES[vary]).split(",") if t.strip()]
    if not items:
        raise QkitError("--values is empty")
    out = []
    for item in items:
        try:
            if vary == "scale":
                value = float(item)
                if not np.isfinite(value) or value < 0:
                    raise ValueError
            elif vary == "shots":
                value = int(item)
                if value < 1:
                    raise ValueError
            else:
                value = item
                if (vary == "source" and item not in SOURCES) or (vary == "layout" and item not in LAYOUTS):
                    raise ValueError
        except ValueError:
            expected = {
                "scale": "numbers >= 0",
                "shots": "integers >= 1",
                "source": ", ".join(SOURCES),
                "layout": ", ".join(LAYOUTS),
            }.get(vary, "names")
            raise QkitError(f"--values for --vary {vary} must be {expected}; cannot read {item!r}") from None
        out.append(value)
    return out


def parse_mitigation(text: str | None) -> list[str]:
    """``--mitigation none,readout``: each point scored both ways from the same shots."""
    items = [t.strip() for t in (text or "none").split(",") if t.strip()]
    bad = [t for t in items if t not in MITIGATIONS]
    if bad or not items or len(set(items)) != len(items):
        raise QkitError(f"--mitigation must list {', '.join(MITIGATIONS)} (each once), got {text!r}")
    return items


def check_config(config: StudyConfig) -> None:
    if config.shots is not None and config.shots < 1:
        raise QkitError(f"--shots must be >= 1, got {config.shots}")
    if config.repeat < 1:
        raise QkitError(f"--repeat must be >= 1, got {config.repeat}")
    if config.repeat > 1 and config.shots is None and config.vary != "shots":
        raise QkitError("--repeat needs --shots: exact noisy values are the same every time")
    if "readout" in config.mitigation and config.shots is None and config.vary != "shots":
        raise QkitError("--mitigation readout corrects shot counts: give --shots")
    if config.layout != "calibrated":
        from qkit.hardware.prepare import parse_layout

        parse_layout(config.layout)
    if config.engine not in ("density", "runtime"):
        raise QkitError(f"--engine must be density or runtime, got {config.engine!r}")
    if config.engine == "runtime":
        from qkit.noise.runtime import check_runtime

        check_runtime(config)


def points(config: StudyConfig, layouts: dict) -> list[Point]:
    """The density engine's options at every point (``layouts``: best/default/worst physical qubits)."""
    base = {
        "backend": config.backend,
        "layout": layouts["best"] if config.layout == "calibrated" else config.layout,
        "shots": config.shots,
    }
    out = []
    for value in config.values:
        options = dict(base)
        if config.vary == "scale":
            options["scale"] = value
        elif config.vary == "source":
            options.update(scale=0.0 if value != "all" else 1.0)
            if value in ("gate", "readout", "relaxation"):
                options[f"{value}_scale"] = 1.0
        elif config.vary == "shots":
            options["shots"] = value
        elif config.vary == "backend":
            options.update(backend=value, layout="calibrated" if config.layout == "calibrated" else config.layout)
        else:
            options["layout"] = layouts[value]
        out.append(Point(value, options))
    return out


def _layouts(program: Any, config: StudyConfig, rows: np.ndarray) -> dict:
    """Best, default and worst layouts by the calibrated estimate on the run's own inputs
    (``rows``: circuit parameter rows, inputs then weights), as ``run-hardware`` chooses them.

    The worst needs every candidate scored (``--vary layout``: all VF2 mappings, up to 1000 on
    a large device); otherwise only the best few are transpiled."""
    from qkit.hardware.backends import resolve_backend
    from qkit.hardware.layout import choose_layout
    from qkit.hardware.prepare import layout_sample

    if config.vary == "backend":
        return {"best": "calibrated"}
    if config.vary != "layout" and config.layout != "calibrated":
        return {}
    resolved = resolve_backend(config.backend)
    choice = choose_layout(
        program,
        None,
        resolved.backend,
        snapshot=resolved.calibration(),
        top=10_000 if config.vary == "layout" else 5,
        values=layout_sample(program, rows),
    )
    return {"best": choice.chosen.layout, "default": choice.default.layout, "worst": choice.candidates[-1].layout}


def _done(path: Path) -> set:
    if not path.is_file():
        return set()
    keys = set()
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            keys.add((json.dumps(record["point"]), record["repetition"], record.get("mitigation", "none")))
    return keys


def run_study(
    run_dir: str | Path,
    config: StudyConfig,
    name: str | None = None,
    env: Any = None,
    on_progress: Callable[[int, int, str], None] | None = None,
) -> dict:
    """Run (or continue) a study; returns the summary. ``on_progress(done, total, label)``."""
    import torch

    from qkit import runs
    from qkit.config import validate
    from qkit.engines.density import DensityEngine
    from qkit.evaluate import load_data, load_model
    from qkit.hardware.prepare import forward_split
    from qkit.hardware.results import score_repetitions
    from qkit.metrics import score
    from qkit.noise.report import write_report

    check_config(config)
    run = runs.load_run(run_dir)
    if not run.model_path.is_file():
        raise QkitError(f"{run.path} has no model.pt (unfinished run?)")
    if dict(run.record.model).get("head") != "quantum":
        raise QkitError(f"{run.path} has no quantum head: there is no circuit to put noise on")
    out = run.path / "noise" / (name or f"{config.vary}-{config.backend}")
    saved = out / "study.json"
    if saved.is_file() and runs.read_json(saved) != config.to_dict():
        raise QkitError(f"{out} holds a study with other settings; choose another --name")
    model = load_model(run)
    program = model.head.quantum.program
    bundle = load_data(run, validate(env or run.env))
    angles, exact_values, exact_probs, labels = forward_split(model, getattr(bundle, config.split))
    threshold = (run.test_metrics or {}).get("val_threshold")
    exact = score(labels, exact_probs, bundle.positive_class, threshold)  # the exact model on this split
    weights = model.head.quantum.weight.detach().double()
    rows = np.concatenate([angles, np.repeat(weights.numpy()[None], len(angles), axis=0)], axis=1)
    todo = points(config, _layouts(program, config, rows))
    lines, done = out / "points.jsonl", _done(out / "points.jsonl")

    def write(record: dict) -> None:  # one line per point, repetition and mitigation
        with open(lines, "a") as f:
            f.write(json.dumps(runs.redact(record)) + "\n")

    if config.engine == "runtime":
        from qkit.noise.runtime import run_points

        runs.atomic_write_json(saved, config.to_dict())
        run_points(run.path, config, todo, env, done, write, on_progress)
        return write_report(out, config, exact)
    engines = [DensityEngine(program, torch.float64, seed=config.seed, **p.options) for p in todo]
    runs.atomic_write_json(saved, config.to_dict())
    repeat = config.repeat if any(e.shots for e in engines) else 1
    total, count = len(todo) * repeat, 0
    for point, engine in zip(todo, engines):
        for r in range(repeat):
            count += 1
            missing = [m for m in config.mitigation if (json.dumps(point.label), r, m) not in done]
            if not missing:
                continue
            if engine.seed is not None:
                engine.reseed(config.seed + r)
            for mitigation, values in _evaluate(engine, torch.as_tensor(angles), weights, missing):
                record = {
                    "point": point.label,
                    "repetition": r,
                    "mitigation": mitigation,
                    "vary": config.vary,
                    "settings": _settings(engine),
                    "metrics": {},
                }
                if values is None:
                    record["note"] = "readout cannot be mitigated: P(0|1) + P(1|0) >= 1 on a read qubit"
                else:
                    scored, _ = score_repetitions(
                        values[None],
                        model.head.post,
                        labels,
                        exact_values,
                        exact_probs,
                        bundle.positive_class,
                        threshold,
                    )
                    record["metrics"] = scored["repetitions"][0]
                write(record)
            if on_progress:
                on_progress(count, total, str(point.label))
    return write_report(out, config, exact)


def _evaluate(engine: Any, x: Any, w: Any, mitigations: list[str]) -> list[tuple[str, np.ndarray]]:
    """The engine's values, raw and/or readout-mitigated from the same shots."""
    import torch

    from qkit.noise.shots import mitigated_values, sample_counts, values_from_counts

    with torch.no_grad():
        if engine.shots is None:
            return [("none", engine.execute(x, w).numpy())]
        frequencies = sample_counts(engine, engine.noisy_state(x, w))
        out = []
        for m in mitigations:
            if m == "readout" and any(p01 + p10 >= 1 for p01, p10 in engine.noise.readout.values()):
                out.append((m, None))  # a coin-flip readout: nothing left to correct
                continue
            values = values_from_counts(engine, frequencies) if m == "none" else mitigated_values(engine, frequencies)
            out.append((m, values.expand(len(x), -1).numpy()))
        return out


def _settings(engine: Any) -> dict:
    return {
        "backend": engine.backend_name,
        "source": engine.backend_source,
        "calibration_date": engine.calibration_date,
        "physical_qubits": engine.physical_qubits,
        "scales": engine.scales.to_dict(),
        "shots": engine.shots,
        "seed": engine.seed,
    }
