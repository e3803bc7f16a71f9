"""``DataSpec`` (what to load and how), the constants every data module shares, and the
up-front validation that turns a bad option into one ``QkitError`` line before any file is read.

The option values a run may give (balance, normalize, sizes, the vertical-flip default) are
declared in ``qkit.option_values`` and re-exported by ``qkit.config``, below this package;
they are imported from there, never the other way round.
"""

from __future__ import annotations

import numbers
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import medmnist

from qkit.config import BALANCE, NORMALIZE, SIZES, EnvConfig, TrainConfig
from qkit.errors import QkitError

MEDMNIST_2D: list[str] = [
    flag
    for flag, info in medmnist.INFO.items()
    if issubclass(getattr(medmnist, info["python_class"]), medmnist.dataset.MedMNIST2D)
]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ROTATION_DEGREES = 15.0  # "small" random rotations for training augmentation
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)  # image-folder train/val/test
PRERESIZE_BUDGET = 1 << 30  # resize whole splits up front when they fit in 1 GiB, else per item
_MAX_SEED = 2**32 - 1  # numpy / scikit-learn random_state range


@dataclass
class DataSpec:
    """What data to load and how to prepare it (see the ``qkit.data`` docstring)."""

    dataset: str = "breastmnist"  # a MedMNIST 2D flag, or a path to an ImageFolder directory
    size: int = 28  # MedMNIST size: 28, 64, 128, 224
    data_dir: str | None = None  # root; else env QKIT_DATA_DIR; else medmnist's default root
    resize: int | None = None  # resize images to this many pixels (e.g. 224 for pretrained)
    classes: tuple[int, ...] | None = None  # keep only these labels, relabelled 0..k-1 in order
    balance: str = "none"  # none | undersample | oversample | weighted
    augment: bool = True  # random flips + rotations on the train split only
    vertical_flip: bool | None = None  # with augment; None: qkit.config.default_vertical_flip
    translate: float = 0.0  # with augment: random shifts up to this fraction of the side
    zoom: float = 0.0  # with augment: random zoom by up to this fraction
    normalize: str = "none"  # none | imagenet
    # binary only: an index into class_names or a class name; None: malignant for BreastMNIST,
    # label 1 for other MedMNIST sets, recognised from the class names for image folders
    positive_class: int | str | None = None
    download: bool = True
    seed: int = 0  # training seed: undersampling and oversampling draws
    # image folders only. Apart from ``seed`` so that runs with different training seeds are
    # scored on the same test images (MedMNIST has official splits and ignores it).
    split_seed: int = 0
    # image folders only: regex searched in each file's path relative to the folder; all images
    # with the same match (first capture group if any) stay in one split, e.g. one patient
    group_by: str | None = None

    @classmethod
    def from_config(cls, cfg: TrainConfig, env: EnvConfig | None = None) -> DataSpec:
        """The data a run's config asks for (``qkit.resolve.resolve_config(cfg)`` first), found where ``env`` says."""
        d, env = cfg.data, env or EnvConfig()
        return cls(
            dataset=d.dataset,
            size=d.size,
            data_dir=env.data_dir,
            resize=d.resize,
            classes=d.classes,
            balance=d.balance,
            augment=d.augment,
            vertical_flip=d.vertical_flip,
            translate=d.translate,
            zoom=d.zoom,
            normalize=d.normalize,
            positive_class=d.positive_class,
            download=d.download,
            seed=cfg.run.seed,
            split_seed=d.split_seed,
            group_by=d.group_by,
        )


def validate_spec(spec: DataSpec) -> DataSpec:
    """Check every option up front; returns a copy with ``classes`` as a tuple."""
    if spec.balance not in BALANCE:
        raise QkitError(f"unknown balance '{spec.balance}'; choose from {', '.join(BALANCE)}")
    if spec.normalize not in NORMALIZE:
        raise QkitError(f"unknown normalize '{spec.normalize}'; choose from {', '.join(NORMALIZE)}")
    if spec.size not in SIZES:
        raise QkitError(f"size must be one of {', '.join(map(str, SIZES))}, got {spec.size}")
    if spec.resize is not None and (not isinstance(spec.resize, int) or spec.resize < 8):
        raise QkitError(f"resize must be an integer >= 8 pixels, got {spec.resize!r}")
    # seed only seeds numpy's Generator (any integer >= 0); split_seed is also scikit-learn's
    # random_state, which stops at 2**32 - 1
    for name, top in (("seed", None), ("split_seed", _MAX_SEED)):
        value = getattr(spec, name)
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Integral)
            or value < 0
            or (top is not None and value > top)
        ):
            raise QkitError(f"{name} must be an integer >= 0{f' and <= {top}' if top else ''}, got {value!r}")
    pos = spec.positive_class
    if pos is not None and (
        isinstance(pos, bool) or not isinstance(pos, (int, str)) or (isinstance(pos, int) and pos < 0) or pos == ""
    ):
        raise QkitError(f"positive_class must be a class index >= 0 or a class name, got {pos!r}")
    if spec.group_by is not None:
        compile_group_regex(spec.group_by)
    if spec.classes is not None:
        classes = tuple(spec.classes)
        if (
            len(classes) < 2
            or len(set(classes)) != len(classes)
            or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in classes)
        ):
            raise QkitError(f"classes must be 2 or more distinct labels >= 0, got {spec.classes!r}")
        return replace(spec, classes=classes)
    return spec


def compile_group_regex(pattern: str) -> re.Pattern:
    """The ``group_by`` regex, or a one-line QkitError saying why it does not compile."""
    if not isinstance(pattern, str) or not pattern:
        raise QkitError(f"group_by must be a non-empty regular expression, got {pattern!r}")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise QkitError(f"group_by '{pattern}' is not a valid regular expression: {exc}") from None


def dataset_kind(dataset: str) -> tuple[str, str]:
    """('medmnist', flag) or ('folder', path); a bare known flag wins over a same-named folder."""
    name = str(dataset).strip()
    looks_like_path = os.sep in name or "/" in name
    if name.lower() in MEDMNIST_2D and not looks_like_path:
        return "medmnist", name.lower()
    if Path(name).expanduser().is_dir():
        return "folder", str(Path(name).expanduser().resolve())
    if name.lower() in medmnist.INFO:
        raise QkitError(f"'{name}' is a MedMNIST 3D dataset; qkit handles 2D images only")
    raise QkitError(
        f"unknown dataset '{name}': neither a MedMNIST 2D flag ({', '.join(MEDMNIST_2D)}) nor an image-folder directory"
    )
