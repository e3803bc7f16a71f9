"""The density engine against Aer's density-matrix simulation of the same noisy batch, in one run.

Both evaluate the same ISA circuit (the layer's circuit transpiled for the backend on the
calibrated layout) under the same calibrated noise model (``DeviceNoise.noise_model()``,
readout included) for a batch of random inputs:

* references: ``AerSimulator(method="density_matrix")`` (1) running the batch as parameter
  binds of one circuit that saves the density matrix of the active qubits only (Aer's
  fastest path; readout still has to be applied afterwards, not timed), (2) the bound
  circuits saving the whole device's density matrix, as the issue measured it, and (3) the
  bound circuits measured with 1024 shots, which is how Aer applies readout error;
* qkit: ``DensityEngine.execute`` forward, and forward + backward (loss = sum of outputs,
  gradients for inputs and weights), float64 and float32.

Median of ``--repeats`` after warm-up; samples/s and the ratio to Aer are printed.

    python benchmarks/density.py                      # dressed, 4 qubits, fake_lagos, batch 156
    python benchmarks/density.py --circuit strongly_entangling --depth 2 --backend fake_torino
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def median_seconds(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--circuit", default="dressed")
    parser.add_argument("--qubits", type=int, default=4)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--backend", default="fake_lagos")
    parser.add_argument("--batch", type=int, default=156)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: stable on a shared 2-core machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from qiskit_aer import AerSimulator

    from qkit.circuits import build_circuit
    from qkit.engines.base import LayerProgram
    from qkit.engines.density import DensityEngine

    spec = build_circuit(args.circuit, args.qubits, args.depth)
    program = LayerProgram(spec.circuit, tuple(spec.inputs), tuple(spec.weights), tuple(spec.observables))
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (args.batch, len(program.inputs)))
    w = rng.normal(0, 0.3, len(program.weights))

    engine = DensityEngine(program, torch.float64, backend=args.backend)
    isa = engine.isa_circuit.copy()
    isa.save_density_matrix(qubits=engine.active_qubits)
    sim = AerSimulator(method="density_matrix", noise_model=engine.noise.noise_model())
    params = list(program.inputs) + list(program.weights)
    binds = [
        {
            p: [float(v) for v in np.concatenate([x, np.repeat(w[None], len(x), 0)], 1)[:, params.index(p)]]
            for p in isa.parameters
        }
    ]
    ops = dict(engine.isa_circuit.count_ops())
    print(
        f"{args.circuit} q={args.qubits} d={args.depth} on {args.backend}: qubits {engine.physical_qubits}, "
        f"ISA {ops}, batch {args.batch}, {args.threads} threads"
    )
    aer = median_seconds(lambda: sim.run(isa, parameter_binds=binds).result(), max(3, args.repeats // 3), warmup=1)
    rows = [("Aer: binds, active-qubit DM (reference)", aer)]
    values = np.concatenate([x, np.repeat(w[None], len(x), 0)], 1)
    bound = [
        engine.isa_circuit.assign_parameters({p: row[params.index(p)] for p in engine.isa_circuit.parameters})
        for row in values
    ]
    whole = [c.copy() for c in bound]
    for c in whole:
        c.save_density_matrix()
    measured = [c.measure_all(inplace=False) for c in bound]
    rows.append(("Aer: bound circuits, whole-device DM", median_seconds(lambda: sim.run(whole).result(), 3, 1)))
    rows.append(
        ("Aer: bound circuits, 1024 shots", median_seconds(lambda: sim.run(measured, shots=1024).result(), 3, 1))
    )
    for dtype in (torch.float64, torch.float32):
        eng = engine if dtype == torch.float64 else DensityEngine(program, dtype, backend=args.backend)
        xt = torch.tensor(x, dtype=dtype, requires_grad=True)
        wt = torch.tensor(w, dtype=dtype, requires_grad=True)
        with torch.no_grad():
            forward = median_seconds(lambda: eng.execute(xt, wt), args.repeats)
        both = median_seconds(lambda: eng.execute(xt, wt).sum().backward(), args.repeats)
        name = str(dtype).removeprefix("torch.")
        rows += [(f"qkit density {name} forward", forward), (f"qkit density {name} forward+backward", both)]
    refs = rows[:3]
    print(
        f"{'':42}{'seconds':>10}{'samples/s':>14}" + "".join(f"{'vs Aer (' + str(i + 1) + ')':>14}" for i in range(3))
    )
    for label, seconds in rows:
        print(
            f"{label:42}{seconds:10.4f}{args.batch / seconds:14,.0f}"
            + "".join(f"{ref / seconds:13.1f}x" for _, ref in refs)
        )


if __name__ == "__main__":
    main()
