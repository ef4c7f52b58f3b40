"""Q-networks for the DDQN agent: QKAN (this package), a B-spline KAN, an MLP; one factory."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qkan.models import QKAN

__all__ = ["BSplineKANLayer", "BSplineKAN", "MLP", "make_q_network", "Q_NETWORKS", "DEFAULT_HIDDEN"]

Q_NETWORKS = ("qkan", "kan", "mlp")
#: default hidden widths (chosen by benchmarks/kanqas.py at 300 episodes; the MLP's is the published one)
DEFAULT_HIDDEN = {"qkan": [16], "kan": [4], "mlp": [30, 30, 30]}


class BSplineKANLayer(nn.Module):
    """KAN layer with B-spline edges (pykan's function class, efficient-kan's fast path).

    y_j = sum_i beta_ji silu(x_i) + sum_i sum_m c_jim B_m(x_i): all bases are computed once per
    input and the spline part is one matmul.

    Args:
        in_dim, out_dim: sizes.
        grid: number of grid intervals on [grid_range[0], grid_range[1]] (per input; the bases
            vanish outside the grid extended by k intervals).
        k: spline order (3 = cubic).

    Shape:
        (N, in_dim) -> (N, out_dim)
    """

    def __init__(self, in_dim: int, out_dim: int, *, grid: int = 5, k: int = 3,
                 grid_range: tuple[float, float] = (-1.0, 1.0), seed: int | None = None) -> None:
        super().__init__()
        self.in_dim, self.out_dim, self.grid_size, self.k = in_dim, out_dim, grid, k
        h = (grid_range[1] - grid_range[0]) / grid
        knots = torch.arange(-k, grid + k + 1, dtype=torch.float32) * h + grid_range[0]
        self.register_buffer("knots", knots.expand(in_dim, -1).clone())  # (I, grid + 2k + 1)
        self.base_weight = nn.Parameter(torch.empty(out_dim, in_dim))
        self.spline_weight = nn.Parameter(torch.empty(out_dim, in_dim * (grid + k)))
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        with torch.no_grad():
            bound = 1 / in_dim**0.5
            self.base_weight.copy_((torch.rand(out_dim, in_dim, generator=gen) * 2 - 1) * bound)
            self.spline_weight.copy_(torch.randn(out_dim, in_dim * (grid + k), generator=gen) * 0.1 * bound)

    def bases(self, x: torch.Tensor) -> torch.Tensor:
        """B-spline bases by Cox-de Boor: (N, I) -> (N, I, grid + k)."""
        t = self.knots.to(x.dtype)  # (I, M)
        x = x.unsqueeze(-1)  # (N, I, 1)
        b = ((x >= t[:, :-1]) & (x < t[:, 1:])).to(x.dtype)  # (N, I, grid + 2k): order 0
        for p in range(1, self.k + 1):
            left = (x - t[:, : -(p + 1)]) / (t[:, p:-1] - t[:, : -(p + 1)]) * b[..., :-1]
            right = (t[:, p + 1:] - x) / (t[:, p + 1:] - t[:, 1:-p]) * b[..., 1:]
            b = left + right  # (N, I, grid + 2k - p)
        return b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spline = self.bases(x).reshape(x.shape[0], -1)  # (N, I * (grid + k))
        return F.linear(F.silu(x), self.base_weight) + F.linear(spline, self.spline_weight)

    @torch.no_grad()
    def update_grid(self, x: torch.Tensor, *, margin: float = 0.01, grid_eps: float = 0.02) -> None:
        """Move each input's grid to the samples x (N, I) and refit the spline to keep the function.

        As pykan's update_grid_from_samples: grid points at sample quantiles mixed with a
        uniform grid (weight ``grid_eps``) over [min - margin, max + margin] (at least 0.1 wide),
        then least squares for the new coefficients on the same samples.
        """
        n, g, k = x.shape[0], self.grid_size, self.k
        c = self.spline_weight.reshape(self.out_dim, self.in_dim, g + k)
        old = torch.einsum("nim,oim->ino", self.bases(x), c)  # (I, N, O) per-edge spline values
        xs = x.sort(0).values  # (N, I)
        lo, hi = xs[0] - margin, xs[-1] + margin
        widen = (0.1 - (hi - lo)).clamp(min=0) / 2
        lo, hi = lo - widen, hi + widen
        adaptive = xs[torch.linspace(0, n - 1, g + 1).round().long()]  # (g + 1, I)
        adaptive[0], adaptive[-1] = lo, hi
        uniform = lo + (hi - lo) * torch.linspace(0, 1, g + 1, dtype=x.dtype)[:, None]
        h = (hi - lo) / g
        inner = grid_eps * uniform + (1 - grid_eps) * adaptive  # (g + 1, I)
        inner = torch.cummax(inner, 0).values + 1e-3 * h * torch.arange(g + 1, dtype=x.dtype)[:, None]  # increasing
        steps = torch.arange(1, k + 1, dtype=x.dtype)[:, None]
        knots = torch.cat([inner[:1] - steps.flip(0) * h, inner, inner[-1:] + steps * h])  # (g + 2k + 1, I)
        self.knots.copy_(knots.T)
        new = self.bases(x).transpose(0, 1)  # (I, N, g + k)
        coef = torch.linalg.lstsq(new.double(), old.double(), driver="gelsd").solution  # (I, g + k, O)
        self.spline_weight.copy_(coef.permute(2, 0, 1).reshape(self.out_dim, -1).to(self.spline_weight.dtype))


class BSplineKAN(nn.Module):
    """A stack of BSplineKANLayers, width like [84, 2, 12]: (N, width[0]) -> (N, width[-1]).

    Args:
        width: layer sizes.
        grid, k: spline grid intervals and order.
        input_range: grid range of the first layer (e.g. the observation bounds); later layers
            use [-1, 1].
        grid_update: refit every layer's grid to samples in ``update_grid`` (the DDQN agent
            calls it at every target update, as the published KAN does); False: fixed grids.
        seed: initialisation seed.
    """

    def __init__(self, width: list[int], *, grid: int = 5, k: int = 3, input_range: tuple[float, float] = (-1.0, 1.0),
                 grid_update: bool = False, seed: int | None = None) -> None:
        super().__init__()
        self.width, self.grid_update = list(width), bool(grid_update)
        self.layers = nn.ModuleList(
            BSplineKANLayer(i, o, grid=grid, k=k, grid_range=input_range if n == 0 else (-1.0, 1.0),
                            seed=None if seed is None else seed + n)
            for n, (i, o) in enumerate(zip(width[:-1], width[1:]))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    @torch.no_grad()
    def update_grid(self, x: torch.Tensor) -> None:
        """Refit each layer's grid to the activations of samples x (N, width[0]) (if grid_update)."""
        if not self.grid_update:
            return
        for layer in self.layers:
            layer.update_grid(x)
            x = layer(x)


