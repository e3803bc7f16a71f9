"""qkit: hybrid quantum-classical image classifiers for medical imaging, Qiskit first."""

__version__ = "0.2.0"


def __getattr__(name: str):
    # Lazy, so `import qkit` (and the CLI) stays light: load_run pulls in only the runs package.
    if name == "load_run":
        from qkit.runs import load_run

        return load_run
    raise AttributeError(f"module 'qkit' has no attribute {name!r}")
