"""Unit tests of the experiments pipeline (fast: tiny inputs, no training).

    /usr/bin/python3 -m unittest discover -s experiments/tests -t .
"""
from __future__ import annotations

import copy
import hashlib
import json
import tempfile
import unittest
from pathlib import Path

import numpy as np
import onnx
import torch

from experiments import export, facades, golden, policy, pspnet
from experiments.metrics import Confusion

REPO = Path(__file__).resolve().parents[2]


class FacadesTest(unittest.TestCase):
    def test_same_seed_same_picture_and_mask(self):
        a_img, a_mask = facades.render(123)
        b_img, b_mask = facades.render(123)
        self.assertEqual(a_img.size, (1152, 768))
        self.assertTrue(np.array_equal(np.asarray(a_img), np.asarray(b_img)))
        self.assertTrue(np.array_equal(a_mask, b_mask))

    def test_masks_are_binary_and_seeds_differ(self):
        masks = [facades.render(s)[1] for s in (1, 2, 3)]
        for m in masks:
            self.assertEqual(m.shape, (768, 1152))
            self.assertTrue(set(np.unique(m)).issubset({0, 1}))
        self.assertFalse(np.array_equal(masks[0], masks[1]))
        # ads are present but are never most of the picture
        self.assertTrue(all(0.0 < m.mean() < 0.5 for m in masks))


class PSPNetTest(unittest.TestCase):
    def test_output_is_logits_at_input_size(self):
        for enc, depth, ch in (("resnet18", 3, 128), ("resnet50", 3, 512), ("resnet18", 2, 64)):
            m = pspnet.build({"encoder": enc, "encoder_depth": depth, "psp_out_channels": 64}).eval()
            self.assertEqual(m.encoder.out_channels, ch)
            with torch.no_grad():
                y = m(torch.zeros(1, 3, 96, 144))
            self.assertEqual(tuple(y.shape), (1, 2, 96, 144))

    def test_reduced_network_matches_the_study(self):
        m = pspnet.build({"encoder": "resnet18", "psp_out_channels": 256, "psp_use_batchnorm": False})
        self.assertAlmostEqual(pspnet.count_gflops(m, 768, 1152), 36.9, delta=0.1)
        self.assertLess(pspnet.count_params(m) * 4 / 1e6, 3.5)  # ~3 MB of fp32 weights
        self.assertFalse(any(isinstance(x, torch.nn.BatchNorm2d) for x in list(m.psp.modules()) + list(m.fusion.modules())))

    def test_pyramid_needs_divisible_feature_map(self):
        m = pspnet.build({"encoder": "resnet18", "psp_out_channels": 32}).eval()
        with self.assertRaises(ValueError):
            m(torch.zeros(1, 3, 256, 384))  # 32×48: 32 is not divisible by 3


class ExportTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.model = pspnet.build({"encoder": "resnet18", "psp_out_channels": 32}).eval()
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def test_fp32_folds_batchnorm_and_checks(self):
        m = export.export_onnx(self.model, self.dir / "a.onnx", 96, 144)
        export.save(m, self.dir / "model.onnx")
        ops = export.op_counts(self.dir / "model.onnx")
        self.assertNotIn("BatchNormalization", ops)
        g = onnx.load(str(self.dir / "model.onnx")).graph
        self.assertEqual([i.name for i in g.input], ["input"])
        self.assertEqual([o.name for o in g.output], ["logits"])

    def test_int8_and_fp16_shrink_the_file(self):
        base = export.export_onnx(self.model, self.dir / "a.onnx", 96, 144)
        export.save(base, self.dir / "fp32.onnx")
        export.save(export.to_int8(copy.deepcopy(base)), self.dir / "int8.onnx")
        export.save(export.to_fp16(copy.deepcopy(base)), self.dir / "fp16.onnx")
        size = {k: (self.dir / f"{k}.onnx").stat().st_size for k in ("fp32", "int8", "fp16")}
        self.assertLess(size["int8"], size["fp32"] * 0.35)
        self.assertLess(size["fp16"], size["fp32"] * 0.6)
        self.assertIn("DequantizeLinear", export.op_counts(self.dir / "int8.onnx"))

    def test_manifest_is_schema_valid_and_rejects_unknown_keys(self):
        m = export.export_onnx(self.model, self.dir / "a.onnx", 96, 144)
        export.save(m, self.dir / "model.onnx")
        man = export.manifest("facade-ads", "9", self.dir / "model.onnx", 96, 144, {"miou": 0.8}, "d", {"x": 1})
        self.assertEqual(man["sha256"], hashlib.sha256((self.dir / "model.onnx").read_bytes()).hexdigest())
        for bad in ({**man, "extra": 1}, {**man, "name": "Facade"}, {**man, "metrics": {"miou": 1.5}},
                    {**man, "input": {**man["input"], "std": [0, 1, 1]}}):
            with self.assertRaises(ValueError):
                export.validate(bad)


