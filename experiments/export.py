"""Export a trained run to a segserve model version: ONNX (fixed input size) + model.json.

Variants (the study's reductions that need no training):
- ``fp32``: the network as trained; batch-norm is folded into the preceding convolutions by the
  exporter in eval mode (so "BN folded" costs nothing at inference).
- ``fp16``: every float initializer stored as float16 with a Cast back to float32 in the graph
  (half the file; onnxruntime's CPU kernels still compute in float32).
- ``int8``: every convolution weight stored as int8 with ONE symmetric scale per tensor, dequantized
  in the graph (DequantizeLinear) — post-training weight quantization without calibration, the
  kind the study tried. Biases stay float32.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from . import dataset

REPO = dataset.ROOT.parent
SCHEMA = REPO / "proto" / "schemas" / "model.schema.json"
INPUT_NAME, OUTPUT_NAME = "input", "logits"
OPSET = 13
CLASSES = ["background", "advertising"]


def export_onnx(model: torch.nn.Module, path: Path, height: int, width: int, fold_bn: bool = True) -> onnx.ModelProto:
    """``fold_bn=False`` keeps the BatchNormalization nodes (eval statistics) instead of folding
    them into the convolutions."""
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = torch.onnx.TrainingMode.EVAL if fold_bn else torch.onnx.TrainingMode.PRESERVE
    with torch.no_grad():
        torch.onnx.export(model, torch.zeros(1, 3, height, width), str(path), input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], opset_version=OPSET, do_constant_folding=True, training=mode)
    m = onnx.load(str(path))
    m.producer_name = "segserve-experiments"
    return m


def to_fp16(m: onnx.ModelProto) -> onnx.ModelProto:
    g = m.graph
    casts, inits = [], []
    for init in g.initializer:
        if init.data_type == TensorProto.FLOAT and len(init.dims) > 0:
            arr = numpy_helper.to_array(init).astype(np.float16)
            half = numpy_helper.from_array(arr, init.name + "_fp16")
            inits.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT, name=init.name + "_cast"))
        else:
            inits.append(init)
    del g.initializer[:]
    g.initializer.extend(inits)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)
    return m


def to_int8(m: onnx.ModelProto, per_channel: bool = False) -> onnx.ModelProto:
    g = m.graph
    conv_weights = {n.input[1] for n in g.node if n.op_type == "Conv"}
    deq, inits = [], []
    for init in g.initializer:
        if init.name not in conv_weights:
            inits.append(init)
            continue
        w = numpy_helper.to_array(init).astype(np.float32)
        if per_channel:
            amax = np.abs(w).reshape(w.shape[0], -1).max(1)
            scale = np.maximum(amax, 1e-12) / 127.0
            q = np.clip(np.round(w / scale[:, None, None, None]), -127, 127).astype(np.int8)
            zp = np.zeros(w.shape[0], np.int8)
            attrs = {"axis": 0}
        else:
            scale = np.array(max(float(np.abs(w).max()), 1e-12) / 127.0, np.float32)
            q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
            zp = np.array(0, np.int8)
            attrs = {}
        inits += [numpy_helper.from_array(q, init.name + "_q"),
                  numpy_helper.from_array(np.asarray(scale, np.float32), init.name + "_scale"),
                  numpy_helper.from_array(zp, init.name + "_zp")]
        deq.append(helper.make_node("DequantizeLinear", [init.name + "_q", init.name + "_scale", init.name + "_zp"],
                                    [init.name], name=init.name + "_dequant", **attrs))
    del g.initializer[:]
    g.initializer.extend(inits)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(deq + nodes)
    return m


def save(m: onnx.ModelProto, path: Path) -> None:
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, str(path))
    onnx.checker.check_model(str(path))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def op_counts(path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in onnx.load(str(path)).graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return counts


def manifest(name: str, version: str, onnx_path: Path, height: int, width: int, metrics: dict | None,
             description: str | None, training: dict | None) -> dict:
    """model.json per docs/architecture.md#model-package."""
    out: dict = {
        "name": name,
        "version": version,
        "sha256": sha256(onnx_path),
        "input": {"name": INPUT_NAME, "height": height, "width": width, "mean": list(dataset.MEAN),
                  "std": list(dataset.STD), "scale": dataset.SCALE, "channel_order": "RGB"},
        "output": {"name": OUTPUT_NAME, "kind": "logits"},
        "classes": list(CLASSES),
    }
    if description:
        out["description"] = description
    if metrics:
        out["metrics"] = metrics
    if training:
        out["training"] = training
    validate(out)
    return out


def write_manifest(dir_: Path, man: dict) -> None:
    validate(man)
    (dir_ / "model.json").write_text(json.dumps(man, indent=2) + "\n")


# ------------------------------------------------------------- JSON Schema (the subset model.schema.json uses)

def _check(value, schema: dict, where: str, errors: list[str]) -> None:
    t = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float)}
    if t and (not isinstance(value, types[t]) or (t in ("integer", "number") and isinstance(value, bool))):
        errors.append(f"{where}: expected {t}")
        return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if len(value) > schema.get("maxLength", 1 << 30) or len(value) < schema.get("minLength", 0):
            errors.append(f"{where}: length out of range")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not np.isfinite(value):
            errors.append(f"{where}: not finite")
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: above {schema['maximum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            errors.append(f"{where}: not above {schema['exclusiveMinimum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", 1 << 30):
            errors.append(f"{where}: item count out of range")
        for i, v in enumerate(value):
            _check(v, schema.get("items", {}), f"{where}[{i}]", errors)
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for r in schema.get("required", []):
            if r not in value:
                errors.append(f"{where}: missing {r}")
        for k, v in value.items():
            if k in props:
                _check(v, props[k], f"{where}.{k}", errors)
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}: unknown key {k}")
            elif isinstance(schema.get("additionalProperties"), dict):
                _check(v, schema["additionalProperties"], f"{where}.{k}", errors)


def validate(man: dict) -> None:
    schema = json.loads(SCHEMA.read_text())
    errors: list[str] = []
    _check(man, schema, "model.json", errors)
    if errors:
        raise ValueError("; ".join(errors))
