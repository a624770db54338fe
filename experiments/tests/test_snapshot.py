"""experiments/snapshot.py: a training's best checkpoint exported for the protocol tool, the run
left as it was."""
from __future__ import annotations

import json
import tempfile
import unittest
from pathlib import Path

import onnx
import torch

from experiments import export, nets, quantize, snapshot

TINY = {"name": "tiny-snapshot", "data": {"height": 192, "width": 288},
        "model": {"arch": "factorised", "widths": [8, 16, 16], "blocks": [1, 1, 1], "decoder": {"mid": 8, "branch": 4}}}


class SnapshotTest(unittest.TestCase):
    def test_exports_the_best_checkpoint_at_both_sizes_and_leaves_the_run_alone(self):
        cfg = TINY
        torch.manual_seed(0)
        model = nets.build(cfg["model"]).eval()
        with tempfile.TemporaryDirectory() as tmp:
            run, out = Path(tmp) / "run", Path(tmp) / "out"
            run.mkdir()
            torch.save({"config": cfg, "state_dict": model.state_dict(), "epoch": 7}, run / "checkpoint.pt")
            before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
            info = snapshot.snapshot(str(run), out, recipes=[], log=lambda *_: None)
            self.assertEqual({p.name: p.stat().st_mtime_ns for p in run.iterdir()}, before)  # nothing written into the run
            self.assertEqual(info["epoch"], 7)
            self.assertEqual(sorted(Path(d).name for d in info["dirs"]), ["fp32-192x288", "fp32-768x1152"])
            self.assertEqual(json.loads((out / "snapshot.json").read_text())["epoch"], 7)
            self.assertEqual(sorted(p.name for p in out.iterdir()), ["fp32-192x288", "fp32-768x1152", "snapshot.json"])
            for d, (h, w) in ((out / "fp32-192x288", (192, 288)), (out / "fp32-768x1152", (768, 1152))):
                man = json.loads((d / "model.json").read_text())
                self.assertEqual((man["input"]["height"], man["input"]["width"]), (h, w))
                shape = [x.dim_value for x in onnx.load(str(d / "model.onnx")).graph.input[0].type.tensor_type.shape.dim]
                self.assertEqual(shape, [1, 3, h, w])

    def test_a_bundled_versions_weights_at_both_sizes_without_its_run(self):
        torch.manual_seed(0)
        trained = nets.build(TINY["model"]).eval()
        with tempfile.TemporaryDirectory() as tmp:
            bundle, out = Path(tmp) / "bundle", Path(tmp) / "out"
            export.export_onnx(trained, bundle / "model.onnx", 192, 288)
            direct = export.export_onnx(trained, Path(tmp) / "direct.onnx", 768, 1152)
            torch.manual_seed(1)  # the network snapshot builds starts from other weights
            info = snapshot.snapshot("no-such-run", out, recipes=[], log=lambda *_: None, weights_from=bundle, config=TINY)
            self.assertIsNone(info["epoch"])
            self.assertEqual(info["weights_from"]["sha256"], export.sha256(bundle / "model.onnx"))
            # equal constants shared through Identity nodes by the exporter are given to each user
            bundled = quantize.inline_identities(onnx.load(str(bundle / "model.onnx")))
            direct = quantize.inline_identities(direct)
            self.assertTrue(snapshot.same_graph(onnx.load(str(out / "fp32-192x288" / "model.onnx")), bundled))
            self.assertTrue(snapshot.same_graph(onnx.load(str(out / "fp32-768x1152" / "model.onnx")), direct))
            other = export.export_onnx(nets.build(TINY["model"]).eval(), Path(tmp) / "other.onnx", 768, 1152)
            self.assertFalse(snapshot.same_graph(quantize.inline_identities(other), direct))

    def test_weights_of_another_network_are_refused(self):
        other = {**TINY, "model": {**TINY["model"], "widths": [8, 16, 24]}}
        with tempfile.TemporaryDirectory() as tmp:
            bundle = Path(tmp) / "bundle"
            export.export_onnx(nets.build(other["model"]).eval(), bundle / "model.onnx", 192, 288)
            with self.assertRaisesRegex(ValueError, "not the same network"):
                snapshot.snapshot("no-such-run", Path(tmp) / "out", recipes=[], log=lambda *_: None, weights_from=bundle, config=TINY)

    def test_recipes_default_to_the_run_configs_int8_versions(self):
        name, specs = snapshot.specs_of("r50-context", None)
        self.assertEqual(name, "facade-ads")
        self.assertEqual(specs[0], {"variant": "fp32"})
        self.assertEqual([s["recipe"] for s in specs[1:]], ["pc-percentile-s2d-dwpool-stem7"])
