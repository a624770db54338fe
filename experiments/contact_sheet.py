"""Contact sheet of the default model on the golden set: input | ground truth | prediction.

The predictions are the masks that onnxruntime-node produced through the serving preprocessing
(``measure.mjs --dump``), not a PyTorch re-run. Advertising is tinted red over the photograph.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import golden
from .versions import REPO, measure

CELL_W, CELL_H = 320, 213


def _overlay(img: Image.Image, mask: np.ndarray) -> Image.Image:
    arr = np.asarray(img, np.float32).copy()
    m = mask.astype(bool)
    arr[m] = arr[m] * 0.45 + np.array([255, 0, 0], np.float32) * 0.55
    return Image.fromarray(arr.astype(np.uint8), "RGB")


def _label(cell: Image.Image, text: str) -> Image.Image:
    d = ImageDraw.Draw(cell)
    try:
        font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 13)
    except OSError:
        font = ImageFont.load_default()
    d.rectangle((0, 0, 8 + 8 * len(text), 18), fill=(0, 0, 0))
    d.text((4, 2), text, fill=(255, 255, 255), font=font)
    return cell


def build(model_dir: Path, out: Path, names: list[str] | None = None) -> Path:
    images = sorted((golden.GOLDEN / "images").glob("*.jpg"))
    chosen = [p for p in images if names is None or p.stem in names][:6]
    with tempfile.TemporaryDirectory() as tmp:
        res = measure(model_dir, passes=1, dump=Path(tmp))
        rows = []
        for p in chosen:
            img = Image.open(p).convert("RGB")
            truth = np.asarray(Image.open(golden.GOLDEN / "masks" / f"{p.stem}.png"))
            pred = np.asarray(Image.open(Path(tmp) / f"{p.stem}.png").convert("L"))
            inter = np.logical_and(truth == 1, pred == 1).sum()
            union = np.logical_or(truth == 1, pred == 1).sum()
            cells = [
                _label(img.resize((CELL_W, CELL_H), Image.BILINEAR), p.stem),
                _label(_overlay(img, truth).resize((CELL_W, CELL_H), Image.BILINEAR), "truth"),
                _label(_overlay(img, pred).resize((CELL_W, CELL_H), Image.BILINEAR), f"prediction (ad IoU {inter / max(union, 1):.2f})"),
            ]
            rows.append(cells)
    sheet = Image.new("RGB", (3 * CELL_W + 8, len(rows) * (CELL_H + 4) + 4), (255, 255, 255))
    for r, cells in enumerate(rows):
        for c, cell in enumerate(cells):
            sheet.paste(cell, (c * (CELL_W + 4), 4 + r * (CELL_H + 4)))
    out.parent.mkdir(parents=True, exist_ok=True)
    # a 256-colour palette keeps the PNG small enough to commit
    sheet.quantize(colors=256, method=Image.MEDIANCUT, dither=Image.NONE).save(out, optimize=True)
    print(f"contact sheet {out} ({out.stat().st_size // 1024} KB), golden mIoU {res['miou']}")
    return out


if __name__ == "__main__":
    build(REPO / (sys.argv[1] if len(sys.argv) > 1 else "models/facade-ads/2"),
          REPO / (sys.argv[2] if len(sys.argv) > 2 else "docs/contact-sheet-facade-ads-2.png"))
