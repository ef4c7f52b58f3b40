"""Evaluators: turn a layer's circuit spec and parameters into numbers.

Each evaluator has ``name``, ``supports_grad``, ``unsupported(layer) -> reason | None``,
``edge_outputs(layer, x (N, I)) -> (N, O, I)`` and ``forward(layer, x (N, I)) -> (N, O)``.
Heavy backends (PennyLane, Qiskit) are imported only when their evaluator is created.
"""

from __future__ import annotations

import importlib

__all__ = ["EVALUATORS", "make_evaluator"]

#: evaluator name -> "module:Class"
EVALUATORS: dict[str, str] = {
    "fourier": "qkan.simulators.fourier:FourierEvaluator",
    "su2": "qkan.simulators.su2:SU2Evaluator",
    "pennylane": "qkan.simulators.pennylane:PennyLaneEvaluator",
    "qiskit": "qkan.simulators.qiskit:QiskitEvaluator",
}


def make_evaluator(name: str, **options):
    """Create the evaluator `name` with its options; ValueError listing the names otherwise."""
    if not isinstance(name, str) or name not in EVALUATORS:
        raise ValueError(f"`evaluator` must be 'auto' or one of {sorted(EVALUATORS)}; got {name!r}")
    module, cls = EVALUATORS[name].split(":")
    try:
        evaluator_cls = getattr(importlib.import_module(module), cls)
    except ModuleNotFoundError as err:
        if err.name and err.name.startswith("qkan"):
            raise ValueError(f"evaluator {name!r} is not available in this version of qkan") from err
        raise
    try:
        return evaluator_cls(**options)
    except TypeError as err:
        raise ValueError(f"evaluator {name!r} got unexpected options {sorted(options)}: {err}") from err
