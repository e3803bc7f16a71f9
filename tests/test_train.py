"""Training on the real BreastMNIST file: run folder, frozen features, resume, determinism.

Runs use the small CNN backbone and a few epochs so each takes seconds on a CPU.
"""

import json
import math
from dataclasses import replace

import pytest
import torch

from qkit import runs
from qkit.config import TrainConfig
from qkit.errors import QkitError
from qkit.evaluate import evaluate_run
from qkit.models import SmallCNN, build_model
from qkit.repro import seed_everything
from qkit.train import TrainingInterrupted, train

RUN_FILES = ("config.json", "env.json", "metrics.jsonl", "model.pt", "test_metrics.json",
             "training_curves.png", "roc.png", "confusion_matrix.png")


@pytest.fixture
def tiny(data_root) -> TrainConfig:
    return TrainConfig(data_dir=str(data_root), backbone="small_cnn", head="linear", epochs=2,
                       batch_size=64, seed=3)


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
    cfg = TrainConfig(data_dir=str(data_root), backbone="small_cnn", head="linear", epochs=2, seed=3)
    return train(cfg, tmp_path_factory.mktemp("runs"), progress=False), cfg


def test_run_folder_has_every_record(reference):
    run_dir, cfg = reference
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "checkpoint.pt").exists()   # only kept while a run can be resumed
    config = runs.read_json(run_dir / "config.json")
    assert config["config"]["seed"] == 3 and config["seed"] == 3
    assert config["config"]["small_input"] is True            # resolved: 28 px, no resize
    assert config["config"]["name"] == run_dir.name
    assert TrainConfig.from_dict(config["config"]) == replace(cfg.resolved(), name=run_dir.name)
    assert config["data"]["source"]["md5"] and config["class_names"][0] == "malignant"
    assert config["positive_class"] == 0
    trainable, total = config["parameters"]["trainable"], config["parameters"]["total"]
    assert 0 < trainable == total
    env = runs.read_json(run_dir / "env.json")
    assert env["packages"]["torch"] and "commit" in config["git"] and "commit" in env["git"]
    history = runs.read_jsonl(run_dir / "metrics.jsonl")
    assert [r["epoch"] for r in history] == [1, 2]
    assert {"train_loss", "val_loss", "val_auc", "lr", "seconds"} <= set(history[0])
    metrics = runs.read_json(run_dir / "test_metrics.json")
    assert metrics["n"] == 156 and metrics["threshold"] == 0.5
    assert 0.0 <= metrics["val_threshold"] <= 1.0
    assert metrics["at_val_threshold"]["threshold"] == metrics["val_threshold"]
    assert sum(map(sum, metrics["confusion_matrix"])) == 156
    assert metrics["best_epoch"] in (1, 2) and metrics["epochs_run"] == 2


def test_saved_batchnorm_statistics_are_those_of_the_plain_training_images(reference):
    """precise_bn: model.pt's BatchNorm buffers are recomputed on un-augmented training batches."""
    from qkit.data import build_data
    from qkit.epoch import recompute_batchnorm

    run_dir, cfg = reference
    model = build_model(backbone="small_cnn", head="linear")
    model.load_state_dict(load_state(run_dir))
    saved = {k: v.clone() for k, v in model.state_dict().items() if "running_" in k}
    assert saved
    train_split = build_data(cfg.resolved().data_spec()).train.without_augmentation()
    recompute_batchnorm(model, train_split, cfg.batch_size, "cpu")
    for key, value in saved.items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=1e-4, atol=1e-5, msg=key)


def test_same_seed_gives_identical_run(reference, tmp_path):
    run_dir, cfg = reference
    assert_same_run(run_dir, train(cfg, tmp_path, progress=False))


def test_other_seed_gives_other_weights(reference, tmp_path):
    run_dir, cfg = reference
    other = train(replace(cfg, seed=4, epochs=1), tmp_path, progress=False)
    assert not torch.equal(load_state(run_dir)["head.weight"], load_state(other)["head.weight"])


def _stop_at(event: str, epoch: int, batch: int | None = None):
    def callback(ev: str, info: dict) -> None:
        if ev == event and info["epoch"] == epoch and (batch is None or info["batch"] == batch):
            raise KeyboardInterrupt
    return callback


@pytest.mark.parametrize("where", [("batch", 2, 4), ("epoch", 1, None), ("epoch", 2, None)],
                         ids=["mid-epoch-2", "after-epoch-1", "after-last-epoch"])
def test_interrupted_run_resumes_to_identical_result(reference, tmp_path, where):
    run_dir, cfg = reference
    with pytest.raises(TrainingInterrupted) as stop:
        train(cfg, tmp_path, progress=False, callback=_stop_at(*where))
    interrupted = stop.value.run_dir
    assert (interrupted / "checkpoint.pt").is_file() or where[1] == 1
    assert not (interrupted / "test_metrics.json").exists()
    assert train(None, resume=interrupted, progress=False) == interrupted
    assert_same_run(run_dir, interrupted)
    assert not (interrupted / "checkpoint.pt").exists()


