"""Wide circuits on an emulator: two copies of a layer run whole, and part by part, agree.

Two copies of the 4-qubit ``dressed`` layer sit apart on FakeGuadalupeV2 (16 qubits, no
coupler between them). The wide circuit is sampled (a) whole through the runtime's local
testing mode (the device's full Aer noise model) and (b) copy by copy
(``qkit.hardware.wide.sample`` with ``noise_for``: each copy alone on Aer with the noise of
its own qubits), 8192 shots each, fixed seeds.

Statistics. For one copy and one row, K = 16 outcomes with probabilities p_k; two independent
samples of N shots each give |f_k - g_k| about normal with sd s_k = sqrt(2 p_k (1 - p_k) / N),
so E[TVD] = 1/2 sum s_k sqrt(2/pi) and sd[TVD] = 1/2 sqrt(sum s_k^2 (1 - 2/pi)) (as in
tests/hardware/test_hardware_noise.py; p_k estimated from both samples pooled). Each copy's TVD must
be below E + 4 sd, about 0.03 here (at most sqrt(K / (pi N)) + 4 sd < 0.05 for any p). The
rows together also pass a chi-square test of homogeneity (p > 1e-4), and the same test
rejects (p < 1e-6) parts simulated WITHOUT noise, so the comparison sees the noise model.
The copies' joint outcomes factorise: a chi-square test of independence per row (the 16 x 16
table of copy 0 against copy 1) is not rejected, even when both copies get the same
parameters (identical circuits with correlated seeds would show up there).
"""

import math
import warnings

import numpy as np
import pytest

from qkit.hardware import wide
from qkit.hardware.measure import copy_outcomes

SHOTS = 8192
N_BITS = 4
OPTIONS = {"default_shots": SHOTS, "simulator": {"seed_simulator": 1}}


@pytest.fixture(scope="module")
def guadalupe():
    from qkit.hardware.backends import resolve_backend

    return resolve_backend("fake_guadalupe")


@pytest.fixture(scope="module")
def program():
    from qkit.circuits import build_circuit
    from qkit.engines.base import LayerProgram

    spec = build_circuit("dressed", 4, 1)
    return LayerProgram(spec.circuit, tuple(spec.inputs), tuple(spec.weights), tuple(spec.observables))


@pytest.fixture(scope="module")
def two_copies(program, guadalupe):
    from qkit.hardware.copies import choose_copies
    from qkit.hardware.layout import choose_layout

    device = guadalupe.backend
    first = choose_layout(program, None, device, snapshot=guadalupe.calibration()).physical_qubits
    return choose_copies(program, device, guadalupe.calibration(), first, 2)


@pytest.fixture(scope="module")
def circuits(program, guadalupe, two_copies):
    from qkit.hardware.measure import measured_circuits

    return measured_circuits(program, guadalupe.backend, two_copies.layouts[0], copies=two_copies.layouts)


@pytest.fixture(scope="module")
def rows(program):
    """Three wide rows [copy 0's row, copy 1's row]; the last gives both copies the same row."""
    width = len(program.inputs) + len(program.weights)
    single = np.random.default_rng(7).uniform(-1.5, 1.5, (4, width))
    return np.stack(
        [
            np.concatenate([single[0], single[1]]),
            np.concatenate([single[2], single[3]]),
            np.concatenate([single[0], single[0]]),
        ]
    )


def _sample(backend, pubs, noise_of):
    from qiskit_ibm_runtime import Batch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Batch(backend=backend) as batch:
            job = wide.sample(batch, pubs, OPTIONS, noise_of=noise_of)
            return job, job.result()


@pytest.fixture(scope="module")
def sampled(guadalupe, circuits, rows):
    """(a) whole through the runtime's local mode, (b) part by part with each copy's noise,
    (c) part by part without noise (the alternative the comparison must reject)."""
    from qiskit_aer.noise import NoiseModel

    pubs = circuits.pubs(rows, SHOTS)
    whole_job, whole = _sample(guadalupe.backend, pubs, None)
    parts_job, parts = _sample(guadalupe.backend, pubs, wide.noise_for(guadalupe))
    _, noiseless = _sample(guadalupe.backend, pubs, lambda qubits, *rest: NoiseModel())
    return {"whole_job": whole_job, "whole": whole, "parts_job": parts_job, "parts": parts, "noiseless": noiseless}


