"""DDQNAgent robustness: checkpoints that never run code and never half-load, atomic saves,
argument checks, Ctrl-C in training and in `qkan search`."""

import argparse

import numpy as np
import pytest
import torch

from qkan.kanqas import CircuitEnv, DDQNAgent, Noise
from qkan.kanqas import agent as agent_module


def _agent(**kw):
    return DDQNAgent(CircuitEnv("bell"), q_network="mlp", seed=0, batch_size=16, buffer_size=500, **kw)


def _params(agent):
    return [p.detach().clone() for p in agent.q.parameters()]


class _Exploit:
    """Unpickling this runs code (the attack weights_only=True loading refuses)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def test_load_never_runs_code_from_the_file(tmp_path):
    path, marker = tmp_path / "evil.pt", tmp_path / "marker"
    torch.save({"format": agent_module.CHECKPOINT_FORMAT, "q": _Exploit(marker)}, path)
    agent = _agent()
    with pytest.raises(ValueError, match="cannot load a DDQN agent from .*not a readable checkpoint"):
        agent.load(path)
    assert not marker.exists()


def test_corrupt_foreign_and_missing_files(tmp_path):
    agent = _agent()
    before = _params(agent)
    (tmp_path / "junk.pt").write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(ValueError, match="cannot load a DDQN agent from .*not a readable checkpoint"):
        agent.load(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="cannot load a DDQN agent from .*not a qkan checkpoint"):
        agent.load(tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="cannot load a DDQN agent from .*no such file"):
        agent.load(tmp_path / "missing.pt")
    agent.train(3, progress=False, checkpoint=tmp_path / "good.pt")
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    fresh = _agent()
    with pytest.raises(ValueError, match="cannot load a DDQN agent from .*not a readable checkpoint"):
        fresh.load(tmp_path / "truncated.pt")
    assert all(torch.equal(a, b) for a, b in zip(before, _params(fresh)))


def test_a_checkpoint_that_does_not_fit_leaves_the_agent_untouched(tmp_path):
    big = DDQNAgent(CircuitEnv("bell"), q_network="mlp", seed=1, batch_size=16, buffer_size=2000)
    big.train(40, progress=False, checkpoint=tmp_path / "big.pt")
    assert big.buffer.size > 100
    small = DDQNAgent(CircuitEnv("bell"), q_network="mlp", seed=0, batch_size=16, buffer_size=100)
    small.train(2, progress=False)
    before, history = _params(small), {k: list(v) for k, v in small.history.items()}
    with pytest.raises(ValueError, match="does not fit this agent"):
        small.load(tmp_path / "big.pt")
    assert all(torch.equal(a, b) for a, b in zip(before, _params(small)))
    assert small.episode == 2 and small.history == history and small.buffer.size <= 100
    other_net = DDQNAgent(CircuitEnv("bell"), q_network="mlp", hidden=[7], seed=0, buffer_size=2000)
    with pytest.raises(ValueError, match="does not fit this agent"):
        other_net.load(tmp_path / "big.pt")
    one_step = DDQNAgent(CircuitEnv("bell"), q_network="mlp", seed=1, batch_size=16, buffer_size=2000, n_step=1)
    with pytest.raises(ValueError, match="differently configured agent: n_step 1 here, 3 in the file"):
        one_step.load(tmp_path / "big.pt")


def test_checkpoint_holds_plain_data_only_and_resumes_best_circuit(tmp_path):
    agent = _agent()
    agent.train(20, progress=False, checkpoint=tmp_path / "a.pt")
    state = torch.load(tmp_path / "a.pt", weights_only=True)  # would raise on any pickled object
    assert state["format"] == agent_module.CHECKPOINT_FORMAT and state["episode"] == 20
    clone = _agent().load(tmp_path / "a.pt")
    assert clone.best_circuit().draw() == agent.best_circuit().draw()
    assert clone.best["key"] == agent.best["key"]


def test_a_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    agent = _agent()
    agent.train(2, progress=False, checkpoint=path)
    good = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        agent.save(path)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary file left


@pytest.mark.parametrize("kwargs, message", [
    ({"gamma": 5.0}, r"`gamma` must be a number in \(0, 1\]"),
    ({"gamma": 0.0}, r"`gamma` must be a number in \(0, 1\]"),
    ({"eps_start": -3.0}, r"`eps_start` must be a number in \[0, 1\]"),
    ({"eps_decay": 0.0}, r"`eps_decay` must be a number in \(0, 1\]"),
    ({"eps_decay": 2.0}, r"`eps_decay` must be a number in \(0, 1\]"),
    ({"eps_min": 1.5}, r"`eps_min` must be a number in \[0, 1\]"),
    ({"batch_size": 0}, "`batch_size` must be an int >= 1"),
    ({"lr": float("nan")}, "`lr` must be a number in"),
    ({"lr": -1.0}, "`lr` must be a number in"),
    ({"success_replay": 1.5}, r"`success_replay` must be a number in \[0, 1\]"),
])
def test_agent_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DDQNAgent(CircuitEnv("bell"), q_network="mlp", **kwargs)


def test_env_and_noise_arguments_are_checked():
    with pytest.raises(ValueError, match="`max_depth` must be an int >= 1"):
        CircuitEnv("bell", max_depth=0)
    with pytest.raises(ValueError, match="`p1` must be a number in \\[0, 1\\]"):
        Noise(2.0, 0.5)
    with pytest.raises(ValueError, match="`p2` must be a number in \\[0, 1\\]"):
        CircuitEnv("bell", noise=(0.1, 5))


def test_checkpoint_every_and_folder_checked_before_training(tmp_path):
    agent = _agent()
    with pytest.raises(ValueError, match="`checkpoint_every` must be an int >= 1"):
        agent.train(5, progress=False, checkpoint=tmp_path / "c.pt", checkpoint_every=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="`checkpoint` .* is not writable"):
        agent.train(5, progress=False, checkpoint=tmp_path / "file" / "c.pt")
    assert agent.episode == 0  # refused before any episode
    agent.train(1, progress=False, checkpoint=tmp_path / "new" / "dir" / "c.pt")  # missing folders are created
    assert (tmp_path / "new" / "dir" / "c.pt").exists()


def _interrupt_after(monkeypatch, episodes):
    calls = {"n": 0}
    original = DDQNAgent.run_episode

    def run_episode(self, **kw):
        calls["n"] += 1
        if calls["n"] > episodes:
            raise KeyboardInterrupt
        return original(self, **kw)

    monkeypatch.setattr(DDQNAgent, "run_episode", run_episode)


def test_keyboard_interrupt_saves_a_resumable_checkpoint(tmp_path, monkeypatch):
    agent = _agent()
    _interrupt_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        agent.train(10, progress=False, checkpoint=tmp_path / "c.pt")
    monkeypatch.undo()
    clone = _agent().load(tmp_path / "c.pt")
    assert clone.episode == 3 and len(clone.history["reward"]) == 3
    clone.train(2, progress=False)
    assert clone.episode == 5


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # `qkan search` writes its circuits under ./qkan-runs by default


def _search(argv):
    from qkan.kanqas.cli import add_parser

    parser = argparse.ArgumentParser(prog="qkan")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["search", "--no-progress", "--q-network", "mlp", *argv])
    return args.func(args)


def test_search_ctrl_c_saves_prints_one_line_and_exits_130(tmp_path, monkeypatch, capsys):
    path = tmp_path / "run" / "agent.pt"
    _interrupt_after(monkeypatch, 4)
    assert _search(["--episodes", "50", "--checkpoint", str(path)]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "interrupted after 4 episodes" in err[0] and str(path) in err[0]
    monkeypatch.undo()
    assert _search(["--episodes", "7", "--resume", str(path)]) == 0
    assert "episodes 7" in capsys.readouterr().out  # --episodes counts the 4 resumed ones: 3 more
    assert _search(["--episodes", "3", "--resume", str(path)]) == 0
    captured = capsys.readouterr()
    assert "episodes 4" in captured.out and "already holds 4 >= 3 episodes: nothing to train" in captured.err


def test_search_sigterm_saves_a_checkpoint_and_exits_143(tmp_path, monkeypatch, capsys):
    import os
    import signal

    path = tmp_path / "agent.pt"
    run_episode = DDQNAgent.run_episode

    def terminated_after_3(self, **kw):
        if self.episode == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return run_episode(self, **kw)

    monkeypatch.setattr(DDQNAgent, "run_episode", terminated_after_3)
    previous = signal.getsignal(signal.SIGTERM)
    assert _search(["--episodes", "50", "--checkpoint", str(path)]) == 143
    assert signal.getsignal(signal.SIGTERM) == previous  # the handler is only installed while training
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "terminated after 3 episodes" in err[0] and str(path) in err[0]
    assert _agent().load(path).episode == 3


@pytest.mark.parametrize("argv, message", [
    (["--max-depth", "0"], "`max_depth` must be an int >= 1"),
    (["--batch-size", "0"], "`batch_size` must be an int >= 1"),
    (["--eps-decay", "2"], "`eps_decay` must be a number in"),
    (["--noise", "2,5"], "`p1` must be a number in [0, 1]"),
    (["--episodes", "0"], "--episodes must be >= 1"),
    (["--resume", "/nonexistent/agent.pt"], "no such file"),
])
def test_search_bad_arguments_are_one_line_errors(argv, message, capsys):
    assert _search(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qkan search: error: ") and message in err[0]


def test_search_folds_a_multi_line_error_into_one_line(tmp_path, capsys):
    path = tmp_path / "agent.pt"
    path.write_bytes(b"not a checkpoint\n")
    assert _search(["--resume", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qkan search: error: ") and str(path) in err[0]


def test_checkpoint_with_wrong_fields_is_refused_whole(tmp_path):
    agent = _agent()
    agent.train(3, progress=False, checkpoint=tmp_path / "c.pt")
    state = torch.load(tmp_path / "c.pt", weights_only=True)
    del state["sha256"]  # edited files without a checksum (as older versions wrote): the field checks must refuse them
    for field, bad in (("buffer", 3), ("history", {"reward": []}), ("epsilon", 7.0), ("rng", "x"), ("best", {"key": 1})):
        torch.save({**state, field: bad}, tmp_path / "bad.pt")
        fresh = _agent()
        before = _params(fresh)
        with pytest.raises(ValueError, match="does not fit this agent"):
            fresh.load(tmp_path / "bad.pt")
        assert fresh.episode == 0 and all(torch.equal(a, b) for a, b in zip(before, _params(fresh)))


def test_n_step_returns_sum_discounted_rewards_up_to_the_episode_end():
    def explorer(n_step):
        agent = DDQNAgent(CircuitEnv("ghz3"), q_network="mlp", seed=3, batch_size=10_000, buffer_size=10_000,
                          n_step=n_step)
        agent.epsilon = agent.eps_min = 1.0  # uniform random legal actions, no learning: same actions for both
        for _ in range(6):
            agent.run_episode()
        return agent.buffer

    one, three = explorer(1), explorer(3)
    size, gamma = one.size, 0.005 ** (1 / 12)
    assert three.size == size and size > 6
    ends = np.flatnonzero(one.done[:size])  # the last step of every episode
    for t in range(size):
        end = ends[ends >= t][0]
        last = min(t + 2, end)  # n = 3 steps, or fewer at the episode's end
        expected = sum(gamma ** (k - t) * one.reward[k] for k in range(t, last + 1))
        assert three.reward[t] == pytest.approx(expected, rel=1e-6)
        np.testing.assert_array_equal(three.obs[t], one.obs[t])
        np.testing.assert_array_equal(three.next_obs[t], one.next_obs[last])
        assert three.done[t] == one.done[last] and three.action[t] == one.action[t]
        np.testing.assert_array_equal(three.next_mask[t], one.next_mask[last])


def test_greedy_evaluation_runs_to_the_goal_not_the_curriculum_threshold():
    env = CircuitEnv("bell")
    agent = DDQNAgent(env, q_network="mlp", seed=0, curriculum=None)
    env.threshold = 0.4  # a loose training threshold: |00> -> H already reaches fidelity 0.5
    seen = []
    original = env.step
    env.step = lambda a: seen.append(env.threshold) or original(a)
    agent.evaluate()
    assert seen and all(t == 0.98 for t in seen) and env.threshold == 0.4


def test_no_update_before_learning_starts_transitions():
    agent = _agent(learning_starts=40, n_step=1)  # batch 16: the first update waits for 40 transitions
    while agent.buffer.size < 39:
        agent.run_episode()
        assert agent.updates == max(0, agent.buffer.size - 39)
    agent.run_episode()
    assert agent.updates == agent.buffer.size - 39 > 0


def _saved(tmp_path, **kw):
    agent = _agent(**kw)
    agent.train(4, progress=False, checkpoint=tmp_path / "c.pt")
    state = torch.load(tmp_path / "c.pt", weights_only=True)
    del state["sha256"]  # edited files without a checksum (as older versions wrote): the field checks must refuse them
    return agent, state


@pytest.mark.parametrize("make, message", [
    (lambda: DDQNAgent(CircuitEnv("ghz2"), q_network="mlp", seed=0, batch_size=16, buffer_size=500),
     r"task \"StatePrep\('ghz2'.* here, \"StatePrep\('bell'"),  # same shapes, another task
    (lambda: DDQNAgent(CircuitEnv("bell", mask="qubit"), q_network="mlp", seed=0, batch_size=16, buffer_size=500),
     "mask 'qubit' here, 'previous' in the file"),
    (lambda: DDQNAgent(CircuitEnv("bell", noise=(0.01, 0.01)), q_network="mlp", seed=0, batch_size=16, buffer_size=500),
     "noise \\[0.01, 0.01\\] here, None in the file"),
    (lambda: DDQNAgent(CircuitEnv("bell"), q_network="mlp", seed=0, batch_size=16, buffer_size=500, loss="smooth_l1"),
     "loss 'smooth_l1' here, 'mse' in the file"),
])
def test_a_checkpoint_of_a_differently_configured_agent_with_equal_shapes_is_refused(tmp_path, make, message):
    _saved(tmp_path)
    other = make()
    before = _params(other)
    with pytest.raises(ValueError, match="differently configured agent: " + message):
        other.load(tmp_path / "c.pt")
    assert other.episode == 0 and all(torch.equal(a, b) for a, b in zip(before, _params(other)))


def test_a_qkan_checkpoint_of_another_ansatz_is_refused(tmp_path):
    def make(ansatz):
        return DDQNAgent(CircuitEnv("bell"), q_network="qkan", hidden=[2], network_options={"ansatz": ansatz},
                         seed=0, batch_size=16, buffer_size=500)
    agent = make("pz")
    agent.save(tmp_path / "pz.pt")
    with pytest.raises(ValueError, match="network .*ansatz='pz'.* in the file"):
        make("rpz").load(tmp_path / "pz.pt")
    make("pz").load(tmp_path / "pz.pt")  # the same configuration loads


@pytest.mark.parametrize("edit, message", [
    (lambda s: s["q"].__setitem__("0.weight", s["q"]["0.weight"] * float("nan")), "q holds NaN or infinite values"),
    (lambda s: s["target"].__setitem__("0.bias", s["target"]["0.bias"] + float("inf")), "target holds NaN or infinite"),
    (lambda s: s["buffer"].__setitem__("reward", s["buffer"]["reward"] * float("nan")), "buffer holds NaN"),
    (lambda s: s["best"]["circuit"]["gates"].append(["CNOT", [0, 5], -1]), "qubits must be 2 distinct ints in \\[0, 2\\)"),
    (lambda s: s["best"]["circuit"]["gates"].append(["SWAP", [0, 1], -1]), "unknown gate 'SWAP'"),
    (lambda s: (s["best"]["circuit"]["gates"].append(["RX", [0], 0]), s["best"]["circuit"]["angles"].append(0.5)),
     "does not belong to this task"),
    (lambda s: s["best"]["circuit"]["gates"].append(["RX", [0], 0]), "rotations must use angle indices"),
    (lambda s: s["best"]["circuit"].__setitem__("n_qubits", 3), "does not belong to this task"),
    (lambda s: s["best"]["circuit"].pop("gates"), "not a circuit dict"),
    (lambda s: s["best"].__setitem__("n_cnots", 99), "counts do not match its gates"),
    (lambda s: s["history"]["reward"].pop(), "history 'reward' must list one value per episode"),
])
def test_damaged_checkpoint_contents_are_refused_whole(tmp_path, edit, message):
    _, state = _saved(tmp_path)
    edit(state)
    torch.save(state, tmp_path / "bad.pt")
    fresh = _agent()
    before = _params(fresh)
    with pytest.raises(ValueError, match="does not fit this agent.*" + message):
        fresh.load(tmp_path / "bad.pt")
    assert fresh.episode == 0 and fresh.best is None and all(torch.equal(a, b) for a, b in zip(before, _params(fresh)))


def test_curriculum_state_keys_and_values_are_checked():
    from qkan.kanqas import MovingThreshold

    curriculum = MovingThreshold(0.1)
    good = curriculum.state_dict()
    for bad, message in (({**good, "start": 5.0}, "exactly the keys"), ({**good, "threshold": float("nan")}, "curriculum threshold"),
                         ({**good, "threshold": 1.0}, "curriculum threshold"), ({**good, "episodes": -1}, "curriculum episodes"),
                         ({**good, "best_error": -2.0}, "best_error must be a number >= 0")):
        with pytest.raises(ValueError, match=message):
            curriculum.load_state_dict(bad)
        assert curriculum.state_dict() == good and curriculum.start == 0.1


def test_a_q_network_module_of_the_wrong_size_is_refused():
    env = CircuitEnv("bell")  # 84 observations, 12 actions
    with pytest.raises(ValueError, match=r"`q_network` must map \(N, 84\) observations to \(N, 12\) Q-values; it maps \(2, 84\) to \(2, 10\)"):
        DDQNAgent(env, q_network=torch.nn.Linear(84, 10))
    with pytest.raises(ValueError, match=r"`q_network` must map .* raised RuntimeError"):
        DDQNAgent(env, q_network=torch.nn.Linear(30, 12))
    with pytest.raises(TypeError, match="`q_network` must be 'qkan', 'kan', 'mlp' or a torch module; got int"):
        DDQNAgent(env, q_network=3)
    with pytest.raises(TypeError, match="`env` must be a gymnasium.Env with the CircuitEnv interface; got str"):
        DDQNAgent("bell")
    agent = DDQNAgent(env, q_network=torch.nn.Linear(84, 12), seed=0)
    assert agent.n_parameters == 84 * 12 + 12


def test_epsilon_holds_until_the_first_success_then_decays(tmp_path):
    agent = _agent(learning_starts=16)
    history = agent.train(60, progress=False, checkpoint=tmp_path / "c.pt")
    first = history["success"].index(True)  # random Bell episodes succeed ~6% of the time
    assert agent.updates > 0 and all(e == 1.0 for e in history["epsilon"][:first])
    assert history["epsilon"][-1] < 1.0 and agent.succeeded
    assert _agent(learning_starts=16).load(tmp_path / "c.pt").succeeded  # restored from the history
    plain = _agent(learning_starts=16, explore_until_success=False)
    plain.train(3, progress=False)
    assert plain.updates > 0 and plain.epsilon < 1.0
    with pytest.raises(TypeError, match="`explore_until_success` must be a bool; got int"):
        _agent(explore_until_success=1)


def test_success_replay_keeps_the_successful_episodes_and_mixes_them_into_batches(tmp_path):
    agent = _agent(learning_starts=16, success_replay=0.25)
    history = agent.train(60, progress=False)
    successes = [k for k, ok in enumerate(history["success"]) if ok]
    assert successes and 0 < agent.success_buffer.size <= 6 * len(successes)  # Bell: at most 6 steps each
    assert agent.success_buffer.reward[:agent.success_buffer.size].max() >= 49.0  # 50 F on the last step
    batch = []
    agent.buffer.sample = lambda n, rng: batch.append(("all", n)) or agent.success_buffer.__class__.sample(
        agent.buffer, n, rng)
    agent.success_buffer.sample = lambda n, rng: batch.append(("success", n)) or agent.success_buffer.__class__.sample(
        agent.success_buffer, n, rng)
    agent._learn()
    assert batch == [("all", agent.batch_size - round(0.25 * agent.batch_size)), ("success", round(0.25 * agent.batch_size))]
    agent.save(tmp_path / "c.pt")
    restored = _agent(learning_starts=16, success_replay=0.25).load(tmp_path / "c.pt")
    assert restored.success_buffer.size == agent.success_buffer.size
    off = _agent(learning_starts=16, success_replay=0.0)
    off.train(60, progress=False)
    assert off.success_buffer.size == 0


def test_exploration_does_not_depend_on_the_learning_settings():
    """Exploration has its own random stream: agents that differ only in how they learn act alike at epsilon 1."""
    circuits = []
    for options in ({"lr": 1e-3, "learning_starts": 16}, {"lr": 1e-2, "learning_starts": 40, "success_replay": 0.5}):
        agent = _agent(eps_start=1.0, eps_min=1.0, **options)
        agent.train(8, progress=False)
        circuits.append([str(agent.run_episode(learn=False)["circuit"]) for _ in range(3)])
    assert circuits[0] == circuits[1]


class _RaiseOnSuccess:
    """A curriculum: fidelity threshold 0.5 until the first success, then `then`."""

    def __init__(self, then: float) -> None:
        self.threshold, self.then = 0.5, then

    def update(self, success: bool, error: float) -> float:
        if success:
            self.threshold = self.then
        return self.threshold

    def state_dict(self) -> dict:
        return {"threshold": self.threshold}

    def load_state_dict(self, state: dict) -> None:
        self.threshold = state["threshold"]


def test_the_success_buffer_is_emptied_when_the_curriculum_moves_the_threshold():
    for then, emptied in ((0.98, True), (0.5, False)):
        agent = _agent(learning_starts=16, curriculum=_RaiseOnSuccess(then))
        while not agent.succeeded:
            agent.train(1, progress=False)
        assert agent.env.threshold == then and (agent.success_buffer.size == 0) == emptied
