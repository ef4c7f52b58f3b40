"""`qkan search`: run KANQAS on a registered task and print the best circuit found."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qkan.cli import fail

__all__ = ["add_parser", "run"]

#: where Ctrl-C saves the agent when --checkpoint is not given
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
    parser.add_argument("--episodes", type=int, default=300, help="training episodes (default: 300)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    parser.add_argument("--noise", type=_noise, default=None, metavar="P1,P2",
                        help="bit flip p1 on 1-qubit gates, depolarising p2 on CNOTs")
    parser.add_argument("--max-depth", type=int, default=None, help="steps per episode (default: per task)")
    parser.add_argument("--mask", choices=MASKS, default="previous",
                        help="illegal actions: the previous one (default) or the last gate on each qubit (published)")
    parser.add_argument("--eps-decay", type=float, default=0.995,
                        help="epsilon decay per update (published: 0.99995; default 0.995 for short runs)")
    parser.add_argument("--batch-size", type=int, default=64, help="replay batch (default: 64)")
    parser.add_argument("--checkpoint", default=None, metavar="PATH",
                        help="save the agent here every 100 episodes and at the end (Ctrl-C saves too, "
                             f"to {INTERRUPT_CHECKPOINT} without this flag)")
    parser.add_argument("--resume", default=None, metavar="PATH", help="continue from a saved checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Train, then print the best circuit, success counts, error, gate and CNOT counts.

    Bad arguments print one line and return 2; Ctrl-C saves a resumable checkpoint, prints one
    line and returns 130.
    """
    import torch

    from qkan.kanqas import CircuitEnv, DDQNAgent
    from qkan._io import check_writable

    checkpoint = args.checkpoint or INTERRUPT_CHECKPOINT
    try:
        if args.episodes < 1:
            raise ValueError(f"--episodes must be >= 1; got {args.episodes}")
        torch.manual_seed(args.seed)
        env = CircuitEnv(args.task, max_depth=args.max_depth, noise=args.noise, mask=args.mask)
        agent = DDQNAgent(env, q_network=args.q_network, seed=args.seed, eps_decay=args.eps_decay,
                          batch_size=args.batch_size, buffer_size=max(5000, args.batch_size))
        if args.resume:
            agent.load(args.resume)
        if args.checkpoint:
            check_writable(Path(args.checkpoint).parent, "--checkpoint")
    except (ValueError, TypeError) as err:
        return fail(f"qkan search: error: {err}")
    try:
        agent.train(args.episodes, progress=not args.no_progress, checkpoint=args.checkpoint)
    except KeyboardInterrupt:
        try:
            agent.save(checkpoint)
            saved = f"checkpoint saved to {checkpoint} (continue with --resume {checkpoint})"
        except (OSError, RuntimeError) as err:
            saved = f"could not save a checkpoint: {err}"
        print(f"qkan search: interrupted after {agent.episode} episodes; {saved}", file=sys.stderr)
        return 130
    history, best, task = agent.history, agent.best, env.task
    n = len(history["success"])
    print(f"task {args.task}  q-network {args.q_network}  episodes {n}  successes: {sum(history['success'])}/{n} "
          f"at the training threshold, {sum(history['goal'])}/{n} at the goal ({task.goal_name})")
    print(repr(task))
    circuit = best["circuit"]
    print(circuit.draw())
    print(f"best circuit: error {best['error']:.3e}  goal {'reached' if best['goal'] else 'not reached'}  "
          f"gates {circuit.n_gates}  cnots {circuit.n_cnots}  depth {circuit.depth}")
    greedy = agent.evaluate()
    print(f"greedy policy: error {greedy['error']:.3e}  goal {'reached' if greedy['goal'] else 'not reached'}  "
          f"gates {greedy['n_gates']}  cnots {greedy['n_cnots']}")
    return 0
