"""Shared fixtures: where the real MedMNIST data lives.

Tests read the genuine BreastMNIST file through the same loader users use. CI points
QKIT_DATA_DIR at ../shared/data; by default we look there relative to the repository.
"""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = Path(os.environ.get("QKIT_DATA_DIR", REPO.parent / "shared" / "data"))
    if not (root / "breastmnist.npz").is_file():
        message = f"breastmnist.npz not found under {root} (set QKIT_DATA_DIR)"
        if os.environ.get("CI"):  # CI must exercise the real data, never skip past it
            pytest.fail(message)
        pytest.skip(message)
    return root
