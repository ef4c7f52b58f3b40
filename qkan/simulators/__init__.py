"""Evaluators: turn a layer's circuit spec and parameters into numbers (protocol in base.py).

Built in: "fourier" (closed form), "su2" (fused SU(2) products), "pennylane", "qiskit". Heavy
backends (PennyLane, Qiskit) are imported only when their evaluator is created.
"""

from qkan.simulators.base import Evaluator, available_evaluators, make_evaluator, register_evaluator

__all__ = ["Evaluator", "available_evaluators", "make_evaluator", "register_evaluator"]
