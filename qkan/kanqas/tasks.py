"""The KANQAS `Task` interface and the task registry.

A task is what CircuitEnv searches for: it owns the start state, what one appended gate does,
the reward, the success test, the info entries and the defaults (threshold, depth,
curriculum). CircuitEnv and DDQNAgent only talk to this interface, so a new task is one class
plus one ``register_task`` call:

    class AllOnes(kanqas.Task):
        ...  # start, apply, error, success, reward, default_threshold, check_threshold
    kanqas.register_task("allones", AllOnes)
    env = kanqas.CircuitEnv("allones")

A state-preparation-like task subclasses ``FidelityTask`` instead and implements only
``fidelity`` (the simulation, reward, success test and thresholds are inherited).

Built-in tasks (registered in qkan/kanqas/__init__.py): "bell", "ghz2".."ghz8", "h2", "lih", "lih6"
(state_prep.StatePrep and ground_state.GroundState).
"""

from __future__ import annotations

import abc
import math
from typing import Any, Callable, NamedTuple

import numpy as np
import torch

from qkan._checks import check_interval
from qkan.kanqas.circuit import FIXED_GATES, MAX_QUBITS, ROTATIONS, Circuit, Instruction
from qkan.kanqas.statevector import Noise, apply_gate, initial_state, run

__all__ = ["Task", "FidelityTask", "PrepState", "register_task", "make_task", "check_task", "available_tasks"]


class Task(abc.ABC):
    """Abstract base class of KANQAS search targets; subclasses set the attributes and implement the methods.

    Required (abstract) methods: ``start``, ``apply``, ``error``, ``success``, ``reward``,
    ``default_threshold``, ``check_threshold``; a subclass missing one cannot be instantiated
    (TypeError naming it). ``at_goal``, ``info``, ``default_curriculum`` and ``observe`` have
    defaults.

    Attributes:
        name: label for tables.
        n_qubits: register size N.
        gates: single-qubit gates of the action set (the env adds all N(N-1) CNOTs).
        initial_bits: start basis state of the circuit (() for |0...0>).
        extra_rows: observation rows per layer after the CNOT and gate rows (filled by ``observe``).
        observation_bounds: (low, high) of every observation entry.
        default_max_depth: steps per episode when the env is not told.
        goal_name: the fixed goal ``at_goal`` tests (e.g. "chemical accuracy"), whatever the threshold.

    The episode state is whatever ``start`` returns (e.g. a state vector, an energy); the env
    keeps it and hands it back. ``threshold`` is in the task's own units (a fidelity, an error).
    """

    name: str = "task"
    n_qubits: int
    gates: tuple[str, ...]
    initial_bits: tuple[int, ...] = ()
    extra_rows: int = 0
    observation_bounds: tuple[float, float] = (0.0, 1.0)
    default_max_depth: int = 10
    goal_name: str = "goal"

    @abc.abstractmethod
    def start(self, circuit: Circuit, noise: Noise | None) -> Any:
        """Episode state of the empty `circuit` (its ``initial_bits`` applied)."""

    @abc.abstractmethod
    def apply(self, state: Any, circuit: Circuit, noise: Noise | None, rng: np.random.Generator) -> Any:
        """Episode state after ``circuit.gates[-1]`` was appended (may change ``circuit.angles``)."""

    @abc.abstractmethod
    def error(self, state: Any) -> float:
        """Distance from the target, >= 0 (0 = perfect): infidelity, energy error, ..."""

    @abc.abstractmethod
    def success(self, state: Any, threshold: float) -> bool:
        """Whether `state` meets `threshold` (ends the episode)."""

    def at_goal(self, state: Any) -> bool:
        """Whether `state` meets the task's fixed goal (``goal_name``), independent of any curriculum."""
        return self.success(state, self.default_threshold(None))

    @abc.abstractmethod
    def reward(self, previous: Any, state: Any, success: bool, last: bool) -> float:
        """Reward of one step from `previous` to `state` (equal for an illegal, skipped action)."""

    def info(self, state: Any) -> dict:
        """Task-specific entries of the step info (e.g. {"fidelity": F})."""
        return {}

    @abc.abstractmethod
    def default_threshold(self, noise: Noise | None) -> float:
        """Success threshold when the env is not given one."""

    @abc.abstractmethod
    def check_threshold(self, threshold) -> float:
        """`threshold` as a float; ValueError naming `threshold` if it can never be met."""

    def default_curriculum(self, noise: Noise | None):
        """A curriculum (e.g. curriculum.MovingThreshold) for the agent's "auto" setting, or None."""
        return None

    def observe(self, rows: np.ndarray, circuit: Circuit, gate: Instruction) -> None:
        """Write the extra observation rows (extra_rows, N) of the layer `gate` sits in."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, n_qubits={self.n_qubits})"


class PrepState(NamedTuple):
    """Episode state of a FidelityTask: the simulated state ((1, 2^n), or (1, 2^n, 2^n) under
    noise) and its fidelity."""

    quantum: torch.Tensor
    fidelity: float


class FidelityTask(Task):
    """A state-preparation-like task: raise a fidelity in [0, 1] with CNOT + X, Y, Z, H, T.

    Subclasses implement only ``fidelity(quantum)`` (and set ``n_qubits``, ``name``); this class
    simulates the circuit (a state vector, a density matrix under noise), rewards 50 F on success
    and F otherwise (as published), succeeds at F >= threshold, and checks thresholds in (0, 1].

    Attributes (besides Task's):
        threshold: the goal fidelity (``at_goal``; 0.98 as published). Under noise the env's
            default threshold is this times ``reachable_fidelity(noise)``, the fidelity of
            ``reference_circuit()`` (if the subclass gives one) under that noise.
    """

    gates = FIXED_GATES
    observation_bounds = (0.0, 1.0)
    threshold: float = 0.98

    @property
    def goal_name(self) -> str:
        return f"fidelity >= {self.threshold:g}"

    @abc.abstractmethod
    def fidelity(self, quantum: torch.Tensor) -> float:
        """Fidelity in [0, 1] of a simulated state (1, 2^n) or density matrix (1, 2^n, 2^n)."""

    def start(self, circuit: Circuit, noise: Noise | None) -> PrepState:
        density = noise is not None and not noise.is_zero
        quantum = initial_state(self.n_qubits, density=density, bits=circuit.initial_bits)
        return PrepState(quantum, self.fidelity(quantum))

    def apply(self, state: PrepState, circuit: Circuit, noise: Noise | None, rng: np.random.Generator) -> PrepState:
        gate = circuit.gates[-1]  # one gate per step: advance the kept state
        quantum = apply_gate(state.quantum, gate.name, gate.qubits, noise=noise)
        return PrepState(quantum, self.fidelity(quantum))

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

    def reference_circuit(self) -> Circuit | None:
        """A circuit known to reach the goal without noise (sets the noisy default threshold); None here."""
        return None

    def reachable_fidelity(self, noise: Noise | None) -> float:
        """Fidelity of ``reference_circuit()`` under `noise` (1.0 without noise or reference)."""
        reference = self.reference_circuit()
        if noise is None or noise.is_zero or reference is None:
            return 1.0
        return self.fidelity(run(reference, noise=noise))


_TASKS: dict[str, Callable[[], Task]] = {}


def register_task(name: str, factory: Callable[[], Task]) -> None:
    """Make ``make_task(name)`` (and so ``CircuitEnv(name)``, ``qkan search --task``) build `factory()`."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a non-empty string; got {name!r}")
    if not callable(factory):
        raise ValueError(f"`factory` must be callable; got {factory!r}")
    _TASKS[name] = factory


