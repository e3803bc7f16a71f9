"""The density engine's batch-independent suffix, in the Heisenberg picture, in a few ops.

After the last input-dependent gate, the density engine carries the readout rows ``r``
(``[n_outputs, 4^k]``) backwards through the rest of the circuit: ``r <- r M`` for each step's
PTM ``M``, last step first, and the outputs are ``state @ r.T``. Applied step by step that is
5-8 torch ops per gate, forward and backward again; a 6-layer ansatz transpiled for a device is
~40 steps. Planned once, the suffix becomes a short list of segments:

* ``const``: consecutive steps without free parameters (CX with its noise, SX, ...), kept as
  their gates: the ends local to one half of the qubits fold into the neighbouring layers and
  the rest is one window matrix (``density_blocks``), computed at compile time;
* ``layer``: consecutive single-qubit runs on distinct qubits (an ansatz's rotations): the
  runs' PTMs in closed form of their RZ angles (``closed_form_runs``), and a layer acts on
  ``r`` as the Kronecker product of its runs' PTMs, split into the more and the less
  significant half of the qubits: ``r <- K_hi^T r K_lo`` with ``r`` viewed as a matrix, two
  matmuls whatever the number of qubits in the layer; the first layer, when it acts on the
  prefix's product state, is absorbed there instead;
* ``step``: anything else (a two-qubit gate with a free angle) as before, one step at a time.

Walked with constants and layers only, the suffix is one autograd node from the weights to
the rows (``density_walk.WeightLayers``); with steps, autograd records the walk.
"""

from __future__ import annotations

import torch

from qkit.engines.density_blocks import embed, plan_blocks
from qkit.engines.density_walk import ClosedFormRuns, LayerWalk, WeightLayers, kron_factors
from qkit.engines.ptm import apply_ptm
from qkit.engines.statevector import kron_rows


def plan_suffix(engine) -> tuple[list, list | None, list]:
    """``(segments, stacked chain of the runs | None, runs)`` for the engine's ``suffix`` steps;
    buffers are registered on the engine."""
    k, runs = engine.k, []
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
        for kind, data, _ in after:  # the steps after the layer, in order
            if kind == "const":
                before = data if before is None else before + data
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
            for item in items:  # items in time order
                matrix = getattr(engine, item[1])[0].double() @ matrix
            gates = [(qubits, matrix)]  # constant blocks: gate lists, time order
            if not after and not in_layer & set(qubits):
                before = gates if before is None else before + gates
            else:
                after.append(("const", gates, qubits))
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
        rows = rows @ embed(segments.pop()[1], 0, k)
    engine.register_buffer("_suffix_rows", rows.to(engine.dtype), persistent=False)
    # The first layer in circuit order, if it acts right on the prefix's product state (every
    # prefix qubit, nothing else), is absorbed: it multiplies the prefix's (u, v, w) instead,
    # one [m, 4, 4] @ [m, 4, 3] product per pass rather than a layer of the walk.
    prefix_qubits = getattr(engine, "_prefix_qubits", [])
    absorb = (
        engine._prefix_parts == "const"
        and not engine.middle
        and bool(segments)
        and segments[0][0] == "layer"
        and sorted(q for q, _ in segments[0][1]) == sorted(prefix_qubits)
    )
    folds = {}
    if all(kind != "step" for kind, _ in segments):  # LayerWalk: blocks folded and windowed
        segments, folds = plan_blocks(segments, k, 0 if absorb else None)
    _register_folds(engine, folds, segments, absorb)
    plan = _register_blocks(engine, segments[1:] if absorb else segments)
    absorbed = [dict(segments[0][1])[q] for q in prefix_qubits] if absorb else []
    engine._suffix_absorbed = len(absorbed)
    if not plan:  # nothing left that depends on the weights: the readout split is constant too
        engine.register_buffer("_suffix_split", split_rows(rows, k).to(engine.dtype), persistent=False)
    # Runs numbered absorbed first, then by (layer, qubit): with every qubit in every layer,
    # layer i's runs are then consecutive rows of the runs' PTMs, a view (``density_walk.LayerWalk``).
    order = absorbed + [run for kind, data in plan if kind == "layer" for _, run in sorted(data)]
    runs, number = [runs[i] for i in order], {old: new - len(absorbed) for new, old in enumerate(order)}
    plan = [(kind, [(q, number[run]) for q, run in data] if kind == "layer" else data) for kind, data in plan]
    engine._suffix_closed = bool(runs) and closed_form_runs(engine, runs, "suffix")
    affine = engine.angles.affine("w", engine._suffix_angles) if engine._suffix_closed else None
    engine._suffix_direct = affine is not None  # the runs' angles straight from the weights
    values = affine or (getattr(engine, "_suffix_angles", None), None, None)
    for name, value in zip(("index", "scale", "offset"), values):
        engine.register_buffer(f"_suffix_w_{name}", value, persistent=False)
    stacked = stack_runs(engine, runs, "suffix") if runs and not engine._suffix_closed else None
    _register_layers(engine, [data for kind, data in plan if kind == "layer"], len(runs) - len(absorbed))
    return plan, stacked, runs


