"""Does noise-aware training pay? The default run and a noise-aware run, seed by seed, under one emulation.

For each seed: ``qkit train --seed S`` (exact statevector training) and ``qkit train --seed S
--backend BACKEND`` (the density engine: every forward and backward pass through the device's
calibrated noise). Both are then scored the same way, through the runtime's local mode:
``qkit run-hardware RUN --backend BACKEND --shots 1024 --repeat R`` without mitigation (the
noise-aware run on the layout it trained through, the default run on its calibrated layout).
Prints, per seed and as mean ± std over seeds: exact AUC of the default run, emulated AUC of
both, |Δ⟨O⟩| of both against their own exact outputs, training wall time.

    QKIT_DATA_DIR=../shared/data python benchmarks/noise_aware.py --seeds 3 --runs-dir /tmp/na
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path


def qkit(*args: str) -> float:
    began = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).with_name("qkit")), *args], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"qkit {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - began


def emulate(run: Path, backend: str, repeat: int) -> dict:
    qkit("run-hardware", str(run), "--backend", backend, "--repeat", str(repeat), "--seed", "0")
    record = json.loads(next(run.glob(f"hardware/{backend}/*x{repeat}-none-*/hardware.json")).read_text())
    return {
        "auc": record["metrics"]["auc"]["mean"],
        "delta": record["metrics"]["delta"]["mean"],
        "exact_auc": record["exact"]["auc"],
        "qubits": record["physical_qubits"],
        "layout": record["layout"]["method"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--backend", default="fake_lagos")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/noise-aware-bench"))
    args = parser.parse_args()
    rows = []
    for seed in range(args.seeds):
        row = {"seed": seed}
        for kind, extra in (("default", []), ("noise-aware", ["--backend", args.backend])):
            run = args.runs_dir / f"{kind}-seed{seed}"
            if not (run / "test_metrics.json").is_file():
                row[f"{kind} train s"] = qkit(
                    "train", "--seed", str(seed), "--name", run.name, "-q", "--runs-dir", str(args.runs_dir), *extra
                )
            result = emulate(run, args.backend, args.repeat)
            row.update({f"{kind} {k}": v for k, v in result.items()})
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{args.backend}, {args.repeat} x 1024 shots per run, no mitigation; mean ± std over {args.seeds} seeds")
    for key in (
        "default exact_auc",
        "default auc",
        "noise-aware auc",
        "default delta",
        "noise-aware delta",
        "noise-aware exact_auc",
    ):
        values = [r[key] for r in rows]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{key:24} {statistics.mean(values):.4f} ± {spread:.4f}   ({', '.join(f'{v:.4f}' for v in values)})")


if __name__ == "__main__":
    main()
