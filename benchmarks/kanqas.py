"""KANQAS benchmark: speed against the published design; search success of QKAN / KAN / MLP
Q-networks beside a random policy on every task.

Sections (table + JSON in benchmarks/results/kanqas.json, or --json PATH):
  speed    episodes per second of DDQN training at the published settings (Bell, Q-network
           width [84, 2, 12], batch 500, one update per step), side by side in one process:
           the published design (an Aer density-matrix simulation of the whole circuit every
           step + a spline KAN on pykan's slow path, re-implemented here: B-splines plus a
           symbolic branch evaluated edge by edge in Python plus per-edge activation
           statistics) against this package (incremental torch simulator + QKAN / B-spline
           KAN fast path / MLP). Timed after the replay buffer holds one batch.
  search   per task (default bell, ghz3; also h2, lih, lih6, noisy variants like bell:noisy) and
           per policy (random, qkan, kan, mlp) over seeds, at the agent's defaults (Adam lr
           5e-3, batch 64, epsilon x 0.995 per update, target copy every 20 updates, 3-step
           returns, MSE TD loss, a quarter of each batch from successful episodes; ground states
           with the task's moving-threshold curriculum): the fraction of training
           episodes that succeed at the training threshold (the published metric) and at the
           task's goal (chemical accuracy for molecules), whether the final greedy policy
           reaches the goal, the first episode at the goal, CNOTs and depth of the best
           circuit, episodes per second (1 torch thread).

Run: python benchmarks/kanqas.py [--quick] [--sections speed,search] [--tasks bell,ghz3,h2,lih]
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import _harness as h  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from qkan.kanqas import CircuitEnv, DDQNAgent  # noqa: E402
from qkan.kanqas.qnets import BSplineKANLayer  # noqa: E402

NOISE = (0.3, 0.2)


# ----------------------------------------------------------------------- published-design baseline
class SlowSplineKANLayer(BSplineKANLayer):
    """pykan's KANLayer + Symbolic_KANLayer forward without its speed mode.

    Numeric branch: silu base + B-spline, per-edge scales and mask, per-edge activations kept
    (B, O, I). Symbolic branch: every edge evaluated on its own in Python, c f(a x + b) + d with
    f = 0 (pykan's default before any symbolic fit), as pykan does on every forward.
    """

    def __init__(self, in_dim: int, out_dim: int, **kw) -> None:
        super().__init__(in_dim, out_dim, **kw)
        self.scale_sp = nn.Parameter(torch.ones(out_dim, in_dim))
        self.register_buffer("mask", torch.ones(out_dim, in_dim))
        self.affine = nn.Parameter(torch.zeros(out_dim, in_dim, 4))  # a, b, c, d per edge
        self.register_buffer("symbolic_mask", torch.zeros(out_dim, in_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N = x.shape[0]
        spline = torch.einsum("nim,oim->noi", self.bases(x),
                              self.spline_weight.reshape(self.out_dim, self.in_dim, -1))  # (N, O, I)
        postacts = self.mask * (self.base_weight * F.silu(x)[:, None, :] + self.scale_sp * spline)  # (N, O, I)
        self.acts_scale = postacts.std(0)  # pykan keeps per-edge statistics on every forward
        y = postacts.sum(-1)  # (N, O)
        sym = []
        for j in range(self.out_dim):  # Symbolic_KANLayer: one Python call per edge
            row = torch.zeros(N)
            for i in range(self.in_dim):
                a, b, c, d = self.affine[j, i]
                row = row + self.symbolic_mask[j, i] * (c * (0 * (a * x[:, i] + b)) + d)  # f = 0
            sym.append(row)
        return y + torch.stack(sym, 1)


class SlowSplineKAN(nn.Sequential):
    def __init__(self, width: list[int], seed: int = 0) -> None:
        super().__init__(*(SlowSplineKANLayer(i, o, seed=seed + n) for n, (i, o) in enumerate(zip(width[:-1], width[1:]))))


class AerStepEnv(CircuitEnv):
    """CircuitEnv whose every step re-simulates the whole circuit as an Aer density matrix."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from qiskit_aer import AerSimulator
        from qiskit_aer.noise import NoiseModel, depolarizing_error, pauli_error

        model = None
        if self.noise is not None:
            model = NoiseModel()
            model.add_all_qubit_quantum_error(pauli_error([("X", self.noise.p1), ("I", 1 - self.noise.p1)]),
                                              ["x", "y", "z", "h", "t"])
            model.add_all_qubit_quantum_error(depolarizing_error(self.noise.p2, 2), ["cx"])
        self._aer = AerSimulator(method="density_matrix", noise_model=model)
        n = self.n_qubits
        self._perm = np.arange(2**n).reshape([2] * n).transpose(list(range(n))[::-1]).reshape(-1)

    def _advance(self, name, qubits) -> float:
        qc = self.circuit.to_qiskit()  # only gates Aer runs natively: no transpile
        qc.save_density_matrix()
        rho = np.asarray(self._aer.run(qc).result().data()["density_matrix"])
        target = self.task.target.numpy()[self._perm]  # to qiskit's qubit order
        return float(np.real(target.conj() @ rho @ target))


def _time_training(env: CircuitEnv, q_network, episodes: int, batch: int = 500) -> dict:
    hidden = None if q_network == "mlp" else [2]  # published sizes: [84, 2, 12] and 3 x 30
    agent = DDQNAgent(env, q_network=q_network, hidden=hidden, batch_size=batch, buffer_size=15000, seed=0)
    while agent.buffer.size < batch:  # fill one batch (no learning yet), not timed
        agent.run_episode()
    steps0 = agent.buffer.size
    with h.Stopwatch() as sw:
        for _ in range(episodes):
            agent.run_episode()
    dt, cpu = sw.wall_s, sw.cpu_s
    steps = agent.buffer.size - steps0
    return {"episodes_per_s": episodes / dt, "episodes_per_cpu_s": episodes / cpu, "ms_per_step": 1e3 * dt / steps,
            "cpu_ms_per_step": 1e3 * cpu / steps, "params": agent.n_parameters}


def section_speed(quick: bool) -> list[dict]:
    episodes = 2 if quick else 20
    configs = [
        ("published design: Aer DM per step + slow spline KAN", lambda: AerStepEnv("bell"), SlowSplineKAN([84, 2, 12])),
        ("qkan: torch simulator + QKAN (closed form)", lambda: CircuitEnv("bell"), "qkan"),
        ("qkan: torch simulator + B-spline KAN fast path", lambda: CircuitEnv("bell"), "kan"),
        ("qkan: torch simulator + MLP [30, 30, 30]", lambda: CircuitEnv("bell"), "mlp"),
    ]
    rows = []
    for label, make_env, net in configs:
        rows.append({"config": label, **_time_training(make_env(), net, episodes)})
    for r in rows:
        r["speedup"] = r["episodes_per_s"] / rows[0]["episodes_per_s"]
        r["cpu_speedup"] = r["episodes_per_cpu_s"] / rows[0]["episodes_per_cpu_s"]
    sim = _time_simulators(50 if quick else 300)
    print("\nSpeed (Bell, batch 500, one update per step, width [84, 2, 12]; torch threads "
          f"{torch.get_num_threads()})")
    print("(wall clock, and CPU time of this process: robust when other jobs share the machine)")
    print(f"{'config':55s} {'params':>7s} {'ep/s':>7s} {'ms/step':>8s} {'speedup':>8s} {'ep/cpu-s':>9s} {'cpu ms/step':>11s} {'cpu speedup':>11s}")
    for r in rows:
        print(f"{r['config']:55s} {r['params']:7d} {r['episodes_per_s']:7.2f} {r['ms_per_step']:8.1f} {r['speedup']:7.1f}x "
              f"{r['episodes_per_cpu_s']:9.2f} {r['cpu_ms_per_step']:11.1f} {r['cpu_speedup']:10.1f}x")
    print(f"simulation only, per step (GHZ-3 noisy, 12 gates): Aer DM {sim['aer_ms']:.2f} ms "
          f"(cpu {sim['aer_cpu_ms']:.2f}), this package {sim['ours_ms']:.3f} ms (cpu {sim['ours_cpu_ms']:.3f}): "
          f"{sim['aer_ms'] / sim['ours_ms']:.0f}x wall, {sim['aer_cpu_ms'] / sim['ours_cpu_ms']:.0f}x cpu")
    return rows + [{"config": "simulator per step", **sim}]


def _time_simulators(repeats: int) -> dict:
    """Per-step simulation cost: Aer DM of the whole circuit vs one incremental torch step."""
    slow, fast = AerStepEnv("ghz3", noise=NOISE), CircuitEnv("ghz3", noise=NOISE)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, slow.action_space.n, size=12)
    out = {}
    for key, env in (("aer", slow), ("ours", fast)):
        count = 0
        with h.Stopwatch() as sw:
            while count < repeats:
                env.reset(seed=0)
                for a in actions:
                    env.step(int(a))
                    count += 1
        out[f"{key}_ms"] = 1e3 * sw.wall_s / count
        out[f"{key}_cpu_ms"] = 1e3 * sw.cpu_s / count
    return out


