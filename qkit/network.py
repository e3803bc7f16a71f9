"""The network a run trains, from the options a run records: a preset's, or a backbone and a head.

``build_network(**options)`` takes ``qkit.models.build_model``'s options plus ``preset``: with
a preset name it builds that paper's network (``qkit.presets.factory``), else a registered
backbone and head (``build_model``). The model's ``.config`` holds the options either way, and
``build_model_from_config(record.model)`` rebuilds any run's network for ``qkit evaluate``,
resume and the hardware commands.

This is the one step above both registries: ``qkit.models`` knows nothing of presets, and the
presets build on ``qkit.models``, so choosing between them can live in neither.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from qkit.errors import QkitError
from qkit.models import HybridModel, build_model
from qkit.models.hybrid import engine_arguments
from qkit.presets.factory import build_preset_model

# build_model's options and defaults: a preset takes the same ones (and uses those it lists as tunable).
_OPTIONS = {name: p.default for name, p in inspect.signature(build_model).parameters.items()}
_PRESET_TAKES = ("backbone", "pretrained", "freeze_backbone", "circuit", "n_qubits", "depth", "small_input")


def build_network(preset: str | None = None, **options: Any) -> HybridModel:
    """``build_model(**options)``, or preset ``preset``'s network built from the same options.

    A preset uses only the options it lists as tunable and records only those in ``.config``
    (``qkit.presets.factory.build_preset_model``); ``head`` is the preset's own.
    """
    if preset is None:
        return build_model(**options)
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise TypeError(f"build_network() got unexpected keyword argument(s): {', '.join(unknown)}")
    args = {**_OPTIONS, **options}
    engine, engine_options = engine_arguments(args["engine"], args["engine_options"], args["n_classes"])
    return build_preset_model(
        preset,
        n_classes=args["n_classes"],
        engine=engine,
        engine_options=engine_options,
        **{k: args[k] for k in _PRESET_TAKES},
    )


def build_model_from_config(config: Mapping[str, Any], **overrides: Any) -> HybridModel:
    """Rebuild a model from its ``.config`` (a run's ``record.model``) to load a saved state dict into.

    ``pretrained`` is forced to ``"none"`` (the saved state dict supplies every weight, and the
    original file or download may be gone); ``overrides`` replace entries, e.g. ``engine=``
    (another engine starts with no options unless ``engine_options`` is given too).
    """
    unknown = sorted(set(config) - set(_OPTIONS) - {"preset"})
    if unknown:
        raise QkitError(f"unknown model config keys: {', '.join(unknown)}")
    args = {**dict(config), "pretrained": "none", **overrides}
    if "engine" in overrides and "engine_options" not in overrides:
        args["engine_options"] = {}
    model = build_network(**args)
    model.config["pretrained"] = config.get("pretrained", "none")
    return model
