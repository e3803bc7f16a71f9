"""Command line: one module per noun, each a thin Typer command over library functions.

``qkit train`` (``qkit.cli.train``), ``qkit evaluate`` (``qkit.cli.evaluate``), ``qkit runs``
(``qkit.cli.runs``); the application and its one-line error policy are in ``qkit.cli.app``.
Importing this package imports neither torch nor Qiskit: usage errors answer at once.
"""

# Registration order is the order of `qkit --help`: not sorted.
# isort: off
from qkit.cli import evaluate, hardware, runs, train  # noqa: F401  (each registers its command)
from qkit.cli import transpile  # noqa: F401  (registers `qkit transpile`)
from qkit.cli import run_hardware  # noqa: F401  (registers `qkit run-hardware`)
from qkit.cli import compare_hardware  # noqa: F401  (registers `qkit compare-hardware`)
from qkit.cli import noise  # noqa: F401  (registers `qkit noise study`)
from qkit.cli import explain  # noqa: F401  (registers `qkit explain`)
from qkit.cli import report  # noqa: F401  (registers `qkit report`)
from qkit.cli import presets  # noqa: F401  (registers `qkit presets`)
from qkit.cli import compare  # noqa: F401  (registers `qkit compare`)

# isort: on
import gc

from qkit.cli.app import app


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    finally:
        # The interpreter's last garbage collection walks every object still alive: ~1.5 s of a
        # command's exit once torch, Qiskit and medmnist are imported (2 cores). Frozen objects
        # are left to the OS instead; atexit handlers and module teardown still run, so logs,
        # temporary folders and a local Ray instance are closed as before.
        gc.freeze()


__all__ = ["app", "main"]
