"""PennyLane export and evaluator: values, gradients, Fourier series, shots and a NISQ plugin device.

References are independent of PennyLane: the numpy statevector of qkan.testing and autograd
through the closed-form / SU(2) evaluators.
"""

import math

import numpy as np
import pytest
import torch

import qkan
from qkan.testing import assert_matches_reference, reference_edge

qml = pytest.importorskip("pennylane")

ANSATZE = ["pz", "rpz", "px", "real", "mix"]
ENCODINGS = ["fixed", "edge", "input"]
DEVICES = ["default.qubit", "lightning.qubit"]
#: (device, diff_method) pairs whose gradients are exact up to rounding
ANALYTIC = [
    ("default.qubit", "backprop"),
    ("default.qubit", "adjoint"),
    ("default.qubit", "parameter-shift"),
    ("lightning.qubit", "adjoint"),
    ("lightning.qubit", "parameter-shift"),
]
#: forward differences with step 1e-7: truncation ~ h |f''| / 2 plus rounding ~ 1e-16 / h
FINITE_DIFF_ATOL = 1e-6


def _layer(ansatz="pz", encoding="fixed", in_dim=2, out_dim=2, reps=2, group=None, seed=0):
    layer = qkan.QKANLayer(in_dim, out_dim, reps, ansatz=ansatz, encoding=encoding, group=group, seed=seed, bias=True)
    layer = layer.double()
    gen = torch.Generator().manual_seed(seed + 10)
    with torch.no_grad():
        for p in (layer.post_weight, layer.post_bias, layer.bias):
            p.copy_(torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1)
        if layer.enc_weight is not None:  # px needs |w x + b| <= 1 for |x| <= 1
            scale = 0.5 if ansatz == "px" else 1.5
            layer.enc_weight.copy_((torch.rand(layer.enc_weight.shape, generator=gen, dtype=torch.float64) * 2 - 1) * scale)
            layer.enc_bias.copy_((torch.rand(layer.enc_bias.shape, generator=gen, dtype=torch.float64) * 2 - 1) * scale / 2)
    return layer


def _inputs(ansatz="pz", n=3, in_dim=2, seed=1):
    gen = torch.Generator().manual_seed(seed)
    span = 0.9 if ansatz == "px" else 3.0
    return (torch.rand(n, in_dim, generator=gen, dtype=torch.float64) * 2 - 1) * span


def _grads(layer, x):
    """Values and gradients of a weighted sum of outputs w.r.t. every parameter and x."""
    x = x.clone().requires_grad_()
    layer.zero_grad(set_to_none=True)
    y = layer(x)
    weights = torch.linspace(0.5, 1.5, y.numel(), dtype=y.dtype).reshape(y.shape)
    (y * weights).sum().backward()
    grads = {n: p.grad.clone() for n, p in layer.named_parameters()}
    grads["x"] = x.grad.clone()
    return y.detach(), grads


# ------------------------------------------------------------------------------------- export
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("ansatz", ANSATZE)
def test_exported_qnode_matches_reference(ansatz, encoding, device):
    layer = _layer(ansatz, encoding, in_dim=2, out_dim=3)
    xs = _inputs(ansatz, n=4)[:, 1].numpy()
    j, i = 2, 1
    qnode = layer.to_pennylane(edge=(j, i), device=device)
    theta = layer.theta.detach().numpy()[j, i]
    w, b = layer.encoding_parameters()
    w = np.ones(layer.reps) if w is None else w.detach().numpy()[j if w.shape[0] > 1 else 0, i]
    b = np.zeros(layer.reps) if b is None else b.detach().numpy()[j if b.shape[0] > 1 else 0, i]
    ref = [reference_edge(ansatz, theta, w * x + b) for x in xs]
    np.testing.assert_allclose(qnode(xs), ref, rtol=0, atol=1e-10)  # broadcast over x
    assert abs(float(qnode(float(xs[0]))) - ref[0]) < 1e-10  # scalar x


def test_exported_qnode_is_a_snapshot_and_drawable():
    layer = _layer("pz", "fixed", group="input")
    qnode = layer.to_pennylane(edge=(1, 0))
    before = float(qnode(0.4))
    with torch.no_grad():
        layer.theta.add_(0.3)
    assert float(qnode(0.4)) == before
    drawing = qml.draw(qnode)(0.4)
    assert drawing.count("RZ") == 2 * layer.reps + 1 and drawing.count("RY") == layer.reps + 1
    assert "H" in drawing and "<Z>" in drawing


