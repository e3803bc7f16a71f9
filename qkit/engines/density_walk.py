"""The density engine's weight layers as autograd functions with hand-written backwards.

The suffix after the last input-dependent gate is, once planned (``density_suffix``), a
sequence of constant blocks ``C`` (dense, or windows on a few qubits: ``density_blocks``) and
Kronecker layers ``K = hi (x) lo`` (each layer's single-qubit run PTMs, the more and the less
significant half of the qubits). The readout rows ``r`` walk back through it: ``r <- r C``,
``r <- hi^T R lo`` with ``R = r.view(o, H, L)``.

Every step is a handful of tiny matmuls (``r`` has one row per output), so the time is the
per-op overhead, and autograd roughly triples it: it records a node per view, select,
broadcast and Kronecker factor, and walks them all back. ``LayerWalk`` is the walk from the
run PTMs to the final rows as one node: its backward walks the gradient of ``r`` back (2 ops
per layer, 1 per block) and then computes every layer's matrix gradients in two batched
matmuls and the runs' gradients from those. ``ClosedFormRuns`` does the same for the run
PTMs themselves, from their RZ angles, and ``WeightLayers`` is both, from the weights, in
one node. All are checked with ``torch.autograd.gradcheck`` (tests/engines/test_engine_density.py).
"""

from __future__ import annotations

import torch

from qkit.engines.statevector import kron_matrices


class LayerWalk(torch.autograd.Function):
    """``apply(rows [o, 4^k], runs [m, 4, 4], index [n, k], slots [m], walk, folds) -> [o, 4^k]``.

    ``index[i, q]`` is the run acting on qubit q in layer i, plus one (0: the identity), and
    ``slots[r]`` the flat position ``i * k + q`` of run r there (each run is in one layer), or
    None when run ``i * k + q`` is on qubit q of layer i for all i and q;
    ``walk`` lists the steps in walk order (last circuit step first): a constant block
    ``[4^k, 4^k]`` (``r <- r C``), a window ``(W^T, W, outer, inner)`` (``W`` on the middle
    digits of ``r.view(o * outer, -1, inner)``) or the index of a layer; ``folds``: constant
    factors of the layers' halves (``_walk``)."""

    @staticmethod
    def forward(ctx, rows, runs, index, slots, walk, folds=(None,) * 4):
        r, saved = _walk(rows, runs, index, slots, walk, folds)
        ctx.walk, ctx.slots, ctx.folds = walk, slots, folds
        ctx.save_for_backward(*saved)
        return r

    @staticmethod
    def backward(ctx, grad):
        return None, _walk_grad(ctx.saved_tensors, ctx.walk, ctx.slots, grad, ctx.folds), None, None, None, None


class ClosedFormRuns(torch.autograd.Function):
    """``apply(source, angles [m, p], scale | None, offset | None, basis [p*m, 3, 16]) -> [m, 4, 4]``:
    run r's PTM as the product ``F_p-1 ... F_0`` of one factor per RZ angle, ``F_i = sum_t (1,
    cos, sin)(theta[r, i])_t basis[i*m + r, t]`` (the constants around each RZ folded in:
    ``density_suffix.closed_form_runs``), with the angles ``theta = source[angles] * scale +
    offset`` (the weights through their table's affine map, or the table's angles). One node
    instead of a dozen (gathers, cos, sin, stacks, matmuls)."""

    @staticmethod
    def forward(ctx, source, angles, scale, offset, basis):
        runs, saved = _runs(_angles(source, angles, scale, offset), basis)
        ctx.source_shape, ctx.scale = source.shape, scale
        ctx.save_for_backward(angles, *saved)
        return runs

    @staticmethod
    def backward(ctx, grad):
        angles, *saved = ctx.saved_tensors
        return _source_grad(ctx, angles, _runs_grad(saved, grad)), None, None, None, None


class WeightLayers(torch.autograd.Function):
    """``ClosedFormRuns`` then ``LayerWalk`` as one node, from the weights themselves:
    ``apply(source, angles [m, p], scale | None, offset | None, basis, rows, index, slots, walk,
    absorbed, folds) -> (r, the first `absorbed` runs)``, with the runs' angles
    ``source[angles] * scale + offset`` (the weights, or the weight table's angles); the
    first ``absorbed`` runs are returned for the prefix, the others walked."""

    @staticmethod
    def forward(ctx, source, angles, scale, offset, basis, rows, index, slots, walk, absorbed, folds):
        runs, saved_runs = _runs(_angles(source, angles, scale, offset), basis)
        r, saved_walk = _walk(rows, runs[absorbed:], index, slots, walk, folds)
        ctx.walk, ctx.slots, ctx.absorbed, ctx.n_runs, ctx.folds = walk, slots, absorbed, len(saved_runs), folds
        ctx.source_shape, ctx.scale = source.shape, scale  # scale: a buffer, no gradient
        ctx.save_for_backward(angles, *saved_runs, *saved_walk)
        return r, runs[:absorbed]

    @staticmethod
    def backward(ctx, grad, grad_absorbed):
        angles, *saved = ctx.saved_tensors
        g_runs = _walk_grad(saved[ctx.n_runs :], ctx.walk, ctx.slots, grad, ctx.folds)
        if ctx.absorbed:
            g_runs = torch.cat([grad_absorbed, g_runs])
        return _source_grad(ctx, angles, _runs_grad(saved[: ctx.n_runs], g_runs)), *[None] * 10


