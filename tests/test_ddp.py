"""Training at scale: QKAN under DistributedDataParallel (2 gloo processes started by torchrun
on loopback) and bf16 autocast through the closed-form evaluator."""

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qkan import QKANLayer

WORKER = Path(__file__).with_name("ddp_worker.py")


def _worker_module():
    spec = importlib.util.spec_from_file_location("ddp_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_averaged_gradients_equal_full_batch_gradients(tmp_path):
    out = tmp_path / "grads.pt"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(WORKER), "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = torch.load(out)
    assert result["world"] == 2

    worker = _worker_module()
    model, x, y = worker.problem(0)
    worker.loss_fn(model, model, x, y).backward()
    assert set(result["grads"]) == {name for name, _ in model.named_parameters()}
    for name, param in model.named_parameters():
        torch.testing.assert_close(result["grads"][name], param.grad, rtol=0, atol=1e-10, msg=name)
        assert param.grad.abs().max() > 0, name
    # after one SGD step both ranks hold the same parameters: the single-process step
    with torch.no_grad():
        expected = torch.cat([(p - 0.1 * p.grad).flatten() for p in model.parameters()])
    for params in result["params"]:
        torch.testing.assert_close(params, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("group", [None, "input"])
def test_bf16_autocast_through_fourier_forward_and_backward(group):
    layer = QKANLayer(8, 6, reps=3, seed=0, group=group, evaluator="fourier")
    x = (torch.rand(64, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1).requires_grad_()
    results = []
    for enabled in (False, True):
        layer.zero_grad(set_to_none=True)
        x.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            y = layer(x)
        assert y.dtype == (torch.bfloat16 if enabled else torch.float32)
        y.float().square().mean().backward()
        results.append((y.detach().float(), x.grad.clone(), {n: p.grad.clone() for n, p in layer.named_parameters()}))
    (y32, gx32, g32), (y16, gx16, g16) = results
    assert (y16 - y32).abs().max() <= 3e-2 * y32.abs().max()
    assert (y16 - y32).abs().max() > 0  # the matmul really ran in bf16
    assert (gx16 - gx32).abs().max() <= 3e-2 * gx32.abs().max()
    for name, grad in g32.items():
        assert g16[name].dtype == torch.float32, name  # parameters and their gradients stay float32
        assert (g16[name] - grad).abs().max() <= 3e-2 * grad.abs().max(), name
