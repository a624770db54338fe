"""A training's best checkpoint so far, exported for the measurement protocol before the training
has finished: the run's ``checkpoint.pt`` (the epoch with the best validation mIoU; only read, so
a training still writing next to it is not disturbed) as version directories — fp32 and the int8
recipes of the run's config (its ``qdq`` versions) or of ``--recipe`` — at the served size and at
the study's 1152×768. ``experiments/measure_models.mjs`` then times and scores them the way the
study does (``run_all`` builds the real versions when the training ends).

    /usr/bin/python3 -m experiments.snapshot r50-context --out /tmp/r50 [--recipe NAME ...]

Writes ``<out>/<variant>-<height>x<width>/{model.onnx,model.json}`` (``fp32`` or the recipe's
name) and ``<out>/snapshot.json`` (run, epoch, directories). Nothing is written into the run.

A bundled version whose run is gone (its checkpoint lost or never kept) is measured the same way
from its own ONNX file: ``--weights-from models/facade-ads/6`` builds the config's network, exports
it at both sizes and puts the bundled file's convolution weights and biases (batch-norms are folded
into them by the export) into each export, convolution by convolution. The served-size result must
be the bundled graph itself — same nodes, attributes and constants — or the snapshot stops; the
1152×768 copy is then the same weights at the study's size.

    /usr/bin/python3 -m experiments.snapshot r18-context-long --weights-from models/facade-ads/6 --out /tmp/v6
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from . import export, nets, quantize
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


def _constants(g: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Initializers and Constant nodes' outputs."""
    c = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant" and n.attribute[0].name == "value":
            c[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return c


def _convs(g: onnx.GraphProto) -> list[tuple[onnx.NodeProto, list[np.ndarray]]]:
    c = _constants(g)
    return [(n, [c[x] for x in n.input[1:] if x in c]) for n in g.node if n.op_type == "Conv"]


def _attributes(n: onnx.NodeProto) -> dict:
    return {a.name: _value(a) for a in n.attribute}


def _value(a: onnx.AttributeProto):
    v = onnx.helper.get_attribute_value(a)
    return numpy_helper.to_array(v).tolist() if isinstance(v, onnx.TensorProto) else v


def transplant(source: onnx.ModelProto, target: onnx.ModelProto) -> onnx.ModelProto:
    """``target`` (an export of the same network) with ``source``'s convolution weights and biases,
    matched in graph order; a different network (other convolutions or shapes) raises."""
    m = onnx.ModelProto()
    m.CopyFrom(target)
    src, dst = _convs(source.graph), _convs(m.graph)
    if len(src) != len(dst):
        raise ValueError(f"not the same network: {len(src)} convolutions in the source, {len(dst)} in the export")
    for k, ((sn, sp), (dn, dp)) in enumerate(zip(src, dst)):
        if [t.shape for t in sp] != [t.shape for t in dp] or _attributes(sn) != _attributes(dn):
            raise ValueError(f"not the same network: convolution {k} ({sn.name} / {dn.name}) differs in shape or attributes")
        for j, t in enumerate(sp):
            name = f"snapshot_conv{k}_{j}"
            m.graph.initializer.append(numpy_helper.from_array(t, name))
            dn.input[1 + j] = name
    used = {x for n in m.graph.node for x in n.input} | {o.name for o in m.graph.output}
    nodes = [n for n in m.graph.node if n.op_type != "Constant" or n.output[0] in used]
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    kept = [i for i in m.graph.initializer if i.name in used]
    del m.graph.initializer[:]
    m.graph.initializer.extend(kept)
    return m


def same_graph(a: onnx.ModelProto, b: onnx.ModelProto) -> bool:
    """Node for node the same operators, attributes and constant inputs (names aside)."""
    ca, cb = _constants(a.graph), _constants(b.graph)
    if len(a.graph.node) != len(b.graph.node):
        return False
    for na, nb in zip(a.graph.node, b.graph.node):
        if na.op_type != nb.op_type or _attributes(na) != _attributes(nb) or len(na.input) != len(nb.input):
            return False
        for x, y in zip(na.input, nb.input):
            if (x in ca) != (y in cb) or (x in ca and not np.array_equal(ca[x], cb[y])):
                return False
    return True


def snapshot(run: str, out: Path, recipes: list[str] | None = None, log=print, weights_from: Path | None = None,
             config: dict | None = None) -> dict:
    """``run``: a run's name under experiments/runs, or its directory. ``weights_from``: a bundled
    fp32 version directory whose convolution weights replace the network's (``config``, default
    the run's config file, gives the network); the run is then not read at all."""
    bundled = quantize.inline_identities(onnx.load(str(weights_from / "model.onnx"))) if weights_from is not None else None
    if bundled is None:
        model, cfg = load_run(run)
        epoch = torch.load(RUNS / run / "checkpoint.pt", map_location="cpu").get("epoch")
    else:
        cfg = config if config is not None else load_config(CONFIGS / f"{Path(run).name}.yaml")
        model, epoch = nets.build(cfg["model"]).eval(), None
    _, _, h, w, _ = data_spec(cfg)
    model_name, specs = specs_of(run, recipes)
    out.mkdir(parents=True, exist_ok=True)
    stats_cache: dict = {}  # calibrated once, at the served size (the first), shared with 1152×768
    dirs = []
    for eh, ew in ((h, w), FULL):
        m = export.export_onnx(model, out / f"export-{eh}x{ew}.onnx", eh, ew)
        if bundled is not None:
            m = transplant(bundled, quantize.inline_identities(m))
            if (eh, ew) == (h, w) and not same_graph(m, bundled):
                raise ValueError(f"{weights_from}: the export of {run}'s network with its weights is not the bundled graph")
        for spec in specs:
            q, _ = _variant(m, spec, cfg, stats_cache)
            name = f"{spec.get('recipe', spec['variant'])}-{eh}x{ew}"
            d = out / name
            d.mkdir(exist_ok=True)
            export.save(q, d / "model.onnx")
            export.write_manifest(d, export.manifest(model_name, f"snapshot-{name}", d / "model.onnx", eh, ew, None, None, None))
            dirs.append(str(d))
            log(f"snapshot: {run} {f'epoch {epoch}' if bundled is None else f'weights of {weights_from}'} → {d}")
        (out / f"export-{eh}x{ew}.onnx").unlink()
    info = {"run": str(run), "epoch": epoch, "dirs": dirs}
    if weights_from is not None:
        info["weights_from"] = {"dir": str(weights_from), "sha256": export.sha256(weights_from / "model.onnx")}
    (out / "snapshot.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Export a training's best checkpoint so far for measure_models.mjs (read only).")
    ap.add_argument("run", help="run name under experiments/runs (or a run directory)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--recipe", action="append", help="int8 recipe (default: the run config's qdq versions)")
    ap.add_argument("--weights-from", type=Path, help="a bundled fp32 version directory: its weights in the config's network, "
                    "instead of the run's checkpoint")
    a = ap.parse_args(argv)
    snapshot(a.run, a.out, a.recipe, weights_from=a.weights_from)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
