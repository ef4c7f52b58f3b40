"""Edge activations, KAN regularisation, attribution and pruning (qkan.interpret)."""

import numpy as np
import pytest
import torch

from qkan import QKAN
from qkan.interpret import attribution, edge_activations, prune, prune_plan, regularization
from qkan.testing import reference_layer

CONFIGS = [
    dict(),
    dict(group="input", bias=True),
    dict(group="output", base="tanh"),
    dict(group="all", base="none"),
    dict(ansatz="rpz", encoding="input"),
    dict(ansatz="mix", encoding="edge", bias=True),
]


def _model(width, reps=2, **options):
    return QKAN(width, reps, seed=3, dtype=torch.float64, **options)


def _ref_activations(layer, x):
    """phi (N, O, I) from the numpy reference statevector and the layer formula."""
    f = reference_layer(layer, x)
    p = {n: getattr(layer, n).detach().numpy() for n in ("mask", "post_weight", "post_bias")}
    phi = p["mask"] * p["post_weight"] * (f + p["post_bias"])
    if layer.base_weight is not None:
        base = {"silu": lambda v: v / (1 + np.exp(-v)), "tanh": np.tanh, "identity": lambda v: v}[layer.base]
        phi = phi + p["mask"] * layer.base_weight.detach().numpy() * base(x.numpy())[:, None, :]
    return phi


def _ref_forward(model, x):
    """Layer inputs and activations of every layer from the reference."""
    acts = []
    for layer in model.layers:
        phi = _ref_activations(layer, x)
        acts.append(phi)
        y = phi.sum(-1) + (0 if layer.bias is None else layer.bias.detach().numpy())
        x = torch.from_numpy(y)
    return acts


@pytest.mark.parametrize("options", CONFIGS)
def test_edge_activations_sum_to_layer_output(options):
    layer = _model([3, 4], **options).layers[0]
    with torch.no_grad():
        layer.mask[1, 2] = 0
        if layer.bias is not None:
            layer.bias.normal_()
    x = torch.rand(7, 3, dtype=torch.float64) * 2 - 1
    phi = edge_activations(layer, x)
    np.testing.assert_allclose(phi.detach().numpy(), _ref_activations(layer, x), rtol=0, atol=1e-12)
    assert torch.all(phi[:, 1, 2] == 0)
    y = phi.sum(-1) + (0 if layer.bias is None else layer.bias)
    torch.testing.assert_close(y, layer(x), rtol=0, atol=1e-12)


def test_regularization_matches_reference_and_has_gradients():
    model = _model([2, 3, 2], bias=True)
    with torch.no_grad():
        model.layers[0].bias.normal_()
    x = torch.rand(9, 2, dtype=torch.float64) * 2 - 1
    expected = 0.0
    for layer, phi in zip(model.layers, _ref_forward(model, x)):
        s = np.abs(phi).mean(0)
        p = s / s.sum()
        coeffs = layer.fourier_coefficients().detach().numpy()[..., 1:]
        expected += 0.7 * s.sum() - 1.3 * (p * np.log(p)).sum() + 0.2 * np.abs(coeffs).sum()
    reg = regularization(model, x, l1=0.7, entropy=1.3, coef=0.2)
    assert reg.shape == () and reg.dtype == torch.float64
    assert abs(reg.item() - expected) < 1e-10
    reg.backward()
    for name, param in model.named_parameters():
        if name == "layers.1.bias":  # the output bias does not change any edge activation
            assert param.grad is None
            continue
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    assert model.layers[0].theta.grad.abs().max() > 0


def test_regularization_terms_switch_off():
    model = _model([2, 2])
    x = torch.rand(5, 2, dtype=torch.float64)
    assert regularization(model, x, l1=0, entropy=0, coef=0).item() == 0
    only_l1 = regularization(model, x, l1=1, entropy=0)
    assert abs(only_l1.item() - edge_activations(model.layers[0], x).abs().mean(0).sum().item()) < 1e-12


