"""Tests for qkit.models: backbones, heads, freezing, and loading qkit-saved state dicts."""

from urllib.error import URLError

import pytest
import torch
from torch import nn

from qkit.errors import QkitError
from qkit.models import (
    HybridModel,
    QuantumHead,
    build_model,
    count_parameters,
    list_backbones,
    list_heads,
    shrink_kernel,
)
from qkit.network import build_model_from_config

SIZE = 28


@pytest.fixture
def images() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(2, 3, SIZE, SIZE)


def _bn_stats(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items() if "running" in k or "num_batches" in k}


def _one_step(model: HybridModel, images: torch.Tensor) -> None:
    """One SGD step in train mode, so weights and BN statistics differ from initialisation."""
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = nn.functional.cross_entropy(model(images), torch.tensor([0, 1]))
    loss.backward()
    opt.step()


def test_registries_list_the_contract_names():
    assert list_backbones()[0] == "resnet18"
    for name in ("resnet18", "resnet34", "resnet50", "efficientnet_b0", "mobilenet_v3_small", "small_cnn"):
        assert name in list_backbones()
    assert set(list_heads()) >= {"linear", "quantum"}


# Every registered backbone is tested for free; the two largest only in the full suite.
HEAVY = ("resnet34", "resnet50", "resnext50_32x4d", "efficientnet_b5")
BACKBONES = [pytest.param(b, marks=[pytest.mark.slow] if b in HEAVY else []) for b in list_backbones()]


@pytest.mark.parametrize("head", ["linear", "quantum"])
@pytest.mark.parametrize("backbone", BACKBONES)
def test_output_shapes(backbone, head, images):
    model = build_model(backbone, head=head, n_classes=3, small_input=True)
    features = model.backbone(images)
    assert features.shape == (2, model.n_features)
    logits = model(images)
    assert logits.shape == (2, 3)
    assert torch.isfinite(logits).all()
    assert model.config["backbone"] == backbone and model.config["head"] == head


def _spatial_sizes(model: HybridModel, images: torch.Tensor) -> tuple[int, int]:
    """(height after the first conv, height entering the final global pool)."""
    first_conv = next(m for m in model.backbone.modules() if isinstance(m, nn.Conv2d))
    final_pool = [m for m in model.backbone.modules() if isinstance(m, nn.AdaptiveAvgPool2d)][-1]
    seen: dict[str, int] = {}

    def after_conv(module, inputs, output):
        seen.setdefault("conv", output.shape[-1])

    def before_pool(module, inputs):
        seen["pool"] = inputs[0].shape[-1]

    h1 = first_conv.register_forward_hook(after_conv)
    h2 = final_pool.register_forward_pre_hook(before_pool)
    model.eval()
    with torch.no_grad():
        model(images)
    h1.remove()
    h2.remove()
    return seen["conv"], seen["pool"]


@pytest.mark.parametrize("backbone", BACKBONES)
def test_small_input_stem_keeps_resolution(backbone, images):
    small = _spatial_sizes(build_model(backbone, head="linear", small_input=True), images)
    large = _spatial_sizes(build_model(backbone, head="linear", small_input=False), images)
    assert small[0] == SIZE  # first conv keeps 28 px
    assert large[0] == SIZE // 2  # the ImageNet stem halves it
    assert small[1] > large[1] and small[1] >= 2  # the last stage still sees a spatial map


def test_small_cnn4_ends_on_a_4x4_map_at_64_px():
    images = torch.rand(2, 3, 64, 64)
    assert _spatial_sizes(build_model("small_cnn", head="linear", small_input=False), images) == (32, 8)
    deeper = build_model("small_cnn4", head="linear", small_input=False)
    assert _spatial_sizes(deeper, images) == (32, 4) and deeper.n_features == 256


@pytest.mark.parametrize("backbone", ["resnet18", "efficientnet_b0", "small_cnn"])
def test_freeze_backbone(backbone, images):
    model = build_model(backbone, head="linear", freeze_backbone=True)
    before = _bn_stats(model.backbone)
    assert before, "backbone should have BatchNorm statistics"
    model.train()
    assert model.training and model.head.training
    assert not model.backbone.training
    assert not any(m.training for m in model.backbone.modules())
    model(images).sum().backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.head.parameters())
    after = _bn_stats(model.backbone)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_unfrozen_backbone_updates_bn_stats(images):
    # The counterpart of test_freeze_backbone: without freezing, train mode does move the stats.
    model = build_model("small_cnn", head="linear")
    before = _bn_stats(model.backbone)
    model.train()
    model(images)
    after = _bn_stats(model.backbone)
    assert not all(torch.equal(before[k], after[k]) for k in before)


def test_count_parameters():
    model = build_model("small_cnn", head="linear", n_classes=2)
    expected_total = sum(p.numel() for p in model.parameters())
    assert count_parameters(model) == (expected_total, expected_total)
    frozen = build_model("small_cnn", head="linear", n_classes=2, freeze_backbone=True)
    head_params = 128 * 2 + 2
    assert count_parameters(frozen) == (head_params, expected_total)


@pytest.mark.parametrize("backbone_only", [False, True])
def test_load_qkit_state_dict(tmp_path, images, backbone_only):
    torch.manual_seed(1)
    trained = build_model("resnet18", head="linear")
    _one_step(trained, images)
    state = trained.backbone.state_dict() if backbone_only else trained.state_dict()
    path = tmp_path / "weights.pt"
    torch.save(state, path)

    torch.manual_seed(2)
    loaded = build_model("resnet18", head="linear", pretrained=str(path))
    expected = trained.backbone.state_dict()
    got = loaded.backbone.state_dict()
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    # The head is not taken from the file: it starts fresh.
    assert not torch.equal(loaded.head.weight, trained.head.weight)
    assert loaded.config["pretrained"] == str(path)


