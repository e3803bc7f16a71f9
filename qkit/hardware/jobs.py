"""``qkit run-hardware``, part 2: submit the planned jobs in one Batch, save as they arrive, resume.

Everything lands in ``<run>/hardware/<backend>/``:

- ``jobs.json``: the plan's fingerprint and one entry per job (rows, job id, status). A job's
  id is written BEFORE its result is awaited, so an interrupted run says what it sent;
- ``job-<i>.npy``: a job's expectation values ``[rows, observables]``, written as soon as
  the job finishes (local jobs cannot be retrieved later);
- ``hardware.json`` and ``predictions-<split>-<backend>.csv`` once every job is done.

Re-running with the same options continues: jobs whose results are saved are not sent
again; the others (never sent, interrupted or failed) are submitted anew, their earlier ids
kept under ``earlier_ids``. A different plan in the same folder is refused (one line).
The jobs run inside one ``qiskit_ibm_runtime.Batch`` with the executor Estimator, the
options of the estimator engine (``default_shots``, resilience 0, a seed for emulations,
advanced by the job index so that jobs sample independently).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from qkit import runs
from qkit.errors import QkitError
from qkit.hardware.plan import Prepared

JobHook = Callable[[int, str], None]      # (job index, job id) after its result is saved


def _fingerprint(prep: Prepared) -> dict:
    p = prep.plan
    return {"backend": prep.backend.name, "split": prep.split, "shots": p.shots, "repeat": p.repeat,
            "rows": p.rows, "slices": [list(s) for s in p.jobs], "seed": prep.seed,
            "physical_qubits": list(prep.engine.physical_qubits)}


def _load_jobs(prep: Prepared) -> dict:
    path = prep.out_dir / "jobs.json"
    fingerprint = _fingerprint(prep)
    if path.is_file():
        state = runs.read_json(path)
        if state.get("plan") != fingerprint:
            raise QkitError(f"{path} belongs to another plan (options or layout differ); rerun with the same "
                            f"options or move {prep.out_dir} away")
        return state
    return {"plan": fingerprint, "jobs": [{"index": i, "rows": list(s), "job_id": None, "status": "planned",
                                           "earlier_ids": []} for i, s in enumerate(prep.plan.jobs)]}


def _result_path(prep: Prepared, index: int) -> Path:
    return prep.out_dir / f"job-{index:04d}.npy"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _options(prep: Prepared, index: int) -> dict:
    options = {"default_shots": prep.plan.shots, "resilience_level": 0}
    if prep.seed is not None:
        options["simulator"] = {"seed_simulator": int(prep.seed) + 7919 * index}
    return options


def _pub(prep: Prepared, start: int, stop: int):
    engine = prep.engine
    columns = engine.columns             # the engine's parameter binding (ISA order, by Parameter)
    if len(columns):
        return (engine.isa_circuit, engine.isa_observables, prep.values[start:stop, None, columns])
    return (engine.isa_circuit, engine.isa_observables)


def run_jobs(prep: Prepared, on_job: JobHook | None = None) -> dict:
    """Submit the jobs without saved results, wait in order and save each; returns the jobs state.

    Counts in ``state["submitted_now"]`` how many jobs this call sent.
    """
    from qiskit_ibm_runtime import Batch
    from qiskit_ibm_runtime.executor_estimator import Estimator

    prep.out_dir.mkdir(parents=True, exist_ok=True)
    state = _load_jobs(prep)
    path = prep.out_dir / "jobs.json"
    todo = [j for j in state["jobs"] if not (j["status"] == "done" and _result_path(prep, j["index"]).is_file())]
    state["submitted_now"] = 0
    state["primitive_seconds"] = 0.0        # this call's time inside run() and result()
    if not todo:
        return state
    n_obs = len(prep.engine.isa_observables)
    with Batch(backend=prep.backend.backend) as batch:
        handles = {}
        for job in todo:
            start, stop = job["rows"]
            estimator = Estimator(mode=batch, options=_options(prep, job["index"]))
            began = time.perf_counter()
            handle = estimator.run([_pub(prep, start, stop)])
            state["primitive_seconds"] += time.perf_counter() - began
            if job["job_id"]:
                job["earlier_ids"].append(job["job_id"])
            job.update(job_id=handle.job_id(), status="submitted")
            state["submitted_now"] += 1
            handles[job["index"]] = handle
            runs.atomic_write_json(path, state)            # the id is on disk before we wait
        for job in todo:
            handle = handles[job["index"]]
            began = time.perf_counter()
            try:
                evs = np.asarray(handle.result()[0].data.evs, dtype=np.float64)
            except Exception as exc:
                state["primitive_seconds"] += time.perf_counter() - began
                job.update(status="failed", error=_first_line(exc))
                runs.atomic_write_json(path, state)
                raise QkitError(f"job {job['job_id']} (job {job['index']} of {len(state['jobs'])}) on "
                                f"{prep.backend.name} failed: {_first_line(exc)}; rerun the same command "
                                "to submit it again") from None
            state["primitive_seconds"] += time.perf_counter() - began
            rows = job["rows"][1] - job["rows"][0]
            evs = np.broadcast_to(evs.reshape(-1, n_obs), (rows, n_obs)).copy()
            np.save(_result_path(prep, job["index"]), evs)
            job.update(status="done")
            job.pop("error", None)
            runs.atomic_write_json(path, state)
            if on_job is not None:
                on_job(job["index"], job["job_id"])
    return state


def _mean_std(values: list) -> dict:
    clean = [v for v in values if v is not None]
    if not clean:
        return {"mean": None, "std": None}
    return {"mean": float(np.mean(clean)), "std": float(np.std(clean, ddof=1)) if len(clean) > 1 else 0.0}


def finish(prep: Prepared, state: dict, wall_seconds: float) -> dict:
    """Expectation values -> post-net -> probabilities; metrics per repetition; hardware.json + predictions."""
    import torch

    from qkit.metrics import score

    evs = np.concatenate([np.load(_result_path(prep, j["index"])) for j in state["jobs"]])
    with torch.no_grad():
        dtype = next(prep.post.parameters()).dtype
        logits = prep.post(torch.as_tensor(evs, dtype=dtype))
        probs = torch.softmax(logits.float(), dim=1).double().numpy()
    n, repeat = prep.plan.samples, prep.plan.repeat
    per_rep = probs.reshape(repeat, n, -1)
    reps = [score(prep.labels, p, prep.positive_class, prep.val_threshold) for p in per_rep]
    keys = ("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "precision", "f1", "g_mean")
    summary = {k: _mean_std([r.get(k) for r in reps]) for k in keys if any(k in r for r in reps)}
    if prep.val_threshold is not None:
        summary.update({f"{k}@val_threshold": _mean_std([r.get("at_val_threshold", {}).get(k) for r in reps])
                        for k in keys if any(k in r.get("at_val_threshold", {}) for r in reps)})
    mean_probs = per_rep.mean(axis=0)
    name = prep.backend.name.replace(":", "_").replace("/", "_")
    runs.write_predictions(prep.out_dir / runs.predictions_name(prep.split, name), prep.ids, prep.labels,
                           mean_probs)
    exact = score(prep.labels, prep.exact_probs, prep.positive_class, prep.val_threshold)
    record = {
        "backend": prep.backend.name, "kind": prep.backend.kind, "source": prep.backend.source,
        "physical_qubits": list(prep.engine.physical_qubits), "split": prep.split,
        "shots": prep.plan.shots, "repeat": repeat, "seed": prep.seed,
        "job_ids": [j["job_id"] for j in state["jobs"]], "plan": prep.plan.to_dict(),
        "wall_seconds": round(wall_seconds, 3),
        "primitive_seconds": round(float(state.get("primitive_seconds", 0.0)), 3),
        "metrics": summary, "repetitions": reps, "exact": exact,
    }
    runs.atomic_write_json(prep.out_dir / "hardware.json", runs.redact(record))
    record["path"] = str(prep.out_dir)
    return record


def execute_hardware_run(prep: Prepared, max_qpu_seconds: float | None = None,
                         on_job: JobHook | None = None) -> dict:
    """Check the budget, run (or continue) the jobs and finish; returns hardware.json's content."""
    if max_qpu_seconds is not None and prep.plan.qpu_seconds > max_qpu_seconds:
        raise QkitError(f"the plan needs about {prep.plan.qpu_seconds:.0f} QPU seconds (estimate), over "
                        f"--max-qpu-seconds {max_qpu_seconds:g}; use fewer --repeat or --shots")
    began = time.perf_counter()
    state = run_jobs(prep, on_job=on_job)
    record = finish(prep, state, time.perf_counter() - began)
    record["submitted_now"] = state["submitted_now"]
    return record
