"""The run record (``config.json``) and ``load_run``: a finished or interrupted run as an object.

``config.json`` is a versioned ``RunRecord``: the grouped ``TrainConfig`` that decides the
result, the ``EnvConfig`` it ran with (data folder resolved to an absolute path, so a later
``qkit evaluate`` finds the data where training found it), the data source with its
fingerprint, the model's build arguments, parameter counts, device and git commit.

Records written before versioning (schema 0: one flat ``config`` dict with a ``preset``
label) are migrated on load; anything else that does not parse is a one-line QkitError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qkit.config import EnvConfig, TrainConfig, env_from_dict, group_options
from qkit.errors import QkitError
from qkit.runs.files import read_json, read_jsonl

SCHEMA = 1
RECORD_FILE = "config.json"
_ENV_KEYS = ("data_dir", "device", "num_workers")


@dataclass
class RunRecord:
    """Everything needed to rebuild, re-score and compare a run (``config.json``)."""

    name: str
    config: TrainConfig
    env: EnvConfig
    data: dict = field(default_factory=dict)  # source (file/md5 or folder/fingerprint), splits, classes
    model: dict = field(default_factory=dict)  # qkit.network.build_network arguments
    parameters: dict = field(default_factory=dict)  # trainable / total
    budget: dict = field(default_factory=dict)  # epochs, patience, steps as the training-set size made them
    created: str = ""
    device_used: str = ""
    git: dict | None = None
    qkit_version: str | None = None
    schema: int = SCHEMA

    @property
    def class_names(self) -> list[str]:
        return list(self.data.get("class_names", []))

    @property
    def positive_class(self) -> int | None:
        return self.data.get("positive_class")

    @property
    def source(self) -> dict:
        return dict(self.data.get("source", {}))

    def to_dict(self) -> dict:
        return {
            "schema": self.schema,
            "name": self.name,
            "created": self.created,
            "qkit_version": self.qkit_version,
            "config": self.config.to_dict(),
            "env": vars(self.env).copy(),
            "data": self.data,
            "model": self.model,
            "parameters": self.parameters,
            "budget": self.budget,
            "device_used": self.device_used,
            "git": self.git,
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "config.json") -> RunRecord:
        if not isinstance(d, dict):
            raise QkitError(f"{where} is not a JSON object")
        schema = d.get("schema", 0)
        if schema == 0 and isinstance(d.get("config"), dict):
            d = _migrate_v0(d)
        elif schema != SCHEMA:
            raise QkitError(
                f"{where} has record schema {schema!r}; this qkit reads schema {SCHEMA} "
                "(and unversioned records): upgrade qkit"
            )
        try:
            return cls(
                name=d["name"],
                config=TrainConfig.from_dict(d["config"]),
                env=env_from_dict(d.get("env")),
                data=d.get("data") or {},
                model=d.get("model") or {},
                parameters=d.get("parameters") or {},
                budget=d.get("budget") or {},
                created=d.get("created", ""),
                device_used=d.get("device_used", ""),
                git=d.get("git"),
                qkit_version=d.get("qkit_version"),
                schema=SCHEMA,
            )
        except KeyError as exc:
            raise QkitError(f"{where} lacks {exc.args[0]!r}: not a qkit run record") from None
        except (TypeError, QkitError) as exc:
            raise QkitError(f"{where} does not hold a valid run config: {exc}") from None


def _migrate_v0(d: dict) -> dict:
    """An unversioned record: flat config (with ``preset``, ``data_dir``, ``device``...) -> schema 1."""
    flat = dict(d["config"])
    env = {k: flat.pop(k) for k in _ENV_KEYS if k in flat}
    if "preset" in flat:
        flat["label"] = flat.pop("preset")
    source = (d.get("data") or {}).get("source") or {}
    if source.get("file"):  # the MedMNIST file training read: its folder is the data dir
        env["data_dir"] = str(Path(source["file"]).parent)
    grouped = group_options(flat, where="unversioned config.json has ")
    data = dict(d.get("data") or {})
    data.setdefault("class_names", d.get("class_names", []))
    data.setdefault("positive_class", d.get("positive_class"))
    model = dict(d.get("model") or {})
    model.setdefault("engine_options", {})
    return {
        "name": flat.get("name") or "",
        "config": grouped,
        "env": env,
        "data": data,
        "model": model,
        "parameters": d.get("parameters"),
        "created": d.get("created", ""),
        "device_used": d.get("device_used", ""),
        "git": d.get("git"),
    }


def read_record(run_dir: str | Path) -> RunRecord:
    run_dir = Path(run_dir)
    path = run_dir / RECORD_FILE
    if not path.is_file():
        raise QkitError(f"{run_dir} has no {RECORD_FILE}: not a qkit run folder")
    record = RunRecord.from_dict(read_json(path), where=str(path))
    record.name = record.name or run_dir.name
    return record


@dataclass
class Run:
    """A run folder, loaded: its record plus whatever results it has so far."""

    path: Path
    record: RunRecord
    test_metrics: dict | None
    history: list[dict]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> TrainConfig:
        return self.record.config

    @property
    def env(self) -> EnvConfig:
        return self.record.env

    @property
    def status(self) -> str:
        """``finished`` (test metrics written) or ``incomplete`` (interrupted or running)."""
        return "finished" if self.test_metrics is not None else "incomplete"

    @property
    def model_path(self) -> Path:
        return self.path / "model.pt"

    def predictions_path(self, split: str, engine: str | None = None) -> Path:
        from qkit.runs.predictions import predictions_name

        return self.path / predictions_name(split, engine or self.config.model.engine)

    def predictions(self, split: str = "test", engine: str | None = None):
        """Per-sample predictions training wrote (``qkit.runs.predictions.Predictions``)."""
        from qkit.runs.predictions import read_predictions

        return read_predictions(self.predictions_path(split, engine))

    def evaluations(self) -> list[Path]:
        """Folders of later evaluations (``qkit evaluate``), oldest first."""
        root = self.path / "evaluations"
        return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def load_run(path: str | Path) -> Run:
    """Load a run folder: record (``config.json``), test metrics and per-epoch history.

    Raises a one-line QkitError for a folder that is not a run or whose files do not parse.
    """
    path = Path(path)
    if not path.is_dir():
        raise QkitError(f"run folder {path} not found")
    record = read_record(path)
    metrics = read_json(path / "test_metrics.json") if (path / "test_metrics.json").is_file() else None
    history = read_jsonl(path / "metrics.jsonl") if (path / "metrics.jsonl").is_file() else []
    return Run(path, record, metrics, history)
