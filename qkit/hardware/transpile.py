"""A trained run's circuit transpiled for a device, on the layout ``choose_layout`` picks.

``transpile_run(run_dir, backend_name)`` rebuilds the run's model (``config.json``; the
trained weights from ``model.pt`` when the run has one), scores layouts over the layer's
noiseless outputs on sample inputs (uniform over the encoder's range, the run's own circuit
weights) and writes into ``<run>/hardware/<backend>/``:

* ``circuit.qasm``: the ISA circuit as OpenQASM 3 (``qiskit.qasm3.dumps``);
* ``layout.json``: the chosen layout, the ranked candidates with their estimates, the preset
  pass manager's default, and the ISA circuit's depth, two-qubit gate count and duration;
* ``circuit.png``: a drawing of the ISA circuit (into its own ``Figure``: pyplot's global
  state and backend are left alone).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qkit.errors import QkitError

SAMPLES = 16


@dataclass
class TranspiledRun:
    """What ``transpile_run`` chose and where it wrote it."""

    run: str
    backend_source: str
    choice: Any  # qkit.hardware.layout.LayoutChoice
    out_dir: Path
    files: dict


def _program_and_values(run: Any, samples: int, seed: int) -> tuple[Any, Any]:
    """The run's LayerProgram and sample parameter rows in ``circuit.parameters`` order."""
    import numpy as np

    from qkit.evaluate import load_model
    from qkit.network import build_model_from_config

    if not run.record.model:
        raise QkitError(f"{run.path} records no model (config.json lacks 'model')")
    # The trained weights when the run has them; before training, the initial ones.
    model = load_model(run) if run.model_path.is_file() else build_model_from_config(run.record.model)
    quantum = getattr(getattr(model, "head", None), "quantum", None)
    if quantum is None:
        raise QkitError(f"run {run.name} has no quantum head: nothing to transpile")
    program = quantum.program
    scale = float(getattr(model.head, "input_scale", 1.0))
    rng = np.random.default_rng(seed)
    inputs = rng.uniform(-scale, scale, size=(samples, len(program.inputs)))
    weights = quantum.weight.detach().double().cpu().numpy().reshape(1, -1).repeat(samples, axis=0)
    rows = np.concatenate([inputs, weights], axis=1)
    return program, rows[:, program.columns(program.circuit.parameters)]


def draw_circuit_png(circuit: Any, path: Path) -> Path:
    """A PNG drawing of ``circuit``, drawn into its own Figure (no pyplot state touched).

    Qiskit's ``mpl`` drawer when its optional dependency (pylatexenc) is installed, else the
    text drawing rendered in a monospace font.
    """
    from matplotlib.figure import Figure
    from qiskit.utils import optionals

    from qkit.runs import atomic_write

    if optionals.HAS_PYLATEX:
        width = min(60.0, max(6.0, 0.45 * circuit.depth() + 2))
        height = min(40.0, max(2.5, 0.55 * circuit.num_qubits + 1))
        figure = Figure(figsize=(width, height))
        circuit.draw("mpl", ax=figure.add_subplot(1, 1, 1), idle_wires=False, fold=-1)
    else:
        text = str(circuit.draw("text", idle_wires=False, fold=-1))
        lines = text.splitlines() or [""]
        columns = max(len(line) for line in lines)
        figure = Figure(figsize=(min(200.0, max(4.0, 0.075 * columns + 0.5)), max(1.5, 0.17 * len(lines) + 0.5)))
        figure.text(0.01, 0.99, text, family="monospace", fontsize=9, va="top", ha="left")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return atomic_write(path, lambda f: f.write(buffer.getvalue()))


def transpile_run(
    run_dir: str | Path,
    backend_name: str,
    *,
    top: int = 5,
    out: str | Path | None = None,
    samples: int = SAMPLES,
    seed: int = 0,
    draw: bool = True,
) -> TranspiledRun:
    """Choose a layout for the run's circuit on ``backend_name`` and write the files (module docstring)."""
    from qiskit import qasm3

    from qkit.hardware.backends import folder_name, resolve_backend
    from qkit.hardware.layout import choose_layout
    from qkit.runs import atomic_write_json, atomic_write_text, load_run

    if not isinstance(top, int) or top < 1:
        raise QkitError(f"top must be an integer >= 1, got {top!r}")
    run = load_run(run_dir)
    program, values = _program_and_values(run, samples, seed)
    resolved = resolve_backend(backend_name)
    backend = resolved.backend
    if program.n_qubits > backend.num_qubits:
        raise QkitError(f"the circuit has {program.n_qubits} qubits but {backend.name} has {backend.num_qubits}")
    choice = choose_layout(program, None, backend, top=top, values=values)
    out_dir = Path(out) if out is not None else run.path / "hardware" / folder_name(backend_name)
    files = {"circuit.qasm": atomic_write_text(out_dir / "circuit.qasm", qasm3.dumps(choice.isa_circuit))}
    record = {
        "run": run.name,
        "backend": backend_name,
        "backend_source": resolved.source,
        "physical_qubits": choice.physical_qubits,
        "samples": samples,
        "seed": seed,
        **choice.to_dict(),
    }
    files["layout.json"] = atomic_write_json(out_dir / "layout.json", record)
    if draw:
        files["circuit.png"] = draw_circuit_png(choice.isa_circuit, out_dir / "circuit.png")
    return TranspiledRun(run.name, resolved.source, choice, out_dir, files)
