"""QKAN: a stack of QKANLayers (pykan-style width list)."""

from __future__ import annotations

import torch
from torch import nn

from qkan.layers import QKANLayer

__all__ = ["QKAN"]


class QKAN(nn.Module):
    """Quantum-classical Kolmogorov-Arnold network.

    Args:
        width: layer widths, e.g. [2, 5, 1] (at least two entries).
        reps: DARUAN repetitions per edge.
        **layer_options: keyword options of QKANLayer (ansatz, encoding, base, group,
            evaluator, measure, bias, seed, device, dtype); layer i is seeded with seed + i.

    Shape:
        (*, width[0]) -> (*, width[-1])
    """

    def __init__(self, width: list[int], reps: int = 3, **layer_options) -> None:
        super().__init__()
        if not isinstance(width, (list, tuple)) or len(width) < 2:
            raise ValueError(f"`width` must be a list of at least two layer sizes; got {width!r}")
        seed = layer_options.pop("seed", None)
        self.width = [int(w) for w in width]
        self.reps = reps
        self.layer_options = dict(layer_options)
        self.seed = seed
        self.layers = nn.ModuleList(
            QKANLayer(i, o, reps, seed=None if seed is None else seed + k, **layer_options)
            for k, (i, o) in enumerate(zip(self.width[:-1], self.width[1:]))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(*, width[0]) -> (*, width[-1])."""
        for layer in self.layers:
            x = layer(x)
        return x

    def set_evaluator(self, name: str = "auto", **options) -> QKAN:
        """Switch every layer's evaluator (same parameters). Returns self."""
        for layer in self.layers:
            layer.set_evaluator(name, **options)
        return self
