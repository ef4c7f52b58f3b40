"""HQKAN: encoder -> QKAN -> decoder, a small drop-in for transformer feed-forward blocks.

    HQKAN(x) = W_dec . QKAN( squash( W_enc x + b_enc ) ) + b_dec      (squash: identity by default)

The paper (arXiv 2509.14026, HQKANsformer) replaces a GPT-2 MLP block (768 -> 3072 -> 768) by
Linear(768 -> 10) -> QKAN(10 -> 10) -> Linear(10 -> 768), a latent of ceil(log2 d), which cuts
the block's parameters by more than two orders of magnitude. ``replace_ffn`` performs that swap
on an existing model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from qkan._checks import check_choice, check_device, check_int
from qkan.circuits.ansatz import get_ansatz
from qkan.layer_guards import PARAM_DTYPES
from qkan.models import QKAN

__all__ = ["HQKAN", "FFNReport", "replace_ffn", "SQUASHES"]

#: how the encoder's output is brought into the DARUAN's input range (see HQKAN)
SQUASHES = ("none", "tanh", "layernorm")

_TRANSFORMER_LAYERS = (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)


class _ScaledTanh(nn.Module):
    """x -> scale * tanh(x): pi maps the real line onto one DARUAN period, 1 onto px's domain [-1, 1]."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.tanh(x)

    def extra_repr(self) -> str:
        return f"scale={self.scale:.6g}"


