"""Circuit catalogue: parameterised Qiskit circuits that become quantum layers.

A circuit is described by a :class:`CircuitSpec` (``qkit.circuit_spec``, shared with the
OpenQASM 3 reader ``qkit.qasm`` that ``resolve_circuit`` uses for files): the Qiskit circuit
plus which of its parameters are inputs (fed by the classical pre-net, one per column) and
which are trainable weights, the observables whose expectation values are the layer's
outputs, and the scale the head applies to ``tanh`` before feeding the inputs.

Built-in circuits are registered timm-style and built by name::

    spec = build_circuit("strongly_entangling", n_qubits=5, depth=3, rotation="x", readout="y")

Add your own with ``@register_circuit("name")`` on a builder ``f(n_qubits, depth, *, opt=...)``
returning a ``CircuitSpec``, or write an OpenQASM 3 file (see :mod:`qkit.qasm`).

Conventions shared by every builder: inputs are the elements of a ``ParameterVector`` named
``"x"`` (one per qubit), weights the elements of one named ``"w"``, in the order documented
per builder (layer-major, then qubit); observables are ``SparsePauliOp`` in Qiskit's
little-endian labels (Z on qubit k is ``from_sparse_list([("Z", [k], 1)], n)``).
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Callable

from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.circuit.library import efficient_su2, real_amplitudes

from qkit.circuit_spec import CircuitSpec, pauli_observables
from qkit.errors import QkitError
from qkit.qasm import load_qasm, save_qasm

__all__ = [
    "CircuitSpec",
    "register_circuit",
    "build_circuit",
    "list_circuits",
    "resolve_circuit",
    "pauli_observables",
    "save_qasm",
    "load_qasm",
    "export_builtins",
]


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, Callable[..., CircuitSpec]] = {}


def register_circuit(name: str) -> Callable[[Callable[..., CircuitSpec]], Callable[..., CircuitSpec]]:
    """Decorator registering ``builder(n_qubits, depth, **options) -> CircuitSpec`` as ``name``.

    Options are the builder's keyword arguments after ``n_qubits`` and ``depth``;
    ``build_circuit`` rejects any other keyword with a ``QkitError``.
    """
    if not isinstance(name, str) or not name:
        raise QkitError("circuit name must be a non-empty string")

    def decorator(builder: Callable[..., CircuitSpec]) -> Callable[..., CircuitSpec]:
        if name in _REGISTRY and _REGISTRY[name] is not builder:
            raise QkitError(f"circuit {name!r} is already registered")
        _REGISTRY[name] = builder
        return builder

    return decorator


def list_circuits() -> list[str]:
    """Names of the registered circuits, sorted."""
    return sorted(_REGISTRY)


def _builder_options(builder: Callable[..., CircuitSpec]) -> list[str]:
    params = list(inspect.signature(builder).parameters.values())
    return [p.name for p in params[2:] if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def build_circuit(name: str, n_qubits: int = 4, depth: int = 1, **options) -> CircuitSpec:
    """Build the registered circuit ``name`` with ``n_qubits`` qubits and ``depth`` layers."""
    if name not in _REGISTRY:
        raise QkitError(f"unknown circuit {name!r}; choose from: {', '.join(list_circuits())}")
    for label, value in (("n_qubits", n_qubits), ("depth", depth)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise QkitError(f"circuit {name!r}: {label} must be an integer >= 1, got {value!r}")
    builder = _REGISTRY[name]
    allowed = _builder_options(builder)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        hint = f"options: {', '.join(allowed)}" if allowed else "it takes no options"
        raise QkitError(f"circuit {name!r} has no option {', '.join(unknown)} ({hint})")
    spec = builder(n_qubits, depth, **options)
    if not isinstance(spec, CircuitSpec):
        raise QkitError(f"circuit builder {name!r} did not return a CircuitSpec")
    return spec


def resolve_circuit(ref: str | Path, n_qubits: int = 4, depth: int = 1, **options) -> CircuitSpec:
    """A registered name -> ``build_circuit``; a path to an existing ``.qasm`` file -> ``load_qasm``.

    For a file, the file defines the qubit count and depth; ``n_qubits``/``depth``/options
    are ignored there (the caller sees the real sizes on the returned spec).
    """
    if isinstance(ref, str) and ref in _REGISTRY:
        return build_circuit(ref, n_qubits=n_qubits, depth=depth, **options)
    path = Path(ref)
    if path.suffix == ".qasm" or path.is_file():
        return load_qasm(path)
    raise QkitError(
        f"unknown circuit {str(ref)!r}; choose from: {', '.join(list_circuits())} or give a path to an OpenQASM 3 file"
    )


# --------------------------------------------------------------------------- helpers


def _choice(circuit: str, option: str, value, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise QkitError(f"circuit {circuit!r}: option {option}={value!r} is not one of {', '.join(choices)}")
    return value


def _start(n_qubits: int, n_weights: int) -> tuple[QuantumCircuit, ParameterVector, ParameterVector]:
    return QuantumCircuit(n_qubits), ParameterVector("x", n_qubits), ParameterVector("w", n_weights)


def _spec(name, qc, x, w, observables, input_scale) -> CircuitSpec:
    return CircuitSpec(name, qc, list(x), list(w), observables, float(input_scale))


# --------------------------------------------------------------------------- built-ins


@register_circuit("dressed")
def dressed(n_qubits: int, depth: int) -> CircuitSpec:
    """Mari et al. dressed quantum circuit (seed 000).

    H on each qubit, RY(x_k * pi/2); then ``depth`` x [RY(w) on every qubit, CNOT chain
    (0,1), (1,2), ..., (n-2, n-1)]; readout <Z_k>. Weight ``w[l*n + k]`` is layer l, qubit k.
    input_scale 1: tanh outputs in [-1, 1] become angles in [-pi/2, pi/2] as in the paper.
    (Mari's PennyLane code applies the CNOT layer before the RY layer; qkit follows the
    paper's equation L(w) = K (x) RY(w_k), i.e. rotations first.)
    """
    qc, x, w = _start(n_qubits, n_qubits * depth)
    for k in range(n_qubits):
        qc.h(k)
        qc.ry(x[k] * (math.pi / 2), k)
    for layer in range(depth):
        for k in range(n_qubits):
            qc.ry(w[layer * n_qubits + k], k)
        for k in range(n_qubits - 1):
            qc.cx(k, k + 1)
    return _spec("dressed", qc, x, w, pauli_observables(n_qubits), 1.0)


@register_circuit("basic_entangler")
def basic_entangler(n_qubits: int, depth: int) -> CircuitSpec:
    """PennyLane AngleEmbedding + BasicEntanglerLayers (seed 001).

    RX(x_k); then ``depth`` x [RX(w) on every qubit, CNOT ring (0,1), ..., (n-1, 0)] where,
    like PennyLane, 2 qubits get one CNOT and 1 qubit none. Weight ``w[l*n + k]``.
    Readout <Z_k>; input_scale pi (angles in [-pi, pi]).
    """
    qc, x, w = _start(n_qubits, n_qubits * depth)
    for k in range(n_qubits):
        qc.rx(x[k], k)
    # PennyLane closes the ring only from 3 qubits on: CNOT(1, 0) after CNOT(0, 1) is not a ring.
    ring = [(k, (k + 1) % n_qubits) for k in range(n_qubits)] if n_qubits > 2 else [(0, 1)][: n_qubits - 1]
    for layer in range(depth):
        for k in range(n_qubits):
            qc.rx(w[layer * n_qubits + k], k)
        for a, b in ring:
            qc.cx(a, b)
    return _spec("basic_entangler", qc, x, w, pauli_observables(n_qubits), math.pi)


@register_circuit("strongly_entangling")
def strongly_entangling(n_qubits: int, depth: int, *, rotation: str = "y", readout: str = "z") -> CircuitSpec:
    """AngleEmbedding + PennyLane StronglyEntanglingLayers (seeds 002, 003).

    R{rotation}(x_k); then ``depth`` x [Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi)
    on every qubit, then CNOT(i, (i + r) mod n) for each i, with range
    r = (layer mod (n-1)) + 1 (PennyLane's default ranges; no CNOTs on 1 qubit)].
    Weights ``w[3*(l*n + i) + j]`` = PennyLane ``weights[l, i, j]`` (j: phi, theta, omega).
    Readout <Z_k> or <Y_k> (``readout="y"``, Senokosov et al.); input_scale pi.
    """
    _choice("strongly_entangling", "rotation", rotation, ("x", "y"))
    _choice("strongly_entangling", "readout", readout, ("z", "y"))
    qc, x, w = _start(n_qubits, 3 * n_qubits * depth)
    embed = qc.rx if rotation == "x" else qc.ry
    for k in range(n_qubits):
        embed(x[k], k)
    for layer in range(depth):
        for i in range(n_qubits):
            phi, theta, omega = (w[3 * (layer * n_qubits + i) + j] for j in range(3))
            qc.rz(phi, i)
            qc.ry(theta, i)
            qc.rz(omega, i)
        if n_qubits > 1:
            r = layer % (n_qubits - 1) + 1
            for i in range(n_qubits):
                qc.cx(i, (i + r) % n_qubits)
    obs = pauli_observables(n_qubits, readout.upper())
    return _spec("strongly_entangling", qc, x, w, obs, math.pi)


@register_circuit("quanv")
def quanv(n_qubits: int, depth: int) -> CircuitSpec:
    """Quanvolution kernel on a 2x2 patch (Senokosov et al., seed 003); 4 qubits only.

    RY(pi * x_k) with pixel x_k; then ``depth`` x [RY(w) on each of the 4 qubits, CNOTs
    (0,1), (1,2), (2,3)]; readout <Z_k>. Weight ``w[4*l + k]``. input_scale 1: the paper's
    pixels in [0, 1] give angles in [0, pi]; tanh outputs in [-1, 1] give [-pi, pi].
    """
    if n_qubits != 4:
        raise QkitError(f"circuit 'quanv' is a 2x2 patch kernel: n_qubits must be 4, got {n_qubits}")
    qc, x, w = _start(4, 4 * depth)
    for k in range(4):
        qc.ry(math.pi * x[k], k)
    for layer in range(depth):
        for k in range(4):
            qc.ry(w[4 * layer + k], k)
        for k in range(3):
            qc.cx(k, k + 1)
    return _spec("quanv", qc, x, w, pauli_observables(4), 1.0)


_ENTANGLEMENTS = ("reverse_linear", "linear", "full", "circular", "sca", "pairwise")


def _library_ansatz(name: str, n_qubits: int, ansatz: QuantumCircuit) -> CircuitSpec:
    """RY(x_k) angle embedding, then a Qiskit library ansatz with its parameters renamed w."""
    lib_params = list(ansatz.parameters)  # the library's ParameterVector, in index order
    qc, x, w = _start(n_qubits, len(lib_params))
    for k in range(n_qubits):
        qc.ry(x[k], k)
    qc.compose(ansatz.assign_parameters(dict(zip(lib_params, w))), inplace=True)
    return _spec(name, qc, x, w, pauli_observables(n_qubits), math.pi)


@register_circuit("real_amplitudes")
def real_amplitudes_circuit(n_qubits: int, depth: int, *, entanglement: str = "reverse_linear") -> CircuitSpec:
    """RY(x_k) embedding + ``qiskit.circuit.library.real_amplitudes(reps=depth)``.

    Weights ``w[j]`` = the library's ``θ[j]``: n * (depth + 1) RY angles (layer-major).
    Readout <Z_k>; input_scale pi.
    """
    _choice("real_amplitudes", "entanglement", entanglement, _ENTANGLEMENTS)
    ansatz = real_amplitudes(n_qubits, entanglement=entanglement, reps=depth)
    return _library_ansatz("real_amplitudes", n_qubits, ansatz)


@register_circuit("efficient_su2")
def efficient_su2_circuit(n_qubits: int, depth: int, *, entanglement: str = "reverse_linear") -> CircuitSpec:
    """RY(x_k) embedding + ``qiskit.circuit.library.efficient_su2(reps=depth)`` (RY, RZ layers).

    Weights ``w[j]`` = the library's ``θ[j]``: 2n * (depth + 1) angles; per layer first the n
    RY angles, then the n RZ angles. Readout <Z_k>; input_scale pi.
    """
    _choice("efficient_su2", "entanglement", entanglement, _ENTANGLEMENTS)
    ansatz = efficient_su2(n_qubits, entanglement=entanglement, reps=depth)
    return _library_ansatz("efficient_su2", n_qubits, ansatz)


# --------------------------------------------------------------------------- files


def export_builtins(directory: str | Path, n_qubits: int = 4, depth: int = 1) -> list[Path]:
    """Write every registered circuit, built with its defaults, to ``directory/<name>.qasm``.

    This is how the shipped ``circuits/`` catalogue is produced::

        python -c "from qkit.circuits import export_builtins; export_builtins('circuits')"
    """
    written = []
    for name in list_circuits():
        spec = build_circuit(name, n_qubits=n_qubits, depth=depth)
        comment = (
            f"qkit built-in circuit {name!r}: build_circuit({name!r}, n_qubits={n_qubits}, depth={depth}).\n"
            "Generated by qkit.circuits.export_builtins; copy and edit to make your own."
        )
        written.append(save_qasm(spec, Path(directory) / f"{name}.qasm", comment=comment))
    return written
