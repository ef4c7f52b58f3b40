"""KANQAS Task interface: a toy task registered here runs through CircuitEnv, DDQNAgent and the CLI
unchanged; Task is abstract and FidelityTask needs only ``fidelity``; the agent takes any env with the
CircuitEnv interface (a wrapper); the env's contract (reset before step, action types, reachable
thresholds, masks)."""

import argparse

import gymnasium as gym
import torch

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from qkan import kanqas
from qkan.kanqas import CircuitEnv, DDQNAgent, GroundState
from qkan.kanqas.circuit import Circuit


class AllOnes(kanqas.Task):
    """Toy task: flip every qubit of |0...0> to 1 with X and CNOT; the state is the bit list.

    Implements every abstract method of Task (and ``info``)."""

    name, gates, default_max_depth, goal_name = "allones", ("X", "Z"), 4, "all ones"

    def __init__(self, n_qubits: int = 2) -> None:
        self.n_qubits = n_qubits

    def start(self, circuit: Circuit, noise):
        return [0] * self.n_qubits

    def apply(self, state, circuit, noise, rng):
        gate, bits = circuit.gates[-1], list(state)
        if gate.name == "X":
            bits[gate.qubits[0]] ^= 1
        elif gate.name == "CNOT" and bits[gate.qubits[0]]:
            bits[gate.qubits[1]] ^= 1
        return bits

    def error(self, state) -> float:
        return state.count(0) / self.n_qubits

    def success(self, state, threshold) -> bool:
        return self.error(state) <= threshold

    def reward(self, previous, state, success, last) -> float:
        return 10.0 if success else self.error(previous) - self.error(state)

    def info(self, state) -> dict:
        return {"bits": "".join(map(str, state))}

    def default_threshold(self, noise) -> float:
        return 0.0

    def check_threshold(self, threshold) -> float:
        if not 0 <= threshold < 1:
            raise ValueError(f"`threshold` must be in [0, 1); got {threshold!r}")
        return float(threshold)


class OnesFidelity(kanqas.FidelityTask):
    """A minimal fidelity task: only ``fidelity`` (the probability of |1...1>) is its own."""

    name, n_qubits, default_max_depth = "ones", 2, 4

    def fidelity(self, quantum: torch.Tensor) -> float:
        return float(quantum[0, -1, -1].real if quantum.dim() == 3 else quantum[0, -1].abs() ** 2)


@pytest.fixture(autouse=True)
def _registered():
    kanqas.register_task("allones", AllOnes)
    yield


def _action(env, name, qubits):
    return env.actions.index((name, tuple(qubits)))


def test_toy_task_through_env_and_gymnasium_checker():
    env = CircuitEnv("allones")
    assert env.max_depth == 4 and env.action_space.n == 2 + 2 * 2
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert info["bits"] == "00" and info["error"] == 1.0 and not info["goal"]
    _, r, done, _, info = env.step(_action(env, "X", (0,)))
    assert info["bits"] == "10" and r == pytest.approx(0.5) and not done
    _, r, done, _, info = env.step(_action(env, "CNOT", (0, 1)))
    assert info["bits"] == "11" and info["success"] and info["goal"] and done and r == 10.0


def test_toy_task_trains_with_the_agent_and_the_cli(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for q_network in ("mlp", "qkan"):
        agent = DDQNAgent(CircuitEnv("allones"), q_network=q_network, seed=0)
        history = agent.train(40, progress=False)
        assert sum(history["success"]) > 0 and sum(history["goal"]) == sum(history["success"])
    assert agent.evaluate()["success"]  # the QKAN agent's greedy policy flips both bits
    from qkan.kanqas.cli import add_parser

    parser = argparse.ArgumentParser(prog="qkan")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["search", "--task", "allones", "--q-network", "mlp", "--episodes", "20", "--no-progress"])
    assert args.func(args) == 0
    assert "at the goal (all ones)" in capsys.readouterr().out


def test_registry_errors():
    with pytest.raises(ValueError, match="`task` must be one of .*'allones'"):
        kanqas.make_task("nope")
    with pytest.raises(ValueError, match="`factory` must be callable"):
        kanqas.register_task("x", 3)
    kanqas.register_task("broken", lambda: "not a task")
    with pytest.raises(TypeError, match="returned str, not a Task"):
        kanqas.make_task("broken")
    assert {"bell", "ghz3", "h2", "lih", "allones"} <= set(kanqas.available_tasks())