def _add_plugins() -> None:
    """Tasks of installed packages: entry points in the group "qkan.tasks", each
    ``name = "module:factory"`` (a callable returning a Task); registered names win."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="qkan.tasks"):
        _TASKS.setdefault(ep.name, lambda ep=ep: ep.load()())


def available_tasks() -> list[str]:
    """Registered task names, installed plugins included."""
    _add_plugins()
    return list(_TASKS)


def make_task(name: str | Task) -> Task:
    """A task from a registered name ("bell", "ghz3", "h2", "lih", ...) or a Task, its fields checked."""
    if isinstance(name, Task):
        return check_task(name)
    if isinstance(name, str) and name not in _TASKS:
        _add_plugins()
    if isinstance(name, str) and name in _TASKS:
        task = _TASKS[name]()
        if not isinstance(task, Task):
            raise TypeError(f"the factory registered for task {name!r} returned {type(task).__name__}, not a Task")
        return check_task(task)
    raise ValueError(f"`task` must be one of {available_tasks()} or a Task; got {name!r}")


def check_task(task: Task) -> Task:
    """`task` if its fields are what CircuitEnv builds on; ValueError naming the task and the field otherwise."""
    def bad(field: str, expected: str, value) -> ValueError:
        return ValueError(f"task {getattr(task, 'name', '?')!r} ({type(task).__name__}): `{field}` must be "
                          f"{expected}; got {value!r}")

    def is_int(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    n = getattr(task, "n_qubits", None)
    if not is_int(n) or not 1 <= n <= MAX_QUBITS:
        raise bad("n_qubits", f"an int in [1, {MAX_QUBITS}]", n)
    known = (*FIXED_GATES, *ROTATIONS)
    gates = getattr(task, "gates", None)
    if not isinstance(gates, tuple) or not gates or len(set(gates)) != len(gates) or not set(gates) <= set(known):
        raise bad("gates", f"a non-empty tuple of distinct gate names from {known}", gates)
    bits = task.initial_bits
    if not isinstance(bits, tuple) or len(bits) not in (0, n) or any(b not in (0, 1) or not is_int(b) for b in bits):
        raise bad("initial_bits", f"() or a tuple of {n} bits (0 or 1)", bits)
    if not is_int(task.extra_rows) or task.extra_rows < 0:
        raise bad("extra_rows", "an int >= 0", task.extra_rows)
    bounds = task.observation_bounds
    if (not isinstance(bounds, tuple) or len(bounds) != 2 or not all(isinstance(b, (int, float)) for b in bounds)
            or not all(math.isfinite(b) for b in bounds) or not bounds[0] < bounds[1]):
        raise bad("observation_bounds", "(low, high) with finite low < high", bounds)
    if not is_int(task.default_max_depth) or task.default_max_depth < 1:
        raise bad("default_max_depth", "an int >= 1", task.default_max_depth)
    if not isinstance(task.name, str) or not isinstance(task.goal_name, str):
        raise bad("name` and `goal_name", "strings", (task.name, task.goal_name))
    return task
