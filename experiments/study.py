"""The reduction study's table: every row measured by one protocol.

For the versions of the study (configs whose versions carry a ``row`` label), after
:func:`experiments.versions.build` has exported them and written their model.json claims with
``segserve eval``:

1. ``experiments/measure_models.mjs`` (the product's inference code, serving settings) measures
   every row at its served size (288×192) and its 1152×768 timing copy: model-only and
   end-to-end time per image, in rounds with the rows in alternating order, and one confusion
   matrix per golden image;
2. the golden mIoU of each row is checked against its model.json claim (``segserve eval``);
3. a bootstrap over the golden images (resampled with replacement, the same resamples for every
   row) gives each mIoU's 95 % interval and the interval of its difference to the baseline;
4. speed ratios to the baseline are taken per round (baseline median / row median in the same
   round), and their median over rounds is reported with the range.

``/usr/bin/python3 -m experiments.study`` re-measures the exported rows (run_all calls it);
``--pair A B`` times two version directories only (e.g. a network and its int8 copy) and reports
the per-round ratio.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from . import golden, quiet
from .versions import REPO, RESULTS, node, serving_malloc_env

BASELINE_ROW = "ResNet-18 baseline"
BOOTSTRAP = 2000


def run_measure(dirs: list[str], golden_dir: Path, out: Path, rounds: int, runs: int, images: int, score: bool = True,
                wrapper: list[str] | None = None) -> dict:
    """One measure_models.mjs invocation per round (each its own short ``wrapper`` hold: a quiet
    hold pauses the others' work), numbered so that the order still alternates; merged."""
    env = {**os.environ, **serving_malloc_env()}
    parts = []
    for r in range(rounds):
        part = out.with_name(f"{out.stem}.round{r + 1}{out.suffix}")
        cmd = [*(wrapper or []), node(), str(REPO / "experiments" / "measure_models.mjs"), "--golden", str(golden_dir), "--out", str(part),
               "--rounds", "1", "--first-round", str(r), "--runs", str(runs), "--images", str(images),
               "--score", "1" if score and r == 0 else "0", *dirs]
        with quiet.released_for(wrapper):
            subprocess.run(cmd, cwd=REPO, check=True, env=env)
        parts.append(json.loads(part.read_text()))
        part.unlink()
    merged = merge_rounds(parts)
    out.write_text(json.dumps(merged) + "\n")
    return merged


def merge_rounds(parts: list[dict]) -> dict:
    """measure_models.mjs outputs of consecutive rounds as one: the samples appended round after
    round (what :func:`per_round` expects), the scores of the round that scored."""
    first = parts[0]
    models = {}
    for d, m in first["models"].items():
        models[d] = {k: [v for p in parts for v in p["models"][d][k]] for k in ("model_ms", "backend_ms", "e2e_ms")}
        scored = next((p["models"][d] for p in parts if p["models"][d]["per_image"]), first["models"][d])
        models[d]["per_image"], models[d]["miou"] = scored["per_image"], scored["miou"]
    return {"settings": first["settings"], "golden": first["golden"], "rounds": [r for p in parts for r in p["rounds"]], "models": models}


def per_image_confusions(res: dict) -> np.ndarray:
    return np.array([p["confusion"] for p in res["per_image"]], np.float64).reshape(len(res["per_image"]), 2, 2)


def miou_of(conf: np.ndarray) -> np.ndarray:
    """mIoU of (…, 2, 2) confusion matrices (rows truth, columns prediction)."""
    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    union = conf.sum(-1) + conf.sum(-2) - tp
    return (tp / np.maximum(union, 1)).mean(-1)


def bootstrap(confs: dict[str, np.ndarray], baseline: str | None, n: int = BOOTSTRAP, seed: int = 13) -> dict[str, dict]:
    """95 % percentile intervals of each row's mIoU and of its difference to the baseline, from
    the same resamples of the golden images for every row (a paired bootstrap)."""
    k = len(next(iter(confs.values())))
    idx = np.random.default_rng(seed).integers(0, k, (n, k))
    draws = {name: miou_of(c[idx].sum(1)) for name, c in confs.items()}
    out = {}
    for name, d in draws.items():
        r = {"miou": float(miou_of(confs[name].sum(0))), "ci95": [float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))]}
        if baseline is not None and name != baseline:
            diff = d - draws[baseline]
            r["diff"] = float(miou_of(confs[name].sum(0)) - miou_of(confs[baseline].sum(0)))
            r["diff_ci95"] = [float(np.percentile(diff, 2.5)), float(np.percentile(diff, 97.5))]
        out[name] = r
    return out


