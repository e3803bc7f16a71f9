"""Class-activation maps of a hybrid model, computed by pytorch-grad-cam (PyPI ``grad-cam``).

The whole hybrid (backbone -> pre-net -> quantum layer -> post-net) is differentiated: the
statevector engine has autograd, so a map explains the hybrid's decision, not the backbone's
alone. The target layer is the backbone's last convolutional block, found the same way for
every backbone (``find_target_layer``): the outermost module whose output is the last spatial
feature map that a convolution contributed to, i.e. what global pooling then averages. A
hand-kept table per backbone would silently go stale when a backbone is registered.

For a binary problem the map explains the positive class's log-odds (logit positive − logit
other): that difference is what the softmax decides on, where a single logit also moves with
the other class. Multi-class maps explain the predicted class's logit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from qkit.errors import QkitError

# CLI name -> pytorch_grad_cam class name (gradient-free ones included: they work on any engine).
METHODS = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "hirescam": "HiResCAM",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
    "eigencam": "EigenCAM",
    "eigengradcam": "EigenGradCAM",
    "scorecam": "ScoreCAM",
}
LABELS = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAM++",
    "hirescam": "HiResCAM",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
    "eigencam": "EigenCAM",
    "eigengradcam": "EigenGradCAM",
    "scorecam": "ScoreCAM",
}


def parse_methods(text: str | list[str]) -> list[str]:
    """``"gradcam,gradcam++"`` -> validated, de-duplicated method names (QkitError if unknown)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names = list(dict.fromkeys(m.strip().lower() for m in items if m.strip()))
    if not names:
        raise QkitError(f"--method needs at least one method; choose from: {', '.join(METHODS)}")
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        raise QkitError(f"unknown method {unknown[0]!r}; choose from: {', '.join(METHODS)}")
    return names


@dataclass
class TargetLayer:
    name: str  # e.g. "backbone.layer4"
    module: Any  # torch.nn.Module
    shape: tuple  # [C, h, w] of its output for the probe image


def find_target_layer(model: Any, image: Any) -> TargetLayer:
    """The backbone's last convolutional block, found by one forward pass of ``image`` [3, H, W].

    Among modules that are or contain a 2-D convolution and output a 4-D map, the one whose
    forward *finished* last; ties (a block and the Sequential holding it return the same
    tensor) go to the outermost, which finishes later. QkitError if there is none.
    """
    import torch
    from torch import nn

    backbone = getattr(model, "backbone", None)
    if backbone is None:
        raise QkitError("the model has no backbone: class-activation maps need a convolutional backbone")
    has_conv = {m for m in backbone.modules() if any(isinstance(c, nn.Conv2d) for c in m.modules())}
    finished: list[tuple[nn.Module, tuple]] = []

    def hook(module, _inputs, output):
        if module in has_conv and isinstance(output, torch.Tensor) and output.dim() == 4:
            finished.append((module, tuple(output.shape[1:])))

    handles = [m.register_forward_hook(hook) for m in has_conv]
    try:
        with torch.no_grad():
            backbone(image[None])
    finally:
        for h in handles:
            h.remove()
    if not finished:
        raise QkitError(
            f"backbone {type(backbone).__name__} has no convolutional layer with a spatial output: "
            "class-activation maps need one"
        )
    module, shape = finished[-1]
    names = {m: n for n, m in backbone.named_modules()}
    return TargetLayer("backbone" + (f".{names[module]}" if names[module] else ""), module, shape)


class LogOdds:
    """pytorch-grad-cam target: logit[c] − logit[other] of a two-class output."""

    def __init__(self, positive: int):
        self.positive = positive

    def __call__(self, output):
        return output[..., self.positive] - output[..., 1 - self.positive]


def targets_for(logits: Any, positive_class: int | None) -> tuple[list, int | None]:
    """One target per image, and the class every map explains (None: each image's predicted class)."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if positive_class is not None and logits.shape[1] == 2:
        return [LogOdds(positive_class) for _ in range(len(logits))], positive_class
    return [ClassifierOutputTarget(int(c)) for c in logits.argmax(1).tolist()], None


def compute_maps(
    model: Any,
    images: Any,
    methods: list[str],
    positive_class: int | None,
    layer: TargetLayer | None = None,
    batch_size: int = 32,
) -> dict:
    """Maps ``{method: float32 [N, H, W] in [0, 1]}`` for ``images`` [N, 3, H, W], plus the probabilities.

    Returns ``{"maps", "probs" [N, C], "layer", "explained_class"}``. The model is put in eval
    mode; a frozen backbone is differentiated through its input (its weights need no gradient).
    """
    import pytorch_grad_cam
    import torch

    if len(images) == 0:
        raise QkitError("no images to explain")
    model.eval()
    layer = layer or find_target_layer(model, images[0])
    with torch.no_grad():
        logits = model(images)
    targets, explained = targets_for(logits, positive_class)
    frozen = not all(p.requires_grad for p in model.parameters())
    maps = {}
    for name in methods:
        cam_class = getattr(pytorch_grad_cam, METHODS[name])
        with cam_class(model=model, target_layers=[layer.module]) as cam:
            cam.compute_input_gradient = frozen  # BaseCAM's switch; subclasses do not forward it
            if hasattr(cam, "batch_size"):
                cam.batch_size = batch_size  # ScoreCAM: masked images per forward pass
            parts = [
                cam(input_tensor=images[i : i + batch_size], targets=targets[i : i + batch_size])
                for i in range(0, len(images), batch_size)
            ]
        maps[name] = np.nan_to_num(np.concatenate(parts).astype(np.float32))
    probs = torch.softmax(logits.float(), dim=1).numpy()
    return {"maps": maps, "probs": probs, "layer": layer, "explained_class": explained}
