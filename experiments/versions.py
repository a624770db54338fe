"""Turn runs into model versions: export (fp32 / fp16 / int8 weights / QDQ int8), measure on the
golden set with ``segserve eval`` (the product's pipeline), write model.json with the measured
metrics.

``/usr/bin/python3 -m experiments.versions [config.yaml ...]`` (default: every config that has
``versions`` and whose run exists).

A version spec (an entry of a config's ``versions``) names its directory, name, version and
``variant``: ``fp32``, ``fp16``, ``int8`` / ``int8-per-channel`` (int8 weights, float compute: the
v1–v5 study), or ``qdq`` with a ``recipe`` of :mod:`experiments.quantize` (int8 weights *and*
activations, run by onnxruntime's int8 kernels). ``golden`` is the golden-set version it is
measured on (default: 2 for runs on generator-2 data, else 1). Versions of the reduction study
(``row``: their label in the study table) also get a 1152×768 copy for timing
(``experiments/runs/timing/``).
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

from . import dataset, export, golden, nets, quantize, quiet
from .metrics import Confusion
from .train import RUNS, data_spec, load_config, load_run

REPO = export.REPO
CONFIGS = dataset.ROOT / "configs"
RESULTS = RUNS / "versions"
TIMING = RUNS / "timing"
FULL = (768, 1152)  # the study's image size: the timing copies


def node() -> str:
    exe = shutil.which("node")
    if not exe:
        raise RuntimeError("node not found: install Node.js 20 (scripts/setup.sh) to measure with onnxruntime-node")
    return exe


CLI = REPO / "packages" / "cli" / "dist" / "bin.js"


def serving_malloc_env() -> dict[str, str]:
    """The glibc malloc settings inference processes run with (the container image, `segserve
    start`, the promoter's local driver), read from the one place that defines them:
    packages/runtime's INFERENCE_MALLOC_ENV (needs the workspace built, as every node call here)."""
    script = "import { INFERENCE_MALLOC_ENV } from '@segserve/runtime'; process.stdout.write(JSON.stringify(INFERENCE_MALLOC_ENV))"
    out = subprocess.run([node(), "--input-type=module", "-e", script], cwd=REPO, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def measure(model_dir: Path, passes: int = 5, dump: Path | None = None, golden_dir: Path = golden.GOLDEN,
            wrapper: list[str] | None = None) -> dict:
    """Golden-set metrics of one version.

    With the CLI built, ``segserve eval --json`` — the product's own pipeline, so that the claim
    in model.json is what the promoter and `segserve eval` will reproduce; otherwise (or to dump
    the predicted masks) experiments/measure.mjs, a stand-alone copy of the same protocol.
    Both run with the service's default settings (intra-op threads = CPU limit / max concurrency,
    arena and memory pattern off) and MALLOC_ARENA_MAX=2 as in the container image. ``wrapper``
    prefixes the command (e.g. one that pauses background trainings while it runs).
    """
    # without MALLOC_ARENA_MAX glibc's per-thread arenas add tens of MB of noise to the peak RSS
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    if CLI.exists() and dump is None:
        cmd = [*(wrapper or []), node(), str(CLI), "eval", "--model", str(model_dir), "--golden", str(golden_dir), "--json", "--passes", str(passes)]
        with quiet.released_for(wrapper):
            out = subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True, env=env)
        rep = json.loads(out.stdout.strip().splitlines()[-1])
        m = rep["metrics"]
        return {"miou": round(m["miou"], 4), "iou": [round(c["iou"], 4) for c in rep["classes"]],
                "pixel_accuracy": round(m["pixel_accuracy"], 4), "latency_ms_p50": round(m["latency_ms_p50"], 1),
                "latency_ms_p95": round(m["latency_ms_p95"], 1), "peak_rss_mb": round(m["peak_rss_mb"], 1),
                "samples": rep["passes"] * rep["golden"]["images"], "threads": rep.get("settings", {}).get("intra_op_threads"),
                "tool": "segserve eval", "golden_sha256": rep["golden"]["sha256"]}
    cmd = [node(), str(dataset.ROOT / "measure.mjs"), "--model", str(model_dir), "--golden", str(golden_dir),
           "--passes", str(passes), "--threads", "1"]
    if dump:
        cmd += ["--dump", str(dump)]
    out = subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True, env=env)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["tool"] = "experiments/measure.mjs"
    return res


