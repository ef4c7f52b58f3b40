"""The ``qkan`` command (also ``python -m qkan``): fit, search, bench.

    qkan fit                      train the demo QKAN [2, 5, 1] on exp(sin(pi x) + y^2) with an
                                  extension stage; print a metrics table; save a checkpoint and a plot
    qkan fit --data I.12.11       a Feynman equation (inputs mapped to [-1, 1])
    qkan fit --data table.csv     a CSV file (label: last column, or --target)
    qkan fit --resume run/model.pt   continue training a saved model (e.g. one saved by Ctrl-C)
    qkan search ...               quantum architecture search (qkan.kanqas)
    qkan bench [names] [--quick]  run the scripts in the repository's benchmarks/ folder
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from qkan._shell import Terminated, fail, signals_deferred, sigterm_as_interrupt

__all__ = ["main", "build_parser"]

#: the demo recipe: stage 1 at DEMO_REPS, then extension to DEMO_EXTEND_REPS
DEMO_REPS, DEMO_STEPS, DEMO_EXTEND_REPS, DEMO_EXTEND_STEPS = 2, 20, 5, 20
#: the most torch CPU threads `--threads` takes (more only oversubscribe the cores, or fail to start)
MAX_THREADS = 1024
#: the files `qkan fit` writes into its output folder
FIT_OUTPUTS = ("model.pt", "metrics.json", "fit.png")


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line (``prog: error: message``) with exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _width(text: str) -> list[int]:
    try:
        width = [int(w) for w in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated ints like 2,5,1; got {text!r}") from None
    if len(width) < 2 or min(width) < 1:
        raise argparse.ArgumentTypeError(f"must list at least two sizes >= 1 like 2,5,1; got {text!r}")
    return width


def _int_at_least(low: int):
    """argparse type: an int >= `low`; every bad value gets the same message (``must be an int >= low``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"must be an int >= {low}; got {text!r}")
        return value

    return parse


_nonneg_int, _pos_int = _int_at_least(0), _int_at_least(1)


def _thread_count(text: str) -> int:
    value = _nonneg_int(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"must be an int in [0, {MAX_THREADS}]; got {text!r}")
    return value


def _pos_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0; got {text!r}")
    return value