class MetricsTest(unittest.TestCase):
    def test_confusion_over_all_pixels(self):
        c = Confusion(2)
        c.add(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [0, 1]]))
        c.add(np.array([[0, 0]]), np.array([[0, 0]]))
        # background: tp 3, fp 0, fn 1 → 3/4; advertising: tp 2, fp 1, fn 0 → 2/3
        self.assertAlmostEqual(c.iou()[0], 0.75)
        self.assertAlmostEqual(c.iou()[1], 2 / 3)
        self.assertAlmostEqual(c.miou(), (0.75 + 2 / 3) / 2)
        self.assertAlmostEqual(c.pixel_accuracy(), 5 / 6)


class PolicyTest(unittest.TestCase):
    champion = {"miou": 0.80, "latency_ms_p95": 100.0, "peak_rss_mb": 200.0}

    def test_table(self):
        cases = [
            ({"miou": 0.81, "latency_ms_p95": 104.0, "peak_rss_mb": 205.0}, True),   # better mIoU, within tolerances
            ({"miou": 0.801, "latency_ms_p95": 100.0, "peak_rss_mb": 200.0}, False),  # below min improvement
            ({"miou": 0.79, "latency_ms_p95": 100.0, "peak_rss_mb": 200.0}, False),   # worse than tolerance
            ({"miou": 0.85, "latency_ms_p95": 130.0, "peak_rss_mb": 200.0}, False),   # slower by > 5 %
            ({"miou": 0.80, "latency_ms_p95": 90.0, "peak_rss_mb": 200.0}, True),     # faster by ≥ 5 %
            ({"miou": 0.70, "latency_ms_p95": 50.0, "peak_rss_mb": 100.0}, False),    # under miou_min
            ({"miou": 0.85, "latency_ms_p95": 600.0, "peak_rss_mb": 100.0}, False),   # over the latency limit
        ]
        for cand, want in cases:
            self.assertEqual(policy.verdict(cand, self.champion)[0], want, cand)


class BundledModelsTest(unittest.TestCase):
    """Every committed model version: schema-valid model.json whose sha256 matches model.onnx."""

    def test_manifests(self):
        found = 0
        for man_path in sorted((REPO / "models").glob("*/*/model.json")):
            found += 1
            man = json.loads(man_path.read_text())
            export.validate(man)
            onnx_path = man_path.parent / "model.onnx"
            self.assertEqual(hashlib.sha256(onnx_path.read_bytes()).hexdigest(), man["sha256"], man_path)
            self.assertEqual(man["name"], man_path.parent.parent.name)
            self.assertEqual(man["version"], man_path.parent.name)
            g = onnx.load(str(onnx_path)).graph
            self.assertEqual(g.input[0].name, man["input"]["name"])
            dims = [d.dim_value for d in g.input[0].type.tensor_type.shape.dim]
            self.assertEqual(dims, [1, 3, man["input"]["height"], man["input"]["width"]])
            self.assertEqual(g.output[0].name, man["output"]["name"])
        self.assertGreaterEqual(found, 6, "models/facade-ads/{1..5} and models/facade-ads-full/2")
        default = json.loads((REPO / "models" / "facade-ads" / "2" / "model.json").read_text())
        self.assertEqual(default["training"]["golden_sha256"], golden.digest())

    def test_golden_set_pairs(self):
        images = sorted(p.stem for p in (golden.GOLDEN / "images").glob("*.jpg"))
        masks = sorted(p.stem for p in (golden.GOLDEN / "masks").glob("*.png"))
        self.assertGreaterEqual(len(images), 16)
        self.assertEqual(images, masks)


if __name__ == "__main__":
    unittest.main()
