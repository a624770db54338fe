"""The quantisation recipes' range arithmetic, including the naive variants experiments/collapse.py
measures: no calibration (PyTorch's default parameters), unsigned ranges from 0, what a recipe
calibrates on, and an export that keeps its batch-norm."""
from __future__ import annotations

import subprocess
import tempfile
import unittest
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from experiments import collapse, export, nets, quantize


def stats(lo: float, hi: float) -> dict:
    return {"min": lo, "max": hi, "bins": [1] * 8}


class RangesTest(unittest.TestCase):
    def test_ranges_by_recipe(self):
        s = {"t": stats(-3.0, 5.0), "r": stats(0.0, 2.0)}
        cases = [  # recipe, tensor, expected (lo, hi)
            (quantize.RECIPES["naive"], "t", (-3.0, 5.0)),
            (quantize.RECIPES["naive"], "r", (0.0, 2.0)),
            (quantize.RECIPES["naive-zp0"], "t", (0.0, 5.0)),     # negatives clip to 0
            (quantize.RECIPES["naive-uncalibrated"], "t", (0.0, 255.0)),
            (quantize.RECIPES["naive-uncalibrated"], "r", (0.0, 255.0)),
        ]
        for recipe, t, want in cases:
            self.assertEqual(quantize.ranges(s, recipe, {"r"})[t], want, (recipe.name, t))

    def test_uncalibrated_is_scale_1_zero_point_0(self):
        self.assertEqual(quantize.uint8_params(0.0, 255.0), (1.0, 0))
        scale, zp = quantize.uint8_params(-3.0, 5.0)
        self.assertAlmostEqual(scale, 8 / 255)
        self.assertEqual(zp, 96)  # round(3 / (8 / 255))

    def test_calibration_inputs(self):
        images = np.arange(4 * 3 * 2 * 2, dtype=np.float32).reshape(4, 3, 2, 2)
        one = quantize.calibration_inputs(quantize.RECIPES["naive-one-image"], images)
        self.assertEqual(one.shape, (1, 3, 2, 2))
        self.assertTrue((one == images[:1]).all())
        noise = quantize.calibration_inputs(quantize.RECIPES["naive-noise"], images)
        self.assertEqual(noise.shape, (quantize.RECIPES["naive-noise"].images, 3, 2, 2))
        self.assertLess(abs(float(noise.mean())), 0.5)
        self.assertTrue((quantize.calibration_inputs(quantize.RECIPES["naive"], images) == images).all())


class ZeroedShareTest(unittest.TestCase):
    def test_share_of_non_zero_values_quantised_to_zero(self):
        # 16 bins over [-4, 4] (centres ±0.25, ±0.75 … ±3.75), one value each, none exactly 0
        s = {"t": {"min": -4.0, "max": 4.0, "bins": [1] * 16, "zeros": 0}}
        cases = [  # (scale, zero point), expected share
            ((1.0, 128), 2 / 16),   # |v| ≤ 0.5 rounds to the zero point: ±0.25
            ((2.0, 128), 4 / 16),   # |v| ≤ 1: ±0.25, ±0.75
            ((1.0, 0), 9 / 16),     # zero point 0: every negative value, and 0.25
            ((2.0, 0), 10 / 16),    # … and 0.75
        ]
        for (scale, zp), want in cases:
            self.assertAlmostEqual(collapse.zeroed_share({"t": (scale, zp)}, s), want, msg=(scale, zp))


class BatchNormExportTest(unittest.TestCase):
    def test_fold_bn_false_keeps_batchnorm(self):
        torch.manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU()).eval()
        with tempfile.TemporaryDirectory() as tmp:
            folded = export.export_onnx(m, Path(tmp) / "a.onnx", 8, 8)
            kept = export.export_onnx(m, Path(tmp) / "b.onnx", 8, 8, fold_bn=False)
        self.assertNotIn("BatchNormalization", [n.op_type for n in folded.graph.node])
        self.assertIn("BatchNormalization", [n.op_type for n in kept.graph.node])


