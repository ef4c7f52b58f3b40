"""Torch side of the native closed-form kernels (qkan/simulators/native/fourier_kernel.cpp)."""

from __future__ import annotations

import ctypes
import functools

import torch
from torch.autograd.function import once_differentiable

from qkan.circuits.ansatz import Ansatz
from qkan.simulators import native
from qkan.simulators.native.ops import check, prepare_call, program, ptr, table_width

__all__ = ["fourier_compile", "harmonic_linear"]


class _FourierCompile(torch.autograd.Function):
    """theta (E, n_slots, k) -> coefficients (C, E): qkan_prepare then qkan_fourier_compile, one node."""

    @staticmethod
    def forward(ctx, theta, D, cs, prog, reps, threads):
        table = torch.empty(table_width(reps, 0), theta.shape[0], dtype=theta.dtype)
        prepare_call(theta, table, None, None, prog, reps, 0, threads)
        coeffs = torch.empty(D.shape[0], theta.shape[0], dtype=theta.dtype)
        _compile_call(table, D, cs, coeffs, None, None, reps, threads)
        ctx.save_for_backward(theta, table, D, cs)
        ctx.args = (prog, reps, threads)
        return coeffs

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        theta, table, D, cs = ctx.saved_tensors
        prog, reps, threads = ctx.args
        g_table = torch.empty_like(table)
        _compile_call(table, D, cs, None, grad.contiguous(), g_table, reps, threads)
        g_theta = torch.empty_like(theta)
        prepare_call(theta, None, g_table, g_theta, prog, reps, 0, threads)
        return g_theta, None, None, None, None, None


def _compile_call(table, D, cs, coeffs, g_coeffs, g_table, reps, threads) -> None:
    C, S = D.shape
    dims = (ctypes.c_int64 * 7)(table.shape[1], reps, S, C, 0, int(g_coeffs is not None), threads)
    ptrs = (ctypes.c_void_p * 6)(*[ptr(t) for t in (table, D, cs, coeffs, g_coeffs, g_table)])
    check(native.load().qkan_fourier_compile(int(table.dtype == torch.float64), dims, ptrs), "fourier compile")


@functools.lru_cache(maxsize=None)
def _cos_sin(points: torch.Tensor) -> torch.Tensor:
    """(2, S) = [cos x; sin x] of the sample angles x = points[:, 0] (a cached, never modified tensor)."""
    x = points[:, 0]
    return torch.stack([torch.cos(x), torch.sin(x)]).contiguous()


def fourier_compile(ansatz: Ansatz, theta: torch.Tensor, reps: int, D: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Fourier coefficients of every edge (measure "z", fixed encoding) by the native kernels.

    Args:
        theta: (*edge, n_slots, k) angles.
        D: (C, S) the real DFT and points (S, R) the sample angles, equal in every rep
            (qkan.simulators.fourier._sampling; cached tensors, so their cos/sin are cached too).
    Returns:
        (C, *edge): D @ f(x_s) for every edge.
    """
    flat = theta.reshape(-1, *theta.shape[-2:]).contiguous()
    coeffs = _FourierCompile.apply(flat, D, _cos_sin(points), program(ansatz), reps, torch.get_num_threads())
    return coeffs.reshape(D.shape[0], *theta.shape[:-2])


class _HarmonicLinear(torch.autograd.Function):
    """x (N, I), W (O, 2K*I), bias (O,) -> Phi(x) @ W^T + bias with Phi = [cos(k x); sin(k x)] (N, 2K, I),
    k = 1..K: the features and the matrix product in one node (Phi is kept for backward)."""

    @staticmethod
    def forward(ctx, x, W, bias, K, threads):
        N, I = x.shape
        phi = torch.empty(N, 2 * K, I, dtype=x.dtype)
        _features_call(x, phi, None, None, K, threads)
        phi = phi.reshape(N, 2 * K * I)
        ctx.save_for_backward(x, phi, W)
        ctx.args = (K, threads)
        return torch.addmm(bias, phi, W.t())

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, phi, W = ctx.saved_tensors
        K, threads = ctx.args
        g_x = g_W = g_bias = None
        if ctx.needs_input_grad[0]:
            g_x = torch.empty_like(x)
            _features_call(x, phi, grad.mm(W), g_x, K, threads)
        if ctx.needs_input_grad[1]:
            g_W = grad.t().mm(phi)
        if ctx.needs_input_grad[2]:
            g_bias = grad.sum(0)
        return g_x, g_W, g_bias, None, None


def _features_call(x, phi, g_phi, g_x, K, threads) -> None:
    N, I = x.shape
    dims = (ctypes.c_int64 * 6)(N, I, K, 2 * K, int(g_phi is not None), threads)
    ptrs = (ctypes.c_void_p * 4)(*[ptr(t) for t in (x, phi, g_phi, g_x)])
    check(native.load().qkan_fourier_features(int(x.dtype == torch.float64), dims, ptrs), "fourier features")


def harmonic_linear(x: torch.Tensor, K: int, W: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Phi(x) @ W^T + bias by the native features kernel and one matrix product.

    Args:
        x: (N, I) CPU float32/float64. W: (O, 2K*I), columns ordered as Phi (N, 2K, I) flattened
            ([cos(k x_i)] for k = 1..K, then [sin(k x_i)]). bias: (O,).
    Returns:
        (N, O).
    """
    return _HarmonicLinear.apply(x.contiguous(), W.contiguous(), bias, K, torch.get_num_threads())
