"""Train one experiment from a YAML config: ``/usr/bin/python3 -m experiments.train experiments/configs/X.yaml``.

Writes ``experiments/runs/<name>/{train.log, last.pt, checkpoint.pt, metrics.json}``.

- AdamW + OneCycleLR; loss ``ce · CE + dice · Dice`` (``loss: {ce: 1, dice: 0.5}``; soft Dice over
  the classes of the batch; without a ``loss`` section plain cross-entropy, as v1–v5 were trained);
- ``distill: {teacher, temperature, alpha, features, bank}``: ``alpha · T² · KL(softmax(teacher/T) ‖
  softmax(student/T)) + (1 − alpha) · label loss`` (Hinton et al.), plus ``features ·`` the mean
  squared error between the teacher's stride-16 context features (normalised per pixel) and the
  student's, mapped to the teacher's width by a 1×1 conv that exists only in training.
  ``bank: K`` distils offline: the teacher runs once over K geometric augmentations (scale-crop)
  of every training image (:func:`teacher_bank`, cached in the teacher's run directory), and epoch e
  trains on augmentation e mod K with a random flip and the photometric augmentation applied to
  the student's input only — the teacher's forward pass, several times a small student's training
  step, is paid once instead of every epoch;
- ``init_from``: start from another run's weights; when the model has ``low_rank`` convolutions
  they are initialised from the SVD of the parent's (:func:`experiments.nets.svd_init`);
- resumable: ``last.pt`` (model, optimiser, scheduler, RNG states, history, time spent) is written
  atomically after every epoch, and a restarted training with the same config continues from it;
  ``checkpoint.pt`` holds the epoch with the best validation mIoU.

The process tolerates SIGSTOP/SIGCONT (quiet benchmarks pause it); wall and CPU time are recorded.
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

from . import dataset, nets
from .metrics import Confusion

RUNS = dataset.ROOT / "runs"


def load_config(path: str | Path) -> dict:
    with open(path) as f:
        cfg = yaml.safe_load(f)
    if "name" not in cfg:
        raise ValueError(f"{path}: config needs a name")
    return cfg


def threads(cfg: dict) -> int:
    # EXPERIMENTS_THREADS overrides every config (the machine is shared)
    return int(os.environ.get("EXPERIMENTS_THREADS", cfg.get("train", {}).get("threads", 1)))


def load_run(name: str, which: str = "checkpoint.pt") -> tuple[torch.nn.Module, dict]:
    ckpt = torch.load(RUNS / name / which, map_location="cpu")
    model = nets.build(ckpt["config"]["model"])
    model.load_state_dict(ckpt["state_dict"] if "state_dict" in ckpt else ckpt["model"])
    model.eval()
    return model, ckpt["config"]


def data_spec(cfg: dict) -> tuple[int, int, int, int, int]:
    dc = cfg.get("data", {})
    return (int(dc.get("seed", 1)), int(dc.get("images", 400)), int(dc.get("height", 192)), int(dc.get("width", 288)),
            int(dc.get("generator", 1)))


@torch.no_grad()
def evaluate(model: torch.nn.Module, split: dataset.Split, batch: int = 16) -> Confusion:
    model.eval()
    conf = Confusion(2)
    for i in range(0, len(split), batch):
        x = dataset.normalize(split.lo_img[i:i + batch])
        pred = model(x).argmax(1)
        conf.add(pred, split.lo_mask[i:i + batch])
    return conf


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − soft Dice, averaged over the classes, over the whole batch."""
    p = F.softmax(logits, 1)
    onehot = F.one_hot(target, p.shape[1]).permute(0, 3, 1, 2).float()
    inter = (p * onehot).sum((0, 2, 3))
    denom = p.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    return 1 - ((2 * inter + 1) / (denom + 1)).mean()


