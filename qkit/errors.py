"""User-facing errors.

A ``QkitError`` carries a one-line message meant for the person at the terminal: the CLI
prints it without a traceback and exits non-zero. Raise it for bad input (a missing file,
an unknown name, a circuit that does not fit its layer), never for programming errors.
"""


class QkitError(Exception):
    """A problem with the user's input or environment, explained in one line."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (quotes the runtime wraps around it removed), or
    its type's name when it has none: what a one-line error quotes of a library's exception."""
    text = str(exc).strip().strip("'\"")
    return text.splitlines()[0].strip() if text else type(exc).__name__