def _register_blocks(engine, segments: list) -> list:
    """The plan: each constant block as ``(buffer name, outer, inner)``, a window matrix on the
    middle digits of ``r.view(o * outer, -1, inner)`` (``outer = inner = 1``: the full matrix)."""
    plan, k = [], engine.k
    for kind, data in segments:
        if kind == "const":
            name = f"_suffix_const{len(plan)}"
            _, matrix, first, n = data if isinstance(data, tuple) else ("window", embed(data, 0, k), 0, k)
            engine.register_buffer(name, matrix.to(engine.dtype), persistent=False)
            if n < k:  # a window is applied transposed
                engine.register_buffer(name + "_t", matrix.T.contiguous().to(engine.dtype), persistent=False)
            data = (name, 4 ** (k - first - n), 4**first)
        plan.append((kind, data))
    return plan


def _register_layers(engine, layers: list, walked: int) -> None:
    """``_suffix_index [L, k]`` (bank row of qubit j's run in layer l, 0 = identity) and
    ``_suffix_slots`` (each walked run's flat position there; None when that is the run's own
    number, every qubit of every layer having a run)."""
    if not layers:
        return
    index = torch.zeros(len(layers), engine.k, dtype=torch.long)
    for layer_no, layer in enumerate(layers):
        for q, run in layer:
            index[layer_no, q] = 1 + run
    engine.register_buffer("_suffix_index", index, persistent=False)
    slots = torch.zeros(walked, dtype=torch.long)
    slots[index.flatten()[index.flatten() > 0] - 1] = torch.nonzero(index.flatten()).flatten()
    engine.register_buffer("_suffix_slots", None if walked == index.numel() else slots, persistent=False)


