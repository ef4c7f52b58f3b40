"""Torch side of the native closed-form kernels (qkan/simulators/native/fourier_kernel.cpp)."""

from __future__ import annotations

import ctypes

import torch
from torch.autograd.function import once_differentiable

from qkan.circuits.ansatz import Ansatz
from qkan.simulators import native
from qkan.simulators.native.ops import check, prepare_call, program, ptr, table_width

__all__ = ["fourier_compile", "closed_form_layer"]


class _FourierCompile(torch.autograd.Function):
    """theta (E, n_slots, k) -> coefficients (1 + 2R, E): qkan_prepare then qkan_fourier_compile, one node."""

    @staticmethod
    def forward(ctx, theta, prog, reps, threads):
        table = torch.empty(table_width(reps, 0), theta.shape[0], dtype=theta.dtype)
        prepare_call(theta, table, None, None, prog, reps, 0, threads)
        coeffs = torch.empty(1 + 2 * reps, theta.shape[0], dtype=theta.dtype)
        _compile_call(table, coeffs, None, None, reps, threads)
        ctx.save_for_backward(theta, table)
        ctx.args = (prog, reps, threads)
        return coeffs

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        theta, table = ctx.saved_tensors
        prog, reps, threads = ctx.args
        g_table = torch.empty_like(table)
        _compile_call(table, None, grad.contiguous(), g_table, reps, threads)
        g_theta = torch.empty_like(theta)
        prepare_call(theta, None, g_table, g_theta, prog, reps, 0, threads)
        return g_theta, None, None, None


def _compile_call(table, coeffs, g_coeffs, g_table, reps, threads) -> None:
    dims = (ctypes.c_int64 * 4)(table.shape[1], reps, int(g_coeffs is not None), threads)
    ptrs = (ctypes.c_void_p * 4)(*[ptr(t) for t in (table, coeffs, g_coeffs, g_table)])
    check(native.load().qkan_fourier_compile(int(table.dtype == torch.float64), dims, ptrs), "fourier compile")


def fourier_compile(ansatz: Ansatz, theta: torch.Tensor, reps: int) -> torch.Tensor:
    """Fourier coefficients of every edge (measure "z", fixed encoding) by the native kernels.

    Args:
        theta: (*edge, n_slots, k) angles of a closed-form ansatz.
    Returns:
        (1 + 2R, *edge) = [a0; a_1..a_R; b_1..b_R]: f = a0 + sum_d a_d cos(d x) + b_d sin(d x).
    """
    flat = theta.reshape(-1, *theta.shape[-2:]).contiguous()
    coeffs = _FourierCompile.apply(flat, program(ansatz), reps, torch.get_num_threads())
    return coeffs.reshape(1 + 2 * reps, *theta.shape[:-2])


