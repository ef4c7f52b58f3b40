"""Single-qubit gate matrices in torch and the per-edge unitaries of an ansatz.

Shared by the closed-form compiler and the SU(2) evaluator so both read the same circuit.
"""

from __future__ import annotations

import math

import torch

from qkan.circuits.ansatz import Ansatz

__all__ = ["complex_dtype", "rotation", "fixed_gate", "rep_unitaries", "pauli"]


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """complex64 for float32 (and lower), complex128 for float64."""
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def pauli(name: str, dtype: torch.dtype, device: torch.device | None = None) -> torch.Tensor:
    """Pauli X, Y or Z as a complex (2, 2) tensor."""
    values = {"X": [[0, 1], [1, 0]], "Y": [[0, -1j], [1j, 0]], "Z": [[1, 0], [0, -1]]}[name]
    return torch.tensor(values, dtype=complex_dtype(dtype), device=device)


def fixed_gate(name: str, dtype: torch.dtype, device: torch.device | None = None) -> torch.Tensor:
    """A parameter-free gate ("H", "X", "Z") as a complex (2, 2) tensor."""
    if name == "H":
        r = 1 / math.sqrt(2)
        return torch.tensor([[r, r], [r, -r]], dtype=complex_dtype(dtype), device=device)
    return pauli(name, dtype, device)


def rotation(name: str, angle: torch.Tensor) -> torch.Tensor:
    """RX, RY or RZ(angle) as complex matrices: angle (...) real -> (..., 2, 2)."""
    half = angle / 2
    c = torch.cos(half).to(complex_dtype(angle.dtype))
    s = torch.sin(half).to(complex_dtype(angle.dtype))
    zero = torch.zeros_like(c)
    if name == "RZ":
        rows = [[c - 1j * s, zero], [zero, c + 1j * s]]
    elif name == "RY":
        rows = [[c, -s], [s, c]]
    elif name == "RX":
        rows = [[c, -1j * s], [-1j * s, c]]
    else:  # pragma: no cover - specs only name these
        raise AssertionError(f"unknown rotation {name}")
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def _product(gates: tuple, theta_slot: torch.Tensor) -> torch.Tensor:
    """Product of a gate list (first acts first) at angles theta_slot (..., k) -> (..., 2, 2)."""
    batch = theta_slot.shape[:-1]
    out = torch.eye(2, dtype=complex_dtype(theta_slot.dtype), device=theta_slot.device).expand(*batch, 2, 2)
    for gate in gates:
        if gate.param is None:
            g = fixed_gate(gate.name, theta_slot.dtype, theta_slot.device)
        else:
            g = rotation(gate.name, theta_slot[..., gate.param])
        out = g @ out
    return out


def rep_unitaries(ansatz: Ansatz, theta: torch.Tensor, reps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed (data-free) part of each repetition and the final gate.

    Args:
        theta: (..., n_slots, k) real angles.
        reps: number of repetitions R.
    Returns:
        V: (..., R, 2, 2) complex, the gates of rep l before its data rotation.
        F: (..., 2, 2) complex, the final gates (identity when the ansatz has none).
    """
    V = _product(ansatz.rep_gates, theta[..., :reps, :])
    if ansatz.final_gates:
        F = _product(ansatz.final_gates, theta[..., reps, :])
    else:
        F = torch.eye(2, dtype=V.dtype, device=V.device).expand(*theta.shape[:-2], 2, 2)
    return V, F