def test_step_needs_reset_and_a_running_episode():
    env = CircuitEnv("bell")
    with pytest.raises(RuntimeError, match=r"step\(\) called before reset\(\)"):
        env.step(0)
    env.reset(seed=0)
    env.step(_action(env, "H", (0,)))
    env.step(_action(env, "CNOT", (0, 1)))  # Bell: the episode ends
    with pytest.raises(RuntimeError, match=r"step\(\) called after the episode ended"):
        env.step(0)


@pytest.mark.parametrize("action", ["3", 1.7, True, -1, 12, None])
def test_actions_must_be_ints_in_range(action):
    env = CircuitEnv("bell")
    env.reset(seed=0)
    with pytest.raises((TypeError, ValueError), match="`action` must be an int"):
        env.step(action)


def test_numpy_integer_actions_are_accepted():
    env = CircuitEnv("bell")
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.int64(_action(env, "H", (0,))))
    assert info["n_gates"] == 1


def test_unreachable_thresholds_are_refused():
    for threshold in (2.0, 0.0, -0.5, float("nan")):
        with pytest.raises(ValueError, match="`threshold` must be a number in"):
            CircuitEnv("bell", threshold=threshold)
    ham = np.diag([0.0, 1.0])
    for threshold in (0.0, -1e-3):
        with pytest.raises(ValueError, match="`threshold` must be a number in"):
            CircuitEnv(GroundState(ham), threshold=threshold)
    env = CircuitEnv("bell")
    with pytest.raises(ValueError, match="`threshold`"):
        env.threshold = 1.5  # a curriculum cannot move it out of range either


def test_published_mask_blocks_the_last_gate_on_each_qubit():
    h0, x1, cx = (None,) * 3
    for mask in ("previous", "qubit"):
        env = CircuitEnv("bell", mask=mask)
        env.reset(seed=0)
        h0, x1, cx = _action(env, "H", (0,)), _action(env, "X", (1,)), _action(env, "CNOT", (0, 1))
        env.step(h0)
        _, _, _, _, info = env.step(x1)
        blocked = set(np.flatnonzero(info["action_mask"] == 0))
        assert blocked == ({x1} if mask == "previous" else {h0, x1})
        _, _, _, _, info = env.step(cx)  # the CNOT is now the last gate on both qubits
        assert set(np.flatnonzero(info["action_mask"] == 0)) == {cx}
    with pytest.raises(ValueError, match="`mask` must be one of"):
        CircuitEnv("bell", mask="all")


def test_ground_state_env_passes_the_gymnasium_checker():
    env = CircuitEnv(_two_qubit_ground_state(), max_depth=3)
    check_env(env, skip_render_check=True)


@pytest.mark.parametrize("field, value, message", [
    ("n_qubits", 0, r"`n_qubits` must be an int in \[1, 8\]; got 0"),
    ("n_qubits", 2.0, r"`n_qubits` must be an int in \[1, 8\]; got 2.0"),
    ("gates", ["X"], "`gates` must be a non-empty tuple of distinct gate names"),
    ("gates", ("X", "SWAP"), "`gates` must be a non-empty tuple .*got \\('X', 'SWAP'\\)"),
    ("gates", (), "`gates` must be a non-empty tuple"),
    ("initial_bits", (1,), r"`initial_bits` must be \(\) or a tuple of 2 bits"),
    ("initial_bits", (0, 2), r"`initial_bits` must be \(\) or a tuple of 2 bits"),
    ("extra_rows", -1, "`extra_rows` must be an int >= 0"),
    ("observation_bounds", (1.0, 0.0), r"`observation_bounds` must be \(low, high\) with finite low < high"),
    ("observation_bounds", (0.0, float("inf")), "`observation_bounds` must be"),
    ("default_max_depth", 0, "`default_max_depth` must be an int >= 1"),
])
def test_a_task_with_bad_fields_is_refused_by_name_at_the_env(field, value, message):
    def factory():
        task = AllOnes()
        setattr(task, field, value)
        return task

    kanqas.register_task("badfields", factory)
    with pytest.raises(ValueError, match=r"task 'allones' \(AllOnes\): " + message):
        CircuitEnv("badfields")
    with pytest.raises(ValueError, match=r"task 'allones' \(AllOnes\): " + message):
        CircuitEnv(factory())


