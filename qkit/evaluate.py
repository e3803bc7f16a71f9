"""Evaluation of a saved run: rebuild its model from ``config.json`` + ``model.pt`` and score a split.

Separate from ``qkit.train`` because it starts from a finished run folder, not a config, and
because other ways of scoring a trained model (another simulator engine today; IBM hardware
and noisy simulation later) belong together here.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from qkit import runs
from qkit.config import TrainConfig
from qkit.errors import QkitError
from qkit.repro import make_loader, resolve_device
from qkit.epoch import evaluate


def evaluate_run(run_dir: str | Path, split: str = "test", engine: str | None = None,
                 batch_size: int = 256) -> dict:
    """Rebuild a finished run's model (optionally on another quantum engine) and score a split.

    Writes ``<run>/eval_<split>_<engine>.json`` and returns the same dict.
    """
    from qkit.data import build_data
    from qkit.metrics import classification_metrics
    from qkit.models import build_model_from_config

    run_dir = Path(run_dir)
    if split not in ("train", "val", "test"):
        raise QkitError(f"split must be train, val or test, got {split!r}")
    if not (run_dir / "model.pt").is_file():
        raise QkitError(f"{run_dir} has no model.pt (unfinished or not a qkit run folder)")
    saved = runs.read_json(run_dir / "config.json")
    cfg = replace(TrainConfig.from_dict(saved["config"]), augment=False)
    engine = engine or cfg.engine
    device = resolve_device(cfg.device)
    bundle = build_data(cfg.data_spec())
    model = build_model_from_config(saved["model"], engine=engine)
    try:
        model.load_state_dict(torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True))
    except RuntimeError as exc:
        raise QkitError(f"model.pt does not fit the model in config.json: {str(exc).splitlines()[0]}") from None
    model.to(device)
    start = time.perf_counter()
    y, p, loss = evaluate(model, make_loader(getattr(bundle, split), batch_size), device, nn.CrossEntropyLoss())
    result = classification_metrics(y, p, bundle.positive_class)
    result.update(split=split, engine=engine, loss=loss, seconds=round(time.perf_counter() - start, 3))
    test_metrics = run_dir / "test_metrics.json"
    if bundle.positive_class is not None and test_metrics.is_file():
        threshold = runs.read_json(test_metrics).get("val_threshold")
        if threshold is not None:
            result.update(val_threshold=threshold, at_val_threshold=classification_metrics(
                y, p, bundle.positive_class, threshold=threshold))
    runs.atomic_write_json(run_dir / f"eval_{split}_{engine}.json", result)
    return result
