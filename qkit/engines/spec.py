"""Engine choice as data: which engine, with which options, and what an engine can do.

Torch-free on purpose: the CLI and the run records handle engine choices (``--engine``,
``--engine-option shots=1024``, ``config.json``) without loading torch or Qiskit. Checking
a spec's options against its engine needs the registry and imports the engine, so it is
the registry's ``qkit.engines.engine_class(spec)``; this module imports no other engine module.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from qkit.errors import QkitError


@dataclass(frozen=True)
class Capabilities:
    """What an engine supports; the layer checks circuits against it before compute.

    ``differentiable``: gradients for inputs and weights reach autograd. ``shots``: results
    are sampled estimates. ``noise``: it can model noise. ``non_unitary``: it accepts
    measure/reset/classical control (a unitary-only engine rejects such circuits up front).
    """

    differentiable: bool = False
    shots: bool = False
    noise: bool = False
    non_unitary: bool = False


# Numbers as JSON writes them; "nan"/"inf" stay text so that no backend name turns into a float.
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")
_WORDS = {"true": True, "false": False, "null": None}


def _parse_value(text: str) -> Any:
    text = text.strip()
    if text in _WORDS:
        return _WORDS[text]
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if len(text) >= 2 and text[0] == text[-1] == '"':  # "1024": force text that looks like a number
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def _format_value(value: Any) -> str:
    """Text that ``parse_engine_option`` turns back into ``value``."""
    if isinstance(value, str):
        return value if _parse_value(value) == value and value.strip() == value and value else json.dumps(value)
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value)


def parse_engine_option(text: str) -> tuple[str, Any]:
    """``"shots=1024"`` -> ``("shots", 1024)``: ints, floats, true/false/null, else text."""
    if not isinstance(text, str) or "=" not in text:
        raise QkitError(f"engine option {text!r} is not key=value (e.g. shots=1024)")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key.isidentifier():
        raise QkitError(f"engine option {text!r}: {key!r} is not an option name")
    return key, _parse_value(value)


def _freeze(value: Any) -> Any:
    # Lists become tuples so a spec stays immutable and hashable; to_dict gives lists back.
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    return [_thaw(v) for v in value] if isinstance(value, tuple) else value


@dataclass(frozen=True)
class EngineSpec:
    """An engine name and the keyword options its constructor gets.

    Options are kept sorted by key in a read-only mapping, so equal choices compare, hash
    and serialise equally however they were written.
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise QkitError(f"engine name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.options, Mapping):
            raise QkitError(f"engine options must be a mapping, got {type(self.options).__name__}")
        for key in self.options:
            if not isinstance(key, str) or not key.isidentifier():
                raise QkitError(f"engine '{self.name}': option name {key!r} is not an identifier")
        frozen = {k: _freeze(self.options[k]) for k in sorted(self.options)}
        object.__setattr__(self, "options", MappingProxyType(frozen))

    def __hash__(self) -> int:
        return hash((self.name, tuple(self.options.items())))

    def __reduce__(self):
        # A mappingproxy cannot be pickled or deep-copied (the weight EMA deep-copies the
        # model, DataLoader workers pickle it): rebuild from plain values instead.
        return (type(self), (self.name, self.to_dict()["options"]))

    def __str__(self) -> str:
        if not self.options:
            return self.name
        args = ", ".join(f"{k}={_format_value(v)}" for k, v in self.options.items())
        return f"{self.name}({args})"

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., "options": {...}}``, ready for ``json.dumps``."""
        return {"name": self.name, "options": {k: _thaw(v) for k, v in self.options.items()}}

    @classmethod
    def parse(cls, value: "str | EngineSpec | Mapping[str, Any]") -> "EngineSpec":
        """An engine name, an EngineSpec, or a ``to_dict()`` mapping -> EngineSpec."""
        if isinstance(value, EngineSpec):
            return value
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, Mapping):
            extra = sorted(set(value) - {"name", "options"})
            if "name" not in value or extra:
                raise QkitError(
                    f"an engine mapping has keys 'name' and 'options', got {', '.join(map(repr, value)) or 'none'}"
                )
            return cls(value["name"], value.get("options") or {})
        raise QkitError(f"engine must be a name, an EngineSpec or a mapping, got {type(value).__name__}")

    def with_options(self, options: Mapping[str, Any] | None) -> "EngineSpec":
        """This spec plus ``options``; a key given both ways is an error, even with one value."""
        if not options:
            return self
        both = sorted(set(self.options) & set(options))
        if both:
            raise QkitError(
                f"engine option {', '.join(both)} given both in the engine spec '{self}' and in engine_options"
            )
        return EngineSpec(self.name, {**self.options, **options})
