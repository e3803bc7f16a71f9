"""In-memory splits: ``ImageTensorDataset``, the ``DataBundle`` that ``build_data`` returns,
and the split-wide transforms applied before wrapping (class selection, pre-resizing).

torchvision is imported only where images are resized or augmented: importing it pulls in
``torch._dynamo`` (about 3 s on 2 cores), which evaluation at the stored size never needs
(``qkit run-hardware``, ``evaluate`` and ``noise`` on a 28 or 64 px run).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch.utils.data import Dataset

from qkit.data.spec import IMAGENET_MEAN, IMAGENET_STD, PRERESIZE_BUDGET, ROTATION_DEGREES
from qkit.errors import QkitError


class ImageTensorDataset(Dataset):
    """In-memory images ``uint8 [N, C, H, W]`` with labels; items ``(float32 [3, H, W], int)``."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        ids: list[str],
        *,
        resize: int | None = None,
        augment: bool = False,
        vertical_flip: bool = True,
        translate: float = 0.0,
        zoom: float = 0.0,
        normalize: str = "none",
    ):
        self.images = images
        self.labels = labels.to(torch.int64)
        self.ids = ids
        self._labels = self.labels.tolist()  # python ints: cheaper than tensor.item() per item
        self.resize = resize if resize and resize != images.shape[-1] else None
        self._augment = _augmentation(vertical_flip, translate, zoom) if augment else None
        # x * scale + shift with [3, 1, 1] operands: uint8 -> [0, 1] (-> ImageNet statistics)
        # and gray -> 3 channels by broadcasting, all in one op.
        mean = torch.tensor(IMAGENET_MEAN if normalize == "imagenet" else (0.0,) * 3)
        std = torch.tensor(IMAGENET_STD if normalize == "imagenet" else (1.0,) * 3)
        self._scale = (1.0 / (255.0 * std)).view(3, 1, 1)
        self._shift = (-mean / std).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img = self.images[index]
        if self.resize is not None:
            img = _resize(img, self.resize)
        if self._augment is not None:
            img = self._augment(img)  # on uint8 and before the channel repeat: cheapest
        return torch.addcmul(self._shift, img.to(torch.float32), self._scale), self._labels[index]

    def without_augmentation(self) -> ImageTensorDataset:
        """The same images (shared memory) as the evaluation splits see them: no augmentation."""
        plain = copy.copy(self)
        plain._augment = None
        return plain


def _resize(img: torch.Tensor, side: int) -> torch.Tensor:
    from torchvision.transforms.v2 import functional as TF

    return TF.resize(img, [side, side], antialias=True)


def _augmentation(vertical_flip: bool, translate: float, zoom: float):
    """Flips and small rotations; with ``translate`` or ``zoom``, shifts and zooms in the same warp
    (a ``torchvision.transforms.v2.Compose``)."""
    from torchvision.transforms import v2

    bilinear = v2.InterpolationMode.BILINEAR
    if not (translate or zoom):  # as before shifts and zooms existed, draw for draw
        return v2.Compose(
            [
                v2.RandomHorizontalFlip(),
                v2.RandomVerticalFlip(0.5 if vertical_flip else 0.0),
                v2.RandomRotation(ROTATION_DEGREES, interpolation=bilinear),
            ]
        )
    flips = [v2.RandomHorizontalFlip(), *([v2.RandomVerticalFlip()] if vertical_flip else [])]
    return v2.Compose(
        [
            *flips,
            v2.RandomAffine(
                ROTATION_DEGREES, translate=(translate, translate), scale=(1 - zoom, 1 + zoom), interpolation=bilinear
            ),
        ]
    )


@dataclass
class DataBundle:
    train: Dataset
    val: Dataset
    test: Dataset
    class_names: list[str]
    positive_class: int | None  # index into class_names; None when multi-class
    class_weights: torch.Tensor | None  # set when balance == "weighted"
    source: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


def describe(bundle: DataBundle) -> dict:
    """Per-split sizes and per-class counts (for run records)."""
    out: dict = {"class_names": list(bundle.class_names), "positive_class": bundle.positive_class}
    for split in ("train", "val", "test"):
        ds = getattr(bundle, split)
        counts = torch.bincount(ds.labels, minlength=bundle.n_classes).tolist()
        out[split] = {"n": len(ds), "per_class": dict(zip(bundle.class_names, counts))}
    if bundle.class_weights is not None:
        out["class_weights"] = [float(w) for w in bundle.class_weights]
    return out


def select_classes(splits: dict, names: list[str], classes: tuple[int, ...]):
    """Keep only ``classes`` (original labels), relabelled 0..k-1 in the given order."""
    bad = [c for c in classes if c >= len(names)]
    if bad:
        raise QkitError(f"classes {bad} do not exist; labels are 0..{len(names) - 1} ({', '.join(names)})")
    lut = torch.full((len(names),), -1, dtype=torch.int64)
    lut[list(classes)] = torch.arange(len(classes))
    out = {}
    for split, (x, y, ids) in splits.items():
        keep = lut[y] >= 0
        sel = keep.nonzero().flatten().tolist()
        out[split] = (x[keep], lut[y[keep]], [ids[i] for i in sel])
    return out, [names[c] for c in classes]


def maybe_preresize(x: torch.Tensor, side: int) -> torch.Tensor:
    """Resize a whole split once when it fits the budget; otherwise items resize lazily."""
    if x.shape[-1] == side and x.shape[-2] == side:
        return x
    if x.shape[0] * x.shape[1] * side * side > PRERESIZE_BUDGET:
        return x
    chunks = [_resize(c, side) for c in x.split(1024)]
    return torch.cat(chunks) if chunks else x.new_empty((0, x.shape[1], side, side))
