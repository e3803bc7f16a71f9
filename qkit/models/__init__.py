"""Hybrid image classifiers: ``build_model(backbone, head, circuit, engine, ...)``.

A model is ``HybridModel(backbone, head)``: a registered backbone (``qkit.models.backbones``:
torchvision networks with their classifier removed, plus ``small_cnn``) maps images to
features; a registered head (``qkit.models.heads``: ``linear`` or ``quantum``) maps features
to logits. Pretrained weights: ``qkit.models.pretrained``. A run's network, a preset's
included, is rebuilt from its record by ``qkit.network`` (the presets build on this package).
"""

from qkit.models.backbones import SmallCNN, list_backbones, register_backbone, shrink_kernel
from qkit.models.heads import QuantumHead, list_heads, register_head
from qkit.models.hybrid import HybridModel, build_model, count_parameters, make_backbone
from qkit.models.pretrained import PRETRAINED_CHOICES, load_backbone_state

__all__ = [
    "HybridModel",
    "PRETRAINED_CHOICES",
    "QuantumHead",
    "SmallCNN",
    "build_model",
    "count_parameters",
    "list_backbones",
    "list_heads",
    "load_backbone_state",
    "make_backbone",
    "register_backbone",
    "register_head",
    "shrink_kernel",
]
