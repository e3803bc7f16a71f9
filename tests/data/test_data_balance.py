"""Class balancing (qkit.balancing) through build_data: real BreastMNIST and generated folders."""

import numpy as np
import pytest
import torch
from PIL import Image

from qkit.balancing import balance, class_weights
from qkit.data import DataSpec, build_data
from qkit.errors import QkitError


def spec(root, **kw) -> DataSpec:
    return DataSpec(data_dir=str(root), **kw)


def counts(ds, k=2):
    return torch.bincount(ds.labels, minlength=k).tolist()


def top_bright(images: torch.Tensor) -> torch.Tensor:
    """Per image: is the top half clearly brighter than the bottom (probe-at-the-top look)?"""
    h = images.shape[-2] // 2
    x = images.to(torch.float32)
    return x[..., :h, :].mean(dim=(-3, -2, -1)) > x[..., h:, :].mean(dim=(-3, -2, -1)) + 40


def test_undersample(data_root):
    b = build_data(spec(data_root, balance="undersample", seed=1))
    assert counts(b.train) == [147, 147]
    assert counts(b.val) == [21, 57]  # val/test untouched
    again = build_data(spec(data_root, balance="undersample", seed=1))
    other = build_data(spec(data_root, balance="undersample", seed=2))
    assert b.train.ids == again.train.ids and b.train.ids != other.train.ids
    all_ids = build_data(spec(data_root)).train.ids
    assert set(b.train.ids) <= set(all_ids)


def test_oversample_adds_exact_copies(data_root):
    b = build_data(spec(data_root, balance="oversample", augment=False))
    assert counts(b.train) == [399, 399] and len(b.train) == 798
    assert b.train.ids == build_data(spec(data_root, balance="oversample")).train.ids  # seeded
    assert b.train.ids != build_data(spec(data_root, balance="oversample", seed=1)).train.ids
    base = build_data(spec(data_root, augment=False)).train
    assert b.train.ids[:546] == base.ids and torch.equal(b.train.images[:546], base.images)
    rounds = [i.split("#")[1] for i in b.train.ids if "#" in i]
    assert rounds.count("copy1") == 147 and rounds.count("copy2") == 105  # 252 extra malignant
    for pos in range(546, 798):
        src = base.ids.index(b.train.ids[pos].split("#")[0])
        assert torch.equal(b.train.images[pos], base.images[src])  # never rotated or flipped
        assert b.train.labels[pos] == base.labels[src] == 0
    copy = b.train.ids.index(f"{b.train.ids[546].split('#')[0]}#copy1")
    augmented = build_data(spec(data_root, balance="oversample", augment=True)).train
    torch.manual_seed(0)
    assert len({augmented[copy][0].numpy().tobytes() for _ in range(8)}) > 1  # the augmentation varies copies


@pytest.fixture
def probe_on_top_folder(tmp_path):
    """Ultrasound-like images (bright top half, noise) in an imbalanced binary folder."""
    rng = np.random.default_rng(1)
    root = tmp_path / "ultrasound"
    for name, n in (("benign", 30), ("malignant", 8)):
        (root / name).mkdir(parents=True)
        for i in range(n):
            arr = rng.integers(0, 50, (24, 24), dtype=np.uint8)
            arr[:12] += 180
            Image.fromarray(arr).save(root / name / f"{i:03d}.png")
    return root


def test_oversampling_does_not_make_orientation_a_label_cue(probe_on_top_folder):
    b = build_data(DataSpec(dataset=str(probe_on_top_folder), balance="oversample", augment=False))
    base = build_data(DataSpec(dataset=str(probe_on_top_folder), augment=False))
    assert counts(b.train) == [21, 21] and counts(base.train) == [21, 5]
    bright = top_bright(b.train.images)
    share = [bright[b.train.labels == c].float().mean().item() for c in (0, 1)]
    assert share == [1.0, 1.0]  # the same share in every class
    originals = {(img.numpy().tobytes(), int(y)) for img, y in zip(base.train.images, base.train.labels)}
    added = range(len(base.train), len(b.train))
    assert all((b.train.images[i].numpy().tobytes(), int(b.train.labels[i])) in originals for i in added)


def test_balance_oversample_directly_copies_with_seeded_subsets():
    x = torch.arange(7, dtype=torch.uint8).view(7, 1, 1, 1).expand(7, 1, 2, 2).contiguous()
    y = torch.tensor([0, 0, 0, 0, 0, 1, 1])
    ids = [f"train/{i}" for i in range(7)]
    (xb, yb, idb), weights = balance(x, y, ids, ["a", "b"], "oversample", seed=3)
    assert weights is None and yb.tolist().count(1) == 5 and len(idb) == 10
    assert idb[7:9] == ["train/5#copy1", "train/6#copy1"] and idb[9] in ("train/5#copy2", "train/6#copy2")
    assert all(torch.equal(xb[i], x[int(idb[i].split("/")[1].split("#")[0])]) for i in range(10))
    (same, _, _), _ = balance(x, torch.tensor([0, 0, 0, 1, 1, 1, 1]), ids, ["a", "b"], "oversample", 0)
    assert same.shape == (8, 1, 2, 2)
    (bal, _, bal_ids), _ = balance(x[:4], torch.tensor([0, 0, 1, 1]), ids[:4], ["a", "b"], "oversample", 0)
    assert bal_ids == ids[:4] and torch.equal(bal, x[:4])  # already balanced: unchanged


def test_weighted(data_root):
    b = build_data(spec(data_root, balance="weighted"))
    assert len(b.train) == 546 and b.class_weights.dtype == torch.float32
    expected = torch.tensor([546 / (2 * 147), 546 / (2 * 399)])
    assert torch.allclose(b.class_weights, expected)


def test_class_weights_are_inverse_frequency_and_need_every_class():
    weights = class_weights(torch.tensor([0, 0, 0, 1]), ["a", "b"])
    assert torch.allclose(weights, torch.tensor([4 / 6, 4 / 2]))
    with pytest.raises(QkitError, match="no training images for class.*c"):
        class_weights(torch.tensor([0, 1]), ["a", "b", "c"])
