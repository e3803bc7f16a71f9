"""Sweep planning: which runs a comparison needs, where they live and which are already done.

A sweep is presets x seeds on one dataset with one set of overrides, so every run of a
preset differs only in its training seed and every hybrid differs from its twin only in the
quantum layer. The split seed is never varied: all runs see the same train/val/test images,
which the paired statistics need. Planning reads only ``config.json`` files: it is instant
and imports nothing heavy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from qkit.errors import QkitError

_NAME_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
FINISHED, INTERRUPTED, FRESH = "finished", "interrupted", "fresh"


@dataclass(frozen=True)
class Job:
    """One run of a sweep: preset ``preset`` with training seed ``seed`` in ``run_dir``."""

    preset: str
    seed: int
    run_dir: Path
    options: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.preset}/seed{self.seed}"

    def config(self):
        """The run's ``TrainConfig`` (the preset's recipe plus the sweep's overrides)."""
        from qkit.resolve import config_from_options

        return config_from_options(preset=self.preset, seed=self.seed, name=self.run_dir.name, **self.options)

    def status(self) -> str:
        """``finished`` (test_metrics.json), ``interrupted`` (a run record to resume) or ``fresh``."""
        if (self.run_dir / "test_metrics.json").is_file():
            return FINISHED
        if (self.run_dir / "config.json").is_file():
            return INTERRUPTED
        return FRESH


@dataclass(frozen=True)
class Sweep:
    """Presets x seeds in ``root`` (``runs/compare-<name>``); ``presets`` keeps twins next to hybrids."""

    name: str
    root: Path
    presets: tuple[str, ...]
    seeds: int
    options: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    threads: int = 1

    def jobs(self) -> list[Job]:
        """Seed-major order: seed 0 of every preset finishes first, so a partial sweep is already paired."""
        return [
            Job(p, s, self.root / p / f"seed{s}", dict(self.options)) for s in range(self.seeds) for p in self.presets
        ]

    def pairs(self) -> list[tuple[str, str]]:
        """(hybrid, twin) pairs both present in the sweep."""
        from qkit.presets import TWIN_SUFFIX

        return [(p, p + TWIN_SUFFIX) for p in self.presets if p + TWIN_SUFFIX in self.presets]


def plan_sweep(
    presets: list[str],
    seeds: int,
    name: str | None = None,
    runs_root: str | Path = "runs",
    twins: bool = True,
    options: dict | None = None,
    env: dict | None = None,
    threads: int = 1,
) -> Sweep:
    """Check the request and lay out the sweep; bad input is a one-line QkitError.

    ``options``: flat ``qkit train`` overrides shared by every run (``epochs``, ``dataset``...);
    ``env``: ``EnvConfig`` fields (data_dir, device). Existing runs must have been trained with
    the same options, else mixing them would compare different things. ``threads``: torch
    threads of every run. It is part of the sweep, not of the executor: a CPU run's floating-point
    sums depend on the thread count (1 and 2 threads differ in the 6th digit of the loss after
    one epoch), so a run gives the same metrics whichever worker count ran it only if its
    thread count is fixed.
    """
    if threads < 1:
        raise QkitError(f"--threads must be at least 1 (got {threads})")
    if seeds < 1:
        raise QkitError(f"--seeds must be at least 1 (got {seeds}); the paired test needs several, 5 or more")
    if not presets:
        raise QkitError("name at least one preset (qkit presets lists them)")
    expanded = expand_presets(presets, twins)
    name = name or "-".join(p for p in expanded if not p.endswith("-classical")) or expanded[0]
    if not _NAME_OK.fullmatch(name):
        raise QkitError(f"invalid sweep name {name!r}: use letters, digits, '.', '_', '-'")
    root = Path(runs_root) / f"compare-{name}"
    from qkit.data.medmnist_files import resolve_data_dir

    env = {k: v for k, v in (env or {}).items() if v is not None}
    # Frozen-backbone features are shared by every run of the sweep (bit-identical on a hit).
    env.setdefault("feature_cache", str(root / "features"))
    # Absolute folders, $QKIT_DATA_DIR resolved here: Ray workers on other machines, or in
    # another working directory, do not share this process's environment.
    env["data_dir"] = str(resolve_data_dir(env.get("data_dir")).resolve())
    env["feature_cache"] = str(Path(env["feature_cache"]).expanduser().resolve())
    sweep = Sweep(name, root, tuple(expanded), seeds, dict(options or {}), env, threads)
    for job in sweep.jobs():
        _check_job(job, threads)
    return sweep


def expand_presets(presets: list[str], twins: bool) -> list[str]:
    """Known names in the order given, each hybrid followed by its twin (unless ``twins`` is off)."""
    from qkit.presets import get_preset

    out: list[str] = []
    for name in presets:
        preset = get_preset(name)  # unknown name -> one-line QkitError listing the presets
        for p in (name, name + "-classical") if twins and not preset.classical else (name,):
            if p not in out:
                out.append(p)
    return out


def _check_job(job: Job, threads: int) -> None:
    """The options must make a valid config, and an existing run must match them and the thread count."""
    from qkit.config import ConfigError
    from qkit.resolve import resolve_config

    try:
        cfg = resolve_config(job.config())
    except ConfigError as exc:
        raise QkitError(f"{job.preset}: {exc}") from None
    if job.seed == 0:
        # A missing weights file would otherwise surface in a worker, after other runs started.
        from qkit.models.pretrained import resolve_pretrained

        try:
            resolve_pretrained(cfg.model.pretrained)
        except QkitError as exc:
            raise QkitError(f"{job.preset}: {exc}") from None
    if job.status() == FRESH:
        return
    from qkit.runs import read_record

    record = read_record(job.run_dir)
    if record.env.threads != threads:
        raise QkitError(
            f"{job.run_dir} was trained with {record.env.threads} thread(s) per run; give --threads "
            f"{record.env.threads} (the thread count changes a CPU run's floating-point sums)"
        )
    saved = record.config.flat()
    differ = sorted(k for k, v in cfg.flat().items() if saved.get(k) != v)
    if differ:
        raise QkitError(
            f"{job.run_dir} was trained with other options ({', '.join(differ)}); "
            "use another --name or the sweep's original options"
        )
