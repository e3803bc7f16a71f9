"""The density engine's batch-independent suffix, in the Heisenberg picture, in a few ops.

After the last input-dependent gate, the density engine carries the readout rows ``r``
(``[n_outputs, 4^k]``) backwards through the rest of the circuit: ``r <- r M`` for each step's
PTM ``M``, last step first, and the outputs are ``state @ r.T``. Applied step by step that is
5-8 torch ops per gate, forward and backward again; a 6-layer ansatz transpiled for a device is
~40 steps. Planned once, the suffix becomes a short list of segments:

* ``const``: consecutive steps without free parameters (CX with its noise, SX, ...) multiplied
  at compile time into one ``[4^k, 4^k]`` matrix, one matmul of ``r`` per forward pass;
* ``layer``: consecutive single-qubit runs on distinct qubits (an ansatz's rotations): all
  runs of all layers are computed as one stacked chain of ``[m, 4, 4]`` matmuls, and a layer
  acts on ``r`` as the Kronecker product of its runs' PTMs, split into the more and the less
  significant half of the qubits: ``r <- K_hi^T r K_lo`` with ``r`` viewed as a matrix, two
  matmuls whatever the number of qubits in the layer;
* ``step``: anything else (a two-qubit gate with a free angle) as before, one step at a time.
"""

from __future__ import annotations

import torch

from qkit.engines.ptm import apply_ptm
from qkit.engines.statevector import kron_matrices, kron_rows


def plan_suffix(engine) -> tuple[list, list | None, list]:
    """``(segments, stacked chain of the runs | None, runs)`` for the engine's ``suffix`` steps;
    buffers are registered on the engine."""
    k, runs = engine.k, []
    eye = torch.eye(4 ** k, dtype=torch.float64)
    # Greedy layering: ``before`` (constants) | ``layer`` (runs on distinct qubits) | ``after``
    # (steps after the layer). A constant step joins ``before`` when it commutes with the layer
    # and nothing is in ``after``; a run joins the layer when no step in ``after`` touches its
    # qubit (it then moves before them); anything else closes the layer.
    segments, before, layer, after = [], None, [], []

    def close():
        nonlocal before, layer, after
        if before is not None:
            segments.append(["const", before])
        if layer:
            segments.append(["layer", layer])
        before, layer = None, []
        for kind, data, _ in after:                   # the steps after the layer, in order
            if kind == "const":
                before = data if before is None else data @ before
            else:
                if before is not None:
                    segments.append(["const", before])
                    before = None
                segments.append(["step", data])
        after = []

    for step in engine.suffix:
        _, qubits, items = step
        in_layer = {q for q, _ in layer}
        touched = {q for s in after for q in s[2]}
        if all(item[0] == "const" for item in items):
            matrix = torch.eye(4 ** len(qubits), dtype=torch.float64)
            for item in items:                        # items in time order
                matrix = getattr(engine, item[1])[0].double() @ matrix
            full = apply_ptm(eye, matrix[None], qubits, k).T  # rows of eye through M: M_full^T
            if not after and not in_layer & set(qubits):
                before = full if before is None else full @ before
            else:
                after.append(("const", full, qubits))
        elif len(qubits) == 1 and qubits[0] not in in_layer and qubits[0] not in touched:
            layer.append((qubits[0], len(runs)))
            runs.append(items)
        elif len(qubits) == 1:
            close()
            layer.append((qubits[0], len(runs)))
            runs.append(items)
        else:
            after.append(("step", step, qubits))
    close()
    if before is not None:
        segments.append(["const", before])
    # The Heisenberg walk starts at the end: a constant block there folds into the readout rows.
    rows = engine._readout_rows.double()
    if segments and segments[-1][0] == "const":
        rows = rows @ segments.pop()[1]
    engine.register_buffer("_suffix_rows", rows.to(engine.dtype), persistent=False)
    if not segments:    # nothing left that depends on the weights: the readout split is constant too
        engine.register_buffer("_suffix_split", split_rows(rows, k).to(engine.dtype), persistent=False)
    plan = []
    for kind, data in segments:
        if kind == "const":
            name = f"_suffix_const{len(plan)}"
            engine.register_buffer(name, data.to(engine.dtype), persistent=False)
            data = name
        plan.append((kind, data))
    layers = [data for kind, data in plan if kind == "layer"]
    stacked = stack_runs(engine, runs, "suffix") if runs else None
    if layers:  # index[l, j] = bank row of qubit j's PTM in layer l (0 = identity)
        index = torch.zeros(len(layers), k, dtype=torch.long)
        for l, layer in enumerate(layers):
            for q, run in layer:
                index[l, q] = 1 + run
        engine.register_buffer("_suffix_index", index, persistent=False)
    return plan, stacked, runs


