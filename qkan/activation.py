"""DARUAN as an element-wise activation: a quantum variational activation function (QVAF).

Feature d of the input goes through its own single-qubit data re-uploading circuit f_d, with a
trainable output scale and shift:

    DARUAN(x)_d = c_d (f_d(x_d) + s_d)        (c = 1, s = 0 at initialisation: exactly <Z>)

It is a QKANLayer with one output and `dim` inputs and no base term, read edge by edge before the
sum: every evaluator (closed form where the ansatz has one, su2, PennyLane, Qiskit) and every
precision the layer supports work here unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from qkan._checks import check_int
from qkan.layers import QKANLayer

__all__ = ["DARUAN"]


class DARUAN(nn.Module):
    """Element-wise DARUAN activation, usable in any network like ``nn.GELU``.

    Args:
        dim: number of features (the size of the last input dimension).
        reps: data re-uploading repetitions R (Fourier degree of each f_d).
        ansatz: "pz" | "rpz" | "px" | "real" | "mix" (gates: docs/math.md).
        encoding: "fixed" (w = 1, b = 0) | "edge" or "input" (trainable w, b per feature and rep).
        evaluator: "auto" | "fourier" | "su2" | "pennylane" | "qiskit" (or a registered name).
        evaluator_options: options of the evaluator (device, shots, backend, ...).
        measure: "z" (<Z>) | "amplitude".
        seed: parameter initialisation seed (None: torch's global generator).
        device, dtype: placement of the parameters.

    Shape:
        (*, dim) -> (*, dim)

    Attributes:
        layer: the underlying QKANLayer(dim, 1): theta (1, dim, n_slots, k), post_weight c (1, dim),
            post_bias s (1, dim).

    Examples:
        >>> act = DARUAN(4, reps=2, seed=0)
        >>> act(torch.zeros(3, 5, 4)).shape
        torch.Size([3, 5, 4])
    """

    def __init__(
        self,
        dim: int,
        reps: int = 3,
        ansatz: str = "pz",
        encoding: str = "fixed",
        *,
        evaluator: str = "auto",
        evaluator_options: dict | None = None,
        measure: str = "z",
        seed: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_int("dim", dim)
        self.layer = QKANLayer(
            dim, 1, reps, ansatz=ansatz, encoding=encoding, base="none", evaluator=evaluator,
            evaluator_options=evaluator_options, measure=measure, seed=seed, device=device, dtype=dtype,
        )  # fmt: skip

    @property
    def dim(self) -> int:
        """Number of features."""
        return self.layer.in_dim

    def set_evaluator(self, name: str = "auto", **options) -> DARUAN:
        """Evaluate the circuits with another evaluator (same parameters). Returns self."""
        self.layer.set_evaluator(name, **options)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(*, dim) -> (*, dim): c_d (f_d(x_d) + s_d)."""
        f = self.layer.edge_outputs(x)  # (*, 1, dim), validated and evaluated by the layer
        return self.layer.edge_contributions(f, x).squeeze(-2)  # no base term: x is not read

    def extra_repr(self) -> str:
        layer = self.layer
        return f"dim={self.dim}, reps={layer.reps}, ansatz={layer.ansatz.name!r}, encoding={layer.encoding!r}, evaluator={layer.evaluator!r}"
