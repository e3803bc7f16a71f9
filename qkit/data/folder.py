"""Image folders (one sub-folder of images per class, torchvision's ImageFolder layout).

Every image is read once, converted to RGB and resized to ``side`` px, so the splits live in
memory like MedMNIST's. The ``source`` record fingerprints the folder so that a run can later
tell whether it is still looking at the same images (``qkit.data.check_source``).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import torch

from qkit.data.spec import SPLIT_FRACTIONS
from qkit.data.splits import group_keys, grouped_split, image_split
from qkit.errors import QkitError


def load_image_folder(root: Path, side: int, split_seed: int, group_by: str | None):
    """ImageFolder layout -> RGB uint8 at ``side`` px, split 70/15/15 (per image, stratified;
    or per ``group_by`` group). Returns ``({split: (x, y, ids)}, class_names, source)``."""
    from PIL import Image
    from torchvision.datasets import ImageFolder

    try:
        folder = ImageFolder(str(root))
    except (FileNotFoundError, OSError) as exc:
        raise QkitError(
            f"{root} is not an image folder (one sub-folder of images per class): {str(exc).splitlines()[0]}"
        ) from None
    names = list(folder.classes)
    rel = [Path(f).relative_to(root).as_posix() for f, _ in folder.samples]
    labels = np.asarray(folder.targets, dtype=np.int64)
    # group keys before the (slow) image decoding: a regex that misses a file fails at once
    keys = group_keys(rel, group_by) if group_by is not None else None

    images = np.empty((len(folder.samples), side, side, 3), dtype=np.uint8)
    # fingerprint: names and sizes, as recorded by every earlier qkit version (so their runs
    # stay checkable); content_md5 also catches an image edited in place at the same size
    fingerprint = hashlib.md5(usedforsecurity=False)
    content = hashlib.md5(usedforsecurity=False)
    for i, (file, _) in enumerate(folder.samples):
        try:
            blob = Path(file).read_bytes()
            with Image.open(io.BytesIO(blob)) as img:
                images[i] = np.asarray(img.convert("RGB").resize((side, side), Image.BILINEAR))
        except OSError as exc:
            raise QkitError(f"cannot read image {file}: {exc}") from None
        fingerprint.update(f"{rel[i]}\0{len(blob)}\n".encode())
        content.update(f"{rel[i]}\0{len(blob)}\0".encode())
        content.update(blob)

    if keys is None:
        train_idx, val_idx, test_idx = image_split(labels, split_seed, root)
    else:
        train_idx, val_idx, test_idx = grouped_split(labels, keys, names, rel, group_by, split_seed)
    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    y = torch.from_numpy(labels)
    splits = {}
    for split, sel in (("train", train_idx), ("val", val_idx), ("test", test_idx)):
        sel = np.sort(sel)
        splits[split] = (x[sel].contiguous(), y[sel], [rel[i] for i in sel])
    source = {
        "dataset": "imagefolder",
        "path": str(root),
        "size": side,
        "n_images": len(y),
        "fingerprint": fingerprint.hexdigest(),
        "content_md5": content.hexdigest(),
        "split_seed": split_seed,
        "split": list(SPLIT_FRACTIONS),
        "group_by": group_by,
        "n_groups": len(set(keys)) if keys is not None else None,
    }
    return splits, names, source