# ----------------------------------------------------------------------- search success
POLICIES = ("random", "qkan", "kan", "mlp")


def _make_env(task: str, mask: str) -> CircuitEnv:
    name, _, variant = task.partition(":")
    return CircuitEnv(name, noise=NOISE if variant == "noisy" else None, mask=mask)


def _run_search(task: str, policy: str, seed: int, episodes: int, network_options: dict, mask: str,
                agent_options: dict) -> dict:
    """One training run (or `episodes` uniformly random legal episodes for policy "random")."""
    env = _make_env(task, mask)
    options = dict(agent_options)
    if policy in ("qkan", "kan") and "kan_hidden" in options:
        options["hidden"] = options["kan_hidden"]
    options.pop("kan_hidden", None)
    agent = DDQNAgent(env, q_network="mlp" if policy == "random" else policy, seed=seed,
                      network_options=network_options.get(policy), **options)
    if policy == "random":
        agent.epsilon = agent.eps_min = 1.0  # act() then always draws a uniform legal action
    with h.Stopwatch() as sw:
        if policy == "random":
            history = {"success": [], "goal": []}
            for _ in range(episodes):
                result = agent.run_episode(learn=False)
                agent.episode += 1
                history["success"].append(result["success"])
                history["goal"].append(result["goal"])
        else:
            history = agent.train(episodes, progress=False)
    dt, cpu = sw.wall_s, sw.cpu_s
    greedy = None if policy == "random" else agent.evaluate()
    goals = [k for k, g in enumerate(history["goal"]) if g]
    best = agent.best
    return {"task": task, "policy": policy, "seed": seed, "episodes": episodes,
            "success_rate": float(np.mean(history["success"])), "goal_rate": float(np.mean(history["goal"])),
            "greedy_goal": None if greedy is None else bool(greedy["goal"]),
            "greedy_error": None if greedy is None else greedy["error"],
            "first_goal_episode": goals[0] + 1 if goals else None, "best_error": best["error"],
            "best_goal": bool(best["goal"]), "best_cnots": best["n_cnots"], "best_depth": best["depth"],
            "params": 0 if policy == "random" else agent.n_parameters,
            "episodes_per_s": episodes / dt, "episodes_per_cpu_s": episodes / cpu}


