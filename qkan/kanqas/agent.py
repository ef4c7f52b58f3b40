"""Double DQN agent with a QKAN, B-spline KAN or MLP Q-network (KANQAS, arXiv 2406.17630)."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from qkan._checks import check_choice, check_int, check_interval
from qkan._io import atomic_save, check_writable, load_checkpoint
from qkan._progress import progress_bar
from qkan.kanqas.circuit import Circuit
from qkan.kanqas.qnets import make_q_network

__all__ = ["DDQNAgent", "ReplayBuffer", "CHECKPOINT_FORMAT", "ENV_ATTRIBUTES", "INFO_KEYS", "check_agent_env"]

#: format tag of agent checkpoints (plain tensors, numbers, strings, lists and dicts only)
CHECKPOINT_FORMAT = "qkan.kanqas.DDQNAgent/4"
_BUFFER_FIELDS = ("obs", "next_obs", "action", "reward", "done", "next_mask")
#: what DDQNAgent reads from its env besides reset, step, np_random and the spaces (the DDQNAgent docstring)
ENV_ATTRIBUTES = ("task", "max_depth", "noise", "threshold", "circuit")
#: the step info entries DDQNAgent reads
INFO_KEYS = ("action_mask", "success", "goal", "error", "n_gates", "n_cnots", "depth")
_HISTORY_FIELDS = ("reward", "success", "goal", "error", "n_gates", "n_cnots", "depth", "epsilon", "threshold")


class ReplayBuffer:
    """Fixed-size ring buffer of (obs, action, reward, next_obs, done, next_mask) in numpy."""

    def __init__(self, capacity: int, obs_dim: int, n_actions: int) -> None:
        self.capacity, self.size, self.pos = capacity, 0, 0
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.action = np.zeros(capacity, np.int64)
        self.reward = np.zeros(capacity, np.float32)
        self.done = np.zeros(capacity, np.float32)
        self.next_mask = np.zeros((capacity, n_actions), np.int8)

    def add(self, obs, action, reward, next_obs, done, next_mask) -> None:
        i = self.pos
        self.obs[i], self.action[i], self.reward[i] = obs, action, reward
        self.next_obs[i], self.done[i], self.next_mask[i] = next_obs, done, next_mask
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def clear(self) -> None:
        """Forget every transition (the arrays stay allocated)."""
        self.size = self.pos = 0

    def sample(self, batch: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        """`batch` transitions drawn uniformly with replacement: obs (B, obs_dim), action (B,), ..."""
        idx = rng.integers(0, self.size, size=batch)
        return tuple(torch.from_numpy(a[idx]) for a in
                     (self.obs, self.action, self.reward, self.next_obs, self.done, self.next_mask))

    def state_dict(self) -> dict:
        """The filled part as torch tensors, plus ``pos`` and ``size``."""
        n = self.size
        return {"pos": self.pos, "size": n, **{k: torch.from_numpy(getattr(self, k)[:n].copy()) for k in _BUFFER_FIELDS}}

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()`` output; ValueError (and nothing changed) if it does not fit."""
        size, pos = state.get("size"), state.get("pos")
        if not isinstance(size, int) or not isinstance(pos, int) or not 0 <= size <= self.capacity \
                or not 0 <= pos < max(self.capacity, 1):
            raise ValueError(f"replay buffer state does not fit a capacity of {self.capacity} (size {size!r}, pos {pos!r})")
        arrays = {}
        for k in _BUFFER_FIELDS:
            value = state.get(k)
            mine = getattr(self, k)
            if not isinstance(value, torch.Tensor) or tuple(value.shape) != (size, *mine.shape[1:]):
                raise ValueError(f"replay buffer field {k!r} has the wrong type or shape")
            arrays[k] = value.numpy()
        for k, value in arrays.items():
            getattr(self, k)[:size] = value
        self.pos, self.size = pos, size


def _has_attr(env: gym.Env, name: str) -> bool:
    """Whether `env` or an env it wraps has the attribute `name`."""
    try:
        env.get_wrapper_attr(name)
    except AttributeError:
        return False
    return True


