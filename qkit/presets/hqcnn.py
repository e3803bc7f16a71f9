"""``hqcnn`` (seed 002): a hybrid quantum-classical CNN for binary MedMNIST tasks.

Five 3x3 conv layers (16, 16 + max-pool, 64, 64, 64 + max-pool; BatchNorm, ReLU) -> flatten
(3136 at 28 px) -> FC1 -> 4 qubits: angle embedding (RX, PennyLane's default) + 3 strongly
entangling layers (Rot = RZ RY RZ, CNOTs), <Z> readout -> FC2 -> ReLU -> FC3. Adam 1e-3, batch
64, 10 epochs. The paper does not give FC2's width: 16 here. qkit's head keeps its BatchNorm
and tanh between FC1 and the circuit (see ``QuantumHead``).
"""

from __future__ import annotations

from typing import Any

from qkit.presets.registry import Preset, register_preset

HIDDEN = 16


def build(n_classes: int, *, n_qubits: int = 4, depth: int = 3, **engine: Any):
    from qkit.presets.common import backbone_with_head, mlp_post

    net, head, n_features, settings = backbone_with_head(
        n_classes,
        backbone="hqcnn_cnn",
        circuit="strongly_entangling",
        n_qubits=n_qubits,
        depth=depth,
        circuit_options={"rotation": "x", "readout": "z"},
        **engine,
    )
    head.post = mlp_post(head.quantum.n_outputs, HIDDEN, n_classes)
    return net, head, n_features, {"n_qubits": n_qubits, "depth": depth}


register_preset(
    Preset(
        name="hqcnn",
        source="002_80ded0d047d0a90a.txt",
        paper="binary subsets, test ACC / AUC: PathMNIST 97.83% / 100.00%, OrganAMNIST 98.84% / 99.00%, "
        "BloodMNIST 99.12% / 99.91% (vs a CNN benchmark 68.99 / 97.62 / 72.60% ACC)",
        description="5 conv layers (16,16,64,64,64; BN, ReLU, pool) -> FC -> 4 qubits x 3 strongly entangling "
        f"layers -> FC({HIDDEN}) -> ReLU -> FC; Adam 1e-3, batch 64, 10 epochs",
        builder=build,
        model={"backbone": "hqcnn_cnn", "head": "quantum", "circuit": "strongly_entangling", "n_qubits": 4, "depth": 3},
        train={
            "lr": 1e-3,
            "head_lr_scale": 1.0,
            "weight_decay": 0.0,
            "ema_decay": 0.0,
            "scheduler": "none",
            "batch_size": 64,
            "epochs": 10,
            "patience": 0,
            "schedule": "fixed",
        },  # the paper's 10 epochs
        tunable=("n_qubits", "depth"),
    )
)
