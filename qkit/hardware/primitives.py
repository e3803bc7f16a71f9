"""The two ways a hardware run's rows reach a backend: the runtime's executor Sampler or Estimator.

Both are qiskit-ibm-runtime's client-side primitives built on the Executor (the legacy
``SamplerV2``/``EstimatorV2`` are deprecated since 0.50); on fake backends and snapshots they
run in the runtime's local testing mode, on ``ibm_*`` devices as real jobs.

* ``SamplerPrimitive`` (``--mitigation none`` and ``readout``): one PUB per measurement basis
  (``qkit.hardware.measure``); a job's result is the packed shots of every basis, saved as
  they are, so raw and readout-mitigated values are computed from the same shots, and again
  from disk on resume. It is also the faster one in local mode (about 2 ms a row at 1024
  shots on FakeLagosV2, against 17 ms for the Estimator).
* ``EstimatorPrimitive`` (``--mitigation trex``): one PUB of the ISA circuit and its mapped
  observables at resilience level 1, the runtime's own twirled readout error extinction.

Interface: ``submit(mode, values, options) -> job``, ``collect(job) -> arrays to save``,
``values(saved, rows, matrices) -> [rows, n_observables]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qkit.hardware.measure import Distribution, MeasuredCircuits, counts_of


class SamplerPrimitive:
    name = "sampler"

    def __init__(self, circuits: MeasuredCircuits, num_qubits: int, noise_of: Any = None):
        self.circuits = circuits
        self.num_qubits = num_qubits  # of the device, for mthree's per-qubit matrices
        self.noise_of = noise_of  # emulations: wide circuits run copy by copy (qkit.hardware.wide)

    @property
    def copies(self) -> int:
        return self.circuits.copies

    @property
    def physical_qubits(self) -> list[int]:
        return self.circuits.layout

    @property
    def read_qubits(self) -> list[int]:
        return self.circuits.physical_qubits

    @property
    def bases(self) -> int:
        return len(self.circuits.bases)

    @property
    def isa_circuits(self) -> list:
        return [b.isa for b in self.circuits.bases]

    def submit(self, mode: Any, values: np.ndarray, options: dict, shots: int):
        from qkit.hardware.wide import sample

        return sample(mode, self.circuits.pubs(values, shots), options, self.noise_of)

    def collect(self, job: Any) -> dict[str, np.ndarray]:
        result = job.result()
        return {f"basis{k}": np.asarray(pub.data.meas.array) for k, pub in enumerate(result)}

    def values(self, saved: dict, rows: int, matrices: dict | None = None) -> np.ndarray:
        """Expectation values ``[rows * copies, n_obs]`` (row m * copies + k: copy k of wide row m)
        from the saved shots of ``rows`` wide rows; through mthree when ``matrices`` are given."""
        from qkit.hardware.mitigation import correct

        distributions = []
        for k, basis in enumerate(self.circuits.bases):
            outcomes = self.circuits.outcomes(saved[f"basis{k}"])
            if matrices is None:
                distributions.append(Distribution.from_outcomes(outcomes))
            else:
                counts = counts_of(outcomes, self.circuits.n_bits)
                mappings = [basis.mappings[r % self.copies] for r in range(len(counts))]
                distributions.append(Distribution.from_quasis(correct(counts, mappings, matrices, self.num_qubits)))
        return self.circuits.expectation_values(distributions, rows * self.copies)


class EstimatorPrimitive:
    name = "estimator"
    copies = 1

    def __init__(self, engine: Any):
        self.engine = engine  # qkit.engines.estimator.EstimatorEngine (ISA, observables)

    @property
    def physical_qubits(self) -> list[int]:
        return list(self.engine.physical_qubits)

    @property
    def read_qubits(self) -> list[int]:
        return sorted(self.engine.physical_qubits)

    @property
    def bases(self) -> int:
        from qiskit.quantum_info import PauliList

        paulis = PauliList([p for op in self.engine.isa_observables for p in op.paulis])
        return len(paulis.group_qubit_wise_commuting()) if len(paulis) else 1

    @property
    def isa_circuits(self) -> list:
        return [self.engine.isa_circuit]

    def submit(self, mode: Any, values: np.ndarray, options: dict, shots: int):
        from qiskit_ibm_runtime.executor_estimator import Estimator

        engine = self.engine
        if len(engine.columns):
            pub = (engine.isa_circuit, engine.isa_observables, values[:, None, engine.columns])
        else:
            pub = (engine.isa_circuit, engine.isa_observables)
        return Estimator(mode=mode, options={**options, "resilience_level": engine.resilience_level}).run([pub])

    def collect(self, job: Any) -> dict[str, np.ndarray]:
        return {"evs": np.asarray(job.result()[0].data.evs, dtype=np.float64)}

    def values(self, saved: dict, rows: int, matrices: dict | None = None) -> np.ndarray:
        n_obs = len(self.engine.isa_observables)
        return np.broadcast_to(np.asarray(saved["evs"]).reshape(-1, n_obs), (rows, n_obs)).copy()
