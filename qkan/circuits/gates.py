"""Single-qubit gates in torch and the per-edge unitaries of an ansatz.

Spec semantics: the closed-form compiler, the SU(2) evaluator and KANQAS's statevector
simulator all read their gates here.
Layout: matrices are (2, 2, *batch) and states (2, *batch), matrix indices first, so every
operation is a broadcast over contiguous edge/sample dimensions (tiny trailing 2x2 dimensions
make CPU kernels tens of times slower).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from qkan.circuits.ansatz import Ansatz

__all__ = ["complex_dtype", "rotation", "fixed_gate", "matmul2", "rep_unitaries", "encoding_frame", "Frame", "z_observable"]


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """complex64 for float32 (and lower), complex128 for float64."""
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def fixed_gate(name: str, dtype: torch.dtype, device: torch.device | None = None) -> torch.Tensor:
    """A parameter-free gate ("H", "X", "Z") as a complex (2, 2) tensor."""
    r = 1 / math.sqrt(2)
    values = {"H": [[r, r], [r, -r]], "X": [[0, 1], [1, 0]], "Z": [[1, 0], [0, -1]]}[name]
    return torch.tensor(values, dtype=complex_dtype(dtype), device=device)


def rotation(name: str, angle: torch.Tensor) -> torch.Tensor:
    """RX, RY or RZ(angle): angle (*batch) real -> (2, 2, *batch) complex."""
    c, s = torch.cos(angle / 2), torch.sin(angle / 2)
    if name == "RY":
        entries = torch.stack([c, -s, s, c]).to(complex_dtype(angle.dtype))
    elif name == "RZ":
        zero = torch.zeros_like(c)
        entries = torch.stack([torch.complex(c, -s), torch.complex(zero, zero), torch.complex(zero, zero), torch.complex(c, s)])
    elif name == "RX":
        off = torch.complex(torch.zeros_like(c), -s)
        entries = torch.stack([c.to(off.dtype), off, off, c.to(off.dtype)])
    else:  # pragma: no cover - specs only name these
        raise AssertionError(f"unknown rotation {name}")
    return entries.reshape(2, 2, *angle.shape)


def _as_batched(M: torch.Tensor, ndim: int) -> torch.Tensor:
    """A (2, 2) matrix reshaped to broadcast against (2, 2, *batch) with len(batch) = ndim - 2."""
    return M.reshape(2, 2, *([1] * (ndim - 2))) if M.dim() == 2 else M


def matmul2(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Batched 2x2 products: A (2, 2, *a) @ B (2, 2, *b) -> (2, 2, *broadcast(a, b))."""
    ndim = max(A.dim(), B.dim())
    A, B = _as_batched(A, ndim), _as_batched(B, ndim)
    return (A.unsqueeze(2) * B.unsqueeze(0)).sum(1)


def _product(gates: tuple, angles: torch.Tensor) -> torch.Tensor:
    """Product of a gate list (first acts first): angles (k, *batch) -> (2, 2, *batch)."""
    batch = angles.shape[1:]
    out = None
    for gate in gates:
        g = fixed_gate(gate.name, angles.dtype, angles.device) if gate.param is None else rotation(gate.name, angles[gate.param])
        out = g if out is None else matmul2(g, out)
    if out is None:
        out = torch.eye(2, dtype=complex_dtype(angles.dtype), device=angles.device)
    return _as_batched(out, len(batch) + 2).expand(2, 2, *batch)


def rep_unitaries(ansatz: Ansatz, theta: torch.Tensor, reps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed (data-free) part of each repetition and the final gate.

    Args:
        theta: (*edge, n_slots, k) real angles.
        reps: number of repetitions R.
    Returns:
        V: (2, 2, R, *edge) complex, the gates of rep l before its data rotation.
        F: (2, 2, *edge) complex, the final gates (identity when the ansatz has none).
    """
    angles = theta.permute(theta.dim() - 1, theta.dim() - 2, *range(theta.dim() - 2))  # (k, n_slots, *edge)
    if ansatz.final_gates == ansatz.rep_gates:  # one product over every slot
        U = _product(ansatz.rep_gates, angles)
        return U[:, :, :reps], U[:, :, reps]
    V = _product(ansatz.rep_gates, angles[:, :reps])
    F = _product(ansatz.final_gates, angles[:, reps] if ansatz.final_gates else angles[:, 0])
    return V, F


class Frame(NamedTuple):
    """An ansatz in the eigenframe of its data rotation, where E(phi) = diag(1, e^{i phi}) (global phase dropped).

    psi0: (2, *edge) state before the first data rotation, W^dag V_0 H|0>.
    V: (R-1, 2, 2, *edge) gates between data rotations l-1 and l (l = 1..R-1), W^dag V_l W.
    F: (2, 2, *edge) final gates times W; the observable is F^dag Z F.
    """

    psi0: torch.Tensor
    V: torch.Tensor
    F: torch.Tensor


def _frame_change(encoding_gate: str, dtype: torch.dtype, device) -> torch.Tensor | None:
    """W (2, 2) with P = W Z W^dag for the data rotation's Pauli P: None (RZ: W = I), H (RX), S H (RY)."""
    if encoding_gate == "RZ":
        return None
    H = fixed_gate("H", dtype, device)
    if encoding_gate == "RX":
        return H
    return torch.tensor([[1, 0], [0, 1j]], dtype=complex_dtype(dtype), device=device) @ H


def encoding_frame(ansatz: Ansatz, theta: torch.Tensor, reps: int) -> Frame:
    """The circuit of every edge in the data rotation's eigenframe: theta (*edge, n_slots, k) -> Frame."""
    V, F = rep_unitaries(ansatz, theta, reps)
    W = _frame_change(ansatz.encoding_gate, theta.dtype, theta.device)
    if W is None:
        first, inner = V[:, :, 0], V[:, :, 1:]
    else:
        first = matmul2(W.mH, V[:, :, 0])
        inner = matmul2(matmul2(W.mH, V[:, :, 1:]), W)
        F = matmul2(F, W)
    psi0 = first.sum(1) / math.sqrt(2)  # W^dag V_0 H|0> (H|0> = (1, 1) / sqrt 2)
    return Frame(psi0, inner.movedim(2, 0).contiguous(), F)


def z_observable(F: torch.Tensor) -> torch.Tensor:
    """F^dag Z F for final gates F (2, 2, *edge): the observable read before them."""
    Fd = F.transpose(0, 1).conj()
    Z = torch.tensor([1, -1], dtype=F.dtype, device=F.device).reshape(1, 2, *([1] * (F.dim() - 2)))
    return matmul2(Fd * Z, F)
