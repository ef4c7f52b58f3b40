"""State preparation (KANQAS, arXiv 2406.17630): reach a target state from |0...0> with CNOT + X, Y, Z, H, T.

A FidelityTask (qkan.kanqas.tasks): the simulation, reward, success test and thresholds are inherited."""

from __future__ import annotations

import math

import numpy as np
import torch

from qkan._checks import check_int
from qkan.kanqas.circuit import Circuit
from qkan.kanqas.statevector import MAX_QUBITS
from qkan.kanqas.statevector import fidelity as state_fidelity
from qkan.kanqas.tasks import FidelityTask

__all__ = ["StatePrep"]


class StatePrep(FidelityTask):
    """Prepare a target state from |0...0> with CNOT + X, Y, Z, H, T.

    Reward 50 F when the fidelity F reaches the threshold, F otherwise (as published).

    Args:
        target: "bell" (2 qubits), "ghz" (n_qubits, default 3) or a state vector (2^n,)
            in wire-0-most-significant order (normalised here).
        n_qubits: for "ghz" (>= 2); inferred for a vector.
        threshold: the goal fidelity (0.98 as published); under noise the env's default
            threshold is this times the fidelity the textbook circuit reaches.
    """

    def __init__(self, target: str | np.ndarray = "bell", n_qubits: int | None = None, *,
                 threshold: float = 0.98) -> None:
        self.threshold = self.check_threshold(threshold)
        if isinstance(target, str):
            if target not in ("bell", "ghz"):
                raise ValueError(f"`target` must be 'bell', 'ghz' or a state vector; got {target!r}")
            if target == "bell" and n_qubits not in (None, 2):
                raise ValueError(f"`n_qubits` must be 2 for 'bell'; got {n_qubits!r}")
            n = 2 if target == "bell" else (3 if n_qubits is None else n_qubits)
            check_int("n_qubits", n, low=2)
            if n > MAX_QUBITS:
                raise ValueError(f"`n_qubits` must be an int in [2, {MAX_QUBITS}]; got {n!r}")
            state = np.zeros(2**n, dtype=complex)
            state[0] = state[-1] = 1 / math.sqrt(2)
            self.name = "bell" if target == "bell" else f"ghz{n}"
        else:
            state = np.asarray(target, dtype=complex).reshape(-1)
            n = int(round(math.log2(max(len(state), 1))))
            if 2**n != len(state) or not 1 <= n <= MAX_QUBITS or not np.linalg.norm(state) > 0:
                raise ValueError(f"`target` vector must be nonzero with length 2^n, n in [1, {MAX_QUBITS}]; "
                                 f"got length {len(state)}")
            if n_qubits not in (None, n):
                raise ValueError(f"`n_qubits` must match the target vector ({n}); got {n_qubits!r}")
            state = state / np.linalg.norm(state)
            self.name = "state"
        self.n_qubits = n
        self.default_max_depth = 6 if n == 2 else 4 * n
        self.target = torch.as_tensor(state, dtype=torch.complex128)

    def fidelity(self, quantum: torch.Tensor) -> float:
        """Fidelity of a (1, ...) state with the target."""
        return float(state_fidelity(quantum, self.target)[0])

    def reference_circuit(self) -> Circuit | None:
        """Textbook circuit for Bell/GHZ (H then a CNOT chain); None for a custom state."""
        if self.name == "state":
            return None
        circuit = Circuit(self.n_qubits)
        circuit.append("H", (0,))
        for q in range(self.n_qubits - 1):
            circuit.append("CNOT", (q, q + 1))
        return circuit

    def __repr__(self) -> str:
        return f"StatePrep({self.name!r}, n_qubits={self.n_qubits}, threshold={self.threshold})"
