"""The study's stack as a benchmark peer: Flask + PyTorch serving the same PSPNet.

The network is experiments/pspnet.py's PSPNet; its weights are read from the very model.onnx
segserve serves (batch-norm is already folded into the convolutions there, so the PyTorch
model gets Identity in place of each BatchNorm and biases on the convolutions — the same
arithmetic, and no advantage to either side). Pre- and post-processing as the study did it:
PIL decode, bilinear resize to the model input, normalise, forward, argmax, nearest resize
back, PNG.

    /usr/bin/python3 bench/peers/flask_pspnet.py --model models/facade-ads-full/2 [--port 0] [--threads 2]

POST /segmentator-api (multipart field ``image``) → image/png mask (class index per pixel).
Prints one JSON line {"msg": "listening", "port": …} when ready.
"""
from __future__ import annotations

import argparse
import io
import json
import socket
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from flask import Flask, Response, request
from onnx import numpy_helper
from PIL import Image
from torch import nn

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from experiments.pspnet import PSPNet  # noqa: E402  (the experiments' own network definition)


def strip_batchnorm(module: nn.Module) -> None:
    """BatchNorm → Identity and every Conv2d gets a bias, to take the folded ONNX weights."""
    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, nn.Identity())
        elif isinstance(child, nn.Conv2d) and child.bias is None:
            conv = nn.Conv2d(child.in_channels, child.out_channels, child.kernel_size, child.stride, child.padding,
                             child.dilation, child.groups, bias=True)
            setattr(module, name, conv)
        else:
            strip_batchnorm(child)


def load_onnx_weights(model: nn.Module, onnx_path: Path, height: int, width: int) -> int:
    """Copies the ONNX Conv weights into the model's convolutions in execution order."""
    graph = onnx.load(str(onnx_path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    onnx_convs = [n for n in graph.node if n.op_type == "Conv"]
    order: list[nn.Conv2d] = []
    hooks = [m.register_forward_hook(lambda mod, _i, _o: order.append(mod)) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model.eval()
        model(torch.zeros(1, 3, height, width))
    for h in hooks:
        h.remove()
    if len(order) != len(onnx_convs):
        raise SystemExit(f"architecture mismatch: {len(order)} convolutions in PyTorch, {len(onnx_convs)} in {onnx_path}")
    with torch.no_grad():
        for conv, node in zip(order, onnx_convs):
            w = inits[node.input[1]]
            if tuple(conv.weight.shape) != w.shape:
                raise SystemExit(f"architecture mismatch at {node.name}: {tuple(conv.weight.shape)} vs {w.shape}")
            conv.weight.copy_(torch.from_numpy(w.copy()))
            b = inits[node.input[2]] if len(node.input) > 2 else np.zeros(w.shape[0], np.float32)
            conv.bias.copy_(torch.from_numpy(b.copy()))
    return len(order)


def build(model_dir: Path) -> tuple[nn.Module, dict]:
    manifest = json.loads((model_dir / "model.json").read_text())
    arch = {"encoder": "resnet18", "encoder_depth": 3, "psp_out_channels": 256, "psp_use_batchnorm": False}
    arch.update({k: v for k, v in manifest.get("training", {}).get("model", {}).items() if k in arch})
    model = PSPNet(encoder=arch["encoder"], encoder_depth=int(arch["encoder_depth"]),
                   psp_out_channels=int(arch["psp_out_channels"]), psp_use_batchnorm=bool(arch["psp_use_batchnorm"]),
                   classes=len(manifest["classes"]))
    strip_batchnorm(model)
    h, w = manifest["input"]["height"], manifest["input"]["width"]
    load_onnx_weights(model, model_dir / "model.onnx", h, w)
    model.eval()
    return model, manifest


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (all cores, as the study ran it)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    model, manifest = build(Path(args.model))
    inp = manifest["input"]
    h, w = inp["height"], inp["width"]
    mean = np.array(inp["mean"], np.float32).reshape(3, 1, 1)
    std = np.array(inp["std"], np.float32).reshape(3, 1, 1)
    scale = float(inp["scale"])
    with torch.no_grad():
        model(torch.zeros(1, 3, h, w))  # warm-up, like segserve's
    load_seconds = time.perf_counter() - t0

    app = Flask("segmentator")

    @app.post("/segmentator-api")
    def segment() -> Response:
        f = request.files.get("image")
        if f is None:
            return Response(json.dumps({"error": {"code": "INVALID_INPUT", "message": "no image"}}), 400, mimetype="application/json")
        try:
            img = Image.open(f.stream).convert("RGB")
        except Exception:  # noqa: BLE001 — any decoder failure is the client's
            return Response(json.dumps({"error": {"code": "INVALID_INPUT", "message": "not an image"}}), 400, mimetype="application/json")
        size = img.size
        x = np.asarray(img.resize((w, h), Image.BILINEAR), np.float32).transpose(2, 0, 1) * scale
        x = (x - mean) / std
        with torch.no_grad():
            logits = model(torch.from_numpy(x[None]))
        mask = logits[0].argmax(0).to(torch.uint8).numpy()
        out = io.BytesIO()
        Image.fromarray(mask, "L").resize(size, Image.NEAREST).save(out, "PNG")
        return Response(out.getvalue(), 200, mimetype="image/png")

    port = args.port
    if port == 0:
        s = socket.socket()
        s.bind((args.host, 0))
        port = s.getsockname()[1]
        s.close()
    print(json.dumps({"msg": "listening", "port": port, "load_seconds": round(load_seconds, 3),
                      "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    # The study's deployment: Flask's own threaded server (one thread per request).
    app.run(host=args.host, port=port, threaded=True)


if __name__ == "__main__":
    main()
