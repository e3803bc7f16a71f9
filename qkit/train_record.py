"""A training run's record: written when the run starts, read back when it resumes.

``record_run`` writes a new run folder's ``config.json`` (the ``RunRecord``: config, the
environment with the data folder as resolved now, data, model, training budget, parameter
counts, versions), ``env.json`` and, for an engine that describes itself (the density
engine), ``engine.json``. ``load_for_resume`` reads the record back and refuses options that
differ from it. ``qkit.train`` calls both; the training loop is there.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qkit import runs
from qkit.config import EnvConfig, TrainConfig
from qkit.errors import QkitError
from qkit.optim import training_budget
from qkit.resolve import resolve_config
from qkit.version import __version__


def record_run(
    run_dir: Path, cfg: TrainConfig, env: EnvConfig, bundle: Any, model: nn.Module, device: torch.device
) -> None:
    """A new run's record: config.json (the ``RunRecord``), env.json (the machine's environment)
    and engine.json when the engine describes itself."""
    from qkit.data import describe, resolve_data_dir
    from qkit.models import count_parameters

    trainable, total = count_parameters(model)
    environment = runs.environment_info(str(device))
    # The data folder as resolved now (flag, $QKIT_DATA_DIR or default), so that commands that
    # read the run later find the data where training found it, whatever their environment.
    recorded_env = replace(env, data_dir=str(resolve_data_dir(env.data_dir).resolve()))
    record = runs.RunRecord(
        name=run_dir.name,
        config=cfg,
        env=recorded_env,
        data={"source": bundle.source, **describe(bundle)},
        model=dict(model.config),
        budget=training_budget(cfg.optim, len(bundle.train)),
        parameters={"trainable": trainable, "total": total},
        created=dt.datetime.now().isoformat(timespec="seconds"),
        device_used=str(device),
        git=environment.get("git"),
        qkit_version=__version__,
    )
    runs.atomic_write_json(run_dir / "config.json", runs.redact(record.to_dict()))
    runs.atomic_write_json(run_dir / "env.json", runs.redact(environment))
    engine = getattr(getattr(getattr(model, "head", None), "quantum", None), "engine", None)
    if hasattr(engine, "describe"):  # e.g. the density engine: device, calibration date, layout, scales
        runs.atomic_write_json(run_dir / "engine.json", runs.redact(engine.describe()))


def load_for_resume(run_dir: Path, cfg: TrainConfig | None) -> runs.RunRecord:
    """The saved record of a run to resume; options given with ``resume`` must be the recorded ones."""
    record = runs.read_record(run_dir)
    if cfg is not None:
        asked = resolve_config(cfg).with_options(name=record.config.run.name).flat()
        differ = [k for k, v in record.config.flat().items() if asked[k] != v]
        if differ:
            raise QkitError(
                f"cannot resume {run_dir.name} with different options ({', '.join(differ)}); "
                "resume without options to use the saved config"
            )
    return record
