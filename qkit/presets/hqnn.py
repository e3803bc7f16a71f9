"""``hqnn-parallel`` and ``hqnn-quanv`` (seed 003, Senokosov et al.).

HQNN-Parallel: two conv blocks (5x5, 16 and 32 channels, BatchNorm, ReLU, 2x2 max-pool) ->
FC 1568 -> 20 (BatchNorm, ReLU) -> 4 parallel 5-qubit circuits (RX embedding, 3 strongly
entangling layers, <Y> readout), each with its own weights, run as ONE batched call
(``ParallelCircuits``) -> FC 20 -> classes. HQNN-Quanv: images downscaled to 14x14 -> 2x2
quanvolution with a 4-qubit kernel (RY(pi * pixel), one RY layer, 3 CNOTs, <Z>) -> 4 channels
of 7x7 -> FC -> classes; all patches of all images go through one QuantumLayer call. (The
paper says 4x4 channels, which a 2x2 kernel at stride 2 on 14x14 cannot give; qkit takes
stride 2, i.e. non-overlapping patches as in Henderson et al.) The paper gives no optimiser
settings: Adam 1e-3, batch 32, 20 epochs (the quanvolution experiment's epochs).
"""

from __future__ import annotations

from typing import Any

from qkit.presets.registry import Preset, register_preset

CIRCUITS = 4
TRAINING = {
    "lr": 1e-3,
    "head_lr_scale": 1.0,
    "weight_decay": 0.0,
    "ema_decay": 0.0,
    "scheduler": "none",
    "batch_size": 32,
    "epochs": 20,
    "patience": 0,
    "schedule": "fixed",
}  # the paper's epochs


def build_parallel(n_classes: int, *, n_qubits: int = 5, depth: int = 3, **engine: Any):
    from qkit.circuits import build_circuit
    from qkit.models import make_backbone
    from qkit.presets.layers import ParallelCircuits, ParallelQuantumHead

    net, n_features, _ = make_backbone("hqnn_cnn")
    spec = build_circuit("strongly_entangling", n_qubits, depth, rotation="x", readout="y")
    head = ParallelQuantumHead(n_features, n_classes, ParallelCircuits(spec, CIRCUITS, **engine))
    return net, head, n_features, {"n_qubits": n_qubits, "depth": depth}


def build_quanv(n_classes: int, *, depth: int = 1, **engine: Any):
    from torch import nn

    from qkit.circuits import build_circuit
    from qkit.presets.layers import Quanvolution
    from qkit.quantum import QuantumLayer

    kernel = QuantumLayer.from_spec(build_circuit("quanv", 4, depth), **engine)
    body = Quanvolution(kernel, size=14)
    return body, nn.Linear(body.n_features, n_classes), body.n_features, {"depth": depth}


PAPER_PARALLEL = (
    "MNIST 99.21% (45,194 params) vs CNN 98.71% (372,234); Medical MNIST 99.97% vs 99.96%; "
    "CIFAR-10 82.78% vs 82.64% (81,578 vs 81,698 params)"
)
register_preset(
    Preset(
        name="hqnn-parallel",
        source="003_0a4472dfebeb1243.txt",
        paper=PAPER_PARALLEL,
        builder=build_parallel,
        description="2 conv blocks (5x5; 16, 32 ch) -> FC 1568->20 -> 4 parallel 5-qubit circuits (RX, 3 strongly "
        "entangling layers, <Y>) in one batched call -> FC",
        model={"backbone": "hqnn_cnn", "head": "quantum", "circuit": "strongly_entangling", "n_qubits": 5, "depth": 3},
        train=TRAINING,
        tunable=("n_qubits", "depth"),
        quantum_head=False,
        head_kind="parallel-quantum",
    )
)
register_preset(
    Preset(
        name="hqnn-quanv",
        source="003_0a4472dfebeb1243.txt",
        paper="MNIST (500 train images, 10 runs): 0.67 ± 0.01 vs CNN4 (16 kernel weights) 0.66 ± 0.02, "
        "CNN1 (4 weights) 0.53 ± 0.02",
        description="14x14 grayscale -> 2x2 quanvolution (4-qubit kernel, 4 weights) -> 4 channels of 7x7 -> FC; "
        "all patches in one batched call",
        builder=build_quanv,
        model={"head": "quantum", "circuit": "quanv", "n_qubits": 4, "depth": 1},
        train=TRAINING,
        tunable=("depth",),
        quantum_head=False,
        head_kind="quanvolution",
    )
)
