"""The native kernels (qkan.simulators.native) against the pure-torch paths and qkan.testing's reference.

Every ansatz x encoding x measure in float64 to 1e-12, gradients against torch autograd and
torch.autograd.gradcheck, thread-count independence, odd sizes, the automatic fallback and the
build cache.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
import torch

from qkan import QKANLayer
from qkan.circuits.ansatz import ANSATZE
from qkan.simulators import native
from qkan.simulators.fourier import compile_coefficients, compile_matrix
from qkan.simulators.native.ops import native_table, prepared_table, supports
from qkan.simulators.su2_torch import prepare
from qkan.testing import reference_layer

#: the fallback tests below run without a compiler too; everything else needs the kernels
needs_native = pytest.mark.skipif(not native.available(), reason=f"native kernels unavailable: {native.unavailable_reason()}")

ANSATZ_NAMES = sorted(ANSATZE)
CLOSED = [name for name in ANSATZ_NAMES if ANSATZE[name].closed_form]


def _layer(ansatz="pz", encoding="edge", measure="z", in_dim=3, out_dim=2, reps=3, native_opt=None, **kw) -> QKANLayer:
    layer = QKANLayer(in_dim, out_dim, reps, ansatz=ansatz, encoding=encoding, measure=measure, evaluator="su2",
                      evaluator_options={"native": native_opt}, dtype=torch.float64, seed=3, bias=True, **kw)
    with torch.no_grad():  # move every parameter off its initial value
        gen = torch.Generator().manual_seed(7)
        for p in layer.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        if layer.enc_weight is not None:
            layer.enc_weight.mul_(0.5)  # keeps |w x + b| <= 1 for the arccos ansatz on x in [-0.6, 0.6]
            layer.enc_bias.mul_(0.3)
    return layer


def _inputs(n: int, in_dim: int, seed: int = 0) -> torch.Tensor:
    return (torch.rand(n, in_dim, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 1.2 - 0.6)


def _grads(layer: QKANLayer, x: torch.Tensor, edges: bool = False) -> list[torch.Tensor]:
    """Gradients of a fixed random projection of the output to x and every parameter."""
    x = x.detach().requires_grad_(True)
    out = layer.edge_outputs(x) if edges else layer(x)
    weight = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(1))
    params = [p for p in layer.parameters()]
    grads = torch.autograd.grad((out * weight).sum(), [x, *params], allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for g, t in zip(grads, [x, *params])]


@needs_native
@pytest.mark.parametrize("ansatz,encoding,measure", list(itertools.product(ANSATZ_NAMES, ("fixed", "edge", "input"), ("z", "amplitude"))))
def test_native_su2_matches_torch_and_reference(ansatz, encoding, measure):
    layer = _layer(ansatz, encoding, measure)
    x = _inputs(9, 3)
    assert layer.get_evaluator().backend == "native"
    ref = reference_layer(layer, x)
    f_native = layer.edge_outputs(x)
    y_native = layer(x)
    g_native = _grads(layer, x)
    ge_native = _grads(layer, x, edges=True)
    layer.set_evaluator("su2", native=False)
    assert layer.get_evaluator().backend == "torch"
    np.testing.assert_allclose(f_native.detach().numpy(), ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(f_native, layer.edge_outputs(x), rtol=0, atol=1e-12)
    torch.testing.assert_close(y_native, layer(x), rtol=0, atol=1e-12)
    for a, b in zip(g_native, _grads(layer, x)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-11)
    for a, b in zip(ge_native, _grads(layer, x, edges=True)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-11)


@needs_native
@pytest.mark.parametrize(
    "ansatz,encoding,measure,group",
    [("pz", "edge", "z", None), ("px", "input", "amplitude", None), ("mix", "fixed", "z", "input"),
     ("real", "edge", "amplitude", "output"), ("rpz", "input", "z", "all")],
)
def test_native_su2_gradcheck(ansatz, encoding, measure, group):
    layer = _layer(ansatz, encoding, measure, in_dim=2, out_dim=2, reps=2, group=group, native_opt=True)
    names = [n for n, _ in layer.named_parameters()]
    x = _inputs(4, 2).requires_grad_(True)

    def fn(x, *params):
        return torch.func.functional_call(layer, dict(zip(names, params)), (x,))

    assert torch.autograd.gradcheck(fn, (x, *layer.parameters()))
    assert torch.autograd.gradcheck(layer.edge_outputs, (x,))  # the edge-values mode of the kernel


@needs_native
@pytest.mark.parametrize("ansatz", CLOSED)
def test_native_closed_form_matches_reference_and_gradcheck(ansatz):
    layer = QKANLayer(3, 2, 2, ansatz=ansatz, dtype=torch.float64, seed=1, bias=True)
    assert layer.evaluator == "fourier"
    x = _inputs(5, 3) * 4  # beyond [-pi, pi]: the features are periodic
    np.testing.assert_allclose(layer.edge_outputs(x).detach().numpy(), reference_layer(layer, x), rtol=0, atol=1e-12)
    y = layer(x)
    y_ref = torch.einsum("noi,oi->no", torch.from_numpy(reference_layer(layer, x)), layer.edge_weights()[0]) + layer.edge_weights()[1]
    torch.testing.assert_close(y, y_ref + layer.base_term(x), rtol=0, atol=1e-12)
    names = [n for n, _ in layer.named_parameters()]
    x = x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, *p: torch.func.functional_call(layer, dict(zip(names, p)), (x,)), (x, *layer.parameters()))


@needs_native
@pytest.mark.parametrize("ansatz", CLOSED)
@pytest.mark.parametrize("reps", [1, 2, 5])
def test_native_compile_equals_torch_compile(ansatz, reps, monkeypatch):
    shape = ANSATZE[ansatz].theta_shape(reps)
    theta = (torch.rand(3, 1, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(reps)) * 8 - 4).requires_grad_(True)
    native_coeffs = compile_matrix(ANSATZE[ansatz], theta, reps)
    weight = torch.randn(native_coeffs.shape, dtype=torch.float64)
    (g_native,) = torch.autograd.grad((native_coeffs * weight).sum(), theta)
    monkeypatch.setenv("QKAN_NATIVE", "0")
    a0, a, b = compile_coefficients(ANSATZE[ansatz], theta, reps)
    torch_coeffs = torch.cat([a0.unsqueeze(-1), a, b], -1).movedim(-1, 0)
    (g_torch,) = torch.autograd.grad((torch_coeffs * weight).sum(), theta)
    torch.testing.assert_close(native_coeffs, torch_coeffs, rtol=0, atol=1e-13)
    torch.testing.assert_close(g_native, g_torch, rtol=0, atol=1e-12)


@needs_native
@pytest.mark.parametrize("base", ["silu", "tanh", "none"])
@pytest.mark.parametrize("group", [None, "input", "output", "all"])
def test_native_closed_form_bases_and_groups_match_torch(base, group, monkeypatch):
    """The fused layer node (silu computed natively, any other base folded in from torch; W and
    bias assembled from shared circuits) against the pure-torch fourier path, outputs and gradients."""
    layer = _layer("mix", "fixed", in_dim=4, out_dim=3, base=base, group=group).set_evaluator("fourier")
    x = _inputs(6, 4) * 5
    y, grads = layer(x), _grads(layer, x)
    monkeypatch.setenv("QKAN_NATIVE", "0")
    torch.testing.assert_close(y, layer(x), rtol=0, atol=1e-12)
    for a, b in zip(grads, _grads(layer, x)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)


@needs_native
def test_native_compile_many_reps():
    """The backward inverts the state step by step: still exact at reps 40."""
    spec = ANSATZE["pz"]
    theta = (torch.rand(2, 1, *spec.theta_shape(40), dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 8 - 4)
    theta.requires_grad_(True)
    native_coeffs = compile_matrix(spec, theta, 40)
    weight = torch.randn(native_coeffs.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (g_native,) = torch.autograd.grad((native_coeffs * weight).sum(), theta)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QKAN_NATIVE", "0")
        a0, a, b = compile_coefficients(spec, theta, 40)
    torch_coeffs = torch.cat([a0.unsqueeze(-1), a, b], -1).movedim(-1, 0)
    (g_torch,) = torch.autograd.grad((torch_coeffs * weight).sum(), theta)
    torch.testing.assert_close(native_coeffs, torch_coeffs, rtol=0, atol=1e-12)
    torch.testing.assert_close(g_native, g_torch, rtol=0, atol=1e-11)


@needs_native
def test_native_compile_thread_count_independent():
    """Enough edges for the compile to split them over threads: bitwise the same coefficients and gradients."""
    theta = torch.rand(64, 80, *ANSATZE["pz"].theta_shape(3), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    theta.requires_grad_(True)
    threads, results = torch.get_num_threads(), []
    for n in (1, 2):
        torch.set_num_threads(n)
        try:
            coeffs = compile_matrix(ANSATZE["pz"], theta, 3)
            results.append((coeffs, torch.autograd.grad(coeffs.sum(), theta)[0]))
        finally:
            torch.set_num_threads(threads)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@needs_native
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_native_silu_base_over_the_whole_input_range(dtype, monkeypatch):
    """The native silu (own exp) against torch's, up to the largest accepted |x|, where e^{-x} overflows."""
    layer = QKANLayer(3, 2, 2, dtype=dtype, seed=0)
    bound = layer.max_input()
    x = torch.tensor([[-bound, -100.0, -0.5], [0.0, 1e-3, 30.0], [88.5, 700.0, bound]], dtype=dtype).clamp(-bound, bound)
    x = torch.cat([x, torch.linspace(-40, 40, 3000, dtype=dtype).reshape(-1, 3)]).requires_grad_(True)
    y = layer(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    monkeypatch.setenv("QKAN_NATIVE", "0")
    x2 = x.detach().requires_grad_(True)
    y2 = layer(x2)
    (g2,) = torch.autograd.grad(y2.sum(), x2)
    # outputs reach |x| (float64: 6.7e7): a relative bound; float32: cos/sin(k x) at |x| ~ 3e3 carry ~1e-4 rounding
    rtol, atol = (1e-14, 1e-12) if dtype == torch.float64 else (1e-6, 2e-3)
    torch.testing.assert_close(y, y2, rtol=rtol, atol=atol)
    torch.testing.assert_close(g, g2, rtol=rtol, atol=atol)


@needs_native
@pytest.mark.parametrize("ansatz,measure", list(itertools.product(ANSATZ_NAMES, ("z", "amplitude"))))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_native_prepare_matches_torch_prepare(ansatz, measure, dtype):
    spec = ANSATZE[ansatz]
    theta = (torch.rand(2, 5, *spec.theta_shape(3), dtype=dtype) * 20 - 10).requires_grad_(True)
    expected = prepared_table(prepare(spec, theta, 3, measure), measure)
    got = native_table(spec, theta, 3, measure)
    weight = torch.randn(got.shape, dtype=dtype)
    tol = 1e-14 if dtype == torch.float64 else 1e-6
    torch.testing.assert_close(got, expected, rtol=0, atol=tol)
    torch.testing.assert_close(*(torch.autograd.grad((t * weight).sum(), theta)[0] for t in (got, expected)), rtol=0, atol=10 * tol)


@needs_native
def test_native_prepare_large_angles():
    """Angles beyond the fast sin/cos range take the exact (libm) path."""
    spec = ANSATZE["mix"]
    theta = torch.rand(3, 2, *spec.theta_shape(2), dtype=torch.float64) * 2e7 - 1e7
    torch.testing.assert_close(native_table(spec, theta, 2, "z"), prepared_table(prepare(spec, theta, 2, "z"), "z"), rtol=0, atol=1e-9)


@needs_native
@pytest.mark.parametrize("encoding,evaluator", [("edge", "su2"), ("input", "su2"), ("fixed", "su2"), ("fixed", "fourier")])
def test_native_thread_count_changes_only_rounding(encoding, evaluator):
    threads = torch.get_num_threads()
    results = []
    for n in (1, 2, 3):
        torch.set_num_threads(n)
        try:  # O = 1 < threads: the kernel splits the samples too
            layer = QKANLayer(37, 1, 3, encoding=encoding, evaluator=evaluator, dtype=torch.float64, seed=0)
            x = _inputs(1100, 37)  # enough work for 3 threads (the kernels use fewer on small problems)
            results.append([layer(x).detach(), *_grads(layer, x)])
        finally:
            torch.set_num_threads(threads)
    for other in results[1:]:
        torch.testing.assert_close(other[0], results[0][0], rtol=0, atol=0)  # every y[n, j] is summed in one order
        for a, b in zip(other[1:], results[0][1:]):
            torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-13)