def _angles(source, angles, scale, offset):
    theta = source[angles]
    theta = theta if scale is None else theta * scale
    return theta if offset is None else theta + offset


def _source_grad(ctx, angles, g_theta):
    """The gradient of ``_angles``' source: each angle's gradient, scaled, added to its entry."""
    g_theta = g_theta if ctx.scale is None else g_theta * ctx.scale
    g_source = torch.zeros(ctx.source_shape, dtype=g_theta.dtype, device=g_theta.device)
    return g_source.index_add_(0, angles.flatten(), g_theta.flatten())


def _walk(rows, runs, index, slots, walk, folds):
    """``LayerWalk``'s forward: ``(r, tensors for _walk_grad)``. ``folds``: constant factors of
    the halves, ``(hi_after, hi_before, lo_after, lo_before)`` ``[n, ., .]`` or None each
    (``density_blocks``): ``hi <- hi_after @ hi @ hi_before``."""
    o = rows.shape[0]
    if slots is None:  # every qubit of every layer has its run, in order
        per_layer = runs.view(*index.shape, 4, 4)
    else:
        bank = torch.cat([torch.eye(4, dtype=runs.dtype, device=runs.device)[None], runs])
        per_layer = bank[index]  # [n, k, 4, 4]
    his, los = _halves(kron_factors, per_layer)
    his, los = _fold(his, folds[0], folds[1]), _fold(los, folds[2], folds[3])
    size_hi, size_lo = his.shape[-1], los.shape[-1]
    his_t, los_ = his.transpose(1, 2).contiguous().unbind(0), los.unbind(0)
    xs, ys, r = [None] * len(index), [None] * len(index), rows
    for step in walk:
        if isinstance(step, int):
            xs[step] = r.view(o, size_hi, size_lo)
            ys[step] = xs[step] @ los_[step]
            r = torch.bmm(his_t[step].expand(o, size_hi, size_hi), ys[step]).view(o, -1)
        elif isinstance(step, tuple):  # a window: r <- r (I (x) W (x) I)
            w_t, _, outer, inner = step
            r = torch.bmm(w_t.expand(o * outer, *w_t.shape), r.view(o * outer, -1, inner)).view(o, -1)
        else:
            r = r @ step
    return r, (index, per_layer, his, los, torch.stack(xs), torch.stack(ys))


def _walk_grad(saved, walk, slots, grad, folds):
    """``LayerWalk``'s backward: the gradient of the runs ``[m, 4, 4]``."""
    index, per_layer, his, los, xs, ys = saved
    n, o, size_hi, size_lo = len(index), grad.shape[0], his.shape[-1], los.shape[-1]
    his_, los_t = his.unbind(0), los.transpose(1, 2).unbind(0)
    g_zs, g_ys = [None] * n, [None] * n
    for step in reversed(walk):
        if isinstance(step, int):  # Z = hi^T Y, Y = X lo (per row of r)
            g_zs[step] = grad.view(o, size_hi, size_lo)
            g_ys[step] = torch.bmm(his_[step].expand(o, size_hi, size_hi), g_zs[step])
            grad = (g_ys[step] @ los_t[step]).view(o, -1)
        elif isinstance(step, tuple):
            _, w, outer, inner = step
            grad = torch.bmm(w.expand(o * outer, *w.shape), grad.view(o * outer, -1, inner)).view(o, -1)
        else:
            grad = grad @ step.T
    g_z, g_y = torch.stack(g_zs), torch.stack(g_ys)  # [n, o, H, L]
    # d hi[h, h'] = sum_{o,l} Y[o,h,l] dZ[o,h',l];  d lo[l, l'] = sum_{o,h} X[o,h,l] dY[o,h,l']
    g_his = _rows_by_hi(ys) @ _rows_by_hi(g_z).transpose(1, 2)
    g_los = xs.reshape(n, -1, size_lo).transpose(1, 2) @ g_y.reshape(n, -1, size_lo)
    g_his, g_los = _fold_grad(g_his, folds[0], folds[1]), _fold_grad(g_los, folds[2], folds[3])
    g_per = _halves(_kron_grad, per_layer, g_his, g_los).flatten(0, 1)  # [n * k, 4, 4]
    return g_per if slots is None else g_per[slots]


