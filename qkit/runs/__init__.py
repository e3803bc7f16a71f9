"""Runs as first-class artifacts: one folder per run, its versioned record and its results.

``load_run(path)`` gives a ``Run`` (record, test metrics, history, predictions); the
sub-modules write and find run folders. Nothing here imports torch: listing runs is instant.
"""

from qkit.runs.environment import PACKAGES, environment_info, git_info
from qkit.runs.files import (
    append_jsonl,
    atomic_torch_save,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    read_json,
    read_jsonl,
    redact,
)
from qkit.runs.folders import create_run_dir, create_unique_dir, find_run, list_runs
from qkit.runs.predictions import Predictions, predictions_name, read_predictions, write_predictions
from qkit.runs.record import SCHEMA, Run, RunRecord, load_run, read_record

__all__ = [
    "PACKAGES",
    "SCHEMA",
    "Predictions",
    "Run",
    "RunRecord",
    "append_jsonl",
    "atomic_torch_save",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "create_run_dir",
    "create_unique_dir",
    "environment_info",
    "find_run",
    "git_info",
    "list_runs",
    "load_run",
    "predictions_name",
    "read_json",
    "read_jsonl",
    "read_predictions",
    "read_record",
    "redact",
    "write_predictions",
]
