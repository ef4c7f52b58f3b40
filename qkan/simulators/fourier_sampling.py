"""The closed form's torch path: sample an edge's circuit where its Fourier series is determined,
then read the coefficients off with one real DFT (exact, differentiable to every order).

qkan.simulators.fourier compiles layers with it (or with the native kernels, whose reference it
is); QKANLayer.fourier_series and the frequencies Omega_m = sum_l m_l w_l read frequency_vectors.
"""

from __future__ import annotations

import functools
import itertools
import math

import torch

from qkan.circuits.ansatz import Ansatz
from qkan.simulators import su2_torch

__all__ = ["frequency_vectors", "sampled_coefficients"]


@functools.lru_cache(maxsize=None)
def frequency_vectors(reps: int) -> torch.Tensor:
    """The kept m in {-1, 0, 1}^R (first nonzero entry +1): (n_freq = (3^R - 1) / 2, R) int64."""
    kept = [m for m in itertools.product((0, 1, -1), repeat=reps) if any(m) and m[next(i for i, v in enumerate(m) if v)] == 1]
    return torch.tensor(kept, dtype=torch.int64)


@functools.lru_cache(maxsize=None)
def _sampling(reps: int, multi: bool, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample points and the real DFT that reads the coefficients off them, exactly.

    fixed: every rep sees the same x; f has degree R, so the S = 2R+1 points x_s = 2 pi s / S
        determine it. multi: rep l sees its own angle t_l and f has degree 1 in each, so the
        3^R grid t in (2 pi / 3) {0, 1, 2}^R determines it.
    Returns:
        points (S, R): the data-rotation angle of every rep at every sample.
        D (1 + 2K, S): [a_0; a_1..a_K; b_1..b_K] = D @ f(points).
    """
    if multi:
        points = torch.tensor(list(itertools.product(range(3), repeat=reps)), dtype=torch.float64) * (2 * math.pi / 3)
        args = points @ frequency_vectors.__wrapped__(reps).double().T  # (S, K): m . t
    else:
        x = torch.arange(2 * reps + 1, dtype=torch.float64) * (2 * math.pi / (2 * reps + 1))
        points = x.unsqueeze(1).expand(-1, reps)
        args = x.unsqueeze(1) * torch.arange(1, reps + 1, dtype=torch.float64)  # (S, K): n x
    S = points.shape[0]
    D = torch.cat([torch.full((1, S), 1 / S, dtype=torch.float64), 2 / S * torch.cos(args).T, 2 / S * torch.sin(args).T])
    return points.to(dtype=dtype, device=device), D.to(dtype=dtype, device=device)


def sampled_coefficients(
    ansatz: Ansatz, theta: torch.Tensor, reps: int, enc_bias: torch.Tensor | None = None, multi: bool = False
) -> torch.Tensor:
    """compile_coefficients' torch path as one tensor (1 + 2K, *edge) = [a0; a_1..a_K; b_1..b_K]:
    the SU(2) edge values at the sample points, then the real DFT."""
    sampling = _sampling.__wrapped__ if torch.compiler.is_compiling() else _sampling  # traced tensors must not be cached
    points, D = sampling(reps, multi, theta.dtype, theta.device)
    edge_dims = [1] * (theta.dim() - 2)
    angles = []
    for l in range(reps):
        t = points[:, l].reshape(-1, *edge_dims)  # (S, 1, ..., 1)
        angles.append(t if enc_bias is None else t + enc_bias[..., l])
    if torch.compiler.is_exporting():  # real arithmetic only: exported graphs (ONNX) take no complex tensors
        f = _bloch_z(ansatz, theta, reps, angles)
    else:
        f = su2_torch.run(su2_torch.prepare(ansatz, theta, reps, "z"), angles, False, "z")  # (S, *edge)
    return torch.tensordot(D, f, dims=1)


def _rotate(r: tuple, gate: str, angle) -> tuple:
    """The Bloch vector r = (x, y, z) after gate ("RX", "RY", "RZ" by `angle`; "H", "X", "Z")."""
    x, y, z = r
    if gate == "H":
        return z, -y, x
    if gate == "X":
        return x, -y, -z
    if gate == "Z":
        return -x, -y, z
    c, s = torch.cos(angle), torch.sin(angle)
    if gate == "RZ":
        return x * c - y * s, x * s + y * c, z
    if gate == "RY":
        return x * c + z * s, y, z * c - x * s
    return x, y * c - z * s, y * s + z * c  # RX


def _bloch_z(ansatz: Ansatz, theta: torch.Tensor, reps: int, angles: list) -> torch.Tensor:
    """<Z> of every edge at every sample by real rotations of the Bloch vector of H|0> (+x):
    theta (*edge, n_slots, k), R angles broadcasting to (S, *edge) -> (S, *edge)."""
    one = torch.ones_like(angles[0] + theta[..., 0, 0])
    r = (one, 0 * one, 0 * one)
    for slot in range(ansatz.n_slots(reps)):
        for gate in ansatz.rep_gates if slot < reps else ansatz.final_gates:
            r = _rotate(r, gate.name, None if gate.param is None else theta[..., slot, gate.param])
        if slot < reps:
            r = _rotate(r, ansatz.encoding_gate, angles[slot])
    return r[2]
