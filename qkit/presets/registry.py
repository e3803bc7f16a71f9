"""The preset registry: a paper's network and training recipe under one name, timm-style.

A ``Preset`` says what a seed paper built (``builder``), which ``ModelConfig`` options it
fixes (``model``) and which of them a user may still change (``tunable``, with ``choices``
where only some values make sense), and the paper's training recipe as flat ``qkit train``
options (``train``). Every hybrid preset gets a classical twin ``<name>-classical``: the same
network and recipe with each quantum layer replaced by a classical layer of the nearest
trainable parameter count (``qkit.presets.layers.ClassicalTwin``), so that a comparison
differs in the quantum layer only.

This module imports nothing heavy: the CLI validates ``--preset`` and lists presets without
importing torch or Qiskit. Builders import torch when called.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

from qkit.errors import QkitError

TWIN_SUFFIX = "-classical"
# Model options every hybrid preset honours; small_input is resolved automatically for every
# config, so a preset that ignores it must not reject it.
ALWAYS = ("preset", "engine", "engine_options", "small_input")


@dataclass(frozen=True)
class Preset:
    """One named architecture. ``builder(n_classes, **options) -> (backbone, head, n_features)``.

    ``options`` are the tunable model options plus ``engine``/``engine_options``;
    ``quantum_head``: the model has ``head.encode``/``head.quantum``/``head.post`` with a
    ``QuantumLayer`` as ``head.quantum`` (what run-hardware, noise studies and explain read).
    ``head_kind``: what a run records as its head (hardware commands refuse anything but
    ``quantum`` with one line).
    """

    name: str
    source: str
    paper: str
    description: str
    builder: Callable[..., Any]
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    tunable: tuple[str, ...] = ()
    choices: dict = field(default_factory=dict)
    quantum_head: bool = True
    head_kind: str = "quantum"
    classical: bool = False
    twin_of: str | None = None

    def options(self) -> dict:
        """Flat ``qkit train`` options that make this preset's default run."""
        return {**self.model, **self.train, "preset": self.name}

    def twin(self) -> Preset:
        """The classical twin: same network, quantum layers replaced, same training options."""
        return replace(
            self,
            name=self.name + TWIN_SUFFIX,
            classical=True,
            twin_of=self.name,
            model={**self.model, "head": "linear"},
            quantum_head=False,
            head_kind="classical",
            description=f"{self.name} with each quantum layer replaced by a classical layer of "
            "the nearest trainable parameter count",
        )


_PRESETS: dict[str, Preset] = {}


def register_preset(preset: Preset, twin: bool = True) -> Preset:
    """Register ``preset`` (and its classical twin unless ``twin=False``)."""
    for p in (preset, preset.twin()) if twin else (preset,):
        if p.name in _PRESETS and _PRESETS[p.name] != p:
            raise QkitError(f"preset {p.name!r} is already registered")
        _PRESETS[p.name] = p
    return preset


def list_presets() -> list[str]:
    """Registered names, each hybrid followed by its twin."""
    return list(_PRESETS)


def get_preset(name: str) -> Preset:
    if name not in _PRESETS:
        raise QkitError(f"unknown preset {name!r}; choose from: {', '.join(_PRESETS)} (qkit presets lists them)")
    return _PRESETS[name]


def preset_options(name: str) -> dict:
    """The flat options of preset ``name``'s default run (``qkit.resolve.config_from_options`` starts from them)."""
    return get_preset(name).options()


def check_preset_model(name: str, model: dict, defaults: dict) -> tuple[str, str] | None:
    """``(option, problem)`` when ``model`` (ModelConfig fields) does not fit preset ``name``, else None.

    An option the preset fixes must keep the preset's value (or ModelConfig's default when
    the preset does not mention it): ``--backbone`` with ``hqcnn`` would otherwise be
    recorded but silently ignored.
    """
    preset = get_preset(name)
    tunable = ", ".join("--" + t.replace("_", "-") for t in preset.tunable) or "none"
    for key, value in model.items():
        if key in ALWAYS:
            continue
        if key in preset.tunable:
            allowed = preset.choices.get(key)
            if allowed is not None and value not in allowed:
                return key, f"preset {name} takes one of {', '.join(map(str, allowed))}, got {value!r}"
            continue
        fixed = preset.model.get(key, defaults.get(key))
        if value != fixed:
            return key, (f"preset {name} fixes it to {fixed!r} (options it takes: {tunable}); drop the option")
    return None