def test_exported_qnode_gradient_in_x():
    layer = _layer("mix", "edge")
    qnode = layer.to_pennylane(edge=(0, 1), diff_method="backprop")
    x = torch.tensor([0.2, -0.7], dtype=torch.float64, requires_grad=True)
    qnode(x).sum().backward()
    xs = torch.zeros(2, 2, dtype=torch.float64)
    xs[:, 1] = x.detach()
    xs.requires_grad_()
    layer.set_evaluator("su2").edge_outputs(xs)[:, 0, 1].sum().backward()
    torch.testing.assert_close(x.grad, xs.grad[:, 1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("ansatz", ["pz", "rpz", "real", "mix"])
def test_fourier_coefficients_of_exported_qnode(ansatz):
    reps = 3
    layer = _layer(ansatz, "fixed", reps=reps, seed=4)
    expected = layer.fourier_coefficients().detach().numpy()
    for j, i in [(0, 0), (1, 1)]:
        c = qml.fourier.coefficients(layer.to_pennylane(edge=(j, i)), 1, reps)  # [c_0, c_1..c_R, c_-R..c_-1]
        got = np.concatenate([[c[0].real], 2 * c[1 : reps + 1].real, -2 * c[1 : reps + 1].imag])
        np.testing.assert_allclose(got, expected[j, i], rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    "edge, error",
    [((2, 0), ValueError), ((0, -1), ValueError), ((0,), TypeError), ((0.0, 1), TypeError)],
)
def test_export_rejects_bad_edges(edge, error):
    with pytest.raises(error, match=r"`edge` must be a pair \(j, i\) of ints with 0 <= j < 2 and 0 <= i < 2; got"):
        _layer().to_pennylane(edge=edge)


def test_export_rejects_amplitude_measure():
    layer = qkan.QKANLayer(2, 2, 2, measure="amplitude", seed=0)
    with pytest.raises(ValueError, match="only measure 'z' is a circuit observable"):
        layer.to_pennylane()


# ---------------------------------------------------------------------------------- evaluator
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("ansatz", ANSATZE)
def test_evaluator_matches_reference(ansatz, encoding, device):
    layer = _layer(ansatz, encoding)
    x = _inputs(ansatz)
    expected = layer(x).detach()  # closed form or su2
    layer.set_evaluator("pennylane", device=device)
    assert layer.evaluator == "pennylane"
    assert_matches_reference(layer, x, atol=1e-10)
    torch.testing.assert_close(layer(x).detach(), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("group", ["input", "output", "all"])
def test_evaluator_with_grouped_circuits(group):
    layer = _layer("pz", "edge", in_dim=3, out_dim=2, group=group)
    layer.set_evaluator("pennylane")
    assert_matches_reference(layer, _inputs(in_dim=3), atol=1e-10)


def test_evaluator_keeps_leading_dims_and_dtype():
    layer = qkan.QKANLayer(2, 3, 2, seed=0)  # float32
    x = torch.rand(2, 4, 2) * 2 - 1
    expected = layer(x)
    layer.set_evaluator("pennylane", device="default.qubit")
    y = layer(x)
    assert y.shape == (2, 4, 3) and y.dtype == torch.float32
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-5)
    assert layer(x[:0]).shape == (0, 4, 3)


def test_one_broadcast_execution_per_forward():
    dev = qml.device("default.qubit", wires=1)
    layer = _layer("pz", "edge", in_dim=3, out_dim=2).set_evaluator("pennylane", device=dev)
    x = _inputs(n=5, in_dim=3)
    with qml.Tracker(dev) as tracker:
        layer(x)
    # one batch with one simulation of a tape broadcast over all 5 * 2 * 3 (sample, edge) pairs
    assert tracker.totals["batches"] == 1 and tracker.totals["simulations"] == 1
    assert tracker.totals["executions"] == 5 * 2 * 3


@pytest.mark.parametrize("device, diff_method", ANALYTIC)
@pytest.mark.parametrize("ansatz", ANSATZE)
def test_gradients_analytic(ansatz, device, diff_method):
    layer = _layer(ansatz, "edge")
    x = _inputs(ansatz)
    y0, g0 = _grads(layer, x)  # su2 autograd
    layer.set_evaluator("pennylane", device=device, diff_method=diff_method)
    y, g = _grads(layer, x)
    torch.testing.assert_close(y, y0, rtol=0, atol=1e-10)
    assert g.keys() == g0.keys() and {"theta", "enc_weight", "enc_bias", "x"} <= g.keys()
    for name in g0:
        torch.testing.assert_close(g[name], g0[name], rtol=0, atol=1e-8, msg=f"gradient of {name}")


@pytest.mark.parametrize("device", DEVICES)
def test_gradients_finite_diff(device):
    layer = _layer("pz", "input")
    x = _inputs()
    _, g0 = _grads(layer, x)  # closed form autograd
    layer.set_evaluator("pennylane", device=device, diff_method="finite-diff")
    _, g = _grads(layer, x)
    for name in g0:
        torch.testing.assert_close(g[name], g0[name], rtol=0, atol=FINITE_DIFF_ATOL, msg=f"gradient of {name}")


@pytest.mark.parametrize("device", DEVICES)
def test_layer_with_evaluator_copies_and_pickles(device):
    import copy
    import pickle

    layer = _layer("pz", "edge").set_evaluator("pennylane", device=device)
    x = _inputs()
    y = layer(x).detach()
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert clone.evaluator == "pennylane" and clone.get_evaluator().device.name == device
        torch.testing.assert_close(clone(x).detach(), y, rtol=0, atol=0)


def test_best_diff_method_resolution():
    assert qkan.simulators.make_evaluator("pennylane").diff_method == "backprop"
    assert qkan.simulators.make_evaluator("pennylane", device="lightning.qubit").diff_method == "adjoint"
    assert qkan.simulators.make_evaluator("pennylane", shots=10).diff_method == "parameter-shift"


def test_no_grad_forward_skips_differentiation():
    layer = _layer("rpz", "fixed").set_evaluator("pennylane", diff_method=None)
    x = _inputs("rpz")
    with torch.no_grad():
        y = layer(x)
    assert not y.requires_grad
    assert_matches_reference(layer, x, atol=1e-10)


# -------------------------------------------------------------------------------------- shots
def _five_sigma(got, exact, shots):
    sigma = np.sqrt(np.clip(1 - exact**2, 0, None) / shots)
    bound = 5 * sigma + 1e-12
    assert np.all(np.abs(got - exact) <= bound), f"max deviation / sigma = {np.max(np.abs(got - exact) / (sigma + 1e-300)):.2f}"


def test_shots_within_five_sigma():
    shots = 2000
    layer = _layer("pz", "edge", in_dim=3, out_dim=2)
    x = _inputs(n=6, in_dim=3)
    exact = layer.edge_outputs(x).detach().numpy()
    layer.set_evaluator("pennylane", device="default.qubit", shots=shots, seed=1234)
    got = layer.edge_outputs(x).detach().numpy()
    assert np.abs(got - exact).max() > 0  # really sampled
    _five_sigma(got, exact, shots)
    layer.set_evaluator("pennylane", device="default.qubit", shots=shots, seed=1234)
    np.testing.assert_array_equal(layer.edge_outputs(x).detach().numpy(), got)  # seeded


def test_shots_parameter_shift_gradient_within_five_sigma():
    shots = 4000
    layer = _layer("pz", "fixed", in_dim=1, out_dim=1, reps=2)
    x = _inputs(n=4, in_dim=1)
    layer.edge_outputs(x).sum().backward()  # exact: closed form autograd
    exact = layer.theta.grad.clone()
    layer.set_evaluator("pennylane", device="default.qubit", shots=shots, seed=7)
    assert layer.get_evaluator().diff_method == "parameter-shift"
    layer.zero_grad()
    layer.edge_outputs(x).sum().backward()
    # each sample's term (f+ - f-) / 2 has variance <= 1 / (2 S); N independent samples add up
    sigma = math.sqrt(x.shape[0] / (2 * shots))
    deviation = (layer.theta.grad - exact).abs().max().item()
    assert 0 < deviation <= 5 * sigma


# ------------------------------------------------------------------------------ NISQ plugins
def test_qiskit_aer_plugin_device_within_five_sigma():
    pytest.importorskip("pennylane_qiskit")
    shots = 4000
    layer = _layer("pz", "edge")
    x = _inputs(n=2)
    exact = layer.edge_outputs(x).detach().numpy()
    layer.set_evaluator("pennylane", device="qiskit.aer", shots=shots, seed_simulator=11)
    _five_sigma(layer.edge_outputs(x).detach().numpy(), exact, shots)


def test_qiskit_aer_plugin_gradient_within_five_sigma():
    pytest.importorskip("pennylane_qiskit")
    shots = 4000
    layer = _layer("rpz", "fixed", in_dim=1, out_dim=1, reps=1)
    x = _inputs(n=2, in_dim=1)
    layer.edge_outputs(x).sum().backward()
    exact = layer.theta.grad.clone()
    layer.set_evaluator("pennylane", device="qiskit.aer", shots=shots, seed_simulator=5)
    assert layer.get_evaluator().diff_method == "parameter-shift"
    layer.zero_grad()
    layer.edge_outputs(x).sum().backward()
    sigma = math.sqrt(x.shape[0] / (2 * shots))  # as for default.qubit with shots
    assert (layer.theta.grad - exact).abs().max().item() <= 5 * sigma


def test_qiskit_remote_with_fake_backend():
    """pennylane-qiskit's "qiskit.remote" with an IBM fake backend: the code path of real hardware.

    FakeManilaV2 simulates that device's noise (readout error ~2-3 %, gate errors), so values
    agree with the exact ones within 0.15 (noise plus 5 sigma of 4000 shots), not to 1e-10.
    """
    pytest.importorskip("pennylane_qiskit")
    fake_provider = pytest.importorskip("qiskit_ibm_runtime.fake_provider")
    layer = _layer("pz", "fixed", in_dim=1, out_dim=2)
    x = _inputs(n=2, in_dim=1)
    exact = layer.edge_outputs(x).detach().numpy()
    layer.set_evaluator(
        "pennylane", device="qiskit.remote", backend=fake_provider.FakeManilaV2(), shots=4000, simulator={"seed_simulator": 3}
    )
    assert layer.get_evaluator().diff_method == "parameter-shift"
    got = layer.edge_outputs(x).detach().numpy()
    assert got.shape == exact.shape
    np.testing.assert_allclose(got, exact, rtol=0, atol=0.15)


# ------------------------------------------------------------------------------------ errors
def test_amplitude_measure_is_unsupported():
    layer = qkan.QKANLayer(2, 2, 2, measure="amplitude", seed=0)
    with pytest.raises(ValueError, match="not an observable"):
        layer.set_evaluator("pennylane")


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(diff_method="magic"), "`diff_method` must be one of"),
        (dict(shots=0), "`shots` must be an int >= 1 or None; got 0"),
        (dict(device="no.such.device"), "`device` must name an installed PennyLane device"),
        (dict(device=3), "`device` must be a PennyLane device name or device object"),
        (dict(shots=100, diff_method="backprop"), "needs exact expectation values"),
    ],
)
def test_evaluator_option_errors(options, match):
    with pytest.raises(ValueError, match=match):
        _layer().set_evaluator("pennylane", **options)