@torch.no_grad()
def torch_golden_miou(model: torch.nn.Module, height: int, width: int, golden_dir: Path = golden.GOLDEN) -> float:
    """Cross-check in PyTorch: PIL's antialiased bilinear resize instead of sharp's, same protocol."""
    conf = Confusion(2)
    for img_path in sorted((golden_dir / "images").glob("*.jpg")):
        img = Image.open(img_path).convert("RGB")
        truth = np.asarray(Image.open(golden_dir / "masks" / (img_path.stem + ".png")))
        x = dataset.normalize(torch.from_numpy(dataset.resize_image(img, height, width).copy())[None])
        small = model(x).argmax(1)[0].numpy().astype(np.uint8)
        big = np.asarray(Image.fromarray(small, "L").resize(img.size, Image.NEAREST))
        conf.add(big, truth)
    return conf.miou()


def golden_set_for(spec: dict, run_cfg: dict) -> golden.GoldenSet:
    default = 2 if data_spec(run_cfg)[4] >= 2 else 1
    return golden.SETS[int(spec.get("golden", default))]


def calibration_images(run_cfg: dict, count: int) -> np.ndarray:
    """The first ``count`` training images of the run's data, preprocessed as served (N×3×H×W)."""
    seed, n, h, w, gen = data_spec(run_cfg)
    split = dataset.Split(dataset.build(seed, n, h, w, generator=gen), "train", seed)
    return dataset.normalize(split.lo_img[:count]).numpy()


def _variant(m, spec: dict, run_cfg: dict, stats_cache: dict):
    """The exported float model turned into the spec's variant; QDQ calibration statistics are
    computed once per run (they depend on the model and the images, not on the export size)."""
    variant = spec.get("variant", "fp32")
    if variant == "fp16":
        return export.to_fp16(m), None
    if variant == "int8":
        return export.to_int8(m, per_channel=False), None
    if variant == "int8-per-channel":
        return export.to_int8(m, per_channel=True), None
    if variant == "qdq":
        recipe = quantize.RECIPES[spec["recipe"]]
        images = stats_cache.get("images")
        if images is None:
            images = stats_cache["images"] = calibration_images(run_cfg, max(r.images for r in quantize.RECIPES.values()))
        q, info = quantize.build(m, recipe, images, stats_cache.get("stats"))
        stats_cache["stats"] = {**stats_cache.get("stats", {}), **info["stats"]}
        return q, info["summary"]
    if variant != "fp32":
        raise ValueError(f"unknown variant {variant}")
    return m, None


def export_version(cfg: dict, spec: dict) -> dict:
    run = cfg.get("from_run", cfg["name"])
    model, run_cfg = load_run(run)
    run_metrics = json.loads((RUNS / run / "metrics.json").read_text())
    h = int(spec.get("height", run_metrics["height"]))
    w = int(spec.get("width", run_metrics["width"]))
    out = REPO / spec["dir"]
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / "model.onnx"
    stats_cache: dict = {}
    m, quant = _variant(export.export_onnx(model, RUNS / run / f"export-{h}x{w}.onnx", h, w), spec, run_cfg, stats_cache)
    export.save(m, onnx_path)
    ops = export.op_counts(onnx_path)
    # a placeholder manifest so that the measuring tools can read the input contract
    export.write_manifest(out, export.manifest(spec["name"], str(spec["version"]), onnx_path, h, w, None, None, None))
    info = {"run": run, "run_cfg": run_cfg, "run_metrics": run_metrics, "model": model, "height": h, "width": w,
            "dir": out, "variant": spec.get("variant", "fp32"), "ops": ops, "quantization": quant,
            "golden": golden_set_for(spec, run_cfg)}
    if spec.get("row"):  # the study's timing copy at 1152×768
        fdir = TIMING / Path(spec["dir"]).name if spec["dir"].startswith("experiments") else TIMING / spec["dir"].replace("/", "-")
        fdir.mkdir(parents=True, exist_ok=True)
        fm, _ = _variant(export.export_onnx(model, RUNS / run / f"export-{FULL[0]}x{FULL[1]}.onnx", *FULL), spec, run_cfg, stats_cache)
        export.save(fm, fdir / "model.onnx")
        export.write_manifest(fdir, export.manifest(spec["name"], str(spec["version"]), fdir / "model.onnx", *FULL, None, None, None))
        info["full_dir"] = fdir
        info["gflops_full"] = round(nets.count_gflops(model, *FULL), 2)
    return info


