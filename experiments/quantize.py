"""Static post-training int8 quantisation: a float32 ONNX model → a QDQ ONNX model that
onnxruntime's CPU execution provider runs with its int8 kernels (QLinearConv, QLinearAdd: VNNI on
this CPU).

The QDQ form: every quantised activation tensor T gets ``QuantizeLinear → DequantizeLinear`` right
after its producer (uint8, asymmetric, one scale per tensor), every quantised convolution's weight
becomes an int8 initializer behind a ``DequantizeLinear`` (symmetric; one scale per tensor or per
output channel) and its bias an int32 initializer with scale input-scale × weight-scale.
onnxruntime fuses ``DQ → Conv → (Relu) → Q`` into ``QLinearConv`` and ``DQ, DQ → Add → Q`` into
``QLinearAdd`` (a Relu before a Q whose zero point is 0 is dropped: the Q's range already clips).

Calibration (:func:`calibrate`): the float model with the tensors to quantise as extra outputs runs
in onnxruntime-node over training images (experiments/calibrate.mjs), which returns each tensor's
range and a histogram; a :class:`Recipe` turns them into scales:

- ``minmax``: the observed range (one outlier pixel stretches the scale of the whole tensor);
- ``percentile``: the range that holds all but (100 − p) % of the values on each side;
- ``mse``: the clipping range that minimises the expected squared quantisation error (rounding
  error inside the range + clipping error outside), searched on the histogram;
- ``none``: no calibration at all — scale 1 and zero point 0 for every activation, the
  quantisation parameters PyTorch's observers return when they never saw data (``prepare`` →
  ``convert`` without the calibration loop).

``data`` says what the calibration sees: ``train`` (training images, as served), ``noise``
(standard normal noise in the normalised input space, the ``torch.randn`` input of many
tutorials) or ``one`` (a single training image). ``zero_point_zero`` forces unsigned ranges
starting at 0 (negative activations clip to 0). ``fold_bn=False`` quantises a graph exported with
its BatchNormalization nodes kept (weights quantised before folding; the caller exports it so).

``keep_float`` keeps sensitive convolutions in float32: ``first`` (the convolution on the image),
``head`` (the last one, whose output is the logits before upsampling) and ``decoder`` (every conv
after the encoder: what feeds upsampling and argmax).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Recipe:
    name: str
    per_channel: bool = False
    calibration: str = "minmax"          # minmax | percentile | mse | none
    percentile: float = 99.99
    keep_float: tuple[str, ...] = ()     # first | head | decoder | node names
    quantize_add: bool = True
    int8_resize: bool = True             # bilinear upsampling inside the network on uint8 (same scale in and out)
    int8_pool: bool = False              # max pooling on uint8 (same scale in and out): no float round trip at the stem
    stem_s2d: bool = False               # the stride-2 stem as a stride-1 conv on 2×2 blocks (space_to_depth_stem), rearranged on uint8
    pool_cascade: bool = False           # pyramid pools computed from the finest one (cascade_pools)
    pool_conv: bool = False              # tiling average pools as depthwise convolutions (pools_as_convs)
    upsample_conv: str = ""              # bilinear 2× upsamplings as nearest 2× (copy | resize) + edge pad + depthwise 3×3 (upsamples_as_convs)
    concat: str = "calibrated"           # a channel concatenation's scale: calibrated | widest | shared (concat_ranges)
    weights_7bit: tuple[str, ...] = ()   # convolutions (as keep_float names them) whose weights use [-63, 63] only
    images: int = 48                     # calibration images from the training split
    data: str = "train"                  # train | noise | one
    zero_point_zero: bool = False        # uint8 ranges [0, max]: negative activations clip to 0
    fold_bn: bool = True                 # False: the graph keeps its BatchNormalization nodes (exported so)
    note: str = ""


RECIPES = {
    # the study's recipe as far as it is known: everything int8, one scale per tensor, observed ranges
    "naive": Recipe("naive", per_channel=False, calibration="minmax",
                    note="per-tensor weights, min/max ranges, every conv quantised"),
    "per-channel": Recipe("per-channel", per_channel=True, calibration="minmax",
                          note="per-channel weights, min/max ranges, every conv quantised"),
    "percentile": Recipe("percentile", per_channel=False, calibration="percentile",
                         note="per-tensor weights, 99.99th-percentile ranges"),
    "pc-percentile": Recipe("pc-percentile", per_channel=True, calibration="percentile",
                            note="per-channel weights, 99.99th-percentile ranges"),
    "pc-mse": Recipe("pc-mse", per_channel=True, calibration="mse",
                     note="per-channel weights, MSE-optimal ranges"),
    "pc-mse-float-ends": Recipe("pc-mse-float-ends", per_channel=True, calibration="mse", keep_float=("first", "head"),
                                note="per-channel weights, MSE-optimal ranges, first conv and head in float"),
    "pc-percentile-float-ends": Recipe("pc-percentile-float-ends", per_channel=True, calibration="percentile",
                                       keep_float=("first", "head"),
                                       note="per-channel weights, 99.99th-percentile ranges, first conv and head in float"),
    # the whole network in int8 end to end: the stem's max pooling on uint8 too (onnxruntime then runs
    # every layer channels-last, NhwcMaxPool included, with no float round trip or layout reorder)
    "pc-percentile-int8-pool": Recipe("pc-percentile-int8-pool", per_channel=True, calibration="percentile", int8_pool=True,
                                      note="per-channel weights, 99.99th-percentile ranges, every conv and the max pooling int8"),
    # … and the stem's 7×7 stride-2 convolution on 3 channels as the equal 4×4 convolution on 2×2 blocks
    # (12 channels), the shape onnxruntime's int8 kernel is fast at
    "pc-percentile-s2d": Recipe("pc-percentile-s2d", per_channel=True, calibration="percentile", int8_pool=True, stem_s2d=True,
                                note="per-channel weights, 99.99th-percentile ranges, everything int8, stem on 2x2 blocks"),
}


def _derive(base: str, name: str, note: str, **changes) -> None:
    """Registers recipe ``name``: recipe ``base`` with ``changes``."""
    RECIPES[name] = replace(RECIPES[base], name=name, note=note, **changes)


# … and the pyramid's average pools computed from the finest one's cells (one pass over the map)
_derive("pc-percentile-s2d", "pc-percentile-s2d-cascade", pool_cascade=True,
        note="per-channel weights, 99.99th-percentile ranges, everything int8, stem on 2x2 blocks, pyramid pools from the "
             "finest one")
# … and those pools as depthwise convolutions (onnxruntime's int8 depthwise kernel reads the
# wide map once, fast; its uint8 average pooling is the slow one)
_derive("pc-percentile-s2d-cascade", "pc-percentile-s2d-dwpool", pool_conv=True,
        note="per-channel weights, 99.99th-percentile ranges, everything int8, stem on 2x2 blocks, pyramid pools from the "
             "finest one, as depthwise convolutions")
# … with the stem's weights in 7 bits: onnxruntime's int8 kernel for the stem on 2×2 blocks
# can saturate its int16 pair sums with large stem weights (the trained ResNet-50's, see
# docs/experiments.md); [-63, 63] cannot
_derive("pc-percentile-s2d-dwpool", "pc-percentile-s2d-dwpool-stem7", weights_7bit=("first",),
        note="per-channel weights, 99.99th-percentile ranges, everything int8, stem on 2x2 blocks with 7-bit weights, "
             "pyramid pools from the finest one, as depthwise convolutions")
# … and each channel concatenation with one scale for its inputs and output (a plain copy)
_derive("pc-percentile-s2d-dwpool-stem7", "pc-percentile-s2d-dwpool-stem7-cat", concat="shared",
        note="per-channel weights, 99.99th-percentile ranges, everything int8, stem on 2x2 blocks with 7-bit weights, "
             "pyramid pools from the finest one, as depthwise convolutions, concatenations on one scale")
# … and each bilinear 2× upsampling as a nearest one (a uint8 copy) followed by the fixed
# depthwise [1/4, 1/2, 1/4]² filter with edge padding (QLinearConv) instead of onnxruntime's
# element-by-element uint8 bilinear Resize
_derive("pc-percentile-s2d-dwpool-stem7", "pc-percentile-s2d-dwpool-stem7-up", upsample_conv="copy",
        note="per-channel weights, 99.99th-percentile ranges, everything int8, stem on 2x2 blocks with 7-bit weights, "
             "pyramid pools from the finest one, as depthwise convolutions, bilinear 2x upsamplings as nearest 2x + "
             "depthwise 3x3 convolutions")
# … the same with the nearest upsampling as onnxruntime's Resize (slower than the bilinear one
# it replaces in channels-last uint8; kept to reproduce that measurement)
_derive("pc-percentile-s2d-dwpool-stem7", "pc-percentile-s2d-dwpool-stem7-up-resize", upsample_conv="resize",
        note="as pc-percentile-s2d-dwpool-stem7-up, the nearest 2x upsampling as a Resize")

# Naive recipes that a study could plausibly have run (experiments/collapse.py measures which of
# them makes the network stop finding advertising, and why); not rows of the study table.
NAIVE_VARIANTS = {
    "naive-one-image": Recipe("naive-one-image", data="one", note="the naive recipe calibrated on a single training image"),
    "naive-noise": Recipe("naive-noise", data="noise", note="the naive recipe calibrated on random noise images"),
    "naive-zp0": Recipe("naive-zp0", zero_point_zero=True, note="the naive recipe with unsigned ranges from 0 (negative activations clip to 0)"),
    "naive-bn-unfolded": Recipe("naive-bn-unfolded", fold_bn=False, note="the naive recipe on the graph with batch-norm not folded"),
    "naive-uncalibrated": Recipe("naive-uncalibrated", calibration="none",
                                 note="no calibration: scale 1, zero point 0 for every activation (PyTorch's default)"),
    "naive-zp0-bn-unfolded": Recipe("naive-zp0-bn-unfolded", zero_point_zero=True, fold_bn=False,
                                    note="calibrated ranges, but unsigned from 0 and batch-norm not folded"),
    "naive-uncalibrated-bn-unfolded": Recipe("naive-uncalibrated-bn-unfolded", calibration="none", fold_bn=False,
                                             note="no calibration and batch-norm not folded (PyTorch's prepare → convert "
                                                  "without fuse_modules and without the calibration loop)"),
}
RECIPES.update(NAIVE_VARIANTS)


# ------------------------------------------------------------------------------------ graph plan

@dataclass
class Plan:
    convs: list[onnx.NodeProto] = field(default_factory=list)   # quantised convolutions
    adds: list[onnx.NodeProto] = field(default_factory=list)    # quantised additions
    tensors: list[str] = field(default_factory=list)            # activations that get Q/DQ
    non_negative: set[str] = field(default_factory=set)         # Relu outputs (zero point 0)
    same_as: dict[str, str] = field(default_factory=dict)       # tensor → tensor whose scale it shares
    concats: list[tuple[str, list[str], str]] = field(default_factory=list)  # (output, inputs, the input with most channels)


def _maps(g: onnx.GraphProto):
    producer = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    return producer, consumers


def _float_convs(g: onnx.GraphProto, keep: tuple[str, ...]) -> set[str]:
    producer, consumers = _maps(g)
    convs = [n for n in g.node if n.op_type == "Conv"]
    names = {n.name for n in convs if n.name in keep}
    graph_in = {i.name for i in g.input}
    if "first" in keep:  # the convolution on the image, or on its 2×2 blocks (space_to_depth_stem)
        blocks = {n.output[0] for n in g.node if n.op_type == "SpaceToDepth" and n.input[0] in graph_in}
        names |= {n.name for n in convs if n.input[0] in graph_in | blocks}
    if "head" in keep:
        names.add(convs[-1].name)
    if "decoder" in keep:
        names |= {n.name for n in convs if "decoder" in n.name or "/psp" in n.name or "fusion" in n.name or "head" in n.name}
    return names


def inline_identities(model: onnx.ModelProto) -> onnx.ModelProto:
    """The exporter shares equal initializers through Identity nodes; give each user its own copy
    (a quantised weight or bias must be an initializer of its convolution)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    keep = []
    for n in g.node:
        if n.op_type == "Identity" and n.input[0] in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[n.input[0]])
            t.name = n.output[0]
            g.initializer.append(t)
        else:
            keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    return m


