"""A run's config resolved against the registries: flat options in, what ``config.json`` records out.

``qkit.config`` declares every option and imports no registry; which names ``--preset`` and
``--engine`` take, what a preset fixes and which options an engine accepts are known only to
the registries (``qkit.presets``, ``qkit.engines``), which sit above the declarations. This
module is the one step above both that brings them together:

- ``config_from_options(**options)``: flat options -> ``TrainConfig``, a preset's options first
  (explicit ones override them); what ``qkit train`` and ``qkit compare`` build a run from;
- ``check_config(cfg)``: every value against its declaration and the registries, up front;
  problems are one-line ``ConfigError``s naming the option;
- ``resolve_config(cfg)``: a checked copy with the automatic choices made (what a run records);
- ``REGISTRY_CHOICES``: the allowed values of the options a registry names (``--help`` lists them).

Like the declarations, this imports nothing heavy: both registries import torch or Qiskit
only when a network or an engine is built.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from qkit.config import (
    CIRCUITS,
    GROUPS,
    SIZES,
    ConfigError,
    DataConfig,
    ModelConfig,
    TrainConfig,
    default_vertical_flip,
    defaults_of,
    is_medmnist,
    is_path,
    validate,
)
from qkit.engines import EngineSpec, engine_class, engine_names
from qkit.errors import QkitError
from qkit.presets import check_preset_model, get_preset, list_presets

REGISTRY_CHOICES = {"preset": lambda: tuple(list_presets()), "engine": engine_names}


def config_from_options(**options: Any) -> TrainConfig:
    """Build from flat option names (``epochs=5, backbone="resnet18"``), as the CLI does; not checked yet.

    With ``preset=NAME`` the preset's options come first and the given ones override them.
    """
    if options.get("preset") is not None:
        try:
            options = {**get_preset(options["preset"]).options(), **options}
        except QkitError as exc:
            raise ConfigError("preset", str(exc)) from None
    return TrainConfig().with_options(**options)


def engine_spec(model: ModelConfig) -> EngineSpec:
    """The engine a model config names, with its options."""
    return EngineSpec(model.engine, dict(model.engine_options))


def check_config(cfg: TrainConfig) -> TrainConfig:
    """Check every value up front; returns ``cfg``. Problems are one-line ConfigErrors."""
    for group in GROUPS:
        validate(getattr(cfg, group), REGISTRY_CHOICES)
    d = cfg.data
    if d.size != defaults_of(DataConfig)["size"] and not is_medmnist(d.dataset):
        raise ConfigError(
            "size",
            f"{d.size} picks one of MedMNIST's files ({', '.join(map(str, SIZES))} px); the "
            f"image folder {d.dataset} keeps its images' own size: use --resize {d.size} to "
            "resize them instead",
        )
    if cfg.model.preset is not None:  # an option the preset would ignore is an error, not a no-op
        problem = check_preset_model(cfg.model.preset, asdict(cfg.model), defaults_of(ModelConfig))
        if problem:
            raise ConfigError(*problem)
    if cfg.model.engine_options:  # names checked against the engine (imports it: only when given)
        try:
            engine_class(engine_spec(cfg.model))
        except QkitError as exc:
            raise ConfigError("engine_options", str(exc)) from None
    return cfg


def resolve_config(cfg: TrainConfig) -> TrainConfig:
    """A checked copy with the automatic choices made (what config.json records)."""
    check_config(cfg)
    d, m = cfg.data, cfg.model
    if is_medmnist(d.dataset):
        dataset = d.dataset.lower()
    else:  # a folder: absolute, so that the run can be re-read from another directory
        dataset = str(Path(d.dataset).expanduser().resolve())
    data = replace(
        d,
        dataset=dataset,
        classes=tuple(d.classes) if d.classes is not None else None,
        vertical_flip=default_vertical_flip(dataset) if d.vertical_flip is None else d.vertical_flip,
        augment=d.augment and not m.freeze_backbone,
    )  # cached features see no augmentation
    small_input = m.small_input if m.small_input is not None else (d.resize is None and d.size == 28)
    network = m.preset or f"{m.backbone}-{m.head}"
    label = cfg.run.label or f"{Path(dataset).name if is_path(dataset) else dataset}-{network}"
    circuit = m.circuit if m.circuit in CIRCUITS else str(Path(m.circuit).expanduser().resolve())
    return replace(
        cfg,
        data=data,
        model=replace(m, small_input=bool(small_input), circuit=circuit),
        run=replace(cfg.run, label=label),
    )
