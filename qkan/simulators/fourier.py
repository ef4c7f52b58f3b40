"""Closed-form DARUAN evaluation: compile circuit parameters into Fourier coefficients.

Every data rotation is E(phi) = exp(-i phi P / 2) = u^-1 P_+ + u P_- with u = e^{i phi / 2}
and P_+- the projectors onto P's eigenvalues +-1. Carrying the amplitudes as Laurent
polynomials in u through the circuit and pairing them in <Z> gives

    fixed encoding (w_l = 1):        f(x) = a_0 + sum_{n=1..R} a_n cos(n x) + b_n sin(n x)
    per-input encoding (w_l trained): f(x) = a_0 + sum_m a_m cos(Omega_m x) + b_m sin(Omega_m x),
                                      Omega_m = sum_l m_l w_l, m in {-1, 0, 1}^R (one of +-m kept)

The compile costs O(R^2) (fixed) or O(4^R) (per-input) per edge, independent of the batch, and
is differentiable by autograd. A whole layer is then one feature map plus one matrix product;
no tensor of size batch x out x in exists in forward or backward.
"""

from __future__ import annotations

import functools
import itertools
import math

import torch
import torch.nn.functional as F

from qkan.circuits.ansatz import Ansatz
from qkan.simulators.gates import complex_dtype, pauli, rep_unitaries, rotation

__all__ = ["compile_coefficients", "frequency_vectors", "fourier_features", "FourierEvaluator", "MAX_INPUT_REPS"]

#: per-input trainable encodings compile in O(4^R) per edge; beyond this the SU(2) path is used
MAX_INPUT_REPS = 5


@functools.lru_cache(maxsize=None)
def _pair_classes(reps: int, multi: bool) -> tuple[torch.Tensor, int]:
    """Map each amplitude-index pair (j, k) to the frequency class it contributes to.

    Returns (classes (K*K,) int64 with -1 for dropped conjugate pairs, number of classes).
    Fixed encoding: index j is the exponent -R + 2j, class n = k - j for n >= 0.
    Per-input encoding: bit l of j is rep l's exponent sign, class = canonical m = bits(k) - bits(j).
    """
    if not multi:
        K = reps + 1
        j, k = torch.meshgrid(torch.arange(K), torch.arange(K), indexing="ij")
        n = (k - j).reshape(-1)
        return torch.where(n >= 0, n, torch.full_like(n, -1)), K
    vectors = frequency_vectors(reps)
    lookup = {tuple(v): c + 1 for c, v in enumerate(vectors.tolist())}
    lookup[(0,) * reps] = 0
    K = 2**reps
    bits = [[(idx >> l) & 1 for l in range(reps)] for idx in range(K)]
    classes = [lookup.get(tuple(bk - bj for bj, bk in zip(bits[j], bits[k])), -1) for j in range(K) for k in range(K)]
    return torch.tensor(classes), len(vectors) + 1


@functools.lru_cache(maxsize=None)
def frequency_vectors(reps: int) -> torch.Tensor:
    """The kept m in {-1, 0, 1}^R (first nonzero entry +1): (n_freq = (3^R - 1) / 2, R) int64."""
    kept = [m for m in itertools.product((0, 1, -1), repeat=reps) if any(m) and m[next(i for i, v in enumerate(m) if v)] == 1]
    return torch.tensor(kept, dtype=torch.int64)


