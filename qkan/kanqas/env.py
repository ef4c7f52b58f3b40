"""CircuitEnv: gate-by-gate circuit construction as a gymnasium environment (KANQAS/CRLQAS).

The env knows circuits, actions, masks and observations; everything about the target (start
state, reward, success, info, defaults) comes from its Task (qkan.kanqas.tasks).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from qkan._checks import check_choice, check_int
from qkan.kanqas.circuit import Circuit
from qkan.kanqas.statevector import Noise
from qkan.kanqas.tasks import Task, make_task

__all__ = ["CircuitEnv", "as_noise", "MASKS"]

#: "previous": the previous action is illegal (default); "qubit": the last gate on each qubit (published)
MASKS = ("previous", "qubit")


def as_noise(noise) -> Noise | None:
    """None | Noise | (p1, p2) | {"p1": .., "p2": ..} | a Qiskit backend -> Noise or None."""
    if noise is None or isinstance(noise, Noise):
        return noise
    if isinstance(noise, dict):
        return Noise(**noise)
    if isinstance(noise, (tuple, list)) and len(noise) == 2:
        return Noise(*noise)
    if getattr(noise, "target", None) is not None:  # a Qiskit backend: its calibration (Noise.from_backend)
        return Noise.from_backend(noise)
    raise ValueError(f"`noise` must be None, a Noise, (p1, p2), a dict or a Qiskit backend; got {noise!r}")


class CircuitEnv(gym.Env):
    """Build a circuit one gate per step.

    ## Description
    State preparation (KANQAS, arXiv 2406.17630): reach a target state from |0...0> with CNOT and
    X, Y, Z, H, T. Ground states (CRLQAS, arXiv 2402.03500): lower the energy of a Hamiltonian
    from its Hartree-Fock state with CNOT and RX, RY, RZ, all angles re-optimised after every
    step. Any registered Task (``kanqas.register_task``) works the same way.

    ## Action Space
    Discrete(N(N-1) + G N): first the CNOTs (control c, target t) for c in 0..N-1, t != c in
    increasing order, then gate g of the task's gate set on qubit q at N(N-1) + q G + g.
    ``info["action_mask"]`` (int8, 1 = legal) marks illegal actions: with mask="previous"
    (default) the previous action, with mask="qubit" (as published) the last gate on each
    qubit. An illegal action adds no gate but uses up the step. "previous" is the default
    because the published mask made learning worse here (benchmarks/kanqas.py, 300 episodes,
    3 seeds, one-step smooth-L1 agent, success rate previous -> qubit: GHZ-3 MLP 0.50 -> 0.09, QKAN 0.15 -> 0.03; Bell
    QKAN 0.71 -> 0.79, MLP 0.74 -> 0.73, KAN 0.76 -> 0.70).

    ## Observation Space
    Box of shape (D * (N + G + X) * N,), the flattened tensor obs[d, row, q] with D = max_depth:
    a CNOT (c, t) sets obs[d, t, c] = 1; gate g on q sets obs[d, N + g, q] = 1; the task's X
    extra rows (e.g. rotation angles for ground states) follow. Every gate sits in the first
    layer d free on its qubits.

    ## Rewards, Starting State
    From the task: e.g. 50 F on success and F otherwise for state preparation.

    ## Episode End
    Terminated on success or after ``max_depth`` steps (the circuit is the MDP state, so the
    step limit is part of the task, not a truncation). ``step`` before ``reset`` or after the
    end raises RuntimeError.

    Args:
        task: a Task or a registered name ("bell", "ghz3", "h2", "lih", ...).
        max_depth: steps per episode D (default the task's).
        noise: None, Noise, (p1, p2), a dict, or a Qiskit backend (noise-aware search: the
            channels of its calibration, ``Noise.from_backend``): bit flip p1 after
            single-qubit gates and depolarising p2 after CNOTs, on density matrices.
        threshold: success threshold in the task's units (default the task's: e.g. 0.98 times
            the fidelity the textbook circuit reaches under `noise`; 1.6e-3 Ha for ground
            states); refused when it can never be met.
        mask: "previous" (default) or "qubit" (see Action Space).
        render_mode: None | "ansi" (render() returns the drawing) | "human" (prints it).
    """

    metadata = {"render_modes": ["ansi", "human"]}

    def __init__(self, task: Task | str = "bell", *, max_depth: int | None = None, noise=None,
                 threshold: float | None = None, mask: str = "previous", render_mode: str | None = None) -> None:
        self.task = make_task(task)
        self.noise = as_noise(noise)
        n = self.n_qubits = self.task.n_qubits
        self.max_depth = self.task.default_max_depth if max_depth is None else max_depth
        check_int("max_depth", self.max_depth)
        check_choice("mask", mask, MASKS)
        check_choice("render_mode", render_mode, (None, *self.metadata["render_modes"]))
        self.mask, self.render_mode = mask, render_mode
        self.threshold = self.task.default_threshold(self.noise) if threshold is None else threshold
        self.gate_names = self.task.gates
        self.actions: list[tuple[str, tuple[int, ...]]] = [
            ("CNOT", (c, t)) for c in range(n) for t in range(n) if t != c
        ] + [(g, (q,)) for q in range(n) for g in self.gate_names]
        self.n_rows = n + len(self.gate_names) + self.task.extra_rows
        self.obs_shape = (self.max_depth, self.n_rows, n)
        low, high = self.task.observation_bounds
        self.observation_space = gym.spaces.Box(low, high, shape=(int(np.prod(self.obs_shape)),), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(len(self.actions))
        self.circuit: Circuit | None = None  # episode state: set by reset()
        self.state = None
        self.steps, self.done = 0, True
        self._last_action: int | None = None
        self._last_on_qubit: list[int | None] = [None] * n

    @property
    def threshold(self) -> float:
        """Success threshold in the task's units (a curriculum may move it between episodes)."""
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self._threshold = self.task.check_threshold(value)

    # ------------------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.circuit = Circuit(self.n_qubits, initial_bits=self.task.initial_bits)
        self.state = self.task.start(self.circuit, self.noise)
        self.steps, self.done = 0, False
        self._last_action, self._last_on_qubit = None, [None] * self.n_qubits
        return self._observation(), self._info(illegal=False)

    def step(self, action):
        if self.circuit is None:
            raise RuntimeError("CircuitEnv.step() called before reset(): call reset() first")
        if self.done:
            raise RuntimeError("CircuitEnv.step() called after the episode ended: call reset() first")
        check_int("action", action, low=0)
        if action >= len(self.actions):
            raise ValueError(f"`action` must be an int in [0, {len(self.actions)}); got {action!r}")
        action = int(action)
        illegal = not self.action_mask()[action]
        self.steps += 1
        previous = self.state
        if not illegal:
            name, qubits = self.actions[action]
            self.circuit.append(name, qubits)
            self.state = self.task.apply(self.state, self.circuit, self.noise, self.np_random)
            self._last_action = action
            for q in qubits:
                self._last_on_qubit[q] = action
        last = self.steps >= self.max_depth
        success = bool(self.task.success(self.state, self.threshold))
        reward = float(self.task.reward(previous, self.state, success, last))
        self.done = bool(success or last)
        if self.render_mode == "human":
            self.render()
        return self._observation(), reward, self.done, False, self._info(illegal, success)

    def render(self) -> str | None:
        text = "" if self.circuit is None else self.circuit.draw()
        if self.render_mode == "human":
            print(text)
            return None
        return text

    # ------------------------------------------------------------------------------ helpers
    def action_mask(self) -> np.ndarray:
        """(n_actions,) int8, 0 for illegal actions (see ``mask``)."""
        mask = np.ones(len(self.actions), dtype=np.int8)
        blocked = self._last_on_qubit if self.mask == "qubit" else [self._last_action]
        for a in blocked:
            if a is not None:
                mask[a] = 0
        return mask

    @property
    def error(self) -> float:
        """The task's error of the current state (infidelity, energy error, ...)."""
        return self.task.error(self.state)

    def _observation(self) -> np.ndarray:
        n, g = self.n_qubits, len(self.gate_names)
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
                obs[slot, n + self.gate_names.index(gate.name), gate.qubits[0]] = 1
            self.task.observe(obs[slot, n + g:], self.circuit, gate)
        return obs.reshape(-1)

    def _info(self, illegal: bool, success: bool = False) -> dict:
        return {"action_mask": self.action_mask(), "success": bool(success), "goal": bool(self.task.at_goal(self.state)),
                "illegal": bool(illegal), "n_gates": self.circuit.n_gates, "n_cnots": self.circuit.n_cnots,
                "depth": self.circuit.depth, "error": float(self.error), **self.task.info(self.state)}


def _register() -> None:
    """Register ``qkan/KANQAS-v0`` (kwargs as CircuitEnv; task defaults to "bell")."""
    if "qkan/KANQAS-v0" not in gym.registry:
        gym.register("qkan/KANQAS-v0", entry_point="qkan.kanqas.env:CircuitEnv")


_register()
