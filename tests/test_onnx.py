"""ONNX export of closed-form models: torch.onnx.export (dynamo exporter) and onnxruntime agree.

Closed-form models are QKANLayer / QKAN / HQKAN with encoding "fixed" or "input" on the
"fourier" evaluator; the exported graph holds the coefficient compile and one feature map plus
one matrix product per layer, in float32.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from qkan import QKAN, QKANLayer
from qkan.hqkan import HQKAN

pytest.importorskip("onnxscript", reason='the ONNX exporter needs onnxscript: pip install "qkan-daruan[onnx]"')
ort = pytest.importorskip("onnxruntime", reason='onnxruntime is not installed: pip install "qkan-daruan[onnx]"')


def _perturbed(model: nn.Module) -> nn.Module:
    """Every parameter moved off its initialisation (c = 1, d = 0, w = 1, b = 0 would hide mistakes)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model.eval()


def _export_and_run(model: nn.Module, x: torch.Tensor, others: list[torch.Tensor], path) -> list[np.ndarray]:
    """Export with a dynamic batch, then run every input in onnxruntime."""
    batch = torch.export.Dim("batch", min=1)
    dims = ({0: batch},) if x.dim() == 2 else ({0: batch, 1: torch.export.Dim("seq", min=1)},)
    program = torch.onnx.export(model, (x,), dynamo=True, dynamic_shapes=dims)
    program.save(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return [session.run(None, {name: t.numpy()})[0] for t in [x, *others]]


# The coefficient compile runs on real Bloch-vector rotations while exporting (ONNX has no complex tensors).
@pytest.mark.parametrize("encoding", ["fixed", "input"])
@pytest.mark.parametrize("kind", ["layer", "qkan", "hqkan"])
def test_onnxruntime_reproduces_the_model(kind, encoding, tmp_path):
    options = dict(reps=2, encoding=encoding, seed=0)
    if kind == "layer":
        model = QKANLayer(3, 2, **options)
    elif kind == "qkan":
        model = QKAN([3, 4, 2], **options)
    else:
        model = HQKAN(6, 6, latent_in=3, **options)
    model = _perturbed(model)
    d = 6 if kind == "hqkan" else 3
    g = torch.Generator().manual_seed(1)
    x = torch.rand(5, d, generator=g) * 4 - 2
    others = [torch.rand(17, d, generator=g) * 6 - 3, torch.rand(1, d, generator=g)]
    if kind == "hqkan":  # leading dims of a transformer's activations
        x, others = x.reshape(1, 5, d), [o.reshape(1, -1, d) for o in others]
    outputs = _export_and_run(model, x, others, tmp_path / "model.onnx")
    with torch.no_grad():
        expected = [model(t).numpy() for t in [x, *others]]
    for got, want in zip(outputs, expected):
        assert got.shape == want.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert max(np.abs(w).max() for w in expected) > 0.1  # the comparison is not between zeros
