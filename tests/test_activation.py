"""qkan.DARUAN: the element-wise DARUAN activation against the reference statevector."""

import numpy as np
import pytest
import torch
from torch import nn

import qkan
from qkan.testing import reference_edge

CASES = [
    dict(ansatz="pz"),
    dict(ansatz="rpz", encoding="input"),
    dict(ansatz="px", encoding="edge"),
    dict(ansatz="real", encoding="edge"),
    dict(ansatz="mix", encoding="input", measure="amplitude"),
]


def _perturbed(act: qkan.DARUAN) -> qkan.DARUAN:
    """Move c, s and the encodings off their initial values so every parameter matters."""
    gen = torch.Generator().manual_seed(5)
    layer = act.layer
    with torch.no_grad():
        for p in (layer.post_weight, layer.post_bias):
            p.add_(torch.rand(p.shape, generator=gen, dtype=p.dtype) * 0.5)
        if layer.enc_weight is not None:
            layer.enc_weight.mul_(0.7)
            layer.enc_bias.add_(0.1)
    return act


def _reference(act: qkan.DARUAN, x: torch.Tensor) -> np.ndarray:
    """c_d (f_d(x_d) + s_d) with f_d from qkan.testing's statevector, one feature at a time: (N, D)."""
    layer = act.layer
    theta = layer.edge_theta().detach()[0].numpy()  # (D, n_slots, k)
    w, b = layer.encoding_parameters()
    D, R = act.dim, layer.reps
    w = np.ones((D, R)) if w is None else w.detach()[0].numpy()
    b = np.zeros((D, R)) if b is None else b.detach()[0].numpy()
    c, s = layer.post_weight.detach()[0].numpy(), layer.post_bias.detach()[0].numpy()
    out = np.empty(x.shape)
    for n, row in enumerate(x.numpy()):
        for d in range(D):
            f = reference_edge(layer.ansatz.name, theta[d], w[d] * row[d] + b[d], layer.measure)
            out[n, d] = c[d] * (f + s[d])
    return out


@pytest.mark.parametrize("case", CASES, ids=[f"{c['ansatz']}-{c.get('encoding', 'fixed')}" for c in CASES])
@pytest.mark.parametrize("evaluator", ["auto", "fourier", "su2"])
def test_daruan_matches_reference_and_gradcheck(case, evaluator):
    act = _perturbed(qkan.DARUAN(3, reps=2, seed=1, dtype=torch.float64, **case))
    if evaluator == "fourier" and act.layer.get_evaluator().name != "fourier":
        with pytest.raises(ValueError, match="evaluator 'fourier' cannot run this layer"):
            act.set_evaluator("fourier")
        return
    act.set_evaluator(evaluator)
    x = torch.rand(5, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 1.8 - 0.9
    np.testing.assert_allclose(act(x).detach().numpy(), _reference(act, x), rtol=0, atol=1e-12)
    names, params = zip(*act.named_parameters())

    def fn(xi, *ps):
        return torch.func.functional_call(act, dict(zip(names, ps)), (xi,))

    assert torch.autograd.gradcheck(fn, (x[:2].clone().requires_grad_(True), *params), atol=1e-6)


def test_daruan_is_element_wise_on_any_leading_dims():
    act = qkan.DARUAN(4, reps=3, seed=0, dtype=torch.float64)
    assert act.layer.get_evaluator().name == "fourier"  # closed form where it exists
    x = torch.rand(2, 3, 4, dtype=torch.float64) * 2 - 1
    y = act(x)
    assert y.shape == (2, 3, 4)
    x2 = x.clone()
    x2[..., 1] += 0.3  # changing feature 1 changes output 1 only
    changed = (act(x2) - y).abs().amax(dim=(0, 1))
    assert changed[1] > 1e-3 and torch.all(changed[[0, 2, 3]] == 0)
    assert act(x[:0]).shape == (0, 3, 4)
    # at initialisation c = 1, s = 0: the activation is the circuit's <Z> itself, within [-1, 1]
    torch.testing.assert_close(y, act.layer.edge_outputs(x)[..., 0, :], rtol=0, atol=0)
    assert y.abs().max() <= 1


def test_daruan_trains_inside_an_mlp():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, 8), qkan.DARUAN(8, reps=2, seed=0), nn.Linear(8, 1))
    x = torch.linspace(-1, 1, 64).unsqueeze(-1)
    y = torch.sin(3 * x)
    opt = torch.optim.Adam(net.parameters(), lr=3e-2)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = nn.functional.mse_loss(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]
    assert net[1].layer.theta.grad is not None


def test_daruan_pennylane_evaluator_matches():
    pytest.importorskip("pennylane")
    act = _perturbed(qkan.DARUAN(2, reps=2, seed=1, dtype=torch.float64))
    x = torch.rand(3, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2 - 1
    expected = act(x)
    act.set_evaluator("pennylane")
    torch.testing.assert_close(act(x), expected, rtol=0, atol=1e-10)


def test_daruan_arguments():
    with pytest.raises(TypeError, match="`dim` must be an int >= 1"):
        qkan.DARUAN(2.0)
    with pytest.raises(ValueError, match="`dim` must be an int >= 1; got 0"):
        qkan.DARUAN(0)
    with pytest.raises(ValueError, match="`ansatz` must be one of"):
        qkan.DARUAN(2, ansatz="zz")
    with pytest.raises(ValueError, match=r"`x` must have shape \(\*, 3\)"):
        qkan.DARUAN(3)(torch.rand(4, 2))
    assert "dim=3" in repr(qkan.DARUAN(3))
