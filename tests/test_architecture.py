"""The boundaries of the architecture: what the layer owns, what derived models carry over."""

from __future__ import annotations

import pytest
import torch

import qkan
from qkan import QKAN, QKANLayer
from qkan.circuits import ANSATZE


def test_encoded_angles_shapes_and_values():
    x = torch.rand(5, 3, dtype=torch.float64)
    fixed = QKANLayer(3, 2, 4, dtype=torch.float64)
    assert fixed.encoded_angles(x).shape == (5, 1, 3, 4)
    torch.testing.assert_close(fixed.encoded_angles(x)[..., 2], x[:, None, :])
    edge = QKANLayer(3, 2, 4, encoding="edge", dtype=torch.float64)
    with torch.no_grad():
        edge.enc_weight.normal_()
        edge.enc_bias.normal_()
    phi = edge.encoded_angles(x)
    assert phi.shape == (5, 2, 3, 4)
    torch.testing.assert_close(phi[1, 0, 2, 3], edge.enc_weight[0, 2, 3] * x[1, 2] + edge.enc_bias[0, 2, 3])
    torch.testing.assert_close(edge.encoded_angles(x, 3), phi[..., 3])
    assert QKANLayer(3, 2, 4, encoding="input").encoded_angles(x.float()).shape == (5, 1, 3, 4)


def test_edge_theta_and_parameters_follow_grouping():
    layer = QKANLayer(3, 2, 2, group="input", encoding="edge", seed=1)
    assert layer.theta.shape == (1, 3, 3, 2) and layer.edge_theta().shape == (2, 3, 3, 2)
    theta, w, b = layer.edge_parameters((1, 2))
    assert torch.equal(theta, layer.theta[0, 2]) and torch.equal(w, layer.enc_weight[1, 2]) and torch.equal(b, layer.enc_bias[1, 2])
    theta, w, b = QKANLayer(1, 1, 3).edge_parameters((0, 0))
    assert torch.equal(w, torch.ones(3)) and torch.equal(b, torch.zeros(3))


def test_edge_contributions_sum_to_the_layer():
    layer = QKANLayer(3, 2, 2, bias=True, seed=0, dtype=torch.float64)
    x = torch.rand(4, 3, dtype=torch.float64)
    terms = layer.edge_contributions(layer.edge_outputs(x), x)
    torch.testing.assert_close(terms.sum(-1) + layer.bias, layer(x), atol=1e-12, rtol=0)


def test_evaluator_state_lives_on_the_evaluator():
    layer = QKANLayer(2, 2, 2)
    with torch.no_grad():
        layer(torch.rand(3, 2))
    assert not [k for k, v in vars(layer).items() if isinstance(v, torch.Tensor)]  # only parameters and buffers
    assert layer.get_evaluator()._cache is not None


def test_model_derives_its_state_from_layers():
    model = QKAN([3, 4, 2], reps=2, seed=5, encoding="edge")
    assert model.width == [3, 4, 2] and model.reps == 2 and model.seed == 5
    assert [layer.seed for layer in model.layers] == [5, 6]
    rebuilt = QKAN(**model.config())
    assert rebuilt.config() == model.config()
    with pytest.raises(AttributeError):
        model.width = [1, 2]


def test_model_checks_input_once(monkeypatch):
    model = QKAN([2, 3, 3, 1], reps=1)
    calls = []
    original = QKANLayer.check_input
    monkeypatch.setattr(QKANLayer, "check_input", lambda self, x: calls.append(1) or original(self, x))
    model(torch.rand(4, 2))
    assert len(calls) == 1


def test_reference_input_is_a_buffer_that_survives_save_load_extend_prune(tmp_path):
    model = QKAN([2, 3, 1], reps=2, seed=0, dtype=torch.float64)
    assert model.reference_input is None
    model.reference_input = torch.rand(16, 2, dtype=torch.float64)
    assert "reference_input" in model.state_dict()
    model.save(tmp_path / "m.pt")
    loaded = QKAN.load(tmp_path / "m.pt")
    torch.testing.assert_close(loaded.reference_input, model.reference_input)
    torch.testing.assert_close(model.extend(3).reference_input, model.reference_input)
    assert model.prune(0.0, 0.0).reference_input is not None
    model.to(torch.float32)
    assert model.reference_input.dtype == torch.float32  # a buffer moves with the model


