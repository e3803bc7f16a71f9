"""Presets: every seed paper's architecture by name, each with a parameter-matched classical twin.

    qkit train --preset hqcnn             # the paper's network and training recipe
    qkit train --preset hqcnn-classical   # the same with the quantum layer made classical
    qkit presets                          # names, sources, parameter counts, the papers' numbers

One module per seed-architecture family registers its presets (``register_preset``); the
registry and these modules import nothing heavy, so ``--preset`` is validated at once.
``build_preset_model`` (``qkit.presets.factory``, the one factory; also reached through
``qkit.network.build_network(preset=...)``) builds a network.

Presets whose quantum layer is the head's ``head.quantum`` (a ``QuantumLayer`` between
``head.encode`` and ``head.post``) work with run-hardware, noise studies and explain:
qkit-default, qtl, quantum-end, quantum-mid, hqcnn, effnet-qnn. hqnn-parallel (four circuits
in ``head.circuits``), hqnn-quanv (the quantum kernel inside the backbone) and every twin
record another head kind, and those commands refuse them with one line.
"""

from __future__ import annotations

# Registration order is listing order: by seed paper, then qkit's own default (not sorted).
# isort: off
from qkit.presets import qtl  # noqa: F401
from qkit.presets import resnet_quantum  # noqa: F401
from qkit.presets import hqcnn  # noqa: F401
from qkit.presets import hqnn  # noqa: F401
from qkit.presets import effnet  # noqa: F401
from qkit.presets import default  # noqa: F401

# isort: on
from qkit.presets.registry import (
    TWIN_SUFFIX,
    Preset,
    check_preset_model,
    get_preset,
    list_presets,
    preset_options,
    register_preset,
)


def build_preset_model(name: str, n_classes: int = 2, **options):
    """Build preset ``name`` (see ``qkit.presets.factory.build_preset_model``)."""
    from qkit.presets.factory import build_preset_model as build

    return build(name, n_classes, **options)


__all__ = [
    "Preset",
    "TWIN_SUFFIX",
    "build_preset_model",
    "check_preset_model",
    "get_preset",
    "list_presets",
    "preset_options",
    "register_preset",
]
