"""Train one experiment from a YAML config: ``/usr/bin/python3 -m experiments.train experiments/configs/X.yaml``.

Writes ``experiments/runs/<name>/{train.log, checkpoint.pt, metrics.json}``. AdamW + OneCycleLR,
cross-entropy; with a ``distill`` section the loss is
``alpha · T² · KL(softmax(teacher/T) ‖ softmax(student/T)) + (1 − alpha) · CE(student, labels)``
(Hinton et al.), the teacher being another run's checkpoint. ``init_from`` starts from another
run's weights (fine-tuning). The best epoch by validation mIoU is kept.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from . import dataset, pspnet
from .metrics import Confusion

RUNS = dataset.ROOT / "runs"


def load_config(path: str | Path) -> dict:
    with open(path) as f:
        cfg = yaml.safe_load(f)
    if "name" not in cfg:
        raise ValueError(f"{path}: config needs a name")
    return cfg


def threads(cfg: dict) -> int:
    # one thread by default: the machine is shared; EXPERIMENTS_THREADS overrides every config
    return int(os.environ.get("EXPERIMENTS_THREADS", cfg.get("train", {}).get("threads", 1)))


def load_run(name: str) -> tuple[torch.nn.Module, dict]:
    ckpt = torch.load(RUNS / name / "checkpoint.pt", map_location="cpu")
    model = pspnet.build(ckpt["config"]["model"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, ckpt["config"]


@torch.no_grad()
def evaluate(model: torch.nn.Module, split: dataset.Split, batch: int = 16) -> Confusion:
    model.eval()
    conf = Confusion(2)
    for i in range(0, len(split), batch):
        x = dataset.normalize(split.lo_img[i:i + batch])
        pred = model(x).argmax(1)
        conf.add(pred, split.lo_mask[i:i + batch])
    return conf


def train(cfg: dict, log) -> dict:
    torch.set_num_threads(threads(cfg))
    tc = cfg.get("train", {})
    dc = cfg.get("data", {})
    seed = int(tc.get("seed", 0))
    torch.manual_seed(seed)
    h, w = int(dc.get("height", 192)), int(dc.get("width", 288))
    cache = dataset.build(int(dc.get("seed", 1)), int(dc.get("images", 400)), h, w, log=log)
    train_set = dataset.Split(cache, "train", int(dc.get("seed", 1)))
    val_set = dataset.Split(cache, "val", int(dc.get("seed", 1)))
    test_set = dataset.Split(cache, "test", int(dc.get("seed", 1)))
    model = pspnet.build(cfg["model"])
    if cfg.get("init_from"):
        src, _ = load_run(cfg["init_from"])
        model.load_state_dict(src.state_dict())
        log(f"initialised from run {cfg['init_from']}")
    teacher = None
    kd = cfg.get("distill")
    if kd:
        teacher, _ = load_run(kd["teacher"])
        for p in teacher.parameters():
            p.requires_grad_(False)
        log(f"distilling from {kd['teacher']} T={kd.get('temperature', 2.0)} alpha={kd.get('alpha', 0.5)}")
    epochs, bs = int(tc.get("epochs", 10)), int(tc.get("batch_size", 8))
    steps = (len(train_set) + bs - 1) // bs
    opt = torch.optim.AdamW(model.parameters(), lr=float(tc.get("lr", 3e-3)), weight_decay=float(tc.get("weight_decay", 1e-4)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=float(tc.get("lr", 3e-3)), total_steps=epochs * steps,
                                                pct_start=float(tc.get("pct_start", 0.2)))
    cw = tc.get("class_weights")
    weight = torch.tensor(cw, dtype=torch.float32) if cw else None
    gen = torch.Generator().manual_seed(seed)
    run_dir = RUNS / cfg["name"]
    best, history, t0 = -1.0, [], time.time()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_set), generator=gen).tolist()
        total = 0.0
        for s in range(steps):
            x, y = dataset.augment(train_set, order[s * bs:(s + 1) * bs], gen, cfg.get("augment", {}))
            logits = model(x)
            loss = F.cross_entropy(logits, y, weight=weight)
            if teacher is not None:
                t, a = float(kd.get("temperature", 2.0)), float(kd.get("alpha", 0.5))
                with torch.no_grad():
                    soft = F.softmax(teacher(x) / t, dim=1)
                kl = F.kl_div(F.log_softmax(logits / t, dim=1), soft, reduction="none").sum(1).mean()
                loss = a * t * t * kl + (1 - a) * loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss)
        conf = evaluate(model, val_set)
        miou = conf.miou()
        history.append({"epoch": epoch + 1, "loss": round(total / steps, 4), "val_miou": round(miou, 4),
                        "seconds": round(time.time() - t0, 1)})
        log(f"epoch {epoch + 1}/{epochs} loss {total / steps:.4f} val mIoU {miou:.4f} ({time.time() - t0:.0f} s)")
        if miou > best:
            best = miou
            torch.save({"config": cfg, "state_dict": model.state_dict(), "epoch": epoch + 1}, run_dir / "checkpoint.pt")
    seconds = time.time() - t0
    model, _ = load_run(cfg["name"])
    test = evaluate(model, test_set)
    best_epoch = torch.load(run_dir / "checkpoint.pt", map_location="cpu")["epoch"]
    metrics = {
        "name": cfg["name"], "train_seconds": round(seconds, 1), "threads": threads(cfg), "epochs": epochs,
        "best_epoch": best_epoch, "val_miou": round(best, 4), "test_miou": round(test.miou(), 4),
        "test_iou": [round(v, 4) for v in test.iou()], "test_pixel_accuracy": round(test.pixel_accuracy(), 4),
        "params": pspnet.count_params(model), "gflops_train_res": round(pspnet.count_gflops(model, h, w), 3),
        "gflops_1152x768": round(pspnet.count_gflops(model, 768, 1152), 2), "height": h, "width": w,
        "dataset": {"seed": int(dc.get("seed", 1)), "images": int(dc.get("images", 400)), "train": len(train_set),
                    "val": len(val_set), "test": len(test_set)},
        "history": history,
    }
    if cfg.get("init_from"):
        parent = json.loads((RUNS / cfg["init_from"] / "metrics.json").read_text())
        metrics["train_seconds_total"] = round(seconds + parent.get("train_seconds_total", parent["train_seconds"]), 1)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log(f"done: val mIoU {best:.4f} test mIoU {test.miou():.4f} in {seconds:.0f} s")
    return metrics


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python3 -m experiments.train <config.yaml>", file=sys.stderr)
        return 2
    cfg = load_config(argv[0])
    run_dir = RUNS / cfg["name"]
    run_dir.mkdir(parents=True, exist_ok=True)
    logf = open(run_dir / "train.log", "a", buffering=1)

    def log(msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {cfg['name']}: {msg}"
        print(line, flush=True)
        logf.write(line + "\n")

    train(cfg, log)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
