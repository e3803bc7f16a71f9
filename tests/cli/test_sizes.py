"""A 64 px run (MedMNIST+ BreastMNIST, ``breastmnist_64.npz``) through every command that reads
a run: the size is recorded and shown, and each command works on the run's 64 px images."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from qkit import runs
from qkit.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def run64(tmp_path_factory, data_root) -> Path:
    """A small 64 px run: small_cnn + the dressed quantum head, 1 epoch."""
    from qkit.config import EnvConfig
    from qkit.resolve import config_from_options
    from qkit.train import train

    if not (data_root / "breastmnist_64.npz").is_file():
        pytest.fail(f"breastmnist_64.npz (MedMNIST+ 64 px) not found in {data_root}")
    cfg = config_from_options(size=64, epochs=1, seed=0)
    return train(cfg, EnvConfig(data_dir=str(data_root)), tmp_path_factory.mktemp("runs64"))


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_the_record_listing_and_report_say_64_px(run64):
    run = runs.load_run(run64)
    assert run.config.data.size == 64 and run.config.data.pixels == "64 px"
    assert run.record.source["file"].endswith("breastmnist_64.npz")
    listing = invoke("runs", "--runs-dir", str(run64.parent))
    assert "breastmnist 64 px" in listing
    invoke("report", str(run64), "--format", "md")
    assert "breastmnist at 64 px (" in (run64 / "report.md").read_text()


def test_evaluate_rescores_the_64_px_test_split_as_training_did(run64):
    invoke("evaluate", str(run64), "--split", "test")
    folder = next((run64 / "evaluations").iterdir())
    metrics = json.loads((folder / "metrics.json").read_text())
    trained = runs.load_run(run64).test_metrics
    assert metrics["n"] == 156 and metrics["auc"] == pytest.approx(trained["auc"], abs=1e-9)


@pytest.mark.slow
def test_run_hardware_and_a_noise_study_on_fake_lagos(run64):
    invoke(
        "run-hardware",
        str(run64),
        "--backend",
        "fake_lagos",
        "--shots",
        "64",
        "--seed",
        "1",
        "--layout",
        "default",
        "--split",
        "val",
    )
    (done,) = (run64 / "hardware" / "fake_lagos").iterdir()
    record = json.loads((done / "hardware.json").read_text())
    assert record["split"] == "val" and record["metrics"]["auc"]["mean"] is not None
    assert 0.0 < record["metrics"]["agreement"]["mean"] <= 1.0  # the device's votes vs the exact model's
    invoke("noise", "study", str(run64), "--vary", "scale", "--values", "0,1", "--split", "val")
    summary = json.loads((run64 / "noise" / "scale-fake_lagos" / "summary.json").read_text())
    noiseless = next(p for p in summary["points"] if p["point"] == 0.0)
    assert noiseless["metrics"]["auc"]["mean"] == pytest.approx(summary["exact"]["auc"], abs=1e-6)


def test_explain_draws_64_px_heatmaps(run64):
    invoke("explain", str(run64), "--n", "2")
    record = json.loads((run64 / "explain" / "explain-test.json").read_text())
    assert record["image_shape"] == [3, 64, 64]
    maps = np.load(run64 / "explain" / "gradcam-test.npy")
    assert maps.shape == (2, 64, 64) and np.isfinite(maps).all() and maps.max() > 0
