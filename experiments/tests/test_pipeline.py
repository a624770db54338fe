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

from experiments import dataset, export, facades, golden, nets, policy, pspnet, train
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


class GoldenReproducibleTest(unittest.TestCase):
    """The committed golden sets re-render byte for byte from their seeds (fonts from set-up)."""

    def test_committed_sets_have_their_recorded_digest(self):
        for gs in golden.SETS.values():
            self.assertEqual(golden.digest(gs.dir), gs.sha256, f"{gs.dir} changed")
            self.assertEqual(len(list((gs.dir / "images").glob("*.jpg"))), gs.count)

    def test_images_re_render_byte_identically(self):
        for gs in golden.SETS.values():
            for i in (0, gs.count - 1):
                jpg, png = golden.render_item(gs, i)
                name = gs.image_name(i)
                self.assertEqual(hashlib.sha256(jpg).hexdigest(),
                                 hashlib.sha256((gs.dir / "images" / f"{name}.jpg").read_bytes()).hexdigest(), f"{gs.name}/{name}.jpg")
                self.assertEqual(hashlib.sha256(png).hexdigest(),
                                 hashlib.sha256((gs.dir / "masks" / f"{name}.png").read_bytes()).hexdigest(), f"{gs.name}/{name}.png")

    def test_ensure_never_rewrites_a_set(self):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "golden-x"
            (root / "images").mkdir(parents=True)
            (root / "images" / "a.jpg").write_bytes(b"not the recorded set")
            gs = golden.GoldenSet(9, root, seed=5, count=1, generator=2, sha256="0" * 64)
            with self.assertRaisesRegex(RuntimeError, "never re-rendered"):
                golden.ensure(gs)
            self.assertEqual((root / "images" / "a.jpg").read_bytes(), b"not the recorded set")

    def test_generator_2_differs_and_is_deterministic(self):
        a1, m1 = facades.render(77, generator=1)
        a2, m2 = facades.render(77, generator=2)
        b2, n2 = facades.render(77, generator=2)
        self.assertTrue(np.array_equal(np.asarray(a2), np.asarray(b2)) and np.array_equal(m2, n2))
        self.assertFalse(np.array_equal(np.asarray(a1), np.asarray(a2)))
        self.assertTrue(set(np.unique(m2)).issubset({0, 1}))


class NetsTest(unittest.TestCase):
    def test_context_and_factorised_shapes(self):
        for cfg in ({"arch": "context", "encoder": "resnet18"},
                    {"arch": "factorised", "widths": [16, 32, 64], "blocks": [1, 1, 1], "decoder": {"separable": True, "mid": 32}}):
            m = nets.build(cfg).eval()
            with torch.no_grad():
                self.assertEqual(tuple(m(torch.zeros(1, 3, 96, 192)).shape), (1, 2, 96, 192))

    def test_svd_at_full_rank_reproduces_the_network(self):
        torch.manual_seed(0)
        cfg = {"arch": "factorised", "widths": [16, 32, 64], "blocks": [1, 1, 1], "slim_stem": True, "decoder": {"mid": 24}}
        src = nets.build(cfg).eval()
        for p in src.parameters():  # non-trivial batch-norm statistics too
            p.data.normal_(0, 0.3)
        full = {n: min(c.out_channels, c.in_channels * 9) for n, c in nets.low_rank_targets(src).items()}
        self.assertTrue(full)
        low = nets.build({**cfg, "low_rank": full}).eval()
        energy = nets.svd_init(low, src)
        self.assertTrue(all(abs(e - 1) < 1e-5 for e in energy.values()))
        x = torch.randn(1, 3, 96, 96)
        with torch.no_grad():
            self.assertTrue(torch.allclose(src(x), low(x), atol=1e-3, rtol=1e-3))
        half = nets.build({**cfg, "low_rank": nets.ranks_for(src, 0.5)})
        self.assertLess(nets.count_gflops(half, 96, 96), nets.count_gflops(src, 96, 96))


