"""The `qkan` command: `python -m qkan fit` end to end, one-line errors with exit code 2."""

import json
import shlex
import subprocess
import sys

import pytest
import torch

from qkan import QKAN, cli

TINY = ["--steps", "2", "--extend-steps", "2", "--train-num", "64", "--test-num", "32", "--no-progress"]


def _run(args, cwd):
    return subprocess.run([sys.executable, "-m", "qkan", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_fit_demo_end_to_end(tmp_path):
    proc = _run(["fit", "--reps", "1", "--extend-reps", "2", "--name", "demo-run", *TINY], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "train RMSE" in proc.stdout and "test RMSE" in proc.stdout
    table = [line.split() for line in proc.stdout.splitlines() if line.startswith(("fit ", "extend "))]
    assert [row[:3] for row in table] == [["fit", "1", "2"], ["extend", "2", "2"]]
    out = tmp_path / "qkan-runs" / "demo-run"
    assert (out / "fit.png").stat().st_size > 1000
    metrics = json.loads((out / "metrics.json").read_text())
    assert [s["reps"] for s in metrics["stages"]] == [1, 2]
    model = QKAN.load(out / "model.pt")
    assert model.reps == 2 and model.width == [2, 5, 1]
    # the checkpoint is the trained model: its test RMSE is the one in the table
    from qkan.data import demo_function, function_dataset

    data = function_dataset(demo_function, train_num=64, test_num=32, seed=0)
    with torch.no_grad():
        rmse = torch.sqrt(((model(data["test_input"]) - data["test_label"]) ** 2).mean()).item()
    assert rmse == pytest.approx(metrics["stages"][-1]["test_rmse"], rel=1e-5)


def test_fit_csv_and_feynman_in_process(tmp_path, capsys):
    csv = tmp_path / "d.csv"
    csv.write_text("u,v,y\n" + "\n".join(f"{i / 20 - 1},{(i * 7 % 40) / 20 - 1},{i / 40}" for i in range(40)))
    code = cli.main(["fit", "--data", str(csv), "--target", "y", "--width", "2,1", "--extend-reps", "0",
                     "--out", str(tmp_path / "csv"), *TINY])
    assert code == 0
    assert QKAN.load(tmp_path / "csv" / "model.pt").width == [2, 1]
    code = cli.main(["fit", "--data", "I.12.1", "--reps", "1", "--extend-reps", "2", "--out", str(tmp_path / "f"), *TINY])
    assert code == 0
    assert "data=I.12.1" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "--bogus"], "qkan: error: unrecognized arguments: --bogus"),
        (["fit", "--width", "2,x"], "qkan fit: error: argument --width: must be comma-separated ints"),
        (["fit", "--reps", "0"], "qkan fit: error: argument --reps: must be an int >= 1; got '0'"),
        (["fit", "--optimizer", "sgd"], "qkan fit: error: argument --optimizer: invalid choice: 'sgd'"),
        (["fit", "--data", "missing.csv"], "qkan fit: error: cannot read CSV file 'missing.csv'"),
        (["fit", "--data", "nothing"], "qkan fit: error: `--data` must be 'demo', a Feynman equation"),
        (["fit", "--width", "3,1"], "qkan fit: error: `--width` must start with 2 inputs and end with 1 outputs"),
        (["fit", "--reps", "3", "--extend-reps", "2"], "qkan fit: error: `--extend-reps` must be 0 or greater than --reps (3)"),
        (["fit", "--ansatz", "px", "--extend-reps", "5"], "qkan fit: error: extend() does not support ansatz 'px'"),
        (["fit", "--lr", "nan"], "qkan fit: error: argument --lr: must be a finite number > 0; got 'nan'"),
        (["fit", "--lr", "-1"], "qkan fit: error: argument --lr: must be a finite number > 0; got '-1'"),
        (["fit", "--lr", "inf"], "qkan fit: error: argument --lr: must be a finite number > 0; got 'inf'"),
        (["fit", "--seed", "-1"], "qkan fit: error: argument --seed: must be an int >= 0; got '-1'"),
        (["fit", "--steps", "-5"], "qkan fit: error: argument --steps: must be an int >= 1; got '-5'"),
        (["fit", "--steps", "0"], "qkan fit: error: argument --steps: must be an int >= 1; got '0'"),
        (["fit", "--steps", "two"], "qkan fit: error: argument --steps: must be an int >= 1; got 'two'"),
        (["bench", "--threads", "0"], "qkan bench: error: argument --threads: must be an int >= 1; got '0'"),
        (["fit", "--resume", "missing.pt"], "qkan fit: error: cannot load a QKAN from 'missing.pt': no such file"),
        (["fit", "--evaluator", "nope"], "qkan fit: error: `evaluator` must be 'auto' or one of"),
        (["fit", "--ansatz", "zz"], "qkan fit: error: `ansatz` must be one of"),
        (["bench", "no_such_benchmark"], "qkan bench: error: unknown benchmark(s) ['no_such_benchmark']"),
    ],
)
def test_bad_flags_one_line_error_exit_2(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(cli.main(args))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(message), err
    assert err.count("\n") == 1  # one line
    assert not (tmp_path / "qkan-runs").exists()


def test_bad_csv_file_via_subprocess(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,oops\n")
    proc = _run(["fit", "--data", str(bad), "--no-progress"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"qkan fit: error: CSV file {str(bad)!r}, line 3: non-numeric value in ['3', 'oops']"


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "{fit,search,bench}" in capsys.readouterr().out


def test_bench_without_folder(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, "_benchmarks_dir", lambda: tmp_path / "none")
    assert cli.main(["bench"]) == 2
    assert "no benchmarks/ folder at" in capsys.readouterr().err


def test_bench_help_lists_the_benchmarks(monkeypatch, tmp_path, capsys):
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    for name in ("alpha.py", "beta.py", "_helper.py", "notes.txt"):
        (folder / name).write_text("")
    monkeypatch.setattr(cli, "_benchmarks_dir", lambda: folder)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "-h"])
    assert exit_info.value.code == 0
    assert "benchmarks: alpha, beta\n" in capsys.readouterr().out


def test_bench_runs_scripts_as_subprocesses(monkeypatch, tmp_path, capfd):
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "hello.py").write_text("import sys\nprint('table', sys.argv[1:])\n")
    (folder / "broken.py").write_text("raise SystemExit(3)\n")
    monkeypatch.setattr(cli, "_benchmarks_dir", lambda: folder)
    assert cli.main(["bench", "hello", "--quick"]) == 0
    assert "table ['--quick']" in capfd.readouterr().out
    assert cli.main(["bench"]) == 1
    assert "failed: ['broken']" in capfd.readouterr().err


def test_search_is_registered_lazily():
    parser = cli.build_parser(["fit"])
    assert parser.parse_args(["fit"]).command == "fit"
    proc = subprocess.run([sys.executable, "-c", "import sys, qkan.cli as c; c.build_parser(['fit']); "
                           "print('gymnasium' in sys.modules, 'qkan.kanqas.cli' in sys.modules)"],
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["False", "False"], proc.stderr


@pytest.mark.parametrize("args", [["search"], ["search", "--episodes", "3"], ["search", "-h"], ["search", "--bogus", "x", "y"]])
def test_search_without_kanqas_says_how_to_install_whatever_the_arguments(monkeypatch, capsys, args):
    monkeypatch.setitem(sys.modules, "qkan.kanqas.cli", None)  # importing it now raises ImportError
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("qkan search: error: KANQAS is not available") and 'pip install "qkan-daruan[kanqas]"' in err
    assert err.count("\n") == 1


# --------------------------------------------------------------------------- robustness
def test_fit_px_runs_without_extension_stage(tmp_path, capsys):
    code = cli.main(["fit", "--ansatz", "px", "--out", str(tmp_path / "px"), *TINY])
    assert code == 0
    out = capsys.readouterr().out
    assert "ansatz=px" in out and "extend " not in out
    model = QKAN.load(tmp_path / "px" / "model.pt")
    assert model.width == [2, 5, 1] and model.layers[1].ansatz.name == "px"


def test_fit_px_csv_outside_the_domain_fails_before_training(tmp_path, capsys):
    csv = tmp_path / "wide.csv"
    csv.write_text("u,y\n" + "\n".join(f"{i / 5},{i}" for i in range(20)))
    assert cli.main(["fit", "--data", str(csv), "--ansatz", "px", "--out", str(tmp_path / "o"), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qkan fit: error: `x` gives encoding angles phi = w*x + b outside [-1, 1]") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_fit_csv_cell_overflowing_float32_is_a_one_line_error(tmp_path, capsys):
    csv = tmp_path / "big.csv"
    csv.write_text("a,b\n1,2\n1e39,3\n5,6\n")
    assert cli.main(["fit", "--data", str(csv), "--out", str(tmp_path / "o"), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qkan fit: error: CSV file") and "line 3, column 'a' is '1e39'" in err and err.count("\n") == 1
    assert cli.main(["fit", "--data", str(csv), "--dtype", "float64", "--width", "1,1", "--extend-reps", "0",
                     "--out", str(tmp_path / "o64"), *TINY]) == 2  # finite in float64, but far beyond the input range
    assert "`x` must satisfy |x| <=" in capsys.readouterr().err


def test_unwritable_output_found_before_training(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    calls = []
    monkeypatch.setattr(QKAN, "fit", lambda *a, **k: calls.append(1))
    assert cli.main(["fit", "--out", str(blocker / "sub"), *TINY]) == 2
    assert capsys.readouterr().err.startswith(f"qkan fit: error: cannot write to {str(blocker / 'sub')!r}")
    assert calls == []


def _interrupt_after(monkeypatch, n_calls: int, steps: int = 2):
    """QKAN.fit trains `steps` steps for real, then raises KeyboardInterrupt on call number n_calls."""
    real_fit, calls = QKAN.fit, []

    def fit(self, data, **kw):
        calls.append(1)
        history = real_fit(self, data, **{**kw, "steps": steps})
        if len(calls) == n_calls:
            raise KeyboardInterrupt
        return history

    monkeypatch.setattr(QKAN, "fit", fit)


def test_ctrl_c_saves_a_resumable_checkpoint_and_exits_130(tmp_path, monkeypatch, capsys):
    _interrupt_after(monkeypatch, n_calls=2)  # during the extension stage
    out = tmp_path / "run"
    code = cli.main(["fit", "--reps", "1", "--extend-reps", "2", "--out", str(out), *TINY])
    assert code == 130
    err = capsys.readouterr().err
    assert err == f"qkan fit: interrupted during stage 'extend'; saved the model trained so far to {out / 'model.pt'} (continue with --resume)\n"
    model = QKAN.load(out / "model.pt")
    assert model.reps == 2  # the extended model, trained for a while
    metrics = json.loads((out / "metrics.json").read_text())
    assert [(s["stage"], s["complete"]) for s in metrics["stages"]] == [("fit", True), ("extend", False)]
    assert metrics["stopped"] == "interrupted during stage 'extend'"
    assert not (out / "fit.png").exists()
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.pt"]  # no temporary files left
    # resume: the saved parameters are the starting point
    monkeypatch.undo()
    starts = []
    real_fit = QKAN.fit
    monkeypatch.setattr(QKAN, "fit", lambda self, *a, **k: (starts.append({k: v.clone() for k, v in self.state_dict().items()}), real_fit(self, *a, **k))[1])
    code = cli.main(["fit", "--resume", str(out / "model.pt"), "--extend-reps", "3", "--out", str(tmp_path / "again"), *TINY])
    assert code == 0
    for key, value in model.state_dict().items():
        torch.testing.assert_close(starts[0][key], value, rtol=0, atol=0)
    assert QKAN.load(tmp_path / "again" / "model.pt").reps == 3


def test_ctrl_c_in_a_real_process(tmp_path):
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "qkan", "fit", "--steps", "100000", "--train-num", "64", "--test-num", "32",
                             "--out", "run"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "run").exists() and time.monotonic() < deadline:  # made right before training starts
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("qkan fit: interrupted during stage 'fit'; saved the model trained so far")
    assert "Traceback" not in err
    assert QKAN.load(tmp_path / "run" / "model.pt").width == [2, 5, 1]


def test_training_failure_is_one_line_and_keeps_finite_parameters(tmp_path, monkeypatch, capsys):
    def diverge(self, data, **kw):
        raise FloatingPointError("the training loss became nan at step 3; try a smaller `lr`")

    monkeypatch.setattr(QKAN, "fit", diverge)
    code = cli.main(["fit", "--out", str(tmp_path / "d"), *TINY])
    assert code == 1
    assert capsys.readouterr().err == (f"qkan fit: error during stage 'fit': the training loss became nan at step 3; try a "
                                       f"smaller `lr`; saved the model trained so far to {tmp_path / 'd' / 'model.pt'} "
                                       "(continue with --resume)\n")


def test_outputs_are_written_atomically(tmp_path, monkeypatch):
    from qkan import _io

    out = tmp_path / "atomic"
    assert cli.main(["fit", "--extend-reps", "0", "--out", str(out), *TINY]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(text, path):  # the disk fills up while metrics.json is written
        with _io.atomic_path(path) as tmp:
            tmp.write_text(text[:10])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(_io, "atomic_write_text", broken)
    with pytest.raises(OSError):
        cli.main(["fit", "--extend-reps", "0", "--out", str(out), *TINY])
    assert (out / "metrics.json").read_bytes() == before["metrics.json"]  # the previous file is intact
    assert sorted(p.name for p in out.iterdir()) == sorted(before)  # no temporary file left


def test_resume_errors_are_one_line(tmp_path, capsys):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    assert cli.main(["fit", "--resume", str(corrupt), "--out", str(tmp_path / "o"), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"qkan fit: error: cannot load a QKAN from {str(corrupt)!r}: not a readable checkpoint") and err.count("\n") == 1
    QKAN([3, 1]).save(tmp_path / "three.pt")
    assert cli.main(["fit", "--resume", str(tmp_path / "three.pt"), "--out", str(tmp_path / "o"), *TINY]) == 2
    assert capsys.readouterr().err == "qkan fit: error: `--resume` model has width [3, 1]; this data needs 2 inputs and 1 outputs\n"


def test_bench_ctrl_c_is_one_line_exit_130(monkeypatch, tmp_path, capsys):
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "slow.py").write_text("")
    monkeypatch.setattr(cli, "_benchmarks_dir", lambda: folder)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.subprocess, "run", interrupted)
    assert cli.main(["bench"]) == 130
    assert capsys.readouterr().err == "qkan bench: interrupted during 'slow'\n"


# ------------------------------------------------------------------- a findable package
def test_version_names_the_distribution(capsys):
    import qkan

    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"qkan-daruan {qkan.__version__} (import name qkan)\n"
    assert qkan.__version__ == "0.2.0" and qkan.DISTRIBUTION == "qkan-daruan"


def test_list_data_names_every_builtin_dataset(capsys):
    from qkan.data import FEYNMAN

    assert cli.main(["fit", "--list-data"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("demo ") and f"Feynman equations ({len(FEYNMAN)};" in out and "--data table.csv" in out
    section = out.split("\n\n")[1].splitlines()[1:]
    assert [shlex.split(line)[0] for line in section] == list(FEYNMAN)  # names as the shell passes them to --data
    assert "I.12.11     q (Ef+B v sin(theta))   [q, Ef, B, v, theta]\n" in out


def test_bench_threads_is_passed_to_every_script(monkeypatch, tmp_path, capfd):
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "hello.py").write_text("import sys\nprint('table', sys.argv[1:])\n")
    monkeypatch.setattr(cli, "_benchmarks_dir", lambda: folder)
    assert cli.main(["bench", "--quick", "--threads", "2"]) == 0
    assert "table ['--quick', '--threads', '2']" in capfd.readouterr().out


def test_no_progress_prints_each_stage_when_it_ends(tmp_path, monkeypatch, capsys):
    real_fit, seen = QKAN.fit, []

    def fit(self, data, **kw):
        seen.append(capsys.readouterr().out)  # what was printed before this stage started
        return real_fit(self, data, **kw)

    monkeypatch.setattr(QKAN, "fit", fit)
    assert cli.main(["fit", "--reps", "1", "--extend-reps", "2", "--out", str(tmp_path / "o"), *TINY]) == 0
    assert seen[0].startswith("qkan fit: data=demo") and seen[0].rstrip().endswith("time [s]")
    assert [line.split()[:3] for line in seen[1].splitlines()] == [["fit", "1", "2"]]
    assert capsys.readouterr().out.splitlines()[0].split()[:3] == ["extend", "2", "2"]


def test_interrupted_first_stage_is_recorded_not_empty(tmp_path, monkeypatch, capsys):
    _interrupt_after(monkeypatch, n_calls=1, steps=3)
    out = tmp_path / "run"
    assert cli.main(["fit", "--out", str(out), *TINY]) == 130
    stages = json.loads((out / "metrics.json").read_text())["stages"]
    assert [(s["stage"], s["steps"], s["complete"]) for s in stages] == [("fit", 3, False)]
    # the recorded RMSE is the saved model's
    from qkan.data import demo_function, function_dataset

    data = function_dataset(demo_function, train_num=64, test_num=32, seed=0)
    with torch.no_grad():
        rmse = torch.sqrt(((QKAN.load(out / "model.pt")(data["test_input"]) - data["test_label"]) ** 2).mean()).item()
    assert rmse == pytest.approx(stages[0]["test_rmse"], rel=1e-5)
    assert "fit         2      3  lbfgs" in capsys.readouterr().out  # --no-progress: the stopped stage's line
