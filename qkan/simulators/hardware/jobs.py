"""Jobs: submit all of an evaluation's jobs at once, collect them in order, report each one.

Every job is submitted before any result is awaited (primitives and Aer run jobs in the
background; IBM queues them), so split jobs run concurrently. ``job_callback(event, info)`` is
called with event "submitted", "done" or "failed" and info {"job_id", "backend", "stage",
"circuits", "status", "usage"} (usage: the job's reported usage - quantum seconds on IBM,
the simulator's time elsewhere - or None); a callback that raises is reported as a warning and
changes nothing. A failure (a job that fails, returns NaN or +-inf, or runs past ``timeout``)
cancels the jobs not yet collected (queued jobs are billed on IBM hardware) and raises
QiskitJobError naming backend, job and layer; nothing is written to the layer, so parameters
stay as they were.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["QiskitJobError", "Task", "run_tasks"]


class QiskitJobError(RuntimeError):
    """A Qiskit primitive job failed or was cancelled; the message names backend, job and layer."""


@dataclass
class Task:
    """One job: ``submit()`` returns the job, ``collect(result)`` turns its result into (values, readout rates)."""

    submit: Callable[[], Any]
    collect: Callable[[Any], Any]
    circuits: int


def _job_id(job) -> str:
    try:
        return str(job.job_id())
    except Exception:  # noqa: BLE001 - only for messages and callbacks
        return "<not submitted>" if job is None else "unknown"


def _status(job) -> str:
    try:
        status = job.status()
        return str(getattr(status, "name", status))
    except Exception:  # noqa: BLE001
        return "unknown"


def _usage(job, result):
    for get in (lambda: job.usage(), lambda: result.metadata.get("time_taken"), lambda: result.time_taken):
        try:
            value = get()
        except Exception:  # noqa: BLE001 - whichever the job type has
            continue
        if value is not None:
            return value
    return None


def _notify(callback: Callable[[str, dict], None] | None, event: str, info: dict) -> None:
    """Call the user's callback; an exception in it is a warning, never a lost result."""
    if callback is None:
        return
    try:
        callback(event, info)
    except Exception as err:  # noqa: BLE001 - user code: report it, keep the job's outcome
        warnings.warn(f"job_callback raised on {event!r} for job {info['job_id']}: {type(err).__name__}: {err} "
                      "(ignored; the job's outcome stands)", RuntimeWarning, stacklevel=3)


def _result(job, timeout: float | None):
    """job.result(), waiting at most `timeout` seconds (None: no limit)."""
    if timeout is None:
        return job.result()
    box: dict = {}

    def wait() -> None:
        try:
            box["result"] = job.result()
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = err

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"no result within job_timeout={timeout} s")
    if "error" in box:
        raise box["error"]
    return box["result"]


def _cancel(jobs: list) -> int:
    """Cancel `jobs` (best effort); the number whose cancel call went through."""
    cancelled = 0
    for job in jobs:
        try:
            job.cancel()
            cancelled += 1
        except Exception:  # noqa: BLE001 - finished or uncancellable jobs
            pass
    return cancelled


def run_tasks(tasks: list[Task], *, backend: str, stage: str, layer: str,
              callback: Callable[[str, dict], None] | None = None, progress: bool = True,
              timeout: float | None = None) -> list:
    """Submit every task's job, then collect the results in order.

    Args:
        timeout: seconds to wait for each job's result (None: no limit).
    Returns:
        [task.collect(result) for each task], in task order.
    Raises:
        QiskitJobError: a job failed to submit or run, returned non-finite values or timed out
            (the callback hears "failed" first; the jobs not yet collected are cancelled).
    """
    from tqdm import tqdm  # a text bar: silent for `delay` seconds, where a notebook widget is not

    jobs: list = []
    out: list = []
    job = task = None

    def info(job, task, result=None) -> dict:
        return {"job_id": _job_id(job), "backend": backend, "stage": stage,
                "circuits": None if task is None else task.circuits,
                "status": _status(job), "usage": None if result is None else _usage(job, result)}

    try:
        for task in tasks:
            job = None
            job = task.submit()
            jobs.append(job)
            _notify(callback, "submitted", info(job, task))
        # the bar counts executed parameter sets and appears once collecting takes over 2 s
        with tqdm(total=sum(t.circuits for t in tasks), desc=f"{stage} circuits", unit="circuit", leave=False,
                  delay=2.0, disable=not progress) as bar:
            for job, task in zip(jobs, tasks):
                result = _result(job, timeout)
                values, rates = task.collect(result)
                if not np.isfinite(values).all():
                    raise ValueError(f"the job returned {int(np.size(values) - np.isfinite(values).sum())} "
                                     "non-finite values (NaN or +-inf)")
                out.append((values, rates))
                bar.update(task.circuits)
                _notify(callback, "done", info(job, task, result))
        return out
    except Exception as err:
        cancelled = _cancel([j for j in jobs[len(out) :] if j is not job])  # the failed job's siblings
        if isinstance(err, TimeoutError):
            _cancel([job])
        _notify(callback, "failed", {**info(job, task), "error": f"{type(err).__name__}: {err}"})
        raise QiskitJobError(
            f"Qiskit {stage} job {_job_id(job)} (status {_status(job)}) on backend {backend!r} failed for layer "
            f"{layer}: {type(err).__name__}: {err}. {cancelled} other job(s) of this evaluation cancelled. "
            "Parameters are unchanged; zero the gradients and retry, or switch back with layer.set_evaluator('auto')"
        ) from err
