"""Exact sympy formulas of QKAN edges and models (qkan.symbolic)."""

import numpy as np
import pytest
import sympy
import torch
import torch.nn.functional as F

from qkan import QKAN, QKANLayer
from qkan.data import demo_function, function_dataset
from qkan.symbolic import base_formula, edge_formula, layer_formulas, model_formulas
from qkan.symbolic_fit import LIBRARY, CurveFit, fit_curve, fit_library


def _lambdified(exprs, n):
    xs = sympy.symbols(f"x_1:{n + 1}", real=True)
    funcs = [sympy.lambdify(xs, e) for e in exprs]
    return lambda x: np.stack([np.broadcast_to(f(*x.T), (len(x),)) for f in funcs], axis=-1)


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(ansatz="rpz", group="input", bias=True),
        dict(ansatz="mix", base="tanh"),
        dict(ansatz="real", group="all", base="gelu"),
        dict(base="identity", group="output"),
        dict(base="relu"),
        dict(encoding="input", group="output", reps=2),  # 4 frequencies per edge instead of 13
        dict(ansatz="mix", encoding="input", bias=True, reps=2),
        dict(encoding="edge", reps=2),
        dict(ansatz="rpz", encoding="edge", group="input", reps=2),
    ],
)
def test_model_formula_equals_model(options):
    options = {"reps": 3, **options}
    model = QKAN([2, 3, 2], seed=1, dtype=torch.float64, **options)
    torch.manual_seed(0)  # the draws below must not depend on which tests ran before
    with torch.no_grad():
        for layer in model.layers:
            if layer.enc_weight is not None:
                layer.enc_weight.normal_()
                layer.enc_bias.normal_()
            layer.post_bias.normal_()
            layer.post_weight.normal_()
            if layer.bias is not None:
                layer.bias.normal_()
        model.layers[0].mask[2, 1] = 0
    exprs = model_formulas(model, tol=0)  # keep every coefficient: the formula is then exact
    assert len(exprs) == 2
    assert all(e.free_symbols <= set(sympy.symbols("x_1:3", real=True)) for e in exprs)
    x = np.random.default_rng(0).uniform(-3, 3, size=(200, 2))
    got = _lambdified(exprs, 2)(x)
    want = model(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


def test_edge_formula_is_the_trig_polynomial():
    layer = QKANLayer(2, 2, reps=2, seed=4, base="none", dtype=torch.float64)
    with torch.no_grad():
        layer.post_weight[1, 0] = 2.0
        layer.post_bias[1, 0] = 0.25
    x = sympy.Symbol("x", real=True)
    a0, a1, a2, b1, b2 = layer.fourier_coefficients()[1, 0].tolist()
    expected = 2 * (a0 + 0.25) + 2 * (a1 * sympy.cos(x) + a2 * sympy.cos(2 * x) + b1 * sympy.sin(x) + b2 * sympy.sin(2 * x))
    assert sympy.simplify(edge_formula(layer, 1, 0) - expected) == 0
    # the DARUAN values themselves
    t = torch.linspace(-4, 4, 17, dtype=torch.float64)
    f = layer.edge_outputs(torch.stack([t, t], -1))[:, 0, 1].detach().numpy()
    with torch.no_grad():
        layer.post_weight.fill_(1.0)
        layer.post_bias.zero_()
    np.testing.assert_allclose(sympy.lambdify(x, edge_formula(layer, 0, 1))(t.numpy()), f, rtol=0, atol=1e-12)


def test_tolerance_drops_small_coefficients():
    layer = QKANLayer(1, 1, reps=3, seed=2, base="none", dtype=torch.float64)
    coeffs = layer.fourier_coefficients()[0, 0].detach()
    tol = float(coeffs.abs().sort().values[3])  # drops the three smallest coefficients
    full, cut = edge_formula(layer, 0, 0, tol=0), edge_formula(layer, 0, 0, tol=tol)
    assert len(full.args) == 7 and len(cut.args) == 4
    x = sympy.Symbol("x", real=True)
    t = np.linspace(-3, 3, 31)
    kept = coeffs.clone()
    kept[coeffs.abs() < tol] = 0
    R = 3
    n = np.arange(1, R + 1)
    manual = kept[0].item() + np.cos(np.outer(t, n)) @ kept[1 : R + 1].numpy() + np.sin(np.outer(t, n)) @ kept[R + 1 :].numpy()
    np.testing.assert_allclose(sympy.lambdify(x, cut)(t), manual, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name, fn", [("silu", F.silu), ("tanh", torch.tanh), ("gelu", F.gelu), ("relu", F.relu), ("identity", lambda v: v)])
def test_base_formulas_match_torch(name, fn):
    x = sympy.Symbol("x", real=True)
    t = torch.linspace(-5, 5, 41, dtype=torch.float64)
    got = sympy.lambdify(x, base_formula(name, x))(t.numpy())
    np.testing.assert_allclose(np.broadcast_to(got, t.shape), fn(t).numpy(), rtol=0, atol=1e-14)


def test_masked_edge_and_errors():
    layer = QKANLayer(2, 1, reps=1, seed=0, dtype=torch.float64)
    with torch.no_grad():
        layer.mask[0, 1] = 0
    assert edge_formula(layer, 0, 1) == 0
    x = sympy.symbols("x_1:3", real=True)
    assert layer_formulas(layer, list(x))[0].free_symbols == {x[0]}
    with pytest.raises(ValueError, match=r"`j` must be an int <= 0; got 1"):
        edge_formula(layer, 1, 0)
    with pytest.raises(ValueError, match="`tol` must be a number >= 0"):
        edge_formula(layer, 0, 0, tol=-1)
    with pytest.raises(ValueError, match="`inputs` must have 2 expressions"):
        layer_formulas(layer, [x[0]])
    with pytest.raises(ValueError, match="px layer with trainable encodings has no exact formula"):
        model_formulas(QKAN([1, 1], reps=1, ansatz="px", encoding="edge"))
    with pytest.raises(ValueError, match="'amplitude' is not a trigonometric polynomial"):
        model_formulas(QKAN([1, 1], reps=1, measure="amplitude"))
    with pytest.raises(ValueError, match="no exact trigonometric formula: per-input encodings compile"):
        model_formulas(QKAN([1, 1], reps=6, encoding="input"))
    with pytest.raises(ValueError, match="custom callable `base`"):
        edge_formula(QKANLayer(1, 1, reps=1, base=torch.sin), 0, 0)
    with pytest.raises(ValueError, match="`base` must be one of"):
        base_formula("swish", sympy.Symbol("x"))


# ------------------------------------------------------------------------------- auto_symbolic
@pytest.mark.parametrize(
    "name, fn",
    [
        ("sin", lambda x: 2 * np.sin(3 * x + 0.5) - 1),
        ("exp", lambda x: 1.5 * np.exp(0.7 * x) - 2),
        ("x^2", lambda x: 0.3 * (x - 0.2) ** 2 + 1),
        ("sqrt", lambda x: np.sqrt(x + 1.5)),
        ("tanh", lambda x: np.tanh(4 * x - 1)),
    ],
)
def test_fit_curve_recovers_library_functions(name, fn):
    x = np.linspace(-1, 2, 101)
    y = fn(x)
    fit = fit_curve(x, y, LIBRARY[name])
    assert fit.name == name and fit.r2 > 1 - 1e-10
    np.testing.assert_allclose(fit(x), y, rtol=0, atol=1e-6)
    assert fit_library(x, y, LIBRARY)[0].r2 >= fit.r2 - 1e-12  # best first


def test_auto_symbolic_falls_back_to_the_exact_form():
    model = QKAN([2, 3, 1], reps=2, seed=1, dtype=torch.float64)
    x = torch.rand(64, 2, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        model.layers[0].mask[1, 0] = 0
    exact = model.auto_symbolic(r2_threshold=1.0, x=x)  # no fit is perfect: every edge stays exact
    names = {(e.layer, e.j, e.i): e.name for e in exact.edges}
    assert names[(0, 1, 0)] == "masked" and set(names.values()) == {"fourier", "masked"}
    np.testing.assert_allclose(_lambdified(exact, 2)(x.numpy()), model(x).detach().numpy(), rtol=0, atol=1e-10)
    assert "fourier" in exact.table() and len(exact.edges) == 6 + 3


def test_auto_symbolic_names_constant_and_library_edges():
    layer = QKANLayer(2, 1, reps=1, seed=0, base="none", dtype=torch.float64)
    with torch.no_grad():
        layer.theta[0, 1, :, 1] = 0  # RY(0): the state stays on the equator, <Z> = 0 for every x_2
        layer.post_bias[0, 1] = 0.25
    model = QKAN.from_layers([layer])
    x = torch.rand(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    result = model.auto_symbolic(x=x, lib=["sin", "x"])
    choice = {(e.j, e.i): e for e in result.edges}
    assert choice[(0, 1)].name == "const" and choice[(0, 0)].name == "sin"  # reps=1: a0 + a cos x + b sin x
    assert result[0].free_symbols == {sympy.Symbol("x_1", real=True)}
    np.testing.assert_allclose(_lambdified(result, 2)(x.numpy()), model(x).detach().numpy(), rtol=0, atol=1e-8)


def test_auto_symbolic_recovers_the_demo_formula():
    """f = exp(sin(pi x1) + x2^2): train, prune, name the edges; short and accurate (well under 20 s)."""
    data = function_dataset(demo_function, n_var=2, train_num=200, test_num=1000, seed=0, dtype=torch.float64)
    model = QKAN([2, 1, 1], reps=3, seed=0, dtype=torch.float64)
    model.fit(data, steps=20, progress=False)
    model = model.prune()
    model.fit(data, steps=10, progress=False)
    (formula,) = result = model.auto_symbolic()
    names = {(e.layer, e.j, e.i): e.name for e in result.edges}
    assert names == {(0, 0, 0): "sin", (0, 0, 1): "x^2", (1, 0, 0): "exp"}, result.table()
    assert sympy.count_ops(formula) <= 20, formula
    x = data["test_input"].numpy()
    rmse = np.sqrt(((_lambdified(result, 2)(x) - data["test_label"].numpy()) ** 2).mean())
    assert rmse < 1e-2, (rmse, formula)


def test_auto_symbolic_errors():
    model = QKAN([2, 1], reps=1, seed=0)
    x = torch.rand(10, 2)
    with pytest.raises(ValueError, match="`x` is required"):
        model.auto_symbolic()
    with pytest.raises(ValueError, match=r"`r2_threshold` must be a number >= 0 and <= 1; got 1.5"):
        model.auto_symbolic(r2_threshold=1.5, x=x)
    with pytest.raises(ValueError, match=r"`lib` names must be among .*unknown \['sinc'\]"):
        model.auto_symbolic(lib=["sin", "sinc"], x=x)
    with pytest.raises(TypeError, match="`lib` must be None"):
        model.auto_symbolic(lib="sin", x=x)
    with pytest.raises(TypeError, match="`n_points` must be an int >= 8"):
        model.auto_symbolic(x=x, n_points=2.5)


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_library_formula_is_the_fitted_curve(name):
    prim = LIBRARY[name]
    fit = CurveFit(name, a=1.7, b=-0.8, c=2.5, d=0.3, r2=1.0)
    x = np.linspace(-1, 1, 11)
    sym = sympy.Symbol("x", real=True)
    expr = prim.formula(fit, sym)
    if prim.degree is not None:  # powers read a b^n (x + c / b)^n: the inner scale is gone
        assert sympy.Float(-0.8) not in expr.atoms(sympy.Float)
    np.testing.assert_allclose(sympy.lambdify(sym, expr)(x), fit(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("width", [[2, 1], [2, 3, 2, 1]])
def test_px_models_have_exact_formulas_at_any_depth(width):
    """px edges are polynomials in x and sqrt(1 - x^2) (Chebyshev T and U); deep px layers see tanh."""
    model = QKAN(width, reps=2, ansatz="px", seed=0, dtype=torch.float64)
    x = torch.rand(40, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    formula = model_formulas(model)[0]
    got = sympy.lambdify(sympy.symbols("x_1:3", real=True), formula)(x[:, 0].numpy(), x[:, 1].numpy())
    np.testing.assert_allclose(got, model(x)[:, 0].detach().numpy(), rtol=0, atol=1e-12)


def test_auto_symbolic_runs_on_deep_px_models():
    """auto_symbolic composes through the px hidden map (tanh): it used to refuse every deep px model."""
    model = QKAN([2, 3, 1], reps=2, ansatz="px", seed=0, dtype=torch.float64)
    x = torch.rand(60, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    formula = model.auto_symbolic(x=x, r2_threshold=1.0)[0]  # nothing short passes R^2 = 1: the exact form everywhere
    got = sympy.lambdify(sympy.symbols("x_1:3", real=True), formula)(x[:, 0].numpy(), x[:, 1].numpy())
    np.testing.assert_allclose(got, model(x)[:, 0].detach().numpy(), rtol=0, atol=1e-9)