class TinyTraining(unittest.TestCase):
    """Trainings on an 8-image random data set in a temporary runs/ and data/ directory."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.old = dataset.DATA_DIR, train.RUNS
        dataset.DATA_DIR, train.RUNS = Path(self.tmp.name) / "data", Path(self.tmp.name) / "runs"
        dataset.DATA_DIR.mkdir()
        rng = np.random.default_rng(0)
        n, h, w = 8, 96, 96
        np.savez(dataset.cache_path(1, n, h, w, 2), lo_img=rng.integers(0, 255, (n, h, w, 3), np.uint8),
                 lo_mask=rng.integers(0, 2, (n, h, w), np.uint8), hi_img=rng.integers(0, 255, (n, 2 * h, 2 * w, 3), np.uint8),
                 hi_mask=rng.integers(0, 2, (n, 2 * h, 2 * w), np.uint8))
        self.cfg = {"model": {"arch": "factorised", "widths": [8, 16, 16], "blocks": [1, 1, 1], "decoder": {"mid": 8, "branch": 4}},
                    "data": {"seed": 1, "images": n, "height": h, "width": w, "generator": 2}, "loss": {"ce": 1, "dice": 0.5},
                    "train": {"epochs": 2, "batch_size": 2, "lr": 0.01, "seed": 1, "threads": 1}}

    def tearDown(self):
        dataset.DATA_DIR, train.RUNS = self.old
        self.tmp.cleanup()

    def run_config(self, name: str, **extra) -> dict:
        (train.RUNS / name).mkdir(parents=True, exist_ok=True)
        return train.train({**self.cfg, "name": name, **extra}, lambda _m: None)


class TrainResumeTest(TinyTraining):
    """A training stopped after an epoch and restarted ends with the same weights as one run."""

    def test_resume_is_exact(self):
        cfg = self.cfg
        quiet = lambda _m: None  # noqa: E731
        for name in ("once", "twice"):
            (train.RUNS / name).mkdir(parents=True)
        train.train({**cfg, "name": "once"}, quiet)
        stopped = {**cfg, "name": "twice", "train": {**cfg["train"], "epochs": 2}}
        real_evaluate = train.evaluate
        calls = {"n": 0}

        def stop_after_first_epoch(*a, **k):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt  # "killed" after epoch 1's checkpoint
            return real_evaluate(*a, **k)
        train.evaluate = stop_after_first_epoch
        try:
            with self.assertRaises(KeyboardInterrupt):
                train.train(stopped, quiet)
        finally:
            train.evaluate = real_evaluate
        self.assertEqual(torch.load(train.RUNS / "twice" / "last.pt")["epoch"], 1)
        train.train(stopped, quiet)
        a = torch.load(train.RUNS / "once" / "last.pt")["model"]
        b = torch.load(train.RUNS / "twice" / "last.pt")["model"]
        for k in a:
            self.assertTrue(torch.equal(a[k], b[k]), k)


class DistillationBankTest(TinyTraining):
    def test_offline_bank_holds_the_teachers_outputs(self):
        self.run_config("teacher", train={**self.cfg["train"], "epochs": 1})
        kd = {"teacher": "teacher", "temperature": 2.0, "alpha": 0.5, "features": 0.5, "bank": 2}
        m = self.run_config("student", distill=kd)
        self.assertEqual(m["epochs"], 2)
        bank = torch.load(next((train.RUNS / "teacher").glob("kdbank-*.pt")))
        self.assertEqual(tuple(bank["images"].shape[:2]), (2, m["dataset"]["train"]))
        teacher, _ = train.load_run("teacher")
        x = dataset.normalize(bank["images"][1, :2])
        with torch.no_grad():
            lo = teacher.lowres(x)
        # the stored logits are the teacher's on the stored (uint8-rounded) picture
        self.assertLess(float((lo - bank["logits"][1, :2].float()).abs().max()), 0.05)


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
