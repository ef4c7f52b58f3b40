"""CircuitEnv: gate-by-gate circuit construction as a gymnasium environment (KANQAS/CRLQAS)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np

from qkan._checks import check_int
from qkan.kanqas.circuit import ROTATIONS, Circuit
from qkan.kanqas.simulator import Noise, apply_gate, initial_state
from qkan.kanqas.tasks import CHEMICAL_ACCURACY, GroundState, StatePrep, make_task

__all__ = ["CircuitEnv", "as_noise"]


def as_noise(noise) -> Noise | None:
    """None | Noise | (p1, p2) | {"p1": .., "p2": ..} -> Noise or None."""
    if noise is None or isinstance(noise, Noise):
        return noise
    if isinstance(noise, dict):
        return Noise(**noise)
    if isinstance(noise, (tuple, list)) and len(noise) == 2:
        return Noise(*noise)
    raise ValueError(f"`noise` must be None, a Noise, (p1, p2) or a dict; got {noise!r}")


class CircuitEnv(gym.Env):
    """Build a circuit one gate per step.

    ## Description
    State preparation (KANQAS, arXiv 2406.17630): reach a target state from |0...0> with CNOT and
    X, Y, Z, H, T. Ground states (CRLQAS, arXiv 2402.03500): lower the energy of a Hamiltonian
    from its Hartree-Fock state with CNOT and RX, RY, RZ; after every step all angles are
    re-optimised, so the energy is the best the current structure reaches.

    ## Action Space
    Discrete(N(N-1) + G N): first the CNOTs (control c, target t) for c in 0..N-1, t != c in
    increasing order, then gate g of the task's gate set on qubit q at N(N-1) + q G + g
    (G = 5: X Y Z H T, or G = 3: RX RY RZ). Repeating the previous action is illegal:
    ``info["action_mask"]`` (int8, 1 = legal) masks it; an illegal action adds no gate but
    uses up the step.

    ## Observation Space
    Box of shape (D * (N + R) * N,), the flattened tensor obs[d, row, q] with D = max_depth:
    a CNOT (c, t) sets obs[d, t, c] = 1; gate g on q sets obs[d, N + g, q] = 1; for ground
    states obs[d, N + 3 + g, q] holds the rotation's current angle in [-pi, pi)
    (R = 5, or R = 6 for ground states). Every gate sits in the first layer d free on its
    qubits.

    ## Rewards
    State preparation: 50 F when the fidelity F reaches the threshold, F otherwise.
    Ground state: +5 when |E - E_min| < threshold, -5 at max depth, otherwise
    clip((E_prev - E) / |E_prev - E_min|, -1, 1).

    ## Starting State
    An empty circuit on |0...0> (state preparation) or the task's initial basis state.

    ## Episode End
    Terminated on success or after ``max_depth`` steps (the circuit is the MDP state, so the
    step limit is part of the task, not a truncation).

    Args:
        task: a StatePrep / GroundState or a name ("bell", "ghz3", "h2", "lih").
        max_depth: steps per episode D (default 6 for 2-qubit states, 4N for larger ones,
            10 for ground states).
        noise: None, Noise, (p1, p2) or a dict: bit flip p1 after single-qubit gates and
            depolarising p2 after CNOTs, on density matrices.
        threshold: success threshold: fidelity for state preparation (default the task's 0.98
            times the fidelity its textbook circuit reaches under `noise`, which is 1 without
            noise), energy error in Hartree for ground states (default 1.6e-3; a curriculum
            may move it).
        render_mode: None | "ansi" (render() returns the drawing) | "human" (prints it).
    """

    metadata = {"render_modes": ["ansi", "human"]}

    def __init__(self, task: StatePrep | GroundState | str = "bell", *, max_depth: int | None = None,
                 noise=None, threshold: float | None = None, render_mode: str | None = None) -> None:
        self.task = make_task(task)
        self.noise = as_noise(noise)
        n = self.task.n_qubits
        self.ground = isinstance(self.task, GroundState)
        if max_depth is None:
            max_depth = 10 if self.ground else (6 if n == 2 else 4 * n)
        check_int("max_depth", max_depth)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"`render_mode` must be None, 'ansi' or 'human'; got {render_mode!r}")
        if threshold is None:
            threshold = CHEMICAL_ACCURACY if self.ground else self.task.threshold * self.task.reachable_fidelity(self.noise)
        if not threshold > 0:
            raise ValueError(f"`threshold` must be > 0; got {threshold!r}")
        self.n_qubits, self.max_depth, self.threshold, self.render_mode = n, max_depth, float(threshold), render_mode
        self.gate_names = self.task.gates
        self.actions: list[tuple[str, tuple[int, ...]]] = [
            ("CNOT", (c, t)) for c in range(n) for t in range(n) if t != c
        ] + [(g, (q,)) for q in range(n) for g in self.gate_names]
        self.n_rows = n + len(self.gate_names) + (len(ROTATIONS) if self.ground else 0)
        self.obs_shape = (max_depth, self.n_rows, n)
        size = int(np.prod(self.obs_shape))
        low = -math.pi if self.ground else 0.0
        high = math.pi if self.ground else 1.0
        self.observation_space = gym.spaces.Box(low, high, shape=(size,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(len(self.actions))
        self.circuit = Circuit(n)
        self._last_action: int | None = None

    # ------------------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        bits = self.task.initial_bits if self.ground else ()
        self.circuit = Circuit(self.n_qubits, initial_bits=bits)
        self._last_action = None
        self.steps = 0
        if self.ground:
            self.energy = float(self.task.energy(self.circuit, self.noise)[0])
        else:
            density = self.noise is not None and not self.noise.is_zero
            self._state = initial_state(self.n_qubits, density=density)
            self.fidelity = self.task.score(self._state)
        return self._observation(), self._info(illegal=False)

    def step(self, action):
        action = int(action)
        if not 0 <= action < len(self.actions):
            raise ValueError(f"`action` must be in [0, {len(self.actions)}); got {action}")
        illegal = action == self._last_action
        self.steps += 1
        if not illegal:
            name, qubits = self.actions[action]
            self.circuit.append(name, qubits)
            self._last_action = action
        last = self.steps >= self.max_depth
        if self.ground:
            previous = self.energy
            if not illegal:
                self.energy = self.task.optimize(self.circuit, self.noise, rng=self.np_random)
            error = abs(self.energy - self.task.exact_energy)
            success = error < self.threshold
            if success:
                reward = 5.0
            elif last:
                reward = -5.0
            else:
                gap = max(abs(previous - self.task.exact_energy), 1e-12)
                reward = float(np.clip((previous - self.energy) / gap, -1.0, 1.0))
        else:
            if not illegal:
                self.fidelity = self._advance(*self.actions[action])
            success = self.fidelity >= self.threshold
            reward = 50.0 * self.fidelity if success else self.fidelity
        terminated = bool(success or last)
        if self.render_mode == "human":
            self.render()
        return self._observation(), reward, terminated, False, self._info(illegal, success)

    def render(self) -> str | None:
        text = self.circuit.draw()
        if self.render_mode == "human":
            print(text)
            return None
        return text

    # ------------------------------------------------------------------------------ helpers
    def action_mask(self) -> np.ndarray:
        """(n_actions,) int8, 0 for the action that would repeat the previous gate."""
        mask = np.ones(len(self.actions), dtype=np.int8)
        if self._last_action is not None:
            mask[self._last_action] = 0
        return mask

    def _advance(self, name: str, qubits: tuple[int, ...]) -> float:
        """Apply the new gate to the kept state (one gate per step); returns the fidelity."""
        self._state = apply_gate(self._state, name, qubits, noise=self.noise)
        return self.task.score(self._state)

    @property
    def error(self) -> float:
        """Energy error |E - E_min| (ground states) or infidelity 1 - F (state preparation)."""
        return abs(self.energy - self.task.exact_energy) if self.ground else 1.0 - self.fidelity

    def _observation(self) -> np.ndarray:
        n = self.n_qubits
        obs = np.zeros(self.obs_shape, dtype=np.float32)
        free = [0] * n
        for gate in self.circuit.gates:
            slot = max(free[q] for q in gate.qubits)
            for q in gate.qubits:
                free[q] = slot + 1
            if gate.name == "CNOT":
                c, t = gate.qubits
                obs[slot, t, c] = 1
            else:
                g, q = self.gate_names.index(gate.name), gate.qubits[0]
                obs[slot, n + g, q] = 1
                if gate.param is not None:
                    angle = float(self.circuit.angles[gate.param])
                    obs[slot, n + len(self.gate_names) + g, q] = (angle + math.pi) % (2 * math.pi) - math.pi
        return obs.reshape(-1)

    def _info(self, illegal: bool, success: bool = False) -> dict:
        info = {"action_mask": self.action_mask(), "success": bool(success), "illegal": bool(illegal),
                "n_gates": self.circuit.n_gates, "n_cnots": self.circuit.n_cnots, "depth": self.circuit.depth,
                "error": self.error}
        if self.ground:
            info["energy"] = self.energy
        else:
            info["fidelity"] = self.fidelity
        return info


def _register() -> None:
    """Register ``qkan/KANQAS-v0`` (kwargs as CircuitEnv; task defaults to "bell")."""
    if "qkan/KANQAS-v0" not in gym.registry:
        gym.register("qkan/KANQAS-v0", entry_point="qkan.kanqas.env:CircuitEnv")


_register()
