"""``qkit explain RUN``: heatmaps of chosen images of a trained run, written to ``<run>/explain/``.

Reads the run as every command does (``load_run``, ``load_model``, ``load_data``: the data
where the run recorded it, refused if it changed), chooses images by outcome from the split's
recorded predictions (or a forward pass where the run kept none for that split), computes the
maps (``qkit.explain.cam``) and writes the grid figure, one ``.npy`` per method and
``explain-<split>.json`` describing both. Every option is checked before anything is loaded.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from qkit.errors import QkitError
from qkit.explain.cam import LABELS, parse_methods
from qkit.explain.select import parse_select

SPLITS = ("train", "val", "test")


def method_file(method: str, split: str) -> str:
    """``gradcam++`` -> ``gradcampp-test.npy`` (file names without ``+``)."""
    return f"{re.sub(r'[^a-z0-9]', '', method.replace('+', 'p'))}-{split}.npy"


def load_explainable(run_dir: str | Path, env=None):
    """(run, model, bundle): a finished run's model and its data, as ``qkit evaluate`` reads them."""
    from qkit import runs
    from qkit.config import validate
    from qkit.evaluate import load_data, load_model

    run = runs.load_run(run_dir)
    if not run.model_path.is_file():
        raise QkitError(f"{run.path} has no model.pt (unfinished run?): nothing to explain")
    model = load_model(run)
    bundle = load_data(run, validate(env or run.env))
    return run, model, bundle


def split_probs(run, model, dataset, split: str, batch_size: int = 256) -> np.ndarray:
    """The split's probabilities: the run's predictions file when it matches the data, else a forward pass."""
    if run.predictions_path(split).is_file():
        preds = run.predictions(split)
        if preds.ids == list(dataset.ids):
            return np.asarray(preds.probs, dtype=float)
    import torch

    from qkit.repro import make_loader

    out = []
    with torch.no_grad():
        for x, _ in make_loader(dataset, batch_size):
            out.append(torch.softmax(model(x).float(), dim=1))
    return torch.cat(out).numpy().astype(float)


def split_labels(dataset) -> np.ndarray:
    labels = getattr(dataset, "labels", None)
    return labels.numpy() if labels is not None else np.asarray([dataset[i][1] for i in range(len(dataset))])


def _stack(dataset, indices: list[int]):
    import torch

    return torch.stack([dataset[i][0] for i in indices])


def check_options(split: str, n: int, methods: Any) -> list[str]:
    if split not in SPLITS:
        raise QkitError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if n < 1:
        raise QkitError(f"--n must be >= 1, got {n}")
    return parse_methods(methods)


def explain_heatmaps(
    run_dir: str | Path,
    split: str = "test",
    n: int = 8,
    methods: Any = "gradcam,gradcam++",
    select: str | None = None,
    env=None,
    loaded=None,
) -> dict:
    """Compute and save the heatmaps; returns the record written to ``explain-<split>.json``."""
    from qkit import runs
    from qkit.explain.cam import compute_maps
    from qkit.explain.figures import heatmap_grid, row_label, save_png
    from qkit.explain.select import select_images

    methods = check_options(split, n, methods)
    start = time.perf_counter()
    run, model, bundle = loaded or load_explainable(run_dir, env)
    positive = bundle.positive_class if bundle.n_classes == 2 else None
    wanted = parse_select(select or ("tp,tn,fp,fn" if positive is not None else "correct,wrong"), positive is not None)
    dataset = getattr(bundle, split)
    labels = split_labels(dataset)
    chosen = select_images(labels, split_probs(run, model, dataset, split), positive, wanted, n)
    images = _stack(dataset, chosen.indices)
    result = compute_maps(model, images, methods, positive)
    names = bundle.class_names
    explained = result["explained_class"]
    rows = []
    for k, i in enumerate(chosen.indices):
        c = explained if explained is not None else int(result["probs"][k].argmax())
        rows.append(
            row_label(dataset.ids[i], names[int(labels[i])], float(result["probs"][k][c]), names[c], chosen.outcomes[k])
        )
    caption = explain_caption(names, explained, result["layer"].name, methods)
    out = run.path / "explain"
    fig = heatmap_grid(images.numpy(), result["maps"], rows, caption)
    figure = save_png(fig, out / f"heatmaps-{split}.png")
    files = {}
    for m, arr in result["maps"].items():
        path = out / method_file(m, split)
        runs.atomic_write(path, lambda f, a=arr: np.save(f, a))
        files[m] = path.name
    record = {
        "split": split,
        "methods": methods,
        "select": wanted,
        "target_layer": result["layer"].name,
        "target_layer_shape": list(result["layer"].shape),
        "explained_class": explained,
        "explained": caption,
        "image_shape": list(images.shape[1:]),
        "samples": [
            {
                "id": dataset.ids[i],
                "index": i,
                "label": int(labels[i]),
                "outcome": chosen.outcomes[k],
                "probs": [float(p) for p in result["probs"][k]],
            }
            for k, i in enumerate(chosen.indices)
        ],
        "maps": files,
        "figure": figure.name,
        "seconds": round(time.perf_counter() - start, 3),
    }
    runs.atomic_write_json(out / f"explain-{split}.json", record)
    record["path"] = str(figure)
    return record


def explain_caption(names: list[str], explained: int | None, layer: str, methods: list[str]) -> str:
    how = ", ".join(LABELS[m] for m in methods)
    if explained is not None:
        other = names[1 - explained]
        what = (
            f"Heatmaps explain the log-odds of '{names[explained]}' (logit {names[explained]} − logit {other}): "
            f"warm regions raise the predicted probability of {names[explained]}."
        )
    else:
        what = "Heatmaps explain each image's predicted class (its logit)."
    return (
        f"{what}\n{how} (pytorch-grad-cam) at {layer}, through the whole hybrid model "
        "(backbone → pre-net → quantum layer → post-net); each map scaled to 0–1."
    )


def explain_quantum(run_dir: str | Path, split: str = "test", env=None, loaded=None) -> dict:
    """Quantum feature-space figures and ``explain/quantum-<split>/quantum.json``; returns that record."""
    from qkit import runs
    from qkit.explain import quantum as qx
    from qkit.explain import quantum_figures as qfig
    from qkit.explain.figures import save_png

    if split not in SPLITS:
        raise QkitError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    start = time.perf_counter()
    run, model, bundle = loaded or load_explainable(run_dir, env)
    qx.quantum_layer(model)  # a linear head: one line, before any compute
    positive = bundle.positive_class if bundle.n_classes == 2 else None
    qf = qx.collect(model, getattr(bundle, split))
    scores = qx.separability(qf, positive)
    names = bundle.class_names
    out = run.path / "explain" / f"quantum-{split}"
    figures = {
        "outputs": qfig.outputs_figure(qf, names),
        "projection": qfig.projection_figure(qf, names, scores),
        "bloch": qfig.bloch_figure(qf, names),
        "separability": qfig.separability_figure(scores),
    }
    files = {k: save_png(fig, out / f"{k}.png").name for k, fig in figures.items()}
    record = {
        "split": split,
        "n": int(len(qf.labels)),
        "observables": qf.observables,
        "n_qubits": int(qf.bloch.shape[1]),
        "positive_class": positive,
        "class_names": names,
        "separability": scores,
        "per_class": qx.summary(qf, names),
        "figures": files,
        "probe": f"standardised logistic regression, {qx.PROBE_FOLDS}-fold stratified CV, out-of-fold AUC",
        "seconds": round(time.perf_counter() - start, 3),
    }
    runs.atomic_write_json(out / "quantum.json", record)
    record["path"] = str(out)
    return record
