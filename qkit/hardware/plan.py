"""The plan of a hardware run: which rows go in which job, and what it will cost.

Rows are samples x repetitions (repetition-major), cut into contiguous slices, one job each,
under IBM's documented limit of 10 million executions (circuits x shots) per job; a readout
calibration job comes first when the run mitigates readout from the device.

The QPU time is an ESTIMATE, not a quote: per shot, the ISA circuit's scheduled duration
(``QuantumCircuit.estimate_duration`` on the backend's target) + the slowest measurement on
its qubits + the backend's default repetition delay (250 us when unknown); times rows x
measurement bases x shots, plus ``JOB_OVERHEAD_S`` per job. IBM's own accounting differs
(it includes compilation and loading); treat it as an order of magnitude.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from qkit.errors import QkitError

MAX_EXECUTIONS_PER_JOB = 10_000_000  # IBM: circuits x shots per job (documented limit)
JOB_OVERHEAD_S = 5.0  # assumed fixed QPU seconds per job (estimate)
DEFAULT_REP_DELAY_S = 250e-6


@dataclass
class Plan:
    """Jobs as ``[start, stop)`` slices of the rows (repetition-major: row = rep * n + sample)."""

    jobs: list[tuple[int, int]]
    rows: int
    samples: int
    repeat: int
    shots: int
    bases: int  # measurement bases the observables need (qubit-wise commuting groups)
    seconds_per_shot: float
    max_rows_per_job: int
    calibration_shots: int = 0  # readout calibration job (|0...0> and |1...1> circuits), 0 if none
    copies: int = 1  # parallel copies: each (wide) row evaluates this many rows of the split

    @property
    def n_jobs(self) -> int:
        return len(self.jobs) + (1 if self.calibration_shots else 0)

    @property
    def executions(self) -> int:
        return self.rows * self.bases * self.shots + self.calibration_shots

    @property
    def qpu_seconds(self) -> float:
        return self.executions * self.seconds_per_shot + JOB_OVERHEAD_S * self.n_jobs

    def job_seconds(self, index: int | str) -> float:
        """The estimate of one job: ``"calibration"`` or the index of a slice."""
        if index == "calibration":
            return self.calibration_shots * self.seconds_per_shot + JOB_OVERHEAD_S
        start, stop = self.jobs[index]
        return (stop - start) * self.bases * self.shots * self.seconds_per_shot + JOB_OVERHEAD_S

    def to_dict(self) -> dict:
        return {
            "jobs": self.n_jobs,
            "pubs": len(self.jobs) * self.bases + (2 if self.calibration_shots else 0),
            "rows": self.rows,
            "copies": self.copies,
            "samples": self.samples,
            "repeat": self.repeat,
            "shots": self.shots,
            "bases": self.bases,
            "calibration_shots": self.calibration_shots,
            "executions": self.executions,
            "max_rows_per_job": self.max_rows_per_job,
            "seconds_per_shot": self.seconds_per_shot,
            "estimated_qpu_seconds": round(self.qpu_seconds, 3),
            "estimate": (
                f"executions x {self.seconds_per_shot * 1e6:.1f} us per shot "
                f"(circuit + measure + rep delay) + {JOB_OVERHEAD_S:g} s per job"
            ),
            "slices": [list(s) for s in self.jobs],
        }


def rep_delay_range(device) -> tuple[float | None, float | None]:
    """The backend's allowed repetition delays in seconds (``configuration().rep_delay_range``)."""
    try:
        low, high = device.configuration().rep_delay_range
        return float(low), float(high)
    except Exception:  # a backend without a configuration (snapshots, Aer)
        return None, None


def default_rep_delay(device) -> float:
    """The backend's default repetition delay in seconds (250 us when it reports none)."""
    delay = getattr(device, "default_rep_delay", None)
    if delay is None:
        try:
            delay = device.configuration().default_rep_delay
        except Exception:
            delay = None
    return float(delay) if delay else DEFAULT_REP_DELAY_S


def seconds_per_shot(isa, device, qubits: list[int], rep_delay: float | None = None) -> float:
    """Scheduled circuit duration + slowest measurement on its qubits + repetition delay (seconds;
    ``rep_delay`` None: the backend's default)."""
    try:
        circuit = float(isa.estimate_duration(device.target, unit="s"))
    except Exception:  # a target without durations: the delay and measurement only
        circuit = 0.0
    measure = 0.0
    if "measure" in device.target.operation_names:
        for q in qubits:
            props = device.target["measure"].get((q,))
            if props is not None and props.duration:
                measure = max(measure, float(props.duration))
    return circuit + measure + (default_rep_delay(device) if rep_delay is None else float(rep_delay))


def make_plan(
    rows: int,
    samples: int,
    repeat: int,
    shots: int,
    bases: int,
    seconds_per_shot: float,
    max_rows_per_job: int | None = None,
    calibration_shots: int = 0,
    copies: int = 1,
) -> Plan:
    """Contiguous slices of at most ``max_rows_per_job`` rows (default: under 10 M executions a job)."""
    limit = max(1, MAX_EXECUTIONS_PER_JOB // (bases * shots))
    if max_rows_per_job is None:
        max_rows_per_job = limit
    if max_rows_per_job < 1:
        raise QkitError(f"--max-rows-per-job must be >= 1, got {max_rows_per_job}")
    if max_rows_per_job > limit:
        raise QkitError(
            f"--max-rows-per-job {max_rows_per_job} x {bases} bases x {shots} shots exceeds IBM's "
            f"{MAX_EXECUTIONS_PER_JOB:,} executions per job; use at most {limit}"
        )
    n_jobs = max(1, math.ceil(rows / max_rows_per_job))
    jobs = [(i * max_rows_per_job, min(rows, (i + 1) * max_rows_per_job)) for i in range(n_jobs)]
    return Plan(
        jobs, rows, samples, repeat, shots, bases, seconds_per_shot, max_rows_per_job, calibration_shots, copies
    )


def check_counts(shots, repeat, seed) -> None:
    for name, value in (("shots", shots), ("repeat", repeat)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise QkitError(f"--{name} must be an integer >= 1, got {value!r}")
    if seed is not None and (not isinstance(seed, numbers.Integral) or isinstance(seed, bool)):
        raise QkitError(f"--seed must be an integer, got {seed!r}")


def check_budget(budget, max_qpu_seconds) -> None:
    """``--budget`` and ``--max-qpu-seconds``: positive numbers of QPU seconds."""
    for name, value in (("budget", budget), ("max-qpu-seconds", max_qpu_seconds)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0):
            raise QkitError(f"--{name} must be a number of QPU seconds > 0, got {value!r}")
