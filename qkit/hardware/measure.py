"""Expectation values from a sampler's shots: the layer's circuit measured in as few bases as its observables need.

The runtime's Estimator hides the measurements; readout mitigation with mthree needs them.
So the sampler path does what an estimator does, in the open:

* the observables' Pauli terms are grouped into qubit-wise commuting sets (Qiskit's
  ``PauliList.group_qubit_wise_commuting``); each set is one measurement basis;
* per basis, the layer's circuit gets the basis change (H for X, S-dagger then H for Y) and
  ``measure_all`` (classical bit i = virtual qubit i, whatever routing does), and is
  transpiled for the backend on ONE initial layout shared by every basis;
* a term's value is the shot average of ``(-1)^parity(bits & support)``, computed on the
  integer outcomes of every shot at once; the same code reads mthree's quasi-probabilities
  after readout mitigation, so raw and mitigated values come from the same shots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from qkit.errors import QkitError

MAX_BITS = 62  # outcomes are held as int64 per shot


@dataclass
class Basis:
    """One measured circuit: which Pauli each virtual qubit is read in, and its ISA form.

    With N copies (``qkit.hardware.copies``) ``isa`` holds all of them, copy k's virtual qubit i
    in clbit ``k * n_bits + i``, and reads wide rows ``[row of copy 0, row of copy 1, ...]``."""

    label: str  # Qiskit order: rightmost character is virtual qubit 0
    isa: Any  # transpiled QuantumCircuit with ``meas`` (clbit i = virtual qubit i)
    columns: np.ndarray  # ISA parameter k <- column of a (wide) [inputs..., weights...] row
    mappings: list[dict]  # per copy: clbit i -> physical qubit (mthree's "final measurement mapping")

    @property
    def mapping(self) -> dict:
        return self.mappings[0]


@dataclass
class Term:
    observable: int
    basis: int
    mask: int  # classical bits whose parity gives the term's sign
    coeff: float


def measurement_bases(observables: Sequence[Any]) -> tuple[list[str], list[Term]]:
    """Qubit-wise commuting groups of all terms, and each term's basis and support mask."""
    from qiskit.quantum_info import PauliList

    terms = [(i, p, float(np.real(c))) for i, op in enumerate(observables) for p, c in zip(op.paulis, op.coeffs)]
    non_identity = PauliList([p for _, p, _ in terms if p.x.any() or p.z.any()])
    groups = non_identity.group_qubit_wise_commuting() if len(non_identity) else []
    labels = []
    for group in groups:
        chars = ["I"] * group.num_qubits
        for pauli in group:
            for q in range(pauli.num_qubits):
                if pauli.x[q] or pauli.z[q]:
                    chars[q] = "Y" if pauli.x[q] and pauli.z[q] else ("X" if pauli.x[q] else "Z")
        labels.append("".join(reversed(chars)))
    out = []
    for i, pauli, coeff in terms:
        support = [q for q in range(pauli.num_qubits) if pauli.x[q] or pauli.z[q]]
        mask = sum(1 << q for q in support)
        basis = (
            -1
            if not support
            else next(
                b
                for b, label in enumerate(labels)
                if all(
                    label[-1 - q] == ("Y" if pauli.x[q] and pauli.z[q] else ("X" if pauli.x[q] else "Z"))
                    for q in support
                )
            )
        )
        out.append(Term(i, basis, mask, coeff))
    return labels, out


def _measured(circuit: Any, label: str) -> Any:
    qc = circuit.copy()
    for q, char in enumerate(reversed(label)):
        if char == "X":
            qc.h(q)
        elif char == "Y":
            qc.sdg(q)
            qc.h(q)
    qc.measure_all()
    return qc


