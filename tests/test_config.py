"""Configs declared once: groups, the one validator, JSON round trips, static name lists."""

import json
from dataclasses import fields

import pytest

from qkit import config
from qkit.config import GROUPS, ConfigError, DataConfig, EnvConfig, ModelConfig, TrainConfig, option_groups, validate
from qkit.errors import QkitError
from qkit.resolve import check_config, config_from_options, engine_spec, resolve_config


def test_static_name_lists_match_their_registries():
    """The CLI validates names from torch-free copies; they must equal the real registries."""
    from qkit.circuits import list_circuits
    from qkit.data import MEDMNIST_2D
    from qkit.models import list_backbones, list_heads

    assert set(config.BACKBONES) == set(list_backbones())
    assert set(config.HEADS) == set(list_heads())
    assert set(config.CIRCUITS) == set(list_circuits())
    assert tuple(config.MEDMNIST_2D) == tuple(MEDMNIST_2D)


def test_option_names_are_unique_across_groups():
    names = [f.name for cls in (*GROUPS.values(), EnvConfig) for f in fields(cls)]
    assert len(names) == len(set(names))
    assert set(option_groups()) == {f.name for cls in GROUPS.values() for f in fields(cls)}


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(epochs=0), "epochs"),
        (dict(scheduler="linear"), "scheduler"),
        (dict(lr=-1.0), "lr"),
        (dict(lr=float("nan")), "lr"),
        (dict(monitor="f1"), "monitor"),
        (dict(classes=(1,)), "classes"),
        (dict(balance="smote"), "balance"),
        (dict(seed=-1), "seed"),
        (dict(head_lr_scale=0), "head_lr_scale"),
        (dict(ema_decay=1.0), "ema_decay"),
        (dict(ema_decay=-0.1), "ema_decay"),
        (dict(size=32), "size"),
        (dict(backbone="resnet9000"), "backbone"),
        (dict(engine="tpu"), "engine"),
        (dict(epochs=2.5), "epochs"),
        (dict(circuit="nope"), "circuit"),
        (dict(circuit="no/such.qasm"), "circuit"),
        (dict(group_by="("), "group_by"),
        (dict(dataset="./no/such/folder"), "dataset"),
        (dict(dataset="kneemnist"), "dataset"),
        (dict(positive_class=-1), "positive_class"),
        (dict(split_seed=2**32), "split_seed"),
        (dict(engine_options={"shots": 100}), "engine_options"),
    ],
)
def test_invalid_values_are_one_line_config_errors(change, field):
    with pytest.raises(ConfigError) as err:
        check_config(config_from_options(**change))
    assert err.value.field == field and "\n" not in str(err.value)


def test_a_missing_dataset_folder_says_so():
    with pytest.raises(ConfigError, match="dataset folder ./no/such/folder does not exist"):
        check_config(TrainConfig.from_options(dataset="./no/such/folder"))


def test_size_is_for_medmnist_files_and_an_image_folder_is_told_about_resize(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(ConfigError, match=r"image folder .* keeps its images' own size: use --resize 64") as err:
        check_config(TrainConfig.from_options(dataset=str(tmp_path), size=64))
    assert err.value.field == "size" and "\n" not in str(err.value)
    check_config(TrainConfig.from_options(dataset=str(tmp_path), resize=64))  # what to do instead
    check_config(TrainConfig.from_options(dataset="breastmnist", size=64))  # a MedMNIST+ file


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:3"])
def test_devices_accepted(device):
    validate(EnvConfig(device=device))


def test_bad_environment_values():
    for env, field in (
        (EnvConfig(device="tpu"), "device"),
        (EnvConfig(num_workers=-1), "num_workers"),
        (EnvConfig(threads=0), "threads"),
    ):
        with pytest.raises(ConfigError) as err:
            validate(env)
        assert err.value.field == field


def test_unknown_option_names():
    with pytest.raises(QkitError, match="unknown option.*epochz"):
        TrainConfig.from_options(epochz=3)
    with pytest.raises(QkitError, match="unknown ModelConfig option"):
        TrainConfig.from_dict({"model": {"epochs": 3}})


def test_config_round_trips_through_json_and_resolves():
    cfg = resolve_config(
        TrainConfig.from_options(classes=(0, 1), resize=64, backbone="resnet18", engine_options={"fuse_max_qubits": 5})
    )
    assert cfg.model.small_input is False and cfg.run.label == "breastmnist-resnet18-quantum"
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.flat()["lr"] == cfg.optim.lr and cfg.flat()["classes"] == (0, 1)
    assert str(engine_spec(cfg.model)) == "statevector(fuse_max_qubits=5)"


def test_image_folder_and_circuit_file_paths_are_recorded_absolute(tmp_path, monkeypatch):
    (tmp_path / "imgs").mkdir()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.qasm").write_text("OPENQASM 3.0;")
    cfg = resolve_config(TrainConfig.from_options(dataset="./imgs", circuit="mine.qasm"))
    assert cfg.data.dataset == str(tmp_path / "imgs") and cfg.run.label == "imgs-small_cnn-quantum"
    assert cfg.model.circuit == str(tmp_path / "mine.qasm")  # runs re-read from anywhere


def test_every_field_is_declared_with_help():
    for cls in (DataConfig, ModelConfig, *GROUPS.values(), EnvConfig):
        for f in fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"


def test_training_refuses_a_forward_only_engine_before_loading_data(tmp_path):
    from qkit.config import EnvConfig
    from qkit.train import train

    cfg = TrainConfig.from_options(engine="estimator", engine_options={"backend": "fake_lagos"})
    with pytest.raises(QkitError, match="cannot train.*qkit evaluate RUN --engine estimator"):
        train(cfg, EnvConfig(data_dir=str(tmp_path / "no-data-here")), tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
