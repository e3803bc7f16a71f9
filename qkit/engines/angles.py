"""Gate angles and matrices at run time: the compiler's angle tables evaluated in torch.

Shared by the engines that execute a ``qkit.engines.compiler`` plan (statevector, density):
all angles of a batch come from one matmul per table (inputs, or weights only), non-affine
expressions are added through their sympy-compiled torch functions (so they stay
differentiable), and every group of gates of one kind gets its matrices from one builder
call. The tables live in non-persistent buffers: a layer's state dict holds its weights only.
"""

from __future__ import annotations

import numpy as np
import torch

from qkit.engines.compiler import AngleTable, GateGroup
from qkit.engines.gates import NATIVE


class GateAngles(torch.nn.Module):
    """``matrices(x, w)``: ``{(table, gate name): [B|n_gates.., 2^k, 2^k]}`` for every group."""

    def __init__(
        self,
        tables: dict[str, AngleTable],
        groups: dict[tuple[str, str], GateGroup],
        dtype: torch.dtype,
        cdtype: torch.dtype,
    ):
        super().__init__()
        self.tables, self.groups, self.dtype, self.cdtype = tables, groups, dtype, cdtype
        self._slot_views = {}  # contiguous slots are read as a view instead of a gather
        for key, group in groups.items():
            if group.view is not None:
                self._slot_views[key] = group.view
            else:
                self.register_buffer(f"_slots_{key[0]}_{key[1]}", torch.tensor(group.slots), persistent=False)
        for role, table in tables.items():
            a_in, a_w, const = (torch.tensor(a, dtype=dtype) for a in table.matrices())
            self.register_buffer(f"_a_in_{role}", a_in, persistent=False)
            # Stored transposed and contiguous: addmv reads it without a transpose op per call.
            self.register_buffer(f"_a_w_t_{role}", a_w.T.contiguous(), persistent=False)
            self.register_buffer(f"_const_{role}", const, persistent=False)
        # Input gates rarely mix in weights; skipping the zero term saves autograd ops.
        self._x_uses_weights = tables["x"].uses_weights
        self._direct = {role: self._direct_map(role, table) for role, table in tables.items()}

    def _direct_map(self, role: str, table: AngleTable) -> tuple | None:
        """``(source, scale, offset)`` when every angle of the table is ``scale * v_j + offset``
        with one input (or weight) each (angle embeddings ``x``, ``x * pi / 2``; ansatz angles
        ``w``), so the angles are a gather and a multiply instead of a matmul. A part is None
        where it is the identity, and then costs no op."""
        a_in, a_w, const = table.matrices()
        a = a_in if role == "x" else a_w
        if (
            table.nonlinear
            or not a.size
            or (role == "x" and self._x_uses_weights)
            or (np.count_nonzero(a, axis=0) != 1).any()
        ):
            return None
        source = np.abs(a).argmax(axis=0)
        scale = a[source, np.arange(a.shape[1])]
        parts = [
            None if np.array_equal(source, np.arange(a.shape[0])) else torch.tensor(source),
            None if np.all(scale == 1.0) else torch.tensor(scale, dtype=self.dtype),
            None if np.all(const == 0.0) else torch.tensor(const, dtype=self.dtype),
        ]
        for name, part in zip(("source", "scale", "offset"), parts):
            self.register_buffer(f"_{role}_{name}", part, persistent=False)
        return tuple(part is not None for part in parts)

    def affine(self, role: str, slots: torch.Tensor) -> tuple | None:
        """``(source, scale | None, offset | None)`` with ``angles(role)[..., slots] ==
        values[..., source] * scale + offset`` for the role's own values (inputs or weights),
        when its table is a direct map (``_direct_map``); else None."""
        if self._direct[role] is None:
            return None
        gather, scale, offset = self._direct[role]
        return (
            getattr(self, f"_{role}_source")[slots] if gather else slots,
            getattr(self, f"_{role}_scale")[slots] if scale else None,
            getattr(self, f"_{role}_offset")[slots] if offset else None,
        )

    def angles(self, role: str, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        table = self.tables[role]
        if self._direct[role] is not None:
            gather, scale, offset = self._direct[role]
            theta = x if role == "x" else w
            theta = theta[..., getattr(self, f"_{role}_source")] if gather else theta
            theta = theta * getattr(self, f"_{role}_scale") if scale else theta
            return theta + getattr(self, f"_{role}_offset") if offset else theta
        theta = getattr(self, f"_const_{role}")
        if role == "w" or self._x_uses_weights:
            theta = torch.addmv(theta, getattr(self, f"_a_w_t_{role}"), w)
        if role == "x":
            theta = torch.addmm(theta, x, self._a_in_x)
        for slot, fn, args in table.nonlinear:
            values = [x[:, j] if r == "x" else w[j] for r, j in args]
            onehot = torch.zeros(theta.shape[-1], dtype=self.dtype, device=theta.device)
            onehot[slot] = 1.0
            theta = theta + fn(*values)[..., None] * onehot
        return theta

    def matrices(self, x: torch.Tensor, w: torch.Tensor, builders: dict | None = None) -> dict:
        """``{group: unitaries}``; a group in ``builders`` gets ``builders[group](angles)`` instead
        (angles ``[.., n_gates, n_params]``; an engine's own form, such as real first columns or
        PTMs in closed form), or is left out where that is None."""
        builders = builders or {}
        groups = [key for key in self.groups if builders.get(key, True) is not None]
        needed = {role for role, _ in groups}
        thetas = {role: self.angles(role, x, w) for role, t in self.tables.items() if t.columns and role in needed}
        mats = {}
        for role, name in groups:
            theta = thetas[role]
            if (role, name) in self._slot_views:
                start, stop, shape = self._slot_views[(role, name)]
                theta = theta[..., start:stop].unflatten(-1, shape)
            else:
                theta = theta[..., getattr(self, f"_slots_{role}_{name}")]
            if (role, name) in builders:
                mats[(role, name)] = builders[(role, name)](theta)
                continue
            m = NATIVE[name].build(theta)
            mats[(role, name)] = m if m.dtype == self.cdtype else m.to(self.cdtype)
        return mats
