"""Drawings of QKAN models: the network with every edge's learned function, one edge's spectrum,
and the inputs' attribution scores.

Figures are plain ``matplotlib.figure.Figure`` objects (Agg canvas, no pyplot state), returned
and optionally saved. Edge importance comes from :func:`qkan.interpret.attribution`.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from qkan._checks import check_int, check_number
from qkan._io import atomic_path
from qkan.interpret import attribution, edge_activations
from qkan.layers import QKANLayer

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_model", "plot_edge", "plot_attribution"]

_BOX_HEIGHT = 0.34  # height of an edge's curve box, in units of the layer spacing


def _figure(figsize: tuple[float, float]) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def _save(fig: Figure, path) -> None:
    """Write `fig` to `path` atomically, in the format its suffix names (png when it has none)."""
    if path is not None:
        path = Path(path)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, bbox_inches="tight", dpi=120, format=path.suffix.lstrip(".") or "png")


def _sample_input(model: nn.Module, x: torch.Tensor | None) -> torch.Tensor:
    """x, else model.reference_input, else 256 seeded uniform points in [-1, 1]^in."""
    if x is None:
        x = getattr(model, "reference_input", None)
    if x is None:
        param = model.layers[0].theta
        gen = torch.Generator().manual_seed(0)
        x = (torch.rand(256, model.layers[0].in_dim, generator=gen, dtype=torch.float64) * 2 - 1).to(param)
    return x


def _names(arg: str, names, n: int, default: str) -> list[str]:
    """Node labels: `names` (n strings, shown as math when wrapped in $) or default_1..default_n."""
    if names is None:
        return [f"${default}_{{{k + 1}}}$" for k in range(n)]
    if not isinstance(names, (list, tuple)) or not all(isinstance(v, str) for v in names):
        raise TypeError(f"`{arg}` must be a list of {n} str or None; got {names!r}")
    if len(names) != n:
        raise ValueError(f"`{arg}` must have {n} names (one per node); got {len(names)}")
    return list(names)


def plot_model(
    model: nn.Module,
    path=None,
    x: torch.Tensor | None = None,
    *,
    in_vars: list[str] | None = None,
    out_vars: list[str] | None = None,
    n_points: int = 48,
    figsize=None,
) -> Figure:
    """Draw a QKAN: nodes bottom (inputs) to top (outputs), each edge with its learned curve.

    Every unmasked edge (j, i) of layer l runs from input node i to a small box holding the curve
    phi_ji(t) (its full contribution, t over the range its input takes on `x`) and on to output
    node j. Edges fade with their attribution score relative to the layer's most important edge;
    masked edges are not drawn. Artists carry gids "edge-l-j-i" and "curve-l-j-i".

    Args:
        model: a QKAN.
        path: file to save the figure to (format from the suffix), or None.
        x: (N, in) inputs that set the input ranges and the importance; None uses
            ``model.reference_input`` or uniform points in [-1, 1].
        in_vars: names of the inputs (e.g. ["$\\mu$", "N"]); default $x_1$, $x_2$, ...
        out_vars: names of the outputs; default $y_1$, ...
        n_points: points per edge curve.
        figsize: matplotlib figure size; default grows with the widest layer.
    Returns:
        the matplotlib Figure.
    """
    check_int("n_points", n_points, low=2)
    in_names = _names("in_vars", in_vars, model.layers[0].in_dim, "x")
    out_names = _names("out_vars", out_vars, model.layers[-1].out_dim, "y")
    x = _sample_input(model, x)
    scores = attribution(model, x).edges
    widths = [model.layers[0].in_dim] + [layer.out_dim for layer in model.layers]
    most_edges = max(layer.in_dim * layer.out_dim for layer in model.layers)
    fig = _figure(figsize or (max(4.0, min(16.0, 0.55 * most_edges + 1)), 2.2 * len(model.layers) + 0.6))
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.15, len(model.layers) + 0.15)
    node_x = [[(k + 0.5) / n for k in range(n)] for n in widths]
    with torch.no_grad():
        for l, ((layer, x), score) in enumerate(zip(model.layer_inputs(x), scores)):
            O, I = layer.out_dim, layer.in_dim
            lo, hi = x.min(0).values, x.max(0).values  # (I,)
            t = torch.linspace(0, 1, n_points, dtype=x.dtype, device=x.device)[:, None]  # (G, 1)
            curves = edge_activations(layer, lo + (hi - lo) * t).cpu().double()  # (G, O, I)
            tx = t[:, 0].cpu().double().numpy() - 0.5  # (G,) curve abscissa in box widths
            top = score.max().item()
            box_w = min(0.8 / (O * I), 0.12)
            for i in range(I):
                for j in range(O):
                    if layer.mask[j, i] == 0:
                        continue
                    alpha = max(0.05, score[j, i].item() / top) if top > 0 else 0.05
                    ex, ey = (i * O + j + 0.5) / (O * I), l + 0.5
                    ax.plot([node_x[l][i], ex, math.nan, ex, node_x[l + 1][j]],
                            [l, ey - _BOX_HEIGHT / 2, math.nan, ey + _BOX_HEIGHT / 2, l + 1],
                            color="black", lw=0.8, alpha=alpha, gid=f"edge-{l}-{j}-{i}")  # fmt: skip
                    ax.add_patch(_box(ex - box_w / 2, ey - _BOX_HEIGHT / 2, box_w, _BOX_HEIGHT, alpha))
                    c = curves[:, j, i]
                    span = (c.max() - c.min()).item() or 1.0
                    cy = ey + 0.8 * _BOX_HEIGHT * ((c - c.min()) / span - 0.5)
                    ax.plot(ex + 0.8 * box_w * tx, cy.numpy(), color="tab:purple", lw=1.0, alpha=alpha, gid=f"curve-{l}-{j}-{i}")
    for l, row in enumerate(node_x):
        ax.scatter(row, [l] * len(row), s=60, color="black", zorder=3)
    for name, nx in zip(in_names, node_x[0]):
        ax.annotate(name, (nx, 0), xytext=(0, -14), textcoords="offset points", ha="center", va="top", gid="in-var")
    for name, nx in zip(out_names, node_x[-1]):
        ax.annotate(name, (nx, len(widths) - 1), xytext=(0, 8), textcoords="offset points", ha="center", gid="out-var")
    _save(fig, path)
    return fig


def _box(x0: float, y0: float, w: float, h: float, alpha: float):
    from matplotlib.patches import Rectangle

    return Rectangle((x0, y0), w, h, fill=False, lw=0.6, edgecolor="black", alpha=alpha)


def plot_edge(layer: QKANLayer, j: int, i: int, path=None, *, x_range: tuple[float, float] | None = None, n_points: int = 200) -> Figure:
    """One edge (j, i): its DARUAN f_ji and full contribution phi_ji, and its Fourier spectrum.

    Left: f_ji(t) (the circuit's <Z>) and phi_ji(t) = m (c (f + d) + beta base(t)) over `x_range`.
    Right: amplitudes |a_0| and sqrt(a_n^2 + b_n^2), n = 1..R, from ``layer.fourier_coefficients()``
    (a note instead where the layer has no finite Fourier series, e.g. the arccos ansatz "px").

    Args:
        layer: a QKANLayer.
        j, i: output and input index of the edge.
        path: file to save the figure to, or None.
        x_range: input interval; default (-pi, pi) (one period), (-1, 1) for arccos ansaetze.
        n_points: points of the curve.
    Returns:
        the matplotlib Figure.
    """
    check_int("j", j, low=0, high=layer.out_dim - 1)
    check_int("i", i, low=0, high=layer.in_dim - 1)
    check_int("n_points", n_points, low=2)
    if x_range is None:
        x_range = (-1.0, 1.0) if layer.ansatz.arccos else (-math.pi, math.pi)
    if len(x_range) != 2 or not x_range[0] < x_range[1]:
        raise ValueError(f"`x_range` must be (low, high) with low < high; got {x_range!r}")
    theta = layer.theta
    t = torch.linspace(*x_range, n_points, dtype=theta.dtype, device=theta.device)
    grid = t[:, None].expand(n_points, layer.in_dim)  # (G, I): every input on the same grid
    with torch.no_grad():
        f = layer.edge_outputs(grid)[:, j, i].cpu().double().numpy()
        phi = edge_activations(layer, grid)[:, j, i].cpu().double().numpy()
    fig = _figure((9.0, 3.4))
    ax_curve, ax_spec = fig.subplots(1, 2)
    t = t.cpu().double().numpy()
    ax_curve.plot(t, f, label=rf"$f_{{{j},{i}}}(x)$ (circuit)", gid="daruan")
    ax_curve.plot(t, phi, "--", label=rf"$\phi_{{{j},{i}}}(x)$ (edge)", gid="activation")
    ax_curve.set_xlabel("x")
    ax_curve.legend(loc="best", fontsize=8)
    ax_curve.set_title(f"edge ({j}, {i}), {layer.ansatz.name}, R={layer.reps}")
    try:
        coeffs = layer.fourier_coefficients()[j, i].detach().cpu().double()
    except ValueError as err:
        ax_spec.set_axis_off()
        ax_spec.text(0.5, 0.5, "no finite Fourier series:\n" + textwrap.fill(str(err), 40), ha="center", va="center", fontsize=8)
    else:
        R = layer.reps
        amp = torch.cat([coeffs[:1].abs(), torch.hypot(coeffs[1 : R + 1], coeffs[R + 1 :])])  # (R+1,)
        ax_spec.bar(range(R + 1), amp.numpy(), color="tab:purple", gid="spectrum")
        ax_spec.set_xticks(range(R + 1))
        ax_spec.set_xlabel("frequency n")
        ax_spec.set_ylabel(r"$|c_n|$")
        ax_spec.set_title("Fourier spectrum of $f$")
    fig.tight_layout()
    _save(fig, path)
    return fig


def plot_attribution(
    model: nn.Module, x: torch.Tensor | None = None, path=None, *, in_vars: list[str] | None = None, threshold: float | None = None
) -> Figure:
    """Bar chart of the input attribution scores (``attribution(model, x).nodes[0]``), largest first.

    Args:
        model: a QKAN.
        x: (N, in) inputs the scores are measured on; None uses ``model.reference_input`` or
            uniform points in [-1, 1].
        path: file to save the figure to, or None.
        in_vars: names of the inputs; default $x_1$, $x_2$, ...
        threshold: draw this score as a dashed line (e.g. prune_input's threshold); bars below it
            are grey.
    Returns:
        the matplotlib Figure (bars carry gids "score-<input index>").
    """
    names = _names("in_vars", in_vars, model.layers[0].in_dim, "x")
    threshold = check_number("threshold", threshold, allow_none=True)
    scores = attribution(model, _sample_input(model, x)).nodes[0].cpu().double()
    order = scores.argsort(descending=True).tolist()
    fig = _figure((max(3.5, 0.5 * len(order) + 1.5), 3.0))
    ax = fig.add_subplot()
    for pos, k in enumerate(order):
        low = threshold is not None and scores[k] < threshold
        ax.bar(pos, scores[k].item(), color="tab:gray" if low else "tab:purple", gid=f"score-{k}")
    ax.set_xticks(range(len(order)), [names[k] for k in order])
    if threshold is not None:
        ax.axhline(threshold, color="black", ls="--", lw=0.8, gid="threshold")
    ax.set_ylabel("attribution score")
    ax.set_title("input importance")
    fig.tight_layout()
    _save(fig, path)
    return fig
