"""Torch side of the native SU(2) kernels: autograd Functions around the C ABI.

The batch-independent part of every edge (qkan.simulators.su2_torch.prepare) becomes a real table
(P per edge, layout in su2_kernel.cpp, width qkan_table_width) by qkan_prepare, whose backward returns
gradients to theta; qkan_su2 does the per-sample part and returns gradients to the table, the
encodings, the edge scales and x.

The kernels' backward passes are first-order. When a graph of the gradient is requested
(``create_graph=True``: second derivatives, physics-informed losses, gradient penalties), each
node differentiates its pure-torch reference instead (reference_backward), so every derivative
order is exact; a plain backward never pays for that.
"""

from __future__ import annotations

import ctypes
import functools

from typing import Callable

import torch

from qkan.circuits.ansatz import Ansatz
from qkan.simulators import native, su2_torch
from qkan.simulators.native import abi
from qkan.simulators.base import transformed

__all__ = [
    "native_table", "su2_native", "supports", "program", "program_array", "prepare_call", "table_width", "call",
    "ptr", "prepared_table", "reference_backward",
]

#: encoding codes of the C ABI
ENC_FIXED, ENC_INPUT, ENC_EDGE = 0, 1, 2


def supports(x: torch.Tensor) -> bool:
    """True when the kernels can run on x: a plain CPU float32/float64 tensor, outside torch.func
    transforms and torch.compile / torch.export tracing (which see through torch operations only)."""
    return (
        x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and not transformed()
    )


def reference_backward(ctx, reference: Callable[..., torch.Tensor], inputs: tuple, grad: torch.Tensor) -> tuple:
    """Gradients of reference(*inputs) along `grad`, as a differentiable graph: the backward of a
    native node when a graph of the gradient is requested (torch.is_grad_enabled() in backward).

    `inputs` are the node's inputs as saved (so the new graph connects to theirs); the result has
    one entry per input, None where ctx.needs_input_grad is False.
    """
    wrt = [k for k, t in enumerate(inputs) if isinstance(t, torch.Tensor) and ctx.needs_input_grad[k]]
    with torch.enable_grad():
        # fresh views: partial derivatives per input, even where one input was computed from another
        # (const from scale), while the views still connect to the inputs' graphs for higher orders
        inputs = tuple(t.view_as(t) if isinstance(t, torch.Tensor) else t for t in inputs)
        out = reference(*inputs)
    grads = torch.autograd.grad(out, [inputs[k] for k in wrt], grad, create_graph=True, allow_unused=True)
    result: list = [None] * len(ctx.needs_input_grad)
    for k, g in zip(wrt, grads):
        result[k] = g
    return tuple(result)


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


@functools.lru_cache(maxsize=None)
def program_array(prog: tuple[int, ...]) -> ctypes.Array:
    """A gate program as the C array the kernels read (made once per program)."""
    return (ctypes.c_int64 * len(prog))(*prog)


class _PrepareNative(torch.autograd.Function):
    """theta (E, n_slots, k) -> table (P, E) (qkan_prepare)."""

    @staticmethod
    def forward(ctx, theta, ansatz, reps, measure, threads):
        table = torch.empty(table_width(reps, measure), theta.shape[0], dtype=theta.dtype)
        prepare_call(theta, table, None, None, program(ansatz), reps, measure, threads)
        ctx.save_for_backward(theta)
        ctx.args = (ansatz, reps, measure, threads)
        return table

    @staticmethod
    def backward(ctx, grad):
        (theta,) = ctx.saved_tensors
        ansatz, reps, measure, threads = ctx.args
        if torch.is_grad_enabled():  # a graph of the gradient is requested: differentiate the torch reference
            name = "z" if measure == 0 else "amplitude"
            reference = lambda t, *_: prepared_table(su2_torch.prepare(ansatz, t, reps, name), name).t()  # noqa: E731
            return reference_backward(ctx, reference, (theta, None, None, None, None), grad)
        g_theta = torch.empty_like(theta)
        prepare_call(theta, None, grad.contiguous(), g_theta, program(ansatz), reps, measure, threads)
        return g_theta, None, None, None, None


def table_width(reps: int, measure: int) -> int:
    """P: reals per prepared edge (measure 0 "z", 1 "amplitude"), as the kernels lay it out (qkan_table_width)."""
    return native.load().qkan_table_width(reps, measure)


def prepare_call(theta, table, g_table, g_theta, program, reps: int, measure: int, threads: int) -> None:
    """qkan_prepare: forward (table given) or backward (g_table, g_theta given); theta (E, n_slots, k) contiguous."""
    E, n_slots, k = theta.shape
    args = abi.PrepareArgs(
        E=E, R=reps, n_slots=n_slots, k=k, measure=measure, backward=int(g_table is not None), threads=threads,
        program=program_array(program), theta=ptr(theta), table=ptr(table), g_table=ptr(g_table), g_theta=ptr(g_theta),
    )
    call("qkan_prepare", theta.dtype, args)


def native_table(ansatz: Ansatz, theta: torch.Tensor, reps: int, measure: str) -> torch.Tensor:
    """The prepared circuit of every edge (su2.prepare packed as reals, see prepared_table):
    theta (*edge, n_slots, k) -> (*edge, P)."""
    flat = theta.reshape(-1, *theta.shape[-2:]).contiguous()
    table = _PrepareNative.apply(flat, ansatz, reps, 0 if measure == "z" else 1, torch.get_num_threads())
    return table.t().reshape(*theta.shape[:-2], -1)


