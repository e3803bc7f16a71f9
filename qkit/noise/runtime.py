"""``qkit noise study --engine runtime``: the study's points through the runtime's local mode instead.

The density engine is fast and exact; the runtime's local testing mode (the executor Sampler
on the fake backend, as ``qkit run-hardware`` uses it) is the slower reference it is checked
against. It can only emulate a device's calibrated noise as it is, so it serves the studies
that vary shots, backend or layout, not a noise scale or source. Each point is an ordinary
``run-hardware`` plan (its jobs and results under ``<run>/hardware/``, resumable there);
its repetitions become the study's lines, raw and, with ``--mitigation readout``, through
mthree from the same shots.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from qkit.errors import QkitError

SUPPORTED = ("shots", "backend", "layout")


def check_runtime(config: Any) -> None:
    if config.vary not in SUPPORTED:
        raise QkitError(
            f"--engine runtime emulates the calibrated noise as it is: it works with --vary "
            f"{', '.join(SUPPORTED)}, not {config.vary}"
        )
    if config.shots is None and config.vary != "shots":
        raise QkitError("--engine runtime samples shots: give --shots")


def run_points(
    run_dir: Any,
    config: Any,
    todo: list,
    env: Any,
    done: set,
    write: Callable[[dict], None],
    on_progress: Callable[[int, int, str], None] | None = None,
) -> None:
    """Each point as a run-hardware plan; one study line per repetition and mitigation."""
    from qkit.hardware.prepare import prepare_hardware_run
    from qkit.hardware.results import execute_hardware_run

    mitigation = "readout" if "readout" in config.mitigation else "none"
    for count, point in enumerate(todo, start=1):
        keys = {(json.dumps(point.label), r, m) for r in range(config.repeat) for m in config.mitigation}
        if keys <= done:
            continue
        options = point.options
        prep = prepare_hardware_run(
            run_dir,
            options["backend"],
            split=config.split,
            shots=options["shots"],
            repeat=config.repeat,
            seed=config.seed,
            env=env,
            mitigation=mitigation,
            layout=options["layout"],
        )
        record = execute_hardware_run(prep)
        scored = {"readout": record["repetitions"], "none": (record["unmitigated"] or record)["repetitions"]}
        settings = {
            "engine": "runtime",
            "backend": record["backend"],
            "source": record["source"],
            "calibration_date": record["calibration_date"],
            "physical_qubits": record["physical_qubits"],
            "shots": record["shots"],
            "seed": config.seed,
            "hardware": record["path"],
            "job_ids": record["job_ids"],
        }
        for r in range(config.repeat):
            for m in config.mitigation:
                if (json.dumps(point.label), r, m) not in done:
                    write(
                        {
                            "point": point.label,
                            "repetition": r,
                            "mitigation": m,
                            "vary": config.vary,
                            "settings": settings,
                            "metrics": scored[m][r],
                        }
                    )
        if on_progress:
            on_progress(count, len(todo), str(point.label))
