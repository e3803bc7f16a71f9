"""Pretrained backbone weights: ``none``, ``imagenet`` or a state dict qkit saved.

``imagenet`` means torchvision's default ImageNet-1k weights of that network
(``<Weights>.DEFAULT``, downloaded by torchvision into its cache, $TORCH_HOME). A path is
either a whole ``HybridModel`` state dict (its ``backbone.*`` entries are loaded, the head is
ignored), a training checkpoint wrapping one, or a backbone-only state dict. Keys and shapes
must match the backbone exactly. Files load with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qkit.errors import QkitError

PRETRAINED_CHOICES = ("none", "imagenet")


def resolve_pretrained(pretrained: str | Path) -> Path | None:
    """Validate ``pretrained``: None for "none"/"imagenet", else the existing file's Path."""
    if str(pretrained) in PRETRAINED_CHOICES:
        return None
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise QkitError(f"pretrained must be 'none', 'imagenet' or a path to a qkit state dict; no such file: {path}")
    return path


def _extract_backbone_state(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """Backbone entries of a HybridModel state dict, or the whole dict if it is backbone-only."""
    if isinstance(obj, Mapping) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        # A training checkpoint wraps the state dict next to optimizer state etc.
        for key in ("model", "state_dict", "model_state_dict", "model_state"):
            if isinstance(obj.get(key), Mapping):
                return _extract_backbone_state(obj[key], path)
        raise QkitError(f"{path} is not a state dict (a mapping of names to tensors)")
    if not isinstance(obj, Mapping):
        raise QkitError(f"{path} is not a state dict (found {type(obj).__name__})")
    if any(k.startswith("backbone.") for k in obj):
        return {k[len("backbone.") :]: v for k, v in obj.items() if k.startswith("backbone.")}
    return dict(obj)


def load_backbone_state(net: nn.Module, path: str | Path, backbone: str = "backbone") -> None:
    """Load a qkit-saved state dict into ``net`` with strict key and shape matching."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise QkitError(f"pretrained state dict not found: {path}") from None
    except Exception as exc:  # pickle, zip and unsafe-type errors all mean "not a usable state dict"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise QkitError(f"cannot read state dict {path}: {first}") from None
    state = _extract_backbone_state(obj, path)
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or mismatched:

        def sample(keys: list[str]) -> str:
            return f"{len(keys)} (e.g. {keys[0]})" if keys else "0"

        raise QkitError(
            f"state dict {path} does not fit backbone {backbone!r}: missing keys {sample(missing)}, "
            f"unexpected keys {sample(unexpected)}, shape mismatches {sample(mismatched)}; "
            "was it saved with another backbone or small_input setting?"
        )
    net.load_state_dict(state, strict=True)
