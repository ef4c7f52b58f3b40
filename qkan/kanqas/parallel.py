"""Seeds in parallel: one KANQAS search per seed, each in its own worker process.

    from qkan import kanqas
    runs = kanqas.search_seeds("bell", range(10), episodes=300, jobs=2)
    print([r["success_rate"] for r in runs])

Each seed runs in a fresh process (forked from a server that has already imported torch and
qkan, or spawned where fork servers are unavailable) with one torch thread, so seeds do not
compete for threads and a run is the same whatever ``jobs`` is. A seed that raises, or whose
process dies, is reported in its result (``ok`` False, ``error``) while the others go on.
Ctrl-C in the parent terminates the workers and re-raises (``qkan search`` turns SIGTERM into
the same); a worker whose parent was killed outright stops within a second.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.connection import wait
from typing import Any

import numpy as np
import torch

from qkan._checks import check_int
from qkan.kanqas.agent import DDQNAgent
from qkan.kanqas.env import CircuitEnv
from qkan.kanqas.tasks import Task, make_task

__all__ = ["search_seeds", "search_one", "map_processes", "parse_seeds", "POLICIES"]

#: policies search_one runs: the agent's Q-networks and a uniformly random legal policy
POLICIES = ("qkan", "kan", "mlp", "random")
_START = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def parse_seeds(text: str) -> list[int]:
    """ "0-9", "0,2,5", "3" or a mix ("0-2,7") -> sorted unique seeds; ValueError naming --seeds otherwise."""
    seeds: set[int] = set()
    try:
        for part in text.split(","):
            lo, sep, hi = part.strip().partition("-")
            first, last = int(lo), int(hi) if sep else int(lo)
            if first < 0 or last < first:
                raise ValueError
            seeds.update(range(first, last + 1))
    except ValueError:
        raise ValueError(f"--seeds must be seeds >= 0 like 0-9, 0,2,5 or 0-2,7; got {text!r}") from None
    return sorted(seeds)


# ------------------------------------------------------------------------------ one seed
def search_one(spec: dict) -> dict:
    """Train one agent (or play a random policy) as `spec` says; returns plain results.

    spec keys: task (Task or registered name), seed, episodes, q_network (one of POLICIES),
    env (CircuitEnv keywords), agent (DDQNAgent keywords), evaluate (run the final greedy
    episode; default True), curves (keep the per-episode success/goal/error lists; default False).

    Returns: seed, q_network, episodes, success_rate, goal_rate, successes, goals,
    first_goal_episode, best (error, success, goal, n_gates, n_cnots, depth, circuit as
    Circuit.to_dict), greedy (success at the task's default threshold, goal, error, n_cnots,
    n_gates; None for the random policy), params, wall_s, cpu_s,
    episodes_per_s, and with ``curves`` a dict of per-episode lists: success, goal, error.
    """
    seed, episodes, policy = spec["seed"], spec["episodes"], spec.get("q_network", "qkan")
    torch.manual_seed(seed)
    env = CircuitEnv(make_task(spec["task"]), **spec.get("env", {}))
    agent_options = dict(spec.get("agent", {}))
    if policy == "random":  # epsilon stays 1: act() always draws a uniform legal action
        agent_options.update(eps_start=1.0, eps_min=1.0)
    agent = DDQNAgent(env, q_network="mlp" if policy == "random" else policy, seed=seed, **agent_options)
    wall, cpu = time.perf_counter(), time.process_time()
    if policy == "random":
        for _ in range(episodes):
            result = agent.run_episode(learn=False)
            agent.episode += 1
            for k in ("success", "goal", "error"):
                agent.history[k].append(result[k])
    else:
        agent.train(episodes, progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    history, best = agent.history, agent.best
    greedy = None
    if policy != "random" and spec.get("evaluate", True):
        g = agent.evaluate()
        greedy = {k: g[k] for k in ("success", "goal", "error", "n_cnots", "n_gates")}
    goals = [k for k, g in enumerate(history["goal"]) if g]
    out = {
        "seed": seed, "q_network": policy, "episodes": episodes,
        "success_rate": float(np.mean(history["success"])), "goal_rate": float(np.mean(history["goal"])),
        "successes": int(sum(history["success"])), "goals": int(sum(history["goal"])),
        "first_goal_episode": goals[0] + 1 if goals else None,
        "best": {"error": best["error"], "success": bool(best["success"]), "goal": bool(best["goal"]),
                 "n_gates": best["n_gates"],
                 "n_cnots": best["n_cnots"], "depth": best["depth"], "circuit": best["circuit"].to_dict()},
        "greedy": greedy, "params": 0 if policy == "random" else agent.n_parameters,
        "wall_s": wall, "cpu_s": cpu, "episodes_per_s": episodes / max(wall, 1e-9),
    }
    if spec.get("curves", False):
        out["curves"] = {k: [float(v) for v in history[k]] for k in ("success", "goal", "error")}
    return out


def search_seeds(task: str | Task, seeds: Iterable[int], *, episodes: int = 300, q_network: str = "qkan",
                 jobs: int | None = None, env: dict | None = None, agent: dict | None = None,
                 evaluate: bool = True, curves: bool = False,
                 on_result: Callable[[dict], None] | None = None) -> list[dict]:
    """Run ``search_one`` for every seed, `jobs` processes at a time; results in seed order.

    Args:
        task: a Task or a registered name (built once here and sent to the workers, so tasks
            registered at run time work too).
        seeds: seeds (ints >= 0).
        episodes: training episodes per seed.
        q_network: "qkan" | "kan" | "mlp" | "random".
        jobs: worker processes (default: min(len(seeds), os.cpu_count())); 1 runs in this process.
        env, agent: CircuitEnv and DDQNAgent keyword arguments.
        evaluate, curves: as in ``search_one``.
        on_result: called in this process with each result as its seed finishes.

    Every result has ``seed``, ``ok`` and ``error`` (None, or the exception of a failed seed as
    "Type: message"); a failed seed has no other keys.
    """
    seeds = list(seeds)
    for s in seeds:
        check_int("seeds", s, low=0)
    if not seeds:
        raise ValueError("`seeds` must name at least one seed; got none")
    check_int("episodes", episodes, low=1)
    if q_network not in POLICIES:
        raise ValueError(f"`q_network` must be one of {list(POLICIES)}; got {q_network!r}")
    task = make_task(task)
    specs = [{"task": task, "seed": s, "episodes": episodes, "q_network": q_network, "env": env or {},
              "agent": agent or {}, "evaluate": evaluate, "curves": curves} for s in seeds]

    def done(i: int, value: Any, error: str | None) -> None:
        result = {"seed": seeds[i], "ok": error is None, "error": error, **(value or {})}
        results[i] = result
        if on_result is not None:
            on_result(result)

    results: list[dict | None] = [None] * len(specs)
    map_processes(search_one, specs, jobs=jobs, on_done=done)
    return results  # type: ignore[return-value]


# ------------------------------------------------------------------------------ processes
def map_processes(fn: Callable[[Any], Any], items: Sequence[Any], *, jobs: int | None = None,
                  on_done: Callable[[int, Any, str | None], None]) -> None:
    """Call ``fn(item)`` for each item in worker processes, at most `jobs` at a time.

    `fn` must be importable by module and name (a module-level function). ``on_done(i, value,
    error)`` runs here as item i finishes: error is None on success, else "Type: message" (the
    exception fn raised, or how its process died). jobs=1 runs the items in this process.
    KeyboardInterrupt (and anything else raised here) terminates the running workers first.
    """
    jobs = min(len(items), os.cpu_count() or 1) if jobs is None else jobs
    check_int("jobs", jobs, low=1)
    if jobs == 1:
        for i, item in enumerate(items):
            value, error = _call(fn, item)
            on_done(i, value, error)
        return
    ctx = multiprocessing.get_context(_START)
    if _START == "forkserver":  # workers fork from a server that imported torch and qkan once
        ctx.set_forkserver_preload(["qkan.kanqas._preload"])
    pending = list(enumerate(items))
    running: dict[Any, tuple[int, Any, Any]] = {}  # sentinel -> (index, process, receiving end)
    try:
        while pending or running:
            while pending and len(running) < jobs:
                i, item = pending.pop(0)
                receiver, sender = ctx.Pipe(duplex=False)
                process = ctx.Process(target=_worker, args=(sender, fn, item, os.getpid()), daemon=True)
                process.start()
                sender.close()
                running[process.sentinel] = (i, process, receiver)
            receivers = {entry[2]: key for key, entry in running.items()}
            for ready in wait([*running, *receivers]):
                key = receivers.get(ready, ready)
                if key not in running:
                    continue
                i, process, receiver = running.pop(key)
                try:
                    status, value = receiver.recv()  # a result arrives before its process ends
                except EOFError:  # the process died without sending one
                    process.join()
                    status, value = "error", f"WorkerDied: the worker process exited with code {process.exitcode}"
                receiver.close()
                process.join()
                on_done(i, value if status == "ok" else None, None if status == "ok" else value)
    finally:
        for _, process, receiver in running.values():
            process.terminate()
        for _, process, receiver in running.values():
            process.join()
            receiver.close()


def _exit_with(parent: int) -> None:
    """Exit this worker once process `parent` is gone (killed without terminating its workers)."""
    while True:
        time.sleep(1.0)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # the pid exists (owned by another user)
            pass


def _call(fn: Callable[[Any], Any], item: Any) -> tuple[Any, str | None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(item), None
    except Exception as err:  # a failing seed is a result, not the end of the study
        return None, f"{type(err).__name__}: {err}"
    finally:
        torch.set_num_threads(threads)


def _worker(sender, fn: Callable[[Any], Any], item: Any, parent: int) -> None:
    """Worker process: one thread; Ctrl-C belongs to the parent (it terminates the workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    value, error = _call(fn, item)
    try:
        sender.send(("ok", value) if error is None else ("error", error))
    except Exception as err:  # e.g. a result that cannot be pickled
        sender.send(("error", f"{type(err).__name__}: {err}"))
    sender.close()
