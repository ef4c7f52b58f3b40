"""Closed-form DARUAN evaluation: compile circuit parameters into Fourier coefficients.

In the eigenframe of its Pauli, every data rotation is diag(1, v) with v = e^{i phi}, up to a
global phase (qkan.simulators.gates.encoding_frame). Carrying the amplitudes as polynomials in
v through the circuit and pairing them in <Z> gives

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

import torch
import torch.nn.functional as F

from qkan.circuits.ansatz import Ansatz
from qkan.simulators.gates import encoding_frame, z_observable

__all__ = ["compile_coefficients", "frequency_vectors", "fourier_features", "FourierEvaluator", "MAX_INPUT_REPS"]

#: per-input trainable encodings compile in O(4^R) per edge; beyond this the SU(2) path is used
MAX_INPUT_REPS = 5


@functools.lru_cache(maxsize=None)
def _class_matrix(reps: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """0/1 matrix (K*K, n_classes) summing pair products G[j, k] into frequency classes (per-input encoding).

    Bit l of the amplitude index j is rep l's power of v_l, so the pair (j, k) carries the
    frequency vector m = bits(k) - bits(j); pairs whose m is the conjugate of a kept one are dropped.
    """
    vectors = frequency_vectors(reps)
    lookup = {tuple(v): c + 1 for c, v in enumerate(vectors.tolist())}
    lookup[(0,) * reps] = 0
    K = 2**reps
    bits = [[(idx >> l) & 1 for l in range(reps)] for idx in range(K)]
    S = torch.zeros(K * K, len(vectors) + 1, dtype=dtype)
    for j in range(K):
        for k in range(K):
            cls = lookup.get(tuple(bk - bj for bj, bk in zip(bits[j], bits[k])))
            if cls is not None:
                S[j * K + k, cls] = 1
    return S.to(device)


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
    psi0, V, Fw = encoding_frame(ansatz, theta, reps)  # data rotations are diag(1, v), v = e^{i w x}
    Q = z_observable(Fw)  # (2, 2, *edge)
    c = psi0.unsqueeze(1)  # (2, K, *edge): coefficient of v^j (fixed) or of rep-bit pattern j (multi)
    for l in range(reps):
        if l:
            c = (V[l - 1].unsqueeze(2) * c.unsqueeze(0)).sum(1)  # V_l on every coefficient
        lo, hi = c[0], c[1]  # (K, *edge): the v^0 and v^1 parts of this rotation
        if enc_bias is not None:
            b = enc_bias[..., l]
            hi = hi * torch.polar(torch.ones_like(b), b)
        lo, hi = torch.broadcast_tensors(lo, hi)
        zero = torch.zeros_like(lo)
        if multi:  # bit l of the index = 1 where rep l contributed v_l
            c = torch.stack([torch.cat([lo, zero]), torch.cat([zero, hi])])
        else:  # v^1 moves the coefficient one power up
            c = torch.stack([torch.cat([lo, zero[:1]]), torch.cat([zero[:1], hi])])
    Qc = (Q.unsqueeze(2) * c.unsqueeze(0)).sum(1)  # (2, K, *edge)
    if multi:
        G = (c.conj().unsqueeze(2) * Qc.unsqueeze(1)).sum(0)  # (K, K, *edge): c_j^dag Q c_k
        S = _class_matrix(reps, theta.dtype, theta.device)  # (K*K, n_classes)
        g = torch.tensordot(S, torch.view_as_real(G.flatten(0, 1)), dims=([0], [0]))  # (n_classes, *edge, 2)
    else:  # g_n = sum_j c_j^dag Q c_{j+n}: the n-th diagonal of G
        K = c.shape[1]
        g = torch.view_as_real(torch.stack([(c[:, : K - n].conj() * Qc[:, n:]).sum((0, 1)) for n in range(K)]))
    g = g.movedim(0, -2)  # (*edge, n_classes, 2)
    return g[..., 0, 0], 2 * g[..., 1:, 0], -2 * g[..., 1:, 1]


class _FourierFeatures(torch.autograd.Function):
    """Phi = [cos(Omega_ki x_i); sin(Omega_ki x_i)]: x (N, I), freq (K, I) -> (N, 2K, I).

    Inputs stay the innermost (contiguous) dimension, so every pass is a plain vector loop.
    Backward reads dPhi/dx from Phi itself, so only Phi, x and freq are kept.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, freq: torch.Tensor) -> torch.Tensor:
        angles = x.unsqueeze(1) * freq  # (N, K, I)
        K = freq.shape[0]
        phi = torch.empty(x.shape[0], 2 * K, x.shape[1], dtype=x.dtype, device=x.device)
        torch.cos(angles, out=phi[:, :K])
        torch.sin(angles, out=phi[:, K:])
        ctx.save_for_backward(x, freq, phi)
        return phi

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, freq, phi = ctx.saved_tensors
        K = freq.shape[0]
        # d cos / d angle = -sin, d sin / d angle = cos
        g_angle = grad[:, K:] * phi[:, :K] - grad[:, :K] * phi[:, K:]  # (N, K, I)
        grad_x = (g_angle * freq).sum(1) if ctx.needs_input_grad[0] else None
        grad_freq = (g_angle * x.unsqueeze(1)).sum(0) if ctx.needs_input_grad[1] else None
        return grad_x, grad_freq


def fourier_features(x: torch.Tensor, freq: torch.Tensor) -> torch.Tensor:
    """Fourier feature map: x (N, I), freq (K,) or (K, I) -> (N, 2K, I) = [cos(Omega x); sin(Omega x)]."""
    if freq.dim() == 1:
        freq = freq.unsqueeze(-1).expand(-1, x.shape[-1])
    return _FourierFeatures.apply(x, freq)


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

    def _compiled(self, layer) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(a0 (O, I), ab (O, 2K, I), freq (K,) or (K, I)) for the layer's parameters."""
        multi = layer.encoding == "input"
        bias = layer.enc_bias if multi else None
        a0, a, b = compile_coefficients(layer.ansatz, layer.theta, layer.reps, bias, multi)
        shape = (layer.out_dim, layer.in_dim)
        ab = torch.cat([a, b], dim=-1).expand(*shape, -1).movedim(-1, 1)  # (O, 2K, I)
        if multi:
            m = frequency_vectors(layer.reps).to(layer.theta)  # (K, R)
            freq = m @ layer.enc_weight[0].T  # (K, I): Omega_m for input i
        else:
            freq = torch.arange(1, layer.reps + 1, dtype=layer.theta.dtype, device=layer.theta.device)
        return a0.expand(shape), ab, freq

    def edge_outputs(self, layer, x: torch.Tensor) -> torch.Tensor:
        """(N, I) -> (N, O, I): f_ji(x_i)."""
        a0, ab, freq = self._compiled(layer)
        phi = fourier_features(x, freq)  # (N, 2K, I)
        return torch.einsum("nki,oki->noi", phi, ab) + a0

    def forward(self, layer, x: torch.Tensor) -> torch.Tensor:
        """(N, I) -> (N, O) as F.linear(Phi (N, 2K*I), W (O, 2K*I)) plus the base term."""
        a0, ab, freq = self._compiled(layer)
        scale, const = layer.edge_weights()  # (O, I), (O,)
        W = (scale.unsqueeze(1) * ab).reshape(layer.out_dim, -1)  # (O, 2K*I)
        bias = const + (scale * a0).sum(-1)  # (O,)
        phi = fourier_features(x, freq).reshape(x.shape[0], -1)  # (N, 2K*I)
        return F.linear(phi, W, bias) + layer.base_term(x)
