"""Layout choice against measured error: every candidate layout's estimate and its emulated error.

For a ``dressed``-like layer on a fake backend, ``choose_layout`` ranks its candidates; each
ISA circuit is then emulated exactly (Aer density matrix, scheduled so idle qubits relax,
calibrated gate noise, the asymmetric readout confusion applied to the probabilities: no shots)
and compared with the noiseless values. Prints the table, Spearman's rank correlation and the
chosen layout's measured error against the preset pass manager's default.

    python benchmarks/layout.py                     # fake_lagos, dressed 4 qubits
    python benchmarks/layout.py --backend fake_nairobi --rows 8
"""

from __future__ import annotations

import argparse

import numpy as np

from qkit.hardware.emulate import emulated_error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="fake_lagos")
    parser.add_argument("--circuit", default="dressed")
    parser.add_argument("--qubits", type=int, default=4)
    parser.add_argument("--rows", type=int, default=4, help="random input rows (weights near zero)")
    args = parser.parse_args()

    from scipy.stats import spearmanr

    from qkit.circuits import build_circuit
    from qkit.hardware import resolve_backend
    from qkit.hardware.layout import choose_layout
    from qkit.hardware.snapshot import Snapshot

    backend = resolve_backend(args.backend).backend
    snapshot = Snapshot.from_backend(backend)
    spec = build_circuit(args.circuit, args.qubits, 1)
    rng = np.random.default_rng(0)
    rows = [
        np.concatenate([rng.uniform(-1, 1, len(spec.inputs)), rng.normal(0, 0.05, len(spec.weights))])
        for _ in range(args.rows)
    ]
    order = {p: i for i, p in enumerate(list(spec.inputs) + list(spec.weights))}
    values = [[row[order[p]] for p in spec.circuit.parameters] for row in rows]
    for label, sample in (("z uniform in [-1, 1]", None), ("the layer's outputs on the rows", values)):
        choice = choose_layout(spec.circuit, spec.observables, backend, snapshot=snapshot, top=1000, values=sample)
        measured = [emulated_error(c.isa_circuit, spec, backend, snapshot, rows) for c in choice.candidates]
        print(f"\n{backend.name}, {args.circuit} {args.qubits} qubits; estimate averaged over {label}")
        print(f"{'layout':<16}{'estimate':>10}{'measured':>10}{'2q':>4}{'depth':>6}  note")
        for c, m in zip(choice.candidates, measured):
            note = ", ".join(n for n, on in (("chosen", c is choice.chosen), ("default", c.is_default)) if on)
            print(f"{str(c.layout):<16}{c.estimate:>10.4f}{m:>10.4f}{c.two_qubit_gates:>4}{c.depth:>6}  {note}")
        rho = spearmanr([c.estimate for c in choice.candidates], measured).statistic
        chosen = measured[choice.candidates.index(choice.chosen)]
        default = measured[[c.is_default for c in choice.candidates].index(True)]
        print(f"Spearman {rho:.3f}; measured error chosen {chosen:.4f} vs preset default {default:.4f}")


if __name__ == "__main__":
    main()