@needs_native
@pytest.mark.parametrize("n,in_dim,out_dim", [(1, 1, 1), (0, 3, 2), (1, 5, 3), (13, 40, 1), (3, 1, 9)])
@pytest.mark.parametrize("encoding,evaluator", [("edge", "su2"), ("fixed", "su2"), ("fixed", "fourier")])
def test_native_odd_sizes(n, in_dim, out_dim, encoding, evaluator, monkeypatch):
    layer = _layer("pz", encoding, in_dim=in_dim, out_dim=out_dim, reps=2).set_evaluator(evaluator)
    x = _inputs(n, in_dim)
    y, grads = layer(x), _grads(layer, x)
    assert y.shape == (n, out_dim)
    np.testing.assert_allclose(layer.edge_outputs(x).detach().numpy(), reference_layer(layer, x), rtol=0, atol=1e-12)
    monkeypatch.setenv("QKAN_NATIVE", "0")  # the pure-torch path of the same evaluator
    torch.testing.assert_close(y, layer(x), rtol=0, atol=1e-12)
    for a, b in zip(grads, _grads(layer, x)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-11)


@needs_native
def test_native_float32_close_to_float64():
    layer = _layer("pz", "edge", in_dim=6, out_dim=5)
    x = _inputs(50, 6)
    y64 = layer(x)
    layer32 = layer.to(torch.float32)
    torch.testing.assert_close(layer32(x.float()).double(), y64, rtol=0, atol=2e-5)


