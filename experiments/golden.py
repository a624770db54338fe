"""The golden set: held-out 1152×768 JPEG uploads and 8-bit PNG masks (0 background, 1 advertising).

Rendered from a seed that the training data never uses (training: seed 1; golden: seed 2), written
to ``models/facade-ads/golden/{images,masks}/`` with the same base names. Its identity is the
sha256 over the sorted (relative path, file digest) pairs.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from . import facades
from .dataset import ROOT

GOLDEN = ROOT.parent / "models" / "facade-ads" / "golden"


def build(seed: int = 2, count: int = 24, quality: int = 93, out: Path = GOLDEN) -> str:
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        img, mask = facades.render(seed * 100003 + i)
        name = f"facade-{i + 1:03d}"
        img.save(out / "images" / f"{name}.jpg", "JPEG", quality=quality, optimize=True)
        Image.fromarray(mask.astype(np.uint8), "L").save(out / "masks" / f"{name}.png", optimize=True)
    return digest(out)


def digest(root: Path = GOLDEN) -> str:
    h = hashlib.sha256()
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + hashlib.sha256(p.read_bytes()).hexdigest().encode() + b"\n")
    return h.hexdigest()


if __name__ == "__main__":
    print(build(*(int(a) for a in sys.argv[1:3])))
