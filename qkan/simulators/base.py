"""The evaluator protocol and the registry of evaluator names.

An evaluator turns a layer's circuit spec and parameters into numbers and knows nothing else:
the layer owns the parameter layout and the layer formula and hands evaluators what they need
(``layer.encoded_angles(x)``, ``layer.edge_theta()``, ``layer.combine_edges(f, x)``). Caches and
counters belong to the evaluator object, one per layer.

Adding an evaluator takes one class and one call::

    class Mine(qkan.simulators.Evaluator):
        name = "mine"
        def edge_outputs(self, layer, x):      # (N, I) -> (N, O, I)
            ...
    qkan.register_evaluator("mine", Mine)       # layer.set_evaluator("mine", **options) now works
"""

from __future__ import annotations

import importlib
import inspect
from typing import Callable

import torch

__all__ = ["Evaluator", "register_evaluator", "available_evaluators", "make_evaluator", "transformed", "check_transformable"]


def check_transformable(evaluator: Evaluator) -> None:
    """RuntimeError inside a torch.func transform when `evaluator` cannot be traced by it."""
    if torch._C._are_functorch_transforms_active() and not getattr(evaluator, "supports_transforms", False):
        raise RuntimeError(
            f"evaluator {evaluator.name!r} does not support torch.func transforms (vmap, grad, jacrev, ...): "
            "its values come from outside torch; use evaluator 'fourier' or 'su2' (set_evaluator) for them"
        )


def transformed() -> bool:
    """True inside torch.func transforms (vmap, grad, jacrev, ...), forward-mode AD
    (torch.autograd.forward_ad) and torch.compile / torch.export tracing, where only torch
    operations run: native kernels, caches and host-side value checks step aside (the torch
    paths compute the same function)."""
    return (
        torch._C._are_functorch_transforms_active()
        or torch.compiler.is_compiling()
        or torch.autograd.forward_ad._current_level >= 0
    )


class Evaluator:
    """Base class of evaluators: override ``edge_outputs`` (and ``forward`` for a fused path).

    Attributes:
        name: the registered name.
        supports_transforms: True when the evaluator computes in differentiable torch operations
            that torch.func transforms (vmap, jacrev, ...) can trace; the layer refuses a transform
            otherwise (RuntimeError naming the evaluator) instead of returning wrong derivatives.
    """

    name = "evaluator"
    supports_transforms = False

    def __init_subclass__(cls, **kwargs) -> None:
        """A subclass that does not implement edge_outputs fails here, at class creation."""
        super().__init_subclass__(**kwargs)
        if cls.edge_outputs is Evaluator.edge_outputs:
            raise TypeError(f"evaluator class {cls.__name__} must implement edge_outputs(layer, x): (N, I) -> (N, O, I)")

    def unsupported(self, layer) -> str | None:
        """Why this evaluator cannot run `layer` (a sentence), or None when it can."""
        return None

    def edge_outputs(self, layer, x: torch.Tensor) -> torch.Tensor:
        """Edge values f_ji(x_i) before any weight: x (N, I) -> (N, O, I). Every subclass implements it."""
        raise NotImplementedError

    def forward(self, layer, x: torch.Tensor) -> torch.Tensor:
        """The layer's output: x (N, I) -> (N, O); by default the layer formula on edge_outputs."""
        return layer.combine_edges(self.edge_outputs(layer, x), x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


#: name -> a factory (a class or callable taking the options) or a lazy "module:attribute" path
_REGISTRY: dict[str, Callable[..., Evaluator] | str] = {
    "fourier": "qkan.simulators.fourier:FourierEvaluator",
    "su2": "qkan.simulators.su2:SU2Evaluator",
    "pennylane": "qkan.simulators.pennylane:PennyLaneEvaluator",
    "qiskit": "qkan.simulators.qiskit:QiskitEvaluator",
}


def register_evaluator(name: str, factory: Callable[..., Evaluator]) -> None:
    """Make `name` usable in ``set_evaluator(name, **options)``: ``factory(**options)`` builds one.

    Args:
        name: a new name (not "auto"); registering an existing name replaces it.
        factory: a class or callable returning an object with the Evaluator methods.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"`name` must be a non-empty str; got {name!r}")
    if name == "auto":
        raise ValueError("`name` 'auto' is reserved (it picks 'fourier' or 'su2')")
    if not callable(factory):
        raise TypeError(f"`factory` must be callable (a class or function building the evaluator); got {factory!r}")
    _REGISTRY[name] = factory


def _add_plugins() -> None:
    """Evaluators of installed packages: entry points in the group "qkan.evaluators", each
    ``name = "module:Class"``; names registered here (built-in or by register_evaluator) win."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="qkan.evaluators"):
        _REGISTRY.setdefault(ep.name, ep.value)


def available_evaluators() -> list[str]:
    """Registered evaluator names, sorted, installed plugins included (``"auto"`` is always accepted as well)."""
    _add_plugins()
    return sorted(_REGISTRY)


def make_evaluator(name: str, **options) -> Evaluator:
    """Build the evaluator registered as `name` with its options.

    Raises:
        TypeError: `name` is not a str. ValueError: unknown name (the message lists the names),
        or options the evaluator does not take.
    """
    if not isinstance(name, str):
        raise TypeError(f"`evaluator` must be a str, one of {['auto', *available_evaluators()]}; got {name!r}")
    if name not in _REGISTRY:
        _add_plugins()
    if name not in _REGISTRY:
        raise ValueError(f"`evaluator` must be 'auto' or one of {available_evaluators()}; got {name!r}")
    factory = _REGISTRY[name]
    if isinstance(factory, str):
        module, attr = factory.split(":")
        factory = getattr(importlib.import_module(module), attr)
    try:
        inspect.signature(factory).bind(**options)
    except TypeError as err:
        raise ValueError(f"evaluator {name!r} got unexpected options {sorted(options)}: {err}") from None
    except ValueError:  # no signature to read (some builtins): let the call decide
        pass
    return factory(**options)