def space_to_depth(x: np.ndarray, b: int = 2) -> np.ndarray:
    """ONNX SpaceToDepth: channel (row phase · b + column phase) · C + c."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4).reshape(n, c * b * b, h // b, w // b)


def stem_net(k: int, pad: int) -> torch.nn.Module:
    torch.manual_seed(k)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, k, stride=2, padding=pad), torch.nn.ReLU(), torch.nn.MaxPool2d(3, 2, 1),
                               torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.Upsample(scale_factor=4, mode="bilinear")).eval()


def run_stem(g: onnx.GraphProto, x: torch.Tensor) -> torch.Tensor:
    """The first convolution of ``g`` applied to ``x`` as the graph says (SpaceToDepth by the
    ONNX definition, then Conv with its attributes)."""
    inits = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in g.initializer}
    for n in g.node:
        if n.op_type == "SpaceToDepth":
            x = torch.from_numpy(space_to_depth(x.numpy(), helper.get_attribute_value(n.attribute[0])))
        elif n.op_type == "Conv":
            a = {t.name: helper.get_attribute_value(t) for t in n.attribute}
            top, left, bottom, right = a.get("pads", [0, 0, 0, 0])
            x = torch.nn.functional.pad(x, (left, right, top, bottom))
            return torch.nn.functional.conv2d(x, inits[n.input[1]], inits[n.input[2]], stride=a.get("strides", [1, 1]))
    raise AssertionError("no convolution")


class StemSpaceToDepthTest(unittest.TestCase):
    def test_same_outputs_for_stem_shapes(self):
        for k, pad in ((7, 3), (3, 1), (5, 2), (4, 1)):
            net = stem_net(k, pad)
            with tempfile.TemporaryDirectory() as tmp:
                m = quantize.inline_identities(export.export_onnx(net, Path(tmp) / "m.onnx", 16, 24))
            s2d = quantize.space_to_depth_stem(m)
            onnx.checker.check_model(s2d)
            self.assertEqual([n.op_type for n in s2d.graph.node[:2]], ["SpaceToDepth", "Conv"], (k, pad))
            conv = s2d.graph.node[1]
            self.assertEqual(helper.get_attribute_value(next(a for a in conv.attribute if a.name == "strides")), [1, 1])
            x = torch.randn(2, 3, 16, 24)
            with torch.no_grad():
                want = net[0](x)
            got = run_stem(s2d.graph, x)
            self.assertEqual(got.shape, want.shape, (k, pad))
            self.assertLess(float((got - want).abs().max()), 1e-4, (k, pad))

    def test_refuses_a_stem_it_cannot_rewrite(self):
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=1, padding=1)).eval()
        with tempfile.TemporaryDirectory() as tmp:
            m = quantize.inline_identities(export.export_onnx(net, Path(tmp) / "m.onnx", 8, 8))
        with self.assertRaisesRegex(ValueError, "stride-2"):
            quantize.space_to_depth_stem(m)


def quantise(x: np.ndarray, scale: float, zp: int) -> np.ndarray:
    """ONNX QuantizeLinear to uint8 (round half to even, saturate)."""
    return np.clip(np.rint(x / np.float32(scale)) + zp, 0, 255).astype(np.uint8)


class Uint8SpaceToDepthTest(unittest.TestCase):
    def test_the_image_is_quantised_before_its_blocks_with_their_range(self):
        recipe = quantize.RECIPES["pc-percentile-s2d"]
        with tempfile.TemporaryDirectory() as tmp:
            m = quantize.space_to_depth_stem(quantize.inline_identities(export.export_onnx(stem_net(7, 3), Path(tmp) / "m.onnx", 16, 24)))
        p = quantize.plan(m, recipe)
        image, blocks = m.graph.input[0].name, m.graph.node[0].output[0]
        self.assertEqual(p.same_as[blocks], image)
        # the blocks are calibrated (the image is not: it takes their range)
        r = quantize.shared_ranges({blocks: (-2.0, 3.0), **{t: (0.0, 1.0) for t in p.tensors if t not in (image, blocks)}}, p)
        self.assertEqual(r[image], (-2.0, 3.0))
        g = quantize.quantize(m, recipe, r, p).graph
        producer = {o: n for n in g.node for o in n.output}
        inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        s2d = next(n for n in g.node if n.op_type == "SpaceToDepth")
        q = producer[s2d.input[0]]
        self.assertEqual((q.op_type, q.input[0]), ("QuantizeLinear", image))
        conv = next(n for n in g.node if n.op_type == "Conv")
        dq = producer[conv.input[0]]
        self.assertEqual((dq.op_type, dq.input[0]), ("DequantizeLinear", s2d.output[0]))
        scale, zp = float(inits[q.input[1]]), int(inits[q.input[2]])
        self.assertEqual((scale, zp), (float(inits[dq.input[1]]), int(inits[dq.input[2]])))
        self.assertAlmostEqual(scale, quantize.uint8_params(-2.0, 3.0)[0], places=6)
        self.assertEqual(zp, quantize.uint8_params(-2.0, 3.0)[1])
        # what the stem convolution reads (the graph: Q, then SpaceToDepth on uint8) is what the
        # float graph's blocks quantised with the blocks' calibrated range give: equal bytes
        x = np.random.default_rng(1).uniform(-2.5, 3.5, (2, 3, 16, 24)).astype(np.float32)
        np.testing.assert_array_equal(space_to_depth(quantise(x, scale, zp)), quantise(space_to_depth(x), *quantize.uint8_params(-2.0, 3.0)))
        read = {i for n in g.node for i in n.input} | {o.name for o in g.output}
        self.assertEqual([n.name for n in g.node if n.op_type == "DequantizeLinear" and n.output[0] not in read], [])


class PoolCascadeTest(unittest.TestCase):
    def graph(self, h: int, w: int) -> tuple[onnx.ModelProto, onnx.ModelProto]:
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1), nets.Pyramid(8, 4)).eval()
        with tempfile.TemporaryDirectory() as tmp:
            m = quantize.inline_identities(export.export_onnx(net, Path(tmp) / "m.onnx", h, w))
        return m, quantize.cascade_pools(m)

    def test_coarse_pools_read_the_finest_and_give_the_same_means(self):
        m, c = self.graph(12, 18)
        onnx.checker.check_model(c)
        pools = [n for n in c.graph.node if n.op_type == "AveragePool"]
        self.assertEqual(len(pools), 4)
        self.assertEqual([n.op_type for n in c.graph.node if n.op_type == "Pad"], [])  # the exporter's zero Pads are gone
        kernels = {n.output[0]: helper.get_attribute_value(next(a for a in n.attribute if a.name == "kernel_shape")) for n in pools}
        fine = next(n for n in pools if kernels[n.output[0]] == [2, 3])  # 6×6 cells of the 12×18 map
        src = fine.input[0]
        self.assertEqual({n.input[0] for n in pools if n is not fine}, {fine.output[0]})
        self.assertEqual(sorted(kernels[n.output[0]] for n in pools if n is not fine), [[2, 2], [3, 3], [6, 6]])
        # the pools as the rewritten graph wires them, against the adaptive pools of the network
        x = torch.randn(1, 8, 12, 18)
        values = {src: x}
        for n in pools:  # in graph order: the finest first
            k = kernels[n.output[0]]
            values[n.output[0]] = torch.nn.functional.avg_pool2d(values[n.input[0]], k, k)
        for n in pools:
            y = values[n.output[0]]
            want = torch.nn.functional.adaptive_avg_pool2d(x, y.shape[-2:])
            self.assertLess(float((y - want).abs().max()), 1e-6, n.name)
        # the rest of the graph is untouched
        self.assertEqual(sorted(n.op_type for n in m.graph.node if n.op_type not in ("AveragePool", "Pad", "Constant")),
                         sorted(n.op_type for n in c.graph.node if n.op_type not in ("AveragePool", "Pad", "Constant")))

    def test_pools_that_do_not_tile_the_finest_are_left_alone(self):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1), nets.Pyramid(8, 4, bins=(2, 3))).eval()
        with tempfile.TemporaryDirectory() as tmp:
            m = quantize.inline_identities(export.export_onnx(net, Path(tmp) / "m.onnx", 12, 18))
        c = quantize.cascade_pools(m)
        pools = [n for n in c.graph.node if n.op_type == "AveragePool"]
        # 3×3 cells are not made of 2×2 ones: no pool reads another, the kernels are the map's
        self.assertFalse({n.input[0] for n in pools} & {n.output[0] for n in pools})
        self.assertEqual(sorted(helper.get_attribute_value(next(a for a in n.attribute if a.name == "kernel_shape")) for n in pools),
                         [[4, 6], [6, 9]])


class SkipNet(torch.nn.Module):
    """A decoder's fusion in small: a deep map (8 channels) upsampled 2× and concatenated with a
    shallow one (3 channels), then a convolution."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.shallow = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3, padding=1), torch.nn.ReLU())
        self.deep = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ReLU())
        self.fuse = torch.nn.Conv2d(11, 2, 3, padding=1)

    def forward(self, x):
        s = self.shallow(x)
        d = torch.nn.functional.interpolate(self.deep(x), size=s.shape[2:], mode="bilinear", align_corners=False)
        return torch.nn.functional.interpolate(self.fuse(torch.cat([d, s], 1)), scale_factor=2.0, mode="bilinear", align_corners=False)


