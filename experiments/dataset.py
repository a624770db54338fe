"""The synthetic data set: render, split, cache, load, augment.

Images are rendered at 1152×768 (:mod:`experiments.facades`) and cached under
``experiments/data/`` twice: at the training resolution (for validation and test, resized the
way serving resizes: an antialiased bilinear reduction of the whole picture) and at twice that
(for random scale-and-crop augmentation during training). Splits follow the study: 60 % train,
15 % validation, 25 % test, by image index, from one seed.
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import facades

ROOT = Path(__file__).resolve().parent
DATA_DIR = ROOT / "data"

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
SCALE = 1 / 255


def resize_image(img: Image.Image, height: int, width: int) -> np.ndarray:
    return np.asarray(img.resize((width, height), Image.BILINEAR), np.uint8)


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Downscale a 0/1 mask by area coverage (a pixel is an ad when at least half of it is)."""
    m = Image.fromarray((mask * 255).astype(np.uint8), "L").resize((width, height), Image.BOX)
    return (np.asarray(m) >= 128).astype(np.uint8)


def split_indices(n: int, seed: int) -> dict[str, np.ndarray]:
    order = np.random.default_rng(seed + 7919).permutation(n)
    n_test = int(round(n * 0.25))
    n_val = int(round(n * 0.15))
    return {"test": np.sort(order[:n_test]), "val": np.sort(order[n_test:n_test + n_val]), "train": np.sort(order[n_test + n_val:])}


def cache_path(seed: int, n: int, height: int, width: int, generator: int = 1) -> Path:
    # generator 1 keeps the original cache name (the runs of v1–v5)
    tag = "" if generator == 1 else f"-g{generator}"
    return DATA_DIR / f"facades-s{seed}-n{n}-{height}x{width}{tag}.npz"


def _render_one(args: tuple[int, int, int, int]):
    seed, height, width, generator = args
    img, mask = facades.render(seed, generator=generator)
    return (resize_image(img, height, width), resize_mask(mask, height, width),
            resize_image(img, height * 2, width * 2), resize_mask(mask, height * 2, width * 2))


def build(seed: int, n: int, height: int, width: int, log=print, generator: int = 1, workers: int = 1) -> Path:
    """Render n images from ``seed`` with generator version ``generator`` and cache them; returns
    the cache file (reused if present). ``workers`` > 1 renders in that many processes (same bytes)."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = cache_path(seed, n, height, width, generator)
    if path.exists():
        return path
    facades.check_fonts()
    t0 = time.time()
    lo_img = np.zeros((n, height, width, 3), np.uint8)
    lo_mask = np.zeros((n, height, width), np.uint8)
    hi_img = np.zeros((n, height * 2, width * 2, 3), np.uint8)
    hi_mask = np.zeros((n, height * 2, width * 2), np.uint8)
    jobs = [(seed * 100003 + i, height, width, generator) for i in range(n)]
    if workers > 1:
        import multiprocessing
        pool = multiprocessing.get_context("fork").Pool(workers)
        results = pool.imap(_render_one, jobs, chunksize=4)
    else:
        pool, results = None, map(_render_one, jobs)
    for i, (li, lm, hi, hm) in enumerate(results):
        lo_img[i], lo_mask[i], hi_img[i], hi_mask[i] = li, lm, hi, hm
        if (i + 1) % 50 == 0:
            log(f"rendered {i + 1}/{n} images ({time.time() - t0:.0f} s)")
    if pool is not None:
        pool.close()
        pool.join()
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, lo_img=lo_img, lo_mask=lo_mask, hi_img=hi_img, hi_mask=hi_mask)
    os.replace(tmp, path)
    log(f"data set {path.name}: {n} images in {time.time() - t0:.0f} s, ad pixel share {lo_mask.mean():.3f}")
    return path


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def normalize(batch_uint8: torch.Tensor) -> torch.Tensor:
    """NHWC uint8 → NCHW float32: pixels × scale, then (x − mean) / std (the model.json contract)."""
    x = batch_uint8.permute(0, 3, 1, 2).float() * SCALE
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


class Split:
    """One split held in memory as uint8 tensors."""

    def __init__(self, cache: Path, split: str, seed: int) -> None:
        data = np.load(cache)
        idx = split_indices(data["lo_img"].shape[0], seed)[split]
        self.lo_img = torch.from_numpy(data["lo_img"][idx])
        self.lo_mask = torch.from_numpy(data["lo_mask"][idx]).long()
        self.hi_img = torch.from_numpy(data["hi_img"][idx]) if split == "train" else None
        self.hi_mask = torch.from_numpy(data["hi_mask"][idx]).long() if split == "train" else None

    def __len__(self) -> int:
        return self.lo_img.shape[0]


def augment(split: Split, idx: list[int], gen: torch.Generator, aug: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """A training batch: random scale-crop from the 2× cache, flips, brightness/contrast, noise."""
    h, w = split.lo_img.shape[1:3]
    xs, ys = [], []
    for i in idx:
        img, mask = split.hi_img[i], split.hi_mask[i]
        s = float(torch.empty(1).uniform_(aug.get("min_crop", 0.55), 1.0, generator=gen)) if aug.get("crop", True) else 1.0
        ch, cw = int(2 * h * s), int(2 * w * s)
        y0 = int(torch.randint(0, 2 * h - ch + 1, (1,), generator=gen))
        x0 = int(torch.randint(0, 2 * w - cw + 1, (1,), generator=gen))
        crop = img[y0:y0 + ch, x0:x0 + cw].permute(2, 0, 1)[None].float()
        mcrop = mask[y0:y0 + ch, x0:x0 + cw][None, None].float()
        x = F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False, antialias=True)[0]
        y = F.interpolate(mcrop, size=(h, w), mode="nearest")[0, 0].long()
        if aug.get("hflip", True) and torch.rand(1, generator=gen) < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        b = float(torch.empty(1).uniform_(-aug.get("brightness", 0.25), aug.get("brightness", 0.25), generator=gen))
        c = float(torch.empty(1).uniform_(1 - aug.get("contrast", 0.25), 1 + aug.get("contrast", 0.25), generator=gen))
        x = (x - 128) * c + 128 + b * 255
        sigma = float(torch.empty(1).uniform_(0, aug.get("noise", 8.0), generator=gen))
        x = x + torch.randn(x.shape, generator=gen) * sigma
        xs.append(x.clamp(0, 255))
        ys.append(y)
    x = torch.stack(xs) * SCALE
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return x, torch.stack(ys)


if __name__ == "__main__":
    # python3 -m experiments.dataset [seed n height width [generator [workers]]]
    a = [int(v) for v in sys.argv[1:]] or [1, 400, 192, 288]
    print(build(a[0], a[1], a[2], a[3], generator=a[4] if len(a) > 4 else 1, workers=a[5] if len(a) > 5 else 1))
