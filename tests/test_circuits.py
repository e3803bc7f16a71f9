"""Circuit catalogue: registry, built-in structure, numeric references, OpenQASM 3 round trip.

Tests parametrised over ``list_circuits()`` cover every registered circuit; a new circuit
must add its weight-count formula and a numpy reference below (a test fails until it does).
"""

import math
from pathlib import Path

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.quantum_info import SparsePauliOp, Statevector

from qkit import circuits
from qkit.circuits import (
    CircuitSpec,
    build_circuit,
    export_builtins,
    list_circuits,
    load_qasm,
    register_circuit,
    resolve_circuit,
    save_qasm,
)
from qkit.errors import QkitError

REPO = Path(__file__).resolve().parents[1]
BUILTINS = ["basic_entangler", "dressed", "efficient_su2", "quanv", "real_amplitudes", "strongly_entangling"]
WEIGHT_COUNT = {
    "dressed": lambda n, d: n * d,
    "basic_entangler": lambda n, d: n * d,
    "strongly_entangling": lambda n, d: 3 * n * d,
    "quanv": lambda n, d: 4 * d,
    "real_amplitudes": lambda n, d: n * (d + 1),
    "efficient_su2": lambda n, d: 2 * n * (d + 1),
}
FIXED_QUBITS = {"quanv": 4}


def qubit_counts(name):
    return [FIXED_QUBITS[name]] if name in FIXED_QUBITS else [1, 2, 3, 5]


SHAPE_CASES = [(name, n, d) for name in list_circuits() for n in qubit_counts(name) for d in (1, 3)]


def bind(spec, x, w):
    values = dict(zip(spec.inputs, x)) | dict(zip(spec.weights, w))
    return spec.circuit.assign_parameters(values, inplace=False)


def expvals(spec, x, w):
    state = Statevector(bind(spec, x, w))
    return np.array([state.expectation_value(o).real for o in spec.observables])


def random_values(spec, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-np.pi, np.pi, spec.n_inputs), rng.uniform(-np.pi, np.pi, spec.n_weights)


def qubits(circuit, instruction):
    return tuple(circuit.find_bit(q).index for q in instruction.qubits)


def param_names(instruction):
    return sorted(p.name for a in instruction.operation.params for p in a.parameters)


def cnots(circuit):
    return [qubits(circuit, i) for i in circuit.data if i.operation.name == "cx"]


# --------------------------------------------------------------------------- registry and shapes


def test_builtins_registered_and_every_circuit_has_test_data():
    assert set(BUILTINS) <= set(list_circuits())
    missing = {n for n in list_circuits() if n not in WEIGHT_COUNT or n not in REFERENCES}
    assert not missing, f"add weight formulas and numpy references for {missing}"


@pytest.mark.parametrize("name,n,depth", SHAPE_CASES)
def test_spec_shapes(name, n, depth):
    spec = build_circuit(name, n_qubits=n, depth=depth)
    assert isinstance(spec, CircuitSpec) and spec.name == name
    assert spec.circuit.num_qubits == n and spec.circuit.num_clbits == 0
    assert [p.name for p in spec.inputs] == [f"x[{i}]" for i in range(n)]
    assert [p.name for p in spec.weights] == [f"w[{j}]" for j in range(WEIGHT_COUNT[name](n, depth))]
    assert set(spec.circuit.parameters) == set(spec.inputs) | set(spec.weights)
    assert len(spec.observables) == n
    assert all(isinstance(o, SparsePauliOp) and o.num_qubits == n for o in spec.observables)
    assert not {i.operation.name for i in spec.circuit.data} & {"measure", "reset"}
    assert spec.input_scale > 0