def test_attribution_conserves_output_scores():
    model = _model([3, 4, 2])
    x = torch.rand(11, 3, dtype=torch.float64)
    att = attribution(model, x)
    assert [n.shape[0] for n in att.nodes] == [3, 4, 2]
    torch.testing.assert_close(att.nodes[-1], torch.ones(2, dtype=torch.float64))
    acts = _ref_forward(model, x)
    for l, (edge, phi) in enumerate(zip(att.edges, acts)):
        s = phi.std(0)
        expected = s / s.sum(1, keepdims=True) * att.nodes[l + 1].numpy()[:, None]
        np.testing.assert_allclose(edge.numpy(), expected, rtol=0, atol=1e-12)
        torch.testing.assert_close(att.nodes[l], edge.sum(0), rtol=0, atol=1e-12)
    assert abs(att.nodes[0].sum().item() - 2) < 1e-12


def _weaken(model, hidden, factor=1e-4):
    """Make hidden node `hidden` of layer 1 nearly irrelevant to the output."""
    with torch.no_grad():
        model.layers[1].post_weight[:, hidden] *= factor
        model.layers[1].post_bias[:, hidden] = 0
        model.layers[1].base_weight[:, hidden] *= factor


@pytest.mark.parametrize("options", CONFIGS[:5])
def test_pruned_model_equals_masked_original(options):
    model = _model([3, 5, 4, 2], **options)
    if model.layers[1].base_weight is not None:
        _weaken(model, hidden=1)
    x = torch.rand(64, 3, dtype=torch.float64) * 2 - 1
    plan = prune_plan(model, 1e-2, 3e-2, x)
    pruned = prune(model, 1e-2, 3e-2, x)
    assert pruned.width == [len(n) for n in plan.nodes]
    assert pruned.width[0] == 3 and pruned.width[-1] == 2
    masked = QKAN([3, 5, 4, 2], 2, seed=3, dtype=torch.float64, **options)
    masked.load_state_dict(model.state_dict())
    with torch.no_grad():
        for layer, mask in zip(masked.layers, plan.masks):
            layer.mask.copy_(mask)
    xt = torch.randn(50, 3, dtype=torch.float64)
    torch.testing.assert_close(pruned(xt), masked(xt), rtol=0, atol=1e-12)
    assert torch.equal(model.layers[0].mask, torch.ones(5, 3, dtype=torch.float64))  # original untouched
    if model.layers[1].base_weight is not None:
        assert 1 not in plan.nodes[1].tolist() and pruned.width[1] < 5
    for layer, old_layer, mask, rows, cols in zip(pruned.layers, model.layers, plan.masks, plan.nodes[1:], plan.nodes[:-1]):
        assert torch.equal(layer.mask, mask[rows][:, cols])
        old = old_layer.theta  # grouped dims stay 1
        assert layer.theta.shape[0] == (1 if old.shape[0] == 1 else len(rows))
        assert layer.theta.shape[1] == (1 if old.shape[1] == 1 else len(cols))


def test_prune_removes_weak_node_and_masks_weak_edges():
    model = _model([2, 4, 1])
    _weaken(model, hidden=2)
    x = torch.rand(64, 2, dtype=torch.float64) * 2 - 1
    att = attribution(model, x)
    assert att.nodes[1][2] < 1e-2 <= att.nodes[1].sort().values[1]
    pruned = prune(model, node_th=1e-2, edge_th=0.0, x=x)
    assert pruned.width == [2, 3, 1]
    assert torch.equal(pruned.layers[1].base_weight, model.layers[1].base_weight[:, [0, 1, 3]])
    # an edge threshold above every score of a node masks its edges and removes the node
    strict = prune(model, node_th=0.0, edge_th=2.0, x=x)
    assert strict.width == [2, 1, 1]
    assert strict.layers[1].mask.sum() == 0 and strict.layers[0].mask.sum() == 0


