"""A command's exit: the interpreter's last garbage collection against ``gc.freeze()`` first.

``qkit.cli.main`` freezes the garbage collector's objects when a command ends, so the
interpreter's final collection does not walk everything torch, Qiskit and medmnist left alive
(atexit handlers and module teardown still run). This times the exit of a process that imported
what ``qkit run-hardware`` imports, from its last line of output to its end as the parent sees
it, both ways, interleaved, and prints the medians and their ratio.

    python benchmarks/exit_time.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

IMPORTS = "import torch, medmnist, sklearn.metrics, qiskit_aer, qiskit_ibm_runtime.fake_provider"
WAYS = {"plain exit": "", "gc.freeze() first (qkit.cli.main)": "import gc; gc.freeze()"}


def exit_seconds(tail: str) -> float:
    """Seconds from the child's last output line to its end."""
    code = f"import time\n{IMPORTS}\nprint(time.time(), flush=True)\n{tail}\n"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    ended = time.time()
    return ended - float(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    seconds = {name: [] for name in WAYS}
    for i in range(args.repeats):
        for name, tail in WAYS.items():
            seconds[name].append(exit_seconds(tail))
        print(f"run {i + 1}/{args.repeats}: " + ", ".join(f"{n} {s[-1]:.2f} s" for n, s in seconds.items()), flush=True)
    medians = {name: statistics.median(s) for name, s in seconds.items()}
    print(f"\nexit after `{IMPORTS}` ({args.repeats} runs each, medians)")
    for name, value in medians.items():
        print(f"  {name:36s} {value:6.2f} s  (min {min(seconds[name]):.2f}, max {max(seconds[name]):.2f})")
    plain, frozen = medians.values()
    print(f"  ratio plain / frozen                 {plain / frozen:6.1f}x  ({plain - frozen:.2f} s saved per command)")


if __name__ == "__main__":
    main()
