"""qkan: quantum-classical Kolmogorov-Arnold networks with DARUAN edge functions.

Closed-form (Fourier), SU(2), PennyLane and Qiskit evaluators behind one layer API
(arXiv 2509.14026). PennyLane, Qiskit and gymnasium load only when first used.
"""

import importlib

from qkan import data
from qkan.activation import DARUAN
from qkan.circuits.ansatz import register_ansatz
from qkan.hqkan import HQKAN, FFNReport, replace_ffn
from qkan.interpret import attribution, prune, regularization
from qkan.layers import QKANLayer
from qkan.models import QKAN
from qkan.simulators.base import register_evaluator
from qkan.simulators.qiskit import QiskitJobError
from qkan.symbolic import model_formulas

__version__ = "0.1.0"

__all__ = [
    "DARUAN",
    "FFNReport",
    "HQKAN",
    "QKAN",
    "QKANLayer",
    "QiskitJobError",
    "attribution",
    "data",
    "kanqas",
    "model_formulas",
    "prune",
    "register_ansatz",
    "register_evaluator",
    "regularization",
    "replace_ffn",
    "__version__",
]


def __getattr__(name: str):
    """`qkan.kanqas` loads on first use (it needs gymnasium)."""
    if name == "kanqas":
        return importlib.import_module("qkan.kanqas")
    raise AttributeError(f"module 'qkan' has no attribute {name!r}")