@pytest.mark.parametrize(
    "options, match",
    [(dict(shots=1.5), r"`shots` must be an int >= 1 or None; got 1.5"), (dict(seed="a"), r"`seed` must be an int >= 0 or None; got 'a'")],
)
def test_evaluator_option_type_errors(options, match):
    with pytest.raises(TypeError, match=match):
        _layer().set_evaluator("pennylane", **options)


def test_seed_rejected_where_the_device_would_ignore_it():
    pytest.importorskip("pennylane_qiskit")
    with pytest.raises(ValueError, match="`seed` is not an option of device"):
        _layer().set_evaluator("pennylane", device="qiskit.aer", shots=10, seed=1)


def test_merged_rotations_shorten_the_evaluated_circuit():
    from qkan.circuits.ansatz import get_ansatz
    from qkan.circuits.pennylane import gate_sequence

    pz = get_ansatz("pz")
    assert len(gate_sequence(pz, 3)) == 12 and len(gate_sequence(pz, 3, merge=True)) == 9
    assert gate_sequence(pz, 3, merge=True)[3] == ("RZ", (("phi", 0), ("theta", 1, 0)))
    for name in ("rpz", "px", "real", "mix"):  # no two adjacent rotations share an axis
        assert gate_sequence(get_ansatz(name), 3, merge=True) == gate_sequence(get_ansatz(name), 3)


