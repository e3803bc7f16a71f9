"""The differentiable engines keep every tensor on the layer's device.

This machine has no GPU, so the CUDA comparisons at the end are skipped here. The meta device
stands in for it: a meta tensor has no data, and an op that mixes it with a CPU tensor raises,
as CUDA would. A forward and backward pass on meta therefore shows that nothing is created on
the CPU at run time and that nothing reads a value back to the host (``.item()`` on a meta
tensor raises too). Numerical agreement on CUDA is what the skipped tests check.
"""

import pytest
import torch

from qkit.circuits import build_circuit, list_circuits
from qkit.quantum import QuantumLayer

from test_engines import reuploading

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _forward_backward(layer: QuantumLayer, batch: int, device: str, dtype=torch.float32):
    x = torch.linspace(-1, 1, batch * layer.n_inputs, dtype=dtype).reshape(batch, layer.n_inputs)
    x = x.to(device).requires_grad_(True)
    out = layer(x)
    out.sum().backward()
    return out, x.grad, layer.weight.grad


@pytest.mark.parametrize("name", list_circuits() + ["reuploading"])
@pytest.mark.parametrize("batch", [3, 17], ids=["gate-by-gate", "fused"])
def test_statevector_runs_on_meta(name, batch):
    # reuploading: fused runs that start with a permutation, complex constant gates, re-uploads
    spec = reuploading(4) if name == "reuploading" else build_circuit(name, 4, 2)
    layer = QuantumLayer.from_spec(spec).to("meta")
    assert layer.engine.fused_for(batch) == (batch >= 16)
    out, gx, gw = _forward_backward(layer, batch, "meta")
    assert out.device.type == gx.device.type == gw.device.type == "meta"
    assert out.shape == (batch, len(spec.observables))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shots", [None, 64], ids=["exact", "shots"])
def test_density_runs_on_meta(dtype, shots):
    spec = build_circuit("strongly_entangling", 4, 1)
    options = {"backend": "fake_lagos"} | ({"shots": shots} if shots else {})
    layer = QuantumLayer.from_spec(spec, engine="density", engine_options=options, dtype=dtype).to("meta")
    out, gx, gw = _forward_backward(layer, 5, "meta", dtype)
    assert out.device.type == gx.device.type == gw.device.type == "meta"
    assert out.dtype == dtype


@CUDA
@pytest.mark.parametrize("engine, options", [("statevector", {}), ("density", {"backend": "fake_lagos"})])
def test_cuda_matches_cpu_forward_and_gradients(engine, options):
    spec = build_circuit("strongly_entangling", 4, 2)
    cpu = QuantumLayer.from_spec(spec, engine=engine, engine_options=options, dtype=torch.float64)
    gpu = QuantumLayer.from_spec(
        spec, engine=engine, engine_options=options, dtype=torch.float64, initial_weights=cpu.weight.detach()
    ).to("cuda")
    results = [_forward_backward(layer, 40, device, torch.float64) for layer, device in ((cpu, "cpu"), (gpu, "cuda"))]
    for on_cpu, on_gpu in zip(*results):
        torch.testing.assert_close(on_gpu.cpu(), on_cpu, atol=1e-10, rtol=0)