class MLP(nn.Sequential):
    """ReLU MLP (the published baseline is 3 hidden layers of 30): (N, in) -> (N, out)."""

    def __init__(self, width: list[int]) -> None:
        mods: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(width[:-1], width[1:])):
            mods.append(nn.Linear(a, b))
            if i < len(width) - 2:
                mods.append(nn.ReLU())
        super().__init__(*mods)
        self.width = list(width)


def make_q_network(kind: str, in_dim: int, out_dim: int, *, hidden: list[int] | None = None,
                   seed: int | None = None, input_range: tuple[float, float] = (0.0, 1.0), **options) -> nn.Module:
    """Q-network (N, in_dim) -> (N, out_dim).

    Args:
        kind: "qkan" (qkan.QKAN with closed-form DARUAN edges, reps 3, edge weights
            c = 1 / sqrt(in_dim) (QKANLayer's ``post_init="fan_in"``; ``post_init="ones"`` keeps
            c = 1), default hidden [16]),
            "kan" (B-spline KAN, grid 5, k 3, default hidden [4]; the published Bell network
            is hidden [2]; ``grid_update=True`` refits grids from samples) or "mlp" (default
            hidden [30, 30, 30], ReLU, as published).
        hidden: hidden layer widths.
        seed: parameter initialisation seed (torch's global generator for the MLP).
        input_range: (low, high) of the inputs (the env's observation bounds): the B-spline
            KAN's first grid covers it.
        **options: extra options (qkan: QKANLayer options such as reps, ansatz; kan: grid, k,
            grid_update).
    """
    if kind not in Q_NETWORKS:
        raise ValueError(f"`q_network` must be one of {list(Q_NETWORKS)}; got {kind!r}")
    if hidden is None:
        hidden = DEFAULT_HIDDEN[kind]
    width = [in_dim, *hidden, out_dim]
    if kind == "qkan":
        # A QKAN layer sums I edge values in [-1, 1]; with c = 1 a hidden unit fed by the 84-288
        # mostly-zero observation entries of KANQAS carries a random offset of several radians
        # (each edge adds its own f(0)), which the next DARUAN layer reads as an angle. Scaling c
        # by 1 / sqrt(I), as torch.nn.Linear scales its weights, keeps hidden angles of order 1
        # (GHZ-3, 300 episodes, seed 0: success rate 0.01 with c = 1 and hidden [4], 0.43 with
        # fan-in scaling and hidden [8]).
        options = {"reps": 3, "post_init": "fan_in", **options}
        return QKAN(width, seed=seed, **options)
    if kind == "kan":
        options.setdefault("input_range", input_range)
        return BSplineKAN(width, seed=seed, **options)
    if options:
        raise ValueError(f"the mlp Q-network takes no options; got {sorted(options)}")
    return MLP(width)
