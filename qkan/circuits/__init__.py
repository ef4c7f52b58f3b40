"""Circuit specs (ansatz.py) and converters to PennyLane and Qiskit (loaded on first use)."""

from qkan.circuits.ansatz import ANSATZE, Ansatz, Gate, get_ansatz

__all__ = ["ANSATZE", "Ansatz", "Gate", "get_ansatz"]
