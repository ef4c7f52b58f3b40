"""The checks around every QKANLayer call, and the float32 detour of low-precision layers.

check_input validates and flattens the input, check_domain keeps arccos ansaetze in [-1, 1],
check_output refuses NaN leaving a layer, in_compute_precision runs evaluators on float32
copies of bfloat16/float16 parameters. On CUDA every value check is an asynchronous assert.
Inside torch.func transforms and torch.compile tracing the value checks (finite, range, px
domain) are skipped, since values cannot be read there; shapes and dtypes are still checked.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from qkan._checks import check_type
from qkan.simulators.base import transformed

__all__ = ["LOW_PRECISION", "PARAM_DTYPES", "check_input", "check_domain", "check_output", "in_compute_precision"]

#: parameter dtypes the evaluators do not compute in: they run on float32 copies (in_compute_precision)
LOW_PRECISION = (torch.bfloat16, torch.float16)
#: parameter dtypes a layer accepts
PARAM_DTYPES = (torch.float32, torch.float64, *LOW_PRECISION)


def check_input(layer, x) -> torch.Tensor:
    """Validate x (*, I) and flatten it to (N, I); the public entry's one check of its input.

    TypeError for a non-tensor or a non-floating dtype, ValueError for a wrong shape, a dtype
    other than the parameters' (outside autocast), non-finite values or |x| > max_input().
    On CUDA the value check is asynchronous (no host-device synchronisation).
    """
    check_type("x", x, torch.Tensor)
    if layer.theta.dtype not in PARAM_DTYPES:
        raise ValueError(
            f"the layer's parameters are {layer.theta.dtype}; QKAN takes float32, float64, bfloat16 or float16 "
            "parameters: convert back (e.g. model.float())"
        )
    if not x.is_floating_point():
        raise TypeError(f"`x` must be a floating-point tensor; got {x.dtype}")
    if x.dim() < 1 or x.shape[-1] != layer.in_dim:
        raise ValueError(f"`x` must have shape (*, {layer.in_dim}); got {tuple(x.shape)}")
    if x.dtype != layer.theta.dtype and torch.is_autocast_enabled(x.device.type):
        x = x.to(layer.theta.dtype)  # autocast: features in the parameters' precision, matmuls in bf16/fp16
    if x.dtype != layer.theta.dtype:
        raise ValueError(
            f"`x` has dtype {x.dtype} but the layer's parameters are {layer.theta.dtype}; "
            f"convert one of them (e.g. layer.to({x.dtype}))"
        )
    bound = layer.max_input()
    flat = x if x.dim() == 2 else x.reshape(-1, layer.in_dim)  # no view (and autograd node) when already 2-d
    if x.numel() == 0:
        return flat
    if transformed():  # torch.func / torch.compile: values cannot be read on the host while tracing
        return flat
    low, high = torch.aminmax(x)  # one pass; NaN propagates into both
    if x.device.type == "cpu":  # read on the host: comparisons with NaN are False
        if -bound <= low.item() and high.item() <= bound:
            return flat
        if not bool(torch.isfinite(x).all()):
            raise ValueError("`x` contains NaN or infinite values")
        raise ValueError(
            f"`x` must satisfy |x| <= {bound:.4g} for {x.dtype} (inputs are angles; beyond this the rounding of x "
            f"alone loses half the digits of the edge values); got max |x| = {float(x.detach().abs().amax()):.4g}: rescale the inputs"
        )
    ok = (low >= -bound) & (high <= bound)  # False for NaN and infinities too
    _assert(ok, f"`x` contains NaN, infinite or too large values (|x| > {bound:.4g})")
    return flat

def check_domain(layer, x: torch.Tensor) -> None:
    """arccos ansaetze need |phi| <= 1 for every encoded angle (x (N, I) validated)."""
    if not layer.ansatz.arccos or x.numel() == 0 or transformed():
        return
    with torch.no_grad():
        worst = layer.encoded_angles(x).abs().amax()
    _assert(
        worst <= 1,
        "`x` gives encoding angles phi = w*x + b outside [-1, 1] (max |phi| = {:.4g}); "
        "the 'px' ansatz applies arccos(phi): rescale the inputs into [-1, 1]",
        worst,
    )


def in_compute_precision(layer, fn: Callable[..., torch.Tensor], *args) -> torch.Tensor:
    """fn(*args) -> tensor (or a tuple of tensors), with this layer's parameters, buffers and tensor args in a precision evaluators compute in.

    bfloat16 and float16 parameters are read as float32 copies for the call (gradients flow
    back to them) and the result is cast back to the parameters' dtype; other dtypes run fn
    as is. The copies take part in autograd even without grad mode, so evaluator caches
    keyed on tensor identity never serve a result of an earlier call's copies.
    """
    dtype = layer.theta.dtype
    if dtype not in LOW_PRECISION:
        return fn(*args)
    grad = torch.is_grad_enabled()
    with torch.inference_mode(False), torch.enable_grad():
        wide = {}
        for name, t in [*layer.named_parameters(), *layer.named_buffers()]:
            w = t.float()
            wide[f"layer.{name}"] = w if w.requires_grad or not isinstance(t, nn.Parameter) else w.requires_grad_()
        args = [a.float() if isinstance(a, torch.Tensor) and a.dtype in LOW_PRECISION else a for a in args]
        out = torch.func.functional_call(_Call(layer), wide, (fn, *args))
    cast = lambda t: t.to(dtype) if grad else t.detach().to(dtype)  # noqa: E731
    return type(out)(*map(cast, out)) if isinstance(out, tuple) else cast(out)

def check_output(layer, y: torch.Tensor) -> torch.Tensor:
    """y itself; FloatingPointError when it holds NaN or infinities (the inputs were checked finite).

    The message names the non-finite parameters, or else the evaluator (e.g. a circuit
    backend that returned NaN). On CUDA an asynchronous device assert.
    """
    where = f"layer {layer.in_dim} -> {layer.out_dim}"
    if transformed():
        return y
    if y.device.type == "cpu":  # a finite sum is the common case: one pass, no bool tensor
        if math.isfinite(y.sum().item()) or bool(torch.isfinite(y).all()):
            return y
        bad = [name for name, p in layer.named_parameters() if not bool(torch.isfinite(p).all())]
        if bad:
            raise FloatingPointError(f"{where}: the parameters {bad} hold NaN or infinite values, so do the outputs")
        raise FloatingPointError(
            f"{where}: evaluator {layer.evaluator!r} gave NaN or infinite values for finite inputs and parameters "
            "(a circuit backend may have returned NaN)"
        )
    message = f"{where}: NaN or infinite outputs for finite inputs (non-finite parameters or evaluator values)"
    _assert(torch.isfinite(y).all(), message)
    return y


class _Call(nn.Module):
    """Holds a layer so torch.func.functional_call can swap its tensors around any function call."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, fn: Callable, *args):
        return fn(*args)


def _assert(ok: torch.Tensor, message: str, value: torch.Tensor | None = None) -> None:
    """Raise ValueError(message) unless the 0-dim bool `ok`; on CUDA an asynchronous device assert.

    `message` may hold one ``{}`` field for `value` (read on the host only when the check fails).
    """
    if ok.device.type == "meta":  # shapes only: nothing to check
        return
    if ok.device.type == "cuda":
        torch._assert_async(ok, message.replace("{:.4g}", "?"))
    elif not bool(ok):
        raise ValueError(message.format(float(value)) if value is not None else message)
