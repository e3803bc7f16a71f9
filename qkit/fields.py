"""Option declarations and the one validator every config group goes through.

``option(default, help, ...)`` declares a dataclass field with what the validator and the CLI
need (help, choices, bounds, a check); ``validate(group)`` checks a group against its
declarations. Kept apart from ``qkit.config`` (the declarations themselves) so each reads
top to bottom; like it, this imports nothing heavy.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, field, fields
from typing import Any, Callable, Mapping

from qkit.errors import QkitError

SPLITS = ("train", "val", "test")  # a dataset's splits, as every command names them


class ConfigError(QkitError):
    """An invalid option value; ``field`` names the option (the CLI shows it as ``--field``)."""

    def __init__(self, field_name: str, detail: str):
        super().__init__(f"{field_name}: {detail}")
        self.field, self.detail = field_name, detail


def option(
    default: Any,
    help: str,
    *,
    choices: tuple | Callable[[], tuple] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    check: Callable[[Any], str | None] | None = None,
    panel: str | None = None,
    cli: str | None = None,
) -> Any:
    """A dataclass field with what the validator and the CLI need to know about it.

    ``choices``: allowed values (or a function returning them, for lazily known names);
    ``ge``/``gt``/``le``/``lt``: numeric bounds; ``check(value)``: returns an error text or
    None; ``panel``: the ``--help`` section (default: the group's); ``cli``: how the CLI
    parses the value when not by its type ("csv_ints", "key_value", "int_or_name").
    """
    meta = dict(help=help, choices=choices, ge=ge, gt=gt, le=le, lt=lt, check=check, panel=panel, cli=cli)
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def _types(cls: type) -> dict[str, tuple[type, ...]]:
    """Allowed runtime types of each field (``None`` included for Optional fields)."""
    out = {}
    for name, hint in typing.get_type_hints(cls).items():
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        args = typing.get_args(hint) if union else (hint,)
        out[name] = tuple(typing.get_origin(a) or a for a in args)
    return out


def _type_ok(value: Any, allowed: tuple[type, ...]) -> bool:
    if value is None:
        return type(None) in allowed
    if isinstance(value, bool):
        return bool in allowed
    if isinstance(value, int) and float in allowed:
        return True
    if isinstance(value, list) and tuple in allowed:
        return True
    return isinstance(value, tuple(t for t in allowed if t is not type(None)))


Choices = Mapping[str, "tuple | Callable[[], tuple]"]


def choices_of(f, registries: Choices | None = None) -> tuple | None:
    """Field ``f``'s allowed values: from ``registries`` (field name -> names, for options whose
    names a registry above the declarations knows, ``qkit.resolve.REGISTRY_CHOICES``), else declared."""
    choices = (registries or {}).get(f.name, f.metadata.get("choices"))
    return choices() if callable(choices) else choices


def validate(group: Any, registries: Choices | None = None) -> Any:
    """Check one config group against its fields' declarations; returns it unchanged.

    ``registries``: choices of fields whose names come from a registry (see ``choices_of``).
    """
    types = _types(type(group))
    for f in fields(group):
        value, meta = getattr(group, f.name), f.metadata
        if not _type_ok(value, types[f.name]):
            names = "/".join(t.__name__ for t in types[f.name])
            raise ConfigError(f.name, f"must be {names}, got {value!r}")
        if value is None or isinstance(value, bool):
            continue
        choices = choices_of(f, registries)
        if choices is not None and value not in choices:
            raise ConfigError(f.name, f"must be one of {', '.join(map(str, choices))}, got {value!r}")
        if isinstance(value, (int, float)):
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f.name, f"must be a finite number, got {value!r}")
            for key, ok, word in (
                ("ge", lambda v, b: v >= b, ">="),
                ("gt", lambda v, b: v > b, ">"),
                ("le", lambda v, b: v <= b, "<="),
                ("lt", lambda v, b: v < b, "<"),
            ):
                bound = meta.get(key)
                if bound is not None and not ok(value, bound):
                    raise ConfigError(f.name, f"must be {word} {bound}, got {value!r}")
        if meta.get("check") is not None:
            problem = meta["check"](value)
            if problem:
                raise ConfigError(f.name, problem)
    return group


def defaults_of(cls: type) -> dict[str, Any]:
    """Field defaults of a config group (factories called)."""
    out = {}
    for f in fields(cls):
        out[f.name] = f.default_factory() if f.default is MISSING else f.default
    return out