def test_register_custom_circuit_and_duplicate_name():
    def tiny(n_qubits, depth, *, scale=1.0):
        qc, x, w = QuantumCircuit(1), Parameter("x0"), Parameter("w0")
        qc.ry(scale * x, 0)
        qc.rx(w, 0)
        return CircuitSpec("tiny", qc, [x], [w], circuits.pauli_observables(1), 1.0)

    register_circuit("tiny_test_circuit")(tiny)
    try:
        assert "tiny_test_circuit" in list_circuits()
        assert build_circuit("tiny_test_circuit", n_qubits=1, scale=2.0).n_weights == 1
        with pytest.raises(QkitError, match="no option bogus"):
            build_circuit("tiny_test_circuit", bogus=1)
        with pytest.raises(QkitError, match="already registered"):
            register_circuit("tiny_test_circuit")(lambda n, d: None)
    finally:
        circuits._REGISTRY.pop("tiny_test_circuit")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"name": "nope"}, "unknown circuit 'nope'; choose from: .*dressed"),
        ({"name": "dressed", "n_qubits": 0}, "n_qubits must be an integer >= 1"),
        ({"name": "dressed", "n_qubits": 2.5}, "n_qubits"),
        ({"name": "dressed", "n_qubits": True}, "n_qubits"),
        ({"name": "dressed", "depth": 0}, "depth must be an integer >= 1"),
        ({"name": "quanv", "n_qubits": 3}, "n_qubits must be 4"),
        ({"name": "dressed", "rotation": "x"}, "no option rotation .it takes no options"),
        ({"name": "strongly_entangling", "readout": "x"}, "readout='x' is not one of z, y"),
        ({"name": "strongly_entangling", "rotation": "z"}, "rotation='z'"),
        ({"name": "real_amplitudes", "entanglement": "star"}, "entanglement='star'"),
    ],
)
def test_build_errors(kwargs, match):
    with pytest.raises(QkitError, match=match):
        build_circuit(**kwargs)


def test_spec_validation_rejects_inconsistent_specs():
    qc, x, w = QuantumCircuit(2), Parameter("x0"), Parameter("w0")
    qc.ry(x, 0)
    qc.ry(w, 1)
    z = circuits.pauli_observables(2)
    with pytest.raises(QkitError, match="neither inputs nor weights: w0"):
        CircuitSpec("c", qc, [x], [], z, 1.0)
    with pytest.raises(QkitError, match="acts on 3 qubits but the circuit has 2"):
        CircuitSpec("c", qc, [x], [w], circuits.pauli_observables(3), 1.0)
    measured = qc.copy()
    measured.measure_all()
    with pytest.raises(QkitError, match="non-unitary instruction 'measure'"):
        CircuitSpec("c", measured, [x], [w], z, 1.0)


# --------------------------------------------------------------------------- structure


def test_dressed_gate_sequence():
    spec = build_circuit("dressed", n_qubits=3, depth=2)
    seq = [(i.operation.name, qubits(spec.circuit, i), param_names(i)) for i in spec.circuit.data]
    embed = [g for k in range(3) for g in (("h", (k,), []), ("ry", (k,), [f"x[{k}]"]))]

    def layer(layer_no):
        rotations = [("ry", (k,), [f"w[{3 * layer_no + k}]"]) for k in range(3)]
        return rotations + [("cx", (0, 1), []), ("cx", (1, 2), [])]

    assert seq == embed + layer(0) + layer(1)
    # RY(x * pi/2): x = 1 is a quarter turn
    ry = spec.circuit.data[1].operation.params[0]
    assert float(ry.bind({spec.inputs[0]: 1.0})) == pytest.approx(math.pi / 2)


def _layers_of_cnots(spec, n):
    pairs = cnots(spec.circuit)
    return [pairs[i : i + n] for i in range(0, len(pairs), n)]


def test_strongly_entangling_ranges_n4():
    spec = build_circuit("strongly_entangling", n_qubits=4, depth=3)
    assert _layers_of_cnots(spec, 4) == [
        [(0, 1), (1, 2), (2, 3), (3, 0)],
        [(0, 2), (1, 3), (2, 0), (3, 1)],
        [(0, 3), (1, 0), (2, 1), (3, 2)],
    ]


def test_strongly_entangling_ranges_n5():
    spec = build_circuit("strongly_entangling", n_qubits=5, depth=5)
    r1 = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0)]
    assert _layers_of_cnots(spec, 5) == [
        r1,
        [(0, 2), (1, 3), (2, 4), (3, 0), (4, 1)],
        [(0, 3), (1, 4), (2, 0), (3, 1), (4, 2)],
        [(0, 4), (1, 0), (2, 1), (3, 2), (4, 3)],
        r1,
    ]


def test_strongly_entangling_rot_order_and_options():
    spec = build_circuit("strongly_entangling", n_qubits=2, depth=1, rotation="x", readout="y")
    ops = [(i.operation.name, param_names(i)) for i in spec.circuit.data if i.operation.params]
    assert ops[:2] == [("rx", ["x[0]"]), ("rx", ["x[1]"])]
    assert ops[2:5] == [("rz", ["w[0]"]), ("ry", ["w[1]"]), ("rz", ["w[2]"])]
    assert [o.paulis.to_labels() for o in spec.observables] == [["IY"], ["YI"]]
    assert cnots(spec.circuit) == [(0, 1), (1, 0)]
    assert cnots(build_circuit("strongly_entangling", n_qubits=1, depth=2).circuit) == []


