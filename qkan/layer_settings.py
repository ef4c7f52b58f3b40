"""LayerSettings: a QKANLayer's constructor arguments, checked once and frozen.

A layer keeps one LayerSettings. It is the single source of what the layer is (its sizes,
ansatz, encoding, initialisation, ...), and of every view of it: ``settings()``, ``config()``
and ``derived()`` (the rule for layers made from this one by extend and prune).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from qkan._checks import check_bool, check_choice, check_int, check_number
from qkan.circuits.ansatz import Ansatz, get_ansatz

__all__ = ["LayerSettings", "BASES", "ENCODINGS", "GROUPS", "MEASURES", "THETA_INITS", "POST_INITS", "MAX_REPS"]

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
#: theta initialisations (reset_parameters); the default was chosen by benchmarks/reproduce.py
THETA_INITS = ("xavier", "normal", "uniform")
#: edge-weight initialisations: c = 1, or c = 1 / sqrt(in_dim) as torch.nn.Linear scales its weights
POST_INITS = ("ones", "fan_in")
#: largest `reps` accepted (the Fourier degree of an edge; beyond it a typo would ask for gigabytes)
MAX_REPS = 1000


@dataclass(frozen=True)
class LayerSettings:
    """The checked constructor arguments of a QKANLayer (see its docstring for their meaning).

    Checks run at construction: TypeError for a wrong type, ValueError for a wrong value, each
    naming the argument. ``base=None`` is stored as "none"; ``seed`` and ``reps`` as ints,
    a numeric ``base_init`` as a float.
    """

    in_dim: int
    out_dim: int
    reps: int = 3
    ansatz: str = "pz"
    encoding: str = "fixed"
    base: str | Callable = "silu"
    group: str | None = None
    measure: str = "z"
    bias: bool = False
    seed: int | None = None
    theta_init: str = "xavier"
    base_init: str | float = "uniform"
    post_init: str = "ones"
    #: the ansatz's spec (resolved from its name once)
    spec: Ansatz = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen: normalised values)
        put("in_dim", check_int("in_dim", self.in_dim))
        put("out_dim", check_int("out_dim", self.out_dim))
        put("reps", check_int("reps", self.reps, high=MAX_REPS))
        put("spec", get_ansatz(self.ansatz))
        put("ansatz", self.spec.name)
        check_choice("encoding", self.encoding, ENCODINGS)
        check_choice("group", self.group, GROUPS)
        check_choice("measure", self.measure, MEASURES)
        check_choice("theta_init", self.theta_init, THETA_INITS)
        check_choice("post_init", self.post_init, POST_INITS)
        if isinstance(self.base_init, str):
            check_choice("base_init", self.base_init, ("uniform",))
        else:
            put("base_init", check_number("base_init", self.base_init, low=-math.inf))
        check_bool("bias", self.bias)
        put("seed", check_int("seed", self.seed, low=0, high=2**63 - 1, allow_none=True))
        if self.base is None:
            put("base", "none")
        if not callable(self.base):
            check_choice("base", self.base, list(BASES))

    @property
    def base_fn(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """The residual activation as a function; None for base "none"."""
        return self.base if callable(self.base) else BASES[self.base]

    def as_dict(self) -> dict:
        """The constructor arguments as keywords of QKANLayer."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}

    def replace(self, **changes) -> LayerSettings:
        """A checked copy with `changes` applied."""
        return dataclasses.replace(self, **changes)
