"""KANQAS at the paper's protocol: B-spline KAN, QKAN and MLP Q-networks and a random policy,
noiseless and noisy Bell and GHZ-3, several seeds in worker processes; and the seeds runner's speed.

The paper (Kundu, Sarkar, Sadhu, arXiv 2406.17630) reports for state preparation that its KAN
Q-network succeeds 2x to 5x more often than an MLP without noise and reaches higher fidelity
than the MLP under noise; for chemistry, circuits with fewer 2-qubit gates and less depth; and
far fewer learnable parameters than the MLP, at a higher time per episode.

Published settings (its configuration files), used here for every Q-network:
  Bell   KAN [84, 2, 12] (grid 5, k 3, grid refit from samples), max depth 6, batch 500, replay 10,000
  GHZ-3  MLP [288, 30, 30, 30, 24] baseline, max depth 12, batch 1000, replay 15,000
  all    Adam lr 5e-4, hard target copy every 50 updates, epsilon x 0.99995 per update down to
         0.05 from the first update (explore_until_success=False), uniform replay (success_replay=0),
         one-step smooth-L1 TD loss, gamma 0.005^(1/D), the published action mask (the last
         gate on each qubit is illegal), success at fidelity >= 0.98, 10,000 episodes
  noise  bit flip 0.3 after 1-qubit gates, depolarising 0.2 after CNOTs (density matrices)
Here the KAN is [obs, 2, actions] on both tasks (the published Bell size), the MLP [30, 30, 30],
the QKAN this package's default ([obs, 16, actions], reps 3).

Noisy threshold: one CNOT under depolarising 0.2 caps the Bell fidelity at 0.85, so the
published 0.98 can never be met. The noisy tasks succeed at 0.98 x the fidelity of the textbook
circuit under the same noise (the noise-limited optimum, printed), the env's default.

Budget: --full runs the published 10,000 episodes. --budget N (default 300) keeps every
setting but scales epsilon's decay to 0.99995^(10000/N), so epsilon follows the published curve
over the fraction of training instead of staying near 1 (0.99995 per update leaves 300 episodes
pure exploration).

Sections (table + JSON in benchmarks/results/kanqas_paper.json, or --json PATH):
  protocol  per task and policy, over seeds: success probability over training (the paper's
            metric, at the training threshold), the final greedy circuit's success and fidelity,
            CNOTs of the best circuit, Q-network parameters, episodes per second per worker
  defaults  per task (bell, ghz3) and policy at the package's defaults (DDQNAgent's), over --seeds
            (default 10) x --budget episodes (default 300): the success rate per seed (mean, min,
            seeds below 0.1, greedy at the goal) and per seed the success of every training
            episode as a string of 0/1 digits (``defaults_curves``: what tutorials/09_kanqas_seeds.ipynb draws as seed bands;
            stored there with --sections defaults --json tutorials/kanqas_seeds.json)
  seeds     the seeds runner (qkan.kanqas.search_seeds, `qkan search --seeds`): Bell at the
            package's defaults, 5 seeds in one process, then 5 and 10 seeds on --jobs workers;
            wall time, CPU time of the workers, episodes per second

Run: python benchmarks/kanqas_paper.py [--quick] [--full | --budget N] [--seeds 5] [--jobs 2]
     [--sections protocol,defaults,seeds] [--tasks bell,bell:noisy,ghz3,ghz3:noisy] [--policies random,kan,qkan,mlp]
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import _harness as h  # noqa: E402
import numpy as np  # noqa: E402

from qkan.kanqas import make_task  # noqa: E402
from qkan.kanqas.parallel import search_seeds  # noqa: E402
from qkan.kanqas.statevector import Noise  # noqa: E402

PUBLISHED_EPISODES, PUBLISHED_EPS_DECAY = 10_000, 0.99995
NOISE = (0.3, 0.2)
#: per-task settings of the published configuration files
TASK_SETTINGS = {"bell": {"batch_size": 500, "buffer_size": 10_000}, "ghz3": {"batch_size": 1000, "buffer_size": 15_000}}
COMMON = {"lr": 5e-4, "target_update": 50, "eps_min": 0.05, "n_step": 1, "loss": "smooth_l1", "explore_until_success": False,
          "success_replay": 0.0}
NETWORKS = {"kan": {"hidden": [2], "network_options": {"grid": 5, "k": 3, "grid_update": True}},
            "mlp": {"hidden": [30, 30, 30]}, "qkan": {}, "random": {}}
POLICIES = ("random", "kan", "qkan", "mlp")


def eps_decay_for(episodes: int) -> float:
    """Epsilon decay per update that follows the published schedule over `episodes` episodes."""
    return PUBLISHED_EPS_DECAY ** (PUBLISHED_EPISODES / episodes)


def _protocol_options(task: str, policy: str, episodes: int) -> tuple[dict, dict]:
    name, _, variant = task.partition(":")
    env = {"mask": "qubit", "noise": NOISE if variant == "noisy" else None}
    agent = {**COMMON, **TASK_SETTINGS[name], "eps_decay": eps_decay_for(episodes), **NETWORKS[policy]}
    return env, agent


def _summary(task: str, policy: str, runs: list[dict], optimum: float) -> dict:
    ok = [r for r in runs if r["ok"]]
    rates = np.array([r["success_rate"] for r in ok])
    greedy = [r for r in ok if r["greedy"] is not None]
    reached = [r["best"]["n_cnots"] for r in ok if r["best"]["success"]]  # at the (noise-limited) threshold
    return {"task": task, "policy": policy, "seeds": len(ok), "failed": len(runs) - len(ok),
            "episodes": ok[0]["episodes"] if ok else None,
            "success": float(rates.mean()) if ok else None, "success_std": float(rates.std()) if ok else None,
            "success_min": float(rates.min()) if ok else None,
            "greedy": f"{sum(r['greedy']['success'] for r in greedy)}/{len(greedy)}" if greedy else "-",
            "greedy_fidelity": float(np.mean([1 - r["greedy"]["error"] for r in greedy])) if greedy else None,
            "best_fidelity": float(np.mean([1 - r["best"]["error"] for r in ok])) if ok else None,
            "optimum": optimum, "cnots": float(np.median(reached)) if reached else None,
            "found": f"{len(reached)}/{len(ok)}", "params": ok[0]["params"] if ok else None,
            "episodes_per_s": float(np.mean([r["episodes_per_s"] for r in ok])) if ok else None}


def section_protocol(tasks: list[str], policies: list[str], seeds: list[int], episodes: int, jobs: int,
                     out: dict, path: Path) -> list[dict]:
    runs = out.setdefault("protocol_runs", [])
    rows = []
    for task in tasks:
        name, _, variant = task.partition(":")
        optimum = make_task(name).reachable_fidelity(Noise(*NOISE) if variant == "noisy" else None)
        for policy in policies:
            env, agent = _protocol_options(task, policy, episodes)
            print(f"{task} {policy}: {len(seeds)} seeds x {episodes} episodes", flush=True)

            def report(r: dict, task=task) -> None:
                r["task"] = task
                if r["ok"]:
                    print(f"  seed {r['seed']}: success {r['success_rate']:.3f}  best fidelity {1 - r['best']['error']:.3f} "
                          f"cnots {r['best']['n_cnots']}  ({r['episodes_per_s']:.1f} ep/s)", flush=True)
                else:
                    print(f"  seed {r['seed']}: FAILED {r['error']}", flush=True)

            results = search_seeds(name, seeds, episodes=episodes, q_network=policy, jobs=jobs, env=env, agent=agent,
                                   curves=True, on_result=report)
            runs.extend(results)
            rows.append(_summary(task, policy, results, optimum))
            h.write_json(path, out)  # keep partial results
    for row in rows:
        mlp = next((r for r in rows if r["task"] == row["task"] and r["policy"] == "mlp"), None)
        row["vs_mlp"] = (row["success"] / mlp["success"]
                         if row["success"] is not None and mlp and mlp["success"] else None)  # None: all seeds failed
    h.print_table(rows, [("task", "task", ""), ("policy", "policy", ""), ("seeds", "seeds", "d"),
                         ("episodes", "episodes", "d"), ("success", "success", ".3f"), ("success_std", "+-", ".3f"),
                         ("success_min", "min", ".3f"), ("vs_mlp", "x MLP", ".2f"), ("greedy", "greedy", ""),
                         ("greedy_fidelity", "greedy F", ".3f"), ("best_fidelity", "best F", ".3f"),
                         ("optimum", "optimum F", ".3f"), ("cnots", "CNOTs", ".1f"), ("found", "found", ""),
                         ("params", "params", "d"), ("episodes_per_s", "ep/s", ".1f")],
                  title=f"\nProtocol (published settings, {episodes} episodes, epsilon x {eps_decay_for(episodes):.6f} "
                        "per update; success = fraction of training episodes at the threshold, mean over seeds; "
                        "greedy = seeds whose final greedy circuit succeeds; F = fidelity; optimum = the textbook "
                        "circuit's fidelity under the noise; CNOTs = median over seeds of the best circuit found "
                        "at the threshold; found = seeds with such a circuit)")
    return rows


def section_defaults(tasks: list[str], policies: list[str], seeds: list[int], episodes: int, jobs: int,
                     out: dict, path: Path) -> list[dict]:
    """The package's defaults per task and policy over `seeds`; success curves into out["defaults_curves"]."""
    curves = out.setdefault("defaults_curves", {})  # task -> policy -> seed -> "0110..." (one digit per episode)
    rows = []
    for task in tasks:
        for policy in policies:
            print(f"defaults {task} {policy}: {len(seeds)} seeds x {episodes} episodes", flush=True)
            results = [r for r in search_seeds(task, seeds, episodes=episodes, q_network=policy, jobs=jobs, curves=True)
                       if r["ok"]]
            curves.setdefault(task, {})[policy] = {str(r["seed"]): "".join(str(int(v)) for v in r["curves"]["success"])
                                                   for r in results}
            rates = np.array([r["success_rate"] for r in results])
            greedy = [r["greedy"]["goal"] for r in results if r["greedy"] is not None]
            first = [r["first_goal_episode"] for r in results]
            rows.append({"task": task, "policy": policy, "seeds": len(results), "episodes": episodes,
                         "success": float(rates.mean()), "success_min": float(rates.min()),
                         "success_max": float(rates.max()), "below_0.1": int((rates < 0.1).sum()),
                         "greedy": f"{sum(greedy)}/{len(greedy)}" if greedy else "-",
                         "first_goal_max": max((f for f in first if f is not None), default=None),
                         "never": sum(f is None for f in first), "params": results[0]["params"],
                         "episodes_per_s": float(np.mean([r["episodes_per_s"] for r in results]))})
            h.write_json(path, out)  # keep partial results
    for row in rows:
        mlp = next((r for r in rows if r["task"] == row["task"] and r["policy"] == "mlp"), None)
        row["vs_mlp"] = row["success"] / mlp["success"] if mlp and mlp["success"] else None
    h.print_table(rows, [("task", "task", ""), ("policy", "policy", ""), ("seeds", "seeds", "d"),
                         ("episodes", "episodes", "d"), ("success", "success", ".3f"), ("success_min", "min", ".3f"),
                         ("success_max", "max", ".3f"), ("below_0.1", "< 0.1", "d"), ("vs_mlp", "x MLP", ".2f"),
                         ("greedy", "greedy", ""), ("first_goal_max", "last first goal", "d"),
                         ("never", "never", "d"), ("params", "params", "d"), ("episodes_per_s", "ep/s", ".1f")],
                  title=f"\nDefaults (the package's DDQNAgent defaults, {episodes} episodes; success = fraction of "
                        "training episodes at the goal, over seeds; < 0.1 = seeds below 0.1; greedy = seeds whose "
                        "final greedy circuit reaches the goal; last first goal = latest episode over seeds that "
                        "first reached the goal; never = seeds that never did)")
    return rows