def test_extend_and_prune_carry_the_evaluator_choice():
    model = QKAN([2, 3, 1], reps=2, seed=0, dtype=torch.float64).set_evaluator("su2")
    x = torch.rand(8, 2, dtype=torch.float64)
    extended = model.extend(4)
    assert all(layer.evaluator == "su2" for layer in extended.layers)
    torch.testing.assert_close(extended(x), model(x), atol=1e-12, rtol=0)
    pruned = model.prune(0.0, 0.0, x=x)
    assert all(layer.evaluator == "su2" for layer in pruned.layers)
    assert pruned.layers[0].get_evaluator() is not model.layers[0].get_evaluator()  # fresh, same choice


@pytest.mark.parametrize("name", sorted(ANSATZE))
def test_extension_rule_is_a_field_of_the_spec(name):
    spec = ANSATZE[name]
    for encoding in ("fixed", "edge"):
        problem = spec.extension_problem(encoding != "fixed")
        model = QKAN([2, 1], reps=1, ansatz=name, encoding=encoding, seed=0, dtype=torch.float64)
        if problem:
            with pytest.raises(ValueError, match="extend\\(\\) "):
                model.extend(2)
            continue
        x = torch.rand(6, 2, dtype=torch.float64) * 1.6 - 0.8
        torch.testing.assert_close(model.extend(3)(x), model(x), atol=1e-12, rtol=0)


def test_register_evaluator_is_public():
    assert qkan.register_evaluator is qkan.simulators.register_evaluator
    assert "register_evaluator" in qkan.__all__


def test_sliced_keeps_the_chosen_edges_and_checks_its_indices():
    layer = QKANLayer(3, 4, 2, bias=True, seed=0, dtype=torch.float64)
    rows, cols = torch.tensor([0, 2]), torch.tensor([1, 2])
    small = layer.sliced(rows, cols)
    x = torch.rand(5, 3, dtype=torch.float64)
    expected = layer.edge_outputs(x)[:, rows][:, :, cols]
    torch.testing.assert_close(small.edge_outputs(x[:, cols]), expected, rtol=0, atol=1e-12)
    with pytest.raises(TypeError, match="`rows` must be a 1-d int64 tensor"):
        layer.sliced([0, 2], cols)
    with pytest.raises(ValueError, match=r"`cols` must hold at least one index in \[0, 3\); got \[3\]"):
        layer.sliced(rows, torch.tensor([3]))
    with pytest.raises(ValueError, match="`mask` must be None or a tensor of shape"):
        layer.sliced(rows, cols, torch.ones(2, 2))


def test_extended_refuses_fewer_reps():
    layer = QKANLayer(2, 2, 2, seed=0)
    with pytest.raises(ValueError, match=r"`reps` must be greater than the current reps \(2\); got 2"):
        layer.extended(2)
    assert layer.extended(4).reps == 4


def _import_graph() -> dict[str, set[str]]:
    """Module -> the qkan modules it imports anywhere in its code (deferred imports inside functions too)."""
    import ast
    from pathlib import Path

    root = Path(qkan.__file__).parent
    modules = {".".join(p.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__"): p for p in root.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


#: deferred imports that close a circle on purpose: a method of a low module forwarding to a higher one
FORWARDERS = {
    # Circuit.on_backend (public: a found circuit measured on a backend) calls kanqas.hardware.run_on_backend
    ("qkan.kanqas.circuit", "qkan.kanqas.hardware"),
}


def test_the_import_graph_has_no_circles():
    graph = _import_graph()
    assert "qkan.simulators.fourier_sampling" in graph["qkan.simulators.fourier"]  # the walk sees imports
    for low, high in FORWARDERS:
        assert high in graph[low], f"{low} no longer imports {high}: remove it from FORWARDERS"
        graph[low].discard(high)
    circles = []
    for start in graph:  # a circle through `start`: a path from it back to it
        stack, seen = [(start, [start])], {start}
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    circles.append(path)
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    assert not circles, f"import circles: {circles}"
