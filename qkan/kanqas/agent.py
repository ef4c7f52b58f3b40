"""Double DQN agent with a QKAN, B-spline KAN or MLP Q-network (KANQAS, arXiv 2406.17630)."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from qkan._checks import check_int
from qkan.kanqas.circuit import Circuit
from qkan.kanqas.curriculum import MovingThreshold
from qkan.kanqas.env import CircuitEnv
from qkan.kanqas.qnets import make_q_network
from qkan.kanqas.tasks import CHEMICAL_ACCURACY

__all__ = ["DDQNAgent", "ReplayBuffer"]


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

    def sample(self, batch: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        idx = rng.integers(0, self.size, size=batch)
        return tuple(torch.from_numpy(a[idx]) for a in
                     (self.obs, self.action, self.reward, self.next_obs, self.done, self.next_mask))

    def state_dict(self) -> dict:
        n = self.size
        return {"pos": self.pos, "size": n, **{k: getattr(self, k)[:n].copy() for k in
                ("obs", "next_obs", "action", "reward", "done", "next_mask")}}

    def load_state_dict(self, state: dict) -> None:
        self.pos, self.size = state["pos"], state["size"]
        for k in ("obs", "next_obs", "action", "reward", "done", "next_mask"):
            getattr(self, k)[: self.size] = state[k]


class DDQNAgent:
    """Double DQN: the online network picks the next action, the target network scores it.

    Loss: Smooth-L1 between Q(s, a) and r + gamma (1 - done) Q_target(s', argmax_a' Q(s', a'))
    over legal a'. One Adam update per environment step once the buffer holds a batch; the
    target is a hard copy every ``target_update`` updates; epsilon decays per update.

    Args:
        env: a CircuitEnv.
        q_network: "qkan" | "kan" | "mlp" (see qnets.make_q_network) or a torch module
            (obs_dim,) -> (n_actions,).
        hidden: hidden widths of the Q-network (default: [2] for qkan/kan, [30, 30, 30] mlp).
        network_options: extra Q-network options (qkan: reps, ansatz, ...; kan: grid, k).
        lr, batch_size, buffer_size: Adam learning rate, replay batch, replay capacity.
        gamma: discount (default 0.005 ** (1 / max_depth), as published).
        eps_start, eps_decay, eps_min: epsilon-greedy schedule (multiplied by eps_decay per update).
        target_update: updates between target-network copies.
        curriculum: None, "auto" (for ground-state tasks a MovingThreshold starting at half the
            initial state's energy error) or a MovingThreshold.
        seed: seeds the network initialisation, the environment and the agent's own RNG.
    """

    def __init__(self, env: CircuitEnv, q_network="qkan", *, hidden: list[int] | None = None,
                 network_options: dict | None = None, lr: float = 5e-4, batch_size: int = 500,
                 buffer_size: int = 15000, gamma: float | None = None, eps_start: float = 1.0,
                 eps_decay: float = 0.99995, eps_min: float = 0.05, target_update: int = 50,
                 curriculum="auto", seed: int | None = None) -> None:
        if not isinstance(env, CircuitEnv):
            raise ValueError(f"`env` must be a CircuitEnv; got {type(env).__name__}")
        for arg, value in (("batch_size", batch_size), ("buffer_size", buffer_size), ("target_update", target_update)):
            check_int(arg, value)
        if not 0 < eps_decay <= 1:
            raise ValueError(f"`eps_decay` must be in (0, 1]; got {eps_decay!r}")
        self.env, self.seed = env, seed
        obs_dim, n_actions = env.observation_space.shape[0], env.action_space.n
        if isinstance(q_network, str):
            with torch.random.fork_rng():
                if seed is not None:
                    torch.manual_seed(seed)
                self.q = make_q_network(q_network, obs_dim, n_actions, hidden=hidden, seed=seed,
                                        **(network_options or {}))
            self.q_network = q_network
        elif isinstance(q_network, torch.nn.Module):
            self.q, self.q_network = q_network, type(q_network).__name__
        else:
            raise ValueError(f"`q_network` must be 'qkan', 'kan', 'mlp' or a torch module; got {q_network!r}")
        self.target = copy.deepcopy(self.q)
        self.optimizer = torch.optim.Adam(self.q.parameters(), lr=lr)
        self.buffer = ReplayBuffer(buffer_size, obs_dim, n_actions)
        self.batch_size, self.target_update = batch_size, target_update
        self.gamma = 0.005 ** (1 / env.max_depth) if gamma is None else gamma
        self.epsilon, self.eps_decay, self.eps_min = eps_start, eps_decay, eps_min
        if curriculum == "auto":  # start at half the initial (Hartree-Fock) error
            curriculum = None
            if env.ground:
                env.reset()
                curriculum = MovingThreshold(max(2 * CHEMICAL_ACCURACY, 0.5 * env.error))
        self.curriculum = curriculum
        if curriculum is not None:
            env.threshold = curriculum.threshold
        self.rng = np.random.default_rng(seed)
        self.episode, self.updates = 0, 0
        self.history: dict[str, list] = {k: [] for k in
                                         ("reward", "success", "error", "n_gates", "n_cnots", "depth", "epsilon", "threshold")}
        self.best: dict | None = None

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.q.parameters())

    def act(self, obs: np.ndarray, mask: np.ndarray, greedy: bool = False) -> int:
        """Epsilon-greedy (or greedy) legal action for obs (obs_dim,), mask (n_actions,)."""
        legal = np.flatnonzero(mask)
        if not greedy and self.rng.random() < self.epsilon:
            return int(self.rng.choice(legal))
        with torch.no_grad():
            q = self.q(torch.as_tensor(obs).unsqueeze(0))[0].numpy()
        q = np.where(mask > 0, q, -np.inf)
        return int(np.argmax(q))

    def _learn(self) -> float:
        obs, action, reward, next_obs, done, next_mask = self.buffer.sample(self.batch_size, self.rng)
        B = obs.shape[0]
        q_both = self.q(torch.cat([obs, next_obs]))  # (2B, A): one forward for s and s'
        q = q_both[:B].gather(1, action[:, None]).squeeze(1)  # (B,)
        with torch.no_grad():
            online_next = q_both[B:].detach().masked_fill(next_mask == 0, -math.inf)  # (B, A)
            best_next = online_next.argmax(1, keepdim=True)
            target = reward + self.gamma * (1 - done) * self.target(next_obs).gather(1, best_next).squeeze(1)
        loss = F.smooth_l1_loss(q, target)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.updates += 1
        self.epsilon = max(self.eps_min, self.epsilon * self.eps_decay)
        if self.updates % self.target_update == 0:
            self.target.load_state_dict(self.q.state_dict())
        return float(loss.detach())

    def run_episode(self, *, greedy: bool = False, learn: bool = True) -> dict:
        """Play one episode (storing transitions and learning unless told not to)."""
        env = self.env
        seed = self.seed if (self.episode == 0 and self.seed is not None) else None
        obs, info = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            action = self.act(obs, info["action_mask"], greedy=greedy)
            next_obs, reward, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            total += reward
            if learn:
                self.buffer.add(obs, action, reward, next_obs, float(terminated), info["action_mask"])
                if self.buffer.size >= self.batch_size:
                    self._learn()
            obs = next_obs
        result = {"reward": total, "success": info["success"], "error": info["error"], "n_gates": info["n_gates"],
                  "n_cnots": info["n_cnots"], "depth": info["depth"], "circuit": env.circuit.copy()}
        self._track_best(result)
        return result

    def _track_best(self, result: dict) -> None:
        key = (round(result["error"], 12), result["n_cnots"], result["n_gates"])
        if self.best is None or key < self.best["key"]:
            self.best = {"key": key, **result}

    def train(self, episodes: int, *, progress: bool = True, checkpoint: str | Path | None = None,
              checkpoint_every: int = 100) -> dict[str, list]:
        """Train for `episodes` more episodes; returns the history (lists per episode).

        With `checkpoint`, the agent is saved there every `checkpoint_every` episodes and at the
        end; ``DDQNAgent.load`` resumes from it.
        """
        check_int("episodes", episodes, low=0)
        bar = range(episodes)
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(bar, desc=f"KANQAS {self.q_network}")
        for _ in bar:
            result = self.run_episode()
            self.episode += 1
            if self.curriculum is not None:
                self.env.threshold = self.curriculum.update(result["success"], result["error"])
            for k in ("reward", "success", "error", "n_gates", "n_cnots", "depth"):
                self.history[k].append(result[k])
            self.history["epsilon"].append(self.epsilon)
            self.history["threshold"].append(self.env.threshold)
            if progress:
                bar.set_postfix(success=f"{np.mean(self.history['success'][-100:]):.2f}", eps=f"{self.epsilon:.2f}")
            if checkpoint is not None and self.episode % checkpoint_every == 0:
                self.save(checkpoint)
        if checkpoint is not None:
            self.save(checkpoint)
        return self.history

    def evaluate(self) -> dict:
        """One greedy episode without learning: reward, success, error, counts, circuit."""
        return self.run_episode(greedy=True, learn=False)

    def best_circuit(self) -> Circuit | None:
        """The best circuit seen in training (lowest error, then fewest CNOTs, then fewest gates)."""
        return None if self.best is None else self.best["circuit"].copy()

    def save(self, path: str | Path) -> None:
        """Checkpoint everything needed to resume training (networks, optimiser, replay, RNGs)."""
        state = {
            "q": self.q.state_dict(), "target": self.target.state_dict(), "optimizer": self.optimizer.state_dict(),
            "buffer": self.buffer.state_dict(), "epsilon": self.epsilon, "episode": self.episode,
            "updates": self.updates, "history": self.history, "best": self.best, "rng": self.rng.bit_generator.state,
            "env_rng": self.env.np_random.bit_generator.state, "threshold": self.env.threshold,
            "curriculum": None if self.curriculum is None else self.curriculum.state_dict(),
        }
        torch.save(state, path)

    def load(self, path: str | Path) -> DDQNAgent:
        """Restore a checkpoint written by ``save`` into this (identically configured) agent."""
        state = torch.load(path, weights_only=False)
        self.q.load_state_dict(state["q"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.buffer.load_state_dict(state["buffer"])
        self.epsilon, self.episode, self.updates = state["epsilon"], state["episode"], state["updates"]
        self.history, self.best = state["history"], state["best"]
        self.rng.bit_generator.state = state["rng"]
        if self.episode > 0:  # later episodes reset without a seed: restore the env's generator
            self.env.reset()
            self.env.np_random.bit_generator.state = state["env_rng"]
        self.env.threshold = state["threshold"]
        if self.curriculum is not None and state["curriculum"] is not None:
            self.curriculum.load_state_dict(state["curriculum"])
        return self
