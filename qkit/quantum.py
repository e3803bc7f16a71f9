"""QuantumLayer: a Qiskit circuit as a PyTorch layer.

The Qiskit circuit is the single source of truth; an engine is a way to evaluate it:

- ``statevector`` (default): the circuit compiled into batched torch operations, exact
  expectation values, autograd gradients, CPU or CUDA, float32 or float64.
- ``connector``: qiskit-machine-learning's ``EstimatorQNN`` + ``TorchConnector``, the
  reference for correctness (slow).

An engine is chosen by name or by an ``EngineSpec`` (name plus constructor options,
``qkit.engines``); ``engine_options`` adds options to a name. Names and options are
checked, and the circuit against the engine's capabilities, before any compute.

Example::

    x, w = ParameterVector("x", 2), ParameterVector("w", 2)
    qc = QuantumCircuit(2); qc.ry(x[0], 0); qc.ry(x[1], 1); qc.cx(0, 1)
    qc.ry(w[0], 0); qc.ry(w[1], 1)
    layer = QuantumLayer(qc, x, w, [SparsePauliOp("IZ"), SparsePauliOp("ZI")])
    layer(torch.rand(8, 2)).shape  # torch.Size([8, 2])
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from qiskit.circuit import Parameter, QuantumCircuit

from qkit.engines import EngineSpec, engine_class, engine_names
from qkit.engines.base import validate_layer
from qkit.errors import QkitError

# Weights start near zero (normal, std 0.01), as in Mari et al.'s dressed quantum circuit:
# the circuit then starts close to its embedding alone, so the first gradients are
# informative about the data rather than lost in a random circuit (barren plateaus).
WEIGHT_INIT_STD = 0.01


class QuantumLayer(torch.nn.Module):
    """Maps inputs ``[B, n_inputs]`` to expectation values ``[B, n_observables]``.

    Args:
        circuit: a ``QuantumCircuit`` whose parameters are all inputs or weights; unitary,
            unless the engine's capabilities declare ``non_unitary`` (measure, reset, ...).
        input_params: circuit parameters fed by the input columns, in column order.
        weight_params: trainable parameters, in the order of ``self.weight``.
        observables: ``SparsePauliOp`` (or Pauli labels), one output each.
        engine: a registered engine name (``qkit.engines.engine_names()``), an
            ``EngineSpec``, or its ``to_dict()`` form.
        dtype: float32 (default) or float64; the statevector engine computes in it.
        device: where the weight and the engine's constants live.
        initial_weights: optional starting values; default normal(0, 0.01).
        engine_options: options for the engine's constructor, merged into ``engine``'s
            (a key given both ways is an error).
    """

    def __init__(
        self,
        circuit: QuantumCircuit,
        input_params: Sequence[Parameter],
        weight_params: Sequence[Parameter],
        observables,
        engine: str | EngineSpec = "statevector",
        dtype: torch.dtype = torch.float32,
        device=None,
        initial_weights=None,
        *,
        engine_options: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        if dtype not in (torch.float32, torch.float64):
            raise QkitError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.engine_spec = EngineSpec.parse(engine).with_options(engine_options)
        engine_cls = engine_class(self.engine_spec)  # unknown engine/option: fails here
        self.program = validate_layer(
            circuit, input_params, weight_params, observables, capabilities=engine_cls.capabilities
        )
        n_weights = len(self.program.weights)
        if initial_weights is None:
            init = torch.randn(n_weights, dtype=dtype) * WEIGHT_INIT_STD
        else:
            init = torch.as_tensor(initial_weights, dtype=dtype).reshape(-1)
            if init.numel() != n_weights:
                raise QkitError(f"initial_weights has {init.numel()} values, the circuit has {n_weights} weights")
        # Last: compiling can be the expensive part, and every input is checked by now.
        self.engine = engine_cls(self.program, dtype=dtype, **self.engine_spec.options)
        self.weight = torch.nn.Parameter(init)
        if device is not None:
            self.to(device)

    @classmethod
    def from_spec(
        cls, spec, engine: str | EngineSpec = "statevector", engine_options: Mapping[str, Any] | None = None, **kwargs
    ) -> "QuantumLayer":
        """Build from a ``qkit.circuits.CircuitSpec``."""
        return cls(
            spec.circuit,
            spec.inputs,
            spec.weights,
            spec.observables,
            engine=engine,
            engine_options=engine_options,
            **kwargs,
        )

    @property
    def n_inputs(self) -> int:
        """Input columns the layer takes: one per input parameter of the circuit."""
        return len(self.program.inputs)

    @property
    def n_outputs(self) -> int:
        """Outputs the layer gives: one expectation value per observable."""
        return len(self.program.observables)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Expectation values ``[B, n_outputs]`` for inputs ``[B, n_inputs]`` (a single row
        ``[n_inputs]`` gives ``[n_outputs]``), differentiable in ``x`` and ``self.weight`` when the
        engine is (``engine.capabilities.differentiable``)."""
        if x.dim() == 1:
            return self.forward(x[None])[0]
        if x.dim() != 2 or x.shape[1] != self.n_inputs:
            raise QkitError(f"QuantumLayer expects inputs of shape [batch, {self.n_inputs}], got {list(x.shape)}")
        return self.engine.execute(x, self.weight)

    def extra_repr(self) -> str:
        return (
            f"qubits={self.program.n_qubits}, inputs={self.n_inputs}, "
            f"weights={self.weight.numel()}, outputs={self.n_outputs}, "
            f"engine={self.engine_spec}"
        )


def __getattr__(name: str):
    # ENGINE_NAMES predates qkit.engines.engine_names(); computed on access so engines
    # registered later are listed too.
    if name == "ENGINE_NAMES":
        return engine_names()
    raise AttributeError(f"module 'qkit.quantum' has no attribute {name!r}")
