"""Training on the real BreastMNIST file: run folder, frozen features, resume, determinism.

Runs use the small CNN backbone and a few epochs so each takes seconds on a CPU.
"""

import json
import math
from pathlib import Path

import pytest
import torch

from qkit import runs
from qkit.config import EnvConfig, TrainConfig
from qkit.errors import QkitError
from qkit.evaluate import evaluate_run
from qkit.models import SmallCNN, build_model
from qkit.repro import seed_everything
from qkit.resolve import resolve_config
from qkit.train import TrainingInterrupted, train

# Every test here trains on the real data for a few epochs: out of the fast loop (-m "not slow").
pytestmark = pytest.mark.slow

RUN_FILES = (
    "config.json",
    "env.json",
    "metrics.jsonl",
    "model.pt",
    "test_metrics.json",
    "training_curves.png",
    "roc.png",
    "confusion_matrix.png",
)


@pytest.fixture
def env(data_root) -> EnvConfig:
    return EnvConfig(data_dir=str(data_root))


@pytest.fixture
def tiny() -> TrainConfig:
    return TrainConfig.from_options(backbone="small_cnn", head="linear", epochs=2, batch_size=64, seed=3)


def load_state(run_dir):
    return torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)


def assert_same_run(a, b):
    """Bit-identical best weights, test metrics and per-epoch metrics (timings aside)."""
    state_a, state_b = load_state(a), load_state(b)
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key
    assert runs.read_json(a / "test_metrics.json") == runs.read_json(b / "test_metrics.json")
    strip = lambda recs: [{k: v for k, v in r.items() if k != "seconds"} for r in recs]  # noqa: E731
    assert strip(runs.read_jsonl(a / "metrics.jsonl")) == strip(runs.read_jsonl(b / "metrics.jsonl"))


@pytest.fixture(scope="module")
def reference(data_root, tmp_path_factory):
    """One uninterrupted tiny run, shared by the tests that compare against it."""
    cfg = TrainConfig.from_options(backbone="small_cnn", head="linear", epochs=2, seed=3)
    return train(cfg, EnvConfig(data_dir=str(data_root)), tmp_path_factory.mktemp("runs")), cfg


def test_run_folder_has_every_record(reference):
    run_dir, cfg = reference
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "checkpoint.pt").exists()  # only kept while a run can be resumed
    config = runs.read_json(run_dir / "config.json")
    assert config["schema"] == runs.SCHEMA and config["config"]["run"]["seed"] == 3
    assert config["config"]["model"]["small_input"] is True  # resolved: 28 px, no resize
    assert config["config"]["run"]["name"] == run_dir.name
    expected = resolve_config(cfg).with_options(name=run_dir.name)
    assert TrainConfig.from_dict(config["config"]) == expected
    assert config["data"]["source"]["md5"] and config["data"]["class_names"][0] == "malignant"
    assert config["data"]["positive_class"] == 0
    assert Path(config["env"]["data_dir"]).is_absolute()
    trainable, total = config["parameters"]["trainable"], config["parameters"]["total"]
    assert 0 < trainable == total
    env = runs.read_json(run_dir / "env.json")
    assert env["packages"]["torch"] and "commit" in config["git"] and "commit" in env["git"]
    history = runs.read_jsonl(run_dir / "metrics.jsonl")
    assert [r["epoch"] for r in history] == [1, 2]
    assert {"train_loss", "val_loss", "val_auc", "lr_backbone", "lr_head", "seconds"} <= set(history[0])
    assert history[0]["lr_head"] == pytest.approx(10 * history[0]["lr_backbone"])
    metrics = runs.read_json(run_dir / "test_metrics.json")
    assert metrics["n"] == 156 and metrics["threshold"] == 0.5
    assert 0.0 <= metrics["val_threshold"] <= 1.0
    assert metrics["at_val_threshold"]["threshold"] == metrics["val_threshold"]
    assert sum(map(sum, metrics["confusion_matrix"])) == 156
    assert metrics["best_epoch"] in (1, 2) and metrics["epochs_run"] == 2 and metrics["weights"] == "best"


