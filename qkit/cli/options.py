"""CLI options generated from the config declarations (``qkit.config.option``).

Each config field becomes one ``--option`` with the field's help, default, choices (listed
in ``--help``; for ``--preset`` and ``--engine`` the registries' names, ``qkit.resolve``) and
bounds, in a ``--help`` panel per group. A command declares which groups it takes with
``with_config_options``; it receives the values the user gave as a dict of field names,
already parsed into config types (and nothing for options left at their default), so that
``--resume`` can tell given options from defaults.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import fields
from enum import Enum
from typing import Annotated, Any, Callable, Optional

import typer

from qkit.config import PANELS, choices_of, defaults_of
from qkit.resolve import REGISTRY_CHOICES


def _choice_enum(name: str, values: tuple) -> type[Enum]:
    """A str Enum of a field's choices, so Typer validates them and lists them in --help."""
    return Enum(name, {str(v): str(v) for v in values}, type=str)


def _base_type(cls: type, name: str) -> type:
    hint = typing.get_type_hints(cls)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    return typing.get_origin(args[0]) or args[0]


def _parameter(cls: type, f, panel: str, default: Any) -> inspect.Parameter:
    meta = f.metadata
    help_text = meta["help"]
    kind = meta.get("cli")
    decls: tuple[str, ...] = ()
    extra: dict[str, Any] = {}
    if kind == "key_value":
        annotation, default, decls = Optional[list[str]], None, (flag_of(f.name),)
    elif kind in ("csv_ints", "int_or_name"):
        annotation, default = Optional[str], None if default is None else str(default)
    else:
        base = _base_type(cls, f.name)
        choices = choices_of(f, REGISTRY_CHOICES)
        if choices is not None and all(isinstance(c, str) for c in choices):
            enum = _choice_enum(f.name.title().replace("_", ""), choices)
            annotation = enum
            default = enum(default) if default is not None else None
        else:
            annotation = base
            if choices is not None:
                help_text += f" One of: {', '.join(map(str, choices))}."
            if base in (int, float):
                extra = {k: v for k, v in (("min", meta.get("ge")), ("max", meta.get("le"))) if v is not None}
        if default is None:
            annotation = Optional[annotation]
    option = typer.Option(*decls, help=help_text, rich_help_panel=meta.get("panel") or panel, **extra)
    return inspect.Parameter(
        f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[annotation, option]
    )


def flag_of(name: str) -> str:
    """The command-line spelling of config field ``name`` (a repeated KEY=VALUE option is singular)."""
    flag = "--" + name.replace("_", "-")
    return flag.removesuffix("s") if name == "engine_options" else flag


def parse_value(f, value: Any) -> Any:
    """CLI text -> the config value of field ``f`` (Enum -> str, "0,1" -> (0, 1), KEY=VALUE -> dict)."""
    kind = f.metadata.get("cli")
    if isinstance(value, Enum):
        value = value.value
    if value is None:
        return None
    if kind == "csv_ints":
        try:
            return tuple(int(v) for v in value.split(","))
        except ValueError:
            raise typer.BadParameter(
                f"{value!r} is not a comma-separated list of integer labels, e.g. 0,1",
                param_hint=f"'{flag_of(f.name)}'",
            ) from None
    if kind == "int_or_name":
        return int(value) if value.strip().isdigit() else value
    if kind == "key_value":
        from qkit.engines import parse_engine_option
        from qkit.errors import QkitError

        try:
            return dict(parse_engine_option(item) for item in value)
        except QkitError as exc:
            raise typer.BadParameter(str(exc), param_hint=f"'{flag_of(f.name)}'") from None
    return value


def with_config_options(groups: dict[str, type], exclude: tuple[str, ...] = ()) -> Callable:
    """Decorator: add every field of ``groups`` (but ``exclude``) as an option; the command gets
    ``given`` (a dict of the options set on the command line or by environment, parsed) instead."""

    def decorator(func: Callable) -> Callable:
        own = [p for p in inspect.signature(func, eval_str=True).parameters.values() if p.name != "given"]
        assert any(p.name == "ctx" for p in own), "the command must take ctx: typer.Context"
        generated, by_name = [], {}
        for group, cls in groups.items():
            defaults = defaults_of(cls)
            for f in fields(cls):
                if f.name in exclude:
                    continue
                generated.append(_parameter(cls, f, PANELS[group], defaults[f.name]))
                by_name[f.name] = f

        def command(**kwargs: Any) -> Any:
            ctx = kwargs["ctx"]
            given = {}
            for name, f in by_name.items():
                value = kwargs.pop(name)
                source = ctx.get_parameter_source(name)
                if source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT"):
                    given[name] = parse_value(f, value)
            return func(**kwargs, given=given)

        # Generated options first: Typer orders the --help panels by first appearance.
        ctx_param = [p for p in own if p.name == "ctx"]
        rest = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own if p.name != "ctx"]
        command.__signature__ = inspect.Signature(ctx_param + generated + rest)
        command.__name__, command.__doc__ = func.__name__, func.__doc__
        return command

    return decorator
