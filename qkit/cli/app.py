"""The ``qkit`` Typer application and its error policy.

Commands are thin: parse options, call one library function, print a Rich table. Errors a
user can fix are one line on stderr without a traceback:

* bad option values (usage errors, invalid config values) -> ``error: ...``, exit code 2
* ``QkitError`` from the library (missing data...)          -> ``error: ...``, exit code 1
* Ctrl-C during training                                    -> how to resume,  exit code 130

Only Typer's public API is used: Click's exceptions are recognised by their documented
interface (``exit_code``, ``format_message``), whichever Click Typer ships or vendors.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from qkit.errors import QkitError
from qkit.version import __version__


class _OneLineErrors(TyperGroup):
    """Print every usage error and QkitError as a single ``error:`` line (no panel, no traceback)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            result = super().main(
                args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra
            )
            code = result if isinstance(result, int) else 0
        except typer.Abort:
            error("aborted")
            code = 1
        except QkitError as exc:
            error(str(exc))
            code = 1
        except OSError as exc:  # disk full, permission denied...: the message says it all
            error(f"{type(exc).__name__}: {exc}")
            code = 1
        except Exception as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                code = 0  # the help text has been printed
            elif hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int):
                ctx = getattr(exc, "ctx", None)
                usage = exc.exit_code == 2 and ctx is not None
                error(exc.format_message() + (f" (see '{ctx.command_path} --help')" if usage else ""))
                code = exc.exit_code
            else:
                raise
        if standalone_mode:
            sys.exit(code)
        return code


def error(message: str) -> None:
    # soft_wrap: a long message must stay ONE line, not be wrapped at the terminal width.
    one_line = " ".join(str(message).split()).replace(": Value error, ", ": ")  # Typer's Enum prefix
    Console(stderr=True).print(f"[bold red]error:[/] {escape(one_line)}", soft_wrap=True, highlight=False)


def usage_error(message: str) -> typer.Exit:
    """Report an invalid option value as a usage error (exit code 2)."""
    error(message)
    return typer.Exit(2)


app = typer.Typer(
    cls=_OneLineErrors,
    name="qkit",
    help="qkit: hybrid quantum-classical image classifiers for medical imaging.\n\n"
    "Train a torchvision backbone with a Qiskit circuit as its classification head on "
    "MedMNIST or your own image folder, then inspect and re-evaluate the runs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"qkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the qkit version and exit."),
    ] = None,
) -> None:
    """qkit: hybrid quantum-classical image classifiers for medical imaging.

    Train a torchvision backbone with a Qiskit circuit as its classification head on MedMNIST
    or your own image folder, then inspect and re-evaluate the runs.
    """
