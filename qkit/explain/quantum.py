"""``qkit explain RUN --quantum``: how a split's images sit in the quantum layer's feature space.

Seed 000 asked to "see how the data appears in our Hilbert space. Ideally, both classes would
appear very separately in it, as tight clusters." This module answers with numbers: for every
image of the split it records the backbone features (pre-net inputs), the circuit input
angles (pre-net outputs), the quantum layer's outputs and each qubit's Bloch vector
(⟨X⟩, ⟨Y⟩, ⟨Z⟩ of its reduced state), then measures class separability on each
representation with the same cross-validated linear probe and the silhouette score. If the
quantum outputs separate the classes less well than the angles that went in, the circuit
is losing information the post-net could have used.

The Bloch vectors come from Qiskit itself (``Statevector`` of the circuit bound to each
image's angles and the trained weights), independent of the engine that trained the layer;
a vector shorter than 1 means the qubit is entangled with the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from qkit.errors import QkitError

PROBE_FOLDS = 5


@dataclass
class QuantumFeatures:
    """Per image of one split: what goes into and comes out of the quantum layer."""

    labels: np.ndarray  # [N]
    features: np.ndarray  # [N, F] backbone output = pre-net input
    angles: np.ndarray  # [N, k] pre-net output = circuit inputs
    outputs: np.ndarray  # [N, m] quantum layer output (expectation values)
    bloch: np.ndarray  # [N, q, 3] (<X>, <Y>, <Z>) per qubit
    observables: list[str]  # label of each output


def quantum_layer(model: Any):
    head = getattr(model, "head", None)
    if not hasattr(head, "quantum") or not hasattr(head, "encode"):
        raise QkitError(f"the run has a {type(head).__name__} head: --quantum needs a quantum head")
    return head


def collect(model: Any, dataset: Any, batch_size: int = 256) -> QuantumFeatures:
    """Run the split through the model once (no gradients) and compute the Bloch vectors."""
    import torch

    from qkit.repro import make_loader

    head = quantum_layer(model)
    model.eval()
    parts: dict[str, list] = {"features": [], "angles": [], "outputs": [], "labels": []}
    with torch.no_grad():
        for x, y in make_loader(dataset, batch_size):
            f = model.backbone(x)
            a = head.encode(f)
            parts["features"].append(f.double())
            parts["angles"].append(a.double())
            parts["outputs"].append(head.quantum(a).double())
            parts["labels"].append(y.view(-1).long())
    arrays = {k: torch.cat(v).numpy() for k, v in parts.items()}
    program = head.quantum.program
    weights = head.quantum.weight.detach().double().cpu().numpy()
    return QuantumFeatures(
        arrays["labels"],
        arrays["features"],
        arrays["angles"],
        arrays["outputs"],
        bloch_vectors(program, arrays["angles"], weights),
        [observable_label(o) for o in program.observables],
    )


def observable_label(op: Any) -> str:
    """``SparsePauliOp('IIZI')`` -> ``Z1``; anything else keeps its Pauli string."""
    if len(op.paulis) == 1:
        label = op.paulis[0].to_label().lstrip("+-i")
        active = [(q, p) for q, p in enumerate(reversed(label)) if p != "I"]
        if len(active) == 1:
            return f"{active[0][1]}{active[0][0]}"
    return str(op.paulis[0].to_label()) if len(op.paulis) == 1 else f"obs({len(op.paulis)} terms)"


def bloch_vectors(program: Any, angles: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """[N, q, 3]: each qubit's (<X>, <Y>, <Z>) in the state the circuit prepares for each row of angles."""
    from qiskit.quantum_info import Pauli, Statevector

    circuit = program.circuit
    if any(inst.operation.name in ("measure", "reset") for inst in circuit.data):
        raise QkitError("the circuit measures or resets: Bloch vectors need a unitary circuit")
    fixed = dict(zip(program.weights, weights))
    paulis = [Pauli(p) for p in "XYZ"]
    out = np.empty((len(angles), circuit.num_qubits, 3))
    for i, row in enumerate(angles):
        state = Statevector(circuit.assign_parameters({**fixed, **dict(zip(program.inputs, row))}))
        for q in range(circuit.num_qubits):
            out[i, q] = [state.expectation_value(p, [q]).real for p in paulis]
    return out


def probe_auc(x: np.ndarray, labels: np.ndarray, positive_class: int | None, seed: int = 0) -> float | None:
    """Cross-validated AUC of a standardised logistic regression on ``x`` (out-of-fold scores)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    counts = np.bincount(labels)
    folds = min(PROBE_FOLDS, int(counts[counts > 0].min()))
    if folds < 2 or (counts > 0).sum() < 2:
        return None
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(probe, x, labels, cv=cv, method="predict_proba")
    if positive_class is not None and scores.shape[1] == 2:
        return float(roc_auc_score(labels == positive_class, scores[:, positive_class]))
    return float(roc_auc_score(labels, scores, multi_class="ovr"))


def silhouette(x: np.ndarray, labels: np.ndarray) -> float | None:
    from sklearn.metrics import silhouette_score

    if len(np.unique(labels)) < 2 or len(labels) < 3:
        return None
    return float(silhouette_score(x, labels))


def separability(qf: QuantumFeatures, positive_class: int | None) -> dict:
    """Probe AUC and silhouette for the pre-net inputs, pre-net outputs and quantum outputs."""
    reps = {
        "prenet_inputs": qf.features,
        "prenet_outputs": qf.angles,
        "quantum_outputs": qf.outputs,
        "bloch_vectors": qf.bloch.reshape(len(qf.bloch), -1),
    }
    return {
        name: {
            "dims": int(x.shape[1]),
            "probe_auc": probe_auc(x, qf.labels, positive_class),
            "silhouette": silhouette(x, qf.labels),
        }
        for name, x in reps.items()
    }


def summary(qf: QuantumFeatures, class_names: list[str]) -> dict:
    """Per class: mean and std of each output and each qubit's Bloch vector, and its mean length."""
    out = {}
    for c, name in enumerate(class_names):
        sel = qf.labels == c
        if not sel.any():
            continue
        b = qf.bloch[sel]
        out[name] = {
            "n": int(sel.sum()),
            "outputs_mean": qf.outputs[sel].mean(0).tolist(),
            "outputs_std": qf.outputs[sel].std(0).tolist(),
            "bloch_mean": b.mean(0).tolist(),
            "bloch_std": b.std(0).tolist(),
            "bloch_length_mean": np.linalg.norm(b, axis=2).mean(0).tolist(),
        }
    return out
