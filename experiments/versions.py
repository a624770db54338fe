"""Turn runs into model versions: export (fp32 / fp16 / int8), measure on the golden set with
onnxruntime-node (experiments/measure.mjs), write model.json with the measured metrics.

``/usr/bin/python3 -m experiments.versions [config.yaml ...]`` (default: every config that has
``versions`` and whose run exists).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import dataset, export, golden, pspnet
from .metrics import Confusion
from .train import RUNS, load_config, load_run

REPO = export.REPO
CONFIGS = dataset.ROOT / "configs"
RESULTS = RUNS / "versions"


def node() -> str:
    exe = shutil.which("node")
    if not exe:
        raise RuntimeError("node not found: install Node.js 20 (scripts/setup.sh) to measure with onnxruntime-node")
    return exe


CLI = REPO / "packages" / "cli" / "dist" / "bin.js"


def measure(model_dir: Path, passes: int = 5, dump: Path | None = None) -> dict:
    """Golden-set metrics of one version.

    With the CLI built, ``segserve eval --json`` — the product's own pipeline, so that the claim
    in model.json is what the promoter and `segserve eval` will reproduce; otherwise (or to dump
    the predicted masks) experiments/measure.mjs, a stand-alone copy of the same protocol.
    Both run with the service's default settings (intra-op threads = CPU limit / max concurrency,
    arena and memory pattern off) and MALLOC_ARENA_MAX=2 as in the container image.
    """
    # without MALLOC_ARENA_MAX glibc's per-thread arenas add tens of MB of noise to the peak RSS
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    if CLI.exists() and dump is None:
        cmd = [node(), str(CLI), "eval", "--model", str(model_dir), "--golden", str(golden.GOLDEN), "--json", "--passes", str(passes)]
        out = subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True, env=env)
        rep = json.loads(out.stdout.strip().splitlines()[-1])
        m = rep["metrics"]
        return {"miou": round(m["miou"], 4), "iou": [round(c["iou"], 4) for c in rep["classes"]],
                "pixel_accuracy": round(m["pixel_accuracy"], 4), "latency_ms_p50": round(m["latency_ms_p50"], 1),
                "latency_ms_p95": round(m["latency_ms_p95"], 1), "peak_rss_mb": round(m["peak_rss_mb"], 1),
                "samples": rep["passes"] * rep["golden"]["images"], "threads": rep.get("settings", {}).get("intra_op_threads"),
                "tool": "segserve eval", "golden_sha256": rep["golden"]["sha256"]}
    cmd = [node(), str(dataset.ROOT / "measure.mjs"), "--model", str(model_dir), "--golden", str(golden.GOLDEN),
           "--passes", str(passes), "--threads", "1"]
    if dump:
        cmd += ["--dump", str(dump)]
    out = subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True, env=env)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["tool"] = "experiments/measure.mjs"
    return res


@torch.no_grad()
def torch_golden_miou(model: torch.nn.Module, height: int, width: int) -> float:
    """Cross-check in PyTorch: PIL's antialiased bilinear resize instead of sharp's, same protocol."""
    conf = Confusion(2)
    for img_path in sorted((golden.GOLDEN / "images").glob("*.jpg")):
        img = Image.open(img_path).convert("RGB")
        truth = np.asarray(Image.open(golden.GOLDEN / "masks" / (img_path.stem + ".png")))
        x = dataset.normalize(torch.from_numpy(dataset.resize_image(img, height, width).copy())[None])
        small = model(x).argmax(1)[0].numpy().astype(np.uint8)
        big = np.asarray(Image.fromarray(small, "L").resize(img.size, Image.NEAREST))
        conf.add(big, truth)
    return conf.miou()


def export_version(cfg: dict, spec: dict) -> dict:
    run = cfg.get("from_run", cfg["name"])
    model, run_cfg = load_run(run)
    run_metrics = json.loads((RUNS / run / "metrics.json").read_text())
    h = int(spec.get("height", run_metrics["height"]))
    w = int(spec.get("width", run_metrics["width"]))
    out = REPO / spec["dir"]
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / "model.onnx"
    m = export.export_onnx(model, RUNS / run / f"export-{h}x{w}.onnx", h, w)
    variant = spec.get("variant", "fp32")
    if variant == "fp16":
        m = export.to_fp16(m)
    elif variant == "int8":
        m = export.to_int8(m, per_channel=False)
    elif variant == "int8-per-channel":
        m = export.to_int8(m, per_channel=True)
    elif variant != "fp32":
        raise ValueError(f"unknown variant {variant}")
    export.save(m, onnx_path)
    ops = export.op_counts(onnx_path)
    # a placeholder manifest so that measure.mjs can read the input contract
    export.write_manifest(out, export.manifest(spec["name"], str(spec["version"]), onnx_path, h, w, None, None, None))
    return {"run": run, "run_cfg": run_cfg, "run_metrics": run_metrics, "model": model, "height": h, "width": w,
            "dir": out, "variant": variant, "ops": ops}


def describe(spec: dict, info: dict) -> str:
    mc = info["run_cfg"]["model"]
    bn = "batch-norm" if mc.get("psp_use_batchnorm", True) else "no batch-norm"
    text = (f"PSPNet {mc['encoder']} encoder depth {mc.get('encoder_depth', 3)} (output stride 8), "
            f"{mc['psp_out_channels']} decoder channels, {bn} in the decoder; {info['variant']} weights; "
            f"input {info['width']}x{info['height']}.")
    if spec.get("note"):
        text += " " + spec["note"]
    return text


def finish_version(cfg: dict, spec: dict, info: dict, rounds: list[dict], cfg_path: Path) -> dict:
    rm = info["run_metrics"]
    first = rounds[0]
    metrics = {
        "miou": first["miou"],
        "latency_ms_p95": round(float(np.median([r["latency_ms_p95"] for r in rounds])), 1),
        "peak_rss_mb": round(float(np.median([r["peak_rss_mb"] for r in rounds])), 1),
        "latency_ms_p50": round(float(np.median([r["latency_ms_p50"] for r in rounds])), 1),
        "pixel_accuracy": first["pixel_accuracy"],
        "iou_background": first["iou"][0],
        "iou_advertising": first["iou"][1],
    }
    model = info["model"]
    size = (info["dir"] / "model.onnx").stat().st_size
    training = {
        "config": os.path.relpath(cfg_path, REPO),
        "run": info["run"],
        "variant": info["variant"],
        "model": info["run_cfg"]["model"],
        "train_resolution": [rm["width"], rm["height"]],
        "epochs": rm["epochs"],
        "train_seconds": rm["train_seconds"],
        "train_seconds_total": rm.get("train_seconds_total", rm["train_seconds"]),
        "threads": rm["threads"],
        "val_miou": rm["val_miou"],
        "test_miou": rm["test_miou"],
        "dataset": rm["dataset"],
        "params": pspnet.count_params(model),
        "gflops": round(pspnet.count_gflops(model, info["height"], info["width"]), 3),
        "onnx_bytes": size,
        "onnx_ops": info["ops"],
        "opset": export.OPSET,
        "golden_sha256": golden.digest(),
        "measured_with": {"tool": first["tool"], "runtime": "onnxruntime-node 1.30.0", "intra_op_threads": first["threads"],
                          "rounds": len(rounds), "samples_per_round": first["samples"],
                          "latency": "per image, encoded bytes to the PNG mask at the image's size",
                          "combine": "median over rounds of each round's p50/p95 and peak RSS",
                          "env": {"MALLOC_ARENA_MAX": "2"}, "arena": False, "memory_pattern": False},
    }
    for k in ("init_from", "distill"):
        if info["run_cfg"].get(k):
            training[k] = info["run_cfg"][k]
    if info["variant"] == "fp32":
        training["golden_miou_pytorch"] = round(torch_golden_miou(model, info["height"], info["width"]), 4)
    man = export.manifest(spec["name"], str(spec["version"]), info["dir"] / "model.onnx", info["height"], info["width"],
                          metrics, describe(spec, info), training)
    export.write_manifest(info["dir"], man)
    return man


def configs_with_versions(paths: list[str] | None = None) -> list[Path]:
    cands = [Path(p) for p in paths] if paths else sorted(CONFIGS.glob("*.yaml"))
    return [p.resolve() for p in cands if load_config(p).get("versions")]


def build(paths: list[str] | None = None, rounds: int = 3, log=print) -> list[dict]:
    torch.set_num_threads(1)
    jobs = []
    for p in configs_with_versions(paths):
        cfg = load_config(p)
        run = cfg.get("from_run", cfg["name"])
        if not (RUNS / run / "metrics.json").exists():
            log(f"skip {p.name}: run {run} has not been trained")
            continue
        for spec in cfg["versions"]:
            log(f"export {spec['dir']} ({spec.get('variant', 'fp32')}) from {run}")
            jobs.append((p, cfg, spec, export_version(cfg, spec)))
    # measure in rounds, alternating the order, so that a busy moment on the shared machine does
    # not land on one version only
    results: dict[str, list[dict]] = {}
    for r in range(rounds):
        order = jobs if r % 2 == 0 else list(reversed(jobs))
        for p, cfg, spec, info in order:
            res = measure(info["dir"], passes=int(spec.get("passes", 5)))
            log(f"round {r + 1}: {spec['dir']}: mIoU {res['miou']} p95 {res['latency_ms_p95']} ms "
                f"RSS {res['peak_rss_mb']} MB ({res['tool']})")
            results.setdefault(spec["dir"], []).append(res)
    mans = []
    for p, cfg, spec, info in jobs:
        man = finish_version(cfg, spec, info, results[spec["dir"]], p)
        mans.append({"dir": spec["dir"], "manifest": man})
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "last.json").write_text(json.dumps({"versions": mans, "rounds": results}, indent=2) + "\n")
    return mans


if __name__ == "__main__":
    build(sys.argv[1:] or None)
