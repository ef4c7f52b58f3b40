"""`qkan search`: run KANQAS on a built-in task and print the best circuit found."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run", "TASKS"]

TASKS = ("bell", "ghz3", "h2", "lih")


def _noise(text: str) -> tuple[float, float]:
    try:
        p1, p2 = (float(v) for v in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--noise must be 'p1,p2' (e.g. 0.01,0.05); got {text!r}") from err
    return p1, p2


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``search`` subcommand to an argparse subparsers object; returns its parser."""
    parser = subparsers.add_parser("search", help="quantum architecture search (KANQAS double DQN)",
                                   description="Build circuits gate by gate with a double DQN agent.")
    parser.add_argument("--task", choices=TASKS, default="bell", help="target (default: bell)")
    parser.add_argument("--q-network", choices=("qkan", "kan", "mlp"), default="qkan",
                        help="Q-network (default: qkan)")
    parser.add_argument("--episodes", type=int, default=500, help="training episodes (default: 500)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    parser.add_argument("--noise", type=_noise, default=None, metavar="P1,P2",
                        help="bit flip p1 on 1-qubit gates, depolarising p2 on CNOTs")
    parser.add_argument("--max-depth", type=int, default=None, help="steps per episode (default: per task)")
    parser.add_argument("--eps-decay", type=float, default=0.995,
                        help="epsilon decay per update (published: 0.99995; default 0.995 for short runs)")
    parser.add_argument("--batch-size", type=int, default=128, help="replay batch (default: 128)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Train, then print the best circuit, its fidelity or energy error, gate and CNOT counts."""
    import torch

    from qkan.kanqas import CircuitEnv, DDQNAgent
    from qkan.kanqas.tasks import CHEMICAL_ACCURACY

    if args.episodes < 1:
        raise SystemExit(f"--episodes must be >= 1; got {args.episodes}")
    torch.manual_seed(args.seed)
    env = CircuitEnv(args.task, max_depth=args.max_depth, noise=args.noise)
    agent = DDQNAgent(env, q_network=args.q_network, seed=args.seed, eps_decay=args.eps_decay,
                      batch_size=args.batch_size, buffer_size=max(5000, args.batch_size))
    agent.train(args.episodes, progress=not args.no_progress)
    best = agent.best
    circuit = best["circuit"]
    print(f"task {args.task}  q-network {args.q_network}  episodes {args.episodes}  "
          f"successes {sum(agent.history['success'])}")
    print(circuit.draw())
    if env.ground:
        print(f"energy error {best['error']:.3e} Ha (exact {env.task.exact_energy:.6f} Ha, "
              f"chemical accuracy {'reached' if best['error'] < CHEMICAL_ACCURACY else 'not reached'})")
    else:
        print(f"fidelity {1 - best['error']:.6f} (success threshold {env.threshold:.4f})")
    print(f"gates {circuit.n_gates}  cnots {circuit.n_cnots}  depth {circuit.depth}")
    return 0
