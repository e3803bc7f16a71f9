"""qkit explain: heatmaps through the whole hybrid for every backbone, image selection, the CLI and its errors."""

import json

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from qkit.cli import app
from qkit.errors import QkitError
from qkit.explain.cam import compute_maps, find_target_layer, parse_methods
from qkit.explain.select import select_images
from qkit.models import build_model
from qkit.models.backbones import list_backbones

runner = CliRunner()
HEAVY = {
    "resnet18",
    "resnet34",
    "resnet50",
    "resnext50_32x4d",
    "efficientnet_b0",
    "efficientnet_b5",
    "mobilenet_v3_small",
}
# MobileNet's and EfficientNet-B5's last blocks see 28 px images as a 1-2 px map, too coarse for maps
# that differ between images.
SIDE = {"mobilenet_v3_small": 64, "efficientnet_b5": 64}
# Untrained EfficientNet-B5 (no ImageNet weights offline) has near-zero gradients at its last block
# (map spread < 0.001 at 64 px, 0.04 at 128 px): only the layer, shapes and ranges are checked for it.
FLAT_AT_INIT = {"efficientnet_b5"}


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


@pytest.fixture(scope="module")
def images(data_root):
    """Real BreastMNIST test images: 8 of each class, and their labels."""
    from qkit.config import EnvConfig, TrainConfig
    from qkit.data import DataSpec, build_data
    from qkit.resolve import resolve_config

    cfg = resolve_config(TrainConfig.from_options(backbone="small_cnn"))
    test = build_data(DataSpec.from_config(cfg, EnvConfig(data_dir=str(data_root)))).test
    labels = test.labels.numpy()
    chosen = [*np.flatnonzero(labels == 0)[:8], *np.flatnonzero(labels == 1)[:8]]
    return torch.stack([test[int(i)][0] for i in chosen]), torch.as_tensor(labels[chosen])


def tiny_trained(backbone: str, x, y) -> nn.Module:
    """An untrained backbone + quantum head after a few Adam steps on 16 real images (28 px stem)."""
    model = build_model(backbone=backbone, head="quantum", small_input=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval()


@pytest.mark.parametrize(
    "backbone", [pytest.param(b, marks=pytest.mark.slow) if b in HEAVY else b for b in list_backbones()]
)
def test_heatmaps_for_every_backbone(backbone, images):
    torch.manual_seed(0)
    side = SIDE.get(backbone, 28)
    x = nn.functional.interpolate(images[0], size=side, mode="bilinear") if side != 28 else images[0]
    y = images[1].numpy()  # 8 malignant, then 8 benign images
    # heavy torchvision backbones untrained (a few steps would only upset their BatchNorm statistics)
    model = (
        build_model(backbone=backbone, head="quantum").eval()
        if backbone in HEAVY
        else tiny_trained(backbone, x, images[1])
    )
    result = compute_maps(model, x, ["gradcam", "gradcam++"], positive_class=0)
    assert result["layer"].name.startswith("backbone.") and len(result["layer"].shape) == 3
    assert result["explained_class"] == 0 and result["probs"].shape == (16, 2)
    informative = []
    for method, maps in result["maps"].items():
        assert maps.shape == (16, side, side) and maps.dtype == np.float32, method
        assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1 + 1e-6
        # not constant, and not the same map for a malignant and a benign image. GradCAM's ReLU
        # may zero a map (every region lowers the log-odds), so one informative method suffices
        # for these barely trained networks.
        varied = np.ptp(maps, axis=(1, 2)).max() > 0.05  # untrained EfficientNet: tiny gradients
        differ = np.abs(maps[y == 0][:, None] - maps[y == 1][None]).max() > 1e-2
        informative.append(varied and differ)
    assert any(informative) or backbone in FLAT_AT_INIT, f"{backbone}: constant maps or the same maps for both classes"


def test_target_layer_is_the_last_convolutional_block():
    model = build_model(backbone="small_cnn", head="quantum")
    layer = find_target_layer(model, torch.zeros(3, 28, 28))
    assert layer.module is model.backbone.features and layer.shape == (128, 7, 7)


def test_a_backbone_without_convolutions_is_refused():
    model = build_model(backbone="small_cnn", head="quantum")
    model.backbone = nn.Sequential(nn.Flatten(), nn.Linear(3 * 28 * 28, 128))
    with pytest.raises(QkitError, match="no convolutional layer"):
        find_target_layer(model, torch.zeros(3, 28, 28))


def test_a_frozen_backbone_is_differentiated_through_its_input(images):
    model = build_model(backbone="small_cnn", head="quantum", freeze_backbone=True).eval()
    assert not any(p.requires_grad for p in model.backbone.parameters())
    maps = compute_maps(model, images[0][[0, 8]], ["gradcam"], positive_class=0)["maps"]["gradcam"]
    assert np.isfinite(maps).all() and np.ptp(maps) > 0


def test_methods_are_validated():
    assert parse_methods("GradCAM, gradcam++,gradcam") == ["gradcam", "gradcam++"]
    with pytest.raises(QkitError, match="unknown method 'foo'"):
        parse_methods("gradcam,foo")


def test_selection_takes_outcomes_in_turn_most_confident_first():
    labels = np.array([0, 0, 1, 1, 0, 1])
    p0 = np.array([0.9, 0.2, 0.7, 0.1, 0.6, 0.3])  # positive class 0
    sel = select_images(labels, np.column_stack([p0, 1 - p0]), 0, ["tp", "fn", "fp", "tn"], 5)
    assert sel.outcomes == ["tp", "fn", "fp", "tn", "tp"]
    assert sel.indices == [0, 1, 2, 3, 4]
    with pytest.raises(QkitError, match="--n must be >= 1"):
        select_images(labels, np.column_stack([p0, 1 - p0]), 0, ["tp"], 0)


def test_explain_command_writes_grid_maps_and_record(run_copy):
    result = runner.invoke(app, ["explain", str(run_copy), "--n", "4", "--select", "tp,tn"])
    assert result.exit_code == 0, result.output
    out = run_copy / "explain"
    record = json.loads((out / "explain-test.json").read_text())
    assert record["methods"] == ["gradcam", "gradcam++"] and record["target_layer"] == "backbone.features"
    assert len(record["samples"]) <= 4 and {s["outcome"] for s in record["samples"]} <= {"tp", "tn"}
    assert "log-odds of 'malignant'" in record["explained"]
    for name in record["maps"].values():
        maps = np.load(out / name)
        assert maps.shape == (len(record["samples"]), 28, 28) and np.isfinite(maps).all()
    from PIL import Image

    with Image.open(out / "heatmaps-test.png") as png:
        assert png.size[0] > 500 and png.size[1] > 400


@pytest.mark.parametrize(
    "args, message",
    [
        (["--n", "0"], "--n must be >= 1"),
        (["--method", "gradcam,nope"], "unknown method 'nope'"),
        (["--select", "tp,maybe"], "--select"),
    ],
)
def test_bad_options_are_one_line(run_copy, args, message):
    result = runner.invoke(app, ["explain", str(run_copy), *args])
    assert result.exit_code != 0 and message in one_line_error(result)


def test_a_run_without_model_is_one_line(run_copy):
    (run_copy / "model.pt").unlink()
    result = runner.invoke(app, ["explain", str(run_copy)])
    assert result.exit_code == 1 and "no model.pt" in one_line_error(result)
