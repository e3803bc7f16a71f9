"""The one factory: a preset name and options -> a ``HybridModel`` whose ``.config`` rebuilds it.

``qkit.network.build_network(preset=...)`` lands here, so ``build_model_from_config(record.model)``
rebuilds any preset's network for ``qkit evaluate``, resume and hardware commands. The
recorded config holds ``preset``, ``n_classes``, the engine and the options the preset uses
(the others would be ignored, so they are not recorded).
"""

from __future__ import annotations

from typing import Any

from qkit.errors import QkitError
from qkit.presets.registry import get_preset


def build_preset_model(name: str, n_classes: int = 2, **options: Any):
    """Build preset ``name`` (its twin when the name ends in ``-classical``) for ``n_classes``.

    ``options`` are ``qkit.models.build_model``'s keyword arguments; each is used only if the preset
    lists it as tunable (``engine``/``engine_options`` always). ``pretrained`` is resolved
    and recorded as ``build_model`` does.
    """
    from qkit.models import HybridModel
    from qkit.presets.layers import make_twin

    preset = get_preset(name)
    used = {k: options[k] for k in preset.tunable if k in options}
    for key, value in used.items():
        allowed = preset.choices.get(key)
        if allowed is not None and value not in allowed:
            raise QkitError(f"preset {name}: {key} must be one of {', '.join(map(str, allowed))}, got {value!r}")
    settings = {**{k: v for k, v in preset.model.items() if k in preset.tunable}, **used}
    engine = dict(engine=options.get("engine", "statevector"), engine_options=dict(options.get("engine_options") or {}))
    backbone, head, n_features, settings = preset.builder(n_classes, **settings, **engine)
    freeze = bool(settings.get("freeze_backbone", preset.model.get("freeze_backbone", False)))
    config = dict(preset=name, head=preset.head_kind, n_classes=n_classes, **settings, **engine)
    model = HybridModel(backbone, head, n_features, freeze, config)
    return make_twin(model) if preset.classical else model


def parameter_counts(name: str, n_classes: int = 2) -> dict:
    """``{"quantum", "classical", "trainable", "total"}`` of preset ``name``'s default network.

    Built without downloading anything (``pretrained="none"``); a frozen backbone's
    parameters are not trainable, as in training.
    """
    from qkit.models import count_parameters
    from qkit.presets.layers import parameter_split

    model = build_preset_model(name, n_classes, pretrained="none")
    quantum, classical = parameter_split(model)
    trainable, total = count_parameters(model)
    return {"quantum": quantum, "classical": classical, "trainable": trainable, "total": total}