class ConcatScaleTest(unittest.TestCase):
    def setUp(self):
        with tempfile.TemporaryDirectory() as tmp:
            self.m = quantize.inline_identities(export.export_onnx(SkipNet().eval(), Path(tmp) / "m.onnx", 16, 24))

    def test_concat_ranges_by_mode(self):
        p = quantize.Plan(same_as={"up": "deep"}, concats=[("cat", ["up", "shallow"], "up")])
        r = {"deep": (0.0, 8.0), "up": (0.0, 8.0), "shallow": (0.0, 2.0), "cat": (0.0, 7.0), "other": (-1.0, 1.0)}
        cases = [  # mode, expected ranges of deep, up, shallow, cat
            ("calibrated", [(0.0, 8.0), (0.0, 8.0), (0.0, 2.0), (0.0, 7.0)]),
            ("widest", [(0.0, 8.0), (0.0, 8.0), (0.0, 2.0), (0.0, 8.0)]),
            ("shared", [(0.0, 8.0)] * 4),
        ]
        for mode, want in cases:
            out = quantize.concat_ranges(r, p, mode)
            self.assertEqual([out[t] for t in ("deep", "up", "shallow", "cat")], want, mode)
            self.assertEqual(out["other"], (-1.0, 1.0))
        r2 = {**r, "shallow": (-3.0, 2.0)}  # the union spans every member's range
        self.assertEqual(quantize.concat_ranges(r2, p, "shared")["deep"], (-3.0, 8.0))
        with self.assertRaises(ValueError):
            quantize.concat_ranges(r, p, "largest")

    def test_plan_finds_the_concat_and_its_widest_input_through_the_upsampling(self):
        p = quantize.plan(self.m, quantize.RECIPES["pc-percentile-s2d-dwpool-stem7-cat"])
        self.assertEqual(len(p.concats), 1)
        y, xs, widest = p.concats[0]
        producer = {o: n for n in self.m.graph.node for o in n.output}
        self.assertEqual([producer[x].op_type for x in xs], ["Resize", "Relu"])
        self.assertEqual(widest, xs[0])  # 8 channels, shape unknown after the Resize: its input's

    def test_shared_scale_gives_every_input_and_the_output_one_scale(self):
        recipe = quantize.RECIPES["pc-percentile-s2d-dwpool-stem7-cat"]
        p = quantize.plan(self.m, recipe)
        calibrated = quantize.shared_ranges({t: (0.0, 1.0 + i) for i, t in enumerate(p.tensors)}, p)
        r = quantize.concat_ranges(calibrated, p, recipe.concat)
        y, xs, _ = p.concats[0]
        self.assertEqual(r[y], (0.0, max(calibrated[t][1] for t in (y, *xs))))
        g = quantize.quantize(self.m, recipe, r, p).graph
        producer = {o: n for n in g.node for o in n.output}
        inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        cat = next(n for n in g.node if n.op_type == "Concat" and len(n.input) == 2 and n.input[0] in producer
                   and producer[n.input[0]].op_type == "DequantizeLinear")
        q_out = next(n for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] == cat.output[0])
        params = {(float(inits[producer[i].input[1]]), int(inits[producer[i].input[2]])) for i in cat.input}
        params.add((float(inits[q_out.input[1]]), int(inits[q_out.input[2]])))
        self.assertEqual(len(params), 1)
        scale, zp = params.pop()
        self.assertEqual((round(scale, 7), zp), (round(quantize.uint8_params(*r[y])[0], 7), quantize.uint8_params(*r[y])[1]))


