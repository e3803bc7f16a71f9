"""A snapshot's noise model reproduces the fake backend's own noisy results, statistically.

The same 4-qubit GHZ circuit (laid out over qubits 1, 0, 2, 3 of Lagos, so qubit 2's strongly
asymmetric readout, p(1|0) 0.624 vs p(0|1) 0.304, is in play), the same 4000 shots, on the fake
backend (its own Aer noise, built from its BackendProperties) and on the backend rebuilt from the
shipped JSON snapshot. Two samples of one distribution differ by shot noise only: for outcome
probabilities p_k and N shots each, |f_k - g_k| is about normal with sd s_k = sqrt(2 p_k (1-p_k) / N),
so E[TVD] = 1/2 sum s_k sqrt(2/pi) and sd[TVD] = 1/2 sqrt(sum s_k^2 (1 - 2/pi)). The threshold is
E + 4 sd (about 0.054 here: a 4-sigma event, and seeds are fixed). Wrong snapshots (the
symmetric readout NoiseModel.from_backend uses, readout scaled by 0.7, Quito's calibration) land
far above it, so the test can fail.
"""

import math

import pytest

from qkit.hardware.snapshot import BUILTIN_DIR, Snapshot, load_snapshot

SHIPPED = BUILTIN_DIR  # the snapshots qkit ships (package data)
SHOTS = 4000
LAYOUT = [1, 0, 2, 3]


def _ghz():
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(4)
    qc.h(0)
    qc.cx(0, 1)
    qc.cx(1, 2)
    qc.cx(1, 3)
    qc.measure_all()
    return qc


def _probabilities(backend, circuit, seed):
    counts = backend.run(circuit, shots=SHOTS, seed_simulator=seed).result().get_counts()
    return {k: v / SHOTS for k, v in counts.items()}


def _tvd(p, q):
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def _threshold(p):
    sds = [math.sqrt(2 * v * (1 - v) / SHOTS) for v in p.values()]
    mean = 0.5 * sum(sds) * math.sqrt(2 / math.pi)
    sd = 0.5 * math.sqrt(sum(s * s for s in sds) * (1 - 2 / math.pi))
    return mean + 4 * sd


@pytest.mark.slow
def test_snapshot_noise_matches_the_fake_backend_and_wrong_ones_do_not():
    from qiskit import transpile
    from qiskit_ibm_runtime.fake_provider import FakeLagosV2, FakeQuitoV2

    fake = FakeLagosV2()
    circuit = transpile(_ghz(), fake, initial_layout=LAYOUT, seed_transpiler=7, optimization_level=1)
    reference = _probabilities(fake, circuit, seed=11)
    threshold = _threshold(reference)
    assert 0.03 < threshold < 0.07

    same_device_again = _tvd(reference, _probabilities(fake, circuit, seed=12))
    snapshot = load_snapshot(SHIPPED / "ibm_lagos.json")
    from_snapshot = _tvd(reference, _probabilities(snapshot.backend(), circuit, seed=13))
    print(f"threshold {threshold:.4f}; fake vs fake {same_device_again:.4f}; fake vs snapshot {from_snapshot:.4f}")
    assert same_device_again < threshold
    assert from_snapshot < threshold

    symmetric = _tvd(reference, _probabilities(snapshot.backend(readout="symmetric"), circuit, seed=13))
    scaled = Snapshot.from_dict(snapshot.to_dict())
    for q in scaled.qubits:
        q.prob_meas0_prep1 *= 0.7
        q.prob_meas1_prep0 *= 0.7
    readout_scaled = _tvd(reference, _probabilities(scaled.backend(), circuit, seed=13))
    quito = load_snapshot(SHIPPED / "ibmq_quito.json")
    on_quito = transpile(_ghz(), quito.backend(), initial_layout=LAYOUT, seed_transpiler=7, optimization_level=1)
    other_device = _tvd(reference, _probabilities(quito.backend(), on_quito, seed=13))
    print(f"symmetric readout {symmetric:.4f}; readout x0.7 {readout_scaled:.4f}; quito {other_device:.4f}")
    assert min(symmetric, readout_scaled, other_device) > 2 * threshold
    assert Snapshot.from_backend(FakeQuitoV2()) == quito
