"""Closed-form DARUAN evaluation: compile circuit parameters into Fourier coefficients.

In the eigenframe of its Pauli, every data rotation is diag(1, v) with v = e^{i phi}, up to a
global phase (qkan.circuits.gates.encoding_frame). The amplitudes are polynomials in v, and
pairing them in <Z> gives

    fixed encoding (w_l = 1):        f(x) = a_0 + sum_{n=1..R} a_n cos(n x) + b_n sin(n x)
    per-input encoding (w_l trained): f(x) = a_0 + sum_m a_m cos(Omega_m x) + b_m sin(Omega_m x),
                                      Omega_m = sum_l m_l w_l, m in {-1, 0, 1}^R (one of +-m kept)

A trigonometric polynomial is fixed by its values at a few points, so the compile evaluates
each edge there (2R+1 points, or 3^R for per-input encodings) with the SU(2) path and applies
one real DFT (qkan.simulators.fourier_sampling; on CPU a native kernel for the fixed encoding): O(R^2) or O(R 3^R) per edge, independent of the batch, exact and differentiable
by autograd. A whole layer is then one feature map plus one matrix product; no tensor of size
batch x out x in exists in forward or backward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qkan.circuits.ansatz import Ansatz
from qkan.simulators.base import Evaluator, transformed
from qkan.simulators.fourier_sampling import sampled_coefficients

__all__ = ["compile_coefficients", "compile_matrix", "fourier_features", "FourierEvaluator", "MAX_INPUT_REPS"]

#: per-input trainable encodings compile in O(R 3^R) per edge; beyond this the SU(2) path is used
MAX_INPUT_REPS = 5


def compile_coefficients(
    ansatz: Ansatz, theta: torch.Tensor, reps: int, enc_bias: torch.Tensor | None = None, multi: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fourier coefficients of DARUAN edges (measure <Z>).

    The edge function is evaluated by the SU(2) path at the few sample points that determine
    it (see _sampling), then one fixed real DFT reads off the coefficients: exact, batch
    independent and differentiable to every order.

    Args:
        ansatz: a closed-form ansatz (no arccos encoding).
        theta: (*edge, n_slots, k) angles.
        reps: R.
        enc_bias: (*edge, R) encoding biases b_l or None (zero).
        multi: False for w_l = 1 (integer frequencies 1..R); True keeps one coefficient per
            frequency vector m (frequency_vectors(R)) for trainable w.
    Returns:
        a0 (*edge), a (*edge, n_freq), b (*edge, n_freq) real, with f = a0 + sum a cos(Omega x) + b sin(Omega x).
    """
    assert ansatz.closed_form, "compile_coefficients needs a closed-form ansatz"
    if enc_bias is None and not multi:
        coeffs = compile_matrix(ansatz, theta, reps)
    else:
        coeffs = sampled_coefficients(ansatz, theta, reps, enc_bias, multi)
    coeffs = coeffs.movedim(0, -1)  # (*edge, 1 + 2K)
    K = (coeffs.shape[-1] - 1) // 2
    return coeffs[..., 0], coeffs[..., 1 : K + 1], coeffs[..., K + 1 :]


def compile_matrix(ansatz: Ansatz, theta: torch.Tensor, reps: int) -> torch.Tensor:
    """Fixed-encoding coefficients as one tensor: theta (*edge, n_slots, k) -> (1 + 2R, *edge) = [a0; a_1..a_R; b_1..b_R].

    On CPU (float32/float64) the native kernel computes them in one autograd node, exactly, by
    carrying the Bloch vector's Fourier coefficients through the circuit (edges as SIMD lanes);
    elsewhere (and under torch.func / torch.compile) the sampled DFT (sampled_coefficients).
    """
    if not _use_native(theta):
        return sampled_coefficients(ansatz, theta, reps)
    from qkan.simulators.native.fourier_ops import fourier_compile

    return fourier_compile(ansatz, theta, reps)


def _use_native(t: torch.Tensor) -> bool:
    """The native kernels run for t (native.ops.supports) and are available."""
    from qkan.simulators import native
    from qkan.simulators.native.ops import supports

    return supports(t) and native.available()


def fourier_features(x: torch.Tensor, freq: torch.Tensor) -> torch.Tensor:
    """Fourier feature map: x (N, I), freq (K,) or (K, I) -> (N, 2K, I) = [cos(Omega x); sin(Omega x)].

    Inputs stay the innermost (contiguous) dimension, so every pass is a plain vector loop; plain
    torch operations, so every derivative order, forward mode and torch.func transforms work.
    """
    if freq.dim() == 1:
        freq = freq.unsqueeze(-1)
    angles = x.unsqueeze(-2) * freq  # (N, K, I)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-2)


def _same_values(kept: torch.Tensor, t: torch.Tensor) -> bool:
    """t holds exactly the values (dtype, device, shape) of the copy `kept`."""
    return kept.dtype == t.dtype and kept.device == t.device and kept.shape == t.shape and torch.equal(kept, t)