class _ClosedFormLayer(torch.autograd.Function):
    """The fixed-encoding layer in one node (see closed_form_layer): the weight matrix W (O, S, I),
    the native features Phi (N, S, I) and one matrix product, S = 2K (+1 with a base term);
    backward by hand from the kept Phi and W (nothing of size N*O*I exists)."""

    @staticmethod
    def forward(ctx, x, theta, coeffs, scale, const, base_x, base_w, prog, threads):
        table = None
        if theta is not None:  # compile here: theta (O', I', n_slots, k) -> coeffs (C, O', I')
            flat = theta.view(-1, *theta.shape[2:])
            reps = theta.shape[2] - (1 if prog[1 + 2 * prog[0]] else 0)  # n_slots = R (+1 with final gates)
            table = torch.empty(table_width(reps, 0), flat.shape[0], dtype=theta.dtype)
            prepare_call(flat, table, None, None, prog, reps, 0, threads)
            coeffs = torch.empty(1 + 2 * reps, *theta.shape[:2], dtype=theta.dtype)
            _compile_call(table, coeffs, None, None, reps, threads)
        (N, I), (O, _), C = x.shape, scale.shape, coeffs.shape[0]
        K = (C - 1) // 2
        S = 2 * K + (base_x is not None)
        edges = coeffs.expand(C, O, I)
        W = torch.empty(O, S, I, dtype=x.dtype)
        torch.mul(edges[1:].transpose(0, 1), scale.unsqueeze(1), out=W[:, : 2 * K])
        phi = torch.empty(N, S, I, dtype=x.dtype)
        if base_x is not None:
            W[:, 2 * K] = base_w
            phi[:, 2 * K] = base_x
        _features_call(x, phi, None, None, K, threads)
        bias = const + (scale * edges[0]).sum(1)
        phi, W = phi.view(N, S * I), W.view(O, S * I)
        ctx.save_for_backward(x, phi, W, coeffs, scale, theta, table)
        ctx.args = (K, S, prog, threads)
        return torch.addmm(bias, phi, W.t())

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, phi, W, coeffs, scale, theta, table = ctx.saved_tensors
        K, S, prog, threads = ctx.args
        (N, I), (O, _), C = x.shape, scale.shape, coeffs.shape[0]
        g_x = g_theta = g_coeffs = g_scale = g_base_x = g_base_w = None
        g_const = grad.sum(0)
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[5]:
            g_phi = grad.mm(W).view(N, S, I)
            g_x = torch.empty_like(x)
            _features_call(x, phi, g_phi, g_x, K, threads)
            g_base_x = g_phi[:, 2 * K] if S > 2 * K else None
        gW = grad.t().mm(phi).view(O, S, I)  # dL/dW
        if any(ctx.needs_input_grad[1:4]):
            edges = coeffs.expand(C, O, I)
            g_edges = torch.empty(C, O, I, dtype=x.dtype)
            torch.mul(g_const.unsqueeze(1), scale, out=g_edges[0])
            torch.mul(gW[:, : 2 * K].transpose(0, 1), scale, out=g_edges[1:])
            g_coeffs = g_edges.sum_to_size(coeffs.shape)
            g_scale = (gW[:, : 2 * K] * edges[1:].transpose(0, 1)).sum(1) + g_const.unsqueeze(1) * edges[0]
        if theta is not None and ctx.needs_input_grad[1]:  # back through the compile
            g_table = torch.empty_like(table)
            _compile_call(table, None, g_coeffs.reshape(C, -1).contiguous(), g_table, K, threads)
            g_theta = torch.empty_like(theta)
            prepare_call(theta.view(-1, *theta.shape[2:]), None, g_table, g_theta.view(-1, *theta.shape[2:]), prog, K, 0, threads)
            g_coeffs = None
        if S > 2 * K:
            g_base_w = gW[:, 2 * K]
        return g_x, g_theta, g_coeffs, g_scale, g_const, g_base_x, g_base_w, None, None


def _features_call(x, phi, g_phi, g_x, K, threads) -> None:
    """qkan_fourier_features on phi (N, S, I) (slots 2K.. untouched); backward when g_phi (N, S, I) is given."""
    N, I = x.shape
    dims = (ctypes.c_int64 * 6)(N, I, K, phi.numel() // max(1, N * I), int(g_phi is not None), threads)
    ptrs = (ctypes.c_void_p * 4)(*[ptr(t) for t in (x, phi, g_phi, g_x)])
    check(native.load().qkan_fourier_features(int(x.dtype == torch.float64), dims, ptrs), "fourier features")


def closed_form_layer(
    x: torch.Tensor,
    scale: torch.Tensor,
    const: torch.Tensor,
    base: tuple[torch.Tensor, torch.Tensor] | None = None,
    *,
    coeffs: torch.Tensor | None = None,
    ansatz: Ansatz | None = None,
    theta: torch.Tensor | None = None,
) -> torch.Tensor:
    """The fixed-encoding layer from its Fourier coefficients, natively, as one matrix product.

        y_j = sum_i scale_ji (a0_ji + sum_k a_kji cos(k x_i) + b_kji sin(k x_i)) + const_j
              (+ sum_i base_w_ji base_x_i)

    Args:
        x: (N, I) CPU float32/float64.
        scale: (O, I) edge weights. const: (O,).
        base: (base_x (N, I), base_w (O, I)) for a base term folded into the same product, or None.
        coeffs: (1 + 2K, O', I') = [a0; a_1..a_K; b_1..b_K], O', I' = O, I or 1 (grouping); or
        ansatz, theta: (O', I', n_slots, k), compiled inside the same autograd node (training).
    Returns:
        (N, O).
    """
    base_x, base_w = base if base is not None else (None, None)
    prog = None if theta is None else program(ansatz)
    theta = None if theta is None else theta.contiguous()
    return _ClosedFormLayer.apply(x.contiguous(), theta, coeffs, scale, const, base_x, base_w, prog, torch.get_num_threads())
