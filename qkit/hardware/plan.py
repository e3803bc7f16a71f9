"""``qkit run-hardware``, part 1: a trained run's circuit inputs and the plan of jobs that sends them.

``prepare_hardware_run`` reads a run through its record (model.pt, the data where the run
recorded it, refused if it changed), runs the classical part once in torch (backbone ->
``head.encode``: the circuit input angles of every sample), builds the rows of parameters
(samples x repetitions, inputs and the trained quantum weights), compiles the circuit for
the backend with the estimator engine (``qkit.engines.estimator.EstimatorEngine``: the same
ISA transpile, observable layout and parameter binding as ``--engine estimator``) and plans
the jobs: contiguous slices of rows, one PUB each, at most ``max_rows_per_job`` rows.

The QPU time is an ESTIMATE, not a quote: per shot, the ISA circuit's scheduled duration
(``QuantumCircuit.estimate_duration`` on the backend's target) + the slowest measurement on
its qubits + the backend's default repetition delay (250 us when unknown); times rows x
measurement bases x shots, plus ``JOB_OVERHEAD_S`` per job. IBM's own accounting differs
(it includes compilation and loading); treat it as an order of magnitude.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qkit.errors import QkitError

MAX_EXECUTIONS_PER_JOB = 10_000_000   # IBM: circuits x shots per job (documented limit)
JOB_OVERHEAD_S = 5.0                   # assumed fixed QPU seconds per job (estimate)
DEFAULT_REP_DELAY_S = 250e-6


@dataclass
class Plan:
    """Jobs as ``[start, stop)`` slices of the rows (repetition-major: row = rep * n + sample)."""

    jobs: list[tuple[int, int]]
    rows: int
    samples: int
    repeat: int
    shots: int
    bases: int                 # measurement bases the observables need (qubit-wise commuting groups)
    seconds_per_shot: float
    max_rows_per_job: int

    @property
    def executions(self) -> int:
        return self.rows * self.bases * self.shots

    @property
    def qpu_seconds(self) -> float:
        return self.executions * self.seconds_per_shot + JOB_OVERHEAD_S * len(self.jobs)

    def to_dict(self) -> dict:
        return {"jobs": len(self.jobs), "pubs": len(self.jobs), "rows": self.rows, "samples": self.samples,
                "repeat": self.repeat, "shots": self.shots, "bases": self.bases,
                "executions": self.executions, "max_rows_per_job": self.max_rows_per_job,
                "seconds_per_shot": self.seconds_per_shot,
                "estimated_qpu_seconds": round(self.qpu_seconds, 3),
                "estimate": (f"rows x bases x shots x {self.seconds_per_shot * 1e6:.1f} us per shot "
                             f"(circuit + measure + rep delay) + {JOB_OVERHEAD_S:g} s per job"),
                "slices": [list(s) for s in self.jobs]}


@dataclass
class Prepared:
    """Everything a hardware run needs, computed before anything is submitted."""

    run_dir: Path
    split: str
    backend: Any                   # ResolvedBackend
    engine: Any                    # EstimatorEngine: isa_circuit, isa_observables, physical_qubits
    values: np.ndarray             # [rows, inputs + weights], circuit parameter order
    labels: np.ndarray
    ids: list[str]
    exact_probs: np.ndarray        # the run's own (statevector) probabilities, for comparison
    post: Any                      # torch post-net: expectation values -> logits
    positive_class: int | None
    val_threshold: float | None
    plan: Plan
    seed: int | None
    extra: dict = field(default_factory=dict)

    @property
    def out_dir(self) -> Path:
        safe = self.backend.name.replace("/", "_").replace(":", "_")
        return self.run_dir / "hardware" / safe


def _bases(observables) -> int:
    from qiskit.quantum_info import PauliList

    paulis = PauliList([p for op in observables for p in op.paulis])
    return len(paulis.group_qubit_wise_commuting()) if len(paulis) else 1


def _seconds_per_shot(isa, device, qubits: list[int]) -> float:
    """Scheduled circuit duration + slowest measurement on its qubits + repetition delay (seconds)."""
    try:
        circuit = float(isa.estimate_duration(device.target, unit="s"))
    except Exception:           # a target without durations: the delay and measurement only
        circuit = 0.0
    measure = 0.0
    if "measure" in device.target.operation_names:
        for q in qubits:
            props = device.target["measure"].get((q,))
            if props is not None and props.duration:
                measure = max(measure, float(props.duration))
    delay = getattr(device, "default_rep_delay", None)
    if delay is None:
        try:
            delay = device.configuration().default_rep_delay
        except Exception:
            delay = None
    return circuit + measure + float(delay if delay else DEFAULT_REP_DELAY_S)


def make_plan(rows: int, samples: int, repeat: int, shots: int, bases: int, seconds_per_shot: float,
              max_rows_per_job: int | None = None) -> Plan:
    """Contiguous slices of at most ``max_rows_per_job`` rows (default: under 10 M executions a job)."""
    limit = max(1, MAX_EXECUTIONS_PER_JOB // (bases * shots))
    if max_rows_per_job is None:
        max_rows_per_job = limit
    if max_rows_per_job < 1:
        raise QkitError(f"--max-rows-per-job must be >= 1, got {max_rows_per_job}")
    if max_rows_per_job > limit:
        raise QkitError(f"--max-rows-per-job {max_rows_per_job} x {bases} bases x {shots} shots exceeds IBM's "
                        f"{MAX_EXECUTIONS_PER_JOB:,} executions per job; use at most {limit}")
    n_jobs = max(1, math.ceil(rows / max_rows_per_job))
    jobs = [(i * max_rows_per_job, min(rows, (i + 1) * max_rows_per_job)) for i in range(n_jobs)]
    return Plan(jobs, rows, samples, repeat, shots, bases, seconds_per_shot, max_rows_per_job)


def _check_counts(shots, repeat, seed) -> None:
    for name, value in (("shots", shots), ("repeat", repeat)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise QkitError(f"--{name} must be an integer >= 1, got {value!r}")
    if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)):
        raise QkitError(f"--seed must be an integer, got {seed!r}")


def prepare_hardware_run(run_dir: str | Path, backend: str, split: str = "test", shots: int = 1024,
                         repeat: int = 1, max_rows_per_job: int | None = None, seed: int | None = None,
                         env=None, batch_size: int = 256, optimization_level: int = 1) -> Prepared:
    """Read the run, compute the circuit inputs in torch, compile for ``backend`` and plan the jobs."""
    import torch

    from qkit import runs
    from qkit.config import validate
    from qkit.engines.estimator import EstimatorEngine
    from qkit.evaluate import SPLITS, load_data, load_model
    from qkit.hardware.backends import resolve_backend
    from qkit.repro import make_loader

    _check_counts(shots, repeat, seed)
    if split not in SPLITS:
        raise QkitError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise QkitError(f"run folder {run_dir} does not exist")
    run = runs.load_run(run_dir)
    if not run.model_path.is_file():
        raise QkitError(f"{run.path} has no model.pt (unfinished run?)")
    model_config = dict(run.record.model)
    if model_config.get("head") != "quantum":
        raise QkitError(f"{run.path} has a {model_config.get('head')!r} head: only quantum heads run on hardware")
    resolved = resolve_backend(backend)          # unknown name / no account: one line, before any data
    env = validate(env or run.env)
    bundle = load_data(run, env)
    model = load_model(run)
    head = model.head
    program = head.quantum.program
    engine = EstimatorEngine(program, backend=backend, shots=int(shots), seed=seed,
                             optimization_level=optimization_level)
    dataset = getattr(bundle, split)
    angles, labels, exact = [], [], []
    with torch.no_grad():
        for x, y in make_loader(dataset, batch_size):
            features = model.backbone(x)
            a = head.encode(features)
            angles.append(a.double())
            exact.append(torch.softmax(head.post(head.quantum(a)).float(), dim=1).double())
            labels.append(y.view(-1).long())
    angles_t = torch.cat(angles)
    weights = head.quantum.weight.detach().double().reshape(1, -1).expand(len(angles_t), -1)
    one = torch.cat([angles_t, weights], dim=1).numpy()
    values = np.tile(one, (int(repeat), 1))
    seconds = _seconds_per_shot(engine.isa_circuit, resolved.backend, engine.physical_qubits)
    plan = make_plan(len(values), len(one), int(repeat), int(shots), _bases(engine.isa_observables),
                     seconds, max_rows_per_job)
    threshold = (run.test_metrics or {}).get("val_threshold")
    return Prepared(run.path, split, resolved, engine, values, torch.cat(labels).numpy(), list(dataset.ids),
                    torch.cat(exact).numpy(), head.post, bundle.positive_class, threshold, plan, seed)
