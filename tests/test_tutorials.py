"""Tutorial notebooks: each runs top to bottom in a fresh kernel and reproduces its stored outputs.

Execution here is in memory (the files are not touched); ``python tutorials/execute.py`` is what
re-runs them in place and stores the outputs that a repository page shows, and
``python tutorials/execute.py --check`` is this test's comparison from the command line.
"""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

TUTORIALS_DIR = Path(__file__).resolve().parent.parent / "tutorials"
_spec = importlib.util.spec_from_file_location("tutorials_execute", TUTORIALS_DIR / "execute.py")
execute = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(execute)
TUTORIALS = sorted(TUTORIALS_DIR.glob("*.ipynb"))
#: notebooks committed with their outputs and at least one figure (others join as they are executed)
STORED = ["01_quickstart.ipynb", "02_pennylane.ipynb", "03_qiskit_ibm.ipynb", "04_hqkan_transformer.ipynb",
          "05_kanqas.ipynb", "06_digits.ipynb", "08_pde.ipynb", "09_kanqas_seeds.ipynb"]


def _outputs(notebook) -> list[dict]:
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


def test_tutorials_exist():
    assert TUTORIALS, "no notebooks found in tutorials/"


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.name for p in TUTORIALS])
def test_tutorial_executes_and_matches_its_stored_outputs(path):
    notebook = execute.run(path, timeout=600)
    outputs = _outputs(notebook)
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors
    stderr = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    assert "TqdmWarning" not in stderr and "IProgress not found" not in stderr, (
        "a progress bar in a notebook: pass progress=False (or install qkan-daruan[notebook] for widgets)\n" + stderr[-2000:]
    )
    changes = execute.drift(nbformat.read(path, as_version=4), notebook)
    assert not changes, f"stale outputs: run python tutorials/execute.py {path.name}\n" + "\n".join(changes)


@pytest.mark.parametrize("name", STORED)
def test_committed_notebook_has_outputs_and_figures(name):
    notebook = nbformat.read(TUTORIALS_DIR / name, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code), "run python tutorials/execute.py " + name
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), "executed top to bottom once"
    outputs = _outputs(notebook)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2, "a tutorial draws what a reader would rather see"


def test_execute_script_stores_outputs_atomically(tmp_path):
    if importlib.util.find_spec("ipykernel") is None:
        pytest.skip('needs pip install "qkan-daruan[notebook]"')
    cell = nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nprint('hello')")
    good = tmp_path / "good.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), good)
    bad = tmp_path / "bad.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")]), bad)
    before = bad.read_text()
    proc = subprocess.run([sys.executable, str(TUTORIALS_DIR / "execute.py"), str(good), str(bad)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 1 and "FAILED bad.ipynb" in proc.stderr and "executed good.ipynb" in proc.stdout
    outputs = _outputs(nbformat.read(good, as_version=4))
    assert any(o.get("text") == "hello\n" for o in outputs) and any("image/png" in o.get("data", {}) for o in outputs)
    assert bad.read_text() == before  # a failing notebook is left as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ipynb", "good.ipynb"]  # no temp files left
    json.loads(good.read_text())


def _notebook(*outputs_per_cell):
    cells = []
    for k, outputs in enumerate(outputs_per_cell, start=1):
        cell = nbformat.v4.new_code_cell("pass", execution_count=k)
        cell.outputs = [nbformat.from_dict(o) for o in outputs]
        cells.append(cell)
    return nbformat.v4.new_notebook(cells=cells)


def _stdout(text):
    return {"output_type": "stream", "name": "stdout", "text": text}


def test_drift_tolerates_durations_rounding_noise_and_progress_bars_only():
    png = {"output_type": "display_data", "data": {"image/png": "AAAA", "text/plain": "<Figure>"}, "metadata": {}}
    line = "test RMSE {} in 1.2 s, 35.1it/s, 15x faster\nmax error 2.8e-14\n"
    stored = _notebook([_stdout(line.format("0.0423")), png], [_stdout("kept [5, 3]\n")])
    same = _notebook([_stdout("test RMSE 0.0424 in 7.9 s, 3.0it/s, 34x faster\nmax error 3.1e-15\n"),
                      {"output_type": "stream", "name": "stderr", "text": "100%|####| 20/20\r"}, dict(png, data={"image/png": "BBBB"})],
                     [_stdout("kept [5, 3]\n")])  # fmt: skip
    assert execute.drift(stored, same) == []
    for changed in [
        _notebook([_stdout(line.format("0.0451")), png], [_stdout("kept [5, 3]\n")]),  # 6.6% off
        _notebook([_stdout(line.format("0.0423")), png], [_stdout("kept [5, 2]\n")]),
        _notebook([_stdout(line.format("0.0423").replace("RMSE", "MSE")), png], [_stdout("kept [5, 3]\n")]),
        _notebook([_stdout(line.format("0.0423"))], [_stdout("kept [5, 3]\n")]),  # a figure fewer
        _notebook([_stdout(line.format("0.0423")), png]),  # a cell fewer
    ]:
        assert execute.drift(stored, changed), changed
    never_run = _notebook([], [])
    for cell in never_run.cells:
        cell.execution_count = None
    assert execute.drift(never_run, same) == []  # stored without outputs: nothing to compare with
    stored.cells[1].metadata["tags"] = ["no-check"]  # a tagged cell's outputs are not compared
    assert execute.drift(stored, _notebook(same.cells[0].outputs, [_stdout("tokens/s 20,145\n")])) == []


def test_check_flag_reports_drift_and_writes_nothing(tmp_path):
    if importlib.util.find_spec("ipykernel") is None:
        pytest.skip('needs pip install "qkan-daruan[notebook]"')
    cell = nbformat.v4.new_code_cell("print(6 * 7)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="41\n")]
    cell.execution_count = 1
    stale = tmp_path / "stale.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), stale)
    before = stale.read_text()
    proc = subprocess.run([sys.executable, str(TUTORIALS_DIR / "execute.py"), "--check", str(stale)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 1 and "DRIFTED stale.ipynb" in proc.stderr and "stored '41\\n', now '42\\n'" in proc.stderr
    assert stale.read_text() == before


def test_readme_lists_every_tutorial():
    readme = (TUTORIALS_DIR.parent / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"tutorials/(\d\d_\w+\.ipynb)", readme))
    assert listed == {p.name for p in TUTORIALS}