@pytest.mark.parametrize("n,expected", [(1, []), (2, [(0, 1)]), (3, [(0, 1), (1, 2), (2, 0)])])
def test_basic_entangler_ring(n, expected):
    assert cnots(build_circuit("basic_entangler", n_qubits=n, depth=1).circuit) == expected


def test_observables_little_endian():
    spec = build_circuit("dressed", n_qubits=3)
    assert [o.paulis.to_labels()[0] for o in spec.observables] == ["IIZ", "IZI", "ZII"]


# --------------------------------------------------------------------------- numpy references

I2 = np.eye(2)
HAD = np.array([[1, 1], [1, -1]]) / np.sqrt(2)
PAULI = {"Z": np.diag([1.0, -1.0]), "Y": np.array([[0, -1j], [1j, 0]])}


def rx(t):
    return np.array([[np.cos(t / 2), -1j * np.sin(t / 2)], [-1j * np.sin(t / 2), np.cos(t / 2)]])


def ry(t):
    return np.array([[np.cos(t / 2), -np.sin(t / 2)], [np.sin(t / 2), np.cos(t / 2)]])


def rz(t):
    return np.diag([np.exp(-1j * t / 2), np.exp(1j * t / 2)])


class Sim:
    """Tiny state-vector simulator, axis k = qubit k, independent of Qiskit's conventions."""

    def __init__(self, n):
        self.n = n
        self.psi = np.zeros((2,) * n, dtype=complex)
        self.psi[(0,) * n] = 1

    def gate(self, m, k):
        self.psi = np.moveaxis(np.tensordot(m, self.psi, axes=([1], [k])), 0, k)

    def cnot(self, c, t):
        idx = [slice(None)] * self.n
        idx[c] = 1
        sub = self.psi[tuple(idx)].copy()  # control = 1 block; target axis shifts down by one if after c
        self.psi[tuple(idx)] = np.flip(sub, axis=t - (t > c))

    def expvals(self, pauli):
        out = []
        for k in range(self.n):
            phi = np.moveaxis(np.tensordot(PAULI[pauli], self.psi, axes=([1], [k])), 0, k)
            out.append(np.vdot(self.psi, phi).real)
        return np.array(out)


def ref_dressed(x, w, n, depth):
    s = Sim(n)
    for k in range(n):
        s.gate(ry(x[k] * np.pi / 2) @ HAD, k)
    for layer in range(depth):
        for k in range(n):
            s.gate(ry(w[layer * n + k]), k)
        for k in range(n - 1):
            s.cnot(k, k + 1)
    return s.expvals("Z")


def ref_basic(x, w, n, depth):
    s = Sim(n)
    for k in range(n):
        s.gate(rx(x[k]), k)
    for layer in range(depth):
        for k in range(n):
            s.gate(rx(w[layer * n + k]), k)
        if n > 1:
            for k in range(n if n > 2 else 1):
                s.cnot(k, (k + 1) % n)
    return s.expvals("Z")


def ref_strong(x, w, n, depth, rotation="y", readout="z"):
    s, wl = Sim(n), np.reshape(w, (depth, n, 3))  # PennyLane's weight shape
    for k in range(n):
        s.gate((rx if rotation == "x" else ry)(x[k]), k)
    for layer in range(depth):
        for i in range(n):
            phi, theta, omega = wl[layer, i]
            s.gate(rz(omega) @ ry(theta) @ rz(phi), i)  # PennyLane Rot
        if n > 1:
            for i in range(n):
                s.cnot(i, (i + layer % (n - 1) + 1) % n)
    return s.expvals(readout.upper())


def ref_quanv(x, w, n, depth):
    s = Sim(4)
    for k in range(4):
        s.gate(ry(np.pi * x[k]), k)
    for layer in range(depth):
        for k in range(4):
            s.gate(ry(w[4 * layer + k]), k)
        for k in range(3):
            s.cnot(k, k + 1)
    return s.expvals("Z")


def _ref_library(x, w, n, depth, gates):
    """Qiskit's real_amplitudes / efficient_su2 with reverse_linear entanglement, by hand."""
    s, j = Sim(n), 0
    for k in range(n):
        s.gate(ry(x[k]), k)
    for rep in range(depth + 1):
        for g in gates:
            for k in range(n):
                s.gate(g(w[j]), k)
                j += 1
        if rep < depth:
            for k in reversed(range(n - 1)):
                s.cnot(k, k + 1)
    return s.expvals("Z")


