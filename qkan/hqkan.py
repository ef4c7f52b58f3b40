"""HQKAN: encoder -> QKAN -> decoder, a small drop-in for transformer feed-forward blocks.

    HQKAN(x) = W_dec . QKAN( squash( W_enc x + b_enc ) ) + b_dec      (squash: identity by default)

The paper (arXiv 2509.14026, HQKANsformer) replaces a GPT-2 MLP block (768 -> 3072 -> 768) by
Linear(768 -> 10) -> QKAN(10 -> 10) -> Linear(10 -> 768), a latent of ceil(log2 d), which cuts
the block's parameters by more than two orders of magnitude. ``replace_ffn`` performs that swap
on an existing model.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from qkan._checks import check_choice, check_device, check_int, check_number
from qkan.circuits.ansatz import get_ansatz
from qkan.layers import PARAM_DTYPES
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
        dropout: probability of the dropout on the block's output (default 0: none); replace_ffn
            carries the dropout of the block it replaces here.
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
        dropout: nn.Dropout(dropout), or nn.Identity when the probability is 0.

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
        dropout: float = 0.0,
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
        dropout = check_number("dropout", dropout, 0.0, 1.0)
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
        self.dropout_p = dropout
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
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

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
        return self.dropout(self.decoder(self.core(z)))  # (*, latent_out) -> (*, out_dim)

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
            dropout=self.dropout_p,
            **self.qkan_options,
        )

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, out_dim={self.out_dim}, latent_in={self.latent_in}, "
            f"latent_out={self.latent_out}, hidden={self.hidden}, squash={self.squash_name!r}, reps={self.reps}"
            + (f", dropout={self.dropout_p:g}" if self.dropout_p else "")
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


def _linear_sizes(module: nn.Module) -> tuple[int, int] | None:
    """(in, out) features of an affine map: nn.Linear, or transformers' Conv1D (GPT-2), whose
    weight is stored (in, out); None for anything else."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    weight = getattr(module, "weight", None)
    if type(module).__name__ == "Conv1D" and isinstance(weight, torch.Tensor) and weight.dim() == 2:
        if getattr(module, "nf", None) == weight.shape[1]:
            return int(weight.shape[0]), int(weight.shape[1])
    return None


def _io_features(name: str, module: nn.Module) -> tuple[int, int]:
    """(in, out) features of a module chosen by a predicate.

    Uses its in_features/out_features attributes (nn.Linear and look-alikes), else the input
    size of the first affine map (nn.Linear or Conv1D) among its submodules and the output size
    of the last one.
    """
    fin, fout = getattr(module, "in_features", None), getattr(module, "out_features", None)
    if isinstance(fin, int) and isinstance(fout, int):
        return fin, fout
    sizes = [s for m in module.modules() if (s := _linear_sizes(m)) is not None]
    if not sizes:
        raise ValueError(
            f"cannot infer the feature sizes of module {name!r} ({type(module).__name__}): it needs "
            "`in_features`/`out_features` attributes or nn.Linear / Conv1D submodules"
        )
    return sizes[0][0], sizes[-1][1]


def _mlp_sizes(module: nn.Module) -> tuple[int, int] | None:
    """(d_in, d_out) when `module` is a feed-forward block, else None.

    A feed-forward block's parametrised children are only affine maps (nn.Linear or Conv1D):
    two, d_in -> h and h -> d_out, registered in either order (GPT-2, ViT, T5 DenseReluDense, a
    Sequential MLP; when both orders chain, the one with h > d_in), or three, two d_in -> h and
    one h -> d_out (gated: Llama, Mistral, Qwen2, T5 gated), with h != d_in
    (which tells it from attention's equal-sized projections). Its other children (activation,
    dropout) hold no parameters.
    """
    sizes = []
    for child in module.children():
        size = _linear_sizes(child)
        if size is None:
            if _n_params(child):
                return None
        else:
            sizes.append(size)
    if len(sizes) == 2:  # registered in either order; when both chain (d -> h -> d), the widening one
        chains = [pair for pair in (sizes, sizes[::-1]) if pair[0][1] == pair[1][0]]
        if not chains:
            return None
        (d_in, h), (_, d_out) = max(chains, key=lambda pair: pair[0][1] > pair[0][0])
    elif len(sizes) == 3:
        ins = [s for s in sizes if s[0] != s[1] and sizes.count(s) == 2]
        outs = [s for s in sizes if s not in ins]
        if len(ins) != 2 or len(outs) != 1 or ins[0][1] != outs[0][0]:
            return None
        (d_in, h), (_, d_out) = ins[0], outs[0]
    else:
        return None
    return (d_in, d_out) if h != d_in else None


