"""Batched SU(2) evaluation of DARUAN edges: O(R) fused 2x2 products per edge and sample.

Works for every ansatz, encoding and measurement. The data-free gates of each repetition and
the observable are compiled per edge once (independent of the batch; qkan.simulators.su2_torch
states the products). The batch is processed in chunks under activation checkpointing, so
backward keeps only the inputs of each chunk.

On CPU the evaluator runs the same computation as fused C++ kernels (qkan.simulators.native:
per (edge, sample) everything in registers, an analytic backward, nothing of size N*O*I kept);
this torch path is their reference and the fallback (SU2Evaluator.backend says which runs).
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint

from qkan._checks import check_type
from qkan.simulators.base import Evaluator, transformed
from qkan.simulators.su2_torch import prepare, run

__all__ = ["SU2Evaluator"]

#: elements (samples x edges) per chunk: keeps each pass inside the CPU caches
CHUNK_ELEMENTS = 1 << 18


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
