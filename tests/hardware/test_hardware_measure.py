"""The sampler path's pieces: measurement bases, outcomes, parity averages and readout correction.

Expectation values from the measured ISA circuits are checked against Qiskit's
``Statevector.expectation_value`` exactly (outcome probabilities instead of shots), for
observables in X, Y and Z with coefficients and identities, on a real fake backend's layout.
"""

import numpy as np
import pytest
from qiskit.primitives import BitArray
from qiskit.quantum_info import SparsePauliOp, Statevector

from qkit.circuits import build_circuit
from qkit.errors import QkitError
from qkit.hardware.measure import Distribution, counts_of, measured_circuits, outcomes_of
from qkit.hardware.mitigation import (
    calibration_circuits,
    correct,
    matrices_from_outcomes,
    matrices_from_snapshot,
    readout_matrix,
)
from qkit.hardware.snapshot import BUILTIN_DIR


@pytest.fixture(scope="module")
def lagos():
    from qiskit_ibm_runtime.fake_provider import FakeLagosV2

    return FakeLagosV2()


def _program(observables):
    from qkit.engines.base import LayerProgram

    spec = build_circuit("strongly_entangling", 3, 1)
    return LayerProgram(
        spec.circuit, tuple(spec.inputs), tuple(spec.weights), tuple(SparsePauliOp.from_list(o) for o in observables)
    )


def _bind(basis, row):
    return basis.isa.assign_parameters(row[basis.columns]) if len(basis.columns) else basis.isa


def _exact_distribution(basis, row, n_bits):
    """Outcome probabilities of the classical bits of a basis circuit, exactly (no shots)."""
    circuit = _bind(basis, row).remove_final_measurements(inplace=False)
    probs = Statevector(circuit).probabilities()
    keys = np.zeros(len(probs), dtype=np.int64)
    for clbit, physical in basis.mapping.items():
        keys |= ((np.arange(len(probs)) >> physical) & 1) << clbit
    return Distribution(keys, probs, np.zeros(len(probs), dtype=np.int64), 1)


@pytest.mark.parametrize(
    "observables",
    [
        [[("IIZ", 1.0)], [("IZI", 1.0)], [("ZII", 1.0)]],
        [[("IXX", 1.0)], [("YIZ", 0.5), ("ZZZ", -0.25)], [("III", 0.3), ("XYX", 1.0)]],
        [[("IIY", 2.0)], [("IIX", 1.0)]],
    ],
)
def test_measured_bases_give_exact_expectation_values(lagos, observables):
    program = _program(observables)
    circuits = measured_circuits(program, lagos, [0, 1, 3])
    labels = [b.label for b in circuits.bases]
    assert len(labels) == len(set(labels))
    for basis in circuits.bases:
        assert sorted(basis.mapping.values()) == sorted(circuits.physical_qubits) or len(basis.mapping) == 3
        assert set(basis.isa.count_ops()) <= set(lagos.target.operation_names) | {"barrier"}
    rng = np.random.default_rng(0)
    for _ in range(3):
        row = rng.uniform(-1, 1, len(program.inputs) + len(program.weights))
        values = circuits.expectation_values([_exact_distribution(b, row, 3) for b in circuits.bases], rows=1)[0]
        bind = dict(zip(program.inputs + program.weights, row))
        state = Statevector(program.circuit.assign_parameters(bind))
        expected = [float(np.real(state.expectation_value(op))) for op in program.observables]
        np.testing.assert_allclose(values, expected, atol=1e-10)


def test_commuting_terms_share_one_basis(lagos):
    circuits = measured_circuits(_program([[("IIZ", 1.0)], [("ZZI", 1.0)], [("ZIZ", 1.0)]]), lagos, [0, 1, 3])
    assert [b.label for b in circuits.bases] == ["ZZZ"]
    mixed = measured_circuits(_program([[("IIX", 1.0)], [("IIZ", 1.0)]]), lagos, [0, 1, 3])
    assert len(mixed.bases) == 2


def test_outcomes_read_the_bit_array_as_qiskit_does():
    rng = np.random.default_rng(1)
    for n_bits in (3, 8, 11):
        bits = rng.integers(0, 2, size=(5, 64, n_bits)).astype(bool)
        array = BitArray.from_bool_array(bits[..., ::-1])  # Qiskit: last bool is bit 0
        outcomes = outcomes_of(array)
        assert outcomes.shape == (5, 64)
        for r in range(5):
            assert counts_of(outcomes[r : r + 1], n_bits)[0] == array.get_counts(r)
        z0 = Distribution.from_outcomes(outcomes).parity_mean(0b1, 5)
        np.testing.assert_allclose(z0, array.expectation_values("I" * (n_bits - 1) + "Z"))


def test_matrices_from_calibration_shots():
    qubits = [4, 7]
    zero = np.array([[0b00, 0b01, 0b00, 0b10]])  # bit 0 = qubit 4 flips once, bit 1 = qubit 7 once
    one = np.array([[0b11, 0b11, 0b10, 0b11]])  # qubit 4 reads 0 once
    m = matrices_from_outcomes(zero, one, qubits)
    np.testing.assert_allclose(m[4], [[0.75, 0.25], [0.25, 0.75]])
    np.testing.assert_allclose(m[7], [[0.75, 0.0], [0.25, 1.0]])
    with pytest.raises(QkitError, match="no better than a coin"):
        readout_matrix(0.6, 0.5)


def test_mthree_undoes_a_known_readout_error():
    rng = np.random.default_rng(2)
    p01, p10, shots = 0.2, 0.05, 20000
    true = (rng.random((1, shots)) < 0.9).astype(np.int64)  # <Z> about -0.8: raw reads about -0.45
    flip = np.where(true == 1, rng.random(true.shape) < p01, rng.random(true.shape) < p10)
    read = true ^ flip
    raw = Distribution.from_outcomes(read).parity_mean(1, 1)[0]
    quasi = correct(counts_of(read, 1), {0: 3}, {3: readout_matrix(p01, p10)}, num_qubits=5)
    mitigated = Distribution.from_quasis(quasi).parity_mean(1, 1)[0]
    exact = Distribution.from_outcomes(true).parity_mean(1, 1)[0]
    assert abs(raw - exact) > 0.05 and abs(mitigated - exact) < 0.015
    with pytest.raises(QkitError, match="no readout calibration for physical qubit"):
        correct(counts_of(read, 1), {0: 2}, {3: readout_matrix(p01, p10)}, num_qubits=5)


def test_snapshot_matrices_keep_both_directions():
    from qkit.hardware.snapshot import load_snapshot

    snapshot = load_snapshot(BUILTIN_DIR / "ibm_lagos.json")
    m = matrices_from_snapshot(snapshot, [2])[2]
    assert m[0, 1] == pytest.approx(0.304, abs=1e-3) and m[1, 0] == pytest.approx(0.6236, abs=1e-3)


def test_calibration_circuits_prepare_zero_and_one_on_the_read_qubits(lagos):
    zero, one = calibration_circuits(lagos, [1, 5])
    assert zero.count_ops().get("x", 0) == 0 and one.count_ops()["x"] == 2
    assert Statevector(one.remove_final_measurements(inplace=False)).probabilities_dict() == {"0100010": 1.0}