def _features(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    feats: list[torch.Tensor] = []
    return model(x, feats), feats


def _norm(f: torch.Tensor) -> torch.Tensor:
    return f / (f.pow(2).mean(1, keepdim=True).sqrt() + 1e-6)


@torch.no_grad()
def teacher_bank(cfg: dict, train_set: dataset.Split, log) -> dict:
    """K geometric augmentations of every training image with the teacher's low-resolution logits
    (float16) and stride-16 features; built once per (teacher, data, K, seed) and cached."""
    kd = cfg["distill"]
    k = int(kd["bank"])
    dseed, n, h, w, gv = data_spec(cfg)
    seed = int(kd.get("bank_seed", 0))
    path = RUNS / kd["teacher"] / f"kdbank-s{dseed}-n{n}-g{gv}-{h}x{w}-k{k}-seed{seed}.pt"
    if path.exists():
        return torch.load(path)
    teacher, _ = load_run(kd["teacher"])
    gen = torch.Generator().manual_seed(10_000 + seed)
    geo = {**cfg.get("augment", {}), "hflip": False, "brightness": 0.0, "contrast": 0.0, "noise": 0.0}
    m = len(train_set)
    imgs = torch.zeros((k, m, h, w, 3), dtype=torch.uint8)
    masks = torch.zeros((k, m, h, w), dtype=torch.uint8)
    logits, feats = [], []
    t0 = time.time()
    for j in range(k):
        for i in range(0, m, 8):
            idx = list(range(i, min(m, i + 8)))
            x, y = dataset.augment(train_set, idx, gen, geo)
            f: list[torch.Tensor] = []
            lo = teacher.lowres(x, f)
            logits.append(lo.half())
            feats.append(f[0].half())
            # back to the uint8 picture the student's photometric augmentation starts from
            mean = torch.tensor(dataset.MEAN).view(1, 3, 1, 1)
            std = torch.tensor(dataset.STD).view(1, 3, 1, 1)
            px = ((x * std + mean) / dataset.SCALE).round().clamp(0, 255).to(torch.uint8)
            imgs[j, i:i + len(idx)] = px.permute(0, 2, 3, 1)
            masks[j, i:i + len(idx)] = y.to(torch.uint8)
        log(f"teacher bank: augmentation {j + 1}/{k} ({time.time() - t0:.0f} s)")
    bank = {"images": imgs, "masks": masks, "logits": torch.cat(logits).view(k, m, *logits[0].shape[1:]),
            "features": torch.cat(feats).view(k, m, *feats[0].shape[1:]), "teacher": kd["teacher"]}
    save_atomic(bank, path)
    return bank


def bank_batch(bank: dict, slot: int, idx: list[int], gen: torch.Generator, aug: dict):
    """A batch from the bank: random flips (image, mask, teacher outputs together), then the
    photometric augmentation of :func:`dataset.augment` on the student's input."""
    x = bank["images"][slot, idx].permute(0, 3, 1, 2).float()
    y = bank["masks"][slot, idx].long()
    lo = bank["logits"][slot, idx].float()
    ft = bank["features"][slot, idx].float()
    flip = torch.rand(len(idx), generator=gen) < 0.5 if aug.get("hflip", True) else torch.zeros(len(idx), dtype=torch.bool)
    x[flip], y[flip], lo[flip], ft[flip] = x[flip].flip(-1), y[flip].flip(-1), lo[flip].flip(-1), ft[flip].flip(-1)
    out = []
    for xi in x:
        b = float(torch.empty(1).uniform_(-aug.get("brightness", 0.25), aug.get("brightness", 0.25), generator=gen))
        c = float(torch.empty(1).uniform_(1 - aug.get("contrast", 0.25), 1 + aug.get("contrast", 0.25), generator=gen))
        sigma = float(torch.empty(1).uniform_(0, aug.get("noise", 8.0), generator=gen))
        xi = (xi - 128) * c + 128 + b * 255 + torch.randn(xi.shape, generator=gen) * sigma
        out.append(xi.clamp(0, 255))
    x = torch.stack(out) * dataset.SCALE
    x = (x - torch.tensor(dataset.MEAN).view(1, 3, 1, 1)) / torch.tensor(dataset.STD).view(1, 3, 1, 1)
    return x, y, lo, ft


def _training_part(cfg: dict) -> dict:
    """What a resumed training must share with the one that wrote last.pt (not the export list)."""
    return {k: v for k, v in cfg.items() if k != "versions"}


def save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(cfg: dict, log) -> dict:
    torch.set_num_threads(threads(cfg))
    tc = cfg.get("train", {})
    seed = int(tc.get("seed", 0))
    torch.manual_seed(seed)
    dseed, n, h, w, gen_version = data_spec(cfg)
    cache = dataset.build(dseed, n, h, w, log=log, generator=gen_version)
    train_set = dataset.Split(cache, "train", dseed)
    val_set = dataset.Split(cache, "val", dseed)
    test_set = dataset.Split(cache, "test", dseed)
    run_dir = RUNS / cfg["name"]
    last_path = run_dir / "last.pt"
    last = torch.load(last_path, map_location="cpu") if last_path.exists() else None
    if last is not None and _training_part(last["config"]) != _training_part(cfg):
        raise RuntimeError(f"{last_path} was written by another config; move it away to start over")

    model = nets.build(cfg["model"])
    if last is None and cfg.get("init_from"):
        src, _ = load_run(cfg["init_from"])
        if cfg["model"].get("low_rank"):
            energy = nets.svd_init(model, src)
            log(f"initialised from run {cfg['init_from']} by SVD: kept energy min {min(energy.values()):.3f} "
                f"mean {sum(energy.values()) / len(energy):.3f} over {len(energy)} convs")
        else:
            model.load_state_dict(src.state_dict())
            log(f"initialised from run {cfg['init_from']}")
    teacher, adapt, bank = None, torch.nn.ModuleList(), None
    kd = cfg.get("distill")
    if kd:
        teacher, _ = load_run(kd["teacher"])
        for p in teacher.parameters():
            p.requires_grad_(False)
        if float(kd.get("features", 0)) > 0:
            x0 = torch.zeros(1, 3, h, w)
            with torch.no_grad():
                _, fs = _features(model.eval(), x0)
                _, ft = _features(teacher, x0)
            pairs = list(zip(fs, ft))[:1] if kd.get("bank") else list(zip(fs, ft))
            adapt = torch.nn.ModuleList([torch.nn.Conv2d(a.shape[1], b.shape[1], 1) for a, b in pairs])
        if kd.get("bank"):
            bank = teacher_bank(cfg, train_set, log)
            teacher = None  # its outputs are in the bank
        log(f"distilling from {kd['teacher']} T={kd.get('temperature', 2.0)} alpha={kd.get('alpha', 0.5)} "
            f"features={kd.get('features', 0)}")
    epochs, bs = int(tc.get("epochs", 10)), int(tc.get("batch_size", 8))
    steps = (len(train_set) + bs - 1) // bs
    params = list(model.parameters()) + list(adapt.parameters())
    opt = torch.optim.AdamW(params, lr=float(tc.get("lr", 3e-3)), weight_decay=float(tc.get("weight_decay", 1e-4)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=float(tc.get("lr", 3e-3)), total_steps=epochs * steps,
                                                pct_start=float(tc.get("pct_start", 0.2)))
    cw = tc.get("class_weights")
    weight = torch.tensor(cw, dtype=torch.float32) if cw else None
    lc = cfg.get("loss", {"ce": 1.0, "dice": 0.0})
    ce_w, dice_w = float(lc.get("ce", 1.0)), float(lc.get("dice", 0.0))
    gen = torch.Generator().manual_seed(seed)
    best, history, start_epoch, spent, cpu_spent = -1.0, [], 0, 0.0, 0.0
    if last is not None:
        model.load_state_dict(last["model"])
        adapt.load_state_dict(last["adapt"])
        opt.load_state_dict(last["optimizer"])
        sched.load_state_dict(last["scheduler"])
        gen.set_state(last["generator"])
        torch.set_rng_state(last["torch_rng"])
        best, history, start_epoch = last["best"], last["history"], last["epoch"]
        spent, cpu_spent = last["seconds"], last["cpu_seconds"]
        log(f"resumed from {last_path.name} after epoch {start_epoch} ({spent / 60:.1f} min so far)")
    for epoch in range(start_epoch, epochs):
        t_epoch, c_epoch = time.time(), time.process_time()
        model.train()
        order = torch.randperm(len(train_set), generator=gen).tolist()
        total = 0.0
        for s in range(steps):
            batch = order[s * bs:(s + 1) * bs]
            tlogits, tf = None, []
            if bank is not None:
                x, y, lo, f16 = bank_batch(bank, epoch % int(kd["bank"]), batch, gen, cfg.get("augment", {}))
                tlogits, tf = nets.upsample(lo, (h, w)), [f16]
            else:
                x, y = dataset.augment(train_set, batch, gen, cfg.get("augment", {}))
            feats: list[torch.Tensor] | None = [] if len(adapt) else None
            logits = model(x, feats) if feats is not None else model(x)
            loss = ce_w * F.cross_entropy(logits, y, weight=weight)
            if dice_w:
                loss = loss + dice_w * dice_loss(logits, y)
            if kd:
                t, a = float(kd.get("temperature", 2.0)), float(kd.get("alpha", 0.5))
                if tlogits is None:
                    with torch.no_grad():
                        tlogits = teacher(x, tf) if feats is not None else teacher(x)
                soft = F.softmax(tlogits / t, dim=1)
                kl = F.kl_div(F.log_softmax(logits / t, dim=1), soft, reduction="none").sum(1).mean()
                loss = a * t * t * kl + (1 - a) * loss
                if feats is not None:
                    fl = sum(F.mse_loss(_norm(ad(fs)), _norm(ft)) for ad, fs, ft in zip(adapt, feats, tf))
                    loss = loss + float(kd["features"]) * fl
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss)
        conf = evaluate(model, val_set)
        miou = conf.miou()
        spent += time.time() - t_epoch
        cpu_spent += time.process_time() - c_epoch
        history.append({"epoch": epoch + 1, "loss": round(total / steps, 4), "val_miou": round(miou, 4),
                        "seconds": round(spent, 1), "load": round(os.getloadavg()[0], 2)})
        log(f"epoch {epoch + 1}/{epochs} loss {total / steps:.4f} val mIoU {miou:.4f} "
            f"({time.time() - t_epoch:.0f} s, {spent / 60:.1f} min in all, load {os.getloadavg()[0]:.1f})")
        if miou > best:
            best = miou
            save_atomic({"config": cfg, "state_dict": model.state_dict(), "epoch": epoch + 1}, run_dir / "checkpoint.pt")
        save_atomic({"config": cfg, "model": model.state_dict(), "adapt": adapt.state_dict(), "optimizer": opt.state_dict(),
                     "scheduler": sched.state_dict(), "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                     "epoch": epoch + 1, "best": best, "history": history, "seconds": spent, "cpu_seconds": cpu_spent},
                    last_path)
    model, _ = load_run(cfg["name"])
    test = evaluate(model, test_set)
    best_epoch = torch.load(run_dir / "checkpoint.pt", map_location="cpu")["epoch"]
    loads = [e["load"] for e in history if "load" in e]
    metrics = {
        "name": cfg["name"], "train_seconds": round(spent, 1), "train_cpu_seconds": round(cpu_spent, 1),
        "threads": threads(cfg), "epochs": epochs, "steps": epochs * steps, "batch_size": bs,
        "best_epoch": best_epoch, "val_miou": round(best, 4), "test_miou": round(test.miou(), 4),
        "test_iou": [round(v, 4) for v in test.iou()], "test_pixel_accuracy": round(test.pixel_accuracy(), 4),
        "params": nets.count_params(model), "gflops_train_res": round(nets.count_gflops(model, h, w), 3),
        "gflops_1152x768": round(nets.count_gflops(model, 768, 1152), 2), "height": h, "width": w,
        "load_avg_median": round(sorted(loads)[len(loads) // 2], 2) if loads else None,
        "dataset": {"seed": dseed, "images": n, "generator": gen_version, "train": len(train_set),
                    "val": len(val_set), "test": len(test_set)},
        "history": history,
    }
    if cfg.get("init_from"):
        parent = json.loads((RUNS / cfg["init_from"] / "metrics.json").read_text())
        metrics["train_seconds_total"] = round(spent + parent.get("train_seconds_total", parent["train_seconds"]), 1)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log(f"done: val mIoU {best:.4f} test mIoU {test.miou():.4f} in {spent / 60:.1f} min")
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