def _summary(runs: list[dict]) -> dict:
    def mean(key):
        values = [r[key] for r in runs if r[key] is not None]
        return float(np.mean(values)) if values else None

    firsts = [r["first_goal_episode"] for r in runs if r["first_goal_episode"] is not None]
    greedy = [r["greedy_goal"] for r in runs if r["greedy_goal"] is not None]
    best = min(runs, key=lambda r: (r["best_error"], r["best_cnots"], r["best_depth"]))
    return {"task": runs[0]["task"], "policy": runs[0]["policy"], "seeds": len(runs), "episodes": runs[0]["episodes"],
            "success_rate": mean("success_rate"), "success_rate_std": float(np.std([r["success_rate"] for r in runs])),
            "goal_rate": mean("goal_rate"), "greedy_goal": f"{sum(greedy)}/{len(greedy)}" if greedy else "-",
            "first_goal_median": float(np.median(firsts)) if firsts else None,
            "seeds_with_goal": sum(r["first_goal_episode"] is not None for r in runs),
            "best_error": best["best_error"], "best_cnots": best["best_cnots"], "best_depth": best["best_depth"],
            "params": runs[0]["params"], "episodes_per_s": mean("episodes_per_s"),
            "episodes_per_cpu_s": mean("episodes_per_cpu_s")}


