"""Exact symbolic formulas of QKAN models (sympy).

With a closed-form ansatz and the fixed encoding every DARUAN is a trigonometric polynomial,

    f_ji(x) = a_0 + sum_{n=1..R} a_n cos(n x) + b_n sin(n x)      (shared/design/daruan.md)

(with trainable per-input encodings the frequencies are Omega_m = sum_l m_l w_l instead of n),

so an edge's full contribution phi_ji(x) = m (c (f + d) + beta base(x)) and the whole model are
exact closed-form expressions: no symbolic regression, no guessed primitives. Hidden layers are
composed by substituting the previous layer's expressions for the inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from qkan._checks import check_int, check_number
from qkan.layers import QKANLayer

if TYPE_CHECKING:  # pragma: no cover
    import sympy

__all__ = ["base_formula", "edge_formula", "layer_formulas", "model_formulas"]


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
    """(a_0, [a_k], [b_k], [Omega_k]) with f_ji(x) = a_0 + sum_k a_k cos(Omega_k x) + b_k sin(Omega_k x).

    Fixed encoding: Omega_k = k (integers, from ``layer.fourier_coefficients()``). Per-input
    encoding: Omega_m = sum_l m_l w_il over the frequency vectors m (qkan.simulators.fourier).
    """
    import sympy

    if layer.encoding != "input":
        coeffs = layer.fourier_coefficients()[j, i].detach().double().tolist()  # [a_0, a_1..a_R, b_1..b_R]
        R = layer.reps
        return coeffs[0], coeffs[1 : R + 1], coeffs[R + 1 :], [sympy.Integer(n) for n in range(1, R + 1)]
    from qkan.simulators.fourier import FourierEvaluator, compile_coefficients, frequency_vectors

    reason = FourierEvaluator().unsupported(layer)
    if reason:
        raise ValueError(f"this layer has no exact trigonometric formula: {reason}")
    theta, w, bias = (t.detach().double() for t in layer.edge_parameters((j, i)))  # (n_slots, k), (R,), (R,)
    a0, a, b = compile_coefficients(layer.ansatz, theta, layer.reps, bias, multi=True)
    freq = frequency_vectors(layer.reps).double() @ w  # (K,)
    return a0.item(), a.tolist(), b.tolist(), [sympy.Float(w) for w in freq.tolist()]


def edge_formula(layer: QKANLayer, j: int, i: int, tol: float = 1e-8, x: sympy.Expr | None = None) -> sympy.Expr:
    """Exact contribution phi_ji(x) of edge (j, i) of a layer, coefficients below `tol` dropped.

    Args:
        layer: a QKANLayer with a closed-form ansatz, encoding "fixed" or "input" and measure "z".
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
        model: a QKAN whose layers all have closed-form ansaetze, encoding "fixed" or "input".
        tol: coefficients with absolute value below `tol` are dropped.
    Returns:
        list of width[-1] sympy expressions.

    Example:
        >>> from qkan import QKAN
        >>> exprs = model_formulas(QKAN([2, 1], reps=1, seed=0))
        >>> sorted(str(s) for s in exprs[0].free_symbols)
        ['x_1', 'x_2']
    """
    import sympy

    exprs = list(sympy.symbols(f"x_1:{model.layers[0].in_dim + 1}", real=True))
    for layer in model.layers:
        exprs = layer_formulas(layer, exprs, tol)
    return exprs
