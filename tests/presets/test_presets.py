"""Presets: every registered name builds, trains a step, rebuilds from its record, and has a fair twin.

Parametrized over the registry, so a new preset is tested without a new test.
"""

import pytest
import torch
from typer.testing import CliRunner

from qkit.cli import app
from qkit.config import ConfigError, TrainConfig
from qkit.errors import QkitError
from qkit.presets import TWIN_SUFFIX, build_preset_model, get_preset, list_presets
from qkit.presets.factory import parameter_counts
from qkit.presets.layers import ParallelCircuits, Quanvolution, parameter_split, quantum_parameter_ids, twin_candidates
from qkit.quantum import QuantumLayer
from qkit.resolve import check_config, config_from_options, resolve_config

NAMES = list_presets()
HYBRIDS = [n for n in NAMES if not get_preset(n).classical]
runner = CliRunner()


def quantum_modules(model):
    return [
        m
        for m in model.modules()
        if isinstance(m, (QuantumLayer, ParallelCircuits))
        and not any(isinstance(p, ParallelCircuits) and m is p.layer for p in model.modules())
    ]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_builds_and_backpropagates_to_the_quantum_weights(name, n_classes):
    torch.manual_seed(0)
    model = build_preset_model(name, n_classes, pretrained="none").train()
    logits = model(torch.rand(4, 3, 28, 28))
    assert logits.shape == (4, n_classes)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 0, 1])).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    quantum = [p for p in model.parameters() if p.requires_grad and id(p) in quantum_parameter_ids(model)]
    assert bool(quantum) != get_preset(name).classical
    for p in quantum:
        assert p.grad.abs().sum() > 0, f"{name}: no gradient reaches a quantum weight"


@pytest.mark.parametrize("name", NAMES)
def test_record_rebuilds_the_same_network(name):
    from qkit.network import build_model_from_config

    model = build_preset_model(name, 3, pretrained="none")
    again = build_model_from_config(model.config)
    again.load_state_dict(model.state_dict())  # same keys and shapes
    assert again.config == {**model.config, "pretrained": model.config.get("pretrained", "none")}
    assert model.config["preset"] == name and model.config["n_classes"] == 3


@pytest.mark.parametrize("name", HYBRIDS)
def test_twin_has_the_nearest_possible_trainable_count(name):
    hybrid, twin = parameter_counts(name), parameter_counts(name + TWIN_SUFFIX)
    assert twin["quantum"] == 0 and hybrid["quantum"] > 0
    (layer,) = quantum_modules(build_preset_model(name, pretrained="none"))
    best = min(
        abs(c[2] - hybrid["quantum"]) for c in twin_candidates(layer.n_inputs, layer.n_outputs, hybrid["quantum"])
    )
    assert abs(twin["trainable"] - hybrid["trainable"]) == best
    assert twin["classical"] - hybrid["classical"] == twin["trainable"] - hybrid["trainable"] + hybrid["quantum"]


def test_parallel_circuits_equal_four_separate_circuits():
    from qkit.circuits import build_circuit

    spec = build_circuit("strongly_entangling", 5, 3, rotation="x", readout="y")
    parallel = ParallelCircuits(spec, 4)
    x = torch.rand(6, 20) * 3
    calls = []
    parallel.layer.register_forward_hook(lambda *_: calls.append(1))
    out = parallel(x)
    assert len(calls) == 1 and out.shape == (6, 20)
    for j in range(4):
        single = QuantumLayer.from_spec(spec, initial_weights=parallel.weight[j].detach())
        torch.testing.assert_close(out[:, 5 * j : 5 * j + 5], single(x[:, 5 * j : 5 * j + 5]))


def test_quanvolution_runs_all_patches_in_one_call_and_matches_a_patch_loop():
    from qkit.circuits import build_circuit

    kernel = QuantumLayer.from_spec(build_circuit("quanv", 4, 1))
    body = Quanvolution(kernel, size=14)
    images = torch.rand(3, 3, 28, 28)
    calls = []
    kernel.register_forward_hook(lambda *_: calls.append(1))
    out = body(images)
    assert len(calls) == 1 and out.shape == (3, 196)
    small = torch.nn.functional.interpolate(images.mean(1, keepdim=True), size=(14, 14), mode="bilinear")
    patch = small[:, 0, 2:4, 4:6].reshape(3, 4)  # row 1, column 2 of the 7x7 grid
    expected = kernel(patch)  # [3, 4]: one value per channel
    torch.testing.assert_close(out.reshape(3, 4, 7, 7)[:, :, 1, 2], expected)