@needs_native
def test_native_large_angles_use_accurate_sin_cos():
    """Encoding angles far beyond the fast range reduction (|phi| up to 1e7) still match torch in float64."""
    layer = _layer("rpz", "edge", in_dim=2, out_dim=2, reps=2)
    with torch.no_grad():
        layer.enc_weight.fill_(1.0)
        layer.enc_bias.copy_(torch.tensor([1e7, -3e5]).expand_as(layer.enc_bias))
    x = _inputs(11, 2)
    y = layer(x)
    layer.set_evaluator("su2", native=False)
    torch.testing.assert_close(y, layer(x), rtol=0, atol=1e-9)
    fixed = QKANLayer(2, 2, 3, dtype=torch.float64, seed=0)
    big = _inputs(7, 2) * 2e6  # the closed form's features: sin/cos of large x and the recurrence
    y_native = fixed(big)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QKAN_NATIVE", "0")
        torch.testing.assert_close(y_native, fixed(big), rtol=0, atol=1e-9)


@needs_native
def test_native_bad_input_keeps_clear_errors():
    layer = _layer("px", "fixed", native_opt=True)
    with pytest.raises(ValueError, match="outside \\[-1, 1\\]"):
        layer(torch.full((2, 3), 1.5, dtype=torch.float64))
    with pytest.raises(ValueError, match="dtype"):
        layer(torch.zeros(2, 3))
    with pytest.raises(TypeError, match="`native` must be bool or None; got str"):
        QKANLayer(2, 2).set_evaluator("su2", native="yes")
    with pytest.raises(ValueError, match="evaluator 'su2' got unexpected options"):
        QKANLayer(2, 2).set_evaluator("su2", shots=10)


