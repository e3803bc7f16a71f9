"""qkit's statevector engine against the fused hand-written reference, interleaved in one process.

``../shared/bench/peer_bench.py`` times one implementation per process; on a shared machine
separate processes vary by tens of percent. Here both layers (``qkit`` and ``ref_fused``, built
by peer_bench itself on the same circuit, inputs and weights) are called alternately, so
they see the same machine, and the ratio of their fastest and median calls is printed.
Forward + backward of ``out.sum()``, gradients for inputs and weights, as peer_bench times it.

    python benchmarks/peer_ratio.py                         # 2 threads, all cells
    python benchmarks/peer_ratio.py --threads 1 --batches 256 --calls 100
    python benchmarks/peer_ratio.py --density fake_lagos    # the density engine too, under noise
    python benchmarks/peer_ratio.py --density fake_lagos --pennylane --calls 20   # and PennyLane
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

DEFAULT_BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench"


def density_layer(pb, circuit: str, w, backend: str):
    """The density engine on peer_bench's circuit, weights and observables, under ``backend``'s noise."""
    import numpy as np

    from qkit.quantum import QuantumLayer

    qc, xs, ws = pb.qiskit_circuit(circuit)
    layer = QuantumLayer(
        qc,
        xs,
        ws,
        pb.z_observables(),
        engine="density",
        engine_options={"backend": backend},
        initial_weights=torch.tensor(np.asarray(w).reshape(-1), dtype=torch.float32),
    )
    return layer, (lambda m: m.weight)


def measure(
    pb, circuit: str, batch: int, calls: int, density: str | None = None, pennylane: bool = False
) -> dict[str, list[float]]:
    x, w = pb.make_data(circuit, batch)
    impls = ("ref_fused", "qkit") + (("pl_backprop",) if pennylane else ())
    models = {impl: pb.build(impl, circuit, w) for impl in impls}
    if density:
        models["density"] = density_layer(pb, circuit, w, density)
    for model, weights in models.values():
        for _ in range(3):  # warm-up
            pb.fwd_bwd(model, weights, x)
    times: dict[str, list[float]] = {impl: [] for impl in models}
    for _ in range(calls):
        for impl, (model, weights) in models.items():
            times[impl].append(pb.fwd_bwd(model, weights, x)[0])
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench-dir", type=Path, default=DEFAULT_BENCH, help="folder of peer_bench.py")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 4096])
    parser.add_argument("--circuits", nargs="+", default=["dressed1", "dressed6", "sel2"])
    parser.add_argument("--calls", type=int, default=40, help="interleaved calls per layer (10 at 4096+)")
    parser.add_argument(
        "--density",
        metavar="BACKEND",
        help="also time the density engine under this backend's calibrated noise (e.g. fake_lagos)",
    )
    parser.add_argument(
        "--pennylane",
        action="store_true",
        help="also time PennyLane default.qubit with "
        "backprop (peer_bench's pl_backprop) and print each qkit layer's ratio to it",
    )
    args = parser.parse_args()
    if not (args.bench_dir / "peer_bench.py").is_file():
        sys.exit(f"error: no peer_bench.py in {args.bench_dir} (use --bench-dir)")
    sys.path.insert(0, str(args.bench_dir))
    import peer_bench as pb

    torch.set_num_threads(args.threads)  # peer_bench sets 2 on import
    print(f"torch {torch.__version__}, {args.threads} threads; ratio = ref_fused time / qkit time")
    for batch in args.batches:
        for circuit in args.circuits:
            times = measure(
                pb,
                circuit,
                batch,
                args.calls if batch < 4096 else max(10, args.calls // 4),
                args.density,
                args.pennylane,
            )
            ref, pl = times.pop("ref_fused"), times.pop("pl_backprop", None)
            for name, own in times.items():
                label = "qkit" if name == "qkit" else f"qkit density ({args.density})"
                versus_pl = f"; PennyLane {min(pl) * 1e6:.0f} us, {min(pl) / min(own):.1f}x" if pl else ""
                print(
                    f"{circuit:9s} batch {batch:5d}: {label} {min(own) * 1e6:7.0f} us, ref_fused "
                    f"{min(ref) * 1e6:7.0f} us; ratio fastest {min(ref) / min(own):.2f}x, "
                    f"median {statistics.median(ref) / statistics.median(own):.2f}x{versus_pl}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