@pytest.mark.parametrize("name", HYBRIDS)
def test_head_interface_for_hardware_commands(name):
    """Head-style presets keep head.encode/quantum/post; the others record a head hardware refuses."""
    preset = get_preset(name)
    model = build_preset_model(name, pretrained="none").eval()
    if preset.quantum_head:
        assert model.config["head"] == "quantum" and isinstance(model.head.quantum, QuantumLayer)
        features = model.backbone(torch.rand(2, 3, 28, 28))
        torch.testing.assert_close(
            model.head.post(model.head.quantum(model.head.encode(features))), model.head(features)
        )
    else:
        assert model.config["head"] != "quantum" and not hasattr(model.head, "quantum")
    twin = build_preset_model(name + TWIN_SUFFIX, pretrained="none")
    assert twin.config["head"] == "classical" and not hasattr(twin.head, "quantum")


def test_preset_options_are_defaults_that_explicit_options_override():
    cfg = resolve_config(config_from_options(preset="qtl", depth=2, lr=1e-3))
    assert (cfg.model.freeze_backbone, cfg.model.depth, cfg.optim.lr) == (True, 2, 1e-3)
    assert (cfg.optim.scheduler, cfg.optim.step_size, cfg.optim.gamma) == ("step", 15, 0.1)
    assert cfg.run.label == "breastmnist-qtl" and cfg.model_kwargs(2)["preset"] == "qtl"
    twin = check_config(config_from_options(preset="hqcnn-classical"))
    assert twin.optim == config_from_options(preset="hqcnn").optim


@pytest.mark.parametrize(
    "options, field",
    [
        ({"preset": "hqcnn", "backbone": "resnet18"}, "backbone"),
        ({"preset": "qtl", "backbone": "small_cnn"}, "backbone"),
        ({"preset": "hqnn-quanv", "n_qubits": 5}, "n_qubits"),
        ({"preset": "nope"}, "preset"),
    ],
)
def test_options_a_preset_cannot_take_are_config_errors(options, field):
    with pytest.raises(ConfigError) as info:
        check_config(config_from_options(**options))
    assert info.value.field == field


def test_a_preset_needs_its_registry_to_build_a_config():
    """qkit.config imports no registry: TrainConfig.from_options refuses a preset instead of ignoring it."""
    with pytest.raises(ConfigError, match="qkit.resolve.config_from_options") as info:
        TrainConfig.from_options(preset="qtl")
    assert info.value.field == "preset"


def test_factory_rejects_a_backbone_outside_the_presets_choices():
    with pytest.raises(QkitError, match="efficientnet_b0"):
        build_preset_model("effnet-qnn", backbone="small_cnn")


def test_parameter_split_counts_frozen_backbones_out():
    quantum, classical = parameter_split(build_preset_model("qtl", pretrained="none"))
    assert (quantum, classical) == (4, 512 * 4 + 4 + 8 + 4 * 2 + 2)  # pre, BatchNorm, post


def test_cli_lists_presets_with_counts_and_papers():
    result = runner.invoke(app, ["presets"])
    assert result.exit_code == 0, result.output
    for name in NAMES:
        assert name in result.output
    assert "4 / 2,070" in result.output and "180 / 45,606" in result.output
    assert "AUC 0.77" in result.output and "twin of hqcnn" in result.output


@pytest.mark.parametrize(
    "args, text",
    [
        (["--preset", "nope"], "--preset"),
        (["--preset", "hqcnn", "--backbone", "resnet18"], "--backbone"),
        (["--preset", "qtl", "--backbone", "small_cnn"], "--backbone"),
    ],
)
def test_cli_bad_presets_are_one_line_usage_errors(args, text):
    result = runner.invoke(app, ["train", *args])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and text in lines[0]
