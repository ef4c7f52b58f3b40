"""Runs training jobs on the published qkan package (0.2.3), for benchmarks/reproduce.py.

Started by reproduce.py as ``<reference python> -I _reference_qkan.py JOBS.json OUT.json`` in a
separate virtualenv (never imports this checkout). JOBS.json: {"jobs": [job, ...]}, each job

    {"data": "path.pt" (a dataset dict saved by reproduce.py), "width": [..], "reps": 3,
     "seed": 0, "options": {QKAN keyword arguments}, "stages": [["adam"|"lbfgs", lr, steps], ...],
     "extend": [null or the reps to extend to before each stage]}

OUT.json: {"results": [{"test_mse": [after each stage], "seconds": ...}, ...]}, or on failure
{"error": "..."}. Uses only the published API: QKAN(...), QKAN.train_, QKAN.refine and plain
torch.optim (LBFGS with history 100, as its README and notebooks).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time


def _optimizer(torch, model, name: str, lr: float):
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    return torch.optim.LBFGS(model.parameters(), lr=lr, history_size=100)


def run_job(torch, QKAN, job: dict) -> dict:
    data = torch.load(job["data"], weights_only=True)
    data = {k: v.float() for k, v in data.items()}
    model = QKAN(job["width"], reps=job["reps"], seed=job["seed"], device="cpu", **job["options"])
    mses, start = [], time.perf_counter()
    for (name, lr, steps), new_reps in zip(job["stages"], job["extend"]):
        if new_reps is not None:
            model = model.refine(new_reps)
        torch.manual_seed(job["seed"])
        model.train_(data, optimizer=_optimizer(torch, model, name, lr), steps=steps, verbose=False)
        with torch.no_grad():
            mses.append(float(((model(data["test_input"]) - data["test_label"]) ** 2).mean()))
    return {"test_mse": mses, "seconds": time.perf_counter() - start}


def main(jobs_path: str, out_path: str) -> None:
    try:
        import torch
        from qkan import QKAN

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        jobs = json.load(open(jobs_path))["jobs"]
        result = {"results": [run_job(torch, QKAN, job) for job in jobs]}
    except Exception as err:  # reported to reproduce.py, which skips the column
        result = {"error": f"{type(err).__name__}: {err}"}
    write_result(out_path, result)


def write_result(out_path: str, result: dict) -> None:
    """result as JSON at out_path, atomically (a temp file in the same folder, then os.replace)."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(out_path)), suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(result, fh)
    os.replace(tmp, out_path)


if __name__ == "__main__":
    main(*sys.argv[1:3])