def _register_folds(engine, folds: dict, segments: list, absorb: bool) -> None:
    """``_suffix_fold_*``: the block gates moved into each walked layer's halves, stacked over
    the layers (``hi_after``, ``hi_before``, ``lo_after``, ``lo_before``; None where no layer
    has one), for ``density_walk``: ``hi <- after @ hi @ before``."""
    layers = range(1 if absorb else 0, sum(kind == "layer" for kind, _ in segments))
    stacked = []
    for key in ("hi_after", "hi_before", "lo_after", "lo_before"):
        if not any(key in folds.get(i, {}) for i in layers):
            stacked.append(None)
            continue
        size = 4 ** (engine.k - engine.k // 2) if key.startswith("hi") else 4 ** (engine.k // 2)
        eye = torch.eye(size, dtype=torch.float64)
        stacked.append(torch.stack([folds.get(i, {}).get(key, eye) for i in layers]).to(engine.dtype))
    for key, value in zip(("hi_after", "hi_before", "lo_after", "lo_before"), stacked):
        engine.register_buffer(f"_suffix_fold_{key}", value, persistent=False)


def suffix_folds(engine) -> tuple:
    return tuple(getattr(engine, f"_suffix_fold_{key}") for key in ("hi_after", "hi_before", "lo_after", "lo_before"))


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


def closed_form_runs(engine, runs: list, tag: str) -> bool:
    """The runs' PTMs in closed form of their RZ angles, when every parametric gate of every run
    is an RZ of the weight table (the only parametric gate of an IBM ISA circuit) and all runs
    have as many: ``RZ(t) = P0 + cos t P1 + sin t P2``, so a run cut after each RZ (the constants
    before it, or after the last, folded in) is a product of factors ``F_i = B_i0 + cos t_i B_i1
    + sin t_i B_i2``, whose ``B`` (``[p*m, 3, 16]``, buffer ``_<tag>_basis``) are computed here,
    once. At run time all runs' PTMs are one batched matmul for the factors and p - 1 products,
    whatever the runs' length (a transpiled rotation is 5-9 gates and noise channels), with
    the angles one gather (buffer ``_<tag>_angles [m, p]``) from the weight table's
    (``density_walk.ClosedFormRuns``)."""
    chains = [engine._chain(items) for items in runs]
    params = [[value for kind, value in chain if kind == "param"] for chain in chains]
    if (
        len({len(refs) for refs in params}) != 1
        or not params[0]
        or any(ref.group not in engine._rz or ref.group[0] != "w" for refs in params for ref in refs)
    ):
        return False
    rz, eye = engine._rz_basis.double().view(3, 4, 4), torch.eye(4, dtype=torch.float64)
    bases = []  # per run: [p, 3, 4, 4]
    for chain in chains:
        pending, factors = eye, []  # constants since the last cut
        for kind, value in chain:
            if kind == "const":
                pending = value.double() @ pending
            else:
                factors.append(rz @ pending)
                pending = eye
        factors[-1] = pending @ factors[-1]  # the trailing constants
        bases.append(torch.stack(factors))
    basis = torch.stack(bases, 1).flatten(0, 1).flatten(2)  # [p*m, 3, 16], factor-major
    engine.register_buffer(f"_{tag}_basis", basis.to(engine.dtype), persistent=False)
    slots = [[int(engine.angles.groups[ref.group].slots[ref.position, 0]) for ref in refs] for refs in params]
    engine.register_buffer(f"_{tag}_angles", torch.tensor(slots), persistent=False)
    return True


def readout_rows(engine, ptms: dict, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(r [n_outputs, 4^k], absorbed [m, 4, 4] | None)``: ``outputs = state @ r.T`` for the
    state before the suffix, with the absorbed layer's run PTMs applied to the prefix's
    qubits (``plan_suffix``) first."""
    plan, stacked, runs = engine._suffix_plan
    k, r, absorbed = engine.k, engine._suffix_rows, None
    layered = any(kind == "layer" for kind, _ in plan)
    walk, layer = [], sum(kind == "layer" for kind, _ in plan)
    for kind, data in reversed(plan):
        layer -= kind == "layer"
        if kind == "const":  # a dense block, or a window: (W^T, W, outer, inner)
            name, outer, inner = data
            matrix = getattr(engine, name)
            walk.append(matrix if outer == inner == 1 else (getattr(engine, name + "_t"), matrix, outer, inner))
        else:
            walk.append(layer)
    walkable = layered and all(kind != "step" for kind, _ in plan)
    # Runs in closed form read the weights through their table's affine map, or the table's angles.
    theta_w = (w if engine._suffix_direct else engine.angles.angles("w", x, w)) if engine._suffix_closed else None
    if walkable and engine._suffix_closed:  # angles to rows: one autograd node
        r, absorbed = WeightLayers.apply(
            theta_w,
            engine._suffix_w_index,
            engine._suffix_w_scale,
            engine._suffix_w_offset,
            engine._suffix_basis,
            r,
            engine._suffix_index,
            engine._suffix_slots,
            walk,
            engine._suffix_absorbed,
            suffix_folds(engine),
        )
        return r, absorbed if engine._suffix_absorbed else None
    if runs:
        run_ptms = _run_matrices(engine, stacked, runs, ptms, theta_w)  # [m, 4, 4]
        if engine._suffix_absorbed:
            absorbed, run_ptms = run_ptms[: engine._suffix_absorbed], run_ptms[engine._suffix_absorbed :]
    if not plan:
        return r, absorbed
    if walkable:  # constants and layers: one autograd node
        return LayerWalk.apply(
            r, run_ptms, engine._suffix_index, engine._suffix_slots, walk, suffix_folds(engine)
        ), absorbed
    if layered:  # unbound once: a select per layer costs a zero-filled gradient each
        bank = torch.cat([torch.eye(4, dtype=run_ptms.dtype, device=run_ptms.device)[None], run_ptms])
        per_layer = bank[engine._suffix_index]  # [L, k, 4, 4]
        his = kron_factors(per_layer[:, k // 2 :]).unbind(0)  # qubits k-1 .. k//2
        los = kron_factors(per_layer[:, : k // 2]).unbind(0)
    layer = sum(kind == "layer" for kind, _ in plan)
    for kind, data in reversed(plan):
        if kind == "const":
            r = r @ getattr(engine, data[0])
        elif kind == "layer":
            layer -= 1
            hi, lo = his[layer], los[layer]
            r = (hi.transpose(0, 1) @ r.view(-1, hi.shape[0], lo.shape[0]) @ lo).reshape(r.shape)
        else:
            _, qubits, items = data
            r = apply_ptm(r, engine._run_ptm(items, ptms).transpose(-1, -2), qubits, k)
    return r, absorbed


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


def _run_matrices(engine, stacked: list | None, runs: list, ptms: dict, theta_w) -> torch.Tensor:
    if engine._suffix_closed:
        return ClosedFormRuns.apply(
            theta_w, engine._suffix_w_index, engine._suffix_w_scale, engine._suffix_w_offset, engine._suffix_basis
        )
    if stacked is None:
        return torch.stack([engine._run_ptm(items, ptms)[0] for items in runs])
    matrix = None
    for step in stacked:
        factor = getattr(engine, step[1])[0] if step[0] == "const" else ptms[step[1]][0, getattr(engine, step[2])]
        matrix = factor if matrix is None else factor @ matrix
    return matrix
