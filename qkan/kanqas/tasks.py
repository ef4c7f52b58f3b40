"""The KANQAS `Task` protocol and the task registry.

A task is what CircuitEnv searches for: it owns the start state, what one appended gate does,
the reward, the success test, the info entries and the defaults (threshold, depth,
curriculum). CircuitEnv and DDQNAgent only talk to this interface, so a new task is one class
plus one ``register_task`` call:

    class AllOnes(kanqas.Task):
        ...
    kanqas.register_task("allones", AllOnes)
    env = kanqas.CircuitEnv("allones")

Built-in tasks (registered in qkan/kanqas/__init__.py): "bell", "ghz2".."ghz8", "h2", "lih", "lih6"
(state_prep.StatePrep and ground_state.GroundState).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from qkan.kanqas.circuit import FIXED_GATES, MAX_QUBITS, ROTATIONS, Circuit, Instruction

__all__ = ["Task", "register_task", "make_task", "check_task", "available_tasks"]


class Task:
    """Base class of KANQAS search targets; subclasses set the attributes and override the methods.

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

    def start(self, circuit: Circuit, noise) -> Any:
        """Episode state of the empty `circuit` (its ``initial_bits`` applied)."""
        raise NotImplementedError

    def apply(self, state: Any, circuit: Circuit, noise, rng: np.random.Generator) -> Any:
        """Episode state after ``circuit.gates[-1]`` was appended (may change ``circuit.angles``)."""
        raise NotImplementedError

    def error(self, state: Any) -> float:
        """Distance from the target, >= 0 (0 = perfect): infidelity, energy error, ..."""
        raise NotImplementedError

    def success(self, state: Any, threshold: float) -> bool:
        """Whether `state` meets `threshold` (ends the episode)."""
        raise NotImplementedError

    def at_goal(self, state: Any) -> bool:
        """Whether `state` meets the task's fixed goal (``goal_name``), independent of any curriculum."""
        return self.success(state, self.default_threshold(None))

    def reward(self, previous: Any, state: Any, success: bool, last: bool) -> float:
        """Reward of one step from `previous` to `state` (equal for an illegal, skipped action)."""
        raise NotImplementedError

    def info(self, state: Any) -> dict:
        """Task-specific entries of the step info (e.g. {"fidelity": F})."""
        return {}

    def default_threshold(self, noise) -> float:
        """Success threshold when the env is not given one."""
        raise NotImplementedError

    def check_threshold(self, threshold) -> float:
        """`threshold` as a float; ValueError naming `threshold` if it can never be met."""
        raise NotImplementedError

    def default_curriculum(self, noise):
        """A curriculum (e.g. curriculum.MovingThreshold) for the agent's "auto" setting, or None."""
        return None

    def observe(self, rows: np.ndarray, circuit: Circuit, gate: Instruction) -> None:
        """Write the extra observation rows (extra_rows, N) of the layer `gate` sits in."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, n_qubits={self.n_qubits})"


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
