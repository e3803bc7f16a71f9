"""``build_data``: load, split, subset, resize, balance and wrap, as a ``DataSpec`` says."""

from __future__ import annotations

from pathlib import Path

from qkit.balancing import balance
from qkit.config import default_vertical_flip
from qkit.data.datasets import DataBundle, ImageTensorDataset, maybe_preresize, select_classes
from qkit.data.folder import load_image_folder
from qkit.data.medmnist_files import load_medmnist, native_positive
from qkit.data.positive import resolve_positive
from qkit.data.spec import DataSpec, dataset_kind, validate_spec
from qkit.errors import QkitError


def build_data(spec: DataSpec) -> DataBundle:
    """Load, subset, resize, balance and wrap the three splits described by ``spec``."""
    spec = validate_spec(spec)
    kind, target = dataset_kind(spec.dataset)
    if kind == "medmnist":
        if spec.group_by is not None:
            raise QkitError(f"group_by applies to image folders only; {target} has official splits")
        splits, names, source = load_medmnist(target, spec.size, spec.data_dir, spec.download)
    else:
        splits, names, source = load_image_folder(
            Path(target), spec.resize or spec.size, spec.split_seed, spec.group_by
        )
    default_pos = _default_positive(kind, target, len(names), spec.classes)
    if spec.classes is not None:
        splits, names = select_classes(splits, names, spec.classes)
    # image folders name their classes freely: read the names rather than trust their order
    positive = resolve_positive(spec.positive_class, names, default_pos, recognise=kind == "folder")
    if spec.resize:
        splits = {s: (maybe_preresize(x, spec.resize), y, i) for s, (x, y, i) in splits.items()}
    splits["train"], weights = balance(*splits["train"], names, spec.balance, spec.seed)
    flip = default_vertical_flip(spec.dataset) if spec.vertical_flip is None else spec.vertical_flip
    datasets = {
        s: ImageTensorDataset(
            x,
            y,
            ids,
            resize=spec.resize,
            normalize=spec.normalize,
            augment=spec.augment and s == "train",
            vertical_flip=flip,
            translate=spec.translate,
            zoom=spec.zoom,
        )
        for s, (x, y, ids) in splits.items()
    }
    source.update(balance=spec.balance, classes=list(spec.classes) if spec.classes else None)
    return DataBundle(datasets["train"], datasets["val"], datasets["test"], names, positive, weights, source)


def _default_positive(kind: str, target: str, n_classes: int, classes: tuple[int, ...] | None) -> int | None:
    """The positive index (after ``classes``) when none is asked for and names do not tell.

    MedMNIST: the native positive (breastmnist: malignant = label 0; other binary sets label 1)
    wherever ``classes`` moves it, else the second class listed. Image folders: the second of
    two classes picked from a larger folder by ``classes`` (the user chose that order); a
    binary folder has none, since its order is only the alphabet.
    """
    if kind == "medmnist":
        native = native_positive(target, n_classes)
        if classes is None:
            return native if native is not None else 1
        return classes.index(native) if native in classes else 1
    return 1 if classes is not None and n_classes > 2 else None