def test_device_object_rejects_name_only_options():
    dev = qml.device("default.qubit", wires=1)
    with pytest.raises(ValueError, match="apply to devices created by name"):
        _layer().set_evaluator("pennylane", device=dev, seed=1)


def test_device_object_with_custom_wire_label():
    dev = qml.device("default.qubit", wires=["q"])
    layer = _layer("real", "fixed").set_evaluator("pennylane", device=dev)
    assert_matches_reference(layer, _inputs("real"), atol=1e-10)
    qnode = layer.to_pennylane(edge=(0, 0), device=dev)
    assert "q" in qml.draw(qnode)(0.1)


# ------------------------------------------------------------------------------ routes
def test_default_route_broadcasts_natively_with_backprop():
    from qkan.simulators.pennylane import broadcasts_natively

    ev = qkan.simulators.make_evaluator("pennylane")
    assert ev.device.name == "default.qubit" and ev.diff_method == "backprop"
    assert broadcasts_natively(ev.device)


def test_non_broadcasting_device_is_honoured_with_one_warning(monkeypatch):
    import warnings

    import qkan.simulators.pennylane as pl

    monkeypatch.setattr(pl, "_WARNED", set())
    with pytest.warns(UserWarning, match=r"'lightning.qubit' does not broadcast.*default.qubit.*backprop") as record:
        ev = qkan.simulators.make_evaluator("pennylane", device="lightning.qubit")
    assert record[0].filename == __file__  # attributed to the caller's line, not a qkan frame
    assert ev.device.name == "lightning.qubit" and not pl.broadcasts_natively(ev.device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per device name: no second warning
        qkan.simulators.make_evaluator("pennylane", device="lightning.qubit")
        qkan.simulators.make_evaluator("pennylane", device="default.qubit")
