"""Times the published qkan package's HQKANsformer step, for benchmarks/hqkan_gpt2.py and gpu.py.

Started as ``<reference python> -I _reference_hqkan.py CONFIG.json OUT.json`` in a separate
virtualenv (never imports this checkout). CONFIG.json: {"layers", "width", "heads", "vocab",
"seq", "batch", "repeats", "device", and optionally "dtype": "float32" | "bfloat16"}. The model
is GPT-2 shaped (pre-norm blocks, causal attention) with each MLP replaced by Linear(d, L) ->
QKAN([L, L], reps=1) -> Linear(L, d), L = ceil(log2 d), as in the package's own HQKANsformer
benchmark. OUT.json: {"params", "wall_s", "cpu_s" (medians of one forward+backward step),
"solver", "peak_mb" (CUDA only)} or {"error": "..."}.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time

from _reference_qkan import write_result  # same folder: the script's own directory is on sys.path


def build(torch, QKAN, cfg: dict, solver: str):
    nn, F = torch.nn, torch.nn.functional
    d, device = cfg["width"], cfg["device"]
    latent = math.ceil(math.log2(d))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.c_attn, self.c_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.down, self.up = nn.Linear(d, latent), nn.Linear(latent, d)
            self.qkan = QKAN(width=[latent, latent], reps=1, device=device, solver=solver)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
            q, k, v = (t.view(B, T, cfg["heads"], C // cfg["heads"]).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
            x = x + self.c_proj(y)
            z = self.ln_2(x).reshape(-1, C)
            return x + self.up(self.qkan(self.down(z))).view(B, T, C)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(cfg["vocab"], d), nn.Embedding(cfg["seq"], d)
            self.h = nn.ModuleList([Block() for _ in range(cfg["layers"])])
            self.ln_f = nn.LayerNorm(d)

        def forward(self, idx):
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
            for block in self.h:
                x = block(x)
            return self.ln_f(x) @ self.wte.weight.T  # tied head

    return Model().to(device)


def run(torch, QKAN, cfg: dict) -> dict:
    torch.manual_seed(0)
    device = cfg["device"]
    errors = []
    for solver in (["flash", "exact"] if device == "cuda" else ["exact"]):
        try:
            model = build(torch, QKAN, cfg, solver)
            break
        except Exception as err:  # a solver this install or machine lacks: try the next
            errors.append(f"{solver}: {type(err).__name__}: {err}")
    else:
        raise RuntimeError("; ".join(errors))
    ids = torch.randint(0, cfg["vocab"], (cfg["batch"], cfg["seq"]), device=device)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[cfg.get("dtype", "float32")]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def step():
        model.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=dtype, enabled=dtype != torch.float32):
            logits = model(ids)
        torch.nn.functional.cross_entropy(logits.float().flatten(0, 1)[:-1], ids.flatten()[1:]).backward()

    walls, cpus = [], []
    for i in range(cfg["repeats"] + 1):
        sync()
        w, c = time.perf_counter(), time.process_time()
        step()
        sync()
        if i:
            walls.append(time.perf_counter() - w)
            cpus.append(time.process_time() - c)
    out = {"params": sum(p.numel() for p in model.parameters()), "wall_s": statistics.median(walls),
           "cpu_s": statistics.median(cpus), "solver": solver}
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        step()
        out["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main(config_path: str, out_path: str) -> None:
    try:
        import torch
        from qkan import QKAN

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        result = run(torch, QKAN, json.load(open(config_path)))
    except Exception as err:  # reported to the caller, which skips the column
        result = {"error": f"{type(err).__name__}: {err}"}
    write_result(out_path, result)


if __name__ == "__main__":
    main(*sys.argv[1:3])
