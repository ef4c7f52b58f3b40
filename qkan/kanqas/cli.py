"""`qkan search`: run KANQAS on a registered task, print and save the best circuit found.

One seed (``--seed``) trains in this process and can checkpoint and resume; several seeds
(``--seeds 0-9 --jobs N``) train in worker processes (qkan.kanqas.parallel), one line per
finished seed, then a summary. The best circuit goes to ``--out`` as OpenQASM 3 and JSON.
Ctrl-C and SIGTERM save progress (a resumable checkpoint, or the finished seeds) and exit
with 130 / 143.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from qkan._shell import Terminated, fail, interrupt_code, sigterm_as_interrupt

__all__ = ["add_parser", "run"]

#: where Ctrl-C / SIGTERM save the agent when --checkpoint is not given
INTERRUPT_CHECKPOINT = "qkan-search-interrupted.pt"


def _noise(text: str) -> tuple[float, float]:
    try:
        p1, p2 = (float(v) for v in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--noise must be 'p1,p2' (e.g. 0.01,0.05); got {text!r}") from err
    return p1, p2


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``search`` subcommand to an argparse subparsers object; returns its parser."""
    from qkan.kanqas import available_tasks
    from qkan.kanqas.env import MASKS
    from qkan.kanqas.qnets import Q_NETWORKS

    parser = subparsers.add_parser("search", help="quantum architecture search (KANQAS double DQN)",
                                   description="Build circuits gate by gate with a double DQN agent.")
    parser.add_argument("--task", choices=available_tasks(), default="bell", metavar="TASK",
                        help=f"target: {', '.join(available_tasks())} (default: bell)")
    parser.add_argument("--q-network", choices=Q_NETWORKS, default="qkan", help="Q-network (default: qkan)")
    parser.add_argument("--episodes", type=int, default=300,
                        help="training episodes in total (with --resume: including the checkpoint's; default: 300)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    parser.add_argument("--seeds", default=None, metavar="LIST",
                        help="several seeds, e.g. 0-9 or 0,2,5: one run each, in worker processes")
    parser.add_argument("--jobs", type=int, default=None,
                        help="worker processes for --seeds (default: min(seeds, CPU cores)); one torch thread each")
    parser.add_argument("--noise", type=_noise, default=None, metavar="P1,P2",
                        help="bit flip p1 on 1-qubit gates, depolarising p2 on CNOTs")
    parser.add_argument("--max-depth", type=int, default=None, help="steps per episode (default: per task)")
    parser.add_argument("--mask", choices=MASKS, default="previous",
                        help="illegal actions: the previous one (default) or the last gate on each qubit (published)")
    parser.add_argument("--eps-decay", type=float, default=0.995,
                        help="epsilon decay per update (published: 0.99995; default 0.995 for short runs)")
    parser.add_argument("--batch-size", type=int, default=64, help="replay batch (default: 64)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="folder for the best circuit (best.qasm, best.json; with --seeds also seed<k>.* "
                             "and summary.json; default ./qkan-runs/search-<task>-<time>)")
    parser.add_argument("--checkpoint", default=None, metavar="PATH",
                        help="save the agent here every 100 episodes and at the end (Ctrl-C and SIGTERM save "
                             f"too, to {INTERRUPT_CHECKPOINT} without this flag)")
    parser.add_argument("--resume", default=None, metavar="PATH", help="continue from a saved checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Train, print the best circuit and counts, write it to --out.

    Bad arguments print one line and return 2. Ctrl-C / SIGTERM save (a checkpoint for one
    seed, the finished seeds' files for several), print one line and return 130 / 143; a
    failed seed among several returns 1 after the others finished.
    """
    from qkan._io import check_writable

    try:
        if args.episodes < 1:
            raise ValueError(f"--episodes must be >= 1; got {args.episodes}")
        out = check_writable(Path(args.out) if args.out else
                             Path("qkan-runs") / f"search-{args.task}-{time.strftime('%Y%m%d-%H%M%S')}", "--out")
        if args.seeds is not None:
            return _run_seeds(args, out)
        if args.jobs is not None:
            raise ValueError("--jobs needs --seeds")
        return _run_one(args, out)
    except (ValueError, TypeError, OSError) as err:
        return fail(f"qkan search: error: {err}")


def _env_agent_options(args) -> tuple[dict, dict]:
    env = {"max_depth": args.max_depth, "noise": args.noise, "mask": args.mask}
    agent = {"eps_decay": args.eps_decay, "batch_size": args.batch_size, "buffer_size": max(5000, args.batch_size)}
    return env, agent


def _run_one(args, out: Path) -> int:
    import torch

    from qkan._io import check_writable
    from qkan.kanqas import CircuitEnv, DDQNAgent

    env_options, agent_options = _env_agent_options(args)
    torch.manual_seed(args.seed)
    env = CircuitEnv(args.task, **env_options)
    agent = DDQNAgent(env, q_network=args.q_network, seed=args.seed, **agent_options)
    if args.resume:
        agent.load(args.resume)
    if args.checkpoint:
        check_writable(Path(args.checkpoint).parent, "--checkpoint")
    remaining = max(0, args.episodes - agent.episode)  # --episodes counts the resumed ones too
    if remaining == 0:
        print(f"the checkpoint already holds {agent.episode} >= {args.episodes} episodes: nothing to train",
              file=sys.stderr)
    checkpoint = args.checkpoint or INTERRUPT_CHECKPOINT
    try:
        with sigterm_as_interrupt():
            agent.train(remaining, progress=not args.no_progress, checkpoint=args.checkpoint)
    except KeyboardInterrupt as err:
        try:
            agent.save(checkpoint)
            saved = f"checkpoint saved to {checkpoint} (continue with --resume {checkpoint})"
        except (OSError, RuntimeError) as save_err:
            saved = f"could not save a checkpoint: {save_err}"
        what = "terminated" if isinstance(err, Terminated) else "interrupted"
        print(f"qkan search: {what} after {agent.episode} episodes; {saved}", file=sys.stderr)
        return interrupt_code(err)
    history, best, task = agent.history, agent.best, env.task
    n = len(history["success"])
    print(f"task {args.task}  q-network {args.q_network}  episodes {n}  successes: {sum(history['success'])}/{n} "
          f"at the training threshold, {sum(history['goal'])}/{n} at the goal ({task.goal_name})")
    print(repr(task))
    if best is None:
        print("no episode was run: no best circuit")
        return 0
    circuit = best["circuit"]
    print(circuit.draw())
    print(f"best circuit: error {best['error']:.3e}  goal {'reached' if best['goal'] else 'not reached'}  "
          f"gates {circuit.n_gates}  cnots {circuit.n_cnots}  depth {circuit.depth}")
    greedy = agent.evaluate()
    print(f"greedy policy: error {greedy['error']:.3e}  goal {'reached' if greedy['goal'] else 'not reached'}  "
          f"gates {greedy['n_gates']}  cnots {greedy['n_cnots']}")
    meta = {"task": args.task, "q_network": args.q_network, "seed": args.seed, "episodes": n,
            "successes": int(sum(history["success"])), "goals": int(sum(history["goal"]))}
    _write_circuit(out / "best", circuit.to_dict(), best, meta)
    print(f"wrote {out / 'best.qasm'} and {out / 'best.json'}")
    return 0


def _write_circuit(stem: Path, circuit: dict, best: dict, meta: dict) -> None:
    """stem.qasm (OpenQASM 3) and stem.json (the circuit dict, its error and counts, `meta`)."""
    from qkan._io import atomic_write_text
    from qkan.kanqas.circuit import Circuit

    atomic_write_text(Circuit.from_dict(circuit).to_qasm(), stem.with_suffix(".qasm"))
    record = {**meta, "error": float(best["error"]), "goal": bool(best["goal"]), "n_gates": int(best["n_gates"]),
              "n_cnots": int(best["n_cnots"]), "depth": int(best["depth"]), "circuit": circuit}
    atomic_write_text(json.dumps(record, indent=2) + "\n", stem.with_suffix(".json"))


def _run_seeds(args, out: Path) -> int:
    from qkan.kanqas.parallel import parse_seeds, search_seeds

    seeds = parse_seeds(args.seeds)
    if args.checkpoint or args.resume:
        raise ValueError("--checkpoint and --resume work with one --seed, not with --seeds")
    if args.jobs is not None and args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1; got {args.jobs}")
    env_options, agent_options = _env_agent_options(args)
    finished: list[dict] = []

    def report(r: dict) -> None:
        finished.append(r)
        if not r["ok"]:
            print(f"seed {r['seed']}: FAILED: {r['error']}", flush=True)
            return
        greedy = "reached" if r["greedy"]["goal"] else "not reached"
        print(f"seed {r['seed']}: success {r['success_rate']:.3f}  goal {r['goal_rate']:.3f}  greedy {greedy}  "
              f"best error {r['best']['error']:.2e} cnots {r['best']['n_cnots']}  "
              f"({r['wall_s']:.1f} s, {r['episodes_per_s']:.1f} episodes/s)  [{len(finished)}/{len(seeds)}]", flush=True)
        meta = {"task": args.task, "q_network": args.q_network, "seed": r["seed"], "episodes": r["episodes"],
                "successes": r["successes"], "goals": r["goals"]}
        _write_circuit(out / f"seed{r['seed']}", r["best"]["circuit"], r["best"], meta)

    wall = time.perf_counter()
    print(f"task {args.task}  q-network {args.q_network}  seeds {args.seeds} ({len(seeds)})  episodes {args.episodes}",
          flush=True)
    code = 0
    try:
        with sigterm_as_interrupt():
            search_seeds(args.task, seeds, episodes=args.episodes, q_network=args.q_network, jobs=args.jobs,
                         env=env_options, agent=agent_options, on_result=report)
    except KeyboardInterrupt as err:
        what = "terminated" if isinstance(err, Terminated) else "interrupted"
        print(f"qkan search: {what}; {len(finished)} of {len(seeds)} seeds finished, their circuits are in {out}",
              file=sys.stderr)
        code = interrupt_code(err)
    _summarise(args, out, finished, time.perf_counter() - wall)
    failed = [r for r in finished if not r["ok"]]
    return code or (1 if failed else 0)


def _summarise(args, out: Path, runs: list[dict], wall: float) -> None:
    """Print mean and spread over the finished seeds; write summary.json and best.* (best over seeds)."""
    from qkan._io import atomic_write_text

    ok = sorted((r for r in runs if r["ok"]), key=lambda r: r["seed"])
    summary = {"task": args.task, "q_network": args.q_network, "episodes": args.episodes, "wall_s": wall,
               "seeds": [r["seed"] for r in ok], "failed": {r["seed"]: r["error"] for r in runs if not r["ok"]},
               "runs": [{k: v for k, v in r.items() if k != "best"} | {"best": {k: v for k, v in r["best"].items()
                                                                               if k != "circuit"}} for r in ok]}
    if ok:
        rates = np.array([r["success_rate"] for r in ok])
        greedy = sum(r["greedy"]["goal"] for r in ok)
        best = min(ok, key=lambda r: (r["best"]["error"], r["best"]["n_cnots"], r["best"]["n_gates"]))
        summary.update(success_rate_mean=float(rates.mean()), success_rate_std=float(rates.std()),
                       success_rate_min=float(rates.min()), greedy_goal=greedy, best_seed=best["seed"])
        print(f"{len(ok)} seeds: success {rates.mean():.3f} +- {rates.std():.3f} (min {rates.min():.3f}, "
              f"max {rates.max():.3f})  greedy at the goal {greedy}/{len(ok)}  wall {wall:.1f} s")
        meta = {"task": args.task, "q_network": args.q_network, "seed": best["seed"], "episodes": best["episodes"],
                "successes": best["successes"], "goals": best["goals"]}
        _write_circuit(out / "best", best["best"]["circuit"], best["best"], meta)
    atomic_write_text(json.dumps(summary, indent=2) + "\n", out / "summary.json")
    print(f"wrote {out / 'summary.json'}" + (f" and the best circuit (seed {summary['best_seed']}) to {out / 'best.qasm'}"
                                              if ok else ""))
