"""Closed-form DARUAN evaluation: compile circuit parameters into Fourier coefficients.

In the eigenframe of its Pauli, every data rotation is diag(1, v) with v = e^{i phi}, up to a
global phase (qkan.circuits.gates.encoding_frame). The amplitudes are polynomials in v, and
pairing them in <Z> gives

    fixed encoding (w_l = 1):        f(x) = a_0 + sum_{n=1..R} a_n cos(n x) + b_n sin(n x)
    per-input encoding (w_l trained): f(x) = a_0 + sum_m a_m cos(Omega_m x) + b_m sin(Omega_m x),
                                      Omega_m = sum_l m_l w_l, m in {-1, 0, 1}^R (one of +-m kept)

A trigonometric polynomial is fixed by its values at a few points, so the compile evaluates
each edge there (2R+1 points, or 3^R for per-input encodings) with the SU(2) path and applies
one real DFT: O(R^2) or O(R 3^R) per edge, independent of the batch, exact and differentiable
by autograd. A whole layer is then one feature map plus one matrix product; no tensor of size
batch x out x in exists in forward or backward.
"""

from __future__ import annotations

import functools
import itertools
import math

import torch
import torch.nn.functional as F

from qkan.circuits.ansatz import Ansatz
from qkan.simulators import su2
from qkan.simulators.base import Evaluator, transformed

__all__ = ["compile_coefficients", "compile_matrix", "frequency_vectors", "fourier_features", "FourierEvaluator", "MAX_INPUT_REPS"]

#: per-input trainable encodings compile in O(R 3^R) per edge; beyond this the SU(2) path is used
MAX_INPUT_REPS = 5


@functools.lru_cache(maxsize=None)
def frequency_vectors(reps: int) -> torch.Tensor:
    """The kept m in {-1, 0, 1}^R (first nonzero entry +1): (n_freq = (3^R - 1) / 2, R) int64."""
    kept = [m for m in itertools.product((0, 1, -1), repeat=reps) if any(m) and m[next(i for i, v in enumerate(m) if v)] == 1]
    return torch.tensor(kept, dtype=torch.int64)