class SevenBitWeightsTest(unittest.TestCase):
    def test_the_named_convolutions_weights_stay_in_63(self):
        with tempfile.TemporaryDirectory() as tmp:
            m = quantize.space_to_depth_stem(quantize.inline_identities(export.export_onnx(stem_net(7, 3), Path(tmp) / "m.onnx", 16, 24)))
        for recipe, first_top in ((quantize.RECIPES["pc-percentile-s2d-dwpool"], 127), (quantize.RECIPES["pc-percentile-s2d-dwpool-stem7"], 63)):
            p = quantize.plan(m, recipe)
            g = quantize.quantize(m, recipe, quantize.shared_ranges({t: (-1.0, 1.0) for t in p.tensors}, p), p).graph
            producer = {o: n for n in g.node for o in n.output}
            inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
            convs = [n for n in g.node if n.op_type == "Conv"]
            tops = []
            for conv in convs:
                dq = producer[conv.input[1]]
                wq, ws = inits[dq.input[0]], inits[dq.input[1]]
                tops.append(int(np.abs(wq).reshape(wq.shape[0], -1).max(1).min()))  # every channel reaches its top
                self.assertLessEqual(int(np.abs(wq).max()), tops[-1])
                w = [numpy_helper.to_array(i) for i in m.graph.initializer if i.name == next(
                    n for n in m.graph.node if n.name == conv.name).input[1]][0]
                np.testing.assert_allclose(wq * ws[:, None, None, None], w, atol=float(ws.max()) / 2 + 1e-7)
            self.assertEqual(tops, [first_top] + [127] * (len(convs) - 1), recipe.name)


