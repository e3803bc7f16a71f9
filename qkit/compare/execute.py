"""Sweep execution: the unfinished runs of a sweep, in this process or in N local processes.

Every run uses the sweep's torch thread count (``Sweep.threads``, default 1) whatever the
worker count, and seeds everything from its training seed, so its metrics do not depend on
which executor ran it or what ran beside it (the tests train the same seeds through 1 and 2
workers and compare predictions bit for bit). The thread count cannot follow the worker count
(``cores // workers``): on CPU it changes the order of floating-point sums, and 1 and 2
threads gave different losses after one epoch and test AUCs 0.7749 vs 0.7746 after two.
The worker count instead follows the threads: by default ``cores // threads`` processes. Worker
processes are spawned, not forked: a forked child would inherit torch's thread pool and
whatever the parent had imported. Finished runs are skipped; an interrupted one (a run record
without test metrics) continues from its checkpoint through ``train(..., resume=...)``, which
ends bit-for-bit like an uninterrupted run.

Progress goes to ``callback(event, info)``: ``start`` (total, done, workers, threads, ray),
``run_start`` (key, resumed; in-process only: a pool's runs start when a worker is free),
``run_done`` (key, run_dir, seconds, auc, resumed). Wall times are kept in
``<sweep>/timings.json`` (seconds per run, summed over resumed sessions), and the elapsed
time of each session in ``<sweep>/sessions.json``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from qkit.compare.plan import FINISHED, FRESH, INTERRUPTED, Job, Sweep
from qkit.errors import QkitError

TIMINGS = "timings.json"
SESSIONS = "sessions.json"  # elapsed time of each session that trained runs
Callback = Callable[[str, dict], None]


def available_cores() -> int:
    """CPU cores this process may use (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_workers(threads: int, cores: int | None = None) -> int:
    """Concurrent runs of ``threads`` threads each that fit the cores without oversubscribing them."""
    return max(1, (cores or available_cores()) // max(1, threads))


def run_sweep(
    sweep: Sweep, workers: int | None = None, callback: Callback | None = None, ray: str | None = None
) -> list[Path]:
    """Train every unfinished run of ``sweep`` with ``workers`` processes (default: cores // threads),
    or as tasks on the Ray cluster at ``ray`` (see ``qkit.compare.on_ray``); return all run folders."""
    workers = default_workers(sweep.threads) if workers is None else workers
    if workers < 1:
        raise QkitError(f"--workers must be at least 1 (got {workers})")
    if ray is not None:
        from qkit.compare.on_ray import check_ray_address

        check_ray_address(ray)  # before anything is trained or deleted
    callback = callback or (lambda event, info: None)
    jobs = sweep.jobs()
    todo = [j for j in jobs if j.status() != FINISHED]
    workers, threads = min(workers, len(todo)) or 1, sweep.threads
    callback(
        "start", {"total": len(jobs), "done": len(jobs) - len(todo), "workers": workers, "threads": threads, "ray": ray}
    )
    tasks = [_task(job, sweep.env, threads) for job in todo]
    start = time.perf_counter()
    if ray is not None and tasks:
        from qkit.compare.on_ray import run_on_ray

        run_on_ray(
            tasks, ray, threads, train_task, lambda result: _done(sweep, result, callback), local_cpus=available_cores()
        )
    elif workers == 1:
        for task in tasks:
            callback("run_start", {"key": task["key"], "resumed": task["resume"]})
            _done(sweep, train_task(task), callback)
    else:
        _run_pool(sweep, tasks, workers, callback)
    if tasks:
        add_session(sweep.root, time.perf_counter() - start, len(tasks), "ray" if ray else f"{workers} worker(s)")
    return [j.run_dir for j in jobs]


def _task(job: Job, env: dict, threads: int) -> dict:
    """What a worker needs, as plain picklable values."""
    status = job.status()
    if status == FRESH and job.run_dir.exists():
        # Killed before the run record was written: nothing to resume, start over.
        shutil.rmtree(job.run_dir)
    # Absolute run folder: a Ray worker need not start in this process's working directory
    # (plan_sweep made the sweep's data and feature-cache folders absolute already).
    return {
        "key": job.key,
        "preset": job.preset,
        "seed": job.seed,
        "run_dir": str(job.run_dir.resolve()),
        "options": job.options,
        "env": {**env, "threads": threads},
        "resume": status == INTERRUPTED,
    }


def train_task(task: dict) -> dict:
    """Train (or resume) one run; runs in the worker process. Returns its key, folder, wall time, AUC."""
    from qkit.config import EnvConfig
    from qkit.runs import read_json
    from qkit.train import train

    start = time.perf_counter()
    env = EnvConfig(**task["env"])
    job = Job(task["preset"], task["seed"], Path(task["run_dir"]), task["options"])
    if task["resume"]:
        run_dir = train(job.config(), env, resume=job.run_dir)
    else:
        run_dir = train(job.config(), env, runs_root=job.run_dir.parent)
    metrics = read_json(Path(run_dir) / "test_metrics.json")
    return {
        "key": task["key"],
        "run_dir": str(run_dir),
        "seconds": time.perf_counter() - start,
        "auc": metrics.get("auc"),
        "resumed": task["resume"],
    }


def _run_pool(sweep: Sweep, tasks: list[dict], workers: int, callback: Callback) -> None:
    """``workers`` spawned processes; the first failure cancels what has not started and is raised."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {}
        for task in tasks:
            futures[pool.submit(train_task, task)] = task
        pending = set(futures)
        while pending:
            # FIRST_COMPLETED, not FIRST_EXCEPTION: the latter returns only once every run is
            # done when none fails, so progress would arrive all at the end.
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                error = future.exception()
                if error is not None:
                    raise QkitError(f"{futures[future]['key']}: {error}") from None
                _done(sweep, future.result(), callback)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _done(sweep: Sweep, result: dict, callback: Callback) -> None:
    add_timing(sweep.root, result["key"], result["seconds"])
    callback("run_done", result)


def read_sessions(root: Path) -> list[dict]:
    """Each ``run_sweep`` call that trained something: elapsed seconds, runs, executor."""
    from qkit.runs import read_json

    path = Path(root) / SESSIONS
    return read_json(path) if path.is_file() else []


def add_session(root: Path, seconds: float, runs: int, executor: str) -> None:
    from qkit.runs import atomic_write_json

    sessions = read_sessions(root) + [{"seconds": round(seconds, 1), "runs": runs, "executor": executor}]
    atomic_write_json(Path(root) / SESSIONS, sessions)


def read_timings(root: Path) -> dict[str, float]:
    from qkit.runs import read_json

    path = Path(root) / TIMINGS
    return read_json(path) if path.is_file() else {}


def add_timing(root: Path, key: str, seconds: float) -> None:
    """Add ``seconds`` to run ``key``'s wall time (a resumed run's sessions add up)."""
    from qkit.runs import atomic_write_json

    timings = read_timings(root)
    timings[key] = round(timings.get(key, 0.0) + seconds, 2)
    atomic_write_json(Path(root) / TIMINGS, timings)
