"""qkit: hybrid quantum-classical image classifiers for medical imaging, Qiskit first."""

__version__ = "0.1.0"