def compile_coefficients(
    ansatz: Ansatz, theta: torch.Tensor, reps: int, enc_bias: torch.Tensor | None = None, multi: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fourier coefficients of DARUAN edges (measure <Z>).

    Args:
        ansatz: a closed-form ansatz (no arccos encoding).
        theta: (..., n_slots, k) angles.
        reps: R.
        enc_bias: (..., R) encoding biases b_l or None (zero).
        multi: False for w_l = 1 (integer frequencies 1..R); True keeps one coefficient per
            frequency vector m (frequency_vectors(R)) for trainable w.
    Returns:
        a0 (...), a (..., n_freq), b (..., n_freq) real, with f = a0 + sum a cos(Omega x) + b sin(Omega x).
    """
    assert ansatz.closed_form, "compile_coefficients needs a closed-form ansatz"
    cdtype = complex_dtype(theta.dtype)
    V, Fin = rep_unitaries(ansatz, theta, reps)  # (..., R, 2, 2), (..., 2, 2)
    if enc_bias is not None:
        V = rotation(ansatz.encoding_gate, enc_bias) @ V
    P = pauli(ansatz.encoding_gate[1], theta.dtype, theta.device)
    eye = torch.eye(2, dtype=cdtype, device=theta.device)
    p_plus, p_minus = (eye + P) / 2, (eye - P) / 2  # u^-1 and u parts of the data rotation
    r = 1 / math.sqrt(2)
    c = torch.tensor([[r, r]], dtype=cdtype, device=theta.device).expand(*V.shape[:-3], 1, 2)  # (..., K, 2)
    for l in range(reps):
        m = c @ V[..., l, :, :].transpose(-1, -2)  # (..., K, 2): V_l applied to every coefficient
        lo, hi = m @ p_plus.T, m @ p_minus.T
        if multi:
            c = torch.cat([lo, hi], dim=-2)  # index bit l = exponent sign of rep l
        else:
            c = F.pad(lo, (0, 0, 0, 1)) + F.pad(hi, (0, 0, 1, 0))  # exponent -1 stays at j, +1 moves to j+1
    c = c @ Fin.transpose(-1, -2)
    # G[j, k] = c_j^dag Z c_k: (..., K, K)
    G = c[..., :, None, 0].conj() * c[..., None, :, 0] - c[..., :, None, 1].conj() * c[..., None, :, 1]
    classes, n_classes = _pair_classes(reps, multi)
    classes = classes.to(theta.device)
    keep = classes >= 0
    g = torch.zeros(*G.shape[:-2], n_classes, dtype=cdtype, device=theta.device)
    g = g.index_add(-1, classes[keep], G.flatten(-2)[..., keep])  # (..., n_classes)
    return g[..., 0].real, 2 * g[..., 1:].real, -2 * g[..., 1:].imag


class _FourierFeatures(torch.autograd.Function):
    """Phi = [cos(x_i Omega_ik), sin(x_i Omega_ik)]: x (N, I), freq (I, K) -> (N, I, 2K).

    Backward reads dPhi/dx from Phi itself, so only Phi and x are kept.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, freq: torch.Tensor) -> torch.Tensor:
        angles = x.unsqueeze(-1) * freq  # (N, I, K)
        K = freq.shape[-1]
        phi = torch.empty(*angles.shape[:-1], 2 * K, dtype=x.dtype, device=x.device)
        torch.cos(angles, out=phi[..., :K])
        torch.sin(angles, out=phi[..., K:])
        ctx.save_for_backward(x, freq, phi)
        return phi

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, freq, phi = ctx.saved_tensors
        K = freq.shape[-1]
        # d cos / d angle = -sin, d sin / d angle = cos
        g_angle = grad[..., K:] * phi[..., :K] - grad[..., :K] * phi[..., K:]  # (N, I, K)
        grad_x = (g_angle * freq).sum(-1) if ctx.needs_input_grad[0] else None
        grad_freq = None
        if ctx.needs_input_grad[1]:
            grad_freq = torch.einsum("nik,ni->ik", g_angle, x).reshape(freq.shape)
        return grad_x, grad_freq


def fourier_features(x: torch.Tensor, freq: torch.Tensor) -> torch.Tensor:
    """Fourier feature map: x (N, I), freq (K,) or (I, K) -> (N, I, 2K) = [cos(x Omega), sin(x Omega)]."""
    return _FourierFeatures.apply(x, freq.expand(x.shape[-1], freq.shape[-1]) if freq.dim() == 1 else freq)


class FourierEvaluator:
    """Closed form: one feature map and one matrix product per layer (measure "z" only)."""

    name = "fourier"
    supports_grad = True

    def unsupported(self, layer) -> str | None:
        """Why this evaluator cannot run `layer`, or None."""
        if not layer.ansatz.closed_form:
            return f"ansatz {layer.ansatz.name!r} has an arccos encoding, which has no finite Fourier series"
        if layer.measure != "z":
            return f"measure {layer.measure!r} is not a trigonometric polynomial; only 'z' has a closed form"
        if layer.encoding == "edge":
            return "per-edge trainable encodings need per-edge features; use the 'su2' evaluator"
        if layer.encoding == "input" and layer.reps > MAX_INPUT_REPS:
            return f"per-input encodings compile in O(4^R); reps={layer.reps} > {MAX_INPUT_REPS}"
        return None

    def _compiled(self, layer) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(a0 (O, I), ab (O, I, 2K), freq (K,) or (I, K)) for the layer's parameters."""
        multi = layer.encoding == "input"
        bias = layer.enc_bias if multi else None
        a0, a, b = compile_coefficients(layer.ansatz, layer.theta, layer.reps, bias, multi)
        shape = (layer.out_dim, layer.in_dim)
        a0 = a0.expand(shape)
        ab = torch.cat([a, b], dim=-1).expand(*shape, -1)  # (O, I, 2K)
        if multi:
            m = frequency_vectors(layer.reps).to(layer.theta)  # (K, R)
            freq = layer.enc_weight[0] @ m.T  # (I, K)
        else:
            freq = torch.arange(1, layer.reps + 1, dtype=layer.theta.dtype, device=layer.theta.device)
        return a0, ab, freq

    def edge_outputs(self, layer, x: torch.Tensor) -> torch.Tensor:
        """(N, I) -> (N, O, I): f_ji(x_i)."""
        a0, ab, freq = self._compiled(layer)
        phi = fourier_features(x, freq)  # (N, I, 2K)
        return torch.einsum("nik,oik->noi", phi, ab) + a0

    def forward(self, layer, x: torch.Tensor) -> torch.Tensor:
        """(N, I) -> (N, O) as F.linear(Phi (N, I*2K), W (O, I*2K)) plus the base term."""
        a0, ab, freq = self._compiled(layer)
        scale, const = layer.edge_weights()  # (O, I), (O,)
        W = (scale.unsqueeze(-1) * ab).reshape(layer.out_dim, -1)  # (O, I*2K)
        bias = const + (scale * a0).sum(-1)  # (O,)
        phi = fourier_features(x, freq).reshape(x.shape[0], -1)  # (N, I*2K)
        return F.linear(phi, W, bias) + layer.base_term(x)