def test_saved_batchnorm_statistics_are_those_of_the_plain_training_images(reference):
    """precise_bn: model.pt's BatchNorm buffers are recomputed on un-augmented training batches."""
    from qkit.data import DataSpec, build_data
    from qkit.epoch import recompute_batchnorm

    run_dir, cfg = reference
    model = build_model(backbone="small_cnn", head="linear")
    model.load_state_dict(load_state(run_dir))
    saved = {k: v.clone() for k, v in model.state_dict().items() if "running_" in k}
    assert saved
    spec = DataSpec.from_config(resolve_config(cfg), runs.load_run(run_dir).env)
    train_split = build_data(spec).train.without_augmentation()
    recompute_batchnorm(model, train_split, cfg.optim.batch_size, "cpu")
    for key, value in saved.items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=1e-4, atol=1e-5, msg=key)


def test_same_seed_gives_identical_run(reference, env, tmp_path):
    run_dir, cfg = reference
    assert_same_run(run_dir, train(cfg, env, tmp_path))


def test_other_seed_gives_other_weights(reference, env, tmp_path):
    run_dir, cfg = reference
    other = train(cfg.with_options(seed=4, epochs=1), env, tmp_path)
    assert not torch.equal(load_state(run_dir)["head.weight"], load_state(other)["head.weight"])


def _stop_at(event: str, epoch: int, batch: int | None = None):
    def callback(ev: str, info: dict) -> None:
        if ev == event and info["epoch"] == epoch and (batch is None or info["batch"] == batch):
            raise KeyboardInterrupt

    return callback


@pytest.mark.parametrize(
    "where",
    [("batch", 2, 4), ("epoch", 1, None), ("epoch", 2, None)],
    ids=["mid-epoch-2", "after-epoch-1", "after-last-epoch"],
)
def test_interrupted_run_resumes_to_identical_result(reference, env, tmp_path, where):
    run_dir, cfg = reference
    with pytest.raises(TrainingInterrupted) as stop:
        train(cfg, env, tmp_path, callback=_stop_at(*where))
    interrupted = stop.value.run_dir
    assert (interrupted / "checkpoint.pt").is_file() or where[1] == 1
    assert not (interrupted / "test_metrics.json").exists()
    assert train(None, resume=interrupted) == interrupted
    assert_same_run(run_dir, interrupted)
    assert not (interrupted / "checkpoint.pt").exists()


def test_resume_checks_its_input(reference, tmp_path):
    run_dir, cfg = reference
    assert train(None, resume=run_dir) == run_dir  # finished: nothing to do
    with pytest.raises(QkitError, match="different options.*epochs"):
        train(cfg.with_options(epochs=5), resume=run_dir)
    with pytest.raises(QkitError, match="no config.json"):
        train(None, resume=tmp_path)


def test_frozen_backbone_features_are_computed_once(tiny, env, tmp_path):
    calls = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, out: calls.append(1) if isinstance(module, SmallCNN) else None
    )
    try:
        run_dir = train(tiny.with_options(freeze_backbone=True, epochs=3, lr=1e-2), env, tmp_path)
    finally:
        hook.remove()
    # one pass over each split (546 / 78 / 156 images in batches of 64), none per epoch
    assert len(calls) == math.ceil(546 / 64) + math.ceil(78 / 64) + math.ceil(156 / 64)
    config = runs.read_json(run_dir / "config.json")
    assert config["config"]["data"]["augment"] is False
    assert config["parameters"]["trainable"] == 128 * 2 + 2  # only the linear head
    seed_everything(tiny.run.seed)  # the run's initial backbone
    initial = build_model(backbone="small_cnn", head="linear").state_dict()
    trained = load_state(run_dir)
    for key, value in initial.items():
        if key.startswith("backbone."):
            assert torch.equal(trained[key], value), key
    assert not torch.equal(trained["head.weight"], initial["head.weight"])
    history = runs.read_jsonl(run_dir / "metrics.jsonl")
    assert len(history) == 3
    # Only the head trains: its rate is the one logged (lr * head_lr_scale), no backbone rate.
    assert "lr_backbone" not in history[0] and history[0]["lr_head"] == pytest.approx(1e-2 * 10)


