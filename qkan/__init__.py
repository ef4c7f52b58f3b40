"""qkan: quantum-classical Kolmogorov-Arnold networks with DARUAN edge functions.

Closed-form (Fourier), SU(2), PennyLane and Qiskit evaluators behind one layer API
(arXiv 2509.14026). PennyLane, Qiskit and gymnasium load only when first used.
"""

import importlib

from qkan import data
from qkan._foreign import foreign_import
from qkan.activation import DARUAN
from qkan.circuits.ansatz import register_ansatz
from qkan.hqkan import HQKAN, FFNReport, replace_ffn
from qkan.interpret import attribution, prune, regularization
from qkan.layers import QKANLayer
from qkan.models import QKAN
from qkan.simulators.base import register_evaluator
from qkan.simulators.qiskit import QiskitJobError
from qkan.symbolic import model_formulas

__version__ = "0.2.0"
"""This package's version (pyproject.toml reads it from here; ``qkan --version`` prints it)."""
DISTRIBUTION = "qkan-daruan"
"""The name to install: ``pip install qkan-daruan`` (PyPI's "qkan" is another project, the paper authors' package)."""

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
    "DISTRIBUTION",
    "__version__",
]


def __getattr__(name: str):
    """`qkan.kanqas` loads on first use (it needs gymnasium); pykan / qkan 0.2.3 names get ours in the error."""
    if name == "kanqas":
        return importlib.import_module("qkan.kanqas")
    raise foreign_import("qkan", name)