def test_prune_uses_reference_input_and_validates():
    model = _model([2, 3, 1])
    with pytest.raises(ValueError, match="`x` is required"):
        prune(model)
    model.reference_input = torch.rand(16, 2, dtype=torch.float64)
    assert prune(model, 0.0, 0.0).width == [2, 3, 1]
    with pytest.raises(ValueError, match="`node_th` must be a number >= 0"):
        prune(model, node_th=-1)
    with pytest.raises(ValueError, match=r"`x` must be a tensor of shape \(N >= 1, 2\)"):
        attribution(model, torch.rand(4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="`coef` must be a number >= 0"):
        regularization(model, model.reference_input, coef=-0.5)
    px = _model([2, 2], ansatz="px")
    with pytest.raises(ValueError, match="fourier_coefficients"):
        regularization(px, torch.rand(3, 2, dtype=torch.float64), coef=1.0)


def test_fit_with_regularization_then_prune_save_and_load(tmp_path):
    from qkan.data import function_dataset

    data = function_dataset(lambda x: torch.sin(2 * x[:, :1]), n_var=2, train_num=64, test_num=16, dtype=torch.float64)
    model = _model([2, 3, 1])
    history = model.fit(data, steps=2, reg=1e-3, reg_options=dict(entropy=1.0), progress=False)
    assert history["test_rmse"][-1] < 0.05
    assert attribution(model, data["train_input"]).nodes[0][1] < 0.05  # x_2 does not matter to the target
    pruned = model.prune()  # x defaults to the reference_input that fit stored
    assert pruned.width[0] == 2 and pruned.width[-1] == 1
    assert pruned.layers[0].mask[:, 1].sum() == 0
    pruned.save(tmp_path / "pruned.pt")
    loaded = QKAN.load(tmp_path / "pruned.pt")
    x = data["test_input"]
    torch.testing.assert_close(loaded(x), pruned(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("options", [dict(), dict(group="input", bias=True), dict(ansatz="mix", encoding="edge")])
def test_prune_input_equals_original_on_kept_inputs(options):
    model = _model([4, 3, 2], **options)
    first = model.layers[0]
    with torch.no_grad():  # inputs 1 and 3 reach the outputs only through constant edges
        first.theta[..., 1] = torch.where(torch.tensor([False, True, False, True]).reshape(1, 4, 1), 0.0, first.theta[..., 1])
        if first.enc_weight is not None:  # mix: RY(w x + b) with w = 0 makes the edge constant
            first.enc_weight[:, [1, 3]] = 0
        first.base_weight[:, [1, 3]] = 0
        first.post_bias[:, [1, 3]] = torch.rand(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = torch.rand(64, 4, dtype=torch.float64) * 2 - 1
    scores = attribution(model, x).nodes[0]
    assert scores[1] < 1e-12 and scores[3] < 1e-12 and scores[0] > 0.05 and scores[2] > 0.05
    pruned = model.prune_input(threshold=1e-2, x=x)
    assert pruned.kept_inputs == [0, 2] and pruned.width == [2, 3, 2]
    x_new = torch.rand(32, 4, dtype=torch.float64) * 2 - 1  # other points, and any values of the dropped inputs
    torch.testing.assert_close(pruned(x_new[:, [0, 2]]), model(x_new), rtol=0, atol=1e-12)
    # the original is unchanged and shares no parameters with the result
    assert model.width == [4, 3, 2]
    assert not {id(p) for p in pruned.parameters()} & {id(p) for p in model.parameters()}


def test_prune_input_keeps_the_best_input_and_validates():
    model = _model([3, 2, 1])
    x = torch.rand(16, 3, dtype=torch.float64)
    scores = attribution(model, x).nodes[0]
    only = model.prune_input(threshold=10.0, x=x)
    assert only.kept_inputs == [int(scores.argmax())] and only.width == [1, 2, 1]
    assert model.prune_input(threshold=0.0, x=x).kept_inputs == [0, 1, 2]
    with pytest.raises(ValueError, match="`x` is required"):
        model.prune_input()
    with pytest.raises(ValueError, match="`threshold` must be a number >= 0"):
        model.prune_input(threshold=-1.0, x=x)
    with pytest.raises(TypeError, match="`threshold` must be a number"):
        model.prune_input(threshold="high", x=x)
    model.reference_input = x
    assert model.prune_input(threshold=0.0).reference_input.shape == (16, 3)