def _per_copy(result):
    """Outcome counts [wide rows, copies, 16] of each copy, from the result's ``meas`` bits."""
    outcomes = copy_outcomes(result[0].data.meas.array, N_BITS, 2)  # row m * 2 + k
    counts = np.stack([np.bincount(o, minlength=2**N_BITS) for o in outcomes])
    return counts.reshape(-1, 2, 2**N_BITS)


def _tvd(f, g):
    return 0.5 * float(np.abs(f - g).sum())


def _threshold(p, shots):
    s = np.sqrt(2 * p * (1 - p) / shots)
    return 0.5 * s.sum() * math.sqrt(2 / math.pi) + 4 * 0.5 * math.sqrt(float((s**2).sum()) * (1 - 2 / math.pi))


def _homogeneity(a, b):
    """Chi-square test that count vectors ``a`` and ``b`` (rows of pairs) come from one distribution."""
    from scipy.stats import chi2

    stat, dof = 0.0, 0
    for x, y in zip(a, b):
        keep = (x + y) > 0
        table = np.stack([x[keep], y[keep]]).astype(float)
        expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
        stat += float(((table - expected) ** 2 / expected).sum())
        dof += int(keep.sum()) - 1
    return float(chi2.sf(stat, dof))


def _independence(outcomes0, outcomes1):
    """p-value of a chi-square test that copy 0's and copy 1's outcomes (one row's shots) are independent."""
    from scipy.stats import chi2_contingency

    table = np.zeros((2**N_BITS, 2**N_BITS))
    np.add.at(table, (outcomes0, outcomes1), 1)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    return float(chi2_contingency(table, correction=False).pvalue)


def test_two_copies_fit_apart_on_guadalupe_but_not_on_a_7_qubit_device(program, guadalupe, two_copies):
    from qkit.hardware.backends import resolve_backend
    from qkit.hardware.copies import apart
    from qkit.hardware.layout import vf2_layouts

    first, second = two_copies.layouts
    assert two_copies.n == 2 and two_copies.fit >= 2
    assert len(first) == len(second) == 4 and set(first).isdisjoint(second)
    edges = {tuple(e) for e in guadalupe.backend.coupling_map.get_edges()}
    assert not any((a, b) in edges for a in first for b in second)
    for layout in (first, second):  # each copy is the layer's chain on couplers
        assert all((layout[i], layout[i + 1]) in edges for i in range(3))
    jakarta = resolve_backend("fake_jakarta").backend
    candidates = vf2_layouts(program.circuit, jakarta)
    assert len(candidates) > 1 and len(apart(candidates[0], candidates[1:], jakarta, set())) == 1


def test_the_wide_circuit_falls_into_one_part_per_copy(circuits, two_copies, rows):
    assert circuits.copies == 2 and len(circuits.bases) == 1  # <Z_k> only: one basis
    isa = circuits.bases[0].isa
    assert isa.num_qubits == 16 and isa.num_clbits == 2 * N_BITS
    assert wide.parts_of(isa) == sorted((sorted(c) for c in two_copies.layouts), key=min)
    split = wide.split_pub(circuits.pubs(rows, SHOTS)[0])
    assert len(split) == 2
    for (part, values, shots), owned, qubits in split:
        k = next(i for i, c in enumerate(two_copies.layouts) if set(c) == set(qubits))
        assert owned == {"meas": list(range(k * N_BITS, (k + 1) * N_BITS))}
        assert shots == SHOTS and values.shape == (len(rows), part.num_parameters) == (3, 8)
        # the part reads copy k's half of each wide row, as the layer's inputs and weights
        assert all(p.name.startswith(f"c{k:03d}_") for p in part.parameters)
        assert {
            isa.find_bit(q).index for inst in part.data if inst.operation.name != "barrier" for q in inst.qubits
        } == set(qubits)


def test_assembled_result_has_the_whole_circuits_layout(sampled, rows):
    from qiskit.primitives.containers import PrimitiveResult, SamplerPubResult

    whole, parts, job = sampled["whole"], sampled["parts"], sampled["parts_job"]
    assert isinstance(job, wide.PartsJob) and job.status() == "DONE" and job.job_id().startswith("local-parts-")
    assert not isinstance(sampled["whole_job"], wide.PartsJob)
    assert isinstance(parts, PrimitiveResult) and isinstance(parts[0], SamplerPubResult) and len(parts) == len(whole)
    a, b = whole[0].data.meas, parts[0].data.meas
    assert list(parts[0].data.keys()) == list(whole[0].data.keys()) == ["meas"]
    assert (b.num_bits, b.shape, b.num_shots) == (a.num_bits, a.shape, a.num_shots) == (8, (3,), SHOTS)
    assert b.array.shape == a.array.shape and b.array.dtype == a.array.dtype
    assert parts[0].metadata["assembled_from_parts"] and parts.metadata["parts"] == 2
    assert job.result() is parts  # not simulated twice