def test_frozen_features_are_shared_through_a_cache_folder_and_hits_change_nothing(tiny, env, tmp_path):
    """Runs with one --feature-cache compute each split's features once; a hit is bit-identical.

    The key is made of the inputs themselves: another training seed with an undersampled
    training set gets new training features but reuses the validation and test ones.
    """
    from dataclasses import replace

    calls = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, out: calls.append(1) if isinstance(module, SmallCNN) else None
    )
    cache = tmp_path / "features"
    base = train(tiny.with_options(freeze_backbone=True, epochs=1), env, tmp_path / "base")
    # Pretrained weights: every seed starts from the same frozen backbone, as in qtl.
    cfg = tiny.with_options(freeze_backbone=True, epochs=2, balance="undersample", pretrained=str(base / "model.pt"))
    calls.clear()
    try:
        plain = train(cfg, env, tmp_path / "plain")
        n_plain = len(calls)
        first = train(cfg, replace(env, feature_cache=str(cache)), tmp_path / "a")
        n_first = len(calls) - n_plain
        again = train(cfg, replace(env, feature_cache=str(cache)), tmp_path / "b")
        n_again = len(calls) - n_plain - n_first
        other = train(cfg.with_options(seed=1), replace(env, feature_cache=str(cache)), tmp_path / "c")
        n_other = len(calls) - n_plain - n_first - n_again
    finally:
        hook.remove()
    assert n_first == n_plain > 0 and n_again == 0
    assert len(list(cache.glob("*.pt"))) == 4  # train, val, test + seed 1's train
    assert n_other == math.ceil(2 * 147 / 64)  # only its balanced training set
    for run in (first, again):
        assert (run / "predictions-test-statevector.csv").read_text() == (
            plain / "predictions-test-statevector.csv"
        ).read_text()
        assert runs.read_json(run / "test_metrics.json") == runs.read_json(plain / "test_metrics.json")
    assert runs.read_json(other / "config.json")["env"]["feature_cache"] == str(cache)


def test_breastmnist_end_to_end_quantum_head(env, tmp_path):
    """The default head (4-qubit dressed circuit) on real data reaches a useful test AUC."""
    cfg = TrainConfig.from_options(
        backbone="small_cnn", head="quantum", epochs=6, batch_size=32, lr=3e-3, patience=0, seed=0
    )
    run_dir = train(cfg, env, tmp_path)
    metrics = runs.read_json(run_dir / "test_metrics.json")
    assert metrics["auc"] > 0.7
    # The same weights on the qiskit-machine-learning reference engine give the same predictions.
    again = evaluate_run(run_dir, split="test", engine="connector")
    assert again["auc"] == pytest.approx(metrics["auc"], abs=1e-3)
    saved = json.loads((Path(again["path"]) / "metrics.json").read_text())
    assert saved["engine"] == "connector" and saved["engine_spec"] == {"name": "connector", "options": {}}
    connector = runs.read_predictions(Path(again["path"]) / "predictions-test-connector.csv")
    own = runs.load_run(run_dir).predictions("test")
    assert connector.ids == own.ids
    assert max(abs(a - b) for r, s in zip(connector.probs, own.probs) for a, b in zip(r, s)) < 1e-4


def test_evaluate_run_reproduces_test_metrics(reference):
    run_dir, _ = reference
    result = evaluate_run(run_dir)
    saved = runs.read_json(run_dir / "test_metrics.json")
    assert result["confusion_matrix"] == saved["confusion_matrix"]
    for key in ("auc", "accuracy", "val_threshold"):
        assert result[key] == pytest.approx(saved[key]), key
    assert result["at_val_threshold"]["g_mean"] == pytest.approx(saved["at_val_threshold"]["g_mean"])
    assert runs.read_json(Path(result["path"]) / "metrics.json")["split"] == "test"
    with pytest.raises(QkitError, match="split"):
        evaluate_run(run_dir, split="holdout")


def test_non_finite_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(reference, env, tmp_path):
    """A NaN loss used to count as "no improvement" and training ran on until patience."""
    _, cfg = reference
    with pytest.raises(TrainingInterrupted) as stop:
        train(cfg, env, tmp_path, callback=_stop_at("epoch", 1))
    run_dir = stop.value.run_dir
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    for group in checkpoint["optimizer"]["param_groups"]:
        group["lr"] = float("nan")  # the next step makes every weight NaN
    torch.save(checkpoint, run_dir / "checkpoint.pt")
    with pytest.raises(QkitError) as err:
        train(None, resume=run_dir)
    message = str(err.value)
    assert "\n" not in message and "loss became nan at epoch 2" in message and "keeps epoch 1" in message
    kept = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert kept["epoch"] == 1
    for key, value in checkpoint["model"].items():
        assert torch.equal(kept["model"][key], value), key
    assert [r["epoch"] for r in runs.read_jsonl(run_dir / "metrics.jsonl")] == [1]
    assert not (run_dir / "model.pt").exists() and not (run_dir / "test_metrics.json").exists()


