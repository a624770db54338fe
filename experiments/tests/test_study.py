"""The study's arithmetic: mIoU from confusion matrices, the paired bootstrap, per-round ratios and
which float row a quantised row is compared with."""
from __future__ import annotations

import json
import subprocess
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import numpy as np

from experiments import study, versions


def conf(tp_bg: int, fp_ad: int, fn_ad: int, tp_ad: int) -> list[list[int]]:
    """2×2 confusion, rows truth (background, advertising), columns prediction."""
    return [[tp_bg, fp_ad], [fn_ad, tp_ad]]


class StudyTest(unittest.TestCase):
    def test_miou_of_confusions(self):
        cases = [  # confusion, expected mIoU
            (conf(90, 0, 0, 10), 1.0),
            (conf(90, 0, 10, 0), 0.45),           # background everywhere: IoU_bg 0.9, IoU_ad 0
            (conf(80, 10, 0, 10), (80 / 90 + 10 / 20) / 2),
        ]
        for c, want in cases:
            self.assertAlmostEqual(float(study.miou_of(np.array(c, np.float64))), want, places=9)

    def test_paired_bootstrap(self):
        rng = np.random.default_rng(1)
        base = np.array([conf(900, int(a), int(b), 100) for a, b in rng.integers(0, 40, (30, 2))], np.float64)
        worse = base.copy()
        worse[:, 1, 1] -= 30   # 30 advertising pixels per image missed …
        worse[:, 1, 0] += 30   # … and called background
        out = study.bootstrap({"base": base, "same": base.copy(), "worse": worse}, "base", n=500)
        self.assertNotIn("diff", out["base"])
        self.assertEqual(out["same"]["diff"], 0.0)
        self.assertEqual(out["same"]["diff_ci95"], [0.0, 0.0])   # the same resamples for every row
        lo, hi = out["worse"]["diff_ci95"]
        self.assertLess(hi, 0.0)
        self.assertLessEqual(lo, out["worse"]["diff"])
        self.assertLessEqual(out["worse"]["diff"], hi)
        for r in out.values():
            self.assertLessEqual(r["ci95"][0], r["miou"])
            self.assertLessEqual(r["miou"], r["ci95"][1])

    def test_rounds_measured_apart_merge_as_one(self):
        def part(r: int, scored: bool) -> dict:
            m = {"model_ms": [10 * r + 1, 10 * r + 2], "backend_ms": [10 * r + 3, 10 * r + 4], "e2e_ms": [10 * r + 5],
                 "per_image": [{"name": "a", "confusion": [1, 0, 0, 1]}] if scored else [], "miou": 1.0 if scored else None}
            return {"settings": {"intra_op_threads": 2}, "golden": {"images": 1}, "rounds": [{"loadavg_before": r}],
                    "models": {"x": m}}
        merged = study.merge_rounds([part(0, True), part(1, False), part(2, False)])
        x = merged["models"]["x"]
        self.assertEqual(x["model_ms"], [1, 2, 11, 12, 21, 22])
        self.assertEqual(x["e2e_ms"], [5, 15, 25])
        self.assertEqual(study.per_round(x["model_ms"], 3), [1.5, 11.5, 21.5])
        self.assertEqual((x["miou"], len(x["per_image"])), (1.0, 1))  # the scores of the round that scored
        self.assertEqual([r["loadavg_before"] for r in merged["rounds"]], [0, 1, 2])

    def test_timings_run_with_the_services_malloc_settings(self):
        # Every round's measure_models.mjs gets the environment inference processes are started with
        # (packages/runtime's INFERENCE_MALLOC_ENV, read through node), not a copy of part of it.
        seen: list[dict] = []
        real_run = subprocess.run

        def fake_run(cmd, **kw):
            if "--out" not in cmd:  # node reading the settings
                return real_run(cmd, **kw)
            seen.append(kw["env"])
            out = Path(cmd[cmd.index("--out") + 1])
            out.write_text(json.dumps({"settings": {}, "golden": {}, "rounds": [{}], "models": {"m": {
                "model_ms": [1], "backend_ms": [1], "e2e_ms": [1], "per_image": [], "miou": None}}}))
        with tempfile.TemporaryDirectory() as d, mock.patch.object(study.subprocess, "run", fake_run):
            study.run_measure(["m"], Path(d), Path(d) / "t.json", rounds=2, runs=1, images=1, score=False)
        expected = versions.serving_malloc_env()
        self.assertEqual(set(expected), {"MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES"})
        self.assertEqual(len(seen), 2)
        for env in seen:
            self.assertEqual({k: env[k] for k in expected}, expected)

    def test_ratios_per_round(self):
        self.assertEqual(study.per_round([1, 2, 3, 10, 20, 30], 2), [2.0, 20.0])
        r = study.ratios([100.0, 90.0, 120.0], [50.0, 60.0, 40.0])
        self.assertEqual((r["median"], r["min"], r["max"]), (2.0, 1.5, 3.0))

    def test_pair_ratio_per_round_and_rounds_at_target(self):
        def m(ms, per_image=()):
            return {"model_ms": ms, "backend_ms": ms, "e2e_ms": [1], "per_image": list(per_image), "miou": None}
        # a: float, b: int8; 3 rounds of 2 runs each, ratios 2.0, 1.9, 2.5
        res = {"rounds": [{"loadavg_before": 1.0, "loadavg_after": 1.5}, {"loadavg_before": 2.0}, {"loadavg_before": 3.0}],
               "models": {"a": m([100, 100, 95, 95, 125, 125]), "b": m([50, 50, 50, 50, 50, 50])}}
        s = study.pair_summary(res, "a", "b", 3, target=2.0)
        self.assertEqual(s["ratio_per_round"], [2.0, 1.9, 2.5])
        self.assertEqual((s["median"], s["min"], s["max"], s["at_least_target"]), (2.0, 1.9, 2.5, 2))
        self.assertEqual(s["model_ms"], {"a": [100.0, 95.0, 125.0], "b": [50.0, 50.0, 50.0]})
        self.assertEqual(s["loadavg"], [[1.0, 1.5], [2.0, None], [3.0, None]])
        self.assertNotIn("miou", s)  # nothing scored
        self.assertEqual(study.pair_summary(res, "a", "b", 3, target=2.1)["at_least_target"], 1)
        # scored: both mIoUs and b's paired difference to a
        good = [{"name": str(i), "confusion": [90, 0, 0, 10]} for i in range(4)]
        worse = [{"name": str(i), "confusion": [90, 0, 5, 5]} for i in range(4)]
        res["models"] = {"a": m([2, 2, 2, 2, 2, 2], good), "b": m([1, 1, 1, 1, 1, 1], worse)}
        s = study.pair_summary(res, "a", "b", 3, target=2.0)
        self.assertEqual(s["miou"]["a"]["miou"], 1.0)
        self.assertAlmostEqual(s["miou"]["b"]["diff"], (90 / 95 + 5 / 10) / 2 - 1.0)
        self.assertEqual(s["miou"]["b"]["diff_ci95"][0], s["miou"]["b"]["diff_ci95"][1])  # every image alike
        self.assertEqual(s["at_least_target"], 3)

    def test_table_footer_arena(self):
        from experiments import run_all
        # measure_models.mjs records the configured mode; 'auto' is not decided there (off)
        for mode, want in ((True, "on"), ("on", "on"), (False, "off"), ("off", "off"), ("auto", "off")):
            self.assertEqual(run_all._arena(mode), want, mode)

    def test_fp32_parent(self):
        def row(name, cfg, variant):
            return {"row": name, "manifest": {"training": {"config": cfg, "variant": variant}}}
        rows = [row("r18", "a.yaml", "fp32"), row("r18 int8", "a.yaml", "qdq"), row("narrow int8", "b.yaml", "qdq")]
        self.assertIs(study.fp32_parent(rows[1], rows), rows[0])
        self.assertIs(study.fp32_parent(rows[0], rows), rows[0])
        self.assertIsNone(study.fp32_parent(rows[2], rows))


if __name__ == "__main__":
    unittest.main()
