"""Conformance helpers: check any evaluator against a plain 2x2 statevector.

The reference below is deliberately independent of the evaluators: numpy, explicit matrices
written from the gate sequences of the math contract (docs: the ansaetze), one sample and one edge
at a time.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "reference_edge", "reference_layer", "assert_matches_reference", "check_evaluator", "CONFORMANCE_CASES",
    "random_layer", "check_graph_gradients", "second_derivative",
]

_H = np.array([[1, 1], [1, -1]], dtype=complex) / np.sqrt(2)
_X = np.array([[0, 1], [1, 0]], dtype=complex)
_Z = np.array([[1, 0], [0, -1]], dtype=complex)


def _rz(a: float) -> np.ndarray:
    return np.array([[np.exp(-0.5j * a), 0], [0, np.exp(0.5j * a)]])


def _ry(a: float) -> np.ndarray:
    c, s = np.cos(a / 2), np.sin(a / 2)
    return np.array([[c, -s], [s, c]], dtype=complex)


def _rx(a: float) -> np.ndarray:
    c, s = np.cos(a / 2), np.sin(a / 2)
    return np.array([[c, -1j * s], [-1j * s, c]])


def _gate(name: str, angle: float | None) -> np.ndarray:
    """The 2x2 matrix of a named gate, written out here (independent of the evaluators)."""
    fixed = {"H": _H, "X": _X, "Z": _Z}
    if name in fixed:
        return fixed[name]
    return {"RX": _rx, "RY": _ry, "RZ": _rz}[name](angle)


def reference_edge(ansatz: str, theta: np.ndarray, phis: np.ndarray, measure: str = "z") -> float:
    """One DARUAN value, gate by gate from the ansatz's spec (any registered ansatz).

    Args:
        ansatz: a registered ansatz name ("pz", "rpz", "px", "real", "mix", or one added with
            register_ansatz).
        theta: (n_slots, k) angles of one edge.
        phis: (R,) encoding angles phi_l = w_l x + b_l.
        measure: "z" (<Z>) or "amplitude" (|alpha| - |beta|).
    """
    from qkan.circuits.ansatz import get_ansatz

    spec = get_ansatz(ansatz)
    theta = np.asarray(theta, dtype=float).reshape(len(theta), -1)
    psi = _H @ np.array([1, 0], dtype=complex)
    for l, phi in enumerate(phis):
        for g in spec.rep_gates:
            psi = _gate(g.name, None if g.param is None else theta[l, g.param]) @ psi
        psi = _gate(spec.encoding_gate, np.arccos(phi) if spec.arccos else phi) @ psi
    for g in spec.final_gates:
        psi = _gate(g.name, None if g.param is None else theta[len(phis), g.param]) @ psi
    if measure == "z":
        return float(np.real(np.conj(psi) @ _Z @ psi))
    return float(abs(psi[0]) - abs(psi[1]))


def reference_layer(layer, x: torch.Tensor) -> np.ndarray:
    """Edge values of a QKANLayer by the reference: x (N, I) -> (N, O, I) float64 numpy."""
    O, I, R = layer.out_dim, layer.in_dim, layer.reps
    theta = layer.theta.detach().double().expand(O, I, *layer.theta.shape[2:]).cpu().numpy()
    w, b = layer.encoding_parameters()
    w = np.ones((O, I, R)) if w is None else w.detach().double().expand(O, I, R).cpu().numpy()
    b = np.zeros((O, I, R)) if b is None else b.detach().double().expand(O, I, R).cpu().numpy()
    xs = x.detach().double().cpu().numpy()
    out = np.empty((len(xs), O, I))
    for n in range(len(xs)):
        for j in range(O):
            for i in range(I):
                out[n, j, i] = reference_edge(layer.ansatz.name, theta[j, i], w[j, i] * xs[n, i] + b[j, i], layer.measure)
    return out


def assert_matches_reference(layer, x: torch.Tensor, atol: float = 1e-12) -> None:
    """Assert layer.edge_outputs(x) and layer(x) equal the reference statevector within atol."""
    ref = reference_layer(layer, x)
    got = layer.edge_outputs(x).detach().double().cpu().numpy()
    np.testing.assert_allclose(got, ref, rtol=0, atol=atol, err_msg=f"edge outputs, evaluator {layer.evaluator}")
    scale, const = layer.edge_weights()
    y_ref = np.einsum("noi,oi->no", ref, scale.detach().double().cpu().numpy()) + const.detach().double().cpu().numpy()
    base = layer.base_term(x)
    if isinstance(base, torch.Tensor):
        y_ref = y_ref + base.detach().double().cpu().numpy()
    y = layer(x).detach().double().cpu().numpy()
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=atol * max(1, layer.in_dim), err_msg=f"layer output, evaluator {layer.evaluator}")


#: layer settings every evaluator is checked on (those it declares unsupported are skipped)
CONFORMANCE_CASES: tuple[dict, ...] = (
    dict(ansatz="pz", encoding="fixed"),
    dict(ansatz="pz", encoding="edge", bias=True),
    dict(ansatz="rpz", encoding="input"),
    dict(ansatz="px", encoding="edge"),
    dict(ansatz="real", encoding="fixed", group="input"),
    dict(ansatz="mix", encoding="edge", measure="amplitude"),
)


def random_layer(in_dim: int = 2, out_dim: int = 2, reps: int = 2, *, ansatz: str = "pz", encoding: str = "fixed",
                 seed: int = 1, **options):
    """A float64 QKANLayer whose trainable encodings are moved off their start (w=1, b=0).

    Encoding weights are drawn uniformly from [0.2, 0.5) and biases from [-0.3, 0.3) (seeded by
    `seed`), so |w x + b| <= 1 for |x| <= 1 and every ansatz ("px" included) is in its domain.
    `options` go to QKANLayer (group, base, bias, measure, ...).
    """
    from qkan.layers import QKANLayer

    layer = QKANLayer(in_dim, out_dim, reps, ansatz=ansatz, encoding=encoding, seed=seed, dtype=torch.float64,
                      **options)
    if layer.enc_weight is not None:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            layer.enc_weight.copy_(0.2 + 0.3 * torch.rand(layer.enc_weight.shape, generator=gen, dtype=torch.float64))
            layer.enc_bias.copy_(0.6 * torch.rand(layer.enc_bias.shape, generator=gen, dtype=torch.float64) - 0.3)
    return layer


def check_evaluator(
    name: str, *, dtype: torch.dtype = torch.float64, gradcheck: bool = True, gradgradcheck: bool = True, **options
) -> list[dict]:
    """Run the conformance checks on the evaluator registered as `name`; AssertionError on a failure.

    On small layers of every case in CONFORMANCE_CASES that the evaluator supports: agreement of
    edge_outputs and forward with the reference statevector, leading dimensions and dtype kept, an
    empty batch, a state_dict round trip into a fresh layer giving the same outputs, fresh outputs
    after every route of changing parameters (``.data``, ``copy_``, load_state_dict,
    functional_call; caches must never serve an old function), and torch.func: ``jacrev`` equal to
    autograd for evaluators with ``supports_transforms``, a RuntimeError naming the evaluator for
    the others. Derivatives, in float64: gradients by ``torch.autograd.gradcheck``, second
    derivatives by ``torch.autograd.gradgradcheck`` (x and every parameter) and create_graph
    gradients equal to plain ones; in float32: first and second derivatives equal those of the
    float64 copy of the layer to float32 accuracy.

    Args:
        name: a registered evaluator name.
        dtype: torch.float64 (tolerance 1e-12) or torch.float32 (1e-5).
        gradcheck: check first derivatives (off for evaluators without gradients).
        gradgradcheck: check second derivatives (needs gradcheck).
        **options: options for ``set_evaluator(name, **options)``.
    Returns:
        the cases that were checked (at least one, or AssertionError).
    """
    from qkan.layers import QKANLayer

    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"`dtype` must be torch.float32 or torch.float64; got {dtype!r}")
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    checked = []
    for case in CONFORMANCE_CASES:
        layer = QKANLayer(2, 2, 2, seed=3, dtype=dtype, **case)
        if _unsupported(layer, name, options):
            continue
        with torch.no_grad():
            for p in (layer.post_weight, layer.post_bias, layer.base_weight):
                p.add_(torch.rand(p.shape, generator=torch.Generator().manual_seed(5), dtype=p.dtype) * 0.5)
            if layer.enc_weight is not None:
                layer.enc_weight.mul_(0.7)
                layer.enc_bias.add_(0.1)
        layer.set_evaluator(name, **options)
        gen = torch.Generator().manual_seed(7)
        x = (torch.rand(3, 2, generator=gen, dtype=torch.float64) * 1.2 - 0.6).to(dtype)  # inside [-1, 1] for px
        assert_matches_reference(layer, x, atol=tol)
        xs = x.reshape(3, 1, 2).expand(3, 2, 2)  # leading dims (3, 2)
        y = layer(xs)
        assert y.shape == (3, 2, 2) and y.dtype == dtype, f"{name}: leading dims or dtype lost"
        assert torch.allclose(y[:, 0], layer(x), atol=tol, rtol=0), f"{name}: leading dims change values"
        assert layer(x[:0]).shape == (0, 2), f"{name}: an empty batch must give shape (0, out_dim)"
        clone = QKANLayer(2, 2, 2, seed=11, dtype=dtype, **case).set_evaluator(name, **options)
        clone.load_state_dict(layer.state_dict())
        assert torch.allclose(clone(x), layer(x), atol=tol, rtol=0), f"{name}: state_dict round trip changes outputs"
        _check_update_routes(layer, x, f"{name} {case}", tol)
        _check_transforms(layer, x, f"{name} {case}", tol)
        if gradcheck and dtype == torch.float32:
            _check_float32_derivatives(layer, x, f"{name} {case}", second=gradgradcheck)
        elif gradcheck:
            names, params = zip(*layer.named_parameters())

            def fn(xi, *ps):
                return torch.func.functional_call(layer, dict(zip(names, ps)), (xi,))

            xg = x[:2].clone().requires_grad_(True)
            assert torch.autograd.gradcheck(fn, (xg, *params), atol=1e-6), f"{name}: gradcheck failed for {case}"
            if gradgradcheck:
                check_graph_gradients(fn, (xg, *params), f"{name} {case}", allow_unused=True)
                ok = torch.autograd.gradgradcheck(fn, (xg, *params), atol=1e-6)
                assert ok, f"{name}: gradgradcheck failed for {case}"
        checked.append(case)
    assert checked, f"evaluator {name!r} supports none of the conformance cases"
    return checked


def check_graph_gradients(fn, inputs: tuple, what: str, allow_unused: bool = False) -> None:
    """The gradients of sum(fn(*inputs)^2) taken with create_graph=True equal the plain ones (1e-12).

    gradgradcheck differences the create_graph gradients against themselves, so a first derivative
    that is wrong only when a graph is requested passes it; this check catches that.
    """
    plain = torch.autograd.grad(fn(*inputs).pow(2).sum(), inputs, allow_unused=allow_unused)
    graph = torch.autograd.grad(fn(*inputs).pow(2).sum(), inputs, create_graph=True, allow_unused=allow_unused)
    for a, b in zip(plain, graph):
        assert (a is None) == (b is None) and (a is None or torch.allclose(a, b, atol=1e-12, rtol=1e-12)), (
            f"{what}: gradients with create_graph=True differ from the plain ones"
        )


def second_derivative(layer, x: torch.Tensor) -> torch.Tensor:
    """d2/dx2 of sum(layer(x)) per input value (the Laplacian terms), through create_graph."""
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(layer(x).sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    return h


def _check_float32_derivatives(layer, x: torch.Tensor, what: str, second: bool) -> None:
    """A float32 layer's gradients of sum(layer(x)^2) (x and every parameter) and, with `second`, its
    second derivatives in x equal those of its float64 copy to float32 accuracy (2e-3)."""
    import copy

    def gradients(module, xi):
        xi = xi.detach().requires_grad_(True)
        return torch.autograd.grad(module(xi).pow(2).sum(), [xi, *module.parameters()])

    wide = copy.deepcopy(layer).double()
    for got, expected in zip(gradients(layer, x), gradients(wide, x.double())):
        assert torch.allclose(got.double(), expected, atol=2e-3, rtol=2e-3), f"{what}: float32 gradients {got} vs float64 {expected}"
    if second:
        got, expected = second_derivative(layer, x).double(), second_derivative(wide, x.double())
        assert torch.allclose(got, expected, atol=2e-3, rtol=2e-3), f"{what}: float32 second derivatives {got} vs float64 {expected}"


def _check_update_routes(layer, x: torch.Tensor, what: str, tol: float) -> None:
    """Outputs follow every way of changing parameters: .data, copy_, load_state_dict, functional_call."""
    import copy

    def fresh(params: dict) -> torch.Tensor:  # the function of `params`, computed by a new layer
        other = copy.deepcopy(layer)
        other.load_state_dict(params, strict=False)
        name, options = layer.evaluator_choice()
        if isinstance(name, str):  # a new evaluator object: nothing cached
            other.set_evaluator(name, **options)
        with torch.no_grad():
            return other(x)

    gen = torch.Generator().manual_seed(13)
    step = {k: 0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype) for k, p in layer.named_parameters()}
    with torch.no_grad():
        layer(x)  # fill any cache
        for k, p in layer.named_parameters():
            p.data.add_(step[k])
        after = {k: p.detach().clone() for k, p in layer.named_parameters()}
        assert torch.allclose(layer(x), fresh(after), atol=tol, rtol=0), f"{what}: stale output after a .data update"
        for k, p in layer.named_parameters():
            p.copy_(p - step[k])
        before = {k: p.detach().clone() for k, p in layer.named_parameters()}
        assert torch.allclose(layer(x), fresh(before), atol=tol, rtol=0), f"{what}: stale output after copy_"
        layer.load_state_dict(after, strict=False)
        assert torch.allclose(layer(x), fresh(after), atol=tol, rtol=0), f"{what}: stale output after load_state_dict"
        for params in (before, after, before):
            y = torch.func.functional_call(layer, params, (x,))
            assert torch.allclose(y, fresh(params), atol=tol, rtol=0), f"{what}: stale output under functional_call"
        layer.load_state_dict(before, strict=False)


def _check_transforms(layer, x: torch.Tensor, what: str, tol: float) -> None:
    """torch.func.jacrev equals autograd's Jacobian, or the evaluator refuses by name."""
    if not getattr(layer.get_evaluator(), "supports_transforms", False):
        try:
            torch.func.jacrev(layer)(x)
        except RuntimeError as err:
            assert layer.evaluator in str(err), f"{what}: the torch.func error must name the evaluator; got {err}"
            return
        raise AssertionError(f"{what}: torch.func.jacrev ran although the evaluator does not declare supports_transforms")
    jac = torch.func.jacrev(layer)(x)  # (N, O, N, I)
    expected = torch.autograd.functional.jacobian(layer, x)
    assert torch.allclose(jac, expected, atol=tol, rtol=0), f"{what}: jacrev differs from autograd"
    per_sample = torch.func.vmap(layer)(x)
    assert torch.allclose(per_sample, layer(x), atol=tol, rtol=0), f"{what}: vmap differs from the batched call"


def _unsupported(layer, name: str, options: dict) -> str | None:
    """Why the evaluator `name` cannot run `layer` (None when it can)."""
    from qkan.simulators import make_evaluator

    return make_evaluator(name, **options).unsupported(layer)
