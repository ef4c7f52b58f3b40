"""One rank of a DistributedDataParallel training step on a QKAN (run by tests/test_ddp.py).

    python -m torch.distributed.run --nproc_per_node 2 --master_addr 127.0.0.1 --master_port PORT \
        tests/ddp_worker.py --out grads.pt

Each rank takes an equal shard of a fixed batch, so DDP's averaged gradient must equal the
single-process gradient of the full batch. Rank 0 saves the synchronised gradients and every
rank's parameters after one SGD step.
"""

from __future__ import annotations

import argparse

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from qkan import QKAN
from qkan.interpret import regularization

#: weight of the L1 activation penalty added to the loss (linear in the batch mean, so shardable)
REG = 0.01


def problem(seed: int = 0, n: int = 32) -> tuple[QKAN, torch.Tensor, torch.Tensor]:
    """The model (float64) and a full batch (x (n, 3), y (n, 2)) every rank builds identically."""
    model = QKAN([3, 4, 2], reps=2, seed=seed, dtype=torch.float64, bias=True)
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, generator=gen, dtype=torch.float64) * 2 - 1
    y = torch.stack([torch.sin(3 * x[:, 0]) * x[:, 1], x[:, 2] ** 2], dim=-1)
    return model, x, y


def loss_fn(model_call, model: QKAN, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error of model_call(x) plus REG times the L1 norm of the edge scales."""
    return torch.nn.functional.mse_loss(model_call(x), y) + REG * regularization(model, x, l1=1.0, entropy=0.0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="file rank 0 writes the gradients to")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    model, x, y = problem(args.seed)
    ddp = DistributedDataParallel(model)
    n = x.shape[0]
    assert n % world == 0, "the batch must split evenly for the averaged gradient to be exact"
    shard = slice(rank * n // world, (rank + 1) * n // world)
    loss_fn(ddp, model, x[shard], y[shard]).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    torch.optim.SGD(ddp.parameters(), lr=0.1).step()
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    if rank == 0:
        torch.save({"grads": grads, "params": gathered, "world": world}, args.out)
    del ddp, model
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
