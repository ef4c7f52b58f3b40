"""Jobs: submit all of an evaluation's jobs at once, collect them in order, report each one.

Every job is submitted before any result is awaited (primitives and Aer run jobs in the
background; IBM queues them), so split jobs run concurrently. ``job_callback(event, info)`` is
called with event "submitted", "done" or "failed" and info {"job_id", "backend", "stage",
"circuits", "status", "usage"} (usage: the job's reported usage - quantum seconds on IBM,
the simulator's time elsewhere - or None). A failure raises QiskitJobError naming backend,
job and layer; nothing is written to the layer, so parameters stay as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["QiskitJobError", "Task", "run_tasks"]


class QiskitJobError(RuntimeError):
    """A Qiskit primitive job failed or was cancelled; the message names backend, job and layer."""


@dataclass
class Task:
    """One job: ``submit()`` returns the job, ``collect(result)`` turns its result into values."""

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


def run_tasks(tasks: list[Task], *, backend: str, stage: str, layer: str,
              callback: Callable[[str, dict], None] | None = None, progress: bool = True) -> list:
    """Submit every task's job, then collect the results in order.

    Returns:
        [task.collect(result) for each task], in task order.
    Raises:
        QiskitJobError: a job failed to submit or run (the callback hears "failed" first).
    """
    from tqdm import tqdm  # a text bar: silent for `delay` seconds, where a notebook widget is not

    jobs: list = []
    job = None

    def info(job, task, result=None) -> dict:
        return {"job_id": _job_id(job), "backend": backend, "stage": stage, "circuits": task.circuits,
                "status": _status(job), "usage": None if result is None else _usage(job, result)}

    try:
        for task in tasks:
            job = None
            job = task.submit()
            jobs.append(job)
            if callback is not None:
                callback("submitted", info(job, task))
        out = []
        bar = tqdm(list(zip(jobs, tasks)), desc=f"{stage} jobs", unit="job", leave=False, delay=2.0, disable=not progress)
        for job, task in bar:  # the bar appears once collecting takes over 2 s
            result = job.result()
            out.append(task.collect(result))
            if callback is not None:
                callback("done", info(job, task, result))
        return out
    except Exception as err:
        if callback is not None:
            callback("failed", {**info(job, task), "error": f"{type(err).__name__}: {err}"})
        raise QiskitJobError(
            f"Qiskit {stage} job {_job_id(job)} (status {_status(job)}) on backend {backend!r} failed for layer "
            f"{layer}: {type(err).__name__}: {err}. Parameters are unchanged; zero the gradients and retry, "
            "or switch back with layer.set_evaluator('auto')"
        ) from err
