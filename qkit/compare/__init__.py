"""``qkit compare``: fair multi-seed sweeps of presets against their classical twins.

    plan_sweep(["hqcnn"], seeds=5)   -> a Sweep: hqcnn and hqcnn-classical x seeds 0..4 (plan)
    run_sweep(sweep, workers=2)      -> trains what is not finished yet (execute)
    write_report(sweep)              -> summary.json, summary.md, compare.png (report, stats, figure, claims)

One module per concern. Runs are ordinary run folders (``runs/compare-<name>/<preset>/seed<k>/``),
so every command that reads a run works on them. Importing this package imports nothing heavy.
"""

from __future__ import annotations

from qkit.compare.plan import Job, Sweep, plan_sweep

__all__ = ["Job", "Sweep", "plan_sweep", "run_sweep", "write_report"]


def run_sweep(sweep: Sweep, workers: int | None = None, callback=None, ray: str | None = None) -> list:
    """Train the sweep's unfinished runs, locally or on Ray (see ``qkit.compare.execute.run_sweep``)."""
    from qkit.compare.execute import run_sweep as run

    return run(sweep, workers, callback, ray=ray)


def write_report(sweep: Sweep, **kwargs) -> dict:
    """Write the sweep's report (see ``qkit.compare.report.write_report``)."""
    from qkit.compare.report import write_report as write

    return write(sweep, **kwargs)
