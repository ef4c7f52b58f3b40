"""Installed packages bring evaluators and KANQAS tasks through entry points ("qkan.evaluators",
"qkan.tasks"), which the registries, set_evaluator, make_task and the CLIs see."""

from __future__ import annotations

import textwrap

import pytest
import torch

import qkan
from qkan.simulators import base

PLUGIN = textwrap.dedent(
    """
    import torch
    from qkan.simulators import Evaluator
    from qkan.testing import reference_layer


    class TwiceReference(Evaluator):
        name = "plugin-reference"

        def edge_outputs(self, layer, x):
            return torch.as_tensor(reference_layer(layer, x), dtype=x.dtype)


    def bell():
        from qkan.kanqas.state_prep import StatePrep
        return StatePrep("bell")
    """
)


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A package 'qkan-plugin-demo' on sys.path, with its dist-info and entry points."""
    (tmp_path / "qkan_plugin_demo.py").write_text(PLUGIN)
    info = tmp_path / "qkan_plugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: qkan-plugin-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[qkan.evaluators]\nplugin-reference = qkan_plugin_demo:TwiceReference\n\n[qkan.tasks]\nplugin-bell = qkan_plugin_demo:bell\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    base._REGISTRY.pop("plugin-reference", None)
    pytest.importorskip("gymnasium")
    from qkan.kanqas import tasks

    tasks._TASKS.pop("plugin-bell", None)


def test_an_installed_evaluator_is_usable_by_name(installed_plugin):
    assert "plugin-reference" in qkan.simulators.available_evaluators()
    layer = qkan.QKANLayer(2, 2, reps=2, seed=0, dtype=torch.float64)
    x = torch.rand(3, 2, dtype=torch.float64)
    expected = layer(x)
    layer.set_evaluator("plugin-reference")
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-12)


def test_an_installed_task_reaches_make_task_and_the_search_cli(installed_plugin):
    pytest.importorskip("gymnasium")
    from qkan.kanqas import available_tasks, make_task
    from qkan.kanqas.cli import add_parser

    assert "plugin-bell" in available_tasks()
    assert make_task("plugin-bell").n_qubits == 2
    import argparse

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["search", "--task", "plugin-bell"]).task == "plugin-bell"
