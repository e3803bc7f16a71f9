"""Datasets: MedMNIST 2D (through the ``medmnist`` package) or an image folder, in memory.

Every split is held as one uint8 tensor ``[N, C, H, W]`` (C = 1 for grayscale, 3 for RGB)
plus int labels, so ``__getitem__`` is a slice, an optional augmentation and one fused
multiply-add that converts to float, repeats gray to 3 channels and normalises.

- ``spec``: ``DataSpec``, shared constants, validation (the option values a run may give,
  and the vertical-flip default, are declared in ``qkit.option_values`` and read through
  ``qkit.config``).
- ``medmnist_files``: MedMNIST files, checked against medmnist's md5 sums.
- ``folder`` / ``splits``: image folders, split per image or per group (``group_by``), seeded
  by ``split_seed`` apart from the training ``seed``.
- ``positive``: which class of a binary task is positive.
- ``source``: ``check_source``, whether a run's recorded data is still what loads now.
- ``datasets`` / ``build``: the in-memory datasets and ``build_data``.
"""

from qkit.data.build import build_data
from qkit.data.datasets import DataBundle, ImageTensorDataset, describe
from qkit.data.medmnist_files import file_md5, resolve_data_dir
from qkit.data.positive import NEGATIVE_WORDS, POSITIVE_WORDS, recognise_positive
from qkit.data.source import check_source, source_differences
from qkit.data.spec import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MEDMNIST_2D,
    PRERESIZE_BUDGET,
    ROTATION_DEGREES,
    SPLIT_FRACTIONS,
    DataSpec,
)

__all__ = [
    "DataBundle",
    "DataSpec",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageTensorDataset",
    "MEDMNIST_2D",
    "NEGATIVE_WORDS",
    "POSITIVE_WORDS",
    "PRERESIZE_BUDGET",
    "ROTATION_DEGREES",
    "SPLIT_FRACTIONS",
    "build_data",
    "check_source",
    "describe",
    "file_md5",
    "recognise_positive",
    "resolve_data_dir",
    "source_differences",
]
