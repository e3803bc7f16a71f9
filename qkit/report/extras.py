"""Report sections for what later commands added to a run folder, each shown only where present.

* ``explain/``: heatmap grids (``qkit explain``) and the quantum feature space (``--quantum``);
* ``hardware/<backend>/<plan>/hardware.json`` (``qkit run-hardware``): one table row per plan,
  its figure collapsed; ``compare-*/`` folders (``qkit compare-hardware``): their table and figure;
* ``noise/*/`` (``qkit noise study``): its points as a table from ``summary.json``, its finding and
  figure (a folder without a summary: its markdown as it is);
* ``evaluations/*/metrics.json`` (``qkit evaluate``): one row per re-scoring.
"""

from __future__ import annotations

from pathlib import Path

from qkit.report.document import Code, Image, Section, Table, Text
from qkit.report.sections import fmt

MAX_FIGURES = 12  # per section: a report stays readable (and its HTML small)


def _read(path: Path) -> dict | None:
    from qkit.errors import QkitError
    from qkit.runs import read_json

    try:
        data = read_json(path)
    except (QkitError, OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def explain_section(run) -> Section | None:
    root = run.path / "explain"
    if not root.is_dir():
        return None
    blocks = []
    for record_path in sorted(root.glob("explain-*.json")):
        record = _read(record_path) or {}
        grid = root / str(record.get("figure", ""))
        if grid.is_file():
            blocks.append(Image(grid, f"{record.get('split', '?')} split: {record.get('explained', '')}"))
    for record_path in sorted(root.glob("quantum-*/quantum.json")):
        record = _read(record_path) or {}
        blocks += quantum_blocks(record_path.parent, record)
    return Section("Explanations", blocks, id="explain") if blocks else None


def quantum_blocks(folder: Path, record: dict) -> list:
    labels = {
        "prenet_inputs": "pre-net inputs (backbone features)",
        "prenet_outputs": "pre-net outputs (circuit inputs)",
        "quantum_outputs": "quantum outputs",
        "bloch_vectors": "Bloch vectors (all qubits)",
    }
    rows = [
        [labels.get(k, k), str(v.get("dims")), fmt(v.get("probe_auc")), fmt(v.get("silhouette"))]
        for k, v in (record.get("separability") or {}).items()
    ]
    blocks = [
        Table(
            ["representation", "dims", "linear probe AUC", "silhouette"],
            rows,
            f"Quantum feature space, {record.get('split', '?')} split ({record.get('n', '?')} images); probe: "
            f"{record.get('probe', '')}.",
            id=f"separability-{record.get('split', '')}",
        )
    ]
    for key in ("separability", "projection", "outputs", "bloch"):
        path = folder / f"{key}.png"
        if path.is_file():
            blocks.append(Image(path, f"Quantum feature space: {key}", half=key in ("separability", "projection")))
    return blocks


def hardware_section(run) -> Section | None:
    root = run.path / "hardware"
    records = sorted(root.glob("*/*/hardware.json")) if root.is_dir() else []
    compares = sorted(root.glob("*/compare-*/compare.json")) if root.is_dir() else []
    if not records and not compares:
        return None
    rows, figures = [], []
    for path in records:
        rec = _read(path)
        if rec is None:
            continue
        m = rec.get("metrics") or {}
        rows.append(
            [
                str(rec.get("backend", path.parent.parent.name)),
                path.parent.name,
                str(rec.get("mitigation")),
                f"{rec.get('shots')} × {rec.get('repeat')}",
                str(rec.get("physical_qubits")),
                *(_mean_std(m.get(k)) for k in ("auc", "accuracy", "sensitivity", "specificity", "delta", "agreement")),
            ]
        )
        if (path.parent / "hardware.png").is_file():
            figures.append(
                Image(path.parent / "hardware.png", f"{path.parent.parent.name} / {path.parent.name}", collapsed=True)
            )
    blocks = []
    if rows:
        blocks.append(
            Table(
                [
                    "backend",
                    "plan",
                    "mitigation",
                    "shots × repeat",
                    "qubits",
                    "AUC",
                    "accuracy",
                    "sensitivity",
                    "specificity",
                    "mean |Δ⟨O⟩| vs exact",
                    "agreement",
                ],
                rows,
                "Hardware runs (mean ± std over repetitions; exact = the run's statevector model).",
                id="hardware",
            )
        )
    blocks += figures[:MAX_FIGURES]
    for path in compares:
        blocks += compare_blocks(path)
    return Section("Hardware", blocks, id="hardware-section")


def _mean_std(m) -> str:
    if not isinstance(m, dict) or m.get("mean") is None:
        return "-"
    return f"{m['mean']:.4f} ± {m.get('std') or 0:.4f}"


def compare_blocks(path: Path) -> list:
    rec = _read(path) or {}
    keys = ("auc", "accuracy", "sensitivity", "specificity", "delta", "agreement")
    rows = [
        [str(r.get("setting")), *(_mean_std((r.get("metrics") or {}).get(k)) for k in keys)]
        for r in rec.get("rows") or []
        if isinstance(r, dict)
    ]
    blocks = (
        [Table(["setting", *keys], rows, f"compare-hardware: {path.parent.parent.name}, {path.parent.name}")]
        if rows
        else []
    )
    if (path.parent / "compare.png").is_file():
        blocks.append(Image(path.parent / "compare.png", f"compare-hardware: {path.parent.name}"))
    return blocks


def noise_blocks(study: Path) -> list:
    """A ``qkit noise study`` folder: its points as a table (summary.json), its finding and figure."""
    from qkit.noise.report import NAMES, SHOWN

    summary = _read(study / "summary.json") or {}
    config = summary.get("study") or {}
    rows = [
        [
            str(r.get("point")),
            str(r.get("mitigation", "none")),
            *(_mean_std((r.get("metrics") or {}).get(k)) for k in SHOWN),
        ]
        for r in summary.get("points") or []
        if isinstance(r, dict)
    ]
    if not rows:  # not a study qkit wrote: show its markdown as it is
        return [Code(md.read_text(encoding="utf-8", errors="replace")) for md in sorted(study.glob("*.md"))[:1]]
    shots = f"{config.get('shots')} shots" if config.get("shots") else "exact noisy values"
    blocks = [
        Table(
            [str(config.get("vary", "point")), "mitigation", *(NAMES[k] for k in SHOWN)],
            rows,
            f"noise study {study.name}: {config.get('vary')} on {config.get('backend')}, {config.get('split')} "
            f"split, {shots}, {config.get('repeat')} repetition(s)",
        )
    ]
    if summary.get("finding"):
        blocks.append(Text(str(summary["finding"])))
    blocks += [Image(png, f"{study.name}: {png.stem}") for png in sorted(study.glob("*.png"))[:MAX_FIGURES]]
    return blocks


def noise_section(run) -> Section | None:
    root = run.path / "noise"
    studies = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    blocks = [block for study in studies for block in noise_blocks(study)]
    return Section("Noise studies", blocks, id="noise") if blocks else None


def evaluations_section(run) -> Section | None:
    rows = []
    for folder in run.evaluations():
        rec = _read(folder / "metrics.json")
        if rec:
            rows.append(
                [
                    folder.name,
                    str(rec.get("split")),
                    str(rec.get("engine")),
                    *(fmt(rec.get(k)) for k in ("auc", "accuracy", "sensitivity", "specificity")),
                ]
            )
    if not rows:
        return None
    return Section(
        "Re-evaluations",
        [
            Table(
                ["folder", "split", "engine", "auc", "accuracy", "sensitivity", "specificity"],
                rows,
                "qkit evaluate results",
            )
        ],
        id="evaluations",
    )
