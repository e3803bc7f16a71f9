"""Class balancing of a training split (``--balance``) and inverse-frequency loss weights.

``undersample`` keeps a seeded random subset of every class at the minority size;
``oversample`` adds exact copies of minority images up to the majority size (every image once
per round, a seeded random subset in the last round), ids ``<id>#copy<r>``; ``weighted``
leaves the images alone and returns loss weights ``n / (k * n_c)``.

Oversampling copies exactly, never rotated or flipped: transforming only the minority's copies
makes the transform itself a label cue (on ultrasound, with the probe at the top, a rotated
image would mostly be malignant). The training augmentation, applied alike to every image,
is what varies the copies.
"""

from __future__ import annotations

import numpy as np
import torch

from qkit.errors import QkitError


def _class_counts(labels: torch.Tensor, names: list[str]) -> torch.Tensor:
    """Images per class; a QkitError when a class has none (nothing to balance or weight)."""
    counts = torch.bincount(labels, minlength=len(names))
    empty = [names[c] for c in range(len(names)) if counts[c] == 0]
    if empty:
        raise QkitError(f"no training images for class(es) {', '.join(empty)}: cannot balance or weight them")
    return counts


def class_weights(labels: torch.Tensor, names: list[str]) -> torch.Tensor:
    """Inverse-frequency loss weights ``n / (k * n_c)`` (float32), as for ``balance="weighted"``."""
    return len(labels) / (len(names) * _class_counts(labels, names).to(torch.float32))


def balance(x, y, ids, names: list[str], mode: str, seed: int):
    """Balance a split as ``mode`` says; returns ((x, y, ids), class_weights or None)."""
    if mode == "none":
        return (x, y, ids), None
    if mode == "weighted":
        return (x, y, ids), class_weights(y, names)
    counts, k = _class_counts(y, names), len(names)
    rng = np.random.default_rng(seed)
    if mode == "undersample":
        n_min = int(counts.min())
        keep = np.concatenate([rng.choice(np.flatnonzero(y.numpy() == c), n_min, replace=False) for c in range(k)])
        keep = np.sort(keep)
        return (x[keep], y[keep], [ids[i] for i in keep]), None
    return _oversample(x, y, ids, counts, rng), None


def _oversample(x, y, ids, counts, rng):
    """Add exact copies of minority images up to the majority: whole rounds over the class,
    then a seeded random subset; copies are appended after the originals."""
    n_max = int(counts.max())
    labels = y.numpy()
    take_all = []
    new_ids = list(ids)
    for c, n_c in enumerate(counts.tolist()):
        members = np.flatnonzero(labels == c)
        deficit, copy_round = n_max - n_c, 1
        while deficit > 0:
            take = members if deficit >= len(members) else np.sort(rng.choice(members, deficit, replace=False))
            take_all.append(take)
            new_ids += [f"{ids[i]}#copy{copy_round}" for i in take]
            deficit -= len(take)
            copy_round += 1
    if not take_all:
        return x, y, list(ids)
    extra = torch.from_numpy(np.concatenate(take_all))
    return torch.cat([x, x[extra]]).contiguous(), torch.cat([y, y[extra]]), new_ids
