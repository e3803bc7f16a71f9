"""Reproducibility: seeding, RNG snapshots, device choice and seeded data loaders.

Why a resumed run ends bit-for-bit like an uninterrupted one: at the start of every epoch the
training loop calls ``seed_everything(epoch_seed(seed, epoch))`` and reseeds the shuffling
generator of ``make_loader`` with the same value. Dropout, augmentation and sample order of an
epoch are then a pure function of ``(seed, epoch)``, not of however many random numbers earlier
epochs happened to draw, so a run continued from a checkpoint can simply redo the unfinished
epoch. The global generator states are also saved with every checkpoint (``rng_state``) and
restored on resume (``set_rng_state``), so whatever runs after the last finished epoch (the
final evaluation) starts from the same state too. DataLoader workers derive their seeds from
the loader's generator (``_seed_worker``), which keeps ``num_workers > 0`` reproducible.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from qkit.errors import QkitError


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed seed for one epoch, a pure function of (seed, epoch)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; derive NumPy/Python from it.
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def rng_state() -> dict:
    """Python, NumPy, torch and CUDA generator states, as tensors/plain values that ``torch.save`` keeps."""
    name, key, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "torch": torch.get_rng_state(),
        "numpy": [name, torch.from_numpy(key.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    """Restore what ``rng_state`` captured."""
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    name, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resolve_device(device: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; asking for CUDA without it is a QkitError."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise QkitError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    return torch.device(device)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    num_workers: int = 0,
    generator: torch.Generator | None = None,
) -> DataLoader:
    """A DataLoader whose order and worker seeds depend only on ``generator``."""
    # Training drops a short final batch: its BatchNorm statistics would come from a handful of
    # images (BreastMNIST: 546 = 17 * 32 + 2) and one sample breaks BatchNorm outright.
    drop_last = shuffle and (len(dataset) > batch_size or len(dataset) == 1)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        generator=generator,
        worker_init_fn=_seed_worker if num_workers else None,
        drop_last=drop_last,
    )
