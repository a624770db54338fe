"""The evaluation protocol against the vectors the TypeScript side checks too
(test/fixtures/golden-vectors.json; packages/runtime/src/golden/vectors.test.ts).

    /usr/bin/python3 -m unittest experiments.tests.test_golden_vectors
"""
from __future__ import annotations

import json
import math
import unittest
from pathlib import Path

import numpy as np

from experiments import golden
from experiments.metrics import Confusion

REPO = Path(__file__).resolve().parents[2]
VECTORS = json.loads((REPO / "test" / "fixtures" / "golden-vectors.json").read_text())


class GoldenVectorsTest(unittest.TestCase):
    def test_digests(self):
        for v in VECTORS["digests"]:
            with self.subTest(v["dir"]):
                self.assertEqual(golden.digest(REPO / v["dir"]), v["sha256"])

    def test_scores(self):
        for v in VECTORS["scores"]:
            with self.subTest(v["name"]):
                c = Confusion(v["classes"])
                for img in v["images"]:
                    c.add(np.array(img["predicted"], np.uint8), np.array(img["truth"], np.uint8))
                for got, want in zip(c.iou(), v["iou"], strict=True):
                    if want is None:
                        self.assertTrue(math.isnan(got))
                    else:
                        self.assertAlmostEqual(got, want, places=12)
                self.assertAlmostEqual(c.miou(), v["miou"], places=12)
                self.assertAlmostEqual(c.pixel_accuracy(), v["pixel_accuracy"], places=12)


if __name__ == "__main__":
    unittest.main()
