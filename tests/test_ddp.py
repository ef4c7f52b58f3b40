"""QKAN under torch DistributedDataParallel: 2 gloo processes on loopback, started by torchrun."""

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

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
