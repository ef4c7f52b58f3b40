"""torch.compile(fullgraph=True) of QKANLayer, QKAN and HQKAN on every torch-path evaluator.

Inductor on CPU compiles each model in tens of seconds on a small machine, so these tests are
marked slow; shapes are tiny. The native CPU kernels are left out (native=False): compiled
graphs trace the pure-torch paths. On CUDA a compiled training step must not synchronise with
the host (so CUDA graphs can capture it).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qkan import QKAN, QKANLayer
from qkan.hqkan import HQKAN

EVALUATORS = ["fourier", "su2"]  # every evaluator with a pure-torch path


def _torch_path(model: nn.Module, evaluator: str) -> nn.Module:
    """Every QKANLayer of `model` on `evaluator`'s pure-torch path."""
    for layer in model.modules():
        if isinstance(layer, QKANLayer):
            layer.set_evaluator(evaluator, native=False) if evaluator == "su2" else layer.set_evaluator(evaluator)
    return model


def _build(kind: str, evaluator: str, device: str = "cpu", dtype: torch.dtype = torch.float64) -> nn.Module:
    options = dict(reps=2, seed=0, device=device, dtype=dtype)
    if kind == "layer":
        model = QKANLayer(3, 2, **options)
    elif kind == "qkan":
        model = QKAN([3, 4, 2], **options)
    else:
        model = HQKAN(3, 2, latent_in=2, **options)
    with torch.no_grad():  # leave the initialisation (c = 1, d = 0) so every parameter matters
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel()), dtype=dtype).to(device))
    return _torch_path(model, evaluator)


def _step(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Forward and backward of a fixed random projection: (outputs, gradients of every parameter)."""
    model.zero_grad(set_to_none=True)
    y = model(x)
    weights = torch.linspace(-1, 1, y.numel(), dtype=y.dtype, device=y.device).reshape(y.shape)
    (y * weights).sum().backward()
    return y.detach(), [p.grad.detach().clone() for p in model.parameters()]


@pytest.mark.slow
@pytest.mark.parametrize("evaluator", EVALUATORS)
@pytest.mark.parametrize("kind", ["layer", "qkan", "hqkan"])
def test_fullgraph_compile_matches_eager(kind, evaluator):
    torch._dynamo.reset()
    model = _build(kind, evaluator)
    x = torch.rand(5, 3, dtype=torch.float64) * 4 - 2
    y_eager, g_eager = _step(model, x)
    compiled = torch.compile(model, fullgraph=True)  # inductor; any graph break raises
    y, g = _step(compiled, x)
    torch.testing.assert_close(y, y_eager, rtol=1e-12, atol=1e-12)
    assert len(g) == len(g_eager) and all(gr.abs().sum() > 0 for gr in g_eager)
    for a, b in zip(g, g_eager):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("evaluator", EVALUATORS)
def test_cuda_step_makes_no_host_synchronisation(evaluator):
    """A training step of HQKAN on CUDA, eager and compiled, under sync-debug mode "error"."""
    torch._dynamo.reset()
    model = _build("hqkan", evaluator, device="cuda", dtype=torch.float32)
    x = torch.rand(64, 3, device="cuda") * 4 - 2
    compiled = torch.compile(model, fullgraph=True)
    _step(model, x), _step(compiled, x)  # warm-up: first calls may allocate or compile
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        _, g_eager = _step(model, x)
        _, g = _step(compiled, x)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    for a, b in zip(g, g_eager):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
