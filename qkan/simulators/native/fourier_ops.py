"""Torch side of the native closed-form kernels (qkan/simulators/native/fourier_kernel.cpp).

Like the SU(2) nodes (ops.py), each node's backward is the kernels' first-order one, and a
differentiable torch reference when a graph of the gradient is requested (reference_backward).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qkan.circuits.ansatz import Ansatz
from qkan.simulators.native import abi
from qkan.simulators.native.ops import call, program, program_array, ptr, reference_backward

__all__ = ["fourier_compile", "closed_form_layer"]


class _FourierCompile(torch.autograd.Function):
    """theta (E, n_slots, k) -> coefficients (1 + 2R, E) by qkan_fourier_compile."""

    @staticmethod
    def forward(ctx, theta, ansatz, reps, threads):
        prog = program(ansatz)
        coeffs = torch.empty(1 + 2 * reps, theta.shape[0], dtype=theta.dtype)
        saved = _saved_buffer(theta, prog, reps) if ctx.needs_input_grad[0] else None
        _compile_call(theta, coeffs, None, None, saved, prog, reps, threads)
        ctx.save_for_backward(theta, saved)
        ctx.args = (ansatz, reps, threads)
        return coeffs

    @staticmethod
    def backward(ctx, grad):
        theta, saved = ctx.saved_tensors
        ansatz, reps, threads = ctx.args
        if torch.is_grad_enabled():  # a graph of the gradient is requested: differentiate the torch reference
            from qkan.simulators.fourier_sampling import sampled_coefficients

            reference = lambda t, *_: sampled_coefficients(ansatz, t, reps)  # noqa: E731
            return reference_backward(ctx, reference, (theta, None, None, None), grad)
        prog = program(ansatz)
        g_theta = torch.empty_like(theta)
        _compile_call(theta, None, grad.contiguous(), g_theta, saved, prog, reps, threads)
        return g_theta, None, None, None


def _saved_buffer(theta: torch.Tensor, prog: tuple[int, ...], reps: int) -> torch.Tensor:
    """What the compile's forward keeps for its backward: per vector of W edges (32 bytes of lanes) a block
    (6 (R + 1) + 2 n_gates, W), n_gates = R n_rep + n_fin (torch's allocations are 64-byte aligned)."""
    n_rep = prog[0]
    n_gates = reps * n_rep + prog[1 + 2 * n_rep]
    lanes = 32 // theta.element_size()
    return torch.empty(-(-theta.shape[0] // lanes) * lanes * (6 * (reps + 1) + 2 * n_gates), dtype=theta.dtype)


def _compile_call(theta, coeffs, g_coeffs, g_theta, saved, prog, reps, threads) -> None:
    """qkan_fourier_compile: coeffs (1 + 2R, E) from theta (E, n_slots, k) contiguous, or (g_coeffs given) g_theta;
    saved (_saved_buffer) is written forward and read backward (None: the backward recomputes the forward)."""
    E, n_slots, k = theta.shape
    args = abi.FourierCompileArgs(
        E=E, R=reps, n_slots=n_slots, k=k, backward=int(g_coeffs is not None), threads=threads, program=program_array(prog),
        theta=ptr(theta), coeffs=ptr(coeffs), g_coeffs=ptr(g_coeffs), g_theta=ptr(g_theta), saved=ptr(saved),
    )
    call("qkan_fourier_compile", theta.dtype, args)


def fourier_compile(ansatz: Ansatz, theta: torch.Tensor, reps: int) -> torch.Tensor:
    """Fourier coefficients of every edge (measure "z", fixed encoding) by the native kernels.

    Args:
        theta: (*edge, n_slots, k) angles of a closed-form ansatz.
    Returns:
        (1 + 2R, *edge) = [a0; a_1..a_R; b_1..b_R]: f = a0 + sum_d a_d cos(d x) + b_d sin(d x).
    """
    flat = theta.reshape(-1, *theta.shape[-2:]).contiguous()
    coeffs = _FourierCompile.apply(flat, ansatz, reps, torch.get_num_threads())
    return coeffs.reshape(1 + 2 * reps, *theta.shape[:-2])


class _ClosedFormLayer(torch.autograd.Function):
    """The fixed-encoding layer in one node (see closed_form_layer): the weight matrix W (O, S, I)
    and bias from the coefficients (qkan_fourier_weights), the features Phi (N, S, I) and one
    matrix product, S = 2K (+1 with a base term); backward by hand from the kept Phi and W
    (nothing of size N*O*I exists)."""

    @staticmethod
    def forward(ctx, x, theta, coeffs, scale, const, base_x, base_w, config):
        ansatz, silu, threads = config
        prog = None if ansatz is None else program(ansatz)
        saved = None
        if theta is not None:  # compile here: theta (O', I', n_slots, k) -> coeffs (C, O', I')
            reps = theta.shape[2] - (1 if prog[1 + 2 * prog[0]] else 0)  # n_slots = R (+1 with final gates)
            coeffs = torch.empty(1 + 2 * reps, *theta.shape[:2], dtype=theta.dtype)
            flat = theta.view(-1, *theta.shape[2:])
            saved = _saved_buffer(flat, prog, reps) if ctx.needs_input_grad[1] else None
            _compile_call(flat, coeffs, None, None, saved, prog, reps, threads)
        (N, I), O, K = x.shape, scale.shape[0], (coeffs.shape[0] - 1) // 2
        S = 2 * K + (base_w is not None)
        W = torch.empty(O, S, I, dtype=x.dtype)
        bias = torch.empty(O, dtype=x.dtype)
        _weights_call(coeffs, scale, const, base_w, W, bias, None, None, None, None, None)
        phi = torch.empty(N, S, I, dtype=x.dtype)
        sig = torch.empty(N, I, dtype=x.dtype) if silu else None
        if base_x is not None:
            phi[:, 2 * K] = base_x
        _features_call(x, phi, None, None, sig, K, silu, threads)
        phi, W = phi.view(N, S * I), W.view(O, S * I)
        ctx.save_for_backward(x, phi, W, coeffs, scale, theta, sig, saved, const, base_x, base_w)
        ctx.args = (K, S, prog, silu, threads)
        ctx.config = config
        return torch.addmm(bias, phi, W.t())

    @staticmethod
    def reference(x, theta, coeffs, scale, const, base_x, base_w, config) -> torch.Tensor:
        """The same layer in torch operations: features cos/sin(k x), the weights from the
        coefficients (compiled from theta by fourier_compile, itself twice differentiable)."""
        ansatz, silu, _ = config
        if theta is not None:
            coeffs = fourier_compile(ansatz, theta, theta.shape[2] - (1 if ansatz.final_gates else 0))
        K = (coeffs.shape[0] - 1) // 2
        O, I = scale.shape
        c = coeffs.expand(-1, O, I)  # (1 + 2K, O, I)
        angles = x.unsqueeze(1) * torch.arange(1, K + 1, dtype=x.dtype, device=x.device).unsqueeze(-1)  # (N, K, I)
        phi = torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)  # (N, 2K, I)
        y = torch.einsum("nki,oki->no", phi, scale.unsqueeze(1) * c[1:].movedim(0, 1)) + const + (scale * c[0]).sum(-1)
        if base_w is not None:
            y = y + F.linear(F.silu(x) if silu else base_x, base_w)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, phi, W, coeffs, scale, theta, sig, saved, const, base_x, base_w = ctx.saved_tensors
        if torch.is_grad_enabled():  # a graph of the gradient is requested: differentiate the torch reference
            inputs = (x, theta, coeffs, scale, const, base_x, base_w, ctx.config)
            return reference_backward(ctx, _ClosedFormLayer.reference, inputs, grad)
        K, S, prog, silu, threads = ctx.args
        N, I = x.shape
        needs = ctx.needs_input_grad
        g_x = g_theta = g_coeffs = g_scale = g_base_x = g_base_w = None
        g_const = grad.sum(0)
        if needs[0] or needs[5]:
            g_phi = grad.mm(W).view(N, S, I)
            if needs[0]:
                g_x = torch.empty_like(x)
                _features_call(x, phi, g_phi, g_x, sig, K, silu, threads)
            if needs[5]:
                g_base_x = g_phi[:, 2 * K]
        if any(needs[1:5]) or needs[6]:
            gW = grad.t().mm(phi)  # dL/dW (O, S * I)
            g_coeffs, g_scale = torch.empty_like(coeffs), torch.empty_like(scale)
            g_base_w = torch.empty_like(scale) if S > 2 * K else None
            _weights_call(coeffs, scale, None, None, None, None, gW, g_const, g_coeffs, g_scale, g_base_w)
        if theta is not None and needs[1]:  # back through the compile
            g_theta = torch.empty_like(theta)
            flat = theta.view(-1, *theta.shape[2:])
            _compile_call(flat, None, g_coeffs.view(2 * K + 1, -1), g_theta.view(flat.shape), saved, prog, K, threads)
            g_coeffs = None
        return g_x, g_theta, g_coeffs, g_scale, g_const, g_base_x, g_base_w, None


def _features_call(x, phi, g_phi, g_x, sig, K, silu, threads) -> None:
    """qkan_fourier_features on phi (N, S, I) (slot 2K: silu(x) when `silu`, else untouched;
    sig (N, I): the sigmoid of x, kept for backward); backward when g_phi (N, S, I) is given."""
    N, I = x.shape
    args = abi.FourierFeaturesArgs(
        N=N, I=I, K=K, slots=phi.numel() // max(1, N * I), base=int(silu), backward=int(g_phi is not None), threads=threads,
        x=ptr(x), phi=ptr(phi), g_phi=ptr(g_phi), g_x=ptr(g_x), sig=ptr(sig),
    )
    call("qkan_fourier_features", x.dtype, args)


def _weights_call(coeffs, scale, const, base_w, W, bias, gW, g_const, g_coeffs, g_scale, g_base_w) -> None:
    """qkan_fourier_weights: W (O, S, I) and bias (O,) from coeffs (C, O', I'), or (gW given) the backward."""
    (O, I), (C, Og, Ig) = scale.shape, coeffs.shape
    S = (W if W is not None else gW).numel() // max(1, O * I)
    args = abi.FourierWeightsArgs(
        O=O, I=I, Og=Og, Ig=Ig, K=(C - 1) // 2, S=S, backward=int(gW is not None),
        coeffs=ptr(coeffs), scale=ptr(scale), cnst=ptr(const), base_w=ptr(base_w), W=ptr(W), bias=ptr(bias),
        g_W=ptr(gW), g_const=ptr(g_const), g_coeffs=ptr(g_coeffs), g_scale=ptr(g_scale), g_base_w=ptr(g_base_w),
    )
    call("qkan_fourier_weights", scale.dtype, args)


def closed_form_layer(
    x: torch.Tensor,
    scale: torch.Tensor,
    const: torch.Tensor,
    base: tuple[torch.Tensor | str, torch.Tensor] | None = None,
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
        base: (base_x (N, I) or "silu" (computed natively), base_w (O, I)) for a base term folded
            into the same product, or None.
        coeffs: (1 + 2K, O', I') = [a0; a_1..a_K; b_1..b_K], O', I' = O, I or 1 (grouping); or
        ansatz, theta: (O', I', n_slots, k), compiled inside the same autograd node (training).
    Returns:
        (N, O).
    """
    base_x, base_w = base if base is not None else (None, None)
    silu = isinstance(base_x, str)
    if silu and base_x != "silu":
        raise ValueError(f"`base` must hold a tensor or 'silu'; got {base_x!r}")
    theta = None if theta is None else theta.contiguous()
    coeffs = None if coeffs is None else coeffs.contiguous()
    base_w = None if base_w is None else base_w.contiguous()
    config = (None if theta is None else ansatz, silu, torch.get_num_threads())
    return _ClosedFormLayer.apply(
        x.contiguous(), theta, coeffs, scale.contiguous(), const.contiguous(), None if silu else base_x, base_w, config
    )
