"""Presets end to end through ``qkit train`` on the real BreastMNIST (1 epoch each: slow)."""

import json

import pytest
import torch
from typer.testing import CliRunner

from qkit.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner()


def test_train_preset_qkit_default_one_epoch_and_rebuild(tmp_path, data_root):
    from qkit.evaluate import load_model
    from qkit.runs import load_run

    result = runner.invoke(
        app,
        [
            "train",
            "--preset",
            "qkit-default",
            "--epochs",
            "1",
            "-q",
            "--runs-dir",
            str(tmp_path),
            "--data-dir",
            str(data_root),
        ],
    )
    assert result.exit_code == 0, result.output
    (run_dir,) = tmp_path.iterdir()
    record = json.loads((run_dir / "config.json").read_text())
    assert record["config"]["model"]["preset"] == "qkit-default" and record["model"]["preset"] == "qkit-default"
    assert run_dir.name.endswith("breastmnist-qkit-default")
    model = load_model(load_run(run_dir))  # build_model_from_config(record.model) + model.pt
    assert model(torch.rand(2, 3, 28, 28)).shape == (2, 2)


def test_qtl_takes_its_backbone_from_a_qkit_state_dict(tmp_path, data_root):
    from qkit.models import build_model

    weights = tmp_path / "resnet18.pt"
    torch.save(build_model(backbone="resnet18", head="linear").state_dict(), weights)
    result = runner.invoke(
        app,
        [
            "train",
            "--preset",
            "qtl",
            "--pretrained",
            str(weights),
            "--epochs",
            "1",
            "-q",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--data-dir",
            str(data_root),
        ],
    )
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = json.loads((run_dir / "config.json").read_text())
    assert record["model"]["pretrained"] == str(weights.resolve())
    assert record["parameters"]["trainable"] == 2074