class FourierEvaluator(Evaluator):
    """Closed form: one feature map and one matrix product per layer (measure "z" only).

    While no gradient is needed and the angles are unchanged (inference, acting in RL), the
    compiled coefficients are reused from a cache on this evaluator.
    """

    name = "fourier"
    supports_transforms = True

    def __init__(self) -> None:
        self._cache: tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]] | None = None

    def unsupported(self, layer) -> str | None:
        """Why this evaluator cannot run `layer`, or None."""
        if not layer.ansatz.closed_form:
            return f"ansatz {layer.ansatz.name!r} has an arccos encoding, which has no finite Fourier series"
        if layer.measure != "z":
            return f"measure {layer.measure!r} is not a trigonometric polynomial; only 'z' has a closed form"
        if layer.encoding == "edge":
            return "per-edge trainable encodings need per-edge features; use the 'su2' evaluator"
        if layer.encoding == "input" and layer.reps > MAX_INPUT_REPS:
            return f"per-input encodings compile in O(R 3^R); reps={layer.reps} > {MAX_INPUT_REPS}"
        return None

    def _series(self, layer):
        """layer.fourier_series(compact=True), reused while no gradient is needed and the parameters' values are
        unchanged (inference, acting in RL).

        The cache keeps a copy of the parameters it was compiled from and compares values, so no
        route of changing parameters (optimizer steps, ``.data``, ``copy_``, load_state_dict,
        functional_call) can be served stale coefficients. The comparison costs 2-23 us where a
        recompile costs 60-180 us (no-grad calls of 84->16 to 64->64 layers, reps 3; the "cache"
        rows of benchmarks/layer_speed.py). On CUDA the cache is not used: a comparison would
        synchronise with the host on every call.
        """
        tensors = tuple(t for t in (layer.theta, layer.enc_weight, layer.enc_bias) if t is not None)
        if (torch.is_grad_enabled() and any(t.requires_grad for t in tensors)) or transformed() or layer.theta.device.type != "cpu":
            # off the CPU comparing values would synchronise with the host on every call: recompile (asynchronous)
            return layer.fourier_series(compact=True)
        if self._cache is None or len(self._cache[0]) != len(tensors) or not all(map(_same_values, self._cache[0], tensors)):
            self._cache = (tuple(t.detach().clone() for t in tensors), layer.fourier_series(compact=True))
        return self._cache[1]

    def _compiled(self, layer) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(a0 (O, I), ab (O, 2K, I), freq (K,) or (K, I)) for the layer's parameters."""
        a0, a, b, omega = self._series(layer)  # (O', I'), (O', I', K) x 2, (1, I, K)
        shape = (layer.out_dim, layer.in_dim)
        ab = torch.cat([a, b], dim=-1).expand(*shape, -1).movedim(-1, 1)  # (O, 2K, I)
        freq = omega[0].T if layer.encoding == "input" else omega[0, 0]  # (K, I) or (K,): one row per input
        return a0.expand(shape), ab, freq

    def edge_outputs(self, layer, x: torch.Tensor) -> torch.Tensor:
        """(N, I) -> (N, O, I): f_ji(x_i)."""
        a0, ab, freq = self._compiled(layer)
        phi = fourier_features(x, freq)  # (N, 2K, I)
        return torch.einsum("nki,oki->noi", phi, ab) + a0

    def forward(self, layer, x: torch.Tensor) -> torch.Tensor:
        """(N, I) -> (N, O) as F.linear(Phi (N, 2K*I), W (O, 2K*I)) plus the base term."""
        if layer.encoding == "fixed" and _use_native(x) and not torch.is_autocast_enabled(x.device.type):
            # one native node: W, the features and the product (under autocast the torch path runs the product in bf16/fp16)
            from qkan.simulators.native.fourier_ops import closed_form_layer

            scale, const = layer.edge_weights()
            base = ("silu", layer.base_weights()) if layer.base == "silu" else layer.base_parts(x)  # silu: computed natively
            if torch.is_grad_enabled() and layer.theta.requires_grad:  # the compile runs inside the same node
                return closed_form_layer(x, scale, const, base, ansatz=layer.ansatz, theta=layer.theta)
            a0, a, b, _ = self._series(layer)  # the cached compile
            coeffs = torch.cat([a0.unsqueeze(-1), a, b], dim=-1).movedim(-1, 0)  # (1 + 2R, O', I')
            return closed_form_layer(x, scale, const, base, coeffs=coeffs)
        a0, ab, freq = self._compiled(layer)
        scale, const = layer.edge_weights()  # (O, I), (O,)
        W = (scale.unsqueeze(1) * ab).reshape(layer.out_dim, -1)  # (O, 2K*I)
        bias = const + (scale * a0).sum(-1)  # (O,)
        phi = fourier_features(x, freq).reshape(x.shape[0], W.shape[1])  # (N, 2K*I)
        return F.linear(phi, W, bias) + layer.base_term(x)