@dataclass
class MeasuredCircuits:
    """Every basis the observables need, compiled for one backend on one layout."""

    bases: list[Basis]
    terms: list[Term]
    n_observables: int
    n_bits: int
    layout: list[int]  # initial layout: physical qubit of each virtual qubit (first copy)
    copies: int = 1

    @property
    def physical_qubits(self) -> list[int]:
        """Every physical qubit that is read, over all bases and copies (what readout calibration covers)."""
        return sorted({int(q) for b in self.bases for m in b.mappings for q in m.values()})

    def pubs(self, values: np.ndarray, shots: int) -> list:
        """One sampler PUB per basis for parameter rows ``[R, inputs + weights]``."""
        pubs = []
        for basis in self.bases:
            if len(basis.columns):
                pubs.append((basis.isa, values[:, basis.columns], shots))
            else:  # nothing to bind: one circuit, broadcast later
                pubs.append((basis.isa, None, shots))
        return pubs

    def outcomes(self, packed: np.ndarray) -> np.ndarray:
        """Integer outcomes ``[wide rows * copies, shots]`` (row m * copies + k: copy k's bits of wide
        row m) from a basis' saved packed bits ``[wide rows, shots, bytes]``."""
        if self.copies == 1:
            return outcomes_of(packed)
        return copy_outcomes(packed, self.n_bits, self.copies)

    def expectation_values(self, distributions: Sequence["Distribution"], rows: int) -> np.ndarray:
        """``[rows, n_observables]`` from one distribution per basis (raw shots or mthree quasi-probabilities)."""
        out = np.zeros((rows, self.n_observables))
        for term in self.terms:
            if term.basis < 0:
                out[:, term.observable] += term.coeff
            else:
                out[:, term.observable] += term.coeff * distributions[term.basis].parity_mean(term.mask, rows)
        return out


@dataclass
class Distribution:
    """Outcomes (ints, bit i = classical bit i) with weights, grouped by row; rows broadcast if 1."""

    keys: np.ndarray  # [entries] int64 outcomes
    weights: np.ndarray  # [entries] probability (or quasi-probability) of each entry
    row: np.ndarray  # [entries] row index
    n_rows: int

    def parity_mean(self, mask: int, rows: int) -> np.ndarray:
        sign = 1.0 - 2.0 * (np.bitwise_count(self.keys & np.int64(mask)) & 1)
        means = np.bincount(self.row, weights=self.weights * sign, minlength=self.n_rows)
        return np.broadcast_to(means, (rows,)) if self.n_rows == 1 and rows != 1 else means

    @classmethod
    def from_outcomes(cls, outcomes: np.ndarray) -> "Distribution":
        """Every shot as its own entry of weight 1/shots: outcomes ``[rows, shots]``."""
        rows, shots = outcomes.shape
        return cls(outcomes.reshape(-1), np.full(rows * shots, 1.0 / shots), np.repeat(np.arange(rows), shots), rows)

    @classmethod
    def from_quasis(cls, quasis: Sequence[dict]) -> "Distribution":
        """mthree's quasi-distributions (bitstring keys), one per row."""
        keys, weights, row = [], [], []
        for r, quasi in enumerate(quasis):
            keys.extend(int(k, 2) for k in quasi)
            weights.extend(quasi.values())
            row.extend([r] * len(quasi))
        return cls(
            np.asarray(keys, dtype=np.int64),
            np.asarray(weights, dtype=np.float64),
            np.asarray(row, dtype=np.int64),
            len(quasis),
        )


def outcomes_of(bit_array: Any) -> np.ndarray:
    """Integer outcome of every shot, ``[rows, shots]`` int64, from a sampler ``BitArray``
    (or its raw ``.array`` of big-endian packed bytes ``[rows, shots, bytes]``)."""
    packed = np.asarray(getattr(bit_array, "array", bit_array))
    packed = packed.reshape((-1,) + packed.shape[-2:])
    value = np.zeros(packed.shape[:2], dtype=np.int64)
    for j in range(packed.shape[-1]):
        value = (value << 8) | packed[..., j].astype(np.int64)
    return value