REFERENCES = {
    "dressed": ref_dressed,
    "basic_entangler": ref_basic,
    "strongly_entangling": ref_strong,
    "quanv": ref_quanv,
    "real_amplitudes": lambda x, w, n, d: _ref_library(x, w, n, d, [ry]),
    "efficient_su2": lambda x, w, n, d: _ref_library(x, w, n, d, [ry, rz]),
}
REF_CASES = [(name, FIXED_QUBITS.get(name, 3), 2, {}) for name in list_circuits()] + [
    ("strongly_entangling", 5, 5, {}),
    ("strongly_entangling", 4, 3, {"rotation": "x", "readout": "y"}),
    ("basic_entangler", 2, 2, {}),
    ("dressed", 4, 1, {}),
]


@pytest.mark.parametrize("name,n,depth,options", REF_CASES)
def test_matches_numpy_reference(name, n, depth, options):
    spec = build_circuit(name, n_qubits=n, depth=depth, **options)
    x, w = random_values(spec, seed=n + depth)
    want = REFERENCES[name](x, w, n, depth, **options)
    np.testing.assert_allclose(expvals(spec, x, w), want, atol=1e-10)


def test_dressed_two_qubits_explicit_matrices():
    """Mari's circuit on 2 qubits with 4x4 matrices in Qiskit's basis |q1 q0>."""
    spec = build_circuit("dressed", n_qubits=2, depth=1)
    x, w = np.array([0.3, -0.8]), np.array([1.1, -0.4])
    embed = np.kron(ry(x[1] * np.pi / 2) @ HAD, ry(x[0] * np.pi / 2) @ HAD)
    layer = np.kron(ry(w[1]), ry(w[0]))
    cx01 = np.array([[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0]])  # control q0, target q1
    psi = cx01 @ layer @ embed @ np.array([1, 0, 0, 0])
    np.testing.assert_allclose(Statevector(bind(spec, x, w)).data, psi, atol=1e-12)
    z0, z1 = np.kron(I2, PAULI["Z"]), np.kron(PAULI["Z"], I2)
    want = [np.vdot(psi, z0 @ psi).real, np.vdot(psi, z1 @ psi).real]
    np.testing.assert_allclose(expvals(spec, x, w), want, atol=1e-12)


# --------------------------------------------------------------------------- OpenQASM 3


def assert_same_spec(a, b, seed=0):
    assert a.name == b.name and a.input_scale == b.input_scale
    assert [p.name for p in a.inputs] == [p.name for p in b.inputs]
    assert [p.name for p in a.weights] == [p.name for p in b.weights]
    assert len(a.observables) == len(b.observables)
    assert all(o1 == o2 for o1, o2 in zip(a.observables, b.observables))
    x, w = random_values(a, seed)
    state_a, state_b = Statevector(bind(a, x, w)), Statevector(bind(b, x, w))
    np.testing.assert_allclose(state_a.data, state_b.data, atol=1e-12)


ROUND_TRIP_CASES = [(name, FIXED_QUBITS.get(name, 3), 2, {}) for name in list_circuits()] + [
    ("strongly_entangling", 4, 2, {"rotation": "x", "readout": "y"}),
    ("real_amplitudes", 4, 1, {"entanglement": "full"}),
    ("dressed", 11, 1, {}),  # x_10 sorts before x_2 as text: order must come from the numbers
]


@pytest.mark.parametrize("name,n,depth,options", ROUND_TRIP_CASES)
def test_qasm_round_trip(tmp_path, name, n, depth, options):
    spec = build_circuit(name, n_qubits=n, depth=depth, **options)
    path = save_qasm(spec, tmp_path / f"{name}.qasm")
    assert path.read_text().splitlines()[0].startswith("// qkit name:")
    assert_same_spec(spec, load_qasm(path))


def test_round_trip_weighted_observable(tmp_path):
    base = build_circuit("dressed", n_qubits=2)
    obs = [SparsePauliOp(["ZZ", "XI"], [0.5, -1.25]), SparsePauliOp(["IY"], [2.0])]
    spec = CircuitSpec("custom", base.circuit, base.inputs, base.weights, obs, 0.75)
    assert_same_spec(spec, load_qasm(save_qasm(spec, tmp_path / "c.qasm")))


def test_catalogue_files_match_builders():
    """circuits/*.qasm are export_builtins() output: regenerate them when a builder changes."""
    for name in list_circuits():
        path = REPO / "circuits" / f"{name}.qasm"
        assert path.is_file(), f"missing {path}; run export_builtins('circuits')"
        assert_same_spec(build_circuit(name), load_qasm(path))


