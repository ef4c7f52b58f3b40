"""QKANLayer: every evaluator against the reference statevector, gradients, validation, nn.Module behaviour."""

import dataclasses
import math

import numpy as np
import pytest
import torch

import qkan
from qkan import QKAN
from qkan.layers import QKANLayer
from qkan.simulators import su2 as su2_module
from qkan.testing import assert_matches_reference, reference_edge

ANSATZE = ["pz", "rpz", "px", "real", "mix"]
ENCODINGS = ["fixed", "edge", "input"]


def _layer(ansatz, encoding, measure="z", group=None, in_dim=3, out_dim=2, reps=3, seed=0, bias=False):
    layer = QKANLayer(in_dim, out_dim, reps, ansatz=ansatz, encoding=encoding, measure=measure, group=group, seed=seed, bias=bias).double()
    gen = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for p in (layer.post_weight, layer.post_bias):
            p.copy_(torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1)
        if layer.enc_weight is not None:  # keep px angles inside [-1, 1] for |x| <= 1
            scale = 0.5 if ansatz == "px" else 2.0
            layer.enc_weight.copy_((torch.rand(layer.enc_weight.shape, generator=gen, dtype=torch.float64) * 2 - 1) * scale)
            layer.enc_bias.copy_((torch.rand(layer.enc_bias.shape, generator=gen, dtype=torch.float64) * 2 - 1) * scale / 2)
        if layer.bias is not None:
            layer.bias.copy_(torch.rand(layer.bias.shape, generator=gen, dtype=torch.float64))
    return layer


def _inputs(ansatz, n=7, in_dim=3, seed=1):
    gen = torch.Generator().manual_seed(seed)
    span = 1.0 if ansatz == "px" else 4.0
    return (torch.rand(n, in_dim, generator=gen, dtype=torch.float64) * 2 - 1) * span


def _evaluators(layer):
    names = []
    for name in ("fourier", "su2"):
        try:
            layer.set_evaluator(name)
            names.append(name)
        except ValueError:
            pass
    return names


# ----------------------------------------------------------------------------- reference statevector
def _plain_pz(theta, x):
    """A second, minimal statevector for pz written here: 2x2 complex matrices, one sample."""
    rz = lambda a: np.diag([np.exp(-0.5j * a), np.exp(0.5j * a)])  # noqa: E731
    ry = lambda a: np.array([[np.cos(a / 2), -np.sin(a / 2)], [np.sin(a / 2), np.cos(a / 2)]])  # noqa: E731
    psi = np.array([1, 1]) / math.sqrt(2)
    for l in range(len(theta) - 1):
        psi = rz(x) @ ry(theta[l][1]) @ rz(theta[l][0]) @ psi
    psi = ry(theta[-1][1]) @ rz(theta[-1][0]) @ psi
    return abs(psi[0]) ** 2 - abs(psi[1]) ** 2


def test_reference_helper_agrees_with_plain_statevector():
    rng = np.random.default_rng(0)
    for _ in range(20):
        theta = rng.uniform(-np.pi, np.pi, size=(4, 2))
        x = rng.uniform(-3, 3)
        assert abs(reference_edge("pz", theta, np.full(3, x)) - _plain_pz(theta, x)) < 1e-14


def test_pz_single_rep_closed_form_by_hand():
    # R=1, theta = 0 except the final RY(pi/2): H, RZ(x), RY(pi/2) -> <Z> = -cos(x)
    layer = QKANLayer(1, 1, 1, seed=0).double()
    with torch.no_grad():
        layer.theta.zero_()
        layer.theta[0, 0, 1, 1] = math.pi / 2
    x = torch.linspace(-3, 3, 11, dtype=torch.float64).unsqueeze(-1)
    for name in ("fourier", "su2"):
        layer.set_evaluator(name)
        assert torch.allclose(layer.edge_outputs(x)[:, 0, 0], -torch.cos(x[:, 0]), atol=1e-14)


