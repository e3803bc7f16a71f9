"""``qkit run-hardware``, part 1: everything a hardware run needs, computed before anything is submitted.

``prepare_hardware_run`` reads a run through its record (model.pt, the data where the run
recorded it, refused if it changed), runs the classical part once in torch (backbone ->
``head.encode``: the circuit input angles of every sample, and the exact statevector outputs
to compare against), builds the rows of parameters (samples x repetitions, inputs and the
trained quantum weights), chooses the physical qubits (``--layout calibrated``: the layout
with the least estimated output error, ``qkit.hardware.layout.choose_layout``; ``default``:
the preset pass manager's; or a list), compiles the circuit for the primitive the mitigation
needs (``qkit.hardware.primitives``) and plans the jobs (``qkit.hardware.plan``).
Every option is checked before the data is read or a circuit transpiled
(``qkit.hardware.run_options``); the qubits and copies are chosen in ``qkit.hardware.qubits``.
Their functions are importable from here too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qkit.errors import QkitError
from qkit.hardware.plan import Plan, make_plan, seconds_per_shot
from qkit.hardware.qubits import choose_physical_qubits, run_copies
from qkit.hardware.qubits import layout_sample as layout_sample  # re-export: qkit.noise.study reads it here
from qkit.hardware.run_options import check_options, check_rep_delay, check_run
from qkit.hardware.run_options import parse_layout as parse_layout  # re-export: the density engine, noise study


@dataclass
class Prepared:
    """A hardware run, ready to submit: rows, primitive, plan and what to compare against."""

    run_dir: Path
    split: str
    backend: Any  # ResolvedBackend
    primitive: Any  # SamplerPrimitive | EstimatorPrimitive
    mitigation: str  # none | readout | trex
    readout_from: str  # device | calibration (readout mitigation only)
    readout_matrices: dict | None  # from the calibration data (readout_from == calibration)
    layout: dict  # how the physical qubits were chosen, with the estimates
    values: np.ndarray  # [rows, inputs + weights], circuit parameter order
    labels: np.ndarray
    ids: list[str]
    exact_values: np.ndarray  # the run's own (statevector) expectation values [samples, n_obs]
    exact_probs: np.ndarray  # and probabilities
    post: Any  # torch post-net: expectation values -> logits
    positive_class: int | None
    val_threshold: float | None
    plan: Plan
    seed: int | None
    copies: Any = None  # qkit.hardware.copies.CopyChoice (None: one copy)
    rep_delay: float | None = None  # seconds between shots (None: the backend's default)
    program: Any = None  # the layer's LayerProgram
    sample_rows: np.ndarray | None = None  # [samples, inputs + weights]: one row per sample

    @property
    def physical_qubits(self) -> list[int]:
        return list(self.primitive.physical_qubits)

    @property
    def shot_delay(self) -> float:
        """Seconds between shots this plan runs at: ``--rep-delay`` or the backend's default."""
        from qkit.hardware.plan import default_rep_delay

        return self.rep_delay if self.rep_delay is not None else default_rep_delay(self.backend.backend)

    @property
    def n_copies(self) -> int:
        return 1 if self.copies is None else self.copies.n

    @property
    def key(self) -> str:
        """This plan's folder name: the same command finds it again and continues."""
        parts = [self.split, f"{self.plan.shots}shots", f"x{self.plan.repeat}", self.mitigation]
        if self.mitigation == "readout" and self.readout_from != "device":
            parts.append(f"from-{self.readout_from}")
        parts.append("q" + ".".join(str(q) for q in self.physical_qubits))
        if self.n_copies > 1:  # the other copies' qubits, hashed: the folder name stays short
            import hashlib

            digest = hashlib.sha1(json.dumps(self.copies.layouts).encode()).hexdigest()[:8]
            parts.append(f"{self.n_copies}copies-{digest}")
        if self.rep_delay is not None:
            parts.append(f"rd{self.rep_delay * 1e6:g}us")
        if self.seed is not None:
            parts.append(f"seed{self.seed}")
        return "-".join(parts)

    @property
    def out_dir(self) -> Path:
        from qkit.hardware.backends import folder_name

        return self.run_dir / "hardware" / folder_name(self.backend.name) / self.key