def check_agent_env(env) -> None:
    """TypeError naming what is missing if `env` does not follow the interface DDQNAgent needs.

    `env` must be a gymnasium.Env (a CircuitEnv, a gymnasium.Wrapper around one, or any env with
    the same interface) with a 1-D Box observation space, a Discrete action space and the
    attributes ENV_ATTRIBUTES (read through wrappers with ``get_wrapper_attr``).
    """
    if not isinstance(env, gym.Env):
        raise TypeError(f"`env` must be a gymnasium.Env with the CircuitEnv interface; got {type(env).__name__}")
    for name in ENV_ATTRIBUTES:
        if not _has_attr(env, name):
            raise TypeError(f"`env` must have the attribute {name!r} (the CircuitEnv interface, see DDQNAgent); "
                            f"{type(env).__name__} has none")
    obs_space, action_space = env.observation_space, env.action_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise TypeError(f"`env.observation_space` must be a 1-D gymnasium Box; got {obs_space!r}")
    if not isinstance(action_space, gym.spaces.Discrete):
        raise TypeError(f"`env.action_space` must be a gymnasium Discrete; got {action_space!r}")


def _check_q_module(module: torch.nn.Module, obs_dim: int, n_actions: int) -> None:
    """A user's Q-network must map (N, obs_dim) to (N, n_actions); ValueError naming `q_network` otherwise."""
    try:
        with torch.no_grad():
            out = module(torch.zeros(2, obs_dim))
    except Exception as err:
        raise ValueError(f"`q_network` must map (N, {obs_dim}) observations to (N, {n_actions}) Q-values; "
                         f"calling it on (2, {obs_dim}) raised {type(err).__name__}: {err}") from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, n_actions):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"`q_network` must map (N, {obs_dim}) observations to (N, {n_actions}) Q-values; "
                         f"it maps (2, {obs_dim}) to {got}")


def _check_finite(name: str, tree) -> None:
    """ValueError naming `name` if any floating tensor in the nested dicts/lists `tree` is NaN or infinite."""
    if isinstance(tree, torch.Tensor):
        if tree.is_floating_point() and not bool(torch.isfinite(tree).all()):
            raise ValueError(f"{name} holds NaN or infinite values")
    elif isinstance(tree, dict):
        for key, value in tree.items():
            _check_finite(name, value)
    elif isinstance(tree, (list, tuple)):
        for value in tree:
            _check_finite(name, value)


