"""Schedules that scale with the training set: today's behaviour at BreastMNIST's 546 images,
fewer epochs and a sub-linearly growing step budget beyond, recorded in the run."""

import json
import math

import numpy as np
import pytest

from qkit.config import OptimConfig, TrainConfig
from qkit.optim import REFERENCE_IMAGES, training_budget
from qkit.resolve import config_from_options

SIZES = {"breastmnist": 546, "pneumoniamnist": 4708, "organamnist": 34561, "pathmnist": 89996}


@pytest.mark.parametrize("n", [10, 300, REFERENCE_IMAGES])
def test_sets_up_to_546_images_keep_the_stated_schedule(n):
    optim = OptimConfig()
    budget = training_budget(optim, n)
    assert (budget["epochs"], budget["patience"], budget["step_size"]) == (optim.epochs, optim.patience, 10)
    assert budget["factor"] == 1.0


def test_fixed_schedules_keep_it_at_every_size():
    optim = OptimConfig(schedule="fixed", epochs=10, patience=0)
    for n in SIZES.values():
        assert training_budget(optim, n)["epochs"] == 10 and training_budget(optim, n)["patience"] == 0


def test_scaled_budget_grows_sub_linearly_with_fewer_epochs():
    optim = OptimConfig()
    budgets = [training_budget(optim, n) for n in sorted(SIZES.values())]
    for b in budgets:
        assert b["factor"] == pytest.approx(min(1.0, (546 / b["n_train"]) ** 0.75), abs=1e-6)
        assert b["epochs"] == max(1, round(150 * b["factor"]))
        assert b["max_steps"] == b["epochs"] * math.ceil(b["n_train"] / optim.batch_size)
    for small, large in zip(budgets, budgets[1:]):
        assert large["epochs"] < small["epochs"] and large["patience"] <= small["patience"]
        assert large["max_steps"] > small["max_steps"]
    # From 546 to 89,996 images the step budget grows as n^0.25 (whole epochs: within 0.05).
    first, last = budgets[0], budgets[-1]
    growth = math.log(last["max_steps"] / first["max_steps"]) / math.log(last["n_train"] / first["n_train"])
    assert abs(growth - 0.25) < 0.05, growth
    pneumonia = training_budget(optim, SIZES["pneumoniamnist"])
    assert pneumonia["epochs"] == round(150 * (546 / 4708) ** 0.75) == 30 and pneumonia["patience"] == 8


def test_patience_never_grows_and_zero_stays_off():
    assert training_budget(OptimConfig(patience=2), 90000)["patience"] == 2
    assert training_budget(OptimConfig(patience=0), 90000)["patience"] == 0
    assert training_budget(OptimConfig(patience=40), 10**7)["patience"] == 3


def test_presets_with_a_papers_epoch_count_are_fixed_and_old_records_read_as_fixed():
    for preset in ("hqcnn", "hqnn-parallel", "hqnn-quanv", "qtl", "hqcnn-classical"):
        assert config_from_options(preset=preset).optim.schedule == "fixed", preset
    for preset in ("qkit-default", "quantum-end", "effnet-qnn"):
        assert config_from_options(preset=preset).optim.schedule == "scaled", preset
    old = TrainConfig().to_dict()
    del old["optim"]["schedule"]
    assert TrainConfig.from_dict(old).optim.schedule == "fixed"


@pytest.mark.slow
def test_a_larger_folder_trains_for_the_scaled_epochs_and_records_its_budget(tmp_path):
    """1,200 images (840 for training): --epochs 4 becomes round(4 * (546/840)^0.75) = 3 epochs."""
    from PIL import Image

    from qkit.config import EnvConfig
    from qkit.train import train

    rng = np.random.default_rng(0)
    for c, name in enumerate(("benign", "malignant")):
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(600):
            pixels = np.clip(rng.normal(90 + 60 * c, 40, (12, 12)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / name / f"{i:04d}.png")
    cfg = TrainConfig.from_options(
        dataset=str(tmp_path / "images"), head="linear", epochs=4, patience=0, batch_size=128, seed=0
    )
    run = train(cfg, EnvConfig(threads=1), tmp_path / "runs")
    record = json.loads((run / "config.json").read_text())
    n_train = record["data"]["train"]["n"]
    assert record["budget"]["n_train"] == n_train > REFERENCE_IMAGES
    expected = round(4 * (REFERENCE_IMAGES / n_train) ** 0.75)
    assert record["budget"]["epochs"] == expected == 3 and record["config"]["optim"]["epochs"] == 4
    assert len((run / "metrics.jsonl").read_text().splitlines()) == expected
