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


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", available_evaluators())
def test_registered_evaluator_conforms(name, dtype):
    checked = check_evaluator(name, dtype=dtype, gradcheck=name not in NO_GRADCHECK)
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


def test_an_evaluator_without_edge_outputs_fails_at_class_creation():
    with pytest.raises(TypeError, match="evaluator class Incomplete must implement edge_outputs"):

        class Incomplete(Evaluator):
            name = "incomplete"


def _explicit_edge(ansatz: str, theta, phis) -> float:
    """The built-in ansaetze written out gate by gate from the math contract, independently of
    their specs (the reference in qkan.testing reads the specs, so the specs are checked here)."""
    import numpy as np

    from qkan import testing as t

    theta = np.asarray(theta, dtype=float).reshape(len(theta), -1)
    psi = t._H @ np.array([1, 0], dtype=complex)
    per_rep = {
        "pz": lambda th, phi: [t._rz(th[0]), t._ry(th[1]), t._rz(phi)],
        "rpz": lambda th, phi: [t._ry(th[0]), t._rz(phi)],
        "px": lambda th, phi: [t._rz(th[0]), t._rx(np.arccos(phi))],
        "real": lambda th, phi: [t._X, t._ry(th[0]), t._Z, t._ry(phi)],
        "mix": lambda th, phi: [t._rz(th[0]), t._rx(th[1]), t._ry(phi)],
    }
    final = {
        "pz": lambda th: [t._rz(th[0]), t._ry(th[1])],
        "rpz": lambda th: [t._ry(th[0])],
        "px": lambda th: [t._rz(th[0])],
        "real": lambda th: [],
        "mix": lambda th: [t._rz(th[0]), t._rx(th[1])],
    }
    for l, phi in enumerate(phis):
        for g in per_rep[ansatz](theta[l], phi):
            psi = g @ psi
    if len(theta) > len(phis):
        for g in final[ansatz](theta[len(phis)]):
            psi = g @ psi
    return float(np.real(np.conj(psi) @ t._Z @ psi))


@pytest.mark.parametrize("ansatz", ["pz", "rpz", "px", "real", "mix"])
def test_builtin_specs_follow_the_math_contract(ansatz):
    from qkan.circuits.ansatz import ANSATZE
    from qkan.testing import reference_edge

    gen = torch.Generator().manual_seed(0)
    theta = torch.rand(*ANSATZE[ansatz].theta_shape(3), generator=gen, dtype=torch.float64) * 6 - 3
    phis = torch.rand(3, generator=gen, dtype=torch.float64) * 1.8 - 0.9
    assert abs(reference_edge(ansatz, theta.numpy(), phis.numpy()) - _explicit_edge(ansatz, theta.numpy(), phis.numpy())) < 1e-13


def test_a_registered_ansatz_runs_on_every_evaluator():
    from qkan.circuits.ansatz import ANSATZE, Ansatz, Gate

    spec = Ansatz("ryrx", (Gate("RY", 0), Gate("H"), Gate("RX", 1)), "RZ", False, (Gate("RY", 0),), 2)
    qkan.register_ansatz("ryrx", spec)
    try:
        layer = qkan.QKANLayer(2, 2, reps=2, ansatz="ryrx", seed=0, dtype=torch.float64)
        assert layer.evaluator == "fourier"  # a closed form: its data rotation has no arccos
        x = torch.rand(4, 2, dtype=torch.float64)
        for name in ("fourier", "su2"):
            layer.set_evaluator(name)
            from qkan.testing import assert_matches_reference

            assert_matches_reference(layer, x)
        layer.set_evaluator("su2", native=False)
        assert_matches_reference(layer, x)
    finally:
        ANSATZE.pop("ryrx")


def test_register_ansatz_errors():
    from qkan.circuits.ansatz import Ansatz, Gate

    with pytest.raises(TypeError, match="`spec` must be a qkan.circuits.ansatz.Ansatz"):
        qkan.register_ansatz("x", "RY")
    with pytest.raises(ValueError, match="`spec.name` must equal `name`"):
        qkan.register_ansatz("x", Ansatz("y", (Gate("RY", 0),), "RZ", False, (), 1))
    with pytest.raises(ValueError, match="gate RY takes a theta index in \\[0, 1\\); got param=1"):
        qkan.register_ansatz("x", Ansatz("x", (Gate("RY", 1),), "RZ", False, (), 1))
    with pytest.raises(ValueError, match="`spec.encoding_gate` must be 'RX', 'RY' or 'RZ'"):
        qkan.register_ansatz("x", Ansatz("x", (Gate("RY", 0),), "H", False, (), 1))


class _BFloat16Rounding(ToyReferenceEvaluator):
    """The toy evaluator with its values rounded to bfloat16: about 3 digits, not float32's 7."""

    name = "bf16-rounding"

    def edge_outputs(self, layer, x: torch.Tensor) -> torch.Tensor:
        return super().edge_outputs(layer, x).to(torch.bfloat16).to(x.dtype)


def test_float32_conformance_catches_lost_precision(monkeypatch):
    from qkan.simulators import base

    monkeypatch.setitem(base._REGISTRY, "bf16-rounding", _BFloat16Rounding)
    with pytest.raises(AssertionError, match="edge outputs, evaluator bf16-rounding"):
        check_evaluator("bf16-rounding", dtype=torch.float32, gradcheck=False)