def test_export_builtins(tmp_path):
    written = export_builtins(tmp_path, n_qubits=4, depth=2)
    assert sorted(p.name for p in written) == [f"{n}.qasm" for n in list_circuits()]
    assert_same_spec(build_circuit("quanv", depth=2), load_qasm(tmp_path / "quanv.qasm"))


HAND_WRITTEN = """OPENQASM 3.0;
include "stdgates.inc";
input float[64] x1;
input float[64] x2;
input float[64] w2;
input float[64] _w_1_;
input float[64] w_0;
qubit[2] q;
ry(pi*x1) q[0];
rx(x2) q[1];
cx q[0], q[1];
ry(w_0) q[0];
rz(_w_1_) q[1];
rx(w2) q[1];
"""


def test_hand_written_file_without_header(tmp_path):
    path = tmp_path / "mine.qasm"
    path.write_text(HAND_WRITTEN)
    spec = load_qasm(path)
    assert spec.name == "mine" and spec.input_scale == 1.0
    assert [p.name for p in spec.inputs] == ["x[0]", "x[1]"]
    assert [p.name for p in spec.weights] == ["w[0]", "w[1]", "w[2]"]
    assert [o.paulis.to_labels() for o in spec.observables] == [["IZ"], ["ZI"]]
    x, w = [0.4, -1.2], [0.3, 0.9, -2.0]
    want = QuantumCircuit(2)
    want.ry(np.pi * x[0], 0)
    want.rx(x[1], 1)
    want.cx(0, 1)
    want.ry(w[0], 0)
    want.rz(w[1], 1)
    want.rx(w[2], 1)
    np.testing.assert_allclose(Statevector(bind(spec, x, w)).data, Statevector(want).data, atol=1e-12)


def test_hand_written_file_with_header(tmp_path):
    path = tmp_path / "mine.qasm"
    header = "// qkit name: mine2\n// qkit input_scale: 2.5\n// qkit observable: 0.5*ZZ -1*XI\n"
    path.write_text(header + HAND_WRITTEN)
    spec = load_qasm(path)
    assert spec.name == "mine2" and spec.input_scale == 2.5
    assert spec.observables == [SparsePauliOp(["ZZ", "XI"], [0.5, -1.0])]


def _qasm_error(tmp_path, text, match):
    path = tmp_path / "bad.qasm"
    path.write_text(text)
    with pytest.raises(QkitError, match=match) as info:
        load_qasm(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text,match",
    [
        (HAND_WRITTEN.replace("w2", "theta"), "cannot classify: theta"),
        (HAND_WRITTEN.replace("_w_1_", "w1").replace("w_0", "_w_1_"), "both mean w_1"),
        (HAND_WRITTEN.replace("qubit[2] q;", "input float[64] w_7;\nqubit[2] q;"), "never uses: w_7"),
        (HAND_WRITTEN + "bit[2] c;\nc = measure q;\n", "non-unitary instruction 'measure'"),
        ("OPENQASM 3.0;\nqubit[1] q;\nfoo q[0];\n", "cannot read OpenQASM 3 file"),
        ("this is not qasm {{{\n", "cannot read OpenQASM 3 file"),
        ("// qkit obsevable: ZZ\n" + HAND_WRITTEN, "unknown qkit header key 'obsevable'"),
        ("// qkit observable: ZZZ\n" + HAND_WRITTEN, "has 3 qubits, the circuit has 2"),
        ("// qkit observable: 2*ZA\n" + HAND_WRITTEN, "bad observable term"),
        ("// qkit input_scale: big\n" + HAND_WRITTEN, "input_scale must be a number"),
    ],
)
def test_qasm_errors(tmp_path, text, match):
    _qasm_error(tmp_path, text, match)


def test_missing_file_and_bad_save(tmp_path):
    with pytest.raises(QkitError, match="not found"):
        load_qasm(tmp_path / "absent.qasm")
    with pytest.raises(QkitError, match="needs a CircuitSpec"):
        save_qasm("dressed", tmp_path / "x.qasm")


def test_resolve_circuit(tmp_path):
    assert resolve_circuit("quanv").name == "quanv"
    path = save_qasm(build_circuit("dressed", n_qubits=2), tmp_path / "d.qasm")
    assert resolve_circuit(str(path)).n_qubits == 2
    with pytest.raises(QkitError, match="unknown circuit 'nope'"):
        resolve_circuit("nope")
