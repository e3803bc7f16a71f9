"""qkit.data on the genuine BreastMNIST file and on small generated image folders."""

import os
import shutil

import medmnist
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from qkit.config import TrainConfig
from qkit.data import (IMAGENET_MEAN, IMAGENET_STD, MEDMNIST_2D, DataSpec, ImageTensorDataset,
                       build_data, default_vertical_flip, describe, resolve_data_dir)
from qkit.errors import QkitError

BREAST_MD5 = medmnist.INFO["breastmnist"]["MD5"]


def spec(root, **kw) -> DataSpec:
    return DataSpec(data_dir=str(root), **kw)


def assert_one_line(exc_info):
    msg = str(exc_info.value)
    assert msg and "\n" not in msg
    return msg


def counts(ds, k=2):
    return torch.bincount(ds.labels, minlength=k).tolist()


# ----------------------------------------------------------------------------- MedMNIST

def test_breastmnist_official_splits(data_root):
    b = build_data(spec(data_root))
    assert (len(b.train), len(b.val), len(b.test)) == (546, 78, 156)
    assert b.class_names == ["malignant", "normal, benign"]
    assert b.positive_class == 0 and b.class_weights is None
    assert b.source["md5"] == BREAST_MD5 and b.source["dataset"] == "breastmnist"
    assert b.source["file"].endswith("breastmnist.npz") and b.source["size"] == 28
    x, y = b.test[0]
    assert x.shape == (3, 28, 28) and x.dtype == torch.float32 and isinstance(y, int)
    assert torch.equal(x[0], x[1]) and torch.equal(x[0], x[2])     # gray repeated
    raw = np.load(data_root / "breastmnist.npz")
    assert torch.allclose(x[0], torch.from_numpy(raw["test_images"][0]).float() / 255)
    assert counts(b.test) == np.bincount(raw["test_labels"].ravel()).tolist()
    d = describe(b)
    assert d["train"] == {"n": 546, "per_class": {"malignant": 147, "normal, benign": 399}}


def test_dataloader_batches(data_root):
    xb, yb = next(iter(DataLoader(build_data(spec(data_root)).train, batch_size=32)))
    assert xb.shape == (32, 3, 28, 28) and yb.dtype == torch.int64


def test_augment_on_train_only(data_root):
    b = build_data(spec(data_root, augment=True))
    plain = build_data(spec(data_root, augment=False))
    torch.manual_seed(0)
    train_views = {b.train[3][0].numpy().tobytes() for _ in range(12)}
    assert len(train_views) > 1                                    # random each call
    assert all(torch.equal(b.val[3][0], b.val[3][0]) for _ in range(5))
    assert torch.equal(b.test[7][0], plain.test[7][0])
    assert torch.equal(plain.train[3][0], plain.train[3][0])
    assert torch.allclose(plain.train[3][0][0], plain.train.images[3, 0].float() / 255)


@pytest.mark.parametrize("vertical_flip, flipped_some", [(False, False), (True, True)])
def test_vertical_flips_only_when_asked(vertical_flip, flipped_some):
    """Top-bright images stay top-bright under rotation and horizontal flips; vertical flips swap."""
    images = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    images[..., :14, :] = 200
    ds = ImageTensorDataset(images, torch.zeros(1), ["a"], augment=True, vertical_flip=vertical_flip)
    torch.manual_seed(0)
    tops = [(x[0, :14].mean() > x[0, 14:].mean()).item() for x, _ in (ds[0] for _ in range(40))]
    assert (not all(tops)) == flipped_some
    assert torch.equal(ds.without_augmentation()[0][0], ds.without_augmentation()[0][0])


def test_vertical_flip_default_depends_on_the_modality():
    assert default_vertical_flip("breastmnist") is False        # ultrasound: probe at the top
    assert default_vertical_flip("chestmnist") is False
    assert default_vertical_flip("pathmnist") is True           # microscopy: no up and down
    assert TrainConfig(vertical_flip=True).resolved().vertical_flip is True
    assert TrainConfig(dataset="dermamnist").resolved().vertical_flip is True