def prepared_table(prepared: su2_torch.Prepared, measure: str) -> torch.Tensor:
    """The kernels' table layout of a torch-prepared circuit: psi (a, b); per data rotation
    l = 1..R-1 the gate entries V00, V01, V10, V11; then m00 (real part), m01 for "z" or F00..F11
    for "amplitude"; each complex entry as (real, imag) -> (*edge, P)."""
    entries = [*prepared.psi, *(v for gate in prepared.V for v in gate)]
    m = prepared.M
    readout = [m[0].real, m[1].real, m[1].imag] if measure == "z" else [t for z in m for t in (z.real, z.imag)]
    return torch.stack([t for z in entries for t in (z.real, z.imag)] + readout, dim=-1)


def _unpack_table(table: torch.Tensor, reps: int, measure: str) -> su2_torch.Prepared:
    """prepared_table's inverse: (*edge, P) -> Prepared (differentiable)."""
    pairs = lambda t: [torch.complex(t[..., 2 * k], t[..., 2 * k + 1]) for k in range(t.shape[-1] // 2)]  # noqa: E731
    readout = 3 if measure == "z" else 8  # reals after the gates
    head, tail = pairs(table[..., :-readout]), table[..., -readout:]
    if measure == "z":
        M = (torch.complex(tail[..., 0], torch.zeros_like(tail[..., 0])), torch.complex(tail[..., 1], tail[..., 2]), None, None)
    else:
        M = tuple(pairs(tail))
    return su2_torch.Prepared(tuple(head[:2]), [tuple(head[2 + 4 * l : 6 + 4 * l]) for l in range(reps - 1)], M)


def call(entry_point: str, dtype: torch.dtype, args: abi.Args) -> None:
    """Run a kernel on its arguments in dtype's precision (float64 or float32); raise for a nonzero
    return code (1: allocation, 2: threads, 3: a gate list too long)."""
    code = getattr(native.load(), entry_point)(int(dtype == torch.float64), ctypes.byref(args))
    if code == 1:
        raise MemoryError(f"qkan native kernel {entry_point}: out of memory")
    if code:
        raise RuntimeError(f"qkan native kernel {entry_point} failed with code {code} ({'threads' if code == 2 else 'unsupported ansatz'})")


def ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


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
        args = abi.SU2Args(
            N=N, O=O, I=I, R=R, measure=measure, enc=enc, arccos=arccos, mode=mode, threads=threads, backward=0,
            x=ptr(xT), table=ptr(table), w=ptr(w), b=ptr(b), scale=ptr(scale), out=ptr(out),
            g_out=None, g_table=None, g_w=None, g_b=None, g_scale=None, g_x=None,
        )
        call("qkan_su2", x.dtype, args)
        ctx.save_for_backward(x, table, w, b, scale)
        ctx.config = config
        return out.t() if mode == 0 else out.permute(2, 0, 1)

    @staticmethod
    def reference(x, table, w, b, scale, config) -> torch.Tensor:
        """The same function in torch operations (su2_torch.run on the unpacked table)."""
        R, measure, enc, arccos, mode, _ = config
        name = "z" if measure == 0 else "amplitude"
        xs = x.unsqueeze(1)  # (N, 1, I)
        angles = [xs if w is None else torch.addcmul(b[..., l], w[..., l], xs) for l in range(R)]  # each (N, O'', I)
        f = su2_torch.run(_unpack_table(table, R, name), angles, bool(arccos), name)  # (N, O, I)
        return (f * scale).sum(-1) if mode == 0 else f

    @staticmethod
    def backward(ctx, grad):
        x, table, w, b, scale = ctx.saved_tensors
        if torch.is_grad_enabled():  # a graph of the gradient is requested: differentiate the torch reference
            return reference_backward(ctx, _SU2Native.reference, (x, table, w, b, scale, ctx.config), grad)
        R, measure, enc, arccos, mode, threads = ctx.config
        N, I = x.shape
        xT = x.t().contiguous()
        O = table.shape[0]
        gT = (grad.t() if mode == 0 else grad.permute(1, 2, 0)).contiguous()
        g_table = torch.empty_like(table)
        g_w = torch.empty(O, I, R, dtype=xT.dtype) if enc != ENC_FIXED else None
        g_b = torch.empty_like(g_w) if g_w is not None else None
        g_scale = torch.empty(O, I, dtype=xT.dtype) if mode == 0 else None
        g_xT = torch.empty_like(xT)
        args = abi.SU2Args(
            N=N, O=O, I=I, R=R, measure=measure, enc=enc, arccos=arccos, mode=mode, threads=threads, backward=1,
            x=ptr(xT), table=ptr(table), w=ptr(w), b=ptr(b), scale=ptr(scale), out=None,
            g_out=ptr(gT), g_table=ptr(g_table), g_w=ptr(g_w), g_b=ptr(g_b), g_scale=ptr(g_scale), g_x=ptr(g_xT),
        )
        call("qkan_su2", xT.dtype, args)
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
