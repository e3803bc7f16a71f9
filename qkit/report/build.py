"""``build_report``: a run folder -> ``report.html`` (self-contained) or ``report.md`` (GitHub).

The report is regenerated from the run folder alone: the run's record, metrics, per-image
predictions, figures and whatever later commands wrote into it (explanations, hardware
runs, noise studies, re-evaluations). Running it again after any of those refreshes it.
"""

from __future__ import annotations

import time
from pathlib import Path

from qkit.errors import QkitError
from qkit.report import extras, sections
from qkit.report.document import Document

FORMATS = ("html", "md")


def collect(run) -> Document:
    parts = [
        sections.summary_section(run),
        sections.metrics_section(run),
        sections.roc_section(run),
        sections.threshold_section(run),
        sections.training_section(run),
        extras.explain_section(run),
        extras.hardware_section(run),
        extras.noise_section(run),
        extras.evaluations_section(run),
        sections.config_section(run),
        sections.environment_section(run),
    ]
    subtitle = f"qkit report of {run.path.name}, generated {time.strftime('%Y-%m-%d %H:%M')} from the run folder alone"
    return Document(f"Run {run.record.name or run.path.name}", subtitle, [s for s in parts if s is not None], run.path)


def build_report(run_dir: str | Path, fmt: str = "html") -> Path:
    """Write ``<run>/report.html`` or ``<run>/report.md``; returns its path."""
    from qkit import runs

    if fmt not in FORMATS:
        raise QkitError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    run = runs.load_run(run_dir)
    doc = collect(run)
    if fmt == "html":
        from qkit.report.html import render_html

        return runs.atomic_write_text(run.path / "report.html", render_html(doc))
    from qkit.report.markdown import render_markdown

    return runs.atomic_write_text(run.path / "report.md", render_markdown(doc))
