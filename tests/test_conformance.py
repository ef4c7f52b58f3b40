"""Conformance: every registered evaluator, by being registered, passes qkan.testing.check_evaluator.

A toy evaluator defined here (one file plus one register call) shows that a new evaluator needs
nothing else to join the suite.
"""

from __future__ import annotations

import pytest
import torch

import qkan
from qkan.simulators import Evaluator, available_evaluators
from qkan.testing import check_evaluator, reference_layer


class ToyReferenceEvaluator(Evaluator):
    """Edge values straight from qkan.testing's numpy statevector (no gradients: plain numbers).

    Deliberately simple: it shows the protocol (name, unsupported, edge_outputs; forward inherited).
    """

    name = "toy-reference"

    def unsupported(self, layer) -> str | None:
        return None if layer.encoding == "fixed" else "the toy evaluator only knows the fixed encoding"

    def edge_outputs(self, layer, x: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(reference_layer(layer, x), dtype=x.dtype, device=x.device)  # (N, O, I)


qkan.register_evaluator("toy-reference", ToyReferenceEvaluator)

#: evaluators whose gradients are not differentiable end to end (the toy returns plain numbers)
NO_GRADCHECK = {"toy-reference"}


@pytest.mark.parametrize("name", available_evaluators())
def test_registered_evaluator_conforms(name):
    checked = check_evaluator(name, gradcheck=name not in NO_GRADCHECK)
    assert checked


def test_toy_evaluator_is_usable_by_name_everywhere():
    assert "toy-reference" in available_evaluators()
    model = qkan.QKAN([2, 2, 1], reps=2, seed=0, dtype=torch.float64)
    x = torch.rand(5, 2, dtype=torch.float64)
    expected = model(x)
    model.set_evaluator("toy-reference")
    assert model.layers[0].evaluator == "toy-reference"
    torch.testing.assert_close(model(x), expected, atol=1e-12, rtol=0)
    extended = model.extend(3)  # derived models keep the evaluator choice
    assert extended.layers[0].evaluator == "toy-reference"
    torch.testing.assert_close(extended(x), expected, atol=1e-12, rtol=0)


def test_unknown_and_bad_registrations():
    with pytest.raises(ValueError, match=r"`evaluator` must be 'auto' or one of \[.*'toy-reference'.*\]; got 'nope'"):
        qkan.QKANLayer(2, 2, evaluator="nope")
    with pytest.raises(TypeError, match="`evaluator` must be a str"):
        qkan.QKANLayer(2, 2, evaluator=3)
    with pytest.raises(TypeError, match="`factory` must be callable"):
        qkan.register_evaluator("broken", 42)
    with pytest.raises(ValueError, match="`name` 'auto' is reserved"):
        qkan.register_evaluator("auto", ToyReferenceEvaluator)
    with pytest.raises(ValueError, match="evaluator 'toy-reference' cannot run this layer: the toy evaluator only"):
        qkan.QKANLayer(2, 2, encoding="edge", evaluator="toy-reference")
