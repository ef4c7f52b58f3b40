"""bfloat16 and float16 parameters: the closed-form and su2 paths compute in float32 and cast back."""

import pytest
import torch

import qkan
from qkan import QKAN, QKANLayer

LOW = [torch.bfloat16, torch.float16]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
#: relative rounding of one cast to the dtype (half an ulp at 1)
EPS = {torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11}


def _pair(dtype, evaluator, device, **options):
    """A low-precision layer and a float32 twin holding exactly the same (rounded) values."""
    low = QKANLayer(3, 4, 2, seed=0, evaluator=evaluator, dtype=dtype, device=device, **options)
    wide = QKANLayer(3, 4, 2, seed=0, evaluator=evaluator, dtype=torch.float32, device=device, **options)
    wide.load_state_dict({k: v.float() for k, v in low.state_dict().items()})
    return low, wide


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("evaluator", ["fourier", "su2"])
@pytest.mark.parametrize("dtype", LOW, ids=str)
def test_low_precision_layer_is_float32_rounded_once(dtype, evaluator, device):
    low, wide = _pair(dtype, evaluator, device, encoding="input" if evaluator == "fourier" else "edge")
    x = (torch.rand(16, 3, generator=torch.Generator().manual_seed(1)) * 2 - 1).to(device=device, dtype=dtype)
    y = low(x)
    y32 = wide(x.float())
    assert y.dtype == dtype and low.evaluator == evaluator
    # inputs and parameters are exact in float32, so the only error is the final rounding
    torch.testing.assert_close(y.float(), y32, rtol=EPS[dtype], atol=EPS[dtype] * y32.abs().max().item() * 1e-3)
    y.float().square().sum().backward()
    y32.square().sum().backward()
    for (name, p), q in zip(low.named_parameters(), wide.parameters()):
        assert p.grad is not None and p.grad.dtype == dtype, name
        scale = q.grad.abs().max().item()
        # the upstream gradient differs by the output rounding; the parameter gradient is rounded once
        torch.testing.assert_close(p.grad.float(), q.grad, rtol=0, atol=8 * EPS[dtype] * max(scale, 1e-6), msg=name)
    f = low.edge_outputs(x)
    assert f.dtype == dtype and f.shape == (16, 4, 3)


@pytest.mark.parametrize("dtype", LOW, ids=str)
def test_low_precision_no_grad_sees_every_parameter_change(dtype):
    """The closed form's inference cache is keyed on tensor identity; float32 copies must never hit it stale."""
    low, wide = _pair(dtype, "fourier", "cpu")
    x = (torch.rand(8, 3) * 2 - 1).to(dtype)
    for step in range(3):
        with torch.no_grad():
            y = low(x)
        with torch.inference_mode():
            y_inf = low(x)
        torch.testing.assert_close(y.float(), wide(x.float()).detach(), rtol=EPS[dtype], atol=1e-3)
        assert torch.equal(y, y_inf) and not y.requires_grad
        with torch.no_grad():
            low.theta.add_(0.25)
            wide.theta.copy_(low.theta.float())
    coeffs = low.fourier_coefficients()
    assert coeffs.dtype == dtype
    torch.testing.assert_close(coeffs.float(), wide.fourier_coefficients(), rtol=0, atol=4 * EPS[dtype])


@pytest.mark.parametrize("dtype", LOW, ids=str)
def test_low_precision_model_fits_and_daruan_runs(dtype):
    data = qkan.data.function_dataset(lambda x: torch.sin(2 * x[:, :1]) + x[:, 1:] ** 2, n_var=2, train_num=128, test_num=64)
    model = QKAN([2, 3, 1], reps=2, seed=0, dtype=dtype)
    adam = torch.optim.Adam(model.parameters(), lr=5e-2, eps=1e-4)  # the default eps 1e-8 is 0 in float16
    history = model.fit(data, steps=60, optimizer=adam, progress=False)
    assert history["test_rmse"][-1] < 0.5 * history["test_rmse"][0]
    assert all(p.dtype == dtype for p in model.parameters())
    act = qkan.DARUAN(5, reps=2, seed=0, dtype=dtype, ansatz="mix", encoding="edge")  # su2 path
    y = act(torch.rand(2, 5, dtype=dtype))
    y.float().sum().backward()
    assert y.dtype == dtype and act.layer.theta.grad.dtype == dtype


def test_float32_and_float64_are_untouched():
    layer = QKANLayer(2, 2, 2, seed=0, dtype=torch.float64)
    x = torch.rand(4, 2, dtype=torch.float64)
    calls = []
    assert layer.in_compute_precision(lambda t: calls.append(t) or t, x) is x and calls[0] is x
