"""The connector engine: qiskit-machine-learning's EstimatorQNN behind a TorchConnector.

This is the reference qkit's fast engine is checked against: the same circuit and
observables evaluated the way qiskit-machine-learning users do it, with Qiskit's exact
``StatevectorEstimator`` (precision 0, so no sampling noise) and parameter-shift
gradients for inputs and weights. It is slow (two circuit evaluations per parameter for
the backward pass) and returns float32, as TorchConnector does.
"""

from __future__ import annotations

import warnings

import torch
from qiskit.primitives import StatevectorEstimator

from qkit.engines.base import Engine, LayerProgram
from qkit.engines.spec import Capabilities


class ConnectorEngine(Engine):
    """Expectation values through ``EstimatorQNN`` + ``TorchConnector``."""

    name = "connector"
    # Exact (precision 0) and unitary only: StatevectorEstimator simulates pure states.
    capabilities = Capabilities(differentiable=True)

    def __init__(self, program: LayerProgram, dtype: torch.dtype = torch.float32):
        super().__init__(program, dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # qiskit-ml warns about its default estimator
            from qiskit_machine_learning.connectors import TorchConnector
            from qiskit_machine_learning.gradients import ParamShiftEstimatorGradient
            from qiskit_machine_learning.neural_networks import EstimatorQNN

            estimator = StatevectorEstimator()
            qnn = EstimatorQNN(
                circuit=program.circuit,
                estimator=estimator,
                observables=list(program.observables),
                input_params=list(program.inputs),
                weight_params=list(program.weights),
                input_gradients=True,
                gradient=ParamShiftEstimatorGradient(estimator),
                default_precision=0.0,
            )
        # Kept out of the module tree (a plain list) so the layer's state dict holds only
        # the layer's own weight, whatever the engine.
        self._connector = [TorchConnector(qnn)]

    def execute(self, inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Expectation values ``[B, n_observables]`` from the EstimatorQNN (parameter-shift gradients)."""
        connector = self._connector[0]
        # functional_call substitutes the layer's weight for the connector's, so gradients
        # flow to the layer's own nn.Parameter.
        out = torch.func.functional_call(connector, {"weight": weights.float().cpu()}, (inputs.float().cpu(),))
        return out.to(device=inputs.device, dtype=inputs.dtype)