def forward_split(model, dataset, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Circuit inputs, exact outputs and probabilities, labels: the torch part, once."""
    import torch

    from qkit.repro import make_loader

    head = model.head
    angles, exact, probs, labels = [], [], [], []
    with torch.no_grad():
        for x, y in make_loader(dataset, batch_size):
            a = head.encode(model.backbone(x))
            z = head.quantum(a)
            angles.append(a.double())
            exact.append(z.double())
            probs.append(torch.softmax(head.post(z).float(), dim=1).double())
            labels.append(y.view(-1).long())
    return (torch.cat(angles).numpy(), torch.cat(exact).numpy(), torch.cat(probs).numpy(), torch.cat(labels).numpy())


def _primitive(program, resolved, backend_name, physical_qubits, mitigation, shots, seed, copies=None):
    from qkit.engines.estimator import EstimatorEngine
    from qkit.hardware.measure import measured_circuits
    from qkit.hardware.primitives import EstimatorPrimitive, SamplerPrimitive
    from qkit.hardware.wide import noise_for

    if mitigation == "trex":
        engine = EstimatorEngine(
            program, backend=backend_name, shots=int(shots), seed=seed, layout=physical_qubits, resilience_level=1
        )
        return EstimatorPrimitive(engine)
    circuits = measured_circuits(
        program,
        resolved.backend,
        physical_qubits,
        seed=0 if seed is None else int(seed),
        copies=None if copies is None else copies.layouts,
    )
    return SamplerPrimitive(
        circuits, resolved.backend.num_qubits, None if resolved.is_hardware else noise_for(resolved)
    )


def wide_rows(one: np.ndarray, repeat: int, copies: int) -> np.ndarray:
    """Rows (samples x repetitions, repetition-major) dealt to ``copies``: wide row m holds rows
    ``m * copies ... m * copies + copies - 1`` side by side; the last is padded with row 0."""
    rows = np.tile(one, (int(repeat), 1))
    if copies == 1:
        return rows
    pad = -len(rows) % copies
    rows = np.concatenate([rows, np.repeat(rows[:1], pad, axis=0)]) if pad else rows
    return rows.reshape(len(rows) // copies, copies * rows.shape[1])


def prepare_hardware_run(
    run_dir: str | Path,
    backend: str,
    split: str = "test",
    shots: int = 1024,
    repeat: int = 1,
    max_rows_per_job: int | None = None,
    seed: int | None = None,
    env=None,
    batch_size: int = 256,
    mitigation: str = "none",
    readout_from: str = "device",
    layout: Any = "calibrated",
    channel: str | None = None,
    instance: str | None = None,
    copies: Any = "auto",
    exclude_qubits: Any = None,
    rep_delay: float | None = None,
) -> Prepared:
    """Read the run, compute the circuit inputs in torch, choose qubits and copies, compile and plan.

    ``copies``: ``auto`` or N parallel copies (``qkit.hardware.copies``); ``exclude_qubits``:
    physical qubits no copy may use; ``rep_delay``: microseconds between shots (None: the
    backend's default)."""
    from qkit.config import validate
    from qkit.evaluate import load_data, load_model
    from qkit.hardware.backends import resolve_backend
    from qkit.hardware.copies import parse_copies, parse_qubits

    layout = check_options(shots, repeat, seed, split, mitigation, readout_from, layout, copies, rep_delay)
    copies, exclude = parse_copies(copies), parse_qubits(exclude_qubits)
    run = check_run(run_dir)
    resolved = resolve_backend(backend, channel=channel, instance=instance)  # one line, before any data
    if seed is not None and resolved.is_hardware:
        raise QkitError(f"--seed makes emulations reproducible; {backend} is hardware and cannot be seeded")
    device = resolved.backend
    lacking = [q for q in exclude if q >= device.num_qubits]
    if lacking:
        raise QkitError(
            f"--exclude-qubits names qubit(s) {lacking} that {device.name} lacks (it has 0..{device.num_qubits - 1})"
        )
    rep_delay_s = check_rep_delay(rep_delay, device)
    env = validate(env or run.env)
    model = load_model(run)
    program = model.head.quantum.program
    if program.n_qubits > device.num_qubits:  # before the data is read
        raise QkitError(f"the circuit has {program.n_qubits} qubits but {device.name} has {device.num_qubits}")
    bundle = load_data(run, env)
    dataset = getattr(bundle, split)
    angles, exact_values, exact_probs, labels = forward_split(model, dataset, batch_size)
    weights = model.head.quantum.weight.detach().double().cpu().numpy().reshape(1, -1)
    one = np.concatenate([angles, np.repeat(weights, len(angles), axis=0)], axis=1)
    trained_on = dict(run.record.model.get("engine_options") or {})
    if layout == "calibrated" and run.record.model.get("engine") == "density" and trained_on.get("backend") == backend:
        # a noise-aware run goes to the qubits whose noise it trained through
        engine = load_model(run, engine="density", engine_options=trained_on).head.quantum.engine
        chosen = {"method": "trained", "physical_qubits": list(engine.physical_qubits)}
    else:
        chosen = choose_physical_qubits(program, resolved, layout, one, exclude)
    banned = sorted(set(chosen["physical_qubits"]) & set(exclude))
    if banned:
        raise QkitError(
            f"the {chosen['method']} layout {chosen['physical_qubits']} uses excluded qubit(s) {banned}; "
            "use --layout calibrated or another --layout"
        )
    choice = run_copies(program, resolved, mitigation, copies, exclude, chosen, len(one) * int(repeat))
    primitive, matrices, values, plan = _compile_plan(
        program,
        resolved,
        chosen,
        choice,
        mitigation,
        readout_from,
        shots,
        repeat,
        seed,
        rep_delay_s,
        one,
        max_rows_per_job,
    )
    threshold = (run.test_metrics or {}).get("val_threshold")
    return Prepared(
        run.path,
        split,
        resolved,
        primitive,
        mitigation,
        readout_from,
        matrices,
        chosen,
        values,
        labels,
        list(dataset.ids),
        exact_values,
        exact_probs,
        model.head.post,
        bundle.positive_class,
        threshold,
        plan,
        seed,
        choice,
        rep_delay_s,
        program,
        one,
    )


def _compile_plan(
    program, resolved, chosen, choice, mitigation, readout_from, shots, repeat, seed, rep_delay_s, one, max_rows_per_job
):
    """The primitive (compiled circuits), readout matrices, (wide) rows and the plan of one set of options."""
    from qkit.hardware.mitigation import CALIBRATION_SHOTS, matrices_from_snapshot

    primitive = _primitive(
        program,
        resolved,
        resolved.name,
        chosen["physical_qubits"],
        mitigation,
        shots,
        seed,
        choice if choice.n > 1 else None,
    )
    matrices = None
    if mitigation == "readout" and readout_from == "calibration":
        matrices = matrices_from_snapshot(resolved.calibration(), primitive.read_qubits)
    calibration_shots = 2 * CALIBRATION_SHOTS if mitigation == "readout" and readout_from == "device" else 0
    per_shot = max(
        seconds_per_shot(isa, resolved.backend, primitive.physical_qubits, rep_delay_s)
        for isa in primitive.isa_circuits
    )
    values = wide_rows(one, repeat, choice.n)
    plan = make_plan(
        len(values),
        len(one),
        int(repeat),
        int(shots),
        primitive.bases,
        per_shot,
        max_rows_per_job,
        calibration_shots,
        copies=choice.n,
    )
    return primitive, matrices, values, plan


def replan(prep: Prepared, *, copies: int, shots: int, mitigation: str, rep_delay: float | None = None) -> Prepared:
    """The same run, split and qubits under other plan options (what ``--budget`` picks), without
    reading the data or running the model again. ``copies``: 1 or up to the prepared copies (the
    first ones); ``rep_delay``: microseconds (None: the backend's default)."""
    from dataclasses import replace

    from qkit.hardware.copies import CopyChoice

    readout_from = prep.readout_from if mitigation == "readout" else "device"
    check_options(
        shots, prep.plan.repeat, prep.seed, prep.split, mitigation, readout_from, "calibrated", copies, rep_delay
    )
    if not 1 <= copies <= prep.n_copies:
        raise QkitError(f"replan takes 1 to {prep.n_copies} copies (those prepared), got {copies}")
    choice = prep.copies
    if copies != prep.n_copies:
        choice = CopyChoice(
            choice.layouts[:copies],
            choice.estimates[:copies],
            choice.fit,
            f"{copies} of the {prep.n_copies} copies chosen",
        )
    rep_delay_s = check_rep_delay(rep_delay, prep.backend.backend)
    limit = prep.plan.max_rows_per_job if prep.plan.max_rows_per_job < prep.plan.rows else None
    primitive, matrices, values, plan = _compile_plan(
        prep.program,
        prep.backend,
        prep.layout,
        choice,
        mitigation,
        readout_from,
        shots,
        prep.plan.repeat,
        prep.seed,
        rep_delay_s,
        prep.sample_rows,
        limit,
    )
    return replace(
        prep,
        primitive=primitive,
        mitigation=mitigation,
        readout_from=readout_from,
        readout_matrices=matrices,
        values=values,
        plan=plan,
        copies=choice,
        rep_delay=rep_delay_s,
    )
