"""Q-networks for the DDQN agent: QKAN (this package), a B-spline KAN, an MLP; one factory."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qkan.models import QKAN

__all__ = ["BSplineKANLayer", "BSplineKAN", "MLP", "make_q_network", "Q_NETWORKS"]

Q_NETWORKS = ("qkan", "kan", "mlp")


class BSplineKANLayer(nn.Module):
    """KAN layer with B-spline edges (pykan's function class, efficient-kan's fast path).

    y_j = sum_i beta_ji silu(x_i) + sum_i sum_m c_jim B_m(x_i): all bases are computed once per
    input and the spline part is one matmul.

    Args:
        in_dim, out_dim: sizes.
        grid: number of grid intervals on [grid_range[0], grid_range[1]].
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
        self.register_buffer("knots", knots)  # (grid + 2k + 1,)
        self.base_weight = nn.Parameter(torch.empty(out_dim, in_dim))
        self.spline_weight = nn.Parameter(torch.empty(out_dim, in_dim * (grid + k)))
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        with torch.no_grad():
            bound = 1 / in_dim**0.5
            self.base_weight.copy_((torch.rand(out_dim, in_dim, generator=gen) * 2 - 1) * bound)
            self.spline_weight.copy_(torch.randn(out_dim, in_dim * (grid + k), generator=gen) * 0.1 * bound)

    def bases(self, x: torch.Tensor) -> torch.Tensor:
        """B-spline bases by Cox-de Boor: (N, I) -> (N, I, grid + k)."""
        t = self.knots.to(x.dtype)
        x = x.unsqueeze(-1)  # (N, I, 1)
        b = ((x >= t[:-1]) & (x < t[1:])).to(x.dtype)  # (N, I, grid + 2k): order 0
        for p in range(1, self.k + 1):
            left = (x - t[: -(p + 1)]) / (t[p:-1] - t[: -(p + 1)]) * b[..., :-1]
            right = (t[p + 1:] - x) / (t[p + 1:] - t[1:-p]) * b[..., 1:]
            b = left + right  # (N, I, grid + 2k - p)
        return b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spline = self.bases(x).reshape(x.shape[0], -1)  # (N, I * (grid + k))
        return F.linear(F.silu(x), self.base_weight) + F.linear(spline, self.spline_weight)


class BSplineKAN(nn.Module):
    """A stack of BSplineKANLayers, width like [84, 2, 12]: (N, width[0]) -> (N, width[-1])."""

    def __init__(self, width: list[int], *, grid: int = 5, k: int = 3, seed: int | None = None) -> None:
        super().__init__()
        self.width = list(width)
        self.layers = nn.ModuleList(
            BSplineKANLayer(i, o, grid=grid, k=k, seed=None if seed is None else seed + n)
            for n, (i, o) in enumerate(zip(width[:-1], width[1:]))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


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
                   seed: int | None = None, **options) -> nn.Module:
    """Q-network (N, in_dim) -> (N, out_dim).

    Args:
        kind: "qkan" (qkan.QKAN, closed-form DARUAN edges, default hidden [2], reps 3),
            "kan" (B-spline KAN, default hidden [2], grid 5, k 3: the published [84, 2, 12]
            for Bell) or "mlp" (default hidden [30, 30, 30], ReLU).
        hidden: hidden layer widths.
        seed: parameter initialisation seed (torch's global generator for the MLP).
        **options: extra options (qkan: QKANLayer options such as reps, ansatz; kan: grid, k).
    """
    if kind not in Q_NETWORKS:
        raise ValueError(f"`q_network` must be one of {list(Q_NETWORKS)}; got {kind!r}")
    if hidden is None:
        hidden = [30, 30, 30] if kind == "mlp" else [2]
    width = [in_dim, *hidden, out_dim]
    if kind == "qkan":
        options.setdefault("reps", 3)
        return QKAN(width, seed=seed, **options)
    if kind == "kan":
        return BSplineKAN(width, seed=seed, **options)
    if options:
        raise ValueError(f"the mlp Q-network takes no options; got {sorted(options)}")
    return MLP(width)
