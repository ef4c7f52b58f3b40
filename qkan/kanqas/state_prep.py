"""State preparation (KANQAS, arXiv 2406.17630): reach a target state from |0...0> with CNOT + X, Y, Z, H, T."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from qkan._checks import check_int, check_interval
from qkan.kanqas.circuit import FIXED_GATES, Circuit
from qkan.kanqas.statevector import MAX_QUBITS, Noise, apply_gate, fidelity, initial_state, run
from qkan.kanqas.tasks import Task

__all__ = ["StatePrep"]


class PrepState(NamedTuple):
    """Episode state: the simulated state ((1, 2^n) or (1, 2^n, 2^n)) and its fidelity."""

    quantum: torch.Tensor
    fidelity: float


class StatePrep(Task):
    """Prepare a target state from |0...0> with CNOT + X, Y, Z, H, T.

    Reward 50 F when the fidelity F reaches the threshold, F otherwise (as published).

    Args:
        target: "bell" (2 qubits), "ghz" (n_qubits, default 3) or a state vector (2^n,)
            in wire-0-most-significant order (normalised here).
        n_qubits: for "ghz" (>= 2); inferred for a vector.
        threshold: the goal fidelity (0.98 as published); under noise the env's default
            threshold is this times the fidelity the textbook circuit reaches.
    """

    gates = FIXED_GATES
    observation_bounds = (0.0, 1.0)

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
        self.goal_name = f"fidelity >= {self.threshold:g}"
        self.target = torch.as_tensor(state, dtype=torch.complex128)

    # ------------------------------------------------------------------------------ Task API
    def start(self, circuit: Circuit, noise: Noise | None) -> PrepState:
        density = noise is not None and not noise.is_zero
        quantum = initial_state(self.n_qubits, density=density, bits=circuit.initial_bits)
        return PrepState(quantum, self.score(quantum))

    def apply(self, state: PrepState, circuit: Circuit, noise: Noise | None, rng) -> PrepState:
        gate = circuit.gates[-1]  # one gate per step: advance the kept state
        quantum = apply_gate(state.quantum, gate.name, gate.qubits, noise=noise)
        return PrepState(quantum, self.score(quantum))

    def error(self, state: PrepState) -> float:
        return 1.0 - state.fidelity

    def success(self, state: PrepState, threshold: float) -> bool:
        return state.fidelity >= threshold

    def at_goal(self, state: PrepState) -> bool:
        return state.fidelity >= self.threshold

    def reward(self, previous: PrepState, state: PrepState, success: bool, last: bool) -> float:
        return 50.0 * state.fidelity if success else state.fidelity

    def info(self, state: PrepState) -> dict:
        return {"fidelity": state.fidelity}

    def default_threshold(self, noise: Noise | None) -> float:
        return self.threshold * self.reachable_fidelity(noise)

    def check_threshold(self, threshold) -> float:
        return check_interval("threshold", threshold, 0.0, 1.0, open_low=True)

    # ------------------------------------------------------------------------------ helpers
    def reference_circuit(self) -> Circuit | None:
        """Textbook circuit for Bell/GHZ (H then a CNOT chain); None for a custom state."""
        if self.name == "state":
            return None
        circuit = Circuit(self.n_qubits)
        circuit.append("H", (0,))
        for q in range(self.n_qubits - 1):
            circuit.append("CNOT", (q, q + 1))
        return circuit

    def reachable_fidelity(self, noise: Noise | None) -> float:
        """Fidelity of the reference circuit under `noise` (1.0 without noise or reference)."""
        reference = self.reference_circuit()
        if noise is None or noise.is_zero or reference is None:
            return 1.0
        return self.score(run(reference, noise=noise))

    def score(self, state: torch.Tensor) -> float:
        """Fidelity of a (1, ...) state with the target."""
        return float(fidelity(state, self.target)[0])

    def __repr__(self) -> str:
        return f"StatePrep({self.name!r}, n_qubits={self.n_qubits}, threshold={self.threshold})"
