"""An error map of a calibration snapshot, drawn like a device map (PNG).

Nodes are the qubits, coloured by readout error (the mean of p(0|1) and p(1|0) when both are
known) and labelled with both directions; edges are the coupling map, coloured by the
two-qubit gate error (the worse of the two directions) and labelled in percent. Built with
``matplotlib.figure.Figure`` (never pyplot) and written atomically, like ``qkit.plots``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from qkit.errors import QkitError
from qkit.runs import atomic_write

_DPI = 120


def readout_of(q: Any) -> float | None:
    """A qubit's readout error: the mean of both directions, else the symmetric number."""
    if q.prob_meas0_prep1 is not None and q.prob_meas1_prep0 is not None:
        return (q.prob_meas0_prep1 + q.prob_meas1_prep0) / 2
    return q.readout_error


def edge_errors(snapshot: Any) -> dict[tuple[int, int], float]:
    """Undirected coupling edges -> the worst two-qubit gate error over both directions."""
    errors: dict[tuple[int, int], float] = {}
    for g in snapshot.two_qubit_gates:
        if g.error is None:
            continue
        key = tuple(sorted(g.qubits))
        errors[key] = max(errors.get(key, 0.0), g.error)
    return errors


def _layout(num_qubits: int, edges: list[tuple[int, int]]) -> np.ndarray:
    """2-D positions: a few iterations of a spring layout from a circle, deterministic."""
    angle = np.linspace(0, 2 * np.pi, num_qubits, endpoint=False)
    pos = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    if not edges:
        return pos
    k = 1.0 / np.sqrt(num_qubits)
    for step in range(300):
        delta = pos[:, None, :] - pos[None, :, :]
        dist = np.linalg.norm(delta, axis=2) + np.eye(num_qubits) + 1e-9
        force = (delta / dist[..., None] * (k * k / dist)[..., None]).sum(axis=1)  # repulsion
        for a, b in edges:
            d = pos[a] - pos[b]
            pull = d * np.linalg.norm(d) / k
            force[a] -= pull
            force[b] += pull
        length = np.linalg.norm(force, axis=1, keepdims=True) + 1e-9
        temperature = 0.1 * (1 - step / 300) + 0.002
        pos += force / length * np.minimum(length, temperature)
    return pos


def _away_from_neighbours(pos: np.ndarray, edges: list[tuple[int, int]], q: int) -> np.ndarray:
    """A unit vector from qubit ``q`` pointing away from its neighbours (down when it has none)."""
    neighbours = [b if a == q else a for a, b in edges if q in (a, b)]
    if not neighbours:
        return np.array([0.0, -1.0])
    directions = [(pos[n] - pos[q]) / (np.linalg.norm(pos[n] - pos[q]) + 1e-9) for n in neighbours]
    away = -np.sum(directions, axis=0)
    if np.linalg.norm(away) < 1e-3:  # neighbours on opposite sides: go perpendicular
        away = np.array([-directions[0][1], directions[0][0]])
    return away / np.linalg.norm(away)


def plot_error_map(snapshot: Any, path: str | Path) -> Path:
    """Write the error map of ``snapshot`` to ``path`` (PNG)."""
    import matplotlib
    from matplotlib import cm, colors
    from matplotlib.figure import Figure

    n = snapshot.num_qubits
    if n < 1:
        raise QkitError(f"snapshot {snapshot.name} has no qubits to draw")
    errors = edge_errors(snapshot)
    edges = sorted({tuple(sorted(e)) for e in snapshot.coupling_map} | set(errors))
    pos = _layout(n, edges)
    readout = [readout_of(q) for q in snapshot.qubits]
    big = n > 30
    fig = Figure(figsize=(10, 9) if big else (7.5, 7))
    ax = fig.add_subplot(1, 1, 1)
    node_cmap = matplotlib.colormaps["viridis"]
    edge_cmap = matplotlib.colormaps["plasma"]
    known = [r for r in readout if r is not None]
    node_norm = colors.Normalize(vmin=0, vmax=max(known) if known else 1)
    edge_vals = list(errors.values())
    # broken couplers (reported error 1.0) must not wash out the rest: the scale tops out at the
    # 95th percentile of the working ones (error < 0.5) and the colour bar says so (extend="max")
    working = [v for v in edge_vals if v < 0.5] or edge_vals
    top = float(np.percentile(working, 95) if len(working) >= 20 else max(working)) if working else 1.0
    top = top if top > 0 else (max(edge_vals) if edge_vals and max(edge_vals) > 0 else 1.0)
    clipped = bool(edge_vals) and max(edge_vals) > top
    edge_norm = colors.Normalize(vmin=0, vmax=top, clip=True)
    for a, b in edges:
        err = errors.get((a, b))
        colour = edge_cmap(edge_norm(err)) if err is not None else "lightgrey"
        ax.plot(*zip(pos[a], pos[b]), color=colour, linewidth=2 if big else 4, zorder=1)
        if err is not None and not big:
            mid = (pos[a] + pos[b]) / 2
            ax.annotate(
                f"{100 * err:.2f}%",
                mid,
                fontsize=7,
                ha="center",
                va="center",
                zorder=6,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8),
            )
    node_colours = [node_cmap(node_norm(r)) if r is not None else "lightgrey" for r in readout]
    ax.scatter(pos[:, 0], pos[:, 1], s=80 if big else 600, c=node_colours, edgecolors="black", zorder=2)
    for q in snapshot.qubits:
        x, y = pos[q.qubit]
        ax.annotate(
            str(q.qubit),
            (x, y),
            ha="center",
            va="center",
            fontsize=6 if big else 10,
            zorder=4,
            color="white" if readout[q.qubit] is not None and node_norm(readout[q.qubit]) < 0.6 else "black",
        )
        if not big and q.prob_meas0_prep1 is not None and q.prob_meas1_prep0 is not None:
            away = _away_from_neighbours(pos, edges, q.qubit)  # the label sits where no edge runs
            ax.annotate(
                f"p(0|1) {q.prob_meas0_prep1:.3f}\np(1|0) {q.prob_meas1_prep0:.3f}",
                (x, y),
                xytext=tuple(18 * away),
                textcoords="offset points",
                ha="left" if away[0] > 0.3 else "right" if away[0] < -0.3 else "center",
                va="bottom" if away[1] > 0.3 else "top" if away[1] < -0.3 else "center",
                fontsize=7,
                zorder=5,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8),
            )
    fig.colorbar(
        cm.ScalarMappable(norm=node_norm, cmap=node_cmap),
        ax=ax,
        fraction=0.04,
        location="right",
        label="readout error (mean of p(0|1), p(1|0))",
    )
    if edge_vals:
        gate = ", ".join(sorted({g.gate for g in snapshot.two_qubit_gates}))
        fig.colorbar(
            cm.ScalarMappable(norm=edge_norm, cmap=edge_cmap),
            ax=ax,
            fraction=0.04,
            location="bottom",
            pad=0.02,
            extend="max" if clipped else "neither",
            label=f"two-qubit gate error ({gate})",
        )
    ax.set_title(f"{snapshot.name}: calibrated {snapshot.calibration_date or 'on an unknown date'}")
    ax.set_aspect("equal")
    ax.margins(0.15)
    ax.axis("off")
    fig.tight_layout()
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=_DPI, bbox_inches="tight", pad_inches=0.1))