def bits_of(packed: np.ndarray, num_bits: int) -> np.ndarray:
    """Bits ``[..., shots, num_bits]`` (uint8, bit i = classical bit i) of big-endian packed bytes,
    for registers too wide for an int64 outcome."""
    packed = np.asarray(getattr(packed, "array", packed))
    return np.unpackbits(packed[..., ::-1], axis=-1, bitorder="little")[..., :num_bits]


def copy_outcomes(packed: np.ndarray, n_bits: int, copies: int) -> np.ndarray:
    """Copy k's ``n_bits`` (clbits ``k * n_bits ...``) of every shot as integers, rows interleaved:
    ``[wide rows * copies, shots]`` with row ``m * copies + k``."""
    packed = np.asarray(getattr(packed, "array", packed))
    packed = packed.reshape((-1,) + packed.shape[-2:])
    bits = bits_of(packed, n_bits * copies).reshape(packed.shape[0], packed.shape[1], copies, n_bits)
    values = bits.astype(np.int64) @ (np.int64(1) << np.arange(n_bits, dtype=np.int64))
    return values.transpose(0, 2, 1).reshape(-1, packed.shape[1])


def counts_of(outcomes: np.ndarray, n_bits: int) -> list[dict]:
    """One counts dict (bitstring -> shots) per row, as mthree and Qiskit write them."""
    out = []
    for row in outcomes:
        keys, counts = np.unique(row, return_counts=True)
        out.append({format(int(k), f"0{n_bits}b"): int(c) for k, c in zip(keys, counts)})
    return out


def _measurement_mapping(isa: Any) -> dict[int, int]:
    """Classical bit -> physical qubit of each measurement. (mthree.utils.final_measurement_mapping
    does this too, through CircuitInstruction tuple access that Qiskit deprecated for 3.0.)"""
    mapping = {}
    for inst in isa.data:
        if inst.operation.name == "measure":
            mapping[isa.find_bit(inst.clbits[0]).index] = isa.find_bit(inst.qubits[0]).index
    return mapping


def _active(isa: Any) -> set[int]:
    return {isa.find_bit(q).index for inst in isa.data if inst.operation.name != "barrier" for q in inst.qubits}


def measured_circuits(
    program: Any, backend: Any, layout: Sequence[int], seed: int = 0, copies: Sequence[Sequence[int]] | None = None
) -> MeasuredCircuits:
    """The layer's circuit measured in every basis its observables need, on ``layout``; with
    ``copies`` (initial layouts, the first being ``layout``) one wide circuit per basis holding
    a copy on each (``qkit.hardware.copies.widen``)."""
    from qkit.hardware.copies import widen
    from qkit.hardware.layout import transpile_with_layout

    n = program.n_qubits
    if n > MAX_BITS:
        raise QkitError(f"the sampler path reads at most {MAX_BITS} qubits, the circuit has {n}")
    layouts = [list(layout)] + [list(c) for c in (copies or [])[1:]]
    labels, terms = measurement_bases(program.observables)
    if not labels:  # only identities: still one circuit, so that shots are spent honestly
        labels = ["Z" * n]
    row_width = len(program.inputs) + len(program.weights)
    bases = []
    for label in labels:
        isas, columns, mappings = [], [], []
        for copy in layouts:
            isa = transpile_with_layout(_measured(program.circuit, label), backend, copy, seed=seed)
            if len(layouts) > 1 and not _active(isa) <= set(copy):
                raise QkitError(f"the copy on {copy} needs qubits outside it after routing; use --copies 1")
            isas.append(isa)
            columns.append(np.array(program.columns(isa.parameters), dtype=np.int64))
            mappings.append(_measurement_mapping(isa))
        if len(layouts) == 1:
            bases.append(Basis(label, isas[0], columns[0], mappings))
        else:
            wide, wide_columns = widen(isas, n, columns, row_width)
            bases.append(Basis(label, wide, wide_columns, mappings))
    return MeasuredCircuits(bases, terms, len(program.observables), n, [int(q) for q in layout], len(layouts))
