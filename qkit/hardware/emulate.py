"""An exact noisy reference: what a layout's outputs would measure, without shot noise.

The ISA circuit is scheduled (so idle qubits relax), run as an Aer density matrix with the
snapshot's calibrated gate noise, and the asymmetric readout confusion is applied to each
read qubit's <Z> exactly. It is the yardstick that layout estimates are ranked against
(``benchmarks/layout.py``, ``tests/hardware/test_hardware_layout.py``). Observables must be single-qubit
Z, observable k read on the layout's k-th physical qubit (the ``dressed``-style heads).
"""

from __future__ import annotations

import numpy as np


def emulated_error(isa, spec, backend, snapshot, rows) -> float:
    """Mean |<Z_k> - exact| of ``isa`` under the calibrated noise, readout included, no shots.

    ``rows``: parameter values in ``spec.inputs + spec.weights`` order.
    """
    from qiskit.quantum_info import Statevector
    from qiskit.transpiler import PassManager
    from qiskit.transpiler.passes import ALAPScheduleAnalysis, PadDelay
    from qiskit_aer import AerSimulator

    sim = AerSimulator(method="density_matrix", noise_model=snapshot.noise_model(readout="none"))
    scheduled = PassManager([ALAPScheduleAnalysis(target=backend.target), PadDelay(target=backend.target)]).run(isa)
    scheduled.save_density_matrix()
    read_on = [int(q) for q in isa.layout.final_index_layout()]
    index = np.arange(2**isa.num_qubits)
    errors = []
    for row in rows:
        bind = dict(zip(list(spec.inputs) + list(spec.weights), row))
        exact = Statevector(spec.circuit.assign_parameters(bind))
        rho = sim.run(scheduled.assign_parameters({p: bind[p] for p in scheduled.parameters})).result()
        probs = np.real(np.diag(np.asarray(rho.data(0)["density_matrix"])))
        for k, obs in enumerate(spec.observables):  # <Z_k>, read on physical qubit read_on[k]
            q = read_on[k]
            z = float(np.sum(probs * (1 - 2 * ((index >> q) & 1))))
            p01, p10 = snapshot.qubits[q].prob_meas0_prep1, snapshot.qubits[q].prob_meas1_prep0
            errors.append(abs((1 - p01 - p10) * z + (p01 - p10) - float(np.real(exact.expectation_value(obs)))))
    return float(np.mean(errors))