@pytest.mark.parametrize("ansatz", ANSATZE)
@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("measure", ["z", "amplitude"])
def test_every_evaluator_matches_reference(ansatz, encoding, measure):
    layer = _layer(ansatz, encoding, measure, bias=True)
    x = _inputs(ansatz)
    names = _evaluators(layer)
    assert "su2" in names
    if ansatz != "px" and measure == "z" and encoding != "edge":
        assert "fourier" in names
    for name in names:
        layer.set_evaluator(name)
        assert layer.evaluator == name
        assert_matches_reference(layer, x, atol=1e-12)


@pytest.mark.parametrize("group", ["input", "output", "all"])
def test_grouped_theta_is_shared_and_matches_reference(group):
    layer = _layer("pz", "fixed", group=group, in_dim=3, out_dim=4)
    expected = {"input": (1, 3), "output": (4, 1), "all": (1, 1)}[group]
    assert tuple(layer.theta.shape[:2]) == expected
    x = _inputs("pz")
    for name in ("fourier", "su2"):
        layer.set_evaluator(name)
        assert_matches_reference(layer, x)
    f = layer.edge_outputs(x)
    if group in ("input", "all"):
        assert torch.allclose(f[:, 0], f[:, 1], atol=0)


@pytest.mark.parametrize("ansatz", ["pz", "rpz", "real", "mix"])
@pytest.mark.parametrize("encoding", ["fixed", "input"])
def test_fourier_equals_su2(ansatz, encoding):
    layer = _layer(ansatz, encoding, in_dim=5, out_dim=4, reps=4)
    x = _inputs(ansatz, n=33, in_dim=5)
    y_f = layer.set_evaluator("fourier")(x)
    y_s = layer.set_evaluator("su2")(x)
    assert torch.allclose(y_f, y_s, atol=1e-12, rtol=0)


def test_auto_picks_fourier_where_it_applies():
    assert QKANLayer(2, 2).evaluator == "fourier"
    assert QKANLayer(2, 2, encoding="input").evaluator == "fourier"
    assert QKANLayer(2, 2, encoding="edge").evaluator == "su2"
    assert QKANLayer(2, 2, ansatz="px").evaluator == "su2"
    assert QKANLayer(2, 2, measure="amplitude").evaluator == "su2"
    assert QKANLayer(2, 2, reps=7, encoding="input").evaluator == "su2"


def test_fourier_coefficients_reproduce_edges():
    layer = _layer("mix", "fixed", reps=5)
    coeffs = layer.fourier_coefficients()
    assert coeffs.shape == (2, 3, 11)
    x = _inputs("mix", n=9)
    n = torch.arange(1, 6, dtype=torch.float64)
    angles = x[:, None, :, None] * n  # (N, 1, I, R)
    series = coeffs[..., 0] + (coeffs[..., 1:6] * torch.cos(angles)).sum(-1) + (coeffs[..., 6:] * torch.sin(angles)).sum(-1)
    assert torch.allclose(series, layer.edge_outputs(x), atol=1e-12)


@pytest.mark.parametrize(
    "ansatz, encoding, group",
    [("pz", "fixed", None), ("mix", "input", "output"), ("rpz", "edge", None), ("real", "edge", "all"), ("px", "fixed", "input")],
)
def test_fourier_series_reproduces_edges(ansatz, encoding, group):
    layer = _layer(ansatz, encoding, group=group, reps=2)
    x = _inputs(ansatz, n=9)
    a0, a, b, omega = layer.fourier_series()  # (O, I), (O, I, K) x 3
    K = 2 if encoding == "fixed" else 4
    assert a0.shape == (2, 3) and a.shape == b.shape == omega.shape == (2, 3, K)
    t = torch.arccos(x) if ansatz == "px" else x  # px: the series is in the RX angle
    angles = t[:, None, :, None] * omega  # (N, O, I, K)
    series = a0 + (a * torch.cos(angles)).sum(-1) + (b * torch.sin(angles)).sum(-1)
    torch.testing.assert_close(series, layer.edge_outputs(x), rtol=0, atol=1e-12)
    for edge in [(0, 0), (1, 2)]:  # one edge's series is that edge of the layer's
        for got, want in zip(layer.fourier_series(edge), (a0, a, b, omega)):
            torch.testing.assert_close(got, want[edge], rtol=0, atol=1e-14)