class CalibratedInputTest(unittest.TestCase):
    def test_an_image_read_by_an_int8_convolution_is_calibrated(self):
        # the naive recipe quantises the stem convolution on the image itself: the image's range is
        # calibrated (onnxruntime-node over the images), not borrowed from another tensor
        with tempfile.TemporaryDirectory() as tmp:
            m = export.export_onnx(stem_net(7, 3), Path(tmp) / "m.onnx", 16, 24)
        images = np.random.default_rng(2).uniform(-1.5, 2.5, (4, 3, 16, 24)).astype(np.float32)
        q, _ = quantize.build(m, quantize.RECIPES["naive"], images)
        g = q.graph
        image = g.input[0].name
        inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        qn = next(n for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] == image)
        scale, zp = quantize.uint8_params(float(images.min()), float(images.max()))
        self.assertAlmostEqual(float(inits[qn.input[1]]), scale, places=6)
        self.assertEqual(int(inits[qn.input[2]]), zp)


class Int8PoolTest(unittest.TestCase):
    def graph(self, recipe: quantize.Recipe) -> onnx.GraphProto:
        with tempfile.TemporaryDirectory() as tmp:
            m = quantize.inline_identities(export.export_onnx(stem_net(7, 3), Path(tmp) / "m.onnx", 16, 24))
        p = quantize.plan(m, recipe)
        r = {t: (0.0 if t in p.non_negative else -1.0, 1.0) for t in p.tensors}
        for t, src in p.same_as.items():
            r[t] = r[src]
        return quantize.quantize(m, recipe, r, p).graph

    def test_max_pool_reads_and_writes_uint8_with_one_scale(self):
        g = self.graph(quantize.RECIPES["pc-percentile-int8-pool"])
        pool = next(n for n in g.node if n.op_type == "MaxPool")
        producer = {o: n for n in g.node for o in n.output}
        self.assertEqual(producer[pool.input[0]].op_type, "QuantizeLinear")
        q_in = producer[pool.input[0]]
        dq_out = next(n for n in g.node if n.op_type == "DequantizeLinear" and n.input[0] == pool.output[0])
        inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        self.assertEqual([inits[i] for i in q_in.input[1:]], [inits[i] for i in dq_out.input[1:]])  # same scale and zero point
        # no DequantizeLinear is left without a reader (the pooled tensor's own DQ is not needed)
        read = {i for n in g.node for i in n.input} | {o.name for o in g.output}
        self.assertEqual([n.name for n in g.node if n.op_type == "DequantizeLinear" and n.output[0] not in read], [])

    def test_float_max_pool_without_the_option(self):
        g = self.graph(quantize.RECIPES["pc-percentile"])
        pool = next(n for n in g.node if n.op_type == "MaxPool")
        producer = {o: n for n in g.node for o in n.output}
        self.assertEqual(producer[pool.input[0]].op_type, "DequantizeLinear")



