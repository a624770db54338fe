"""The quantisation recipes' range arithmetic, including the naive variants experiments/collapse.py
measures: no calibration (PyTorch's default parameters), unsigned ranges from 0, what a recipe
calibrates on, and an export that keeps its batch-norm."""
from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch

from experiments import collapse, export, quantize


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


if __name__ == "__main__":
    unittest.main()
