"""The SU(2) products of DARUAN edges in torch: the batch-independent circuit (prepare) and the per-sample part (run).

In the eigenframe of the data rotation it is diag(1, e^{i phi}) up to a global phase, so per
sample only that phase and the 2x2 gates between rotations act; <Z> after the final gates F is
read as psi^dag (F^dag Z F) psi. The SU(2) evaluator (qkan.simulators.su2) runs these in chunks;
the native kernels (qkan.simulators.native) differentiate them where a graph of the gradient is
requested; the closed form samples them (qkan.simulators.fourier).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import torch

from qkan.circuits.ansatz import Ansatz
from qkan.circuits.gates import encoding_frame, z_observable

__all__ = ["Prepared", "prepare", "run", "sin_arccos"]


class Prepared(NamedTuple):
    """Batch-independent part of an evaluation, as separate entry tensors (each (*edge) complex).

    psi: the state (a, b) before the first data rotation; V: per data rotation l = 1..R-1 the
    entries (V00, V01, V10, V11) of the gates before it; M: the entries of the observable
    F^dag Z F (measure "z") or of the final gates F. Unbound once here, so the per-sample loop
    indexes nothing (each index would cost a zero-filled gradient buffer in backward).
    """

    psi: tuple[torch.Tensor, ...]
    V: list[tuple[torch.Tensor, ...]]
    M: tuple[torch.Tensor, ...]


def prepare(ansatz: Ansatz, theta: torch.Tensor, reps: int, measure: str) -> Prepared:
    """The circuit of every edge with the data left out: theta (*edge, n_slots, k) -> Prepared."""
    psi0, V, Fw = encoding_frame(ansatz, theta, reps)  # data rotations become diag(1, e^{i angle})
    M = z_observable(Fw) if measure == "z" else Fw
    entries = V.flatten(0, 2).unbind(0)  # 4 entries
    return Prepared(psi0.unbind(0), [entries[4 * l : 4 * l + 4] for l in range(reps - 1)], M.flatten(0, 1).unbind(0))


def run(prepared: Prepared, angles: Iterable[torch.Tensor], arccos: bool, measure: str) -> torch.Tensor:
    """Per-sample part: the R data-rotation angles (each broadcasting against the edges) -> edge values."""
    a, b = prepared.psi
    for l, phi in enumerate(angles):
        if l:
            v00, v01, v10, v11 = prepared.V[l - 1]
            a, b = torch.addcmul(v00 * a, v01, b), torch.addcmul(v10 * a, v11, b)
        if arccos:  # e^{i arccos(phi)} = phi + i sqrt(1 - phi^2)
            b = b * torch.complex(phi, sin_arccos(phi))
        else:
            b = b * torch.complex(torch.cos(phi), torch.sin(phi))
    m00, m01, m10, m11 = prepared.M
    if measure == "z":  # M = F^dag Z F is Hermitian and traceless and |a|^2 + |b|^2 = 1, so
        # psi^dag M psi = M00 (2 |a|^2 - 1) + 2 Re(M01 conj(a) b) = 2 Re(conj(a) (M00 a + M01 b)) - M00
        m00 = m00.real
        return 2 * (a.conj() * torch.addcmul(m00 * a, m01, b)).real - m00
    a, b = torch.addcmul(m00 * a, m01, b), torch.addcmul(m10 * a, m11, b)
    return a.abs() - b.abs()


def sin_arccos(phi: torch.Tensor) -> torch.Tensor:
    """sqrt(1 - phi^2) = sin(arccos(phi)) for |phi| <= 1, with derivative -phi / sqrt(1 - phi^2)
    inside and 0 at |phi| = 1 (where the true one-sided derivative is infinite).

    That convention keeps every derivative finite on the closed domain: a deep px model feeds
    tanh(h), which rounds to exactly +-1 for large |h| (float32: |h| > 9), and there the exact
    chain derivative (1 - tanh^2 h) * (...) tends to 0, which is what this gives; the native
    kernel uses the same convention.
    """
    inside = phi.abs() < 1
    return torch.where(inside, torch.sqrt(torch.where(inside, 1 - phi * phi, torch.ones_like(phi))), torch.zeros_like(phi))
