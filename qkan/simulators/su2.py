"""Batched SU(2) evaluation of DARUAN edges: O(R) fused 2x2 products per edge and sample.

Works for every ansatz, encoding and measurement. The data-free gates of each repetition and
the observable are compiled per edge once (independent of the batch), in the eigenframe of the
data rotation, where it is diag(1, e^{i phi}) up to a global phase; per sample only that phase
and the 2x2 gates between rotations act. <Z> after the final gates F is read as
psi^dag (F^dag Z F) psi. The batch is processed in chunks
under activation checkpointing, so backward keeps only the inputs of each chunk.

On CPU the evaluator runs the same computation as fused C++ kernels (qkan.simulators.native:
per (edge, sample) everything in registers, an analytic backward, nothing of size N*O*I kept);
this torch path is their reference and the fallback (SU2Evaluator.backend says which runs).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


import torch
from torch.utils.checkpoint import checkpoint

from qkan._checks import check_type
from qkan.circuits.ansatz import Ansatz
from qkan.simulators.base import Evaluator, transformed
from qkan.circuits.gates import encoding_frame, z_observable

__all__ = ["Prepared", "prepare", "run", "sin_arccos", "SU2Evaluator"]

#: elements (samples x edges) per chunk: keeps each pass inside the CPU caches
CHUNK_ELEMENTS = 1 << 18


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


class SU2Evaluator(Evaluator):
    """Fused batched 2x2 products: every ansatz, encoding and measurement.

    Two backends compute the same numbers: "native" (a fused C++ kernel with an analytic
    backward, qkan.simulators.native; CPU float32/float64 tensors) and "torch" (the chunked,
    checkpointed pure-torch path below; the reference and the fallback for CUDA, other dtypes,
    no compiler, QKAN_NATIVE=0 or native=False).

    Args:
        native: None (default) uses the native kernel where it is available; False never;
            True requires it (RuntimeError naming the reason when it cannot be built).
    """

    name = "su2"
    supports_transforms = True

    def __init__(self, native: bool | None = None) -> None:
        check_type("native", native, bool, allow_none=True)
        self.native = native
        if native:
            from qkan.simulators import native as native_module

            if native_module.load() is None:
                raise RuntimeError(f"the native su2 kernel is unavailable: {native_module.unavailable_reason()}")

    @property
    def backend(self) -> str:
        """"native" or "torch": the backend for CPU float32/float64 inputs (others always use torch)."""
        if self.native is False:
            return "torch"
        from qkan.simulators import native as native_module

        return "native" if self.native or native_module.available() else "torch"

    def _native(self, x: torch.Tensor) -> bool:
        from qkan.simulators.native.ops import supports

        return supports(x) and self.backend == "native"  # supports first: no library lookup while tracing

    def _native_run(self, layer, x: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
        from qkan.simulators.native.ops import native_table, su2_native

        table = native_table(layer.ansatz, layer.theta, layer.reps, layer.measure).expand(layer.out_dim, layer.in_dim, -1)
        return su2_native(table, x, layer.reps, *layer.encoding_parameters(), scale, layer.measure, layer.ansatz.arccos)

    def unsupported(self, layer) -> str | None:
        """Why this evaluator cannot run `layer`, or None (it runs every layer)."""
        return None

    def edge_outputs(self, layer, x: torch.Tensor) -> torch.Tensor:
        """(N, I) -> (N, O, I): f_ji(x_i)."""
        if self._native(x):
            return self._native_run(layer, x, None)
        prepared = prepare(layer.ansatz, layer.theta, layer.reps, layer.measure)
        angles = (layer.encoded_angles(x, l) for l in range(layer.reps))
        f = run(prepared, angles, layer.ansatz.arccos, layer.measure)  # (N, O'', I)
        return f.expand(x.shape[0], layer.out_dim, layer.in_dim)

    def forward(self, layer, x: torch.Tensor) -> torch.Tensor:
        """(N, I) -> (N, O): the layer formula (torch backend: chunked over N with checkpointing)."""
        scale, const = layer.edge_weights()  # (O, I), (O,)
        if self._native(x):
            return self._native_run(layer, x, scale) + const + layer.base_term(x)
        prepared = prepare(layer.ansatz, layer.theta, layer.reps, layer.measure)

        def chunk(xc: torch.Tensor) -> torch.Tensor:  # (n, I) -> (n, O)
            angles = (layer.encoded_angles(xc, l) for l in range(layer.reps))
            f = run(prepared, angles, layer.ansatz.arccos, layer.measure)  # (n, O'', I)
            return (f * scale).sum(-1)

        step = max(1, CHUNK_ELEMENTS // (layer.out_dim * layer.in_dim))
        if x.shape[0] <= step or transformed():  # checkpointing is a memory saving torch.func cannot trace
            y = chunk(x)
        else:
            y = torch.cat([checkpoint(chunk, xc, use_reentrant=False) for xc in x.split(step)])
        return y + const + layer.base_term(x)
