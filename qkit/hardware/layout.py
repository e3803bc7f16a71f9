"""Choosing the physical qubits for a layer's circuit by the expected error of its outputs.

Qiskit's preset pass managers already pick a layout with the Target's error rates
(VF2Layout / VF2PostLayout), but they see one symmetric readout error per qubit and do not
know which qubits the observables read. ``choose_layout`` scores layouts by an estimate of
the error of the layer's expectation values instead:

* candidates come from Qiskit's own machinery: the VF2 subgraph mappings of the circuit's
  interaction graph into the coupling graph (``rustworkx.vf2_mapping``, capped, never a
  search over subsets of the device), plus the preset pass manager's own layout and, when
  the circuit needs routing, the layouts it picks with a few transpiler seeds;
* each candidate is transpiled with the preset pass manager (``initial_layout`` fixed) and
  scored per observable term on the qubits it reads: asymmetric readout (``<Z>`` becomes
  ``(1 - p01 - p10) <Z> + p01 - p10``), the error of every gate in the term's backward light
  cone of the ISA circuit (one- and two-qubit gates on the couplings the routed circuit uses,
  as depolarizing shrinkage), and decoherence over the circuit's scheduled duration (T1
  relaxation of the measured qubits, T2 dephasing of the rest of the light cone);
* the expected absolute error of ``s z + b`` against ``z``, averaged over ``z`` uniform in
  [-1, 1], weighted by the observable's coefficients and averaged over observables.

Many mappings on a large device are first ranked by a cheap pre-score (readout and
calibrated errors on the mapped qubits and couplings); only the best few are transpiled.
This module finds, transpiles and ranks the candidates; the error estimate (the second and
third points) is ``qkit.hardware.layout_error``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from qkit.errors import QkitError
from qkit.hardware.layout_error import NOT_GATES, Calibration, estimate_error

OPTIMIZATION_LEVEL = 1


@dataclass
class LayoutCandidate:
    """One layout with its estimated output error and the ISA circuit's size."""

    layout: list[int]  # physical qubit of each virtual qubit (initial layout)
    measured_qubits: list[int]  # physical qubit each virtual qubit is read on (final layout)
    estimate: float  # expected mean |<O> error| over the observables
    parts: dict  # readout / gates / decoherence estimates alone
    depth: int
    two_qubit_gates: int
    duration_s: float | None
    is_default: bool = False
    isa_circuit: Any = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {
            "layout": self.layout,
            "measured_qubits": self.measured_qubits,
            "estimate": self.estimate,
            "parts": self.parts,
            "depth": self.depth,
            "two_qubit_gates": self.two_qubit_gates,
            "duration_s": self.duration_s,
            "is_default": self.is_default,
        }


@dataclass
class LayoutChoice:
    """The chosen layout, the ranked candidates and the preset pass manager's default."""

    backend: str
    chosen: LayoutCandidate
    default: LayoutCandidate
    candidates: list[LayoutCandidate]  # best first, at most ``top``
    n_considered: int  # layouts found before the cut to ``top``

    @property
    def physical_qubits(self) -> list[int]:
        return self.chosen.layout

    @property
    def isa_circuit(self) -> Any:
        return self.chosen.isa_circuit

    def to_dict(self) -> dict:
        return {
            "backend": self.backend,
            "chosen": self.chosen.to_dict(),
            "default": self.default.to_dict(),
            "candidates": [c.to_dict() for c in self.candidates],
            "n_considered": self.n_considered,
            "optimization_level": OPTIMIZATION_LEVEL,
        }


# ---------------------------------------------------------------------- candidates

# (id(circuit), its size, id(backend), layout, seed) -> (circuit, backend, ISA circuit). A hardware
# run asks for the same copy's ISA circuit when it chooses the layout, scores the copies and prices
# the plans. The entry holds the circuit and backend themselves, so an id is never reused while it
# is kept; the size in the key makes a circuit grown in place compile again.
_TRANSPILED: dict[tuple, tuple[Any, Any, Any]] = {}
_TRANSPILED_MAX = 256


