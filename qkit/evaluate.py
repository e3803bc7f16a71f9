"""Scoring: one split's predictions -> metrics and a predictions file, for training and re-scoring.

``score_split`` is the one place where predictions become reported metrics (the 0.5 cut-off
and the threshold chosen on validation) and a ``predictions-<split>-<engine>.csv``.
``evaluate_run`` rebuilds a saved run's model (optionally with the circuit on another engine)
and scores a split into a new folder ``<run>/evaluations/<time>-<split>-<engine>/``, so a
later evaluation never overwrites an earlier one. It finds the data where the run recorded it
(``env`` overrides that, e.g. on another machine) and refuses data that changed since.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qkit import runs
from qkit.config import EnvConfig, validate
from qkit.epoch import evaluate
from qkit.errors import QkitError
from qkit.fields import SPLITS
from qkit.repro import make_loader, resolve_device


def score_split(
    out_dir: Path,
    split: str,
    engine: str,
    ids: list[str],
    y,
    p,
    loss: float,
    positive_class: int | None,
    val_threshold: float | None,
) -> dict:
    """Write ``predictions-<split>-<engine>.csv`` into ``out_dir`` and return the split's metrics."""
    from qkit.metrics import score  # sklearn: imported where scoring happens, not by a dry run

    runs.write_predictions(out_dir / runs.predictions_name(split, engine), ids, y, p)
    result = score(y, p, positive_class, val_threshold)
    result.update(split=split, engine=engine, loss=loss)
    return result


def load_data(run: runs.Run, env: EnvConfig):
    """The run's data, un-augmented, from where ``env`` says; refused if it changed since training."""
    from qkit.data import DataSpec, build_data, check_source

    cfg = replace(run.config, data=replace(run.config.data, augment=False))
    bundle = build_data(DataSpec.from_config(cfg, env))
    check_source(run.record.source, bundle.source)
    return bundle


def load_model(run: runs.Run, engine: str = "statevector", engine_options: dict | None = None) -> nn.Module:
    """The run's trained model (``model.pt``, loaded with ``weights_only=True``), its circuit on ``engine``."""
    from qkit.network import build_model_from_config

    if not run.model_path.is_file():
        raise QkitError(f"{run.path} has no model.pt (unfinished run?)")
    model = build_model_from_config(run.record.model, engine=engine, engine_options=engine_options or {})
    try:
        model.load_state_dict(torch.load(run.model_path, map_location="cpu", weights_only=True))
    except RuntimeError as exc:
        raise QkitError(f"model.pt does not fit the model in config.json: {str(exc).splitlines()[0]}") from None
    return model.eval()


def evaluate_run(
    run_dir: str | Path,
    split: str = "test",
    engine: Any = None,
    engine_options: dict | None = None,
    env: EnvConfig | None = None,
    batch_size: int = 256,
) -> dict:
    """Rebuild a finished run's model and score ``split``; returns the metrics (with ``path``).

    ``engine``: a name or ``EngineSpec`` to evaluate the circuit with (default: the run's own,
    with its options). ``env``: where to find the data and compute (default: the run's record).
    """
    from qkit.engines import EngineSpec, engine_class

    if split not in SPLITS:
        raise QkitError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    run = runs.load_run(run_dir)
    if not run.model_path.is_file():
        raise QkitError(f"{run.path} has no model.pt (unfinished run?)")
    env = validate(env or run.env)
    model_config = dict(run.record.model)
    if engine is None:
        spec = EngineSpec(model_config.get("engine", "statevector"), model_config.get("engine_options", {}))
    else:
        spec = EngineSpec.parse(engine)
    spec = spec.with_options(engine_options)
    engine_class(spec)  # unknown engine or option: fail before loading data
    bundle = load_data(run, env)
    model = load_model(run, spec.name, spec.to_dict()["options"])
    device = resolve_device(env.device)
    model.to(device)
    dataset = getattr(bundle, split)
    start = time.perf_counter()
    y, p, loss = evaluate(model, make_loader(dataset, batch_size), device, nn.CrossEntropyLoss())
    seconds = time.perf_counter() - start
    threshold = (run.test_metrics or {}).get("val_threshold")
    out_dir = runs.create_unique_dir(run.path / "evaluations", f"{split}-{spec.name}")
    result = score_split(out_dir, split, spec.name, dataset.ids, y, p, loss, bundle.positive_class, threshold)
    result.update(
        engine_spec=spec.to_dict(),
        seconds=round(seconds, 3),
        device=str(device),
        data_dir=env.data_dir,
        path=str(out_dir),
        **_engine_record(model),
    )
    runs.atomic_write_json(out_dir / "metrics.json", runs.redact(result))
    return result


def _engine_record(model: nn.Module) -> dict:
    """What ran where, for engines that run on a backend: its source line, physical qubits, job ids."""
    quantum = getattr(getattr(model, "head", None), "quantum", None)
    engine = getattr(quantum, "engine", None)
    keys = ("backend_source", "physical_qubits", "job_ids")
    return {
        k: list(v) if isinstance(v, (list, tuple)) else v for k in keys if (v := getattr(engine, k, None)) is not None
    }