def test_fourier_series_is_differentiable_and_checks():
    layer = _layer("pz", "input", reps=2)
    a0, a, b, omega = layer.fourier_series((0, 1))
    (a0 + a.sum() + b.sum() + omega.sum()).backward()
    assert layer.theta.grad.abs().sum() > 0 and layer.enc_weight.grad.abs().sum() > 0 and layer.enc_bias.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="'amplitude' is not a trigonometric polynomial"):
        QKANLayer(2, 2, measure="amplitude").fourier_series()
    with pytest.raises(ValueError, match="px layer with trainable encodings"):
        QKANLayer(2, 2, ansatz="px", encoding="input").fourier_series()
    with pytest.raises(ValueError, match="per-edge encodings compile in O"):
        QKANLayer(2, 2, reps=6, encoding="edge").fourier_series()
    with pytest.raises(ValueError, match="`edge` must be a pair"):
        layer.fourier_series((0, 3))
    with pytest.raises(TypeError, match="`compact` must be True or False; got 'yes'"):
        layer.fourier_series(compact="yes")


def test_fourier_coefficients_need_closed_form():
    with pytest.raises(ValueError, match="fourier_coefficients.*encoding='fixed'"):
        QKANLayer(2, 2, encoding="edge").fourier_coefficients()
    with pytest.raises(ValueError, match="closed-form ansatz"):
        QKANLayer(2, 2, ansatz="px").fourier_coefficients()


# ---------------------------------------------------------------------------------------- gradients
def _gradcheck_all(layer, x):
    params = [p for p in layer.parameters()]
    names = [n for n, _ in layer.named_parameters()]

    def fn(x, *ps):
        return torch.func.functional_call(layer, dict(zip(names, ps)), (x,))

    inputs = (x.clone().requires_grad_(True), *[p.detach().clone().requires_grad_(True) for p in params])
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "ansatz,encoding,evaluator",
    [
        ("pz", "fixed", "fourier"),
        ("pz", "input", "fourier"),
        ("mix", "fixed", "fourier"),
        ("pz", "fixed", "su2"),
        ("pz", "edge", "su2"),
        ("rpz", "edge", "su2"),
        ("px", "edge", "su2"),
        ("real", "input", "su2"),
        ("mix", "edge", "su2"),
    ],
)
def test_gradcheck(ansatz, encoding, evaluator):
    layer = _layer(ansatz, encoding, in_dim=2, out_dim=2, reps=2, bias=True).set_evaluator(evaluator)
    x = _inputs(ansatz, n=4, in_dim=2) * 0.9
    _gradcheck_all(layer, x)


def test_gradcheck_amplitude_measure():
    layer = _layer("pz", "edge", "amplitude", in_dim=2, out_dim=2, reps=2)
    _gradcheck_all(layer, _inputs("pz", n=3, in_dim=2))


def test_su2_chunked_checkpoint_path_matches_and_differentiates(monkeypatch):
    monkeypatch.setattr(su2_module, "CHUNK_ELEMENTS", 12)  # 2 samples per chunk for a 3x2 layer
    layer = _layer("pz", "edge", in_dim=3, out_dim=2, reps=2).set_evaluator("su2")
    x = _inputs("pz", n=7).requires_grad_(True)
    y = layer(x)
    ref = torch.cat([layer(x[i : i + 1]) for i in range(7)])
    assert torch.allclose(y, ref, atol=1e-14)
    _gradcheck_all(layer, x.detach()[:5])