def transpile_with_layout(circuit: Any, backend: Any, layout: Sequence[int] | None = None, seed: int = 0) -> Any:
    """The ISA circuit the estimator engine would run (preset pass manager, level 1), compiled once
    per circuit, backend, layout and seed in a process; each call gets its own copy."""
    where = None if layout is None else tuple(int(q) for q in layout)
    key = (id(circuit), len(circuit.data), circuit.num_parameters, id(backend), where, seed)
    hit = _TRANSPILED.get(key)
    if hit is not None and hit[0] is circuit and hit[1] is backend:
        return hit[2].copy()
    isa = _transpile(circuit, backend, layout, seed)
    if len(_TRANSPILED) >= _TRANSPILED_MAX:
        del _TRANSPILED[next(iter(_TRANSPILED))]
    _TRANSPILED[key] = (circuit, backend, isa)
    return isa.copy()


def _transpile(circuit: Any, backend: Any, layout: Sequence[int] | None, seed: int) -> Any:
    from qiskit.transpiler import generate_preset_pass_manager

    pm = generate_preset_pass_manager(
        optimization_level=OPTIMIZATION_LEVEL,
        backend=backend,
        initial_layout=list(layout) if layout is not None else None,
        seed_transpiler=seed,
    )
    try:
        return pm.run(circuit)
    except Exception as exc:  # TranspilerError: a layout the device cannot route...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise QkitError(f"cannot transpile the circuit for {backend.name}: {first}") from None


def interaction_graph(circuit: Any) -> Any:
    """The circuit's qubits joined where a two-qubit gate acts (a rustworkx PyGraph)."""
    import rustworkx as rx

    graph = rx.PyGraph()
    graph.add_nodes_from(range(circuit.num_qubits))
    index = {bit: i for i, bit in enumerate(circuit.qubits)}
    seen = set()
    for inst in circuit.data:
        qargs = [index[q] for q in inst.qubits]
        if len(qargs) > 2 and inst.operation.name not in NOT_GATES:
            return None  # multi-qubit gates: leave the layout to the pass manager's seeds
        if len(qargs) == 2 and inst.operation.name not in NOT_GATES:
            pair = tuple(sorted(qargs))
            if pair not in seen:
                seen.add(pair)
                graph.add_edge(pair[0], pair[1], None)
    return graph


def vf2_layouts(circuit: Any, backend: Any, limit: int = 1000) -> list[list[int]]:
    """Layouts that put every two-qubit gate of ``circuit`` on a coupling (VF2 subgraph mappings)."""
    import rustworkx as rx

    graph = interaction_graph(circuit)
    if graph is None or backend.coupling_map is None:
        return []
    device = backend.coupling_map.graph.to_undirected(multigraph=False)
    mappings = rx.vf2_mapping(device, graph, subgraph=True, induced=False, id_order=False, call_limit=100 * limit)
    layouts = []
    for mapping in mappings:  # {device qubit: circuit qubit}
        layout = [0] * circuit.num_qubits
        for physical, virtual in mapping.items():
            layout[virtual] = physical
        layouts.append(layout)
        if len(layouts) >= limit:
            break
    return layouts


def _pre_score(layout: list[int], circuit: Any, observables: Sequence[Any], cal: Calibration) -> float:
    """Cheap ranking before transpiling: readout of the read qubits and errors of the mapped gates."""
    read = set()
    for obs in observables:
        for pauli in obs.paulis:
            read.update(layout[k] for k in range(pauli.num_qubits) if pauli.z[k] or pauli.x[k])
    score = sum(sum(cal.readout[q]) for q in read)
    index = {bit: i for i, bit in enumerate(circuit.qubits)}
    for inst in circuit.data:
        qargs = [layout[index[q]] for q in inst.qubits]
        if len(qargs) == 2:
            score += 4 / 3 * cal.mean_two_qubit_error(*qargs)
    return score


def ideal_values(circuit: Any, observables: Sequence[Any], values: Any) -> list[list[Any]]:
    """Noiseless values of every observable's every Pauli term, one per row of ``values``.

    ``values``: rows of parameter values in ``circuit.parameters`` order (statevector: small circuits).
    """
    from qiskit.quantum_info import SparsePauliOp, Statevector

    rows = [list(map(float, row)) for row in values]
    if circuit.num_qubits > 20:
        raise QkitError(f"sample values need a statevector; {circuit.num_qubits} qubits is too many")
    states = [Statevector(circuit.assign_parameters(row) if circuit.num_parameters else circuit) for row in rows]
    return [
        [[float(state.expectation_value(SparsePauliOp(pauli)).real) for state in states] for pauli in obs.paulis]
        for obs in observables
    ]


