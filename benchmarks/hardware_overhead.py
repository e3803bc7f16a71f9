"""``qkit run-hardware`` overhead: the whole command's wall time against its bare primitive calls.

Times ``qkit run-hardware RUN --backend fake_torino --shots 1024 --repeat 20 --mitigation
readout --seed 0`` (parallel copies on by default) as a subprocess, process start to end,
each time into a fresh copy of the run folder (without its ``hardware/`` folder, so no job
is reused), and reads
``primitive_seconds``, ``scoring_seconds`` and ``wall_seconds`` from the ``hardware.json`` it
writes. The reference, measured in the same run and interleaved with the command: the same
plan built with ``prepare_hardware_run`` (not timed), then only the primitive calls timed:
opening the ``Batch``, submitting the readout calibration job and the data jobs (executor
Sampler in the runtime's local mode; wide circuits copy by copy on Aer, ``qkit.hardware.wide``)
and waiting for their results. qkit's overhead is the command's wall time minus that
reference; it is split into Python start-up (``python -c "import qkit.hardware.prepare,
torch, qiskit_ibm_runtime"``, then ``gc.freeze()`` as a command ends), scoring (from
hardware.json) and the rest (reading the run, torch forward, layout choice, compiling,
bookkeeping, printing). The floor it prints is the share of a command that did nothing but
start up and call the primitives: start-up / (start-up + bare reference). The first
reference call runs cold in this process, as the command's do. Figures are medians
over ``--repeats``. Targets (issue): whole command under 60 s on 2 cores; overhead under 25%;
``qkit --help``, ``qkit run-hardware`` with a missing argument and ``qkit run-hardware
/nonexistent --backend fake_lagos`` each under 1 s (timed too, as processes).

    QKIT_DATA_DIR=/work/shared/data python benchmarks/hardware_overhead.py --run runs/default-seed0
    python benchmarks/hardware_overhead.py        # trains a fresh default run first (1-4 minutes)
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WALL_TARGET_S = 60.0
SHARE_TARGET = 0.25
QUICK_TARGET_S = 1.0
QUICK = (["--help"], ["run-hardware"], ["run-hardware", "/nonexistent", "--backend", "fake_lagos"])
# The start-up a command pays: the imports, then the exit as ``qkit.cli.main`` ends it (gc.freeze()
# before the interpreter's last collection; without it the exit alone took about 1.4 s).
IMPORTS = "import qkit.hardware.prepare, torch, qiskit_ibm_runtime, gc; gc.freeze()"


def qkit_exe() -> str:
    return str(Path(sys.executable).with_name("qkit"))


def run_checked(cmd: list[str]) -> float:
    """Run ``cmd``; its wall seconds, process start to end. Exits with its output if it fails."""
    began = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds


def train_default(tmp: Path) -> Path:
    runs_dir = tmp / "trained"
    print(f"no --run given: training a fresh default run into {runs_dir} (1-4 minutes on 2 cores) ...", flush=True)
    seconds = run_checked([qkit_exe(), "train", "--name", "bench", "-q", "--runs-dir", str(runs_dir)])
    print(f"trained in {seconds:.0f} s", flush=True)
    return runs_dir / "bench"


def time_command(run: Path, tmp: Path, index: int, args) -> tuple[float, dict]:
    """The whole CLI on a fresh copy of the run: (process wall seconds, its hardware.json)."""
    copy = tmp / f"run-{index}"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("hardware"))
    wall = run_checked(
        [
            qkit_exe(),
            "run-hardware",
            str(copy),
            "--backend",
            args.backend,
            "--shots",
            str(args.shots),
            "--repeat",
            str(args.repeat),
            "--mitigation",
            args.mitigation,
            "--seed",
            str(args.seed),
        ]
    )
    records = list(copy.glob("hardware/*/*/hardware.json"))
    if len(records) != 1:
        sys.exit(f"expected one hardware.json under {copy / 'hardware'}, found {len(records)}")
    record = json.loads(records[0].read_text())
    shutil.rmtree(copy)
    return wall, record


def time_quick() -> list[tuple[str, float]]:
    """Wall seconds of the commands that must answer before Qiskit and torch are imported."""
    out = []
    for args in QUICK:
        began = time.perf_counter()
        subprocess.run([qkit_exe(), *args], capture_output=True, text=True)
        out.append(("qkit " + " ".join(args), time.perf_counter() - began))
    return out


def time_startup() -> float:
    return run_checked([sys.executable, "-c", IMPORTS])


def time_bare_primitives(prep) -> float:
    """Open the Batch, submit calibration and data jobs, wait for every result: nothing else."""
    from qiskit_ibm_runtime import Batch

    from qkit.hardware.jobs import _options, _submit_calibration

    began = time.perf_counter()
    with Batch(backend=prep.backend.backend) as batch:
        calibration = _submit_calibration(prep, batch) if prep.plan.calibration_shots else None
        handles = [
            prep.primitive.submit(batch, prep.values[start:stop], _options(prep, i), prep.plan.shots)
            for i, (start, stop) in enumerate(prep.plan.jobs)
        ]
        if calibration is not None:
            calibration.result()
        for handle in handles:
            prep.primitive.collect(handle)
    return time.perf_counter() - began


def row(label: str, values: list[float]) -> str:
    return f"{label:<44}{statistics.median(values):>9.2f}{min(values):>9.2f}{max(values):>9.2f}"


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def report(args, walls, records, bare, startup, quick) -> None:
    med = statistics.median
    overhead = [w - b for w, b in zip(walls, bare)]  # interleaved pairs
    share = [o / w for o, w in zip(overhead, walls)]
    primitive = [r["primitive_seconds"] for r in records]
    scoring = [r["scoring_seconds"] for r in records]
    executed = [r["wall_seconds"] for r in records]
    plan = records[0]["plan"]
    print(
        f"\nqkit run-hardware --backend {args.backend} --shots {args.shots} --repeat {args.repeat} "
        f"--mitigation {args.mitigation} --seed {args.seed}"
    )
    print(
        f"plan: {plan['rows']} rows ({plan['samples']} samples x {plan['repeat']}), {plan['jobs']} job(s) "
        f"incl. calibration, {plan['executions']:,} executions; {args.repeats} timed runs, interleaved\n"
    )
    print(f"{'seconds':<44}{'median':>9}{'min':>9}{'max':>9}")
    print(row("whole command, process start to end", walls))
    print(row("  primitive calls inside it (hardware.json)", primitive))
    print(row("  submit..score inside it (hardware.json)", executed))
    print(row("bare primitive calls (reference)", bare))
    print(row("whole / bare reference (ratio)", [w / b for w, b in zip(walls, bare)]))
    print(row("qkit overhead = whole - bare reference", overhead))
    print(row("overhead share of the whole (ratio)", share))
    print("\nsplit of qkit's overhead (medians, seconds; share of the whole command's wall)")
    rest = med(overhead) - med(startup) - med(scoring)
    for label, value in (
        ("python + imports start-up", med(startup)),
        ("scoring (hardware.json)", med(scoring)),
        ("the rest: read run, forward, layout, compile, bookkeeping", rest),
    ):
        print(f"  {label:<58}{value:>7.2f}  {value / med(walls):>6.1%}")
    floor = med(startup) / (med(startup) + med(bare))
    print(f"  floor: start-up alone, in a command that did nothing else, would be {floor:.1%} of it")
    print(
        f"  (primitive calls in the command vs the bare reference: {med(primitive):.2f} vs {med(bare):.2f} s; "
        f"bare per run: {', '.join(f'{b:.2f}' for b in bare)}, the first is cold)"
    )
    print(
        f"\ntarget whole command < {WALL_TARGET_S:.0f} s: {verdict(med(walls) < WALL_TARGET_S)} "
        f"(median {med(walls):.1f} s)"
    )
    print(
        f"target qkit overhead < {SHARE_TARGET:.0%} of the wall: {verdict(med(share) < SHARE_TARGET)} "
        f"(median {med(share):.1%})"
    )
    for label, seconds in quick:
        print(f"target {label} < {QUICK_TARGET_S:g} s: {verdict(seconds < QUICK_TARGET_S)} ({seconds:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="trained run folder (default: train a fresh default run)")
    parser.add_argument("--backend", default="fake_torino")
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=20, help="repetitions of the test split (CLI --repeat)")
    parser.add_argument("--mitigation", default="readout", choices=("none", "readout", "trex"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of the whole thing (median reported)")
    args = parser.parse_args()

    from qkit.hardware.prepare import prepare_hardware_run

    with tempfile.TemporaryDirectory(prefix="qkit-bench-") as tmp_name:
        tmp = Path(tmp_name)
        run = args.run if args.run else train_default(tmp)
        prep = prepare_hardware_run(
            run, args.backend, shots=args.shots, repeat=args.repeat, mitigation=args.mitigation, seed=args.seed
        )
        walls, records, bare, startup = [], [], [], []
        for i in range(args.repeats):
            wall, record = time_command(run, tmp, i, args)
            walls.append(wall)
            records.append(record)
            bare.append(time_bare_primitives(prep))
            startup.append(time_startup())
            print(
                f"run {i + 1}/{args.repeats}: whole {wall:.2f} s, bare primitives {bare[-1]:.2f} s, "
                f"start-up {startup[-1]:.2f} s",
                flush=True,
            )
        report(args, walls, records, bare, startup, time_quick())


if __name__ == "__main__":
    main()