def test_fourier_saves_nothing_of_size_batch_out_in():
    B, I, O = 4096, 16, 32
    layer = QKANLayer(I, O, 3, encoding="input", seed=0)
    sizes = []

    def pack(t):
        sizes.append(t.numel())
        return t

    x = torch.rand(B, I, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = layer(x)
    y.sum().backward()
    assert sizes and max(sizes) < B * O * I
    assert x.grad is not None and layer.theta.grad is not None and layer.enc_weight.grad is not None


def test_fourier_reuses_coefficients_only_while_parameters_are_unchanged(monkeypatch):
    from qkan.simulators import fourier

    calls = []
    compile_ = fourier.compile_coefficients
    monkeypatch.setattr(fourier, "compile_coefficients", lambda *a, **k: calls.append(1) or compile_(*a, **k))
    layer = _layer("pz", "input")
    x = _inputs("pz")
    with torch.no_grad():
        y1 = layer(x)
        y2 = layer(x)
        assert len(calls) == 1 and torch.equal(y1, y2)
        layer.theta.add_(0.1)  # in-place update: new version, fresh coefficients
        y3 = layer(x)
        layer.enc_bias.add_(0.1)
        y4 = layer(x)
    assert len(calls) == 3
    assert_matches_reference(layer, x)
    assert not torch.allclose(y3, y1) and not torch.allclose(y4, y3)
    layer(x).sum().backward()  # with gradients it always compiles afresh
    assert len(calls) >= 4 and layer.theta.grad is not None


# ------------------------------------------------------------------------------ module behaviour
@pytest.mark.parametrize("evaluator", ["fourier", "su2"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_leading_dims_and_dtype(evaluator, dtype):
    layer = QKANLayer(3, 2, 2, seed=0, dtype=dtype, evaluator=evaluator)
    x = torch.rand(4, 5, 3, dtype=dtype)
    y = layer(x)
    assert y.shape == (4, 5, 2) and y.dtype == dtype
    assert layer.edge_outputs(x).shape == (4, 5, 2, 3)
    assert torch.allclose(y.reshape(-1, 2), layer(x.reshape(-1, 3)))
    assert layer(torch.rand(3, dtype=dtype)).shape == (2,)


def test_float32_matches_float64():
    layer = QKANLayer(4, 3, 3, encoding="edge", seed=0)
    x = torch.rand(10, 4) * 6 - 3
    y32 = layer(x)
    y64 = layer.double()(x.double())
    assert torch.allclose(y32.double(), y64, atol=1e-5)


def test_double_then_reset_keeps_dtype_and_seed():
    layer = QKANLayer(3, 2, 2, seed=5).double()
    before = layer.theta.detach().clone()
    layer.reset_parameters()
    assert layer.theta.dtype == torch.float64
    assert torch.allclose(layer.theta, before, atol=1e-6)  # float32 draw, now redrawn in float64
    assert torch.equal(layer.theta, QKANLayer(3, 2, 2, seed=5, dtype=torch.float64).theta)


def test_state_dict_round_trip():
    a = _layer("pz", "edge", bias=True)
    b = QKANLayer(3, 2, 3, encoding="edge", bias=True, seed=99).double()
    b.load_state_dict(a.state_dict())
    x = _inputs("pz")
    assert torch.equal(a(x), b(x))
    assert set(a.state_dict()) >= {"theta", "enc_weight", "enc_bias", "post_weight", "post_bias", "base_weight", "bias", "mask"}


def test_switching_evaluator_keeps_parameters():
    layer = _layer("pz", "fixed")
    state = {k: v.clone() for k, v in layer.state_dict().items()}
    x = _inputs("pz")
    y = layer(x)
    for name in ("su2", "fourier", "auto"):
        layer.set_evaluator(name)
        assert torch.allclose(layer(x), y, atol=1e-12)
    for k, v in layer.state_dict().items():
        assert torch.equal(v, state[k])


def test_mask_removes_edges():
    layer = _layer("pz", "fixed", in_dim=3, out_dim=2)
    x = _inputs("pz")
    with torch.no_grad():
        layer.mask[0, 1] = 0
    for name in ("fourier", "su2"):
        layer.set_evaluator(name)
        moved = x.clone()
        moved[:, 1] += 0.7
        assert torch.allclose(layer(x)[:, 0], layer(moved)[:, 0], atol=1e-12)
        assert not torch.allclose(layer(x)[:, 1], layer(moved)[:, 1])


def test_bases():
    x = torch.rand(5, 2, dtype=torch.float64)
    no_base = QKANLayer(2, 3, 2, base=None, seed=0).double()
    assert no_base.base_weight is None
    for base in ("silu", "identity", "tanh", "gelu", "relu", torch.sin):
        layer = QKANLayer(2, 3, 2, base=base, seed=0).double()
        assert torch.allclose(layer(x) - no_base(x), layer.base_term(x), atol=1e-12)


def test_gradients_flow_through_a_stack():
    model = torch.nn.Sequential(QKANLayer(2, 4, 2, seed=0), QKANLayer(4, 1, 2, encoding="edge", seed=1))
    x = torch.rand(8, 2, requires_grad=True)
    model(x).sum().backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())


def test_autocast_bf16_through_a_multilayer_model():
    model = qkan.QKAN([4, 5, 3], reps=3, seed=0)
    x = torch.rand(32, 4)
    y32 = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(x)
    assert y.dtype == torch.bfloat16
    assert (y.float() - y32).abs().max() <= 3e-2 * y32.abs().max()
    y.float().sum().backward()
    assert model.layers[0].theta.grad.dtype == torch.float32


def test_public_exports():
    assert qkan.QKANLayer is QKANLayer


# ------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(reps=0), r"`reps` must be an int >= 1; got 0"),
        (dict(ansatz="foo"), r"`ansatz` must be one of .*'pz'.*got 'foo'"),
        (dict(encoding="per-edge"), r"`encoding` must be one of .*got 'per-edge'"),
        (dict(evaluator="quantum"), r"`evaluator` must be 'auto' or one of .*got 'quantum'"),
        (dict(measure="x"), r"`measure` must be one of"),
        (dict(group="rows"), r"`group` must be one of"),
        (dict(base="softmax"), r"`base` must be one of"),
        (dict(evaluator="fourier", encoding="edge"), r"evaluator 'fourier' cannot run this layer: per-edge"),
        (dict(evaluator="fourier", ansatz="px"), r"arccos"),
        (dict(evaluator="fourier", measure="amplitude"), r"measure 'amplitude'"),
    ],
)
def test_bad_construction(kwargs, match):
    args = dict(in_dim=2, out_dim=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        QKANLayer(**args)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(reps=1.5), r"`reps` must be an int in \[1, 1000\]; got 1.5 \(float\)"),
        (dict(seed="a"), r"`seed` must be an int .* or None; got 'a'"),
        (dict(in_dim=2.7), r"`in_dim` must be an int >= 1; got 2.7"),
        (dict(in_dim=True), r"`in_dim` must be an int >= 1; got True"),
        (dict(bias="yes"), r"`bias` must be True or False; got 'yes'"),
        (dict(dtype="float64"), r"`dtype` must be torch.float32, torch.float64, torch.bfloat16, torch.float16 or None"),
    ],
)
def test_wrong_types_raise_type_error(kwargs, match):
    args = dict(in_dim=2, out_dim=3)
    args.update(kwargs)
    with pytest.raises(TypeError, match=match):
        QKANLayer(**args)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(reps=10**9), r"`reps` must be an int <= 1000; got 1000000000"),
        (dict(seed=2**70), r"`seed` must be an int <= 9223372036854775807 or None"),
        (dict(dtype=torch.complex64), r"`dtype` must be torch.float32, torch.float64, torch.bfloat16, torch.float16 or None"),
        (dict(dtype=torch.float8_e5m2), r"`dtype` must be torch.float32, torch.float64, torch.bfloat16, torch.float16 or None"),
    ],
)
def test_out_of_range_values(kwargs, match):
    args = dict(in_dim=2, out_dim=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        QKANLayer(**args)


@pytest.mark.parametrize("in_dim,out_dim", [(0, 2), (2, -1)])
def test_bad_sizes(in_dim, out_dim):
    with pytest.raises(ValueError, match=r"`(in_dim|out_dim)` must be an int >= 1"):
        QKANLayer(in_dim, out_dim)


def test_bad_evaluator_options():
    with pytest.raises(ValueError, match="evaluator 'auto' takes no options"):
        QKANLayer(2, 2).set_evaluator("auto", shots=10)
    with pytest.raises(ValueError, match="evaluator 'su2' got unexpected options"):
        QKANLayer(2, 2).set_evaluator("su2", shots=10)


@pytest.mark.parametrize("evaluator", ["fourier", "su2"])
def test_bad_inputs(evaluator):
    layer = QKANLayer(3, 2, 2, evaluator=evaluator)
    with pytest.raises(ValueError, match=r"`x` must have shape \(\*, 3\); got \(4, 2\)"):
        layer(torch.rand(4, 2))
    with pytest.raises(TypeError, match=r"`x` must be a floating-point tensor; got torch.int64"):
        layer(torch.ones(4, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"`x` has dtype torch.float64 but the layer's parameters are torch.float32"):
        layer(torch.rand(4, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"`x` must be torch.Tensor; got list"):
        layer([[0.0, 0.0, 0.0]])
    bad = torch.rand(4, 3)
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"`x` contains NaN"):
        layer(bad)
    with pytest.raises(ValueError, match=r"`x` contains NaN"):
        layer.edge_outputs(bad)


def test_px_input_outside_unit_interval():
    layer = QKANLayer(2, 2, 2, ansatz="px")
    layer(torch.tensor([[1.0, -1.0]]))  # the boundary is allowed
    with pytest.raises(ValueError, match=r"outside \[-1, 1\].*max \|phi\| = 1.5"):
        layer(torch.tensor([[0.5, 1.5]]))
    edge = QKANLayer(2, 2, 2, ansatz="px", encoding="edge")
    with torch.no_grad():
        edge.enc_weight.fill_(2.0)  # acts as w = 1 (the bounded px encoding, see encoding_parameters)
    edge(torch.tensor([[1.0, -1.0]]))
    with pytest.raises(ValueError, match=r"outside \[-1, 1\]"):
        edge(torch.tensor([[0.6, 1.5]]))


# ----------------------------------------------------------------------------------------- settings
def test_settings_are_checked_once_and_frozen():
    layer = QKANLayer(4, 2, reps=2, post_init="fan_in", base=None, seed=3)
    assert layer.settings() == dict(
        in_dim=4, out_dim=2, reps=2, ansatz="pz", encoding="fixed", base="none", group=None, measure="z",
        bias=False, seed=3, theta_init="xavier", base_init="uniform", post_init="fan_in",
    )
    with pytest.raises(AttributeError):
        layer.reps = 5  # a layer's shape follows its settings; derived() makes a changed layer
    with pytest.raises(dataclasses.FrozenInstanceError):
        layer._settings.reps = 5
    with pytest.raises(ValueError, match="`post_init` must be one of \\['ones', 'fan_in'\\]"):
        QKANLayer(2, 2, post_init="zeros")
    with pytest.raises(ValueError, match="`reps` must be an int <= 1000"):
        layer.derived(reps=1001)


def test_fan_in_post_init_scales_edge_weights_and_survives_derivation(tmp_path):
    layer = QKANLayer(9, 2, post_init="fan_in", seed=0)
    assert torch.equal(layer.post_weight, torch.full((2, 9), 1 / 3))
    assert torch.equal(layer.derived(reps=4).post_weight, torch.full((2, 9), 1 / 3))
    model = QKAN([9, 4, 1], post_init="fan_in", seed=0)
    assert torch.equal(model.layers[1].post_weight, torch.full((1, 4), 0.5))
    model.save(tmp_path / "m.pt")
    assert QKAN.load(tmp_path / "m.pt").layers[0].post_init == "fan_in"