def test_each_copy_run_alone_matches_the_whole_wide_circuit(sampled):
    whole, parts, noiseless = (_per_copy(sampled[k]) for k in ("whole", "parts", "noiseless"))
    assert whole.sum(axis=-1).min() == SHOTS == parts.sum(axis=-1).max()
    for m in range(whole.shape[0]):
        for k in range(2):
            f, g = whole[m, k] / SHOTS, parts[m, k] / SHOTS
            bound = _threshold((f + g) / 2, SHOTS)
            assert bound < 0.05
            assert _tvd(f, g) < bound, (m, k, _tvd(f, g), bound)
    flat = (whole.reshape(-1, 2**N_BITS), parts.reshape(-1, 2**N_BITS))
    assert _homogeneity(*flat) > 1e-4
    # the test has power: the same parts without the device's noise are told apart
    assert _homogeneity(flat[0], noiseless.reshape(-1, 2**N_BITS)) < 1e-6


def test_the_copies_outcomes_are_independent(sampled):
    for key in ("whole", "parts"):
        outcomes = copy_outcomes(sampled[key][0].data.meas.array, N_BITS, 2)
        for m in range(3):  # row 2: both copies bound to the same parameters
            assert _independence(outcomes[2 * m], outcomes[2 * m + 1]) > 1e-4, (key, m)
    # and the parts' rows sample independently of each other too (same parameters, other shots)
    parts = copy_outcomes(sampled["parts"][0].data.meas.array, N_BITS, 2)
    assert not np.array_equal(parts[4], parts[5]) and not np.array_equal(parts[0], parts[4])


def _two_pieces(extra_register=False):
    """16 qubits: a parameterised 3-qubit piece on 0-1-2 and another on 12-13-14, clbits interleaved."""
    from qiskit import ClassicalRegister, QuantumCircuit
    from qiskit.circuit import Parameter

    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(16)
    meas = ClassicalRegister(6, "meas")
    qc.add_register(meas)
    if extra_register:
        qc.add_register(ClassicalRegister(2, "extra"))
    qc.sx(0)  # sx rz(a) sx: |1> at a = 0, |0> at a = pi (ISA gates only)
    qc.rz(a, 0)
    qc.sx(0)
    qc.x(2)
    qc.cx(0, 1)
    qc.cx(1, 2)
    qc.sx(12)
    qc.rz(b, 12)
    qc.sx(12)
    qc.x(13)
    qc.cx(12, 13)
    qc.cx(13, 14)
    qc.barrier()  # a barrier over everything joins nothing
    qc.measure([0, 1, 2, 12, 13, 14], [meas[4], meas[0], meas[2], meas[5], meas[1], meas[3]])
    return qc


def test_parts_of_and_restrict_on_two_disconnected_pieces():
    qc = _two_pieces()
    assert wide.parts_of(qc) == [[0, 1, 2], [12, 13, 14]]
    left, owned = wide.restrict(qc, [0, 1, 2])
    assert owned == {"meas": [0, 2, 4]} and left.num_qubits == 16
    assert [p.name for p in left.parameters] == ["a"]
    assert dict(left.count_ops()) == {"sx": 2, "rz": 1, "x": 1, "cx": 2, "measure": 3, "barrier": 1}
    right, owned = wide.restrict(qc, [12, 13, 14])
    assert owned == {"meas": [1, 3, 5]} and [p.name for p in right.parameters] == ["b"]
    measured = {
        right.find_bit(i.qubits[0]).index: right.find_bit(i.clbits[0]).index
        for i in right.data
        if i.operation.name == "measure"
    }
    assert measured == {12: 2, 13: 0, 14: 1}  # clbit j of the part = the j-th clbit it owns (1, 3, 5)
    # a gate between the pieces, or one clbit written from both, makes them one part
    joined = qc.copy()
    joined.cx(2, 12)
    assert wide.parts_of(joined) == [[0, 1, 2, 12, 13, 14]]
    shared = qc.copy()
    shared.measure(0, 5)
    assert wide.parts_of(shared) == [[0, 1, 2, 12, 13, 14]]
    # small parts are simulated together: two 2-qubit pieces are one group
    small = wide.restrict(qc, [0, 1])[0]
    small.cx(12, 13)
    assert wide.split_pub((small, None, 10)) is None


