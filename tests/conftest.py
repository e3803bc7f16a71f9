"""Shared fixtures: where the real MedMNIST data lives.

Tests read the genuine BreastMNIST file through the same loader users use. The data root is
the one qkit itself resolves ($QKIT_DATA_DIR, else medmnist's default root), with
``../shared/data`` beside the repository as the fallback this project's machines use. A
missing file fails the tests that need it: they are never skipped past.

The thread count is left to torch (one per core). One thread per test process was tried: it
helped on a machine busy with other work, but on an idle 2-core machine the heavy tests
(tests/explain, tests/models, tests/test_train.py) took 151 s with one thread against 114 s
with two, and CI runs on an idle machine.
"""

import os
import shutil
from pathlib import Path

import pytest

from qkit.data import resolve_data_dir

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_root() -> Path:
    candidates = [resolve_data_dir(None)]
    if not os.environ.get("QKIT_DATA_DIR"):
        candidates.append(REPO.parent / "shared" / "data")
    for root in candidates:
        if (root / "breastmnist.npz").is_file():
            return root
    pytest.fail(
        f"breastmnist.npz not found under {' or '.join(map(str, candidates))}: set QKIT_DATA_DIR "
        "to its folder (online, `qkit train` downloads it to medmnist's default root)"
    )


@pytest.fixture(scope="session")
def quantum_run(tmp_path_factory, data_root) -> Path:
    """A small trained run (small_cnn, quantum head, 1 epoch), shared by the hardware tests."""
    from qkit.config import EnvConfig, TrainConfig
    from qkit.train import train

    return train(
        TrainConfig.from_options(backbone="small_cnn", head="quantum", epochs=1),
        EnvConfig(data_dir=str(data_root)),
        tmp_path_factory.mktemp("quantum_runs"),
    )


@pytest.fixture
def run_copy(quantum_run, tmp_path) -> Path:
    """A fresh copy of ``quantum_run`` without its hardware/ folder, so each test starts clean."""
    dest = tmp_path / quantum_run.name
    shutil.copytree(quantum_run, dest, ignore=shutil.ignore_patterns("hardware"))
    return dest