def section_seeds(jobs: int, quick: bool) -> list[dict]:
    """Bell at the package's defaults: 5 seeds in this process, 5 and 10 seeds on `jobs` workers."""
    import qkan.kanqas._preload  # noqa: F401  (the serial run gets what the workers' server imports)

    episodes = 20 if quick else 300
    counts = (1, 2) if quick else (5, 10)
    with h.Stopwatch() as start:  # the workers' fork server starts once per process: timed on its own
        search_seeds("bell", [0], episodes=1, q_network="qkan", jobs=jobs)
    print(f"starting the worker server and one worker: {start.wall_s:.1f} s (once per process)")
    rows = []
    for label, n, j in (("serial (one process)", counts[0], 1), (f"{jobs} workers", counts[0], jobs),
                        (f"{jobs} workers", counts[1], jobs)):
        with h.Stopwatch() as sw:
            results = search_seeds("bell", range(n), episodes=episodes, q_network="qkan", jobs=j)
        cpu = sum(r["cpu_s"] for r in results if r["ok"])
        rows.append({"run": label, "seeds": n, "jobs": j, "episodes": episodes, "wall_s": sw.wall_s,
                     "worker_cpu_s": cpu, "episodes_per_s": n * episodes / sw.wall_s,
                     "episodes_per_cpu_s": n * episodes / cpu,
                     "success_min": min(r["success_rate"] for r in results if r["ok"]), "failed": sum(not r["ok"] for r in results)})
    base = rows[1]["wall_s"]
    for r in rows:
        r["vs_first_parallel"] = r["wall_s"] / base
    h.print_table(rows, [("run", "run", ""), ("seeds", "seeds", "d"), ("jobs", "jobs", "d"), ("episodes", "episodes", "d"),
                         ("wall_s", "wall s", ".1f"), ("vs_first_parallel", f"x {counts[0]} seeds", ".2f"),
                         ("worker_cpu_s", "worker CPU s", ".1f"), ("episodes_per_s", "ep/s", ".1f"),
                         ("episodes_per_cpu_s", "ep/CPU-s", ".1f"), ("success_min", "min success", ".3f"),
                         ("failed", "failed", "d")],
                  title=f"\nSeeds runner (Bell, QKAN, package defaults, {episodes} episodes per seed; wall includes "
                        "forking a worker per seed from the warm server; worker CPU = training only)")
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = h.make_parser("kanqas_paper", __doc__)
    parser.add_argument("--sections", default="protocol,seeds", help="comma-separated: protocol, defaults, seeds")
    parser.add_argument("--tasks", default="bell,bell:noisy,ghz3,ghz3:noisy", help="comma-separated tasks")
    parser.add_argument("--policies", default=",".join(POLICIES), help="comma-separated: random, kan, qkan, mlp")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds per task and policy (default 5, defaults section 10; quick 2)")
    parser.add_argument("--budget", type=int, default=None, help="episodes per run (default 300; quick 4)")
    parser.add_argument("--full", action="store_true", help=f"the published {PUBLISHED_EPISODES:,} episodes")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    args = h.parse_args(parser, argv)
    if args.full and args.budget:
        parser.error("--full and --budget exclude each other")
    episodes = PUBLISHED_EPISODES if args.full else args.budget or (4 if args.quick else 300)
    seeds = list(range(args.seeds or (2 if args.quick else 5)))
    tasks = ["bell", "bell:noisy"] if args.quick and args.tasks == parser.get_default("tasks") else args.tasks.split(",")
    for task in tasks:
        name, _, variant = task.partition(":")
        if name not in TASK_SETTINGS or variant not in ("", "noisy"):
            parser.error(f"--tasks: {task!r} is not one of bell, ghz3 (optionally :noisy)")
    sections = args.sections.split(",")
    path = Path(args.json)
    out: dict = {"quick": args.quick, "episodes": episodes, "seeds": seeds, "eps_decay": eps_decay_for(episodes),
                 "published": {"episodes": PUBLISHED_EPISODES, "eps_decay": PUBLISHED_EPS_DECAY, "noise": NOISE,
                               "task_settings": TASK_SETTINGS, "common": COMMON, "networks": NETWORKS}}
    rows = []
    if "protocol" in sections:
        jobs = 1 if args.quick else args.jobs  # quick: in this process (the seeds section runs the workers)
        out["protocol"] = section_protocol(tasks, args.policies.split(","), seeds, episodes, jobs, out, path)
        rows += out["protocol"]
        h.write_json(path, out)
    if "defaults" in sections:
        names = sorted({t.partition(":")[0] for t in tasks}, key=list(TASK_SETTINGS).index)
        n_seeds = list(range(args.seeds or (2 if args.quick else 10)))
        out["defaults"] = section_defaults(names, args.policies.split(","), n_seeds, episodes,
                                           1 if args.quick else args.jobs, out, path)
        rows += out["defaults"]
        h.write_json(path, out)
    if "seeds" in sections:
        out["seeds_runner"] = section_seeds(args.jobs, args.quick)
        rows += out["seeds_runner"]
    return h.save(args, "kanqas_paper", rows, **out)


if __name__ == "__main__":
    main()