def choose_layout(
    program_or_circuit: Any,
    observables: Sequence[Any] | None,
    backend: Any,
    snapshot: Any = None,
    top: int = 5,
    max_transpiled: int = 20,
    values: Any = None,
    exclude: Sequence[int] = (),
) -> LayoutChoice:
    """The layout with the least estimated output error (see module docstring).

    ``program_or_circuit``: a ``LayerProgram`` (its observables are used when ``observables`` is
    None) or a ``QuantumCircuit``; ``observables``: ``SparsePauliOp`` on the circuit's qubits.
    ``snapshot``: the calibration to score with (default: read from ``backend``).
    ``values``: optional sample rows of parameter values (``circuit.parameters`` order); the
    error is then averaged over the layer's noiseless outputs on them instead of over [-1, 1].
    ``exclude``: physical qubits the chosen layout must not use (the default is still scored).
    """
    circuit = getattr(program_or_circuit, "circuit", program_or_circuit)
    if observables is None:
        observables = getattr(program_or_circuit, "observables", None)
    if not observables:
        raise QkitError("choose_layout needs the observables the layer reads")
    if not isinstance(top, int) or top < 1:
        raise QkitError(f"top must be an integer >= 1, got {top!r}")
    width = backend.num_qubits
    if circuit.num_qubits > width:
        raise QkitError(f"the circuit has {circuit.num_qubits} qubits but {backend.name} has {width}")
    cal = Calibration(backend, snapshot)
    ideal = None if values is None else ideal_values(circuit, observables, values)

    default_isa = transpile_with_layout(circuit, backend)
    default_layout = [int(q) for q in default_isa.layout.initial_index_layout()[: circuit.num_qubits]]
    layouts = vf2_layouts(circuit, backend)
    if not layouts:  # the circuit needs routing: the pass manager's picks with other seeds
        for seed in range(1, 6):
            isa = transpile_with_layout(circuit, backend, seed=seed)
            layouts.append([int(q) for q in isa.layout.initial_index_layout()[: circuit.num_qubits]])
    banned = set(int(q) for q in exclude)
    unique = {tuple(layout): layout for layout in layouts if layout != default_layout and banned.isdisjoint(layout)}
    ranked = sorted(unique.values(), key=lambda lay: _pre_score(lay, circuit, observables, cal))
    n_considered = len(ranked) + 1

    candidates = [_candidate(default_layout, default_isa, observables, cal, ideal, is_default=True)]
    for layout in ranked[: max(max_transpiled, top)]:
        isa = transpile_with_layout(circuit, backend, layout)
        candidates.append(_candidate(layout, isa, observables, cal, ideal))
    candidates.sort(key=lambda c: (c.estimate, not c.is_default))
    allowed = [c for c in candidates if banned.isdisjoint(c.layout)]
    if not allowed:
        raise QkitError(f"every layout found on {backend.name} uses an excluded qubit ({sorted(banned)})")
    return LayoutChoice(
        backend=backend.name,
        chosen=allowed[0],
        default=candidates[[c.is_default for c in candidates].index(True)],
        candidates=allowed[:top],
        n_considered=n_considered,
    )


def _candidate(
    layout: list[int],
    isa: Any,
    observables: Sequence[Any],
    cal: Calibration,
    ideal: Any = None,
    is_default: bool = False,
) -> LayoutCandidate:
    estimate, parts, measured = estimate_error(isa, observables, cal, ideal)
    try:
        duration = float(isa.estimate_duration(cal.target, unit="s"))
    except Exception:
        duration = None
    two_q = sum(1 for inst in isa.data if inst.operation.num_qubits == 2 and inst.operation.name not in NOT_GATES)
    return LayoutCandidate(
        layout=list(layout),
        measured_qubits=measured,
        estimate=estimate,
        parts=parts,
        depth=isa.depth(),
        two_qubit_gates=two_q,
        duration_s=duration,
        is_default=is_default,
        isa_circuit=isa,
    )
