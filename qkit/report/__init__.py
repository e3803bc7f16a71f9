"""One report per run: ``build_report(run_dir, fmt)`` writes ``report.html`` or ``report.md``.

``document`` is the format-free content model; ``sections`` and ``extras`` read the run
folder into it; ``stats`` computes bootstrap intervals and operating points; ``html`` and
``markdown`` render it; ``build`` ties them together.
"""
