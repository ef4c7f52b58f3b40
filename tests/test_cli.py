"""The `qkan` command: `python -m qkan fit` end to end, one-line errors with exit code 2."""

import json
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
        (["fit", "--ansatz", "px"], "qkan fit: error: extend() does not support ansatz 'px'"),
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


def test_search_without_kanqas_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "qkan.kanqas.cli", None)  # importing it now raises ImportError
    assert cli.main(["search"]) == 2
    err = capsys.readouterr().err
    assert "KANQAS is not available" in err and 'pip install "qkan[kanqas]"' in err