def test_resume_checks_its_input(reference, tmp_path):
    run_dir, cfg = reference
    assert train(None, resume=run_dir, progress=False) == run_dir      # finished: nothing to do
    with pytest.raises(QkitError, match="different options.*epochs"):
        train(replace(cfg, epochs=5), resume=run_dir, progress=False)
    with pytest.raises(QkitError, match="no config.json"):
        train(None, resume=tmp_path, progress=False)


def test_frozen_backbone_features_are_computed_once(tiny, tmp_path):
    calls = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, out: calls.append(1) if isinstance(module, SmallCNN) else None)
    try:
        run_dir = train(replace(tiny, freeze_backbone=True, epochs=3, lr=1e-2), tmp_path, progress=False)
    finally:
        hook.remove()
    # one pass over each split (546 / 78 / 156 images in batches of 64), none per epoch
    assert len(calls) == math.ceil(546 / 64) + math.ceil(78 / 64) + math.ceil(156 / 64)
    config = runs.read_json(run_dir / "config.json")
    assert config["config"]["augment"] is False
    assert config["parameters"]["trainable"] == 128 * 2 + 2      # only the linear head
    seed_everything(tiny.seed)                                      # the run's initial backbone
    initial = build_model(backbone="small_cnn", head="linear").state_dict()
    trained = load_state(run_dir)
    for key, value in initial.items():
        if key.startswith("backbone."):
            assert torch.equal(trained[key], value), key
    assert not torch.equal(trained["head.weight"], initial["head.weight"])
    assert len(runs.read_jsonl(run_dir / "metrics.jsonl")) == 3


def test_breastmnist_end_to_end_quantum_head(data_root, tmp_path):
    """The default head (4-qubit dressed circuit) on real data reaches a useful test AUC."""
    cfg = TrainConfig(data_dir=str(data_root), backbone="small_cnn", head="quantum", epochs=6,
                      batch_size=32, lr=3e-3, patience=0, seed=0)
    run_dir = train(cfg, tmp_path, progress=False)
    metrics = runs.read_json(run_dir / "test_metrics.json")
    assert metrics["auc"] > 0.7
    # The same weights on the qiskit-machine-learning reference engine give the same predictions.
    again = evaluate_run(run_dir, split="test", engine="connector")
    assert again["auc"] == pytest.approx(metrics["auc"], abs=1e-3)
    assert json.loads((run_dir / "eval_test_connector.json").read_text())["engine"] == "connector"


def test_evaluate_run_reproduces_test_metrics(reference):
    run_dir, _ = reference
    result = evaluate_run(run_dir)
    saved = runs.read_json(run_dir / "test_metrics.json")
    assert result["confusion_matrix"] == saved["confusion_matrix"]
    for key in ("auc", "accuracy", "val_threshold"):
        assert result[key] == pytest.approx(saved[key]), key
    assert result["at_val_threshold"]["g_mean"] == pytest.approx(saved["at_val_threshold"]["g_mean"])
    assert runs.read_json(run_dir / "eval_test_statevector.json")["split"] == "test"
    with pytest.raises(QkitError, match="split"):
        evaluate_run(run_dir, split="holdout")


@pytest.mark.parametrize("change, message", [
    (dict(epochs=0), "epochs"), (dict(scheduler="linear"), "scheduler"), (dict(lr=-1.0), "lr"),
    (dict(monitor="f1"), "monitor"), (dict(device="tpu"), "device"), (dict(classes=(1,)), "classes"),
    (dict(balance="smote"), "balance"), (dict(seed=-1), "seed"), (dict(head_lr_scale=0), "head_lr_scale"),
    (dict(ema_decay=1.0), "ema_decay"), (dict(ema_decay=-0.1), "ema_decay"),
])
def test_config_validation_is_one_line(change, message):
    with pytest.raises(QkitError, match=message) as err:
        replace(TrainConfig(), **change).validate()
    assert "\n" not in str(err.value)


def test_config_round_trips_through_json():
    cfg = TrainConfig(classes=(0, 1), resize=64, backbone="resnet18").resolved()
    assert cfg.small_input is False and cfg.preset == "breastmnist-resnet18-quantum"
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.__dict__))) == cfg
    with pytest.raises(QkitError, match="unknown TrainConfig option"):
        TrainConfig.from_dict({"epochz": 3})


def test_head_learns_at_scaled_rate():
    from qkit.models import build_model
    from qkit.train import _optimizer

    model = build_model(backbone="small_cnn", head="quantum")
    optimizer = _optimizer(TrainConfig(lr=2e-3, head_lr_scale=5.0), model)
    by_lr = {group["lr"]: {id(p) for p in group["params"]} for group in optimizer.param_groups}
    assert by_lr[2e-3] == {id(p) for p in model.backbone.parameters()}
    assert by_lr[1e-2] == {id(p) for p in model.head.parameters()}
