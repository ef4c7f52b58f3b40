"""Every derivative order on every default path, and caches that cannot serve an old function.

The native kernels' backward passes are first-order; when a graph of the gradient is requested
each native node differentiates its torch reference instead. These tests hold the default
(native where available) path to gradgradcheck against finite differences of the first
derivative, compare it with the pure-torch path, and change parameters by every route users take.
"""

from __future__ import annotations

import copy
import itertools
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from qkan import QKAN, QKANLayer
from qkan.circuits.ansatz import ANSATZE
from qkan.simulators import native
from qkan.testing import check_graph_gradients, random_layer, second_derivative

needs_native = pytest.mark.skipif(not native.available(), reason=f"native kernels unavailable: {native.unavailable_reason()}")


def _moved(layer: QKANLayer, seed: int = 0) -> QKANLayer:
    """Every parameter moved off its initial value (kinks of the px encoding rescaling avoided)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name not in ("enc_weight", "enc_bias"):
                p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return layer


@needs_native
def test_issue_example_second_derivative_matches_the_torch_path(monkeypatch):
    """QKANLayer(2, 2, reps=2, float64), su2 + silu: the native path gave -0.909 where 0.572 is right."""
    layer = QKANLayer(2, 2, reps=2, dtype=torch.float64, seed=0, evaluator="su2")
    x = torch.rand(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert layer.get_evaluator().backend == "native"
    native_h = second_derivative(layer, x)
    monkeypatch.setenv("QKAN_NATIVE", "0")
    torch_layer = copy.deepcopy(layer).set_evaluator("su2", native=False)
    torch.testing.assert_close(native_h, second_derivative(torch_layer, x), rtol=1e-12, atol=1e-12)


CASES = [(a, e, "silu") for a, e in itertools.product(sorted(ANSATZE), ("fixed", "edge", "input"))]
CASES += [("pz", "fixed", base) for base in ("identity", "tanh", "gelu", "none")]


@pytest.mark.parametrize("ansatz,encoding,base", CASES)
def test_gradgradcheck_on_the_default_path(ansatz, encoding, base):
    """x and every parameter, float64, evaluator "auto" (native kernels where available)."""
    layer = _moved(random_layer(2, 2, 2, ansatz=ansatz, encoding=encoding, base=base, bias=True))
    names, params = zip(*layer.named_parameters())

    def fn(x, *ps):
        return torch.func.functional_call(layer, dict(zip(names, ps)), (x,))

    x = (torch.rand(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 1.6 - 0.8).requires_grad_(True)
    assert gradcheck(fn, (x, *params))
    assert gradgradcheck(fn, (x, *params))
    check_graph_gradients(fn, (x, *params), f"{ansatz} {encoding} {base}")


@pytest.mark.parametrize("evaluator,encoding", [("fourier", "fixed"), ("fourier", "input"), ("su2", "edge")])
def test_model_hessian_vector_products_match_the_torch_path(evaluator, encoding, monkeypatch):
    """A deep model's Hessian-vector product in its parameters (what a gradient penalty differentiates)."""
    model = QKAN([2, 3, 1], reps=2, encoding=encoding, evaluator=evaluator, seed=0, dtype=torch.float64)
    x = torch.rand(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 2 - 1

    def hvp(m):
        params = list(m.parameters())
        grads = torch.autograd.grad(m(x).pow(2).sum(), params, create_graph=True)
        v = [torch.ones_like(p) for p in params]
        return torch.autograd.grad(sum((g * u).sum() for g, u in zip(grads, v)), params)

    expected = hvp(model)
    monkeypatch.setenv("QKAN_NATIVE", "0")
    for got, want in zip(hvp(copy.deepcopy(model)), expected):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------ px at its edge
@pytest.mark.parametrize("encoding", ["fixed", "edge"])
def test_px_derivatives_are_finite_at_the_domain_edge(encoding):
    """At x = +-1 the px data gate is RX(0) or RX(pi); sqrt(1 - phi^2)'s derivative is taken as 0 there."""
    layer = QKANLayer(2, 2, reps=2, ansatz="px", encoding=encoding, seed=0, dtype=torch.float64)
    x = torch.tensor([[1.0, -1.0], [0.3, 1.0]], dtype=torch.float64, requires_grad=True)
    y = layer(x).sum()
    grads = torch.autograd.grad(y, [x, *layer.parameters()])
    assert all(bool(torch.isfinite(g).all()) for g in grads)
    torch_layer = copy.deepcopy(layer).set_evaluator("su2", native=False)
    x2 = x.detach().requires_grad_(True)
    expected = torch.autograd.grad(torch_layer(x2).sum(), [x2, *torch_layer.parameters()])
    for got, want in zip(grads, expected):  # the native kernel follows the same convention
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_deep_px_model_trains_where_tanh_saturates():
    """float32 tanh rounds to exactly +-1 for |h| > 9: the chain derivative there is 0, not NaN."""
    model = QKAN([2, 2, 1], reps=2, ansatz="px", seed=0)
    with torch.no_grad():
        model.layers[0].post_weight.fill_(30.0)  # hidden outputs far beyond tanh's float32 saturation
    x = torch.rand(32, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    x.requires_grad_(True)
    hidden = model.layers[0](x.detach())
    assert bool((torch.tanh(hidden).abs() == 1).any())
    loss = model(x).pow(2).mean()
    grads = torch.autograd.grad(loss, [x, *model.parameters()])
    assert all(bool(torch.isfinite(g).all()) for g in grads)


# ------------------------------------------------------------------------- stale caches
def _fresh(layer: QKANLayer, x: torch.Tensor) -> torch.Tensor:
    """The function of the layer's current parameter values, by a new layer without any cache."""
    other = QKANLayer(**layer.settings(), dtype=layer.theta.dtype)
    other.load_state_dict(layer.state_dict())
    with torch.no_grad():
        return other(x)


UPDATES = {
    "data": lambda p, d: p.data.add_(d),
    "copy_": lambda p, d: p.copy_(p + d),
    "ema": lambda p, d: p.data.mul_(0.9).add_(0.1 * (p.data + 10 * d)),
    "clip": lambda p, d: p.data.clamp_(-0.2, 0.2),
}


@pytest.mark.parametrize("route", sorted(UPDATES))
@pytest.mark.parametrize("encoding", ["fixed", "input"])
def test_inference_after_in_place_updates_is_never_stale(route, encoding):
    layer = QKANLayer(3, 2, reps=3, encoding=encoding, seed=0, dtype=torch.float64)
    x = torch.rand(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        with torch.no_grad():
            layer(x)  # fills the closed-form cache
            for p in layer.parameters():
                UPDATES[route](p, 0.2 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
            torch.testing.assert_close(layer(x), _fresh(layer, x), rtol=0, atol=1e-12)


def test_optimizer_steps_and_load_state_dict_are_never_stale():
    layer = QKANLayer(3, 2, reps=3, seed=0, dtype=torch.float64)
    x = torch.rand(5, 3, dtype=torch.float64)
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        layer(x).pow(2).sum().backward()
        opt.step()
        with torch.no_grad():
            torch.testing.assert_close(layer(x), _fresh(layer, x), rtol=0, atol=1e-12)
    other = QKANLayer(3, 2, reps=3, seed=5, dtype=torch.float64)
    with torch.no_grad():
        layer(x)
        layer.load_state_dict(other.state_dict())
        torch.testing.assert_close(layer(x), _fresh(other, x), rtol=0, atol=1e-12)


def test_functional_call_loop_in_a_fresh_process_is_never_stale():
    """Freed tensors' ids and memory are reused between calls: 200 calls, each checked."""
    script = textwrap.dedent(
        """
        import torch, qkan
        layer = qkan.QKANLayer(4, 3, reps=3, seed=0, dtype=torch.float64)
        x = torch.rand(6, 4, dtype=torch.float64)
        names = [n for n, _ in layer.named_parameters()]
        stale = 0
        for k in range(200):
            params = {n: torch.randn_like(p) for n, p in layer.named_parameters()}
            with torch.no_grad():
                y = torch.func.functional_call(layer, params, (x,))
                other = qkan.QKANLayer(4, 3, reps=3, dtype=torch.float64)
                other.load_state_dict({**params, "mask": layer.mask})
                stale += int(not torch.allclose(y, other(x), rtol=0, atol=1e-12))
            del params
        print(stale)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0"


# ---------------------------------------------------------------------------- torch.func
@pytest.mark.parametrize("evaluator,encoding", [("fourier", "fixed"), ("fourier", "input"), ("su2", "edge"), ("su2", "fixed")])
def test_jacrev_and_vmap_on_a_model(evaluator, encoding):
    model = QKAN([2, 3, 2], reps=2, encoding=encoding, evaluator=evaluator, seed=0, dtype=torch.float64)
    x = torch.rand(4, 2, dtype=torch.float64) * 2 - 1
    jac = torch.func.vmap(torch.func.jacrev(model))(x)  # per-sample Jacobians (4, 2, 2)
    full = torch.autograd.functional.jacobian(model, x)  # (4, 2, 4, 2)
    torch.testing.assert_close(jac, torch.stack([full[n, :, n] for n in range(4)]), rtol=0, atol=1e-12)
    hess = torch.func.hessian(lambda v: model(v).sum())(x[0])
    assert hess.shape == (2, 2) and torch.allclose(hess, hess.T, atol=1e-12)


def test_torch_func_refused_by_name_for_circuit_evaluators():
    pytest.importorskip("pennylane")
    layer = QKANLayer(2, 1, reps=1, seed=0, dtype=torch.float64).set_evaluator("pennylane")
    with pytest.raises(RuntimeError, match="evaluator 'pennylane' does not support torch.func transforms"):
        torch.func.jacrev(layer)(torch.rand(3, 2, dtype=torch.float64))


# ------------------------------------------------------------------- no process-wide state
@pytest.mark.parametrize("diff_method", ["backprop", "adjoint", "parameter-shift"])
def test_pennylane_evaluator_leaves_the_default_dtype_alone(diff_method, monkeypatch):
    pytest.importorskip("pennylane")
    calls = []
    monkeypatch.setattr(torch, "set_default_dtype", lambda d: calls.append(d))
    device = "lightning.qubit" if diff_method == "adjoint" else "default.qubit"
    layer = QKANLayer(2, 2, reps=2, seed=0, dtype=torch.float64)
    x = torch.rand(3, 2, dtype=torch.float64, requires_grad=True)
    expected = layer(x)
    (g_expected,) = torch.autograd.grad(expected.sum(), x)
    with pytest.warns(UserWarning) if device == "lightning.qubit" else _nothing():
        layer.set_evaluator("pennylane", device=device, diff_method=diff_method)
    y = layer(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    assert calls == []
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-12)  # float64 to the last digits, adjoint included
    torch.testing.assert_close(g, g_expected, rtol=0, atol=1e-10)


def test_pennylane_second_derivatives_exact_or_refused():
    pytest.importorskip("pennylane")
    layer = QKANLayer(2, 1, reps=1, seed=0, dtype=torch.float64)
    x = torch.rand(2, 2, dtype=torch.float64)
    expected = second_derivative(layer, x)
    layer.set_evaluator("pennylane", diff_method="parameter-shift")
    torch.testing.assert_close(second_derivative(layer, x), expected, rtol=0, atol=1e-10)
    layer.set_evaluator("pennylane", diff_method="finite-diff")
    with pytest.raises(RuntimeError, match="'finite-diff' gives first derivatives only"):
        second_derivative(layer, x)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_forward_mode_ad_matches_reverse_mode():
    """torch.autograd.forward_ad: the native kernels step aside for the torch path (they have no jvp)."""
    import torch.autograd.forward_ad as fwAD

    layer = QKANLayer(3, 2, reps=2, seed=0, dtype=torch.float64)
    x = torch.rand(4, 3, dtype=torch.float64)
    v = torch.randn(4, 3, dtype=torch.float64)
    with fwAD.dual_level():
        jvp = fwAD.unpack_dual(layer(fwAD.make_dual(x, v))).tangent
    _, expected = torch.autograd.functional.jvp(layer, x, v)
    torch.testing.assert_close(jvp, expected, rtol=0, atol=1e-12)


def test_set_evaluator_accepts_an_evaluator_object():
    from qkan.simulators.su2 import SU2Evaluator

    layer = QKANLayer(2, 3, reps=2, seed=0, dtype=torch.float64)
    x = torch.rand(4, 2, dtype=torch.float64)
    expected = layer(x)
    evaluator = SU2Evaluator(native=False)
    assert layer.set_evaluator(evaluator).get_evaluator() is evaluator
    assert layer.evaluator == "su2" and "evaluator='su2'" in repr(layer)
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-12)
    model = QKAN.from_layers([layer]).extend(3)  # derived layers share the object
    assert model.layers[0].get_evaluator() is evaluator
    with pytest.raises(ValueError, match="an evaluator object takes no options"):
        layer.set_evaluator(evaluator, native=True)