def _split_sizes(module: nn.Module) -> tuple[int, int] | None:
    """(d_in, d_out) when `module` is a BERT-style layer, else None: its children `intermediate`
    (holding `dense`, d_in -> h, and an activation) and `output` (holding `dense`, h -> d_out,
    then its own dropout, LayerNorm and residual)."""
    inter, out = getattr(module, "intermediate", None), getattr(module, "output", None)
    if not isinstance(inter, nn.Module) or not isinstance(out, nn.Module) or isinstance(inter, HQKAN):
        return None
    first = _linear_sizes(getattr(inter, "dense", None))
    second = _linear_sizes(getattr(out, "dense", None))
    if first is None or second is None or first[1] != second[0]:
        return None
    if _n_params(inter) != _n_params(inter.dense):  # anything besides dense and a parameter-free activation
        return None
    return first[0], second[1]


def _dropout_p(module: nn.Module) -> float:
    """The probability of the dropout inside a block (0 when it has none)."""
    return max((m.p for m in module.modules() if isinstance(m, nn.Dropout)), default=0.0)


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


def _swap_split_ffn(layer: nn.Module, sizes: tuple[int, int], options: dict) -> tuple[int, int]:
    """BERT-style layer: `intermediate` becomes HQKAN(d_in, d_out) and `output.dense` nn.Identity.

    output computes LayerNorm(dropout(dense(h)) + x), so the block becomes
    x -> HQKAN -> dropout -> LayerNorm(. + x): its dropout, LayerNorm and residual stay.
    """
    removed = _n_params(layer.intermediate, layer.output.dense)
    hq = HQKAN(*sizes, **{**_factory(layer.intermediate), **options})
    layer.intermediate = hq
    layer.output.dense = nn.Identity()
    return removed, _n_params(hq)


#: what the search with predicate=None looks for (the warning when it finds nothing says so)
_SEARCHED = (
    "torch.nn.TransformerEncoderLayer/TransformerDecoderLayer; layers with `intermediate.dense` and "
    "`output.dense` children (BERT, RoBERTa); feed-forward modules whose only parametrised children are "
    "nn.Linear or transformers' Conv1D maps, two (d -> h -> d') or three (gated: two d -> h, one h -> d'), "
    "with h != d (GPT-2, ViT, Llama, Mistral, Qwen2, T5)"
)