def section_search(tasks: list[str], policies: list[str], seeds: list[int], episodes: int, network_options: dict,
                   mask: str, agent_options: dict, out: dict, path: Path) -> list[dict]:
    runs = out.setdefault("search_runs", [])
    for task in tasks:
        for policy in policies:
            for seed in seeds:
                runs.append(_run_search(task, policy, seed, episodes, network_options, mask, agent_options))
                h.write_json(path, out)  # keep partial results
                r = runs[-1]
                print(f"  {task} {policy} seed {seed}: success {r['success_rate']:.3f} goal {r['goal_rate']:.3f} "
                      f"greedy {r['greedy_goal']} ({r['episodes_per_s']:.1f} ep/s)", flush=True)
    rows = [_summary([r for r in runs if r["task"] == t and r["policy"] == p]) for t in tasks for p in policies]
    print("\nSearch (per task and policy, mean over seeds; success = training episodes at the training "
          "threshold, goal = at the task's goal, e.g. chemical accuracy; greedy = seeds whose final greedy "
          "circuit reaches the goal; first = median first episode at the goal; best = best circuit over seeds)")
    print(f"{'task':10s} {'policy':6s} {'seeds':>5s} {'ep':>5s} {'success':>15s} {'goal':>6s} {'greedy':>6s} "
          f"{'first':>6s} {'best err':>9s} {'CNOT':>4s} {'depth':>5s} {'params':>6s} {'ep/s':>6s}")
    for r in rows:
        first = "-" if r["first_goal_median"] is None else f"{r['first_goal_median']:.0f}"
        print(f"{r['task']:10s} {r['policy']:6s} {r['seeds']:5d} {r['episodes']:5d} {r['success_rate']:7.3f} +- "
              f"{r['success_rate_std']:5.3f} {r['goal_rate']:6.3f} {r['greedy_goal']:>6s} {first:>6s} "
              f"{r['best_error']:9.2e} {r['best_cnots']:4d} {r['best_depth']:5d} {r['params']:6d} {r['episodes_per_s']:6.1f}")
    return rows


def _agent_options(args) -> dict:
    options = {k: v for k, v in (("lr", args.lr), ("n_step", args.n_step), ("learning_starts", args.learning_starts),
                                 ("loss", args.loss)) if v is not None}
    if args.kan_hidden:
        options["kan_hidden"] = [int(w) for w in args.kan_hidden.split(",")]
    return options


def main(argv: list[str] | None = None) -> dict:
    parser = h.make_parser("kanqas", __doc__)
    parser.add_argument("--sections", default="speed,search", help="comma-separated: speed, search")
    parser.add_argument("--tasks", default="bell,ghz3", help="search tasks, e.g. bell,ghz3,h2,lih,bell:noisy")
    parser.add_argument("--policies", default=",".join(POLICIES), help="comma-separated: random, qkan, kan, mlp")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per task and policy (default 3; quick 1)")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed, first-seed + 1, ...")
    parser.add_argument("--episodes", type=int, default=None, help="episodes per run (default 300; quick 10)")
    parser.add_argument("--kan-grid-update", action="store_true", help="B-spline KAN refits its grid from samples")
    parser.add_argument("--mask", default="previous", help="action mask: previous (default) | qubit (published)")
    parser.add_argument("--kan-hidden", default=None, help="hidden widths of the qkan/kan Q-networks, e.g. 16 or 8,8")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: the agent's, 5e-3)")
    parser.add_argument("--n-step", type=int, default=None, help="n-step returns (default: the agent's)")
    parser.add_argument("--learning-starts", type=int, default=None,
                        help="random transitions before the first update (default: the agent's)")
    parser.add_argument("--loss", default=None, help="TD loss: smooth_l1 | mse (default: the agent's)")
    args = h.parse_args(parser, argv)
    seeds = args.seeds or (1 if args.quick else 3)
    episodes = args.episodes or (10 if args.quick else 300)
    sections = args.sections.split(",")
    path = Path(args.json)
    out: dict = {"quick": args.quick, "threads": args.threads, "seeds": seeds, "episodes": episodes}
    if "speed" in sections:
        out["speed"] = section_speed(args.quick)
        h.write_json(path, out)
    if "search" in sections:
        options = {"kan": {"grid_update": True}} if args.kan_grid_update else {}
        out["kan_grid_update"], out["mask"], out["lr"] = args.kan_grid_update, args.mask, args.lr
        out["kan_hidden"] = args.kan_hidden
        out["agent_options"] = _agent_options(args)
        seed_list = list(range(args.first_seed, args.first_seed + seeds))
        out["search"] = section_search(args.tasks.split(","), args.policies.split(","), seed_list, episodes, options,
                                       args.mask, _agent_options(args), out, path)
    return h.save(args, "kanqas", [*out.get("speed", []), *out.get("search", [])], **out)


if __name__ == "__main__":
    main()
