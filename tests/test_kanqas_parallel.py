"""Seeds in worker processes (qkan.kanqas.parallel) and `qkan search --seeds`: results equal to a
serial run, failures reported per seed, files written; OpenQASM 3 export against Qiskit's."""

import argparse
import json
import os
import time

import numpy as np
import pytest

from qkan.kanqas import Circuit
from qkan.kanqas.parallel import map_processes, parse_seeds, search_seeds


def _probe(item):
    """Worker function of the tests: 'die' ends the process, 'raise' raises, a number doubles."""
    if item == "die":
        os._exit(3)
    if item == "raise":
        raise ValueError("bad item")
    if item == "sleep":
        time.sleep(120)
    if isinstance(item, str) and item.startswith("pidfile:"):  # tell the test this worker's pid, then sleep
        with open(item[8:], "w") as f:
            f.write(str(os.getpid()))
        time.sleep(120)
    return 2 * item


@pytest.mark.parametrize("text, seeds", [("0-9", list(range(10))), ("0,2,5", [0, 2, 5]), ("3", [3]),
                                         ("0-2,7,1", [0, 1, 2, 7])])
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["a", "3-1", "-1", "", "1-"])
def test_parse_seeds_refuses_bad_lists(text):
    with pytest.raises(ValueError, match="--seeds must be seeds >= 0 like 0-9"):
        parse_seeds(text)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failing_or_dying_item_is_reported_and_the_others_finish(jobs):
    items = [1, "raise", 2, "die", 3] if jobs > 1 else [1, "raise", 2, 3]  # jobs=1 runs in this process
    done = {}
    map_processes(_probe, items, jobs=jobs, on_done=lambda i, value, error: done.__setitem__(i, (value, error)))
    assert sorted(done) == list(range(len(items)))
    values = {items[i]: v for i, v in done.items()}
    assert values[1] == (2, None) and values[2] == (4, None) and values[3] == (6, None)
    assert values["raise"] == (None, "ValueError: bad item")
    if jobs > 1:
        assert values["die"] == (None, "WorkerDied: the worker process exited with code 3")


def test_an_interrupt_terminates_the_running_workers():
    interrupted = []

    def interrupt(i, value, error):
        interrupted.append(time.monotonic())
        raise KeyboardInterrupt  # as Ctrl-C (or SIGTERM in `qkan search`) arrives while seeds run

    with pytest.raises(KeyboardInterrupt):
        map_processes(_probe, [1, "sleep"], jobs=2, on_done=interrupt)
    assert time.monotonic() - interrupted[0] < 60  # the sleeping worker was terminated, not waited for


def test_workers_stop_when_their_parent_is_killed_outright(tmp_path):
    import signal
    import subprocess
    import sys

    pidfile = tmp_path / "worker.pid"
    code = ("import sys; sys.path[:0] = sys.argv[1:3]; from test_kanqas_parallel import _probe; "
            "from qkan.kanqas.parallel import map_processes; "
            f"map_processes(_probe, ['pidfile:{pidfile}', 1], jobs=2, on_done=lambda *a: None)")
    here = os.path.dirname(__file__)
    parent = subprocess.Popen([sys.executable, "-c", code, here, os.path.dirname(here)])
    try:
        deadline = time.monotonic() + 300  # a loaded machine starts the worker server slowly
        while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        worker = int(pidfile.read_text())
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.kill(worker, signal.SIGKILL)
        pytest.fail("the worker outlived its killed parent by a minute")


def test_jobs_is_checked():
    with pytest.raises(ValueError, match="`jobs` must be an int >= 1"):
        map_processes(_probe, [1], jobs=0, on_done=lambda *a: None)
    with pytest.raises(ValueError, match="`seeds` must name at least one seed"):
        search_seeds("bell", [])
    with pytest.raises(ValueError, match="`q_network` must be one of"):
        search_seeds("bell", [0], q_network="cnn")