class HQKAN(nn.Module):
    r"""Hybrid QKAN block: Linear(in -> latent_in) -> QKAN -> Linear(latent_out -> out).

    Input range (``squash``): with the fixed encoding every DARUAN is 2*pi-periodic in its
    input, so an unbounded encoder output can alias (z and z + 2*pi give the same edge value).
    Three choices are offered:

    - ``"none"`` (default): the raw encoder output. A fresh encoder on LayerNorm-ed transformer
      activations gives inputs of standard deviation ~0.6, well inside one period, and the
      core's SiLU base branch stays an unbounded, near-linear path through the block.
    - ``"tanh"``: z -> pi * tanh(z), a bijection of the real line onto one period: no aliasing
      whatever the encoder learns, but every path through the core is bounded.
    - ``"layernorm"``: normalise the latent vector (zero mean, unit variance across the latent
      features, then a learned affine map); it removes two degrees of freedom of ~10.

    The "px" ansatz takes inputs in [-1, 1] only: with it, "tanh" is z -> tanh(z) and the
    other two choices are refused (ValueError) because they leave that interval.

    "none" is the default because it trained best: on the character-level GPT of
    benchmarks/hqkan_lm.py (d=128, 600k tokens, seeds 0 and 1) the validation loss was
    1.27 / 1.25 with "none", 1.32 / 1.36 with "layernorm" and 1.52 / 1.40 with "tanh"; after
    training, 0.5 % of the unsquashed core inputs lay beyond +-pi (max |z| = 4.0).

    Args:
        in_dim: input features d_in.
        out_dim: output features d_out.
        latent_in: QKAN input width; default ceil(log2(in_dim)) (at least 1), e.g. 768 -> 10.
        latent_out: QKAN output width; default ceil(log2(out_dim)) (at least 1).
        hidden: widths of hidden QKAN layers between latent_in and latent_out (default none:
            a single QKANLayer(latent_in, latent_out)).
        squash: "none" (default) | "tanh" | "layernorm": the map between encoder and QKAN.
        reps: DARUAN repetitions of the QKAN core.
        device, dtype: where and how the parameters are allocated.
        **qkan_options: keyword options of qkan.QKAN / QKANLayer (ansatz, encoding, base,
            group, evaluator, measure, bias, seed).

    Shape:
        (*, in_dim) -> (*, out_dim)

    Attributes:
        encoder: nn.Linear(in_dim, latent_in), torch's default initialisation.
        squash: the module applied to the encoder output.
        core: qkan.QKAN([latent_in, *hidden, latent_out], reps, ...).
        decoder: nn.Linear(latent_out, out_dim), torch's default initialisation.

    Examples:
        >>> hq = HQKAN(768, 768, seed=0)
        >>> hq(torch.randn(2, 5, 768)).shape
        torch.Size([2, 5, 768])
        >>> hq.core.width
        [10, 10]
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        latent_in: int | None = None,
        latent_out: int | None = None,
        *,
        hidden: list[int] | tuple[int, ...] = (),
        squash: str = "none",
        reps: int = 3,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **qkan_options,
    ) -> None:
        super().__init__()
        check_int("in_dim", in_dim)
        check_int("out_dim", out_dim)
        latent_in = max(1, math.ceil(math.log2(in_dim))) if latent_in is None else latent_in
        latent_out = max(1, math.ceil(math.log2(out_dim))) if latent_out is None else latent_out
        check_int("latent_in", latent_in)
        check_int("latent_out", latent_out)
        if not isinstance(hidden, (list, tuple)):
            raise TypeError(f"`hidden` must be a list of layer widths; got {hidden!r}")
        check_int("reps", reps)
        for k, width in enumerate(hidden):
            check_int(f"hidden[{k}]", width)
        check_choice("squash", squash, SQUASHES)
        bounded = get_ansatz(qkan_options.get("ansatz", "pz")).domain is not None
        if bounded and squash != "tanh":
            raise ValueError(
                f"ansatz {qkan_options['ansatz']!r} takes core inputs in [-1, 1] only; `squash` must be 'tanh' "
                f"(z -> tanh(z)) with it; got {squash!r}"
            )
        for arg in ("width", "in_dim", "out_dim"):
            if arg in qkan_options:
                raise ValueError(f"`{arg}` is set by HQKAN from its sizes; do not pass it as a QKAN option")
        if dtype is not None and dtype not in PARAM_DTYPES:
            raise (ValueError if isinstance(dtype, torch.dtype) else TypeError)(
                f"`dtype` must be torch.float32, torch.float64, torch.bfloat16, torch.float16 or None; got {dtype!r}"
            )
        factory = {"device": check_device(device), "dtype": dtype}
        self.in_dim, self.out_dim = in_dim, out_dim
        self.latent_in, self.latent_out = latent_in, latent_out
        self.hidden = [int(w) for w in hidden]
        self.squash_name = squash
        self.reps = reps
        self.qkan_options = dict(qkan_options)
        self.encoder = nn.Linear(in_dim, latent_in, **factory)
        if squash == "tanh":
            self.squash = _ScaledTanh(1.0 if bounded else math.pi)
        elif squash == "layernorm":
            self.squash = nn.LayerNorm(latent_in, **factory)
        else:
            self.squash = nn.Identity()
        self.core = QKAN([latent_in, *self.hidden, latent_out], reps, **factory, **qkan_options)
        self.decoder = nn.Linear(latent_out, out_dim, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(*, in_dim) -> (*, out_dim)."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"`x` must be a torch.Tensor; got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"`x` must be a floating-point tensor; got {x.dtype}")
        if x.dim() < 1 or x.shape[-1] != self.in_dim:
            raise ValueError(f"`x` must have shape (*, {self.in_dim}); got {tuple(x.shape)}")
        dtype = self.encoder.weight.dtype
        if x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
            raise ValueError(f"`x` has dtype {x.dtype} but the block's parameters are {dtype}; convert one of them")
        z = self.squash(self.encoder(x))  # (*, latent_in)
        return self.decoder(self.core(z))  # (*, latent_out) -> (*, out_dim)

    def config(self) -> dict:
        """Constructor arguments that rebuild this block (parameters come from state_dict)."""
        return dict(
            in_dim=self.in_dim,
            out_dim=self.out_dim,
            latent_in=self.latent_in,
            latent_out=self.latent_out,
            hidden=list(self.hidden),
            squash=self.squash_name,
            reps=self.reps,
            **self.qkan_options,
        )

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, out_dim={self.out_dim}, latent_in={self.latent_in}, "
            f"latent_out={self.latent_out}, hidden={self.hidden}, squash={self.squash_name!r}, reps={self.reps}"
        )


@dataclass
class FFNReport:
    """What replace_ffn changed.

    Attributes:
        replaced: qualified names of the modules whose feed-forward path became an HQKAN.
        params_before, params_after: parameter count of the whole model.
        ffn_params_before, ffn_params_after: parameters of the replaced feed-forward paths.
    """

    replaced: list[str] = field(default_factory=list)
    params_before: int = 0
    params_after: int = 0
    ffn_params_before: int = 0
    ffn_params_after: int = 0

    @property
    def ffn_reduction(self) -> float:
        """ffn_params_before / ffn_params_after (inf when nothing is left, nan when nothing was replaced)."""
        if not self.replaced:
            return math.nan
        return self.ffn_params_before / self.ffn_params_after if self.ffn_params_after else math.inf

    def __str__(self) -> str:
        return (
            f"replaced {len(self.replaced)} feed-forward block(s); FFN parameters "
            f"{self.ffn_params_before:,} -> {self.ffn_params_after:,}; model parameters "
            f"{self.params_before:,} -> {self.params_after:,}"
        )


def _n_params(*modules: nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def _factory(module: nn.Module) -> dict:
    """device and dtype of a module's first floating-point parameter (empty when it has none)."""
    for p in module.parameters():
        if p.is_floating_point():
            return {"device": p.device, "dtype": p.dtype}
    return {}


def _io_features(name: str, module: nn.Module) -> tuple[int, int]:
    """(in, out) features of a module chosen by a predicate.

    Uses its in_features/out_features attributes (nn.Linear and look-alikes), else the first
    nn.Linear's in_features and the last nn.Linear's out_features among its submodules.
    """
    fin, fout = getattr(module, "in_features", None), getattr(module, "out_features", None)
    if isinstance(fin, int) and isinstance(fout, int):
        return fin, fout
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(
            f"cannot infer the feature sizes of module {name!r} ({type(module).__name__}): it needs "
            "`in_features`/`out_features` attributes or nn.Linear submodules"
        )
    return linears[0].in_features, linears[-1].out_features