@functools.lru_cache(maxsize=None)
def _sampling(reps: int, multi: bool, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample points and the real DFT that reads the coefficients off them, exactly.

    fixed: every rep sees the same x; f has degree R, so the S = 2R+1 points x_s = 2 pi s / S
        determine it. multi: rep l sees its own angle t_l and f has degree 1 in each, so the
        3^R grid t in (2 pi / 3) {0, 1, 2}^R determines it.
    Returns:
        points (S, R): the data-rotation angle of every rep at every sample.
        D (1 + 2K, S): [a_0; a_1..a_K; b_1..b_K] = D @ f(points).
    """
    if multi:
        points = torch.tensor(list(itertools.product(range(3), repeat=reps)), dtype=torch.float64) * (2 * math.pi / 3)
        args = points @ frequency_vectors.__wrapped__(reps).double().T  # (S, K): m . t
    else:
        x = torch.arange(2 * reps + 1, dtype=torch.float64) * (2 * math.pi / (2 * reps + 1))
        points = x.unsqueeze(1).expand(-1, reps)
        args = x.unsqueeze(1) * torch.arange(1, reps + 1, dtype=torch.float64)  # (S, K): n x
    S = points.shape[0]
    D = torch.cat([torch.full((1, S), 1 / S, dtype=torch.float64), 2 / S * torch.cos(args).T, 2 / S * torch.sin(args).T])
    return points.to(dtype=dtype, device=device), D.to(dtype=dtype, device=device)


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


def sampled_coefficients(
    ansatz: Ansatz, theta: torch.Tensor, reps: int, enc_bias: torch.Tensor | None = None, multi: bool = False
) -> torch.Tensor:
    """compile_coefficients' torch path as one tensor (1 + 2K, *edge) = [a0; a_1..a_K; b_1..b_K]:
    the SU(2) edge values at the sample points, then the real DFT."""
    sampling = _sampling.__wrapped__ if torch.compiler.is_compiling() else _sampling  # traced tensors must not be cached
    points, D = sampling(reps, multi, theta.dtype, theta.device)
    edge_dims = [1] * (theta.dim() - 2)
    angles = []
    for l in range(reps):
        t = points[:, l].reshape(-1, *edge_dims)  # (S, 1, ..., 1)
        angles.append(t if enc_bias is None else t + enc_bias[..., l])
    if torch.compiler.is_exporting():  # real arithmetic only: exported graphs (ONNX) take no complex tensors
        f = _bloch_z(ansatz, theta, reps, angles)
    else:
        f = su2.run(su2.prepare(ansatz, theta, reps, "z"), angles, False, "z")  # (S, *edge)
    return torch.tensordot(D, f, dims=1)


def _rotate(r: tuple, gate: str, angle) -> tuple:
    """The Bloch vector r = (x, y, z) after gate ("RX", "RY", "RZ" by `angle`; "H", "X", "Z")."""
    x, y, z = r
    if gate == "H":
        return z, -y, x
    if gate == "X":
        return x, -y, -z
    if gate == "Z":
        return -x, -y, z
    c, s = torch.cos(angle), torch.sin(angle)
    if gate == "RZ":
        return x * c - y * s, x * s + y * c, z
    if gate == "RY":
        return x * c + z * s, y, z * c - x * s
    return x, y * c - z * s, y * s + z * c  # RX


def _bloch_z(ansatz: Ansatz, theta: torch.Tensor, reps: int, angles: list) -> torch.Tensor:
    """<Z> of every edge at every sample by real rotations of the Bloch vector of H|0> (+x):
    theta (*edge, n_slots, k), R angles broadcasting to (S, *edge) -> (S, *edge)."""
    one = torch.ones_like(angles[0] + theta[..., 0, 0])
    r = (one, 0 * one, 0 * one)
    for slot in range(ansatz.n_slots(reps)):
        for gate in ansatz.rep_gates if slot < reps else ansatz.final_gates:
            r = _rotate(r, gate.name, None if gate.param is None else theta[..., slot, gate.param])
        if slot < reps:
            r = _rotate(r, ansatz.encoding_gate, angles[slot])
    return r[2]


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
        """layer.fourier_series(), reused while no gradient is needed and the parameters' values are
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
            return layer.fourier_series()
        if self._cache is None or len(self._cache[0]) != len(tensors) or not all(map(_same_values, self._cache[0], tensors)):
            self._cache = (tuple(t.detach().clone() for t in tensors), layer.fourier_series())
        return self._cache[1]

    def _compiled(self, layer) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(a0 (O, I), ab (O, 2K, I), freq (K,) or (K, I)) for the layer's parameters."""
        a0, a, b, omega = self._series(layer)  # (O, I), (O, I, K) x 3
        ab = torch.cat([a, b], dim=-1).movedim(-1, 1)  # (O, 2K, I)
        freq = omega[0].T if layer.encoding == "input" else omega[0, 0]  # (K, I) or (K,): one row per input
        return a0, ab, freq

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
            coeffs = torch.cat([a0.unsqueeze(-1), a, b], dim=-1).movedim(-1, 0)  # (1 + 2R, O, I)
            return closed_form_layer(x, scale, const, base, coeffs=coeffs)
        a0, ab, freq = self._compiled(layer)
        scale, const = layer.edge_weights()  # (O, I), (O,)
        W = (scale.unsqueeze(1) * ab).reshape(layer.out_dim, -1)  # (O, 2K*I)
        bias = const + (scale * a0).sum(-1)  # (O,)
        phi = fourier_features(x, freq).reshape(x.shape[0], W.shape[1])  # (N, 2K*I)
        return F.linear(phi, W, bias) + layer.base_term(x)
