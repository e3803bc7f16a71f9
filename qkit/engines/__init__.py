"""Engines evaluate a QuantumLayer's circuit; see ``qkit.engines.base`` for the interface.

This module is the registry, and it imports neither torch, Qiskit nor numpy: the CLI
validates ``--engine NAME`` through it in milliseconds. Built-in engines are listed as
``"module:Class"`` and imported on first use; third parties add theirs with
``register_engine``::

    @register_engine
    class MyEngine(Engine):
        name = "mine"
        ...

    register_engine("mypkg.engines:FastEngine", name="fast")  # imported when first used
"""

from __future__ import annotations

import importlib
import inspect

from qkit.engines.spec import Capabilities, EngineSpec, parse_engine_option
from qkit.errors import QkitError

__all__ = [
    "Capabilities",
    "EngineSpec",
    "parse_engine_option",
    "engine_class",
    "engine_names",
    "get_engine_class",
    "engine_option_names",
    "register_engine",
]

# name -> "module:Class" until first use, then the class itself.
_REGISTRY: dict[str, object] = {
    "connector": "qkit.engines.connector:ConnectorEngine",
    "density": "qkit.engines.density:DensityEngine",
    "estimator": "qkit.engines.estimator:EstimatorEngine",
    "statevector": "qkit.engines.statevector:StatevectorEngine",
}

# Constructor arguments every engine gets from the layer, never from the user.
_LAYER_ARGUMENTS = ("self", "program", "dtype")


def engine_names() -> tuple[str, ...]:
    """Registered engine names, sorted."""
    return tuple(sorted(_REGISTRY))


def _target(engine) -> str:
    return engine if isinstance(engine, str) else f"{engine.__module__}:{engine.__qualname__}"


def register_engine(engine=None, /, *, name: str | None = None):
    """Register an Engine subclass (its ``name``, or ``name=``) or a ``"module:Class"`` string.

    Works as ``@register_engine``, ``@register_engine(name="x")`` and as a plain call.
    Registering the same target twice is harmless; another target under a taken name is
    an error, so a plugin cannot silently replace a built-in engine.
    """
    if engine is None:
        return lambda cls: register_engine(cls, name=name)
    if isinstance(engine, str):
        module, _, attr = engine.partition(":")
        if not module or not attr:
            raise QkitError(f"engine target {engine!r} is not 'module:Class'")
        if not name:
            raise QkitError(f"register_engine({engine!r}) needs name=...")
    elif inspect.isclass(engine):
        from qkit.engines.base import Engine  # imports torch, as any Engine subclass has

        if not issubclass(engine, Engine):
            raise QkitError(f"{engine.__name__} is not a qkit.engines.base.Engine subclass")
        name = name or engine.name
        if not name:
            raise QkitError(f"engine class {engine.__name__} has no name")
    else:
        raise QkitError(f"register_engine takes an Engine class or 'module:Class', got {type(engine).__name__}")
    current = _REGISTRY.get(name)
    if current is not None and _target(current) != _target(engine):
        raise QkitError(f"engine '{name}' is already registered ({_target(current)})")
    if not (isinstance(engine, str) and isinstance(current, type)):  # keep an imported class
        _REGISTRY[name] = engine
    return engine


def get_engine_class(name: str) -> type:
    """The Engine class registered as ``name``, importing its module on first use."""
    if name not in _REGISTRY:
        raise QkitError(f"unknown engine '{name}'; choose from: {', '.join(engine_names())}")
    engine = _REGISTRY[name]
    if isinstance(engine, str):
        module_name, _, attr = engine.partition(":")
        try:
            engine = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise QkitError(f"engine '{name}': cannot import {_REGISTRY[name]}: {str(exc).splitlines()[0]}") from exc
        from qkit.engines.base import Engine

        if not (inspect.isclass(engine) and issubclass(engine, Engine)):
            raise QkitError(f"engine '{name}': {_REGISTRY[name]} is not an Engine subclass")
        _REGISTRY[name] = engine
    return engine


def engine_option_names(name: str) -> tuple[str, ...] | None:
    """The options engine ``name`` accepts: its constructor's keyword arguments.

    ``None`` when the constructor takes ``**kwargs`` (then any option is passed through).
    """
    params = inspect.signature(get_engine_class(name).__init__).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return tuple(
        sorted(
            p.name
            for p in params
            if p.name not in _LAYER_ARGUMENTS and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )
    )


def engine_class(spec: EngineSpec) -> type:
    """The Engine class ``spec`` names, after checking its options against the constructor."""
    engine = get_engine_class(spec.name)
    allowed = engine_option_names(spec.name)
    unknown = sorted(set(spec.options) - set(allowed)) if allowed is not None else []
    if unknown:
        hint = f"options: {', '.join(allowed)}" if allowed else "it takes no options"
        raise QkitError(f"engine '{spec.name}' has no option {', '.join(unknown)} ({hint})")
    return engine
