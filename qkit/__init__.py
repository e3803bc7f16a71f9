"""qkit: hybrid quantum-classical image classifiers for medical imaging, Qiskit first."""

from qkit.version import __version__

__all__ = ["__version__"]


def __getattr__(name: str):
    # Lazy, so `import qkit` (and the CLI) stays light: load_run pulls in only the runs package.
    if name == "load_run":
        from qkit.runs import load_run

        return load_run
    raise AttributeError(f"module 'qkit' has no attribute {name!r}")
