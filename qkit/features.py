"""Frozen-backbone features, computed once per split and shared between runs through a folder.

With ``--freeze-backbone`` (the ``qtl`` preset) a run's epochs only train the head, so the
backbone's output for each split is computed once. A sweep trains many runs on the same splits
with the same frozen backbone: the features are the same, and ``qkit compare`` shares them
through ``<sweep>/features/`` (``--feature-cache DIR`` for any run).

The key is a hash of everything the features depend on, read from the objects themselves
rather than from options: the exact input tensors of the split in loader order (so resizing,
normalisation, class subsets and a seed-dependent balanced training set all change it), the
backbone's weights and buffers, the batch size, the torch thread count, the device type and
the torch version. A hit therefore returns bit for bit what the run would have computed, and
a run's metrics do not depend on whether another run filled the cache first. On a miss the
loader is read twice (once to hash, once to compute): reading images costs little next to a
backbone's forward pass, and inputs are never all held in memory.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from qkit.epoch import extract_features

KEY_VERSION = "1"


def cached_features(
    backbone: nn.Module, loader: DataLoader, device: torch.device | str, folder: str | Path | None
) -> TensorDataset:
    """``extract_features(backbone, loader, device)``, read from / written to ``folder`` when given."""
    if folder is None:
        return extract_features(backbone, loader, device)
    path = Path(folder) / f"{feature_key(backbone, loader, device)}.pt"
    if path.is_file():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        return TensorDataset(saved["features"], saved["labels"])
    features = extract_features(backbone, loader, device)
    _atomic_save({"features": features.tensors[0], "labels": features.tensors[1]}, path)
    return features


def feature_key(backbone: nn.Module, loader: DataLoader, device: torch.device | str) -> str:
    """Hex digest naming the features of ``loader``'s inputs through ``backbone`` on ``device``."""
    digest = hashlib.sha256()
    meta = (KEY_VERSION, torch.__version__, torch.device(device).type, torch.get_num_threads(), loader.batch_size)
    digest.update(repr(meta).encode())
    for name, tensor in backbone.state_dict().items():
        digest.update(name.encode())
        _update(digest, tensor)
    for x, y in loader:
        _update(digest, x)
        _update(digest, y)
    return digest.hexdigest()[:40]


def _update(digest, tensor: torch.Tensor) -> None:
    tensor = tensor.detach().cpu().contiguous()
    digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())


def _atomic_save(obj: dict, path: Path) -> None:
    """Write then rename: runs in other processes never read half a file (same content if both write)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
