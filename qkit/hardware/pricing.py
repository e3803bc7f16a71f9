"""A priced plan: what a QPU minute buys, predicted before anything is paid for.

``plan_table(prep)`` prices, for the run's own split and repetitions, every plan of
copies x shots x repetition delay x mitigation around the prepared one:

* **cost**: the plan's estimated QPU seconds (``qkit.hardware.plan``: rows / copies x bases x
  shots x (scheduled circuit + measurement + repetition delay) + readout calibration shots +
  5 s per job);
* **accuracy**: the ``density`` engine on every copy's layout at the device's calibration
  gives each row's exact noisy outputs (gate noise, relaxation and readout). Readout
  mitigation is predicted as what it removes in expectation (each read qubit's
  ``(1 - P(0|1) - P(1|0))`` shrink and ``P(0|1) - P(1|0)`` shift undone), and shots as
  Gaussian noise of the binomial variance ``(1 - <Z>^2) / shots`` (divided by the shrink
  squared after mitigation). The predicted mean |delta<O>| against the exact statevector
  outputs is the folded normal's mean; agreement with the exact model's class is averaged
  over ``DRAWS`` noise draws through the run's post-net.

The repetition delay changes only the cost here: neither the prediction nor the emulation
models what a shorter delay may cost on a device (qubits not fully reset between shots).
Predictions need observables that are single Pauli terms (every built-in circuit); others
are priced without a prediction. ``choose_plan(table, budget)`` picks the most accurate plan
whose estimate fits ``--budget``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from qkit.errors import QkitError
from qkit.hardware.plan import default_rep_delay, make_plan, rep_delay_range

SHORT_REP_DELAY_S = 100e-6  # the shorter repetition delay the table prices beside the default
DRAWS = 32  # shot-noise draws for the predicted agreement


@dataclass
class PricedPlan:
    copies: int
    shots: int
    rep_delay: float  # seconds
    mitigation: str
    qpu_seconds: float
    delta: float | None  # predicted mean |delta<O>| against exact
    agreement: float | None  # predicted share of predictions equal to the exact model's
    is_prepared: bool = False  # the plan the command's own options describe
    default_delay: bool = True  # the backend's default repetition delay (no --rep-delay needed)

    def options(self) -> dict:
        """``qkit.hardware.prepare.replan`` options that run this plan."""
        return {
            "copies": self.copies,
            "shots": self.shots,
            "mitigation": self.mitigation,
            "rep_delay": None if self.default_delay else round(self.rep_delay * 1e6, 6),
        }

    def label(self) -> str:
        return (
            f"{self.copies} cop{'y' if self.copies == 1 else 'ies'} x {self.shots} shots, rep delay "
            f"{self.rep_delay * 1e6:g} us, mitigation {self.mitigation}"
        )

    def figures(self) -> str:
        accuracy = "" if self.delta is None else f", predicted |Δ⟨O⟩| {self.delta:.4f}, agreement {self.agreement:.1%}"
        return f"estimate {self.qpu_seconds:.1f} QPU s{accuracy}"


def _qpu_seconds(prep: Any, copies: int, shots: int, rep_delay: float, mitigation: str) -> float:
    """The estimate of ``make_plan`` for these options (the circuit's own time per shot is the prepared one's)."""
    from qkit.hardware.mitigation import CALIBRATION_SHOTS

    plan = prep.plan
    calibration = 2 * CALIBRATION_SHOTS if mitigation == "readout" and prep.readout_from == "device" else 0
    return make_plan(
        math.ceil(plan.samples * plan.repeat / copies),
        plan.samples,
        plan.repeat,
        shots,
        plan.bases,
        plan.seconds_per_shot - prep.shot_delay + rep_delay,
        None,
        calibration,
        copies,
    ).qpu_seconds


def _copy_outputs(prep: Any, layout: list[int]) -> dict | None:
    """One copy's predicted outputs on every sample: ``raw`` (exact noisy, readout included) and
    ``mitigated`` [samples, n_obs], the per-output ``z`` (raw Pauli expectation) and the shot-noise
    scale of each (``coeff`` raw, ``coeff / shrink`` mitigated); None when an observable is not a
    single Pauli term."""
    import torch

    from qkit.engines.density import DensityEngine

    program = prep.program
    if any(len(op.paulis) != 1 for op in program.observables):
        return None
    engine = DensityEngine(program, torch.float64, backend=prep.backend.name, layout=list(layout))
    n_in = len(program.inputs)
    with torch.no_grad():
        raw = engine.execute(
            torch.as_tensor(prep.sample_rows[:, :n_in]), torch.as_tensor(prep.sample_rows[0, n_in:])
        ).numpy()
    coeff = np.array([float(np.real(op.coeffs[0])) for op in program.observables])
    shrink, shift = np.ones(len(coeff)), np.zeros(len(coeff))
    for i, op in enumerate(program.observables):
        pauli = op.apply_layout(engine.isa_circuit.layout).paulis[0]
        read = [int(q) for q in np.flatnonzero(pauli.x | pauli.z)]  # physical qubits
        for q in read:
            p01, p10 = engine.noise.readout.get(q, (0.0, 0.0))
            shrink[i] *= 1.0 - p01 - p10
        if len(read) == 1:
            p01, p10 = engine.noise.readout.get(read[0], (0.0, 0.0))
            shift[i] = p01 - p10
    z = raw / np.where(coeff == 0, 1.0, coeff)
    return {
        "raw": raw,
        "mitigated": coeff * (z - shift) / shrink,
        "z": z,
        "scale_none": np.abs(coeff),
        "scale_readout": np.abs(coeff) / np.abs(shrink),
    }


def _folded_mean(a: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """E|a + sigma * N(0, 1)|."""
    from scipy.special import erf

    sigma = np.maximum(sigma, 1e-12)
    return sigma * np.sqrt(2 / np.pi) * np.exp(-(a**2) / (2 * sigma**2)) + a * erf(a / (sigma * np.sqrt(2)))


def _predict(prep: Any, outputs: list[dict], copies: int, shots: int, mitigation: str) -> tuple[float, float]:
    import torch

    samples, repeat = prep.plan.samples, prep.plan.repeat
    rows = np.arange(samples * repeat)
    sample, copy = rows % samples, rows % copies
    key = "raw" if mitigation == "none" else "mitigated"
    mean = np.stack([outputs[k][key] for k in range(copies)])[copy, sample]  # [rows, n_obs]
    z = np.stack([outputs[k]["z"] for k in range(copies)])[copy, sample]
    scale = np.stack([outputs[k][f"scale_{mitigation}"] for k in range(copies)])[copy]
    sigma = scale * np.sqrt(np.clip(1.0 - z**2, 0.0, None) / shots)
    delta = float(_folded_mean(mean - prep.exact_values[sample], sigma).mean())
    rng = np.random.default_rng(0)
    draws = mean[None] + sigma[None] * rng.standard_normal((DRAWS,) + mean.shape)
    with torch.no_grad():
        dtype = next(prep.post.parameters()).dtype
        logits = prep.post(torch.as_tensor(draws.reshape(-1, mean.shape[1]), dtype=dtype))
    predicted = logits.argmax(dim=1).numpy().reshape(DRAWS, -1)
    agreement = float(np.mean(predicted == prep.exact_probs.argmax(axis=1)[sample][None]))
    return delta, agreement


def plan_table(prep: Any) -> list[PricedPlan]:
    """Every plan around the prepared one (module docstring), cheapest first."""
    device = prep.backend.backend
    n = prep.n_copies
    copies_options = sorted({1, n})
    shots_options = sorted(
        {s for s in (prep.plan.shots, prep.plan.shots // 2, prep.plan.shots // 4) if s >= 1}, reverse=True
    )
    low, high = rep_delay_range(device)
    current = prep.shot_delay
    delays = {current, default_rep_delay(device)}
    if low is not None and low <= SHORT_REP_DELAY_S <= high:
        delays.add(SHORT_REP_DELAY_S)
    layouts = prep.copies.layouts if prep.copies is not None else [prep.physical_qubits]
    outputs = [_copy_outputs(prep, layout) for layout in layouts]
    table = []
    for copies in copies_options:
        for shots in shots_options:
            for delay in sorted(delays, reverse=True):
                for mitigation in ("none", "readout"):
                    delta = agreement = None
                    if all(o is not None for o in outputs):
                        delta, agreement = _predict(prep, outputs, copies, shots, mitigation)
                    prepared = (
                        copies == n
                        and shots == prep.plan.shots
                        and math.isclose(delay, current)
                        and mitigation == prep.mitigation
                    )
                    table.append(
                        PricedPlan(
                            copies,
                            shots,
                            delay,
                            mitigation,
                            _qpu_seconds(prep, copies, shots, delay, mitigation),
                            delta,
                            agreement,
                            prepared,
                            math.isclose(delay, default_rep_delay(device)),
                        )
                    )
    return sorted(table, key=lambda p: (p.qpu_seconds, p.delta if p.delta is not None else 0.0))


def shown(table: list[PricedPlan]) -> list[PricedPlan]:
    """The prepared plan and every plan no other beats on both cost and predicted |delta<O>|."""
    out = []
    for p in table:
        beaten = p.delta is not None and any(
            q is not p and q.delta is not None and q.qpu_seconds <= p.qpu_seconds and q.delta < p.delta for q in table
        )
        if p.is_prepared or not beaten:
            out.append(p)
    return out


def priced_text(table: list[PricedPlan], prep: Any) -> str:
    lines = [
        "plans (estimated QPU seconds; |Δ⟨O⟩| and agreement with exact predicted by the density engine at "
        "calibration, shot noise from the shot count; * = this command's plan):",
        f"  {'copies':>6} {'shots':>6} {'rep delay':>10} {'mitigation':>10} {'QPU s':>8} {'|Δ⟨O⟩|':>8} "
        f"{'agreement':>9}",
    ]
    for p in shown(table):
        delta = "-" if p.delta is None else f"{p.delta:.4f}"
        agree = "-" if p.agreement is None else f"{p.agreement:.1%}"
        lines.append(
            f"{'*' if p.is_prepared else ' '} {p.copies:>6} {p.shots:>6} {p.rep_delay * 1e6:>7g} us "
            f"{p.mitigation:>10} {p.qpu_seconds:>8.1f} {delta:>8} {agree:>9}"
        )
    lines.append(
        f"  ({len(table)} plans priced; shown: those no other plan beats on both cost and |Δ⟨O⟩|. "
        "A shorter rep delay is not modelled beyond its cost.)"
    )
    return "\n".join(lines)


def choose_plan(table: list[PricedPlan], budget: float, prep: Any) -> tuple[PricedPlan, str]:
    """The most accurate plan (least predicted |delta<O>|, then agreement) estimated at most ``budget``
    QPU seconds, and one line saying what it gave up against the prepared plan."""
    if table is None:
        raise QkitError("--budget needs the sampler path (--mitigation none or readout)")
    fits = [p for p in table if p.qpu_seconds <= budget]
    if not fits:
        cheapest = min(table, key=lambda p: p.qpu_seconds)
        raise QkitError(f"--budget {budget:g} is below the cheapest plan: {cheapest.label()}, {cheapest.figures()}")
    best = min(fits, key=lambda p: (p.delta if p.delta is not None else 0.0, -(p.agreement or 0.0), p.qpu_seconds))
    mine = next(p for p in table if p.is_prepared)
    said = f"--budget {budget:g}: {best.label()} ({best.figures()})"
    if best is mine:
        return best, said + "; the plan asked for fits, nothing given up"
    gave = [
        f"{name} {a} -> {b}"
        for name, a, b in (
            ("copies", mine.copies, best.copies),
            ("shots", mine.shots, best.shots),
            ("rep delay", f"{mine.rep_delay * 1e6:g} us", f"{best.rep_delay * 1e6:g} us"),
            ("mitigation", mine.mitigation, best.mitigation),
        )
        if a != b
    ]
    if mine.delta is not None:
        gave.append(
            f"predicted |Δ⟨O⟩| {mine.delta:.4f} -> {best.delta:.4f}, agreement "
            f"{mine.agreement:.1%} -> {best.agreement:.1%}"
        )
    if not math.isclose(mine.rep_delay, best.rep_delay):
        gave.append("what a shorter rep delay costs on the device is not modelled")
    return best, (said + f"; against the plan asked for ({mine.qpu_seconds:.1f} QPU s): " + ", ".join(gave))
