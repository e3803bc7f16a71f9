"""Small generated image folders for the tests: a module beside ``conftest.py``, so any test
file imports it (``from image_folders import folder``) however pytest is pointed at it."""

import numpy as np
from PIL import Image


def write_images(root, files, rng, ext="png"):
    """Random images (mixed sizes and modes, like a user's export) at ``root/<file>.<ext>``."""
    for i, rel in enumerate(files):
        path = root / f"{rel}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        side = int(rng.integers(20, 40))
        arr = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(arr).convert("L" if i % 2 else "RGB").save(path)
    return root


def folder(tmp_path, classes: dict, name="folder", ext="png"):
    """One sub-folder per class with ``n`` images each: {class: n}."""
    files = [f"{c}/{i:03d}" for c, n in classes.items() for i in range(n)]
    return write_images(tmp_path / name, files, np.random.default_rng(0), ext)
