"""The peer's network alone, to set against bench/profile-ort.mjs: mean forward time and the
time per operator (PyTorch's profiler) for the same PSPNet and weights as the Flask peer.

    /usr/bin/python3 bench/peers/profile_torch.py --model models/facade-ads-full/2 [--threads 1] [--runs 5]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from flask_pspnet import build  # same directory


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, manifest = build(Path(args.model))
    h, w = manifest["input"]["height"], manifest["input"]["width"]
    x = torch.sin(torch.arange(3 * h * w, dtype=torch.float32) * 0.001).reshape(1, 3, h, w) * 2
    with torch.no_grad():
        model(x)
        t0 = time.perf_counter()
        for _ in range(args.runs):
            model(x)
        wall = (time.perf_counter() - t0) / args.runs
        with torch.autograd.profiler.profile() as prof:
            for _ in range(args.runs):
                model(x)
    ops: dict[str, float] = {}
    for e in prof.key_averages():
        ops[e.key] = e.self_cpu_time_total / 1000 / args.runs
    top = dict(sorted(ops.items(), key=lambda kv: -kv[1])[:8])
    print(json.dumps({"model_dir": args.model, "threads": torch.get_num_threads(), "runs": args.runs,
                      "wall_ms_per_forward": round(wall * 1000, 1),
                      "self_cpu_ms_per_forward_by_op": {k: round(v, 1) for k, v in top.items()}}, indent=2))


if __name__ == "__main__":
    main()