def _add_fit_parser(sub) -> None:
    p = sub.add_parser("fit", help="train a QKAN and save a checkpoint and a plot", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="demo", help="'demo', a Feynman equation name (e.g. I.12.11) or a CSV path")
    p.add_argument("--list-data", action="store_true", help="list the built-in datasets (demo and Feynman equations) and exit")
    p.add_argument("--target", default="-1", help="CSV label column: index or header name (default: last)")
    p.add_argument("--width", type=_width, default=None, help="layer widths, e.g. 2,5,1 (default: inputs,5,outputs)")
    p.add_argument("--reps", type=_pos_int, default=DEMO_REPS, help=f"DARUAN repetitions of stage 1 (default {DEMO_REPS})")
    p.add_argument("--steps", type=_pos_int, default=DEMO_STEPS, help=f"optimizer steps of stage 1 (default {DEMO_STEPS})")
    p.add_argument("--extend-reps", type=_nonneg_int, default=None,
                   help=f"extend to this many reps for stage 2; 0 skips it (default {DEMO_EXTEND_REPS}, "
                        "or 0 for an ansatz that cannot be extended, e.g. px)")
    p.add_argument("--extend-steps", type=_pos_int, default=DEMO_EXTEND_STEPS, help=f"steps of stage 2 (default {DEMO_EXTEND_STEPS})")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs", help="optimizer of every stage")
    p.add_argument("--lr", type=_pos_float, default=None, help="learning rate (default: 0.5 for lbfgs, 0.01 for adam: see QKAN.fit)")
    p.add_argument("--ansatz", default="pz", help="pz | rpz | px | real | mix")
    p.add_argument("--encoding", default="fixed", help="fixed | edge | input")
    p.add_argument("--evaluator", default="auto", help="auto | fourier | su2 | pennylane | qiskit")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="parameter dtype")
    p.add_argument("--train-num", type=_pos_int, default=1000, help="training samples of generated data")
    p.add_argument("--test-num", type=_pos_int, default=1000, help="test samples of generated data")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="seed of the data and the initialisation")
    p.add_argument("--resume", default=None, metavar="MODEL_PT",
                   help="start from a saved model (its width, reps and ansatz; stage 1 trains it at its reps, "
                        "stage 2 runs when --extend-reps is greater)")
    p.add_argument("--out", default=None, help="output folder (default ./qkan-runs/<name>)")
    p.add_argument("--name", default=None, help="run name (default: data name and a timestamp)")
    p.add_argument("--threads", type=_thread_count, default=1,
                   help="torch CPU threads (default 1: small models run fastest on one; 0: torch's default)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=_cmd_fit)


def _add_bench_parser(sub) -> None:
    folder = _benchmarks_dir()
    names = ", ".join(_benchmark_names(folder)) if folder.is_dir() else f"none (no benchmarks/ folder at {folder})"
    p = sub.add_parser("bench", help="run the benchmarks/ scripts and print their tables",
                       description=f"Run the scripts in the repository's benchmarks/ folder.\n\nbenchmarks: {names}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help="benchmark names (file stems); default: all")
    p.add_argument("--quick", action="store_true", help="small runs (passes --quick to every script)")
    p.add_argument("--threads", type=_pos_int, default=None, help="torch CPU threads of every script (passes --threads; default: theirs, 1)")
    p.set_defaults(func=_cmd_bench)


def _add_search_parser(sub, argv: list[str]) -> None:
    """Register `search`; KANQAS (and gymnasium) are imported only when it is the command."""
    if argv[:1] == ["search"]:
        try:
            from qkan.kanqas.cli import add_parser
        except ImportError as err:
            # `err` is unbound after the except block, so the message is built now
            message = f"qkan search: error: KANQAS is not available ({err}); try: pip install \"qkan-daruan[kanqas]\""
            p = sub.add_parser("search", help="quantum architecture search (KANQAS)", add_help=False)
            p.set_defaults(func=lambda args: fail(message), any_arguments=True)  # the missing extra, whatever the flags
            return
        add_parser(sub)
    else:
        p = sub.add_parser("search", help="quantum architecture search (KANQAS); see `qkan search -h`", add_help=False)
        p.set_defaults(func=None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The `qkan` argument parser (argv decides whether KANQAS is imported)."""
    from qkan import DISTRIBUTION, __version__

    parser = _Parser(prog="qkan", description="Quantum-classical Kolmogorov-Arnold networks.")
    parser.add_argument("--version", action="version", version=f"{DISTRIBUTION} {__version__} (import name qkan)")
    sub = parser.add_subparsers(dest="command", metavar="{fit,search,bench}", parser_class=_Parser)
    _add_fit_parser(sub)
    _add_search_parser(sub, list(argv or []))
    _add_bench_parser(sub)
    return parser


def entry() -> None:
    """The `qkan` command and `python -m qkan`: run main() and exit with its code.

    After an interrupt (130, 143) the process exits at once, with stdout and stderr flushed (the
    files were written before main returned): a Ctrl-C that fit had handled still ended the
    process by SIGINT during interpreter shutdown in 1-2 of 6 runs here (exit status -2 instead
    of 130; CPython marks an interrupt as unhandled when it passed through a nested interpreter
    call inside an extension, even if Python code caught it later).
    """
    code = main()
    if code in (130, 143):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `qkan`; returns the exit code (2 for bad flags and files)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "any_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # stdout closed by the reader (`| head`) of a command that does not use _out
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes it
        return 141  # 128 + SIGPIPE, as a shell reports it


# ------------------------------------------------------------------------------------------- fit
def _load_data(args) -> tuple[dict, str]:
    import torch

    from qkan import data as qdata

    dtype = getattr(torch, args.dtype)  # values are checked finite in the dtype the model trains in
    common = dict(train_num=args.train_num, test_num=args.test_num, seed=args.seed, dtype=dtype)
    if args.data == "demo":
        return qdata.function_dataset(qdata.demo_function, n_var=2, **common), "demo"
    if args.data in qdata.FEYNMAN:
        return qdata.feynman(args.data, normalize=True, **common), args.data
    path = Path(args.data)
    if path.suffix.lower() == ".csv" or path.exists():
        target = int(args.target) if args.target.lstrip("-").isdigit() else args.target
        return qdata.load_csv(path, target=target, seed=args.seed, dtype=dtype), path.stem
    raise ValueError(f"`--data` must be 'demo', a Feynman equation (e.g. {next(iter(qdata.FEYNMAN))}) or a CSV file; got {args.data!r}")


def _setup_fit(args) -> tuple:
    """Data, model, stages and output folder from the flags; ValueError/OSError for bad ones.

    Everything that can fail on bad flags or files fails here, before any training: the data
    is read, the model is built and run once on every input, the output folder is checked
    writable.
    """
    import torch

    from qkan._io import check_file_target, check_writable
    from qkan.models import QKAN

    with _too_large("`--train-num`/`--test-num` too large"):
        data, data_name = _load_data(args)
    dtype = getattr(torch, args.dtype)
    n_in, n_out = data["train_input"].shape[1], data["train_label"].shape[1]
    if args.resume:
        model = QKAN.load(args.resume).to(dtype)
        width = model.width
        if width[0] != n_in or width[-1] != n_out:
            raise ValueError(f"`--resume` model has width {width}; this data needs {n_in} inputs and {n_out} outputs")
    else:
        width = args.width or [n_in, 5, n_out]
        if width[0] != n_in or width[-1] != n_out:
            raise ValueError(f"`--width` must start with {n_in} inputs and end with {n_out} outputs for this data; got {width}")
        with _too_large("`--width`/`--reps` too large"):
            model = QKAN(width, args.reps, ansatz=args.ansatz, encoding=args.encoding, seed=args.seed, dtype=dtype)
    layer = model.layers[0]
    extendable = layer.ansatz.extension_problem(layer.encoding != "fixed") is None
    extend_reps = args.extend_reps
    if extend_reps is None:  # the default: extend where the ansatz can be extended and it adds reps
        extend_reps = DEMO_EXTEND_REPS if extendable and DEMO_EXTEND_REPS > model.reps else 0
    if extend_reps and extend_reps <= model.reps:
        raise ValueError(f"`--extend-reps` must be 0 or greater than --reps ({model.reps}); got {extend_reps}")
    if args.evaluator != "auto":
        model.set_evaluator(args.evaluator)
    if extend_reps:
        try:
            with _too_large("`--extend-reps` too large"):
                model.extend(extend_reps)  # refuses unsupported ansatz/encoding before any training
        except ValueError as err:
            raise ValueError(f"{err} (from `--extend-reps` {extend_reps})") from None
    with torch.no_grad(), _too_large("the data or `--width` too large"):  # inputs outside a px model's domain, too large values: found now
        for key in ("train_input", "test_input"):
            model(data[key].to(dtype))
    stages = [("fit", model.reps, args.steps)] + ([("extend", extend_reps, args.extend_steps)] if extend_reps else [])
    name = args.name or f"{data_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out = check_writable(Path(args.out) if args.out else Path("qkan-runs") / name)
    final_reps = max(model.reps, extend_reps)  # the saved model's size grows with its reps
    model_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values()) * final_reps // model.reps
    for file in FIT_OUTPUTS:  # a folder in the way or a full disk: found now, not after training
        check_file_target(out / file, "--out", reserve=2 * model_bytes + (1 << 20))
    return data, data_name, model, stages, out


@contextmanager
def _too_large(subject: str) -> Iterator[None]:
    """Running out of memory inside is a one-line ValueError starting with `subject` (naming the flags)."""
    try:
        yield
    except (RuntimeError, MemoryError) as err:
        if not isinstance(err, MemoryError) and "allocate" not in str(err):
            raise
        asked = re.search(r"allocate (\d+) bytes", str(err))
        raise ValueError(f"{subject}: not enough memory" + (f" ({int(asked[1]) / 2**30:.3g} GiB asked for)" if asked else "")) from None


def _list_data() -> int:
    """Print the built-in datasets of `qkan fit --data`."""
    from qkan.data import FEYNMAN

    print("demo        f(x, y) = exp(sin(pi x) + y^2) on [-1, 1]^2 (the default)")
    print(f"\nFeynman equations ({len(FEYNMAN)}; inputs mapped to [-1, 1]):")
    for name, (formula, variables, _, _) in FEYNMAN.items():
        shown = f"'{name}'" if " " in name else name  # as the shell takes it
        print(f"{shown:<11} {formula}   [{', '.join(variables)}]")
    print("\nor a CSV file: --data table.csv [--target COLUMN] (label: the last column by default)")
    return 0


_HEADER = f"{'stage':<8}{'reps':>5}{'steps':>7}  {'optimizer':<10}{'train RMSE':>12}{'test RMSE':>12}{'time [s]':>10}"


def _print_row(row: dict) -> None:
    note = "" if row["complete"] else "  (stopped)"
    _out(f"{row['stage']:<8}{row['reps']:>5}{row['steps']:>7}  {row['optimizer']:<10}{row['train_rmse']:>12.3e}"
         f"{row['test_rmse']:>12.3e}{row['seconds']:>10.1f}{note}")


def _out(text: str) -> None:
    """Print a line of the table now; a reader that closed stdout (`| head`, `| true`) stops the table, not the run."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # later lines, and Python's final flush, go nowhere


def _cmd_fit(args) -> int:
    import torch

    if args.list_data:
        return _list_data()
    try:
        data, data_name, model, stages, out = _setup_fit(args)
    except (ValueError, OSError, ImportError, RuntimeError, MemoryError) as err:
        return fail(f"qkan fit: error: {err}")
    except KeyboardInterrupt:
        print("qkan fit: interrupted before training; nothing written", file=sys.stderr)
        return 130

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    _out(f"qkan fit: data={data_name} width={model.width} ansatz={model.layers[0].ansatz.name} "
         f"encoding={model.layers[0].encoding} dtype={args.dtype}\n{_HEADER}")
    rows, curve, boundaries = [], [], []
    stop, code = None, 0
    start = time.perf_counter()
    with sigterm_as_interrupt():  # `kill PID` saves like Ctrl-C
        for stage, reps, steps in stages:
            last: dict = {}  # the stage's latest step and metrics: a stopped stage is reported from them
            t0 = time.perf_counter()
            try:
                if stage == "extend":
                    model = model.extend(reps)
                    if args.evaluator != "auto":
                        model.set_evaluator(args.evaluator)
                history = model.fit(data, steps=steps, optimizer=args.optimizer, lr=args.lr, progress=not args.no_progress,
                                    callbacks=[lambda step, _, record: last.update(record, step=step)])
            except Terminated:
                stop, code = f"terminated (SIGTERM) during stage {stage!r}", 143
            except KeyboardInterrupt:
                stop, code = f"interrupted during stage {stage!r}", 130
            except (ValueError, FloatingPointError, RuntimeError) as err:
                stop, code = f"error during stage {stage!r}: {' '.join(str(err).split())}", 1
            if stop is None:
                last = {"step": steps, "train_rmse": history["train_rmse"][-1], "test_rmse": history["test_rmse"][-1]}
            if "train_rmse" in last:
                row = {"stage": stage, "reps": reps, "steps": last["step"], "optimizer": args.optimizer,
                       "train_rmse": last["train_rmse"], "test_rmse": last["test_rmse"],
                       "seconds": time.perf_counter() - t0, "complete": stop is None}
                rows.append(row)
                if stop is None or args.no_progress:  # after a stopped progress bar, the one-line message says it
                    _print_row(row)
            if stop is not None:
                break
            offset = len(curve)
            boundaries.append(offset)
            curve += [(offset + k, tr, te) for k, tr, te in zip(history["step"], history["train_rmse"], history["test_rmse"])]
    total = time.perf_counter() - start
    summary = {"data": data_name, "width": model.width, "reps": model.reps, "stages": rows, "seconds": total,
               "stopped": stop, "args": {k: v for k, v in vars(args).items() if k != "func"}}
    written = _write_fit_outputs(model, data, curve, boundaries, summary, out, plot=stop is None)
    if stop is None:
        _out(f"total {total:.1f} s; wrote {', '.join(written)}")
        return 0
    if written[0].endswith("model.pt"):
        saved = f"saved the model trained so far to {written[0]} (continue with --resume)"
    else:
        saved = f"the parameters are not finite, no model saved; wrote {written[0]}"
    lead = "" if args.no_progress else "\n"  # past an unfinished progress bar
    print(f"{lead}qkan fit: {stop}; {saved}", file=sys.stderr)
    return code


def _write_fit_outputs(model, data: dict, curve: list, boundaries: list[int], summary: dict, out: Path, plot: bool) -> list[str]:
    """Write model.pt (when its parameters are finite), metrics.json and fit.png atomically; returns the paths.

    Ctrl-C and SIGTERM are ignored while writing, so the files are complete or absent.
    """
    import torch

    from qkan._io import atomic_write_text

    with signals_deferred():
        written = []
        if all(bool(torch.isfinite(p).all()) for p in model.parameters()):
            model.save(out / "model.pt")
            written.append(str(out / "model.pt"))
        atomic_write_text(json.dumps(summary, indent=2), out / "metrics.json")
        written.append(str(out / "metrics.json"))
        if plot:
            _plot_fit(model, data, curve, boundaries, out / "fit.png")
            written.append(str(out / "fit.png"))
        return written


def _plot_fit(model, data: dict, curve: list, boundaries: list[int], path: Path) -> None:
    """Predicted vs true labels on the test set, and the RMSE curve over all stages."""
    import matplotlib

    from qkan._io import atomic_path

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    with torch.no_grad():
        pred = model(data["test_input"].to(model.layers[0].theta.dtype)).double().flatten().numpy()
    true = data["test_label"].double().flatten().numpy()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 4))
    ax0.scatter(true, pred, s=4)
    lo, hi = float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))
    ax0.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax0.set(xlabel="true", ylabel="QKAN", title="test set")
    steps = [c[0] for c in curve]
    ax1.semilogy(steps, [c[1] for c in curve], label="train")
    ax1.semilogy(steps, [c[2] for c in curve], label="test")
    for boundary in boundaries[1:]:
        ax1.axvline(boundary + 0.5, color="gray", ls=":", lw=1)
    ax1.set(xlabel="step (all stages; dotted: extension)", ylabel="RMSE", title="training")
    ax1.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