def test_fallback_when_disabled_or_unsupported(monkeypatch):
    layer = _layer("pz", "edge")
    assert layer.get_evaluator().backend == ("native" if native.available() else "torch")
    monkeypatch.setenv("QKAN_NATIVE", "0")
    assert not native.available() and "QKAN_NATIVE" in native.unavailable_reason()
    assert layer.get_evaluator().backend == "torch"
    assert layer.set_evaluator("su2", native=False).get_evaluator().backend == "torch"
    assert not supports(torch.zeros(2, device="meta"))  # CUDA and other devices take the torch path
    assert not supports(torch.zeros(2, dtype=torch.bfloat16))


def test_fallback_without_compiler(monkeypatch, tmp_path):
    monkeypatch.setattr(native, "_state", {})
    monkeypatch.setenv("QKAN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    with pytest.warns(RuntimeWarning, match="pure-torch path"):
        assert native.load() is None
    assert not native.available() and "no-such-compiler" in native.unavailable_reason()
    layer = _layer("mix", "edge")
    assert layer.get_evaluator().backend == "torch"
    with pytest.raises(RuntimeError, match="unavailable"):
        layer.set_evaluator("su2", native=True)
    x = _inputs(4, 3)
    np.testing.assert_allclose(layer.edge_outputs(x).detach().numpy(), reference_layer(layer, x), rtol=0, atol=1e-12)


@needs_native
def test_build_cache_is_reused(monkeypatch, tmp_path):
    monkeypatch.setenv("QKAN_CACHE_DIR", str(tmp_path))
    path = native.build()
    assert path.parent == tmp_path and path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, path.name + ".sha256"]  # no temporary file left behind
    stamp = path.stat().st_mtime_ns

    def no_compiler(*args, **kwargs):
        raise AssertionError("the cached library was rebuilt")

    monkeypatch.setattr(native, "_compile", no_compiler)
    assert native.build() == path and path.stat().st_mtime_ns == stamp
    monkeypatch.setattr(native, "_state", {})  # a new process: loads the cached library without compiling
    assert native.load() is not None and native._state["path"] == path


@needs_native
def test_build_cli(tmp_path):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "QKAN_CACHE_DIR": str(tmp_path), "PYTHONPATH": root}
    done = subprocess.run([sys.executable, "-m", "qkan.simulators.native", "--build"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / done.stdout.strip().split("/")[-1]).exists()