class DDQNAgent:
    """Double DQN: the online network picks the next action, the target network scores it.

    Loss (``loss``): MSE or Smooth-L1 between Q(s, a) and R + gamma^n (1 - done) Q_target(s', a*)
    with a* = argmax over legal a' of Q(s', a'), the n-step return R = r_0 + gamma r_1 + ... +
    gamma^(n-1) r_(n-1) and s' the state n steps later (or the episode's end, which is terminal:
    CircuitEnv episodes always end terminated). One Adam update per environment step once the
    buffer holds ``learning_starts`` transitions; the target is a hard copy every
    ``target_update`` updates; epsilon decays per update.

    Defaults n_step=3 and loss="mse" were chosen by benchmarks/kanqas.py (300 episodes, seeds
    0-2, QKAN Q-network; before: one-step smooth-L1): GHZ-3 success rate 0.143 -> 0.723 and
    greedy 2/3 -> 3/3, Bell 0.782 -> 0.783 (3/3), H2 greedy at chemical accuracy 2/3 (0/1 before).

    The env interface (``check_agent_env``; CircuitEnv has it, so has a gymnasium.Wrapper around one):
    a gymnasium.Env with a 1-D Box ``observation_space``, a Discrete ``action_space``,
    ``reset(seed=)``, ``step(action)`` and ``np_random``, and the attributes (read through
    wrappers) ``task`` (a Task: its observation_bounds, default_curriculum, default_threshold,
    check_threshold, gates, n_qubits, initial_bits), ``max_depth``, ``noise`` (None or Noise),
    ``threshold`` (read and set: the curriculum moves it) and ``circuit`` (the episode's
    Circuit); an optional ``mask`` is recorded in checkpoints. The info of reset and step holds
    ``action_mask`` ((n_actions,) int8, 1 = legal); the step info also ``success``, ``goal``,
    ``error``, ``n_gates``, ``n_cnots`` and ``depth`` (INFO_KEYS).

    Args:
        env: a CircuitEnv (any task) or an env with its interface (above).
        q_network: "qkan" | "kan" | "mlp" (see qnets.make_q_network) or a torch module
            (obs_dim,) -> (n_actions,).
        hidden: hidden widths of the Q-network (default: qnets.make_q_network's).
        network_options: extra Q-network options (qkan: reps, ansatz, ...; kan: grid, k, grid_update).
        lr, batch_size, buffer_size: Adam learning rate, replay batch and capacity.
        learning_starts: transitions stored before the first update (at least ``batch_size``);
            epsilon decays per update, so these steps are all uniformly random exploration.
        gamma: discount in (0, 1] (default 0.005 ** (1 / max_depth), as published).
        eps_start, eps_decay, eps_min: epsilon-greedy schedule (multiplied by eps_decay per update).
        explore_until_success: keep epsilon at eps_start until a training episode has succeeded
            once (then decay as usual). Without it, epsilon reaches 0.05 after ~600 updates, about
            50 GHZ-3 episodes, in which a random policy succeeds with probability ~1/2 (1.9% per
            episode): the GHZ-3 QKAN seeds that failed had first reached GHZ after episode 157 or
            never. Measured (`qkan search --task ghz3 --seeds 0-9`, 300 episodes, QKAN) without ->
            with: mean success rate 0.340 -> 0.429, seeds below 0.1 4 -> 2, greedy at GHZ-3 6/10 ->
            8/10 (the two left first met GHZ-3 after episode 200); Bell seeds 0-9 min 0.780 -> 0.730,
            mean 0.786, greedy 10/10 both. False: decay from the first update (as published).
        target_update: updates between target-network copies.
        n_step: steps summed into one stored return (1: plain one-step DDQN, as published).
        loss: "mse" or "smooth_l1" (as published) on the TD error. Smooth-L1 caps each
            transition's gradient at 1 / batch_size, so the rare successful transitions (TD error
            ~50 for state preparation, ~5 for ground states) pull the Q-network barely harder than
            the thousands of failures: an agent that stumbled on GHZ-3 at episode 9 never found it
            again with smooth_l1 (success rate 0.007) and did with mse (0.55).
        success_replay: fraction of every replay batch drawn from the transitions of successful
            training episodes (kept in a second buffer of ``buffer_size``, emptied when a
            curriculum moves the threshold: its rewards were earned at the old one) once there is one; 0:
            plain uniform replay (as published). A first success is one transition among
            thousands: sampled uniformly it reaches the network a few times per hundred updates,
            so learning to repeat it took 20-300 episodes. Measured (GHZ-3, QKAN, 300 episodes,
            seeds 0-9; commands and tables in docs/kanqas.md) 0 -> 0.25: mean success rate 0.509
            -> 0.586, seed 0 (first success at episode 2, before any update) 0.017 -> 0.540,
            episodes from the first success to 5 successes in 10 (median) 42 -> 41, max 298 ->
            115; the one seed below 0.1 never met GHZ-3 (uniform exploration succeeds in ~1.7%
            of episodes; 0 in 300 for that seed's exploration stream). 0.5 and n_step 6 were not better.
        curriculum: None, "auto" (the task's default curriculum, e.g. a MovingThreshold for
            ground states; none for state preparation) or an object with
            ``update(success, error) -> threshold``, ``threshold``, ``state_dict`` and ``load_state_dict``.
        seed: seeds the network initialisation, the environment and the agent's two random
            streams (replay sampling; exploration, so that exploration does not depend on how
            the agent learns).
    """

    def __init__(self, env: gym.Env, q_network="qkan", *, hidden: list[int] | None = None,
                 network_options: dict | None = None, lr: float = 5e-3, batch_size: int = 64,
                 buffer_size: int = 5000, gamma: float | None = None, eps_start: float = 1.0,
                 eps_decay: float = 0.995, eps_min: float = 0.05, explore_until_success: bool = True,
                 target_update: int = 20,
                 n_step: int = 3, learning_starts: int = 64, loss: str = "mse", success_replay: float = 0.25,
                 curriculum="auto", seed: int | None = None) -> None:
        check_agent_env(env)
        for arg, value in (("batch_size", batch_size), ("buffer_size", buffer_size), ("target_update", target_update),
                           ("n_step", n_step), ("learning_starts", learning_starts)):
            check_int(arg, value)
        check_int("seed", seed, low=0, allow_none=True)
        check_interval("lr", lr, 0.0, math.inf, open_low=True)
        self.env, self.seed = env, seed
        self.task, self.max_depth, self.noise = (env.get_wrapper_attr(k) for k in ("task", "max_depth", "noise"))
        gamma = 0.005 ** (1 / self.max_depth) if gamma is None else check_interval("gamma", gamma, 0.0, 1.0, open_low=True)
        eps_start = check_interval("eps_start", eps_start, 0.0, 1.0)
        eps_decay = check_interval("eps_decay", eps_decay, 0.0, 1.0, open_low=True)
        eps_min = check_interval("eps_min", eps_min, 0.0, 1.0)
        obs_dim, n_actions = env.observation_space.shape[0], env.action_space.n
        if isinstance(q_network, str):
            with torch.random.fork_rng():
                if seed is not None:
                    torch.manual_seed(seed)
                self.q = make_q_network(q_network, obs_dim, n_actions, hidden=hidden, seed=seed,
                                        input_range=self.task.observation_bounds, **(network_options or {}))
            self.q_network = q_network
        elif isinstance(q_network, torch.nn.Module):
            _check_q_module(q_network, obs_dim, n_actions)
            self.q, self.q_network = q_network, type(q_network).__name__
        else:
            raise TypeError(f"`q_network` must be 'qkan', 'kan', 'mlp' or a torch module; got {type(q_network).__name__}")
        self.target = copy.deepcopy(self.q)
        self.optimizer = torch.optim.Adam(self.q.parameters(), lr=lr)
        self.buffer = ReplayBuffer(buffer_size, obs_dim, n_actions)
        self.success_replay = check_interval("success_replay", success_replay, 0.0, 1.0)
        self.success_buffer = ReplayBuffer(buffer_size, obs_dim, n_actions)  # transitions of successful episodes
        self.batch_size, self.target_update, self.gamma = batch_size, target_update, gamma
        self.n_step = n_step
        check_choice("loss", loss, ("smooth_l1", "mse"))
        self.loss = loss
        self.learning_starts = max(learning_starts, batch_size)
        self.epsilon, self.eps_decay, self.eps_min = eps_start, eps_decay, eps_min
        if not isinstance(explore_until_success, bool):
            raise TypeError(f"`explore_until_success` must be a bool; got {type(explore_until_success).__name__}")
        self.explore_until_success = explore_until_success
        if curriculum == "auto":
            curriculum = self.task.default_curriculum(self.noise)
        self.curriculum = curriculum
        if curriculum is not None:
            self._set_threshold(curriculum.threshold)
        # two streams: exploration draws do not depend on how often the learner samples the replay,
        # so configurations that differ only in learning explore identically until they act greedily
        self.rng, self.explore_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
        self.episode, self.updates = 0, 0
        self.history: dict[str, list] = {k: [] for k in _HISTORY_FIELDS}
        self.best: dict | None = None
        self._succeeded = False
        #: what a checkpoint must have been saved with to load into this agent (plain strings and numbers)
        mask = env.get_wrapper_attr("mask") if _has_attr(env, "mask") else None
        self.config = {"task": repr(self.task), "max_depth": self.max_depth, "mask": mask,
                       "noise": None if self.noise is None else [self.noise.p1, self.noise.p2],
                       "q_network": self.q_network,
                       "network": f"{self.q!r} {sorted((network_options or {}).items())!r}".replace("\n", " "),
                       "gamma": self.gamma, "n_step": n_step, "loss": loss}

    def _set_threshold(self, value: float) -> None:
        """Set the env's success threshold (through wrappers)."""
        self.env.set_wrapper_attr("threshold", value)

    @property
    def succeeded(self) -> bool:
        """Whether any training episode has succeeded (at its training threshold)."""
        return self._succeeded

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.q.parameters())

    def act(self, obs: np.ndarray, mask: np.ndarray, greedy: bool = False) -> int:
        """Epsilon-greedy (or greedy) legal action for obs (obs_dim,), mask (n_actions,)."""
        legal = np.flatnonzero(mask)
        if not greedy and self.explore_rng.random() < self.epsilon:
            return int(self.explore_rng.choice(legal))
        with torch.no_grad():
            q = self.q(torch.as_tensor(obs).unsqueeze(0))[0].numpy()
        q = np.where(mask > 0, q, -np.inf)
        return int(np.argmax(q))

    def _learn(self) -> float:
        n_success = round(self.success_replay * self.batch_size) if self.success_buffer.size else 0
        batch = self.buffer.sample(self.batch_size - n_success, self.rng)
        if n_success:
            batch = tuple(torch.cat(pair) for pair in zip(batch, self.success_buffer.sample(n_success, self.rng)))
        obs, action, reward, next_obs, done, next_mask = batch
        B = obs.shape[0]
        q_both = self.q(torch.cat([obs, next_obs]))  # (2B, A): one forward for s and s'
        q = q_both[:B].gather(1, action[:, None]).squeeze(1)  # (B,)
        with torch.no_grad():
            online_next = q_both[B:].detach().masked_fill(next_mask == 0, -math.inf)  # (B, A)
            best_next = online_next.argmax(1, keepdim=True)
            next_value = self.target(next_obs).gather(1, best_next).squeeze(1)
            target = reward + self.gamma ** self.n_step * (1 - done) * next_value
        loss = F.smooth_l1_loss(q, target) if self.loss == "smooth_l1" else F.mse_loss(q, target)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.updates += 1
        if not self.explore_until_success or self.succeeded:
            self.epsilon = max(self.eps_min, self.epsilon * self.eps_decay)
        if self.updates % self.target_update == 0:
            if hasattr(self.q, "update_grid"):  # B-spline KAN: refit the grid to recent observations
                self.q.update_grid(obs)
            self.target.load_state_dict(self.q.state_dict())
        return float(loss.detach())

    def run_episode(self, *, greedy: bool = False, learn: bool = True) -> dict:
        """Play one episode (storing transitions and learning unless told not to)."""
        env = self.env
        seed = self.seed if (self.episode == 0 and self.seed is not None) else None
        obs, info = env.reset(seed=seed)
        total, done = 0.0, False
        pending: list[tuple[np.ndarray, int, float]] = []  # (obs, action, reward) not yet stored
        stored: list[tuple] = []  # this episode's transitions, for the success buffer
        while not done:
            action = self.act(obs, info["action_mask"], greedy=greedy)
            next_obs, reward, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            total += reward
            if learn:
                pending.append((obs, action, reward))
                while pending and (len(pending) == self.n_step or done):  # store n-step returns
                    ret = sum(self.gamma ** k * r for k, (_, _, r) in enumerate(pending))
                    first_obs, first_action, _ = pending.pop(0)
                    stored.append((first_obs, first_action, ret, next_obs, float(terminated), info["action_mask"]))
                    self.buffer.add(*stored[-1])
                if self.buffer.size >= self.learning_starts:
                    self._learn()
            obs = next_obs
        missing = [k for k in INFO_KEYS if k not in info]
        if missing:
            raise TypeError(f"the env's step info must hold {list(INFO_KEYS)}; it lacks {missing}")
        if info["success"] and self.success_replay > 0:
            for transition in stored:
                self.success_buffer.add(*transition)
        result = {"reward": total, "success": info["success"], "goal": info["goal"], "error": info["error"],
                  "n_gates": info["n_gates"], "n_cnots": info["n_cnots"], "depth": info["depth"],
                  "circuit": env.get_wrapper_attr("circuit").copy()}
        self._track_best(result)
        return result

    def _track_best(self, result: dict) -> None:
        key = [round(result["error"], 12), result["n_cnots"], result["n_gates"]]
        if self.best is None or key < self.best["key"]:
            self.best = {"key": key, **result}

    def train(self, episodes: int, *, progress: bool = True, checkpoint: str | Path | None = None,
              checkpoint_every: int = 100) -> dict[str, list]:
        """Train for `episodes` more episodes; returns the history (lists per episode).

        With `checkpoint`, the agent is saved there every `checkpoint_every` episodes, at the
        end, and when training is interrupted (KeyboardInterrupt is re-raised after the save);
        ``DDQNAgent.load`` resumes from it. Its folder is created (or refused) before training.
        """
        check_int("episodes", episodes, low=0)
        check_int("checkpoint_every", checkpoint_every)
        if checkpoint is not None:
            check_writable(Path(checkpoint).parent, "checkpoint")
        bar = progress_bar(range(episodes), progress, desc=f"KANQAS {self.q_network}")
        try:
            for _ in bar:
                self._train_episode()
                if progress:
                    bar.set_postfix(success=f"{np.mean(self.history['success'][-100:]):.2f}", eps=f"{self.epsilon:.2f}")
                if checkpoint is not None and self.episode % checkpoint_every == 0:
                    self.save(checkpoint)
        except KeyboardInterrupt:
            if checkpoint is not None:
                self.save(checkpoint)
            raise
        if checkpoint is not None:
            self.save(checkpoint)
        return self.history

    def _train_episode(self) -> None:
        result = self.run_episode()
        self._succeeded = self._succeeded or bool(result["success"])
        self.episode += 1
        if self.curriculum is not None:
            threshold = self.curriculum.update(result["success"], result["error"])
            if threshold != self.env.get_wrapper_attr("threshold"):
                self.success_buffer.clear()  # its rewards were earned at the old threshold
            self._set_threshold(threshold)
        for k in _HISTORY_FIELDS[:-2]:
            self.history[k].append(result[k])
        self.history["epsilon"].append(self.epsilon)
        self.history["threshold"].append(self.env.get_wrapper_attr("threshold"))

    def evaluate(self) -> dict:
        """One greedy episode without learning: reward, success, goal, error, counts, circuit.

        Runs at the task's default threshold (e.g. chemical accuracy), not the curriculum's
        current one: a looser training threshold would end the episode before the goal.
        """
        training = self.env.get_wrapper_attr("threshold")
        self._set_threshold(self.task.default_threshold(self.noise))
        try:
            return self.run_episode(greedy=True, learn=False)
        finally:
            self._set_threshold(training)

    def best_circuit(self) -> Circuit | None:
        """The best circuit seen in training (lowest error, then fewest CNOTs, then fewest gates)."""
        return None if self.best is None else self.best["circuit"].copy()

    # ------------------------------------------------------------------------------ checkpoints
    def save(self, path: str | Path) -> None:
        """Checkpoint everything needed to resume training (networks, optimiser, replay, RNGs).

        Written atomically (a temporary file, then os.replace): a failed save keeps the old file.
        Only tensors, numbers, strings, lists and dicts: ``load`` reads it with weights_only=True.
        """
        best = None if self.best is None else {**self.best, "circuit": self.best["circuit"].to_dict()}
        state = {
            "format": CHECKPOINT_FORMAT, "q": self.q.state_dict(), "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(), "buffer": self.buffer.state_dict(),
            "success_buffer": self.success_buffer.state_dict(), "epsilon": self.epsilon,
            "episode": self.episode, "updates": self.updates, "history": self.history, "best": best,
            "rng": self.rng.bit_generator.state, "explore_rng": self.explore_rng.bit_generator.state, "env_rng": self.env.np_random.bit_generator.state,
            "threshold": self.env.get_wrapper_attr("threshold"), "config": self.config,
            "curriculum": None if self.curriculum is None else self.curriculum.state_dict(),
        }
        atomic_save(state, path)

    def load(self, path: str | Path) -> DDQNAgent:
        """Restore a checkpoint written by ``save`` into this (identically configured) agent.

        Reads with torch.load(weights_only=True) (never runs code from the file). Everything is
        checked before anything is assigned: a missing, corrupt or foreign file, one from a
        differently configured agent (another task, depth, mask, noise, Q-network, gamma, n_step
        or loss: ``config``), non-finite weights, a malformed best circuit or curriculum state
        raises ValueError and leaves the agent as it was.
        """
        state = load_checkpoint(path, "a DDQN agent", CHECKPOINT_FORMAT)
        try:
            restored = self._restore(state)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as err:
            raise ValueError(f"{str(path)!r} does not fit this agent ({type(err).__name__}: {err})") from err
        for name, value in restored.items():  # all checks passed: assign
            setattr(self, name, value)
        self._succeeded = any(self.history["success"])
        self._set_threshold(state["threshold"])
        if self.episode > 0:  # later episodes reset without a seed: restore the env's generator
            self.env.reset()
            self.env.np_random.bit_generator.state = state["env_rng"]
        return self

    def _restore(self, state: dict) -> dict:
        """Build every restored attribute from `state` without touching the agent."""
        theirs = state["config"]
        if not isinstance(theirs, dict) or theirs != self.config:
            diff = [f"{k} {self.config.get(k)!r} here, {theirs.get(k)!r} in the file" for k in self.config
                    if not isinstance(theirs, dict) or theirs.get(k) != self.config[k]]
            raise ValueError(f"it was saved by a differently configured agent: {'; '.join(diff)}")
        q, target = copy.deepcopy(self.q), copy.deepcopy(self.target)
        for name in ("q", "target"):
            _check_finite(name, state[name])
        q.load_state_dict(state["q"])
        target.load_state_dict(state["target"])
        optimizer = type(self.optimizer)(q.parameters(), **self.optimizer.defaults)
        _check_finite("optimizer", state["optimizer"]["state"])
        optimizer.load_state_dict(state["optimizer"])
        buffer = copy.deepcopy(self.buffer)
        _check_finite("buffer", state["buffer"])
        buffer.load_state_dict(state["buffer"])
        success_buffer = copy.deepcopy(self.success_buffer)
        _check_finite("success buffer", state["success_buffer"])
        success_buffer.load_state_dict(state["success_buffer"])
        rng, explore_rng = np.random.default_rng(), np.random.default_rng()
        rng.bit_generator.state = state["rng"]
        explore_rng.bit_generator.state = state["explore_rng"]
        np.random.default_rng().bit_generator.state = state["env_rng"]  # checked here, set after reset
        self.task.check_threshold(state["threshold"])
        counters = {k: state[k] for k in ("epsilon", "episode", "updates")}
        check_interval("epsilon", counters["epsilon"], 0.0, 1.0)
        check_int("episode", counters["episode"], low=0)
        check_int("updates", counters["updates"], low=0)
        history = state["history"]
        if not isinstance(history, dict) or set(history) != set(_HISTORY_FIELDS):
            raise ValueError(f"history must have the fields {list(_HISTORY_FIELDS)}")
        for k, values in history.items():
            if not isinstance(values, list) or len(values) != counters["episode"]:
                raise ValueError(f"history {k!r} must list one value per episode ({counters['episode']})")
        best = None if state["best"] is None else self._check_best(state["best"])
        curriculum = copy.deepcopy(self.curriculum)
        if (curriculum is None) != (state["curriculum"] is None):
            raise ValueError("the checkpoint and this agent disagree on having a curriculum")
        if curriculum is not None:
            curriculum.load_state_dict(state["curriculum"])
        return {"q": q, "target": target, "optimizer": optimizer, "buffer": buffer, "success_buffer": success_buffer,
                "rng": rng, "explore_rng": explore_rng, "history": history,
                "best": best, "curriculum": curriculum, **counters}

    def _check_best(self, best: dict) -> dict:
        """A checkpoint's best-episode record with its circuit rebuilt; ValueError if inconsistent."""
        circuit = Circuit.from_dict(best["circuit"])
        names = {"CNOT", *self.task.gates}
        if circuit.n_qubits != self.task.n_qubits or any(g.name not in names for g in circuit.gates):
            raise ValueError(f"the best circuit does not belong to this task ({circuit.n_qubits} qubits, "
                             f"gates {sorted({g.name for g in circuit.gates})})")
        if list(circuit.initial_bits) != list(self.task.initial_bits):
            raise ValueError("the best circuit starts from another basis state than this task")
        error = check_interval("best error", best["error"], 0.0, math.inf)
        counts = [best["n_gates"], best["n_cnots"], best["depth"]]
        if counts != [circuit.n_gates, circuit.n_cnots, circuit.depth] or \
                best["key"] != [round(error, 12), circuit.n_cnots, circuit.n_gates]:
            raise ValueError("the best circuit's counts do not match its gates")
        return {**best, "circuit": circuit}