# ----------------------------------------------------------------------------------------- bench
def _benchmarks_dir() -> Path:
    import qkan

    return Path(qkan.__file__).resolve().parent.parent / "benchmarks"


def _benchmark_names(folder: Path) -> list[str]:
    """The benchmark scripts in `folder` (file stems; modules starting with _ are helpers)."""
    return sorted(p.stem for p in folder.glob("*.py") if not p.name.startswith("_"))


def _cmd_bench(args) -> int:
    folder = _benchmarks_dir()
    if not folder.is_dir():
        return fail(f"qkan bench: error: no benchmarks/ folder at {folder}; `qkan bench` runs from a source checkout of qkan")
    available = _benchmark_names(folder)
    unknown = [n for n in args.names if n not in available]
    if unknown:
        return fail(f"qkan bench: error: unknown benchmark(s) {unknown}; available: {available}")
    failed = []
    for name in args.names or available:
        cmd = [sys.executable, str(folder / f"{name}.py")] + (["--quick"] if args.quick else [])
        cmd += ["--threads", str(args.threads)] if args.threads else []
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        try:
            code = subprocess.run(cmd, cwd=folder.parent).returncode
        except KeyboardInterrupt:
            print(f"qkan bench: interrupted during {name!r}", file=sys.stderr)
            return 130
        if code != 0:
            failed.append(name)
    if failed:
        print(f"qkan bench: failed: {failed}", file=sys.stderr)
        return 1
    return 0
