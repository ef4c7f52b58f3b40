"""QKANLayer: a Kolmogorov-Arnold layer whose edge functions are DARUAN circuits.

    y_j = sum_i m_ji [ c_ji (f_ji(x_i) + d_ji) + beta_ji base(x_i) ]  (+ bias_j)

f_ji is a single-qubit data re-uploading circuit (arXiv 2509.14026; the ansaetze are listed in
qkan/circuits/ansatz.py).
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from qkan import layer_guards as guards
from qkan._checks import check_bool, check_device, check_int
from qkan._foreign import reject_foreign
from qkan.layer_guards import PARAM_DTYPES
from qkan.layer_settings import BASES, ENCODINGS, GROUPS, MAX_REPS, MEASURES, POST_INITS, THETA_INITS, LayerSettings
from qkan.simulators.base import Evaluator, check_transformable, make_evaluator

__all__ = ["QKANLayer", "FourierSeries", "LayerSettings", "BASES", "ENCODINGS", "GROUPS", "MEASURES", "THETA_INITS", "POST_INITS", "MAX_REPS", "PARAM_DTYPES"]


def _setting(name: str, doc: str) -> property:
    """A read-only view of the layer's LayerSettings field `name`."""
    return property(lambda self: getattr(self._settings, name), doc=doc)


class FourierSeries(NamedTuple):
    """f(x) = a0 + sum_k a_k cos(omega_k x) + b_k sin(omega_k x) for each edge (QKANLayer.fourier_series)."""

    a0: torch.Tensor  # (*edge)
    a: torch.Tensor  # (*edge, K)
    b: torch.Tensor  # (*edge, K)
    omega: torch.Tensor  # (*edge, K)