def describe(spec: dict, info: dict) -> str:
    mc = info["run_cfg"]["model"]
    if mc.get("arch", "pspnet") != "pspnet":
        text = f"{nets.describe(mc)}; {info['variant']}"
        if info.get("quantization"):
            text += f" ({info['quantization']['note']})"
        text += f"; input {info['width']}x{info['height']}."
        if spec.get("note"):
            text += " " + spec["note"]
        return text
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
        "params": nets.count_params(model),
        "gflops": round(nets.count_gflops(model, info["height"], info["width"]), 3),
        "onnx_bytes": size,
        "onnx_ops": info["ops"],
        "opset": export.OPSET,
        "golden_set": info["golden"].name,
        "golden_sha256": info["golden"].sha256,
        "measured_with": {"tool": first["tool"], "runtime": "onnxruntime-node 1.30.0", "intra_op_threads": first["threads"],
                          "rounds": len(rounds), "samples_per_round": first["samples"],
                          "latency": "per image, encoded bytes to the PNG mask at the image's size",
                          "combine": "median over rounds of each round's p50/p95 and peak RSS",
                          "env": {"MALLOC_ARENA_MAX": "2"}, "arena": False, "memory_pattern": False},
    }
    for k in ("init_from", "distill", "loss"):
        if info["run_cfg"].get(k):
            training[k] = info["run_cfg"][k]
    if info.get("quantization"):
        training["quantization"] = info["quantization"]
    if rm.get("train_cpu_seconds") is not None:
        training["train_cpu_seconds"] = rm["train_cpu_seconds"]
        training["load_avg_median"] = rm.get("load_avg_median")
    if info["variant"] == "fp32":
        training["golden_miou_pytorch"] = round(torch_golden_miou(model, info["height"], info["width"], info["golden"].dir), 4)
    man = export.manifest(spec["name"], str(spec["version"]), info["dir"] / "model.onnx", info["height"], info["width"],
                          metrics, describe(spec, info), training)
    export.write_manifest(info["dir"], man)
    return man


def is_study(cfg: dict) -> bool:
    """A config of the reduction study (its versions carry a ``row`` label); the others made v1–v5."""
    return any(v.get("row") for v in cfg.get("versions", []))


def configs_with_versions(paths: list[str] | None = None, which: str = "all") -> list[Path]:
    cands = [Path(p) for p in paths] if paths else sorted(CONFIGS.glob("*.yaml"))
    out = []
    for p in cands:
        cfg = load_config(p)
        if cfg.get("versions") and (which == "all" or (which == "study") == is_study(cfg)):
            out.append(p.resolve())
    return out


def build(paths: list[str] | None = None, rounds: int = 3, log=print, which: str = "all", passes: int | None = None,
          wrapper: list[str] | None = None, only: set[str] | None = None) -> list[dict]:
    """Export and measure the versions of ``paths`` (default: every config with versions); ``only``:
    just the versions with these directories."""
    torch.set_num_threads(1)
    jobs = []
    for p in configs_with_versions(paths, which):
        cfg = load_config(p)
        run = cfg.get("from_run", cfg["name"])
        if not (RUNS / run / "metrics.json").exists():
            log(f"skip {p.name}: run {run} has not been trained")
            continue
        for spec in cfg["versions"]:
            if only is not None and spec["dir"] not in only:
                continue
            log(f"export {spec['dir']} ({spec.get('variant', 'fp32')}) from {run}")
            quiet.breathe()
            jobs.append((p, cfg, spec, export_version(cfg, spec)))
    # measure in rounds, alternating the order, so that a busy moment on the shared machine does
    # not land on one version only
    results: dict[str, list[dict]] = {}
    for r in range(rounds):
        order = jobs if r % 2 == 0 else list(reversed(jobs))
        for p, cfg, spec, info in order:
            res = measure(info["dir"], passes=passes or int(spec.get("passes", 5)), golden_dir=info["golden"].dir, wrapper=wrapper)
            if res.get("golden_sha256", info["golden"].sha256) != info["golden"].sha256:
                raise RuntimeError(f"{info['golden'].dir}: segserve eval saw digest {res['golden_sha256']}, not {info['golden'].sha256}")
            log(f"round {r + 1}: {spec['dir']}: mIoU {res['miou']} p95 {res['latency_ms_p95']} ms "
                f"RSS {res['peak_rss_mb']} MB ({res['tool']})")
            results.setdefault(spec["dir"], []).append(res)
    mans = []
    for p, cfg, spec, info in jobs:
        quiet.breathe()
        man = finish_version(cfg, spec, info, results[spec["dir"]], p)
        mans.append({"dir": spec["dir"], "manifest": man, "spec": spec, "full_dir": str(info.get("full_dir", "")),
                     "gflops_full": info.get("gflops_full")})
    RESULTS.mkdir(parents=True, exist_ok=True)
    # merged with earlier builds by directory, so that configs can be built one at a time and the
    # study (experiments/study.py) still sees every version
    last = RESULTS / "last.json"
    old = json.loads(last.read_text()) if last.exists() else {"versions": [], "rounds": {}}
    done = {m["dir"] for m in mans}
    merged = {"versions": [v for v in old["versions"] if v["dir"] not in done] + mans,
              "rounds": {**{d: r for d, r in old["rounds"].items() if d not in done}, **results}}
    last.write_text(json.dumps(merged, indent=2) + "\n")
    return mans


if __name__ == "__main__":
    build(sys.argv[1:] or None)