def _swap_transformer_ffn(layer: nn.Module, options: dict) -> tuple[int, int]:
    """Put an HQKAN on the linear1 -> activation -> dropout -> linear2 path of a torch layer.

    torch's _ff_block computes linear2(dropout(activation(linear1(x)))); linear1 becomes the
    HQKAN and the other three become nn.Identity, so the layer's own forward (norm_first or
    not, the residual dropout after the block) is unchanged. activation_relu_or_gelu = 0 turns
    off the fused inference fast path, which reads linear1.weight and linear2.weight directly.
    Returns (parameters removed, parameters added).
    """
    old = (layer.linear1, layer.dropout, layer.linear2)
    removed = _n_params(*old) + (_n_params(layer.activation) if isinstance(layer.activation, nn.Module) else 0)
    opts = {**_factory(layer.linear1), **options}
    hq = HQKAN(layer.linear1.in_features, layer.linear2.out_features, **opts)
    layer.linear1 = hq
    layer.activation = nn.Identity()
    layer.dropout = nn.Identity()
    layer.linear2 = nn.Identity()
    if hasattr(layer, "activation_relu_or_gelu"):
        layer.activation_relu_or_gelu = 0
    return removed, _n_params(hq)


def replace_ffn(
    model: nn.Module,
    predicate: Callable[[str, nn.Module], bool] | None = None,
    **hqkan_options,
) -> FFNReport:
    """Swap feed-forward blocks of `model` for HQKAN blocks, in place.

    Selection: with ``predicate=None`` every torch.nn.TransformerEncoderLayer and
    TransformerDecoderLayer is chosen; otherwise every module with ``predicate(name, module)``
    True (name as in ``model.named_modules()``; the model itself, name "", is considered only
    when it is a torch transformer layer, which is then changed in place). A chosen
    torch transformer layer keeps its attention, norms and residual dropout, and its
    linear1 -> activation -> dropout -> linear2 path becomes ``linear1 = HQKAN(d_model,
    d_model)`` with the other three set to nn.Identity (its fused fast path is turned off; an
    enclosing nn.TransformerEncoder's nested-tensor path too). Any other chosen module is
    itself replaced by ``HQKAN(in, out)``, with in/out from its ``in_features``/``out_features``
    or from its first and last nn.Linear. Modules inside a chosen one are not visited, and
    transformer layers that already hold an HQKAN are skipped, so a second call changes nothing.

    Every parameter outside the replaced paths is left untouched (the same tensors). New blocks
    take the device and dtype of the block they replace unless `device`/`dtype` are given.

    Args:
        model: any nn.Module.
        predicate: (name, module) -> bool, or None for the torch transformer layers.
        **hqkan_options: options of HQKAN (latent_in, latent_out, hidden, squash, reps,
            ansatz, seed, ...). Sizes in_dim/out_dim come from the replaced block.

    Returns:
        FFNReport with the replaced names and the parameter counts before and after.

    Examples:
        >>> layer = nn.TransformerEncoderLayer(64, 4, dim_feedforward=256, batch_first=True)
        >>> report = replace_ffn(nn.TransformerEncoder(layer, 2, enable_nested_tensor=False))
        >>> report.replaced
        ['layers.0', 'layers.1']
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"`model` must be a torch.nn.Module; got {type(model).__name__}")
    if predicate is not None and not callable(predicate):
        raise ValueError(f"`predicate` must be a callable (name, module) -> bool or None; got {predicate!r}")
    for arg in ("in_dim", "out_dim"):
        if arg in hqkan_options:
            raise ValueError(f"`{arg}` is taken from each replaced block; do not pass it to replace_ffn")
    if predicate is None:
        predicate = lambda name, module: isinstance(module, _TRANSFORMER_LAYERS)  # noqa: E731
    report = FFNReport(params_before=_n_params(model))
    chosen: list[tuple[str, nn.Module, tuple[int, int] | None]] = []
    skip: tuple[str, ...] = ()
    for name, module in model.named_modules():
        is_layer = isinstance(module, _TRANSFORMER_LAYERS)
        if (not name and not is_layer) or isinstance(module, HQKAN) or (skip and name.startswith(skip)):
            continue
        prefix = name + "." if name else ""  # "" (the model itself) prefixes every name
        if is_layer and isinstance(module.linear1, HQKAN):
            skip += (prefix,)
            continue
        if predicate(name, module):
            sizes = None if is_layer else _io_features(name, module)  # errors before any change
            chosen.append((name, module, sizes))
            skip += (prefix,)
    for name, module, sizes in chosen:
        if sizes is None:
            removed, added = _swap_transformer_ffn(module, hqkan_options)
        else:
            hq = HQKAN(*sizes, **{**_factory(module), **hqkan_options})
            parent_name, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent_name), attr, hq)
            removed, added = _n_params(module), _n_params(hq)
        report.replaced.append(name)
        report.ffn_params_before += removed
        report.ffn_params_after += added
    for module in model.modules():
        if isinstance(module, nn.TransformerEncoder) and any(
            isinstance(getattr(layer, "linear1", None), HQKAN) for layer in module.layers
        ):
            module.use_nested_tensor = False
    report.params_after = _n_params(model)
    return report