def test_quantum_head_with_ema_resumes_to_identical_result(env, tmp_path):
    cfg = TrainConfig.from_options(
        backbone="small_cnn", head="quantum", epochs=2, batch_size=64, seed=5, ema_decay=0.99
    )
    whole = train(cfg, env, tmp_path / "whole")
    with pytest.raises(TrainingInterrupted) as stop:
        train(cfg, env, tmp_path / "cut", callback=_stop_at("batch", 2, 3))
    assert train(None, resume=stop.value.run_dir) == stop.value.run_dir
    assert_same_run(whole, stop.value.run_dir)
    assert "head.quantum.weight" in load_state(whole)


def test_training_writes_predictions_whose_auc_is_the_test_auc(reference):
    from sklearn.metrics import roc_auc_score

    run = runs.load_run(reference[0])
    metrics = run.test_metrics
    for split, n in (("val", 78), ("test", 156)):
        predictions = run.predictions(split)
        assert len(predictions) == n and len(set(predictions.ids)) == n
        assert predictions.ids[0] == f"{split}/0"
    test = run.predictions("test")
    pos = metrics["positive_class"]
    auc = roc_auc_score([y == pos for y in test.labels], [p[pos] for p in test.probs])
    assert auc == pytest.approx(metrics["auc"], abs=1e-12)


def test_evaluate_in_a_fresh_shell_finds_the_data_where_training_did(reference, tmp_path):
    """`qkit evaluate RUN` without QKIT_DATA_DIR used to look in ~/.medmnist and fail."""
    import os
    import subprocess
    import sys

    from sklearn.metrics import roc_auc_score

    run_dir = reference[0]
    fresh = {k: v for k, v in os.environ.items() if k != "QKIT_DATA_DIR"}
    fresh["HOME"] = str(tmp_path)  # no ~/.medmnist to fall back on
    before = runs.load_run(run_dir).evaluations()
    done = subprocess.run(
        [sys.executable, "-m", "qkit", "evaluate", str(run_dir.resolve()), "--split", "test"],
        cwd=tmp_path,
        env=fresh,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    evaluations = runs.load_run(run_dir).evaluations()
    [new] = set(evaluations) - set(before)
    assert set(before) <= set(evaluations)  # a new evaluation never overwrites an earlier one
    predictions = runs.read_predictions(new / "predictions-test-statevector.csv")
    metrics = runs.read_json(run_dir / "test_metrics.json")
    pos = metrics["positive_class"]
    auc = roc_auc_score([y == pos for y in predictions.labels], [p[pos] for p in predictions.probs])
    assert auc == pytest.approx(metrics["auc"], abs=1e-9)


def test_image_folder_run_refuses_changed_data_on_evaluate_and_resume(tmp_path):
    """The folder fingerprint used to be recorded and never checked: a changed folder was re-scored silently."""
    import numpy as np
    from PIL import Image

    from image_folders import folder

    root = folder(tmp_path, {"normal": 20, "malignant": 20})
    cfg = TrainConfig.from_options(dataset=str(root), backbone="small_cnn", head="linear", epochs=2, seed=1)
    run_dir = train(cfg, EnvConfig(), tmp_path / "runs")
    run = runs.load_run(run_dir)
    assert run.record.class_names[run.record.positive_class] == "malignant"  # not alphabetical index 1
    assert evaluate_run(run_dir)["n"] == run.test_metrics["n"]  # unchanged folder: fine
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(root / "normal" / "extra.png")
    with pytest.raises(QkitError, match="data changed") as err:
        evaluate_run(run_dir)
    assert "\n" not in str(err.value)
    with pytest.raises(TrainingInterrupted) as stop:
        train(cfg.with_options(name="cut"), EnvConfig(), tmp_path / "runs", callback=_stop_at("epoch", 1))
    (root / "normal" / "extra.png").unlink()
    Image.fromarray(np.ones((24, 24, 3), np.uint8)).save(root / "malignant" / "extra.png")
    with pytest.raises(QkitError, match="data changed"):
        train(None, resume=stop.value.run_dir)