def test_load_state_dict_from_training_checkpoint(tmp_path, images):
    trained = build_model("small_cnn", head="linear")
    _one_step(trained, images)
    path = tmp_path / "last.pt"
    torch.save({"model": trained.state_dict(), "epoch": 3}, path)
    loaded = build_model("small_cnn", head="linear", pretrained=path)
    assert torch.equal(loaded.backbone.features[0].weight, trained.backbone.features[0].weight)


@pytest.mark.parametrize("other", [dict(backbone="resnet34"), dict(backbone="resnet18", small_input=False)])
def test_mismatched_state_dict_raises(tmp_path, other):
    path = tmp_path / "resnet18.pt"
    torch.save(build_model("resnet18", head="linear").state_dict(), path)
    with pytest.raises(QkitError, match="does not fit backbone") as info:
        build_model(head="linear", pretrained=str(path), **other)
    assert "\n" not in str(info.value)


def test_bad_pretrained_files(tmp_path):
    with pytest.raises(QkitError, match="no such file"):
        build_model("small_cnn", head="linear", pretrained=str(tmp_path / "absent.pt"))
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a torch file")
    with pytest.raises(QkitError, match="cannot read state dict") as info:
        build_model("small_cnn", head="linear", pretrained=str(corrupt))
    assert "\n" not in str(info.value)
    not_a_dict = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), not_a_dict)
    with pytest.raises(QkitError, match="not a state dict"):
        build_model("small_cnn", head="linear", pretrained=str(not_a_dict))


@pytest.mark.parametrize(
    "kwargs, listed",
    [
        (dict(backbone="vgg11"), "resnet18"),
        (dict(head="mlp"), "quantum"),
        (dict(pretrained="imagenet21k"), "imagenet"),
    ],
)
def test_unknown_names_list_choices(kwargs, listed):
    with pytest.raises(QkitError, match=listed):
        build_model(**{"head": "linear", **kwargs})


def test_small_cnn_has_no_imagenet_weights():
    with pytest.raises(QkitError, match="no ImageNet weights"):
        build_model("small_cnn", head="linear", pretrained="imagenet")


def test_imagenet_weights_from_torch_cache(tmp_path, monkeypatch):
    """pretrained="imagenet" loads torchvision's weights file (here a stand-in in the hub cache)."""
    import torchvision.models as tvm

    reference = tvm.resnet18(weights=None).state_dict()
    url = tvm.ResNet18_Weights.DEFAULT.url
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(reference, cache / url.rsplit("/", 1)[-1])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    model = build_model("resnet18", head="linear", pretrained="imagenet", small_input=True)
    got = model.backbone.state_dict()
    assert torch.equal(got["layer4.1.bn2.weight"], reference["layer4.1.bn2.weight"])
    assert torch.allclose(got["conv1.weight"], shrink_kernel(reference["conv1.weight"], 3))
    full = build_model("resnet18", head="linear", pretrained="imagenet", small_input=False)
    assert torch.equal(full.backbone.conv1.weight, reference["conv1.weight"])


def test_imagenet_download_failure_is_one_line(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # empty cache: torchvision must download
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(QkitError, match="could not be downloaded.*--pretrained") as info:
        build_model("mobilenet_v3_small", head="linear", pretrained="imagenet")
    assert "\n" not in str(info.value)


def test_shrink_kernel_keeps_flat_response():
    weight = torch.randn(4, 3, 7, 7)
    small = shrink_kernel(weight, 3)
    assert small.shape == (4, 3, 3, 3)
    flat = torch.ones(4, 3, 7, 7)
    assert torch.allclose(shrink_kernel(flat, 3).sum(dim=(2, 3)), flat.sum(dim=(2, 3)))


def test_build_model_from_config_roundtrip():
    model = build_model("small_cnn", head="linear", n_classes=3)
    rebuilt = build_model_from_config(model.config)
    assert rebuilt.config == model.config
    rebuilt.load_state_dict(model.state_dict())  # same architecture, strict
    with pytest.raises(QkitError, match="unknown model config keys"):
        build_model_from_config({**model.config, "dropout": 0.5})


def test_quantum_head_gradients_reach_prenet_and_circuit(images):
    torch.manual_seed(0)
    model = build_model("small_cnn", head="quantum", n_qubits=4, depth=1)
    assert isinstance(model.head, QuantumHead)
    angles = model.head.encode(model.backbone(images))
    assert angles.abs().max() <= model.head.input_scale + 1e-6
    loss = nn.functional.cross_entropy(model(images), torch.tensor([0, 1]))
    loss.backward()
    for name in ("pre", "quantum", "post"):
        grads = [p.grad for p in getattr(model.head, name).parameters()]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads), name
    assert model.head.quantum.weight.grad.abs().sum() > 0
    assert model.head.pre.weight.grad.abs().sum() > 0
    assert model.backbone.features[0].weight.grad.abs().sum() > 0


def test_quantum_head_angles_stay_out_of_tanh_saturation():
    """Large or drifting backbone features must not pin every circuit angle to the rails."""
    torch.manual_seed(0)
    head = QuantumHead(in_features=64, n_classes=2)
    features = torch.randn(32, 64) * 50 + 20  # far larger than the pre-net was initialised for
    angles = head.encode(features) / head.input_scale  # tanh outputs in [-1, 1]
    saturated = (angles.abs() > 0.99).float().mean().item()
    assert saturated < 0.1
    assert angles.std(0).min().item() > 0.3  # inputs still vary across images
