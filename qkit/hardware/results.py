"""``qkit run-hardware``, part 3: saved results -> expectation values -> the run's post-net -> metrics.

For every repetition of the split: the test metrics (``qkit.metrics.score``, the run's own
positive class and validation threshold), the mean |delta<O>| of the layer's outputs against
the exact statevector values, and the share of samples whose predicted class agrees with the
exact model's. With ``--mitigation readout`` the same shots are scored twice, raw and through
mthree, so the record holds both. Writes ``hardware.json``, ``predictions-<split>-<backend>.csv``
(mean probabilities over repetitions) and ``hardware.png`` (metrics over repetitions).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from qkit import runs
from qkit.errors import QkitError
from qkit.hardware.jobs import CALIBRATION, JobHook, entries_of, load_result, qpu_seconds_so_far, run_jobs
from qkit.hardware.prepare import Prepared

METRICS = ("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "precision", "f1", "g_mean")
AGREEMENT = ("delta", "agreement")  # mean |delta<O>| against exact, share of predictions equal to exact's


def mean_std(values: list) -> dict:
    clean = [v for v in values if v is not None]
    if not clean:
        return {"mean": None, "std": None}
    return {"mean": float(np.mean(clean)), "std": float(np.std(clean, ddof=1)) if len(clean) > 1 else 0.0}


def _probabilities(post: Any, values: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        dtype = next(post.parameters()).dtype
        logits = post(torch.as_tensor(values, dtype=dtype))
        return torch.softmax(logits.float(), dim=1).double().numpy()


def score_repetitions(
    values: np.ndarray,
    post: Any,
    labels: np.ndarray,
    exact_values: np.ndarray,
    exact_probs: np.ndarray,
    positive_class: int | None,
    val_threshold: float | None,
) -> tuple[dict, np.ndarray]:
    """Metrics per repetition and their mean ± std for expectation values ``[repeat, samples, n_obs]``
    (through the run's post-net), against the exact model's values and classes; and the mean
    probabilities over repetitions ``[samples, classes]``."""
    from qkit.metrics import score

    repeat, n = values.shape[:2]
    probs = _probabilities(post, values.reshape(repeat * n, -1)).reshape(repeat, n, -1)
    exact_class = exact_probs.argmax(axis=1)
    reps = []
    for p, v in zip(probs, values):
        rep = score(labels, p, positive_class, val_threshold)
        rep["delta"] = float(np.mean(np.abs(v - exact_values)))
        rep["delta_per_output"] = np.mean(np.abs(v - exact_values), axis=0).round(6).tolist()
        rep["agreement"] = float(np.mean(p.argmax(axis=1) == exact_class))
        reps.append(rep)
    summary = {k: mean_std([r.get(k) for r in reps]) for k in METRICS + AGREEMENT if any(k in r for r in reps)}
    if val_threshold is not None:
        summary.update(
            {
                f"{k}@val_threshold": mean_std([r.get("at_val_threshold", {}).get(k) for r in reps])
                for k in METRICS
                if any(k in r.get("at_val_threshold", {}) for r in reps)
            }
        )
    return {"metrics": summary, "repetitions": reps}, probs.mean(axis=0)


def score_values(prep: Prepared, values: np.ndarray) -> tuple[dict, np.ndarray]:
    """``score_repetitions`` of a hardware run's values ``[rows, n_obs]`` (repetition-major rows)."""
    return score_repetitions(
        values.reshape(prep.plan.repeat, prep.plan.samples, -1),
        prep.post,
        prep.labels,
        prep.exact_values,
        prep.exact_probs,
        prep.positive_class,
        prep.val_threshold,
    )


def readout_matrices(prep: Prepared) -> dict | None:
    """mthree's per-qubit matrices: from the calibration job's shots, or from the calibration data."""
    from qkit.hardware.measure import bits_of
    from qkit.hardware.mitigation import matrices_from_bits

    if prep.mitigation != "readout":
        return None
    if prep.readout_matrices is not None:
        return prep.readout_matrices
    saved = load_result(prep, CALIBRATION)
    qubits = prep.primitive.read_qubits
    return matrices_from_bits(bits_of(saved["prepare0"], len(qubits)), bits_of(saved["prepare1"], len(qubits)), qubits)


def all_values(prep: Prepared, state: dict, matrices: dict | None) -> np.ndarray:
    """Expectation values ``[samples x repeat, n_obs]`` in row order (copies unfolded, padding dropped)."""
    parts = []
    for job in state["jobs"]:
        start, stop = job["rows"]
        parts.append(prep.primitive.values(load_result(prep, job["index"]), stop - start, matrices))
    return np.concatenate(parts)[: prep.plan.samples * prep.plan.repeat]


def per_copy(prep: Prepared, values: np.ndarray) -> list[dict]:
    """Each copy's mean |delta<O>| and agreement with exact over the rows it served (row r: copy r % N)."""
    n = prep.n_copies
    rows = np.arange(len(values))
    sample = rows % prep.plan.samples
    exact_class = prep.exact_probs.argmax(axis=1)[sample]
    predicted = _probabilities(prep.post, values).argmax(axis=1)
    delta = np.abs(values - prep.exact_values[sample]).mean(axis=1)
    out = []
    for k in range(n):
        mine = rows % n == k
        out.append(
            {
                "copy": k,
                "layout": prep.copies.layouts[k] if prep.copies else prep.physical_qubits,
                "rows": int(mine.sum()),
                "delta": float(delta[mine].mean()),
                "agreement": float(np.mean(predicted[mine] == exact_class[mine])),
            }
        )
    return out


def _billed(entries: list[dict]) -> float | None:
    """IBM's usage summed over the jobs; None on emulations (the plan's estimate is all there is)."""
    seconds = [e.get("qpu_seconds") for e in entries]
    return None if any(s is None for s in seconds) else round(float(sum(seconds)), 3)


def finish(prep: Prepared, state: dict, wall_seconds: float) -> dict:
    """Score the saved results; write hardware.json, the predictions and the figure; return the record."""
    from qkit.hardware.backends import folder_name
    from qkit.hardware.figures import plot_repetitions
    from qkit.hardware.mitigation import as_json
    from qkit.metrics import score

    began = time.perf_counter()
    matrices = readout_matrices(prep)
    values = all_values(prep, state, matrices)
    scored, mean_probs = score_values(prep, values)
    raw = all_values(prep, state, None) if matrices is not None else None
    unmitigated = score_values(prep, raw)[0] if raw is not None else None
    runs.write_predictions(
        prep.out_dir / runs.predictions_name(prep.split, folder_name(prep.backend.name)),
        prep.ids,
        prep.labels,
        mean_probs,
    )
    calibration = state.get("calibration") or {}
    record = {
        "backend": prep.backend.name,
        "kind": prep.backend.kind,
        "source": prep.backend.source,
        "calibration_date": prep.backend.calibration().calibration_date,
        "physical_qubits": prep.physical_qubits,
        "layout": prep.layout,
        "primitive": prep.primitive.name,
        "mitigation": prep.mitigation,
        "readout_from": prep.readout_from if matrices is not None else None,
        "readout": as_json(matrices) if matrices is not None else None,
        "split": prep.split,
        "shots": prep.plan.shots,
        "repeat": prep.plan.repeat,
        "seed": prep.seed,
        "job_ids": [j["job_id"] for j in state["jobs"]],
        "calibration_job_id": calibration.get("job_id"),
        "plan": prep.plan.to_dict(),
        "copies": prep.copies.to_dict() if prep.copies is not None else None,
        "per_copy": per_copy(prep, values),
        "per_copy_raw": per_copy(prep, raw) if raw is not None else None,
        "rep_delay_s": prep.shot_delay,
        "qpu_seconds": _billed(entries_of(state)),
        "qpu_seconds_earlier_attempts": round(sum(e.get("earlier_qpu_seconds", 0.0) for e in entries_of(state)), 3)
        or None,
        "primitive_seconds": round(float(state.get("primitive_seconds", 0.0)), 3),
        **scored,
        "unmitigated": unmitigated,
        "exact": score(prep.labels, prep.exact_probs, prep.positive_class, prep.val_threshold),
    }
    plot_repetitions(record, prep.out_dir / "hardware.png")
    record["scoring_seconds"] = round(time.perf_counter() - began, 3)
    record["wall_seconds"] = round(wall_seconds + record["scoring_seconds"], 3)
    runs.atomic_write_json(prep.out_dir / "hardware.json", runs.redact(record))
    record["path"] = str(prep.out_dir)
    return record


def check_qpu_seconds(prep: Prepared, max_qpu_seconds: float) -> None:
    """Refuse a plan over ``--max-qpu-seconds``, counting what earlier attempts of it already billed."""
    billed, needed = qpu_seconds_so_far(prep)
    if billed + needed <= max_qpu_seconds:
        return
    if billed:
        raise QkitError(
            f"this plan's earlier attempts already used {billed:.1f} QPU seconds (billed by IBM Quantum) "
            f"and the rest needs about {needed:.0f} more (estimate), over --max-qpu-seconds "
            f"{max_qpu_seconds:g}; raise it to continue, or start a smaller plan"
        )
    raise QkitError(
        f"the plan needs about {needed:.0f} QPU seconds (estimate), over "
        f"--max-qpu-seconds {max_qpu_seconds:g}; use fewer --repeat or --shots"
    )


def execute_hardware_run(prep: Prepared, max_qpu_seconds: float | None = None, on_event: JobHook | None = None) -> dict:
    """Check the budget, run (or continue) the jobs and score them; returns hardware.json's content."""
    if max_qpu_seconds is not None:
        check_qpu_seconds(prep, max_qpu_seconds)
    began = time.perf_counter()
    state = run_jobs(prep, on_event=on_event)
    record = finish(prep, state, time.perf_counter() - began)
    record["submitted_now"] = state["submitted_now"]
    return record