def test_seeds_in_workers_equal_the_serial_run_and_the_random_policy_runs():
    kw = dict(episodes=15, q_network="mlp", agent={"batch_size": 16}, curves=True)
    lines = []
    parallel = search_seeds("bell", [0, 1], jobs=2, on_result=lambda r: lines.append(r["seed"]), **kw)
    serial = search_seeds("bell", [0, 1], jobs=1, **kw)
    assert sorted(lines) == [0, 1]
    for a, b in zip(parallel, serial):
        assert a["ok"] and b["ok"] and a["seed"] == b["seed"]
        assert a["curves"] == b["curves"] and a["error"] is None and len(a["curves"]["success"]) == 15
        assert a["best"] == b["best"] and a["greedy"] == b["greedy"]
    assert parallel[0]["curves"] != parallel[1]["curves"]  # the seeds differ
    random = search_seeds("bell", [0], jobs=1, episodes=200, q_network="random")[0]
    assert random["greedy"] is None and random["params"] == 0
    assert 0.01 < random["success_rate"] < 0.2  # H + CNOT by chance: about 6% of episodes


def test_cli_seeds_prints_a_line_per_seed_and_writes_every_circuit(tmp_path, capsys):
    from qkan.kanqas.cli import add_parser

    parser = argparse.ArgumentParser(prog="qkan")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["search", "--seeds", "0-2", "--jobs", "2", "--episodes", "30", "--q-network", "mlp",
                              "--batch-size", "16", "--out", str(tmp_path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert all(f"seed {s}: success" in out for s in range(3)) and "[3/3]" in out and "3 seeds: success" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["seeds"] == [0, 1, 2] and summary["failed"] == {}
    assert summary["success_rate_mean"] == pytest.approx(np.mean([r["success_rate"] for r in summary["runs"]]))
    for stem in ("seed0", "seed1", "seed2", "best"):
        record = json.loads((tmp_path / f"{stem}.json").read_text())
        circuit = Circuit.from_dict(record["circuit"])
        assert (tmp_path / f"{stem}.qasm").read_text() == circuit.to_qasm()
        assert record["n_cnots"] == circuit.n_cnots
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["seed"] == summary["best_seed"] and best["error"] == min(r["best"]["error"] for r in summary["runs"])


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "x"], "--seeds must be seeds >= 0"),
    (["--seeds", "0-1", "--jobs", "0"], "--jobs must be >= 1"),
    (["--seeds", "0-1", "--resume", "a.pt"], "--checkpoint and --resume work with one --seed"),
    (["--jobs", "2"], "--jobs needs --seeds"),
])
def test_cli_seeds_arguments(argv, message, tmp_path, capsys):
    from qkan.kanqas.cli import add_parser

    parser = argparse.ArgumentParser(prog="qkan")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["search", "--out", str(tmp_path), *argv])
    assert args.func(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_single_seed_search_writes_qasm_and_json(tmp_path, capsys):
    from qkan.kanqas.cli import add_parser

    parser = argparse.ArgumentParser(prog="qkan")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["search", "--episodes", "20", "--q-network", "mlp", "--batch-size", "16",
                              "--no-progress", "--out", str(tmp_path / "run")])
    assert args.func(args) == 0
    record = json.loads((tmp_path / "run" / "best.json").read_text())
    assert record["episodes"] == 20 and record["task"] == "bell"
    assert (tmp_path / "run" / "best.qasm").read_text() == Circuit.from_dict(record["circuit"]).to_qasm()


@pytest.mark.parametrize("seed", range(4))
def test_qasm_export_equals_qiskits(seed):
    qasm3 = pytest.importorskip("qiskit.qasm3")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 5))
    circuit = Circuit(n, initial_bits=tuple(int(b) for b in rng.integers(0, 2, n)))
    for _ in range(12):
        kind = rng.integers(3)
        if kind == 0:
            c, t = rng.choice(n, 2, replace=False)
            circuit.append("CNOT", (int(c), int(t)))
        elif kind == 1:
            circuit.append(str(rng.choice(["X", "Y", "Z", "H", "T"])), (int(rng.integers(n)),))
        else:
            circuit.append(str(rng.choice(["RX", "RY", "RZ"])), (int(rng.integers(n)),), float(rng.normal() * 1e3 ** rng.random()))
    assert circuit.to_qasm() == qasm3.dumps(circuit.to_qiskit())
    assert Circuit.from_dict(circuit.to_dict()).to_qasm() == circuit.to_qasm()
