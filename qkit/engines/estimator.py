"""The estimator engine: the layer's circuit run by qiskit-ibm-runtime's Estimator on a backend.

The circuit is transpiled once, at construction, to an ISA circuit for the resolved
backend (``qkit.hardware.resolve_backend``: ``fake_<name>``, ``snapshot:<name>`` or an IBM
device), and the observables are mapped through its layout. ``execute`` then sends one
PUB per call: the circuit, the observables ``[n_obs]`` and a parameter array
``[B, 1, n_params]``, which broadcast to ``[B, n_obs]`` expectation values from a single
primitive job, whatever the batch size.

It is the runtime's client-side ``qiskit_ibm_runtime.executor_estimator.Estimator`` (built
on the Executor primitive) rather than the legacy ``EstimatorV2``, deprecated since 0.50.
On fake backends and snapshots it runs in the runtime's local testing mode: Aer samples
the backend's full noise model, readout error included, so it is an emulation of the
device, unlike Aer's own EstimatorV2, which ignores readout error.

Forward only: the results are sampled estimates with no gradient, and backward through
them raises a QkitError (train with ``statevector``, then re-score with this engine).
What ran where is kept for the run records: ``backend_source``, ``physical_qubits`` and
the ``job_ids`` of every call.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from qkit.engines.base import Engine, LayerProgram
from qkit.engines.spec import Capabilities
from qkit.errors import QkitError

# 1 = TREX (twirled readout error extinction); 2 (ZNE) is left out until it is measured here.
RESILIENCE_LEVELS = (0, 1)


def _error(message: str) -> QkitError:
    return QkitError(f"engine 'estimator': {message}")


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _parse_layout(layout) -> list[int] | None:
    """A list of physical qubits; ``"0,1,2"`` or ``"[0, 1, 2]"`` too, as the CLI passes text."""
    if layout is None:
        return None
    if isinstance(layout, str):
        text = layout.strip().removeprefix("[").removesuffix("]")
        if not re.fullmatch(r"\s*\d+\s*(,\s*\d+\s*)*", text):
            raise _error(f"layout must list physical qubits, e.g. [0, 1, 2], got {layout!r}")
        return [int(q) for q in text.split(",")]
    if not isinstance(layout, (list, tuple)) or not all(_is_int(q) for q in layout):
        raise _error(f"layout must list physical qubits (integers), got {layout!r}")
    return [int(q) for q in layout]


class _ForwardOnly(torch.autograd.Function):
    """Passes the estimator's values through and refuses to differentiate them.

    Without it the result would silently carry no gradient and a training step would
    leave the circuit's weights unchanged; an error says why at the first backward.
    """

    @staticmethod
    def forward(ctx, values, inputs, weights):
        return values

    @staticmethod
    def backward(ctx, grad):
        raise QkitError("the estimator engine is forward-only; train with statevector")


class EstimatorEngine(Engine):
    """Expectation values from the runtime's Estimator on a backend (hardware or emulation).

    Options:
        backend: ``fake_<name>``, ``snapshot:<name>``, a snapshot ``.json`` or an IBM device.
        shots: shots per parameter set and observable basis (``default_shots``).
        seed: seeds the local simulator and the transpiler, so emulations are reproducible;
            IBM hardware cannot be seeded, so a seed there is an error.
        optimization_level: the preset pass manager's level, 0 to 3.
        layout: physical qubits for the circuit's qubits (initial layout), in qubit order.
        resilience_level: 0 (none) or 1 (TREX readout-error mitigation).
    """

    name = "estimator"
    capabilities = Capabilities(differentiable=False, shots=True, noise=True)

    def __init__(
        self,
        program: LayerProgram,
        dtype: torch.dtype = torch.float32,
        *,
        backend: str | None = None,
        shots: int = 1024,
        seed: int | None = None,
        optimization_level: int = 1,
        layout: list[int] | None = None,
        resilience_level: int = 0,
    ):
        super().__init__(program, dtype)
        # Every value is checked before the backend is resolved (an IBM device needs the
        # network) and before transpiling.
        if backend is None:
            raise _error("option backend is required (fake_lagos, snapshot:ibm_lagos, ibm_torino)")
        if not isinstance(backend, str):
            raise _error(f"backend must be a name, got {backend!r}")
        if not _is_int(shots) or shots < 1:
            raise _error(f"shots must be an integer >= 1, got {shots!r}")
        if seed is not None and not _is_int(seed):
            raise _error(f"seed must be an integer or null, got {seed!r}")
        if not _is_int(optimization_level) or not 0 <= optimization_level <= 3:
            raise _error(f"optimization_level must be 0, 1, 2 or 3, got {optimization_level!r}")
        if not _is_int(resilience_level) or resilience_level not in RESILIENCE_LEVELS:
            raise _error(f"resilience_level must be 0 (none) or 1 (TREX readout mitigation), got {resilience_level!r}")
        layout = _parse_layout(layout)
        n = program.n_qubits
        if layout is not None:
            if len(layout) != n:
                raise _error(f"layout has {len(layout)} qubits but the circuit has {n}")
            if len(set(layout)) != n:
                raise _error(f"layout repeats a physical qubit: {layout}")

        from qkit.hardware import resolve_backend

        resolved = resolve_backend(backend)
        device = resolved.backend
        width = device.num_qubits
        if n > width:
            raise _error(f"the circuit has {n} qubits but {device.name} has {width}")
        if layout is not None and max(layout) >= width:
            raise _error(f"layout {layout} names a qubit that {device.name} lacks (it has 0..{width - 1})")
        if seed is not None and resolved.is_hardware:
            raise _error(
                f"seed makes emulations reproducible; {device.name} is hardware and cannot be seeded (leave seed out)"
            )

        self.backend_name, self.backend_kind = resolved.name, resolved.kind
        self.backend_source = resolved.source
        self.shots, self.seed, self.resilience_level = int(shots), seed, int(resilience_level)
        self.optimization_level = int(optimization_level)
        self.job_ids: list[str] = []
        self._compile(device, layout, seed)
        self._estimator = self._make_estimator(device)

    def _compile(self, device, layout, seed) -> None:
        from qiskit.transpiler import generate_preset_pass_manager

        # A fixed transpiler seed without a user seed too: the same layer compiles to the
        # same ISA circuit (and physical qubits) every time, so records stay comparable.
        pm = generate_preset_pass_manager(
            optimization_level=self.optimization_level,
            backend=device,
            initial_layout=layout,
            seed_transpiler=0 if seed is None else int(seed),
        )
        try:
            isa = pm.run(self.program.circuit)
        except Exception as exc:  # TranspilerError: e.g. a layout the device cannot route
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise _error(f"cannot transpile the circuit for {device.name}: {first}") from None
        self.isa_circuit = isa
        self.physical_qubits = [int(q) for q in isa.layout.final_index_layout()]
        self.isa_observables = [op.apply_layout(isa.layout) for op in self.program.observables]
        # The ISA circuit orders its parameters by name (w before x); bind by Parameter.
        # A parameter the transpiler removed has no effect and is left out; a new one is a bug.
        try:
            self._columns = np.array(self.program.columns(isa.parameters), dtype=np.int64)
        except QkitError as exc:
            raise _error(str(exc)) from None

    def _make_estimator(self, device):
        from qiskit_ibm_runtime.executor_estimator import Estimator

        options = {"default_shots": self.shots, "resilience_level": self.resilience_level}
        if self.seed is not None:
            # Seeds Aer's sampling and the twirling randomisations in local testing mode.
            options["simulator"] = {"seed_simulator": int(self.seed)}
        return Estimator(mode=device, options=options)

    @property
    def n_params(self) -> int:
        return len(self._columns)

    @property
    def columns(self) -> np.ndarray:
        """Where each ISA-circuit parameter comes from in ``[inputs..., weights...]`` rows
        (the ISA circuit orders parameters by name, so binding goes by Parameter, not position)."""
        return self._columns

    def run_values(self, values: np.ndarray) -> np.ndarray:
        """Expectation values ``[B, n_obs]`` for circuit parameter rows ``[B, inputs + weights]``."""
        batch = values.shape[0]
        if self.n_params:
            pub = (self.isa_circuit, self.isa_observables, values[:, None, self._columns])
        else:  # nothing to bind: evaluate once, same for every row
            pub = (self.isa_circuit, self.isa_observables)
        job = self._estimator.run([pub])
        self.job_ids.append(job.job_id())
        try:
            evs = np.asarray(job.result()[0].data.evs, dtype=np.float64)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise _error(f"job {job.job_id()} on {self.backend_name} failed: {first}") from None
        return np.broadcast_to(evs.reshape(-1, len(self.isa_observables)), (batch, len(self.isa_observables))).copy()

    def execute(self, inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Expectation values ``[B, n_observables]`` from one runtime Estimator job on the backend (forward only)."""
        batch = inputs.shape[0]
        n_obs = len(self.program.observables)
        if batch == 0:
            out = np.zeros((0, n_obs))
        else:
            x = inputs.detach().cpu().double().numpy().reshape(batch, -1)
            w = weights.detach().cpu().double().numpy().reshape(1, -1)
            out = self.run_values(np.concatenate([x, np.repeat(w, batch, axis=0)], axis=1))
        values = torch.as_tensor(out, dtype=inputs.dtype, device=inputs.device)
        return _ForwardOnly.apply(values, inputs, weights)

    def extra_repr(self) -> str:
        return (
            f"backend={self.backend_name}, shots={self.shots}, "
            f"resilience_level={self.resilience_level}, qubits={self.physical_qubits}"
        )
