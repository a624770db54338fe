"""A training's best checkpoint so far, exported for the measurement protocol before the training
has finished: the run's ``checkpoint.pt`` (the epoch with the best validation mIoU; only read, so
a training still writing next to it is not disturbed) as version directories — fp32 and the int8
recipes of the run's config (its ``qdq`` versions) or of ``--recipe`` — at the served size and at
the study's 1152×768. ``experiments/measure_models.mjs`` then times and scores them the way the
study does (``run_all`` builds the real versions when the training ends).

    /usr/bin/python3 -m experiments.snapshot r50-context --out /tmp/r50 [--recipe NAME ...]

Writes ``<out>/<variant>-<height>x<width>/{model.onnx,model.json}`` (``fp32`` or the recipe's
name) and ``<out>/snapshot.json`` (run, epoch, directories). Nothing is written into the run.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from . import export
from .train import RUNS, data_spec, load_config, load_run
from .versions import CONFIGS, FULL, _variant


def specs_of(run: str, recipes: list[str] | None) -> tuple[str, list[dict]]:
    """The model's name and fp32 + the int8 versions of the run's config (or the given recipes)."""
    path = CONFIGS / f"{Path(run).name}.yaml"
    versions = load_config(path).get("versions", []) if path.exists() else []
    if recipes is None:
        recipes = [v["recipe"] for v in versions if v.get("variant") == "qdq"]
    name = next((v["name"] for v in versions), "facade-ads")
    return name, [{"variant": "fp32"}] + [{"variant": "qdq", "recipe": r} for r in recipes]


def snapshot(run: str, out: Path, recipes: list[str] | None = None, log=print) -> dict:
    """``run``: a run's name under experiments/runs, or its directory."""
    run_dir = RUNS / run
    model, cfg = load_run(run)
    epoch = torch.load(run_dir / "checkpoint.pt", map_location="cpu").get("epoch")
    _, _, h, w, _ = data_spec(cfg)
    model_name, specs = specs_of(run, recipes)
    out.mkdir(parents=True, exist_ok=True)
    stats_cache: dict = {}  # calibrated once, at the served size (the first), shared with 1152×768
    dirs = []
    for eh, ew in ((h, w), FULL):
        m = export.export_onnx(model, out / f"export-{eh}x{ew}.onnx", eh, ew)
        for spec in specs:
            q, _ = _variant(m, spec, cfg, stats_cache)
            name = f"{spec.get('recipe', spec['variant'])}-{eh}x{ew}"
            d = out / name
            d.mkdir(exist_ok=True)
            export.save(q, d / "model.onnx")
            export.write_manifest(d, export.manifest(model_name, f"snapshot-{name}", d / "model.onnx", eh, ew, None, None, None))
            dirs.append(str(d))
            log(f"snapshot: {run} epoch {epoch} → {d}")
        (out / f"export-{eh}x{ew}.onnx").unlink()
    info = {"run": str(run), "epoch": epoch, "dirs": dirs}
    (out / "snapshot.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Export a training's best checkpoint so far for measure_models.mjs (read only).")
    ap.add_argument("run", help="run name under experiments/runs (or a run directory)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--recipe", action="append", help="int8 recipe (default: the run config's qdq versions)")
    a = ap.parse_args(argv)
    snapshot(a.run, a.out, a.recipe)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
