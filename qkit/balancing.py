"""Class balancing of a training split (``--balance``) and inverse-frequency loss weights.

``undersample`` keeps a seeded random subset of every class at the minority size;
``oversample`` adds copies of minority images transformed by the square's symmetries
(rotations by 90/180/270 degrees, then flips) up to the majority size; ``weighted`` leaves
the images alone and returns loss weights ``n / (k * n_c)``.
"""

from __future__ import annotations

import numpy as np
import torch

from qkit.errors import QkitError


# the 7 non-identity symmetries of a square, in the order oversampling uses them
_SYMMETRIES = (
    ("rot90", lambda t: torch.rot90(t, 1, (-2, -1))),
    ("rot180", lambda t: torch.rot90(t, 2, (-2, -1))),
    ("rot270", lambda t: torch.rot90(t, 3, (-2, -1))),
    ("hflip", lambda t: t.flip(-1)),
    ("vflip", lambda t: t.flip(-2)),
    ("transpose", lambda t: t.transpose(-2, -1)),
    ("antitranspose", lambda t: torch.rot90(t.flip(-1), 1, (-2, -1))),
)


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
        keep = np.concatenate([rng.choice(np.flatnonzero(y.numpy() == c), n_min, replace=False)
                               for c in range(k)])
        keep = np.sort(keep)
        return (x[keep], y[keep], [ids[i] for i in keep]), None
    return _oversample(x, y, ids, counts, rng), None


def _oversample(x, y, ids, counts, rng):
    """Add symmetric copies (rot 90/180/270, then flips) of minority images up to the majority."""
    n_max = int(counts.max())
    xs, ys, new_ids = [x], [y], list(ids)
    for c, n_c in enumerate(counts.tolist()):
        members = np.flatnonzero(y.numpy() == c)
        deficit, step = n_max - n_c, 0
        while deficit > 0:
            name, op = _SYMMETRIES[step % len(_SYMMETRIES)]
            take = members if deficit >= len(members) else np.sort(
                rng.choice(members, deficit, replace=False))
            xs.append(op(x[take]))
            ys.append(torch.full((len(take),), c, dtype=torch.int64))
            new_ids += [f"{ids[i]}#{name}" for i in take]
            deficit -= len(take)
            step += 1
    return torch.cat(xs).contiguous(), torch.cat(ys), new_ids
