"""Exact symbolic formulas of QKAN models (sympy), and short ones from a library fit.

With a closed-form ansatz and the fixed encoding every DARUAN is a trigonometric polynomial,

    f_ji(x) = a_0 + sum_{n=1..R} a_n cos(n x) + b_n sin(n x)      (the closed form)

(with trainable per-input encodings the frequencies are Omega_m = sum_l m_l w_l instead of n;
for px, whose data gate is RX(arccos x), the same series in the angle arccos(x) is a polynomial
in x and sqrt(1 - x^2): cos(n arccos x) = T_n(x), sin(n arccos x) = sqrt(1 - x^2) U_{n-1}(x)),

so an edge's full contribution phi_ji(x) = m (c (f + d) + beta base(x)) and the whole model are
exact closed-form expressions: no symbolic regression, no guessed primitives. Hidden layers are
composed by substituting the previous layer's expressions for the inputs.

``auto_symbolic`` trades exactness for brevity: every edge's curve is fitted by a f(b x + c) + d
for the functions of a library (qkan.symbolic_fit), the simplest fit reaching an R^2 threshold
is kept, and the exact Fourier form stands in where none does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import nn

from qkan._checks import check_int, check_number
from qkan.layers import QKANLayer

if TYPE_CHECKING:  # pragma: no cover
    import sympy

__all__ = ["base_formula", "edge_formula", "layer_formulas", "model_formulas", "EdgeChoice", "SymbolicFormulas", "auto_symbolic"]


def base_formula(base, x: sympy.Expr) -> sympy.Expr | None:
    """The base activation as a sympy expression of `x`; None for base "none".

    Args:
        base: a layer's ``base`` name ("silu", "identity", "tanh", "gelu", "relu", "none").
    """
    import sympy

    forms = {
        "silu": lambda v: v / (1 + sympy.exp(-v)),
        "identity": lambda v: v,
        "tanh": sympy.tanh,
        "gelu": lambda v: v * (1 + sympy.erf(v / sympy.sqrt(2))) / 2,
        "relu": lambda v: sympy.Max(0, v),
        "none": lambda v: None,
    }
    if callable(base) or base not in forms:
        raise ValueError(f"`base` must be one of {sorted(forms)} to have a symbolic form; got {base!r}")
    return forms[base](x)


def _terms(values: list[tuple[float, sympy.Expr]], tol: float) -> sympy.Expr:
    """sum of value * term over the values with |value| >= tol (exact binary floats)."""
    import sympy

    return sympy.Add(*(sympy.Float(v) * term for v, term in values if abs(v) >= tol and v != 0))


def _edge_series(layer: QKANLayer, j: int, i: int) -> tuple[float, list, list, list]:
    """(a_0, [a_k], [b_k], [Omega_k]) of edge (j, i) as Python numbers and sympy frequencies
    (integers for the fixed encoding and px, floats for trainable encodings); QKANLayer.fourier_series."""
    import sympy

    a0, a, b, omega = (t.detach().double().tolist() for t in layer.fourier_series((j, i)))
    exact = layer.encoding == "fixed"
    return a0, a, b, [sympy.Integer(round(w)) if exact else sympy.Float(w) for w in omega]


def edge_formula(layer: QKANLayer, j: int, i: int, tol: float = 1e-8, x: sympy.Expr | None = None) -> sympy.Expr:
    """Exact contribution phi_ji(x) of edge (j, i) of a layer, coefficients below `tol` dropped.

    Args:
        layer: a QKANLayer with measure "z" (any encoding of a closed-form ansatz with reps <= 5
            where trainable, px with encoding "fixed"; QKANLayer.fourier_series).
        j, i: output and input index of the edge.
        tol: coefficients (after multiplying by c) with absolute value below `tol` are dropped.
        x: the edge's input expression; default the symbol ``x``.
    Returns:
        c (a_0 + d) + sum_n c a_n cos(n x) + c b_n sin(n x) + beta base(x), or 0 for a masked edge
        (encoding "input": frequencies Omega_m = sum_l m_l w_l instead of n).
    """
    import sympy

    tol = check_number("tol", tol)
    check_int("j", j, low=0, high=layer.out_dim - 1)
    check_int("i", i, low=0, high=layer.in_dim - 1)
    x = sympy.Symbol("x", real=True) if x is None else x
    if layer.mask[j, i].item() == 0:
        return sympy.Integer(0)
    a0, a, b, freq = _edge_series(layer, j, i)
    c = layer.post_weight[j, i].item()
    values = [(c * (a0 + layer.post_bias[j, i].item()), sympy.Integer(1))]
    if layer.ansatz.arccos:  # cos(n arccos x) = T_n(x), sin(n arccos x) = sqrt(1 - x^2) U_{n-1}(x)
        values += [(c * an, sympy.chebyshevt(int(n), x)) for an, n in zip(a, freq)]
        values += [(c * bn, sympy.sqrt(1 - x**2) * sympy.chebyshevu(int(n) - 1, x)) for bn, n in zip(b, freq)]
    else:
        values += [(c * an, sympy.cos(w * x)) for an, w in zip(a, freq)]
        values += [(c * bn, sympy.sin(w * x)) for bn, w in zip(b, freq)]
    base = None if callable(layer.base) else base_formula(layer.base, x)
    if layer.base_weight is not None:
        if base is None:
            raise ValueError("a layer with a custom callable `base` has no symbolic form; use a named base")
        values.append((layer.base_weight[j, i].item(), base))
    return _terms(values, tol)


def layer_formulas(layer: QKANLayer, inputs: list, tol: float = 1e-8) -> list:
    """y_j = sum_i phi_ji(inputs_i) + bias_j for every output j: list of O sympy expressions.

    Args:
        inputs: I sympy expressions (symbols or the previous layer's formulas).
    """
    import sympy

    if len(inputs) != layer.in_dim:
        raise ValueError(f"`inputs` must have {layer.in_dim} expressions; got {len(inputs)}")
    with torch.no_grad():
        outputs = []
        for j in range(layer.out_dim):
            y = sympy.Add(*(edge_formula(layer, j, i, tol, inputs[i]) for i in range(layer.in_dim)))
            if layer.bias is not None:
                y = y + _terms([(layer.bias[j].item(), sympy.Integer(1))], check_number("tol", tol))
            outputs.append(y)
    return outputs


def model_formulas(model: nn.Module, tol: float = 1e-8) -> list:
    """Exact formula of every output of a QKAN in the symbols x_1..x_n (real).

    Evaluating the formulas (e.g. with ``sympy.lambdify``) reproduces the model to float64
    rounding when ``tol`` drops nothing significant.

    Args:
        model: a QKAN whose layers have closed-form ansaetze (encoding "fixed" or "input") or px (encoding "fixed").
        tol: coefficients with absolute value below `tol` are dropped.
    Returns:
        list of width[-1] sympy expressions.

    Examples:
        >>> from qkan import QKAN
        >>> exprs = model_formulas(QKAN([2, 1], reps=1, seed=0))
        >>> sorted(str(s) for s in exprs[0].free_symbols)
        ['x_1', 'x_2']
    """
    import sympy

    exprs = list(sympy.symbols(f"x_1:{model.layers[0].in_dim + 1}", real=True))
    for k, layer in enumerate(model.layers):
        exprs = layer_formulas(layer, [layer.hidden_input_formula(e) for e in exprs] if k else exprs, tol)
    return exprs


class EdgeChoice(NamedTuple):
    """What auto_symbolic chose for one edge.

    Attributes:
        layer, j, i: the edge (layer index, output, input).
        name: the library function, "const" (a flat edge: its mean), "fourier" (the exact form,
            no fit reached the threshold) or "masked".
        r2: R^2 of the choice on the edge's curve (1.0 for "fourier" and "masked"; for "const"
            one minus its variance over the layer's largest edge variance).
        formula: the edge's contribution as a sympy expression of the symbol ``x``.
    """

    layer: int
    j: int
    i: int
    name: str
    r2: float
    formula: sympy.Expr


class SymbolicFormulas(list):
    """A list of sympy expressions, one per output, with ``edges``: the EdgeChoice of every edge."""

    def __init__(self, formulas: list, edges: list[EdgeChoice]) -> None:
        super().__init__(formulas)
        self.edges = edges

    def table(self) -> str:
        """The edge choices as aligned text: layer, edge, function, R^2."""
        lines = [f"{'layer':>5} {'edge':>8}  {'function':<9} {'R^2':>12}"]
        for e in self.edges:
            lines.append(f"{e.layer:>5} {f'({e.j}, {e.i})':>8}  {e.name:<9} {e.r2:>12.8f}")
        return "\n".join(lines)


def _edge_curves(layer: QKANLayer, h: torch.Tensor, n_points: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every edge's contribution on a grid over the range its input takes in h (N, I): t (G, I), phi (G, O, I)."""
    from qkan.interpret import edge_activations

    lo, hi = h.min(0).values, h.max(0).values  # (I,)
    t = lo + (hi - lo) * torch.linspace(0, 1, n_points, dtype=h.dtype, device=h.device)[:, None]  # (G, I)
    return t, edge_activations(layer, t)


def _choose(t, y, lib, r2_threshold: float, layer_var: float):
    """(name, r2, CurveFit or None) for one edge's curve y(t) (numpy float64)."""
    from qkan.symbolic_fit import fit_library

    var = float(y.var())
    if var <= (1 - r2_threshold) * 1e-3 * layer_var or var == 0:
        return "const", 1 - var / layer_var if layer_var > 0 else 1.0, None
    fits = [fit for fit in fit_library(t, y, lib) if fit.r2 >= r2_threshold]
    if not fits:
        return "fourier", 1.0, None
    best = min(fits, key=lambda fit: (lib[fit.name].complexity, -fit.r2))
    return best.name, best.r2, best


def auto_symbolic(
    model: nn.Module, lib=None, r2_threshold: float = 0.999, x: torch.Tensor | None = None, n_points: int = 201, tol: float = 1e-8
) -> SymbolicFormulas:
    """Short formulas of a QKAN: every edge named by a library function where one fits.

    Each unmasked edge's full contribution phi_ji is sampled on `n_points` over the range its
    input takes on `x`, and fitted by a f(b t + c) + d for every library function
    (``qkan.symbolic_fit.fit_curve``). The simplest function (lowest complexity, then highest
    R^2) with R^2 >= `r2_threshold` replaces the edge; an edge whose variance is below
    1e-3 (1 - r2_threshold) of the layer's largest becomes its mean; otherwise the exact Fourier
    form (``edge_formula``) stays. Layers are composed and each output simplified.

    Args:
        model: a QKAN (the exact fallback needs closed-form layers, see ``model_formulas``).
        lib: None (``qkan.symbolic_fit.LIBRARY``: x, x^2, x^3, x^4, 1/x, sqrt, exp, log, sin,
            cos, tanh, abs, gaussian, arctan), a list of those names, or a dict name -> Primitive.
        r2_threshold: R^2 a fit needs, in [0, 1].
        x: (N, in) inputs that set the ranges; None uses ``model.reference_input``.
        n_points: samples per edge curve (>= 8).
        tol: coefficient tolerance of the exact fallback.
    Returns:
        SymbolicFormulas: width[-1] sympy expressions in x_1..x_n, with ``.edges`` (EdgeChoice per
        edge) and ``.table()``.
    """
    import sympy

    from qkan.interpret import _reference
    from qkan.symbolic_fit import get_library

    lib = get_library(lib)
    r2_threshold = check_number("r2_threshold", r2_threshold, high=1.0)
    check_int("n_points", n_points, low=8)
    h = _reference(model, x)
    sym = sympy.Symbol("x", real=True)
    exprs = list(sympy.symbols(f"x_1:{model.layers[0].in_dim + 1}", real=True))
    choices: list[EdgeChoice] = []
    with torch.no_grad():
        for l, (layer, h) in enumerate(model.layer_inputs(h)):
            if l:
                exprs = [layer.hidden_input_formula(e) for e in exprs]  # what the layer receives (tanh for px)
            t, phi = _edge_curves(layer, h, n_points)
            t, phi = t.double().cpu().numpy(), phi.double().cpu().numpy()
            layer_var = float(phi.var(0).max())
            outputs = []
            for j in range(layer.out_dim):
                terms = []
                for i in range(layer.in_dim):
                    if layer.mask[j, i] == 0:
                        choices.append(EdgeChoice(l, j, i, "masked", 1.0, sympy.Integer(0)))
                        continue
                    name, r2, fit = _choose(t[:, i], phi[:, j, i], lib, r2_threshold, layer_var)
                    if name == "const":
                        formula = sympy.Float(float(phi[:, j, i].mean()))
                    elif name == "fourier":
                        formula = edge_formula(layer, j, i, tol, sym)
                    else:
                        formula = lib[name].formula(fit, sym)
                    choices.append(EdgeChoice(l, j, i, name, r2, formula))
                    terms.append(formula.subs(sym, exprs[i]))
                y = sympy.Add(*terms)
                if layer.bias is not None:
                    y = y + sympy.Float(layer.bias[j].item())
                outputs.append(y)
            exprs = outputs
    return SymbolicFormulas([_simplify(e) for e in exprs], choices)


def _simplify(expr: sympy.Expr) -> sympy.Expr:
    """A shorter equivalent form: constants gathered, exp(a + b) split into e^a exp(b)."""
    import sympy

    short = sympy.powsimp(sympy.expand_power_exp(expr))
    return min((expr, short), key=sympy.count_ops)
