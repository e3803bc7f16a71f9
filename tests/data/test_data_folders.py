"""qkit.data on small generated image folders: splits (split_seed, group_by), fingerprints
(check_source) and the positive class of binary folders."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from qkit.data import DataSpec, build_data, check_source, recognise_positive
from qkit.errors import QkitError

from image_folders import folder, write_images

BREAKHIS = r"SOB_[BM]_[A-Z]+-(\d+-\d+)"


def assert_one_line(exc_info):
    msg = str(exc_info.value)
    assert msg and "\n" not in msg
    return msg


def counts(ds, k=2):
    return torch.bincount(ds.labels, minlength=k).tolist()


def patients_folder(tmp_path, n_patients: dict, per_patient=(2, 6)):
    """BreakHis-like names: ``benign/SOB_B_A-14-<id>-40-<n>.png``, several images per patient."""
    rng, files = np.random.default_rng(2), []
    for c, n in n_patients.items():
        tag = "B" if c == "benign" else "M"
        for p in range(n):
            pid = f"14-{1000 * (tag == 'M') + p:05d}"
            files += [f"{c}/SOB_{tag}_A-{pid}-40-{j:03d}" for j in range(rng.integers(*per_patient))]
    return write_images(tmp_path / "breakhis", files, rng)


@pytest.fixture
def image_folder(tmp_path):
    """3 classes (20/40/20 images)."""
    return folder(tmp_path, {"benign": 20, "malignant": 40, "normal": 20})


def build(root, **kw):
    return build_data(DataSpec(dataset=str(root), **kw))


# ----------------------------------------------------------------------------- per-image splits


def test_image_folder_stratified_deterministic(image_folder):
    b = build(image_folder, size=28, augment=False)
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
    again = build(image_folder, size=28)
    other = build(image_folder, size=28, split_seed=5)
    assert again.train.ids == b.train.ids and other.train.ids != b.train.ids
    assert again.source["fingerprint"] == b.source["fingerprint"]
    assert b.source["split_seed"] == 0 and other.source["split_seed"] == 5
    assert b.source["group_by"] is None and b.source["n_groups"] is None


def test_training_seed_does_not_move_the_test_set(image_folder):
    """--seed 0/1/2 must be scored on one test set; only split_seed moves it."""
    runs = [build(image_folder, seed=s, balance="undersample") for s in (0, 1, 2)]
    assert runs[0].test.ids == runs[1].test.ids == runs[2].test.ids
    assert runs[0].val.ids == runs[1].val.ids == runs[2].val.ids
    assert {r.source["split_seed"] for r in runs} == {0}
    assert runs[0].train.ids != runs[1].train.ids  # the seed still draws undersampling
    assert build(image_folder, seed=1, split_seed=1).test.ids != runs[0].test.ids


def test_image_folder_resize_subset_and_balance(image_folder):
    b = build(image_folder, resize=48, classes=(2, 1), balance="oversample")
    assert b.class_names == ["normal", "malignant"] and b.positive_class == 1
    assert b.train[0][0].shape == (3, 48, 48)
    assert counts(b.train) == [28, 28]
    with pytest.raises(QkitError):
        build(image_folder, positive_class=0)  # 3 classes


# ----------------------------------------------------------------------------- grouped splits


def test_group_by_keeps_each_patient_in_one_split(tmp_path):
    root = patients_folder(tmp_path, {"benign": 24, "malignant": 40})
    b = build(root, group_by=BREAKHIS, augment=False)
    assert b.source["group_by"] == BREAKHIS and b.source["n_groups"] == 64
    patient = lambda rel: rel.split("_A-")[1][:8]  # noqa: E731
    owners = {}
    for split in ("train", "val", "test"):
        for rel in getattr(b, split).ids:
            owners.setdefault(patient(rel), set()).add(split)
        assert set(getattr(b, split).labels.tolist()) == {0, 1}  # every class in every split
    assert len(owners) == 64 and all(len(s) == 1 for s in owners.values())
    n = b.source["n_images"]
    assert len(b.train) + len(b.val) + len(b.test) == n
    for split, target in (("train", 0.70), ("val", 0.15), ("test", 0.15)):
        assert abs(len(getattr(b, split)) / n - target) < 0.06, (split, len(getattr(b, split)), n)
    assert build(root, group_by=BREAKHIS).test.ids == b.test.ids  # deterministic
    assert build(root, group_by=BREAKHIS, split_seed=3).test.ids != b.test.ids
    assert build(root, group_by=BREAKHIS, seed=3).test.ids == b.test.ids


def test_group_by_with_few_groups_still_covers_every_class(tmp_path):
    root = patients_folder(tmp_path, {"benign": 4, "malignant": 7})
    b = build(root, group_by=BREAKHIS)
    assert b.source["n_groups"] == 11
    for ds in (b.train, b.val, b.test):
        assert set(ds.labels.tolist()) == {0, 1}
    splits = [{r.split("_A-")[1][:8] for r in ds.ids} for ds in (b.train, b.val, b.test)]
    assert not (splits[0] & splits[1] or splits[0] & splits[2] or splits[1] & splits[2])


def test_group_by_without_capture_group_uses_the_whole_match(tmp_path):
    files = [f"{c}/patient{p}_{c}_{j}" for c in ("benign", "malignant") for p in range(6) for j in range(3)]
    root = write_images(tmp_path / "pats", files, np.random.default_rng(3))
    b = build(root, group_by=r"patient\d+_[a-z]+")
    assert b.source["n_groups"] == 12
    whole = {r.split("/")[1].rsplit("_", 1)[0] for r in b.test.ids}
    assert not whole & {r.split("/")[1].rsplit("_", 1)[0] for r in b.train.ids}


def test_group_by_errors_are_one_line(tmp_path):
    root = patients_folder(tmp_path, {"benign": 6, "malignant": 6})
    (root / "malignant" / "stray.png").write_bytes((root / "benign").glob("*.png").__next__().read_bytes())
    with pytest.raises(QkitError) as e:
        build(root, group_by=BREAKHIS)
    msg = assert_one_line(e)
    assert "1 of" in msg and "malignant/stray.png" in msg and BREAKHIS in msg
    (root / "malignant" / "stray.png").unlink()
    with pytest.raises(QkitError) as e:
        build(root, group_by=r"SOB_(\d+")
    assert "not a valid regular expression" in assert_one_line(e)
    with pytest.raises(QkitError) as e:
        build(root, group_by=r"SOB_[BM]_A-14-(X)?")  # the group never takes part
    assert "do not match" in assert_one_line(e)
    few = patients_folder(tmp_path / "few", {"benign": 2, "malignant": 6})
    with pytest.raises(QkitError) as e:
        build(few, group_by=BREAKHIS)
    msg = assert_one_line(e)
    assert "too few groups" in msg and "'benign'" in msg and "benign/SOB_B_A-14-" in msg


# ----------------------------------------------------------------------------- check_source


def test_check_source_accepts_the_same_folder_and_old_records(image_folder):
    recorded = build(image_folder).source
    current = build(image_folder, seed=4, balance="undersample").source  # training side only
    check_source(recorded, current)
    old = {k: v for k, v in recorded.items() if k not in ("group_by", "n_groups", "content_md5")}
    check_source(old, current)  # a record from before these keys existed
    moved = shutil.copytree(image_folder, image_folder.parent / "moved")
    check_source(recorded, build(moved).source)  # another place, same images


@pytest.mark.parametrize("change", ["add", "remove"])
def test_check_source_detects_added_and_removed_images(image_folder, change):
    recorded = build(image_folder).source
    if change == "add":
        shutil.copyfile(image_folder / "benign" / "000.png", image_folder / "benign" / "zzz.png")
    else:
        (image_folder / "normal" / "007.png").unlink()
    current = build(image_folder).source
    with pytest.raises(QkitError) as e:
        check_source(recorded, current)
    msg = assert_one_line(e)
    assert f"n_images 80 -> {81 if change == 'add' else 79}" in msg and "fingerprint" in msg
    assert "not be comparable" in msg and str(image_folder) in msg


def test_check_source_detects_an_image_edited_at_the_same_size(tmp_path):
    root = folder(tmp_path, {"benign": 10, "malignant": 10}, ext="bmp")  # bmp: fixed file size
    recorded = build(root).source
    target = root / "malignant" / "004.bmp"
    size = target.stat().st_size
    with Image.open(target) as img:
        arr = np.asarray(img).copy()
    arr[0, 0] = 255 - arr[0, 0]
    Image.fromarray(arr).save(target)
    assert target.stat().st_size == size
    with pytest.raises(QkitError) as e:
        check_source(recorded, build(root).source)
    msg = assert_one_line(e)
    assert "content_md5" in msg and "fingerprint" not in msg


def test_check_source_detects_another_split(tmp_path):
    root = patients_folder(tmp_path, {"benign": 6, "malignant": 6})
    plain = build(root).source
    with pytest.raises(QkitError) as e:
        check_source(plain, build(root, split_seed=1).source)
    assert "split_seed 0 -> 1" in assert_one_line(e)
    grouped = build(root, group_by=BREAKHIS).source
    with pytest.raises(QkitError) as e:
        check_source(plain, grouped)
    msg = assert_one_line(e)
    assert f"group_by None -> '{BREAKHIS}'" in msg and "n_groups None -> 12" in msg
    with pytest.raises(QkitError) as e:
        check_source(grouped, build(root, group_by=r"SOB_[BM]_[A-Z]+-(\d+)-").source)
    assert "group_by" in assert_one_line(e)
    with pytest.raises(QkitError) as e:
        check_source(plain, build(root, classes=(1, 0)).source)
    assert "classes None -> [1, 0]" in assert_one_line(e)


# ----------------------------------------------------------------------------- positive class


@pytest.mark.parametrize(
    "names, positive",
    [
        (["malignant", "normal"], 0),
        (["benign", "malignant"], 1),
        (["NORMAL", "PNEUMONIA"], 1),
        (["abnormal", "normal"], 0),
        (["Cancer", "NonCancer"], 0),
        (["no_tumor", "tumor"], 1),
        (["no", "yes"], 1),
        (["healthy", "diseased"], 1),
        (["nodule", "no_nodule"], 0),
        (["benign_lesion", "malignant_lesion"], 1),
        (["control", "melanoma"], 1),
        (["0_negative", "1_positive"], 1),
        (["Tumours", "non-tumour"], 0),
        (["cancer", "cancer_free"], 0),
        (["a", "b"], None),
        (["tumor_a", "tumor_b"], None),
        (["benign", "normal"], None),
        (["0", "1"], None),
        (["posterior", "anterior"], None),
    ],
)
def test_recognise_positive_from_class_names(names, positive):
    assert recognise_positive(names) == positive


def test_binary_folder_positive_is_recognised_not_alphabetical(tmp_path):
    root = folder(tmp_path, {"malignant": 12, "normal": 12})
    b = build(root)
    assert b.class_names == ["malignant", "normal"] and b.positive_class == 0
    assert build(root, classes=(1, 0)).positive_class == 1  # malignant, wherever it lands
    assert build(root, positive_class="normal").positive_class == 1
    assert build(root, positive_class=1).positive_class == 1
    with pytest.raises(QkitError) as e:
        build(root, positive_class="benign")
    msg = assert_one_line(e)
    assert "'benign'" in msg and "'malignant', 'normal'" in msg


def test_unrecognised_binary_folder_asks_for_the_positive_class(tmp_path):
    root = folder(tmp_path, {"a": 10, "b": 10})
    with pytest.raises(QkitError) as e:
        build(root)
    assert assert_one_line(e) == ("cannot tell which class of 'a', 'b' is positive; pass --positive-class a (or b)")
    assert build(root, positive_class="a").positive_class == 0
    assert build(root, positive_class=1).positive_class == 1


def test_classes_from_a_larger_folder(image_folder, tmp_path):
    b = build(image_folder, classes=(1, 0))
    assert b.class_names == ["malignant", "benign"] and b.positive_class == 0  # by name
    plain = folder(tmp_path, {"x": 10, "y": 10, "z": 10}, name="plain")
    assert build(plain, classes=(2, 0)).positive_class == 1  # unreadable names: as listed