def stack_runs(engine, runs: list, tag: str) -> list | None:
    """Single-qubit runs as one chain over all of them, when every run has the same shape (an
    encoding gate per qubit, or an ansatz's rotations, transpiled alike): position j of the
    chain is either every run's constant PTM, stacked ``[1, m, 4, 4]`` (``("const", buffer)``),
    or every run's parametric gate of one group, gathered by position (``("param", group,
    positions buffer)``). One matmul per position then serves all m runs, instead of one per
    run and position. Buffers are named ``_<tag>_...`` on the engine."""
    chains = [engine._chain(items) for items in runs]
    shape = [(kind, value.group if kind == "param" else None) for kind, value in chains[0]]
    if any([(kind, value.group if kind == "param" else None) for kind, value in c] != shape for c in chains):
        return None
    stacked = []
    for j, (kind, group) in enumerate(shape):
        if kind == "const":
            name = f"_{tag}_chain{j}"
            engine.register_buffer(name, torch.stack([c[j][1] for c in chains])[None], persistent=False)
            stacked.append(("const", name))
        else:
            name = f"_{tag}_pos{j}"
            engine.register_buffer(name, torch.tensor([c[j][1].position for c in chains]), persistent=False)
            stacked.append(("param", group, name))
    return stacked


def readout_rows(engine, ptms: dict) -> torch.Tensor:
    """``r [n_outputs, 4^k]`` with ``outputs = state @ r.T`` for the state before the suffix."""
    plan, stacked, runs = engine._suffix_plan
    k, r = engine.k, engine._suffix_rows
    if runs:
        run_ptms = _run_matrices(engine, stacked, runs, ptms)              # [m, 4, 4]
        bank = torch.cat([torch.eye(4, dtype=run_ptms.dtype, device=run_ptms.device)[None], run_ptms])
        per_layer = bank[engine._suffix_index]                             # [L, k, 4, 4]
        k_lo = k // 2
        # qubits k-1.., k_lo-1..; unbound once (a select per layer costs a zero-filled gradient each)
        his, los = _kron(per_layer[:, k_lo:]).unbind(0), _kron(per_layer[:, :k_lo]).unbind(0)
    layer = sum(kind == "layer" for kind, _ in plan)
    for kind, data in reversed(plan):
        if kind == "const":
            r = r @ getattr(engine, data)
        elif kind == "layer":
            layer -= 1
            hi, lo = his[layer], los[layer]
            r = (hi.transpose(0, 1) @ r.view(-1, hi.shape[0], lo.shape[0]) @ lo).reshape(r.shape)
        else:
            _, qubits, items = data
            r = apply_ptm(r, engine._run_ptm(items, ptms).transpose(-1, -2), qubits, k)
    return r


def split_rows(rows: torch.Tensor, k: int) -> torch.Tensor:
    """``[L, o*H]``: the rows ``[o, H*L]`` regrouped for ``readout_of_product`` (H = 4^(k//2))."""
    size_hi = 4 ** (k // 2)
    return rows.view(rows.shape[0], size_hi, -1).permute(2, 0, 1).reshape(-1, rows.shape[0] * size_hi)


def readout_of_product(parts: list, rows: torch.Tensor, split: torch.Tensor | None = None) -> torch.Tensor:
    """``kron_rows(parts) @ rows.T`` without the ``[B, 4^k]`` product state: with the factors
    split into a more and a less significant half, ``state = hi (x) lo`` and output o is
    ``sum_I hi[I] (lo @ rows[o].view(H, L).T)[I]``: one ``[B, L] @ [L, o*H]`` matmul and a
    ``[B, o, H]`` multiply-sum, about 4^(k/2) numbers per sample and output instead of 4^k.
    ``split``: ``split_rows(rows, k)`` when it is already known."""
    mid = len(parts) // 2
    if mid == 0:
        return parts[0] @ rows.T
    hi, lo = kron_rows(parts[:mid]), kron_rows(parts[mid:])
    split = split_rows(rows, len(parts)) if split is None else split
    mixed = (lo @ split).view(lo.shape[0], rows.shape[0], hi.shape[1])
    return (mixed * hi[:, None, :]).sum(-1).expand(max(hi.shape[0], lo.shape[0]), -1)


def _run_matrices(engine, stacked: list | None, runs: list, ptms: dict) -> torch.Tensor:
    if stacked is None:
        return torch.stack([engine._run_ptm(items, ptms)[0] for items in runs])
    matrix = None
    for step in stacked:
        factor = getattr(engine, step[1])[0] if step[0] == "const" else \
            ptms[step[1]][0, getattr(engine, step[2])]
        matrix = factor if matrix is None else factor @ matrix
    return matrix


def _kron(factors: torch.Tensor) -> torch.Tensor:
    """``[L, 4^j, 4^j]`` from ``[L, j, 4, 4]`` (factor 0 the least significant digit)."""
    if factors.shape[1] == 0:
        return torch.ones(factors.shape[0], 1, 1, dtype=factors.dtype, device=factors.device)
    return kron_matrices(factors.unbind(1)[::-1])
