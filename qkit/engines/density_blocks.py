"""The density engine's constant blocks between weight layers, made cheap to walk.

A block (CX or ECR with its noise, constant single-qubit gates) acts on all ``4^k`` Pauli
components: walked as one dense matrix it is the largest op of the walk (256 KB at k = 4, read
forward and backward). But a block is a product of 1- and 2-qubit gates, and most of them are
local to one half of the qubits that the layers are split into (``hi (x) lo``): such a gate at
the start of a block commutes to the layer before it and joins that layer's half matrix
(``hi <- G hi``), one at the end joins the next layer's (``lo <- lo G``), at the cost of one
batched matmul per half for all layers. What is left, the gates that cross the halves, usually
spans fewer than k qubits and is applied as a window: a ``[4^w, 4^w]`` matrix on a view of the
rows (64 x 64 instead of 256 x 256 for a 4-qubit chain).
"""

from __future__ import annotations

import torch

from qkit.engines.ptm import apply_ptm


def embed(gates: list, first: int, n: int) -> torch.Tensor:
    """``[4^n, 4^n]``: the product of ``gates`` (``(qubits, PTM)`` in time order) on qubits
    ``first .. first + n - 1``, qubit ``first`` the least significant digit."""
    # ``apply_ptm`` maps rows r to G r, i.e. R -> R G^T: applied to the product's transpose it
    # left-multiplies by G, with no identity and no 4^n x 4^n matmul per gate.
    transposed = torch.eye(4**n, dtype=torch.float64)
    for qubits, ptm in gates:
        transposed = apply_ptm(transposed, ptm[None], tuple(q - first for q in qubits), n)
    return transposed.T


def plan_blocks(segments: list, k: int, frozen: int | None) -> tuple[list, dict]:
    """``(segments, folds)``: each ``["const", gates]`` segment's half-local gates at its ends
    moved into the neighbouring layers (not into segment ``frozen``, the absorbed layer), and
    the rest as ``["const", ("window", matrix, first digit, digits)]`` (or the full matrix,
    ``digits == k``). ``folds[n] = {"hi_after", "hi_before", "lo_after", "lo_before"}``: the
    constant factors of the n-th layer's halves, ``hi <- after @ hi @ before``."""
    halves = (range(k // 2, k), range(k // 2))  # hi, lo
    folds: dict[int, dict] = {}  # by layer number (0 = the first layer)
    number = {i: n for n, i in enumerate(i for i, (kind, _) in enumerate(segments) if kind == "layer")}

    def half(qubits):
        return next((name for name, qs in zip(("hi", "lo"), halves) if set(qubits) <= set(qs)), None)

    def fold(i, name, side, gates):
        first, n = (k // 2, k - k // 2) if name == "hi" else (0, k // 2)
        m = embed(gates, first, n)
        entry = folds.setdefault(number[i], {}).get(f"{name}_{side}")
        folds[number[i]][f"{name}_{side}"] = m if entry is None else (m @ entry if side == "after" else entry @ m)

    out = []
    for i, (kind, data) in enumerate(segments):
        if kind != "const":
            out.append([kind, data])
            continue
        prev_ok = i > 0 and segments[i - 1][0] == "layer" and i - 1 != frozen
        next_ok = i + 1 < len(segments) and segments[i + 1][0] == "layer" and i + 1 != frozen
        kept = []
        for gate in data:  # commutes to the start: joins the layer before
            name = half(gate[0])
            if prev_ok and name and not any(set(q) & set(gate[0]) for q, _ in kept):
                fold(i - 1, name, "after", [gate])
            else:
                kept.append(gate)
        gates = []
        for gate in reversed(kept):  # commutes to the end: joins the layer after
            name = half(gate[0])
            if next_ok and name and not any(set(q) & set(gate[0]) for q, _ in gates):
                fold(i + 1, name, "before", [gate])
            else:
                gates.append(gate)
        if gates:
            gates.reverse()
            first = min(q for qs, _ in gates for q in qs)
            n = max(q for qs, _ in gates for q in qs) - first + 1
            out.append(["const", ("window", embed(gates, first, n), first, n)])
    return out, folds
