"""QKANLayer: a Kolmogorov-Arnold layer whose edge functions are DARUAN circuits.

    y_j = sum_i m_ji [ c_ji (f_ji(x_i) + d_ji) + beta_ji base(x_i) ]  (+ bias_j)

f_ji is a single-qubit data re-uploading circuit (shared/design/daruan.md, arXiv 2509.14026).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from qkan._checks import check_choice, check_int
from qkan.circuits.ansatz import get_ansatz
from qkan.simulators import make_evaluator

__all__ = ["QKANLayer", "BASES", "ENCODINGS", "GROUPS", "MEASURES"]

BASES: dict[str, Callable[[torch.Tensor], torch.Tensor] | None] = {
    "silu": F.silu,
    "identity": lambda x: x,
    "tanh": torch.tanh,
    "gelu": F.gelu,
    "relu": F.relu,
    "none": None,
}
ENCODINGS = ("fixed", "edge", "input")
GROUPS = (None, "input", "output", "all")
MEASURES = ("z", "amplitude")


class QKANLayer(nn.Module):
    r"""Quantum-classical KAN layer with a DARUAN on every edge.

    Args:
        in_dim: number of inputs I.
        out_dim: number of outputs O.
        reps: data re-uploading repetitions R (Fourier degree of each edge).
        ansatz: "pz" | "rpz" | "px" | "real" | "mix" (daruan.md).
        encoding: "fixed" (w=1, b=0) | "edge" (trainable w, b per edge and rep)
            | "input" (trainable per input and rep, shared by outputs).
        base: residual activation: "silu" | "identity" | "tanh" | "gelu" | "relu" | "none" | None
            or a callable on tensors.
        group: None (one circuit per edge) | "input" (outputs of an input share a circuit)
            | "output" (inputs of an output share one) | "all" (one circuit for the layer).
        evaluator: "auto" (closed form where it exists, else su2) | "fourier" | "su2"
            | "pennylane" | "qiskit".
        evaluator_options: keyword options for the evaluator (e.g. device, shots, backend).
        measure: "z" (<Z>, default) | "amplitude" (|alpha| - |beta|, the reference package's
            non-physical "fast measure"; SU(2) and circuit evaluators only).
        bias: add a trainable output bias.
        seed: seed for the parameter initialisation (None: torch's global generator).

    Shape:
        (*, in_dim) -> (*, out_dim)

    Attributes:
        theta: (O', I', n_slots, k) angles, uniform in [-pi, pi); O', I' are 1 where grouped.
        enc_weight, enc_bias: (O, I, R) for encoding="edge", (1, I, R) for "input"; init 1, 0.
        post_weight (c), post_bias (d): (O, I), init 1 and 0.
        base_weight (beta): (O, I), uniform in [-1, 1] / sqrt(I); None when base is "none".
        mask: buffer (O, I) of 0/1 used by pruning.

    Example:
        >>> layer = QKANLayer(2, 3, reps=2, seed=0)
        >>> layer(torch.rand(5, 2)).shape
        torch.Size([5, 3])
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        reps: int = 3,
        *,
        ansatz: str = "pz",
        encoding: str = "fixed",
        base: str | Callable | None = "silu",
        group: str | None = None,
        evaluator: str = "auto",
        evaluator_options: dict | None = None,
        measure: str = "z",
        bias: bool = False,
        seed: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_int("in_dim", in_dim)
        check_int("out_dim", out_dim)
        check_int("reps", reps)
        self.ansatz = get_ansatz(ansatz)
        check_choice("encoding", encoding, ENCODINGS)
        check_choice("group", group, GROUPS)
        check_choice("measure", measure, MEASURES)
        if base is None:
            base = "none"
        if not callable(base):
            check_choice("base", base, list(BASES))
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"`seed` must be an int or None; got {seed!r}")
        self.in_dim, self.out_dim, self.reps = in_dim, out_dim, reps
        self.encoding, self.group, self.measure, self.seed = encoding, group, measure, seed
        self.base = base
        self._base_fn = base if callable(base) else BASES[base]
        factory = {"device": device, "dtype": dtype}
        O, I = out_dim, in_dim
        tO = 1 if group in ("input", "all") else O
        tI = 1 if group in ("output", "all") else I
        self.theta = nn.Parameter(torch.empty(tO, tI, *self.ansatz.theta_shape(reps), **factory))
        if encoding == "fixed":
            self.register_parameter("enc_weight", None)
            self.register_parameter("enc_bias", None)
        else:
            eO = O if encoding == "edge" else 1
            self.enc_weight = nn.Parameter(torch.empty(eO, I, reps, **factory))
            self.enc_bias = nn.Parameter(torch.empty(eO, I, reps, **factory))
        self.post_weight = nn.Parameter(torch.empty(O, I, **factory))
        self.post_bias = nn.Parameter(torch.empty(O, I, **factory))
        if self._base_fn is None:
            self.register_parameter("base_weight", None)
        else:
            self.base_weight = nn.Parameter(torch.empty(O, I, **factory))
        self.bias = nn.Parameter(torch.empty(O, **factory)) if bias else None
        self.register_buffer("mask", torch.ones(O, I, **factory))
        self.set_evaluator(evaluator, **(evaluator_options or {}))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw theta and the base weights; encodings to w=1, b=0; c=1, d=0, mask=1."""
        gen = None
        if self.seed is not None:
            gen = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            theta = (torch.rand(self.theta.shape, generator=gen, dtype=torch.float64) * 2 - 1) * math.pi
            self.theta.copy_(theta)
            if self.enc_weight is not None:
                self.enc_weight.fill_(1.0)
                self.enc_bias.zero_()
            self.post_weight.fill_(1.0)
            self.post_bias.zero_()
            if self.base_weight is not None:
                base = (torch.rand(self.base_weight.shape, generator=gen, dtype=torch.float64) * 2 - 1) / math.sqrt(self.in_dim)
                self.base_weight.copy_(base)
            if self.bias is not None:
                self.bias.zero_()
            self.mask.fill_(1.0)

    # ----------------------------------------------------------------------------- evaluators
    def set_evaluator(self, name: str = "auto", **options) -> QKANLayer:
        """Choose how the edges are evaluated; parameters are untouched. Returns self.

        Args:
            name: "auto" | "fourier" | "su2" | "pennylane" | "qiskit".
            **options: evaluator options. PennyLane: device, diff_method, shots, seed, plus
                device options such as backend=. Qiskit: backend, shots or precision,
                optimization_level, seed, max_pub_size, max_circuits_per_job, threads.
        """
        if name == "auto":  # resolved once: it depends only on the layer's fixed settings
            if options:
                raise ValueError(f"evaluator 'auto' takes no options; got {sorted(options)}")
            fourier = make_evaluator("fourier")
            self._evaluator = fourier if fourier.unsupported(self) is None else make_evaluator("su2")
        else:
            evaluator = make_evaluator(name, **options)
            reason = evaluator.unsupported(self)
            if reason:
                raise ValueError(f"evaluator {name!r} cannot run this layer: {reason}")
            self._evaluator = evaluator
        self._evaluator_name = name
        return self

    @property
    def evaluator(self) -> str:
        """Name of the evaluator in use ("auto" resolved to "fourier" or "su2")."""
        return self.get_evaluator().name

    def get_evaluator(self):
        """The evaluator object in use ("auto" resolved): its options and counters, e.g. Qiskit's jobs_submitted."""
        return self._evaluator

    # ------------------------------------------------------------------------------ the formula
    def encoding_parameters(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(enc_weight, enc_bias), (None, None) for the fixed encoding."""
        return self.enc_weight, self.enc_bias

    def edge_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale = m * c (O, I), const (O,)): y = sum_i scale_ji f_ji + const + base term."""
        scale = self.mask * self.post_weight
        const = (scale * self.post_bias).sum(-1)
        if self.bias is not None:
            const = const + self.bias
        return scale, const

    def base_term(self, x: torch.Tensor) -> torch.Tensor | float:
        """sum_i m_ji beta_ji base(x_i): (N, I) -> (N, O), or 0. without a base."""
        if self._base_fn is None:
            return 0.0
        return F.linear(self._base_fn(x), self.mask * self.base_weight)

    def combine_edges(self, f: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The layer formula from edge values: f (N, O, I), x (N, I) -> (N, O)."""
        scale, const = self.edge_weights()
        return torch.einsum("noi,oi->no", f, scale) + const + self.base_term(x)

    def _check_input(self, x) -> torch.Tensor:
        """Validate x (*, I) and flatten it to (N, I)."""
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"`x` must be a torch.Tensor; got {type(x).__name__}")
        if x.dim() < 1 or x.shape[-1] != self.in_dim:
            raise ValueError(f"`x` must have shape (*, {self.in_dim}); got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"`x` must be a floating-point tensor; got {x.dtype}")
        if x.dtype != self.theta.dtype and torch.is_autocast_enabled(x.device.type):
            x = x.to(self.theta.dtype)  # autocast: features in the parameters' precision, matmuls in bf16/fp16
        if x.dtype != self.theta.dtype:
            raise ValueError(
                f"`x` has dtype {x.dtype} but the layer's parameters are {self.theta.dtype}; "
                f"convert one of them (e.g. layer.to({x.dtype}))"
            )
        if not torch.isfinite(x).all():
            raise ValueError("`x` contains NaN or infinite values")
        x = x.reshape(-1, self.in_dim)
        if self.ansatz.arccos:
            with torch.no_grad():
                w, b = self.encoding_parameters()
                phi = x if w is None else w * x[:, None, :, None] + b  # (N, I) or (N, O', I, R)
                worst = phi.abs().max().item() if phi.numel() else 0.0
            if worst > 1:
                raise ValueError(
                    f"`x` gives encoding angles phi = w*x + b outside [-1, 1] (max |phi| = {worst:.4g}); "
                    "the 'px' ansatz applies arccos(phi): rescale the inputs into [-1, 1]"
                )
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(*, in_dim) -> (*, out_dim)."""
        x2 = self._check_input(x)
        y = self.get_evaluator().forward(self, x2)
        return y.reshape(*x.shape[:-1], self.out_dim)

    def edge_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """f_ji(x_i) before any weights: (*, in_dim) -> (*, out_dim, in_dim)."""
        x2 = self._check_input(x)
        f = self.get_evaluator().edge_outputs(self, x2)
        return f.reshape(*x.shape[:-1], self.out_dim, self.in_dim)

    def fourier_coefficients(self) -> torch.Tensor:
        """Exact Fourier series of every edge: (O, I, 2R+1) = [a_0, a_1..a_R, b_1..b_R].

        f_ji(x) = a_0 + sum_n a_n cos(n x) + b_n sin(n x). Needs a closed-form ansatz, the fixed
        encoding and measure "z".
        """
        from qkan.simulators.fourier import compile_coefficients

        if not self.ansatz.closed_form or self.encoding != "fixed" or self.measure != "z":
            raise ValueError(
                "fourier_coefficients() needs a closed-form ansatz (pz, rpz, real, mix), encoding='fixed' "
                f"and measure='z'; got ansatz={self.ansatz.name!r}, encoding={self.encoding!r}, measure={self.measure!r}"
            )
        a0, a, b = compile_coefficients(self.ansatz, self.theta, self.reps)
        coeffs = torch.cat([a0.unsqueeze(-1), a, b], dim=-1)
        return coeffs.expand(self.out_dim, self.in_dim, -1)

    def to_pennylane(self, edge: tuple[int, int] = (0, 0), device="default.qubit", **qnode_options):
        """One edge (j, i) as a PennyLane QNode of the input x: qnode(x) -> <Z>.

        The QNode carries this layer's current parameters; `qml.draw(qnode)(x)` draws it.
        """
        from qkan.circuits.pennylane import edge_qnode

        return edge_qnode(self, edge, device=device, **qnode_options)

    def to_qiskit(self, edge: tuple[int, int] | None = None):
        """Parameterised qiskit QuantumCircuit of one edge (j, i), or of the ansatz when edge is None."""
        from qkan.circuits.qiskit import layer_circuit

        return layer_circuit(self, edge)

    def config(self) -> dict:
        """Constructor arguments that rebuild this layer (with its evaluator name)."""
        if callable(self.base):
            raise ValueError("a layer with a custom callable `base` has no serialisable config")
        return dict(
            in_dim=self.in_dim,
            out_dim=self.out_dim,
            reps=self.reps,
            ansatz=self.ansatz.name,
            encoding=self.encoding,
            base=self.base,
            group=self.group,
            measure=self.measure,
            bias=self.bias is not None,
            seed=self.seed,
        )

    def extra_repr(self) -> str:
        base = getattr(self.base, "__name__", "callable") if callable(self.base) else self.base
        return (
            f"in_dim={self.in_dim}, out_dim={self.out_dim}, reps={self.reps}, ansatz={self.ansatz.name!r}, "
            f"encoding={self.encoding!r}, base={base!r}, group={self.group!r}, measure={self.measure!r}, "
            f"evaluator={self._evaluator_name!r}"
        )