def test_assembled_bits_land_in_the_whole_circuits_clbits(guadalupe):
    """Noiseless parts of a circuit whose outcome is known: every shot reads the expected bits
    where the whole circuit writes them, and the layout equals the whole run's."""
    from qiskit.quantum_info import Statevector
    from qiskit_aer.noise import NoiseModel

    qc = _two_pieces()
    values = np.array([[0.0, 0.0], [math.pi, 0.0], [0.0, math.pi], [math.pi, math.pi]])
    pubs = [(qc, values, 64), (qc.assign_parameters([math.pi, 0.0]), None, 64)]
    job, parts = _sample(guadalupe.backend, pubs, lambda qubits, *rest: NoiseModel())
    _, whole = _sample(guadalupe.backend, pubs, None)
    assert isinstance(job, wide.PartsJob)
    for got, full in zip(parts, whole):
        a, b = full.data.meas, got.data.meas
        assert (b.num_bits, b.shape, b.num_shots) == (a.num_bits, a.shape, a.num_shots)
    clbit_of = {0: 4, 1: 0, 2: 2, 12: 5, 13: 1, 14: 3}
    for row, bound in enumerate([*values, None]):
        circuit = qc.assign_parameters(bound) if bound is not None else pubs[1][0]
        probs = Statevector(circuit.remove_final_measurements(inplace=False)).probabilities()
        state = int(np.argmax(probs))
        assert probs[state] > 1 - 1e-9  # a basis state
        expected = sum(((state >> q) & 1) << c for q, c in clbit_of.items())
        meas = parts[0].data.meas if bound is not None else parts[1].data.meas
        counts = meas.get_int_counts(row) if bound is not None else meas.get_int_counts()
        assert counts == {expected: meas.num_shots}, (row, counts, expected)


def test_a_calibration_circuit_splits_into_small_groups(guadalupe):
    from qkit.hardware.mitigation import calibration_circuits

    device = guadalupe.backend
    qubits = [0, 1, 2, 3, 4, 5, 6, 7]
    zero, one = calibration_circuits(device, qubits)
    for circuit in (zero, one):
        assert wide.parts_of(circuit) == [[q] for q in qubits]
        split = wide.split_pub((circuit, None, 4096))
        assert split is not None and len(split) == math.ceil(len(qubits) / wide.MAX_GROUP_QUBITS)
        assert all(len(group) <= wide.MAX_GROUP_QUBITS for _, _, group in split)
        assert sorted(q for _, _, group in split for q in group) == qubits
        assert sorted(c for _, owned, _ in split for c in owned["c"]) == list(range(len(qubits)))
    job, result = _sample(device, [(zero, None, 4096), (one, None, 4096)], wide.noise_for(guadalupe))
    assert isinstance(job, wide.PartsJob)
    for pub, prepared in zip(result, (0, 1)):
        c = pub.data.c
        assert (c.num_bits, c.shape, c.num_shots) == (8, (), 4096)
        bits = c.to_bool_array(order="little")  # [shots, 8], column k = qubits[k]
        for k, q in enumerate(qubits):  # each clbit flips at its own qubit's readout error (the Target's)
            error = device.target["measure"][(q,)].error
            flipped = float(np.mean(bits[:, k] != bool(prepared)))
            assert abs(flipped - error) < 4 * math.sqrt(error * (1 - error) / 4096) + 0.004, (q, flipped, error)


def test_a_register_no_part_writes_is_still_in_the_assembled_result(guadalupe):
    qc = _two_pieces(extra_register=True)
    pubs = [(qc, np.array([[0.3, 1.2]]), 16)]
    _, parts = _sample(guadalupe.backend, pubs, wide.noise_for(guadalupe))
    _, whole = _sample(guadalupe.backend, pubs, None)
    assert list(parts[0].data.keys()) == list(whole[0].data.keys()) == ["meas", "extra"]


def test_a_pub_without_shots_uses_the_default_shots_in_parts_too(guadalupe):
    pubs = [(_two_pieces(), np.array([[0.3, 1.2]]), None)]
    from qiskit_ibm_runtime import Batch

    with Batch(backend=guadalupe.backend) as batch:
        whole = wide.sample(batch, pubs, {"default_shots": 300}, None).result()
        parts = wide.sample(batch, pubs, {"default_shots": 300}, wide.noise_for(guadalupe)).result()
    assert whole[0].data.meas.num_shots == 300
    assert parts[0].data.meas.num_shots == 300
