"""qkit.data on the genuine BreastMNIST file: loading, md5 checks, augmentation, options.

Image folders are in test_data_folders.py, balancing in test_data_balance.py.
"""

import os
import shutil

import medmnist
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from qkit.config import TrainConfig, default_vertical_flip
from qkit.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MEDMNIST_2D,
    DataSpec,
    ImageTensorDataset,
    build_data,
    check_source,
    describe,
    resolve_data_dir,
)
from qkit.errors import QkitError
from qkit.resolve import resolve_config

from test_data_folders import assert_one_line, counts

BREAST_MD5 = medmnist.INFO["breastmnist"]["MD5"]


def spec(root, **kw) -> DataSpec:
    return DataSpec(data_dir=str(root), **kw)


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
    assert torch.equal(x[0], x[1]) and torch.equal(x[0], x[2])  # gray repeated
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
    assert len(train_views) > 1  # random each call
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
    assert default_vertical_flip("breastmnist") is False  # ultrasound: probe at the top
    assert default_vertical_flip("chestmnist") is False
    assert default_vertical_flip("pathmnist") is True  # microscopy: no up and down
    assert resolve_config(TrainConfig.from_options(vertical_flip=True)).data.vertical_flip is True
    assert resolve_config(TrainConfig.from_options(dataset="dermamnist")).data.vertical_flip is True


def test_shifts_and_zooms_when_asked_and_the_old_pipeline_draw_for_draw():
    at64 = resolve_config(TrainConfig.from_options(size=64)).data
    assert (at64.translate, at64.zoom) == (0.0, 0.0)  # off by default (docs/training.md)
    asked = resolve_config(TrainConfig.from_options(size=64, translate=0.1, zoom=0.2)).data
    assert (asked.translate, asked.zoom) == (0.1, 0.2)
    assert DataSpec.from_config(resolve_config(TrainConfig.from_options(translate=0.1))).translate == 0.1
    old = TrainConfig.from_dict({"data": {"size": 64}})  # a record from before these options
    assert (old.data.translate, old.data.zoom) == (0.0, 0.0)

    # A bright square in the centre: a shift moves its centre of mass, flips and rotations do not.
    images = torch.zeros(1, 1, 64, 64, dtype=torch.uint8)
    images[..., 24:40, 24:40] = 255
    grid = torch.arange(64.0)

    def centre(x):
        return float((x[0].sum(0) * grid).sum() / x[0].sum())

    plain = ImageTensorDataset(images, torch.zeros(1), ["a"], augment=True, vertical_flip=False)
    shifted = ImageTensorDataset(images, torch.zeros(1), ["a"], augment=True, vertical_flip=False, translate=0.2)
    torch.manual_seed(0)
    assert max(abs(centre(plain[0][0]) - 31.5) for _ in range(20)) < 0.5
    assert max(abs(centre(shifted[0][0]) - 31.5) for _ in range(20)) > 4
    zoomed = ImageTensorDataset(images, torch.zeros(1), ["a"], augment=True, vertical_flip=False, zoom=0.3)
    areas = {int((zoomed[0][0][0] > 0.5).sum()) for _ in range(20)}
    assert min(areas) < 200 < 300 < max(areas)  # the 16 x 16 square at 0.7x to 1.3x
    # translate = zoom = 0 keeps the pipeline of earlier runs, so they resume and reproduce.
    old_pipeline = v2.Compose(
        [
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(0.0),
            v2.RandomRotation(15.0, interpolation=v2.InterpolationMode.BILINEAR),
        ]
    )
    torch.manual_seed(3)
    expected = [old_pipeline(images[0]) for _ in range(5)]
    torch.manual_seed(3)
    assert all(torch.equal((plain[0][0][:1] * 255).round().to(torch.uint8), e) for e in expected)


def test_resize_and_imagenet_normalisation(data_root):
    b = build_data(spec(data_root, resize=64, normalize="imagenet", augment=False))
    x, _ = b.val[0]
    assert x.shape == (3, 64, 64)
    raw = b.val.images[0, 0].float() / 255  # already resized to 64 px, uint8
    for c in range(3):
        expected = (raw - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        assert torch.allclose(x[c], expected, atol=1e-5)


def test_classes_subset_relabels(data_root):
    b = build_data(spec(data_root, classes=(1, 0), augment=False))
    plain = build_data(spec(data_root, augment=False))
    assert b.class_names == ["normal, benign", "malignant"]
    assert torch.equal(b.test.labels, 1 - plain.test.labels)
    assert b.positive_class == 1  # malignant, wherever it lands
    assert build_data(spec(data_root, positive_class=1)).positive_class == 1
    with pytest.raises(QkitError) as e:
        build_data(spec(data_root, classes=(0, 5)))
    assert "5" in assert_one_line(e)
    with pytest.raises(QkitError):
        build_data(spec(data_root, positive_class=2))


def test_positive_class_by_name(data_root):
    assert build_data(spec(data_root, positive_class="malignant")).positive_class == 0
    assert build_data(spec(data_root, positive_class="normal, benign")).positive_class == 1
    assert build_data(spec(data_root, positive_class="MALIGNANT")).positive_class == 0
    assert build_data(spec(data_root, classes=(1, 0), positive_class="malignant")).positive_class == 1
    with pytest.raises(QkitError) as e:
        build_data(spec(data_root, positive_class="tumour"))
    msg = assert_one_line(e)
    assert "'tumour'" in msg and "'malignant', 'normal, benign'" in msg


def test_medmnist_source_and_check_source(data_root):
    """MedMNIST keeps its official splits: split_seed does not move them, the md5 is what counts."""
    b = build_data(spec(data_root))
    assert b.source["split"] == "official" and "split_seed" not in b.source
    other_seed = build_data(spec(data_root, split_seed=7))
    assert other_seed.test.ids == b.test.ids
    check_source(b.source, other_seed.source)  # same file: no error
    with pytest.raises(QkitError) as e:
        check_source({**b.source, "md5": "0" * 32}, b.source)  # a run recorded on another file
    msg = assert_one_line(e)
    assert "md5 000000000000 -> " + BREAST_MD5[:12] in msg and "not be comparable" in msg


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
    blob[100] ^= 0xFF  # same size, new content
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


@pytest.mark.parametrize(
    "kw",
    [
        {"dataset": "nosuchmnist"},
        {"dataset": "organmnist3d"},
        {"dataset": "chestmnist"},
        {"balance": "smote"},
        {"normalize": "zscore"},
        {"size": 32},
        {"classes": (1, 1)},
        {"split_seed": -1},
        {"split_seed": 2**32},
        {"seed": -1},
        {"positive_class": True},
        {"positive_class": -1},
        {"group_by": "SOB_(\\d+"},
        {"group_by": ""},
    ],
)
def test_bad_specs_are_user_errors(tmp_path, kw):
    with pytest.raises(QkitError) as e:
        build_data(spec(tmp_path, download=False, **kw))
    assert_one_line(e)


def test_group_by_is_for_image_folders_only(data_root):
    with pytest.raises(QkitError) as e:
        build_data(spec(data_root, group_by=r"(\d+)"))
    assert "image folders" in assert_one_line(e)


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
