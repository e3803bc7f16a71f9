"""Run records: schema, migration of unversioned records, load_run, evaluations of old runs."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from qkit import load_run, runs
from qkit.config import EnvConfig, TrainConfig
from qkit.errors import QkitError
from qkit.resolve import resolve_config

V0 = Path(__file__).resolve().parents[1] / "fixtures" / "v0_run"  # a run folder written by qkit 0.1 (schema 0)


def test_unversioned_record_migrates_to_groups(tmp_path):
    run_dir = shutil.copytree(V0, tmp_path / "v0run")
    run = load_run(run_dir)
    assert run.status == "finished" and run.record.schema == runs.SCHEMA
    cfg = run.config
    assert cfg.run.label == "breastmnist-small_cnn-quantum"  # was "preset"
    assert (cfg.model.circuit, cfg.optim.epochs, cfg.run.seed) == ("dressed", 1, 0)
    assert run.env.data_dir == str(Path(run.record.source["file"]).parent)  # where training read the data
    assert run.record.class_names == ["malignant", "normal, benign"] and run.record.positive_class == 0
    assert run.record.model["engine_options"] == {}
    assert [r["epoch"] for r in run.history] == [1]


def test_an_old_run_can_be_evaluated_on_this_machine(tmp_path, data_root):
    from qkit.evaluate import evaluate_run
    from qkit.network import build_model_from_config

    run_dir = shutil.copytree(V0, tmp_path / "v0run")
    record = runs.read_record(run_dir)
    torch.manual_seed(0)
    model = build_model_from_config(record.model)
    torch.save(model.state_dict(), run_dir / "model.pt")
    result = evaluate_run(run_dir, split="val", env=EnvConfig(data_dir=str(data_root)))
    assert result["n"] == 78 and Path(result["path"]).parent == run_dir / "evaluations"


def test_record_round_trip_and_one_line_errors(tmp_path):
    cfg = resolve_config(TrainConfig.from_options(backbone="resnet18", engine_options={"fuse_max_qubits": 5}))
    record = runs.RunRecord(name="r", config=cfg, env=EnvConfig(data_dir="/data"), data={"class_names": ["a", "b"]})
    again = runs.RunRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again == record
    for bad, message in (
        ([1, 2], "not a JSON object"),
        ({"schema": 2, "name": "x"}, "schema 2"),
        ({"schema": 1, "config": {}}, "lacks 'name'"),
    ):
        with pytest.raises(QkitError, match=message) as err:
            runs.RunRecord.from_dict(bad)
        assert "\n" not in str(err.value)
    with pytest.raises(QkitError, match="no config.json"):
        load_run(tmp_path)
    with pytest.raises(QkitError, match="not found"):
        load_run(tmp_path / "missing")


def test_predictions_file_round_trip(tmp_path):
    path = runs.write_predictions(
        tmp_path / runs.predictions_name("test", "estimator"),
        ["a/1.png", "b,2.png"],
        [0, 1],
        [[0.25, 0.75], [0.9, 0.1]],
    )
    assert path.name == "predictions-test-estimator.csv"
    read = runs.read_predictions(path)
    assert read.ids == ["a/1.png", "b,2.png"] and read.labels == [0, 1] and read.predicted == [1, 0]
    assert read.probs == [[0.25, 0.75], [0.9, 0.1]]  # exact: floats written with repr
    (tmp_path / "bad.csv").write_text("x,y\n")
    with pytest.raises(QkitError, match="not a qkit predictions file"):
        runs.read_predictions(tmp_path / "bad.csv")
