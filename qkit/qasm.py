"""OpenQASM 3 files for qkit circuits (the ``circuits/`` catalogue).

File convention
---------------
A qkit circuit file is plain OpenQASM 3 (``qiskit.qasm3`` writes and reads it), with every
angle a circuit depends on declared as an ``input float[64]`` variable:

- **Inputs** (fed by the classical pre-net) are named ``x_0, x_1, ...``: input ``x_i`` is
  fed by column ``i`` of the pre-net output.
- **Weights** (trained) are named ``w_0, w_1, ...``: ``w_j`` is element ``j`` of the
  layer's weight vector.

When reading, ``x3``, ``x_3`` and ``_x_3_`` (how Qiskit itself spells ``x[3]``) all mean
input 3, likewise for ``w``. Parameters are ordered by their number; numbering need not
start at 0 or be contiguous (a file using ``x1 .. x4`` gets input columns 0..3). Any other
parameter name is an error, as are two spellings of the same number, declared parameters
the circuit never uses, and measurements, resets or control flow (a qkit layer outputs
expectation values, so circuits must be unitary). After loading, inputs and weights are
the elements of Qiskit ``ParameterVector``s ``x`` and ``w``, exactly as for built-in circuits.

What QASM cannot express rides in comment lines of the form ``// qkit <key>: <value>``
(anywhere in the file, usually at the top):

- ``// qkit name: dressed``         circuit name (default: the file name without ``.qasm``)
- ``// qkit input_scale: 1.0``      the head feeds ``tanh(z) * input_scale`` (default 1.0,
  i.e. the file's own angle expressions, such as ``ry(pi*x_0)``, set the range)
- ``// qkit observable: IIIZ``      one line per layer output, in order; a sum is written as
  space-separated terms ``coeff*LABEL`` (``0.5*ZZII -1.0*IIXI``). Labels use Qiskit's
  little-endian order: the rightmost letter acts on qubit 0. Default when no observable
  line is present: Z on each qubit, qubit 0 first.

Unknown ``qkit`` keys are an error (a typo must not silently change a model). A file
written elsewhere without any ``qkit`` line loads with the defaults above.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from qiskit import qasm3
from qiskit.circuit import Parameter, ParameterExpression, ParameterVector
from qiskit.quantum_info import SparsePauliOp

from qkit.circuit_spec import CircuitSpec, pauli_observables
from qkit.errors import QkitError
from qkit.runs.files import atomic_write_text

__all__ = ["save_qasm", "load_qasm", "HEADER_KEYS"]

HEADER_KEYS = ("name", "input_scale", "observable")
_HEADER_RE = re.compile(r"^\s*//\s*qkit\s+([A-Za-z_]+)\s*:\s*(.*?)\s*$")
_PARAM_RE = re.compile(r"^_?([xw])_?(\d+)_?$")
_INPUT_DECL_RE = re.compile(r"^input\s+float\[64\]\s+(\w+)\s*;", re.MULTILINE)
_TERM_RE = re.compile(r"^(?:([-+]?[0-9.eE+-]+)\*)?([IXYZ]+)$")


# --------------------------------------------------------------------------- writing


def _format_observable(obs: SparsePauliOp, where: str) -> str:
    terms = []
    for label, coeff in obs.to_list():
        if abs(coeff.imag) > 1e-12:
            raise QkitError(f"{where}: observable term {label} has a complex coefficient")
        c = float(coeff.real)
        terms.append(label if c == 1.0 else f"{c!r}*{label}")
    return " ".join(terms)


def _order_declarations(body: str, names: list[str]) -> str:
    """List input declarations as x_0, x_1, ..., w_0, w_1, ... (Qiskit sorts them as text)."""
    lines = body.splitlines(keepends=True)
    rows = [i for i, line in enumerate(lines) if _INPUT_DECL_RE.match(line)]
    if not rows or rows != list(range(rows[0], rows[0] + len(rows))):
        return body  # unexpected layout: keep Qiskit's text untouched
    rank = {name: i for i, name in enumerate(names)}
    block = sorted(lines[rows[0] : rows[-1] + 1], key=lambda line: rank[_INPUT_DECL_RE.match(line).group(1)])
    return "".join(lines[: rows[0]] + block + lines[rows[-1] + 1 :])


def save_qasm(spec: CircuitSpec, path: str | Path, comment: str | None = None) -> Path:
    """Write ``spec`` as an OpenQASM 3 file following the module's convention; returns the path.

    ``comment`` (optional, may span lines) is written as plain ``//`` lines above the header.
    """
    if not isinstance(spec, CircuitSpec):
        raise QkitError("save_qasm needs a CircuitSpec")
    where = f"circuit {spec.name!r}"
    if not spec.name or "\n" in spec.name:
        raise QkitError(f"{where}: name must be a non-empty single line")
    # Rename to the canonical x_i / w_j so the file never depends on Qiskit's name mangling.
    names = [f"x_{i}" for i in range(spec.n_inputs)] + [f"w_{j}" for j in range(spec.n_weights)]
    mapping = dict(zip(list(spec.inputs) + list(spec.weights), (Parameter(n) for n in names)))
    body = qasm3.dumps(spec.circuit.assign_parameters(mapping, inplace=False))
    declared = _INPUT_DECL_RE.findall(body)
    if sorted(declared) != sorted(names):  # defensive: an exporter change must not go unnoticed
        raise QkitError(f"{where}: qiskit.qasm3 renamed parameters on export: {declared}")
    body = _order_declarations(body, names)
    lines = [f"// {line}".rstrip() for line in (comment or "").splitlines()]
    lines += [f"// qkit name: {spec.name}", f"// qkit input_scale: {spec.input_scale!r}"]
    lines += [f"// qkit observable: {_format_observable(o, where)}" for o in spec.observables]
    path = Path(path)
    atomic_write_text(path, "\n".join(lines) + "\n" + body)
    return path


# --------------------------------------------------------------------------- reading


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _parse_header(text: str, path: Path) -> dict:
    header: dict = {"observable": []}
    for lineno, line in enumerate(text.splitlines(), start=1):
        match = _HEADER_RE.match(line)
        if not match:
            continue
        key, value = match.groups()
        if key not in HEADER_KEYS:
            known = ", ".join(HEADER_KEYS)
            raise QkitError(f"{path}:{lineno}: unknown qkit header key {key!r} (known: {known})")
        if key == "observable":
            header["observable"].append((lineno, value))
        else:
            header[key] = (lineno, value)
    return header


def _parse_observable(value: str, n_qubits: int, where: str) -> SparsePauliOp:
    labels, coeffs = [], []
    for token in value.split():
        match = _TERM_RE.match(token)
        if not match:
            raise QkitError(f"{where}: bad observable term {token!r} (expected LABEL or coeff*LABEL, letters IXYZ)")
        coeff, label = match.groups()
        if len(label) != n_qubits:
            raise QkitError(f"{where}: observable {label} has {len(label)} qubits, the circuit has {n_qubits}")
        try:
            coeffs.append(float(coeff) if coeff else 1.0)
        except ValueError:
            raise QkitError(f"{where}: bad coefficient in observable term {token!r}") from None
        labels.append(label)
    if not labels:
        raise QkitError(f"{where}: empty observable")
    return SparsePauliOp(labels, np.array(coeffs, dtype=complex))


def _classify(params, path: Path) -> tuple[list[Parameter], list[Parameter]]:
    """Split parameters into inputs and weights by name, each ordered by its number."""
    found: dict[str, dict[int, Parameter]] = {"x": {}, "w": {}}
    bad = []
    for p in params:
        match = _PARAM_RE.match(p.name)
        if not match:
            bad.append(p.name)
            continue
        kind, index = match.group(1), int(match.group(2))
        if index in found[kind]:
            other = found[kind][index].name
            raise QkitError(f"{path}: parameters {other} and {p.name} both mean {kind}_{index}")
        found[kind][index] = p
    if bad:
        raise QkitError(
            f"{path}: parameters must be named x_<i> (inputs) or w_<j> (weights); "
            f"cannot classify: {', '.join(sorted(bad))}"
        )
    inputs, weights = ([found[k][i] for i in sorted(found[k])] for k in ("x", "w"))
    return inputs, weights


def load_qasm(path: str | Path) -> CircuitSpec:
    """Read an OpenQASM 3 file (qkit header optional) into a ``CircuitSpec``."""
    path = Path(path)
    if not path.is_file():
        raise QkitError(f"circuit file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise QkitError(f"cannot read circuit file {path}: {_one_line(exc)}") from None
    header = _parse_header(text, path)
    try:
        circuit = qasm3.loads(text)
    except Exception as exc:  # the parser raises several unrelated exception types
        raise QkitError(f"cannot read OpenQASM 3 file {path}: {_one_line(exc)}") from None

    # The importer keeps declared-but-unused inputs alive through a "0 * p" global phase.
    # A global phase never changes an expectation value, so drop a parametric one, and
    # refuse parameters that only lived there: an ignored input column is almost surely a bug.
    if isinstance(circuit.global_phase, ParameterExpression):
        declared = set(circuit.parameters)
        circuit.global_phase = 0.0
        unused = sorted(p.name for p in declared - set(circuit.parameters))
        if unused:
            raise QkitError(f"{path}: declares parameters the circuit never uses: {', '.join(unused)}")

    inputs, weights = _classify(circuit.parameters, path)
    x, w = ParameterVector("x", len(inputs)), ParameterVector("w", len(weights))
    circuit = circuit.assign_parameters(dict(zip(inputs + weights, list(x) + list(w))), inplace=False)

    n = circuit.num_qubits
    if header["observable"]:
        observables = [_parse_observable(v, n, f"{path}:{ln}") for ln, v in header["observable"]]
    else:
        observables = pauli_observables(n)
    name = header["name"][1] if "name" in header else path.stem
    input_scale = 1.0
    if "input_scale" in header:
        lineno, value = header["input_scale"]
        try:
            input_scale = float(value)
        except ValueError:
            raise QkitError(f"{path}:{lineno}: input_scale must be a number, got {value!r}") from None
    return CircuitSpec(name, circuit, list(x), list(w), observables, input_scale)