class QKANLayer(nn.Module):
    r"""Quantum-classical KAN layer with a DARUAN on every edge.

    Args:
        in_dim: number of inputs I.
        out_dim: number of outputs O.
        reps: data re-uploading repetitions R (Fourier degree of each edge).
        ansatz: "pz" | "rpz" | "px" | "real" | "mix" (gates in qkan/circuits/ansatz.py).
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
        theta_init: "xavier" (Xavier-normal over theta's (O', I', n_slots, k) shape: std
            1/sqrt(n_slots (O' + I')), about 0.2 for a [2, 5] layer with reps 3; the published
            package's default) | "normal" (N(0, 1/reps)) | "uniform" (U[-pi, pi), std 1.8).
        base_init: "uniform" (base weights uniform in [-1, 1] / sqrt(in_dim), the default) or a
            number every base weight starts at (the published package uses 0.5).
        post_init: "ones" (edge weights c = 1, the default) | "fan_in" (c = 1 / sqrt(in_dim),
            as torch.nn.Linear scales its weights: a layer summing many edges then starts with
            outputs of order 1, which matters where they feed another DARUAN as angles).

    Shape:
        (*, in_dim) -> (*, out_dim)

    Inputs:
        Inputs are angles and must be finite with |x| <= eps^(-1/2) of the dtype (float32:
        2896, float64: 6.7e7; ValueError naming the range otherwise): the rounding of x alone
        moves a frequency-n term's phase by up to n |x| eps, which here stays below n sqrt(eps)
        (half the digits); far beyond it the edge values are noise (and n x overflowed to NaN
        at 3e38 in float32).
        The "px" ansatz applies arccos to its encoded angles, so they must lie in [-1, 1]
        (``ansatz.domain``): the inputs of a first layer are checked; a deeper px layer of a
        QKAN receives tanh(h) of the previous layer's output h (``hidden_input``), and a
        trainable px encoding uses (w, b) / max(1, |w| + |b|) per edge and repetition
        (``encoding_parameters``), which equals (w, b) wherever |w| + |b| <= 1 (the
        initialisation included) and keeps |w x + b| <= 1 for every |x| <= 1 as training
        moves w and b.

    Attributes:
        theta: (O', I', n_slots, k) angles drawn as `theta_init` says; O', I' are 1 where grouped.
        enc_weight, enc_bias: (O, I, R) for encoding="edge", (1, I, R) for "input"; init 1, 0.
        post_weight (c), post_bias (d): (O, I), init as `post_init` says and 0.
        base_weight (beta): (O, I), as `base_init` says; None when base is "none". (The
            published package's constant 0.5 trains I.12.11 and the layer extension better but
            I.6.20b and I.12.4 worse, so it is an option, not the default: README, "Training
            defaults".)
        mask: buffer (O, I) of 0/1 used by pruning.

    Examples:
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
        theta_init: str = "xavier",
        base_init: str | float = "uniform",
        post_init: str = "ones",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **foreign,
    ) -> None:
        super().__init__()
        reject_foreign("QKANLayer", foreign)
        self._settings = LayerSettings(
            in_dim, out_dim, reps, ansatz=ansatz, encoding=encoding, base=base, group=group, measure=measure,
            bias=bias, seed=seed, theta_init=theta_init, base_init=base_init, post_init=post_init,
        )
        if dtype is not None and dtype not in PARAM_DTYPES:
            raise (ValueError if isinstance(dtype, torch.dtype) else TypeError)(
                f"`dtype` must be torch.float32, torch.float64, torch.bfloat16, torch.float16 or None; got {dtype!r}"
            )
        device = check_device(device)
        factory = {"device": device, "dtype": dtype}
        s = self._settings
        O, I, R = s.out_dim, s.in_dim, s.reps
        tO = 1 if s.group in ("input", "all") else O
        tI = 1 if s.group in ("output", "all") else I
        self.theta = nn.Parameter(torch.empty(tO, tI, *s.spec.theta_shape(R), **factory))
        if s.encoding == "fixed":
            self.register_parameter("enc_weight", None)
            self.register_parameter("enc_bias", None)
        else:
            eO = O if s.encoding == "edge" else 1
            self.enc_weight = nn.Parameter(torch.empty(eO, I, R, **factory))
            self.enc_bias = nn.Parameter(torch.empty(eO, I, R, **factory))
        self.post_weight = nn.Parameter(torch.empty(O, I, **factory))
        self.post_bias = nn.Parameter(torch.empty(O, I, **factory))
        if s.base_fn is None:
            self.register_parameter("base_weight", None)
        else:
            self.base_weight = nn.Parameter(torch.empty(O, I, **factory))
        self.register_parameter("bias", nn.Parameter(torch.empty(O, **factory)) if s.bias else None)
        self.register_buffer("mask", torch.ones(O, I, **factory))
        self.set_evaluator(evaluator, **(evaluator_options or {}))
        self.reset_parameters()

    # ------------------------------------------------------------------------------- settings
    in_dim = _setting("in_dim", "number of inputs I")
    out_dim = _setting("out_dim", "number of outputs O")
    reps = _setting("reps", "data re-uploading repetitions R")
    ansatz = _setting("spec", "the ansatz's spec (qkan.circuits.ansatz.Ansatz)")
    encoding = _setting("encoding", '"fixed" | "edge" | "input"')
    base = _setting("base", "the residual activation's name, or the callable given")
    group = _setting("group", 'None | "input" | "output" | "all"')
    measure = _setting("measure", '"z" | "amplitude"')
    seed = _setting("seed", "the initialisation's seed (None: torch's global generator)")
    theta_init = _setting("theta_init", "how reset_parameters draws theta")
    base_init = _setting("base_init", "how reset_parameters sets the base weights")
    post_init = _setting("post_init", "how reset_parameters sets the edge weights c")

    def reset_parameters(self) -> None:
        """Re-draw theta (as `theta_init` says) and the base weights (as `base_init` says); edge weights c
        as `post_init` says (1 or 1 / sqrt(in_dim)); encodings to w=1, b=0; d=0, mask=1."""
        gen = None
        if self.seed is not None:
            gen = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            theta = torch.empty(self.theta.shape, dtype=torch.float64)
            if self.theta_init == "xavier":
                nn.init.xavier_normal_(theta, generator=gen)
            elif self.theta_init == "normal":
                theta.normal_(0.0, 1 / math.sqrt(self.reps), generator=gen)
            else:
                theta.uniform_(-math.pi, math.pi, generator=gen)
            self.theta.copy_(theta)
            if self.enc_weight is not None:
                self.enc_weight.fill_(1.0)
                self.enc_bias.zero_()
            self.post_weight.fill_(1.0 if self.post_init == "ones" else self.in_dim**-0.5)
            self.post_bias.zero_()
            if self.base_weight is not None:
                if self.base_init == "uniform":
                    base = torch.rand(self.base_weight.shape, generator=gen, dtype=torch.float64) * 2 - 1
                    self.base_weight.copy_(base / math.sqrt(self.in_dim))
                else:
                    self.base_weight.fill_(self.base_init)
            if self.bias is not None:
                self.bias.zero_()
            self.mask.fill_(1.0)

    # ----------------------------------------------------------------------------- evaluators
    def set_evaluator(self, name: str | Evaluator = "auto", **options) -> QKANLayer:
        """Choose how the edges are evaluated; parameters are untouched. Returns self.

        Args:
            name: "auto" (closed form where it exists, else su2), a registered evaluator name
                (``qkan.simulators.available_evaluators()``: "fourier", "su2", "pennylane",
                "qiskit" and any added with ``qkan.register_evaluator``), or an evaluator object
                (an ``Evaluator`` instance, used as it is: layers derived from this one by
                extend or prune share it).
            **options: evaluator options (with a name only). PennyLane: device, diff_method,
                shots, seed, plus device options such as backend=. Qiskit: backend, shots or
                precision, optimization_level, seed, max_pub_size, max_circuits_per_job, threads.
        """
        if isinstance(name, Evaluator):
            if options:
                raise ValueError(f"an evaluator object takes no options (they belong to its constructor); got {sorted(options)}")
            reason = name.unsupported(self)
            if reason:
                raise ValueError(f"evaluator {name.name!r} cannot run this layer: {reason}")
            self._evaluator, self._evaluator_choice = name, (name, {})
            return self
        if name == "auto":  # resolved once: it depends only on the layer's fixed settings
            if options:
                raise ValueError(f"evaluator 'auto' takes no options; got {sorted(options)}")
            fourier = make_evaluator("fourier")
            evaluator = fourier if fourier.unsupported(self) is None else make_evaluator("su2")
        else:
            evaluator = make_evaluator(name, **options)
            reason = evaluator.unsupported(self)
            if reason:
                raise ValueError(f"evaluator {name!r} cannot run this layer: {reason}")
        self._evaluator = evaluator
        self._evaluator_choice = (name, dict(options))
        return self

    @property
    def evaluator(self) -> str:
        """Name of the evaluator in use ("auto" resolved to "fourier" or "su2")."""
        return self.get_evaluator().name

    def get_evaluator(self) -> Evaluator:
        """The evaluator object in use ("auto" resolved): its options and counters, e.g. Qiskit's jobs_submitted."""
        return self._evaluator

    def evaluator_choice(self) -> tuple[str | Evaluator, dict]:
        """(name or object, options) as given to set_evaluator: what a derived layer (extend, prune) re-creates."""
        name, options = self._evaluator_choice
        return name, dict(options)

    # ------------------------------------------------------------------------------ the formula
    def encoding_parameters(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The effective encoding (w, b), each (O'', I, R); (None, None) for the fixed encoding.

        (enc_weight, enc_bias) themselves, except for an ansatz with a bounded domain (px):
        there (w, b) / max(1, |w| + |b|), so |w x + b| <= 1 whenever |x| <= 1 (see the class
        docstring). Every evaluator and converter reads the encoding through this method.
        """
        w, b = self.enc_weight, self.enc_bias
        if w is None or self.ansatz.domain is None:
            return w, b
        size = w.abs() + b.abs()  # (O'', I, R)
        # 4 eps of headroom where rescaled, so rounding cannot push |w x + b| past 1
        norm = torch.where(size > 1, size * (1 + 4 * torch.finfo(w.dtype).eps), torch.ones_like(size))
        return w / norm, b / norm

    def encoded_angles(self, x: torch.Tensor, rep: int | None = None) -> torch.Tensor:
        """phi = w x + b, the encoded data of every edge and repetition (before any arccos).

        Args:
            x: (N, I) inputs.
            rep: one repetition l, or None for all.
        Returns:
            (N, O'', I, R), or (N, O'', I) for one rep: O'' = O for encoding "edge", else 1
            (for the fixed encoding phi is x itself, broadcast over the reps).
        """
        xs = x.unsqueeze(1)  # (N, 1, I)
        w, b = self.encoding_parameters()
        if w is None:
            return xs if rep is not None else xs.unsqueeze(-1).expand(-1, -1, -1, self.reps)
        if rep is not None:
            return torch.addcmul(b[..., rep], w[..., rep], xs)
        return torch.addcmul(b, w, xs.unsqueeze(-1))

    def check_edge(self, edge) -> tuple[int, int]:
        """Validate an edge index (j, i), 0 <= j < out_dim, 0 <= i < in_dim, and return it as ints."""
        expected = f"a pair (j, i) of ints with 0 <= j < {self.out_dim} and 0 <= i < {self.in_dim}"
        if not isinstance(edge, (tuple, list)) or len(edge) != 2 or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in edge
        ):
            raise TypeError(f"`edge` must be {expected}; got {edge!r}")
        if not (0 <= edge[0] < self.out_dim and 0 <= edge[1] < self.in_dim):
            raise ValueError(f"`edge` must be {expected}; got {tuple(edge)!r}")
        return int(edge[0]), int(edge[1])

    def edge_parameters(self, edge: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The circuit parameters of edge (j, i): theta (n_slots, k), w (R,), b (R,).

        w = 1 and b = 0 for the fixed encoding; the effective encoding (encoding_parameters) otherwise.
        """
        j, i = self.check_edge(edge)
        theta = self.edge_theta()[j, i]
        w, b = self.encoding_parameters()
        if w is None:
            return theta, theta.new_ones(self.reps), theta.new_zeros(self.reps)
        O = self.out_dim
        return theta, w.expand(O, -1, -1)[j, i], b.expand(O, -1, -1)[j, i]

    def edge_theta(self) -> torch.Tensor:
        """theta of every edge: (O, I, n_slots, k), an expanded view where edges share a circuit (group)."""
        return self.theta.expand(self.out_dim, self.in_dim, *self.theta.shape[2:])

    def edge_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale = m * c (O, I), const (O,)): y = sum_i scale_ji f_ji + const + base term."""
        scale = self.mask * self.post_weight
        const = (scale * self.post_bias).sum(-1)
        if self.bias is not None:
            const = const + self.bias
        return scale, const

    def base_term(self, x: torch.Tensor) -> torch.Tensor | float:
        """sum_i m_ji beta_ji base(x_i): (N, I) -> (N, O), or 0. without a base."""
        parts = self.base_parts(x)
        return 0.0 if parts is None else F.linear(*parts)

    def base_parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(base(x) (N, I), m * beta (O, I)), whose product is base_term(x); None without a base.
        For evaluators that fold the base term into their own matrix product."""
        if self._settings.base_fn is None:
            return None
        return self._settings.base_fn(x), self.base_weights()

    def base_weights(self) -> torch.Tensor | None:
        """m * beta (O, I), the base term's weights (see base_parts); None without a base."""
        return None if self._settings.base_fn is None else self.mask * self.base_weight

    def combine_edges(self, f: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The layer formula from edge values: f (N, O, I), x (N, I) -> (N, O)."""
        scale, const = self.edge_weights()
        return torch.einsum("noi,oi->no", f, scale) + const + self.base_term(x)

    def edge_contributions(self, f: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Each edge's full term m (c (f + d) + beta base(x)): f (N, O, I), x (N, I) -> (N, O, I).

        Summed over inputs (plus the output bias) it is combine_edges(f, x).
        """
        scale, _ = self.edge_weights()
        phi = scale * (f + self.post_bias)
        parts = self.base_parts(x)
        if parts is not None:
            values, weight = parts
            phi = phi + weight * values.unsqueeze(-2)  # (N, 1, I) against (O, I)
        return phi

    def hidden_input(self, h: torch.Tensor) -> torch.Tensor:
        """The input this layer receives from a previous layer's output h (N, I) inside a QKAN.

        tanh(h) for an ansatz whose encoded angles must lie in [-1, 1] (px), so a deep px model
        is defined on every input; h itself otherwise (no change to any other model).
        """
        return h if self.ansatz.domain is None else torch.tanh(h)

    def hidden_input_formula(self, expr):
        """hidden_input on a sympy expression: tanh(expr) for px, expr itself otherwise."""
        if self.ansatz.domain is None:
            return expr
        import sympy

        return sympy.tanh(expr)

    def max_input(self) -> float:
        """The largest |x| accepted: eps^(-1/2) of the parameters' dtype (float32: 2896), see the class docstring."""
        return torch.finfo(self.theta.dtype).eps ** -0.5

    def evaluate(self, x: torch.Tensor) -> torch.Tensor:
        """The layer on already validated inputs (see check_input): (N, I) -> (N, O).

        FloatingPointError when the output is not finite (an evaluator returning NaN, e.g. a failed
        estimator, or non-finite parameters): no NaN leaves a layer whose input was finite.
        """
        return self._run("forward", x)

    def _run(self, method: str, x: torch.Tensor) -> torch.Tensor:
        """The evaluator's `method` ("forward" or "edge_outputs") on validated x (N, I), with the checks
        around every layer call: traceable evaluator, encoded angles in the domain, compute precision,
        finite output."""
        evaluator = self.get_evaluator()
        check_transformable(evaluator)
        guards.check_domain(self, x)
        return guards.check_output(self, self.in_compute_precision(lambda xc: getattr(evaluator, method)(self, xc), x))

    def check_input(self, x) -> torch.Tensor:
        """Validate x (*, I) and flatten it to (N, I): the public entry's one check (layer_guards.check_input)."""
        return guards.check_input(self, x)

    def in_compute_precision(self, fn: Callable[..., torch.Tensor], *args) -> torch.Tensor:
        """fn(*args) with bfloat16/float16 parameters read as float32 copies (layer_guards.in_compute_precision)."""
        return guards.in_compute_precision(self, fn, *args)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(*, in_dim) -> (*, out_dim)."""
        y = self.evaluate(self.check_input(x))
        return y if x.dim() == 2 else y.reshape(*x.shape[:-1], self.out_dim)

    def edge_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """f_ji(x_i) before any weights: (*, in_dim) -> (*, out_dim, in_dim)."""
        f = self._run("edge_outputs", self.check_input(x))
        return f.reshape(*x.shape[:-1], self.out_dim, self.in_dim)

    def fourier_coefficients(self) -> torch.Tensor:
        """Exact Fourier series of every edge: (O, I, 2R+1) = [a_0, a_1..a_R, b_1..b_R].

        f_ji(x) = a_0 + sum_n a_n cos(n x) + b_n sin(n x). Needs a closed-form ansatz, the fixed
        encoding and measure "z" (``fourier_series`` covers trainable encodings and px as well).
        """
        if not self.ansatz.closed_form or self.encoding != "fixed" or self.measure != "z":
            raise ValueError(
                "fourier_coefficients() needs a closed-form ansatz (pz, rpz, real, mix), encoding='fixed' "
                f"and measure='z'; got ansatz={self.ansatz.name!r}, encoding={self.encoding!r}, measure={self.measure!r}"
            )
        a0, a, b, _ = self.fourier_series(compact=True)  # (O', I'), (O', I', R) x 2
        return torch.cat([a0.unsqueeze(-1), a, b], dim=-1).expand(self.out_dim, self.in_dim, -1)

    def fourier_frequencies(self) -> torch.Tensor:
        """The frequencies Omega of every edge's series: (O'', I, K), O'' = O for encoding "edge", else 1.

        Fixed encoding: 1..R (K = R). Trainable encodings: Omega_m = sum_l m_l w_l over the
        frequency vectors m in {-1, 0, 1}^R with first nonzero entry 1 (K = (3^R - 1) / 2).
        """
        from qkan.simulators.fourier_sampling import frequency_vectors

        w, _ = self.encoding_parameters()
        if w is None:
            return torch.arange(1, self.reps + 1, dtype=self.theta.dtype, device=self.theta.device).expand(1, self.in_dim, -1)
        vectors = frequency_vectors.__wrapped__ if torch.compiler.is_compiling() else frequency_vectors
        return w @ vectors(self.reps).to(w).T  # (O'', I, R) @ (R, K)

    def fourier_series(self, edge: tuple[int, int] | None = None, *, compact: bool = False) -> FourierSeries:
        """The exact series f_ji(x) = a0 + sum_k a_k cos(Omega_k x) + b_k sin(Omega_k x) of the edges.

        For px (fixed encoding only) x is the RX angle arccos(phi), so f = a0 + sum_k a_k T_k(phi)
        + b_k sqrt(1 - phi^2) U_{k-1}(phi) in the encoded angle phi. Differentiable in every parameter.

        Args:
            edge: (j, i) for one edge, None for all of them.
            compact: with edge None, keep the dimensions edges share (group, fixed or per-input
                encoding) at size 1 instead of expanding them (what the closed-form evaluator
                reads: a grouped layer compiles and multiplies one circuit, not O x I).
        Returns:
            FourierSeries(a0, a, b, omega): a0 (O, I), a, b, omega (O, I, K) (expanded views where
            edges share parameters; with `compact`, shapes that broadcast to these), or a0 (),
            a, b, omega (K,) for one edge. K = R for the fixed encoding, (3^R - 1) / 2 for
            trainable ones (see fourier_frequencies).
        Raises:
            ValueError: measure "amplitude", px with a trainable encoding, or a trainable encoding
                with reps > qkan.simulators.fourier.MAX_INPUT_REPS (3^R sample points per edge).
        """
        from qkan.simulators.fourier import MAX_INPUT_REPS, compile_coefficients
        from qkan.simulators.fourier_sampling import sampled_coefficients

        if self.measure != "z":
            raise ValueError(f"measure {self.measure!r} is not a trigonometric polynomial; only 'z' has a Fourier series")
        trainable = self.encoding != "fixed"
        if self.ansatz.arccos and trainable:
            raise ValueError("a px layer with trainable encodings has no exact formula (each rep has its own arccos angle)")
        if trainable and self.reps > MAX_INPUT_REPS:
            raise ValueError(
                f"this layer has no exact trigonometric formula: per-{self.encoding} encodings compile in O(R 3^R); "
                f"reps={self.reps} > {MAX_INPUT_REPS}"
            )
        check_bool("compact", compact)
        if edge is not None:
            edge = self.check_edge(edge)

        def series() -> FourierSeries:
            theta, (_, bias), omega = self.theta, self.encoding_parameters(), self.fourier_frequencies()
            if edge is not None:  # only this edge's circuit is compiled
                j, i = edge
                theta, omega = self.edge_theta()[j, i], omega.expand(self.out_dim, -1, -1)[j, i]
                bias = None if bias is None else bias.expand(self.out_dim, -1, -1)[j, i]
            if self.ansatz.arccos:
                coeffs = sampled_coefficients(self.ansatz, theta, self.reps).movedim(0, -1)  # (*edge, 2R+1)
                a0, a, b = coeffs[..., 0], coeffs[..., 1 : self.reps + 1], coeffs[..., self.reps + 1 :]
            else:
                a0, a, b = compile_coefficients(self.ansatz, theta, self.reps, bias, multi=trainable)
            if edge is None and not compact:
                shape = (self.out_dim, self.in_dim)
                a0, a, b, omega = a0.expand(shape), a.expand(*shape, -1), b.expand(*shape, -1), omega.expand(*shape, -1)
            return FourierSeries(a0, a, b, omega)

        return self.in_compute_precision(series)

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

    def settings(self) -> dict:
        """Constructor arguments of this layer (base may be a callable), without placement or evaluator."""
        return self._settings.as_dict()

    def config(self) -> dict:
        """Plain-typed constructor arguments that rebuild this layer (settings() with a named base)."""
        if callable(self.base):
            raise ValueError("a layer with a custom callable `base` has no serialisable config")
        return self.settings()

    def derived(self, **changes) -> QKANLayer:
        """A new layer with this one's settings, device, dtype and evaluator choice, `changes` applied.

        Parameters are freshly initialised (the caller copies what it keeps). This is the one rule
        for what carries over to layers made from this one (QKAN.extend, prune).
        """
        settings = self._settings.replace(**changes)
        new = QKANLayer(**settings.as_dict(), device=self.theta.device, dtype=self.theta.dtype)
        name, options = self.evaluator_choice()
        return new.set_evaluator(name, **options)

    def extended(self, reps: int) -> QKANLayer:
        """A new layer with `reps` (> self.reps) repetitions and the same function (see QKAN.extend).

        Old repetitions and encodings are copied, the old final gates move to slot `reps`, and new
        slots take the spec's pad angle (with encoding w = b = 0 where the spec's extension rule is
        "identity"), so the tail after the old circuit leaves <Z> unchanged.
        """
        check_int("reps", reps)
        if reps <= self.reps:
            raise ValueError(f"`reps` must be greater than the current reps ({self.reps}); got {reps}")
        problem = self.ansatz.extension_problem(self.encoding != "fixed")
        if problem:
            raise ValueError(f"extend() {problem}")
        new, R, spec = self.derived(reps=reps), self.reps, self.ansatz
        with torch.no_grad():
            theta = torch.full_like(new.theta, spec.pad_angle)  # (O', I', n_slots', k)
            theta[..., : self.theta.shape[-2], :] = self.theta  # reps 0..R-1 and the old final slot -> slot R
            new.theta.copy_(theta)
            if self.enc_weight is not None:
                if spec.extension == "identity":  # data rotations at phi = 0: identity
                    new.enc_weight.zero_()
                    new.enc_bias.zero_()
                new.enc_weight[..., :R] = self.enc_weight
                new.enc_bias[..., :R] = self.enc_bias
            for key, value in self.state_dict().items():
                if key not in ("theta", "enc_weight", "enc_bias"):
                    new.state_dict()[key].copy_(value)
        return new

    def sliced(self, rows: torch.Tensor, cols: torch.Tensor, mask: torch.Tensor | None = None) -> QKANLayer:
        """A new layer with the outputs `rows` and inputs `cols` of this one (index tensors).

        Parameters are copied (a dimension shared by grouping stays shared); the mask is
        `mask` (O, I) (default this layer's) restricted to rows and cols. Same settings.
        """
        for arg, index, size in (("rows", rows, self.out_dim), ("cols", cols, self.in_dim)):
            if not isinstance(index, torch.Tensor) or index.dtype != torch.int64 or index.dim() != 1:
                raise TypeError(f"`{arg}` must be a 1-d int64 tensor of indices; got {index!r}")
            if index.numel() == 0 or bool((index < 0).any()) or bool((index >= size).any()):
                raise ValueError(f"`{arg}` must hold at least one index in [0, {size}); got {index.tolist()}")
        if mask is not None and (not isinstance(mask, torch.Tensor) or mask.shape != self.mask.shape):
            raise ValueError(f"`mask` must be None or a tensor of shape {tuple(self.mask.shape)}; got {mask!r}")
        new = self.derived(in_dim=len(cols), out_dim=len(rows))
        mask = self.mask if mask is None else mask
        with torch.no_grad():
            for name, param in new.named_parameters():
                source = getattr(self, name).detach()
                if source.shape[0] == self.out_dim:  # (O, ...) unless shared by all outputs
                    source = source[rows]
                if name != "bias" and source.shape[1] == self.in_dim:  # (., I, ...) unless shared by all inputs
                    source = source[:, cols]
                param.copy_(source)
            new.mask.copy_(mask[rows][:, cols])
        return new

    def extra_repr(self) -> str:
        base = getattr(self.base, "__name__", "callable") if callable(self.base) else self.base
        choice = self.evaluator_choice()[0]
        return (
            f"in_dim={self.in_dim}, out_dim={self.out_dim}, reps={self.reps}, ansatz={self.ansatz.name!r}, "
            f"encoding={self.encoding!r}, base={base!r}, group={self.group!r}, measure={self.measure!r}, "
            f"evaluator={choice if isinstance(choice, str) else choice.name!r}"
        )