class PoolConvTest(unittest.TestCase):
    def graph(self) -> tuple[onnx.ModelProto, onnx.ModelProto]:
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1), nets.Pyramid(8, 4)).eval()
        with tempfile.TemporaryDirectory() as tmp:
            m = quantize.cascade_pools(quantize.inline_identities(export.export_onnx(net, Path(tmp) / "m.onnx", 12, 18)))
        return m, quantize.pools_as_convs(m)

    def test_tiling_pools_become_depthwise_convolutions_with_the_same_means(self):
        m, c = self.graph()
        onnx.checker.check_model(c)
        self.assertEqual([n for n in c.graph.node if n.op_type == "AveragePool"], [])
        pools = [n for n in m.graph.node if n.op_type == "AveragePool"]
        convs = {n.name: n for n in c.graph.node if n.op_type == "Conv"}
        inits = {i.name: numpy_helper.to_array(i) for i in c.graph.initializer}
        self.assertEqual(len(pools), 4)
        values = {pools[0].input[0]: torch.randn(1, 8, 12, 18)}
        for p in pools:  # in graph order: the finest first, the others read it
            n = convs[p.name]
            self.assertEqual((list(n.input[:1]), list(n.output)), (list(p.input[:1]), list(p.output)))  # same wiring and names
            a = {t.name: helper.get_attribute_value(t) for t in n.attribute}
            k = helper.get_attribute_value(next(t for t in p.attribute if t.name == "kernel_shape"))
            self.assertEqual((a["kernel_shape"], a["strides"], a["group"]), (k, k, 8))
            w = torch.from_numpy(inits[n.input[1]].copy())
            self.assertEqual(tuple(w.shape), (8, 1, *k))
            x = values[n.input[0]]
            y = torch.nn.functional.conv2d(x, w, stride=k, groups=8)
            self.assertLess(float((y - torch.nn.functional.avg_pool2d(x, k, k)).abs().max()), 1e-6, n.name)
            values[n.output[0]] = y

    def test_quantised_means_have_exact_int8_weights(self):
        _, c = self.graph()
        recipe = quantize.RECIPES["pc-percentile-s2d-dwpool"]
        p = quantize.plan(c, recipe)
        pool_convs = [n for n in p.convs if "AveragePool" in n.name]
        self.assertEqual(len(pool_convs), 4)
        ranges = {t: (-1.0, 3.0) for t in p.tensors}
        q = quantize.quantize(c, recipe, ranges, p)
        inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
        dq = {n.output[0]: n for n in q.graph.node if n.op_type == "DequantizeLinear"}
        for n in (x for x in q.graph.node if x.name in {c.name for c in pool_convs}):
            wq, ws = inits[dq[n.input[1]].input[0]], inits[dq[n.input[1]].input[1]]
            self.assertTrue((wq == 127).all(), n.name)  # every weight at the top of the int8 range: no rounding
            k = wq.shape[2] * wq.shape[3]
            np.testing.assert_allclose(ws * 127, 1.0 / k, rtol=1e-6)
            self.assertEqual(len(n.input), 2)  # no bias

    def test_pools_that_do_not_tile_are_left_alone(self):
        x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4, 6, 6])
        y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
        pool = helper.make_node("AveragePool", ["x"], ["y"], name="pool", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
        m = helper.make_model(helper.make_graph([pool], "g", [x], [y]))
        self.assertEqual([n.op_type for n in quantize.pools_as_convs(m).graph.node], ["AveragePool"])


ORT_RUN = """
import { readFileSync, writeFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
const [model, input, shape, out, level] = process.argv.slice(1);
const s = await ort.InferenceSession.create(model, { graphOptimizationLevel: level, intraOpNumThreads: 1 });
const raw = readFileSync(input);
const x = new ort.Tensor('float32', new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4), shape.split(',').map(Number));
const y = (await s.run({ [s.inputNames[0]]: x }))[s.outputNames[0]];
writeFileSync(out, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
writeFileSync(out + '.shape', y.dims.join(','));
"""


def run_ort(m: onnx.ModelProto, x: np.ndarray, optimize: bool = False) -> np.ndarray:
    """``m``'s first output for ``x`` by onnxruntime-node (the runtime that serves the models)."""
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(m, f"{tmp}/m.onnx")
        np.ascontiguousarray(x, np.float32).tofile(f"{tmp}/x.f32")
        subprocess.run([quantize.node(), "--input-type=module", "-e", ORT_RUN, f"{tmp}/m.onnx", f"{tmp}/x.f32",
                        ",".join(map(str, x.shape)), f"{tmp}/y.f32", "all" if optimize else "disabled"], cwd=quantize.REPO, check=True)
        shape = [int(d) for d in Path(f"{tmp}/y.f32.shape").read_text().split(",")]
        return np.fromfile(f"{tmp}/y.f32", np.float32).reshape(shape)


class UpsampleNet(torch.nn.Module):
    """Bilinear 2× upsamplings as the decoder exports them (to a skip's size: a computed ``sizes``
    input) and by a scale factor (a constant ``scales`` input), and upsamplings the rewrite must
    leave alone: bilinear 3×, bilinear 2× with aligned corners, nearest 2×."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(4)
        self.deep = torch.nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.fuse = torch.nn.Conv2d(9, 5, 3, padding=1)

    def forward(self, x):
        interpolate = torch.nn.functional.interpolate
        d = interpolate(self.deep(x), size=x.shape[2:], mode="bilinear", align_corners=False)
        y = self.fuse(torch.cat([d, x], 1))
        return torch.cat([interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False),
                          interpolate(interpolate(y, scale_factor=3.0, mode="bilinear", align_corners=False), size=(2 * x.shape[2], 2 * x.shape[3]),
                                      mode="nearest"),
                          interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=True),
                          interpolate(y, scale_factor=2.0, mode="nearest")], 1)


class UpsampleConvTest(unittest.TestCase):
    def setUp(self):
        with tempfile.TemporaryDirectory() as tmp:
            self.m = quantize.inline_identities(export.export_onnx(UpsampleNet().eval(), Path(tmp) / "m.onnx", 10, 14))
        self.u = quantize.upsamples_as_convs(self.m)

    @staticmethod
    def resizes(m: onnx.ModelProto) -> dict[str, dict]:
        return {n.output[0]: {a.name: helper.get_attribute_value(a) for a in n.attribute} for n in m.graph.node if n.op_type == "Resize"}

    def test_bilinear_2x_becomes_nearest_pad_and_filter_the_others_stay(self):
        onnx.checker.check_model(self.u)
        before, after = self.resizes(self.m), self.resizes(self.u)
        bilinear2 = [t for t, a in before.items() if t not in after]
        self.assertEqual(len(bilinear2), 2)  # the decoder's (sizes) and the scale factor's
        self.assertEqual(len(before) - 2, 4)  # 3×, 2× from 3×, aligned corners, nearest: untouched
        for t, a in before.items():
            if t in after:
                self.assertEqual(after[t], a, t)
        producer = {o: n for n in self.u.graph.node for o in n.output}
        inits = {i.name: numpy_helper.to_array(i) for i in self.u.graph.initializer}
        for t in bilinear2:
            chain, v = [], t
            while v in producer and producer[v].op_type != "Conv" or not chain:
                chain.append(producer[v])
                v = producer[v].input[0]
            self.assertEqual([n.op_type for n in chain], ["Conv", "Pad", "Transpose", "Reshape", "Expand", "Reshape", "Transpose"])
            conv, pad = chain[:2]
            a = {x.name: helper.get_attribute_value(x) for x in conv.attribute}
            w = inits[conv.input[1]]
            self.assertEqual((a["kernel_shape"], a["pads"], a["group"], w.shape[1:]), ([3, 3], [0, 0, 0, 0], w.shape[0], (1, 3, 3)))
            np.testing.assert_array_equal(w * 16, np.broadcast_to([[1, 2, 1], [2, 4, 2], [1, 2, 1]], w.shape))
            self.assertEqual(helper.get_attribute_value(next(x for x in pad.attribute if x.name == "mode")), b"edge")

    def test_same_outputs_in_onnxruntime(self):
        x = np.random.default_rng(5).standard_normal((1, 3, 10, 14)).astype(np.float32)
        want = run_ort(self.m, x)
        self.assertEqual(want.shape, (1, 20, 20, 28))
        for nearest in ("copy", "resize"):
            u = quantize.upsamples_as_convs(self.m, nearest)
            for optimize in (False, True):
                got = run_ort(u, x, optimize)
                np.testing.assert_allclose(got, want, rtol=0, atol=2e-6, err_msg=f"{nearest}, optimize={optimize}")

    def test_nearest_2x_copies_each_pixel_into_a_2x2_block(self):
        x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 3, 5])
        y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2, 6, 10])
        v = np.arange(30, dtype=np.float32).reshape(1, 2, 3, 5)
        for how in ("copy", "resize"):
            nodes, consts = quantize._nearest_2x("x", "y", [1, 2, 3, 5], "up", how)
            m = helper.make_model(helper.make_graph(nodes, "g", [x], [y], consts), opset_imports=[helper.make_opsetid("", 13)])
            onnx.checker.check_model(m)
            for optimize in (False, True):
                np.testing.assert_array_equal(run_ort(m, v, optimize), v.repeat(2, 2).repeat(2, 3), f"{how}, optimize={optimize}")

    def test_other_resizes_are_left_alone(self):
        x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 4, 6])
        cases = [  # (mode, coordinate transformation, scales): a bilinear 2× only in mode and factors
            ("cubic", "half_pixel", [1, 1, 2, 2]), ("nearest", "half_pixel", [1, 1, 2, 2]), ("linear", "half_pixel", [1, 1, 2, 3]),
            ("linear", "half_pixel", [1, 2, 2, 2]), ("linear", "align_corners", [1, 1, 2, 2]), ("linear", "asymmetric", [1, 1, 2, 2])]
        nodes = [helper.make_node("Resize", ["x", "", f"s{i}"], [f"y{i}"], name=f"r{i}", mode=mode, coordinate_transformation_mode=ct)
                 for i, (mode, ct, _) in enumerate(cases)]
        inits = [numpy_helper.from_array(np.array(sc, np.float32), f"s{i}") for i, (_, _, sc) in enumerate(cases)]
        ys = [helper.make_tensor_value_info(f"y{i}", onnx.TensorProto.FLOAT, None) for i in range(len(cases))]
        m = helper.make_model(helper.make_graph(nodes, "g", [x], ys, inits), opset_imports=[helper.make_opsetid("", 13)])
        self.assertEqual(quantize.upsamples_as_convs(m).graph.node[:], m.graph.node[:])
        # the same graph with the linear half-pixel factors 2, 2 is rewritten
        m.graph.initializer[2].CopyFrom(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "s2"))
        self.assertEqual([n.op_type for n in quantize.upsamples_as_convs(m).graph.node if n.name.startswith("r2")],
                         ["Transpose", "Reshape", "Expand", "Reshape", "Transpose", "Pad", "Conv"])

    def quantised(self, recipe: quantize.Recipe) -> onnx.ModelProto:
        u = quantize.upsamples_as_convs(self.m, recipe.upsample_conv)
        p = quantize.plan(u, recipe)
        return quantize.quantize(u, recipe, quantize.shared_ranges({t: (-2.0, 3.0) for t in p.tensors}, p), p)

    def test_quantised_the_upsampling_moves_uint8_and_the_filter_is_exact(self):
        for recipe in (quantize.RECIPES["pc-percentile-s2d-dwpool-stem7-up"], quantize.RECIPES["pc-percentile-s2d-dwpool-stem7-up-resize"]):
            g = self.quantised(recipe).graph
            producer = {o: n for n in g.node for o in n.output}
            inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
            pads = [n for n in g.node if n.op_type == "Pad"]
            self.assertEqual(len(pads), 2)
            for pad in pads:
                moves, v = [], pad.input[0]
                while producer[v].op_type != "QuantizeLinear":  # uint8 from the quantised input to the padding
                    moves.append(producer[v].op_type)
                    v = producer[v].input[0]
                q = producer[v]
                self.assertEqual(moves, ["Resize"] if recipe.upsample_conv == "resize" else ["Transpose", "Reshape", "Expand", "Reshape", "Transpose"])
                dq = next(n for n in g.node if n.op_type == "DequantizeLinear" and n.input[0] == pad.output[0])
                conv = next(n for n in g.node if n.op_type == "Conv" and n.input[0] == dq.output[0])
                self.assertEqual([inits[i] for i in dq.input[1:]], [inits[i] for i in q.input[1:]])  # one scale
                wdq = producer[conv.input[1]]
                wq, ws = inits[wdq.input[0]], inits[wdq.input[1]]
                np.testing.assert_array_equal(wq, np.broadcast_to([[16, 32, 16], [32, 64, 32], [16, 32, 16]], wq.shape))
                np.testing.assert_array_equal(ws, np.full(wq.shape[0], 1 / 256, np.float32))

    def test_onnxruntime_runs_the_copies_channels_last_without_reorders(self):
        # onnxruntime's optimised int8 graph: the filters are channels-last QLinearConvs reading the
        # padded copies, and no Transpose is left in front of them (the two of the copies cancel
        # against the ones around the channels-last convolutions)
        q = self.quantised(quantize.RECIPES["pc-percentile-s2d-dwpool-stem7-up"])
        with tempfile.TemporaryDirectory() as tmp:
            onnx.save(q, f"{tmp}/q.onnx")
            script = ("import ort from 'onnxruntime-node'; await ort.InferenceSession.create(process.argv[1], "
                      "{ graphOptimizationLevel: 'all', optimizedModelFilePath: process.argv[2], logSeverityLevel: 3 });")
            subprocess.run([quantize.node(), "--input-type=module", "-e", script, f"{tmp}/q.onnx", f"{tmp}/opt.onnx"],
                           cwd=quantize.REPO, check=True)
            g = onnx.load(f"{tmp}/opt.onnx").graph
        producer = {o: n for n in g.node for o in n.output}
        filters = [n for n in g.node if n.op_type == "QLinearConv" and "_filter" in n.name]
        self.assertEqual(len(filters), 2)
        for f in filters:
            self.assertEqual(helper.get_attribute_value(next(a for a in f.attribute if a.name == "channels_last")), 1)
            chain, v = [], f.input[0]
            while producer[v].op_type in ("Pad", "Reshape", "Expand", "Transpose"):
                chain.append(producer[v].op_type)
                v = producer[v].input[0]
            self.assertEqual(chain, ["Pad", "Reshape", "Expand", "Reshape"], f.name)
            self.assertIn(producer[v].op_type, ("QLinearConv",), f.name)

if __name__ == "__main__":
    unittest.main()