def test_a_task_missing_a_required_method_is_refused_by_name():
    class Partial(kanqas.Task):
        name, n_qubits, gates = "partial", 2, ("X",)

        def start(self, circuit, noise):
            return 0

    with pytest.raises(TypeError, match="abstract .*apply.*check_threshold"):
        Partial()
    with pytest.raises(TypeError, match="abstract method.* '?fidelity"):
        type("NoFidelity", (kanqas.FidelityTask,), {"n_qubits": 2})()
    kanqas.register_task("partial", Partial)
    with pytest.raises(TypeError, match="Partial"):
        CircuitEnv("partial")


def test_a_minimal_fidelity_task_runs_and_trains():
    task = OnesFidelity()
    assert task.goal_name == "fidelity >= 0.98" and task.reachable_fidelity(kanqas.Noise(0.1, 0.1)) == 1.0
    env = CircuitEnv(task)
    assert env.threshold == 0.98 and env.task.gates == ("X", "Y", "Z", "H", "T")
    _, info = env.reset(seed=0)
    assert info["fidelity"] == 0.0 and info["error"] == 1.0
    env.step(_action(env, "X", (0,)))
    _, reward, done, _, info = env.step(_action(env, "X", (1,)))
    assert done and info["success"] and info["goal"] and reward == pytest.approx(50.0)
    noisy = CircuitEnv(task, noise=(0.05, 0.05))  # density matrices: fidelity reads the diagonal
    noisy.reset(seed=0)
    _, _, _, _, info = noisy.step(_action(noisy, "X", (0,)))
    assert info["fidelity"] == 0.0
    agent = DDQNAgent(env, q_network="mlp", seed=0)
    history = agent.train(30, progress=False)
    assert sum(history["success"]) > 0 and agent.best["success"]


class _Recorder(gym.Wrapper):
    """A wrapper that counts steps and forwards everything else."""

    def __init__(self, env):
        super().__init__(env)
        self.steps = 0

    def step(self, action):
        self.steps += 1
        return self.env.step(action)


def _two_qubit_ground_state() -> GroundState:
    z, x, i2 = np.diag([1.0, -1.0]), np.array([[0.0, 1.0], [1.0, 0.0]]), np.eye(2)
    return GroundState(-np.kron(z, i2) + 0.5 * np.kron(x, x), restarts=2, maxiter=5)


def test_the_agent_trains_on_a_wrapped_env(tmp_path):
    env = _Recorder(CircuitEnv(_two_qubit_ground_state(), max_depth=3))  # a curriculum moves the threshold
    agent = DDQNAgent(env, q_network="mlp", seed=0)
    assert agent.task is env.unwrapped.task and "threshold" not in vars(env)
    assert env.unwrapped.threshold == agent.curriculum.threshold
    agent.train(3, progress=False)
    assert env.steps > 0 and agent.history["threshold"][-1] == env.unwrapped.threshold
    training = env.unwrapped.threshold
    agent.evaluate()
    assert env.unwrapped.threshold == training
    agent.save(tmp_path / "a.pt")
    DDQNAgent(_Recorder(CircuitEnv(_two_qubit_ground_state(), max_depth=3)), q_network="mlp", seed=0).load(tmp_path / "a.pt")


class _NoCircuit(gym.Env):
    """The CircuitEnv interface without ``circuit``."""

    def __init__(self):
        inner = CircuitEnv("bell")
        self.observation_space, self.action_space = inner.observation_space, inner.action_space
        self.task, self.max_depth, self.noise, self.threshold = inner.task, inner.max_depth, None, 0.98


def test_an_env_without_the_interface_is_refused_by_name():
    with pytest.raises(TypeError, match="`env` must have the attribute 'circuit' .* _NoCircuit has none"):
        DDQNAgent(_NoCircuit())
    env = _NoCircuit()
    env.circuit, env.action_space = None, gym.spaces.Box(0, 1, (2,))
    with pytest.raises(TypeError, match="`env.action_space` must be a gymnasium Discrete"):
        DDQNAgent(env)
