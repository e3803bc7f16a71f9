"""Figures: valid PNG files written atomically, odd inputs handled, bad inputs rejected."""

import os

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest

from qkit.errors import QkitError
from qkit.plots import plot_confusion_matrix, plot_roc, plot_training_curves

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)  # decodes: not just a header
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def _binary_data(n=80, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    malignant = np.clip(0.4 * (y == 0) + 0.6 * rng.random(n), 0, 1)
    return y, np.stack([malignant, 1 - malignant], axis=1)


def test_training_curves(tmp_path):
    history = [
        {
            "epoch": e,
            "train_loss": 1 / e,
            "val_loss": 1.1 / e,
            "val_auc": 0.5 + e / 20,
            "val_accuracy": 0.6 + e / 30,
            "lr": 1e-3,
            "note": "text",
        }
        for e in range(1, 6)
    ]
    history[2]["val_auc"] = None  # an epoch where AUC was undefined
    path = plot_training_curves(history, tmp_path / "figs" / "curves.png")
    assert path == tmp_path / "figs" / "curves.png"
    assert_png(path)
    assert plt.get_fignums() == []  # figures are closed


def test_training_curves_without_validation(tmp_path):
    assert_png(plot_training_curves([{"train_loss": 0.7}, {"train_loss": 0.5}], tmp_path / "c.png"))
    for bad in ([], None, [1, 2], "history"):
        with pytest.raises(QkitError, match="history"):
            plot_training_curves(bad, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_roc_binary_and_multiclass(tmp_path):
    y, probs = _binary_data()
    assert_png(plot_roc(y, probs, 0, tmp_path / "roc.png", class_names=["malignant", "benign"]))
    rng = np.random.default_rng(1)
    probs3 = rng.dirichlet([1, 1, 1], 60)
    assert_png(plot_roc(rng.integers(0, 3, 60), probs3, None, tmp_path / "roc3.png"))
    assert plt.get_fignums() == []


def test_roc_single_class_still_draws(tmp_path):
    probs = np.array([[0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert_png(plot_roc([1, 1, 1], probs, 0, tmp_path / "roc.png"))


def test_roc_rejects_bad_input(tmp_path):
    y, probs = _binary_data()
    with pytest.raises(QkitError):
        plot_roc(y[:10], probs, 0, tmp_path / "roc.png")
    with pytest.raises(QkitError, match="class names"):
        plot_roc(y, probs, 0, tmp_path / "roc.png", class_names=["only one"])
    assert os.listdir(tmp_path) == []


def test_confusion_matrix(tmp_path):
    assert_png(plot_confusion_matrix([[28, 16], [16, 40]], ["malignant", "normal, benign"], tmp_path / "cm.png"))
    cm = np.array([[5, 0, 1], [0, 0, 0], [2, 1, 9]])  # a class with no samples: no 0/0 crash
    assert_png(plot_confusion_matrix(cm, ["adipose", "background", "debris"], tmp_path / "cm3.png"))
    assert plt.get_fignums() == []


@pytest.mark.parametrize(
    "cm, names, match",
    [
        ([[1, 2, 3]], ["a"], "square"),
        ([[1, 2], [3, 4]], ["a"], "class names"),
        ([[1, -2], [3, 4]], ["a", "b"], "counts"),
        ([[1.5, 2], [3, 4]], ["a", "b"], "counts"),
    ],
)
def test_confusion_matrix_rejects_bad_input(tmp_path, cm, names, match):
    with pytest.raises(QkitError, match=match):
        plot_confusion_matrix(cm, names, tmp_path / "cm.png")


@pytest.mark.slow
def test_importing_qkit_plots_leaves_the_matplotlib_backend_alone(tmp_path):
    """qkit.plots used to force Agg at import, which broke notebooks' inline backends."""
    import subprocess
    import sys

    code = (
        "import matplotlib; matplotlib.use('svg'); import qkit.plots as p; "
        f"p.plot_confusion_matrix([[1, 2], [3, 4]], ['a', 'b'], {str(tmp_path / 'cm.png')!r}); "
        "print(matplotlib.get_backend())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "svg"
    assert_png(tmp_path / "cm.png")