def per_round(values: list[float], rounds: int) -> list[float]:
    """Median of each round's values (the tool appends the rounds' samples in order)."""
    per = len(values) // rounds
    return [float(np.median(values[r * per:(r + 1) * per])) for r in range(rounds)]


def ratios(base: list[float], row: list[float]) -> dict:
    r = [b / x for b, x in zip(base, row)]
    return {"median": float(np.median(r)), "min": float(min(r)), "max": float(max(r))}


def fp32_parent(row: dict, rows: list[dict]) -> dict | None:
    """The float row of the same training config (what a QDQ row was quantised from)."""
    cfg = row["manifest"]["training"]["config"]
    return next((r for r in rows if r["manifest"]["training"]["config"] == cfg and r["manifest"]["training"]["variant"] == "fp32"), None)


def measure(rows: list[dict], rounds: int = 3, runs: int = 8, images: int = 12, log=print, wrapper: list[str] | None = None) -> dict:
    """rows: {row, dir (served, 288×192), full_dir (1152×768 copy), manifest}. Returns the study.

    ``wrapper``: a command prefix for the timing runs (e.g. one that pauses other work on the
    machine while they run); the study records the load average either way."""
    if not rows:
        return {}
    gsets = {r["manifest"]["training"]["golden_set"] for r in rows}
    if len(gsets) != 1:
        raise ValueError(f"the study's rows are measured on different golden sets: {sorted(gsets)}")
    name = gsets.pop()
    gs = next(g for g in golden.SETS.values() if g.name == name)
    RESULTS.mkdir(parents=True, exist_ok=True)
    log(f"study: measuring {len(rows)} rows at 288×192 and 1152×768 ({rounds} rounds, load {os.getloadavg()[0]:.1f})")
    small = run_measure([str(REPO / r["dir"]) for r in rows], gs.dir, RESULTS / "study-small.json", rounds, runs, images, wrapper=wrapper)
    full = run_measure([r["full_dir"] for r in rows], gs.dir, RESULTS / "study-full.json", rounds, max(3, runs // 2),
                       max(3, images // 3), score=False, wrapper=wrapper)
    base = next((r for r in rows if r["row"] == BASELINE_ROW), rows[0])
    confs = {r["row"]: per_image_confusions(small["models"][str(REPO / r["dir"])]) for r in rows}
    boot = bootstrap(confs, base["row"])
    out_rows = []
    for r in rows:
        s = small["models"][str(REPO / r["dir"])]
        f = full["models"][r["full_dir"]]
        claim = r["manifest"]["metrics"]["miou"]
        if abs(round(s["miou"], 4) - claim) > 0.00015:
            raise RuntimeError(f"{r['dir']}: measure_models.mjs mIoU {s['miou']:.4f} differs from its segserve eval claim {claim}")
        row = {
            "row": r["row"], "dir": r["dir"], "full_dir": os.path.relpath(r["full_dir"], REPO), **boot[r["row"]],
            "model_ms": {"288x192": per_round(s["model_ms"], rounds), "1152x768": per_round(f["model_ms"], rounds)},
            "e2e_ms": {"288x192": per_round(s["e2e_ms"], rounds), "1152x768": per_round(f["e2e_ms"], rounds)},
        }
        bs, bf = small["models"][str(REPO / base["dir"])], full["models"][base["full_dir"]]
        row["speedup_model"] = {"288x192": ratios(per_round(bs["model_ms"], rounds), row["model_ms"]["288x192"]),
                                "1152x768": ratios(per_round(bf["model_ms"], rounds), row["model_ms"]["1152x768"])}
        parent = fp32_parent(r, rows)
        if parent is not None and parent is not r:
            pf = full["models"][parent["full_dir"]]
            row["parent"] = parent["row"]
            row["speedup_parent"] = {"1152x768": ratios(per_round(pf["model_ms"], rounds), row["model_ms"]["1152x768"])}
        out_rows.append(row)
    # what a network that predicts background everywhere scores here (IoU 0 for advertising): the
    # floor a collapsed int8 model falls to
    truth = next(iter(confs.values())).sum(0).sum(1)
    study = {"golden": {"set": gs.name, "sha256": gs.sha256, "images": small["golden"]["images"],
                        "all_background_miou": float(truth[0] / truth.sum() / 2)}, "settings": small["settings"],
             "rounds": {"288x192": small["rounds"], "1152x768": full["rounds"]}, "bootstrap": BOOTSTRAP, "rows": out_rows,
             "baseline": base["row"]}
    (RESULTS / "study.json").write_text(json.dumps(study, indent=2) + "\n")
    return study


def pair_summary(res: dict, a: str, b: str, rounds: int, target: float) -> dict:
    """Two rows of one run_measure: a's model-only time over b's per round (the same round's
    medians), their median and range, how many rounds reach ``target``, the load averages; with
    scores, both mIoUs and b's difference to a with the paired interval."""
    ma, mb = per_round(res["models"][a]["model_ms"], rounds), per_round(res["models"][b]["model_ms"], rounds)
    per = [x / y for x, y in zip(ma, mb)]
    out = {"a": a, "b": b, "rounds": rounds, "model_ms": {"a": ma, "b": mb}, "ratio_per_round": per, **ratios(ma, mb),
           "target": target, "at_least_target": sum(x >= target for x in per),
           "loadavg": [[r["loadavg_before"], r.get("loadavg_after")] for r in res["rounds"]]}
    if res["models"][a]["per_image"] and res["models"][b]["per_image"]:
        boot = bootstrap({"a": per_image_confusions(res["models"][a]), "b": per_image_confusions(res["models"][b])}, "a")
        out["miou"] = boot
    return out


def pair(a: str, b: str, rounds: int, runs: int, images: int, score: bool, wrapper: list[str] | None, out: Path,
         target: float = 2.0) -> dict:
    """Two versions (e.g. a float network and its int8 copy) timed by the protocol for ``rounds``
    rounds, each round its own ``wrapper`` hold, in alternating order; see :func:`pair_summary`."""
    a, b = str(Path(a).resolve()), str(Path(b).resolve())
    res = run_measure([a, b], golden.CURRENT.dir, out, rounds, runs, images, score=score, wrapper=wrapper)
    summary = pair_summary(res, a, b, rounds, target)
    out.with_name(f"{out.stem}.summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str]) -> int:
    import argparse
    import shlex

    from . import run_all  # run_all owns which versions form the study and the table

    ap = argparse.ArgumentParser(description="Re-measure the exported study rows (experiments/runs/versions/last.json) and "
                                 "write the study table into docs/experiments.md.")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timing-wrapper", default="", help="command prefix for the timing runs, split on spaces")
    ap.add_argument("--table-only", action="store_true", help="rewrite the table from the last study.json, measuring nothing")
    ap.add_argument("--pair", nargs=2, metavar=("A", "B"), help="instead: time these two version directories only (A's time over "
                    "B's per round; e.g. a float network and its int8 copy), write --out and its .summary.json, touch no table")
    ap.add_argument("--runs", type=int, default=4, help="--pair: model-only runs per version and round")
    ap.add_argument("--images", type=int, default=2, help="--pair: end-to-end images per version and round")
    ap.add_argument("--score", action="store_true", help="--pair: also score every golden image in round 1 (mIoUs, paired interval)")
    ap.add_argument("--target", type=float, default=2.0, help="--pair: count the rounds whose ratio reaches this")
    ap.add_argument("--out", default=str(RESULTS / "pair.json"), help="--pair: the merged measurement")
    a = ap.parse_args(argv)
    if a.pair:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        s = pair(*a.pair, rounds=a.rounds, runs=a.runs, images=a.images, score=a.score, wrapper=a.timing_wrapper.split() or None,
                 out=out, target=a.target)
        print(json.dumps(s, indent=2))
        return 0
    last = json.loads((RESULTS / "last.json").read_text())
    measured = json.loads((RESULTS / "study.json").read_text()) if a.table_only else None
    st = run_all.write_study(last["versions"], a.rounds, print, a.timing_wrapper.split() or None,
                             shlex.join(["/usr/bin/python3", "-m", "experiments.study", *argv]), measured)
    print(json.dumps(st, indent=2)[:2000])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
