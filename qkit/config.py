"""Configs declared once: every option of a run, its default, help, choices and bounds.

A run is described by four groups, nanoGPT-style dataclasses: ``DataConfig`` (what data and
how it is prepared), ``ModelConfig`` (backbone, head, circuit, engine), ``OptimConfig``
(optimisation and early stopping) and ``RunConfig`` (seed, name). ``TrainConfig`` holds the
four; it is what a run folder records and what decides the result. ``EnvConfig`` is where
and how a run executes (data folder, device, workers, threads): it never changes a result,
so it is kept apart and may differ on ``--resume`` or when another machine re-scores a run.

Each field is declared with ``option(default, help, ...)``. From that one declaration come
the generic validator (``qkit.fields.validate``), the CLI options of ``qkit train`` (``qkit.cli.options``:
names, help, choices, bounds) and the run record. The values options take (choice tuples,
built-in names, the ``check=`` functions) are in ``qkit.option_values``; their public names
are re-exported here. This module imports nothing heavy: the CLI validates a whole command
line without importing torch or Qiskit.

These are the declarations at the bottom of qkit's layers: this module imports no registry
(data, models, presets, engines), since those import it. What needs a registry is done one
step above both, in ``qkit.resolve``: a preset's options (``config_from_options``), the names
``--preset`` and ``--engine`` take, the options a preset or an engine accepts
(``check_config``), and the automatic choices a run records (``resolve_config``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from qkit.errors import QkitError
from qkit.fields import ConfigError, choices_of, defaults_of, option, validate
from qkit.option_values import (
    BACKBONES,
    BALANCE,
    CIRCUITS,
    HEADS,
    MEDMNIST_2D,
    MONITORS,
    NORMALIZE,
    ORIENTATION_FREE,
    SCHEDULERS,
    SCHEDULES,
    SIZES,
    check_circuit,
    check_classes,
    check_dataset,
    check_device,
    check_positive,
    check_regex,
    default_vertical_flip,
    is_medmnist,
    is_path,
)

__all__ = [
    "BALANCE",
    "BACKBONES",
    "CIRCUITS",
    "ConfigError",
    "DataConfig",
    "EnvConfig",
    "GROUPS",
    "HEADS",
    "MEDMNIST_2D",
    "ModelConfig",
    "MONITORS",
    "NORMALIZE",
    "ORIENTATION_FREE",
    "OptimConfig",
    "PANELS",
    "RunConfig",
    "SCHEDULERS",
    "SIZES",
    "TrainConfig",
    "choices_of",
    "default_vertical_flip",
    "defaults_of",
    "is_medmnist",
    "env_from_dict",
    "group_options",
    "is_path",
    "option",
    "option_groups",
    "validate",
]


@dataclass
class DataConfig:
    """What data, which split, how it is prepared."""

    dataset: str = option(
        "breastmnist",
        "MedMNIST 2D name (breastmnist, pneumoniamnist, pathmnist, ...) "
        "or a folder with one sub-folder of images per class.",
        check=check_dataset,
    )
    size: int = option(28, "MedMNIST image size in pixels.", choices=SIZES)
    resize: int | None = option(None, "Resize images to this many pixels (e.g. 224 for ImageNet weights).", ge=8)
    classes: tuple[int, ...] | None = option(
        None,
        "Keep only these labels, e.g. 0,1; they become classes 0..k-1 in this order.",
        check=check_classes,
        cli="csv_ints",
    )
    positive_class: int | str | None = option(
        None,
        "Positive class of a binary task, by index or name (default: malignant for BreastMNIST, a "
        "recognised name such as malignant/abnormal for image folders, else 1).",
        check=check_positive,
        cli="int_or_name",
    )
    split_seed: int = option(
        0,
        "Seed of the image-folder train/val/test split; independent of --seed, so "
        "runs over several seeds share one test set.",
        ge=0,
        lt=2**32,
    )
    group_by: str | None = option(
        None,
        "Regex on image-folder file paths naming a group (e.g. a patient id) "
        "whose images stay in one split; its first capture group if it has one.",
        check=check_regex,
    )
    balance: str = option("none", "Class balancing of the training set; 'weighted' weights the loss.", choices=BALANCE)
    augment: bool = option(True, "Random flips and rotations of training images (off with a frozen backbone).")
    vertical_flip: bool | None = option(
        None,
        "Vertical flips in the augmentation; default: only for images "
        "with no up and down (pathology, dermatoscopy, blood, tissue).",
    )
    # Off by default: at 64 px, shifts and zooms of 0.1 lowered test AUC over seeds 0-2 (docs/training.md).
    translate: float = option(
        0.0,
        "Random shifts of training images by up to this fraction of their side, with --augment (e.g. 0.1).",
        ge=0,
        le=0.5,
    )
    zoom: float = option(
        0.0, "Random zoom in or out of training images by up to this fraction, with --augment (e.g. 0.1).", ge=0, lt=1
    )
    normalize: str = option(
        "none", "Pixel normalisation; 'imagenet' for ImageNet-pretrained backbones.", choices=NORMALIZE
    )
    download: bool = option(True, "Download a missing MedMNIST file (needs internet).")

    @property
    def pixels(self) -> str:
        """The image size a run trains on, as people say it: "64 px", "224 px (resized)", or
        "as stored" for an image folder that is not resized (its files set the size)."""
        if self.resize is not None:
            return f"{self.resize} px (resized)"
        if is_medmnist(self.dataset):
            return f"{self.size} px"
        return "as stored"


@dataclass
class ModelConfig:
    """The network: backbone, head and the quantum circuit with its engine (or a named preset)."""

    # preset and engine take names from registries above this module: qkit.resolve.REGISTRY_CHOICES.
    preset: str | None = option(
        None,
        "A seed paper's network and training recipe by name (qkit presets lists "
        "them; <name>-classical is its classical twin); explicit options still override.",
    )
    backbone: str = option(
        "small_cnn", "Image feature extractor (small_cnn is fast on a CPU; see README).", choices=BACKBONES
    )
    pretrained: str = option(
        "none",
        "Backbone weights: none, imagenet (downloaded once) or the PATH of a qkit "
        "state dict such as runs/NAME/model.pt.",
    )
    freeze_backbone: bool = option(False, "Train only the head; backbone features are computed once.")
    head: str = option(
        "quantum", "Classifier head: quantum (a Qiskit circuit) or linear (classical baseline).", choices=HEADS
    )
    circuit: str = option(
        "dressed",
        f"Circuit of the quantum head: a built-in name or a path to an OpenQASM 3 file ({', '.join(CIRCUITS)}).",
        check=check_circuit,
    )
    n_qubits: int = option(4, "Qubits of the quantum head.", ge=1)
    depth: int = option(1, "Repetitions (layers) of the circuit's trainable block.", ge=1)
    engine: str = option(
        "statevector",
        "How the circuit is evaluated while training: statevector (fast, "
        "exact), density (through a device's calibrated noise, needs a backend) or connector "
        "(qiskit-machine-learning reference, slow).",
    )
    engine_options: dict = option({}, "Engine option KEY=VALUE (repeat for several).", cli="key_value")
    small_input: bool | None = option(
        None,
        "Backbone stem for small images (3x3 stride-1 first conv); default: on for 28 px images that are not resized.",
    )


_STOP = "Early stopping"


@dataclass
class OptimConfig:
    """Optimisation, schedule, weight averaging and early stopping."""

    epochs: int = option(
        150, "Maximum number of passes over the training set (for a 546-image set when --schedule scaled).", ge=1
    )
    schedule: str = option(
        "scaled",
        "scaled: --epochs, --patience and --step-size are for a 546-image training "
        "set (BreastMNIST's) and shrink as (546/n)^0.75 on larger ones, so the step budget "
        "grows as n^0.25; fixed: as given.",
        choices=SCHEDULES,
    )
    batch_size: int = option(32, "Images per optimisation step.", ge=1)
    lr: float = option(1e-3, "Adam learning rate.", gt=0)
    head_lr_scale: float = option(
        10.0, "The head learns at lr times this (a quantum head's bounded outputs need larger steps).", gt=0
    )
    weight_decay: float = option(1e-4, "Adam weight decay (L2 penalty).", ge=0)
    scheduler: str = option("cosine", "Learning-rate schedule over the epochs.", choices=SCHEDULERS)
    step_size: int = option(10, "StepLR: epochs between learning-rate drops.", ge=1)
    gamma: float = option(0.1, "StepLR: factor of each drop (0 < gamma <= 1).", gt=0, le=1)
    class_weighted_loss: bool = option(False, "Weight the loss by inverse class frequency.")
    ema_decay: float = option(
        0.998,
        "Exponential moving average of the weights, per step (0: off); validation scores it and model.pt holds it. "
        "Warmed up as timm's: step n uses min(decay, (1+n)/(10+n)), so 0.998 binds only after 4,490 steps.",
        ge=0,
        lt=1,
    )
    precise_bn: bool = option(
        True, "Recompute BatchNorm statistics on the un-augmented training images before each validation."
    )
    monitor: str = option(
        "loss", "Validation metric that picks the best epoch and drives early stopping.", choices=MONITORS, panel=_STOP
    )
    patience: int = option(40, "Stop after this many epochs without improvement (0: never).", ge=0, panel=_STOP)
    min_delta: float = option(0.0, "Smallest change that counts as an improvement.", ge=0, panel=_STOP)


@dataclass
class RunConfig:
    """Seed and naming of the run folder."""

    seed: int = option(
        0, "Random seed of initialisation, sampling and augmentation: same seed, same result.", ge=0, lt=2**32
    )
    name: str | None = option(None, "Run folder name (default: <date>-<time>-<label>).")
    label: str | None = option(None, "Short label in the run folder name (default: <dataset>-<backbone>-<head>).")


@dataclass
class EnvConfig:
    """Where a run executes; never changes its result, so it may differ on resume or re-scoring."""

    data_dir: str | None = option(
        None,
        "Folder holding the MedMNIST .npz files (default: $QKIT_DATA_DIR, "
        "else ~/.medmnist; a saved run's own folder when re-reading it).",
    )
    device: str = option(
        "auto", "Where to compute: auto (cuda when available), cpu, cuda or cuda:N.", check=check_device
    )
    num_workers: int = option(0, "DataLoader worker processes (0: load in the main process).", ge=0)
    threads: int | None = option(None, "CPU threads for torch (default: torch's choice).", ge=1)
    feature_cache: str | None = option(
        None,
        "Folder where frozen-backbone features are kept and shared between "
        "runs (qkit compare: <sweep>/features); hits are bit-identical.",
    )


GROUPS = {"data": DataConfig, "model": ModelConfig, "optim": OptimConfig, "run": RunConfig}
PANELS = {"data": "Data", "model": "Model", "optim": "Optimisation", "run": "Run", "env": "Environment"}


@dataclass
class TrainConfig:
    """Everything that decides a run's result, in four groups (see module docstring).

    Checked and resolved by ``qkit.resolve`` (``check_config``, ``resolve_config``).
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    @classmethod
    def from_options(cls, **options: Any) -> TrainConfig:
        """Build from flat option names (``epochs=5, backbone="resnet18"``); nothing is checked yet.

        A preset's options need the preset registry: ``qkit.resolve.config_from_options``
        starts from them, so here ``preset`` is refused rather than silently not applied.
        """
        if options.get("preset") is not None:
            raise ConfigError(
                "preset",
                "a preset's options come from its registry: build the config with "
                "qkit.resolve.config_from_options(preset=..., ...)",
            )
        return cls().with_options(**options)

    def with_options(self, **options: Any) -> TrainConfig:
        """A copy with flat options replaced; an unknown name is a QkitError."""
        changes = group_options(options)
        return replace(self, **{g: replace(getattr(self, g), **kv) for g, kv in changes.items()})

    def flat(self) -> dict[str, Any]:
        """All options by their flat names."""
        return {k: v for g in GROUPS for k, v in asdict(getattr(self, g)).items()}

    def to_dict(self) -> dict:
        return {g: asdict(getattr(self, g)) for g in GROUPS}

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Inverse of ``to_dict`` (JSON turns tuples into lists); unknown keys are an error."""
        if not isinstance(d, dict) or set(d) - set(GROUPS):
            raise QkitError(
                f"a config must have the groups {', '.join(GROUPS)}; got {sorted(d) if isinstance(d, dict) else d!r}"
            )
        optim = dict(d.get("optim", {}))
        optim.setdefault("schedule", "fixed")  # records from before schedules scaled trained as given
        return cls(**{g: _group_from_dict(GROUPS[g], optim if g == "optim" else d.get(g, {})) for g in GROUPS})

    def model_kwargs(self, n_classes: int) -> dict:
        m = self.model
        return dict(
            backbone=m.backbone,
            pretrained=m.pretrained,
            freeze_backbone=m.freeze_backbone,
            head=m.head,
            n_classes=n_classes,
            circuit=m.circuit,
            n_qubits=m.n_qubits,
            depth=m.depth,
            engine=m.engine,
            engine_options=dict(m.engine_options),
            small_input=bool(m.small_input),
            preset=m.preset,
        )


def option_groups() -> dict[str, str]:
    """Flat option name -> its group ("data", "model", "optim", "run")."""
    return {f.name: g for g, cls in GROUPS.items() for f in fields(cls)}


def group_options(flat: dict[str, Any], where: str = "") -> dict[str, dict]:
    """Flat options -> ``{group: {option: value}}``; an unknown name is a QkitError."""
    owner = option_groups()
    unknown = sorted(set(flat) - set(owner))
    if unknown:
        raise QkitError(f"{where}unknown option(s): {', '.join(unknown)}")
    grouped: dict[str, dict] = {}
    for key, value in flat.items():
        grouped.setdefault(owner[key], {})[key] = value
    return grouped


def _group_from_dict(cls: type, d: dict) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise QkitError(f"unknown {cls.__name__} option(s): {', '.join(unknown)}")
    d = dict(d)
    if d.get("classes") is not None:
        d["classes"] = tuple(d["classes"])
    return cls(**d)


def env_from_dict(d: dict | None) -> EnvConfig:
    return _group_from_dict(EnvConfig, d or {})
