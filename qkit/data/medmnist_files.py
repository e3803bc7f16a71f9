"""MedMNIST 2D through the ``medmnist`` package, official splits only.

Named ``medmnist_files`` rather than ``medmnist`` so that nothing inside ``qkit.data`` can
shadow the package. Files are checked against the md5 sums medmnist publishes before use: a
corrupt or different file is an error, never a silently different dataset.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import medmnist
import numpy as np
import torch

from qkit.errors import QkitError

_MD5_CACHE: dict[tuple[str, int, int], str] = {}


def resolve_data_dir(data_dir: str | None) -> Path:
    """The data root: ``data_dir``, else env ``QKIT_DATA_DIR``, else medmnist's default root."""
    chosen = data_dir or os.environ.get("QKIT_DATA_DIR") or medmnist.info.DEFAULT_ROOT
    if not chosen:
        raise QkitError("no data directory: pass data_dir or set QKIT_DATA_DIR")
    return Path(chosen).expanduser()


def file_md5(path: Path) -> str:
    """md5 of a file, cached per (path, mtime, size) so repeated builds skip re-hashing."""
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _MD5_CACHE:
        with open(path, "rb") as fh:
            digest = hashlib.file_digest(fh, lambda: hashlib.md5(usedforsecurity=False))
        _MD5_CACHE[key] = digest.hexdigest()
    return _MD5_CACHE[key]


def native_positive(flag: str, n_classes: int) -> int | None:
    """Original label of the positive class of a binary MedMNIST set (None if multi-class)."""
    if n_classes != 2:
        return None
    return 0 if flag == "breastmnist" else 1  # breastmnist: 0 = malignant, 1 = normal, benign


def load_medmnist(flag: str, size: int, data_dir: str | None, download: bool):
    """The official train/val/test splits as ``{split: (uint8 [N,C,H,W], labels, ids)}``,
    the class names and the ``source`` record (file, md5, url, medmnist version)."""
    info = medmnist.INFO[flag]
    if "multi-label" in info["task"]:
        raise QkitError(
            f"{flag} is a multi-label task ({info['task']}); qkit trains single-label classifiers: pick another dataset"
        )
    suffix = "" if size == 28 else f"_{size}"
    root = resolve_data_dir(data_dir)
    path = root / f"{flag}{suffix}.npz"
    url, expected = info[f"url{suffix}"], info[f"MD5{suffix}"]
    cls = getattr(medmnist, info["python_class"])
    if not path.is_file():
        _fetch(cls, path, url, size, download)
    md5 = file_md5(path)
    if md5 != expected:
        raise QkitError(
            f"{path} has md5 {md5} but medmnist {medmnist.__version__} expects "
            f"{expected}: corrupt, truncated or a different version; replace it "
            f"with {url}"
        )
    splits = {}
    for split in ("train", "val", "test"):
        try:
            ds = cls(split=split, root=str(root), size=size, download=False)
            images, labels = np.asarray(ds.imgs), np.asarray(ds.labels)
        except Exception as exc:  # a bad zip can still surface here (e.g. md5 collision, I/O)
            raise QkitError(
                f"cannot read {path}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            ) from None
        if len(images) != info["n_samples"][split]:
            raise QkitError(f"{path}: {split} has {len(images)} images, expected {info['n_samples'][split]}")
        x = torch.from_numpy(images)
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()
        y = torch.from_numpy(labels.reshape(-1).astype(np.int64))
        splits[split] = (x, y, [f"{split}/{i}" for i in range(len(y))])
    names = [info["label"][str(i)] for i in range(len(info["label"]))]
    source = {
        "dataset": flag,
        "size": size,
        "file": str(path),
        "md5": md5,
        "url": url,
        "task": info["task"],
        "medmnist": medmnist.__version__,
        "split": "official",
    }
    return splits, names, source


def _fetch(cls, path: Path, url: str, size: int, download: bool) -> None:
    """Download with medmnist's own downloader, or explain in one line where to put the file."""
    hint = f"{path.name} not found in {path.parent}: download it from {url} into that directory"
    if not download:
        raise QkitError(hint + " (download disabled)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        cls(split="test", root=str(path.parent), size=size, download=True)
    except Exception:  # medmnist wraps every failure (offline, HTTP, md5) in RuntimeError
        raise QkitError(hint + " (automatic download failed)") from None
    if not path.is_file():
        raise QkitError(hint + " (automatic download produced no file)")
