"""The density engine's fast PTMs of Aer's noise channels equal Qiskit's conversion of the errors.

``qkit.engines.ptm.ptm`` converts an Aer ``QuantumError`` from cached PTMs of its circuits, and a
``qkit.noise.model.Channel`` (depolarizing, then thermal relaxation per qubit) as the product of
its parts' PTMs; both must equal ``qiskit.quantum_info.PTM(error)`` of the composed error that
Aer's noise model applies, the reference that ``QuantumError.to_quantumchannel`` builds circuit
by circuit.
"""

import numpy as np
import pytest
from qiskit.quantum_info import PTM, SuperOp
from qiskit_aer.noise import depolarizing_error, thermal_relaxation_error

from qkit.engines.ptm import ptm
from qkit.noise.model import Channel, NoiseScales, device_noise

# (t1, t2, duration): T2 > T1 (Aer builds a Kraus channel) and T2 <= T1 (a mixture with resets).
KRAUS = (1.2e-4, 1.9e-4, 6.8e-8)
RESETS = (1.5e-4, 1.1e-4, 6.8e-8)


def _composed(p, relaxation):
    relax = None
    for spec in relaxation:
        single = thermal_relaxation_error(*spec)
        relax = single if relax is None else relax.expand(single)
    return depolarizing_error(p, len(relaxation)).compose(relax)


@pytest.mark.parametrize(
    "relaxation",
    [(KRAUS,), (RESETS,), (KRAUS, RESETS), (RESETS, KRAUS), ((3e-5, 6e-5, 5.3e-7), (8e-5, 1e-5, 5.3e-7))],
    ids=["1q-kraus", "1q-resets", "2q-kraus-resets", "2q-resets-kraus", "2q-long"],
)
@pytest.mark.parametrize("gate_error", [0.08, 0.4])
def test_fast_ptm_of_depolarizing_then_relaxation_equals_qiskit(relaxation, gate_error):
    n = len(relaxation)
    channel = Channel(n, relaxation, relaxation, gate_error=gate_error, gate_scale=1.0)
    assert channel.depolarizing > 0
    error = _composed(channel.depolarizing, relaxation)
    reference = np.asarray(PTM(error).data)
    assert reference.shape == (4**n, 4**n)
    for _ in range(2):  # the second time from the caches
        np.testing.assert_allclose(ptm(error, n), reference, atol=1e-14, rtol=0)
    np.testing.assert_allclose(ptm(channel, n), reference, atol=1e-14, rtol=0)
    np.testing.assert_allclose(PTM(channel).data, reference, atol=1e-14, rtol=0)
    np.testing.assert_allclose(SuperOp(channel.error()).data, SuperOp(error).data, atol=1e-15, rtol=0)
    assert channel.error().size == error.size


@pytest.mark.parametrize(
    "scales",
    [
        NoiseScales(),
        NoiseScales(gate=0.5, relaxation=2.0),
        NoiseScales(gate=1.0, relaxation=0.0),
        NoiseScales(gate=0.0),
    ],
    ids=["calibrated", "scaled", "no-relaxation", "no-gate"],
)
def test_device_channels_equal_their_aer_errors(scales):
    """Every channel of a device, by its parts, is the channel of its Aer error (``errors``)."""
    from qkit.hardware.backends import resolve_backend

    target = resolve_backend("fake_lagos").backend.target
    noise = device_noise(target, {}, scales, {0, 1, 2})
    assert len(noise.errors) > 0 and noise.error("no_such_gate", (0,)) is None
    for (name, qubits), error in noise.errors.items():
        channel = noise.channel(name, qubits)
        assert isinstance(channel, Channel)
        reference = np.asarray(PTM(error).data)
        np.testing.assert_allclose(ptm(channel, len(qubits)), reference, atol=1e-14, rtol=0)
        np.testing.assert_allclose(ptm(error, len(qubits)), reference, atol=1e-14, rtol=0)