def test_resize_and_imagenet_normalisation(data_root):
    b = build_data(spec(data_root, resize=64, normalize="imagenet", augment=False))
    x, _ = b.val[0]
    assert x.shape == (3, 64, 64)
    raw = b.val.images[0, 0].float() / 255          # already resized to 64 px, uint8
    for c in range(3):
        expected = (raw - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        assert torch.allclose(x[c], expected, atol=1e-5)


def test_undersample(data_root):
    b = build_data(spec(data_root, balance="undersample", seed=1))
    assert counts(b.train) == [147, 147]
    assert counts(b.val) == [21, 57]                              # val/test untouched
    again = build_data(spec(data_root, balance="undersample", seed=1))
    other = build_data(spec(data_root, balance="undersample", seed=2))
    assert b.train.ids == again.train.ids and b.train.ids != other.train.ids
    all_ids = build_data(spec(data_root)).train.ids
    assert set(b.train.ids) <= set(all_ids)


def test_oversample_adds_rotated_copies(data_root):
    b = build_data(spec(data_root, balance="oversample", augment=False))
    assert counts(b.train) == [399, 399] and len(b.train) == 798
    assert b.train.ids == build_data(spec(data_root, balance="oversample")).train.ids
    base = build_data(spec(data_root, augment=False)).train
    ops = [i.split("#")[1] for i in b.train.ids if "#" in i]
    assert ops.count("rot90") == 147 and ops.count("rot180") == 105   # 252 extra malignant
    src = next(i for i in range(546) if base.labels[i] == 0)
    pos = b.train.ids.index(f"train/{src}#rot90")
    assert torch.equal(b.train.images[pos], torch.rot90(base.images[src], 1, (-2, -1)))
    assert b.train.labels[pos] == 0


def test_weighted(data_root):
    b = build_data(spec(data_root, balance="weighted"))
    assert len(b.train) == 546 and b.class_weights.dtype == torch.float32
    expected = torch.tensor([546 / (2 * 147), 546 / (2 * 399)])
    assert torch.allclose(b.class_weights, expected)


def test_classes_subset_relabels(data_root):
    b = build_data(spec(data_root, classes=(1, 0), augment=False))
    plain = build_data(spec(data_root, augment=False))
    assert b.class_names == ["normal, benign", "malignant"]
    assert torch.equal(b.test.labels, 1 - plain.test.labels)
    assert b.positive_class == 1                     # malignant, wherever it lands
    assert build_data(spec(data_root, positive_class=1)).positive_class == 1
    with pytest.raises(QkitError) as e:
        build_data(spec(data_root, classes=(0, 5)))
    assert "5" in assert_one_line(e)
    with pytest.raises(QkitError):
        build_data(spec(data_root, positive_class=2))


def test_md5_mismatch_is_an_error(data_root, tmp_path):
    blob = bytearray((data_root / "breastmnist.npz").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (tmp_path / "breastmnist.npz").write_bytes(bytes(blob))
    with pytest.raises(QkitError) as e:
        build_data(spec(tmp_path))
    assert "md5" in assert_one_line(e) and BREAST_MD5 in str(e.value)


def test_truncated_file_is_an_error(data_root, tmp_path):
    blob = (data_root / "breastmnist.npz").read_bytes()
    (tmp_path / "breastmnist.npz").write_bytes(blob[: len(blob) // 3])
    with pytest.raises(QkitError) as e:
        build_data(spec(tmp_path))
    assert "breastmnist.npz" in assert_one_line(e)


def test_file_replaced_after_a_good_build_is_rechecked(data_root, tmp_path):
    target = tmp_path / "breastmnist.npz"
    shutil.copyfile(data_root / "breastmnist.npz", target)
    assert build_data(spec(tmp_path)).source["md5"] == BREAST_MD5
    blob = bytearray(target.read_bytes())
    blob[100] ^= 0xFF                                   # same size, new content
    target.write_bytes(bytes(blob))
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(QkitError):
        build_data(spec(tmp_path))


def test_missing_file_without_download(tmp_path):
    with pytest.raises(QkitError) as e:
        build_data(spec(tmp_path, download=False))
    msg = assert_one_line(e)
    assert "breastmnist.npz" in msg and str(tmp_path) in msg and "zenodo" in msg
    with pytest.raises(QkitError) as e:
        build_data(spec(tmp_path, size=64, download=False))
    assert "breastmnist_64.npz" in assert_one_line(e)


@pytest.mark.parametrize("kw", [
    {"dataset": "nosuchmnist"}, {"dataset": "organmnist3d"}, {"dataset": "chestmnist"},
    {"balance": "smote"}, {"normalize": "zscore"}, {"size": 32}, {"classes": (1, 1)},
])
def test_bad_specs_are_user_errors(tmp_path, kw):
    with pytest.raises(QkitError) as e:
        build_data(spec(tmp_path, download=False, **kw))
    assert_one_line(e)


def test_unknown_dataset_lists_flags(tmp_path):
    with pytest.raises(QkitError) as e:
        build_data(spec(tmp_path, dataset="nosuchmnist"))
    assert "breastmnist" in assert_one_line(e) and "breastmnist" in MEDMNIST_2D


def test_resolve_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("QKIT_DATA_DIR", str(tmp_path / "env"))
    assert str(resolve_data_dir("/x/y")) == "/x/y"
    assert resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv("QKIT_DATA_DIR")
    assert str(resolve_data_dir(None)) == medmnist.info.DEFAULT_ROOT


# ----------------------------------------------------------------------------- image folders

@pytest.fixture
def image_folder(tmp_path):
    """3 classes (20/40/20 images), mixed sizes and modes, like a user's export."""
    rng = np.random.default_rng(0)
    root = tmp_path / "folder"
    for name, n in (("benign", 20), ("malignant", 40), ("normal", 20)):
        (root / name).mkdir(parents=True)
        for i in range(n):
            side = int(rng.integers(20, 40))
            arr = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            img = Image.fromarray(arr).convert("L" if i % 2 else "RGB")
            img.save(root / name / f"{i:03d}.png")
    return root


def test_image_folder_stratified_deterministic(image_folder):
    b = build_data(DataSpec(dataset=str(image_folder), size=28, augment=False))
    assert b.class_names == ["benign", "malignant", "normal"] and b.positive_class is None
    assert (len(b.train), len(b.val), len(b.test)) == (56, 12, 12)
    assert counts(b.train, 3) == [14, 28, 14]
    assert counts(b.val, 3) == [3, 6, 3] and counts(b.test, 3) == [3, 6, 3]
    ids = [set(ds.ids) for ds in (b.train, b.val, b.test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert len(ids[0] | ids[1] | ids[2]) == 80
    x, y = b.train[0]
    assert x.shape == (3, 28, 28) and x.dtype == torch.float32
    assert b.train.ids[0].split("/")[0] == b.class_names[y]
    again = build_data(DataSpec(dataset=str(image_folder), size=28))
    other = build_data(DataSpec(dataset=str(image_folder), size=28, seed=5))
    assert again.train.ids == b.train.ids and other.train.ids != b.train.ids
    assert again.source["fingerprint"] == b.source["fingerprint"]


def test_image_folder_resize_subset_and_balance(image_folder):
    b = build_data(DataSpec(dataset=str(image_folder), resize=48, classes=(2, 1),
                            balance="oversample"))
    assert b.class_names == ["normal", "malignant"] and b.positive_class == 1
    assert b.train[0][0].shape == (3, 48, 48)
    assert counts(b.train) == [28, 28]
    with pytest.raises(QkitError):
        build_data(DataSpec(dataset=str(image_folder), positive_class=0))  # 3 classes


def test_class_weights_are_inverse_frequency_and_need_every_class():
    from qkit.balancing import class_weights

    weights = class_weights(torch.tensor([0, 0, 0, 1]), ["a", "b"])
    assert torch.allclose(weights, torch.tensor([4 / 6, 4 / 2]))
    with pytest.raises(QkitError, match="no training images for class.*c"):
        class_weights(torch.tensor([0, 1]), ["a", "b", "c"])
