"""QuantumLayer speed: forward + backward samples/s, against references measured in this run.

Every engine evaluates the same Qiskit circuit; the loss is the sum of the outputs and the
backward pass computes gradients for both the weights and the inputs. Each figure is the
median over repeats after warm-up. Ratios are against ``per-gate``: a plain per-gate torch
statevector (complex, one einsum per gate, as one would write it by hand) defined below.
PennyLane (default.qubit, backprop) and TorchQuantum run when importable (``pip install
-e .[bench]``); otherwise the script says so and skips them. Every engine's outputs are
first checked against qkit's statevector engine.

    python benchmarks/quantum_layer.py            # full table
    python benchmarks/quantum_layer.py --quick    # 4-qubit cases, batch 256 only
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np
import torch

from qkit.circuits import build_circuit
from qkit.engines.gates import flatten
from qkit.quantum import QuantumLayer

CASES = [("dressed", 4, 1), ("dressed", 4, 6), ("strongly_entangling", 4, 2), ("dressed", 8, 2), ("dressed", 12, 2)]
BATCHES = [256, 4096]
CONNECTOR_BATCH = 8  # parameter shift costs two circuit runs per parameter and sample


# ----------------------------------------------------------------- circuit program
def gate_program(spec):
    """(name, qubits, angle coefficients) per gate: angle = x @ cx + w @ cw + c."""
    index = {p: ("x", j) for j, p in enumerate(spec.inputs)}
    index.update({p: ("w", j) for j, p in enumerate(spec.weights)})
    program = []
    for gate in flatten(spec.circuit):
        if not gate.is_parametric:
            program.append((gate.name, gate.qubits, None))
            continue
        expr = gate.params[0]
        cx, cw = np.zeros(len(spec.inputs)), np.zeros(len(spec.weights))
        for p in expr.parameters:
            role, j = index[p]
            (cx if role == "x" else cw)[j] = float(expr.gradient(p))
        const = float(expr.bind({p: 0.0 for p in expr.parameters}))
        program.append((gate.name, gate.qubits, (cx, cw, const)))
    return program


def angle(coeffs, x, w):
    cx, cw, const = coeffs
    return x @ torch.as_tensor(cx, dtype=x.dtype) + w @ torch.as_tensor(cw, dtype=w.dtype) + const


# ------------------------------------------------------------- per-gate reference
def per_gate_reference(spec) -> Callable:
    """A competent hand-written batched statevector, one operation per gate.

    Complex state [B, 2^n]; a single-qubit gate is a reshape to [B, L, 2, R] and a batched
    matmul with its [B, 2, 2] matrix; a CNOT is a precomputed index gather. No fusion, no
    product-state shortcut, no real-arithmetic shortcut: that is what qkit adds.
    """
    program, n = gate_program(spec), spec.n_qubits
    dim = 2**n
    h = torch.tensor([[1, 1], [1, -1]], dtype=torch.complex64) / np.sqrt(2)
    basis = torch.arange(dim)
    z_signs = torch.stack([1.0 - 2.0 * ((basis >> k) & 1) for k in range(n)], 1)

    def cnot_gather(control, target):
        return torch.where((basis >> control) & 1 == 1, basis ^ (1 << target), basis)

    gathers = {qubits: cnot_gather(*qubits) for name, qubits, _ in program if name == "cx"}

    def rotation(name, t):
        c, s = torch.cos(t / 2).to(torch.complex64), torch.sin(t / 2).to(torch.complex64)
        if name == "ry":
            rows = [[c, -s], [s, c]]
        elif name == "rx":
            rows = [[c, -1j * s], [-1j * s, c]]
        else:  # rz
            e = torch.exp(-0.5j * t.to(torch.complex64))
            rows = [[e, torch.zeros_like(e)], [torch.zeros_like(e), e.conj()]]
        return torch.stack([torch.stack(r, -1) for r in rows], -2)

    def forward(x, w):
        b = x.shape[0]
        state = torch.zeros(b, dim, dtype=torch.complex64)
        state[:, 0] = 1.0
        for name, qubits, coeffs in program:
            if name == "cx":
                state = state[:, gathers[qubits]]
                continue
            m = h if name == "h" else rotation(name, angle(coeffs, x, w))
            m = m.expand(b, 2, 2) if m.dim() == 2 else m
            q = qubits[0]
            s = state.reshape(b, 2 ** (n - 1 - q), 2, 2**q)
            state = (m[:, None] @ s).reshape(b, dim)
        return (state.real**2 + state.imag**2) @ z_signs

    return forward


# ----------------------------------------------------------- optional third parties
def pennylane_engine(spec) -> Callable | None:
    try:
        import pennylane as qml
    except ImportError:
        return None
    program, n = gate_program(spec), spec.n_qubits
    dev = qml.device("default.qubit", wires=n)
    ops = {"h": qml.Hadamard, "rx": qml.RX, "ry": qml.RY, "rz": qml.RZ, "cx": qml.CNOT}

    @qml.qnode(dev, interface="torch", diff_method="backprop")
    def circuit(x, w):
        for name, qubits, coeffs in program:
            wires = [n - 1 - q for q in qubits]  # PennyLane wire 0 is the leftmost bit
            if coeffs is None:
                ops[name](wires=wires)
            else:
                ops[name](angle(coeffs, x, w), wires=wires)
        return [qml.expval(qml.PauliZ(n - 1 - k)) for k in range(n)]

    return lambda x, w: torch.stack(circuit(x, w), -1).float()


def torchquantum_engine(spec) -> Callable | None:
    try:
        import torchquantum as tq
        import torchquantum.functional as tqf
    except Exception:  # ImportError, or a broken install against newer qiskit
        return None
    program, n = gate_program(spec), spec.n_qubits
    fns = {"h": tqf.h, "rx": tqf.rx, "ry": tqf.ry, "rz": tqf.rz, "cx": tqf.cnot}

    def forward(x, w):
        dev = tq.QuantumDevice(n_wires=n, bsz=x.shape[0], device=x.device)
        for name, qubits, coeffs in program:
            wires = [n - 1 - q for q in qubits]
            if coeffs is None:
                fns[name](dev, wires=wires)
            else:
                t = angle(coeffs, x, w).expand(x.shape[0])
                fns[name](dev, wires=wires, params=t[:, None], static=False)
        out = tq.measurements.expval_joint_analytical
        return torch.stack(
            [out(dev, "".join("Z" if i == n - 1 - k else "I" for i in range(n))) for k in range(n)], -1
        ).float()

    return forward


# ------------------------------------------------------------------------ timing
def samples_per_second(fn: Callable, x: torch.Tensor, w: torch.Tensor, repeats: int) -> float:
    def step():
        xi, wi = x.detach().requires_grad_(True), w.detach().requires_grad_(True)
        fn(xi, wi).sum().backward()

    for _ in range(max(2, repeats // 5)):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return x.shape[0] / statistics.median(times)


def run_case(name, n_qubits, depth, batch, repeats, rows):
    spec = build_circuit(name, n_qubits=n_qubits, depth=depth)
    layer = QuantumLayer.from_spec(spec)
    engines = {
        "qkit statevector": lambda x, w: layer.engine.execute(x, w),
        "per-gate (reference)": per_gate_reference(spec),
        "pennylane default.qubit": pennylane_engine(spec),
        "torchquantum": torchquantum_engine(spec),
    }
    torch.manual_seed(0)
    x = torch.rand(batch, spec.n_inputs) * 2 - 1
    w = torch.rand(spec.n_weights) * 2 - 1
    expected = layer.engine.execute(x[:64], w)
    results = {}
    for label, fn in engines.items():
        if fn is None:
            continue
        if n_qubits > 8 and batch > 256 and label.startswith(("pennylane", "torchquantum")):
            continue  # minutes per case; the 256 batch already shows the trend
        got = fn(x[:64], w)
        if not torch.allclose(got, expected, atol=1e-4):
            raise SystemExit(f"{label} disagrees with qkit on {name}: max diff {(got - expected).abs().max():.2e}")
        reps = repeats if n_qubits <= 8 else max(3, repeats // 5)
        results[label] = samples_per_second(fn, x, w, reps)
    if batch == BATCHES[0] and n_qubits <= 4:
        connector = QuantumLayer.from_spec(spec, engine="connector")
        results["qiskit-ml connector"] = samples_per_second(
            lambda xi, wi: connector.engine.execute(xi, wi), x[:CONNECTOR_BATCH], w, 3
        )
    reference = results["per-gate (reference)"]
    for label, value in results.items():
        rows.append((f"{name} q={n_qubits} d={depth}", batch, label, value, value / reference))
        print(f"{rows[-1][0]:<28} {batch:>6} {label:<26} {value:>14,.0f} {value / reference:>9.2f}x", flush=True)
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4-qubit cases at batch 256 only")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if pennylane_engine(build_circuit("dressed", n_qubits=2)) is None:
        print("pennylane not importable: skipped (pip install -c constraints.txt -e '.[bench]')")
    if torchquantum_engine(build_circuit("dressed", n_qubits=2)) is None:
        # Every torchquantum release on PyPI (<= 0.1.8) imports qiskit<1.0 APIs at import
        # time, so it cannot live next to qiskit 2.x; it is not part of the bench extra.
        print("torchquantum not importable (its releases need qiskit<1.0): skipped")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"median of {args.repeats} after warm-up; forward+backward, grads for inputs and weights"
    )
    print(f"{'circuit':<28} {'batch':>6} {'engine':<26} {'samples/s':>14} {'vs ref':>10}")
    cases = [c for c in CASES if c[1] == 4] if args.quick else CASES
    batches = BATCHES[:1] if args.quick else BATCHES
    rows, summary = [], {}
    for case in cases:
        for batch in batches:
            summary[(case, batch)] = run_case(*case, batch, args.repeats, rows)
    target = summary.get((("dressed", 4, 1), 256))
    if target:
        ours = target["qkit statevector"]
        print(f"\ndressed q=4 d=1, batch 256: qkit statevector {ours:,.0f} samples/s")
        for label, value in target.items():
            if label != "qkit statevector":
                print(f"  {ours / value:>10,.1f}x {label}")


if __name__ == "__main__":
    main()
