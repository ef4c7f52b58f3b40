"""Imported once by the fork server of qkan.kanqas.parallel: everything a seed needs before it starts.

The first torch.optim optimizer of a process imports torch._dynamo (seconds); doing it here,
before the workers fork, saves that in every seed's process.
"""

import torch

import qkan.kanqas.parallel  # noqa: F401  (the workers' target function and its imports)

torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
