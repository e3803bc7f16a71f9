"""QuantumLayer: a Qiskit circuit as a PyTorch layer.

The Qiskit circuit is the single source of truth; an engine is a way to evaluate it:

- ``statevector`` (default): the circuit compiled into batched torch operations, exact
  expectation values, autograd gradients, CPU or CUDA, float32 or float64.
- ``connector``: qiskit-machine-learning's ``EstimatorQNN`` + ``TorchConnector``, the
  reference for correctness (slow).

Example::

    x, w = ParameterVector("x", 2), ParameterVector("w", 2)
    qc = QuantumCircuit(2); qc.ry(x[0], 0); qc.ry(x[1], 1); qc.cx(0, 1)
    qc.ry(w[0], 0); qc.ry(w[1], 1)
    layer = QuantumLayer(qc, x, w, [SparsePauliOp("IZ"), SparsePauliOp("ZI")])
    layer(torch.rand(8, 2)).shape  # torch.Size([8, 2])
"""

from __future__ import annotations

from typing import Sequence

import torch
from qiskit.circuit import Parameter, QuantumCircuit

import qkit.engines.connector  # noqa: F401  (registers the engine)
import qkit.engines.statevector  # noqa: F401  (registers the engine)
from qkit.engines.base import ENGINES, make_engine, validate_layer
from qkit.errors import QkitError

ENGINE_NAMES = tuple(sorted(ENGINES))

# Weights start near zero (normal, std 0.01), as in Mari et al.'s dressed quantum circuit:
# the circuit then starts close to its embedding alone, so the first gradients are
# informative about the data rather than lost in a random circuit (barren plateaus).
WEIGHT_INIT_STD = 0.01


class QuantumLayer(torch.nn.Module):
    """Maps inputs ``[B, n_inputs]`` to expectation values ``[B, n_observables]``.

    Args:
        circuit: a unitary ``QuantumCircuit`` whose parameters are all inputs or weights.
        input_params: circuit parameters fed by the input columns, in column order.
        weight_params: trainable parameters, in the order of ``self.weight``.
        observables: ``SparsePauliOp`` (or Pauli labels), one output each.
        engine: ``"statevector"`` or ``"connector"``.
        dtype: float32 (default) or float64; the statevector engine computes in it.
        device: where the weight and the engine's constants live.
        initial_weights: optional starting values; default normal(0, 0.01).
    """

    def __init__(self, circuit: QuantumCircuit, input_params: Sequence[Parameter],
                 weight_params: Sequence[Parameter], observables, engine: str = "statevector",
                 dtype: torch.dtype = torch.float32, device=None, initial_weights=None):
        super().__init__()
        if dtype not in (torch.float32, torch.float64):
            raise QkitError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.program = validate_layer(circuit, input_params, weight_params, observables)
        self.engine = make_engine(engine, self.program, dtype)
        n_weights = len(self.program.weights)
        if initial_weights is None:
            init = torch.randn(n_weights, dtype=dtype) * WEIGHT_INIT_STD
        else:
            init = torch.as_tensor(initial_weights, dtype=dtype).reshape(-1)
            if init.numel() != n_weights:
                raise QkitError(f"initial_weights has {init.numel()} values, the circuit has "
                                f"{n_weights} weights")
        self.weight = torch.nn.Parameter(init)
        if device is not None:
            self.to(device)

    @classmethod
    def from_spec(cls, spec, engine: str = "statevector", **kwargs) -> "QuantumLayer":
        """Build from a ``qkit.circuits.CircuitSpec``."""
        return cls(spec.circuit, spec.inputs, spec.weights, spec.observables, engine=engine,
                   **kwargs)

    @property
    def n_inputs(self) -> int:
        return len(self.program.inputs)

    @property
    def n_outputs(self) -> int:
        return len(self.program.observables)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 1:
            return self.forward(x[None])[0]
        if x.dim() != 2 or x.shape[1] != self.n_inputs:
            raise QkitError(f"QuantumLayer expects inputs of shape [batch, {self.n_inputs}], "
                            f"got {list(x.shape)}")
        return self.engine.execute(x, self.weight)

    def extra_repr(self) -> str:
        return (f"qubits={self.program.n_qubits}, inputs={self.n_inputs}, "
                f"weights={self.weight.numel()}, outputs={self.n_outputs}, "
                f"engine={self.engine.name}")
