"""qkan: quantum-classical Kolmogorov-Arnold networks with DARUAN edge functions.

Closed-form (Fourier), SU(2), PennyLane and Qiskit evaluators behind one layer API.
"""

from qkan.layers import QKANLayer
from qkan.models import QKAN

__version__ = "0.1.0"

__all__ = ["QKAN", "QKANLayer", "__version__"]
