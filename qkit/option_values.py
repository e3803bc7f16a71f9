"""The values ``qkit train``'s options take: choices, built-in names, and checks of free-form values.

The choice tuples (``BALANCE``, ``SCHEDULERS``, ``SIZES``, ...), torch-free copies of the
registries' names (``BACKBONES``, ``CIRCUITS``, ``MEDMNIST_2D``), the name predicates the
layers above share (``is_medmnist``, ``is_path``, ``default_vertical_flip``), and the
``check=`` functions of the options whose values are not a fixed list (a dataset name or
folder, a circuit name or file, a device, labels, a regex). ``qkit.config`` declares the
options with them and re-exports the public names; like it, this imports nothing heavy.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

BALANCE = ("none", "undersample", "oversample", "weighted")
NORMALIZE = ("none", "imagenet")
SCHEDULERS = ("cosine", "step", "none")
SCHEDULES = ("scaled", "fixed")
MONITORS = ("auc", "g_mean", "balanced_accuracy", "loss")
SIZES = (28, 64, 128, 224)
HEADS = ("quantum", "linear")
# Static copies of registries that live behind torch/Qiskit imports, so that a usage error
# answers in milliseconds; tests/test_config.py checks each against its registry.
BACKBONES = (
    "resnet18",
    "resnet34",
    "resnet50",
    "efficientnet_b0",
    "mobilenet_v3_small",
    "small_cnn",
    "small_cnn4",
    "efficientnet_b5",
    "resnext50_32x4d",
    "hqcnn_cnn",
    "hqnn_cnn",
)
CIRCUITS = ("basic_entangler", "dressed", "efficient_su2", "quanv", "real_amplitudes", "strongly_entangling")
MEDMNIST_2D = (
    "pathmnist",
    "chestmnist",
    "dermamnist",
    "octmnist",
    "pneumoniamnist",
    "retinamnist",
    "breastmnist",
    "bloodmnist",
    "tissuemnist",
    "organamnist",
    "organcmnist",
    "organsmnist",
)
# Vertical flips only where images have no up and down: microscopy and dermatoscopy. In
# ultrasound the probe is at the top and posterior acoustic shadowing (a malignancy sign)
# lies below a lesion; X-ray, CT and OCT images have an anatomical up. On BreastMNIST the
# default run reached test AUC 0.875 +- 0.011 with vertical flips, 0.887 +- 0.016 without
# (3 seeds; see README). The default of --vertical-flip, so declared here; qkit.data uses it too.
ORIENTATION_FREE = ("pathmnist", "dermamnist", "bloodmnist", "tissuemnist")
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?|mps")


def default_vertical_flip(dataset: str) -> bool:
    """Whether training augmentation flips ``dataset``'s images vertically by default."""
    return dataset.lower() in ORIENTATION_FREE


def is_medmnist(dataset: str) -> bool:
    """Whether a ``--dataset`` value names a MedMNIST 2D set (rather than an image folder)."""
    return dataset.lower() in MEDMNIST_2D and not is_path(dataset)


def is_path(text: str) -> bool:
    """Whether a ``--dataset`` or ``--circuit`` value is a path rather than a built-in name."""
    return "/" in text or os.sep in text or text.startswith(".")


def check_dataset(value: str) -> str | None:
    if is_medmnist(value):
        return None
    if Path(value).expanduser().is_dir():
        return None
    if is_path(value) or Path(value).expanduser().exists():
        return f"dataset folder {value} does not exist (or is not a folder)"
    return f"unknown dataset {value!r}: neither a MedMNIST 2D name ({', '.join(MEDMNIST_2D)}) nor an image folder"


def check_classes(value: Any) -> str | None:
    ok = (
        isinstance(value, (tuple, list))
        and len(value) >= 2
        and len(set(value)) == len(value)
        and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in value)
    )
    return None if ok else f"give 2 or more distinct labels >= 0, e.g. 0,1 (got {value!r})"


def check_positive(value: Any) -> str | None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, str))
        or value == ""
        or (isinstance(value, int) and value < 0)
    ):
        return f"give a class index >= 0 or a class name (got {value!r})"
    return None


def check_regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"{value!r} is not a valid regular expression ({exc})"
    return None


def check_circuit(value: str) -> str | None:
    if value in CIRCUITS:
        return None
    if value.endswith(".qasm") or is_path(value):
        return None if Path(value).expanduser().is_file() else f"circuit file {value} does not exist"
    return f"unknown circuit {value!r}; choose from: {', '.join(CIRCUITS)}, or give a path to an OpenQASM 3 file"


def check_device(value: str) -> str | None:
    return None if _DEVICE.fullmatch(str(value)) else f"use auto, cpu, cuda or cuda:N (got {value!r})"
