"""Torch side of the native SU(2) kernels: autograd Functions around the C ABI.

The batch-independent part of every edge (qkan.simulators.su2.prepare) becomes a real table
(P per edge, layout in su2_kernel.cpp) by qkan_prepare, whose backward returns
gradients to theta; qkan_su2 does the per-sample part and returns gradients to the table, the
encodings, the edge scales and x.
"""

from __future__ import annotations

import ctypes
import functools

import torch
from torch.autograd.function import once_differentiable

from qkan.circuits.ansatz import Ansatz
from qkan.simulators import native

__all__ = ["native_table", "su2_native", "supports", "program", "prepare_call", "table_width", "check", "ptr"]

#: encoding codes of the C ABI
ENC_FIXED, ENC_INPUT, ENC_EDGE = 0, 1, 2


def supports(x: torch.Tensor) -> bool:
    """True when the kernel can run on x: a CPU float32/float64 tensor."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)


_GATE_CODES = {"RX": 0, "RY": 1, "RZ": 2, "H": 3, "X": 4, "Z": 5}


@functools.lru_cache(maxsize=None)
def program(ansatz: Ansatz) -> tuple[int, ...]:
    """An ansatz as the integer gate program of qkan_prepare."""
    out = []
    for gates in (ansatz.rep_gates, ansatz.final_gates):
        out.append(len(gates))
        for g in gates:
            out += [_GATE_CODES[g.name], -1 if g.param is None else g.param]
    return (*out, _GATE_CODES[ansatz.encoding_gate])


class _PrepareNative(torch.autograd.Function):
    """theta (E, n_slots, k) -> table (P, E) (qkan_prepare)."""

    @staticmethod
    def forward(ctx, theta, program, reps, measure, threads):
        table = torch.empty(table_width(reps, measure), theta.shape[0], dtype=theta.dtype)
        prepare_call(theta, table, None, None, program, reps, measure, threads)
        ctx.save_for_backward(theta)
        ctx.args = (program, reps, measure, threads)
        return table

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (theta,) = ctx.saved_tensors
        g_theta = torch.empty_like(theta)
        prepare_call(theta, None, grad.contiguous(), g_theta, *ctx.args)
        return g_theta, None, None, None, None


def table_width(reps: int, measure: int) -> int:
    """P: reals per prepared edge (measure 0 "z", 1 "amplitude")."""
    return 4 + 8 * (reps - 1) + (3 if measure == 0 else 8)


def prepare_call(theta, table, g_table, g_theta, program, reps: int, measure: int, threads: int) -> None:
    """qkan_prepare: forward (table given) or backward (g_table, g_theta given); theta (E, n_slots, k) contiguous."""
    E, n_slots, k = theta.shape
    dims = (ctypes.c_int64 * 7)(E, reps, n_slots, k, measure, int(g_table is not None), threads)
    prog = (ctypes.c_int64 * len(program))(*program)
    ptrs = (ctypes.c_void_p * 4)(*[ptr(t) for t in (theta, table, g_table, g_theta)])
    check(native.load().qkan_prepare(int(theta.dtype == torch.float64), dims, prog, ptrs), "prepare")


def native_table(ansatz: Ansatz, theta: torch.Tensor, reps: int, measure: str) -> torch.Tensor:
    """The prepared circuit of every edge (su2.prepare packed as reals, layout in su2_kernel.cpp):
    theta (*edge, n_slots, k) -> (*edge, P)."""
    flat = theta.reshape(-1, *theta.shape[-2:]).contiguous()
    table = _PrepareNative.apply(flat, program(ansatz), reps, 0 if measure == "z" else 1, torch.get_num_threads())
    return table.t().reshape(*theta.shape[:-2], -1)


def check(code: int, what: str) -> None:
    """Raise for a kernel's nonzero return code (1: allocation, 2: threads, 3: a gate list too long)."""
    if code == 1:
        raise MemoryError(f"qkan native {what}: out of memory")
    if code:
        raise RuntimeError(f"qkan native {what} failed with code {code} ({'threads' if code == 2 else 'unsupported ansatz'})")


def ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _call(double: bool, dims: list[int], ptrs: list[torch.Tensor | None]) -> None:
    lib = native.load()
    c_dims = (ctypes.c_int64 * 10)(*dims)
    c_ptrs = (ctypes.c_void_p * 12)(*[ptr(t) for t in ptrs])
    check(lib.qkan_su2(int(double), c_dims, c_ptrs), "su2 kernel")


class _SU2Native(torch.autograd.Function):
    """x (N, I), table (O, I, P), w, b (O, I, R) | (I, R) | None, scale (O, I) | None ->
    y (N, O) = sum_i scale f (mode 0) or f (N, O, I) (mode 1)."""

    @staticmethod
    def forward(ctx, x, table, w, b, scale, config):
        R, measure, enc, arccos, mode, threads = config
        N, I = x.shape
        O = table.shape[0]
        xT = x.t().contiguous()
        out = torch.empty((O, N) if mode == 0 else (O, I, N), dtype=x.dtype)
        dims = [N, O, I, R, measure, enc, arccos, mode, threads, 0]
        _call(x.dtype == torch.float64, dims, [xT, table, w, b, scale, out, None, None, None, None, None, None])
        ctx.save_for_backward(xT, table, w, b, scale)
        ctx.config = config
        return out.t() if mode == 0 else out.permute(2, 0, 1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        xT, table, w, b, scale = ctx.saved_tensors
        R, measure, enc, arccos, mode, threads = ctx.config
        I, N = xT.shape
        O = table.shape[0]
        gT = (grad.t() if mode == 0 else grad.permute(1, 2, 0)).contiguous()
        g_table = torch.empty_like(table)
        g_w = torch.empty(O, I, R, dtype=xT.dtype) if enc != ENC_FIXED else None
        g_b = torch.empty_like(g_w) if g_w is not None else None
        g_scale = torch.empty(O, I, dtype=xT.dtype) if mode == 0 else None
        g_xT = torch.empty_like(xT)
        dims = [N, O, I, R, measure, enc, arccos, mode, threads, 1]
        _call(xT.dtype == torch.float64, dims, [xT, table, w, b, scale, None, gT, g_table, g_w, g_b, g_scale, g_xT])
        if enc == ENC_INPUT:
            g_w, g_b = g_w.sum(0), g_b.sum(0)
        return g_xT.t(), g_table, g_w, g_b, g_scale, None


def su2_native(
    table: torch.Tensor,
    x: torch.Tensor,
    reps: int,
    enc_weight: torch.Tensor | None,
    enc_bias: torch.Tensor | None,
    scale: torch.Tensor | None,
    measure: str,
    arccos: bool,
) -> torch.Tensor:
    """Edge values or their weighted sum by the native kernel.

    Args:
        table: (O, I, P) from native_table, expanded to every edge.
        x: (N, I) CPU float32/float64 inputs.
        enc_weight, enc_bias: (O, I, R) per edge, (1, I, R) per input, or None (w = 1, b = 0).
        scale: (O, I) edge weights: returns y (N, O) = sum_i scale_ji f_ji; None returns f (N, O, I).
    """
    if enc_weight is None:
        enc, w, b = ENC_FIXED, None, None
    elif enc_weight.shape[0] == 1:  # per input (or a single output): the phases are computed once per input
        enc, w, b = ENC_INPUT, enc_weight[0].contiguous(), enc_bias[0].contiguous()
    else:
        enc, w, b = ENC_EDGE, enc_weight.expand(*table.shape[:2], reps).contiguous(), enc_bias.expand(*table.shape[:2], reps).contiguous()
    mode = 0 if scale is not None else 1
    config = (reps, 0 if measure == "z" else 1, enc, int(arccos), mode, torch.get_num_threads())
    return _SU2Native.apply(x.contiguous(), table.contiguous(), w, b, None if scale is None else scale.contiguous(), config)