def replace_ffn(
    model: nn.Module,
    predicate: Callable[[str, nn.Module], bool] | None = None,
    **hqkan_options,
) -> FFNReport:
    """Swap feed-forward blocks of `model` for HQKAN blocks, in place.

    Selection with ``predicate=None`` (modules visited in ``model.named_modules()`` order,
    nothing inside a chosen module visited again):

    - torch.nn.TransformerEncoderLayer / TransformerDecoderLayer: its linear1 -> activation ->
      dropout -> linear2 path becomes ``linear1 = HQKAN(d_model, d_model)`` with the other
      three set to nn.Identity; attention, norms and the residual dropout stay (the fused fast
      path is turned off; an enclosing nn.TransformerEncoder's nested-tensor path too). The
      model itself may be such a layer: it is then changed in place.
    - a BERT-style layer (children ``intermediate`` with a ``dense`` map d -> h and ``output``
      with a ``dense`` map h -> d'; BERT, RoBERTa and their kin): ``intermediate`` becomes
      HQKAN(d, d') and ``output.dense`` nn.Identity, so the block is x -> HQKAN -> dropout ->
      LayerNorm(. + x) with the output's own dropout and LayerNorm.
    - a feed-forward module whose parametrised children are only affine maps (nn.Linear, or
      transformers' Conv1D of GPT-2, stored transposed): two of them d -> h -> d' (GPT-2's
      mlp, ViT's mlp, T5's DenseReluDense, an nn.Sequential MLP) or three, gated, two d -> h
      and one h -> d' (Llama, Mistral, Qwen2), with h != d. The module becomes HQKAN(d, d')
      whose output dropout is the module's own dropout probability (GPT-2's residual dropout).

    When this finds nothing (and the model holds no HQKAN from an earlier call) a UserWarning
    says what was looked for. With a `predicate`, every module with ``predicate(name, module)``
    True is chosen instead (the model itself, name "", only when it is a torch or BERT-style
    layer); a chosen module of a kind above is swapped as described, any other is itself
    replaced by ``HQKAN(in, out)`` with in/out from its ``in_features``/``out_features`` or
    from its first and last affine map. Blocks that already hold an HQKAN are skipped, so a
    second call changes nothing.

    Every parameter outside the replaced paths is left untouched (the same tensors). New blocks
    take the device and dtype of the block they replace unless `device`/`dtype` are given.

    Args:
        model: any nn.Module.
        predicate: (name, module) -> bool, or None for the search above.
        **hqkan_options: options of HQKAN (latent_in, latent_out, hidden, squash, reps,
            dropout, ansatz, seed, ...). Sizes in_dim/out_dim come from the replaced block.

    Returns:
        FFNReport with the replaced names and the parameter counts before and after.

    Examples:
        >>> layer = nn.TransformerEncoderLayer(64, 4, dim_feedforward=256, batch_first=True)
        >>> report = replace_ffn(nn.TransformerEncoder(layer, 2, enable_nested_tensor=False))
        >>> report.replaced
        ['layers.0', 'layers.1']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module; got {type(model).__name__}")
    if predicate is not None and not callable(predicate):
        raise TypeError(f"`predicate` must be a callable (name, module) -> bool or None; got {predicate!r}")
    for arg in ("in_dim", "out_dim"):
        if arg in hqkan_options:
            raise ValueError(f"`{arg}` is taken from each replaced block; do not pass it to replace_ffn")
    report = FFNReport(params_before=_n_params(model))
    # (name, module, kind, sizes); kind: "torch" layer, "split" (BERT-style), "mlp" or "module"
    chosen: list[tuple[str, nn.Module, str, tuple[int, int] | None]] = []
    skip: tuple[str, ...] = ()
    for name, module in model.named_modules():
        if skip and name.startswith(skip):
            continue
        prefix = name + "." if name else ""  # "" (the model itself) prefixes every name
        if isinstance(module, HQKAN):
            skip += (prefix,)
            continue
        if isinstance(module, _TRANSFORMER_LAYERS):
            if isinstance(module.linear1, HQKAN):
                skip += (prefix,)
                continue
            kind, sizes = "torch", None
        elif (sizes := _split_sizes(module)) is not None:
            kind = "split"
        elif name and (sizes := _mlp_sizes(module)) is not None:
            kind = "mlp"
        elif name and predicate is not None:
            kind = "module"
        else:
            continue
        if predicate(name, module) if predicate is not None else True:
            if kind == "module":
                sizes = _io_features(name, module)  # errors before any change
            chosen.append((name, module, kind, sizes))
            skip += (prefix,)
    for name, module, kind, sizes in chosen:
        if kind == "torch":
            removed, added = _swap_transformer_ffn(module, hqkan_options)
        elif kind == "split":
            removed, added = _swap_split_ffn(module, sizes, hqkan_options)
        else:
            dropout = {"dropout": _dropout_p(module)} if kind == "mlp" else {}
            hq = HQKAN(*sizes, **{**_factory(module), **dropout, **hqkan_options})
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
    if not report.replaced and not any(isinstance(m, HQKAN) for m in model.modules()):
        what = f"with the given predicate (among {type(model).__name__}'s submodules)" if predicate else _SEARCHED
        warnings.warn(
            f"replace_ffn found no feed-forward block in {type(model).__name__}; it looked for {what}. "
            "Pass `predicate=lambda name, module: ...` to choose the modules yourself.",
            stacklevel=2,
        )
    return report