def _runs(theta, basis):
    """``ClosedFormRuns``' forward: ``(runs, tensors for _runs_grad)``."""
    m, p = theta.shape
    angles = theta.T.reshape(-1, 1)  # [p*m, 1]
    cos, sin = angles.cos(), angles.sin()
    coef = torch.cat([torch.ones_like(cos), cos, sin], 1)  # [p*m, 3]
    factors = torch.bmm(coef[:, None], basis).view(p, m, 4, 4).unbind(0)
    products = [factors[0]]  # F_i ... F_0
    for f in factors[1:]:
        products.append(f @ products[-1])
    return products[-1], (basis, coef, *factors, *products[:-1])


def _runs_grad(saved, grad):
    """``ClosedFormRuns``' backward: the gradient of the angles ``[m, p]``."""
    basis, coef, *saved = saved
    p = (len(saved) + 1) // 2
    factors, products = saved[:p], saved[p:]
    g_factors, g = [None] * p, grad
    for i in reversed(range(1, p)):  # M = F_i P_{i-1}
        g_factors[i] = g @ products[i - 1].transpose(1, 2)
        g = factors[i].transpose(1, 2) @ g
    g_factors[0] = g
    g_coef = torch.bmm(torch.cat(g_factors).view(-1, 1, 16), basis.transpose(1, 2))[:, 0]  # [p*m, 3]
    # d/dt (1, cos t, sin t) = (0, -sin t, cos t)
    g_theta = g_coef[:, 2] * coef[:, 1] - g_coef[:, 1] * coef[:, 2]
    return g_theta.view(p, -1).T


def _fold(m: torch.Tensor, after: torch.Tensor | None, before: torch.Tensor | None) -> torch.Tensor:
    m = m if after is None else after @ m
    return m if before is None else m @ before


def _fold_grad(g: torch.Tensor, after: torch.Tensor | None, before: torch.Tensor | None) -> torch.Tensor:
    g = g if after is None else after.transpose(1, 2) @ g
    return g if before is None else g @ before.transpose(1, 2)


def _halves(fn, per_layer: torch.Tensor, *grads: torch.Tensor):
    """``fn`` on the more and the less significant half of each layer's factors ``[n, k, 4, 4]``:
    ``(hi, lo)`` Kronecker products, or with the gradients ``(g_hi, g_lo)`` of those the
    factors' gradients ``[n, k, 4, 4]``. One call for both halves when k is even."""
    n, k = per_layer.shape[:2]
    if k % 2 == 0 and k > 0:
        both = per_layer.view(2 * n, k // 2, 4, 4)  # rows (layer, half): lo, hi, lo, ...
        if grads:
            g = torch.stack(grads[::-1], 1).flatten(0, 1)
            return fn(g, both).view(n, k, 4, 4)
        out = fn(both)
        out = out.view(n, 2, out.shape[-2], out.shape[-1])
        return out[:, 1], out[:, 0]
    lo_f, hi_f = per_layer[:, : k // 2], per_layer[:, k // 2 :]
    if grads:
        return torch.cat([fn(grads[1], lo_f), fn(grads[0], hi_f)], 1)
    return fn(hi_f), fn(lo_f)


def _rows_by_hi(t: torch.Tensor) -> torch.Tensor:
    """``[n, o, H, L] -> [n, H, o*L]``."""
    return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], -1)


def kron_factors(factors: torch.Tensor) -> torch.Tensor:
    """``[n, 4^j, 4^j]`` from ``[n, j, 4, 4]`` (factor 0 the least significant digit)."""
    if factors.shape[1] == 0:
        return torch.ones(factors.shape[0], 1, 1, dtype=factors.dtype, device=factors.device)
    return kron_matrices(factors.unbind(1)[::-1])


def _kron_grad(grad: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """``[n, j, 4, 4]``: the gradient of each factor of ``kron_factors(factors)`` given the gradient
    of the product: factor i's digits moved to the front, the rest contracted with the
    Kronecker product of the other factors (one batched matmul per factor)."""
    n, j = factors.shape[:2]
    if j <= 1:
        return grad.view(n, j, 4, 4)
    if j == 2:  # grad[A, a, B, b], factor 1 = (A, B), factor 0 = (a, b)
        g, (f0, f1) = grad.view(n, 4, 4, 4, 4), factors.unbind(1)
        return torch.stack([(g * f1[:, :, None, :, None]).sum((1, 3)), (g * f0[:, None, :, None, :]).sum((2, 4))], 1)
    digits = grad.view(n, *[4] * (2 * j))  # rows then columns, most significant digit first
    out = []
    for i in range(j):
        row, col = 1 + (j - 1 - i), 1 + j + (j - 1 - i)
        rest = [d for d in range(1, 2 * j + 1) if d not in (row, col)]
        moved = digits.permute(0, row, col, *rest).reshape(n, 16, -1)
        others = kron_factors(torch.cat([factors[:, :i], factors[:, i + 1 :]], 1))
        out.append((moved @ others.reshape(n, -1, 1)).view(n, 4, 4))
    return torch.stack(out, 1)