def space_to_depth_stem(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same network with its stem convolution (k×k, stride 2, on the RGB image) computed as a
    ⌈k/2⌉×⌈k/2⌉ stride-1 convolution on the image rearranged into 2×2 blocks (SpaceToDepth: 12
    channels at half the resolution). The two are equal: the k×k kernel, padded in front to an even
    size, is split into its four phases. onnxruntime's int8 convolutions run a kernel that handles
    few input channels badly (3, or 4, channels × 49 kernel positions: several times slower than
    float); 12 channels × 16 positions is the same arithmetic in the shape its VNNI kernel is made for."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    image = g.input[0].name
    inits = {i.name: i for i in g.initializer}
    readers = [n for n in g.node if image in n.input]
    if len(readers) != 1 or readers[0].op_type != "Conv" or readers[0].input[1] not in inits:
        raise ValueError("space_to_depth_stem: the image must be read by one convolution with constant weights")
    conv = readers[0]
    attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    w = numpy_helper.to_array(inits[conv.input[1]])
    o, c, kh, kw = w.shape
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if (list(attrs.get("strides", [1, 1])) != [2, 2] or attrs.get("group", 1) != 1 or list(attrs.get("dilations", [1, 1])) != [1, 1]
            or kh != kw or pads[0] != pads[2] or pads[1] != pads[3] or pads[0] != pads[1] or attrs.get("auto_pad", b"NOTSET") != b"NOTSET"):
        raise ValueError(f"space_to_depth_stem: {conv.name} is not a square stride-2 convolution with symmetric padding")
    p = pads[0]
    # pad the kernel in front so that its first tap lands on an even input row/column: tap t of
    # the even kernel reads input 2·y − p − front + t
    front = p % 2
    k2 = kh + front + (kh + front) % 2
    we = np.zeros((o, c, k2, k2), w.dtype)
    we[:, :, front:front + kh, front:front + kw] = w
    # SpaceToDepth's channel order: (row phase · 2 + column phase) · C + c
    ws = we.reshape(o, c, k2 // 2, 2, k2 // 2, 2).transpose(0, 3, 5, 1, 2, 4).reshape(o, 4 * c, k2 // 2, k2 // 2)
    begin = (p + front) // 2
    end = k2 // 2 - 1 - begin
    if end < 0:
        raise ValueError(f"space_to_depth_stem: {conv.name}: padding {p} is larger than its kernel allows")
    inits[conv.input[1]].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(ws), conv.input[1]))
    s2d = f"{image}_s2d"
    del conv.attribute[:]
    conv.attribute.extend([helper.make_attribute("kernel_shape", [k2 // 2, k2 // 2]), helper.make_attribute("strides", [1, 1]),
                           helper.make_attribute("pads", [begin, begin, end, end])])
    conv.input[0] = s2d
    g.node.insert(0, helper.make_node("SpaceToDepth", [image], [s2d], name=f"{image}_SpaceToDepth", blocksize=2))
    return m


def _constant(g: onnx.GraphProto, name: str) -> np.ndarray | None:
    for i in g.initializer:
        if i.name == name:
            return numpy_helper.to_array(i)
    for n in g.node:
        if n.op_type == "Constant" and n.output[0] == name and n.attribute[0].name == "value":
            return numpy_helper.to_array(n.attribute[0].t)
    return None


def _drop_dead(g: onnx.GraphProto) -> None:
    """Remove nodes none of whose outputs is read (repeatedly: a Constant that fed only them too)."""
    while True:
        read = {i for n in g.node for i in n.input} | {o.name for o in g.output}
        keep = [n for n in g.node if any(o in read for o in n.output)]
        if len(keep) == len(g.node):
            return
        del g.node[:]
        g.node.extend(keep)


def cascade_pools(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same network with its pyramid pooling computed coarse from fine: average pools that
    tile one tensor in blocks (kernel = stride, no padding, the map divisible by the block) read
    the output of the finest of them, in blocks of its cells, instead of the whole map. A mean of
    equal blocks is the mean of their means, so the float network is unchanged; onnxruntime's
    uint8 average pooling is slow on a wide map (every pool reads it once) and cheap on a 6×6
    one. An all-zero Pad in front of a pool (the exporter's) is skipped."""
    m = onnx.shape_inference.infer_shapes(model)
    g = m.graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in [*g.value_info, *g.input, *g.output]}
    producer = {o: n for n in g.node for o in n.output}
    groups: dict[str, list[tuple[onnx.NodeProto, list[int]]]] = {}
    for n in g.node:
        if n.op_type != "AveragePool":
            continue
        a = {t.name: helper.get_attribute_value(t) for t in n.attribute}
        k = list(a.get("kernel_shape", []))
        if (len(k) != 2 or list(a.get("strides", [1, 1])) != k or any(a.get("pads", [0, 0, 0, 0])) or a.get("ceil_mode", 0)
                or a.get("auto_pad", b"NOTSET") != b"NOTSET"):
            continue
        src = n.input[0]
        pad = producer.get(src)
        if pad is not None and pad.op_type == "Pad":
            mode = next((helper.get_attribute_value(t) for t in pad.attribute if t.name == "mode"), b"constant")
            pads = _constant(g, pad.input[1]) if len(pad.input) > 1 else None
            if mode != b"constant" or pads is None or pads.any() or (len(pad.input) > 3 and pad.input[3]):
                continue
            src = pad.input[0]
        hw = shapes.get(src, [])[2:]
        if len(hw) != 2 or 0 in hw or hw[0] % k[0] or hw[1] % k[1]:
            continue
        groups.setdefault(src, []).append((n, k))
    for src, pools in groups.items():
        fine, kf = min(pools, key=lambda p: p[1][0] * p[1][1])
        fine.input[0] = src
        for n, k in pools:
            if n is fine or k[0] % kf[0] or k[1] % kf[1]:
                continue
            block = [k[0] // kf[0], k[1] // kf[1]]
            n.input[0] = fine.output[0]
            del n.attribute[:]
            n.attribute.extend([helper.make_attribute("kernel_shape", block), helper.make_attribute("strides", block),
                                helper.make_attribute("pads", [0, 0, 0, 0])])
        # the finest pool now runs first (the others read it); the graph's nodes are copied here
        nodes = [onnx.NodeProto() for _ in g.node]
        for copy, n in zip(nodes, g.node):
            copy.CopyFrom(n)
        i = next(j for j, n in enumerate(nodes) if n.name == fine.name)
        first = min(j for j, n in enumerate(nodes) if n.name in {p.name for p, _ in pools})
        nodes.insert(first, nodes.pop(i))
        del g.node[:]
        g.node.extend(nodes)
    _drop_dead(g)
    del g.value_info[:]
    return m


def pools_as_convs(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same network with each average pool that tiles its input (kernel = stride, no padding)
    computed as a depthwise convolution (one group per channel, no bias) whose weights are all
    1/(kh·kw): the mean of each block, so the float network is unchanged. Quantised, the weights
    are exact (one value per channel, the whole int8 range's 127) and the pool becomes a
    QLinearConv, which onnxruntime runs as one fast pass over the map where its uint8 average
    pooling (QLinearAveragePool) is slow on a wide one; the output keeps its calibrated range."""
    m = onnx.shape_inference.infer_shapes(model)
    g = m.graph
    channels = {v.name: v.type.tensor_type.shape.dim[1].dim_value for v in [*g.value_info, *g.input]
                if len(v.type.tensor_type.shape.dim) == 4}
    for n in g.node:
        if n.op_type != "AveragePool":
            continue
        a = {t.name: helper.get_attribute_value(t) for t in n.attribute}
        k = list(a.get("kernel_shape", []))
        c = channels.get(n.input[0], 0)
        if (len(k) != 2 or list(a.get("strides", [1, 1])) != k or any(a.get("pads", [0, 0, 0, 0])) or a.get("ceil_mode", 0)
                or a.get("auto_pad", b"NOTSET") != b"NOTSET" or not c):
            continue
        w = f"{n.name.replace('/', '_').strip('_')}_mean_w"
        g.initializer.append(numpy_helper.from_array(np.full((c, 1, k[0], k[1]), 1.0 / (k[0] * k[1]), np.float32), w))
        n.op_type = "Conv"
        n.input.append(w)
        del n.attribute[:]
        n.attribute.extend([helper.make_attribute("kernel_shape", k), helper.make_attribute("strides", k),
                            helper.make_attribute("pads", [0, 0, 0, 0]), helper.make_attribute("group", c)])
    del g.value_info[:]
    return m


def _static_value(g: onnx.GraphProto, name: str, shapes: dict[str, list[int]], depth: int = 0) -> np.ndarray | None:
    """The value of an integer tensor computed from constants and static shapes (the exporter's
    ``Shape → Slice → Concat`` for an interpolation's output size), or None."""
    c = _constant(g, name)
    if c is not None or depth > 8:
        return c
    n = next((x for x in g.node if name in x.output), None)
    if n is None:
        return None
    ins = [_static_value(g, i, shapes, depth + 1) if i else None for i in n.input]
    a = {t.name: helper.get_attribute_value(t) for t in n.attribute}
    if n.op_type == "Shape":
        dims = shapes.get(n.input[0], [])
        return np.array(dims, np.int64) if dims and all(d > 0 for d in dims) and not a else None
    if any(v is None for v, i in zip(ins, n.input) if i):
        return None
    if n.op_type == "Concat":
        return np.concatenate([v.reshape(-1) if v.ndim == 0 else v for v in ins], a.get("axis", 0))
    if n.op_type == "Cast":
        return ins[0].astype(np.int64)
    if n.op_type == "Unsqueeze" and len(ins) == 2 and ins[0].ndim == 0 and list(ins[1]) == [0]:
        return ins[0].reshape(1)
    if n.op_type == "Slice" and len(ins) >= 3 and ins[0].ndim == 1:
        axes = ins[3] if len(ins) > 3 and ins[3] is not None else np.array([0])
        steps = ins[4] if len(ins) > 4 and ins[4] is not None else np.array([1])
        if list(axes) != [0]:
            return None
        return ins[0][int(ins[1][0]):int(min(ins[2][0], len(ins[0]))):int(steps[0])]
    return None


UPSAMPLE_FILTER = np.outer([1, 2, 1], [1, 2, 1]).astype(np.float32) / 16


def _nearest_2x(x: str, y: str, shape: list[int], base: str, how: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes (and their constants) that copy every pixel of ``x`` (N×C×H×W, ``shape``) into a 2×2
    block of ``y``. ``resize``: a nearest Resize (output pixel o reads input floor(o / 2)).
    ``copy``: the same as a rearrangement of channels-last bytes — Transpose to N×H×W×C, Reshape
    to N×H×1×W×1×C, Expand to N×H×2×W×2×C, Reshape to N×2H×2W×C, Transpose back. onnxruntime runs
    its int8 convolutions channels-last and cancels the two transposes against its own, leaving
    block copies, where its channels-last uint8 nearest Resize reads the input element by element."""
    n, c, h, w = shape
    if how == "resize":
        return ([helper.make_node("Resize", [x, "", f"{base}_x2"], [y], name=f"{base}_nearest", mode="nearest",
                                  coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
                [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), f"{base}_x2")])
    if how != "copy":
        raise ValueError(f"unknown nearest upsampling {how!r}")
    shapes = {"blocks": [n, h, 1, w, 1, c], "copies": [n, h, 2, w, 2, c], "rows": [n, 2 * h, 2 * w, c]}
    return ([helper.make_node("Transpose", [x], [f"{base}_nhwc"], name=f"{base}_nhwc", perm=[0, 2, 3, 1]),
             helper.make_node("Reshape", [f"{base}_nhwc", f"{base}_blocks"], [f"{base}_blocks_v"], name=f"{base}_blocks"),
             helper.make_node("Expand", [f"{base}_blocks_v", f"{base}_copies"], [f"{base}_copies_v"], name=f"{base}_copies"),
             helper.make_node("Reshape", [f"{base}_copies_v", f"{base}_rows"], [f"{base}_rows_v"], name=f"{base}_rows"),
             helper.make_node("Transpose", [f"{base}_rows_v"], [y], name=f"{base}_nchw", perm=[0, 3, 1, 2])],
            [numpy_helper.from_array(np.array(v, np.int64), f"{base}_{k}") for k, v in shapes.items()])


def upsamples_as_convs(model: onnx.ModelProto, nearest: str = "copy") -> onnx.ModelProto:
    """The same network with each bilinear 2× upsampling (Resize, mode linear, half_pixel
    coordinates, output exactly twice the input's height and width) computed as a nearest 2×
    upsampling (every pixel copied into a 2×2 block; ``nearest``: how, see :func:`_nearest_2x`),
    an edge padding of one pixel and a depthwise 3×3 convolution without padding whose weights are
    [1/4, 1/2, 1/4] ⊗ [1/4, 1/2, 1/4]. The two are equal: output row 2i of the bilinear one is
    ¾·x[i] + ¼·x[i−1] (x[−1] clamped to x[0]), and the filter over the copied rows gives
    ¼·x[i−1] + ½·x[i] + ¼·x[i]; the same for 2i+1 and columns, and the edge padding is the clamp.
    Quantised, the copies and the padding move uint8 (same scale) and the filter is a QLinearConv
    with exact weights (16, 32, 64 on a scale of 1/256), where onnxruntime's uint8 bilinear Resize
    computes every output element on its own. Any other Resize (another mode, coordinate
    transformation or factor) is left alone."""
    m = onnx.shape_inference.infer_shapes(model)
    g = m.graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in [*g.value_info, *g.input, *g.output]}
    nodes = []
    for n in g.node:
        a = {t.name: helper.get_attribute_value(t) for t in n.attribute}
        x = shapes.get(n.input[0], []) if n.op_type == "Resize" else []
        if (n.op_type != "Resize" or a.get("mode", b"nearest") != b"linear" or a.get("antialias", 0)
                or a.get("coordinate_transformation_mode", b"half_pixel") != b"half_pixel"
                or len(x) != 4 or not all(d > 0 for d in x)):
            nodes.append(n)
            continue
        scales = _static_value(g, n.input[2], shapes) if len(n.input) > 2 and n.input[2] else None
        sizes = _static_value(g, n.input[3], shapes) if len(n.input) > 3 and n.input[3] else None
        twice = [x[0], x[1], 2 * x[2], 2 * x[3]]
        if not ((scales is not None and scales.size and list(scales.astype(np.float64)) == [1.0, 1.0, 2.0, 2.0])
                or (sizes is not None and list(sizes) == twice)):
            nodes.append(n)
            continue
        c = x[1]
        base = n.name.replace("/", "_").strip("_") or n.output[0].replace("/", "_").strip("_")
        up, edge = f"{base}_nearest_v", f"{base}_edge"
        copies, consts = _nearest_2x(n.input[0], up, x, base, nearest)
        g.initializer.extend([*consts, numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), f"{base}_pads"),
                              numpy_helper.from_array(np.tile(UPSAMPLE_FILTER, (c, 1, 1, 1)), f"{base}_filter")])
        nodes += copies
        nodes.append(helper.make_node("Pad", [up, f"{base}_pads"], [edge], name=f"{n.name}_edge", mode="edge"))
        nodes.append(helper.make_node("Conv", [edge, f"{base}_filter"], [n.output[0]], name=f"{n.name}_filter",
                                      kernel_shape=[3, 3], pads=[0, 0, 0, 0], group=c))
    del g.node[:]
    g.node.extend(nodes)
    _drop_dead(g)
    del g.value_info[:]
    return m


def plan(model: onnx.ModelProto, recipe: Recipe) -> Plan:
    g = model.graph
    inits = {i.name for i in g.initializer}
    producer, consumers = _maps(g)
    keep = _float_convs(g, recipe.keep_float)
    p = Plan()
    want: list[str] = []

    def out_tensor(n: onnx.NodeProto) -> str:
        y = n.output[0]
        cs = consumers.get(y, [])
        if len(cs) == 1 and cs[0].op_type == "Relu":
            p.non_negative.add(cs[0].output[0])
            return cs[0].output[0]
        return y

    for n in g.node:
        if n.op_type == "Conv" and n.name not in keep and n.input[1] in inits:
            p.convs.append(n)
            want += [n.input[0], out_tensor(n)]
        elif n.op_type == "Add" and recipe.quantize_add and not any(i in inits for i in n.input):
            p.adds.append(n)
            want += [*n.input, out_tensor(n)]
    for n in g.node:  # outputs of a Relu whose input is quantised are non-negative too
        if n.op_type in ("Relu", "MaxPool") and n.input[0] in p.non_negative:
            p.non_negative.add(n.output[0])
    shared = (("Resize", "Upsample") if recipe.int8_resize else ()) + (("MaxPool",) if recipe.int8_pool else ())
    # the rearrangements and the edge padding of an upsampling as a convolution (upsamples_as_convs)
    movers = ("Transpose", "Reshape", "Expand", "Pad") if recipe.upsample_conv else ()
    if shared or movers:
        # an upsampling or max pooling between two quantised tensors runs on uint8 when its input
        # and output share one scale (onnxruntime drops the DQ/Q around it); so do the copies and
        # edge padding of an upsampling as a convolution, one after the other
        wanted = set(want)

        def shares(n: onnx.NodeProto) -> bool:
            if n.op_type == "Pad":
                return "Pad" in movers and next((helper.get_attribute_value(a) for a in n.attribute if a.name == "mode"), b"") == b"edge"
            return n.op_type in shared or n.op_type in movers

        for n in g.node:
            if shares(n) and n.input[0] in wanted and n.output[0] not in {o.name for o in g.output}:
                want.append(n.output[0])
                if movers:
                    wanted.add(n.output[0])
                p.same_as[n.output[0]] = n.input[0]
                if n.input[0] in p.non_negative:
                    p.non_negative.add(n.output[0])
    graph_in = {i.name for i in g.input}
    if recipe.stem_s2d:
        # the image is quantised before its rearrangement into 2×2 blocks, which then moves uint8
        # (a quarter of the bytes) and shares the blocks' scale: the two are the same values
        wanted = set(want)
        for n in g.node:
            if n.op_type == "SpaceToDepth" and n.input[0] in graph_in and n.output[0] in wanted:
                want.insert(0, n.input[0])
                p.same_as[n.output[0]] = n.input[0]
    seen = set()
    for t in want:
        if t not in seen and (t in producer or t in graph_in):
            seen.add(t)
            p.tensors.append(t)
    # channel concatenations whose inputs and output are all quantised: onnxruntime runs them as
    # QLinearConcat, which copies an input that has the output's scale and zero point and
    # requantises the others element by element
    channels = {v.name: v.type.tensor_type.shape.dim[1].dim_value
                for v in onnx.shape_inference.infer_shapes(model).graph.value_info if len(v.type.tensor_type.shape.dim) == 4}

    def width(t: str) -> int:  # an upsampled tensor's shape may be unknown: its input's channels
        while t in p.same_as and not channels.get(t):
            t = p.same_as[t]
        return channels.get(t, 0)

    for n in g.node:
        axis = next((helper.get_attribute_value(a) for a in n.attribute if a.name == "axis"), None)
        if n.op_type == "Concat" and axis == 1 and n.output[0] in seen and all(i in seen for i in n.input):
            p.concats.append((n.output[0], list(n.input), max(n.input, key=width)))
    return p


# ------------------------------------------------------------------------------------ calibration

def node() -> str:
    exe = shutil.which("node")
    if not exe:
        raise RuntimeError("node not found: install Node.js 20 (scripts/setup.sh) to calibrate with onnxruntime-node")
    return exe


def calibrate(model: onnx.ModelProto, tensors: list[str], images: np.ndarray, bins: int = 2048, optimize: bool = False) -> dict:
    """Range and histogram of every tensor over ``images`` (N×3×H×W float32), by onnxruntime-node
    (``optimize``: the graph as served, fused, instead of node by node)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    outs = {o.name for o in m.graph.output}
    for t in tensors:
        if t not in outs:
            m.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(m, os.path.join(tmp, "calib.onnx"))
        np.ascontiguousarray(images, np.float32).tofile(os.path.join(tmp, "images.f32"))
        subprocess.run([node(), str(REPO / "experiments" / "calibrate.mjs"), "--model", os.path.join(tmp, "calib.onnx"),
                        "--inputs", os.path.join(tmp, "images.f32"), "--count", str(len(images)), "--bins", str(bins),
                        "--out", os.path.join(tmp, "stats.json"), "--optimize", "1" if optimize else "0"], cwd=REPO, check=True)
        return json.loads(Path(tmp, "stats.json").read_text())


def _edges(s: dict) -> tuple[np.ndarray, np.ndarray]:
    counts = np.asarray(s["bins"], np.float64)
    edges = np.linspace(s["min"], s["max"], len(counts) + 1)
    return counts, edges


def _percentile_range(s: dict, p: float) -> tuple[float, float]:
    counts, edges = _edges(s)
    c = np.cumsum(counts) / max(counts.sum(), 1)
    tail = (100 - p) / 100
    lo = edges[int(np.searchsorted(c, tail))]
    hi = edges[min(len(counts), int(np.searchsorted(c, 1 - tail)) + 1)]
    return float(lo), float(hi)


def _mse_range(s: dict, non_negative: bool) -> tuple[float, float]:
    counts, edges = _edges(s)
    centres = (edges[:-1] + edges[1:]) / 2
    lo0, hi0 = min(s["min"], 0.0), max(s["max"], 0.0)
    best, best_err = (lo0, hi0), np.inf
    for a in np.linspace(0.05, 1.0, 96):
        for b in ([1.0] if non_negative else np.linspace(0.05, 1.0, 24)):
            hi, lo = hi0 * a, lo0 * b
            scale = max(hi - lo, 1e-12) / 255
            clipped = np.clip(centres, lo, hi)
            err = (counts * ((centres - clipped) ** 2 + np.where(centres == clipped, scale ** 2 / 12, 0))).sum()
            if err < best_err:
                best, best_err = (lo, hi), err
    return float(best[0]), float(best[1])


def ranges(stats: dict, recipe: Recipe, non_negative: set[str]) -> dict[str, tuple[float, float]]:
    out = {}
    for t, s in stats.items():
        if recipe.calibration == "minmax":
            lo, hi = s["min"], s["max"]
        elif recipe.calibration == "percentile":
            lo, hi = _percentile_range(s, recipe.percentile)
        elif recipe.calibration == "mse":
            lo, hi = _mse_range(s, t in non_negative)
        elif recipe.calibration == "none":
            lo, hi = 0.0, 255.0
        else:
            raise ValueError(f"unknown calibration {recipe.calibration!r}")
        if t in non_negative or recipe.zero_point_zero:
            lo = 0.0
        out[t] = (min(float(lo), 0.0), max(float(hi), 0.0))
    return out


def uint8_params(lo: float, hi: float) -> tuple[float, int]:
    scale = max(hi - lo, 1e-8) / 255.0
    zp = int(np.clip(round(-lo / scale), 0, 255))
    return float(scale), zp


# ------------------------------------------------------------------------------------ QDQ rewrite

def _exact_top(w: np.ndarray, top: int, per_channel: bool) -> int:
    """The int8 value of a convolution's largest weights: ``top``, or 64 when every weight is a
    multiple of 1/64 of its channel's (or the tensor's) largest, which ``top`` would round (the
    upsampling filter's 1/16, 1/8 and 1/4 as 16, 32 and 64: exact)."""
    a = np.abs(w).reshape(w.shape[0], -1).max(1)[:, None, None, None] if per_channel else np.abs(w).max()
    r = w / np.maximum(a, 1e-12)
    exact = lambda t: np.array_equal(r * t, np.round(r * t))  # noqa: E731
    return 64 if top == 127 and not exact(127) and exact(64) else top


def quantize(model: onnx.ModelProto, recipe: Recipe, act_ranges: dict[str, tuple[float, float]], p: Plan) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    producer, consumers = _maps(g)
    new_inits: list[onnx.TensorProto] = []
    qparams: dict[str, tuple[float, int]] = {}
    source: dict[str, str] = {}  # DQ output → the float tensor it stands for
    pos = {id(n): i for i, n in enumerate(g.node)}
    inserts: dict[int, list[onnx.NodeProto]] = {}  # node index → nodes to insert after it (-1: at the start)
    seven = _float_convs(g, recipe.weights_7bit)  # named on the graph before its tensors are rewired
    for t in p.tensors:
        scale, zp = uint8_params(*act_ranges[t])
        qparams[t] = (scale, zp)
        base = t.replace("/", "_").strip("_")
        new_inits += [numpy_helper.from_array(np.array(scale, np.float32), f"{base}_scale"),
                      numpy_helper.from_array(np.array(zp, np.uint8), f"{base}_zp")]
        q = helper.make_node("QuantizeLinear", [t, f"{base}_scale", f"{base}_zp"], [f"{base}_q"], name=f"{base}_Q")
        dq = helper.make_node("DequantizeLinear", [f"{base}_q", f"{base}_scale", f"{base}_zp"], [f"{base}_dq"], name=f"{base}_DQ")
        source[f"{base}_dq"] = t
        for c in consumers.get(t, []):
            for k, i in enumerate(c.input):
                if i == t:
                    c.input[k] = f"{base}_dq"
        for o in g.output:  # a graph output keeps its float tensor (and its name)
            if o.name == t:
                raise ValueError(f"{t} is a graph output; keep the head in float")
        at = pos[id(producer[t])] if t in producer else -1
        if t in p.same_as:
            # the upsampling, pooling or rearrangement itself runs on uint8: it reads its input's
            # Q output and writes this tensor's quantised form (same scale), which only needs the DQ
            up = producer[t]
            up.input[0] = p.same_as[t].replace("/", "_").strip("_") + "_q"
            up.output[0] = f"{base}_q"
            inserts.setdefault(at, []).append(dq)
        else:
            inserts.setdefault(at, []).extend([q, dq])
    by_name = {n.name: n for n in g.node}
    for conv in (by_name[c.name] for c in p.convs):  # the plan's nodes belong to the original model
        w_init = inits[conv.input[1]]
        w = numpy_helper.to_array(w_init).astype(np.float32)
        # onnxruntime's u8s8 kernels add pairs of uint8 × int8 products in int16, which saturates
        # beyond 32767: weights in [-63, 63] keep every pair inside it (255 · 63 · 2 = 32130)
        top = 63 if conv.name in seven else 127
        top = _exact_top(w, top, recipe.per_channel)
        if recipe.per_channel:
            amax = np.abs(w).reshape(w.shape[0], -1).max(1)
            ws = np.maximum(amax, 1e-12) / top
            wq = np.clip(np.round(w / ws[:, None, None, None]), -top, top).astype(np.int8)
            wzp = np.zeros(w.shape[0], np.int8)
            axis = {"axis": 0}
        else:
            ws = np.array(max(float(np.abs(w).max()), 1e-12) / top, np.float32)
            wq = np.clip(np.round(w / ws), -top, top).astype(np.int8)
            wzp = np.array(0, np.int8)
            axis = {}
        wn = conv.input[1].replace("/", "_").strip("_").replace(".", "_")
        new_inits += [numpy_helper.from_array(wq, f"{wn}_q"), numpy_helper.from_array(np.asarray(ws, np.float32), f"{wn}_scale"),
                      numpy_helper.from_array(wzp, f"{wn}_zp")]
        deqs = [helper.make_node("DequantizeLinear", [f"{wn}_q", f"{wn}_scale", f"{wn}_zp"], [f"{wn}_dq"], name=f"{wn}_DQ", **axis)]
        conv.input[1] = f"{wn}_dq"
        if len(conv.input) > 2 and conv.input[2]:
            b = numpy_helper.to_array(inits[conv.input[2]]).astype(np.float64)
            xs = qparams[source[conv.input[0]]][0]
            bs = (xs * np.asarray(ws, np.float64)) * np.ones_like(b)
            bq = np.round(b / bs).astype(np.int32)
            bn = conv.input[2].replace("/", "_").strip("_").replace(".", "_")
            new_inits += [numpy_helper.from_array(bq, f"{bn}_q"), numpy_helper.from_array(bs.astype(np.float32), f"{bn}_scale"),
                          numpy_helper.from_array(np.zeros(len(b), np.int32), f"{bn}_zp")]
            deqs.append(helper.make_node("DequantizeLinear", [f"{bn}_q", f"{bn}_scale", f"{bn}_zp"], [f"{bn}_dq"], name=f"{bn}_DQ", axis=0))
            conv.input[2] = f"{bn}_dq"
        inserts.setdefault(-1, []).extend(deqs)
    nodes = list(g.node)
    out = list(inserts.get(-1, []))
    for i, n in enumerate(nodes):
        out.append(n)
        out.extend(inserts.get(i, []))
    # a DQ whose tensor is read only by a uint8 upsampling, pooling or rearrangement (which reads the Q output
    # instead) has no consumer left; onnxruntime does not always remove it, and it would convert
    # a whole feature map to float for nothing
    read = {i for n in out for i in n.input} | {o.name for o in g.output}
    out = [n for n in out if n.op_type != "DequantizeLinear" or n.output[0] in read]
    del g.node[:]
    g.node.extend(out)
    used = {i for n in g.node for i in n.input}
    keep_inits = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep_inits + new_inits)
    return m


def shared_ranges(r: dict[str, tuple[float, float]], p: Plan) -> dict[str, tuple[float, float]]:
    """Every tensor of ``p.same_as`` gets the range of the tensor it shares its scale with; an
    uncalibrated source (a graph input) takes the range of the tensor that shares it."""
    out = dict(r)
    for t, src in p.same_as.items():
        if src not in out:
            out[src] = out[t]
        out[t] = out[src]
    return out


def concat_ranges(r: dict[str, tuple[float, float]], p: Plan, mode: str) -> dict[str, tuple[float, float]]:
    """The ranges of the plan's channel concatenations by ``mode``: ``calibrated`` leaves them;
    ``widest`` gives the output the range of its input with most channels (copied as it is, the
    others requantised); ``shared`` gives the output and every input their union (each input's
    producer then writes the output's scale and the concatenation is a plain copy), through the
    tensors whose scale an input shares (a uint8 upsampling's input). Then :func:`shared_ranges`."""
    if mode not in ("calibrated", "widest", "shared"):
        raise ValueError(f"unknown concat mode {mode!r}")
    out = dict(r)

    def root(t: str) -> str:
        while t in p.same_as:
            t = p.same_as[t]
        return t

    for y, xs, widest in p.concats if mode != "calibrated" else []:
        if mode == "widest":
            out[y] = out[root(widest)]
        else:
            members = {root(t) for t in (y, *xs)}
            lo, hi = min(out[t][0] for t in members), max(out[t][1] for t in members)
            for t in members:
                out[t] = (lo, hi)
    return shared_ranges(out, p)


def build(model: onnx.ModelProto, recipe: Recipe, images: np.ndarray, stats: dict | None = None) -> tuple[onnx.ModelProto, dict]:
    """Plan, calibrate (unless ``stats`` are given: they depend only on the model and images) and
    rewrite. Returns the QDQ model and a summary."""
    model = inline_identities(model)
    if recipe.stem_s2d:
        model = space_to_depth_stem(model)
    if recipe.pool_cascade:
        model = cascade_pools(model)
    if recipe.pool_conv:
        model = pools_as_convs(model)
    if recipe.upsample_conv:
        model = upsamples_as_convs(model, recipe.upsample_conv)
    p = plan(model, recipe)
    # a graph input that shares its scale is calibrated as that tensor (the image as its blocks);
    # one read by a quantised convolution directly is calibrated itself
    shared_inputs = {i.name for i in model.graph.input} & set(p.same_as.values())
    measured = [t for t in p.tensors if t not in shared_inputs]
    if recipe.calibration == "none":
        stats = {t: {"min": 0.0, "max": 0.0, "bins": [0]} for t in measured}
    elif recipe.data != "train" or stats is None or not set(measured) <= set(stats):
        stats = calibrate(model, measured, calibration_inputs(recipe, images))
    r = concat_ranges(shared_ranges(ranges({t: stats[t] for t in measured}, recipe, p.non_negative), p), p, recipe.concat)
    q = quantize(model, recipe, r, p)
    onnx.checker.check_model(q)
    total = sum(1 for n in model.graph.node if n.op_type == "Conv")
    summary = {"recipe": recipe.name, "note": recipe.note, "per_channel": recipe.per_channel, "calibration": recipe.calibration,
               "percentile": recipe.percentile if recipe.calibration == "percentile" else None,
               "keep_float": list(recipe.keep_float), "convs_int8": len(p.convs), "convs_total": total,
               "adds_int8": len(p.adds), "tensors_quantised": len(p.tensors),
               "calibration_images": 0 if recipe.calibration == "none" else len(calibration_inputs(recipe, images)),
               "calibration_data": recipe.data, "zero_point_zero": recipe.zero_point_zero, "fold_bn": recipe.fold_bn}
    # statistics of training images are shared between recipes and export sizes; others are not
    return q, {"summary": summary, "stats": stats if recipe.data == "train" and recipe.calibration != "none" else {}}


def calibration_inputs(recipe: Recipe, images: np.ndarray) -> np.ndarray:
    """What the recipe calibrates on: ``images`` (training images, preprocessed as served), one of
    them, or as many standard normal noise images of the same shape."""
    if recipe.data == "one":
        return images[:1]
    if recipe.data == "noise":
        return np.random.default_rng(0).standard_normal((recipe.images, *images.shape[1:])).astype(np.float32)
    if recipe.data != "train":
        raise ValueError(f"unknown calibration data {recipe.data!r}")
    return images[:recipe.images]
